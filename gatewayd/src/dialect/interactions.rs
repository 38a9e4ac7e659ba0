//! The Interactions API through the pool (`/v1beta/interactions`): an interaction is created on
//! the key that answers (or the key owning what its request names: a `previous_interaction_id`,
//! files, a cached content), bound to that key and the client's token, and read, resumed,
//! cancelled and deleted with that key only. Bodies and streams pass through untouched; Google's
//! `Api-Revision` header passes both ways.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, Method, Response};
use serde::Deserialize;

use super::Call;
use super::owned::{self, outgoing, pinned, plan, relay};
use crate::affinity::{self, Binding, Owner};
use crate::body::Body;
use crate::error::{ApiError, Dialect};
use crate::models::{self, ModelName};
use crate::outcome::Expect;
use crate::proxy::{self, KeyChoice, Passthrough, Plan, Render, Served, Transform, forwarded_headers};
use crate::state::State;
use crate::usage::Usage;

/// The revision of the API a client was written against; Google reads it, so it goes up as sent.
const REVISION: HeaderName = HeaderName::from_static("api-revision");

#[derive(Debug, PartialEq, Eq)]
pub enum Target<'a> {
    /// `POST /v1beta/interactions`.
    Create,
    /// `/v1beta/interactions/{id}`: GET (also `?stream=true`), DELETE.
    Item(&'a str),
    /// `POST /v1beta/interactions/{id}/cancel` (also spelled `:cancel`).
    Cancel(&'a str),
}

/// The target of a path after the API version, when it is an interactions path.
pub fn parse(rest: &str) -> Option<Target<'_>> {
    let rest = rest.strip_prefix("/interactions")?;
    if rest.is_empty() {
        return Some(Target::Create);
    }
    let id = rest.strip_prefix('/').filter(|id| !id.is_empty())?;
    match id.strip_suffix("/cancel").or_else(|| id.strip_suffix(":cancel")) {
        Some(id) if !id.is_empty() && !id.contains('/') => Some(Target::Cancel(id)),
        Some(_) => None,
        None if !id.contains('/') => Some(Target::Item(id)),
        None => None,
    }
}

/// What the gateway reads of a create request; the rest passes through unread.
#[derive(Deserialize, Default)]
struct Create<'a> {
    #[serde(borrow, default)]
    model: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    agent: Option<Cow<'a, str>>,
    #[serde(default)]
    stream: Option<bool>,
    /// `false`: Google keeps nothing, so there is nothing to bind.
    #[serde(default)]
    store: Option<bool>,
}

/// The id of an interaction in a whole answer, or in a stream's `interaction.created` event.
#[derive(Deserialize)]
struct Created<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
}

#[derive(Deserialize)]
struct Event<'a> {
    #[serde(borrow)]
    event_type: Cow<'a, str>,
    #[serde(borrow)]
    interaction: Option<Created<'a>>,
}

fn headers(from: &HeaderMap) -> HeaderMap {
    let mut out = forwarded_headers(from);
    if let Some(v) = from.get(&REVISION) {
        out.insert(REVISION, v.clone());
    }
    out
}

pub async fn handle(state: &Arc<State>, target: Target<'_>, call: Call<'_>) -> Result<Response<Body>, ApiError> {
    let owner = call.owner();
    let query = crate::auth::strip_key_param(call.query);
    match (target, call.method) {
        (Target::Create, &Method::POST) => create(state, call, owner, query).await,
        (Target::Item(id), &Method::GET | &Method::DELETE) | (Target::Cancel(id), &Method::POST) => {
            let name = affinity::interaction_name(id)
                .ok_or_else(|| ApiError::BadRequest(format!("interactions/{id} is not an interaction name")))?;
            let key = state.affinity.resolve(std::slice::from_ref(&name), &owner, state.now())?.expect("one name");
            let keys = pinned(state, &name, key)?;
            let v = call.version;
            let (route, path, body) = match *call.method {
                Method::GET => ("interactions.get", format!("/{v}/{name}"), Bytes::new()),
                Method::DELETE => ("interactions.delete", format!("/{v}/{name}"), Bytes::new()),
                _ => ("interactions.cancel", format!("/{v}/{name}/cancel"), call.body.clone()),
            };
            let out = outgoing(call.method.clone(), owned::with_query(path, &query), headers(call.headers), body);
            // `GET …?stream=true` resumes the interaction's event stream (after `last_event_id`).
            let streamed = query.as_deref().is_some_and(|q| q.split('&').any(|p| p == "stream=true"));
            if route == "interactions.get" && streamed {
                let plan = Plan { stream: true, ..plan(route, keys) };
                return Ok(proxy::serve(state, plan, out, Interactions { bind: None }).await);
            }
            let served = proxy::fetch(state, plan(route, keys), out).await?;
            if route == "interactions.delete" && served.status.is_success() {
                owned::unbind(state, &name).await?;
            }
            Ok(relay(&served, None))
        }
        (_, method) => Err(ApiError::MethodNotAllowed(method.clone())),
    }
}

