//! The daemon's shared state, built once at boot and handed to every connection, plus the clock
//! (real time with an offset that tests can move, so cooldown expiry is tested without sleeping).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicI64, Ordering};

use parking_lot::Mutex;

use chrono::{DateTime, Duration, Utc};
use tokio::sync::watch;

use crate::config::{Config, Layers, Live};
use crate::keypool::KeyPool;
use crate::logbook::Logbook;
use crate::store::Store;
use crate::upstream::Upstream;

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

pub struct State {
    pub layers: Layers,
    /// Runtime settings (name → TOML value), changed only by the admin API.
    pub runtime: Mutex<BTreeMap<String, toml::Value>>,
    /// Tokens the daemon generated; accepted only while `auth.tokens` is empty.
    pub generated_tokens: Vec<crate::config::Secret>,
    /// Serializes runtime-setting changes (validate, persist, swap) so two at once cannot lose
    /// one. Admin-only: the hot path never takes it.
    pub settings_writer: tokio::sync::Mutex<()>,
    pub config: Live<Config>,
    pub pool: KeyPool,
    pub store: Store,
    pub logbook: Logbook,
    pub upstream: Upstream,
    pub clock: std::sync::Arc<Clock>,
    pub started_at: DateTime<Utc>,
    pub listen: OnceLock<SocketAddr>,
    pub admin_socket: PathBuf,
    /// Flips to true when shutdown begins, so endless streams (`logs -f`) end.
    pub stopping: watch::Sender<bool>,
    /// Gateway-wide backoff when Google throttles the egress IP.
    pub throttle: crate::throttle::Throttle,
    /// Signalled when a runtime setting changes, so scheduled jobs pick up new schedules.
    pub settings_changed: tokio::sync::Notify,
    /// The upstream model list, cached briefly for `GET /v1/models` (fetched at, list).
    pub models_cache: parking_lot::RwLock<Option<(std::time::Instant, serde_json::Value)>>,
}

impl State {
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Checks a client's token against the accepted ones: the configured tokens, else the
    /// generated ones. Borrows the snapshot; nothing is copied per request.
    pub fn check_token(&self, presented: Option<&str>) -> Result<(), crate::error::ApiError> {
        let config = self.config.load();
        let tokens = if config.auth.tokens.is_empty() { &self.generated_tokens } else { &config.auth.tokens };
        crate::auth::check(presented, tokens)
    }
}
