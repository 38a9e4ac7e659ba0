//! The request and error logs: batched inserts, filtered reads, stats and retention.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};

use super::rollup::{self, Batch, Latencies, Totals};
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
    pub latencies: Latencies,
}

/// Stats totals summed per key id or per model as rows are read.
struct Groups {
    by: StatsBy,
    by_key: HashMap<i64, Totals>,
    by_model: HashMap<String, Totals>,
}

impl Groups {
    fn slot(&mut self, key: i64, model: &str) -> &mut Totals {
        match self.by {
            StatsBy::Key => self.by_key.entry(key).or_default(),
            // Looked up by &str first: the model is copied once per group, not once per row.
            StatsBy::Model if !self.by_model.contains_key(model) => self.by_model.entry(model.into()).or_default(),
            StatsBy::Model => self.by_model.get_mut(model).expect("present"),
        }
    }
}

impl Store {
    /// Inserts a batch of request and error records in one transaction; returns their row ids.
    pub fn insert_logs(&self, requests: &[RequestRecord], errors: &[ErrorRecord]) -> Result<(Vec<i64>, Vec<i64>)> {
        let c = self.conn()?;
        // BEGIN and COMMIT as cached statements: rusqlite's transaction() parses them anew each
        // time, which was a tenth of a light-load batch's cost.
        c.prepare_cached("BEGIN")?.execute([])?;
        match Self::write_logs(&c, requests, errors).and_then(|ids| Ok((c.prepare_cached("COMMIT")?.execute([])?, ids)))
        {
            Ok((_, ids)) => Ok(ids),
            Err(e) => {
                if !c.is_autocommit() {
                    let _ = c.execute_batch("ROLLBACK");
                }
                Err(e)
            }
        }
    }

