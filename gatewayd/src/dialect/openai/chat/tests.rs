//! The chat dialect's mapping rows, request to stream.

use std::collections::{BTreeMap, HashMap};

use serde_json::{Value, json};

use super::*;
use crate::dialect::openai::bad_request::BadRequest;
use crate::dialect::signature::signature_from_id;
use crate::dialect::wire::GenerateResponse;
use crate::sse::SseParser;

fn opts() -> Options<'static> {
    Options { safety: "passthrough", ..Default::default() }
}

/// A translated request, its Gemini body as JSON.
struct Translated {
    body: Value,
    model: String,
    upstream_model: crate::models::ModelName,
    stream: bool,
}

fn req(v: Value) -> Translated {
    req_with(&v, &opts())
}

fn req_with(v: &Value, o: &Options) -> Translated {
    let r = chat_request(v, o).unwrap();
    Translated {
        body: serde_json::to_value(&r.body).unwrap(),
        model: r.model,
        upstream_model: r.upstream_model,
        stream: r.stream,
    }
}

/// A Gemini answer given as JSON, as a chat completion.
fn respond(gemini: &Value, model: &str, created: i64) -> Value {
    let raw = gemini.to_string();
    let parsed: GenerateResponse = serde_json::from_str(&raw).unwrap();
    chat_response(&parsed, raw.as_bytes(), model, created)
}

/// One stream event given as JSON, through the translator.
fn feed(t: &mut ChunkTranslator, event: &str) -> Vec<Value> {
    let parsed: GenerateResponse = serde_json::from_str(event).unwrap();
    t.feed(&parsed, event).iter().map(as_json).collect()
}

/// A chunk event (`data: {…}\n\n`) as JSON.
fn as_json(event: &bytes::Bytes) -> Value {
    let text = std::str::from_utf8(event).unwrap();
    assert!(text.starts_with("data: ") && text.ends_with("\n\n"), "{text:?}");
    serde_json::from_str(&text["data: ".len()..text.len() - 2]).unwrap()
}

fn refused(v: Value) -> BadRequest {
    chat_request(&v, &opts()).unwrap_err()
}

#[test]
fn system_developer_user_and_images() {
    let r = req(json!({"model": "gemini-2.5-flash", "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "developer", "content": [{"type": "text", "text": "Use English."}]},
        {"role": "user", "content": [
            {"type": "text", "text": "What is this?"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
        ]}
    ]}));
    assert_eq!(r.body["systemInstruction"], json!({"parts": [{"text": "Be brief."}, {"text": "Use English."}]}));
    assert_eq!(
        r.body["contents"],
        json!([{"role": "user", "parts": [{"text": "What is this?"}, {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}}]}])
    );
    assert!(r.body.get("generationConfig").is_none(), "unset stays unset");
    assert!(!r.stream);
    // http(s) images come from the gateway's fetches.
    let v = json!({"model": "m", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x/cat.jpg"}}]}]});
    assert_eq!(remote_image_urls(&v), vec!["https://x/cat.jpg".to_string()]);
    let images: HashMap<String, (String, String)> =
        [("https://x/cat.jpg".to_string(), ("image/jpeg".to_string(), "AAAA".to_string()))].into();
    let o = Options { images: Some(&images), safety: "passthrough", ..Default::default() };
    let r = req_with(&v, &o);
    assert_eq!(r.body["contents"][0]["parts"][0]["inlineData"]["mimeType"], "image/jpeg");
    assert_eq!(refused(v).field, "messages[0].content[0].image_url.url");
}

#[test]
fn sampling_parameters_only_when_set() {
    let r = req(json!({"model": "m", "messages": [{"role": "user", "content": "hi"}],
        "temperature": 0.2, "top_p": 0.9, "max_tokens": 100, "stop": "END", "n": 2, "seed": 7,
        "presence_penalty": 0.5, "frequency_penalty": -0.5}));
    assert_eq!(
        r.body["generationConfig"],
        json!({"temperature": 0.2, "topP": 0.9, "maxOutputTokens": 100, "stopSequences": ["END"],
        "candidateCount": 2, "seed": 7, "presencePenalty": 0.5, "frequencyPenalty": -0.5})
    );
    let r = req(
        json!({"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_completion_tokens": 5, "max_tokens": 9, "stop": ["a", "b"]}),
    );
    assert_eq!(r.body["generationConfig"], json!({"maxOutputTokens": 5, "stopSequences": ["a", "b"]}));
    assert_eq!(
        refused(json!({"model": "m", "messages": [{"role": "user", "content": "hi"}], "temperature": "hot"})).field,
        "temperature"
    );
}

#[test]
fn response_format_and_reasoning() {
    let r = req(
        json!({"model": "m", "messages": [{"role": "user", "content": "hi"}], "response_format": {"type": "json_object"}}),
    );
    assert_eq!(r.body["generationConfig"], json!({"responseMimeType": "application/json"}));
    let schema = json!({"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"], "additionalProperties": false});
    let r = req(json!({"model": "m", "messages": [{"role": "user", "content": "hi"}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "x", "strict": true, "schema": schema}}}));
    assert_eq!(
        r.body["generationConfig"],
        json!({"responseMimeType": "application/json", "responseJsonSchema": schema})
    );
    let r = req(json!({"model": "m", "messages": [{"role": "user", "content": "hi"}], "reasoning_effort": "low"}));
    assert_eq!(r.body["generationConfig"]["thinkingConfig"], json!({"thinkingBudget": 1024, "includeThoughts": true}));
    // models.thinking_budget applies only when the client set no effort.
    let budgets: BTreeMap<String, i64> = [("gemini-2.5-pro".to_string(), 2048)].into();
    let o = Options { thinking_budget: Some(&budgets), safety: "passthrough", ..Default::default() };
    let r = req_with(&json!({"model": "gemini-2.5-pro", "messages": [{"role": "user", "content": "hi"}]}), &o);
    assert_eq!(r.body["generationConfig"]["thinkingConfig"], json!({"thinkingBudget": 2048}));
    let r = req_with(
        &json!({"model": "gemini-2.5-pro", "messages": [{"role": "user", "content": "hi"}], "reasoning_effort": "high"}),
        &o,
    );
    assert_eq!(r.body["generationConfig"]["thinkingConfig"]["thinkingBudget"], 24576);
    assert_eq!(
        refused(
            json!({"model": "m", "messages": [{"role": "user", "content": "hi"}], "response_format": {"type": "yaml"}})
        )
        .field,
        "response_format.type"
    );
}

