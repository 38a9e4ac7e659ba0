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
        Target::Get(m) => {
            let cfg = state.config.load();
            let upstream = super::search_base(m, &cfg.models.search_models).unwrap_or(m);
            ("models.get".to_string(), Some(m.clone()), format!("/{version}/models/{upstream}"), false, false)
        }
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
    let (path, model, body) = match &target {
        Target::Method { method, .. } if method == "generateContent" || method == "streamGenerateContent" => {
            rewrite_generation(state, path, model, body)
        }
        _ => (path, model, body),
    };
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
            let body = match &target {
                Target::List => shape_model_list(state, body),
                Target::Get(m) => name_search_variant(state, m, body),
                Target::Method { .. } => body,
            };
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

/// The operator's options for generation on native routes, which otherwise pass the body through
/// byte for byte: `NAME-search` models (base model + googleSearch tool) and a
/// `models.safety_settings` threshold for the categories the client left unset.
fn rewrite_generation(
    state: &State,
    path: String,
    model: Option<String>,
    body: Bytes,
) -> (String, Option<String>, Bytes) {
    let cfg = state.config.load();
    let base = model.as_deref().and_then(|m| super::search_base(m, &cfg.models.search_models)).map(String::from);
    let safety = cfg.models.safety_settings.as_str();
    if base.is_none() && safety == "passthrough" {
        return (path, model, body);
    }
    // A body that is not JSON goes up untouched; Google answers it with its own 400.
    let Ok(mut json) = serde_json::from_slice::<Value>(&body) else { return (path, model, body) };
    super::merge_safety(&mut json, safety);
    let (path, model) = match (base, model) {
        (Some(base), Some(m)) => {
            super::add_search_tool(&mut json);
            (path.replacen(&format!("/models/{m}:"), &format!("/models/{base}:"), 1), Some(base))
        }
        (_, model) => (path, model),
    };
    (path, model, Bytes::from(serde_json::to_vec(&json).unwrap_or_default()))
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

/// An upstream model list with `models.hidden` removed and `NAME-search` variants of
/// `models.search_models` added; the bytes are untouched when there is nothing to do.
fn shape_model_list(state: &State, body: Bytes) -> Bytes {
    let cfg = state.config.load();
    if cfg.models.hidden.is_empty() && cfg.models.search_models.is_empty() {
        return body;
    }
    let Ok(mut v) = serde_json::from_slice::<Value>(&body) else { return body };
    if let Some(models) = v.get_mut("models").and_then(Value::as_array_mut) {
        let mut variants = Vec::new();
        for m in models.iter() {
            let Some(name) = m.get("name").and_then(Value::as_str) else { continue };
            let base = name.strip_prefix("models/").unwrap_or(name);
            let variant = format!("{base}-search");
            if super::search_base(&variant, &cfg.models.search_models).is_some() && !is_hidden(state, &variant) {
                variants.push(search_variant(m, &variant));
            }
        }
        models.retain(|m| !m.get("name").and_then(Value::as_str).is_some_and(|n| is_hidden(state, n)));
        models.extend(variants);
    }
    serde_json::to_vec(&v).map(Bytes::from).unwrap_or(body)
}

fn search_variant(base: &Value, variant: &str) -> Value {
    let mut m = base.clone();
    m["name"] = Value::String(format!("models/{variant}"));
    if let Some(d) = base.get("displayName").and_then(Value::as_str) {
        m["displayName"] = Value::String(format!("{d} (with Google Search)"));
    }
    m
}

/// `GET models/NAME-search` answers with the base model, renamed.
fn name_search_variant(state: &State, requested: &str, body: Bytes) -> Bytes {
    if super::search_base(requested, &state.config.load().models.search_models).is_none() {
        return body;
    }
    match serde_json::from_slice::<Value>(&body) {
        Ok(v) => serde_json::to_vec(&search_variant(&v, requested)).map(Bytes::from).unwrap_or(body),
        Err(_) => body,
    }
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
