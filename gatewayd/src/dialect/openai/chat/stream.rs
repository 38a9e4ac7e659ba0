//! PURE: Gemini stream events → `chat.completion.chunk` events, one upstream event at a time:
//! `ChunkTranslator` maps events, `Translate` is the relay's transform around it.

use std::collections::{HashMap, HashSet, VecDeque};

use bytes::Bytes;

use serde_json::{Map, Value, json};

use super::response::{completion_id, finish_reason, pieces, usage};
use crate::dialect::wire::{GenerateResponse, StreamDecoder, StreamEvent, UsageMetadata};
use crate::proxy::Transform;
use crate::sse;
use crate::usage::Usage;

/// Translates Gemini stream events into `chat.completion.chunk`s as they arrive.
pub struct ChunkTranslator {
    id: Option<String>,
    model: String,
    created: i64,
    include_usage: bool,
    started: HashSet<u64>,
    tool_calls: HashMap<u64, usize>,
    finished: HashSet<u64>,
    usage: Option<UsageMetadata>,
}

impl ChunkTranslator {
    pub fn new(model: &str, created: i64, include_usage: bool) -> Self {
        ChunkTranslator {
            id: None,
            model: model.to_string(),
            created,
            include_usage,
            started: HashSet::new(),
            tool_calls: HashMap::new(),
            finished: HashSet::new(),
            usage: None,
        }
    }

    fn chunk(&self, choices: Vec<Value>) -> Value {
        let mut c = json!({
            "id": self.id.clone().unwrap_or_default(),
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": choices,
        });
        if self.include_usage {
            c["usage"] = Value::Null;
        }
        c
    }

    /// One upstream event (`raw` is the event's data) → the chunks it makes.
    pub fn feed(&mut self, event: &GenerateResponse, raw: &str) -> Vec<Value> {
        if self.id.is_none() {
            self.id = Some(completion_id(event, raw.as_bytes()));
        }
        if let Some(meta) = event.usage_metadata {
            self.usage = Some(meta);
        }
        let mut out = Vec::new();
        let cands = event.ordered_candidates();
        if cands.is_empty() && event.blocked() && !self.finished.contains(&0) {
            self.finished.insert(0);
            let delta = if self.started.insert(0) { json!({"role": "assistant"}) } else { json!({}) };
            out.push(
                self.chunk(vec![
                    json!({"index": 0, "delta": delta, "finish_reason": "content_filter", "logprobs": null}),
                ]),
            );
        }
        for (index, c) in cands {
            let first_tool = *self.tool_calls.get(&index).unwrap_or(&0);
            let p = pieces(c, first_tool);
            let mut delta = Map::new();
            if self.started.insert(index) {
                delta.insert("role".into(), json!("assistant"));
            }
            if !p.text.is_empty() {
                delta.insert("content".into(), json!(p.text));
            }
            if !p.reasoning.is_empty() {
                delta.insert("reasoning_content".into(), json!(p.reasoning));
            }
            if !p.tool_calls.is_empty() {
                let calls: Vec<Value> = p
                    .tool_calls
                    .into_iter()
                    .enumerate()
                    .map(|(k, mut tc)| {
                        tc["index"] = json!(first_tool + k);
                        tc
                    })
                    .collect();
                self.tool_calls.insert(index, first_tool + calls.len());
                delta.insert("tool_calls".into(), Value::Array(calls));
            }
            let finish = c.finish_reason.as_deref().map(|r| {
                if self.tool_calls.get(&index).is_some_and(|n| *n > 0) { "tool_calls" } else { finish_reason(r) }
            });
            if finish.is_some() {
                self.finished.insert(index);
            }
            if !delta.is_empty() || finish.is_some() {
                out.push(
                    self.chunk(vec![
                        json!({"index": index, "delta": delta, "finish_reason": finish, "logprobs": null}),
                    ]),
                );
            }
        }
        out
    }

    /// After the upstream stream ended cleanly: close any choice left open, then the usage chunk.
    pub fn finish(&mut self) -> Vec<Value> {
        let mut out = Vec::new();
        let mut open: Vec<u64> = self.started.difference(&self.finished).copied().collect();
        open.sort_unstable();
        for index in open {
            let finish = if self.tool_calls.get(&index).is_some_and(|n| *n > 0) { "tool_calls" } else { "stop" };
            self.finished.insert(index);
            out.push(self.chunk(vec![json!({"index": index, "delta": {}, "finish_reason": finish, "logprobs": null})]));
        }
        if self.include_usage {
            let mut c = self.chunk(Vec::new());
            c["usage"] = usage(&self.usage.unwrap_or_default());
            out.push(c);
        }
        out
    }
}

/// Gemini SSE events in, `chat.completion.chunk` events out, one upstream event at a time.
pub struct Translate {
    decoder: StreamDecoder,
    translator: ChunkTranslator,
    failed: bool,
}

impl Translate {
    pub fn new(translator: ChunkTranslator) -> Self {
        Translate { decoder: StreamDecoder::default(), translator, failed: false }
    }
}

fn error_event(message: &str) -> Bytes {
    sse::event(&json!({"error": {"message": message, "type": "server_error", "param": null, "code": null}}).to_string())
}

impl Transform for Translate {
    fn data(&mut self, bytes: Bytes, out: &mut VecDeque<Bytes>) {
        let Translate { decoder, translator, failed } = self;
        decoder.feed(&bytes, |event| {
            if *failed {
                return;
            }
            match event {
                StreamEvent::Chunk(chunk, raw) => {
                    for c in translator.feed(&chunk, raw) {
                        out.push_back(sse::event(&c.to_string()));
                    }
                }
                // Google reports a failure inside the stream: pass it on as OpenAI's error event.
                StreamEvent::Error(message) => {
                    out.push_back(error_event(&message));
                    *failed = true;
                }
            }
        });
    }

    fn end(&mut self, out: &mut VecDeque<Bytes>) {
        if self.failed {
            return;
        }
        for chunk in self.translator.finish() {
            out.push_back(sse::event(&chunk.to_string()));
        }
        out.push_back(sse::event("[DONE]"));
    }

    fn fail(&mut self, message: &str) -> Option<Bytes> {
        Some(error_event(message))
    }

    fn usage(&self) -> Option<Usage> {
        self.decoder.usage()
    }
}
