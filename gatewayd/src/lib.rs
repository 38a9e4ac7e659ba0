//! gatewayd: pools many Gemini API keys behind one endpoint. `Daemon::boot` builds the state from
//! configuration and the database; `Daemon::run` serves already-bound listeners until a shutdown
//! future resolves, so tests start the real daemon in-process on port 0.
//!
//! # Layout
//!
//! A request's path: `server` (accept, limits, drain) → `router` (path → route, the error
//! dialect) → `auth` (the client's token) → a `dialect` (turns the request into an upstream call
//! and a renderer for the answer) → `proxy::serve` (the attempt loop over `keypool`, judged by
//! `outcome` and `proxy::policy`, sent by `upstream`, relayed and logged) → `logbook` → `store`.
//!
//! | module | owns |
//! |---|---|
//! | `server`, `router`, `auth`, `body`, `error` | the edge: connections, routes, tokens, the body type, errors in each dialect's shape |
//! | `dialect/` | PURE client dialects: `gemini` (native, body untouched), `openai/` (`chat/{request,response,stream}`, `embeddings`, `images`, `speech`), `responses/` (`request`, `build`: one builder for stream and whole), `anthropic/` (`request`, `response`, `stream`), `vertex` (Vertex AI Express), `passthrough`; shared `wire` (typed Gemini structs and stream decoder), `schema`, `signature`; the pool-owned resources `files` (resumable uploads), `caches`, `operations` (batches, long-running operations), `interactions` over `owned` |
//! | `affinity` | key affinity: which key and client token own each resource (memory for the hot path, `store/resources` for restarts), references found in bodies, upload sessions |
//! | `proxy/` | the one seam every route uses: `serve`, the attempt loop, `policy` (PURE decisions), `relay` (streams), `ledger` (one log record per request) |
//! | `keypool/` (`health`, `labels`), `throttle`, `outcome`, `egress` | PURE key health, labels and selection by kind and group, egress throttling, what an answer means for its key, which proxy each key leaves through |
//! | `models`, `catalog` | checked model names and the operator's model rules; model lists |
//! | `upstream`, `image_fetch` | the one outbound client and the request it sends; image fetches |
//! | `config/`, `settings`, `live`, `secret` | config structs, layers and field registry; runtime settings; the swapped snapshot; the masking newtype |
//! | `admin/`, `metrics` | the admin API by noun (keys, settings, logs, metrics); the Prometheus counters |
//! | `logbook`, `record`, `store/` | the batched log writer; log records; all SQL, by table group (`rollup`: the per-minute and per-hour summaries `keys list` and `stats` read) |
//! | `jobs`, `verify`, `clock`, `state`, `sse`, `usage` | cron jobs; key probes; the movable clock; shared state; SSE framing; token usage |
//!
//! Modules are private unless the binaries or the integration tests use them.

mod admin;
pub mod affinity;
mod auth;
mod body;
mod catalog;
pub mod clock;
pub mod config;
mod connection;
mod dialect;
mod egress;
mod error;
mod image_fetch;
pub mod jobs;
pub mod keypool;
mod live;
mod logbook;
mod metrics;
mod model_health;
mod models;
pub mod outcome;
mod proxy;
pub mod record;
mod router;
mod secret;
pub mod server;
pub mod settings;
mod sse;
pub mod state;
pub mod store;
mod throttle;
mod upstream;
mod usage;
pub mod verify;

use std::collections::BTreeMap;
use std::future::Future;
use std::io::Read;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use crate::clock::Clock;
use crate::config::{Config, ConfigError, Layers};
use crate::keypool::{KeyEntry, KeyPool};
use crate::live::Live;
use crate::logbook::Writer;
use crate::secret::Secret;
use crate::server::Listeners;
use crate::state::State;
use crate::store::{Store, StoreError};
use crate::upstream::Upstream;

/// Log records queued for the writer before new ones are dropped (and counted).
const LOG_QUEUE: usize = 16_384;

#[derive(Debug, thiserror::Error)]
pub enum BootError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Other(String),
}

impl BootError {
    /// 78 (EX_CONFIG) for a bad configuration, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            BootError::Config(_) => config::EX_CONFIG,
            _ => 1,
        }
    }
}

pub struct Daemon {
    pub state: Arc<State>,
    writer: Writer,
    /// The client token generated at this start, if none existed: printed once by `main`.
    pub generated_token: Option<String>,
}

/// What boot reads from the database, off the async threads.
struct Loaded {
    store: Store,
    config: Config,
    runtime: BTreeMap<String, toml::Value>,
    keys: Vec<store::KeyRow>,
    resources: Vec<(String, affinity::Binding)>,
    generated_tokens: Vec<Secret>,
    generated_token: Option<String>,
}

