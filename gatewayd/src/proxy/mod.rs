//! What every proxied route shares: the attempt loop that picks a key, sends, classifies the answer,
//! reports it to the pool and retries on another key; the relay of a streamed answer frame by
//! frame; and the request-log record each client request leaves.

pub mod gemini;
pub mod openai;

use std::collections::VecDeque;
use std::future::Future as _;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use http::{HeaderMap, HeaderValue, Method, Request, StatusCode, header};
use http_body_util::Full;
use hyper::body::{Body as HttpBody, Frame, Incoming};
use tokio::time::Instant;

use crate::body::BoxError;
use crate::error::ApiError;
use crate::keypool::{KeyEntry, NoKey};
use crate::logbook::{AttemptRecord, ErrorRecord, RequestRecord};
use crate::outcome::{self, Outcome};
use crate::state::State;
use crate::upstream::{self, TransportError};
use crate::usage::{StreamMeter, Usage};

/// Error bodies kept in the error log are cut to this many bytes.
const ERROR_BODY_LOG: usize = 4096;
const REQUEST_BODY_LOG: usize = 65536;
/// Non-stream answers larger than this are refused rather than held.
const MAX_ANSWER: usize = 512 << 20;

/// Client headers worth passing upstream; everything else (cookies, the client's token, hop-by-hop)
/// stays behind.
const FORWARDED_HEADERS: &[&str] = &["content-type", "accept", "user-agent", "x-goog-api-client"];

/// Where the pooled key goes upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyPlacement {
    /// `x-goog-api-key` (Gemini API).
    GoogHeader,
    /// `Authorization: Bearer` (Google's OpenAI-compatible surface).
    Bearer,
}

/// One client request's plan for upstream.
#[derive(Debug, Clone)]
pub struct Call {
    /// Label in the request log, e.g. `generateContent`.
    pub route: String,
    pub model: Option<String>,
    pub method: Method,
    /// Upstream path and query, e.g. `/v1beta/models/gemini-2.5-flash:generateContent?alt=sse`.
    pub path_and_query: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub stream: bool,
    /// A 200 with no candidate content is a failed attempt (generateContent only).
    pub check_empty: bool,
    pub placement: KeyPlacement,
}

impl Call {
    fn pool_model(&self) -> &str {
        self.model.as_deref().unwrap_or("*")
    }
}

/// The harm categories `models.safety_settings` covers.
pub const SAFETY_CATEGORIES: &[&str] = &[
    "HARM_CATEGORY_HARASSMENT",
    "HARM_CATEGORY_HATE_SPEECH",
    "HARM_CATEGORY_SEXUALLY_EXPLICIT",
    "HARM_CATEGORY_DANGEROUS_CONTENT",
    "HARM_CATEGORY_CIVIC_INTEGRITY",
];

/// Applies `models.safety_settings` to a generateContent body: the threshold for every category
/// the client did not set itself. `passthrough` leaves the body alone.
pub fn merge_safety(body: &mut serde_json::Value, threshold: &str) {
    if threshold == "passthrough" || threshold.is_empty() {
        return;
    }
    let Some(obj) = body.as_object_mut() else { return };
    let settings = obj.entry("safetySettings").or_insert_with(|| serde_json::Value::Array(Vec::new()));
    let Some(list) = settings.as_array_mut() else { return };
    for category in SAFETY_CATEGORIES {
        if !list.iter().any(|s| s.get("category").and_then(|c| c.as_str()) == Some(category)) {
            list.push(serde_json::json!({"category": category, "threshold": threshold}));
        }
    }
}

/// `NAME-search` for a model in `models.search_models`: the base model, with the googleSearch tool.
pub fn search_base<'a>(model: &'a str, search_models: &[String]) -> Option<&'a str> {
    let base = model.strip_suffix("-search")?;
    search_models.iter().any(|s| s.strip_prefix("models/").unwrap_or(s) == base).then_some(base)
}

