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
        match &mut self.framing {
            Framing::Sse(p) => p.feed(chunk, &mut self.pending),
            Framing::Array(p) => p.feed(chunk, &mut self.pending),
        }
        for event in self.pending.drain(..) {
            if event.contains("usageMetadata")
                && let Some(u) = usage_of_body(event.as_bytes())
            {
                self.usage = Some(u);
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
}
