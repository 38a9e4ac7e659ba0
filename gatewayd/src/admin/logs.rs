//! The request and error logs, `logs -f`, and stats.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use http::{HeaderValue, Response, StatusCode, header};
use shared::admin::{self as api};

use super::keys::select;
use super::{AdminError, Reply, blocking, fail, ok, rfc3339};
use crate::logbook::Written;
use crate::record::{ErrorRecord, RequestRecord};
use crate::state::State;
use crate::store::{LogFilter, StatsBy};
use bytes::Bytes;

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
        resource: r.resource.clone(),
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

pub(super) async fn logs(state: &Arc<State>, q: &(dyn Fn(&str) -> Option<String> + Sync)) -> Reply {
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
pub(super) fn follow(state: &Arc<State>, q: &(dyn Fn(&str) -> Option<String> + Sync)) -> Reply {
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

pub(super) async fn stats(state: &Arc<State>, q: &(dyn Fn(&str) -> Option<String> + Sync)) -> Reply {
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
        .map(|g| {
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
                p50_ms: g.latencies.percentile(50),
                p95_ms: g.latencies.percentile(95),
            }
        })
        .collect();
    Ok(ok(&rows))
}