pub fn add_search_tool(body: &mut serde_json::Value) {
    let Some(obj) = body.as_object_mut() else { return };
    let tools = obj.entry("tools").or_insert_with(|| serde_json::Value::Array(Vec::new()));
    if let Some(list) = tools.as_array_mut()
        && !list.iter().any(|t| t.get("googleSearch").is_some())
    {
        list.push(serde_json::json!({"googleSearch": {}}));
    }
}

pub fn forwarded_headers(from: &HeaderMap) -> HeaderMap {
    let mut out = HeaderMap::new();
    for name in FORWARDED_HEADERS {
        if let Some(v) = from.get(*name) {
            out.insert(*name, v.clone());
        }
    }
    out
}

/// The attempts made for one client request, and what the request log needs of them.
pub struct Attempts {
    ts: DateTime<Utc>,
    started: Instant,
    records: Vec<AttemptRecord>,
}

impl Attempts {
    fn new(state: &State) -> Self {
        Attempts { ts: state.now(), started: Instant::now(), records: Vec::new() }
    }

    /// Logs a request that ended in `error`, and hands the error back for the client.
    pub fn failed(self, state: &State, call: &Call, error: ApiError) -> ApiError {
        self.finish(state, call, error.status(), None, Some(error.message()));
        error
    }

    /// Writes the request-log record for this request.
    pub fn finish(self, state: &State, call: &Call, status: StatusCode, usage: Option<Usage>, error: Option<String>) {
        let attempt_count = self.records.len() as u32;
        state.logbook.request(RequestRecord {
            ts: self.ts,
            route: call.route.clone(),
            model: call.model.clone(),
            key_id: self.records.last().map(|a| a.key_id),
            status: status.as_u16(),
            latency_ms: self.started.elapsed().as_millis() as u64,
            attempts: self.records,
            attempt_count,
            stored_trail: None,
            stream: call.stream,
            prompt_tokens: usage.map(|u| u.prompt),
            completion_tokens: usage.map(|u| u.completion),
            error: error.map(|e| shared::redact_keys_in(&e)),
        });
    }
}

/// A successful upstream answer.
pub enum Delivered {
    Whole {
        status: StatusCode,
        headers: HeaderMap,
        body: Bytes,
    },
    /// A stream whose first bytes already arrived (an empty stream was retried on another key).
    Stream {
        response: http::Response<Incoming>,
        first: Bytes,
        key: Arc<KeyEntry>,
        deadline: Instant,
    },
}

/// Runs the attempt loop: up to `keys.max_retries` further attempts, each on a different key,
/// only before any byte reached the client.
pub async fn dispatch(state: &Arc<State>, call: &Call) -> (Result<Delivered, ApiError>, Attempts) {
    let mut attempts = Attempts::new(state);
    let result = attempt_loop(state, call, &mut attempts).await;
    (result, attempts)
}