async fn create(
    state: &Arc<State>,
    call: Call<'_>,
    owner: Owner,
    query: Option<String>,
) -> Result<Response<Body>, ApiError> {
    // A body that is not JSON goes up as it is: Google answers it with its own 400.
    let request: Create = serde_json::from_slice(&call.body).unwrap_or_default();
    let mut body = call.body.clone();
    let model = match (&request.model, &request.agent) {
        (Some(m), _) | (None, Some(m)) => {
            let mut checked = ModelName::parse(m).map_err(|e| ApiError::BadRequest(e.to_string()))?;
            if request.model.is_some() {
                let served = models::aliased(&state.config.load().models.aliases, checked.clone());
                if served != checked {
                    body = models::with_model(&call.body, served.as_str());
                    checked = served;
                }
            }
            if request.model.is_some() && models::is_hidden(&state.config.load().models, checked.as_str()) {
                return Err(ApiError::NotFound(format!("models/{checked} is not found")));
            }
            Some(checked.to_string())
        }
        (None, None) => None,
    };
    let named = affinity::resources_in_interaction(&call.body);
    let keys = match state.affinity.resolve(&named, &owner, state.now())? {
        Some(key) => pinned(state, &named[0], key)?,
        None => KeyChoice::Any,
    };
    let stream = request.stream == Some(true);
    let stored = request.store != Some(false);
    let out = outgoing(
        Method::POST,
        owned::with_query(format!("/{}/interactions", call.version), &query),
        headers(call.headers),
        body,
    );
    let plan = Plan {
        route: "interactions.create".into(),
        model,
        stream,
        expect: if stream { Expect::Anything } else { Expect::Json },
        keys,
    };
    if stream {
        let render = Interactions { bind: stored.then(|| (state.clone(), owner)) };
        return Ok(proxy::serve(state, plan, out, render).await);
    }
    let served = proxy::fetch(state, plan, out).await?;
    if stored
        && served.status.is_success()
        && let Ok(created) = serde_json::from_slice::<Created>(&served.body)
        && let Some(name) = affinity::interaction_name(&created.id)
    {
        owned::bind(state, &name, served.key_id, &owner, None).await?;
    }
    Ok(relay(&served, None))
}

/// A streamed interaction as its clients see it: untouched. A streamed create binds the
/// interaction its first event names.
struct Interactions {
    bind: Option<(Arc<State>, Owner)>,
}

impl Render for Interactions {
    type Stream = Binder;

    fn whole(self, served: Served) -> (Response<Body>, Option<Usage>) {
        (relay(&served, None), None)
    }

    fn stream(self, upstream: &HeaderMap, key_id: i64) -> (Binder, HeaderMap) {
        let mut headers = HeaderMap::new();
        for name in [http::header::CONTENT_TYPE, REVISION] {
            if let Some(v) = upstream.get(&name) {
                headers.insert(name, v.clone());
            }
        }
        let binder = Binder { inner: Passthrough::new(true), bind: self.bind, key_id, head: Vec::new() };
        (binder, headers)
    }

    fn error(&self, error: ApiError) -> Response<Body> {
        error.into_response(Dialect::Gemini)
    }
}

/// Events are read for the created interaction's id only this far into a stream.
const HEAD_LIMIT: usize = 64 << 10;

