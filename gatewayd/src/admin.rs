//! The admin API on the Unix socket (plain path matching, shared types).

use std::sync::Arc;

use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use serde_json::json;

use crate::body::{Body, json_response};
use crate::state::State;

pub async fn handle(_state: Arc<State>, _req: Request<Incoming>) -> Response<Body> {
    json_response(StatusCode::NOT_FOUND, &json!({"error": "no such admin route"}))
}

pub async fn metrics_only(_state: Arc<State>, _req: Request<Incoming>) -> Response<Body> {
    json_response(StatusCode::NOT_FOUND, &json!({"error": "no such route"}))
}
