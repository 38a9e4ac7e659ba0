//! The admin API on the Unix socket, gbctl's only counterpart: plain path matching, JSON bodies of
//! `shared::admin` types, HTTP/1.1. Also `/metrics` in Prometheus text.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use serde::Serialize;
use serde::de::DeserializeOwned;
use shared::admin::{self as api, ErrorBody, KeyRef};

use crate::auth::query_param;
use crate::body::{Body, full};
use crate::config::{self, FIELDS, find_field};
use crate::keypool::{KeyEntry, KeyState};
use crate::logbook::Written;
use crate::record::{ErrorRecord, RequestRecord};
use crate::settings::ChangeError;
use crate::state::State;
use crate::store::{LogFilter, StatsBy, StoreError};

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
    let body = match crate::router::read_body(&parts.headers, body, MAX_ADMIN_BODY).await {
        Ok(b) => b,
        Err(e) => return fail(StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    };
    let q = |name: &str| query.as_deref().and_then(|q| query_param(q, name));
    let result: Reply = async {
        match (&parts.method, path.as_str()) {
            (&Method::GET, api::STATUS) => status(&state).await,
            (&Method::GET, api::KEYS) => list_keys(&state, q("state")).await,
            (&Method::POST, api::KEYS_ADD) => add_keys(&state, parse(&body)?).await,
            (&Method::POST, api::KEYS_REMOVE) => remove_keys(&state, parse(&body)?).await,
            (&Method::POST, api::KEYS_DISABLE) => set_disabled(&state, parse(&body)?, true),
            (&Method::POST, api::KEYS_ENABLE) => set_disabled(&state, parse(&body)?, false),
            (&Method::POST, api::KEYS_VERIFY) => verify(&state, parse(&body)?).await,
            (&Method::POST, api::KEYS_RESET) => reset(&state, parse(&body)?),
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
    }))
}

// ---- keys ------------------------------------------------------------------------------------

async fn list_keys(state: &Arc<State>, filter: Option<String>) -> Reply {
    if let Some(f) = &filter
        && !["active", "cooling", "invalid", "disabled"].contains(&f.as_str())
    {
        return Err(fail(
            StatusCode::BAD_REQUEST,
            format!("unknown state {f:?}: use active, cooling, invalid or disabled"),
        ));
    }
    let now = state.now();
    let store = state.store.clone();
    let usage = blocking(move || store.key_usage(now - Duration::hours(24))).await?;
    let views: Vec<api::KeyView> = state
        .pool
        .snapshot()
        .iter()
        .map(|k| {
            let h = k.health();
            let u = usage.get(&k.id).cloned().unwrap_or_default();
            let cooldowns: Vec<api::CooldownView> = h
                .cooldowns()
                .iter()
                .filter(|(_, c)| c.until > now)
                .map(|(model, c)| api::CooldownView {
                    model: model.clone(),
                    until: rfc3339(c.until),
                    reason: c.reason.as_str().into(),
                })
                .collect();
            api::KeyView {
                id: k.id,
                key: shared::redact(k.secret.expose()),
                state: h.display_state(now).into(),
                failures: h.failures(),
                cooling_until: h.cooldowns().values().map(|c| c.until).filter(|u| *u > now).max().map(rfc3339),
                cooldowns,
                last_used: u.last_used.map(rfc3339),
                requests_24h: u.requests,
                errors_24h: u.errors,
                last_error: h.last_error().map(shared::redact_keys_in),
            }
        })
        .filter(|v| filter.as_deref().is_none_or(|f| v.state == f))
        .collect();
    Ok(ok(&views))
}

async fn add_keys(state: &Arc<State>, req: api::AddKeysRequest) -> Reply {
    let mut valid = Vec::with_capacity(req.keys.len());
    let mut malformed = req.malformed;
    for k in req.keys {
        let k = k.trim().to_string();
        if shared::admin::is_plain_key(&k) {
            valid.push(k);
        } else {
            malformed += 1;
        }
    }
    let store = state.store.clone();
    let now = state.now();
    let count = valid.len() as u64;
    let (added, duplicates) = blocking(move || store.add_keys(&valid, false, now)).await?;
    let added_n = added.len() as u64;
    state
        .pool
        .insert(added.into_iter().map(|r| KeyEntry::new(r.id, crate::secret::Secret::new(r.key), r.health)).collect());
    tracing::info!("keys added: {added_n}, duplicates: {duplicates}, malformed: {malformed}");
    debug_assert_eq!(added_n + duplicates, count);
    Ok(ok(&api::AddKeysResponse { added: added_n, duplicates, malformed }))
}