async fn attempt_loop(state: &Arc<State>, call: &Call, attempts: &mut Attempts) -> Result<Delivered, ApiError> {
    let cfg = state.config.load();
    let max_attempts = cfg.keys.max_retries as usize + 1;
    let wait_until = state.now() + chrono::Duration::seconds(cfg.keys.wait_secs as i64);
    let model = call.pool_model();
    // Keys this request may not use again, and those of them only rate-limited: once a wait for
    // a cooldown is over, those are worth another try.
    let mut tried: Vec<i64> = Vec::new();
    let mut rate_limited: Vec<i64> = Vec::new();
    let mut last_failure: Option<ApiError> = None;
    loop {
        if attempts.records.len() >= max_attempts {
            return Err(last_failure.unwrap_or_else(|| ApiError::BadGateway("no upstream attempt succeeded".into())));
        }
        let now = state.now();
        if let Some(until) = state.throttle.backoff_until(model, now) {
            if until <= wait_until {
                tokio::time::sleep((until - now).to_std().unwrap_or_default()).await;
                continue;
            }
            return Err(throttled_error(model, until, now));
        }
        let key = match state.pool.pick(model, now, &tried) {
            Ok(key) => key,
            Err(NoKey::AllCooling { reopens }) if reopens <= wait_until => {
                // Hold the request for the first key to reopen (keys.wait_secs).
                let wait = (reopens - now).to_std().unwrap_or_default();
                tokio::time::sleep(wait).await;
                tried.retain(|id| !rate_limited.contains(id));
                continue;
            }
            Err(no_key) => return Err(no_key_error(no_key, model, now, last_failure)),
        };
        tried.push(key.id);
        let deadline = Instant::now() + std::time::Duration::from_secs(cfg.upstream.timeout_secs);
        let sent_at = Instant::now();
        let request = build_request(&cfg.upstream.base_url, call, key.secret.expose());
        let verdict = match state.upstream.send(&cfg.upstream, request, deadline).await {
            Err(e) => Err(e),
            Ok(res) if res.status().is_success() && call.stream => {
                // Wait for the first bytes: a stream that ends empty can still go to another key,
                // since nothing reached the client yet. After that, the relay reports the outcome.
                let (parts, mut body) = res.into_parts();
                match first_bytes(&mut body, deadline).await {
                    Ok(Some(first)) => {
                        attempts.records.push(attempt_record(state, key.id, Some(parts.status), true, sent_at, None));
                        let response = http::Response::from_parts(parts, body);
                        return Ok(Delivered::Stream { response, first, key, deadline });
                    }
                    Ok(None) => Ok((parts.status, parts.headers, Bytes::new())),
                    Err(e) => Err(e),
                }
            }
            Ok(res) => {
                let (parts, body) = res.into_parts();
                match upstream::read_body(body, deadline, MAX_ANSWER).await {
                    Ok(bytes) => Ok((parts.status, parts.headers, bytes)),
                    Err(e) => Err(e),
                }
            }
        };
        let (outcome, status, headers, body, transport) = match verdict {
            Err(e) => (Outcome::Transient(e.to_string()), None, HeaderMap::new(), Bytes::new(), Some(e)),
            Ok((status, headers, body)) => {
                let outcome = if status.is_success() && call.stream {
                    Outcome::Transient("upstream stream ended with no data".into())
                } else if status.is_success() && !call.check_empty {
                    Outcome::Success
                } else {
                    outcome::classify(status.as_u16(), &body, state.now(), cfg.keys.cooldown_secs)
                };
                (outcome, Some(status), headers, body, None)
            }
        };
        if matches!(outcome, Outcome::RateLimited(_)) {
            rate_limited.push(key.id);
        }
        let throttled = match &outcome {
            Outcome::RateLimited(c) if !c.quota_detail => egress_throttled(state, &key, model, &cfg),
            _ => false,
        };
        if !throttled {
            report(state, &key, model, &outcome);
        }
        let word = match (&outcome, status, &transport) {
            _ if throttled => Some("throttled".to_string()),
            (_, _, Some(e)) => Some(e.word().to_string()),
            (Outcome::Transient(_), Some(s), _) if s.is_success() => Some("empty".to_string()),
            _ => outcome.trail_word().map(String::from),
        };
        let ok = matches!(outcome, Outcome::Success | Outcome::Client);
        attempts.records.push(attempt_record(state, key.id, status, ok, sent_at, word));
        match outcome {
            Outcome::Success => {
                return Ok(Delivered::Whole { status: status.unwrap_or(StatusCode::OK), headers, body });
            }
            Outcome::Client => {
                return Err(ApiError::Upstream {
                    status: status.unwrap_or(StatusCode::BAD_REQUEST),
                    body: redact_body(&body, &key),
                });
            }
            failure => {
                log_failed_attempt(state, call, &key, status, &failure, &body, &cfg);
                last_failure = Some(match (status, transport) {
                    (Some(s), _) if !s.is_success() => ApiError::Upstream { status: s, body: redact_body(&body, &key) },
                    (Some(_), _) => ApiError::BadGateway("upstream answered 200 with no content".into()),
                    (None, Some(TransportError::Timeout)) => ApiError::Timeout(cfg.upstream.timeout_secs),
                    (None, _) => ApiError::BadGateway(failure_message(&failure)),
                });
            }
        }
    }
}

