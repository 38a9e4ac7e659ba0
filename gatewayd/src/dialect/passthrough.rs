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
use crate::models::ModelName;
use crate::outcome::Expect;
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
    if let Err(e) = check_path(rest) {
        return OpenAiPassthrough.error(e);
    }
    let json: Option<Value> = serde_json::from_slice(&body).ok();
    let mut body = body;
    let model = match json.as_ref().and_then(|v| v.get("model")).and_then(Value::as_str) {
        None => None,
        Some(m) => match ModelName::parse(m) {
            Ok(checked) => {
                let served = crate::models::aliased(&state.config.load().models.aliases, checked.clone());
                if served != checked {
                    body = crate::models::with_model(&body, served.as_str());
                }
                Some(served.to_string())
            }
            Err(e) => return OpenAiPassthrough.error(ApiError::BadRequest(e.to_string())),
        },
    };
    let stream = json.as_ref().and_then(|v| v.get("stream")).and_then(Value::as_bool).unwrap_or(false);
    let path = match strip_key_param(query) {
        Some(q) => format!("/v1beta/openai{rest}?{q}"),
        None => format!("/v1beta/openai{rest}"),
    };
    let plan =
        Plan { route: format!("openai{rest}").into(), model, stream, expect: Expect::Json, keys: KeyChoice::Any };
    let out = Outgoing {
        method: method.clone(),
        path_and_query: path,
        headers: forwarded_headers(headers),
        body: OutBody::Bytes(body),
        placement: KeyPlacement::Bearer,
    };
    proxy::serve(state, plan, out, OpenAiPassthrough).await
}

/// The path after `/openai/v1` may not climb out of Google's OpenAI surface: no dot segments and
/// no encoded slashes, backslashes or dots, whatever their case.
fn check_path(rest: &str) -> Result<(), ApiError> {
    let lower = rest.to_ascii_lowercase();
    let encoded = ["%2f", "%5c", "%2e", "%00"].iter().any(|e| lower.contains(e)) || rest.contains('\\');
    let dots = rest.split('/').any(|seg| seg == "." || seg == "..");
    if encoded || dots {
        return Err(ApiError::BadRequest(format!(
            "path /openai/v1{} is not allowed: no dot segments or encoded slashes",
            shared::redact_keys_in(rest).chars().take(200).collect::<String>()
        )));
    }
    Ok(())
}

/// Google's own OpenAI surface already speaks OpenAI's format, errors included.
struct OpenAiPassthrough;

impl Render for OpenAiPassthrough {
    type Stream = Passthrough;

    fn whole(self, served: Served) -> (Response<Body>, Option<Usage>) {
        let usage = serde_json::from_slice::<Value>(&served.body).ok().and_then(|v| openai_usage(&v));
        (whole_response(served.status, &served.headers, served.body), usage)
    }

    fn stream(self, upstream: &HeaderMap, _key_id: i64) -> (Passthrough, HeaderMap) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_cannot_climb_out() {
        for ok in ["/chat/completions", "/models", "/models/gemini-2.5-flash", "/embeddings"] {
            assert!(check_path(ok).is_ok(), "{ok}");
        }
        for bad in [
            "/../v1beta/files",
            "/chat/../../x",
            "/./models",
            "/a%2Fb",
            "/a%2fb",
            "/%2e%2e/files",
            "/a%5Cb",
            "/a\\b",
            "/x%00",
        ] {
            assert!(check_path(bad).is_err(), "{bad}");
        }
    }
}