/// Resolves KEY arguments (numeric ids or unique tails of 4+ characters) and `--all`/`--invalid`.
fn select(state: &State, sel: &api::KeySelection) -> Result<Vec<Arc<KeyEntry>>, AdminError> {
    let keys = state.pool.snapshot();
    let mut out: Vec<Arc<KeyEntry>> = Vec::new();
    let mut push = |k: &Arc<KeyEntry>| {
        if !out.iter().any(|o| o.id == k.id) {
            out.push(k.clone());
        }
    };
    if sel.all {
        keys.iter().for_each(&mut push);
    }
    if sel.invalid {
        keys.iter().filter(|k| k.read(|h| h.state() == KeyState::Invalid)).for_each(&mut push);
    }
    for arg in &sel.keys {
        let arg = arg.trim();
        // A number is an id when such an id exists; otherwise a numeric tail of 4+ characters.
        if !arg.is_empty() && arg.bytes().all(|b| b.is_ascii_digit()) {
            if let Some(k) = arg.parse::<i64>().ok().and_then(|id| keys.iter().find(|k| k.id == id)) {
                push(k);
                continue;
            }
            if arg.len() < 4 {
                return Err(fail(StatusCode::NOT_FOUND, format!("no key with id {arg}")));
            }
        }
        if arg.chars().count() < 4 {
            return Err(fail(
                StatusCode::BAD_REQUEST,
                format!("{arg:?}: give a numeric id or at least the last 4 characters of a key"),
            ));
        }
        let matches: Vec<&Arc<KeyEntry>> = keys.iter().filter(|k| k.secret.expose().ends_with(arg)).collect();
        match matches.as_slice() {
            [] => {
                return Err(fail(StatusCode::NOT_FOUND, format!("no key ends with {:?}", shared::redact_keys_in(arg))));
            }
            [k] => push(k),
            many => {
                return Err(AdminError {
                    status: StatusCode::CONFLICT,
                    body: ErrorBody {
                        error: format!(
                            "{} keys end with {:?}; give more characters or an id",
                            many.len(),
                            shared::redact_keys_in(arg)
                        ),
                        candidates: many.iter().map(|k| key_ref(k)).collect(),
                    },
                });
            }
        }
    }
    Ok(out)
}

fn require_some(sel: &api::KeySelection, what: &str) -> Result<(), AdminError> {
    if sel.keys.is_empty() && !sel.all && !sel.invalid {
        return Err(fail(StatusCode::BAD_REQUEST, format!("name the keys to {what} (ids or tails), or use --all")));
    }
    Ok(())
}

async fn remove_keys(state: &Arc<State>, sel: api::KeySelection) -> Reply {
    require_some(&sel, "remove")?;
    let keys = select(state, &sel)?;
    let ids: Vec<i64> = keys.iter().map(|k| k.id).collect();
    let store = state.store.clone();
    let removed = ids.clone();
    blocking(move || store.remove_keys(&removed)).await?;
    state.pool.remove(&ids);
    Ok(ok(&keys.iter().map(|k| key_ref(k)).collect::<Vec<_>>()))
}

fn set_disabled(state: &State, sel: api::KeySelection, disable: bool) -> Reply {
    require_some(&sel, if disable { "disable" } else { "enable" })?;
    let keys = select(state, &sel)?;
    for k in &keys {
        let changed = if disable { state.pool.disable(k) } else { state.pool.enable(k) };
        if let Some(h) = changed {
            state.logbook.health(k.id, h);
        }
    }
    Ok(ok(&keys.iter().map(|k| key_ref(k)).collect::<Vec<_>>()))
}

fn reset(state: &State, sel: api::KeySelection) -> Reply {
    require_some(&sel, "reset")?;
    let keys = select(state, &sel)?;
    for k in &keys {
        if let Some(h) = state.pool.reset(k) {
            state.logbook.health(k.id, h);
        }
    }
    Ok(ok(&keys.iter().map(|k| key_ref(k)).collect::<Vec<_>>()))
}

async fn verify(state: &Arc<State>, sel: api::KeySelection) -> Reply {
    // With no KEY and no flag, verify every key.
    let sel = if sel.keys.is_empty() && !sel.invalid { api::KeySelection { all: true, ..sel } } else { sel };
    let keys = select(state, &sel)?;
    Ok(ok(&crate::verify::verify_keys(state, keys).await))
}

