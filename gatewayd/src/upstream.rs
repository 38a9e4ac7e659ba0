//! The one outbound HTTP client (rustls, HTTP/2 via ALPN, pooled connections), optionally through
//! an HTTP CONNECT or SOCKS5 proxy, with the timeouts the legacy client lacks, and the request it
//! sends (`Outgoing`: what a route wants sent, with a key placed on it per attempt). The client is
//! rebuilt when a hot setting it depends on (connect timeout, proxy) changes.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use parking_lot::RwLock;
use std::task::{Context, Poll};
use std::time::Duration;

use base64::prelude::{BASE64_STANDARD, Engine as _};
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, Uri};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::connect::proxy::{SocksV5, Tunnel};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::body::{Body, BoxError};
use crate::config::UpstreamConfig;

pub type HttpsClient = Client<hyper_rustls::HttpsConnector<Outbound>, Body>;

/// Where the pooled key goes upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyPlacement {
    /// `x-goog-api-key` (Gemini API).
    GoogHeader,
    /// `Authorization: Bearer` (Google's OpenAI-compatible surface).
    Bearer,
}

/// A request body for upstream: bytes that can be sent again on another key, or a client's body
/// relayed as it arrives, which can be sent once only.
pub enum OutBody {
    Bytes(Bytes),
    Once(parking_lot::Mutex<Option<Body>>),
}

impl OutBody {
    pub fn once(body: Body) -> Self {
        OutBody::Once(parking_lot::Mutex::new(Some(body)))
    }

    /// Whether another attempt could send this body again.
    pub fn replayable(&self) -> bool {
        matches!(self, OutBody::Bytes(_))
    }

    /// The bytes, when they are held (for the error log); a streamed body is not.
    pub fn bytes(&self) -> Option<&Bytes> {
        match self {
            OutBody::Bytes(b) => Some(b),
            OutBody::Once(_) => None,
        }
    }

    fn take(&self) -> Option<Body> {
        match self {
            OutBody::Bytes(b) => Some(crate::body::full(b.clone())),
            OutBody::Once(slot) => slot.lock().take(),
        }
    }
}

/// What a route sends upstream, before a key is placed on it.
pub struct Outgoing {
    pub method: Method,
    /// Upstream path and query, built only from checked parts, e.g.
    /// `/v1beta/models/gemini-2.5-flash:generateContent?alt=sse`.
    pub path_and_query: String,
    pub headers: HeaderMap,
    pub body: OutBody,
    pub placement: KeyPlacement,
}

/// A request that could not be built: the gateway's own fault, charged to no key, and never
/// replaced by another URI.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    #[error("the upstream URI {0:?} is not valid")]
    Uri(String),
    #[error("the API key cannot be sent in a header")]
    Key,
    #[error("the request body was already sent once and cannot be sent again")]
    BodySpent,
}

impl Outgoing {
    /// The request for one attempt, with `key` placed as the route asks.
    pub fn request(&self, base_url: &str, key: &str) -> Result<Request<Body>, BuildError> {
        let uri = format!("{}{}", base_url.trim_end_matches('/'), self.path_and_query);
        let uri: Uri = uri.parse().map_err(|_| BuildError::Uri(shared::redact_keys_in(&self.path_and_query)))?;
        let (name, value) = match self.placement {
            KeyPlacement::GoogHeader => (HeaderName::from_static("x-goog-api-key"), HeaderValue::from_str(key)),
            KeyPlacement::Bearer => (http::header::AUTHORIZATION, HeaderValue::from_str(&format!("Bearer {key}"))),
        };
        let mut value = value.map_err(|_| BuildError::Key)?;
        value.set_sensitive(true);
        let body = self.body.take().ok_or(BuildError::BodySpent)?;
        let mut req = Request::new(body);
        *req.method_mut() = self.method.clone();
        *req.uri_mut() = uri;
        *req.headers_mut() = self.headers.clone();
        req.headers_mut().insert(name, value);
        Ok(req)
    }
}

/// Why an attempt produced no HTTP answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransportError {
    Timeout,
    Connect(String),
    Broken(String),
}

impl TransportError {
    pub fn word(&self) -> &'static str {
        match self {
            TransportError::Timeout => "timeout",
            TransportError::Connect(_) => "connect",
            TransportError::Broken(_) => "reset",
        }
    }
}

impl std::fmt::Display for TransportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TransportError::Timeout => f.write_str("upstream timed out"),
            TransportError::Connect(e) => write!(f, "cannot connect upstream: {e}"),
            TransportError::Broken(e) => write!(f, "upstream connection failed: {e}"),
        }
    }
}

/// The TCP leg: direct, or through a proxy.
#[derive(Clone)]
pub enum Outbound {
    Direct(HttpConnector),
    Tunnel(Tunnel<HttpConnector>),
    Socks(SocksV5<HttpConnector>),
}

type ConnectFuture = Pin<Box<dyn Future<Output = Result<TokioIo<TcpStream>, BoxError>> + Send>>;

