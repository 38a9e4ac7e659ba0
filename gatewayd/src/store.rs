//! All SQL lives here: the r2d2 pool, the schema and its version, and typed queries. Every function
//! is blocking; async callers go through `spawn_blocking` or the log writer, never the hot path.

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{DateTime, TimeZone, Utc};
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::{OptionalExtension, params};

use crate::keypool::{Health, KeyState, ModelCooldown};
use crate::outcome::CoolReason;
use crate::record::{ErrorRecord, RequestRecord};

const SCHEMA: &str = include_str!("../../schema.sql");
const SCHEMA_VERSION: i64 = 1;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("database pool: {0}")]
    Pool(#[from] r2d2::Error),
    #[error("database file {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("database schema version {found} is newer than this gatewayd understands ({SCHEMA_VERSION})")]
    TooNew { found: i64 },
}

pub type Result<T> = std::result::Result<T, StoreError>;

#[derive(Clone, Debug)]
pub struct Store {
    pool: r2d2::Pool<SqliteConnectionManager>,
}

/// A key as stored, with its health.
#[derive(Debug, Clone)]
pub struct KeyRow {
    pub id: i64,
    pub key: String,
    pub health: Health,
}

/// Per-key counts over a window, from the attempt log.
#[derive(Debug, Clone, Default)]
pub struct KeyUsage {
    pub requests: u64,
    pub errors: u64,
    pub last_used: Option<DateTime<Utc>>,
}

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

pub fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

pub fn from_ms(v: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(v).single().unwrap_or_default()
}

