//! PURE core of the Messages stream: Gemini stream events → Anthropic's event sequence
//! (`message_start`, `ping`, `content_block_start`, `content_block_delta` with `text_delta`,
//! `thinking_delta`, `signature_delta` or `input_json_delta`, `content_block_stop`,
//! `message_delta`, `message_stop`), as events arrive; a failure after the first byte is an
//! `error` event.

use std::collections::VecDeque;

use bytes::Bytes;
use serde_json::{Value, json};

use super::response::{Piece, message_id, piece, stop_reason, usage};
use crate::dialect::wire::{GenerateResponse, StreamDecoder, StreamEvent, UsageMetadata};
use crate::proxy::Transform;
use crate::sse;
use crate::usage::Usage;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Open {
    Text,
    Thinking,
}

/// Translates Gemini stream events into Anthropic events.
pub struct EventTranslator {
    model: String,
    started: bool,
    /// The index the next block takes.
    next: usize,
    /// The text or thinking block still open (tool_use blocks open and close at once).
    open: Option<Open>,
    tools: usize,
    finish: Option<String>,
    usage: UsageMetadata,
}

fn event(name: &str, data: Value) -> Bytes {
    sse::named_event(name, &data.to_string())
}

impl EventTranslator {
    pub fn new(model: &str) -> Self {
        EventTranslator {
            model: model.to_string(),
            started: false,
            next: 0,
            open: None,
            tools: 0,
            finish: None,
            usage: UsageMetadata::default(),
        }
    }

    fn close(&mut self, out: &mut Vec<Bytes>) {
        if self.open.take().is_some() {
            out.push(event("content_block_stop", json!({"type": "content_block_stop", "index": self.next - 1})));
        }
    }

    fn start(&mut self, kind: Open, block: Value, out: &mut Vec<Bytes>) {
        self.close(out);
        out.push(event(
            "content_block_start",
            json!({"type": "content_block_start", "index": self.next, "content_block": block}),
        ));
        self.next += 1;
        self.open = Some(kind);
    }

    fn delta(&self, delta: Value) -> Bytes {
        event("content_block_delta", json!({"type": "content_block_delta", "index": self.next - 1, "delta": delta}))
    }

    /// One upstream event (`raw` its data) → the Anthropic events it makes.
    pub fn feed(&mut self, chunk: &GenerateResponse, raw: &str) -> Vec<Bytes> {
        let mut out = Vec::new();
        if let Some(meta) = chunk.usage_metadata {
            self.usage = meta;
        }
        if !self.started {
            self.started = true;
            let mut start_usage = usage(&self.usage);
            start_usage["output_tokens"] = json!(0);
            out.push(event(
                "message_start",
                json!({"type": "message_start", "message": {"id": message_id(chunk, raw.as_bytes()), "type": "message",
                    "role": "assistant", "model": self.model, "content": [], "stop_reason": null,
                    "stop_sequence": null, "usage": start_usage}}),
            ));
            out.push(event("ping", json!({"type": "ping"})));
        }
        if chunk.candidates.is_empty() && chunk.blocked() {
            self.finish = Some("SAFETY".into());
        }
        let Some((_, candidate)) = chunk.ordered_candidates().into_iter().next() else { return out };
        for part in candidate.parts() {
            match piece(part, self.tools) {
                Some(Piece::Text(t)) => {
                    if self.open != Some(Open::Text) {
                        self.start(Open::Text, json!({"type": "text", "text": ""}), &mut out);
                    }
                    out.push(self.delta(json!({"type": "text_delta", "text": t})));
                }
                Some(Piece::Thinking { text, signature }) => {
                    if self.open != Some(Open::Thinking) {
                        self.start(
                            Open::Thinking,
                            json!({"type": "thinking", "thinking": "", "signature": ""}),
                            &mut out,
                        );
                    }
                    if !text.is_empty() {
                        out.push(self.delta(json!({"type": "thinking_delta", "thinking": text})));
                    }
                    if let Some(s) = signature {
                        out.push(self.delta(json!({"type": "signature_delta", "signature": s})));
                    }
                }
                Some(Piece::ToolUse { id, name, input }) => {
                    self.close(&mut out);
                    self.tools += 1;
                    let block = json!({"type": "tool_use", "id": id, "name": name, "input": {}});
                    out.push(event(
                        "content_block_start",
                        json!({"type": "content_block_start", "index": self.next, "content_block": block}),
                    ));
                    self.next += 1;
                    out.push(self.delta(json!({"type": "input_json_delta", "partial_json": input.to_string()})));
                    out.push(event(
                        "content_block_stop",
                        json!({"type": "content_block_stop", "index": self.next - 1}),
                    ));
                }
                None => {}
            }
        }
        if let Some(f) = candidate.finish_reason.as_deref() {
            self.finish = Some(f.to_string());
        }
        out
    }

    /// After the upstream stream ended cleanly: close the open block, then the message.
    pub fn finish(&mut self) -> Vec<Bytes> {
        let mut out = Vec::new();
        if !self.started {
            // Nothing arrived that made an event: still a whole message, empty.
            out.extend(self.feed(&GenerateResponse::default(), ""));
        }
        self.close(&mut out);
        let stop = stop_reason(self.finish.as_deref(), self.tools > 0);
        out.push(event(
            "message_delta",
            json!({"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": null}, "usage": usage(&self.usage)}),
        ));
        out.push(event("message_stop", json!({"type": "message_stop"})));
        out
    }
}

