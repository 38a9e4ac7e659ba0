//! PURE: one builder for a Responses API answer, fed Gemini's chunks as they come: it makes the
//! stream's events (with increasing `sequence_number`) and, at the end, the whole response. The
//! non-stream path feeds it the whole answer at once and keeps only the response, so the two
//! paths cannot disagree (on thought signatures, call ids or anything else).

use bytes::Bytes;
use serde_json::{Value, json};

use crate::dialect::signature::url_safe_call_id;
use crate::dialect::wire::{GenerateResponse, UsageMetadata};
use crate::sse;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Reasoning,
    Message,
}

struct Open {
    kind: Kind,
    id: String,
    text: String,
    signature: Option<String>,
}

/// What the response echoes of its request, and how it is made.
pub struct Setup {
    pub id: String,
    pub created: i64,
    /// As the client named it.
    pub model: String,
    /// The request's fields a response repeats (`instructions`, `tools`, `tool_choice`, ...).
    pub echo: serde_json::Map<String, Value>,
    /// `include: ["reasoning.encrypted_content"]`.
    pub encrypted_reasoning: bool,
    /// The namespace of functions declared inside `namespace` tools.
    pub namespaces: std::collections::HashMap<String, String>,
}

pub struct Builder {
    setup: Setup,
    started: bool,
    seq: u64,
    output: Vec<Value>,
    open: Option<Open>,
    calls: usize,
    finish: Option<String>,
    blocked: bool,
    usage: UsageMetadata,
}

/// The request fields a response repeats, with their defaults.
pub fn echo_of(req: &Value) -> serde_json::Map<String, Value> {
    let mut echo = serde_json::Map::new();
    for (k, default) in [
        ("instructions", Value::Null),
        ("max_output_tokens", Value::Null),
        ("previous_response_id", Value::Null),
        ("temperature", json!(1.0)),
        ("top_p", json!(1.0)),
        ("tool_choice", json!("auto")),
        ("tools", json!([])),
        ("parallel_tool_calls", json!(true)),
        ("text", json!({"format": {"type": "text"}})),
        ("reasoning", json!({"effort": null, "summary": null})),
        ("store", json!(true)),
        ("metadata", json!({})),
        ("truncation", json!("disabled")),
    ] {
        echo.insert(k.into(), req.get(k).filter(|v| !v.is_null()).cloned().unwrap_or(default));
    }
    echo
}

/// Gemini's counts as the Responses API's.
pub fn usage(meta: &UsageMetadata) -> Value {
    let output = meta.candidates_token_count + meta.thoughts_token_count;
    json!({
        "input_tokens": meta.prompt_token_count,
        "input_tokens_details": {"cached_tokens": meta.cached_content_token_count},
        "output_tokens": output,
        "output_tokens_details": {"reasoning_tokens": meta.thoughts_token_count},
        "total_tokens": meta.prompt_token_count + output,
    })
}

impl Builder {
    pub fn new(setup: Setup) -> Self {
        Builder {
            setup,
            started: false,
            seq: 0,
            output: Vec::new(),
            open: None,
            calls: 0,
            finish: None,
            blocked: false,
            usage: UsageMetadata::default(),
        }
    }

    fn event(&mut self, kind: &str, mut data: Value, out: &mut Vec<Bytes>) {
        data["type"] = json!(kind);
        data["sequence_number"] = json!(self.seq);
        self.seq += 1;
        out.push(sse::named_event(kind, &data.to_string()));
    }

    /// The response as it stands, with `status`.
    pub fn snapshot(&self, status: &str) -> Value {
        let mut r = json!({
            "id": self.setup.id,
            "object": "response",
            "created_at": self.setup.created,
            "status": status,
            "error": null,
            "incomplete_details": null,
            "model": self.setup.model,
            "output": self.output,
            "usage": null,
        });
        for (k, v) in &self.setup.echo {
            r[k] = v.clone();
        }
        r
    }

    fn item_id(&self, prefix: &str) -> String {
        let base = self.setup.id.strip_prefix("resp_").unwrap_or(&self.setup.id);
        format!("{prefix}_{base}_{}", self.output.len())
    }

