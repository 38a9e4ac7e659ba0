//! PURE: per model, which keys served it lately, and whether the model backs off as a whole. This
//! is what differential blame reads: a transient failure is the key's fault only while other keys
//! served the same model in the last `SERVED_WINDOW`; otherwise it is the model's (an outage, an
//! overload), which no key pays for. The model backs off as a whole once two keys (or the only
//! one) failed on it with no success between: one key's lone 503 says too little to hold every
//! request back. The clock is a parameter.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use parking_lot::Mutex;

/// A success by another key this recent means the model is being served.
pub const SERVED_WINDOW: Duration = Duration::seconds(60);
/// A failing model rests this long first, doubling while it keeps failing, up to the maximum.
pub const BACKOFF_MIN: Duration = Duration::seconds(1);
pub const BACKOFF_MAX: Duration = Duration::seconds(30);

#[derive(Debug, Default)]
struct Model {
    /// Key id → its last success on this model (readers check the window).
    served: HashMap<i64, DateTime<Utc>>,
    /// The current backoff: until when, and its length (the next one doubles it).
    backoff: Option<(DateTime<Utc>, Duration)>,
    last_failure: Option<DateTime<Utc>>,
    /// Keys that failed on this model since its last success, within the window.
    failing: HashMap<i64, DateTime<Utc>>,
}

#[derive(Debug, Default)]
pub struct ModelHealth {
    models: Mutex<HashMap<String, Model>>,
}

impl ModelHealth {
    /// `key` served `model`: the model is healthy again.
    pub fn served(&self, model: &str, key: i64, now: DateTime<Utc>) {
        let mut models = self.models.lock();
        let m = match models.get_mut(model) {
            Some(m) => m,
            None => models.entry(model.to_string()).or_default(),
        };
        // One entry per key, overwritten: bounded by the pool's size, so no sweep on the hot path
        // (readers compare times against the window themselves).
        m.served.insert(key, now);
        m.backoff = None;
        m.failing.clear();
    }

    /// Whether a key other than `key` served `model` within the window.
    pub fn served_by_others(&self, model: &str, key: i64, now: DateTime<Utc>) -> bool {
        let models = self.models.lock();
        models.get(model).is_some_and(|m| m.served.iter().any(|(id, at)| *id != key && now - *at < SERVED_WINDOW))
    }

    /// A transient failure of `key` on a model nobody is serving: once two keys (or all of
    /// `active`, when fewer) failed on it, the model backs off, 1 s doubling up to 30 s while it
    /// keeps failing (a failure long after the last one starts over). Returns the backoff's end,
    /// if one runs.
    pub fn failed(&self, model: &str, key: i64, now: DateTime<Utc>, active: usize) -> Option<DateTime<Utc>> {
        let mut models = self.models.lock();
        let m = models.entry(model.to_string()).or_default();
        m.failing.retain(|_, at| now - *at < SERVED_WINDOW);
        m.failing.insert(key, now);
        if m.failing.len() < active.clamp(1, 2) {
            return m.backoff.map(|(until, _)| until).filter(|u| *u > now);
        }
        let recent = m.last_failure.is_some_and(|at| now - at < SERVED_WINDOW);
        let step = match m.backoff {
            Some((_, step)) if recent => (step * 2).min(BACKOFF_MAX),
            _ => BACKOFF_MIN,
        };
        m.last_failure = Some(now);
        let until = now + step;
        // A backoff already running longer is kept.
        let until = m.backoff.map_or(until, |(u, _)| u.max(until));
        m.backoff = Some((until, step));
        Some(until)
    }

    /// When `model` is backing off, until when.
    pub fn backoff_until(&self, model: &str, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let models = self.models.lock();
        models.get(model).and_then(|m| m.backoff).map(|(until, _)| until).filter(|u| *u > now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z").unwrap().with_timezone(&Utc)
    }

    #[test]
    fn other_keys_serving_is_what_the_window_says() {
        let h = ModelHealth::default();
        assert!(!h.served_by_others("m", 1, now()), "nobody served yet");
        h.served("m", 1, now());
        assert!(!h.served_by_others("m", 1, now()), "its own success does not count");
        assert!(h.served_by_others("m", 2, now()));
        assert!(!h.served_by_others("other", 2, now()), "per model");
        assert!(h.served_by_others("m", 2, now() + Duration::seconds(59)));
        assert!(!h.served_by_others("m", 2, now() + SERVED_WINDOW), "the window ends");
    }

    #[test]
    fn one_keys_lone_failure_does_not_back_the_model_off() {
        let h = ModelHealth::default();
        assert_eq!(h.failed("m", 1, now(), 3), None, "one key of three");
        assert_eq!(h.failed("m", 1, now(), 3), None, "the same key again");
        assert_eq!(h.failed("m", 2, now(), 3), Some(now() + BACKOFF_MIN), "a second key: the model");
        let single = ModelHealth::default();
        assert_eq!(single.failed("m", 1, now(), 1), Some(now() + BACKOFF_MIN), "the only key");
        h.served("m", 3, now());
        assert_eq!(h.failed("m", 1, now(), 3), None, "a success starts the count over");
    }

    #[test]
    fn a_failing_model_backs_off_doubling_to_30_s_and_recovers() {
        let h = ModelHealth::default();
        let mut t = now();
        let mut steps = Vec::new();
        for _ in 0..7 {
            let until = h.failed("m", 1, t, 1).unwrap();
            steps.push((until - t).num_seconds());
            assert_eq!(h.backoff_until("m", t), Some(until));
            assert_eq!(h.backoff_until("other", t), None, "other models are untouched");
            t = until;
        }
        assert_eq!(steps, vec![1, 2, 4, 8, 16, 30, 30]);
        assert_eq!(h.backoff_until("m", t), None, "over once its time is up");
        h.served("m", 3, t);
        assert_eq!((h.failed("m", 1, t, 1).unwrap() - t).num_seconds(), 1, "a success starts the backoff over");
        let much_later = t + Duration::minutes(5);
        h.failed("m", 1, much_later - Duration::seconds(1), 1);
        let again = much_later + SERVED_WINDOW;
        assert_eq!((h.failed("m", 1, again, 1).unwrap() - again).num_seconds(), 1);
    }
}
