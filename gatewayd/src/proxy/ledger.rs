//! The request-log record of one client request: its attempts as they happen, and a guard that
//! writes exactly one record however the request ends, including a client that leaves before
//! the answer (status 499). Also the error-log rows of failed attempts, keys redacted.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use http::StatusCode;
use tokio::time::Instant;

use crate::keypool::KeyEntry;
use crate::record::{AttemptRecord, ErrorRecord, RequestRecord};
use crate::state::State;
use crate::usage::Usage;

/// Error bodies kept in the error log are cut to this many bytes.
const ERROR_BODY_LOG: usize = 4096;
const REQUEST_BODY_LOG: usize = 65536;

/// Status logged for a request whose client left before it was answered (nginx's convention).
pub const CLIENT_CLOSED: u16 = 499;

pub struct Ledger {
    state: Arc<State>,
    route: String,
    model: Option<String>,
    stream: bool,
    resource: Option<String>,
    ts: DateTime<Utc>,
    started: Instant,
    attempts: Vec<AttemptRecord>,
    written: bool,
}

impl Ledger {
    pub fn new(state: &Arc<State>, plan: &super::Plan, stream: bool) -> Self {
        state.in_flight.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ledger {
            state: state.clone(),
            route: plan.route.to_string(),
            model: plan.model.clone(),
            stream,
            resource: plan.keys.resource().map(String::from),
            ts: state.now(),
            started: Instant::now(),
            attempts: Vec::new(),
            written: false,
        }
    }

    /// Records an attempt: `word` is what the trail shows after the status (`rpm`, `timeout`).
    pub fn attempt(&mut self, key_id: i64, status: Option<StatusCode>, ok: bool, sent_at: Instant, word: Option<&str>) {
        self.attempts.push(AttemptRecord {
            ts: self.state.now(),
            key_id,
            status: status.map(|s| s.as_u16()),
            ok,
            latency_ms: sent_at.elapsed().as_millis() as u64,
            word: word.map(String::from),
        });
    }

    /// Writes the record (once: later calls, and the drop guard, do nothing).
    pub fn finish(&mut self, status: u16, usage: Option<Usage>, error: Option<String>) {
        if std::mem::replace(&mut self.written, true) {
            return;
        }
        let attempts = std::mem::take(&mut self.attempts);
        self.state.logbook.request(RequestRecord {
            ts: self.ts,
            route: std::mem::take(&mut self.route),
            model: self.model.take(),
            key_id: attempts.last().map(|a| a.key_id),
            status,
            latency_ms: self.started.elapsed().as_millis() as u64,
            attempt_count: attempts.len() as u32,
            attempts,
            stored_trail: None,
            stream: self.stream,
            resource: self.resource.take(),
            prompt_tokens: usage.map(|u| u.prompt),
            completion_tokens: usage.map(|u| u.completion),
            error: error.map(|e| shared::redact_keys_in(&e)),
        });
    }

    /// An error-log row for a failed attempt, with the key (and anything shaped like one) redacted.
    pub fn failed_attempt(
        &self,
        key: &KeyEntry,
        status: Option<StatusCode>,
        error: &str,
        body: &[u8],
        request: Option<&[u8]>,
    ) {
        let body_text = (!body.is_empty()).then(|| truncate(&redact_text(body, key), ERROR_BODY_LOG));
        let request_body = request.map(|r| truncate(&redact_text(r, key), REQUEST_BODY_LOG));
        self.state.logbook.error(ErrorRecord {
            ts: self.state.now(),
            route: self.route.clone(),
            model: self.model.clone(),
            key_id: Some(key.id),
            status: status.map(|s| s.as_u16()),
            error: shared::redact_keys_in(error),
            body: body_text,
            request_body,
        });
    }
}

impl Drop for Ledger {
    fn drop(&mut self) {
        let why = match *self.state.cut.borrow() {
            true => "cut at the end of the shutdown drain (server.shutdown_grace_secs or a second signal)",
            false => "client closed the request before it was answered",
        };
        self.finish(CLIENT_CLOSED, None, Some(why.into()));
        self.state.in_flight.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

pub fn redact_text(body: &[u8], key: &KeyEntry) -> String {
    let text = String::from_utf8_lossy(body);
    let secret = key.secret.expose();
    let text = if secret.is_empty() { text.into_owned() } else { text.replace(secret, &shared::redact(secret)) };
    shared::redact_keys_in(&text)
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}