/// The first non-empty data frame of a stream, or `None` when it ends without one.
async fn first_bytes(body: &mut Incoming, deadline: Instant) -> Result<Option<Bytes>, TransportError> {
    use http_body_util::BodyExt;
    loop {
        match tokio::time::timeout_at(deadline, body.frame()).await {
            Err(_) => return Err(TransportError::Timeout),
            Ok(None) => return Ok(None),
            Ok(Some(Err(e))) => return Err(TransportError::Broken(e.to_string())),
            Ok(Some(Ok(frame))) => {
                if let Ok(data) = frame.into_data()
                    && !data.is_empty()
                {
                    return Ok(Some(data));
                }
            }
        }
    }
}

/// A bare 429 may be Google throttling the gateway's IP rather than this key: ask the throttle
/// tracker. On a gateway-wide backoff the bare-429 cooldowns of the keys involved are lifted.
fn egress_throttled(state: &State, key: &KeyEntry, model: &str, cfg: &crate::config::Config) -> bool {
    use crate::throttle::{THROTTLE_WINDOW, ThrottleVerdict};
    let now = state.now();
    let active = state.pool.active_count();
    let backoff = chrono::Duration::seconds(cfg.keys.cooldown_secs as i64);
    match state.throttle.observe(model, key.id, now, active, backoff) {
        ThrottleVerdict::KeyCooldown => false,
        ThrottleVerdict::Backoff { until, release } => {
            tracing::warn!(
                model,
                keys = release.len(),
                active,
                "egress throttling suspected: most active keys answered 429 without quota detail within {} s; \
                 backing off the whole gateway for this model until {} instead of cooling each key",
                THROTTLE_WINDOW.num_seconds(),
                until.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            );
            for (id, h) in state.pool.lift_bare_cooldowns(&release, model) {
                state.logbook.health(id, h);
            }
            true
        }
    }
}

fn throttled_error(model: &str, until: DateTime<Utc>, now: DateTime<Utc>) -> ApiError {
    let secs = ((until - now).num_milliseconds().max(0) as u64).div_ceil(1000).max(1);
    ApiError::NoKey {
        status: StatusCode::TOO_MANY_REQUESTS,
        message: format!(
            "upstream is throttling this gateway for model {model} (most keys answered 429 at once); retry in {secs} s"
        ),
        retry_after_secs: Some(secs),
    }
}

fn failure_message(o: &Outcome) -> String {
    match o {
        Outcome::Transient(m) | Outcome::InvalidKey(m) => m.clone(),
        Outcome::RateLimited(c) => format!("rate-limited ({})", c.reason.as_str()),
        _ => String::new(),
    }
}

fn no_key_error(no_key: NoKey, model: &str, now: DateTime<Utc>, last: Option<ApiError>) -> ApiError {
    match no_key {
        NoKey::AllCooling { reopens } => {
            let secs = ((reopens - now).num_milliseconds().max(0) as u64).div_ceil(1000).max(1);
            ApiError::NoKey {
                status: StatusCode::TOO_MANY_REQUESTS,
                message: no_key.message(model),
                retry_after_secs: Some(secs),
            }
        }
        NoKey::AllTried { .. } => {
            let last =
                last.map(|e| format!("; last failure: {} {}", e.status().as_u16(), e.message())).unwrap_or_default();
            ApiError::NoKey {
                status: StatusCode::SERVICE_UNAVAILABLE,
                message: format!("{}{last}", no_key.message(model)),
                retry_after_secs: None,
            }
        }
        other => ApiError::NoKey {
            status: StatusCode::SERVICE_UNAVAILABLE,
            message: other.message(model),
            retry_after_secs: None,
        },
    }
}

fn attempt_record(
    state: &State,
    key_id: i64,
    status: Option<StatusCode>,
    ok: bool,
    sent_at: Instant,
    word: Option<String>,
) -> AttemptRecord {
    AttemptRecord {
        ts: state.now(),
        key_id,
        status: status.map(|s| s.as_u16()),
        ok,
        latency_ms: sent_at.elapsed().as_millis() as u64,
        word,
    }
}

