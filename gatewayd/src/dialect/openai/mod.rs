//! OpenAI-compatible routes (`/v1/...`, `/hf/v1/...`): chat completions and embeddings translated
//! to and from Gemini, the model list, and the `/openai/v1/...` passthrough to Google's own
//! OpenAI surface. Same key pool, retries and logs as the native routes.

pub mod convert;

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use base64::prelude::{BASE64_STANDARD, Engine as _};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode, header};
use http_body_util::{BodyExt, Limited};
use serde_json::{Value, json};
use tokio::time::Instant;

use self::convert::{ChunkTranslator, Options};
use super::gemini::whole_response;
use crate::auth::strip_key_param;
use crate::body::{Body, full};
use crate::config::Config;
use crate::error::{ApiError, Dialect};
use crate::models::{self, ModelName};
use crate::proxy::{self, KeyChoice, Passthrough, Plan, Render, Served, Transform, forwarded_headers};
use crate::sse::{self, SseParser};
use crate::state::State;
use crate::upstream::{KeyPlacement, OutBody, Outgoing};
use crate::usage::{Usage, usage_of};

/// Images fetched for `image_url` are bounded in size, and in time by this or
/// `upstream.timeout_secs`, whichever is shorter.
const IMAGE_MAX_BYTES: usize = 20 << 20;
const IMAGE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the upstream model list is reused.
const MODELS_TTL: Duration = Duration::from_secs(60);

pub async fn handle(
    state: &Arc<State>,
    rest: &str,
    method: &Method,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<Response<Body>, ApiError> {
    match (method, rest) {
        (&Method::POST, "/chat/completions") => chat(state, headers, body).await,
        (&Method::POST, "/embeddings") => embeddings(state, headers, body).await,
        (&Method::GET, "/models") => {
            let list = upstream_models(state).await?;
            let cfg = state.config.load();
            Ok(json_ok(&convert::models_list(&list, &cfg.models.hidden, &cfg.models.search_models)))
        }
        (&Method::GET, r) if r.starts_with("/models/") => {
            let id = r["/models/".len()..].strip_prefix("models/").unwrap_or(&r["/models/".len()..]).to_string();
            let list = upstream_models(state).await?;
            let cfg = state.config.load();
            let all = convert::models_list(&list, &cfg.models.hidden, &cfg.models.search_models);
            match all["data"].as_array().into_iter().flatten().find(|m| m["id"] == id.as_str()) {
                Some(m) => Ok(json_ok(m)),
                None => Err(ApiError::NotFound(format!("The model '{id}' does not exist"))),
            }
        }
        (_, "/chat/completions" | "/embeddings" | "/models") => Err(ApiError::MethodNotAllowed(method.clone())),
        _ => Err(ApiError::NotFound(format!("no route for /v1{rest}"))),
    }
}

fn json_ok(v: &Value) -> Response<Body> {
    crate::body::json_response(StatusCode::OK, v)
}

fn parse_json(body: &Bytes) -> Result<Value, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::BadRequest(format!("body: not valid JSON: {e}")))
}

fn created() -> i64 {
    chrono::Utc::now().timestamp()
}

async fn chat(state: &Arc<State>, headers: &HeaderMap, body: Bytes) -> Result<Response<Body>, ApiError> {
    let req = parse_json(&body)?;
    let mut images = HashMap::new();
    for url in convert::remote_image_urls(&req) {
        let image =
            fetch_image(state, &url).await.map_err(|e| ApiError::BadRequest(format!("image_url {url}: {e}")))?;
        images.insert(url, image);
    }
    let cfg = state.config.load();
    let opts = Options {
        search_models: &cfg.models.search_models,
        thinking_budget: Some(&cfg.models.thinking_budget),
        safety: &cfg.models.safety_settings,
        images: Some(&images),
    };
    let chat = convert::chat_request(&req, &opts).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    refuse_hidden(&cfg, &chat.upstream_model, &chat.model)?;
    let method = if chat.stream { "streamGenerateContent?alt=sse" } else { "generateContent" };
    let (plan, out) = gemini_call("chat.completions", &chat.upstream_model, method, headers, &chat.body, chat.stream);
    let render = Chat { model: chat.model, include_usage: chat.include_usage };
    Ok(proxy::serve(state, plan, out, render).await)
}

/// Chat completions as OpenAI clients read them.
struct Chat {
    model: String,
    include_usage: bool,
}

impl Render for Chat {
    type Stream = Translate;

    fn whole(self, served: Served) -> (Response<Body>, Option<Usage>) {
        let gemini: Value = serde_json::from_slice(&served.body).unwrap_or(Value::Null);
        (json_ok(&convert::chat_response(&gemini, &self.model, created())), usage_of(&gemini))
    }

