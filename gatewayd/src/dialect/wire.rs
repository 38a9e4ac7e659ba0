//! PURE: Gemini's generateContent wire format as typed serde structs that every dialect's
//! converter targets: the request a dialect builds (`GenerateRequest`), the answer it reads
//! (`GenerateResponse`, borrowing from the body), and a decoder that turns a Gemini stream into
//! typed events with usage and in-stream errors lifted out once. Schemas, function arguments and
//! responses stay `serde_json::Value`: they pass through as the client wrote them.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::{Number, Value};

use crate::sse::SseParser;
use crate::usage::Usage;

// ---- the request ------------------------------------------------------------------------------

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GenerateRequest {
    pub contents: Vec<Content>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system_instruction: Option<SystemInstruction>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<Tool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_config: Option<ToolConfig>,
    #[serde(skip_serializing_if = "GenerationConfig::is_empty")]
    pub generation_config: GenerationConfig,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub safety_settings: Vec<SafetySetting>,
    /// `cachedContents/{id}` the request builds on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cached_content: Option<String>,
}

/// Google's documented stand-in signature for function calls that did not come from Gemini.
pub const FOREIGN_CALL_SIGNATURE: &str = "skip_thought_signature_validator";

/// The harm categories `models.safety_settings` covers.
pub const SAFETY_CATEGORIES: &[&str] = &[
    "HARM_CATEGORY_HARASSMENT",
    "HARM_CATEGORY_HATE_SPEECH",
    "HARM_CATEGORY_SEXUALLY_EXPLICIT",
    "HARM_CATEGORY_DANGEROUS_CONTENT",
    "HARM_CATEGORY_CIVIC_INTEGRITY",
];

impl GenerateRequest {
    /// The last step of every dialect's translation, the same for all: what Gemini itself demands
    /// of `model` (stand-in signatures, responses in their calls' order, no search beside
    /// functions before Gemini 3), then `models.safety_settings`.
    pub fn finish_for(&mut self, model: &str, safety: &str) {
        self.sign_foreign_calls(model);
        self.order_responses();
        self.keep_search_where_allowed(model);
        self.apply_safety(safety);
    }

    /// `models.safety_settings`: the threshold for every category not already set; `passthrough`
    /// leaves the request alone.
    pub fn apply_safety(&mut self, threshold: &str) {
        if threshold == "passthrough" || threshold.is_empty() {
            return;
        }
        for category in SAFETY_CATEGORIES {
            if !self.safety_settings.iter().any(|s| s.category == *category) {
                self.safety_settings
                    .push(SafetySetting { category: category.to_string(), threshold: threshold.to_string() });
            }
        }
    }

    /// Gemini 3 checks the signature of the first function call of each model turn (it signs
    /// only that one of parallel calls). A turn whose first call has none never came from
    /// Gemini through the gateway (its ids carry every signature Gemini gave), so that call gets
    /// the value Google documents for such turns; later calls are left as they are.
    fn sign_foreign_calls(&mut self, model: &str) {
        if !model.starts_with("gemini-3") {
            return;
        }
        for content in self.contents.iter_mut().filter(|c| c.role == Role::Model) {
            if let Some(first) = content.parts.iter_mut().find(|p| p.function_call.is_some())
                && first.thought_signature.is_none()
            {
                first.thought_signature = Some(FOREIGN_CALL_SIGNATURE.to_string());
            }
        }
    }

    /// Gemini pairs function responses with the calls of the model turn before them in order;
    /// a client may answer parallel calls in any order, so each user turn's responses are put in
    /// the order of the calls they answer (by name, each call once); other parts keep their place
    /// after them.
    fn order_responses(&mut self) {
        for i in 1..self.contents.len() {
            if self.contents[i].role != Role::User || self.contents[i - 1].role != Role::Model {
                continue;
            }
            let calls: Vec<String> = self.contents[i - 1]
                .parts
                .iter()
                .filter_map(|p| p.function_call.as_ref().map(|c| c.name.clone()))
                .collect();
            let parts = &mut self.contents[i].parts;
            if calls.len() < 2 || parts.iter().filter(|p| p.function_response.is_some()).count() < 2 {
                continue;
            }
            let (mut responses, rest): (Vec<Part>, Vec<Part>) =
                std::mem::take(parts).into_iter().partition(|p| p.function_response.is_some());
            let mut ordered = Vec::with_capacity(responses.len() + rest.len());
            for name in &calls {
                if let Some(at) =
                    responses.iter().position(|r| r.function_response.as_ref().is_some_and(|f| &f.name == name))
                {
                    ordered.push(responses.remove(at));
                }
            }
            ordered.extend(responses);
            ordered.extend(rest);
            *parts = ordered;
        }
    }

