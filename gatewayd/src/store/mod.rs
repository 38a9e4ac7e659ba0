//! All SQL lives here: the r2d2 pool, the schema and its version (this file), and typed queries
//! by table group (`keys`, `settings`, `logs`). Every function is blocking; async callers go
//! through `spawn_blocking` or the log writer, never the hot path.

mod keys;
mod logs;
mod resources;
mod responses;
mod rollup;
mod settings;

use std::path::Path;

use chrono::{DateTime, TimeZone, Utc};
use r2d2_sqlite::SqliteConnectionManager;

pub use self::keys::{KeyRow, KeyUsage};
pub use self::logs::{LogFilter, StatsBy, StatsGroup, StoredError, StoredRequest};
pub use self::responses::StoredResponse;
pub use self::rollup::Latencies;

const SCHEMA: &str = include_str!("../../../schema.sql");
/// 1: the first schema. 2: transient failures no longer invalidate keys; keys that version 1 set
/// `invalid` only for counted transient failures are returned to rotation. 3: `key_history`
/// keeps only a hash of each key. 4: per-minute and per-hour rollups of the request log and `keys.last_used`,
/// filled from the existing log. 5: `resources`, the key-affinity bindings.
const SCHEMA_VERSION: i64 = 8;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("database value: {0}")]
    Value(#[from] rusqlite::types::FromSqlError),
    #[error("database pool: {0}")]
    Pool(#[from] r2d2::Error),
    #[error("database file {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("database schema version {found} is newer than this gatewayd understands ({SCHEMA_VERSION})")]
    TooNew { found: i64 },
    #[error("database file {path} cannot be used: {cause}")]
    Unusable { path: String, cause: String },
}

pub type Result<T> = std::result::Result<T, StoreError>;

#[derive(Clone, Debug)]
pub struct Store {
    pool: r2d2::Pool<SqliteConnectionManager>,
    /// What `PRAGMA quick_check` said at open: `ok`, or the first problem it found.
    integrity: std::sync::Arc<String>,
}

/// Every connection's settings. `busy_timeout` comes first: until it is set, another connection
/// starting up (the WAL switch) makes the next pragma fail with "database is locked".
fn prepare(c: &rusqlite::Connection) -> rusqlite::Result<()> {
    c.busy_timeout(std::time::Duration::from_secs(5))?;
    c.pragma_update(None, "journal_mode", "WAL")?;
    c.pragma_update(None, "synchronous", "NORMAL")?;
    c.pragma_update(None, "foreign_keys", "ON")?;
    // Deleted content (a removed key) is overwritten, not left in free pages.
    c.pragma_update(None, "secure_delete", "ON")?;
    Ok(())
}

/// The database and its WAL and shared-memory files hold every key: owner-only, whatever the
/// umask, and existing files are tightened.
fn make_private(path: &Path) -> Result<()> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
    fn io(p: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
        move |source| StoreError::Io { path: p.display().to_string(), source }
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && !dir.exists()
    {
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(io(dir))?;
    }
    // Created here, 0600, before SQLite creates it with the umask's mode; its -wal and -shm take
    // the main file's mode.
    std::fs::OpenOptions::new().create(true).append(true).mode(0o600).open(path).map_err(io(path))?;
    for suffix in ["", "-wal", "-shm"] {
        let file = std::path::PathBuf::from(format!("{}{suffix}", path.display()));
        if file.exists() {
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).map_err(io(&file))?;
        }
    }
    Ok(())
}

pub fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

pub fn from_ms(v: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(v).single().unwrap_or_default()
}

impl Store {
    /// Opens (creating the file and its directory, private) and migrates the database. A file
    /// that is not a usable database fails at once, naming the file and the cause.
    pub fn open(path: &Path) -> Result<Store> {
        make_private(path)?;
        let unusable =
            |e: rusqlite::Error| StoreError::Unusable { path: path.display().to_string(), cause: e.to_string() };
        // One connection first, checked by hand: the pool would retry a broken file for its
        // whole connection timeout (30 s) and log each try.
        let first = rusqlite::Connection::open(path).map_err(unusable)?;
        prepare(&first).map_err(unusable)?;
        let integrity: String = first.query_row("PRAGMA quick_check", [], |r| r.get(0)).map_err(unusable)?;
        if integrity != "ok" {
            tracing::error!(
                "database {} is damaged (quick_check: {integrity}); serving on, back it up",
                path.display()
            );
        }
        drop(first);
        let manager = SqliteConnectionManager::file(path).with_init(|c| prepare(c));
        // No liveness test on checkout: a connection to a local file does not go stale, and the
        // test is a statement per checkout.
        let pool = r2d2::Pool::builder()
            .max_size(4)
            .test_on_check_out(false)
            .connection_timeout(std::time::Duration::from_secs(5))
            .build_unchecked(manager);
        let store = Store { pool, integrity: std::sync::Arc::new(integrity) };
        store.migrate()?;
        Ok(store)
    }