/// Anthropic's `error` event.
pub fn error_event(kind: &str, message: &str) -> Bytes {
    event("error", json!({"type": "error", "error": {"type": kind, "message": message}}))
}

/// Gemini SSE in, Anthropic events out.
pub struct Translate {
    decoder: StreamDecoder,
    translator: EventTranslator,
    failed: bool,
}

impl Translate {
    pub fn new(model: &str) -> Self {
        Translate { decoder: StreamDecoder::default(), translator: EventTranslator::new(model), failed: false }
    }
}

impl Transform for Translate {
    fn data(&mut self, bytes: Bytes, out: &mut VecDeque<Bytes>) {
        let Translate { decoder, translator, failed } = self;
        decoder.feed(&bytes, |e| {
            if *failed {
                return;
            }
            match e {
                StreamEvent::Chunk(chunk, raw) => out.extend(translator.feed(&chunk, raw)),
                StreamEvent::Error(message) => {
                    let kind = if message.contains("overloaded") { "overloaded_error" } else { "api_error" };
                    out.push_back(error_event(kind, &message));
                    *failed = true;
                }
            }
        });
    }

    fn end(&mut self, out: &mut VecDeque<Bytes>) {
        if !self.failed {
            out.extend(self.translator.finish());
        }
    }

    fn fail(&mut self, message: &str) -> Option<Bytes> {
        Some(error_event("api_error", message))
    }

    fn usage(&self) -> Option<Usage> {
        self.decoder.usage()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(events: &[&str]) -> Vec<(String, Value)> {
        let mut t = Translate::new("claude-x");
        let mut out = VecDeque::new();
        for e in events {
            t.data(Bytes::from(format!("data: {e}\r\n\r\n")), &mut out);
        }
        t.end(&mut out);
        out.iter()
            .map(|b| {
                let s = String::from_utf8(b.to_vec()).unwrap();
                let name = s.lines().next().unwrap().strip_prefix("event: ").unwrap().to_string();
                let data = s.lines().nth(1).unwrap().strip_prefix("data: ").unwrap();
                (name, serde_json::from_str(data).unwrap())
            })
            .collect()
    }

    #[test]
    fn thinking_text_and_a_tool_call_make_the_full_sequence() {
        let seen = run(&[
            r#"{"candidates":[{"content":{"parts":[{"text":"Hmm","thought":true}]}}],"usageMetadata":{"promptTokenCount":9}}"#,
            r#"{"candidates":[{"content":{"parts":[{"text":"","thought":true,"thoughtSignature":"U0lH"},{"text":"Hel"}]}}]}"#,
            r#"{"candidates":[{"content":{"parts":[{"text":"lo"},{"functionCall":{"name":"f","args":{"a":1}},"thoughtSignature":"QQ=="}]},"finishReason":"STOP"}],"usageMetadata":{"promptTokenCount":9,"candidatesTokenCount":4}}"#,
        ]);
        let names: Vec<&str> = seen.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "message_start",
                "ping",
                "content_block_start",
                "content_block_delta",
                "content_block_delta",
                "content_block_stop",
                "content_block_start",
                "content_block_delta",
                "content_block_delta",
                "content_block_stop",
                "content_block_start",
                "content_block_delta",
                "content_block_stop",
                "message_delta",
                "message_stop"
            ]
        );
        assert_eq!(seen[0].1["message"]["usage"]["input_tokens"], 9);
        assert_eq!(seen[2].1["content_block"]["type"], "thinking");
        assert_eq!(seen[4].1["delta"], json!({"type": "signature_delta", "signature": "U0lH"}));
        assert_eq!(seen[7].1["delta"], json!({"type": "text_delta", "text": "Hel"}));
        assert_eq!(seen[10].1["index"], 2);
        assert_eq!(seen[10].1["content_block"]["name"], "f");
        let id = seen[10].1["content_block"]["id"].as_str().unwrap();
        assert_eq!(crate::dialect::signature::signature_from_id(id).as_deref(), Some("QQ=="));
        assert_eq!(seen[11].1["delta"], json!({"type": "input_json_delta", "partial_json": "{\"a\":1}"}));
        assert_eq!(seen[13].1["delta"]["stop_reason"], "tool_use");
        assert_eq!(seen[13].1["usage"]["output_tokens"], 4);
    }

    #[test]
    fn an_error_inside_the_stream_is_an_error_event() {
        let seen = run(&[
            r#"{"candidates":[{"content":{"parts":[{"text":"a"}]}}]}"#,
            r#"{"error":{"code":503,"message":"The model is overloaded."}}"#,
        ]);
        let last = seen.last().unwrap();
        assert_eq!(last.0, "error");
        assert_eq!(last.1["error"]["type"], "overloaded_error");
        assert!(!seen.iter().any(|(n, _)| n == "message_stop"));
        let mut t = Translate::new("m");
        assert!(String::from_utf8(t.fail("cut").unwrap().to_vec()).unwrap().starts_with("event: error"));
    }
}