#[test]
fn tools_and_every_tool_choice() {
    let params = json!({"$schema": "http://json-schema.org/draft-07/schema#", "type": "object", "additionalProperties": false,
        "properties": {"city": {"type": "string", "description": "City"}, "unit": {"type": ["string", "null"], "enum": ["c", "f"]},
                       "tags": {"type": "array", "items": {"type": "string", "additionalProperties": false}}, "kind": {"const": "x"}},
        "required": ["city"]});
    let base = json!({"model": "m", "messages": [{"role": "user", "content": "weather?"}],
        "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Weather", "parameters": params, "strict": true}},
                  {"type": "function", "function": {"name": "now", "parameters": {"type": "object", "properties": {}}}}]});
    let r = req(base.clone());
    assert_eq!(
        r.body["tools"],
        json!([{"functionDeclarations": [
        {"name": "get_weather", "description": "Weather", "parameters": {"type": "object", "required": ["city"], "properties": {
            "city": {"type": "string", "description": "City"}, "unit": {"type": "string", "nullable": true, "enum": ["c", "f"]},
            "tags": {"type": "array", "items": {"type": "string"}}, "kind": {"type": "string", "enum": ["x"]}}}},
        {"name": "now"}]}])
    );
    for (choice, want) in [
        (json!("none"), json!({"mode": "NONE"})),
        (json!("auto"), json!({"mode": "AUTO"})),
        (json!("required"), json!({"mode": "ANY"})),
        (
            json!({"type": "function", "function": {"name": "get_weather"}}),
            json!({"mode": "ANY", "allowedFunctionNames": ["get_weather"]}),
        ),
    ] {
        let mut v = base.clone();
        v["tool_choice"] = choice;
        assert_eq!(req(v).body["toolConfig"], json!({"functionCallingConfig": want}));
    }
}

#[test]
fn search_suffix_and_safety() {
    let search = vec!["gemini-2.5-flash".to_string()];
    let o = Options { search_models: &search, safety: "BLOCK_NONE", ..Default::default() };
    let r =
        req_with(&json!({"model": "gemini-2.5-flash-search", "messages": [{"role": "user", "content": "news"}]}), &o);
    assert_eq!((r.model.as_str(), r.upstream_model.as_str()), ("gemini-2.5-flash-search", "gemini-2.5-flash"));
    assert_eq!(r.body["tools"], json!([{"googleSearch": {}}]));
    assert_eq!(r.body["safetySettings"].as_array().unwrap().len(), 5);
    assert_eq!(r.body["safetySettings"][0]["threshold"], "BLOCK_NONE");
    // Not a search model: the name passes as it is.
    let r = req_with(&json!({"model": "other-search", "messages": [{"role": "user", "content": "x"}]}), &o);
    assert_eq!(r.upstream_model.as_str(), "other-search");
}

