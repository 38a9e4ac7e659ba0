//! PURE: the pool of Gemini keys. Key states, round-robin selection over the keys usable for a
//! model, and the effect of an attempt's outcome on its key. The clock is a parameter, so every
//! rule here is unit-tested without sleeping.
//!
//! Concurrency: the key list is an `Arc` snapshot swapped under a lock held only to clone it; each
//! key's health has its own short-lived mutex; the round-robin cursor is an atomic. Nothing here is
//! held across an await.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use parking_lot::{Mutex, MutexGuard, RwLock};

use chrono::{DateTime, Utc};

use crate::config::Secret;
use crate::outcome::{CoolReason, Outcome};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    Active,
    Invalid,
    Disabled,
}

impl KeyState {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Active => "active",
            KeyState::Invalid => "invalid",
            KeyState::Disabled => "disabled",
        }
    }
    pub fn parse(s: &str) -> KeyState {
        match s {
            "invalid" => KeyState::Invalid,
            "disabled" => KeyState::Disabled,
            _ => KeyState::Active,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ModelCooldown {
    pub until: DateTime<Utc>,
    pub reason: CoolReason,
}

/// Everything about a key's health that survives a restart.
#[derive(Debug, Clone, PartialEq)]
pub struct Health {
    pub state: KeyState,
    pub failures: u32,
    pub cooldowns: BTreeMap<String, ModelCooldown>,
    pub last_error: Option<String>,
}

impl Default for Health {
    fn default() -> Self {
        Health { state: KeyState::Active, failures: 0, cooldowns: BTreeMap::new(), last_error: None }
    }
}

impl Health {
    /// The cooldown for `model` still running at `now`, if any.
    pub fn cooling_until(&self, model: &str, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cooldowns.get(model).map(|c| c.until).filter(|u| *u > now)
    }

    /// The state as the operator sees it: `cooling` while any model cools.
    pub fn display_state(&self, now: DateTime<Utc>) -> &'static str {
        match self.state {
            KeyState::Active if self.cooldowns.values().any(|c| c.until > now) => "cooling",
            s => s.as_str(),
        }
    }

    /// Applies an attempt's outcome; returns whether anything persistent changed.
    pub fn apply(&mut self, outcome: &Outcome, model: &str, now: DateTime<Utc>, max_failures: u32) -> bool {
        let before = self.clone();
        self.cooldowns.retain(|_, c| c.until > now);
        match outcome {
            Outcome::Success => {
                self.failures = 0;
                self.cooldowns.remove(model);
            }
            Outcome::Client => {}
            Outcome::RateLimited(c) => {
                self.cooldowns.insert(model.to_string(), ModelCooldown { until: c.until, reason: c.reason });
                self.last_error = Some(format!("429 {} for {model}", c.reason.as_str()));
            }
            Outcome::InvalidKey(reason) => {
                if self.state == KeyState::Active {
                    self.state = KeyState::Invalid;
                }
                self.last_error = Some(reason.clone());
            }
            Outcome::Transient(reason) => {
                self.failures = self.failures.saturating_add(1);
                self.last_error = Some(reason.clone());
                if self.failures >= max_failures && self.state == KeyState::Active {
                    self.state = KeyState::Invalid;
                }
            }
        }
        *self != before
    }

    /// A passing verification: back in rotation with a clean slate (a disabled key stays disabled).
    pub fn restore(&mut self) {
        if self.state == KeyState::Invalid {
            self.state = KeyState::Active;
        }
        self.failures = 0;
        self.cooldowns.clear();
    }
}

#[derive(Debug)]
pub struct KeyEntry {
    pub id: i64,
    pub secret: Secret,
    health: Mutex<Health>,
}

impl KeyEntry {
    pub fn new(id: i64, secret: Secret, health: Health) -> Self {
        KeyEntry { id, secret, health: Mutex::new(health) }
    }
    /// Locks this key's health briefly; never hold the guard across an await.
    pub fn health(&self) -> MutexGuard<'_, Health> {
        self.health.lock()
    }
}