impl tower_service::Service<Uri> for Outbound {
    type Response = TokioIo<TcpStream>;
    type Error = BoxError;
    type Future = ConnectFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        match self {
            Outbound::Direct(c) => c.poll_ready(cx).map_err(Into::into),
            Outbound::Tunnel(c) => c.poll_ready(cx).map_err(Into::into),
            Outbound::Socks(c) => c.poll_ready(cx).map_err(Into::into),
        }
    }

    fn call(&mut self, dst: Uri) -> ConnectFuture {
        match self {
            Outbound::Direct(c) => {
                let f = c.call(dst);
                Box::pin(async move { f.await.map_err(Into::into) })
            }
            Outbound::Tunnel(c) => {
                let f = c.call(dst);
                Box::pin(async move { f.await.map_err(Into::into) })
            }
            Outbound::Socks(c) => {
                let f = c.call(dst);
                Box::pin(async move { f.await.map_err(Into::into) })
            }
        }
    }
}

#[derive(Debug, Clone)]
struct ClientSettings {
    connect_timeout_secs: u64,
    proxy: String,
    proxies: Vec<String>,
}

impl ClientSettings {
    fn of(cfg: &UpstreamConfig) -> Self {
        ClientSettings {
            connect_timeout_secs: cfg.connect_timeout_secs,
            proxy: cfg.proxy.clone(),
            proxies: cfg.proxies.clone(),
        }
    }

    /// Whether `cfg` still asks for these settings; compared in place, since it runs on every
    /// attempt (no copy of the proxy list per request).
    fn matches(&self, cfg: &UpstreamConfig) -> bool {
        self.connect_timeout_secs == cfg.connect_timeout_secs && self.proxy == cfg.proxy && self.proxies == cfg.proxies
    }

    /// Each egress route's proxy URL (`""` for none): one per `upstream.proxies`, else the one
    /// `upstream.proxy` (or direct).
    fn routes(&self) -> Vec<&str> {
        match self.proxies.is_empty() {
            true => vec![self.proxy.as_str()],
            false => self.proxies.iter().map(String::as_str).collect(),
        }
    }
}

/// The clients for one set of settings: one per egress route, each with its own connections.
struct Clients {
    settings: ClientSettings,
    /// `egress::seed` of each of `upstream.proxies` (empty without them).
    seeds: Vec<u64>,
    clients: Vec<HttpsClient>,
}

impl Clients {
    fn build(settings: ClientSettings) -> Result<Clients, String> {
        let clients =
            settings.routes().iter().map(|p| build(settings.connect_timeout_secs, p)).collect::<Result<_, _>>()?;
        let seeds = settings.proxies.iter().map(|p| crate::egress::seed(p)).collect();
        Ok(Clients { settings, seeds, clients })
    }

    fn route(&self, key_id: i64) -> usize {
        crate::egress::pick(key_id, &self.seeds).unwrap_or(0)
    }
}

pub struct Upstream {
    current: RwLock<Arc<Clients>>,
}

/// The proxy key `key_id` leaves through under `cfg`, as configured (with its password): one of
/// `upstream.proxies` by consistent hashing, else `upstream.proxy`; `None` when direct.
pub fn proxy_of(cfg: &UpstreamConfig, key_id: i64) -> Option<&str> {
    let seeds: Vec<u64> = cfg.proxies.iter().map(|p| crate::egress::seed(p)).collect();
    match crate::egress::pick(key_id, &seeds) {
        Some(i) => Some(cfg.proxies[i].as_str()),
        None => Some(cfg.proxy.as_str()).filter(|p| !p.is_empty()),
    }
}

impl Upstream {
    pub fn new(cfg: &UpstreamConfig) -> Result<Self, String> {
        let clients = Clients::build(ClientSettings::of(cfg))?;
        Ok(Upstream { current: RwLock::new(Arc::new(clients)) })
    }

    /// The client key `key_id` leaves through under these settings, rebuilt first if they
    /// changed since the last request.
    pub fn client(&self, cfg: &UpstreamConfig, key_id: i64) -> HttpsClient {
        let current = self.current.read().clone();
        if current.settings.matches(cfg) {
            return current.clients[current.route(key_id)].clone();
        }
        match Clients::build(ClientSettings::of(cfg)) {
            Ok(clients) => {
                let client = clients.clients[clients.route(key_id)].clone();
                *self.current.write() = Arc::new(clients);
                client
            }
            Err(e) => {
                // Validation already vetted the settings; keep serving with the old client.
                tracing::error!("rebuilding the upstream client failed, keeping the previous one: {e}");
                current.clients[current.route(key_id)].clone()
            }
        }
    }

    /// Sends one attempt with key `key_id` (which picks the egress proxy); the answer's head must
    /// arrive before `deadline`.
    pub async fn send(
        &self,
        cfg: &UpstreamConfig,
        key_id: i64,
        req: Request<Body>,
        deadline: Instant,
    ) -> Result<Response<Incoming>, TransportError> {
        let client = self.client(cfg, key_id);
        match tokio::time::timeout_at(deadline, client.request(req)).await {
            Err(_) => Err(TransportError::Timeout),
            Ok(Ok(res)) => Ok(res),
            Ok(Err(e)) if e.is_connect() => Err(TransportError::Connect(error_chain(&e))),
            Ok(Err(e)) => Err(TransportError::Broken(error_chain(&e))),
        }
    }
}