impl Store {
    /// Opens (creating the file and its directory) and migrates the database.
    pub fn open(path: &Path) -> Result<Store> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|source| StoreError::Io { path: dir.display().to_string(), source })?;
        }
        let manager = SqliteConnectionManager::file(path).with_init(|c| {
            c.pragma_update(None, "journal_mode", "WAL")?;
            c.pragma_update(None, "synchronous", "NORMAL")?;
            c.pragma_update(None, "foreign_keys", "ON")?;
            c.busy_timeout(std::time::Duration::from_secs(5))?;
            Ok(())
        });
        let pool = r2d2::Pool::builder().max_size(4).build(manager)?;
        let store = Store { pool };
        store.migrate()?;
        Ok(store)
    }

    fn conn(&self) -> Result<r2d2::PooledConnection<SqliteConnectionManager>> {
        Ok(self.pool.get()?)
    }

    fn migrate(&self) -> Result<()> {
        let mut c = self.conn()?;
        let version: i64 = c.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if version > SCHEMA_VERSION {
            return Err(StoreError::TooNew { found: version });
        }
        if version == 0 {
            let tx = c.transaction()?;
            tx.execute_batch(SCHEMA)?;
            tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
            tx.commit()?;
        }
        Ok(())
    }

    // ---- keys ----------------------------------------------------------------------------

    pub fn load_keys(&self) -> Result<Vec<KeyRow>> {
        let c = self.conn()?;
        let mut cooldowns: BTreeMap<i64, BTreeMap<String, ModelCooldown>> = BTreeMap::new();
        let mut stmt = c.prepare("SELECT key_id, model, until, reason FROM key_cooldowns")?;
        let rows = stmt.query_map([], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)?, r.get::<_, String>(3)?))
        })?;
        for row in rows {
            let (id, model, until, reason) = row?;
            cooldowns
                .entry(id)
                .or_default()
                .insert(model, ModelCooldown { until: from_ms(until), reason: CoolReason::parse(&reason) });
        }
        let mut stmt = c.prepare("SELECT id, key, state, failures, last_error FROM keys ORDER BY id")?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, u32>(3)?,
                r.get::<_, Option<String>>(4)?,
            ))
        })?;
        let mut keys = Vec::new();
        for row in rows {
            let (id, key, state, failures, last_error) = row?;
            let state = KeyState::parse(&state).unwrap_or_else(|| {
                tracing::warn!("key #{id} has unknown stored state {state:?}; treating it as active");
                KeyState::Active
            });
            let health = Health::restored(state, failures, cooldowns.remove(&id).unwrap_or_default(), last_error);
            keys.push(KeyRow { id, key, health });
        }
        Ok(keys)
    }

    /// Adds keys in one transaction; returns the rows added (with ids) and the count of duplicates.
    /// With `only_new_to_history`, keys the store ever held before are skipped (config seeding).
    pub fn add_keys(
        &self,
        keys: &[String],
        only_new_to_history: bool,
        now: DateTime<Utc>,
    ) -> Result<(Vec<KeyRow>, u64)> {
        let mut c = self.conn()?;
        let tx = c.transaction()?;
        let mut added = Vec::new();
        let mut duplicates = 0;
        {
            let mut in_history = tx.prepare_cached("SELECT 1 FROM key_history WHERE key = ?1")?;
            let mut remember = tx.prepare_cached("INSERT OR IGNORE INTO key_history (key) VALUES (?1)")?;
            let mut insert = tx.prepare_cached(
                "INSERT INTO keys (key, added_at, updated_at) VALUES (?1, ?2, ?2) ON CONFLICT (key) DO NOTHING RETURNING id",
            )?;
            for key in keys {
                if only_new_to_history && in_history.exists([key])? {
                    continue;
                }
                remember.execute([key])?;
                match insert.query_row(params![key, ms(now)], |r| r.get::<_, i64>(0)).optional()? {
                    Some(id) => added.push(KeyRow { id, key: key.clone(), health: Health::default() }),
                    None => duplicates += 1,
                }
            }
        }
        tx.commit()?;
        Ok((added, duplicates))
    }

    pub fn remove_keys(&self, ids: &[i64]) -> Result<()> {
        let mut c = self.conn()?;
        let tx = c.transaction()?;
        for id in ids {
            tx.execute("DELETE FROM keys WHERE id = ?1", [id])?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Writes a key's health (state, failures, last error, cooldowns), as the pool last saw it.
    pub fn save_health(&self, updates: &[(i64, Health)], now: DateTime<Utc>) -> Result<()> {
        let mut c = self.conn()?;
        let tx = c.transaction()?;
        for (id, h) in updates {
            tx.execute(
                "UPDATE keys SET state = ?2, failures = ?3, last_error = ?4, updated_at = ?5 WHERE id = ?1",
                params![id, h.state().as_str(), h.failures(), h.last_error(), ms(now)],
            )?;
            tx.execute("DELETE FROM key_cooldowns WHERE key_id = ?1", [id])?;
            for (model, cd) in h.cooldowns() {
                tx.execute(
                    "INSERT INTO key_cooldowns (key_id, model, until, reason) SELECT ?1, ?2, ?3, ?4 WHERE EXISTS (SELECT 1 FROM keys WHERE id = ?1)",
                    params![id, model, ms(cd.until), cd.reason.as_str()],
                )?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    pub fn key_usage(&self, since: DateTime<Utc>) -> Result<BTreeMap<i64, KeyUsage>> {
        let c = self.conn()?;
        let mut out: BTreeMap<i64, KeyUsage> = BTreeMap::new();
        let mut stmt = c.prepare(
            "SELECT key_id, COUNT(*), SUM(CASE WHEN ok THEN 0 ELSE 1 END) FROM attempt_log WHERE ts >= ?1 GROUP BY key_id",
        )?;
        let rows =
            stmt.query_map([ms(since)], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, u64>(1)?, r.get::<_, u64>(2)?)))?;
        for row in rows {
            let (id, requests, errors) = row?;
            let u = out.entry(id).or_default();
            u.requests = requests;
            u.errors = errors;
        }
        let mut stmt = c.prepare("SELECT key_id, MAX(ts) FROM attempt_log GROUP BY key_id")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))?;
        for row in rows {
            let (id, last) = row?;
            out.entry(id).or_default().last_used = Some(from_ms(last));
        }
        Ok(out)
    }

    // ---- settings ------------------------------------------------------------------------

    pub fn load_settings(&self) -> Result<BTreeMap<String, String>> {
        let c = self.conn()?;
        let mut stmt = c.prepare("SELECT name, value FROM settings")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn set_setting(&self, name: &str, literal: &str, now: DateTime<Utc>) -> Result<()> {
        self.conn()?.execute(
            "INSERT INTO settings (name, value, updated_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
            params![name, literal, ms(now)],
        )?;
        Ok(())
    }

    pub fn unset_setting(&self, name: &str) -> Result<bool> {
        Ok(self.conn()?.execute("DELETE FROM settings WHERE name = ?1", [name])? > 0)
    }

    pub fn generated_tokens(&self) -> Result<Vec<String>> {
        let c = self.conn()?;
        let mut stmt = c.prepare("SELECT token FROM generated_tokens ORDER BY created_at")?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn add_generated_token(&self, token: &str, now: DateTime<Utc>) -> Result<()> {
        self.conn()?
            .execute("INSERT INTO generated_tokens (token, created_at) VALUES (?1, ?2)", params![token, ms(now)])?;
        Ok(())
    }

    // ---- logs ----------------------------------------------------------------------------

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::AttemptRecord;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("sub/gateway.db")).unwrap();
        (dir, s)
    }

    #[test]
    fn schema_is_versioned_and_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("g.db");
        let s = Store::open(&path).unwrap();
        let v: i64 = s.conn().unwrap().pragma_query_value(None, "user_version", |r| r.get(0)).unwrap();
        assert_eq!(v, SCHEMA_VERSION);
        let mode: String = s.conn().unwrap().pragma_query_value(None, "journal_mode", |r| r.get(0)).unwrap();
        assert_eq!(mode, "wal");
        drop(s);
        Store::open(&path).unwrap();
    }

    #[test]
    fn seeding_skips_keys_ever_held() {
        let (_d, s) = store();
        let now = Utc::now();
        let keys = vec!["k-one-1234".to_string(), "k-two-1234".to_string()];
        let (added, dup) = s.add_keys(&keys, true, now).unwrap();
        assert_eq!((added.len(), dup), (2, 0));
        s.remove_keys(&[added[0].id]).unwrap();
        let (added, _) = s.add_keys(&keys, true, now).unwrap();
        assert!(added.is_empty());
        assert_eq!(s.load_keys().unwrap().len(), 1);
        // An operator may add it back explicitly.
        let (added, dup) = s.add_keys(&keys, false, now).unwrap();
        assert_eq!((added.len(), dup), (1, 1));
    }

    #[test]
    fn health_round_trips() {
        let (_d, s) = store();
        let now = from_ms(ms(Utc::now()));
        let (added, _) = s.add_keys(&["k-one-1234".to_string()], false, now).unwrap();
        let cooldowns = [("m".to_string(), ModelCooldown { until: now, reason: CoolReason::Rpd })].into();
        let h = Health::restored(KeyState::Invalid, 2, cooldowns, Some("503".into()));
        s.save_health(&[(added[0].id, h.clone())], now).unwrap();
        assert_eq!(s.load_keys().unwrap()[0].health, h);
    }

    #[test]
    fn logs_insert_query_and_expire() {
        let (_d, s) = store();
        let now = from_ms(ms(Utc::now()));
        let old = now - chrono::Duration::days(40);
        let rec = |ts| RequestRecord {
            ts,
            route: "generateContent".into(),
            model: Some("m".into()),
            key_id: Some(1),
            status: 200,
            latency_ms: 5,
            attempts: vec![AttemptRecord { ts, key_id: 1, status: Some(200), ok: true, latency_ms: 5, word: None }],
            attempt_count: 1,
            stored_trail: None,
            stream: false,
            prompt_tokens: Some(3),
            completion_tokens: Some(4),
            error: None,
        };
        s.insert_logs(&[rec(old), rec(now)], &[]).unwrap();
        let rows = s.recent_requests(&LogFilter { limit: 10, ..Default::default() }).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1].record.trail(), "#1 200");
        assert_eq!(s.delete_old_requests(now - chrono::Duration::days(30), 100).unwrap(), 1);
        assert_eq!(s.count_requests_since(old).unwrap(), 1);
        let stats = s.stats(StatsBy::Model, old).unwrap();
        assert_eq!((stats[0].requests, stats[0].prompt_tokens), (1, 3));
    }
}
