//! PURE: incremental framing of Gemini's streams, safe across any chunk boundary: server-sent
//! events (`alt=sse`, lines ending in `\r\n`, `\n` or `\r`) and the JSON-array form (one array whose
//! elements arrive over time). Also writes SSE events, plain and named (`event:` lines, as the
//! Anthropic dialect needs). Hand-written rather than an eventsource crate: it must be safe at every
//! split (tested at every offset), bounded against hostile streams, and the hot path needs control
//! over its copies.

use bytes::Bytes;

/// An event larger than this is skipped by the parser (the bytes still flow to the client; only
/// our own look at them stops), so a hostile stream cannot grow our memory.
const MAX_EVENT: usize = 64 << 20;

#[derive(Debug, Default)]
pub struct SseParser {
    line: Vec<u8>,
    data: Vec<u8>,
    has_data: bool,
    skip_lf: bool,
    oversized: bool,
}

impl SseParser {
    /// Feeds a chunk; pushes the `data` of every event it completes (tests read it this way).
    #[cfg(test)]
    pub fn feed(&mut self, chunk: &[u8], out: &mut Vec<String>) {
        self.feed_each(chunk, |data| out.push(String::from_utf8_lossy(data).into_owned()));
    }

    /// Feeds a chunk; hands the `data` of every event it completes to `on_event`, borrowed (no
    /// copy per event). Lines are found with slice searches, not byte by byte.
    pub fn feed_each(&mut self, mut chunk: &[u8], mut on_event: impl FnMut(&[u8])) {
        while !chunk.is_empty() {
            if std::mem::take(&mut self.skip_lf) && chunk[0] == b'\n' {
                chunk = &chunk[1..];
                continue;
            }
            match chunk.iter().position(|&b| b == b'\n' || b == b'\r') {
                Some(i) => {
                    self.push_line(&chunk[..i]);
                    self.skip_lf = chunk[i] == b'\r';
                    self.end_line(&mut on_event);
                    chunk = &chunk[i + 1..];
                }
                None => {
                    self.push_line(chunk);
                    break;
                }
            }
        }
    }

    fn push_line(&mut self, bytes: &[u8]) {
        let room = MAX_EVENT.saturating_sub(self.line.len() + self.data.len());
        if bytes.len() > room {
            self.line.extend_from_slice(&bytes[..room]);
            self.oversized = true;
        } else {
            self.line.extend_from_slice(bytes);
        }
    }

    fn end_line(&mut self, on_event: &mut impl FnMut(&[u8])) {
        if self.line.is_empty() {
            if self.has_data && !self.oversized {
                if self.data.last() == Some(&b'\n') {
                    self.data.pop();
                }
                on_event(&self.data);
            }
            self.data.clear();
            self.has_data = false;
            self.oversized = false;
            return;
        }
        if let Some(rest) = self.line.strip_prefix(b"data:") {
            let rest = rest.strip_prefix(b" ").unwrap_or(rest);
            self.data.extend_from_slice(rest);
            self.data.push(b'\n');
            self.has_data = true;
        }
        self.line.clear();
    }
}

/// Splits a streamed JSON array (`[{…},\r\n{…}]`) into its elements as they complete.
#[derive(Debug, Default)]
pub struct ArraySplitter {
    depth: usize,
    in_string: bool,
    escaped: bool,
    element: Vec<u8>,
    oversized: bool,
}

impl ArraySplitter {
    pub fn feed(&mut self, chunk: &[u8], out: &mut Vec<String>) {
        for &b in chunk {
            let collecting = self.depth >= 2 || (self.depth == 1 && matches!(b, b'{' | b'['));
            if self.in_string {
                if self.escaped {
                    self.escaped = false;
                } else if b == b'\\' {
                    self.escaped = true;
                } else if b == b'"' {
                    self.in_string = false;
                }
            } else {
                match b {
                    b'"' => self.in_string = true,
                    b'{' | b'[' => self.depth += 1,
                    b'}' | b']' => self.depth = self.depth.saturating_sub(1),
                    _ => {}
                }
            }
            if collecting {
                if self.element.len() < MAX_EVENT {
                    self.element.push(b);
                } else {
                    self.oversized = true;
                }
                if self.depth == 1 && !self.in_string {
                    if !self.oversized {
                        out.push(String::from_utf8_lossy(&self.element).into_owned());
                    }
                    self.element.clear();
                    self.oversized = false;
                }
            }
        }
    }
}

/// One SSE event with the given data (one line), `\n\n`-terminated as OpenAI clients expect.
pub fn event(data: &str) -> Bytes {
    let mut s = String::with_capacity(data.len() + 8);
    s.push_str("data: ");
    s.push_str(data);
    s.push_str("\n\n");
    Bytes::from(s)
}

/// One named SSE event: `event: NAME`, then the data (one line).
pub fn named_event(name: &str, data: &str) -> Bytes {
    let mut s = String::with_capacity(name.len() + data.len() + 16);
    s.push_str("event: ");
    s.push_str(name);
    s.push_str("\ndata: ");
    s.push_str(data);
    s.push_str("\n\n");
    Bytes::from(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_plain_and_named_events() {
        assert_eq!(&event("{}")[..], b"data: {}\n\n");
        assert_eq!(&named_event("message_start", "{\"a\":1}")[..], b"event: message_start\ndata: {\"a\":1}\n\n");
        let mut p = SseParser::default();
        let mut out = Vec::new();
        p.feed(&named_event("ping", "{}"), &mut out);
        assert_eq!(out, vec!["{}".to_string()], "our own parser reads a named event's data");
    }

    fn sse_all(chunks: &[&[u8]]) -> Vec<String> {
        let mut p = SseParser::default();
        let mut out = Vec::new();
        for c in chunks {
            p.feed(c, &mut out);
        }
        out
    }

    #[test]
    fn sse_events_survive_any_split() {
        let stream = b"data: {\"a\":1}\r\n\r\n: comment\r\ndata: {\"b\":\r\ndata: 2}\r\n\r\ndata:x\n\ndata: y\r\r";
        let want = vec!["{\"a\":1}".to_string(), "{\"b\":\n2}".to_string(), "x".into(), "y".into()];
        assert_eq!(sse_all(&[stream]), want);
        for cut in 0..stream.len() {
            assert_eq!(sse_all(&[&stream[..cut], &stream[cut..]]), want, "cut at {cut}");
        }
        let bytes: Vec<&[u8]> = stream.chunks(1).collect();
        assert_eq!(sse_all(&bytes), want);
    }

    #[test]
    fn array_elements_survive_any_split() {
        let stream = br#"[{"a":"}{\"]","n":[1,{"x":2}]}
,
{"b":2}
]"#;
        let want = vec![r#"{"a":"}{\"]","n":[1,{"x":2}]}"#.to_string(), r#"{"b":2}"#.to_string()];
        for cut in 0..stream.len() {
            let mut s = ArraySplitter::default();
            let mut out = Vec::new();
            s.feed(&stream[..cut], &mut out);
            s.feed(&stream[cut..], &mut out);
            assert_eq!(out, want, "cut at {cut}");
        }
    }

    #[test]
    fn writes_events() {
        assert_eq!(event("[DONE]"), Bytes::from_static(b"data: [DONE]\n\n"));
    }
}