    /// What the integrity check at open found: `ok`, or the first problem.
    pub fn integrity(&self) -> &str {
        &self.integrity
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
            return Ok(());
        }
        if version == 1 {
            let tx = c.transaction()?;
            // An auth rejection is recorded as `400 …`, `401 …` or `403 …` (outcome::short_reason);
            // anything else on an invalid key was a transient failure that version 1 counted.
            let restored = tx.execute(
                "UPDATE keys SET state = 'active', failures = 0 WHERE state = 'invalid' AND last_error IS NOT NULL \
                 AND last_error NOT LIKE '400 %' AND last_error NOT LIKE '401 %' AND last_error NOT LIKE '403 %'",
                [],
            )?;
            tx.pragma_update(None, "user_version", 2)?;
            tx.commit()?;
            tracing::info!(
                "migrated the database to schema 2: {restored} key(s) that were invalid only because of transient \
                 failures are active again"
            );
        }
        let version: i64 = c.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if version == 2 {
            let tx = c.transaction()?;
            let clear: Vec<String> = {
                let mut stmt = tx.prepare("SELECT key FROM key_history WHERE key NOT LIKE 'sha256:%'")?;
                stmt.query_map([], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?
            };
            for key in &clear {
                tx.execute("DELETE FROM key_history WHERE key = ?1", [key])?;
                tx.execute("INSERT OR IGNORE INTO key_history (key) VALUES (?1)", [keys::history_hash(key)])?;
            }
            tx.pragma_update(None, "user_version", 3)?;
            tx.commit()?;
            c.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")?;
            tracing::info!(
                "migrated the database to schema 3: {} key(s) in the key history kept as a hash only",
                clear.len()
            );
        }
        let version: i64 = c.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if version == 3 {
            let tx = c.transaction()?;
            let rows = logs::backfill_rollups(&tx)?;
            tx.pragma_update(None, "user_version", 4)?;
            tx.commit()?;
            tracing::info!("migrated the database to schema 4: rollups of {rows} request-log row(s)");
        }
        let version: i64 = c.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if version == 4 {
            let tx = c.transaction()?;
            tx.execute_batch(
                "CREATE TABLE resources (name TEXT PRIMARY KEY, key_id INTEGER NOT NULL, owner TEXT NOT NULL,
                     created_at INTEGER NOT NULL, expires_at INTEGER);",
            )?;
            tx.pragma_update(None, "user_version", 5)?;
            tx.commit()?;
        }
        let version: i64 = c.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if version == 5 {
            let tx = c.transaction()?;
            tx.execute_batch("ALTER TABLE request_log ADD COLUMN resource TEXT;")?;
            tx.pragma_update(None, "user_version", 6)?;
            tx.commit()?;
        }
        let version: i64 = c.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if version == 6 {
            let tx = c.transaction()?;
            tx.execute_batch(
                "ALTER TABLE keys ADD COLUMN kind TEXT NOT NULL DEFAULT 'gemini' CHECK (kind IN ('gemini', 'vertex'));
                 ALTER TABLE keys ADD COLUMN key_group TEXT;
                 ALTER TABLE keys ADD COLUMN project TEXT;
                 ALTER TABLE keys ADD COLUMN note TEXT;",
            )?;
            tx.pragma_update(None, "user_version", 7)?;
            tx.commit()?;
        }
        let version: i64 = c.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if version == 7 {
            let tx = c.transaction()?;
            tx.execute_batch(
                "CREATE TABLE stored_responses (id TEXT PRIMARY KEY, owner TEXT NOT NULL, key_id INTEGER NOT NULL,
                     created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, response TEXT NOT NULL,
                     conversation TEXT NOT NULL);",
            )?;
            tx.pragma_update(None, "user_version", 8)?;
            tx.commit()?;
        }
        Ok(())
    }

    // ---- keys ----------------------------------------------------------------------------
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keypool::{Health, KeyKind, KeyState, Labels, ModelCooldown};
    use crate::outcome::CoolReason;
    use crate::record::{AttemptRecord, RequestRecord};

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
        let (added, dup) = s.add_keys(&keys, &Labels::default(), true, now).unwrap();
        assert_eq!((added.len(), dup), (2, 0));
        s.remove_keys(&[added[0].id]).unwrap();
        let (added, _) = s.add_keys(&keys, &Labels::default(), true, now).unwrap();
        assert!(added.is_empty());
        assert_eq!(s.load_keys().unwrap().len(), 1);
        // An operator may add it back explicitly.
        let (added, dup) = s.add_keys(&keys, &Labels::default(), false, now).unwrap();
        assert_eq!((added.len(), dup), (1, 1));
    }

    /// Version 1 set keys invalid after transient failures; version 2 gives those back and keeps
    /// the ones Google rejected.
    #[test]
    fn migration_restores_keys_invalid_only_for_transient_failures() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("g.db");
        let s = Store::open(&path).unwrap();
        let now = from_ms(ms(Utc::now()));
        let keys: Vec<String> = (1..=5).map(|i| format!("k-old-{i:04}")).collect();
        let (added, _) = s.add_keys(&keys, &Labels::default(), false, now).unwrap();
        let reasons = [
            Some("503 The model is overloaded."),
            Some("upstream timed out"),
            Some("400 API key not valid. Please pass a valid API key."),
            Some("403 Permission denied: Consumer 'api_key:x' has been suspended."),
            None,
        ];
        let updates: Vec<(i64, Health)> = added
            .iter()
            .zip(reasons)
            .map(|(k, r)| (k.id, Health::restored(KeyState::Invalid, 3, Default::default(), r.map(String::from))))
            .collect();
        s.save_health(&updates, now).unwrap();
        downgrade_to_3(&s);
        s.conn().unwrap().pragma_update(None, "user_version", 1).unwrap();
        drop(s);
        let s = Store::open(&path).unwrap();
        let states: Vec<KeyState> = s.load_keys().unwrap().iter().map(|k| k.health.state()).collect();
        use KeyState::{Active, Invalid};
        assert_eq!(states, vec![Active, Active, Invalid, Invalid, Invalid]);
        let version: i64 = s.conn().unwrap().pragma_query_value(None, "user_version", |r| r.get(0)).unwrap();
        assert_eq!(version, SCHEMA_VERSION);
    }

    /// A removed key leaves no copy in clear in the database files: the key history keeps a
    /// hash, secure_delete zeroes the freed pages and a checkpoint empties the WAL.
    #[test]
    fn a_removed_key_leaves_no_copy_in_clear() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("g.db");
        let s = Store::open(&path).unwrap();
        let key = "AIzaSyRemovedKey0000000000000000000zz9";
        let (added, _) = s.add_keys(&[key.to_string()], &Labels::default(), false, Utc::now()).unwrap();
        s.remove_keys(&[added[0].id]).unwrap();
        let (again, _) = s.add_keys(&[key.to_string()], &Labels::default(), true, Utc::now()).unwrap();
        assert!(again.is_empty(), "still remembered (as a hash) so seeding does not bring it back");
        drop(s);
        for suffix in ["", "-wal", "-shm"] {
            let file = format!("{}{suffix}", path.display());
            if let Ok(bytes) = std::fs::read(&file) {
                assert!(!bytes.windows(key.len()).any(|w| w == key.as_bytes()), "{file} holds the key in clear");
            }
        }
    }

    #[test]
    fn health_round_trips() {
        let (_d, s) = store();
        let now = from_ms(ms(Utc::now()));
        let (added, _) = s.add_keys(&["k-one-1234".to_string()], &Labels::default(), false, now).unwrap();
        let vertex = Labels {
            kind: KeyKind::Vertex,
            group: Some("paid".into()),
            project: Some("p1".into()),
            note: Some("n".into()),
        };
        s.set_labels(&[(added[0].id, vertex.clone())], now).unwrap();
        assert_eq!(s.load_keys().unwrap()[0].labels, vertex, "labels round-trip");
        s.set_labels(&[(added[0].id, Labels::default())], now).unwrap();
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
            resource: Some("files/f1".into()),
            prompt_tokens: Some(3),
            completion_tokens: Some(4),
            error: None,
        };
        s.insert_logs(&[rec(old), rec(now)], &[]).unwrap();
        let rows = s.recent_requests(&LogFilter { limit: 10, ..Default::default() }).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1].record.trail(), "#1 200");
        assert_eq!(rows[1].record.resource.as_deref(), Some("files/f1"));
        assert_eq!(s.delete_old_requests(now - chrono::Duration::days(30), 100).unwrap(), 1);
        assert_eq!(s.count_requests_since(old).unwrap(), 1);
        let stats = s.stats(StatsBy::Model, old).unwrap();
        assert_eq!((stats[0].requests, stats[0].prompt_tokens), (1, 3));
    }

    /// Takes away what schema 4 added, as a database written by an older gatewayd lacks it.
    fn downgrade_to_3(s: &Store) {
        s.conn()
            .unwrap()
            .execute_batch(
                "DROP TABLE stored_responses; ALTER TABLE keys DROP COLUMN kind; ALTER TABLE keys DROP COLUMN key_group; ALTER TABLE keys DROP COLUMN project;
                 ALTER TABLE keys DROP COLUMN note; ALTER TABLE request_log DROP COLUMN resource; DROP TABLE resources; DROP TABLE request_rollup; DROP TABLE attempt_rollup; ALTER TABLE keys DROP COLUMN last_used;
                 PRAGMA user_version = 3;",
            )
            .unwrap();
    }

    fn logged(ts: DateTime<Utc>, key: i64, model: &str, status: u16, latency_ms: u64) -> RequestRecord {
        let ok = status < 400;
        RequestRecord {
            model: Some(model.into()),
            key_id: Some(key),
            status,
            latency_ms,
            attempts: vec![AttemptRecord { ts, key_id: key, status: Some(status), ok, latency_ms, word: None }],
            attempt_count: 1,
            prompt_tokens: Some(10),
            completion_tokens: Some(1),
            ..RequestRecord::bare(ts, "generateContent")
        }
    }

    /// Counts, stats and key usage read hour and minute rollups and the raw log for the first
    /// part-minute, and agree exactly with a scan of the raw log, whatever the window (the
    /// records span 2.4 hours from minute 13 of an hour).
    #[test]
    fn rollups_answer_windows_exactly() {
        let (_d, s) = store();
        let (added, _) =
            s.add_keys(&["k-one-1234".into(), "k-two-1234".into()], &Labels::default(), false, Utc::now()).unwrap();
        let (a, b) = (added[0].id, added[1].id);
        let base = from_ms(1_700_000_000_000 / 60_000 * 60_000);
        let mut recs = Vec::new();
        for i in 0..300i64 {
            let ts = base + chrono::Duration::seconds(i * 29);
            let key = if i % 3 == 0 { b } else { a };
            let model = if i % 2 == 0 { "m-even" } else { "m-odd" };
            recs.push(logged(ts, key, model, if i % 5 == 0 { 429 } else { 200 }, (i as u64) % 40 + 1));
        }
        // Written in several batches, so rows of one minute are merged across commits.
        for chunk in recs.chunks(37) {
            s.insert_logs(chunk, &[]).unwrap();
        }
        for since_s in [0i64, 1, 59, 60, 61, 333, 1000, 2820, 2821, 6419, 6421, 8000, 8671, 8672] {
            let since = base + chrono::Duration::seconds(since_s);
            let inside: Vec<&RequestRecord> = recs.iter().filter(|r| r.ts >= since).collect();
            assert_eq!(s.count_requests_since(since).unwrap(), inside.len() as u64, "since +{since_s}s");
            let usage = s.key_usage(since).unwrap();
            for key in [a, b] {
                let mine: Vec<_> = inside.iter().filter(|r| r.key_id == Some(key)).collect();
                let u = usage.get(&key).cloned().unwrap_or_default();
                assert_eq!(u.requests, mine.len() as u64, "key {key} since +{since_s}s");
                assert_eq!(u.errors, mine.iter().filter(|r| r.status >= 400).count() as u64);
            }
            let by_model = s.stats(StatsBy::Model, since).unwrap();
            for g in &by_model {
                let mine: Vec<_> = inside.iter().filter(|r| r.model.as_deref() == Some(g.name.as_str())).collect();
                assert_eq!(g.requests, mine.len() as u64);
                assert_eq!(g.errors, mine.iter().filter(|r| r.status >= 400).count() as u64);
                assert_eq!(g.prompt_tokens, 10 * mine.len() as u64);
                let mut lat: Vec<u64> = mine.iter().map(|r| r.latency_ms).collect();
                lat.sort_unstable();
                let rank = (50 * lat.len()).div_ceil(100).max(1);
                assert_eq!(g.latencies.percentile(50), lat[rank - 1], "latencies under 32 ms are exact");
            }
            assert_eq!(by_model.iter().map(|g| g.requests).sum::<u64>(), inside.len() as u64);
        }
        let last = recs.iter().map(|r| r.ts).max().unwrap();
        let usage = s.key_usage(base).unwrap();
        assert_eq!(usage[&a].last_used.map(ms), Some(ms(last)));
        assert_eq!(usage[&b].last_used.map(ms), Some(ms(last - chrono::Duration::seconds(58))));
        // By key: the key's text, or `#id` once the key is gone.
        s.remove_keys(&[b]).unwrap();
        let names: Vec<String> = s.stats(StatsBy::Key, base).unwrap().into_iter().map(|g| g.name).collect();
        assert_eq!(names, vec![format!("#{b}"), "k-one-1234".to_string()]);
        // Retention takes the rollups of the spans it cleared (an hour's only once it is all gone).
        s.delete_old_requests(last + chrono::Duration::minutes(1), 1000).unwrap();
        s.delete_old_requests(last + chrono::Duration::hours(1), 1000).unwrap();
        assert_eq!(s.count_requests_since(base).unwrap(), 0);
        assert!(s.stats(StatsBy::Model, base).unwrap().is_empty());
    }

    /// A schema-3 database (no rollups) gets them filled from its log on open.
    #[test]
    fn migration_fills_the_rollups_from_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("g.db");
        let s = Store::open(&path).unwrap();
        let (added, _) = s.add_keys(&["k-one-1234".into()], &Labels::default(), false, Utc::now()).unwrap();
        let now = from_ms(ms(Utc::now()));
        let recs: Vec<RequestRecord> =
            (0..50).map(|i| logged(now - chrono::Duration::minutes(i), added[0].id, "m", 200, 5)).collect();
        s.insert_logs(&recs, &[]).unwrap();
        downgrade_to_3(&s);
        drop(s);
        let s = Store::open(&path).unwrap();
        let since = now - chrono::Duration::hours(1);
        assert_eq!(s.count_requests_since(since).unwrap(), 50);
        let u = &s.key_usage(since).unwrap()[&added[0].id];
        assert_eq!((u.requests, u.last_used.map(ms)), (50, Some(ms(now))));
        assert_eq!(s.stats(StatsBy::Model, since).unwrap()[0].latencies.percentile(95), 5);
    }

    #[test]
    fn resource_bindings_round_trip_and_expire() {
        use crate::affinity::{Binding, Owner};
        let (_d, s) = store();
        let now = from_ms(ms(Utc::now()));
        let owner = Owner::of_token("t");
        let live = Binding { key_id: 1, owner: owner.clone(), expires: Some(now + chrono::Duration::hours(1)) };
        let gone = Binding { key_id: 2, owner: owner.clone(), expires: Some(now - chrono::Duration::seconds(1)) };
        let forever = Binding { key_id: 3, owner, expires: None };
        s.bind_resource("files/live", &live, now).unwrap();
        s.bind_resource("files/gone", &gone, now).unwrap();
        s.bind_resource("batches/b", &forever, now).unwrap();
        assert_eq!(s.delete_expired_resources(now).unwrap(), 1);
        let mut rows = s.load_resources(now).unwrap();
        rows.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(rows, vec![("batches/b".to_string(), forever), ("files/live".to_string(), live)]);
        s.unbind_resource("files/live").unwrap();
        assert_eq!(s.load_resources(now).unwrap().len(), 1);
    }
}
