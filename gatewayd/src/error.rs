//! Errors a client can cause or meet, each with a precise status, rendered at the edge in the
//! route's own dialect: Google's `{"error":{"code","message","status"}}` on Gemini routes, OpenAI's
//! `{"error":{"message","type","code"}}` on OpenAI routes, Anthropic's
//! `{"type":"error","error":{"type","message"}}` on `/v1/messages`.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use serde_json::json;

use crate::body::{Body, full, json_response};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Gemini,
    OpenAi,
    Anthropic,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(
        "missing gateway token: send it as `Authorization: Bearer TOKEN`, `x-goog-api-key: TOKEN`, `x-api-key: TOKEN` or `?key=TOKEN`"
    )]
    MissingToken,
    #[error("invalid gateway token")]
    InvalidToken,
    #[error("request body exceeds {limit} bytes (server.max_body_bytes)")]
    BodyTooLarge { limit: u64 },
    #[error("{0}")]
    NotFound(String),
    #[error("method {0} is not allowed on this route")]
    MethodNotAllowed(http::Method),
    #[error("{0}")]
    BadRequest(String),
    /// No key could serve the request; 503, or 429 with `Retry-After` when every key cools.
    #[error("{message}")]
    NoKey { status: StatusCode, message: String, retry_after_secs: Option<u64> },
    /// An upstream error answer, relayed with its status; `body` is Google-shaped, keys redacted.
    #[error("upstream answered {status}")]
    Upstream { status: StatusCode, body: Bytes },
    #[error("upstream did not answer within {0} s (upstream.timeout_secs)")]
    Timeout(u64),
    #[error("upstream unreachable: {0}")]
    BadGateway(String),
    #[error("reading the request body failed: {0}")]
    ClientBody(String),
    #[error("the request body made no progress for {0} s (server.header_timeout_secs)")]
    BodyStalled(u64),
    /// A request names a resource whose owner key cannot serve: 409 FAILED_PRECONDITION.
    #[error("{0}")]
    Bound(String),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::MissingToken | ApiError::InvalidToken => StatusCode::UNAUTHORIZED,
            ApiError::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::BadRequest(_) | ApiError::ClientBody(_) => StatusCode::BAD_REQUEST,
            ApiError::NoKey { status, .. } | ApiError::Upstream { status, .. } => *status,
            ApiError::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
            ApiError::BadGateway(_) => StatusCode::BAD_GATEWAY,
            ApiError::BodyStalled(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::Bound(_) => StatusCode::CONFLICT,
        }
    }

    /// The message a client reads; for relayed upstream errors, the upstream's own message.
    pub fn message(&self) -> String {
        match self {
            ApiError::Upstream { body, status } => serde_json::from_slice::<serde_json::Value>(body)
                .ok()
                .and_then(|v| v.pointer("/error/message").and_then(|m| m.as_str()).map(String::from))
                .unwrap_or_else(|| format!("upstream answered {status}")),
            other => other.to_string(),
        }
    }

    pub fn into_response(self, dialect: Dialect) -> Response<Body> {
        let status = self.status();
        let retry_after = match &self {
            ApiError::NoKey { retry_after_secs, .. } => *retry_after_secs,
            _ => None,
        };
        let mut res = match (&self, dialect) {
            (ApiError::Upstream { body, .. }, Dialect::Gemini) if is_google_error(body) => {
                let mut res = Response::new(full(body.clone()));
                *res.status_mut() = status;
                res.headers_mut()
                    .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json; charset=UTF-8"));
                res
            }
            (_, Dialect::Gemini) => {
                let name =
                    if matches!(self, ApiError::Bound(_)) { "FAILED_PRECONDITION" } else { google_status(status) };
                json_response(
                    status,
                    &json!({"error": {"code": status.as_u16(), "message": self.message(), "status": name}}),
                )
            }
            (_, Dialect::OpenAi) => {
                let message = self.message();
                let (kind, mut code) = openai_kind(status);
                // Only a missing model is `model_not_found`; a missing route or resource is not.
                if status == StatusCode::NOT_FOUND && !message.to_ascii_lowercase().contains("model") {
                    code = json!(null);
                }
                json_response(
                    status,
                    &json!({"error": {"message": message, "type": kind, "param": null, "code": code}}),
                )
            }
            (_, Dialect::Anthropic) => {
                // Anthropic's clients retry an overloaded service on 529, its own status for it.
                let status = if status == StatusCode::SERVICE_UNAVAILABLE {
                    StatusCode::from_u16(529).unwrap_or(status)
                } else {
                    status
                };
                json_response(
                    status,
                    &json!({"type": "error", "error": {"type": anthropic_kind(status), "message": self.message()}}),
                )
            }
        };
        if let Some(secs) = retry_after {
            res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        res
    }
}

fn is_google_error(body: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(body).is_ok_and(|v| v.pointer("/error/code").is_some())
}

/// The google.rpc status name Google pairs with an HTTP status.
pub fn google_status(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 | 413 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        405 | 501 => "UNIMPLEMENTED",
        409 => "ABORTED",
        429 => "RESOURCE_EXHAUSTED",
        499 => "CANCELLED",
        502 | 503 => "UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        _ => "INTERNAL",
    }
}

/// Anthropic's error type for a status.
pub fn anthropic_kind(status: StatusCode) -> &'static str {
    match status.as_u16() {
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        529 | 503 => "overloaded_error",
        400..=499 => "invalid_request_error",
        _ => "api_error",
    }
}

fn openai_kind(status: StatusCode) -> (&'static str, serde_json::Value) {
    match status.as_u16() {
        401 => ("invalid_request_error", json!("invalid_api_key")),
        403 => ("permission_error", json!(null)),
        404 => ("invalid_request_error", json!("model_not_found")),
        413 => ("invalid_request_error", json!("request_too_large")),
        429 => ("rate_limit_error", json!("rate_limit_exceeded")),
        400..=499 => ("invalid_request_error", json!(null)),
        _ => ("server_error", json!(null)),
    }
}
