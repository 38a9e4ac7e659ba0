//! Test support: FakeGemini, and the real daemon started in-process on port 0 with a temp
//! directory for its database and socket.

mod caches;
pub mod fake;
mod files;
mod interactions;
pub mod media;
mod operations;
pub mod proxies;
pub mod strict;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use gatewayd::clock::Clock;
use gatewayd::config::Layers;
use gatewayd::server::{Listeners, bind_admin_socket};
use gatewayd::state::State;
use gatewayd::store::{LogFilter, StoredError, StoredRequest};
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use tempfile::TempDir;
use tokio::sync::oneshot;

/// The pool's rules as the default config sets them.
pub const RULES: gatewayd::keypool::Rules = gatewayd::keypool::Rules { max_failures: 3, cooldown_secs: 60 };

pub const TOKEN: &str = "test-token-0123456789";

/// Test keys shaped like real ones, so redaction is exercised for real.
pub fn key(n: u32) -> String {
    format!("AIzaSyTest{n:0>25}Key{n:0>1}")[..39].to_string()
}

pub struct GatewayBuilder {
    upstream: String,
    keys: Vec<String>,
    settings: BTreeMap<String, BTreeMap<String, String>>,
    dir: Option<Arc<TempDir>>,
    clock: Arc<Clock>,
}

impl GatewayBuilder {
    pub fn keys(mut self, keys: &[String]) -> Self {
        self.keys = keys.to_vec();
        self
    }

    /// A config field as a TOML literal, e.g. `.set("keys.max_retries", "5")`.
    pub fn set(mut self, name: &str, literal: &str) -> Self {
        let (section, field) = name.split_once('.').unwrap();
        self.settings.entry(section.into()).or_default().insert(field.into(), literal.into());
        self
    }

    /// Reuse a directory (database, socket) from an earlier gateway: a restart.
    pub fn dir(mut self, dir: Arc<TempDir>) -> Self {
        self.dir = Some(dir);
        self
    }

    pub fn clock(mut self, clock: Arc<Clock>) -> Self {
        self.clock = clock;
        self
    }

    pub fn config_text(&self, dir: &std::path::Path) -> String {
        let mut settings = self.settings.clone();
        let put = |s: &mut BTreeMap<String, BTreeMap<String, String>>, sec: &str, f: &str, v: String| {
            s.entry(sec.into()).or_default().entry(f.into()).or_insert(v);
        };
        put(&mut settings, "server", "listen", "\"127.0.0.1:0\"".into());
        put(&mut settings, "server", "admin_socket", format!("{:?}", dir.join("gatewayd.sock").display().to_string()));
        put(&mut settings, "server", "shutdown_grace_secs", "5".into());
        put(&mut settings, "database", "path", format!("{:?}", dir.join("gateway.db").display().to_string()));
        put(&mut settings, "upstream", "base_url", format!("{:?}", self.upstream));
        put(&mut settings, "upstream", "timeout_secs", "10".into());
        put(&mut settings, "auth", "tokens", format!("[{:?}]", TOKEN));
        let keys: Vec<String> = self.keys.iter().map(|k| format!("{k:?}")).collect();
        put(&mut settings, "keys", "api_keys", format!("[{}]", keys.join(", ")));
        let mut text = String::new();
        for (section, fields) in settings {
            text.push_str(&format!("[{section}]\n"));
            for (f, v) in fields {
                text.push_str(&format!("{f} = {v}\n"));
            }
        }
        text
    }

    pub async fn start(self) -> Gateway {
        let dir = self.dir.clone().unwrap_or_else(|| Arc::new(tempfile::tempdir().unwrap()));
        let config_path = dir.path().join("gateway.toml");
        std::fs::write(&config_path, self.config_text(dir.path())).unwrap();
        let layers = Layers::from_parts(Some(config_path.clone()), BTreeMap::new()).unwrap();
        let daemon = gatewayd::Daemon::boot(layers, self.clock.clone()).await.expect("daemon boots");
        let state = daemon.state.clone();
        let socket = state.admin_socket.clone();
        let api = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = api.local_addr().unwrap();
        let database = std::path::PathBuf::from(&state.config.load().database.path);
        let admin = bind_admin_socket(&socket, &database).unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(daemon.run(Listeners { api, admin, metrics: None }, async {
            let _ = stopped.await;
        }));
        Gateway { dir, config_path, addr, socket, state, stop: Some(stop), task, client: client(), clock: self.clock }
    }
}

pub fn client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build_http()
}

/// A daemon running in-process; `config_path` and `socket` are for tools (gbctl) that drive it.
pub struct Gateway {
    pub dir: Arc<TempDir>,
    pub config_path: PathBuf,
    pub addr: SocketAddr,
    pub socket: PathBuf,
    pub state: Arc<State>,
    pub clock: Arc<Clock>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
    client: Client<HttpConnector, Full<Bytes>>,
}

#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

impl Gateway {
    pub fn builder(upstream: &str) -> GatewayBuilder {
        GatewayBuilder {
            upstream: upstream.into(),
            keys: Vec::new(),
            settings: BTreeMap::new(),
            dir: None,
            clock: Arc::new(Clock::default()),
        }
    }