    fn write_logs(
        tx: &rusqlite::Connection,
        requests: &[RequestRecord],
        errors: &[ErrorRecord],
    ) -> Result<(Vec<i64>, Vec<i64>)> {
        let mut ids = Vec::with_capacity(requests.len());
        let mut error_ids = Vec::with_capacity(errors.len());
        {
            let mut req = tx.prepare_cached(
                "INSERT INTO request_log (ts, route, model, key_id, status, latency_ms, attempts, trail, stream, prompt_tokens, completion_tokens, error, resource)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
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
                    r.error,
                    r.resource
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
        let mut batch = Batch::default();
        requests.iter().for_each(|r| batch.add(r));
        batch.write(tx)?;
        Ok((ids, error_ids))
    }

    pub fn recent_requests(&self, f: &LogFilter) -> Result<Vec<StoredRequest>> {
        let c = self.conn()?;
        let mut stmt = c.prepare(
            "SELECT r.id, r.ts, r.route, r.model, r.key_id, r.status, r.latency_ms, r.attempts, r.trail, r.stream,
                    r.prompt_tokens, r.completion_tokens, r.error, k.key, r.resource
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
                    resource: r.get(14)?,
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

    /// Requests since a time (rollup::window says which rows answer).
    pub fn count_requests_since(&self, since: DateTime<Utc>) -> Result<u64> {
        let w = rollup::window(since);
        let c = self.conn()?;
        let mut total: u64 = c
            .prepare_cached("SELECT COUNT(*) FROM request_log WHERE ts >= ?1 AND ts < ?2")?
            .query_row([w.raw.0, w.raw.1], |r| r.get(0))?;
        let mut whole = c.prepare_cached(
            "SELECT COALESCE(SUM(requests), 0) FROM request_rollup WHERE span = ?1 AND start >= ?2 AND start < ?3",
        )?;
        for (span, from, to) in w.rollups {
            total += whole.query_row([span, from, to], |r| r.get::<_, u64>(0))?;
        }
        Ok(total)
    }

    /// Requests grouped by key (final key of the request) or model since a time, with a latency
    /// histogram for percentiles. Reads the rollups, and the raw log for the first part-minute.
    pub fn stats(&self, by: StatsBy, since: DateTime<Utc>) -> Result<Vec<StatsGroup>> {
        let c = self.conn()?;
        let w = rollup::window(since);
        let mut groups = Groups { by, by_key: HashMap::new(), by_model: HashMap::new() };
        let mut stmt = c.prepare_cached(
            "SELECT key_id, model, requests, errors, prompt_tokens, completion_tokens, latency
             FROM request_rollup WHERE span = ?1 AND start >= ?2 AND start < ?3",
        )?;
        for (span, from, to) in w.rollups {
            let mut rows = stmt.query([span, from, to])?;
            while let Some(r) = rows.next()? {
                let t = groups.slot(r.get(0)?, r.get_ref(1)?.as_str()?);
                t.requests += r.get::<_, u64>(2)?;
                t.errors += r.get::<_, u64>(3)?;
                t.prompt_tokens += r.get::<_, u64>(4)?;
                t.completion_tokens += r.get::<_, u64>(5)?;
                t.latencies.merge_encoded(r.get_ref(6)?.as_blob()?);
            }
        }
        let mut raw = c.prepare_cached(
            "SELECT COALESCE(key_id, 0), COALESCE(model, ''), status, latency_ms, prompt_tokens, completion_tokens
             FROM request_log WHERE ts >= ?1 AND ts < ?2",
        )?;
        let mut rows = raw.query([w.raw.0, w.raw.1])?;
        while let Some(r) = rows.next()? {
            groups.slot(r.get(0)?, r.get_ref(1)?.as_str()?).add(r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?);
        }
        let mut names = c.prepare_cached("SELECT key FROM keys WHERE id = ?1")?;
        let mut named: BTreeMap<String, Totals> = BTreeMap::new();
        for (key, t) in groups.by_key {
            let name = match key {
                0 => "(none)".to_string(),
                _ => names.query_row([key], |r| r.get(0)).optional()?.unwrap_or_else(|| format!("#{key}")),
            };
            named.entry(name).or_default().merge(&t);
        }
        for (model, t) in groups.by_model {
            let name = if model.is_empty() { "(none)".to_string() } else { model };
            named.entry(name).or_default().merge(&t);
        }
        Ok(named
            .into_iter()
            .map(|(name, t)| StatsGroup {
                name,
                requests: t.requests,
                errors: t.errors,
                prompt_tokens: t.prompt_tokens,
                completion_tokens: t.completion_tokens,
                latencies: t.latencies,
            })
            .collect())
    }

    /// Deletes up to `batch` request-log rows older than `before`; returns how many went. Callers
    /// loop, so the database is never held for long.
    pub fn delete_old_requests(&self, before: DateTime<Utc>, batch: u32) -> Result<usize> {
        // The rollups of spans wholly before the cut go with them (a few rows per minute).
        let c = self.conn()?;
        let minute = ms(before).div_euclid(60_000);
        for table in ["request_rollup", "attempt_rollup"] {
            c.execute(&format!("DELETE FROM {table} WHERE start + span <= ?1"), [minute])?;
        }
        drop(c);
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

/// Fills the rollups and `keys.last_used` from an existing log (the schema-4 migration); returns
/// how many request rows it read.
pub(super) fn backfill_rollups(tx: &rusqlite::Transaction) -> Result<u64> {
    tx.execute_batch(
        "ALTER TABLE keys ADD COLUMN last_used INTEGER;
         CREATE TABLE request_rollup (span INTEGER NOT NULL, start INTEGER NOT NULL, key_id INTEGER NOT NULL,
             model TEXT NOT NULL, requests INTEGER NOT NULL, errors INTEGER NOT NULL, prompt_tokens INTEGER NOT NULL,
             completion_tokens INTEGER NOT NULL, latency BLOB NOT NULL, PRIMARY KEY (span, start, key_id, model)) WITHOUT ROWID;
         CREATE TABLE attempt_rollup (span INTEGER NOT NULL, start INTEGER NOT NULL, key_id INTEGER NOT NULL,
             attempts INTEGER NOT NULL, failed INTEGER NOT NULL, PRIMARY KEY (span, start, key_id)) WITHOUT ROWID;
         INSERT INTO attempt_rollup (span, start, key_id, attempts, failed)
             SELECT s.span, r.ts / 60000 / s.span * s.span, a.key_id, COUNT(*), SUM(CASE WHEN a.ok THEN 0 ELSE 1 END)
             FROM attempt_log a JOIN request_log r ON r.id = a.request_id, (SELECT 1 AS span UNION ALL SELECT 60) s
             GROUP BY 1, 2, 3;
         UPDATE keys SET last_used = (SELECT MAX(ts) FROM attempt_log WHERE key_id = keys.id);",
    )?;
    let mut batch = Batch::default();
    let mut n = 0;
    {
        let mut stmt = tx.prepare(
            "SELECT ts, COALESCE(key_id, 0), COALESCE(model, ''), status, latency_ms, prompt_tokens, completion_tokens
             FROM request_log",
        )?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let mut t = Totals::default();
            t.add(r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?);
            batch.add_totals(r.get::<_, i64>(0)?.div_euclid(60_000), r.get(1)?, r.get_ref(2)?.as_str()?, &t);
            n += 1;
        }
    }
    batch.write(tx)?;
    Ok(n)
}