    fn open(&mut self, kind: Kind, out: &mut Vec<Bytes>) {
        if self.open.as_ref().is_some_and(|o| o.kind == kind) {
            return;
        }
        self.close(out);
        let index = self.output.len();
        let (id, item) = match kind {
            Kind::Reasoning => {
                let id = self.item_id("rs");
                (id.clone(), json!({"id": id, "type": "reasoning", "summary": []}))
            }
            Kind::Message => {
                let id = self.item_id("msg");
                (
                    id.clone(),
                    json!({"id": id, "type": "message", "status": "in_progress", "role": "assistant", "content": []}),
                )
            }
        };
        self.event("response.output_item.added", json!({"output_index": index, "item": item}), out);
        match kind {
            Kind::Reasoning => self.event(
                "response.reasoning_summary_part.added",
                json!({"item_id": id, "output_index": index, "summary_index": 0, "part": {"type": "summary_text", "text": ""}}),
                out,
            ),
            Kind::Message => self.event(
                "response.content_part.added",
                json!({"item_id": id, "output_index": index, "content_index": 0,
                       "part": {"type": "output_text", "text": "", "annotations": []}}),
                out,
            ),
        }
        self.open = Some(Open { kind, id, text: String::new(), signature: None });
    }

    fn close(&mut self, out: &mut Vec<Bytes>) {
        let Some(open) = self.open.take() else { return };
        let index = self.output.len();
        let (id, text) = (open.id, open.text);
        let item = match open.kind {
            Kind::Reasoning => {
                self.event(
                    "response.reasoning_summary_text.done",
                    json!({"item_id": id, "output_index": index, "summary_index": 0, "text": text}),
                    out,
                );
                let part = json!({"type": "summary_text", "text": text});
                self.event(
                    "response.reasoning_summary_part.done",
                    json!({"item_id": id, "output_index": index, "summary_index": 0, "part": part}),
                    out,
                );
                let mut item = json!({"id": id, "type": "reasoning", "summary": [part]});
                if self.setup.encrypted_reasoning {
                    item["encrypted_content"] = json!(open.signature);
                }
                item
            }
            Kind::Message => {
                self.event(
                    "response.output_text.done",
                    json!({"item_id": id, "output_index": index, "content_index": 0, "text": text, "logprobs": []}),
                    out,
                );
                let part = json!({"type": "output_text", "text": text, "annotations": []});
                self.event(
                    "response.content_part.done",
                    json!({"item_id": id, "output_index": index, "content_index": 0, "part": part}),
                    out,
                );
                json!({"id": id, "type": "message", "status": "completed", "role": "assistant", "content": [part]})
            }
        };
        self.event("response.output_item.done", json!({"output_index": index, "item": item}), out);
        self.output.push(item);
    }