    /// Stops the daemon as SIGTERM would and waits for it; returns its directory for a restart.
    pub async fn stop(mut self) -> Arc<TempDir> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(Duration::from_secs(20), &mut self.task).await.expect("daemon stops").unwrap();
        self.dir.clone()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> http::Response<hyper::body::Incoming> {
        let mut req = Request::new(Full::new(body.into()));
        *req.method_mut() = method;
        *req.uri_mut() = self.url(path).parse().unwrap();
        for (k, v) in headers {
            req.headers_mut().insert(http::HeaderName::from_bytes(k.as_bytes()).unwrap(), v.parse().unwrap());
        }
        tokio::time::timeout(Duration::from_secs(30), self.client.request(req))
            .await
            .expect("gateway answers")
            .expect("request")
    }

    pub async fn request(&self, method: Method, path: &str, headers: &[(&str, &str)], body: impl Into<Bytes>) -> Reply {
        let res = self.send(method, path, headers, body).await;
        let (parts, body) = res.into_parts();
        let body = tokio::time::timeout(Duration::from_secs(30), body.collect())
            .await
            .expect("body in time")
            .expect("body")
            .to_bytes();
        Reply { status: parts.status, headers: parts.headers, body }
    }

    /// POST with the token in `x-goog-api-key`, as the google-genai SDK sends it.
    pub async fn post(&self, path: &str, body: impl Into<Bytes>) -> Reply {
        self.request(Method::POST, path, &[("x-goog-api-key", TOKEN), ("content-type", "application/json")], body).await
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.request(Method::GET, path, &[("x-goog-api-key", TOKEN)], Bytes::new()).await
    }

    /// Waits (generously) until the request log holds at least `n` rows, and returns them.
    pub async fn logged_requests(&self, n: usize) -> Vec<StoredRequest> {
        let store = self.state.store.clone();
        wait_rows("request log", n, || {
            store.recent_requests(&LogFilter { limit: 10_000, ..Default::default() }).unwrap()
        })
        .await
    }

    pub async fn logged_errors(&self, n: usize) -> Vec<StoredError> {
        let store = self.state.store.clone();
        wait_rows("error log", n, || store.recent_errors(&LogFilter { limit: 10_000, ..Default::default() }).unwrap())
            .await
    }

    /// Invalidates key `id` as an auth rejection would.
    pub fn invalidate(&self, id: i64) {
        let key = self.state.pool.get(id).expect("key in pool");
        let outcome = gatewayd::outcome::Outcome::InvalidKey("401 test".into());
        self.state.pool.report(&key, "*", &outcome, self.state.now(), RULES);
    }

    /// Cools key `id` for `model` until `until`, as a 429 with a retry delay would.
    pub fn cool(&self, id: i64, model: &str, until: chrono::DateTime<chrono::Utc>) {
        let key = self.state.pool.get(id).expect("key in pool");
        let cooldown = gatewayd::outcome::Cooldown {
            until,
            reason: gatewayd::outcome::CoolReason::Rpm,
            quota_detail: true,
            zero_quota: false,
        };
        let outcome = gatewayd::outcome::Outcome::RateLimited(cooldown);
        self.state.pool.report(&key, model, &outcome, self.state.now(), RULES);
    }

    /// Key health as the pool sees it, by key text.
    pub fn health(&self, key: &str) -> gatewayd::keypool::Health {
        self.state.pool.snapshot().iter().find(|k| k.secret.expose() == key).expect("key in pool").health()
    }
}

/// Polls `read` (every 25 ms, for up to 5 s) until it returns at least `n` rows.
async fn wait_rows<T>(what: &str, n: usize, read: impl Fn() -> Vec<T>) -> Vec<T> {
    for _ in 0..200 {
        let rows = read();
        if rows.len() >= n {
            return rows;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{what} never reached {n} rows");
}

pub const GENERATE: &str = "/v1beta/models/gemini-2.5-flash:generateContent";
pub const STREAM_SSE: &str = "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse";
pub const HELLO: &str = r#"{"contents":[{"role":"user","parts":[{"text":"Hello"}]}]}"#;

/// One request to a gatewayd admin socket, as gbctl sends it: the status and the body.
pub async fn admin(socket: &std::path::Path, method: Method, path: &str, body: Option<String>) -> (StatusCode, String) {
    let stream = tokio::net::UnixStream::connect(socket).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await.unwrap();
    tokio::spawn(conn);
    let mut req = Request::new(Full::new(Bytes::from(body.unwrap_or_default())));
    *req.method_mut() = method;
    *req.uri_mut() = path.parse().unwrap();
    req.headers_mut().insert("host", "gatewayd".parse().unwrap());
    req.headers_mut().insert("content-type", "application/json".parse().unwrap());
    let res = sender.send_request(req).await.unwrap();
    let status = res.status();
    (status, String::from_utf8_lossy(&res.into_body().collect().await.unwrap().to_bytes()).into_owned())
}
