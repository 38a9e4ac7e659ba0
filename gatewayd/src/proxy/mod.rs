//! The one seam every proxied route goes through: `serve(state, plan, outgoing, render)` runs the
//! attempt loop (pick a key, send, classify, report to the pool, retry on another key as the
//! policy says), relays a stream frame by frame, and writes the request-log record. A dialect
//! supplies only a `Render`: how a whole answer, a stream and an error look to its clients. Keys,
//! upstream responses and the ledger never leave this module.

mod ledger;
pub mod policy;
mod relay;

use std::borrow::Cow;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Response, StatusCode, header};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use tokio::time::Instant;

use self::ledger::Ledger;
use self::policy::{After, Backoff, Next, Policy};
pub use self::relay::{Passthrough, Transform};
use self::relay::{Relay, StreamEnd};
use crate::body::Body;
use crate::error::ApiError;
use crate::keypool::{Class, KeyEntry, KeyKind, KeyState, Rules};
use crate::outcome::{self, Expect, Outcome, Party};
use crate::state::State;
use crate::upstream::{self, Outgoing, TransportError};
use crate::usage::Usage;

/// Non-stream answers larger than this are refused rather than held.
const MAX_ANSWER: usize = 512 << 20;

/// Client headers worth passing upstream; everything else (cookies, the client's token, hop-by-hop)
/// stays behind.
const FORWARDED_HEADERS: &[&str] = &["content-type", "accept", "user-agent", "x-goog-api-client"];

/// Which keys may serve a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyChoice {
    /// Any usable Gemini API key of the model's group (`models.groups`), round-robin, retried on
    /// others.
    Any,
    /// Likewise among Vertex AI Express keys, sent to `vertex.base_url`.
    Vertex,
    /// Only the key that owns `resource` (which the request names); never another. The request
    /// log records the resource.
    Pinned { key_id: i64, resource: String },
}

impl KeyChoice {
    fn resource(&self) -> Option<&str> {
        match self {
            KeyChoice::Any | KeyChoice::Vertex => None,
            KeyChoice::Pinned { resource, .. } => Some(resource),
        }
    }
}

/// The proxy's plan for one client request: what the log and the key pool need to know of it.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Label in the request log, e.g. `generateContent`.
    pub route: Cow<'static, str>,
    /// The model, as the pool keys its cooldowns (`*` when the request names none).
    pub model: Option<String>,
    pub stream: bool,
    /// What a 200 must be to count as a success (a generateContent answer must carry content).
    pub expect: Expect,
    pub keys: KeyChoice,
}

impl Plan {
    fn pool_model(&self) -> &str {
        self.model.as_deref().unwrap_or("*")
    }
}

/// A whole upstream answer, and the key that served it (so a created resource can be bound to it).
pub struct Served {
    pub key_id: i64,
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// What a dialect supplies to `serve`: how its clients see the answer.
pub trait Render: Send + 'static {
    type Stream: Transform;
    /// A whole successful answer → the client's response, and the tokens it used.
    fn whole(self, served: Served) -> (Response<Body>, Option<Usage>);
    /// A stream's first bytes arrived from key `key_id`: the transform for its frames, and the
    /// client's headers.
    fn stream(self, upstream: &HeaderMap, key_id: i64) -> (Self::Stream, HeaderMap);
    /// The request failed: the error in the dialect's own shape.
    fn error(&self, error: ApiError) -> Response<Body>;
}

/// A successful upstream answer, inside this module.
enum Delivered {
    Whole(Served),
    /// A stream whose first bytes already arrived (an empty stream was retried on another key).
    Stream {
        response: http::Response<Incoming>,
        first: Bytes,
        key: Arc<KeyEntry>,
    },
}

