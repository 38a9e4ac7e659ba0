//! FakeGemini's Interactions API, strict like Google's: an interaction is visible only to the key
//! that created it (another key gets 404), `previous_interaction_id` must be one of the key's
//! own, files named in contents must be the key's. Streams follow the real event sequence
//! (`interaction.created`, `step.start`, `step.delta`…, `step.stop`, `interaction.completed`,
//! `[DONE]`); a background interaction is `in_progress` until read once.

use std::collections::HashMap;
use std::sync::Mutex;

use http::{Method, Response};
use serde_json::{Value, json};

use crate::fake::{FakeBody, full, google_error, json_response};

struct Stored {
    key: String,
    model: String,
    status: &'static str,
    text: String,
}

#[derive(Default)]
pub struct Interactions {
    inner: Mutex<(u64, HashMap<String, Stored>)>,
}

fn not_found(id: &str) -> Response<FakeBody> {
    google_error(404, "NOT_FOUND", &format!("Interaction {id} not found."), json!([]))
}

fn resource(id: &str, s: &Stored) -> Value {
    json!({"id": id, "object": "interaction", "status": s.status, "model": s.model,
           "created": "2026-12-01T00:00:00Z", "updated": "2026-12-01T00:00:01Z",
           "steps": [{"type": "model_output", "content": [{"type": "text", "text": s.text}]}],
           "usage": {"total_input_tokens": 4, "total_output_tokens": 3, "total_tokens": 7}})
}

impl Interactions {
    /// Answers `/v1beta/interactions…`; `None` when the path is not one. `files_ok`: every file
    /// the body names belongs to `key`.
    pub fn answer(
        &self,
        key: &str,
        method: &Method,
        path: &str,
        query: Option<&str>,
        body: &[u8],
        files_ok: bool,
    ) -> Option<Response<FakeBody>> {
        // Generally available since June 2026: on v1 as on v1beta.
        let rest = path.strip_prefix("/v1beta/interactions").or_else(|| path.strip_prefix("/v1/interactions"))?;
        let mut inner = self.inner.lock().unwrap();
        if rest.is_empty() && method == Method::POST {
            let req: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
            let Some(model) = req["model"].as_str().or(req["agent"].as_str()).map(String::from) else {
                return Some(google_error(400, "INVALID_ARGUMENT", "model or agent is required", json!([])));
            };
            if !files_ok {
                return Some(google_error(
                    403,
                    "PERMISSION_DENIED",
                    "You do not have permission to access the File or it may not exist.",
                    json!([]),
                ));
            }
            let mut text = "Hello from the interaction".to_string();
            if let Some(prev) = req["previous_interaction_id"].as_str() {
                match inner.1.get(prev) {
                    Some(p) if p.key == key => text = format!("Continuing {prev}"),
                    _ => return Some(not_found(prev)),
                }
            }
            inner.0 += 1;
            let id = format!("v1_int{}", inner.0);
            let background = req["background"] == json!(true);
            let stored =
                Stored { key: key.into(), model, status: if background { "in_progress" } else { "completed" }, text };
            let whole = resource(&id, &stored);
            let stream = req["stream"] == json!(true);
            if req["store"] != json!(false) {
                inner.1.insert(id.clone(), stored);
            }
            return Some(if stream { event_stream(&id, &whole) } else { json_response(200, &whole) });
        }
        let id = rest.strip_prefix('/')?;
        let (id, cancel) = match id.strip_suffix("/cancel") {
            Some(id) => (id, true),
            None => (id, false),
        };
        let Some(stored) = inner.1.get_mut(id).filter(|s| s.key == key) else {
            return Some(not_found(id));
        };
        Some(match (method, cancel) {
            (&Method::GET, false) => {
                let whole = resource(id, stored);
                // A background run finishes once it has been looked at.
                stored.status = "completed";
                match query.is_some_and(|q| q.split('&').any(|p| p == "stream=true")) {
                    true => event_stream(id, &whole),
                    false => json_response(200, &whole),
                }
            }
            (&Method::POST, true) => {
                stored.status = "cancelled";
                json_response(200, &resource(id, stored))
            }
            (&Method::DELETE, false) => {
                inner.1.remove(id);
                json_response(200, &json!({}))
            }
            _ => google_error(400, "INVALID_ARGUMENT", "bad method", json!([])),
        })
    }

    /// Interactions stored and not deleted, all keys together.
    pub fn count(&self) -> usize {
        self.inner.lock().unwrap().1.len()
    }
}

fn event_stream(id: &str, whole: &Value) -> Response<FakeBody> {
    let text = whole["steps"][0]["content"][0]["text"].as_str().unwrap_or("").to_string();
    let (head, tail) = text.split_at(text.len() / 2);
    let events = [
        json!({"event_type": "interaction.created", "event_id": "e1",
               "interaction": {"id": id, "status": "in_progress", "model": whole["model"], "object": "interaction"}}),
        json!({"event_type": "step.start", "event_id": "e2", "index": 0,
               "step": {"type": "model_output", "content": []}}),
        json!({"event_type": "step.delta", "event_id": "e3", "index": 0, "delta": {"type": "text", "text": head}}),
        json!({"event_type": "step.delta", "event_id": "e4", "index": 0, "delta": {"type": "text", "text": tail}}),
        json!({"event_type": "step.stop", "event_id": "e5", "index": 0}),
        json!({"event_type": "interaction.completed", "event_id": "e6",
               "interaction": {"id": id, "status": "completed", "model": whole["model"], "usage": whole["usage"]}}),
    ];
    let mut sse: String =
        events.iter().map(|e| format!("event: {}\ndata: {e}\n\n", e["event_type"].as_str().unwrap())).collect();
    sse.push_str("data: [DONE]\n\n");
    let mut r = Response::new(full(sse));
    r.headers_mut().insert("content-type", "text/event-stream".parse().unwrap());
    r
}
