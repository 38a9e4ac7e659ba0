//! PURE: Gemini stream events → `chat.completion.chunk` events, one upstream event at a time:
//! `ChunkTranslator` maps events, `Translate` is the relay's transform around it.

use std::collections::{HashMap, HashSet, VecDeque};

use bytes::Bytes;

use serde::Serialize;
use serde_json::{Value, json};

use super::response::{completion_id, finish_reason, pieces, usage};
use crate::dialect::wire::{GenerateResponse, StreamDecoder, StreamEvent, UsageMetadata};
use crate::proxy::Transform;
use crate::sse;
use crate::usage::Usage;

/// One `chat.completion.chunk`, typed: serialized straight into the event's buffer, with no JSON
/// DOM built per chunk.
#[derive(Debug, Serialize)]
pub struct Chunk<'a> {
    id: &'a str,
    object: &'static str,
    created: i64,
    model: &'a str,
    choices: Vec<ChoiceDelta>,
    /// `null` on every chunk when the client asked for usage, the figures on the last one.
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<Option<Value>>,
}

#[derive(Debug, Serialize)]
struct ChoiceDelta {
    index: u64,
    delta: Delta,
    finish_reason: Option<&'static str>,
    logprobs: Option<()>,
}

#[derive(Debug, Default, Serialize)]
struct Delta {
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning_content: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_calls: Option<Vec<Value>>,
}

impl Delta {
    fn is_empty(&self) -> bool {
        self.role.is_none() && self.content.is_none() && self.reasoning_content.is_none() && self.tool_calls.is_none()
    }
}

impl Chunk<'_> {
    /// The chunk as an SSE event (`data: {…}\n\n`).
    pub fn event(&self) -> Bytes {
        let mut buf = Vec::with_capacity(256);
        buf.extend_from_slice(b"data: ");
        // Serializing plain structs of strings and numbers into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut buf, self);
        buf.extend_from_slice(b"\n\n");
        Bytes::from(buf)
    }
}

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

    fn chunk(&self, choices: Vec<ChoiceDelta>) -> Chunk<'_> {
        Chunk {
            id: self.id.as_deref().unwrap_or_default(),
            object: "chat.completion.chunk",
            created: self.created,
            model: &self.model,
            choices,
            usage: self.include_usage.then_some(None),
        }
    }

    /// One upstream event (`raw` is the event's data) → the chunks it makes, as SSE events.
    pub fn feed(&mut self, event: &GenerateResponse, raw: &str) -> Vec<Bytes> {
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
            let role = self.started.insert(0).then_some("assistant");
            let delta = Delta { role, ..Delta::default() };
            out.push(ChoiceDelta { index: 0, delta, finish_reason: Some("content_filter"), logprobs: None });
        }
        for (index, c) in cands {
            let first_tool = *self.tool_calls.get(&index).unwrap_or(&0);
            let p = pieces(c, first_tool);
            let mut delta = Delta { role: self.started.insert(index).then_some("assistant"), ..Delta::default() };
            if !p.text.is_empty() {
                delta.content = Some(p.text);
            }
            if !p.reasoning.is_empty() {
                delta.reasoning_content = Some(p.reasoning);
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
                delta.tool_calls = Some(calls);
            }
            let finish = c.finish_reason.as_deref().map(|r| {
                if self.tool_calls.get(&index).is_some_and(|n| *n > 0) { "tool_calls" } else { finish_reason(r) }
            });
            if finish.is_some() {
                self.finished.insert(index);
            }
            if !delta.is_empty() || finish.is_some() {
                out.push(ChoiceDelta { index, delta, finish_reason: finish, logprobs: None });
            }
        }
        // One chunk per choice: clients read `choices[0]`.
        out.into_iter().map(|c| self.chunk(vec![c]).event()).collect()
    }

    /// After the upstream stream ended cleanly: close any choice left open, then the usage chunk.
    pub fn finish(&mut self) -> Vec<Bytes> {
        let mut out = Vec::new();
        let mut open: Vec<u64> = self.started.difference(&self.finished).copied().collect();
        open.sort_unstable();
        for index in open {
            let finish = if self.tool_calls.get(&index).is_some_and(|n| *n > 0) { "tool_calls" } else { "stop" };
            self.finished.insert(index);
            let choice = ChoiceDelta { index, delta: Delta::default(), finish_reason: Some(finish), logprobs: None };
            out.push(self.chunk(vec![choice]).event());
        }
        if self.include_usage {
            let mut c = self.chunk(Vec::new());
            c.usage = Some(Some(usage(&self.usage.unwrap_or_default())));
            out.push(c.event());
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
                StreamEvent::Chunk(chunk, raw) => out.extend(translator.feed(&chunk, raw)),
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
        out.extend(self.translator.finish());
        out.push_back(sse::event("[DONE]"));
    }

    fn fail(&mut self, message: &str) -> Option<Bytes> {
        Some(error_event(message))
    }

    fn usage(&self) -> Option<Usage> {
        self.decoder.usage()
    }
}