/// Reads a whole (non-stream) answer body before `deadline`, at most `limit` bytes.
pub async fn read_body(body: Incoming, deadline: Instant, limit: usize) -> Result<Bytes, TransportError> {
    match tokio::time::timeout_at(deadline, Limited::new(body, limit).collect()).await {
        Err(_) => Err(TransportError::Timeout),
        Ok(Ok(c)) => Ok(c.to_bytes()),
        Ok(Err(e)) => Err(TransportError::Broken(e.to_string())),
    }
}

fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(inner) = cur {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        cur = inner.source();
    }
    shared::redact_keys_in(&s)
}

fn build(connect_timeout_secs: u64, proxy: &str) -> Result<HttpsClient, String> {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(Duration::from_secs(connect_timeout_secs)));
    let outbound = if proxy.is_empty() {
        Outbound::Direct(http)
    } else {
        let uri: Uri = proxy.parse().map_err(|e| format!("upstream.proxy: {e}"))?;
        let credentials = uri.authority().and_then(|a| a.as_str().rsplit_once('@')).map(|(u, _)| u.to_string());
        match uri.scheme_str() {
            Some("socks5") | Some("socks5h") => {
                let mut socks = SocksV5::new(strip_userinfo(&uri)?, http).local_dns(uri.scheme_str() == Some("socks5"));
                if let Some((user, pass)) = credentials.as_deref().and_then(|c| c.split_once(':')) {
                    socks = socks.with_auth(user.to_string(), pass.to_string());
                }
                Outbound::Socks(socks)
            }
            _ => {
                let mut tunnel = Tunnel::new(strip_userinfo(&uri)?, http);
                if let Some(c) = credentials {
                    let value = format!("Basic {}", BASE64_STANDARD.encode(c.as_bytes()));
                    tunnel = tunnel.with_auth(value.parse().map_err(|_| "upstream.proxy: bad credentials")?);
                }
                Outbound::Tunnel(tunnel)
            }
        }
    };
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_webpki_roots()
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .wrap_connector(outbound);
    Ok(Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(90))
        // Reads of exactly 8 KiB: hyper's adaptive buffer doubles to 16 KiB on a connection's
        // second read, and a held stream keeps it. 8 KiB is also nginx's cap on an upstream's
        // response head (proxy_buffer_size), far above Google's.
        .http1_read_buf_exact_size(8192)
        .build(https))
}

fn strip_userinfo(uri: &Uri) -> Result<Uri, String> {
    let authority = uri.authority().map(|a| a.as_str()).unwrap_or("");
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    format!("{}://{host}", uri.scheme_str().unwrap_or("http")).parse().map_err(|e| format!("upstream.proxy: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_carry_the_key_in_a_header_and_never_fall_back() {
        let out = Outgoing {
            method: Method::POST,
            path_and_query: "/v1beta/models/m:generateContent?alt=sse".into(),
            headers: HeaderMap::new(),
            body: OutBody::Bytes(Bytes::from_static(b"{}")),
            placement: KeyPlacement::GoogHeader,
        };
        let req = out.request("http://up.example/", "k-1").unwrap();
        assert_eq!(req.uri(), "http://up.example/v1beta/models/m:generateContent?alt=sse");
        assert_eq!(req.headers()["x-goog-api-key"], "k-1");
        assert!(req.headers()["x-goog-api-key"].is_sensitive());
        let bearer = Outgoing { placement: KeyPlacement::Bearer, ..out };
        assert_eq!(bearer.request("http://up.example", "k-2").unwrap().headers()["authorization"], "Bearer k-2");
        let bad = Outgoing { path_and_query: "/v1beta/models/a b:x".into(), ..bearer };
        assert!(matches!(bad.request("http://up.example", "k"), Err(BuildError::Uri(_))));
        let newline = Outgoing { path_and_query: "/ok".into(), ..bad };
        assert_eq!(newline.request("http://up.example", "k\n").unwrap_err(), BuildError::Key);
        let once = Outgoing { body: OutBody::once(crate::body::full("x")), ..newline };
        assert!(!once.body.replayable());
        assert!(once.request("http://up.example", "k").is_ok());
        assert_eq!(once.request("http://up.example", "k").unwrap_err(), BuildError::BodySpent);
    }

    #[test]
    fn proxies_build() {
        for proxy in ["", "http://user:pw@127.0.0.1:3128", "socks5://127.0.0.1:1080", "socks5h://u:p@127.0.0.1:1080"] {
            let cfg = UpstreamConfig { proxy: proxy.into(), ..UpstreamConfig::default() };
            assert!(Upstream::new(&cfg).is_ok(), "{proxy}");
        }
    }
}