    fn stream(self, _upstream: &HeaderMap) -> (Translate, HeaderMap) {
        let translate = Translate::new(ChunkTranslator::new(&self.model, created(), self.include_usage));
        (translate, event_stream_headers())
    }

    fn error(&self, error: ApiError) -> Response<Body> {
        error.into_response(Dialect::OpenAi)
    }
}

fn event_stream_headers() -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers
}

fn refuse_hidden(cfg: &Config, upstream_model: &ModelName, requested: &str) -> Result<(), ApiError> {
    match models::is_hidden(&cfg.models, upstream_model.as_str()) {
        true => Err(ApiError::NotFound(format!("The model '{requested}' does not exist"))),
        false => Ok(()),
    }
}

/// A translated request to a Gemini method; a generateContent answer must carry content.
fn gemini_call(
    route: &'static str,
    model: &ModelName,
    method: &str,
    headers: &HeaderMap,
    body: &Value,
    stream: bool,
) -> (Plan, Outgoing) {
    let plan = Plan {
        route: route.into(),
        model: Some(model.to_string()),
        stream,
        empty_is_failure: method == "generateContent",
        keys: KeyChoice::Any,
    };
    let out = Outgoing {
        method: Method::POST,
        path_and_query: format!("/v1beta/models/{model}:{method}"),
        headers: json_headers(headers),
        body: OutBody::Bytes(Bytes::from(serde_json::to_vec(body).unwrap_or_default())),
        placement: KeyPlacement::GoogHeader,
    };
    (plan, out)
}

fn json_headers(client: &HeaderMap) -> HeaderMap {
    let mut h = forwarded_headers(client);
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h.remove(header::ACCEPT);
    h
}

/// Gemini SSE events in, `chat.completion.chunk` events out, one upstream event at a time.
struct Translate {
    parser: SseParser,
    translator: ChunkTranslator,
    usage: Option<Usage>,
    failed: bool,
    pending: Vec<String>,
}

impl Translate {
    fn new(translator: ChunkTranslator) -> Self {
        Translate { parser: SseParser::default(), translator, usage: None, failed: false, pending: Vec::new() }
    }
}

fn error_event(message: &str) -> Bytes {
    sse::event(&json!({"error": {"message": message, "type": "server_error", "param": null, "code": null}}).to_string())
}

impl Transform for Translate {
    fn data(&mut self, bytes: Bytes, out: &mut VecDeque<Bytes>) {
        if self.failed {
            return;
        }
        self.parser.feed(&bytes, &mut self.pending);
        for data in std::mem::take(&mut self.pending) {
            let Ok(event) = serde_json::from_str::<Value>(&data) else { continue };
            if let Some(err) = event.get("error") {
                // Google reports a failure inside the stream: pass it on as OpenAI's error event.
                let message = err.get("message").and_then(Value::as_str).unwrap_or("upstream error");
                out.push_back(error_event(&shared::redact_keys_in(message)));
                self.failed = true;
                return;
            }
            if let Some(u) = usage_of(&event) {
                self.usage = Some(u);
            }
            for chunk in self.translator.feed(&event) {
                out.push_back(sse::event(&chunk.to_string()));
            }
        }
    }

    fn end(&mut self, out: &mut VecDeque<Bytes>) {
        if self.failed {
            return;
        }
        for chunk in self.translator.finish() {
            out.push_back(sse::event(&chunk.to_string()));
        }
        out.push_back(sse::event("[DONE]"));
    }

    fn fail(&mut self, message: &str) -> Option<Bytes> {
        Some(error_event(message))
    }

    fn usage(&self) -> Option<Usage> {
        self.usage
    }
}

async fn embeddings(state: &Arc<State>, headers: &HeaderMap, body: Bytes) -> Result<Response<Body>, ApiError> {
    let req = parse_json(&body)?;
    let emb = convert::embeddings_request(&req).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    refuse_hidden(&state.config.load(), &emb.upstream_model, &emb.model)?;
    let (plan, out) = gemini_call("embeddings", &emb.upstream_model, "batchEmbedContents", headers, &emb.body, false);
    Ok(proxy::serve(state, plan, out, Embeddings(emb)).await)
}

/// Embeddings as OpenAI clients read them.
struct Embeddings(convert::EmbeddingsRequest);

impl Render for Embeddings {
    type Stream = Passthrough;

    fn whole(self, served: Served) -> (Response<Body>, Option<Usage>) {
        let gemini: Value = serde_json::from_slice(&served.body).unwrap_or(Value::Null);
        let usage = Usage { prompt: convert::estimate_tokens(&self.0.inputs), completion: 0 };
        (json_ok(&convert::embeddings_response(&gemini, &self.0)), Some(usage))
    }

    /// Never called: the plan asks for no stream.
    fn stream(self, upstream: &HeaderMap) -> (Passthrough, HeaderMap) {
        (Passthrough::new(false), upstream.clone())
    }

