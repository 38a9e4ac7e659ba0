//! The OpenAI Responses API (`POST /v1/responses`, `GET` and `DELETE /v1/responses/{id}`) on
//! the pool, translated to and from Gemini (`request`, and `build` for both the whole answer and
//! the stream). A stored response (`store`, the default) is kept per client token with the whole
//! conversation up to it, for `previous_response_id`, and bound to the key that made it (key
//! affinity); it goes after `responses.store_days`.

pub mod build;
pub mod request;

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode, header};
use parking_lot::RwLock;
use serde_json::{Value, json};

use self::build::{Builder, Setup, echo_of};
use crate::affinity::{Binding, Owner};
use crate::body::{Body, json_response};
use crate::dialect::openai::chat::Options;
use crate::dialect::wire::{GenerateResponse, StreamDecoder, StreamEvent};
use crate::error::{ApiError, Dialect};
use crate::models;
use crate::proxy::{self, KeyChoice, Render, Served, Transform};
use crate::state::State;
use crate::store::StoredResponse;
use crate::usage::Usage;

/// Responses stored lately, held in memory too: a client's next turn can follow at once, before
/// the database write beside it is done.
#[derive(Default)]
pub struct Recent {
    map: RwLock<RecentMap>,
}

/// The responses by id, their ids oldest first (for eviction), and the bytes they hold.
type RecentMap = (HashMap<String, Arc<StoredResponse>>, VecDeque<String>, usize);

/// At most this many responses, holding at most this many bytes, stay in memory; the database
/// has them all.
const RECENT: usize = 512;
const RECENT_BYTES: usize = 64 << 20;

fn size(r: &StoredResponse) -> usize {
    r.response.len() + r.conversation.len()
}

impl Recent {
    fn put(&self, r: Arc<StoredResponse>) {
        let mut g = self.map.write();
        let (map, order, bytes) = &mut *g;
        *bytes += size(&r);
        order.push_back(r.id.clone());
        if let Some(old) = map.insert(r.id.clone(), r) {
            *bytes -= size(&old);
        }
        while order.len() > RECENT || (*bytes > RECENT_BYTES && order.len() > 1) {
            if let Some(old) = order.pop_front().and_then(|id| map.remove(&id)) {
                *bytes -= size(&old);
            }
        }
    }

    fn get(&self, id: &str) -> Option<Arc<StoredResponse>> {
        self.map.read().0.get(id).cloned()
    }

    fn forget(&self, id: &str) {
        let mut g = self.map.write();
        if let Some(old) = g.0.remove(id) {
            g.2 -= size(&old);
        }
    }
}

fn name(id: &str) -> String {
    format!("responses/{id}")
}

/// A stored response of `owner`: 404 for one unknown, expired or another token's.
async fn load(state: &Arc<State>, id: &str, owner: &Owner) -> Result<(i64, Arc<StoredResponse>), ApiError> {
    let missing = || ApiError::NotFound(format!("Response with id '{id}' not found."));
    let valid = id.len() <= 128 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !valid {
        return Err(missing());
    }
    let key = state.affinity.resolve(&[name(id)], owner, state.now()).map_err(|_| missing())?.ok_or_else(missing)?;
    let stored = match state.recent_responses.get(id) {
        Some(r) => r,
        None => {
            let (store, id, now) = (state.store.clone(), id.to_string(), state.now());
            let row = tokio::task::spawn_blocking(move || store.load_response(&id, now))
                .await
                .map_err(|e| ApiError::BadGateway(format!("reading the stored response failed: {e}")))?
                .map_err(|e| ApiError::BadGateway(format!("reading the stored response failed: {e}")))?;
            Arc::new(row.ok_or_else(missing)?)
        }
    };
    if stored.owner != owner.0 {
        return Err(missing());
    }
    Ok((key, stored))
}

/// Keeps a finished response: bound to its key in memory and in the recent set at once (the
/// client may name it in its next request), written to the database beside.
fn keep(state: &Arc<State>, keeping: &Keeping, key_id: i64, response: &Value, output: &[Value]) {
    let now = state.now();
    let expires = now + chrono::Duration::days(state.config.load().responses.store_days as i64);
    let id = response["id"].as_str().unwrap_or_default().to_string();
    let mut conversation = keeping.conversation.clone();
    conversation.extend(output.iter().cloned());
    let stored = Arc::new(StoredResponse {
        id: id.clone(),
        owner: keeping.owner.0.clone(),
        key_id,
        created_at: now,
        expires_at: expires,
        response: response.to_string(),
        conversation: Value::Array(conversation).to_string(),
    });
    let binding = Binding { key_id, owner: keeping.owner.clone(), expires: Some(expires) };
    state.affinity.bind(&name(&id), binding.clone());
    state.recent_responses.put(stored.clone());
    let store = state.store.clone();
    tokio::task::spawn_blocking(move || {
        if let Err(e) =
            store.save_response(&stored).and_then(|()| store.bind_resource(&name(&stored.id), &binding, now))
        {
            tracing::error!(response = stored.id, "saving the stored response failed: {e}");
        }
    });
}

