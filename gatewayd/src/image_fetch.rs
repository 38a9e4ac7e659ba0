//! Outbound fetches of client-named images (`image_url`): bounded in size and time, a few
//! redirects at most. Outbound I/O, so it lives outside the pure dialects.

use std::time::Duration;

use base64::prelude::{BASE64_STANDARD, Engine as _};
use bytes::Bytes;
use http::header;
use http_body_util::{BodyExt, Limited};
use tokio::time::Instant;

use crate::state::State;

/// Images fetched for `image_url` are bounded in size, and in time by this or
/// `upstream.timeout_secs`, whichever is shorter.
const IMAGE_MAX_BYTES: usize = 20 << 20;
const IMAGE_TIMEOUT: Duration = Duration::from_secs(30);

/// Fetches an http(s) image for `image_url`: bounded size and time, up to 3 redirects.
pub async fn fetch_image(state: &State, url: &str) -> Result<(String, String), String> {
    let cfg = state.config.load();
    let client = state.upstream.client(&cfg.upstream);
    let deadline = Instant::now() + IMAGE_TIMEOUT.min(Duration::from_secs(cfg.upstream.timeout_secs));
    let mut target = url.to_string();
    for _ in 0..4 {
        let uri: http::Uri = target.parse().map_err(|e| format!("not a URL: {e}"))?;
        let mut req = http::Request::new(crate::body::full(Bytes::new()));
        *req.uri_mut() = uri;
        let res = tokio::time::timeout_at(deadline, client.request(req))
            .await
            .map_err(|_| "fetching timed out".to_string())?
            .map_err(|e| format!("fetching failed: {e}"))?;
        if res.status().is_redirection() {
            target = res
                .headers()
                .get(header::LOCATION)
                .and_then(|l| l.to_str().ok())
                .map(String::from)
                .ok_or("redirect without a location")?;
            continue;
        }
        if !res.status().is_success() {
            return Err(format!("fetching answered {}", res.status()));
        }
        let mime = res
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or("").trim().to_string())
            .filter(|m| m.starts_with("image/"))
            .ok_or("not an image (content-type)")?;
        let bytes = tokio::time::timeout_at(deadline, Limited::new(res.into_body(), IMAGE_MAX_BYTES).collect())
            .await
            .map_err(|_| "fetching timed out".to_string())?
            .map_err(|_| format!("larger than {} MiB", IMAGE_MAX_BYTES >> 20))?
            .to_bytes();
        return Ok((mime, BASE64_STANDARD.encode(&bytes)));
    }
    Err("too many redirects".into())
}