    fn error(&self, error: ApiError) -> Response<Body> {
        error.into_response(Dialect::OpenAi)
    }
}

/// The upstream model list (all pages), reused for `MODELS_TTL`.
async fn upstream_models(state: &Arc<State>) -> Result<Value, ApiError> {
    if let Some((at, list)) = state.models_cache.read().as_ref()
        && at.elapsed() < MODELS_TTL
    {
        return Ok(list.clone());
    }
    let mut models = Vec::new();
    let mut page_token: Option<String> = None;
    for _ in 0..20 {
        let query = match &page_token {
            Some(t) => format!(
                "pageSize=1000&pageToken={}",
                percent_encoding::utf8_percent_encode(t, percent_encoding::NON_ALPHANUMERIC)
            ),
            None => "pageSize=1000".into(),
        };
        let plan = Plan {
            route: "models.list".into(),
            model: None,
            stream: false,
            empty_is_failure: false,
            keys: KeyChoice::Any,
        };
        let out = Outgoing {
            method: Method::GET,
            path_and_query: format!("/v1beta/models?{query}"),
            headers: HeaderMap::new(),
            body: OutBody::Bytes(Bytes::new()),
            placement: KeyPlacement::GoogHeader,
        };
        let served = proxy::fetch(state, plan, out).await?;
        let page: Value = serde_json::from_slice(&served.body).unwrap_or(Value::Null);
        models.extend(page.get("models").and_then(Value::as_array).cloned().unwrap_or_default());
        page_token = page.get("nextPageToken").and_then(Value::as_str).filter(|t| !t.is_empty()).map(String::from);
        if page_token.is_none() {
            break;
        }
    }
    let list = json!({"models": models});
    *state.models_cache.write() = Some((std::time::Instant::now(), list.clone()));
    Ok(list)
}

/// Fetches an http(s) image for `image_url`: bounded size and time, up to 3 redirects.
async fn fetch_image(state: &State, url: &str) -> Result<(String, String), String> {
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

/// `/openai/v1/...` → upstream `/v1beta/openai/...`, key as Bearer, body and answer untouched.
pub async fn passthrough(
    state: &Arc<State>,
    rest: &str,
    method: &Method,
    headers: &HeaderMap,
    query: Option<&str>,
    body: Bytes,
) -> Response<Body> {
    let json: Option<Value> = serde_json::from_slice(&body).ok();
    let model = json
        .as_ref()
        .and_then(|v| v.get("model"))
        .and_then(Value::as_str)
        .map(|m| m.strip_prefix("models/").unwrap_or(m).to_string());
    let stream = json.as_ref().and_then(|v| v.get("stream")).and_then(Value::as_bool).unwrap_or(false);
    let path = match strip_key_param(query) {
        Some(q) => format!("/v1beta/openai{rest}?{q}"),
        None => format!("/v1beta/openai{rest}"),
    };
    let plan =
        Plan { route: format!("openai{rest}").into(), model, stream, empty_is_failure: false, keys: KeyChoice::Any };
    let out = Outgoing {
        method: method.clone(),
        path_and_query: path,
        headers: forwarded_headers(headers),
        body: OutBody::Bytes(body),
        placement: KeyPlacement::Bearer,
    };
    proxy::serve(state, plan, out, OpenAiPassthrough).await
}

/// Google's own OpenAI surface already speaks OpenAI's format, errors included.
struct OpenAiPassthrough;

impl Render for OpenAiPassthrough {
    type Stream = Passthrough;

    fn whole(self, served: Served) -> (Response<Body>, Option<Usage>) {
        let usage = serde_json::from_slice::<Value>(&served.body).ok().and_then(|v| openai_usage(&v));
        (whole_response(served.status, &served.headers, served.body), usage)
    }

    fn stream(self, upstream: &HeaderMap) -> (Passthrough, HeaderMap) {
        let mut headers = HeaderMap::new();
        if let Some(ct) = upstream.get(header::CONTENT_TYPE) {
            headers.insert(header::CONTENT_TYPE, ct.clone());
        }
        (Passthrough::new(true), headers)
    }

    fn error(&self, error: ApiError) -> Response<Body> {
        match error {
            ApiError::Upstream { status, body } => {
                let mut res = Response::new(full(body));
                *res.status_mut() = status;
                res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
                res
            }
            other => other.into_response(Dialect::OpenAi),
        }
    }
}

fn openai_usage(v: &Value) -> Option<Usage> {
    let u = v.get("usage")?;
    Some(Usage {
        prompt: u.get("prompt_tokens").and_then(Value::as_u64).unwrap_or(0),
        completion: u.get("completion_tokens").and_then(Value::as_u64).unwrap_or(0),
    })
}
