//! Vertex AI Express keys on their own routes: `/vertex-express/v1beta/models/{m}:{method}`
//! (generateContent, streamGenerateContent, countTokens), served only by keys of kind `vertex`
//! at `vertex.base_url`, in Vertex's URL shape (`/v1beta1/publishers/google/models/{m}:{method}`),
//! through the same attempt loop, blame, cooldowns and log as every route. Bodies pass untouched.

use std::sync::Arc;

use http::{Method, Response};

use super::Call;
use super::gemini::{Native, Target};
use crate::body::Body;
use crate::error::ApiError;
use crate::models;
use crate::outcome::Expect;
use crate::proxy::{self, KeyChoice, Plan, forwarded_headers};
use crate::state::State;
use crate::upstream::{KeyPlacement, OutBody, Outgoing};

/// The methods Vertex AI Express serves.
const METHODS: &[&str] = &["generateContent", "streamGenerateContent", "countTokens"];

/// Vertex's path for a publisher model's method.
pub fn path(model: &str, method: &str) -> String {
    format!("/v1beta1/publishers/google/models/{model}:{method}")
}

pub async fn handle(state: &Arc<State>, target: Target, call: Call<'_>) -> Result<Response<Body>, ApiError> {
    let Target::Method { model, method } = target else {
        return Err(ApiError::NotFound(format!(
            "Vertex AI Express routes serve models/{{model}}:{{method}} only ({})",
            METHODS.join(", ")
        )));
    };
    if !METHODS.contains(&method.as_str()) {
        return Err(ApiError::NotFound(format!(
            "method {method} is not served on Vertex AI Express routes; use one of {}",
            METHODS.join(", ")
        )));
    }
    if *call.method != Method::POST {
        return Err(ApiError::MethodNotAllowed(call.method.clone()));
    }
    let model = models::aliased(&state.config.load().models.aliases, model);
    if models::is_hidden(&state.config.load().models, model.as_str()) {
        return Err(ApiError::NotFound(format!("models/{model} is not found")));
    }
    let query = crate::auth::strip_key_param(call.query);
    let sse = query.as_deref().is_some_and(|q| q.split('&').any(|p| p == "alt=sse"));
    let stream = method == "streamGenerateContent";
    let plan = Plan {
        route: format!("vertex.{method}").into(),
        model: Some(model.to_string()),
        stream,
        expect: match method.as_str() {
            "generateContent" => Expect::Content,
            "streamGenerateContent" => Expect::Anything,
            _ => Expect::Json,
        },
        keys: KeyChoice::Vertex,
    };
    let out = Outgoing {
        method: Method::POST,
        path_and_query: super::owned::with_query(path(model.as_str(), &method), &query),
        headers: forwarded_headers(call.headers),
        body: OutBody::Bytes(call.body),
        placement: KeyPlacement::GoogHeader,
    };
    Ok(proxy::serve(state, plan, out, Native::untouched(sse)).await)
}
