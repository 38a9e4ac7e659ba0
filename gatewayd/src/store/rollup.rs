//! Per-minute and per-hour rollups of the request log, written in the same transaction as the
//! raw rows, so `keys list`, `stats` and `status` read a few thousand summary rows instead of
//! scanning millions of log rows. A window `[since, now]` is answered exactly: whole hours from
//! the hour rollups, the whole minutes before the first of them from the minute rollups, and the
//! part of the first minute from the raw log (an index range of at most one minute).
//!
//! Attempts are counted in the minute of their request, so both halves of a window agree on
//! which attempts fall in it.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};

use super::{Result, ms};
use crate::record::RequestRecord;

const MINUTE_MS: i64 = 60_000;
/// Rollup spans, in minutes.
const SPANS: [i64; 2] = [1, 60];

/// How a window `[since, now]` is read: rollup rows of `span` whose start (in minutes since the
/// epoch) is in `[from, to)`, and raw rows with `ts` in `raw` (ms).
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Window {
    pub rollups: [(i64, i64, i64); 2],
    pub raw: (i64, i64),
}

pub(super) fn window(since: DateTime<Utc>) -> Window {
    let ceil = |v: i64, unit: i64| v.div_euclid(unit) * unit + unit * i64::from(v.rem_euclid(unit) != 0);
    let minute = ceil(ms(since), MINUTE_MS) / MINUTE_MS;
    let hour = ceil(minute, 60);
    Window { rollups: [(60, hour, i64::MAX), (1, minute, hour)], raw: (ms(since), minute * MINUTE_MS) }
}

/// A latency histogram: values below 32 ms are exact, larger ones fall in one of 16 buckets per
/// power of two (about 6 % wide), so a percentile read from it is within 3 % of the true one;
/// latencies are capped at 2^32 ms. Stored as varint pairs (bucket, count) of the non-empty
/// buckets; merged into a dense array, so summing a day of rollups allocates nothing per row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Latencies {
    counts: Box<[u64; BUCKETS]>,
}

const BUCKETS: usize = 32 + 27 * 16;

impl Default for Latencies {
    fn default() -> Self {
        Latencies { counts: Box::new([0; BUCKETS]) }
    }
}

impl Latencies {
    fn bucket(v: u64) -> usize {
        let v = v.min(u64::from(u32::MAX));
        if v < 32 {
            return v as usize;
        }
        let exp = 63 - v.leading_zeros() as usize; // 5..=31
        let sub = ((v >> (exp - 4)) & 15) as usize;
        32 + (exp - 5) * 16 + sub
    }

    /// The middle of a bucket, what a percentile falling in it reports.
    fn value(bucket: usize) -> u64 {
        if bucket < 32 {
            return bucket as u64;
        }
        let exp = (bucket - 32) / 16 + 5;
        let sub = ((bucket - 32) % 16) as u64;
        let width = 1u64 << (exp - 4);
        (1u64 << exp) + sub * width + (width - 1) / 2
    }

    pub fn record(&mut self, latency_ms: u64) {
        self.counts[Self::bucket(latency_ms)] += 1;
    }

    pub fn merge(&mut self, other: &Latencies) {
        for (a, b) in self.counts.iter_mut().zip(other.counts.iter()) {
            *a += b;
        }
    }

