//! Gemini-native routes (`/v1beta/...`, `/v1/models/{model}:{method}`, and their `/gemini`
//! aliases): the body goes upstream byte for byte, the answer comes back unchanged (model lists
//! lose `models.hidden`), streams are relayed frame by frame.

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode, header};
use serde_json::Value;

use crate::auth::strip_key_param;
use crate::body::{Body, full};
use crate::catalog;
use crate::config::Config;
use crate::error::{ApiError, Dialect};
use crate::models::{self, ModelName};
use crate::outcome::Expect;
use crate::proxy::{self, KeyChoice, Passthrough, Plan, Render, Served, forwarded_headers};
use crate::state::State;
use crate::upstream::{KeyPlacement, OutBody, Outgoing};
use crate::usage::{Usage, usage_of_body};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    List,
    Get(ModelName),
    Method { model: ModelName, method: String },
}

/// What follows the API version, when it is a models path at all: `/models`, `/models/{m}`,
/// `/models/{m}:{method}`. The model name is checked (after decoding) only once the shape matches.
pub fn parse(rest: &str) -> Option<Result<Target, ApiError>> {
    let rest = rest.strip_prefix("/models")?;
    if rest.is_empty() || rest == "/" {
        return Some(Ok(Target::List));
    }
    let name = rest.strip_prefix('/')?;
    if name.is_empty() || name.contains('/') {
        return None;
    }
    let checked = |m: &str| ModelName::from_path(m).map_err(|e| ApiError::BadRequest(e.to_string()));
    match name.split_once(':') {
        Some((model, method))
            if !model.is_empty() && !method.is_empty() && method.bytes().all(|b| b.is_ascii_alphanumeric()) =>
        {
            Some(checked(model).map(|model| Target::Method { model, method: method.to_string() }))
        }
        Some(_) => None,
        None => Some(checked(name).map(Target::Get)),
    }
}

pub async fn handle(
    state: &Arc<State>,
    version: &'static str,
    target: Target,
    call: super::Call<'_>,
) -> Result<Response<Body>, ApiError> {
    // A body that names uploaded files goes out with the key that owns them (the token is
    // hashed only then).
    let files = crate::affinity::resources_in_body(&call.body);
    let owner = (!files.is_empty()).then(|| call.owner());
    let super::Call { method, headers, query, body, token, .. } = call;
    let expected = if matches!(target, Target::Method { .. }) { Method::POST } else { Method::GET };
    if *method != expected {
        return Err(ApiError::MethodNotAllowed(method.clone()));
    }
    let cfg = state.config.load();
    let target = match target {
        Target::Get(m) => Target::Get(models::aliased(&cfg.models.aliases, m)),
        Target::Method { model, method } => {
            Target::Method { model: models::aliased(&cfg.models.aliases, model), method }
        }
        list => list,
    };
    let query = strip_key_param(query);
    if let Target::Get(m) | Target::Method { model: m, .. } = &target
        && models::is_hidden(&cfg.models, m.as_str())
    {
        return Err(ApiError::NotFound(format!("models/{m} is not found")));
    }
    let sse = query.as_deref().is_some_and(|q| q.split('&').any(|p| p == "alt=sse"));
    let mut body = if expected == Method::GET { Bytes::new() } else { body };
    let (route, model, path, stream, expect) = match &target {
        Target::List => ("models.list".to_string(), None, format!("/{version}/models"), false, Expect::Json),
        Target::Get(m) => {
            let upstream = models::search_base(m.as_str(), &cfg.models.search_models).unwrap_or(m.as_str());
            (
                "models.get".to_string(),
                Some(m.to_string()),
                format!("/{version}/models/{upstream}"),
                false,
                Expect::Json,
            )
        }
        Target::Method { model, method } => {
            let mut upstream = model.as_str();
            if method == "generateContent" || method == "streamGenerateContent" {
                let (base, rewritten) = rewrite_generation(&cfg, model.as_str(), body);
                upstream = base;
                body = rewritten;
            }
            let path = format!("/{version}/models/{upstream}:{method}");
            (
                method.clone(),
                Some(upstream.to_string()),
                path,
                method == "streamGenerateContent",
                match method.as_str() {
                    "generateContent" => Expect::Content,
                    "streamGenerateContent" => Expect::Anything,
                    // countTokens, embedContent, batchEmbedContents and the rest answer JSON.
                    _ => Expect::Json,
                },
            )
        }
    };
    let path_and_query = match &query {
        Some(q) => format!("{path}?{q}"),
        None => path,
    };
    let keys = match owner.as_ref().map(|o| state.affinity.resolve(&files, o, state.now())).transpose()?.flatten() {
        Some(key) => super::owned::pinned(state, &files[0], key)?,
        None => KeyChoice::Any,
    };
    let plan = Plan { route: route.into(), model, stream, expect, keys };
    let out = Outgoing {
        method: method.clone(),
        path_and_query,
        headers: forwarded_headers(headers),
        body: OutBody::Bytes(body),
        placement: KeyPlacement::GoogHeader,
    };
    // A batch or a long-running operation is created on the key that answers, and pinned to it.
    if let Target::Method { method, .. } = &target
        && super::operations::creates(method)
    {
        let served = proxy::fetch(state, plan, out).await?;
        let owner = owner.unwrap_or_else(|| crate::affinity::Owner::of_token(token));
        super::operations::bind_created(state, &served, &owner).await?;
        return Ok(super::owned::relay(&served, None));
    }
    let shape = match target {
        Target::List => Shape::ModelList(cfg),
        Target::Get(m) => Shape::SearchVariant(cfg, m),
        Target::Method { .. } => Shape::Untouched,
    };
    Ok(proxy::serve(state, plan, out, Native { shape, sse }).await)
}

