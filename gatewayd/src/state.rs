//! The daemon's shared state, built once at boot and handed to every connection.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::OnceLock;

use chrono::{DateTime, Utc};
use tokio::sync::watch;

use crate::config::Config;
use crate::keypool::KeyPool;
use crate::live::Live;
use crate::logbook::Logbook;
use crate::store::Store;
use crate::upstream::Upstream;

pub struct State {
    /// Runtime settings and the layers below them; changed only by the admin API.
    pub settings: crate::settings::Settings,
    /// Tokens the daemon generated; accepted only while `auth.tokens` is empty.
    pub generated_tokens: Vec<crate::secret::Secret>,
    pub config: Live<Config>,
    pub pool: KeyPool,
    pub store: Store,
    pub logbook: Logbook,
    pub upstream: Upstream,
    pub clock: std::sync::Arc<crate::clock::Clock>,
    pub started_at: DateTime<Utc>,
    pub listen: OnceLock<SocketAddr>,
    pub admin_socket: PathBuf,
    /// Flips to true when shutdown begins, so endless streams (`logs -f`) end.
    pub stopping: watch::Sender<bool>,
    /// Flips to true when the drain ends with requests still in flight: their connections are
    /// dropped, and each leaves its 499 log row before the writer closes.
    pub cut: watch::Sender<bool>,
    /// Image fetches running now, all requests together (`image_fetch::CONCURRENT_FETCHES`).
    pub image_fetches: tokio::sync::Semaphore,
    /// Request bodies held in memory now, all requests together.
    pub bodies: crate::connection::BodyBudget,
    /// Client requests being proxied now, streams included (the ledgers alive).
    pub in_flight: std::sync::atomic::AtomicU64,
    /// Gateway-wide backoff when Google throttles the egress IP.
    pub throttle: crate::throttle::Throttle,
    /// The upstream model list, cached briefly for `GET /v1/models` (fetched at, list).
    pub models_cache: parking_lot::RwLock<Option<(std::time::Instant, serde_json::Value)>>,
    /// Which key and client token own each resource created through the pool.
    pub affinity: crate::affinity::Affinity,
    /// Responses API responses stored lately, also held in memory (dialect/responses).
    pub recent_responses: crate::dialect::responses::Recent,
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