    /// Nearest-rank percentile; 0 when empty.
    pub fn percentile(&self, p: u64) -> u64 {
        let total: u64 = self.counts.iter().sum();
        if total == 0 {
            return 0;
        }
        let rank = (p * total).div_ceil(100).max(1);
        let mut seen = 0;
        for (b, n) in self.counts.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return Self::value(b);
            }
        }
        0
    }

    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16);
        for (b, n) in self.counts.iter().enumerate().filter(|(_, n)| **n > 0) {
            put_varint(&mut out, b as u64);
            put_varint(&mut out, *n);
        }
        out
    }

    /// Adds a stored histogram; a damaged blob adds what could be read.
    pub(super) fn merge_encoded(&mut self, mut bytes: &[u8]) {
        while let (Some(b), Some(n)) = (take_varint(&mut bytes), take_varint(&mut bytes)) {
            if let Some(slot) = usize::try_from(b).ok().and_then(|b| self.counts.get_mut(b)) {
                *slot += n;
            }
        }
    }

    #[cfg(test)]
    fn decode(bytes: &[u8]) -> Latencies {
        let mut h = Latencies::default();
        h.merge_encoded(bytes);
        h
    }
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn take_varint(bytes: &mut &[u8]) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let (&b, rest) = bytes.split_first()?;
        *bytes = rest;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// One group's totals: requests of one (minute, key, model), or a stats row.
#[derive(Debug, Clone, Default)]
pub struct Totals {
    pub requests: u64,
    pub errors: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub latencies: Latencies,
}

impl Totals {
    pub(super) fn add(&mut self, status: u16, latency_ms: u64, prompt: Option<u64>, completion: Option<u64>) {
        self.requests += 1;
        self.errors += u64::from(status >= 400);
        self.prompt_tokens += prompt.unwrap_or(0);
        self.completion_tokens += completion.unwrap_or(0);
        self.latencies.record(latency_ms);
    }

    pub(super) fn merge(&mut self, o: &Totals) {
        self.requests += o.requests;
        self.errors += o.errors;
        self.prompt_tokens += o.prompt_tokens;
        self.completion_tokens += o.completion_tokens;
        self.latencies.merge(&o.latencies);
    }
}

/// What one batch of records adds to the rollups, summed in memory first so a batch of 512
/// requests costs a handful of row updates.
#[derive(Debug, Default)]
pub(super) struct Batch {
    /// (span, start minute, key id or 0, model or "").
    requests: BTreeMap<(i64, i64, i64, String), Totals>,
    /// (span, start minute, key id) -> (attempts, failed).
    attempts: BTreeMap<(i64, i64, i64), (u64, u64)>,
    last_used: BTreeMap<i64, i64>,
}

impl Batch {
    pub(super) fn add(&mut self, r: &RequestRecord) {
        let minute = ms(r.ts).div_euclid(MINUTE_MS);
        let model = r.model.as_deref().unwrap_or_default();
        for span in SPANS {
            self.slot(span, minute, r.key_id.unwrap_or(0), model).add(
                r.status,
                r.latency_ms,
                r.prompt_tokens,
                r.completion_tokens,
            );
        }
        for a in &r.attempts {
            for span in SPANS {
                let e = self.attempts.entry((span, minute.div_euclid(span) * span, a.key_id)).or_default();
                e.0 += 1;
                e.1 += u64::from(!a.ok);
            }
            let last = self.last_used.entry(a.key_id).or_insert(i64::MIN);
            *last = (*last).max(ms(a.ts));
        }
    }

    /// The group a minute's record falls in for `span`; looked up before it is made, so a batch
    /// allocates one histogram per group, not per record.
    fn slot(&mut self, span: i64, minute: i64, key_id: i64, model: &str) -> &mut Totals {
        let start = minute.div_euclid(span) * span;
        let key = (span, start, key_id, model.to_string());
        self.requests.entry(key).or_default()
    }

    /// Adds one minute's totals to every span's rollup.
    pub(super) fn add_totals(&mut self, minute: i64, key_id: i64, model: &str, t: &Totals) {
        for span in SPANS {
            self.requests
                .entry((span, minute.div_euclid(span) * span, key_id, model.to_string()))
                .or_default()
                .merge(t);
        }
    }