// ---- settings --------------------------------------------------------------------------------

fn setting_view(state: &State, name: &str) -> Option<api::SettingView> {
    let field = find_field(name)?;
    let config = state.config.load();
    Some(api::SettingView {
        name: field.name.into(),
        value: config::field_value(&config, field.name).unwrap_or_default(),
        source: state.settings.source(field.name).into(),
        hot: field.hot,
    })
}

fn settings_list(state: &State) -> Vec<api::SettingView> {
    FIELDS.iter().filter_map(|f| setting_view(state, f.name)).collect()
}

fn unknown_setting(name: &str) -> AdminError {
    fail(StatusCode::NOT_FOUND, format!("unknown setting {name:?}; `gbctl settings list` shows every name"))
}

fn setting_get(state: &State, name: &str) -> Reply {
    setting_view(state, name).map(|v| ok(&v)).ok_or_else(|| unknown_setting(name))
}

async fn setting_set(state: &Arc<State>, name: &str, req: api::SetSettingRequest) -> Reply {
    let field = find_field(name).ok_or_else(|| unknown_setting(name))?;
    if !field.hot {
        return Err(fail(
            StatusCode::BAD_REQUEST,
            format!("{name} is not hot: change it in the config file or environment and restart gatewayd"),
        ));
    }
    let value = config::parse_literal(&req.value).map_err(|e| fail(StatusCode::BAD_REQUEST, format!("{name}: {e}")))?;
    apply_runtime(state, name, Some(value)).await?;
    setting_get(state, name)
}

async fn setting_unset(state: &Arc<State>, name: &str) -> Reply {
    find_field(name).ok_or_else(|| unknown_setting(name))?;
    apply_runtime(state, name, None).await?;
    setting_get(state, name)
}

/// Validates a runtime change, persists it, then swaps the snapshot the next request reads.
async fn apply_runtime(state: &Arc<State>, name: &str, value: Option<toml::Value>) -> Result<(), AdminError> {
    let no_token_left = |c: &crate::config::Config| match c.auth.tokens.is_empty() && state.generated_tokens.is_empty()
    {
        true => Err("auth.tokens: refusing a change that leaves no client token".to_string()),
        false => Ok(()),
    };
    let persist = async |literal: Option<String>| {
        let store = state.store.clone();
        let (key, now) = (name.to_string(), state.now());
        blocking(move || match literal {
            Some(l) => store.set_setting(&key, &l, now),
            None => store.unset_setting(&key).map(|_| ()),
        })
        .await
    };
    state.settings.change(&state.config, name, value, no_token_left, persist).await.map_err(|e| match e {
        ChangeError::Invalid(m) => fail(StatusCode::BAD_REQUEST, m),
        ChangeError::Persist(e) => e,
    })
}

// ---- logs and stats --------------------------------------------------------------------------

