//! `/openai/v1/...`: a pass-through route to Google's own OpenAI-compatible surface, key as
//! Bearer, body and answer untouched (and errors already in OpenAI's shape).

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Response, header};
use serde_json::Value;

use crate::auth::strip_key_param;
use crate::body::{Body, full};
use crate::dialect::gemini::whole_response;
use crate::error::{ApiError, Dialect};
use crate::proxy::{self, KeyChoice, Passthrough, Plan, Render, Served, forwarded_headers};
use crate::state::State;
use crate::upstream::{KeyPlacement, OutBody, Outgoing};
use crate::usage::Usage;

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
