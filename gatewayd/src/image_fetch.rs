//! Outbound fetches of client-named images (`image_url`), under `models.image_fetch`: `public`
//! (the default) checks every resolved address of every hop, redirects included, against
//! loopback, private, link-local (the cloud metadata address), CGNAT, multicast and unique-local
//! ranges, and connects to exactly the address it checked; `off` fetches nothing; `any` fetches
//! anything. Bytes for one request are bounded by `server.max_body_bytes` in total, a handful of
//! fetches run at once, and the client learns only the class of a failure, never whether a port
//! is open. Outbound I/O, so it lives outside the pure dialects.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use base64::prelude::{BASE64_STANDARD, Engine as _};
use bytes::Bytes;
use http::{Uri, header};
use http_body_util::{BodyExt, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::time::Instant;

use crate::state::State;

/// One image is bounded in time by this or `upstream.timeout_secs`, whichever is shorter.
const IMAGE_TIMEOUT: Duration = Duration::from_secs(30);
/// Redirects followed at most.
const MAX_REDIRECTS: usize = 3;
/// Image fetches running at once, all requests together.
pub const CONCURRENT_FETCHES: usize = 8;

/// What the client is told when an image could not be had: a class, nothing more.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    #[error("fetching images is off (models.image_fetch); send the image as a data: URL")]
    Off,
    #[error("not an http(s) URL")]
    NotUrl,
    #[error("its address is not allowed (models.image_fetch = \"public\" fetches from public addresses only)")]
    NotAllowed,
    #[error("the image could not be fetched")]
    Unavailable,
    #[error("not an image (content-type)")]
    NotImage,
    #[error("the images of one request may hold at most {0} bytes (server.max_body_bytes)")]
    TooLarge(u64),
}

/// How `models.image_fetch` lets the gateway fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    Public,
    Off,
    Any,
}

impl Policy {
    pub fn parse(s: &str) -> Option<Policy> {
        match s {
            "public" => Some(Policy::Public),
            "off" => Some(Policy::Off),
            "any" => Some(Policy::Any),
            _ => None,
        }
    }
}

/// Whether `ip` is a public unicast address (what `public` may connect to).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public_v4(v4);
            }
            let s = v6.segments();
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00 // unique local fc00::/7
                || (s[0] & 0xffc0) == 0xfe80 // link local fe80::/10
                || (s[0] & 0xffc0) == 0xfec0 // site local (deprecated) fec0::/10
                || (s[0] == 0x64 && s[1] == 0xff9b) // NAT64 64:ff9b::/96 reaches v4 space
                || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
                || v6 == Ipv6Addr::new(0, 0, 0, 0, 0, 0xffff, 0, 0))
        }
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let o = ip.octets();
    !(ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local() // 169.254.0.0/16, the cloud metadata address among them
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.is_unspecified()
        || ip.is_documentation()
        || o[0] == 0 // 0.0.0.0/8
        || (o[0] == 100 && (o[1] & 0xc0) == 64) // CGNAT 100.64.0.0/10
        || (o[0] == 192 && o[1] == 0 && o[2] == 0) // IETF protocol assignments
        || (o[0] == 198 && (o[1] & 0xfe) == 18) // benchmarking 198.18.0.0/15
        || o[0] >= 240) // reserved 240.0.0.0/4
}

/// Fetches the images of one request, in order, within one byte budget; each one is
/// `(mime type, base64 data)`.
/// The images at `urls`, fetched under `models.image_fetch`, by URL; a URL that cannot be
/// fetched is the client's 400, naming it (its query redacted of anything shaped like a key).
pub async fn fetch_map(
    state: &State,
    urls: Vec<String>,
) -> Result<std::collections::HashMap<String, (String, String)>, crate::error::ApiError> {
    let fetched = fetch_all(state, &urls).await.map_err(|(url, e)| {
        crate::error::ApiError::BadRequest(format!("image_url {}: {e}", shared::redact_keys_in(&url)))
    })?;
    Ok(urls.into_iter().zip(fetched).collect())
}

pub async fn fetch_all(state: &State, urls: &[String]) -> Result<Vec<(String, String)>, (String, FetchError)> {
    let cfg = state.config.load();
    let policy = Policy::parse(&cfg.models.image_fetch).unwrap_or(Policy::Public);
    let mut budget = cfg.server.max_body_bytes;
    let mut out = Vec::with_capacity(urls.len());
    for url in urls {
        let _slot = state.image_fetches.acquire().await.map_err(|_| (url.clone(), FetchError::Unavailable))?;
        let (mime, bytes) = fetch_one(state, url, policy, budget).await.map_err(|e| (url.clone(), e))?;
        budget -= bytes.len() as u64;
        out.push((mime, BASE64_STANDARD.encode(&bytes)));
    }
    Ok(out)
}

