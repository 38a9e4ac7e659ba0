//! What every route over pool-owned resources (files, cached contents) shares: the pinned key
//! choice, binding and unbinding (committed before the client hears), merged lists, and the
//! relay of Google's answer.

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Response, header};
use serde_json::{Value, json};

use crate::affinity::{Binding, Owner};
use crate::body::{Body, full};
use crate::error::ApiError;
use crate::keypool::NoKey;
use crate::outcome::Expect;
use crate::proxy::{self, KeyChoice, Plan, Served, forwarded_headers};
use crate::state::State;
use crate::upstream::{KeyPlacement, OutBody, Outgoing};

/// Pages of one key's list read at most (100 resources a page).
const MAX_LIST_PAGES: usize = 50;

/// An upstream path with the client's query (its `key` already taken out).
pub fn with_query(path: String, query: &Option<String>) -> String {
    match query {
        Some(q) => format!("{path}?{q}"),
        None => path,
    }
}

pub fn plan(route: &'static str, keys: KeyChoice) -> Plan {
    Plan { route: route.into(), model: None, stream: false, expect: Expect::Anything, keys }
}

pub fn outgoing(method: Method, path_and_query: String, headers: HeaderMap, body: Bytes) -> Outgoing {
    Outgoing { method, path_and_query, headers, body: OutBody::Bytes(body), placement: KeyPlacement::GoogHeader }
}

/// The key a resource is pinned to, when it can serve; 409 naming the resource and the key when
/// that key is invalid, disabled or removed (a cooling key is waited for by the attempt loop).
pub fn pinned(state: &State, name: &str, key_id: i64) -> Result<KeyChoice, ApiError> {
    match state.pool.pick_pinned(key_id, "", state.now()) {
        Err(NoKey::Pinned { id, state: key_state }) => Err(ApiError::Bound(format!(
            "{name} belongs to API key #{id} of the pool, which is {key_state}; it cannot be used through another key"
        ))),
        _ => Ok(KeyChoice::Pinned { key_id, resource: name.to_string() }),
    }
}

/// The client's answer from Google's: status, content type, the upload protocol's headers, body;
/// `upload_url` replaces Google's upload URL.
pub fn relay(served: &Served, upload_url: Option<String>) -> Response<Body> {
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

/// An RFC 3339 time in `field` of a resource (`expirationTime`, `expireTime`).
pub fn expiry(resource: &Value, field: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    resource
        .get(field)
        .and_then(Value::as_str)
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&chrono::Utc))
}

fn saving(e: impl std::fmt::Display) -> ApiError {
    ApiError::BadGateway(format!("saving the resource's key failed: {e}"))
}

/// Binds `name` to the key that created it and the token that asked, in the database first.
pub async fn bind(
    state: &Arc<State>,
    name: &str,
    key_id: i64,
    owner: &Owner,
    expires: Option<chrono::DateTime<chrono::Utc>>,
) -> Result<(), ApiError> {
    let binding = Binding { key_id, owner: owner.clone(), expires };
    let (store, b, n, now) = (state.store.clone(), binding.clone(), name.to_string(), state.now());
    tokio::task::spawn_blocking(move || store.bind_resource(&n, &b, now)).await.map_err(saving)?.map_err(saving)?;
    state.affinity.bind(name, binding);
    Ok(())
}

pub async fn unbind(state: &Arc<State>, name: &str) -> Result<(), ApiError> {
    let (store, n) = (state.store.clone(), name.to_string());
    tokio::task::spawn_blocking(move || store.unbind_resource(&n)).await.map_err(saving)?.map_err(saving)?;
    state.affinity.unbind(name);
    Ok(())
}

/// `GET /v1beta/{collection}`: the client's own resources, from each key that holds some, merged.
/// `field` is the answer's list (Google lists batches under `operations`). Each key's pages are
/// followed (`nextPageToken`) up to `MAX_LIST_PAGES`; the merged answer is one page.
pub async fn list(
    state: &Arc<State>,
    call: &super::Call<'_>,
    owner: &Owner,
    (collection, field): (&'static str, &'static str),
    route: &'static str,
) -> Result<Response<Body>, ApiError> {
    let owned = state.affinity.owned(owner, &format!("{collection}/"), state.now());
    let mut keys: Vec<i64> = owned.iter().map(|(_, k)| *k).collect();
    keys.sort_unstable();
    keys.dedup();
    let mine: std::collections::HashSet<&str> = owned.iter().map(|(n, _)| n.as_str()).collect();
    let mut items = Vec::new();
    for key in keys {
        // A key out of rotation cannot be asked; its resources are missing from the list.
        let Ok(choice) = pinned(state, collection, key) else { continue };
        let mut page: Option<String> = None;
        for _ in 0..MAX_LIST_PAGES {
            let mut path = format!("/{}/{collection}?pageSize=100", call.version);
            if let Some(token) = &page {
                path.push_str("&pageToken=");
                path.extend(form_urlencoded::byte_serialize(token.as_bytes()));
            }
            let out = outgoing(Method::GET, path, forwarded_headers(call.headers), Bytes::new());
            let served = proxy::fetch(state, plan(route, choice.clone()), out).await?;
            let mut v: Value = serde_json::from_slice(&served.body).unwrap_or(Value::Null);
            if let Some(Value::Array(list)) = v.get_mut(field).map(Value::take) {
                items.extend(
                    list.into_iter()
                        .filter(|item| item.get("name").and_then(Value::as_str).is_some_and(|n| mine.contains(n))),
                );
            }
            page = v.get("nextPageToken").and_then(Value::as_str).filter(|t| !t.is_empty()).map(String::from);
            if page.is_none() {
                break;
            }
        }
    }
    let body = serde_json::to_vec(&json!({ field: items })).unwrap_or_default();
    let mut res = Response::new(full(body));
    res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json; charset=UTF-8"));
    Ok(res)
}
