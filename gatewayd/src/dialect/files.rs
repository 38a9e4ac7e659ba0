//! The Gemini Files API through the pool, each file pinned to the key that uploaded it.
//!
//! Uploads use Google's resumable protocol: the start goes out with a pooled key, and the
//! `X-Goog-Upload-URL` the client gets back points at the gateway, with an upload id of the
//! gateway's own (Google's URL and the key never reach the client). Each later command (upload,
//! finalize, query) goes to Google's URL with the same key; the finalize answer names the file,
//! which is then bound to that key and to the client's token before the client hears of it.

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Response, StatusCode, header};
use serde_json::{Value, json};

use super::Call;
use crate::affinity::{self, Binding, Owner, Upload};
use crate::body::{Body, full};
use crate::error::ApiError;
use crate::keypool::NoKey;
use crate::outcome::Expect;
use crate::proxy::{self, KeyChoice, Plan, Served, forwarded_headers};
use crate::state::State;
use crate::upstream::{KeyPlacement, OutBody, Outgoing};

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
}

fn upload_headers(client: &HeaderMap) -> HeaderMap {
    let mut h = forwarded_headers(client);
    for (name, value) in client {
        if name.as_str().starts_with("x-goog-upload-") {
            h.insert(name.clone(), value.clone());
        }
    }
    h
}

/// The client's answer from Google's: status, content type, the upload protocol's headers, body.
fn relay(served: &Served, upload_url: Option<String>) -> Response<Body> {
    let mut res = Response::new(full(served.body.clone()));
    *res.status_mut() = served.status;
    for (name, value) in &served.headers {
        let n = name.as_str();
        if n == "content-type" || (n.starts_with("x-goog-upload-") && n != "x-goog-upload-url") {
            res.headers_mut().insert(name.clone(), value.clone());
        }
    }
    if let Some(url) = upload_url.and_then(|u| HeaderValue::from_str(&u).ok()) {
        res.headers_mut().insert(HeaderName::from_static("x-goog-upload-url"), url);
    }
    res
}

fn plan(route: &'static str, keys: KeyChoice) -> Plan {
    Plan { route: route.into(), model: None, stream: false, expect: Expect::Anything, keys }
}

fn outgoing(method: Method, path_and_query: String, headers: HeaderMap, body: Bytes) -> Outgoing {
    Outgoing { method, path_and_query, headers, body: OutBody::Bytes(body), placement: KeyPlacement::GoogHeader }
}

/// The key a resource is pinned to, when it can serve; 409 naming the resource and the key when
/// that key is invalid, disabled or removed (a cooling key is waited for by the attempt loop).
pub fn pinned(state: &State, name: &str, key_id: i64) -> Result<KeyChoice, ApiError> {
    match state.pool.pick_pinned(key_id, "", state.now()) {
        Err(NoKey::Pinned { id, state: key_state }) => Err(ApiError::Bound(format!(
            "{name} belongs to API key #{id} of the pool, which is {key_state}; it cannot be used through another key"
        ))),
        _ => Ok(KeyChoice::Pinned(key_id)),
    }
}

