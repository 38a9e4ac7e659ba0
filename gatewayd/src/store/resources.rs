//! Key-affinity bindings: which key and which client token own a resource.

use chrono::{DateTime, Utc};
use rusqlite::params;

use super::{Result, Store, from_ms, ms};
use crate::affinity::{Binding, Owner};

impl Store {
    pub fn bind_resource(&self, name: &str, b: &Binding, now: DateTime<Utc>) -> Result<()> {
        self.conn()?.execute(
            "INSERT OR REPLACE INTO resources (name, key_id, owner, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![name, b.key_id, b.owner.0, ms(now), b.expires.map(ms)],
        )?;
        Ok(())
    }

    pub fn unbind_resource(&self, name: &str) -> Result<()> {
        self.conn()?.execute("DELETE FROM resources WHERE name = ?1", [name])?;
        Ok(())
    }

    /// Deletes the bindings expired at `now`; returns how many.
    pub fn delete_expired_resources(&self, now: DateTime<Utc>) -> Result<usize> {
        Ok(self
            .conn()?
            .execute("DELETE FROM resources WHERE expires_at IS NOT NULL AND expires_at <= ?1", [ms(now)])?)
    }

    /// Every binding not yet expired at `now`; expired ones are deleted.
    pub fn load_resources(&self, now: DateTime<Utc>) -> Result<Vec<(String, Binding)>> {
        self.delete_expired_resources(now)?;
        let c = self.conn()?;
        let mut stmt = c.prepare("SELECT name, key_id, owner, expires_at FROM resources")?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                Binding {
                    key_id: r.get(1)?,
                    owner: Owner(r.get(2)?),
                    expires: r.get::<_, Option<i64>>(3)?.map(from_ms),
                },
            ))
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}
