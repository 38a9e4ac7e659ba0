//! Gemini-native routes (`/v1beta/...`, `/v1/models/{model}:{method}`, and their `/gemini`
//! aliases): the body goes upstream byte for byte, the answer comes back unchanged (model lists
//! lose `models.hidden`), streams are relayed frame by frame.

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::Value;

use super::{Call, Delivered, KeyPlacement, Passthrough, Relay, StreamEnd, dispatch, forwarded_headers};
use crate::auth::strip_key_param;
use crate::body::{Body, full};
use crate::error::ApiError;
use crate::state::State;
use crate::usage::usage_of_body;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    List,
    Get(String),
    Method { model: String, method: String },
}

/// Parses what follows the API version: `/models`, `/models/{m}`, `/models/{m}:{method}`.
pub fn parse(rest: &str) -> Option<Target> {
    let rest = rest.strip_prefix("/models")?;
    if rest.is_empty() || rest == "/" {
        return Some(Target::List);
    }
    let name = rest.strip_prefix('/')?;
    if name.is_empty() || name.contains('/') {
        return None;
    }
    match name.split_once(':') {
        Some((model, method))
            if !model.is_empty() && !method.is_empty() && method.bytes().all(|b| b.is_ascii_alphanumeric()) =>
        {
            Some(Target::Method { model: model.to_string(), method: method.to_string() })
        }
        Some(_) => None,
        None => Some(Target::Get(name.to_string())),
    }
}

pub fn is_hidden(state: &State, model: &str) -> bool {
    let model = model.strip_prefix("models/").unwrap_or(model);
    state.config.load().models.hidden.iter().any(|h| h.strip_prefix("models/").unwrap_or(h) == model)
}

pub async fn handle(
    state: &Arc<State>,
    version: &'static str,
    target: Target,
    method: &Method,
    headers: &HeaderMap,
    query: Option<&str>,
    body: Bytes,
) -> Result<Response<Body>, ApiError> {
    let expected = if matches!(target, Target::Method { .. }) { Method::POST } else { Method::GET };
    if *method != expected {
        return Err(ApiError::MethodNotAllowed(method.clone()));
    }
    let query = strip_key_param(query);
    let with_query = |path: String| match &query {
        Some(q) => format!("{path}?{q}"),
        None => path,
    };
    let (route, model, path, stream, check_empty) = match &target {
        Target::List => ("models.list".to_string(), None, format!("/{version}/models"), false, false),
        Target::Get(m) => ("models.get".to_string(), Some(m.clone()), format!("/{version}/models/{m}"), false, false),
        Target::Method { model, method } => (
            method.clone(),
            Some(model.clone()),
            format!("/{version}/models/{model}:{method}"),
            method == "streamGenerateContent",
            method == "generateContent",
        ),
    };
    if let Some(m) = &model
        && is_hidden(state, m)
    {
        return Err(ApiError::NotFound(format!("models/{m} is not found")));
    }
    let sse = query.as_deref().is_some_and(|q| q.split('&').any(|p| p == "alt=sse"));
    let call = Call {
        route,
        model,
        method: method.clone(),
        path_and_query: with_query(path),
        headers: forwarded_headers(headers),
        body: if expected == Method::GET { Bytes::new() } else { body },
        stream,
        check_empty,
        placement: KeyPlacement::GoogHeader,
    };
    let (result, attempts) = dispatch(state, &call).await;
    match result {
        Err(e) => Err(attempts.failed(state, &call, e)),
        Ok(Delivered::Whole { status, headers, body }) => {
            let body = if target == Target::List { filter_hidden(state, body) } else { body };
            attempts.finish(state, &call, status, usage_of_body(&body), None);
            Ok(whole_response(status, &headers, body))
        }
        Ok(Delivered::Stream { response, first, key, deadline }) => {
            let (parts, incoming) = response.into_parts();
            let end = StreamEnd { state: state.clone(), call, key, attempts };
            let mut res = Response::new(Relay::new(incoming, first, Passthrough::new(sse), deadline, end).boxed());
            *res.status_mut() = parts.status;
            copy_content_type(
                &parts.headers,
                res.headers_mut(),
                if sse { "text/event-stream" } else { "application/json" },
            );
            res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            Ok(res)
        }
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

/// Removes `models.hidden` from an upstream model list; the bytes are untouched when nothing hides.
fn filter_hidden(state: &State, body: Bytes) -> Bytes {
    let hidden = &state.config.load().models.hidden;
    if hidden.is_empty() {
        return body;
    }
    let Ok(mut v) = serde_json::from_slice::<Value>(&body) else { return body };
    if let Some(models) = v.get_mut("models").and_then(Value::as_array_mut) {
        models.retain(|m| !m.get("name").and_then(Value::as_str).is_some_and(|n| is_hidden(state, n)));
    }
    serde_json::to_vec(&v).map(Bytes::from).unwrap_or(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_targets() {
        assert_eq!(parse("/models"), Some(Target::List));
        assert_eq!(parse("/models/gemini-2.5-flash"), Some(Target::Get("gemini-2.5-flash".into())));
        assert_eq!(
            parse("/models/gemini-2.5-flash:streamGenerateContent"),
            Some(Target::Method { model: "gemini-2.5-flash".into(), method: "streamGenerateContent".into() })
        );
        assert_eq!(parse("/models/a/b"), None);
        assert_eq!(parse("/models/:x"), None);
        assert_eq!(parse("/files"), None);
    }
}