pub async fn handle(state: &Arc<State>, target: Target<'_>, call: Call<'_>) -> Result<Response<Body>, ApiError> {
    let owner = call.owner();
    let query = crate::auth::strip_key_param(call.query);
    match target {
        Target::Upload if *call.method != Method::POST && *call.method != Method::PUT => {
            Err(ApiError::MethodNotAllowed(call.method.clone()))
        }
        Target::Upload => upload(state, &call, &owner, query.as_deref()).await,
        Target::List if *call.method == Method::GET => list(state, &call, &owner).await,
        Target::List => Err(ApiError::MethodNotAllowed(call.method.clone())),
        Target::File(id) | Target::Download(id) => {
            let name = affinity::file_name(&format!("files/{id}"))
                .ok_or_else(|| ApiError::BadRequest(format!("files/{id} is not a file name")))?;
            let key = state.affinity.resolve(std::slice::from_ref(&name), &owner, state.now())?.expect("one name");
            let keys = pinned(state, &name, key)?;
            let (route, path) = match (&target, call.method) {
                (Target::Download(_), &Method::GET) => ("files.download", format!("/download/v1beta/{name}:download")),
                (Target::File(_), &Method::GET) => ("files.get", format!("/v1beta/{name}")),
                (Target::File(_), &Method::DELETE) => ("files.delete", format!("/v1beta/{name}")),
                _ => return Err(ApiError::MethodNotAllowed(call.method.clone())),
            };
            let path = match &query {
                Some(q) => format!("{path}?{q}"),
                None => path,
            };
            let out = outgoing(call.method.clone(), path, forwarded_headers(call.headers), Bytes::new());
            let served = proxy::fetch(state, plan(route, keys), out).await?;
            if route == "files.delete" && served.status.is_success() {
                let store = state.store.clone();
                let gone = name.clone();
                tokio::task::spawn_blocking(move || store.unbind_resource(&gone))
                    .await
                    .map_err(|e| ApiError::BadGateway(format!("saving the deletion failed: {e}")))?
                    .map_err(|e| ApiError::BadGateway(format!("saving the deletion failed: {e}")))?;
                state.affinity.unbind(&name);
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

async fn upload(
    state: &Arc<State>,
    call: &Call<'_>,
    owner: &Owner,
    query: Option<&str>,
) -> Result<Response<Body>, ApiError> {
    let (served, upload_url) = match upload_id(query) {
        Some(id) => {
            let up =
                state.affinity.upload(id).ok_or_else(|| ApiError::NotFound(format!("upload {id} is not found")))?;
            let keys = pinned(state, &format!("upload {id}"), up.key_id)?;
            let out = outgoing(Method::POST, up.upstream.clone(), upload_headers(call.headers), call.body.clone());
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
            let path = match query {
                Some(q) => format!("/upload/v1beta/files?{q}"),
                None => "/upload/v1beta/files".to_string(),
            };
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
                        "{}/upload/v1beta/files?upload_id={id}&upload_protocol=resumable",
                        origin(state, call)
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

/// A finalize (or one-shot upload) answer names the new file: bound, committed, then answered.
async fn bind_uploaded(state: &Arc<State>, served: &Served, owner: &Owner) -> Result<(), ApiError> {
    if !served.status.is_success() {
        return Ok(());
    }
    let Ok(v) = serde_json::from_slice::<Value>(&served.body) else { return Ok(()) };
    let file = v.get("file").unwrap_or(&v);
    let Some(name) = file.get("name").and_then(Value::as_str).and_then(affinity::file_name) else {
        return Ok(());
    };
    let expires = file
        .get("expirationTime")
        .and_then(Value::as_str)
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&chrono::Utc));
    let binding = Binding { key_id: served.key_id, owner: owner.clone(), expires };
    let (store, b, n, now) = (state.store.clone(), binding.clone(), name.clone(), state.now());
    tokio::task::spawn_blocking(move || store.bind_resource(&n, &b, now))
        .await
        .map_err(|e| ApiError::BadGateway(format!("saving the file's key failed: {e}")))?
        .map_err(|e| ApiError::BadGateway(format!("saving the file's key failed: {e}")))?;
    state.affinity.bind(&name, binding);
    Ok(())
}

/// `GET /v1beta/files`: the client's own files, from each key that holds some, merged.
async fn list(state: &Arc<State>, call: &Call<'_>, owner: &Owner) -> Result<Response<Body>, ApiError> {
    let owned = state.affinity.owned(owner, "files/", state.now());
    let mut keys: Vec<i64> = owned.iter().map(|(_, k)| *k).collect();
    keys.dedup();
    let mut files = Vec::new();
    for key in keys {
        let Ok(choice) = pinned(state, "files", key) else { continue };
        let out =
            outgoing(Method::GET, "/v1beta/files?pageSize=100".into(), forwarded_headers(call.headers), Bytes::new());
        let served = proxy::fetch(state, plan("files.list", choice), out).await?;
        let v: Value = serde_json::from_slice(&served.body).unwrap_or(Value::Null);
        for f in v.get("files").and_then(Value::as_array).into_iter().flatten() {
            let name = f.get("name").and_then(Value::as_str).unwrap_or("");
            if owned.iter().any(|(n, _)| n == name) {
                files.push(f.clone());
            }
        }
    }
    let body = serde_json::to_vec(&json!({ "files": files })).unwrap_or_default();
    let mut res = Response::new(full(body));
    res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json; charset=UTF-8"));
    Ok(res)
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