fn since_param(
    q: &(dyn Fn(&str) -> Option<String> + Sync),
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, AdminError> {
    match q("since") {
        None => Ok(None),
        Some(s) => shared::admin::parse_duration(&s)
            .map(|secs| Some(now - Duration::seconds(secs as i64)))
            .map_err(|e| fail(StatusCode::BAD_REQUEST, e)),
    }
}

fn log_filter(state: &State, q: &(dyn Fn(&str) -> Option<String> + Sync)) -> Result<LogFilter, AdminError> {
    let limit = match q("n") {
        None => 20,
        Some(n) => n.parse::<u32>().map_err(|_| fail(StatusCode::BAD_REQUEST, format!("-n {n:?}: not a count")))?,
    };
    let key_id = match q("key") {
        None => None,
        Some(k) => {
            let sel = api::KeySelection { keys: vec![k], ..Default::default() };
            select(state, &sel)?.first().map(|k| k.id)
        }
    };
    Ok(LogFilter { limit, key_id, model: q("model"), since: since_param(q, state.now())?, after_id: None })
}

fn key_text(state: &State, id: Option<i64>, stored: Option<&str>) -> Option<String> {
    let id = id?;
    Some(match stored {
        Some(k) => shared::redact(k),
        None => state.pool.get(id).map(|k| shared::redact(k.secret.expose())).unwrap_or_else(|| format!("#{id}")),
    })
}

fn log_view(state: &State, r: &RequestRecord, stored_key: Option<&str>) -> api::LogView {
    api::LogView {
        ts: rfc3339(r.ts),
        route: r.route.clone(),
        model: r.model.clone(),
        key: key_text(state, r.key_id, stored_key),
        status: r.status,
        latency_ms: r.latency_ms,
        attempts: r.attempt_count,
        trail: r.trail(),
        stream: r.stream,
        prompt_tokens: r.prompt_tokens,
        completion_tokens: r.completion_tokens,
        error: r.error.clone(),
    }
}

fn error_view(state: &State, e: &ErrorRecord, stored_key: Option<&str>) -> api::ErrorLogView {
    api::ErrorLogView {
        ts: rfc3339(e.ts),
        route: e.route.clone(),
        model: e.model.clone(),
        key: key_text(state, e.key_id, stored_key),
        status: e.status,
        error: e.error.clone(),
        body: e.body.clone(),
    }
}

async fn logs(state: &Arc<State>, q: &(dyn Fn(&str) -> Option<String> + Sync)) -> Reply {
    let filter = log_filter(state, q)?;
    let store = state.store.clone();
    if q("errors").is_some_and(|v| v == "true") {
        let rows = blocking(move || store.recent_errors(&filter)).await?;
        Ok(ok(&rows.iter().map(|r| error_view(state, &r.record, r.key.as_deref())).collect::<Vec<_>>()))
    } else {
        let rows = blocking(move || store.recent_requests(&filter)).await?;
        Ok(ok(&rows.iter().map(|r| log_view(state, &r.record, r.key.as_deref())).collect::<Vec<_>>()))
    }
}

/// Streams new records as NDJSON while they are written, until the client leaves or the daemon
/// stops.
fn follow(state: &Arc<State>, q: &(dyn Fn(&str) -> Option<String> + Sync)) -> Reply {
    let filter = log_filter(state, q)?;
    let errors = q("errors").is_some_and(|v| v == "true");
    let mut records = state.logbook.subscribe();
    let mut stopping = state.stopping.subscribe();
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(64);
    let st = state.clone();
    tokio::spawn(async move {
        loop {
            let written = tokio::select! {
                _ = stopping.wait_for(|s| *s) => break,
                _ = tx.closed() => break,
                w = records.recv() => match w {
                    Ok(w) => w,
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(_) => break,
                },
            };
            let line = match (&written, errors) {
                (Written::Request(_, r), false) if matches(&filter, r.key_id, r.model.as_deref(), &r.attempts) => {
                    serde_json::to_vec(&log_view(&st, r, None))
                }
                (Written::Error(_, e), true) if matches(&filter, e.key_id, e.model.as_deref(), &[]) => {
                    serde_json::to_vec(&error_view(&st, e, None))
                }
                _ => continue,
            };
            let Ok(mut line) = line else { continue };
            line.push(b'\n');
            if tx.send(Bytes::from(line)).await.is_err() {
                break;
            }
        }
    });
    let mut res = Response::new(crate::body::channel(rx));
    res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/x-ndjson"));
    Ok(res)
}

fn matches(f: &LogFilter, key_id: Option<i64>, model: Option<&str>, attempts: &[crate::record::AttemptRecord]) -> bool {
    let key_ok = f.key_id.is_none_or(|id| key_id == Some(id) || attempts.iter().any(|a| a.key_id == id));
    let model_ok = f.model.as_deref().is_none_or(|m| model == Some(m));
    key_ok && model_ok
}

async fn stats(state: &Arc<State>, q: &(dyn Fn(&str) -> Option<String> + Sync)) -> Reply {
    let by = match q("by").as_deref() {
        None | Some("model") => StatsBy::Model,
        Some("key") => StatsBy::Key,
        Some(other) => return Err(fail(StatusCode::BAD_REQUEST, format!("--by {other:?}: use key or model"))),
    };
    let since = since_param(q, state.now())?.unwrap_or(state.now() - Duration::hours(24));
    let store = state.store.clone();
    let groups = blocking(move || store.stats(by, since)).await?;
    let rows: Vec<api::StatsRow> = groups
        .into_iter()
        .map(|mut g| {
            g.latencies.sort_unstable();
            // By key, the group is the key's text unless the key is gone (`#id`) or absent.
            let name = match by {
                StatsBy::Key if !g.name.starts_with('#') && g.name != "(none)" => shared::redact(&g.name),
                _ => g.name,
            };
            api::StatsRow {
                name,
                requests: g.requests,
                errors: g.errors,
                prompt_tokens: g.prompt_tokens,
                completion_tokens: g.completion_tokens,
                p50_ms: percentile(&g.latencies, 50),
                p95_ms: percentile(&g.latencies, 95),
            }
        })
        .collect();
    Ok(ok(&rows))
}

/// Nearest-rank percentile of sorted values.
pub fn percentile(sorted: &[u64], p: u64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (p as usize * sorted.len()).div_ceil(100).max(1);
    sorted[rank - 1]
}

// ---- metrics ---------------------------------------------------------------------------------

fn metrics(state: &State) -> Response<Body> {
    let m = state.logbook.metrics().snapshot();
    let now = state.now();
    let mut out = String::new();
    let esc = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n");
    let _ = writeln!(out, "# HELP gateway_requests_total Client requests by route, model and status.");
    let _ = writeln!(out, "# TYPE gateway_requests_total counter");
    for ((route, model, status), n) in &m.requests {
        let _ = writeln!(
            out,
            "gateway_requests_total{{route=\"{}\",model=\"{}\",status=\"{status}\"}} {n}",
            esc(route),
            esc(model)
        );
    }
    let _ = writeln!(out, "# HELP gateway_upstream_attempts_total Upstream attempts by key id and outcome.");
    let _ = writeln!(out, "# TYPE gateway_upstream_attempts_total counter");
    for ((key, outcome), n) in &m.attempts {
        let _ = writeln!(out, "gateway_upstream_attempts_total{{key_id=\"{key}\",outcome=\"{outcome}\"}} {n}");
    }
    let _ = writeln!(out, "# HELP gateway_request_duration_seconds Client request latency by route.");
    let _ = writeln!(out, "# TYPE gateway_request_duration_seconds histogram");
    for (route, (buckets, sum_ms)) in &m.latency {
        let mut cumulative = 0;
        for (i, count) in buckets.iter().enumerate() {
            cumulative += count;
            let le = crate::logbook::LATENCY_BUCKETS_MS
                .get(i)
                .map(|ms| format!("{}", *ms as f64 / 1000.0))
                .unwrap_or("+Inf".into());
            let _ = writeln!(
                out,
                "gateway_request_duration_seconds_bucket{{route=\"{}\",le=\"{le}\"}} {cumulative}",
                esc(route)
            );
        }
        let _ = writeln!(
            out,
            "gateway_request_duration_seconds_sum{{route=\"{}\"}} {}",
            esc(route),
            *sum_ms as f64 / 1000.0
        );
        let _ = writeln!(out, "gateway_request_duration_seconds_count{{route=\"{}\"}} {cumulative}", esc(route));
    }
    let _ = writeln!(out, "# HELP gateway_keys Keys by state.");
    let _ = writeln!(out, "# TYPE gateway_keys gauge");
    let mut by_state: BTreeMap<&str, u64> =
        ["active", "cooling", "invalid", "disabled"].iter().map(|s| (*s, 0)).collect();
    for k in state.pool.snapshot().iter() {
        *by_state.entry(k.read(|h| h.display_state(now))).or_default() += 1;
    }
    for (s, n) in by_state {
        let _ = writeln!(out, "gateway_keys{{state=\"{s}\"}} {n}");
    }
    let _ = writeln!(out, "# HELP gateway_tokens_total Tokens by model and kind (prompt, completion).");
    let _ = writeln!(out, "# TYPE gateway_tokens_total counter");
    for ((model, kind), n) in &m.tokens {
        let _ = writeln!(out, "gateway_tokens_total{{model=\"{}\",kind=\"{kind}\"}} {n}", esc(model));
    }
    let _ =
        writeln!(out, "# HELP gateway_log_records_dropped_total Log records dropped because the writer fell behind.");
    let _ = writeln!(out, "# TYPE gateway_log_records_dropped_total counter");
    let _ = writeln!(out, "gateway_log_records_dropped_total {}", state.logbook.dropped());
    let mut res = Response::new(full(out));
    res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4"));
    res
}

#[cfg(test)]
mod tests {
    use super::percentile;

    #[test]
    fn percentiles_by_nearest_rank() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!((percentile(&v, 50), percentile(&v, 95)), (50, 95));
        assert_eq!(percentile(&[7], 95), 7);
        assert_eq!(percentile(&[], 50), 0);
        assert_eq!(percentile(&[1, 2, 3], 50), 2);
    }
}
