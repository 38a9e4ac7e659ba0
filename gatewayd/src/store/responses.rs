//! Stored Responses API responses: the response as returned and the conversation up to it.

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};

use super::{Result, Store, from_ms, ms};

/// One stored response.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredResponse {
    pub id: String,
    /// SHA-256 of the client token that made it.
    pub owner: String,
    pub key_id: i64,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// JSON texts: the response, and the conversation as input items.
    pub response: String,
    pub conversation: String,
}

impl Store {
    pub fn save_response(&self, r: &StoredResponse) -> Result<()> {
        self.conn()?.execute(
            "INSERT OR REPLACE INTO stored_responses (id, owner, key_id, created_at, expires_at, response, conversation)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![r.id, r.owner, r.key_id, ms(r.created_at), ms(r.expires_at), r.response, r.conversation],
        )?;
        Ok(())
    }

    /// The response `id`, unless it expired at `now`.
    pub fn load_response(&self, id: &str, now: DateTime<Utc>) -> Result<Option<StoredResponse>> {
        Ok(self
            .conn()?
            .query_row(
                "SELECT id, owner, key_id, created_at, expires_at, response, conversation FROM stored_responses
                 WHERE id = ?1 AND expires_at > ?2",
                params![id, ms(now)],
                |r| {
                    Ok(StoredResponse {
                        id: r.get(0)?,
                        owner: r.get(1)?,
                        key_id: r.get(2)?,
                        created_at: from_ms(r.get(3)?),
                        expires_at: from_ms(r.get(4)?),
                        response: r.get(5)?,
                        conversation: r.get(6)?,
                    })
                },
            )
            .optional()?)
    }

    pub fn delete_response(&self, id: &str) -> Result<()> {
        self.conn()?.execute("DELETE FROM stored_responses WHERE id = ?1", [id])?;
        Ok(())
    }

    /// Deletes the responses past `responses.store_days`; returns how many.
    pub fn delete_expired_responses(&self, now: DateTime<Utc>) -> Result<usize> {
        Ok(self.conn()?.execute("DELETE FROM stored_responses WHERE expires_at <= ?1", [ms(now)])?)
    }
}