/// A Gemini 3 tool loop: the call comes back with a thought signature; the client's next turn
/// (assistant tool_calls + tool result, as the OpenAI SDK builds it) sends it back upstream.
#[test]
fn multi_turn_tool_loop_keeps_the_thought_signature() {
    let first = json!({"candidates": [{"content": {"role": "model", "parts": [
        {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}, "thoughtSignature": "c2lnLTE="},
        {"functionCall": {"name": "get_time", "args": {}}}
    ]}, "finishReason": "STOP", "index": 0}], "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 5}, "responseId": "r1"});
    let out = respond(&first, "gemini-3-pro", 1);
    let choice = &out["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    assert_eq!(choice["message"]["content"], Value::Null);
    let calls = choice["message"]["tool_calls"].as_array().unwrap();
    assert_eq!(calls[0]["function"], json!({"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}));
    let id1 = calls[0]["id"].as_str().unwrap();
    let id2 = calls[1]["id"].as_str().unwrap();
    assert_ne!(id1, id2);
    assert_eq!(signature_from_id(id1).as_deref(), Some("c2lnLTE="));
    assert_eq!(signature_from_id(id2), None);
    // Stable: the same answer yields the same ids.
    assert_eq!(respond(&first, "gemini-3-pro", 1)["choices"][0]["message"]["tool_calls"][0]["id"], calls[0]["id"]);
    let next = req(json!({"model": "gemini-3-pro", "messages": [
        {"role": "user", "content": "Weather and time in Paris?"},
        {"role": "assistant", "content": null, "tool_calls": calls},
        {"role": "tool", "tool_call_id": id1, "content": "{\"temp\": 21}"},
        {"role": "tool", "tool_call_id": id2, "content": "12:00"},
        {"role": "user", "content": "Thanks"}
    ]}));
    assert_eq!(
        next.body["contents"],
        json!([
            {"role": "user", "parts": [{"text": "Weather and time in Paris?"}]},
            {"role": "model", "parts": [
                {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}, "thoughtSignature": "c2lnLTE="},
                {"functionCall": {"name": "get_time", "args": {}}}]},
            {"role": "user", "parts": [
                {"functionResponse": {"name": "get_weather", "response": {"temp": 21}}},
                {"functionResponse": {"name": "get_time", "response": {"result": "12:00"}}},
                {"text": "Thanks"}]}
        ])
    );
    // A client that keeps only extra_content (not the id) still sends the signature.
    let mut plain = calls[0].clone();
    plain["id"] = json!("call_x");
    let r = req(json!({"model": "m", "messages": [
        {"role": "user", "content": "q"}, {"role": "assistant", "tool_calls": [plain]}, {"role": "tool", "tool_call_id": "call_x", "content": "ok"}]}));
    assert_eq!(r.body["contents"][1]["parts"][0]["thoughtSignature"], "c2lnLTE=");
    let e = refused(
        json!({"model": "m", "messages": [{"role": "user", "content": "q"}, {"role": "tool", "tool_call_id": "nope", "content": "x"}]}),
    );
    assert_eq!(e.field, "messages[1].tool_call_id");
}

#[test]
fn responses_map_finish_reasons_usage_and_thoughts() {
    for (gemini, openai) in [
        ("STOP", "stop"),
        ("MAX_TOKENS", "length"),
        ("SAFETY", "content_filter"),
        ("RECITATION", "content_filter"),
        ("BLOCKLIST", "content_filter"),
        ("PROHIBITED_CONTENT", "content_filter"),
        ("OTHER", "stop"),
    ] {
        let g = json!({"candidates": [{"content": {"parts": [{"text": "x"}]}, "finishReason": gemini}]});
        assert_eq!(respond(&g, "m", 0)["choices"][0]["finish_reason"], openai, "{gemini}");
    }
    let g = json!({"candidates": [{"content": {"role": "model", "parts": [{"text": "Let me think", "thought": true}, {"text": "42"}]}, "finishReason": "STOP"},
                                  {"content": {"role": "model", "parts": [{"text": "43"}]}, "finishReason": "STOP", "index": 1}],
                   "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 2, "thoughtsTokenCount": 5, "totalTokenCount": 10},
                   "responseId": "abc"});
    let out = respond(&g, "my-model", 99);
    assert_eq!(out["id"], "chatcmpl-abc");
    assert_eq!(
        (out["object"].as_str(), out["model"].as_str(), out["created"].as_i64()),
        (Some("chat.completion"), Some("my-model"), Some(99))
    );
    assert_eq!(
        out["choices"][0]["message"],
        json!({"role": "assistant", "content": "42", "reasoning_content": "Let me think"})
    );
    assert_eq!(out["choices"][1]["message"]["content"], "43");
    assert_eq!(
        out["usage"],
        json!({"prompt_tokens": 3, "completion_tokens": 7, "total_tokens": 10, "completion_tokens_details": {"reasoning_tokens": 5}})
    );
    let blocked = json!({"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": {"promptTokenCount": 3}});
    assert_eq!(respond(&blocked, "m", 0)["choices"][0]["finish_reason"], "content_filter");
}

/// SSE bytes split at awkward places, through the parser and the translator.
#[test]
fn streamed_tool_call_split_across_events() {
    let events = [
        json!({"candidates": [{"content": {"role": "model", "parts": [{"text": "Checking", "thought": true}]}, "index": 0}], "responseId": "s1"}),
        json!({"candidates": [{"content": {"role": "model", "parts": [{"text": "Sure. "}]}, "index": 0}]}),
        json!({"candidates": [{"content": {"role": "model", "parts": [{"functionCall": {"name": "a", "args": {"x": 1}}, "thoughtSignature": "U0lH"}]}, "index": 0}]}),
        json!({"candidates": [{"content": {"role": "model", "parts": [{"functionCall": {"name": "b", "args": {}}}]}, "finishReason": "STOP", "index": 0}],
               "usageMetadata": {"promptTokenCount": 4, "candidatesTokenCount": 6, "totalTokenCount": 10}}),
    ];
    let wire: String = events.iter().map(|e| format!("data: {e}\r\n\r\n")).collect();
    let mut parser = SseParser::default();
    let mut t = ChunkTranslator::new("gemini-3-pro", 5, true);
    let mut chunks = Vec::new();
    for piece in wire.as_bytes().chunks(7) {
        let mut data = Vec::new();
        parser.feed(piece, &mut data);
        for d in data {
            chunks.extend(feed(&mut t, &d));
        }
    }
    chunks.extend(t.finish().iter().map(as_json));
    assert_eq!(chunks.len(), 5);
    assert!(
        chunks.iter().all(|c| c["object"] == "chat.completion.chunk"
            && c["id"] == "chatcmpl-s1"
            && c["model"] == "gemini-3-pro")
    );
    assert_eq!(chunks[0]["choices"][0]["delta"], json!({"role": "assistant", "reasoning_content": "Checking"}));
    assert_eq!(chunks[1]["choices"][0]["delta"], json!({"content": "Sure. "}));
    let call_a = &chunks[2]["choices"][0]["delta"]["tool_calls"][0];
    assert_eq!(
        (call_a["index"].as_u64(), call_a["function"]["name"].as_str(), call_a["function"]["arguments"].as_str()),
        (Some(0), Some("a"), Some("{\"x\":1}"))
    );
    assert_eq!(signature_from_id(call_a["id"].as_str().unwrap()).as_deref(), Some("U0lH"));
    let call_b = &chunks[3]["choices"][0]["delta"]["tool_calls"][0];
    assert_eq!((call_b["index"].as_u64(), call_b["type"].as_str()), (Some(1), Some("function")));
    assert_eq!(chunks[3]["choices"][0]["finish_reason"], "tool_calls");
    assert!(chunks[0]["choices"][0]["finish_reason"].is_null());
    assert_eq!(chunks[4]["choices"], json!([]));
    assert_eq!(chunks[4]["usage"]["total_tokens"], 10);
    assert!(chunks[0]["usage"].is_null());
}

#[test]
fn an_unfinished_stream_is_closed_on_finish() {
    let mut t = ChunkTranslator::new("m", 0, false);
    feed(&mut t, &json!({"candidates": [{"content": {"parts": [{"text": "hi"}]}}]}).to_string());
    let end: Vec<Value> = t.finish().iter().map(as_json).collect();
    assert_eq!(end.len(), 1);
    assert_eq!(end[0]["choices"][0]["finish_reason"], "stop");
    assert!(end[0].get("usage").is_none());
}

#[test]
fn malformed_requests_name_the_field() {
    for (v, field) in [
        (json!([]), "body"),
        (json!({"messages": [{"role": "user", "content": "x"}]}), "model"),
        (json!({"model": "m"}), "messages"),
        (json!({"model": "m", "messages": []}), "messages"),
        (json!({"model": "m", "messages": [{"content": "x"}]}), "messages[0].role"),
        (json!({"model": "m", "messages": [{"role": "robot", "content": "x"}]}), "messages[0].role"),
        (json!({"model": "m", "messages": [{"role": "user", "content": 5}]}), "messages[0].content"),
        (
            json!({"model": "m", "messages": [{"role": "user", "content": [{"type": "video"}]}]}),
            "messages[0].content[0].type",
        ),
        (json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "stream": "yes"}), "stream"),
        (
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "tool_choice": "sometimes"}),
            "tool_choice",
        ),
        (
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "tools": [{"type": "function", "function": {}}]}),
            "tools[0].function.name",
        ),
        (
            json!({"model": "m", "messages": [{"role": "assistant", "tool_calls": [{"id": "1", "function": {"name": "f", "arguments": "{bad"}}]}]}),
            "messages[0].tool_calls[0].function.arguments",
        ),
        (
            json!({"model": "m", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/png,xyz"}}]}]}),
            "messages[0].content[0].image_url.url",
        ),
    ] {
        assert_eq!(refused(v.clone()).field, field, "{v}");
    }
}

