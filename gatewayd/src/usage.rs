//! Token usage read from Gemini answers (`usageMetadata`), from a whole body or from a stream as
//! it passes, without holding the stream.

use crate::dialect::wire::UsageMetadata;
use crate::sse::{ArraySplitter, SseParser};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub prompt: u64,
    /// Candidates plus thoughts: what the model produced.
    pub completion: u64,
}

/// Only the usage of an answer: serde skips everything else without building it.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct UsageOnly {
    #[serde(default)]
    usage_metadata: Option<UsageMetadata>,
}

pub fn usage_of_body(body: &[u8]) -> Option<Usage> {
    serde_json::from_slice::<UsageOnly>(body).ok()?.usage_metadata.map(|u| u.usage())
}

/// The usage of one stream event, read without parsing the rest of it: the parser starts at
/// `"usageMetadata":` and reads that one object. Gemini repeats the running totals in every event,
/// so parsing each event whole (its text included) was most of a native stream's cost.
pub fn usage_of_event(event: &[u8]) -> Option<Usage> {
    const KEY: &[u8] = b"\"usageMetadata\"";
    let at = event.windows(KEY.len()).rposition(|w| w == KEY)?;
    let rest = &event[at + KEY.len()..];
    let colon = rest.iter().position(|&b| b == b':')?;
    let mut values = serde_json::Deserializer::from_slice(&rest[colon + 1..]).into_iter::<UsageMetadata>();
    values.next()?.ok().map(|u| u.usage())
}

enum Framing {
    Sse(SseParser),
    Array(ArraySplitter),
}

/// Watches a Gemini stream chunk by chunk and keeps the latest usage seen (Gemini repeats the
/// running totals; the last event holds the final ones).
pub struct StreamMeter {
    framing: Framing,
    pub usage: Option<Usage>,
    pending: Vec<String>,
}

impl StreamMeter {
    pub fn new(sse: bool) -> Self {
        let framing = if sse { Framing::Sse(SseParser::default()) } else { Framing::Array(ArraySplitter::default()) };
        StreamMeter { framing, usage: None, pending: Vec::new() }
    }

    pub fn feed(&mut self, chunk: &[u8]) {
        let usage = &mut self.usage;
        match &mut self.framing {
            Framing::Sse(p) => p.feed_each(chunk, |event| {
                if let Some(u) = usage_of_event(event) {
                    *usage = Some(u);
                }
            }),
            Framing::Array(p) => {
                p.feed(chunk, &mut self.pending);
                for event in self.pending.drain(..) {
                    if let Some(u) = usage_of_event(event.as_bytes()) {
                        *usage = Some(u);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meters_both_framings() {
        let mut m = StreamMeter::new(true);
        m.feed(b"data: {\"candidates\":[],\"usageMetadata\":{\"promptTokenCount\":3,\"candidatesTokenCount\":1}}\r\n\r\nda");
        m.feed(b"ta: {\"usageMetadata\":{\"promptTokenCount\":3,\"candidatesTokenCount\":5,\"thoughtsTokenCount\":2}}\r\n\r\n");
        assert_eq!(m.usage, Some(Usage { prompt: 3, completion: 7 }));
        let mut m = StreamMeter::new(false);
        m.feed(b"[{\"usageMetadata\":{\"promptTokenCount\":4,\"candidatesTokenCount\":9}}");
        m.feed(b"]");
        assert_eq!(m.usage, Some(Usage { prompt: 4, completion: 9 }));
    }

    #[test]
    fn usage_is_read_from_its_own_object_only() {
        let event = br#"{"candidates":[{"content":{"parts":[{"text":"say "usageMetadata": {} to me"}]}}],"usageMetadata": {"promptTokenCount":2,"candidatesTokenCount":3,"thoughtsTokenCount":1},"modelVersion":"x"}"#;
        assert_eq!(usage_of_event(event), Some(Usage { prompt: 2, completion: 4 }));
        assert_eq!(usage_of_event(br#"{"candidates":[]}"#), None);
        assert_eq!(usage_of_event(br#"{"usageMetadata": "broken"}"#), None);
    }
}
