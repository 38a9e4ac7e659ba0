//! The admin API on the Unix socket, gbctl's only counterpart: plain path matching, JSON bodies of
//! `shared::admin` types, HTTP/1.1. The routes live by noun: `keys`, `settings`, `logs` (with
//! stats and follow) and `metrics`; this file holds the router, the error type and `status`.

mod keys;
mod logs;
mod metrics;
mod settings;

use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use serde::Serialize;
use serde::de::DeserializeOwned;
use shared::admin::{self as api, ErrorBody, KeyRef};

use self::keys::{add_keys, list_keys, remove_keys, reset, set_disabled, set_labels, verify};
use self::logs::{follow, logs, stats};
use self::metrics::metrics;
use self::settings::{setting_get, setting_set, setting_unset, settings_list};
use crate::auth::query_param;
use crate::body::{Body, full};
use crate::keypool::KeyEntry;
use crate::state::State;
use crate::store::StoreError;

/// Admin request bodies (a 10,000-key import is about 400 KB).
const MAX_ADMIN_BODY: u64 = 64 << 20;

type Reply = Result<Response<Body>, AdminError>;

/// A refused admin request: a status and gbctl's error body, turned into a response at the edge.
#[derive(Debug)]
pub struct AdminError {
    status: StatusCode,
    body: ErrorBody,
}

impl AdminError {
    fn into_response(self) -> Response<Body> {
        let mut res = ok(&self.body);
        *res.status_mut() = self.status;
        res
    }
}

pub async fn handle(state: Arc<State>, req: Request<Incoming>) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_string();
    let query = parts.uri.query().map(String::from);
    let rules = crate::router::BodyRules { limit: MAX_ADMIN_BODY, budget: None, progress: None };
    let body = match crate::router::read_body(&parts.headers, body, rules).await {
        Ok((b, _)) => b,
        Err(e) => return fail(StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    };
    let q = |name: &str| query.as_deref().and_then(|q| query_param(q, name));
    let result: Reply = async {
        match (&parts.method, path.as_str()) {
            (&Method::GET, api::STATUS) => status(&state).await,
            (&Method::GET, api::KEYS) => list_keys(&state, q("state")).await,
            (&Method::POST, api::KEYS_ADD) => add_keys(&state, parse(&body)?).await,
            (&Method::POST, api::KEYS_REMOVE) => remove_keys(&state, parse(&body)?).await,
            (&Method::POST, api::KEYS_DISABLE) => set_disabled(&state, parse(&body)?, true).await,
            (&Method::POST, api::KEYS_ENABLE) => set_disabled(&state, parse(&body)?, false).await,
            (&Method::POST, api::KEYS_VERIFY) => verify(&state, parse(&body)?).await,
            (&Method::POST, api::KEYS_RESET) => reset(&state, parse(&body)?).await,
            (&Method::POST, api::KEYS_SET) => set_labels(&state, parse(&body)?).await,
            (&Method::GET, api::SETTINGS) => Ok(ok(&settings_list(&state))),
            (method, p) if p.starts_with("/v1/settings/") => {
                let name = &p["/v1/settings/".len()..];
                match *method {
                    Method::GET => setting_get(&state, name),
                    Method::PUT => setting_set(&state, name, parse(&body)?).await,
                    Method::DELETE => setting_unset(&state, name).await,
                    _ => Err(fail(StatusCode::METHOD_NOT_ALLOWED, format!("{method} is not allowed on {p}"))),
                }
            }
            (&Method::GET, api::LOGS) => logs(&state, &q).await,
            (&Method::GET, api::LOGS_FOLLOW) => follow(&state, &q),
            (&Method::GET, api::STATS) => stats(&state, &q).await,
            (&Method::GET, api::METRICS) => Ok(metrics(&state)),
            (method, p) => Err(fail(StatusCode::NOT_FOUND, format!("no admin route {method} {p}"))),
        }
    }
    .await;
    result.unwrap_or_else(AdminError::into_response)
}

/// The metrics listener (`server.metrics_listen`) serves only `/metrics`.
pub async fn metrics_only(state: Arc<State>, req: Request<Incoming>) -> Response<Body> {
    if req.uri().path() == api::METRICS && req.method() == Method::GET {
        metrics(&state)
    } else {
        fail(StatusCode::NOT_FOUND, "only GET /metrics is served here").into_response()
    }
}

fn ok<T: Serialize>(value: &T) -> Response<Body> {
    let mut res = Response::new(full(serde_json::to_vec(value).unwrap_or_default()));
    res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    res
}

fn fail(status: StatusCode, message: impl Into<String>) -> AdminError {
    AdminError { status, body: ErrorBody { error: message.into(), candidates: Vec::new() } }
}

fn parse<T: DeserializeOwned>(body: &Bytes) -> Result<T, AdminError> {
    serde_json::from_slice(body).map_err(|e| fail(StatusCode::BAD_REQUEST, format!("malformed request body: {e}")))
}

fn store_failed(e: StoreError) -> AdminError {
    fail(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
}

/// Runs a store call off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, AdminError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(store_failed),
        Err(e) => Err(fail(StatusCode::INTERNAL_SERVER_ERROR, format!("store task failed: {e}"))),
    }
}

pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn key_ref(k: &KeyEntry) -> KeyRef {
    KeyRef { id: k.id, key: shared::redact(k.secret.expose()) }
}

// ---- status ----------------------------------------------------------------------------------

async fn status(state: &Arc<State>) -> Reply {
    let now = state.now();
    let mut keys = api::KeyCounts::default();
    for k in state.pool.snapshot().iter() {
        match k.read(|h| h.display_state(now)) {
            "active" => keys.active += 1,
            "cooling" => keys.cooling += 1,
            "invalid" => keys.invalid += 1,
            _ => keys.disabled += 1,
        }
        keys.total += 1;
    }
    let store = state.store.clone();
    let (m1, h1, d1) = blocking(move || {
        Ok((
            store.count_requests_since(now - Duration::minutes(1))?,
            store.count_requests_since(now - Duration::hours(1))?,
            store.count_requests_since(now - Duration::hours(24))?,
        ))
    })
    .await?;
    Ok(ok(&api::StatusView {
        version: env!("CARGO_PKG_VERSION").into(),
        started_at: rfc3339(state.started_at),
        uptime_secs: (now - state.started_at).num_seconds().max(0) as u64,
        listen: state.listen.get().map(|a| a.to_string()).unwrap_or_default(),
        admin_socket: state.admin_socket.display().to_string(),
        keys,
        requests_1m: m1,
        requests_1h: h1,
        requests_24h: d1,
        logs_dropped: state.logbook.dropped(),
        database: state.store.integrity().to_string(),
        draining: *state.stopping.borrow(),
        in_flight: state.in_flight.load(std::sync::atomic::Ordering::Relaxed),
    }))
}
