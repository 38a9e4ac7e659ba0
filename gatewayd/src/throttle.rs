//! PURE: egress throttling. When Google throttles the gateway's one IP, every key answers 429 at
//! once with no quota detail; that is not the keys' fault and must not become N cooldowns.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use chrono::{DateTime, Utc};
use parking_lot::RwLock;

/// The rule: a bare 429 (no QuotaFailure, no RetryInfo) is remembered for `THROTTLE_WINDOW` per
/// model. When the distinct keys that answered one for a model in that window are at least two
/// and more than half of the active keys, the gateway backs off for that model as a whole, once,
/// for `min(keys.cooldown_secs, THROTTLE_MAX_BACKOFF)`, and the cooldowns those bare 429s gave
/// the keys are lifted.
pub const THROTTLE_WINDOW: chrono::Duration = chrono::Duration::seconds(10);
pub const THROTTLE_MAX_BACKOFF: chrono::Duration = chrono::Duration::seconds(10);

#[derive(Debug, Clone, PartialEq)]
pub enum ThrottleVerdict {
    /// Treat as this key's own rate limit.
    KeyCooldown,
    /// Gateway-wide throttling: back off the model until `until`, lift these keys' cooldowns.
    Backoff { until: DateTime<Utc>, release: Vec<i64> },
}

#[derive(Debug, Default)]
struct ModelThrottle {
    recent: Vec<(i64, DateTime<Utc>)>,
    backoff_until: Option<DateTime<Utc>>,
}

#[derive(Debug, Default)]
pub struct Throttle {
    models: RwLock<BTreeMap<String, ModelThrottle>>,
    /// Latest backoff end of any model (ms), so the per-request check needs no lock when clear.
    any_until_ms: std::sync::atomic::AtomicI64,
}

impl Throttle {
    /// Records a bare 429 from `key` for `model`; `active` is the number of active keys.
    pub fn observe(
        &self,
        model: &str,
        key: i64,
        now: DateTime<Utc>,
        active: usize,
        backoff: chrono::Duration,
    ) -> ThrottleVerdict {
        let mut models = self.models.write();
        let t = models.entry(model.to_string()).or_default();
        t.recent.retain(|(k, at)| *k != key && now - *at < THROTTLE_WINDOW);
        t.recent.push((key, now));
        let distinct = t.recent.len();
        if distinct >= 2 && distinct * 2 > active {
            let until = now + backoff.min(THROTTLE_MAX_BACKOFF);
            t.backoff_until = Some(until);
            let release = t.recent.drain(..).map(|(k, _)| k).collect();
            self.any_until_ms.fetch_max(until.timestamp_millis(), Ordering::Relaxed);
            return ThrottleVerdict::Backoff { until, release };
        }
        ThrottleVerdict::KeyCooldown
    }

    /// When the gateway is backing off `model`, until when.
    pub fn backoff_until(&self, model: &str, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if self.any_until_ms.load(Ordering::Relaxed) <= now.timestamp_millis() {
            return None;
        }
        let models = self.models.read();
        models.get(model).and_then(|t| t.backoff_until).filter(|u| *u > now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z").unwrap().with_timezone(&Utc)
    }

    #[test]
    fn throttling_needs_most_active_keys_within_the_window() {
        let t = Throttle::default();
        let backoff = chrono::Duration::seconds(60);
        // Four active keys: two bare 429s are half, not most.
        assert_eq!(t.observe("m", 1, now(), 4, backoff), ThrottleVerdict::KeyCooldown);
        assert_eq!(
            t.observe("m", 1, now(), 4, backoff),
            ThrottleVerdict::KeyCooldown,
            "the same key twice counts once"
        );
        assert_eq!(t.observe("m", 2, now(), 4, backoff), ThrottleVerdict::KeyCooldown);
        assert_eq!(t.observe("other", 3, now(), 4, backoff), ThrottleVerdict::KeyCooldown, "per model");
        let verdict = t.observe("m", 3, now() + Duration::seconds(1), 4, backoff);
        let until = now() + Duration::seconds(11);
        assert_eq!(verdict, ThrottleVerdict::Backoff { until, release: vec![1, 2, 3] });
        assert_eq!(t.backoff_until("m", now() + Duration::seconds(5)), Some(until));
        assert_eq!(t.backoff_until("other", now()), None);
        assert_eq!(t.backoff_until("m", until), None);
        // Outside the window, old 429s are forgotten.
        let t = Throttle::default();
        t.observe("m", 1, now(), 3, backoff);
        assert_eq!(t.observe("m", 2, now() + Duration::seconds(11), 3, backoff), ThrottleVerdict::KeyCooldown);
        // One key alone is never throttling, whatever the pool size.
        assert_eq!(Throttle::default().observe("m", 1, now(), 1, backoff), ThrottleVerdict::KeyCooldown);
    }
}
