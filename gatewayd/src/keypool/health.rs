//! PURE: a key's health (state, charged failures, per-model cooldowns) and how an attempt's
//! outcome changes it. Written only through `KeyPool`'s methods.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::outcome::{CoolReason, Outcome, Party};

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
    pub fn parse(s: &str) -> Option<KeyState> {
        match s {
            "active" => Some(KeyState::Active),
            "invalid" => Some(KeyState::Invalid),
            "disabled" => Some(KeyState::Disabled),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ModelCooldown {
    pub until: DateTime<Utc>,
    pub reason: CoolReason,
}

/// Everything about a key's health that survives a restart. Read by anyone; written only through
/// `KeyPool`'s methods, the one seam a shared backend would take over.
#[derive(Debug, Clone, PartialEq)]
pub struct Health {
    pub(super) state: KeyState,
    /// Consecutive failures charged to this key (see `outcome::Party::Key`).
    pub(super) failures: u32,
    pub(super) cooldowns: BTreeMap<String, ModelCooldown>,
    pub(super) last_error: Option<String>,
    /// How many `errors` cooldowns in a row, for the doubling; a success resets it. Kept in
    /// memory only: after a restart the next one starts from `keys.cooldown_secs` again.
    pub(super) error_streak: u32,
}

impl Default for Health {
    fn default() -> Self {
        Health { state: KeyState::Active, failures: 0, cooldowns: BTreeMap::new(), last_error: None, error_streak: 0 }
    }
}

/// The hot settings that decide how an outcome changes a key.
#[derive(Debug, Clone, Copy)]
pub struct Rules {
    /// `keys.max_failures`: charged failures in a row before the key cools with reason `errors`.
    pub max_failures: u32,
    /// `keys.cooldown_secs`: the first `errors` cooldown; each repeat doubles it.
    pub cooldown_secs: u64,
}

/// The longest `errors` cooldown.
pub const ERRORS_COOLDOWN_MAX: chrono::Duration = chrono::Duration::hours(1);

/// What a reported outcome did: who was charged, and the key's new health when it changed.
#[derive(Debug)]
pub struct Report {
    /// `None` for a success.
    pub party: Option<Party>,
    pub health: Option<Health>,
    /// Other keys of the same project that a 429 cooled too, with their new health.
    pub project: Vec<(i64, Health)>,
}

impl Health {
    /// Health as the store kept it.
    pub fn restored(
        state: KeyState,
        failures: u32,
        cooldowns: BTreeMap<String, ModelCooldown>,
        last_error: Option<String>,
    ) -> Self {
        Health { state, failures, cooldowns, last_error, error_streak: 0 }
    }

    pub fn state(&self) -> KeyState {
        self.state
    }
    pub fn failures(&self) -> u32 {
        self.failures
    }
    pub fn cooldowns(&self) -> &BTreeMap<String, ModelCooldown> {
        &self.cooldowns
    }
    pub fn last_error(&self) -> Option<&str> {
        self.last_error.as_deref()
    }

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

    /// Invalid, or active with every cooldown over: due for a verification.
    pub fn due_for_verify(&self, now: DateTime<Utc>) -> bool {
        self.state == KeyState::Invalid
            || (self.state == KeyState::Active
                && !self.cooldowns.is_empty()
                && self.cooldowns.values().all(|c| c.until <= now))
    }

    /// Applies an attempt's outcome; `charged` says whether a transient failure is this key's.
    pub(super) fn apply(&mut self, outcome: &Outcome, model: &str, now: DateTime<Utc>, rules: Rules, charged: bool) {
        self.cooldowns.retain(|_, c| c.until > now);
        match outcome {
            Outcome::Success => {
                self.failures = 0;
                self.error_streak = 0;
                self.cooldowns.remove(model);
            }
            Outcome::Client | Outcome::Network(_) => {}
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
            Outcome::Transient(_) if !charged => {}
            Outcome::Transient(reason) => {
                self.failures = self.failures.saturating_add(1);
                self.last_error = Some(reason.clone());
                if self.failures >= rules.max_failures.max(1) {
                    // Never invalid for this: a key that keeps failing rests for the model, longer
                    // each time, and comes back on its own.
                    let first = chrono::Duration::seconds(rules.cooldown_secs.min(3600) as i64);
                    let rest = (first * 2i32.saturating_pow(self.error_streak.min(12))).min(ERRORS_COOLDOWN_MAX);
                    self.cooldowns
                        .insert(model.to_string(), ModelCooldown { until: now + rest, reason: CoolReason::Errors });
                    self.error_streak = self.error_streak.saturating_add(1);
                    self.failures = 0;
                }
            }
        }
    }

    /// A passing verification: back in rotation with a clean slate (a disabled key stays disabled).
    pub(super) fn restore(&mut self) {
        if self.state == KeyState::Invalid {
            self.state = KeyState::Active;
        }
        self.failures = 0;
        self.error_streak = 0;
        self.cooldowns.clear();
    }
}
