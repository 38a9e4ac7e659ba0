//! The clock: real time with an offset that tests can move, so cooldown expiry and schedules are
//! tested without sleeping.

use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, Duration, Utc};

#[derive(Debug, Default)]
pub struct Clock {
    offset_ms: AtomicI64,
}

impl Clock {
    /// Millisecond precision, the store's, so what is persisted reads back equal.
    pub fn now(&self) -> DateTime<Utc> {
        let ms = Utc::now().timestamp_millis() + self.offset_ms.load(Ordering::Relaxed);
        DateTime::from_timestamp_millis(ms).unwrap_or_default()
    }
    /// Moves this clock forward (tests only need this; production never calls it).
    pub fn advance(&self, by: Duration) {
        self.offset_ms.fetch_add(by.num_milliseconds(), Ordering::Relaxed);
    }
}
