//! PURE: a Gemini answer → an OpenAI chat completion (finish reasons, usage, tool calls with
//! their thought signatures, reasoning).

use std::hash::{Hash, Hasher};

use serde_json::{Value, json};

use crate::dialect::signature::tool_call_id;

pub fn finish_reason(gemini: &str) -> &'static str {
    match gemini {
        "MAX_TOKENS" => "length",
        "SAFETY" | "RECITATION" | "BLOCKLIST" | "PROHIBITED_CONTENT" | "SPII" | "IMAGE_SAFETY" | "LANGUAGE" => {
            "content_filter"
        }
        _ => "stop",
    }
}

pub fn usage(meta: &Value) -> Value {
    let n = |k: &str| meta.get(k).and_then(Value::as_u64).unwrap_or(0);
    let (prompt, candidates, thoughts) = (n("promptTokenCount"), n("candidatesTokenCount"), n("thoughtsTokenCount"));
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

pub(super) fn pieces(candidate: &Value, first_tool_index: usize) -> Pieces {
    let mut p = Pieces::default();
    for part in candidate.pointer("/content/parts").and_then(Value::as_array).into_iter().flatten() {
        if let Some(call) = part.get("functionCall") {
            let position = first_tool_index + p.tool_calls.len();
            let signature = part.get("thoughtSignature").and_then(Value::as_str);
            let args = call.get("args").cloned().unwrap_or(json!({}));
            let mut tc = json!({
                "id": tool_call_id(call, position, signature),
                "type": "function",
                "function": {"name": call.get("name").cloned().unwrap_or(json!("")), "arguments": args.to_string()},
            });
            if let Some(sig) = signature {
                tc["extra_content"] = json!({"google": {"thought_signature": sig}});
            }
            p.tool_calls.push(tc);
        } else if let Some(text) = part.get("text").and_then(Value::as_str) {
            if part.get("thought").and_then(Value::as_bool) == Some(true) {
                p.reasoning.push_str(text);
            } else {
                p.text.push_str(text);
            }
        } else if let Some(data) = part.get("inlineData") {
            let mime = data.get("mimeType").and_then(Value::as_str).unwrap_or("application/octet-stream");
            let b64 = data.get("data").and_then(Value::as_str).unwrap_or("");
            p.text.push_str(&format!("![image](data:{mime};base64,{b64})"));
        }
    }
    p
}

pub(super) fn candidates(gemini: &Value) -> Vec<&Value> {
    let mut c: Vec<&Value> = gemini.get("candidates").and_then(Value::as_array).into_iter().flatten().collect();
    c.sort_by_key(|c| c.get("index").and_then(Value::as_u64).unwrap_or(0));
    c
}

pub(super) fn completion_id(gemini: &Value) -> String {
    match gemini.get("responseId").and_then(Value::as_str) {
        Some(id) => format!("chatcmpl-{id}"),
        None => {
            let mut h = std::hash::DefaultHasher::new();
            gemini.to_string().hash(&mut h);
            format!("chatcmpl-{:016x}", h.finish())
        }
    }
}

pub fn chat_response(gemini: &Value, model: &str, created: i64) -> Value {
    let mut choices = Vec::new();
    for (i, c) in candidates(gemini).into_iter().enumerate() {
        let p = pieces(c, 0);
        let index = c.get("index").and_then(Value::as_u64).unwrap_or(i as u64);
        let finish = if !p.tool_calls.is_empty() {
            "tool_calls"
        } else {
            finish_reason(c.get("finishReason").and_then(Value::as_str).unwrap_or("STOP"))
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
        "id": completion_id(gemini),
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": choices,
    });
    if let Some(meta) = gemini.get("usageMetadata") {
        out["usage"] = usage(meta);
    }
    out
}