    /// One Gemini chunk → the events it makes.
    pub fn feed(&mut self, chunk: &GenerateResponse) -> Vec<Bytes> {
        let mut out = Vec::new();
        if let Some(meta) = chunk.usage_metadata {
            self.usage = meta;
        }
        if !self.started {
            self.started = true;
            let r = self.snapshot("in_progress");
            self.event("response.created", json!({"response": r}), &mut out);
            self.event("response.in_progress", json!({"response": r}), &mut out);
        }
        if chunk.candidates.is_empty() && chunk.blocked() {
            self.blocked = true;
        }
        let Some((_, candidate)) = chunk.ordered_candidates().into_iter().next() else { return out };
        for part in candidate.parts() {
            if let Some(call) = &part.function_call {
                self.close(&mut out);
                let args = call.args.clone().unwrap_or_else(|| json!({})).to_string();
                let call_id =
                    url_safe_call_id("call_", &call.name, &args, self.calls, part.thought_signature.as_deref());
                self.calls += 1;
                let (index, id) = (self.output.len(), self.item_id("fc"));
                let mut item = json!({"id": id, "type": "function_call", "status": "in_progress", "call_id": call_id,
                                      "name": &*call.name, "arguments": ""});
                if let Some(ns) = self.setup.namespaces.get(&*call.name) {
                    item["namespace"] = json!(ns);
                }
                self.event("response.output_item.added", json!({"output_index": index, "item": item}), &mut out);
                self.event(
                    "response.function_call_arguments.delta",
                    json!({"item_id": id, "output_index": index, "delta": args}),
                    &mut out,
                );
                self.event(
                    "response.function_call_arguments.done",
                    json!({"item_id": id, "output_index": index, "arguments": args}),
                    &mut out,
                );
                item["arguments"] = json!(args);
                item["status"] = json!("completed");
                self.event("response.output_item.done", json!({"output_index": index, "item": item}), &mut out);
                self.output.push(item);
                continue;
            }
            let Some(text) = part.text.as_deref() else { continue };
            let kind = if part.thought == Some(true) { Kind::Reasoning } else { Kind::Message };
            self.open(kind, &mut out);
            let index = self.output.len();
            let Some(open) = self.open.as_mut() else { continue };
            if let Some(sig) = &part.thought_signature {
                open.signature = Some(sig.to_string());
            }
            if text.is_empty() {
                continue;
            }
            open.text.push_str(text);
            let id = open.id.clone();
            match kind {
                Kind::Reasoning => self.event(
                    "response.reasoning_summary_text.delta",
                    json!({"item_id": id, "output_index": index, "summary_index": 0, "delta": text}),
                    &mut out,
                ),
                Kind::Message => self.event(
                    "response.output_text.delta",
                    json!({"item_id": id, "output_index": index, "content_index": 0, "delta": text, "logprobs": []}),
                    &mut out,
                ),
            }
        }
        if let Some(f) = candidate.finish_reason.as_deref() {
            self.finish = Some(f.to_string());
        }
        out
    }

    /// After Gemini finished: the last events and the whole response.
    pub fn finish(&mut self) -> (Vec<Bytes>, Value) {
        let mut out = Vec::new();
        if !self.started {
            out.extend(self.feed(&GenerateResponse::default()));
        }
        self.close(&mut out);
        let reason = match self.finish.as_deref() {
            _ if self.blocked => Some("content_filter"),
            Some("MAX_TOKENS") => Some("max_output_tokens"),
            Some("SAFETY" | "RECITATION" | "BLOCKLIST" | "PROHIBITED_CONTENT" | "SPII") => Some("content_filter"),
            _ => None,
        };
        let mut r = self.snapshot(if reason.is_some() { "incomplete" } else { "completed" });
        if let Some(reason) = reason {
            r["incomplete_details"] = json!({"reason": reason});
        }
        r["usage"] = usage(&self.usage);
        let kind = if reason.is_some() { "response.incomplete" } else { "response.completed" };
        self.event(kind, json!({"response": r}), &mut out);
        (out, r)
    }

