//! The Gemini Files API through the pool, each file pinned to the key that uploaded it.
//!
//! Uploads use Google's resumable protocol: the start goes out with a pooled key, and the
//! `X-Goog-Upload-URL` the client gets back points at the gateway, with an upload id of the
//! gateway's own (Google's URL and the key never reach the client). Each later command (upload,
//! finalize, query) goes to Google's URL with the same key; the finalize answer names the file,
//! which is then bound to that key and to the client's token before the client hears of it.

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, Method, Response, StatusCode, header};
use serde_json::Value;

use super::Call;
use super::owned::{self, outgoing, pinned, plan, relay};
use crate::affinity::{self, Owner, Upload};
use crate::body::Body;
use crate::error::ApiError;
use crate::proxy::{self, KeyChoice, Served, forwarded_headers};
use crate::state::State;

/// A Files API request, by path.
#[derive(Debug, PartialEq, Eq)]
pub enum Target<'a> {
    /// `/upload/v1beta/files`, a start (or one-shot upload) or, with `upload_id`, a later command.
    Upload,
    List,
    /// `/v1beta/files/{id}`.
    File(&'a str),
    /// `/download/v1beta/files/{id}:download`.
    Download(&'a str),
    /// `/v1beta/files/{id}:download`, as the SDKs and Veo's video URIs spell a download.
    Media(&'a str),
}

fn upload_headers(client: &HeaderMap) -> HeaderMap {
    let mut h = forwarded_headers(client);
    for (name, value) in client {
        // The length too: a relayed chunk goes upstream with the size the client declared.
        if name.as_str().starts_with("x-goog-upload-") || name == header::CONTENT_LENGTH {
            h.insert(name.clone(), value.clone());
        }
    }
    h
}

pub async fn handle(state: &Arc<State>, target: Target<'_>, call: Call<'_>) -> Result<Response<Body>, ApiError> {
    let owner = call.owner();
    let query = crate::auth::strip_key_param(call.query);
    match target {
        Target::Upload if *call.method != Method::POST && *call.method != Method::PUT => {
            Err(ApiError::MethodNotAllowed(call.method.clone()))
        }
        Target::Upload => upload(state, call, &owner, query.as_deref()).await,
        Target::List if *call.method == Method::GET => {
            owned::list(state, &call, &owner, ("files", "files"), "files.list").await
        }
        Target::List => Err(ApiError::MethodNotAllowed(call.method.clone())),
        Target::File(id) | Target::Download(id) | Target::Media(id) => {
            let name = affinity::file_name(&format!("files/{id}"))
                .ok_or_else(|| ApiError::BadRequest(format!("files/{id} is not a file name")))?;
            let key = state.affinity.resolve(std::slice::from_ref(&name), &owner, state.now())?.expect("one name");
            let keys = pinned(state, &name, key)?;
            let v = call.version;
            let (route, path) = match (&target, call.method) {
                (Target::Download(_), &Method::GET) => ("files.download", format!("/download/{v}/{name}:download")),
                (Target::Media(_), &Method::GET) => ("files.download", format!("/{v}/{name}:download")),
                (Target::File(_), &Method::GET) => ("files.get", format!("/{v}/{name}")),
                (Target::File(_), &Method::DELETE) => ("files.delete", format!("/{v}/{name}")),
                _ => return Err(ApiError::MethodNotAllowed(call.method.clone())),
            };
            let out = outgoing(
                call.method.clone(),
                owned::with_query(path, &query),
                forwarded_headers(call.headers),
                Bytes::new(),
            );
            if route == "files.download" {
                // A download (a video, a large file) is relayed as it arrives, never held whole.
                let plan = crate::proxy::Plan { stream: true, ..plan(route, keys) };
                return Ok(proxy::serve(state, plan, out, super::gemini::Native::relayed()).await);
            }
            let served = proxy::fetch(state, plan(route, keys), out).await?;
            if route == "files.delete" && served.status.is_success() {
                owned::unbind(state, &name).await?;
            }
            Ok(relay(&served, None))
        }
    }
}

fn upload_id(query: Option<&str>) -> Option<&str> {
    query.and_then(|q| q.split('&').find_map(|p| p.strip_prefix("upload_id=")))
}

/// Whether the query names an upload in progress (its URL stands in for the token).
pub fn known_upload(state: &State, query: Option<&str>) -> bool {
    upload_id(query).is_some_and(|id| state.affinity.upload(id).is_some())
}

/// Google's cap on one file; a relayed upload longer than this is cut.
pub const MAX_UPLOAD_BYTES: usize = (2 << 30) + (1 << 20);

async fn upload(
    state: &Arc<State>,
    mut call: Call<'_>,
    owner: &Owner,
    query: Option<&str>,
) -> Result<Response<Body>, ApiError> {
    let (served, upload_url) = match upload_id(query) {
        Some(id) => {
            let up =
                state.affinity.upload(id).ok_or_else(|| ApiError::NotFound(format!("upload {id} is not found")))?;
            let keys = pinned(state, "an upload in progress", up.key_id)?;
            let mut out = outgoing(Method::POST, up.upstream.clone(), upload_headers(call.headers), call.body.clone());
            if let Some(stream) = call.stream.take() {
                out.body = crate::upstream::OutBody::once(stream);
            }
            let served = proxy::fetch(state, plan("files.upload", keys), out).await?;
            let done = served.headers.get("x-goog-upload-status").is_some_and(|s| s == "final" || s == "cancelled");
            if done || !served.status.is_success() && served.status != StatusCode::PERMANENT_REDIRECT {
                state.affinity.end_upload(id);
            }
            // The file goes to whoever started the upload, whatever token (if any) came now.
            bind_uploaded(state, &served, &up.owner).await?;
            (served, None)
        }
        None => {
            let path = owned::with_query(format!("/upload/{}/files", call.version), &query.map(String::from));
            let out = outgoing(Method::POST, path, upload_headers(call.headers), call.body.clone());
            let served = proxy::fetch(state, plan("files.upload", KeyChoice::Any), out).await?;
            let google_url = served.headers.get("x-goog-upload-url").and_then(|v| v.to_str().ok());
            let url = match google_url.and_then(|u| u.parse::<http::Uri>().ok()) {
                Some(uri) => {
                    let id = new_upload_id()?;
                    let upstream = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/").to_string();
                    let upload = Upload { upstream, key_id: served.key_id, owner: owner.clone() };
                    state.affinity.start_upload(&id, upload);
                    Some(format!(
                        "{}/upload/{}/files?upload_id={id}&upload_protocol=resumable",
                        origin(state, &call),
                        call.version
                    ))
                }
                None => None,
            };
            bind_uploaded(state, &served, owner).await?;
            (served, url)
        }
    };
    Ok(relay(&served, upload_url))
}

/// A finalize (or one-shot upload) answer names the new file: bound and committed before the
/// client hears of it.
async fn bind_uploaded(state: &Arc<State>, served: &Served, owner: &Owner) -> Result<(), ApiError> {
    if !served.status.is_success() {
        return Ok(());
    }
    let Ok(v) = serde_json::from_slice::<Value>(&served.body) else { return Ok(()) };
    let file = v.get("file").unwrap_or(&v);
    let Some(name) = file.get("name").and_then(Value::as_str).and_then(affinity::file_name) else {
        return Ok(());
    };
    owned::bind(state, &name, served.key_id, owner, owned::expiry(file, "expirationTime")).await
}

/// Where the client reached the gateway: its `Host`, with `X-Forwarded-Proto` when a TLS proxy
/// sits in front, else the listen address.
fn origin(state: &State, call: &Call<'_>) -> String {
    let scheme = call
        .headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .filter(|p| *p == "https" || *p == "http")
        .unwrap_or("http");
    let host = call
        .headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .filter(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b)))
        .map(String::from)
        .or_else(|| state.listen.get().map(|a| a.to_string()))
        .unwrap_or_else(|| "127.0.0.1".into());
    format!("{scheme}://{host}")
}

/// 16 random bytes, hex: an upload id that cannot be guessed.
fn new_upload_id() -> Result<String, ApiError> {
    let mut bytes = [0u8; 16];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
        .map_err(|_| ApiError::BadGateway("no randomness for an upload id".into()))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}