    pub(super) fn write(&self, tx: &Connection) -> Result<()> {
        let mut get = tx.prepare_cached(
            "SELECT requests, errors, prompt_tokens, completion_tokens, latency FROM request_rollup
             WHERE span = ?1 AND start = ?2 AND key_id = ?3 AND model = ?4",
        )?;
        let mut put = tx.prepare_cached(
            "INSERT OR REPLACE INTO request_rollup (span, start, key_id, model, requests, errors, prompt_tokens, completion_tokens, latency)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )?;
        for ((span, start, key, model), add) in &self.requests {
            let mut t = get
                .query_row(params![span, start, key, model], |r| {
                    let mut t = Totals {
                        requests: r.get(0)?,
                        errors: r.get(1)?,
                        prompt_tokens: r.get(2)?,
                        completion_tokens: r.get(3)?,
                        latencies: Latencies::default(),
                    };
                    t.latencies.merge_encoded(r.get_ref(4)?.as_blob()?);
                    Ok(t)
                })
                .optional()?
                .unwrap_or_default();
            t.merge(add);
            put.execute(params![
                span,
                start,
                key,
                model,
                t.requests,
                t.errors,
                t.prompt_tokens,
                t.completion_tokens,
                t.latencies.encode()
            ])?;
        }
        let mut att = tx.prepare_cached(
            "INSERT INTO attempt_rollup (span, start, key_id, attempts, failed) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (span, start, key_id) DO UPDATE SET attempts = attempts + excluded.attempts, failed = failed + excluded.failed",
        )?;
        for ((span, start, key), (n, failed)) in &self.attempts {
            att.execute(params![span, start, key, n, failed])?;
        }
        let mut used =
            tx.prepare_cached("UPDATE keys SET last_used = MAX(COALESCE(last_used, 0), ?2) WHERE id = ?1")?;
        for (key, ts) in &self.last_used {
            used.execute(params![key, ts])?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_latencies_are_exact_and_large_ones_close() {
        for v in 0..32 {
            assert_eq!(Latencies::value(Latencies::bucket(v)), v);
        }
        for v in [32u64, 33, 47, 100, 999, 1000, 12_345, 600_000, u32::MAX as u64] {
            let got = Latencies::value(Latencies::bucket(v));
            let err = got.abs_diff(v) as f64 / v as f64;
            assert!(err <= 0.035, "{v} -> {got}");
        }
        // Buckets are ordered like their values.
        assert_eq!(Latencies::bucket(u64::MAX), BUCKETS - 1);
        let mut last = 0;
        for v in (0..100_000u64).step_by(7) {
            let b = Latencies::bucket(v);
            assert!(b >= last);
            last = b;
        }
    }

    #[test]
    fn percentiles_by_nearest_rank_survive_a_round_trip() {
        let mut h = Latencies::default();
        for v in 1..=20 {
            h.record(v);
        }
        let h = Latencies::decode(&h.encode());
        assert_eq!((h.percentile(50), h.percentile(95), h.percentile(100)), (10, 19, 20));
        assert_eq!(Latencies::default().percentile(50), 0);
        let mut one = Latencies::default();
        one.record(7);
        assert_eq!(one.percentile(95), 7);
        // A truncated blob decodes what it can and never panics.
        let mut h = Latencies::default();
        h.record(5000);
        h.record(3);
        let bytes = h.encode();
        for cut in 0..bytes.len() {
            Latencies::decode(&bytes[..cut]);
        }
        Latencies::decode(&[0xff; 20]);
    }

    #[test]
    fn windows_split_into_hours_minutes_and_a_raw_edge() {
        let t = |ms| chrono::TimeZone::timestamp_millis_opt(&Utc, ms).unwrap();
        let w = |ms| window(t(ms));
        let (h, m) = (3_600_000, 60_000);
        assert_eq!(w(h), Window { rollups: [(60, 60, i64::MAX), (1, 60, 60)], raw: (h, h) });
        assert_eq!(w(h + 1), Window { rollups: [(60, 120, i64::MAX), (1, 61, 120)], raw: (h + 1, h + m) });
        assert_eq!(
            w(h + 59 * m + 1),
            Window { rollups: [(60, 120, i64::MAX), (1, 120, 120)], raw: (h + 59 * m + 1, 2 * h) }
        );
    }
}
