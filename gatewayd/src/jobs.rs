//! Cron-driven jobs: re-verification of invalid keys and of keys whose cooldown has ended
//! (`keys.verify_schedule`), and log retention (`logs.cleanup_schedule`). Each job reads its
//! schedule from the live configuration and is woken when a setting changes, so a new schedule
//! (or `""`, which disables it) takes effect at once, with no restart.

use std::str::FromStr;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};

use crate::config::Config;
use crate::state::State;

/// Rows deleted per statement, so the retention job never holds the database for long.
pub const RETENTION_BATCH: u32 = 1000;

pub fn spawn(state: &Arc<State>) -> Vec<tokio::task::JoinHandle<()>> {
    vec![
        tokio::spawn(schedule(
            state.clone(),
            state.stopping.subscribe(),
            "key verification",
            |c| c.keys.verify_schedule.clone(),
            |s| {
                Box::pin(async move {
                    reverify(&s).await;
                })
            },
        )),
        tokio::spawn(schedule(
            state.clone(),
            state.stopping.subscribe(),
            "log retention",
            |c| c.logs.cleanup_schedule.clone(),
            |s| {
                Box::pin(async move {
                    clean_logs(&s).await;
                })
            },
        )),
    ]
}

type JobFuture = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// The next time a cron expression fires after `now`; `None` when disabled or invalid.
pub fn next_fire(expr: &str, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    if expr.trim().is_empty() {
        return None;
    }
    cron::Schedule::from_str(expr).ok()?.after(&now).next()
}

async fn schedule(
    state: Arc<State>,
    mut stopping: tokio::sync::watch::Receiver<bool>,
    name: &'static str,
    expr_of: fn(&Config) -> String,
    job: fn(Arc<State>) -> JobFuture,
) {
    loop {
        let changed = state.settings.changed();
        tokio::pin!(changed);
        changed.as_mut().enable();
        let now = state.now();
        let next = next_fire(&expr_of(&state.config.load()), now);
        let wait = next.map(|n| (n - now).to_std().unwrap_or_default());
        let due = tokio::select! {
            _ = stopping.wait_for(|s| *s) => return,
            _ = &mut changed => false,
            _ = async { tokio::time::sleep(wait.unwrap_or_default()).await }, if wait.is_some() => true,
        };
        if due {
            tracing::info!("running the {name} job");
            job(state.clone()).await;
        }
    }
}

/// Verifies every invalid key and every key whose cooldown has ended; passing keys return to
/// `active` with their failure count cleared. Returns how many keys were verified and passed.
pub async fn reverify(state: &Arc<State>) -> (usize, usize) {
    let now = state.now();
    let due: Vec<_> = state.pool.snapshot().iter().filter(|k| k.read(|h| h.due_for_verify(now))).cloned().collect();
    if due.is_empty() {
        return (0, 0);
    }
    let results = crate::verify::verify_keys(state, due).await;
    let passed = results.iter().filter(|r| r.ok).count();
    tracing::info!("key verification: {} verified, {passed} passed", results.len());
    (results.len(), passed)
}

/// Deletes request-log and error-log rows older than their retention, in bounded batches.
pub async fn clean_logs(state: &Arc<State>) -> (usize, usize) {
    let cfg = state.config.load();
    let now = state.now();
    let requests_before = now - Duration::days(cfg.logs.request_retention_days as i64);
    let errors_before = now - Duration::days(cfg.logs.error_retention_days as i64);
    let mut totals = (0, 0);
    for (is_requests, before) in [(true, requests_before), (false, errors_before)] {
        loop {
            let store = state.store.clone();
            let deleted = tokio::task::spawn_blocking(move || {
                if is_requests {
                    store.delete_old_requests(before, RETENTION_BATCH)
                } else {
                    store.delete_old_errors(before, RETENTION_BATCH)
                }
            })
            .await;
            let n = match deleted {
                Ok(Ok(n)) => n,
                Ok(Err(e)) => {
                    tracing::error!("log retention failed: {e}");
                    break;
                }
                Err(e) => {
                    tracing::error!("log retention task failed: {e}");
                    break;
                }
            };
            if is_requests {
                totals.0 += n;
            } else {
                totals.1 += n;
            }
            if n < RETENTION_BATCH as usize {
                break;
            }
            // Let the log writer in between batches.
            tokio::task::yield_now().await;
        }
    }
    if totals != (0, 0) {
        tracing::info!("log retention: deleted {} request rows and {} error rows", totals.0, totals.1);
    }
    // Bindings of resources past their expiry go too (Google has deleted the files by then).
    let store = state.store.clone();
    match tokio::task::spawn_blocking(move || store.delete_expired_resources(now)).await {
        Ok(Ok(n)) if n > 0 => tracing::info!("{n} expired resource binding(s) removed"),
        Ok(Err(e)) => tracing::error!("removing expired resource bindings failed: {e}"),
        _ => {}
    }
    let store = state.store.clone();
    match tokio::task::spawn_blocking(move || store.delete_expired_responses(now)).await {
        Ok(Ok(n)) if n > 0 => tracing::info!("{n} stored response(s) past responses.store_days deleted"),
        Ok(Err(e)) => tracing::error!("deleting stored responses failed: {e}"),
        _ => {}
    }
    state.affinity.prune(now);
    totals
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_fire_follows_cron_with_seconds() {
        let now = DateTime::parse_from_rfc3339("2026-01-01T03:29:59Z").unwrap().with_timezone(&Utc);
        assert_eq!(next_fire("0 30 3 * * *", now).unwrap().to_rfc3339(), "2026-01-01T03:30:00+00:00");
        assert_eq!(next_fire("0 0 * * * *", now).unwrap().to_rfc3339(), "2026-01-01T04:00:00+00:00");
        assert_eq!(next_fire("", now), None);
        assert_eq!(next_fire("nonsense", now), None);
    }
}
