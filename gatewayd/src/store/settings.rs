//! Runtime settings and generated client tokens.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rusqlite::params;

use super::{Result, Store, ms};

impl Store {
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
}
