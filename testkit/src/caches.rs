//! FakeGemini's cached contents, strict like Google's: a cache is visible only to the key that
//! created it, and its contents may only name files of that key.

use std::collections::HashMap;
use std::sync::Mutex;

use bytes::Bytes;
use http::{Method, Response};
use serde_json::{Value, json};

use crate::fake::{FakeBody, google_error, json_response};

/// The last number given, and each cache by name: (the key that made it, its metadata).
type Store = (u64, HashMap<String, (String, Value)>);

#[derive(Default)]
pub struct Caches {
    inner: Mutex<Store>,
}

fn denied() -> Response<FakeBody> {
    google_error(403, "PERMISSION_DENIED", "CachedContent not found (or permission denied)", json!([]))
}

impl Caches {
    /// Whether `key` may use the cache `name` (`cachedContents/{id}`).
    pub fn visible(&self, key: &str, name: &str) -> bool {
        self.inner.lock().unwrap().1.get(name).is_some_and(|(k, _)| k == key)
    }

    /// Answers a cachedContents request, or `None` when the path is not one. `files_ok` says
    /// whether the body's files are the key's own.
    pub fn answer(
        &self,
        key: &str,
        method: &Method,
        path: &str,
        body: &Bytes,
        files_ok: bool,
    ) -> Option<Response<FakeBody>> {
        let rest = path.strip_prefix("/v1beta/cachedContents")?;
        let mut inner = self.inner.lock().unwrap();
        if rest.is_empty() {
            return Some(match *method {
                Method::POST if !files_ok => google_error(
                    403,
                    "PERMISSION_DENIED",
                    "You do not have permission to access the File or it may not exist.",
                    json!([]),
                ),
                Method::POST => {
                    let req: Value = serde_json::from_slice(body).unwrap_or(json!({}));
                    inner.0 += 1;
                    let name = format!("cachedContents/c{}", inner.0);
                    let meta = json!({"name": name, "model": req["model"], "displayName": req["displayName"],
                                      "expireTime": "2099-01-01T00:00:00Z", "usageMetadata": {"totalTokenCount": 1000}});
                    inner.1.insert(name, (key.to_string(), meta.clone()));
                    json_response(200, &meta)
                }
                Method::GET => {
                    let mine: Vec<Value> = inner.1.values().filter(|(k, _)| k == key).map(|(_, m)| m.clone()).collect();
                    json_response(200, &json!({ "cachedContents": mine }))
                }
                _ => google_error(405, "UNIMPLEMENTED", "method", json!([])),
            });
        }
        let name = format!("cachedContents/{}", rest.strip_prefix('/')?);
        let mine = inner.1.get(&name).filter(|(k, _)| k == key).map(|(_, m)| m.clone());
        Some(match (method, mine) {
            (&Method::GET, Some(m)) => json_response(200, &m),
            (&Method::PATCH, Some(mut m)) => {
                m["expireTime"] = json!("2099-06-01T00:00:00Z");
                inner.1.insert(name, (key.to_string(), m.clone()));
                json_response(200, &m)
            }
            (&Method::DELETE, Some(_)) => {
                inner.1.remove(&name);
                json_response(200, &json!({}))
            }
            _ => denied(),
        })
    }
}