/// What a response to keep needs: its owner and the conversation before its output.
#[derive(Clone)]
struct Keeping {
    owner: Owner,
    conversation: Vec<Value>,
}

fn new_id() -> Result<String, ApiError> {
    let mut bytes = [0u8; 16];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
        .map_err(|_| ApiError::BadGateway("no randomness for a response id".into()))?;
    Ok(format!("resp_{}", bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()))
}

pub async fn handle(
    state: &Arc<State>,
    rest: &str,
    method: &Method,
    headers: &HeaderMap,
    body: Bytes,
    token: &str,
) -> Result<Response<Body>, ApiError> {
    let owner = Owner::of_token(token);
    match (method, rest.strip_prefix("/responses")) {
        (&Method::POST, Some("")) => create(state, headers, body, owner).await,
        (&Method::GET, Some(id)) if id.len() > 1 && id.starts_with('/') => {
            let (_, stored) = load(state, &id[1..], &owner).await?;
            let v: Value = serde_json::from_str(&stored.response).unwrap_or(Value::Null);
            Ok(json_response(StatusCode::OK, &v))
        }
        (&Method::DELETE, Some(id)) if id.len() > 1 && id.starts_with('/') => {
            let id = &id[1..];
            load(state, id, &owner).await?;
            let (store, rid) = (state.store.clone(), id.to_string());
            tokio::task::spawn_blocking(move || {
                store.delete_response(&rid).and_then(|()| store.unbind_resource(&name(&rid)))
            })
            .await
            .map_err(|e| ApiError::BadGateway(format!("deleting the stored response failed: {e}")))?
            .map_err(|e| ApiError::BadGateway(format!("deleting the stored response failed: {e}")))?;
            state.affinity.unbind(&name(id));
            state.recent_responses.forget(id);
            Ok(json_response(StatusCode::OK, &json!({"id": id, "object": "response", "deleted": true})))
        }
        _ => Err(ApiError::MethodNotAllowed(method.clone())),
    }
}

async fn create(
    state: &Arc<State>,
    headers: &HeaderMap,
    body: Bytes,
    owner: Owner,
) -> Result<Response<Body>, ApiError> {
    let req = crate::dialect::openai::parse_json(&body)?;
    drop(body);
    let bad = |e: crate::dialect::openai::bad_request::BadRequest| ApiError::BadRequest(e.to_string());
    // The conversation so far, and the key it lives on.
    let (history, pinned) = match req.get("previous_response_id").and_then(Value::as_str) {
        Some(prev) => {
            let (key, stored) = load(state, prev, &owner).await?;
            let items: Vec<Value> = serde_json::from_str(&stored.conversation).unwrap_or_default();
            (items, Some((name(prev), key)))
        }
        None => (Vec::new(), None),
    };
    let input = request::input_items(&req).map_err(bad)?;
    let images = crate::image_fetch::fetch_map(state, request::remote_image_urls(&input)).await?;
    let cfg = state.config.load();
    let opts = Options {
        aliases: Some(&cfg.models.aliases),
        search_models: &cfg.models.search_models,
        thinking_budget: Some(&cfg.models.thinking_budget),
        safety: &cfg.models.safety_settings,
        images: Some(&images),
    };
    let mut r = request::responses_request(&req, &history, &opts).map_err(bad)?;
    if models::is_hidden(&cfg.models, r.upstream_model.as_str()) {
        return Err(ApiError::NotFound(format!("The model '{}' does not exist", r.model)));
    }
    drop(cfg);
    let keys = match pinned {
        Some((resource, key)) => crate::dialect::owned::pinned(state, &resource, key)?,
        None => KeyChoice::Any,
    };
    let include = req.get("include").and_then(Value::as_array).cloned().unwrap_or_default();
    let setup = Setup {
        id: new_id()?,
        created: chrono::Utc::now().timestamp(),
        model: r.model.clone(),
        echo: echo_of(&req),
        encrypted_reasoning: include.iter().any(|i| i == "reasoning.encrypted_content"),
        namespaces: std::mem::take(&mut r.namespaces),
    };
    let method = if r.stream { "streamGenerateContent?alt=sse" } else { "generateContent" };
    let (mut plan, out) =
        crate::dialect::openai::gemini_call("responses", &r.upstream_model, method, headers, (&r.body, 0), r.stream);
    plan.keys = keys;
    let keeping = r.store.then(|| {
        let mut conversation = history;
        conversation.extend(r.input);
        Keeping { owner, conversation }
    });
    Ok(proxy::serve(state, plan, out, Responses { state: state.clone(), setup, keeping }).await)
}

