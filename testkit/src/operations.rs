//! FakeGemini's batches and long-running operations, strict like Google's: each is visible only
//! to the key that created it.

use std::collections::HashMap;
use std::sync::Mutex;

use http::{Method, Response};
use serde_json::{Value, json};

use crate::fake::{FakeBody, google_error, json_response};

/// The last number given, and each resource by name: the key that made it.
#[derive(Default)]
pub struct Operations {
    inner: Mutex<(u64, HashMap<String, String>)>,
}

impl Operations {
    /// Answers a creating method, a batch or an operation request; `None` when the path is none.
    pub fn answer(
        &self,
        key: &str,
        method: &Method,
        path: &str,
        files: &crate::files::Files,
        files_ok: bool,
    ) -> Option<Response<FakeBody>> {
        let mut inner = self.inner.lock().unwrap();
        let created = |inner: &mut (u64, HashMap<String, String>), name: String| {
            inner.1.insert(name.clone(), key.to_string());
            json_response(200, &json!({"name": name, "metadata": {"state": "BATCH_STATE_PENDING"}}))
        };
        if let Some(rest) = path.strip_prefix("/v1beta/models/")
            && let Some((model, verb)) = rest.split_once(':')
        {
            inner.0 += 1;
            let n = inner.0;
            return match verb {
                "batchGenerateContent" | "asyncBatchEmbedContent" if !files_ok => Some(google_error(
                    403,
                    "PERMISSION_DENIED",
                    "You do not have permission to access the File or it may not exist.",
                    json!([]),
                )),
                "batchGenerateContent" | "asyncBatchEmbedContent" => Some(created(&mut inner, format!("batches/b{n}"))),
                "predictLongRunning" => Some(created(&mut inner, format!("models/{model}/operations/o{n}"))),
                _ => None,
            };
        }
        let rest = path.strip_prefix("/v1beta/")?;
        if rest == "batches" {
            let mine: Vec<Value> = inner
                .1
                .iter()
                .filter(|(n, k)| *k == key && n.starts_with("batches/"))
                .map(|(n, _)| json!({"name": n}))
                .collect();
            return Some(json_response(200, &json!({ "operations": mine })));
        }
        let (name, cancel) = match rest.strip_suffix(":cancel") {
            Some(n) => (n.to_string(), true),
            None => (rest.to_string(), false),
        };
        if !name.starts_with("batches/") && !name.contains("operations/") {
            return None;
        }
        let mine = inner.1.get(&name).is_some_and(|k| k == key);
        Some(match (method, mine, cancel) {
            (_, false, _) => {
                google_error(404, "NOT_FOUND", &format!("{name} not found (or permission denied)"), json!([]))
            }
            (&Method::POST, true, true) => json_response(200, &json!({})),
            (&Method::DELETE, true, false) => {
                inner.1.remove(&name);
                json_response(200, &json!({}))
            }
            (&Method::GET, true, false) if name.contains("/operations/") => {
                // A finished Veo operation: its video is a file of the same key (ids are [a-z0-9],
                // as the SDK's parsing of a video URI expects).
                let id = format!("video{}", name.rsplit('/').next().unwrap_or("o"));
                files.add_generated(key, &id, "video/mp4", b"\x00\x00\x00\x18ftypmp42 fake video");
                let uri = format!("https://generativelanguage.googleapis.com/v1beta/files/{id}:download?alt=media");
                json_response(
                    200,
                    &json!({"name": name, "done": true,
                    "response": {"generateVideoResponse": {"generatedSamples": [{"video": {"uri": uri}}]}}}),
                )
            }
            (&Method::GET, true, false) => {
                json_response(200, &json!({"name": name, "done": true, "metadata": {"state": "BATCH_STATE_SUCCEEDED"}}))
            }
            _ => google_error(400, "INVALID_ARGUMENT", "bad method", json!([])),
        })
    }
}