/// Applies an outcome to the key; persists the key's health only when it changed.
pub fn report(state: &State, key: &KeyEntry, model: &str, outcome: &Outcome) {
    let max_failures = state.config.load().keys.max_failures;
    let changed = state.pool.report(key, model, outcome, state.now(), max_failures);
    if let Outcome::RateLimited(c) = outcome
        && c.zero_quota
    {
        tracing::warn!(key = %key.secret, model, "quotaValue 0: this key has no quota for the model; resting it for a day");
    }
    if let Some(h) = changed {
        if h.state() != crate::keypool::KeyState::Active || !h.cooldowns().is_empty() {
            tracing::info!(key = %key.secret, state = h.display_state(state.now()), last_error = ?h.last_error(), "key health changed");
        }
        state.logbook.health(key.id, h);
    }
}

fn log_failed_attempt(
    state: &State,
    call: &Call,
    key: &KeyEntry,
    status: Option<StatusCode>,
    outcome: &Outcome,
    body: &[u8],
    cfg: &crate::config::Config,
) {
    let body_text = (!body.is_empty()).then(|| truncate(&redact_text(body, key), ERROR_BODY_LOG));
    let request_body = cfg.logs.record_request_body.then(|| truncate(&redact_text(&call.body, key), REQUEST_BODY_LOG));
    state.logbook.error(ErrorRecord {
        ts: state.now(),
        route: call.route.clone(),
        model: call.model.clone(),
        key_id: Some(key.id),
        status: status.map(|s| s.as_u16()),
        error: shared::redact_keys_in(&failure_message(outcome)),
        body: body_text,
        request_body,
    });
}

fn redact_text(body: &[u8], key: &KeyEntry) -> String {
    let text = String::from_utf8_lossy(body);
    let secret = key.secret.expose();
    let text = if secret.is_empty() { text.into_owned() } else { text.replace(secret, &shared::redact(secret)) };
    shared::redact_keys_in(&text)
}

/// An upstream error body with the key that made the attempt (and anything shaped like a key) redacted.
fn redact_body(body: &[u8], key: &KeyEntry) -> Bytes {
    let secret = key.secret.expose();
    let contains_secret = !secret.is_empty() && body.windows(secret.len()).any(|w| w == secret.as_bytes());
    if !contains_secret && !body.windows(4).any(|w| w == b"AIza") {
        return Bytes::copy_from_slice(body);
    }
    Bytes::from(redact_text(body, key))
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

pub(crate) fn build_request(base_url: &str, call: &Call, key: &str) -> Request<Full<Bytes>> {
    let uri = format!("{}{}", base_url.trim_end_matches('/'), call.path_and_query);
    let mut req = Request::new(Full::new(call.body.clone()));
    *req.method_mut() = call.method.clone();
    *req.uri_mut() = uri.parse().unwrap_or_else(|_| http::Uri::from_static("/"));
    *req.headers_mut() = call.headers.clone();
    let value = match call.placement {
        KeyPlacement::GoogHeader => HeaderValue::from_str(key),
        KeyPlacement::Bearer => HeaderValue::from_str(&format!("Bearer {key}")),
    };
    if let Ok(mut v) = value {
        v.set_sensitive(true);
        let name = match call.placement {
            KeyPlacement::GoogHeader => header::HeaderName::from_static("x-goog-api-key"),
            KeyPlacement::Bearer => header::AUTHORIZATION,
        };
        req.headers_mut().insert(name, v);
    }
    req
}

/// What a relayed stream reports when it ends, however it ends.
pub struct StreamEnd {
    pub state: Arc<State>,
    pub call: Call,
    pub key: Arc<KeyEntry>,
    pub attempts: Attempts,
}

/// How a relayed stream ended.
pub enum StreamFinish {
    /// Upstream finished it: a success for the key.
    Completed,
    /// The client went away: nobody's fault, nothing reported.
    ClientGone,
    /// Upstream failed or timed out after bytes went out: a transient failure for the key.
    Failed(String),
}

impl StreamEnd {
    pub fn complete(self, usage: Option<Usage>, finish: StreamFinish) {
        let StreamEnd { state, call, key, attempts } = self;
        let model = call.pool_model().to_string();
        let error = match finish {
            StreamFinish::Completed => {
                report(&state, &key, &model, &Outcome::Success);
                None
            }
            StreamFinish::ClientGone => Some("client closed the stream".to_string()),
            StreamFinish::Failed(e) => {
                report(&state, &key, &model, &Outcome::Transient(e.clone()));
                Some(e)
            }
        };
        attempts.finish(&state, &call, StatusCode::OK, usage, error);
    }
}

/// How a relay turns upstream stream bytes into client frames.
pub trait Transform: Send + Unpin + 'static {
    /// Upstream bytes in; frames for the client out.
    fn data(&mut self, bytes: Bytes, out: &mut VecDeque<Bytes>);
    /// Upstream ended cleanly.
    fn end(&mut self, out: &mut VecDeque<Bytes>);
    /// Upstream failed after bytes went out: `Some(frame)` ends the stream with that frame (an
    /// error event), `None` aborts the connection.
    fn fail(&mut self, message: &str) -> Option<Bytes>;
    fn usage(&self) -> Option<Usage>;
}