    /// Models before Gemini 3 refuse Google Search beside function declarations: there the
    /// functions, which the client's loop depends on, are kept and the search dropped.
    fn keep_search_where_allowed(&mut self, model: &str) {
        let functions = self.tools.iter().any(|t| matches!(t, Tool::FunctionDeclarations(_)));
        if functions && !model.starts_with("gemini-3") {
            self.tools.retain(|t| !matches!(t, Tool::GoogleSearch(_)));
        }
    }

    /// Gemini wants alternating turns: consecutive parts of one role join one turn (several tool
    /// results answer several calls in one turn, as Gemini requires).
    pub fn push_turn(&mut self, role: Role, parts: Vec<Part>) {
        match self.contents.last_mut() {
            Some(last) if last.role == role => last.parts.extend(parts),
            _ => self.contents.push(Content { role, parts }),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Model,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Content {
    pub role: Role,
    pub parts: Vec<Part>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SystemInstruction {
    pub parts: Vec<Part>,
}

/// One part; exactly one of the payload fields is set.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Part {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thought: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inline_data: Option<Blob>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_data: Option<FileData>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub function_call: Option<FunctionCall>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub function_response: Option<FunctionResponse>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thought_signature: Option<String>,
}

impl Part {
    pub fn text(text: impl Into<String>) -> Self {
        Part { text: Some(text.into()), ..Part::default() }
    }
    pub fn inline(mime_type: impl Into<String>, data: impl Into<String>) -> Self {
        Part { inline_data: Some(Blob { mime_type: mime_type.into(), data: data.into() }), ..Part::default() }
    }
    pub fn call(name: impl Into<String>, args: Value, thought_signature: Option<String>) -> Self {
        Part { function_call: Some(FunctionCall { name: name.into(), args }), thought_signature, ..Part::default() }
    }
    pub fn response(name: impl Into<String>, response: Value) -> Self {
        Part { function_response: Some(FunctionResponse { name: name.into(), response }), ..Part::default() }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Blob {
    pub mime_type: String,
    /// Base64, as Gemini takes it.
    pub data: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FileData {
    pub mime_type: String,
    pub file_uri: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FunctionCall {
    pub name: String,
    pub args: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FunctionResponse {
    pub name: String,
    pub response: Value,
}

/// One entry of `tools`: Google Search, or function declarations.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Tool {
    GoogleSearch(Empty),
    FunctionDeclarations(Vec<FunctionDeclaration>),
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Empty {}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FunctionDeclaration {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolConfig {
    pub function_calling_config: FunctionCallingConfig,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FunctionCallingConfig {
    /// `NONE`, `AUTO` or `ANY`.
    pub mode: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allowed_function_names: Vec<String>,
}

/// Numbers are kept as the client wrote them (an integer stays an integer).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GenerationConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature: Option<Number>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_p: Option<Number>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_k: Option<Number>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<Number>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub presence_penalty: Option<Number>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frequency_penalty: Option<Number>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub candidate_count: Option<Number>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_output_tokens: Option<Number>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_sequences: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_mime_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_json_schema: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thinking_config: Option<ThinkingConfig>,
}

impl GenerationConfig {
    pub fn is_empty(&self) -> bool {
        *self == GenerationConfig::default()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ThinkingConfig {
    pub thinking_budget: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub include_thoughts: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SafetySetting {
    pub category: String,
    pub threshold: String,
}

// ---- the answer -------------------------------------------------------------------------------

/// A string of the answer, borrowed from the body when it holds no escapes. (serde borrows a bare
/// `Cow<str>` field, but not one inside an `Option`; this type borrows in both.)
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Str<'a>(pub Cow<'a, str>);

impl std::ops::Deref for Str<'_> {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Str<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Str<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Str<'de>, E> {
                Ok(Str(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Str<'de>, E> {
                Ok(Str(Cow::Owned(v.to_string())))
            }
            fn visit_string<E>(self, v: String) -> Result<Str<'de>, E> {
                Ok(Str(Cow::Owned(v)))
            }
        }
        d.deserialize_str(Visitor)
    }
}

/// A generateContent answer, or one event of a stream. Unknown fields are ignored; strings borrow
/// from the body where they hold no escapes.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GenerateResponse<'a> {
    #[serde(default, borrow)]
    pub candidates: Vec<Candidate<'a>>,
    #[serde(default)]
    pub usage_metadata: Option<UsageMetadata>,
    #[serde(default, borrow)]
    pub prompt_feedback: Option<PromptFeedback<'a>>,
    #[serde(default, borrow)]
    pub response_id: Option<Str<'a>>,
}

impl GenerateResponse<'_> {
    /// The candidates in their `index` order.
    pub fn ordered_candidates(&self) -> Vec<(u64, &Candidate<'_>)> {
        let mut c: Vec<(u64, &Candidate)> =
            self.candidates.iter().enumerate().map(|(i, c)| (c.index.unwrap_or(i as u64), c)).collect();
        c.sort_by_key(|(i, _)| *i);
        c
    }

    pub fn blocked(&self) -> bool {
        self.prompt_feedback.as_ref().is_some_and(|f| f.block_reason.is_some())
    }

    pub fn usage(&self) -> Option<Usage> {
        self.usage_metadata.as_ref().map(UsageMetadata::usage)
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Candidate<'a> {
    #[serde(default, borrow)]
    pub content: Option<AnswerContent<'a>>,
    #[serde(default, borrow)]
    pub finish_reason: Option<Str<'a>>,
    #[serde(default)]
    pub index: Option<u64>,
}

impl<'a> Candidate<'a> {
    pub fn parts(&self) -> &[AnswerPart<'a>] {
        self.content.as_ref().map_or(&[], |c| &c.parts)
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct AnswerContent<'a> {
    #[serde(default, borrow)]
    pub parts: Vec<AnswerPart<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AnswerPart<'a> {
    #[serde(default, borrow)]
    pub text: Option<Str<'a>>,
    #[serde(default)]
    pub thought: Option<bool>,
    #[serde(default, borrow)]
    pub thought_signature: Option<Str<'a>>,
    #[serde(default, borrow)]
    pub function_call: Option<AnswerCall<'a>>,
    #[serde(default, borrow)]
    pub inline_data: Option<AnswerBlob<'a>>,
}

#[derive(Debug, Default, Deserialize)]
pub struct AnswerCall<'a> {
    #[serde(default, borrow)]
    pub name: Str<'a>,
    #[serde(default)]
    pub args: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AnswerBlob<'a> {
    #[serde(default, borrow)]
    pub mime_type: Option<Str<'a>>,
    #[serde(default, borrow)]
    pub data: Str<'a>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PromptFeedback<'a> {
    #[serde(default, borrow)]
    pub block_reason: Option<Str<'a>>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct UsageMetadata {
    pub prompt_token_count: u64,
    pub candidates_token_count: u64,
    pub thoughts_token_count: u64,
    pub total_token_count: u64,
    pub cached_content_token_count: u64,
}

impl UsageMetadata {
    pub fn usage(&self) -> Usage {
        Usage { prompt: self.prompt_token_count, completion: self.candidates_token_count + self.thoughts_token_count }
    }
}

// ---- the stream -------------------------------------------------------------------------------

/// An error Google reports inside a stream (`{"error":{...}}` as an event).
#[derive(Debug, Default, Deserialize)]
struct StreamError<'a> {
    #[serde(default, borrow)]
    error: Option<ErrorBody<'a>>,
}

#[derive(Debug, Default, Deserialize)]
struct ErrorBody<'a> {
    #[serde(default, borrow)]
    message: Option<Str<'a>>,
}

/// One decoded event of a Gemini SSE stream.
#[derive(Debug)]
pub enum StreamEvent<'a> {
    /// One answer chunk, and the event's data it was read from.
    Chunk(GenerateResponse<'a>, &'a str),
    /// Google failed inside the stream; its message, keys redacted.
    Error(String),
}

/// Gemini SSE bytes in, typed events out, with the latest usage kept (Gemini repeats the running
/// totals; the last event holds the final ones).
#[derive(Default)]
pub struct StreamDecoder {
    parser: SseParser,
    usage: Option<Usage>,
}

impl StreamDecoder {
    /// Feeds upstream bytes; `on_event` sees every complete event. Data that is not JSON (a
    /// keep-alive comment, a `[DONE]`) is skipped.
    pub fn feed(&mut self, bytes: &[u8], mut on_event: impl FnMut(StreamEvent<'_>)) {
        let usage = &mut self.usage;
        // Each event is read where the framer holds it: no copy per event.
        self.parser.feed_each(bytes, |data| {
            let Ok(data) = std::str::from_utf8(data) else { return };
            if data.contains("\"error\"")
                && let Ok(StreamError { error: Some(e) }) = serde_json::from_str::<StreamError>(data)
            {
                let message = e.message.as_deref().unwrap_or("upstream error");
                on_event(StreamEvent::Error(shared::redact_keys_in(message)));
                return;
            }
            let Ok(chunk) = serde_json::from_str::<GenerateResponse>(data) else { return };
            if let Some(u) = chunk.usage() {
                *usage = Some(u);
            }
            on_event(StreamEvent::Chunk(chunk, data));
        });
    }

    pub fn usage(&self) -> Option<Usage> {
        self.usage
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_request_serializes_in_geminis_shape() {
        let mut r = GenerateRequest::default();
        r.push_turn(Role::User, vec![Part::text("a")]);
        r.push_turn(Role::User, vec![Part::inline("image/png", "AAAA")]);
        r.push_turn(Role::Model, vec![Part::call("f", json!({"x": 1}), Some("sig".into()))]);
        r.tools.push(Tool::GoogleSearch(Empty {}));
        r.generation_config.max_output_tokens = Some(5.into());
        r.apply_safety("BLOCK_NONE");
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(
            v["contents"][0],
            json!({"role": "user", "parts": [{"text": "a"}, {"inlineData": {"mimeType": "image/png", "data": "AAAA"}}]})
        );
        assert_eq!(
            v["contents"][1]["parts"][0],
            json!({"functionCall": {"name": "f", "args": {"x": 1}}, "thoughtSignature": "sig"})
        );
        assert_eq!(v["tools"], json!([{"googleSearch": {}}]));
        assert_eq!(v["generationConfig"], json!({"maxOutputTokens": 5}));
        assert_eq!(v["safetySettings"].as_array().unwrap().len(), SAFETY_CATEGORIES.len());
        assert!(v.get("systemInstruction").is_none() && v.get("toolConfig").is_none());
    }

    #[test]
    fn only_calls_that_never_came_from_gemini_get_the_stand_in_signature() {
        let turns = || {
            let mut r = GenerateRequest::default();
            r.push_turn(Role::User, vec![Part::text("go")]);
            // Parallel calls of one step: Gemini signs the first; the second keeps none.
            r.push_turn(
                Role::Model,
                vec![Part::call("a", json!({}), Some("S1".into())), Part::call("b", json!({}), None)],
            );
            r.push_turn(Role::User, vec![Part::response("a", json!({})), Part::response("b", json!({}))]);
            r.push_turn(Role::Model, vec![Part::call("c", json!({}), None)]);
            r
        };
        let mut g3 = turns();
        g3.sign_foreign_calls("gemini-3-pro-preview");
        let sig =
            |r: &GenerateRequest, turn: usize, part: usize| r.contents[turn].parts[part].thought_signature.clone();
        assert_eq!(sig(&g3, 1, 0).as_deref(), Some("S1"), "Gemini's own is kept");
        assert_eq!(sig(&g3, 1, 1), None, "a parallel call Gemini left unsigned stays so");
        assert_eq!(sig(&g3, 3, 0).as_deref(), Some(FOREIGN_CALL_SIGNATURE));
        assert_eq!(g3.contents[2].parts[0].thought_signature, None, "responses carry none");
        let mut older = turns();
        older.sign_foreign_calls("gemini-2.5-flash");
        assert_eq!(older, turns(), "models before Gemini 3 need no stand-in");
    }

    #[test]
    fn parallel_calls_get_their_responses_in_geminis_order() {
        let mut r = GenerateRequest::default();
        r.push_turn(Role::User, vec![Part::text("go")]);
        r.push_turn(
            Role::Model,
            vec![
                Part::call("a", json!({}), Some("S".into())),
                Part::call("b", json!({}), None),
                Part::call("a", json!({"n": 2}), None),
            ],
        );
        r.push_turn(
            Role::User,
            vec![
                Part::response("b", json!({"r": "b"})),
                Part::text("note"),
                Part::response("a", json!({"r": "a1"})),
                Part::response("a", json!({"r": "a2"})),
            ],
        );
        r.order_responses();
        let order: Vec<Value> = r.contents[2]
            .parts
            .iter()
            .map(|p| p.function_response.as_ref().map_or(json!("text"), |f| f.response["r"].clone()))
            .collect();
        assert_eq!(order, [json!("a1"), json!("b"), json!("a2"), json!("text")]);
    }

    #[test]
    fn an_answer_borrows_and_orders_its_candidates() {
        let body = br#"{"candidates":[{"index":1,"content":{"parts":[{"text":"b"}]}},
            {"index":0,"content":{"role":"model","parts":[{"text":"t","thought":true},{"functionCall":{"name":"f","args":{"a":1}},"thoughtSignature":"S"}]},"finishReason":"STOP"}],
            "usageMetadata":{"promptTokenCount":3,"candidatesTokenCount":4,"thoughtsTokenCount":2},"responseId":"r1","extra":1}"#;
        let r: GenerateResponse = serde_json::from_slice(body).unwrap();
        let ordered = r.ordered_candidates();
        assert_eq!(ordered[0].0, 0);
        let parts = ordered[0].1.parts();
        assert!(matches!(parts[0].text, Some(Str(Cow::Borrowed("t")))));
        assert_eq!(parts[1].function_call.as_ref().unwrap().args, Some(json!({"a": 1})));
        assert_eq!(r.usage(), Some(Usage { prompt: 3, completion: 6 }));
        assert_eq!(r.response_id.as_deref(), Some("r1"));
        let blocked: GenerateResponse = serde_json::from_str(r#"{"promptFeedback":{"blockReason":"SAFETY"}}"#).unwrap();
        assert!(blocked.blocked() && blocked.candidates.is_empty());
    }

    #[test]
    fn the_stream_decoder_lifts_usage_and_errors() {
        let mut d = StreamDecoder::default();
        let mut seen = Vec::new();
        let stream = "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"a\"}]}}],\"usageMetadata\":{\"promptTokenCount\":1,\"candidatesTokenCount\":1}}\r\n\r\n\
                      data: {\"usageMetadata\":{\"promptTokenCount\":1,\"candidatesTokenCount\":3}}\r\n\r\n\
                      data: {\"error\":{\"code\":500,\"message\":\"boom\"}}\r\n\r\n";
        for piece in stream.as_bytes().chunks(7) {
            d.feed(piece, |e| {
                seen.push(match e {
                    StreamEvent::Chunk(c, _) => format!("chunk {}", c.candidates.len()),
                    StreamEvent::Error(m) => format!("error {m}"),
                })
            });
        }
        assert_eq!(seen, vec!["chunk 1", "chunk 0", "error boom"]);
        assert_eq!(d.usage(), Some(Usage { prompt: 1, completion: 3 }));
    }
}
