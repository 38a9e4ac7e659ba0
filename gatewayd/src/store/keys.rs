//! The keys table and its cooldowns: load, add (seeding skips keys ever held), remove, health,
//! usage in the request log.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};

use super::{Result, Store, from_ms, ms};
use crate::keypool::{Health, KeyKind, KeyState, Labels, ModelCooldown};
use crate::outcome::CoolReason;

/// A key as stored, with its health.
#[derive(Debug, Clone)]
pub struct KeyRow {
    pub id: i64,
    pub key: String,
    pub health: Health,
    pub labels: Labels,
}

/// Per-key counts over a window, from the attempt log.
#[derive(Debug, Clone, Default)]
pub struct KeyUsage {
    pub requests: u64,
    pub errors: u64,
    pub last_used: Option<DateTime<Utc>>,
}

/// What the key history keeps of a key: a SHA-256, so a key that left the store is remembered
/// (config seeding does not add it back) without being kept in clear.
pub(super) fn history_hash(key: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, key.as_bytes());
    let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

impl Store {
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
        let mut stmt = c.prepare(
            "SELECT id, key, state, failures, last_error, kind, key_group, project, note FROM keys ORDER BY id",
        )?;
        let rows = stmt.query_map([], |r| {
            let labels = Labels {
                kind: KeyKind::parse(&r.get::<_, String>(5)?).unwrap_or_default(),
                group: r.get(6)?,
                project: r.get(7)?,
                note: r.get(8)?,
            };
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, u32>(3)?,
                r.get::<_, Option<String>>(4)?,
                labels,
            ))
        })?;
        let mut keys = Vec::new();
        for row in rows {
            let (id, key, state, failures, last_error, labels) = row?;
            let state = KeyState::parse(&state).unwrap_or_else(|| {
                tracing::warn!("key #{id} has unknown stored state {state:?}; treating it as active");
                KeyState::Active
            });
            let health = Health::restored(state, failures, cooldowns.remove(&id).unwrap_or_default(), last_error);
            keys.push(KeyRow { id, key, health, labels });
        }
        Ok(keys)
    }

    /// Adds keys in one transaction; returns the rows added (with ids) and the count of duplicates.
    /// With `only_new_to_history`, keys the store ever held before are skipped (config seeding).
    pub fn add_keys(
        &self,
        keys: &[String],
        labels: &Labels,
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
                "INSERT INTO keys (key, added_at, updated_at, kind, key_group, project, note) VALUES (?1, ?2, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (key) DO NOTHING RETURNING id",
            )?;
            for key in keys {
                let hashed = history_hash(key);
                if only_new_to_history && in_history.exists([&hashed])? {
                    continue;
                }
                remember.execute([&hashed])?;
                let row = params![key, ms(now), labels.kind.as_str(), labels.group, labels.project, labels.note];
                match insert.query_row(row, |r| r.get::<_, i64>(0)).optional()? {
                    Some(id) => {
                        added.push(KeyRow { id, key: key.clone(), health: Health::default(), labels: labels.clone() })
                    }
                    None => duplicates += 1,
                }
            }
        }
        tx.commit()?;
        Ok((added, duplicates))
    }

    /// Writes the labels of these keys, in one transaction.
    pub fn set_labels(&self, labels: &[(i64, Labels)], now: DateTime<Utc>) -> Result<()> {
        let mut c = self.conn()?;
        let tx = c.transaction()?;
        for (id, l) in labels {
            tx.execute(
                "UPDATE keys SET kind = ?2, key_group = ?3, project = ?4, note = ?5, updated_at = ?6 WHERE id = ?1",
                params![id, l.kind.as_str(), l.group, l.project, l.note, ms(now)],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    pub fn remove_keys(&self, ids: &[i64]) -> Result<()> {
        let mut c = self.conn()?;
        let tx = c.transaction()?;
        for id in ids {
            tx.execute("DELETE FROM keys WHERE id = ?1", [id])?;
        }
        tx.commit()?;
        // secure_delete zeroes the freed pages; the checkpoint moves that out of the WAL too, so
        // no copy of a removed key stays in the database files.
        c.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")?;
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

    /// Upstream attempts per key since a time (rollup::window says which rows answer) and when
    /// each key was last used.
    pub fn key_usage(&self, since: DateTime<Utc>) -> Result<BTreeMap<i64, KeyUsage>> {
        let c = self.conn()?;
        let w = super::rollup::window(since);
        let mut out: BTreeMap<i64, KeyUsage> = BTreeMap::new();
        let mut whole = c.prepare_cached(
            "SELECT key_id, SUM(attempts), SUM(failed) FROM attempt_rollup
             WHERE span = ?1 AND start >= ?2 AND start < ?3 GROUP BY key_id",
        )?;
        let mut part = c.prepare_cached(
            "SELECT a.key_id, COUNT(*), SUM(CASE WHEN a.ok THEN 0 ELSE 1 END)
             FROM request_log r JOIN attempt_log a ON a.request_id = r.id
             WHERE r.ts >= ?1 AND r.ts < ?2 GROUP BY a.key_id",
        )?;
        let read = |r: &rusqlite::Row| Ok((r.get::<_, i64>(0)?, r.get::<_, u64>(1)?, r.get::<_, u64>(2)?));
        let mut rows: Vec<(i64, u64, u64)> =
            part.query_map([w.raw.0, w.raw.1], read)?.collect::<rusqlite::Result<_>>()?;
        for (span, from, to) in w.rollups {
            for row in whole.query_map([span, from, to], read)? {
                rows.push(row?);
            }
        }
        for (id, requests, errors) in rows {
            let u = out.entry(id).or_default();
            u.requests += requests;
            u.errors += errors;
        }
        let mut stmt = c.prepare_cached("SELECT id, last_used FROM keys WHERE last_used IS NOT NULL")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))?;
        for row in rows {
            let (id, last) = row?;
            out.entry(id).or_default().last_used = Some(from_ms(last));
        }
        Ok(out)
    }

    // ---- settings ------------------------------------------------------------------------
}