/// A response as the Responses API's clients read it.
struct Responses {
    state: Arc<State>,
    setup: Setup,
    keeping: Option<Keeping>,
}

impl Render for Responses {
    type Stream = Translate;

    fn whole(self, served: Served) -> (Response<Body>, Option<Usage>) {
        let gemini: GenerateResponse = serde_json::from_slice(&served.body).unwrap_or_default();
        let mut b = Builder::new(self.setup);
        b.feed(&gemini);
        let (_, response) = b.finish();
        if let Some(k) = &self.keeping {
            keep(&self.state, k, served.key_id, &response, response["output"].as_array().map_or(&[], |v| v));
        }
        (json_response(StatusCode::OK, &response), gemini.usage())
    }

    fn stream(self, _upstream: &HeaderMap, key_id: i64) -> (Translate, HeaderMap) {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
        let keeping = self.keeping.map(|k| (self.state, k, key_id));
        (
            Translate { decoder: StreamDecoder::default(), builder: Builder::new(self.setup), keeping, failed: false },
            headers,
        )
    }

    fn error(&self, error: ApiError) -> Response<Body> {
        error.into_response(Dialect::OpenAi)
    }
}

/// Gemini SSE in, Responses API events out; the finished response is kept when it is to be.
pub struct Translate {
    decoder: StreamDecoder,
    builder: Builder,
    keeping: Option<(Arc<State>, Keeping, i64)>,
    failed: bool,
}

impl Transform for Translate {
    fn data(&mut self, bytes: Bytes, out: &mut VecDeque<Bytes>) {
        let Translate { decoder, builder, failed, .. } = self;
        decoder.feed(&bytes, |e| {
            if *failed {
                return;
            }
            match e {
                StreamEvent::Chunk(chunk, _) => out.extend(builder.feed(&chunk)),
                StreamEvent::Error(message) => {
                    out.push_back(builder.failed(&message));
                    *failed = true;
                }
            }
        });
    }

    fn end(&mut self, out: &mut VecDeque<Bytes>) {
        if self.failed {
            return;
        }
        let (events, response) = self.builder.finish();
        if let Some((state, k, key_id)) = &self.keeping {
            keep(state, k, *key_id, &response, response["output"].as_array().map_or(&[], |v| v));
        }
        out.extend(events);
    }

    fn fail(&mut self, message: &str) -> Option<Bytes> {
        Some(self.builder.failed(message))
    }

    fn usage(&self) -> Option<Usage> {
        self.decoder.usage()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(id: &str, bytes: usize) -> Arc<StoredResponse> {
        let now = chrono::Utc::now();
        Arc::new(StoredResponse {
            id: id.into(),
            owner: "o".into(),
            key_id: 1,
            created_at: now,
            expires_at: now,
            response: String::new(),
            conversation: "x".repeat(bytes),
        })
    }

    #[test]
    fn the_recent_set_is_bounded_by_count_and_bytes() {
        let r = Recent::default();
        for i in 0..(RECENT + 10) {
            r.put(stored(&format!("r{i}"), 10));
        }
        assert!(r.get("r0").is_none() && r.get(&format!("r{}", RECENT + 9)).is_some());
        assert_eq!(r.map.read().0.len(), RECENT);
        // Two big ones: the older goes, the newest always stays.
        r.put(stored("big1", RECENT_BYTES / 2 + 1));
        r.put(stored("big2", RECENT_BYTES / 2 + 1));
        assert!(r.get("big1").is_none() && r.get("big2").is_some());
        assert!(r.map.read().2 <= RECENT_BYTES + 1 + 10 * RECENT);
        r.forget("big2");
        assert!(r.get("big2").is_none());
    }
}