async fn fetch_one(state: &State, url: &str, policy: Policy, budget: u64) -> Result<(String, Bytes), FetchError> {
    if policy == Policy::Off {
        return Err(FetchError::Off);
    }
    let cfg = state.config.load();
    let deadline = Instant::now() + IMAGE_TIMEOUT.min(Duration::from_secs(cfg.upstream.timeout_secs));
    let mut target: Uri = url.parse().map_err(|_| FetchError::NotUrl)?;
    for _ in 0..=MAX_REDIRECTS {
        let res = tokio::time::timeout_at(deadline, get(state, &target, policy, &cfg.upstream))
            .await
            .map_err(|_| FetchError::Unavailable)??;
        if res.status().is_redirection() {
            let location =
                res.headers().get(header::LOCATION).and_then(|l| l.to_str().ok()).ok_or(FetchError::Unavailable)?;
            target = resolve_location(&target, location).ok_or(FetchError::NotUrl)?;
            continue;
        }
        if !res.status().is_success() {
            return Err(FetchError::Unavailable);
        }
        let mime = res
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or("").trim().to_string())
            .filter(|m| m.starts_with("image/"))
            .ok_or(FetchError::NotImage)?;
        let limit = budget.min(usize::MAX as u64) as usize;
        let bytes = tokio::time::timeout_at(deadline, Limited::new(res.into_body(), limit).collect())
            .await
            .map_err(|_| FetchError::Unavailable)?
            .map_err(|e| match e.is::<http_body_util::LengthLimitError>() {
                true => FetchError::TooLarge(cfg.server.max_body_bytes),
                false => FetchError::Unavailable,
            })?
            .to_bytes();
        return Ok((mime, bytes));
    }
    Err(FetchError::Unavailable)
}

/// A redirect's target, absolute or relative to the URL that answered it.
fn resolve_location(base: &Uri, location: &str) -> Option<Uri> {
    if location.starts_with("http://") || location.starts_with("https://") {
        return location.parse().ok();
    }
    let authority = base.authority()?;
    let path = if location.starts_with('/') { location.to_string() } else { format!("/{location}") };
    format!("{}://{authority}{path}", base.scheme_str()?).parse().ok()
}

/// One GET. Under `public`, the host is resolved here, every address checked, and the connection
/// made to those addresses only (no second lookup a DNS rebinding could answer differently).
async fn get(
    state: &State,
    uri: &Uri,
    policy: Policy,
    upstream: &crate::config::UpstreamConfig,
) -> Result<http::Response<hyper::body::Incoming>, FetchError> {
    let scheme = uri.scheme_str().ok_or(FetchError::NotUrl)?;
    if scheme != "http" && scheme != "https" {
        return Err(FetchError::NotUrl);
    }
    let host = uri.host().ok_or(FetchError::NotUrl)?.trim_start_matches('[').trim_end_matches(']').to_string();
    let port = uri.port_u16().unwrap_or(if scheme == "https" { 443 } else { 80 });
    let mut req = http::Request::new(crate::body::full(Bytes::new()));
    *req.uri_mut() = uri.clone();
    if policy == Policy::Any {
        // No key is involved: the route key #0 would take (the one proxy, or the first by hash).
        let client = state.upstream.client(upstream, 0);
        return client.request(req).await.map_err(|_| FetchError::Unavailable);
    }
    let addrs: Vec<SocketAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => tokio::net::lookup_host((host.as_str(), port)).await.map_err(|_| FetchError::Unavailable)?.collect(),
    };
    if addrs.is_empty() {
        return Err(FetchError::Unavailable);
    }
    if !addrs.iter().all(|a| is_public(a.ip())) {
        return Err(FetchError::NotAllowed);
    }
    let mut http = HttpConnector::new_with_resolver(Pinned(addrs));
    http.enforce_http(false);
    http.set_connect_timeout(Some(Duration::from_secs(upstream.connect_timeout_secs)));
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_webpki_roots()
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    let client: Client<_, crate::body::Body> = Client::builder(TokioExecutor::new()).build(https);
    client.request(req).await.map_err(|_| FetchError::Unavailable)
}

/// A resolver that answers with the addresses already checked.
#[derive(Clone)]
struct Pinned(Vec<SocketAddr>);

impl tower_service::Service<hyper_util::client::legacy::connect::dns::Name> for Pinned {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = std::io::Error;
    type Future = std::future::Ready<Result<Self::Response, std::io::Error>>;

    fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), std::io::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: hyper_util::client::legacy::connect::dns::Name) -> Self::Future {
        std::future::ready(Ok(self.0.clone().into_iter()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_addresses_pass() {
        for blocked in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "0.0.0.0",
            "240.0.0.1",
            "::1",
            "::",
            "fc00::1",
            "fd12::1",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::7f00:1",
        ] {
            assert!(!is_public(blocked.parse().unwrap()), "{blocked}");
        }
        for public in ["8.8.8.8", "142.250.74.100", "2001:4860:4860::8888", "::ffff:8.8.8.8"] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }

    #[test]
    fn redirects_resolve_against_the_url_that_answered() {
        let base: Uri = "http://img.example:8080/a/b.png".parse().unwrap();
        assert_eq!(resolve_location(&base, "/c.png").unwrap(), "http://img.example:8080/c.png");
        assert_eq!(resolve_location(&base, "https://other/x").unwrap(), "https://other/x");
        assert_eq!(resolve_location(&base, "d.png").unwrap(), "http://img.example:8080/d.png");
    }
}
