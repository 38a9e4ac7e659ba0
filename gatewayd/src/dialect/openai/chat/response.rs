//! PURE: a Gemini answer → an OpenAI chat completion (finish reasons, usage, tool calls with
//! their thought signatures, reasoning).

use std::hash::{Hash, Hasher};

use serde_json::{Value, json};

use crate::dialect::signature::tool_call_id;
use crate::dialect::wire::{Candidate, GenerateResponse, UsageMetadata};

pub fn finish_reason(gemini: &str) -> &'static str {
    match gemini {
        "MAX_TOKENS" => "length",
        "SAFETY" | "RECITATION" | "BLOCKLIST" | "PROHIBITED_CONTENT" | "SPII" | "IMAGE_SAFETY" | "LANGUAGE" => {
            "content_filter"
        }
        _ => "stop",
    }
}

pub fn usage(meta: &UsageMetadata) -> Value {
    let (prompt, candidates, thoughts) =
        (meta.prompt_token_count, meta.candidates_token_count, meta.thoughts_token_count);
    json!({
        "prompt_tokens": prompt,
        "completion_tokens": candidates + thoughts,
        "total_tokens": prompt + candidates + thoughts,
        "completion_tokens_details": {"reasoning_tokens": thoughts},
    })
}

/// What one candidate holds, in OpenAI's terms.
#[derive(Default)]
pub(super) struct Pieces {
    pub(super) text: String,
    pub(super) reasoning: String,
    pub(super) tool_calls: Vec<Value>,
}

pub(super) fn pieces(candidate: &Candidate, first_tool_index: usize) -> Pieces {
    let mut p = Pieces::default();
    for part in candidate.parts() {
        if let Some(call) = &part.function_call {
            let position = first_tool_index + p.tool_calls.len();
            let signature = part.thought_signature.as_deref();
            let args = call.args.clone().unwrap_or_else(|| json!({}));
            let arguments = args.to_string();
            let mut tc = json!({
                "id": tool_call_id(&call.name, &arguments, position, signature),
                "type": "function",
                "function": {"name": &*call.name, "arguments": arguments},
            });
            if let Some(sig) = signature {
                tc["extra_content"] = json!({"google": {"thought_signature": sig}});
            }
            p.tool_calls.push(tc);
        } else if let Some(text) = &part.text {
            if part.thought == Some(true) {
                p.reasoning.push_str(text);
            } else {
                p.text.push_str(text);
            }
        } else if let Some(data) = &part.inline_data {
            let mime = data.mime_type.as_deref().unwrap_or("application/octet-stream");
            p.text.push_str(&format!("![image](data:{mime};base64,{})", &*data.data));
        }
    }
    p
}

/// `chatcmpl-` and Gemini's response id, or a hash of the answer when it has none.
pub(super) fn completion_id(gemini: &GenerateResponse, raw: &[u8]) -> String {
    match gemini.response_id.as_deref() {
        Some(id) => format!("chatcmpl-{id}"),
        None => {
            let mut h = std::hash::DefaultHasher::new();
            raw.hash(&mut h);
            format!("chatcmpl-{:016x}", h.finish())
        }
    }
}

/// A whole answer as a chat completion; `raw` is the body `gemini` was read from.
pub fn chat_response(gemini: &GenerateResponse, raw: &[u8], model: &str, created: i64) -> Value {
    let mut choices = Vec::new();
    for (index, c) in gemini.ordered_candidates() {
        let p = pieces(c, 0);
        let finish = if !p.tool_calls.is_empty() {
            "tool_calls"
        } else {
            finish_reason(c.finish_reason.as_deref().unwrap_or("STOP"))
        };
        let mut message = json!({"role": "assistant", "content": if p.text.is_empty() && !p.tool_calls.is_empty() { Value::Null } else { json!(p.text) }});
        if !p.reasoning.is_empty() {
            message["reasoning_content"] = json!(p.reasoning);
        }
        if !p.tool_calls.is_empty() {
            message["tool_calls"] = Value::Array(p.tool_calls);
        }
        choices.push(json!({"index": index, "message": message, "finish_reason": finish, "logprobs": null}));
    }
    if choices.is_empty() {
        // A blocked prompt: no candidates, the reason in promptFeedback.
        choices.push(json!({"index": 0, "message": {"role": "assistant", "content": null}, "finish_reason": "content_filter", "logprobs": null}));
    }
    let mut out = json!({
        "id": completion_id(gemini, raw),
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": choices,
    });
    if let Some(meta) = &gemini.usage_metadata {
        out["usage"] = usage(meta);
    }
    out
}