/// Serves one client request through the pool; exactly one request-log record is written,
/// whatever happens (the client leaving included).
pub async fn serve<R: Render>(state: &Arc<State>, plan: Plan, out: Outgoing, render: R) -> Response<Body> {
    let mut ledger = Ledger::new(state, &plan, plan.stream);
    match attempt_loop(state, &plan, &out, &mut ledger).await {
        Err(e) => {
            ledger.finish(e.status().as_u16(), None, Some(e.message()));
            render.error(e)
        }
        Ok(Delivered::Whole(served)) => {
            let (res, usage) = render.whole(served);
            ledger.finish(res.status().as_u16(), usage, None);
            res
        }
        Ok(Delivered::Stream { response, first, key }) => {
            let (parts, incoming) = response.into_parts();
            let (transform, headers) = render.stream(&parts.headers, key.id);
            let idle = std::time::Duration::from_secs(state.config.load().upstream.stream_idle_secs);
            let end = StreamEnd { state: state.clone(), key, model: plan.pool_model().to_string(), ledger };
            let mut res = Response::new(Relay::new(incoming, first, transform, idle, end).boxed());
            *res.status_mut() = parts.status;
            *res.headers_mut() = headers;
            res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            res
        }
    }
}

/// Like `serve` for a whole answer the gateway itself needs (a page of the model list): the same
/// loop and record, the body handed back.
pub async fn fetch(state: &Arc<State>, plan: Plan, out: Outgoing) -> Result<Served, ApiError> {
    let mut ledger = Ledger::new(state, &plan, false);
    match attempt_loop(state, &plan, &out, &mut ledger).await {
        Ok(Delivered::Whole(served)) => {
            ledger.finish(served.status.as_u16(), None, None);
            Ok(served)
        }
        Ok(Delivered::Stream { .. }) => {
            let e = ApiError::BadGateway("upstream answered a stream where a whole answer was expected".into());
            ledger.finish(e.status().as_u16(), None, Some(e.message()));
            Err(e)
        }
        Err(e) => {
            ledger.finish(e.status().as_u16(), None, Some(e.message()));
            Err(e)
        }
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

/// One attempt's answer, before the policy has judged it.
struct Answer {
    outcome: Outcome,
    status: Option<StatusCode>,
    headers: HeaderMap,
    body: Bytes,
    transport: Option<TransportError>,
}

/// Performs what the policy decides: up to `keys.max_retries` further attempts, each on a
/// different key, only before any byte reached the client.
async fn attempt_loop(
    state: &Arc<State>,
    plan: &Plan,
    out: &Outgoing,
    ledger: &mut Ledger,
) -> Result<Delivered, ApiError> {
    let cfg = state.config.load();
    let wait_until = state.now() + chrono::Duration::seconds(cfg.keys.wait_secs as i64);
    let single = !out.body.replayable() || matches!(plan.keys, KeyChoice::Pinned { .. });
    let mut policy = Policy::new(cfg.keys.max_retries, wait_until, single);
    let model = plan.pool_model();
    let group = plan.model.as_deref().and_then(|m| crate::models::glob_lookup(&cfg.models.groups, m));
    let (class, base_url) = match plan.keys {
        KeyChoice::Vertex => (Class { kind: KeyKind::Vertex, group }, &cfg.vertex.base_url),
        _ => (Class { kind: KeyKind::Gemini, group }, &cfg.upstream.base_url),
    };
    loop {
        let now = state.now();
        let backoff = match state.throttle.backoff_until(model, now) {
            Some(until) => Some(Backoff::Egress(until)),
            None => state.pool.model_backoff(model, now).map(Backoff::Model),
        };
        match policy.next(model, now, backoff) {
            Next::Attempt => {}
            Next::Wait(until) => {
                tokio::time::sleep((until - now).to_std().unwrap_or_default()).await;
                continue;
            }
            Next::Stop(e) => return Err(e),
        }
        let picked = match &plan.keys {
            KeyChoice::Any | KeyChoice::Vertex => state.pool.pick(class, model, now, policy.tried()),
            KeyChoice::Pinned { key_id, .. } => state.pool.pick_pinned(*key_id, model, now),
        };
        let key = match picked {
            Ok(key) => key,
            Err(no_key) => {
                let until = policy.no_key(no_key, model, now)?;
                tokio::time::sleep((until - now).to_std().unwrap_or_default()).await;
                continue;
            }
        };
        policy.sending(key.id);
        let deadline = Instant::now() + std::time::Duration::from_secs(cfg.upstream.timeout_secs);
        let sent_at = Instant::now();
        let request = out.request(base_url, key.secret.expose()).map_err(|e| {
            tracing::error!("could not build the upstream request: {e}");
            ApiError::BadGateway(format!("the gateway could not build the upstream request: {e}"))
        })?;
        let answer = match state.upstream.send(&cfg.upstream, key.id, request, deadline).await {
            Err(e) => Err(e),
            Ok(res) if res.status().is_success() && plan.stream => {
                // Wait for the first bytes: a stream that ends empty can still go to another key,
                // since nothing reached the client yet. After that, the relay reports the outcome.
                let (parts, mut body) = res.into_parts();
                match first_bytes(&mut body, deadline).await {
                    Ok(Some(first)) => {
                        ledger.attempt(key.id, Some(parts.status), true, sent_at, None);
                        let response = http::Response::from_parts(parts, body);
                        return Ok(Delivered::Stream { response, first, key });
                    }
                    Ok(None) => Ok((parts.status, parts.headers, Bytes::new())),
                    Err(e) => Err(e),
                }
            }
            Ok(res) => {
                let (parts, body) = res.into_parts();
                upstream::read_body(body, deadline, MAX_ANSWER).await.map(|b| (parts.status, parts.headers, b))
            }
        };
        let answer = judge(state, plan, answer, cfg.keys.cooldown_secs);
        let throttled = match &answer.outcome {
            Outcome::RateLimited(c) if !c.quota_detail => egress_throttled(state, &key, model, &cfg),
            _ => false,
        };
        let party = match throttled {
            true => Some(Party::Egress),
            false => report(state, &key, model, &answer.outcome),
        };
        let word = match (&answer.outcome, answer.status, &answer.transport) {
            _ if throttled => Some("throttled"),
            (_, _, Some(e)) => Some(e.word()),
            (Outcome::Transient(m), Some(s), _) if s.is_success() && m.starts_with("empty") => Some("empty"),
            (Outcome::Transient(_), Some(s), _) if s.is_success() => Some("garbled"),
            (outcome, _, _) => outcome.trail_word(),
        };
        let ok = matches!(answer.outcome, Outcome::Success | Outcome::Client);
        ledger.attempt(key.id, answer.status, ok, sent_at, word);
        let Answer { outcome, status, headers, body, transport } = answer;
        let failure = || failure_error(status, transport, &body, &key, cfg.upstream.timeout_secs, &outcome);
        match policy.after(key.id, &outcome, failure) {
            After::Deliver => {
                let status = status.unwrap_or(StatusCode::OK);
                return Ok(Delivered::Whole(Served { key_id: key.id, status, headers, body }));
            }
            After::Refuse => {
                let status = status.unwrap_or(StatusCode::BAD_REQUEST);
                return Err(ApiError::Upstream { status, body: redact_body(&body, &key) });
            }
            After::Retry => {
                let request_body = cfg.logs.record_request_body.then(|| out.body.bytes()).flatten();
                let blamed = party.map_or("", Party::as_str);
                let error = format!("{} (charged to: {blamed})", failure_message(&outcome));
                ledger.failed_attempt(&key, status, &error, &body, request_body.map(|b| &b[..]));
            }
        }
    }
}

/// What an attempt's answer means for its key.
fn judge(
    state: &State,
    plan: &Plan,
    answer: Result<(StatusCode, HeaderMap, Bytes), TransportError>,
    cooldown_secs: u64,
) -> Answer {
    match answer {
        Err(e) => Answer {
            // Connect, DNS, TLS and descriptor errors are the gateway's own network; a timeout or
            // a reset after connecting is transient (the key's or the model's, as others tell).
            outcome: match &e {
                TransportError::Connect(_) => Outcome::Network(e.to_string()),
                _ => Outcome::Transient(e.to_string()),
            },
            status: None,
            headers: HeaderMap::new(),
            body: Bytes::new(),
            transport: Some(e),
        },
        Ok((status, headers, body)) => {
            let outcome = if status.is_success() && plan.stream {
                Outcome::Transient("empty stream (upstream ended it with no data)".into())
            } else {
                outcome::classify(status.as_u16(), &body, state.now(), cooldown_secs, plan.expect)
            };
            Answer { outcome, status: Some(status), headers, body, transport: None }
        }
    }
}

/// What the client reads if this failed attempt is the last one.
fn failure_error(
    status: Option<StatusCode>,
    transport: Option<TransportError>,
    body: &[u8],
    key: &KeyEntry,
    timeout_secs: u64,
    outcome: &Outcome,
) -> ApiError {
    match (status, transport) {
        (Some(s), _) if !s.is_success() => ApiError::Upstream { status: s, body: redact_body(body, key) },
        (Some(_), _) => ApiError::BadGateway(format!("upstream answered 200, but {}", failure_message(outcome))),
        (None, Some(TransportError::Timeout)) => ApiError::Timeout(timeout_secs),
        (None, _) => ApiError::BadGateway(failure_message(outcome)),
    }
}

/// The first non-empty data frame of a stream, or `None` when it ends without one.
async fn first_bytes(body: &mut Incoming, deadline: Instant) -> Result<Option<Bytes>, TransportError> {
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

fn failure_message(o: &Outcome) -> String {
    match o {
        Outcome::Transient(m) | Outcome::InvalidKey(m) | Outcome::Network(m) => m.clone(),
        Outcome::RateLimited(c) => format!("rate-limited ({})", c.reason.as_str()),
        _ => String::new(),
    }
}

/// Reports an outcome to the pool, which charges the party the blame table names; persists the
/// key's health only when it changed. Returns the party charged (`None` for a success).
pub(crate) fn report(state: &State, key: &KeyEntry, model: &str, outcome: &Outcome) -> Option<Party> {
    let cfg = state.config.load();
    let rules = Rules { max_failures: cfg.keys.max_failures, cooldown_secs: cfg.keys.cooldown_secs };
    let crate::keypool::Report { party, health: changed, project } =
        state.pool.report(key, model, outcome, state.now(), rules);
    for (id, h) in project {
        tracing::info!(key_id = id, model, "cooled with its project's key #{} (quota is per project)", key.id);
        state.logbook.health(id, h);
    }
    if let Outcome::RateLimited(c) = outcome
        && c.zero_quota
    {
        tracing::warn!(key = %key.secret, model, "quotaValue 0: this key has no quota for the model; resting it for a day");
    }
    if let Some(h) = changed {
        if h.state() != KeyState::Active || !h.cooldowns().is_empty() {
            tracing::info!(key = %key.secret, state = h.display_state(state.now()), last_error = ?h.last_error(), "key health changed");
        }
        state.logbook.health(key.id, h);
    }
    if party == Some(Party::Model) {
        tracing::warn!(
            model,
            "model failing on every key lately ({}); backing it off, no key charged",
            failure_message(outcome)
        );
    }
    party
}

/// An upstream error body with the key that made the attempt (and anything shaped like a key) redacted.
fn redact_body(body: &[u8], key: &KeyEntry) -> Bytes {
    let secret = key.secret.expose();
    let contains_secret = !secret.is_empty() && body.windows(secret.len()).any(|w| w == secret.as_bytes());
    if !contains_secret && !body.windows(4).any(|w| w == b"AIza") {
        return Bytes::copy_from_slice(body);
    }
    Bytes::from(ledger::redact_text(body, key))
}
