//! Batches and long-running operations through the pool: created by a model method
//! (`:batchGenerateContent`, `:asyncBatchEmbedContent`, `:predictLongRunning`) on the key that
//! answers (or the key owning the input file the request names), bound to it and the client's
//! token; polled, listed, cancelled and deleted with that key only.

use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Response};
use serde_json::Value;

use super::Call;
use super::owned::{self, outgoing, pinned, plan, relay};
use crate::affinity::{self, Owner};
use crate::body::Body;
use crate::error::ApiError;
use crate::proxy::{self, Served, forwarded_headers};
use crate::state::State;

/// Model methods whose answer names a resource that lives on the key that made it.
pub fn creates(method: &str) -> bool {
    matches!(method, "batchGenerateContent" | "asyncBatchEmbedContent" | "predictLongRunning")
}

#[derive(Debug, PartialEq, Eq)]
pub enum Target<'a> {
    /// `GET /v1beta/batches`.
    Batches,
    /// `/v1beta/batches/{id}` (GET, DELETE) or `/v1beta/batches/{id}:cancel` (POST).
    Batch { id: &'a str, cancel: bool },
    /// `GET /v1beta/operations/{id}` or `GET /v1beta/models/{m}/operations/{id}`: the name.
    Operation(String),
}

/// Binds the batch or operation a creating method's answer names.
pub async fn bind_created(state: &Arc<State>, served: &Served, owner: &Owner) -> Result<(), ApiError> {
    if !served.status.is_success() {
        return Ok(());
    }
    let v: Value = serde_json::from_slice(&served.body).unwrap_or(Value::Null);
    match v.get("name").and_then(Value::as_str).and_then(affinity::operation_name) {
        Some(name) => owned::bind(state, &name, served.key_id, owner, None).await,
        None => Ok(()),
    }
}

pub async fn handle(state: &Arc<State>, target: Target<'_>, call: Call<'_>) -> Result<Response<Body>, ApiError> {
    let owner = call.owner();
    let query = crate::auth::strip_key_param(call.query);
    let with_query = |path: String| owned::with_query(path, &query);
    let (name, route, method) = match (&target, call.method) {
        (Target::Batches, &Method::GET) => {
            return owned::list(state, &call, &owner, ("batches", "operations"), "batches.list").await;
        }
        (Target::Batch { id, cancel: false }, &Method::GET) => (format!("batches/{id}"), "batches.get", Method::GET),
        (Target::Batch { id, cancel: false }, &Method::DELETE) => {
            (format!("batches/{id}"), "batches.delete", Method::DELETE)
        }
        (Target::Batch { id, cancel: true }, &Method::POST) => {
            (format!("batches/{id}"), "batches.cancel", Method::POST)
        }
        (Target::Operation(name), &Method::GET) => (name.clone(), "operations.get", Method::GET),
        _ => return Err(ApiError::MethodNotAllowed(call.method.clone())),
    };
    let name = affinity::operation_name(&name).ok_or_else(|| ApiError::BadRequest(format!("{name} is not a name")))?;
    let key = state.affinity.resolve(std::slice::from_ref(&name), &owner, state.now())?.expect("one name");
    let keys = pinned(state, &name, key)?;
    let path = match &target {
        Target::Batch { cancel: true, .. } => format!("/{}/{name}:cancel", call.version),
        _ => format!("/{}/{name}", call.version),
    };
    let body = if method == Method::POST { call.body.clone() } else { Bytes::new() };
    let out = outgoing(method.clone(), with_query(path), forwarded_headers(call.headers), body);
    let served = proxy::fetch(state, plan(route, keys), out).await?;
    if route == "batches.delete" && served.status.is_success() {
        owned::unbind(state, &name).await?;
    }
    // What a finished operation made (Veo's videos are files to download) lives on its key.
    if route == "operations.get" && served.status.is_success() {
        for file in affinity::files_made(&served.body) {
            if state.affinity.resolve(std::slice::from_ref(&file), &owner, state.now()).is_err() {
                owned::bind(state, &file, key, &owner, None).await?;
            }
        }
    }
    Ok(relay(&served, None))
}
