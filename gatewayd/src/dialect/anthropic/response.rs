//! PURE: a Gemini answer → an Anthropic message: `msg_` ids, content blocks (`thinking` with its
//! signature, `text`, `tool_use` with a `toolu_` id carrying the call's thought signature),
//! `stop_reason`, usage.

use std::hash::{Hash, Hasher};

use serde_json::{Value, json};

use crate::dialect::signature::url_safe_call_id;
use crate::dialect::wire::{AnswerPart, GenerateResponse, UsageMetadata};

/// `msg_` and Gemini's response id, or a hash of the answer when it has none.
pub fn message_id(gemini: &GenerateResponse, raw: &[u8]) -> String {
    match gemini.response_id.as_deref() {
        Some(id) if id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') => format!("msg_{id}"),
        _ => {
            let mut h = std::hash::DefaultHasher::new();
            raw.hash(&mut h);
            format!("msg_{:016x}", h.finish())
        }
    }
}

pub fn stop_reason(finish: Option<&str>, used_tool: bool) -> &'static str {
    if used_tool {
        return "tool_use";
    }
    match finish {
        Some("MAX_TOKENS") => "max_tokens",
        Some("SAFETY" | "RECITATION" | "BLOCKLIST" | "PROHIBITED_CONTENT" | "SPII" | "IMAGE_SAFETY") => "refusal",
        _ => "end_turn",
    }
}

/// Gemini's counts as Anthropic's: `input_tokens` are those not read from a cache.
pub fn usage(meta: &UsageMetadata) -> Value {
    let cached = meta.cached_content_token_count;
    json!({
        "input_tokens": meta.prompt_token_count.saturating_sub(cached),
        "output_tokens": meta.candidates_token_count + meta.thoughts_token_count,
        "cache_read_input_tokens": cached,
        "cache_creation_input_tokens": 0,
    })
}

/// One content block a part makes, before consecutive text and thinking are joined.
pub enum Piece {
    Thinking { text: String, signature: Option<String> },
    Text(String),
    ToolUse { id: String, name: String, input: Value },
}

/// What a part says, as a block; `tools` counts the tool calls so far (for their ids).
pub fn piece(part: &AnswerPart, tools: usize) -> Option<Piece> {
    if let Some(call) = &part.function_call {
        let input = call.args.clone().unwrap_or_else(|| json!({}));
        let id = url_safe_call_id("toolu_", &call.name, &input.to_string(), tools, part.thought_signature.as_deref());
        return Some(Piece::ToolUse { id, name: call.name.to_string(), input });
    }
    if let Some(text) = &part.text {
        return Some(match part.thought {
            Some(true) => Piece::Thinking {
                text: text.to_string(),
                signature: part.thought_signature.as_ref().map(|s| s.to_string()),
            },
            _ => Piece::Text(text.to_string()),
        });
    }
    part.inline_data.as_ref().map(|data| {
        let mime = data.mime_type.as_deref().unwrap_or("application/octet-stream");
        Piece::Text(format!("![image](data:{mime};base64,{})", &*data.data))
    })
}

/// A whole answer as a message; `raw` is the body `gemini` was read from.
pub fn message_response(gemini: &GenerateResponse, raw: &[u8], model: &str) -> Value {
    let candidate = gemini.ordered_candidates().into_iter().next().map(|(_, c)| c);
    let mut content: Vec<Value> = Vec::new();
    let mut tools = 0;
    for part in candidate.map(|c| c.parts()).unwrap_or_default() {
        match piece(part, tools) {
            Some(Piece::Text(t)) => match content.last_mut() {
                Some(last) if last["type"] == "text" => {
                    let joined = format!("{}{t}", last["text"].as_str().unwrap_or(""));
                    last["text"] = json!(joined);
                }
                _ => content.push(json!({"type": "text", "text": t})),
            },
            Some(Piece::Thinking { text, signature }) => match content.last_mut() {
                Some(last) if last["type"] == "thinking" => {
                    let joined = format!("{}{text}", last["thinking"].as_str().unwrap_or(""));
                    last["thinking"] = json!(joined);
                    if let Some(s) = signature {
                        last["signature"] = json!(s);
                    }
                }
                _ => content
                    .push(json!({"type": "thinking", "thinking": text, "signature": signature.unwrap_or_default()})),
            },
            Some(Piece::ToolUse { id, name, input }) => {
                tools += 1;
                content.push(json!({"type": "tool_use", "id": id, "name": name, "input": input}));
            }
            None => {}
        }
    }
    let finish = candidate.and_then(|c| c.finish_reason.as_deref());
    let stop = if candidate.is_none() && gemini.blocked() { "refusal" } else { stop_reason(finish, tools > 0) };
    json!({
        "id": message_id(gemini, raw),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop,
        "stop_sequence": null,
        "usage": usage(&gemini.usage_metadata.unwrap_or_default()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dialect::signature::signature_from_id;

    #[test]
    fn thoughts_text_and_calls_become_blocks() {
        let body = br#"{"candidates":[{"content":{"role":"model","parts":[
            {"text":"Let me ","thought":true},{"text":"think.","thought":true,"thoughtSignature":"U0lH"},
            {"text":"Checking "},{"text":"now."},
            {"functionCall":{"name":"get_weather","args":{"city":"Paris"}},"thoughtSignature":"Q2FsbC8x+w=="},
            {"functionCall":{"name":"get_time","args":{}}}]},"finishReason":"STOP"}],
            "usageMetadata":{"promptTokenCount":30,"candidatesTokenCount":8,"thoughtsTokenCount":5,"cachedContentTokenCount":10},
            "responseId":"abc123"}"#;
        let g: GenerateResponse = serde_json::from_slice(body).unwrap();
        let m = message_response(&g, body, "claude-sonnet-4-5");
        assert_eq!(m["id"], "msg_abc123");
        assert_eq!(m["model"], "claude-sonnet-4-5");
        let c = m["content"].as_array().unwrap();
        assert_eq!(c[0], json!({"type": "thinking", "thinking": "Let me think.", "signature": "U0lH"}));
        assert_eq!(c[1], json!({"type": "text", "text": "Checking now."}));
        assert_eq!(c[2]["type"], "tool_use");
        assert!(c[2]["id"].as_str().unwrap().starts_with("toolu_"));
        assert_eq!(signature_from_id(c[2]["id"].as_str().unwrap()).as_deref(), Some("Q2FsbC8x+w=="));
        assert_eq!(c[3]["input"], json!({}));
        assert_eq!(signature_from_id(c[3]["id"].as_str().unwrap()), None);
        assert_ne!(c[2]["id"], c[3]["id"]);
        assert_eq!(m["stop_reason"], "tool_use");
        assert_eq!(
            m["usage"],
            json!({"input_tokens": 20, "output_tokens": 13, "cache_read_input_tokens": 10, "cache_creation_input_tokens": 0})
        );
    }

    #[test]
    fn stop_reasons() {
        assert_eq!(stop_reason(Some("STOP"), false), "end_turn");
        assert_eq!(stop_reason(Some("MAX_TOKENS"), false), "max_tokens");
        assert_eq!(stop_reason(Some("SAFETY"), false), "refusal");
        assert_eq!(stop_reason(Some("STOP"), true), "tool_use");
        let blocked: GenerateResponse = serde_json::from_str(r#"{"promptFeedback":{"blockReason":"SAFETY"}}"#).unwrap();
        assert_eq!(message_response(&blocked, b"x", "m")["stop_reason"], "refusal");
    }
}