/// Why no key could be picked.
#[derive(Debug, Clone, PartialEq)]
pub enum NoKey {
    /// The pool holds no keys at all.
    Empty,
    /// Every key is invalid or disabled.
    NoneUsable { invalid: usize, disabled: usize },
    /// Every usable key cools for this model; the first reopens at `reopens`.
    AllCooling { reopens: DateTime<Utc> },
    /// Every usable key was already tried for this request.
    AllTried { tried: usize },
}

impl NoKey {
    pub fn message(&self, model: &str) -> String {
        match self {
            NoKey::Empty => "no API keys configured: add keys with `gbctl keys add`".into(),
            NoKey::NoneUsable { invalid, disabled } => {
                format!("no usable API key: {invalid} invalid, {disabled} disabled")
            }
            NoKey::AllCooling { reopens } => format!(
                "all API keys are cooling (rate-limited) for model {model}; the first reopens at {}",
                reopens.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            ),
            NoKey::AllTried { tried } => format!("every usable API key was tried ({tried})"),
        }
    }
}

#[derive(Debug, Default)]
pub struct KeyPool {
    keys: RwLock<Arc<Vec<Arc<KeyEntry>>>>,
    cursor: AtomicUsize,
}

impl KeyPool {
    pub fn new(keys: Vec<KeyEntry>) -> Self {
        let pool = KeyPool::default();
        pool.replace(keys.into_iter().map(Arc::new).collect());
        pool
    }

    pub fn snapshot(&self) -> Arc<Vec<Arc<KeyEntry>>> {
        self.keys.read().clone()
    }

    fn replace(&self, mut keys: Vec<Arc<KeyEntry>>) {
        keys.sort_by_key(|k| k.id);
        *self.keys.write() = Arc::new(keys);
    }

    pub fn get(&self, id: i64) -> Option<Arc<KeyEntry>> {
        self.snapshot().iter().find(|k| k.id == id).cloned()
    }

    pub fn insert(&self, entries: Vec<KeyEntry>) {
        let mut keys: Vec<Arc<KeyEntry>> = self.snapshot().as_ref().clone();
        keys.extend(entries.into_iter().map(Arc::new));
        self.replace(keys);
    }

    pub fn remove(&self, ids: &[i64]) {
        let keys = self.snapshot().iter().filter(|k| !ids.contains(&k.id)).cloned().collect();
        self.replace(keys);
    }

    /// Round-robin: the next key after the cursor that is active, not cooling for `model`, and not
    /// in `tried`.
    pub fn pick(&self, model: &str, now: DateTime<Utc>, tried: &[i64]) -> Result<Arc<KeyEntry>, NoKey> {
        let keys = self.snapshot();
        if keys.is_empty() {
            return Err(NoKey::Empty);
        }
        let start = self.cursor.fetch_add(1, Ordering::Relaxed);
        let (mut invalid, mut disabled, mut active, mut cooling) = (0, 0, 0, 0);
        let mut reopens: Option<DateTime<Utc>> = None;
        for i in 0..keys.len() {
            let key = &keys[(start + i) % keys.len()];
            let health = key.health();
            match health.state {
                KeyState::Invalid => invalid += 1,
                KeyState::Disabled => disabled += 1,
                KeyState::Active => {
                    active += 1;
                    let until = health.cooling_until(model, now);
                    if let Some(until) = until {
                        cooling += 1;
                        reopens = Some(reopens.map_or(until, |r| r.min(until)));
                    }
                    if until.is_none() && !tried.contains(&key.id) {
                        return Ok(key.clone());
                    }
                }
            }
        }
        Err(match reopens {
            // Every usable key cools for this model (including any this request just cooled).
            Some(reopens) if cooling == active => NoKey::AllCooling { reopens },
            _ if active == 0 => NoKey::NoneUsable { invalid, disabled },
            _ => NoKey::AllTried { tried: tried.len() },
        })
    }
}

