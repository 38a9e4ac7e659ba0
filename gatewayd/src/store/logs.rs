//! The request and error logs: batched inserts, filtered reads, stats and retention.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rusqlite::params;

use super::{Result, Store, from_ms, ms};
use crate::record::{ErrorRecord, RequestRecord};

#[derive(Debug, Clone, Default)]
pub struct LogFilter {
    pub limit: u32,
    pub key_id: Option<i64>,
    pub model: Option<String>,
    pub since: Option<DateTime<Utc>>,
    /// Only rows with an id above this (for following).
    pub after_id: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct StoredRequest {
    pub id: i64,
    pub record: RequestRecord,
    pub key: Option<String>,
}

#[derive(Debug, Clone)]
pub struct StoredError {
    pub id: i64,
    pub record: ErrorRecord,
    pub key: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatsBy {
    Key,
    Model,
}

#[derive(Debug, Clone)]
pub struct StatsGroup {
    pub name: String,
    pub requests: u64,
    pub errors: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub latencies: Vec<u64>,
}

impl Store {
    /// Inserts a batch of request and error records in one transaction; returns their row ids.
    pub fn insert_logs(&self, requests: &[RequestRecord], errors: &[ErrorRecord]) -> Result<(Vec<i64>, Vec<i64>)> {
        let mut c = self.conn()?;
        let tx = c.transaction()?;
        let mut ids = Vec::with_capacity(requests.len());
        let mut error_ids = Vec::with_capacity(errors.len());
        {
            let mut req = tx.prepare_cached(
                "INSERT INTO request_log (ts, route, model, key_id, status, latency_ms, attempts, trail, stream, prompt_tokens, completion_tokens, error)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            )?;
            let mut att = tx.prepare_cached(
                "INSERT INTO attempt_log (request_id, ts, key_id, status, ok, latency_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?;
            for r in requests {
                req.execute(params![
                    ms(r.ts),
                    r.route,
                    r.model,
                    r.key_id,
                    r.status,
                    r.latency_ms,
                    r.attempts.len() as u32,
                    r.trail(),
                    r.stream,
                    r.prompt_tokens,
                    r.completion_tokens,
                    r.error
                ])?;
                let id = tx.last_insert_rowid();
                ids.push(id);
                for a in &r.attempts {
                    att.execute(params![id, ms(a.ts), a.key_id, a.status, a.ok, a.latency_ms])?;
                }
            }
            let mut err = tx.prepare_cached(
                "INSERT INTO error_log (ts, route, model, key_id, status, error, body, request_body) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?;
            for e in errors {
                err.execute(params![ms(e.ts), e.route, e.model, e.key_id, e.status, e.error, e.body, e.request_body])?;
                error_ids.push(tx.last_insert_rowid());
            }
        }
        tx.commit()?;
        Ok((ids, error_ids))
    }

    pub fn recent_requests(&self, f: &LogFilter) -> Result<Vec<StoredRequest>> {
        let c = self.conn()?;
        let mut stmt = c.prepare(
            "SELECT r.id, r.ts, r.route, r.model, r.key_id, r.status, r.latency_ms, r.attempts, r.trail, r.stream,
                    r.prompt_tokens, r.completion_tokens, r.error, k.key
             FROM request_log r LEFT JOIN keys k ON k.id = r.key_id
             WHERE (?1 IS NULL OR r.key_id = ?1 OR EXISTS (SELECT 1 FROM attempt_log a WHERE a.request_id = r.id AND a.key_id = ?1))
               AND (?2 IS NULL OR r.model = ?2) AND (?3 IS NULL OR r.ts >= ?3) AND (?4 IS NULL OR r.id > ?4)
             ORDER BY r.id DESC LIMIT ?5",
        )?;
        let rows = stmt.query_map(params![f.key_id, f.model, f.since.map(ms), f.after_id, f.limit], |r| {
            Ok(StoredRequest {
                id: r.get(0)?,
                record: RequestRecord {
                    ts: from_ms(r.get(1)?),
                    route: r.get(2)?,
                    model: r.get(3)?,
                    key_id: r.get(4)?,
                    status: r.get(5)?,
                    latency_ms: r.get(6)?,
                    attempts: Vec::new(),
                    attempt_count: r.get(7)?,
                    stored_trail: Some(r.get(8)?),
                    stream: r.get(9)?,
                    prompt_tokens: r.get(10)?,
                    completion_tokens: r.get(11)?,
                    error: r.get(12)?,
                },
                key: r.get(13)?,
            })
        })?;
        let mut out: Vec<StoredRequest> = rows.collect::<rusqlite::Result<_>>()?;
        out.reverse();
        Ok(out)
    }

    pub fn recent_errors(&self, f: &LogFilter) -> Result<Vec<StoredError>> {
        let c = self.conn()?;
        let mut stmt = c.prepare(
            "SELECT e.id, e.ts, e.route, e.model, e.key_id, e.status, e.error, e.body, e.request_body, k.key
             FROM error_log e LEFT JOIN keys k ON k.id = e.key_id
             WHERE (?1 IS NULL OR e.key_id = ?1) AND (?2 IS NULL OR e.model = ?2) AND (?3 IS NULL OR e.ts >= ?3)
               AND (?4 IS NULL OR e.id > ?4)
             ORDER BY e.id DESC LIMIT ?5",
        )?;
        let rows = stmt.query_map(params![f.key_id, f.model, f.since.map(ms), f.after_id, f.limit], |r| {
            Ok(StoredError {
                id: r.get(0)?,
                record: ErrorRecord {
                    ts: from_ms(r.get(1)?),
                    route: r.get(2)?,
                    model: r.get(3)?,
                    key_id: r.get(4)?,
                    status: r.get(5)?,
                    error: r.get(6)?,
                    body: r.get(7)?,
                    request_body: r.get(8)?,
                },
                key: r.get(9)?,
            })
        })?;
        let mut out: Vec<StoredError> = rows.collect::<rusqlite::Result<_>>()?;
        out.reverse();
        Ok(out)
    }

    pub fn count_requests_since(&self, since: DateTime<Utc>) -> Result<u64> {
        Ok(self.conn()?.query_row("SELECT COUNT(*) FROM request_log WHERE ts >= ?1", [ms(since)], |r| r.get(0))?)
    }

    /// Requests grouped by key (final key of the request) or model since a time, with latencies
    /// for percentiles.
    pub fn stats(&self, by: StatsBy, since: DateTime<Utc>) -> Result<Vec<StatsGroup>> {
        let c = self.conn()?;
        let group = match by {
            StatsBy::Key => "COALESCE(k.key, CASE WHEN r.key_id IS NULL THEN '(none)' ELSE '#' || r.key_id END)",
            StatsBy::Model => "COALESCE(r.model, '(none)')",
        };
        let sql = format!(
            "SELECT {group}, r.status, r.latency_ms, COALESCE(r.prompt_tokens, 0), COALESCE(r.completion_tokens, 0)
             FROM request_log r LEFT JOIN keys k ON k.id = r.key_id WHERE r.ts >= ?1"
        );
        let mut stmt = c.prepare(&sql)?;
        let rows = stmt.query_map([ms(since)], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, u16>(1)?,
                r.get::<_, u64>(2)?,
                r.get::<_, u64>(3)?,
                r.get::<_, u64>(4)?,
            ))
        })?;
        let mut groups: BTreeMap<String, StatsGroup> = BTreeMap::new();
        for row in rows {
            let (name, status, latency, pt, ct) = row?;
            let g = groups.entry(name.clone()).or_insert_with(|| StatsGroup {
                name,
                requests: 0,
                errors: 0,
                prompt_tokens: 0,
                completion_tokens: 0,
                latencies: Vec::new(),
            });
            g.requests += 1;
            if status >= 400 {
                g.errors += 1;
            }
            g.prompt_tokens += pt;
            g.completion_tokens += ct;
            g.latencies.push(latency);
        }
        Ok(groups.into_values().collect())
    }

    /// Deletes up to `batch` request-log rows older than `before`; returns how many went. Callers
    /// loop, so the database is never held for long.
    pub fn delete_old_requests(&self, before: DateTime<Utc>, batch: u32) -> Result<usize> {
        Ok(self.conn()?.execute(
            "DELETE FROM request_log WHERE id IN (SELECT id FROM request_log WHERE ts < ?1 ORDER BY id LIMIT ?2)",
            params![ms(before), batch],
        )?)
    }

    pub fn delete_old_errors(&self, before: DateTime<Utc>, batch: u32) -> Result<usize> {
        Ok(self.conn()?.execute(
            "DELETE FROM error_log WHERE id IN (SELECT id FROM error_log WHERE ts < ?1 ORDER BY id LIMIT ?2)",
            params![ms(before), batch],
        )?)
    }
}