impl Daemon {
    pub async fn boot(layers: Layers, clock: Arc<Clock>) -> Result<Daemon, BootError> {
        let boot_layers = layers.clone();
        let now = clock.now();
        let loaded = tokio::task::spawn_blocking(move || load(&boot_layers, now))
            .await
            .map_err(|e| BootError::Other(format!("boot task failed: {e}")))??;
        let Loaded { store, config, runtime, keys, resources, generated_tokens, generated_token } = loaded;
        let upstream = Upstream::new(&config.upstream).map_err(BootError::Other)?;
        let (logbook, writer) = logbook::start(store.clone(), LOG_QUEUE);
        let pool = KeyPool::new(
            keys.into_iter().map(|k| KeyEntry::new(k.id, Secret::new(k.key), k.health).with_labels(k.labels)).collect(),
        );
        let admin_socket = PathBuf::from(&config.server.admin_socket);
        let state = Arc::new(State {
            settings: settings::Settings::new(layers, runtime),
            generated_tokens,
            config: Live::new(config),
            pool,
            store,
            logbook,
            upstream,
            started_at: clock.now(),
            clock,
            listen: OnceLock::new(),
            admin_socket,
            stopping: tokio::sync::watch::channel(false).0,
            cut: tokio::sync::watch::channel(false).0,
            in_flight: Default::default(),
            bodies: Default::default(),
            image_fetches: tokio::sync::Semaphore::new(image_fetch::CONCURRENT_FETCHES),
            models_cache: parking_lot::RwLock::new(None),
            affinity: affinity::Affinity::new(resources),
            recent_responses: Default::default(),
            throttle: Default::default(),
        });
        Ok(Daemon { state, writer, generated_token })
    }

    /// Serves until `shutdown` resolves, drains in-flight requests, flushes the log writer.
    pub async fn run(self, listeners: Listeners, shutdown: impl Future<Output = ()>) {
        self.run_until(listeners, shutdown, std::future::pending()).await
    }

    /// Like `run`, and `force` (a second signal) ends the drain at once; the log is still flushed.
    pub async fn run_until(
        self,
        listeners: Listeners,
        shutdown: impl Future<Output = ()>,
        force: impl Future<Output = ()>,
    ) {
        if let Ok(addr) = listeners.api.local_addr() {
            let _ = self.state.listen.set(addr);
            tracing::info!("serving API clients on http://{addr}");
        }
        tracing::info!("admin API on {}", self.state.admin_socket.display());
        if let Some(addr) = listeners.metrics.as_ref().and_then(|m| m.local_addr().ok()) {
            tracing::info!("serving metrics on http://{addr}/metrics");
        }
        let jobs = jobs::spawn(&self.state);
        server::serve(self.state.clone(), listeners, shutdown, force).await;
        for job in jobs {
            let _ = job.await;
        }
        self.writer.close().await;
        let _ = std::fs::remove_file(&self.state.admin_socket);
        tracing::info!("stopped");
    }
}

fn load(layers: &Layers, now: chrono::DateTime<chrono::Utc>) -> Result<Loaded, BootError> {
    let base = layers.resolve(&BTreeMap::new())?;
    let store = Store::open(std::path::Path::new(&base.database.path))?;
    let (config, runtime) = settings::effective(layers, store.load_settings()?)?;
    // With no token configured in any layer, clients use a generated one: made and printed once,
    // stored, and set aside as soon as a token is configured (file, env or runtime).
    let mut generated_tokens: Vec<Secret> = store.generated_tokens()?.into_iter().map(Secret::new).collect();
    let mut generated_token = None;
    if config.auth.tokens.is_empty() && generated_tokens.is_empty() {
        let token = generate_token()?;
        store.add_generated_token(&token, now)?;
        generated_tokens.push(Secret::new(token.clone()));
        generated_token = Some(token);
    }
    let seeds: Vec<String> = config.keys.api_keys.iter().map(|k| k.expose().to_string()).collect();
    let (added, _) = store.add_keys(&seeds, &crate::keypool::Labels::default(), true, now)?;
    if !added.is_empty() {
        tracing::info!("added {} key(s) from keys.api_keys", added.len());
    }
    let keys = store.load_keys()?;
    let resources = store.load_resources(now)?;
    Ok(Loaded { store, config, runtime, keys, resources, generated_tokens, generated_token })
}

/// A client token: `gw-` and 48 hex digits from the kernel's CSPRNG.
fn generate_token() -> Result<String, BootError> {
    let mut bytes = [0u8; 24];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|e| BootError::Other(format!("cannot read /dev/urandom for a token: {e}")))?;
    Ok(format!("gw-{}", bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()))
}