/// Egress throttling: when Google throttles the gateway's one IP, every key answers 429 at once,
/// with no quota detail. That is not the keys' fault, so it must not become N cooldowns.
///
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
    use crate::outcome::Cooldown;
    use chrono::Duration;

    fn pool(n: i64) -> KeyPool {
        KeyPool::new((1..=n).map(|i| KeyEntry::new(i, Secret::new(format!("key-{i}")), Health::default())).collect())
    }

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z").unwrap().with_timezone(&Utc)
    }

    #[test]
    fn round_robin_is_even() {
        let p = pool(3);
        let mut counts = [0; 3];
        for _ in 0..300 {
            counts[(p.pick("m", now(), &[]).unwrap().id - 1) as usize] += 1;
        }
        assert_eq!(counts, [100, 100, 100]);
    }

    #[test]
    fn cooling_is_per_model_and_ends() {
        let p = pool(2);
        let k1 = p.get(1).unwrap();
        let cool = Outcome::RateLimited(Cooldown {
            until: now() + Duration::seconds(2),
            reason: CoolReason::Rpm,
            quota_detail: true,
            zero_quota: false,
        });
        assert!(k1.health().apply(&cool, "flash", now(), 3));
        for _ in 0..10 {
            assert_eq!(p.pick("flash", now(), &[]).unwrap().id, 2);
        }
        let other: Vec<i64> = (0..4).map(|_| p.pick("pro", now(), &[]).unwrap().id).collect();
        assert!(other.contains(&1));
        assert_eq!(k1.health().display_state(now()), "cooling");
        let later = now() + Duration::seconds(2);
        let ids: Vec<i64> = (0..4).map(|_| p.pick("flash", later, &[]).unwrap().id).collect();
        assert!(ids.contains(&1));
        assert_eq!(k1.health().display_state(later), "active");
    }

    #[test]
    fn exhaustion_reasons() {
        let p = pool(2);
        assert_eq!(p.pick("m", now(), &[1, 2]).unwrap_err(), NoKey::AllTried { tried: 2 });
        let until = now() + Duration::seconds(5);
        for k in p.snapshot().iter() {
            let secs = if k.id == 1 { 5 } else { 9 };
            let c = Cooldown {
                until: now() + Duration::seconds(secs),
                reason: CoolReason::Rpm,
                quota_detail: true,
                zero_quota: false,
            };
            k.health().apply(&Outcome::RateLimited(c), "m", now(), 3);
        }
        assert_eq!(p.pick("m", now(), &[]).unwrap_err(), NoKey::AllCooling { reopens: until });
        p.get(1).unwrap().health().apply(&Outcome::InvalidKey("bad".into()), "m", now(), 3);
        p.get(2).unwrap().health().state = KeyState::Disabled;
        assert_eq!(p.pick("x", now(), &[]).unwrap_err(), NoKey::NoneUsable { invalid: 1, disabled: 1 });
        assert_eq!(pool(0).pick("m", now(), &[]).unwrap_err(), NoKey::Empty);
    }

    #[test]
    fn transient_failures_invalidate_only_in_a_row() {
        let mut h = Health::default();
        let t = Outcome::Transient("503".into());
        h.apply(&t, "m", now(), 3);
        h.apply(&t, "m", now(), 3);
        h.apply(&Outcome::Success, "m", now(), 3);
        assert_eq!((h.state, h.failures), (KeyState::Active, 0));
        for _ in 0..3 {
            h.apply(&t, "m", now(), 3);
        }
        assert_eq!(h.state, KeyState::Invalid);
        assert!(!h.apply(&Outcome::Client, "m", now(), 3));
        h.restore();
        assert_eq!((h.state, h.failures), (KeyState::Active, 0));
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

    #[test]
    fn client_errors_never_count() {
        let mut h = Health::default();
        for _ in 0..10 {
            assert!(!h.apply(&Outcome::Client, "m", now(), 1));
        }
        assert_eq!(h, Health::default());
    }
}