    /// A failure after the stream began: `response.failed`.
    pub fn failed(&mut self, message: &str) -> Bytes {
        let mut r = self.snapshot("failed");
        r["error"] = json!({"code": "server_error", "message": message});
        let mut out = Vec::new();
        self.event("response.failed", json!({"response": r}), &mut out);
        out.pop().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dialect::signature::signature_from_id;

    fn setup() -> Setup {
        Setup {
            id: "resp_abc".into(),
            created: 7,
            model: "gpt-5-codex".into(),
            echo: echo_of(&json!({"tools": [{"type": "function", "name": "shell"}]})),
            encrypted_reasoning: true,
            namespaces: Default::default(),
        }
    }

    fn names(events: &[Bytes]) -> Vec<String> {
        events
            .iter()
            .map(|e| String::from_utf8_lossy(e).lines().next().unwrap()["event: ".len()..].to_string())
            .collect()
    }

    #[test]
    fn stream_and_whole_answer_agree_event_by_event() {
        let chunks = [
            r#"{"candidates":[{"content":{"parts":[{"text":"Plan","thought":true,"thoughtSignature":"U0lH"}]}}]}"#,
            r#"{"candidates":[{"content":{"parts":[{"text":"Running it."}]}}]}"#,
            r#"{"candidates":[{"content":{"parts":[{"functionCall":{"name":"shell","args":{"cmd":"ls"}},"thoughtSignature":"Q0FMTA=="}]},"finishReason":"STOP"}],
               "usageMetadata":{"promptTokenCount":10,"candidatesTokenCount":4,"thoughtsTokenCount":2,"cachedContentTokenCount":3}}"#,
        ];
        let mut b = Builder::new(setup());
        let mut events = Vec::new();
        for c in chunks {
            events.extend(b.feed(&serde_json::from_str(c).unwrap()));
        }
        let (last, whole) = b.finish();
        events.extend(last);
        assert_eq!(
            names(&events),
            [
                "response.created",
                "response.in_progress",
                "response.output_item.added",
                "response.reasoning_summary_part.added",
                "response.reasoning_summary_text.delta",
                "response.reasoning_summary_text.done",
                "response.reasoning_summary_part.done",
                "response.output_item.done",
                "response.output_item.added",
                "response.content_part.added",
                "response.output_text.delta",
                "response.output_text.done",
                "response.content_part.done",
                "response.output_item.done",
                "response.output_item.added",
                "response.function_call_arguments.delta",
                "response.function_call_arguments.done",
                "response.output_item.done",
                "response.completed"
            ]
        );
        let seqs: Vec<u64> = events
            .iter()
            .map(|e| {
                let s = String::from_utf8_lossy(e).to_string();
                let data: Value =
                    serde_json::from_str(s.lines().nth(1).unwrap().strip_prefix("data: ").unwrap()).unwrap();
                data["sequence_number"].as_u64().unwrap()
            })
            .collect();
        assert_eq!(seqs, (0..events.len() as u64).collect::<Vec<_>>());
        assert_eq!(whole["status"], "completed");
        let out = whole["output"].as_array().unwrap();
        assert_eq!(
            out[0],
            json!({"id": "rs_abc_0", "type": "reasoning", "summary": [{"type": "summary_text", "text": "Plan"}], "encrypted_content": "U0lH"})
        );
        assert_eq!(out[1]["content"][0], json!({"type": "output_text", "text": "Running it.", "annotations": []}));
        assert_eq!(out[2]["arguments"], "{\"cmd\":\"ls\"}");
        assert_eq!(signature_from_id(out[2]["call_id"].as_str().unwrap()).as_deref(), Some("Q0FMTA=="));
        assert_eq!(whole["usage"]["output_tokens_details"]["reasoning_tokens"], 2);
        assert_eq!(whole["usage"]["input_tokens_details"]["cached_tokens"], 3);
        assert_eq!(whole["tools"][0]["name"], "shell");
        // The same answer whole: the same response.
        let all = r#"{"candidates":[{"content":{"parts":[{"text":"Plan","thought":true,"thoughtSignature":"U0lH"},{"text":"Running it."},
            {"functionCall":{"name":"shell","args":{"cmd":"ls"}},"thoughtSignature":"Q0FMTA=="}]},"finishReason":"STOP"}],
            "usageMetadata":{"promptTokenCount":10,"candidatesTokenCount":4,"thoughtsTokenCount":2,"cachedContentTokenCount":3}}"#;
        let mut b = Builder::new(setup());
        b.feed(&serde_json::from_str(all).unwrap());
        assert_eq!(b.finish().1, whole);
    }

    #[test]
    fn a_cut_answer_is_incomplete_and_a_failure_is_failed() {
        let mut b = Builder::new(setup());
        b.feed(
            &serde_json::from_str(
                r#"{"candidates":[{"content":{"parts":[{"text":"abc"}]},"finishReason":"MAX_TOKENS"}]}"#,
            )
            .unwrap(),
        );
        let (events, r) = b.finish();
        assert_eq!(
            (r["status"].as_str(), r["incomplete_details"]["reason"].as_str()),
            (Some("incomplete"), Some("max_output_tokens"))
        );
        assert_eq!(names(&events).last().unwrap(), "response.incomplete");
        let failed = String::from_utf8(b.failed("boom").to_vec()).unwrap();
        assert!(failed.starts_with("event: response.failed") && failed.contains("boom"));
    }
}