/// Relays a stream untouched while reading its head for the `interaction.created` event, whose
/// interaction it binds to the key serving the stream. The binding is in memory before the event
/// reaches the client (so the client's next request finds it) and is written to the database
/// beside the stream.
pub struct Binder {
    inner: Passthrough,
    bind: Option<(Arc<State>, Owner)>,
    key_id: i64,
    /// The stream's bytes so far, until the id is found (at most `HEAD_LIMIT`).
    head: Vec<u8>,
}

impl Binder {
    fn look(&mut self, bytes: &[u8]) {
        let Some((state, owner)) = &self.bind else { return };
        self.head.extend_from_slice(bytes);
        while let Some(end) = event_end(&self.head) {
            let event: Vec<u8> = self.head.drain(..end).collect();
            if let Some(name) = created_in(&event) {
                let binding = Binding { key_id: self.key_id, owner: owner.clone(), expires: None };
                state.affinity.bind(&name, binding.clone());
                let (store, now) = (state.store.clone(), state.now());
                tokio::task::spawn_blocking(move || {
                    if let Err(e) = store.bind_resource(&name, &binding, now) {
                        tracing::error!(resource = name, "saving the resource's key failed: {e}");
                    }
                });
                self.stop();
                return;
            }
        }
        if self.head.len() > HEAD_LIMIT {
            tracing::warn!("an interaction stream named no interaction in its first {HEAD_LIMIT} bytes; not bound");
            self.stop();
        }
    }

    fn stop(&mut self) {
        self.bind = None;
        self.head = Vec::new();
    }
}

/// Where the first whole SSE event in `buf` ends (after its blank line).
fn event_end(buf: &[u8]) -> Option<usize> {
    let lf = memchr::memmem::find(buf, b"\n\n").map(|i| i + 2);
    let crlf = memchr::memmem::find(buf, b"\r\n\r\n").map(|i| i + 4);
    match (lf, crlf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The interaction an `interaction.created` event names.
fn created_in(event: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(event).ok()?;
    let data: String = text
        .lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .map(|d| d.strip_prefix(' ').unwrap_or(d))
        .collect::<Vec<_>>()
        .join("\n");
    let event: Event = serde_json::from_str(&data).ok()?;
    (event.event_type == "interaction.created").then_some(())?;
    affinity::interaction_name(&event.interaction?.id)
}

impl Transform for Binder {
    fn data(&mut self, bytes: Bytes, out: &mut VecDeque<Bytes>) {
        if self.bind.is_some() {
            self.look(&bytes);
        }
        self.inner.data(bytes, out);
    }
    fn end(&mut self, out: &mut VecDeque<Bytes>) {
        self.inner.end(out);
    }
    fn fail(&mut self, message: &str) -> Option<Bytes> {
        self.inner.fail(message)
    }
    fn usage(&self) -> Option<Usage> {
        self.inner.usage()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_targets() {
        assert_eq!(parse("/interactions"), Some(Target::Create));
        assert_eq!(parse("/interactions/v1_a"), Some(Target::Item("v1_a")));
        assert_eq!(parse("/interactions/v1_a/cancel"), Some(Target::Cancel("v1_a")));
        assert_eq!(parse("/interactions/v1_a:cancel"), Some(Target::Cancel("v1_a")));
        for none in ["/interactions/", "/interactions/a/b", "/interactions//cancel", "/interactionsx", "/models"] {
            assert_eq!(parse(none), None, "{none}");
        }
    }

    #[test]
    fn a_stream_names_its_interaction_in_the_created_event() {
        let created =
            b"event: interaction.created\r\ndata: {\"event_type\":\"interaction.created\",\"interaction\":{\"id\":\"v1_x\",\"status\":\"in_progress\"}}\r\n\r\n";
        assert_eq!(event_end(created), Some(created.len()));
        assert_eq!(created_in(created).as_deref(), Some("interactions/v1_x"));
        let delta = b"event: step.delta\ndata: {\"event_type\":\"step.delta\",\"index\":0,\"delta\":{\"type\":\"text\",\"text\":\"{\\\"id\\\":1}\"}}\n\n";
        assert_eq!(created_in(delta), None);
        assert_eq!(created_in(b"data: [DONE]\n\n"), None);
        assert_eq!(event_end(b"data: {\"event_type\""), None);
    }
}