/// How a whole native answer is shaped before the client sees it.
enum Shape {
    Untouched,
    /// `models.hidden` removed, `NAME-search` variants added.
    ModelList(Arc<Config>),
    /// `GET models/NAME-search` answers with the base model, renamed.
    SearchVariant(Arc<Config>, ModelName),
}

pub(super) struct Native {
    shape: Shape,
    sse: bool,
}

impl Native {
    /// Bytes relayed untouched, as they arrive (a file download).
    pub(super) fn relayed() -> Native {
        Native::untouched(false)
    }

    /// A generation's answer untouched; `sse`: a stream is SSE (`alt=sse`), else a JSON array.
    pub(super) fn untouched(sse: bool) -> Native {
        Native { shape: Shape::Untouched, sse }
    }
}

impl Render for Native {
    type Stream = Passthrough;

    fn whole(self, served: Served) -> (Response<Body>, Option<Usage>) {
        let body = match &self.shape {
            Shape::Untouched => served.body,
            Shape::ModelList(cfg) => catalog::shape_model_list(cfg, served.body),
            Shape::SearchVariant(cfg, m) => catalog::name_search_variant(cfg, m.as_str(), served.body),
        };
        let usage = usage_of_body(&body);
        (whole_response(served.status, &served.headers, body), usage)
    }

    fn stream(self, upstream: &HeaderMap, _key_id: i64) -> (Passthrough, HeaderMap) {
        let mut headers = HeaderMap::new();
        copy_content_type(upstream, &mut headers, if self.sse { "text/event-stream" } else { "application/json" });
        (Passthrough::new(self.sse), headers)
    }

    fn error(&self, error: ApiError) -> Response<Body> {
        error.into_response(Dialect::Gemini)
    }
}

/// The operator's options for generation on native routes, which otherwise pass the body through
/// byte for byte: `NAME-search` models (base model + googleSearch tool) and a
/// `models.safety_settings` threshold for the categories the client left unset. Returns the model
/// to send to, and the body.
fn rewrite_generation<'m>(cfg: &Config, model: &'m str, body: Bytes) -> (&'m str, Bytes) {
    let base = models::search_base(model, &cfg.models.search_models);
    let safety = cfg.models.safety_settings.as_str();
    if base.is_none() && safety == "passthrough" {
        return (model, body);
    }
    // A body that is not JSON goes up untouched; Google answers it with its own 400.
    let Ok(mut json) = serde_json::from_slice::<Value>(&body) else { return (model, body) };
    models::merge_safety(&mut json, safety);
    if base.is_some() {
        models::add_search_tool(&mut json);
    }
    match serde_json::to_vec(&json) {
        Ok(rewritten) => (base.unwrap_or(model), Bytes::from(rewritten)),
        Err(_) => (model, body),
    }
}

pub fn whole_response(status: StatusCode, upstream: &HeaderMap, body: Bytes) -> Response<Body> {
    let mut res = Response::new(full(body));
    *res.status_mut() = status;
    copy_content_type(upstream, res.headers_mut(), "application/json");
    res
}

fn copy_content_type(from: &HeaderMap, to: &mut HeaderMap, default: &'static str) {
    let value = from.get(header::CONTENT_TYPE).cloned().unwrap_or(HeaderValue::from_static(default));
    to.insert(header::CONTENT_TYPE, value);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(rest: &str) -> Target {
        parse(rest).unwrap().unwrap()
    }

    fn name(s: &str) -> ModelName {
        ModelName::parse(s).unwrap()
    }

    #[test]
    fn parses_targets() {
        assert_eq!(ok("/models"), Target::List);
        assert_eq!(ok("/models/gemini-2.5-flash"), Target::Get(name("gemini-2.5-flash")));
        assert_eq!(
            ok("/models/gemini-2.5-flash:streamGenerateContent"),
            Target::Method { model: name("gemini-2.5-flash"), method: "streamGenerateContent".into() }
        );
        assert_eq!(
            ok("/models/%67emini-2.5-pro:generateContent").clone(),
            Target::Method { model: name("gemini-2.5-pro"), method: "generateContent".into() }
        );
        assert!(parse("/models/a/b").is_none());
        assert!(parse("/models/:x").is_none());
        assert!(parse("/files").is_none());
        assert!(matches!(parse("/models/a%20b:generateContent"), Some(Err(ApiError::BadRequest(_)))));
        assert!(matches!(parse("/models/..%2F..%2Ffiles:get"), Some(Err(ApiError::BadRequest(_)))));
    }
}
