//! Live verification of keys, for `gbctl keys verify` and the scheduled job: the free
//! `GET /v1beta/models/{keys.verify_model}` probe, or a 1-token generateContent when
//! `keys.verify_generate` is set. A Vertex AI Express key is probed at `vertex.base_url` with
//! a free `countTokens` (or the same generateContent). Runs concurrently with a small bound and
//! updates key state.

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method};
use shared::admin::VerifyResult;
use tokio::time::Instant;

use crate::keypool::Rules;
use crate::keypool::{KeyEntry, KeyKind};
use crate::outcome::{self, Expect, Outcome};
use crate::state::State;
use crate::upstream::{self, KeyPlacement, OutBody, Outgoing};

/// At most this many probes run at once, so a verify of hundreds of keys does not look like a
/// burst to Google.
pub const CONCURRENCY: usize = 8;

pub async fn verify_keys(state: &Arc<State>, keys: Vec<Arc<KeyEntry>>) -> Vec<VerifyResult> {
    let semaphore = Arc::new(tokio::sync::Semaphore::new(CONCURRENCY));
    let mut tasks = tokio::task::JoinSet::new();
    for (i, key) in keys.into_iter().enumerate() {
        let state = state.clone();
        let semaphore = semaphore.clone();
        tasks.spawn(async move {
            let _permit = semaphore.acquire_owned().await;
            (i, verify_one(&state, &key).await)
        });
    }
    let mut results: Vec<(usize, VerifyResult)> = tasks.join_all().await;
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}

/// The probe request for a key of `kind`, and the model it is about.
fn probe(state: &State, kind: KeyKind) -> (Outgoing, String) {
    let cfg = state.config.load();
    let model = cfg.keys.verify_model.trim_start_matches("models/").to_string();
    let mut headers = HeaderMap::new();
    headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    const HI: &str = r#"{"contents":[{"role":"user","parts":[{"text":"hi"}]}]}"#;
    const ONE_TOKEN: &str =
        r#"{"contents":[{"role":"user","parts":[{"text":"hi"}]}],"generationConfig":{"maxOutputTokens":1}}"#;
    let (method, path, body) = match (kind, cfg.keys.verify_generate) {
        (KeyKind::Gemini, true) => {
            (Method::POST, format!("/v1beta/models/{model}:generateContent"), Bytes::from_static(ONE_TOKEN.as_bytes()))
        }
        (KeyKind::Gemini, false) => (Method::GET, format!("/v1beta/models/{model}"), Bytes::new()),
        (KeyKind::Vertex, true) => (
            Method::POST,
            crate::dialect::vertex::path(&model, "generateContent"),
            Bytes::from_static(ONE_TOKEN.as_bytes()),
        ),
        (KeyKind::Vertex, false) => {
            (Method::POST, crate::dialect::vertex::path(&model, "countTokens"), Bytes::from_static(HI.as_bytes()))
        }
    };
    let out = Outgoing {
        method,
        path_and_query: path,
        headers,
        body: OutBody::Bytes(body),
        placement: KeyPlacement::GoogHeader,
    };
    (out, model)
}

async fn verify_one(state: &State, key: &KeyEntry) -> VerifyResult {
    let cfg = state.config.load();
    let (out, model) = probe(state, key.labels.kind);
    let base_url = match key.labels.kind {
        KeyKind::Gemini => &cfg.upstream.base_url,
        KeyKind::Vertex => &cfg.vertex.base_url,
    };
    let started = Instant::now();
    let deadline = started + std::time::Duration::from_secs(cfg.upstream.timeout_secs.min(60));
    let answer = match out.request(base_url, key.secret.expose()) {
        Err(e) => Err(e.to_string()),
        Ok(request) => match state.upstream.send(&cfg.upstream, key.id, request, deadline).await {
            Ok(res) => {
                let status = res.status();
                upstream::read_body(res.into_body(), deadline, 1 << 20)
                    .await
                    .map(|b| (status, b))
                    .map_err(|e| e.to_string())
            }
            Err(e) => Err(e.to_string()),
        },
    };
    let latency_ms = started.elapsed().as_millis() as u64;
    let (status, outcome) = match &answer {
        Ok((status, _)) if status.is_success() => (Some(status.as_u16()), Outcome::Success),
        Ok((status, body)) => (
            Some(status.as_u16()),
            outcome::classify(status.as_u16(), body, state.now(), cfg.keys.cooldown_secs, Expect::Json),
        ),
        Err(e) => (None, Outcome::Transient(e.clone())),
    };
    let ok = outcome == Outcome::Success;
    let error = match (&answer, ok) {
        (_, true) => None,
        (Ok((status, body)), false) => Some(upstream_message(status.as_u16(), body)),
        (Err(e), false) => Some(e.clone()),
    };
    let changed = if ok {
        let restored = state.pool.restore(key);
        if restored.is_some() {
            tracing::info!(key = %key.secret, "key verified: back in rotation");
        }
        restored
    } else if matches!(outcome, Outcome::InvalidKey(_) | Outcome::RateLimited(_)) {
        // Only what the key itself caused changes it: a probe that met an outage or our own
        // network fault says nothing about the key, and must not back the model off for clients.
        let rules = Rules { max_failures: cfg.keys.max_failures, cooldown_secs: cfg.keys.cooldown_secs };
        let report = state.pool.report(key, &model, &outcome, state.now(), rules);
        for (id, h) in report.project {
            state.logbook.health(id, h);
        }
        report.health
    } else {
        None
    };
    // A verify's state change is committed before its result is reported.
    let (ok, error) = match changed {
        Some(h) => match state.logbook.health_committed(key.id, h).await {
            Ok(()) => (ok, error),
            Err(e) => (false, Some(format!("{} (the new state was not saved: {e})", error.unwrap_or_default()))),
        },
        None => (ok, error),
    };
    VerifyResult { id: key.id, key: shared::redact(key.secret.expose()), ok, status, latency_ms, error }
}

fn upstream_message(status: u16, body: &[u8]) -> String {
    let message = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.pointer("/error/message").and_then(|m| m.as_str()).map(String::from))
        .unwrap_or_else(|| String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned());
    shared::redact_keys_in(&format!("{status} {message}"))
}
