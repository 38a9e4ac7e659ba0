//! Cached contents through the pool: created with a pooled key (or, when the contents name
//! uploaded files, with the key that owns them), then bound to that key and the client's token;
//! get, patch and delete go out with the owner key, and a generation naming the cache too.

use std::sync::Arc;

use http::{Method, Response};
use serde_json::Value;

use super::Call;
use super::owned::{self, outgoing, pinned, plan, relay};
use crate::affinity;
use crate::body::Body;
use crate::error::ApiError;
use crate::proxy::{self, KeyChoice, forwarded_headers};
use crate::state::State;

#[derive(Debug, PartialEq, Eq)]
pub enum Target<'a> {
    /// `/v1beta/cachedContents`: create (POST) or list (GET).
    Collection,
    /// `/v1beta/cachedContents/{id}`.
    Item(&'a str),
}

pub async fn handle(state: &Arc<State>, target: Target<'_>, call: Call<'_>) -> Result<Response<Body>, ApiError> {
    let owner = call.owner();
    let query = crate::auth::strip_key_param(call.query);
    let with_query = |path: String| owned::with_query(path, &query);
    match target {
        Target::Collection if *call.method == Method::GET => {
            owned::list(state, &call, &owner, ("cachedContents", "cachedContents"), "cachedContents.list").await
        }
        Target::Collection if *call.method == Method::POST => {
            let named = affinity::resources_in_body(&call.body);
            let keys = match state.affinity.resolve(&named, &owner, state.now())? {
                Some(key) => pinned(state, &named[0], key)?,
                None => KeyChoice::Any,
            };
            let out = outgoing(
                Method::POST,
                with_query(format!("/{}/cachedContents", call.version)),
                forwarded_headers(call.headers),
                call.body.clone(),
            );
            let served = proxy::fetch(state, plan("cachedContents.create", keys), out).await?;
            if served.status.is_success()
                && let Ok(v) = serde_json::from_slice::<Value>(&served.body)
                && let Some(name) = v.get("name").and_then(Value::as_str).and_then(affinity::cache_name)
            {
                owned::bind(state, &name, served.key_id, &owner, owned::expiry(&v, "expireTime")).await?;
            }
            Ok(relay(&served, None))
        }
        Target::Collection => Err(ApiError::MethodNotAllowed(call.method.clone())),
        Target::Item(id) => {
            let name = affinity::cache_name(&format!("cachedContents/{id}"))
                .ok_or_else(|| ApiError::BadRequest(format!("cachedContents/{id} is not a cached content name")))?;
            let key = state.affinity.resolve(std::slice::from_ref(&name), &owner, state.now())?.expect("one name");
            let keys = pinned(state, &name, key)?;
            let route = match *call.method {
                Method::GET => "cachedContents.get",
                Method::PATCH => "cachedContents.patch",
                Method::DELETE => "cachedContents.delete",
                _ => return Err(ApiError::MethodNotAllowed(call.method.clone())),
            };
            let body = if *call.method == Method::PATCH { call.body.clone() } else { Default::default() };
            let out = outgoing(
                call.method.clone(),
                with_query(format!("/{}/{name}", call.version)),
                forwarded_headers(call.headers),
                body,
            );
            let served = proxy::fetch(state, plan(route, keys), out).await?;
            if served.status.is_success() {
                match *call.method {
                    Method::DELETE => owned::unbind(state, &name).await?,
                    // A new expiry (ttl or expireTime) moves the binding's end with it.
                    Method::PATCH => {
                        let v: Value = serde_json::from_slice(&served.body).unwrap_or(Value::Null);
                        owned::bind(state, &name, key, &owner, owned::expiry(&v, "expireTime")).await?;
                    }
                    _ => {}
                }
            }
            Ok(relay(&served, None))
        }
    }
}
