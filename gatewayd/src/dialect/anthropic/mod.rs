//! The Anthropic Messages API (`POST /v1/messages`, `POST /v1/messages/count_tokens`) on the
//! pool: translated to and from Gemini (request, whole answer, stream by noun in `request`,
//! `response`, `stream`), errors in Anthropic's shape and statuses. `anthropic-version`,
//! `anthropic-beta` and `?beta=true` are accepted and need nothing.

pub mod request;
pub mod response;
pub mod stream;

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode, header};
use serde_json::{Value, json};

use crate::body::{Body, json_response};
use crate::dialect::wire::GenerateResponse;
use crate::error::{ApiError, Dialect};
use crate::models;
use crate::proxy::{self, Render, Served};
use crate::state::State;
use crate::usage::Usage;

pub async fn handle(
    state: &Arc<State>,
    rest: &str,
    method: &Method,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<Response<Body>, ApiError> {
    match (method, rest) {
        (&Method::POST, "/messages") => messages(state, headers, body, false).await,
        (&Method::POST, "/messages/count_tokens") => messages(state, headers, body, true).await,
        (_, "/messages" | "/messages/count_tokens") => Err(ApiError::MethodNotAllowed(method.clone())),
        _ => Err(ApiError::NotFound(format!("no route for /v1{rest}"))),
    }
}

async fn messages(
    state: &Arc<State>,
    headers: &HeaderMap,
    body: Bytes,
    count: bool,
) -> Result<Response<Body>, ApiError> {
    let req = crate::dialect::openai::parse_json(&body)?;
    drop(body);
    let images = crate::image_fetch::fetch_map(state, request::remote_image_urls(&req)).await?;
    let cfg = state.config.load();
    let opts = request::Options {
        aliases: Some(&cfg.models.aliases),
        safety: &cfg.models.safety_settings,
        images: Some(&images),
    };
    let mut m = request::messages_request(&req, &opts).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    drop(req);
    if models::is_hidden(&cfg.models, m.upstream_model.as_str()) {
        return Err(ApiError::NotFound(format!("model: {} was not found", m.model)));
    }
    let model = m.upstream_model.to_string();
    let (route, method, body, stream) = if count {
        // The whole request, so system and tools count too.
        let mut inner = serde_json::to_value(&m.body).unwrap_or(Value::Null);
        inner["model"] = json!(format!("models/{model}"));
        if let Some(config) = inner.as_object_mut() {
            config.remove("generationConfig");
        }
        ("messages.count_tokens", "countTokens", json!({ "generateContentRequest": inner }), false)
    } else {
        m.body.generation_config.candidate_count = None;
        let body = serde_json::to_value(&m.body).unwrap_or(Value::Null);
        let method = if m.stream { "streamGenerateContent?alt=sse" } else { "generateContent" };
        ("messages", method, body, m.stream)
    };
    drop(cfg);
    let (plan, out) =
        crate::dialect::openai::gemini_call(route, &m.upstream_model, method, headers, (&body, 0), stream);
    let render = Messages { model: std::mem::take(&mut m.model), count };
    Ok(proxy::serve(state, plan, out, render).await)
}

/// Messages (or a token count) as Anthropic's clients read them.
struct Messages {
    model: String,
    count: bool,
}

impl Render for Messages {
    type Stream = stream::Translate;

    fn whole(self, served: Served) -> (Response<Body>, Option<Usage>) {
        if self.count {
            let v: Value = serde_json::from_slice(&served.body).unwrap_or(Value::Null);
            let tokens = v["totalTokens"].as_u64().unwrap_or(0);
            return (json_response(StatusCode::OK, &json!({ "input_tokens": tokens })), None);
        }
        let gemini: GenerateResponse = serde_json::from_slice(&served.body).unwrap_or_default();
        let usage = gemini.usage();
        (json_response(StatusCode::OK, &response::message_response(&gemini, &served.body, &self.model)), usage)
    }

    fn stream(self, _upstream: &HeaderMap, _key_id: i64) -> (stream::Translate, HeaderMap) {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
        (stream::Translate::new(&self.model), headers)
    }

    fn error(&self, error: ApiError) -> Response<Body> {
        error.into_response(Dialect::Anthropic)
    }
}