/// Every JSON pointer into `v`, containers included.
fn pointers(v: &Value, at: String, out: &mut Vec<String>) {
    let children: Vec<(String, &Value)> = match v {
        Value::Object(o) => o.iter().map(|(k, c)| (format!("{at}/{k}"), c)).collect(),
        Value::Array(a) => a.iter().enumerate().map(|(i, c)| (format!("{at}/{i}"), c)).collect(),
        _ => return,
    };
    for (p, child) in children {
        out.push(p.clone());
        pointers(child, p, out);
    }
}

/// Bodies derived from a valid one: cut every 7 bytes, and every value replaced in turn by each
/// other JSON type.
pub(crate) fn malformed_variants(valid: &Value) -> Vec<String> {
    let text = valid.to_string();
    let mut out: Vec<String> = (0..text.len()).step_by(7).map(|cut| text[..cut].to_string()).collect();
    let mut at = Vec::new();
    pointers(valid, String::new(), &mut at);
    for p in at {
        for replacement in [json!(null), json!(7), json!("s"), json!([]), json!({}), json!(-1.5), json!(true)] {
            let mut v = valid.clone();
            *v.pointer_mut(&p).unwrap() = replacement;
            out.push(v.to_string());
        }
    }
    out
}

pub(crate) fn valid_chat() -> Value {
    json!({"model": "gemini-2.5-flash", "stream": false, "temperature": 0.5, "n": 1, "stop": ["x"],
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {"a": {"type": "string"}}}}}],
        "tool_choice": {"type": "function", "function": {"name": "f"}}, "response_format": {"type": "json_object"},
        "messages": [{"role": "system", "content": "s"}, {"role": "user", "content": [{"type": "text", "text": "t"}]},
                     {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
                     {"role": "tool", "tool_call_id": "c1", "content": "ok"}]})
}

/// The converter never panics: every body either translates into a request that serializes, or
/// is refused naming a field that the body really has (or `body`).
#[test]
fn malformed_bodies_translate_or_are_refused_naming_a_field() {
    let bodies = malformed_variants(&valid_chat());
    assert!(bodies.len() > 200, "{}", bodies.len());
    let (mut refused, mut translated) = (0, 0);
    for body in &bodies {
        let Ok(v) = serde_json::from_str::<Value>(body) else { continue };
        match chat_request(&v, &opts()) {
            Ok(r) => {
                assert!(serde_json::to_vec(&r.body).is_ok());
                translated += 1;
            }
            Err(e) => {
                let root = e.field.split(['.', '[']).next().unwrap_or("");
                assert!(root == "body" || v.get(root).is_some() || root == "messages", "{body}: {e}");
                assert!(!e.message.is_empty(), "{body}");
                refused += 1;
            }
        }
    }
    assert!(refused > 50 && translated > 20, "refused {refused}, translated {translated}");
}
