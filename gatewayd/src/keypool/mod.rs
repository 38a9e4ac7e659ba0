//! PURE: the pool of Gemini keys. Key states, round-robin selection over the keys usable for a
//! model, and the effect of an attempt's outcome on its key. The clock is a parameter, so every
//! rule here is unit-tested without sleeping.
//!
//! Concurrency: the key list is an `Arc` snapshot swapped under a lock held only to clone it; each
//! key's health has its own short-lived mutex; the round-robin cursor is an atomic. Nothing here is
//! held across an await.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use parking_lot::{Mutex, RwLock};

use chrono::{DateTime, Utc};

mod health;
pub mod labels;

pub use self::health::{ERRORS_COOLDOWN_MAX, Health, KeyState, ModelCooldown, Report, Rules};
pub use self::labels::{KeyKind, Labels};
use crate::model_health::ModelHealth;
use crate::outcome::{CoolReason, Outcome, Party};
use crate::secret::Secret;

#[derive(Debug)]
pub struct KeyEntry {
    pub id: i64,
    pub secret: Secret,
    /// Fixed for this entry: relabelling a key swaps in a new entry sharing the same health, so
    /// selection reads labels with no lock.
    pub labels: Labels,
    health: Arc<Mutex<Health>>,
}

impl KeyEntry {
    pub fn new(id: i64, secret: Secret, health: Health) -> Self {
        KeyEntry { id, secret, labels: Labels::default(), health: Arc::new(Mutex::new(health)) }
    }

    pub fn with_labels(self, labels: Labels) -> Self {
        KeyEntry { labels, ..self }
    }

    /// A copy of this key's health.
    pub fn health(&self) -> Health {
        self.health.lock().clone()
    }

    /// Reads this key's health under its lock, without copying it.
    pub fn read<R>(&self, f: impl FnOnce(&Health) -> R) -> R {
        f(&self.health.lock())
    }

    /// Changes this key's health; hands back the new health when anything changed, for the caller
    /// to persist.
    fn change(&self, f: impl FnOnce(&mut Health)) -> Option<Health> {
        let mut h = self.health.lock();
        let before = h.clone();
        f(&mut h);
        (*h != before).then(|| h.clone())
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
    /// The one key a request is pinned to is out of rotation (`invalid`, `disabled`) or gone
    /// (`removed`).
    Pinned { id: i64, state: &'static str },
    /// The pool holds keys, but none of the kind and group this request needs.
    NoneInClass { kind: KeyKind, group: Option<String> },
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
            NoKey::Pinned { id, state } => format!("the API key #{id} this request is bound to is {state}"),
            NoKey::NoneInClass { kind: KeyKind::Vertex, .. } => {
                "no Vertex AI Express key in the pool: add one with `gbctl keys add --kind vertex`".into()
            }
            NoKey::NoneInClass { group: Some(g), .. } => format!(
                "no API key of group {g}, which models.groups names for model {model}: label keys with `gbctl keys set KEY --group {g}`"
            ),
            NoKey::NoneInClass { group: None, .. } => format!(
                "no API key without a group for model {model}: every key has a group, and models.groups names none for this model"
            ),
        }
    }
}

/// Which keys may serve a request: those of its kind, in the group `models.groups` gives its model
/// (`None`: keys with no group).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Class<'a> {
    pub kind: KeyKind,
    pub group: Option<&'a str>,
}

impl Class<'_> {
    /// Gemini API keys with no group.
    pub const GEMINI: Class<'static> = Class { kind: KeyKind::Gemini, group: None };

    fn admits(&self, key: &KeyEntry) -> bool {
        key.labels.kind == self.kind && key.labels.group.as_deref() == self.group
    }
}

