//! The log records: one per client request (with its trail of attempts) and one per failed
//! attempt. Below both the logbook that sends them and the store that keeps them.

use chrono::{DateTime, Utc};

#[derive(Debug, Clone, PartialEq)]
pub struct AttemptRecord {
    pub ts: DateTime<Utc>,
    pub key_id: i64,
    /// Upstream HTTP status; `None` when no answer came (timeout, reset).
    pub status: Option<u16>,
    pub ok: bool,
    pub latency_ms: u64,
    /// What the trail shows after the status: `rpm`, `invalid`, `timeout`, `empty`.
    pub word: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RequestRecord {
    pub ts: DateTime<Utc>,
    pub route: String,
    pub model: Option<String>,
    /// The key of the last attempt.
    pub key_id: Option<i64>,
    pub status: u16,
    pub latency_ms: u64,
    pub attempts: Vec<AttemptRecord>,
    pub attempt_count: u32,
    /// Set when read back from the store, where the attempts are not loaded.
    pub stored_trail: Option<String>,
    pub stream: bool,
    /// The resource the request was pinned to (`files/abc`), when it named one.
    pub resource: Option<String>,
    pub prompt_tokens: Option<u64>,
    pub completion_tokens: Option<u64>,
    pub error: Option<String>,
}

impl RequestRecord {
    /// `#17 429 rpm → #3 200`.
    pub fn trail(&self) -> String {
        if let Some(t) = &self.stored_trail {
            return t.clone();
        }
        self.attempts
            .iter()
            .map(|a| {
                let mut s = format!("#{}", a.key_id);
                if let Some(status) = a.status {
                    s.push_str(&format!(" {status}"));
                }
                if let Some(w) = &a.word {
                    s.push(' ');
                    s.push_str(w);
                }
                s
            })
            .collect::<Vec<_>>()
            .join(" → ")
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ErrorRecord {
    pub ts: DateTime<Utc>,
    pub route: String,
    pub model: Option<String>,
    pub key_id: Option<i64>,
    pub status: Option<u16>,
    pub error: String,
    /// Upstream body, truncated and with keys redacted.
    pub body: Option<String>,
    pub request_body: Option<String>,
}

impl RequestRecord {
    /// A record of a request that made no attempt: a 200 on `route` (tests and tools fill in the
    /// rest).
    pub fn bare(ts: DateTime<Utc>, route: &str) -> Self {
        RequestRecord {
            ts,
            route: route.into(),
            model: None,
            key_id: None,
            status: 200,
            latency_ms: 1,
            attempts: vec![],
            attempt_count: 0,
            stored_trail: None,
            stream: false,
            resource: None,
            prompt_tokens: None,
            completion_tokens: None,
            error: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trail_reads_like_the_contract() {
        let a = |key_id, status, word: Option<&str>| AttemptRecord {
            ts: Utc::now(),
            key_id,
            status,
            ok: status == Some(200),
            latency_ms: 1,
            word: word.map(String::from),
        };
        let mut r = RequestRecord::bare(Utc::now(), "r");
        r.attempts = vec![a(17, Some(429), Some("rpm")), a(5, None, Some("timeout")), a(3, Some(200), None)];
        assert_eq!(r.trail(), "#17 429 rpm → #5 timeout → #3 200");
    }
}