/// Native routes: bytes pass untouched; usage is read on the way.
pub struct Passthrough {
    meter: StreamMeter,
}

impl Passthrough {
    pub fn new(sse: bool) -> Self {
        Passthrough { meter: StreamMeter::new(sse) }
    }
}

impl Transform for Passthrough {
    fn data(&mut self, bytes: Bytes, out: &mut VecDeque<Bytes>) {
        self.meter.feed(&bytes);
        out.push_back(bytes);
    }
    fn end(&mut self, _out: &mut VecDeque<Bytes>) {}
    fn fail(&mut self, _message: &str) -> Option<Bytes> {
        None
    }
    fn usage(&self) -> Option<Usage> {
        self.meter.usage
    }
}

/// Relays an upstream stream frame by frame through a `Transform`; reports its end.
pub struct Relay<T: Transform> {
    inner: Incoming,
    first: Option<Bytes>,
    transform: T,
    out: VecDeque<Bytes>,
    done: bool,
    deadline: Pin<Box<tokio::time::Sleep>>,
    end: Option<StreamEnd>,
}

impl<T: Transform> Relay<T> {
    pub fn new(inner: Incoming, first: Bytes, transform: T, deadline: Instant, end: StreamEnd) -> Self {
        Relay {
            inner,
            first: Some(first),
            transform,
            out: VecDeque::new(),
            done: false,
            deadline: Box::pin(tokio::time::sleep_until(deadline)),
            end: Some(end),
        }
    }

    fn finish(&mut self, result: StreamFinish) {
        if let Some(end) = self.end.take() {
            end.complete(self.transform.usage(), result);
        }
    }

    /// Ends the stream after a failure: with the transform's error frame, or by aborting.
    fn failed(&mut self, message: String) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.finish(StreamFinish::Failed(message.clone()));
        self.done = true;
        match self.transform.fail(&message) {
            Some(frame) => Poll::Ready(Some(Ok(Frame::data(frame)))),
            None => Poll::Ready(Some(Err(message.into()))),
        }
    }
}

impl<T: Transform> HttpBody for Relay<T> {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        loop {
            if let Some(frame) = this.out.pop_front() {
                return Poll::Ready(Some(Ok(Frame::data(frame))));
            }
            if this.done {
                return Poll::Ready(None);
            }
            if let Some(first) = this.first.take() {
                this.transform.data(first, &mut this.out);
                continue;
            }
            if this.deadline.as_mut().poll(cx).is_ready() {
                return this.failed("upstream stream exceeded upstream.timeout_secs".into());
            }
            match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => {
                    this.transform.end(&mut this.out);
                    this.finish(StreamFinish::Completed);
                    this.done = true;
                }
                Poll::Ready(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        this.transform.data(data, &mut this.out);
                    }
                }
                Poll::Ready(Some(Err(e))) => return this.failed(format!("upstream stream broke: {e}")),
            }
        }
    }
}

impl<T: Transform> Drop for Relay<T> {
    fn drop(&mut self) {
        self.finish(StreamFinish::ClientGone);
    }
}