#[derive(Debug, Default)]
pub struct KeyPool {
    keys: RwLock<Arc<Vec<Arc<KeyEntry>>>>,
    /// The round-robin cursor of Gemini keys with no group, the common class.
    cursor: AtomicUsize,
    /// Every other class's own cursor: with one cursor for all, a class picked between another
    /// class's picks would meet the same key each time.
    cursors: Mutex<Vec<(KeyKind, Option<String>, usize)>>,
    /// Every key is a Gemini key with no group (the usual pool): selection need not count.
    plain: std::sync::atomic::AtomicBool,
    /// Held while a snapshot is copied, changed and swapped back, so two changes cannot lose one.
    writing: Mutex<()>,
    /// Who served which model lately, and which models back off as a whole.
    models: ModelHealth,
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
        self.plain.store(keys.iter().all(|k| Class::GEMINI.admits(k)), Ordering::Relaxed);
        *self.keys.write() = Arc::new(keys);
    }

    pub fn get(&self, id: i64) -> Option<Arc<KeyEntry>> {
        self.snapshot().iter().find(|k| k.id == id).cloned()
    }

    pub fn insert(&self, entries: Vec<KeyEntry>) {
        let _one_writer = self.writing.lock();
        let mut keys: Vec<Arc<KeyEntry>> = self.snapshot().as_ref().clone();
        keys.extend(entries.into_iter().map(Arc::new));
        self.replace(keys);
    }

    /// Gives key `id` new labels (an entry sharing its health, so attempts in flight on the old
    /// entry still report to the same key). Returns the labels it had, `None` when there is no such key.
    pub fn relabel(&self, id: i64, labels: Labels) -> Option<Labels> {
        let _one_writer = self.writing.lock();
        let mut keys: Vec<Arc<KeyEntry>> = self.snapshot().as_ref().clone();
        let slot = keys.iter_mut().find(|k| k.id == id)?;
        let before = slot.labels.clone();
        *slot = Arc::new(KeyEntry { id, secret: slot.secret.clone(), labels, health: slot.health.clone() });
        self.replace(keys);
        Some(before)
    }

    pub fn remove(&self, ids: &[i64]) {
        let _one_writer = self.writing.lock();
        let keys = self.snapshot().iter().filter(|k| !ids.contains(&k.id)).cloned().collect();
        self.replace(keys);
    }

    /// Applies an attempt's outcome to `key` for `model`, charging the party the contract's blame
    /// table names: a transient failure is the key's only while other keys served the model in
    /// the last minute; otherwise the model backs off as a whole and no key pays.
    pub fn report(&self, key: &KeyEntry, model: &str, outcome: &Outcome, now: DateTime<Utc>, rules: Rules) -> Report {
        let party = match outcome {
            Outcome::Success => {
                self.models.served(model, key.id, now);
                None
            }
            Outcome::Client => Some(Party::Client),
            Outcome::RateLimited(_) | Outcome::InvalidKey(_) => Some(Party::Key),
            Outcome::Network(_) => Some(Party::Network),
            Outcome::Transient(_) if self.models.served_by_others(model, key.id, now) => Some(Party::Key),
            Outcome::Transient(_) => {
                self.models.failed(model, key.id, now, self.active_count());
                Some(Party::Model)
            }
        };
        // The common case, a success on a healthy key, changes nothing: skip the copy `change`
        // makes to compare before and after.
        if party.is_none()
            && key.read(|h| {
                h.failures == 0
                    && h.error_streak == 0
                    && !h.cooldowns.contains_key(model)
                    && h.cooldowns.values().all(|c| c.until > now)
            })
        {
            return Report { party, health: None, project: Vec::new() };
        }
        let charged = party == Some(Party::Key);
        let health = key.change(|h| h.apply(outcome, model, now, rules, charged));
        let project = match outcome {
            Outcome::RateLimited(c) => self.cool_project(key, model, c.until, c.reason),
            _ => Vec::new(),
        };
        Report { party, health, project }
    }

    /// Google counts quota per project: a 429 on one key cools every other key of its project
    /// (same kind) for that model, until the same time, unless one already cools longer.
    fn cool_project(
        &self,
        key: &KeyEntry,
        model: &str,
        until: DateTime<Utc>,
        reason: CoolReason,
    ) -> Vec<(i64, Health)> {
        let Some(project) = key.labels.project.as_deref() else { return Vec::new() };
        self.snapshot()
            .iter()
            .filter(|k| {
                k.id != key.id && k.labels.kind == key.labels.kind && k.labels.project.as_deref() == Some(project)
            })
            .filter_map(|k| {
                k.change(|h| {
                    if h.cooldowns.get(model).is_none_or(|c| c.until < until) {
                        h.cooldowns.insert(model.to_string(), ModelCooldown { until, reason });
                    }
                })
                .map(|h| (k.id, h))
            })
            .collect()
    }

    /// When `model` backs off as a whole (no key is serving it), until when.
    pub fn model_backoff(&self, model: &str, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.models.backoff_until(model, now)
    }

    /// Puts back the health a key had before an operator's change that could not be saved, so
    /// memory and database agree on what was acknowledged (nothing).
    pub fn revert(&self, key: &KeyEntry, before: Health) {
        key.change(|h| *h = before);
    }

    /// Sets a key aside (`gbctl keys disable`).
    pub fn disable(&self, key: &KeyEntry) -> Option<Health> {
        key.change(|h| h.state = KeyState::Disabled)
    }

    /// Puts a disabled key back in rotation, with its failure count cleared.
    pub fn enable(&self, key: &KeyEntry) -> Option<Health> {
        key.change(|h| {
            if h.state == KeyState::Disabled {
                h.state = KeyState::Active;
                h.failures = 0;
            }
        })
    }

    /// Clears failure counts and cooldowns (`gbctl keys reset`).
    pub fn reset(&self, key: &KeyEntry) -> Option<Health> {
        key.change(|h| {
            h.failures = 0;
            h.cooldowns.clear();
        })
    }

    /// A passing verification: an invalid key is active again, with a clean slate.
    pub fn restore(&self, key: &KeyEntry) -> Option<Health> {
        key.change(Health::restore)
    }

    /// Lifts the bare-429 (`unknown`) cooldowns of these keys for `model`: egress throttling, not
    /// the keys, caused them. Returns the keys whose health changed.
    pub fn lift_bare_cooldowns(&self, ids: &[i64], model: &str) -> Vec<(i64, Health)> {
        self.snapshot()
            .iter()
            .filter(|k| ids.contains(&k.id))
            .filter_map(|k| {
                k.change(|h| {
                    if h.cooldowns.get(model).is_some_and(|c| c.reason == CoolReason::Unknown) {
                        h.cooldowns.remove(model);
                    }
                })
                .map(|h| (k.id, h))
            })
            .collect()
    }

    /// How many keys are in rotation (active, cooling or not).
    pub fn active_count(&self) -> usize {
        self.snapshot().iter().filter(|k| k.read(|h| h.state == KeyState::Active)).count()
    }

    /// The one key `id`, when it can serve `model` now.
    pub fn pick_pinned(&self, id: i64, model: &str, now: DateTime<Utc>) -> Result<Arc<KeyEntry>, NoKey> {
        let key = self.get(id).ok_or(NoKey::Pinned { id, state: "removed" })?;
        key.read(|h| match h.state {
            KeyState::Active => {
                h.cooling_until(model, now).map_or(Ok(()), |reopens| Err(NoKey::AllCooling { reopens }))
            }
            other => Err(NoKey::Pinned { id, state: other.as_str() }),
        })?;
        Ok(key)
    }

    /// Where `class`'s next round-robin scan starts.
    fn next_start(&self, class: Class<'_>) -> usize {
        if class == Class::GEMINI {
            return self.cursor.fetch_add(1, Ordering::Relaxed);
        }
        let mut cursors = self.cursors.lock();
        match cursors.iter_mut().find(|(k, g, _)| *k == class.kind && g.as_deref() == class.group) {
            Some((_, _, n)) => {
                *n = n.wrapping_add(1);
                *n - 1
            }
            None => {
                cursors.push((class.kind, class.group.map(String::from), 1));
                0
            }
        }
    }

    /// Round-robin over the keys of `class`: the next key after the cursor that is active, not
    /// cooling for `model`, and not in `tried`.
    pub fn pick(
        &self,
        class: Class<'_>,
        model: &str,
        now: DateTime<Utc>,
        tried: &[i64],
    ) -> Result<Arc<KeyEntry>, NoKey> {
        let keys = self.snapshot();
        if keys.is_empty() {
            return Err(NoKey::Empty);
        }
        // The class's keys in order, from the cursor's: each of them starts a scan in turn,
        // whatever other keys sit between them.
        let admitted = || keys.iter().filter(|k| class.admits(k));
        let n = match class == Class::GEMINI && self.plain.load(Ordering::Relaxed) {
            true => keys.len(),
            false => admitted().count().max(1),
        };
        let first = self.next_start(class) % n;
        let (mut invalid, mut disabled, mut active, mut cooling) = (0, 0, 0, 0);
        let mut reopens: Option<DateTime<Utc>> = None;
        for key in admitted().skip(first).chain(admitted().take(first)) {
            let health = key.health.lock();
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
            _ if active + invalid + disabled == 0 => {
                NoKey::NoneInClass { kind: class.kind, group: class.group.map(String::from) }
            }
            _ if active == 0 => NoKey::NoneUsable { invalid, disabled },
            _ => NoKey::AllTried { tried: tried.len() },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::Cooldown;
    use chrono::Duration;

    const RULES: Rules = Rules { max_failures: 3, cooldown_secs: 60 };

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
            counts[(p.pick(Class::GEMINI, "m", now(), &[]).unwrap().id - 1) as usize] += 1;
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
        assert!(p.report(&k1, "flash", &cool, now(), RULES).health.is_some());
        for _ in 0..10 {
            assert_eq!(p.pick(Class::GEMINI, "flash", now(), &[]).unwrap().id, 2);
        }
        let other: Vec<i64> = (0..4).map(|_| p.pick(Class::GEMINI, "pro", now(), &[]).unwrap().id).collect();
        assert!(other.contains(&1));
        assert_eq!(k1.health().display_state(now()), "cooling");
        let later = now() + Duration::seconds(2);
        let ids: Vec<i64> = (0..4).map(|_| p.pick(Class::GEMINI, "flash", later, &[]).unwrap().id).collect();
        assert!(ids.contains(&1));
        assert_eq!(k1.health().display_state(later), "active");
    }

    #[test]
    fn exhaustion_reasons() {
        let p = pool(2);
        assert_eq!(p.pick(Class::GEMINI, "m", now(), &[1, 2]).unwrap_err(), NoKey::AllTried { tried: 2 });
        let until = now() + Duration::seconds(5);
        for k in p.snapshot().iter() {
            let secs = if k.id == 1 { 5 } else { 9 };
            let c = Cooldown {
                until: now() + Duration::seconds(secs),
                reason: CoolReason::Rpm,
                quota_detail: true,
                zero_quota: false,
            };
            p.report(k, "m", &Outcome::RateLimited(c), now(), RULES);
        }
        assert_eq!(p.pick(Class::GEMINI, "m", now(), &[]).unwrap_err(), NoKey::AllCooling { reopens: until });
        p.report(&p.get(1).unwrap(), "m", &Outcome::InvalidKey("bad".into()), now(), RULES);
        p.disable(&p.get(2).unwrap());
        assert_eq!(p.pick(Class::GEMINI, "x", now(), &[]).unwrap_err(), NoKey::NoneUsable { invalid: 1, disabled: 1 });
        assert_eq!(pool(0).pick(Class::GEMINI, "m", now(), &[]).unwrap_err(), NoKey::Empty);
    }

    #[test]
    fn a_pinned_request_gets_its_key_or_the_reason_it_cannot() {
        let p = pool(2);
        assert_eq!(p.pick_pinned(2, "m", now()).unwrap().id, 2);
        let until = now() + Duration::seconds(4);
        let c = Cooldown { until, reason: CoolReason::Rpm, quota_detail: true, zero_quota: false };
        p.report(&p.get(2).unwrap(), "m", &Outcome::RateLimited(c), now(), RULES);
        assert_eq!(p.pick_pinned(2, "m", now()).unwrap_err(), NoKey::AllCooling { reopens: until });
        assert_eq!(p.pick_pinned(2, "other", now()).unwrap().id, 2, "cooling is per model");
        p.disable(&p.get(2).unwrap());
        assert_eq!(p.pick_pinned(2, "m", now()).unwrap_err(), NoKey::Pinned { id: 2, state: "disabled" });
        assert_eq!(p.pick_pinned(9, "m", now()).unwrap_err(), NoKey::Pinned { id: 9, state: "removed" });
    }

    /// Differential blame: a transient failure is the key's only while another key served the
    /// model within the minute; otherwise the model's, and no key pays.
    #[test]
    fn transient_failures_are_charged_only_while_others_serve_the_model() {
        let p = pool(2);
        let (k1, k2) = (p.get(1).unwrap(), p.get(2).unwrap());
        let t = Outcome::Transient("503".into());
        let r = p.report(&k1, "m", &t, now(), RULES);
        assert_eq!((r.party, r.health.is_none()), (Some(Party::Model), true), "nobody serves m: the model's fault");
        assert_eq!(p.model_backoff("m", now()), None, "one key's lone failure holds nothing back");
        p.report(&k2, "m", &t, now(), RULES);
        assert_eq!(p.model_backoff("m", now()), Some(now() + Duration::seconds(1)), "both keys: the model backs off");
        assert_eq!(p.model_backoff("other", now()), None);
        assert_eq!(p.report(&k2, "m", &Outcome::Success, now(), RULES).party, None);
        assert_eq!(p.model_backoff("m", now()), None, "a success ends the backoff");
        let r = p.report(&k1, "m", &t, now(), RULES);
        assert_eq!((r.party, k1.health().failures()), (Some(Party::Key), 1), "key 2 serves m: key 1's fault");
        assert_eq!(p.report(&k2, "m", &t, now(), RULES).party, Some(Party::Model), "key 1 never served m");
        let later = now() + Duration::seconds(61);
        assert_eq!(p.report(&k1, "m", &t, later, RULES).party, Some(Party::Model), "the minute is over");
        assert_eq!(p.report(&k1, "m", &Outcome::Network("refused".into()), now(), RULES).party, Some(Party::Network));
        assert_eq!(k1.health().failures(), 1, "network faults are nobody's key");
    }

    /// `keys.max_failures` charged failures in a row cool the key for that model with reason
    /// `errors`, for `keys.cooldown_secs` doubling on each repeat up to an hour; a success resets.
    /// Never `invalid`.
    #[test]
    fn errors_cooldowns_double_up_to_an_hour_and_a_success_resets_them() {
        let p = pool(2);
        let (k1, k2) = (p.get(1).unwrap(), p.get(2).unwrap());
        let t = Outcome::Transient("500".into());
        let mut at = now();
        let mut rests = Vec::new();
        for _ in 0..9 {
            p.report(&k2, "m", &Outcome::Success, at, RULES);
            for _ in 0..RULES.max_failures {
                assert_eq!(p.report(&k1, "m", &t, at, RULES).party, Some(Party::Key));
            }
            let c = k1.health().cooldowns()["m"].clone();
            assert_eq!((c.reason, k1.health().state()), (CoolReason::Errors, KeyState::Active));
            rests.push((c.until - at).num_seconds());
            at = c.until;
        }
        assert_eq!(rests, vec![60, 120, 240, 480, 960, 1920, 3600, 3600, 3600]);
        assert!(k1.health().cooling_until("other", at).is_none(), "only for that model");
        p.report(&k1, "m", &Outcome::Success, at, RULES);
        p.report(&k2, "m", &Outcome::Success, at, RULES);
        for _ in 0..RULES.max_failures {
            p.report(&k1, "m", &t, at, RULES);
        }
        assert_eq!((k1.health().cooldowns()["m"].until - at).num_seconds(), 60, "the success reset the doubling");
        assert!(p.report(&k1, "m", &Outcome::Client, at, RULES).health.is_none());
    }

    #[test]
    fn operator_changes_and_lifting_bare_cooldowns() {
        let p = pool(2);
        let (k1, k2) = (p.get(1).unwrap(), p.get(2).unwrap());
        assert!(p.disable(&k1).is_some());
        assert!(p.disable(&k1).is_none(), "no change, nothing to persist");
        assert_eq!(p.active_count(), 1);
        p.report(&k1, "m", &Outcome::Transient("x".into()), now(), RULES);
        assert_eq!(k1.health().state(), KeyState::Disabled, "failures never revive a disabled key");
        assert_eq!(p.enable(&k1).map(|h| (h.state(), h.failures())), Some((KeyState::Active, 0)));
        let bare = Cooldown {
            until: now() + Duration::seconds(9),
            reason: CoolReason::Unknown,
            quota_detail: false,
            zero_quota: false,
        };
        let rpm = Cooldown { reason: CoolReason::Rpm, quota_detail: true, ..bare.clone() };
        p.report(&k1, "m", &Outcome::RateLimited(bare), now(), RULES);
        p.report(&k2, "m", &Outcome::RateLimited(rpm), now(), RULES);
        let lifted = p.lift_bare_cooldowns(&[1, 2], "m");
        assert_eq!(lifted.iter().map(|(id, _)| *id).collect::<Vec<_>>(), vec![1], "a quota cooldown stays");
        assert!(k2.health().cooling_until("m", now()).is_some());
        assert!(p.reset(&k2).is_some());
        assert!(k2.health().cooldowns().is_empty());
    }

    #[test]
    fn client_errors_never_count() {
        let p = pool(1);
        let k = p.get(1).unwrap();
        for _ in 0..10 {
            assert!(p.report(&k, "m", &Outcome::Client, now(), Rules { max_failures: 1, ..RULES }).health.is_none());
        }
        assert_eq!(k.health(), Health::default());
    }

    fn labelled(id: i64, kind: KeyKind, group: Option<&str>, project: Option<&str>) -> KeyEntry {
        let labels = Labels { kind, group: group.map(String::from), project: project.map(String::from), note: None };
        KeyEntry::new(id, Secret::new(format!("key-{id}")), Health::default()).with_labels(labels)
    }

    #[test]
    fn selection_keeps_to_the_kind_and_the_group() {
        let p = KeyPool::new(vec![
            labelled(1, KeyKind::Gemini, None, None),
            labelled(2, KeyKind::Gemini, Some("paid"), None),
            labelled(3, KeyKind::Vertex, None, None),
            labelled(4, KeyKind::Gemini, None, None),
        ]);
        let ids = |class: Class<'_>| -> Vec<i64> {
            let mut v: Vec<i64> = (0..8).map(|_| p.pick(class, "m", now(), &[]).unwrap().id).collect();
            v.sort();
            v.dedup();
            v
        };
        assert_eq!(ids(Class::GEMINI), [1, 4], "neither the paid key nor the vertex key");
        // Even within a class whose keys other keys sit between, and with picks of other classes
        // in between.
        let mut counts = [0; 5];
        for _ in 0..100 {
            counts[p.pick(Class::GEMINI, "m", now(), &[]).unwrap().id as usize] += 1;
            p.pick(Class { kind: KeyKind::Vertex, group: None }, "m", now(), &[]).unwrap();
        }
        assert_eq!(counts, [0, 50, 0, 0, 50]);
        assert_eq!(ids(Class { kind: KeyKind::Gemini, group: Some("paid") }), [2]);
        assert_eq!(ids(Class { kind: KeyKind::Vertex, group: None }), [3]);
        let none = p.pick(Class { kind: KeyKind::Gemini, group: Some("gold") }, "m", now(), &[]).unwrap_err();
        assert_eq!(none, NoKey::NoneInClass { kind: KeyKind::Gemini, group: Some("gold".into()) });
        assert!(none.message("imagen-4").contains("--group gold"));
        // Relabelling swaps the entry but keeps its health: an attempt in flight on the old
        // entry still reports to the key.
        let old = p.get(2).unwrap();
        p.relabel(2, Labels::default()).unwrap();
        p.disable(&old);
        assert_eq!(p.get(2).unwrap().health().state(), KeyState::Disabled);
        assert_eq!(p.get(2).unwrap().labels, Labels::default());
        assert_eq!(p.relabel(99, Labels::default()), None);
    }

    #[test]
    fn a_429_cools_the_keys_of_its_project_for_that_model_only() {
        let p = KeyPool::new(vec![
            labelled(1, KeyKind::Gemini, None, Some("proj-a")),
            labelled(2, KeyKind::Gemini, None, Some("proj-a")),
            labelled(3, KeyKind::Gemini, None, Some("proj-b")),
            labelled(4, KeyKind::Gemini, None, None),
        ]);
        let until = now() + Duration::seconds(30);
        let cool =
            Outcome::RateLimited(Cooldown { until, reason: CoolReason::Rpm, quota_detail: true, zero_quota: false });
        let report = p.report(&p.get(1).unwrap(), "flash", &cool, now(), RULES);
        assert_eq!(report.project.iter().map(|(id, _)| *id).collect::<Vec<_>>(), [2]);
        assert_eq!(p.get(2).unwrap().health().cooling_until("flash", now()), Some(until));
        assert_eq!(p.get(2).unwrap().health().cooling_until("pro", now()), None, "only that model");
        assert_eq!(p.get(3).unwrap().health().cooling_until("flash", now()), None, "another project");
        let picked: Vec<i64> = (0..4).map(|_| p.pick(Class::GEMINI, "flash", now(), &[]).unwrap().id).collect();
        assert!(picked.iter().all(|id| [3, 4].contains(id)), "{picked:?}");
        // A shorter cooldown never shortens a longer one already running.
        let short = Outcome::RateLimited(Cooldown {
            until: now() + Duration::seconds(5),
            reason: CoolReason::Rpm,
            quota_detail: true,
            zero_quota: false,
        });
        p.report(&p.get(2).unwrap(), "flash", &short, now(), RULES);
        assert_eq!(p.get(1).unwrap().health().cooling_until("flash", now()), Some(until));
    }
}
