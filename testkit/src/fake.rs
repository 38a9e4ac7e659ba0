//! FakeGemini: a strict stand-in for Google's API on a real socket (port 0), scripted per key,
//! recording every request it receives. It answers only the paths Google serves (anything else
//! is Google's 404), has no magic model names, and a panic inside it fails the test that owns it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::body::{Body, Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{Value, json};
use tokio::sync::{Notify, mpsc};

pub(crate) type FakeBody = BoxBody<Bytes, std::io::Error>;

/// What the fake does with one request made with a given key.
#[derive(Clone)]
pub enum Script {
    /// The route's normal success answer.
    Ok,
    /// A status with a JSON body.
    Json(u16, Value),
    /// A status with this body as it is (`content-type: application/json` all the same).
    Raw(u16, &'static str),
    /// 429 with Google's QuotaFailure (+ RetryInfo when a delay is given).
    Quota { quota_id: String, delay: Option<String> },
    /// 400 INVALID_ARGUMENT with ErrorInfo API_KEY_INVALID.
    InvalidKey,
    /// 403 PERMISSION_DENIED.
    Forbidden,
    /// A Google error of this status with a generic message.
    Status(u16),
    /// 200 with no candidate content.
    Empty,
    /// Waits, then does the inner script.
    Delay(Duration, Box<Script>),
    /// SSE stream of these events with a gap between them.
    Sse { events: Vec<Value>, gap: Duration },
    /// SSE: sends `first`, waits for `gate`, then sends `rest`.
    Gated { first: Value, gate: Arc<Notify>, rest: Vec<Value> },
    /// SSE: `count` events of about `size` bytes each as fast as the reader takes them; `sent`
    /// counts the bytes handed to the connection.
    Firehose { size: usize, count: usize, sent: Arc<AtomicU64> },
    /// SSE: sends `events`, then breaks the connection mid-stream.
    SseBreak { events: Vec<Value> },
    /// Closes the connection without an answer.
    Drop,
    /// Panics while answering: a fake that breaks must fail its test, never pass it silently.
    Panic,
}

impl Script {
    pub fn quota(quota_id: &str, delay: Option<&str>) -> Script {
        Script::Quota { quota_id: quota_id.into(), delay: delay.map(String::from) }
    }
}

#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// The key the request carried in `x-goog-api-key` (or Bearer on the OpenAI surface).
    pub key: Option<String>,
}

#[derive(Default)]
struct Scripts {
    /// Per key: scripts used in order, then `default` (or Ok).
    queue: HashMap<String, Vec<Script>>,
    default: HashMap<String, Script>,
    /// Per model: a script that answers every generation request for it, whatever the key
    /// (a model outage looks the same on every key).
    models: HashMap<String, Script>,
}

#[derive(Default)]
struct Shared {
    scripts: Mutex<Scripts>,
    recorded: Mutex<Vec<Recorded>>,
    /// Serve the public images under `/images/` (for `image_url` fetching tests).
    images: bool,
    /// Requests to `/images/` (which are not recorded with the API requests).
    image_hits: std::sync::atomic::AtomicU64,
    /// Panics caught in connection tasks, re-raised when the handle drops.
    panics: Mutex<Vec<String>>,
    /// Uploaded files, each visible only to the key that uploaded it.
    files: crate::files::Files,
    /// Cached contents, each visible only to the key that created it.
    caches: crate::caches::Caches,
    /// Batches and long-running operations, each visible only to the key that created it.
    operations: crate::operations::Operations,
    /// Interactions, each visible only to the key that created it.
    interactions: crate::interactions::Interactions,
    /// Vertex AI Express keys: served on Vertex's paths only.
    vertex_keys: Mutex<std::collections::HashSet<String>>,
}

pub struct FakeGemini {
    shared: Arc<Shared>,
}

impl Default for FakeGemini {
    fn default() -> Self {
        Self::new()
    }
}

impl FakeGemini {
    pub fn new() -> Self {
        FakeGemini { shared: Arc::default() }
    }

    /// A key the fake accepts, answering every request with `script`.
    pub fn key(self, key: &str, script: Script) -> Self {
        self.shared.scripts.lock().unwrap().default.insert(key.into(), script);
        self
    }

    /// A Vertex AI Express key: Vertex's paths answer it with `script`, the Gemini API refuses it.
    pub fn vertex_key(self, key: &str, script: Script) -> Self {
        self.shared.vertex_keys.lock().unwrap().insert(key.into());
        self.key(key, script)
    }

    /// Also serve public images (no key involved) for `image_url` fetching: `/images/cat.png` (a
    /// PNG), `moved.png` (a redirect to it), `slow.png` (60 s), `huge.png` (21 MiB).
    pub fn images(self) -> Self {
        let mut shared = Arc::try_unwrap(self.shared).unwrap_or_else(|_| panic!("images() before start()"));
        shared.images = true;
        FakeGemini { shared: Arc::new(shared) }
    }

    /// Every key's requests to `model`'s methods (`/models/{model}:…`) follow `script`.
    pub fn model(self, model: &str, script: Script) -> Self {
        self.shared.scripts.lock().unwrap().models.insert(model.into(), script);
        self
    }

    /// A key whose next requests follow `scripts` in order, then `Script::Ok`.
    pub fn key_seq(self, key: &str, scripts: Vec<Script>) -> Self {
        {
            let mut s = self.shared.scripts.lock().unwrap();
            s.queue.insert(key.into(), scripts);
            s.default.entry(key.into()).or_insert(Script::Ok);
        }
        self
    }

    pub async fn start(self) -> FakeHandle {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = self.shared.clone();
        let task = tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            loop {
                tokio::select! {
                    accepted = listener.accept() => {
                        let Ok((stream, _)) = accepted else { continue };
                        let conn_shared = shared.clone();
                        connections.spawn(async move {
                            let svc = service_fn(move |req| {
                                let shared = conn_shared.clone();
                                async move { answer(shared, req).await }
                            });
                            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                                .serve_connection(TokioIo::new(stream), svc)
                                .await;
                        });
                    }
                    Some(Err(e)) = connections.join_next(), if !connections.is_empty() => {
                        if e.is_panic() {
                            let payload = e.into_panic();
                            let message = payload
                                .downcast_ref::<String>()
                                .cloned()
                                .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                                .unwrap_or_else(|| "a panic".into());
                            shared.panics.lock().unwrap().push(message);
                        }
                    }
                }
            }
        });
        FakeHandle { addr, shared: self.shared, task }
    }
}

pub struct FakeHandle {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeHandle {
    /// Stops the fake; a panic it caught fails the test (unless the test is already failing).
    fn drop(&mut self) {
        self.task.abort();
        let panics = std::mem::take(&mut *self.shared.panics.lock().unwrap_or_else(|e| e.into_inner()));
        if !panics.is_empty() && !std::thread::panicking() {
            panic!("FakeGemini panicked while serving: {panics:?}");
        }
    }
}

impl FakeHandle {
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// How many requests reached the public images.
    /// Files uploaded and not deleted, all keys together.
    pub fn file_count(&self) -> usize {
        self.shared.files.count()
    }

    /// Interactions stored and not deleted, all keys together.
    pub fn interaction_count(&self) -> usize {
        self.shared.interactions.count()
    }

    /// List pages of the Files API hold at most `n` files from now on.
    pub fn files_page_cap(&self, n: usize) {
        self.shared.files.page_cap.store(n, Ordering::Relaxed);
    }

    pub fn image_hits(&self) -> u64 {
        self.shared.image_hits.load(Ordering::Relaxed)
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.recorded.lock().unwrap().clone()
    }

    /// Requests to generation methods (not model lists or probes) made with `key`.
    pub fn hits(&self, key: &str) -> usize {
        self.requests().iter().filter(|r| r.key.as_deref() == Some(key) && r.method == "POST").count()
    }

    /// Sets (or, with `None`, ends) the script every key meets on `model`.
    pub fn set_model(&self, model: &str, script: Option<Script>) {
        let mut s = self.shared.scripts.lock().unwrap();
        match script {
            Some(script) => s.models.insert(model.into(), script),
            None => s.models.remove(model),
        };
    }

    pub fn set(&self, key: &str, script: Script) {
        self.shared.scripts.lock().unwrap().default.insert(key.into(), script);
    }

    pub fn clear(&self) {
        self.shared.recorded.lock().unwrap().clear();
    }
}

fn next_script(shared: &Shared, key: &str) -> Option<Script> {
    let mut s = shared.scripts.lock().unwrap();
    if let Some(q) = s.queue.get_mut(key)
        && !q.is_empty()
    {
        return Some(q.remove(0));
    }
    s.default.get(key).cloned()
}

async fn answer(shared: Arc<Shared>, req: Request<Incoming>) -> Result<Response<FakeBody>, std::io::Error> {
    let (parts, body) = req.into_parts();
    let body = body.collect().await.map(|c| c.to_bytes()).unwrap_or_default();
    let key = parts.headers.get("x-goog-api-key").and_then(|v| v.to_str().ok()).map(String::from).or_else(|| {
        parts
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(String::from)
    });
    let path = parts.uri.path().to_string();
    if let Some(name) = path.strip_prefix("/images/").filter(|_| shared.images) {
        shared.image_hits.fetch_add(1, Ordering::Relaxed);
        // A public image for image_url fetching (no key involved).
        return Ok(match name {
            "cat.png" => {
                let mut r = Response::new(full(Bytes::from_static(PNG)));
                r.headers_mut().insert("content-type", "image/png".parse().unwrap());
                r
            }
            "slow.png" => {
                tokio::time::sleep(Duration::from_secs(60)).await;
                json_response(200, &json!({}))
            }
            "huge.png" => {
                let mut r = Response::new(full(vec![0u8; 21 << 20]));
                r.headers_mut().insert("content-type", "image/png".parse().unwrap());
                r
            }
            "moved.png" => {
                let mut r = Response::new(full(Bytes::new()));
                *r.status_mut() = StatusCode::FOUND;
                r.headers_mut().insert(
                    "location",
                    format!("http://{}/images/cat.png", parts.headers["host"].to_str().unwrap()).parse().unwrap(),
                );
                r
            }
            _ => google_error(404, "NOT_FOUND", "no such image", json!([])),
        });
    }
    shared.recorded.lock().unwrap().push(Recorded {
        method: parts.method.to_string(),
        path: path.clone(),
        query: parts.uri.query().map(String::from),
        headers: parts.headers.clone(),
        body: body.clone(),
        key: key.clone(),
    });
    let Some(key) = key else {
        return Ok(google_error(403, "PERMISSION_DENIED", "Method doesn't allow unregistered callers", json!([])));
    };
    let Some(script) = next_script(&shared, &key) else {
        return Ok(invalid_key());
    };
    // Vertex AI Express (`/v1beta1/publishers/google/models/…`) takes only its own keys, and
    // the Gemini API refuses them; a vertex path is then served like the Gemini one.
    let vertex_key = shared.vertex_keys.lock().unwrap().contains(&key);
    let path = match (path.strip_prefix("/v1beta1/publishers/google/models/"), vertex_key) {
        (Some(_), false) => {
            return Ok(google_error(
                401,
                "UNAUTHENTICATED",
                "API keys are not supported by this API. Expected OAuth2 access token or other authentication credentials that assert a principal.",
                json!([{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "CREDENTIALS_MISSING"}]),
            ));
        }
        (None, true) => return Ok(invalid_key()),
        (Some(rest), true) => format!("/v1beta/models/{rest}"),
        (None, false) => path,
    };
    if let Some(r) = shared.files.answer(&key, &parts, &body) {
        return Ok(r);
    }
    let req: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let mut uris = Vec::new();
    file_uris(&req, &mut uris);
    let files_ok = uris.iter().all(|u| shared.files.visible(&key, u));
    if let Some(r) = shared.caches.answer(&key, &parts.method, &path, &body, files_ok) {
        return Ok(r);
    }
    if let Some(r) = shared.operations.answer(&key, &parts.method, &path, &shared.files, files_ok) {
        return Ok(r);
    }
    // Interactions answer as the store says, unless the key is scripted to fail.
    if matches!(script, Script::Ok)
        && let Some(r) = shared.interactions.answer(&key, &parts.method, &path, parts.uri.query(), &body, files_ok)
    {
        return Ok(r);
    }
    // A generation that names another key's file or cache fails as Google's does.
    if path.contains(":generateContent") || path.contains(":streamGenerateContent") {
        if let Some(cache) = req.get("cachedContent").and_then(Value::as_str)
            && !shared.caches.visible(&key, cache)
        {
            return Ok(google_error(
                403,
                "PERMISSION_DENIED",
                "CachedContent not found (or permission denied)",
                json!([]),
            ));
        }
        if let Some(uri) = uris.iter().find(|u| !shared.files.visible(&key, u)) {
            let id = uri.rsplit("files/").next().unwrap_or(uri);
            return Ok(google_error(
                403,
                "PERMISSION_DENIED",
                &format!("You do not have permission to access the File {id} or it may not exist."),
                json!([]),
            ));
        }
    }
    let model = path.split("/models/").nth(1).and_then(|rest| rest.split_once(':')).map(|(m, _)| m);
    let by_model = model.and_then(|m| shared.scripts.lock().unwrap().models.get(m).cloned());
    let script = by_model.unwrap_or(script);
    let sse = parts.uri.query().is_some_and(|q| q.contains("alt=sse"));
    run(script, &path, sse, &body).await
}

fn file_uris(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                match (k.as_str(), v) {
                    ("fileUri" | "file_uri" | "fileName" | "file_name", Value::String(s)) => out.push(s.clone()),
                    // An Interactions API content naming an uploaded file.
                    ("uri", Value::String(s)) if s.starts_with("files/") || s.contains("/v1beta/files/") => {
                        out.push(s.clone())
                    }
                    _ => file_uris(v, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|v| file_uris(v, out)),
        _ => {}
    }
}

fn run<'a>(
    script: Script,
    path: &'a str,
    sse: bool,
    body: &'a Bytes,
) -> Pin<Box<dyn std::future::Future<Output = Result<Response<FakeBody>, std::io::Error>> + Send + 'a>> {
    Box::pin(async move {
        Ok(match script {
            Script::Ok => success(path, sse, body),
            Script::Json(status, v) => json_response(status, &v),
            Script::Raw(status, text) => json_response_text(status, text.to_string()),
            Script::Quota { quota_id, delay } => {
                let mut details = vec![json!({
                    "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                    "violations": [{"quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
                                    "quotaId": quota_id, "quotaDimensions": {"location": "global", "model": "gemini-2.5-flash"},
                                    "quotaValue": "10"}]})];
                if let Some(d) = delay {
                    details.push(json!({"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": d}));
                }
                google_error(
                    429,
                    "RESOURCE_EXHAUSTED",
                    "You exceeded your current quota, please check your plan and billing details.",
                    json!(details),
                )
            }
            Script::InvalidKey => invalid_key(),
            Script::Forbidden => google_error(
                403,
                "PERMISSION_DENIED",
                "Permission denied: Consumer 'api_key:x' has been suspended.",
                json!([]),
            ),
            Script::Status(code) => {
                let status = match code {
                    500 => "INTERNAL",
                    503 => "UNAVAILABLE",
                    504 => "DEADLINE_EXCEEDED",
                    404 => "NOT_FOUND",
                    _ => "INVALID_ARGUMENT",
                };
                google_error(code, status, &format!("fake error {code}"), json!([]))
            }
            Script::Empty => json_response(
                200,
                &json!({"candidates": [{"content": {"role": "model"}, "finishReason": "STOP"}],
                                                       "usageMetadata": {"promptTokenCount": 2, "totalTokenCount": 2}}),
            ),
            Script::Delay(d, inner) => {
                tokio::time::sleep(d).await;
                return run(*inner, path, sse, body).await;
            }
            Script::Sse { events, gap } => {
                let (tx, res) = stream_response();
                tokio::spawn(async move {
                    for (i, e) in events.into_iter().enumerate() {
                        if i > 0 {
                            tokio::time::sleep(gap).await;
                        }
                        if tx.send(Ok(sse_event(&e))).await.is_err() {
                            return;
                        }
                    }
                });
                res
            }
            Script::Gated { first, gate, rest } => {
                let (tx, res) = stream_response();
                tokio::spawn(async move {
                    let _ = tx.send(Ok(sse_event(&first))).await;
                    gate.notified().await;
                    for e in rest {
                        let _ = tx.send(Ok(sse_event(&e))).await;
                    }
                });
                res
            }
            Script::Firehose { size, count, sent } => {
                let (tx, res) = stream_response();
                tokio::spawn(async move {
                    let text = "x".repeat(size);
                    for _ in 0..count {
                        let ev = sse_event(
                            &json!({"candidates": [{"content": {"role": "model", "parts": [{"text": text}]}}]}),
                        );
                        let n = ev.len() as u64;
                        if tx.send(Ok(ev)).await.is_err() {
                            return;
                        }
                        sent.fetch_add(n, Ordering::Relaxed);
                    }
                });
                res
            }
            Script::SseBreak { events } => {
                let (tx, res) = stream_response();
                tokio::spawn(async move {
                    for e in events {
                        let _ = tx.send(Ok(sse_event(&e))).await;
                    }
                    let _ = tx.send(Err(std::io::Error::other("fake breaks the stream"))).await;
                });
                res
            }
            Script::Drop => return Err(std::io::Error::other("fake drops the connection")),
            Script::Panic => panic!("the script said to panic"),
        })
    })
}

pub fn text_chunk(text: &str) -> Value {
    json!({"candidates": [{"content": {"role": "model", "parts": [{"text": text}]}, "index": 0}],
           "usageMetadata": {"promptTokenCount": 4, "candidatesTokenCount": 1, "totalTokenCount": 5}, "modelVersion": "gemini-2.5-flash"})
}

pub fn final_chunk(text: &str, prompt: u64, candidates: u64) -> Value {
    json!({"candidates": [{"content": {"role": "model", "parts": [{"text": text}]}, "finishReason": "STOP", "index": 0}],
           "usageMetadata": {"promptTokenCount": prompt, "candidatesTokenCount": candidates, "totalTokenCount": prompt + candidates},
           "modelVersion": "gemini-2.5-flash"})
}

pub fn generate_answer() -> Value {
    json!({"candidates": [{"content": {"role": "model", "parts": [{"text": "Hello from the fake."}]}, "finishReason": "STOP", "index": 0}],
           "usageMetadata": {"promptTokenCount": 7, "candidatesTokenCount": 5, "totalTokenCount": 12},
           "modelVersion": "gemini-2.5-flash", "responseId": "fake-1"})
}

pub fn model_list() -> Value {
    let model = |name: &str| {
        json!({"name": format!("models/{name}"), "displayName": name, "version": "001",
        "supportedGenerationMethods": ["generateContent", "streamGenerateContent", "countTokens"],
        "inputTokenLimit": 1048576, "outputTokenLimit": 65536})
    };
    json!({"models": [model("gemini-2.5-flash"), model("gemini-2.5-pro"), model("gemini-2.5-flash-lite"),
                      {"name": "models/text-embedding-004", "displayName": "Text Embedding 004", "supportedGenerationMethods": ["embedContent"]}]})
}

/// A 1×1 PNG.
pub const PNG: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4, 0x89,
];

/// The answer a model would give this generateContent body: a tool call when tools are offered
/// and no tool result came back yet, a final answer after one, JSON in JSON mode, text otherwise.
/// `model_answer`, with a thought first when the request asks for thoughts.
fn model_answer_for(model: &str, req: &Value) -> Value {
    let mut answer = model_answer(req);
    if req.pointer("/generationConfig/thinkingConfig/includeThoughts") == Some(&json!(true))
        && let Some(parts) = answer.pointer_mut("/candidates/0/content/parts").and_then(Value::as_array_mut)
    {
        parts.insert(0, json!({"text": "Thinking it over.", "thought": true}));
        answer["usageMetadata"]["thoughtsTokenCount"] = json!(3);
    }
    if model.starts_with("gemini-3") {
        answer["modelVersion"] = json!(model);
    }
    answer
}

/// The stream of `model_answer_for`: a tool call or the tool loop's answer arrives as Gemini
/// streams them (thought first, the call whole in one event); any other answer as three text events.
fn stream_for(model: &str, req: &Value) -> Vec<Value> {
    let answer = model_answer_for(model, req);
    let parts = answer.pointer("/candidates/0/content/parts").and_then(Value::as_array).cloned().unwrap_or_default();
    let tool_loop = parts.iter().any(|p| p.get("functionCall").is_some())
        || parts.iter().any(|p| p["text"].as_str().is_some_and(|t| t.contains("21 degrees")));
    let thinking = parts.first().is_some_and(|p| p["thought"] == json!(true));
    if !tool_loop && !thinking {
        return vec![text_chunk("Hel"), text_chunk("lo "), final_chunk("there", 7, 3)];
    }
    let n = parts.len();
    parts
        .into_iter()
        .enumerate()
        .map(|(i, part)| {
            let mut c = json!({"candidates": [{"content": {"role": "model", "parts": [part]}, "index": 0}],
                               "usageMetadata": {"promptTokenCount": 7, "candidatesTokenCount": 1 + i, "totalTokenCount": 8 + i}});
            if i + 1 == n {
                c["candidates"][0]["finishReason"] = json!("STOP");
                c["usageMetadata"] = answer["usageMetadata"].clone();
            }
            c
        })
        .collect()
}

pub fn model_answer(req: &Value) -> Value {
    let contents = req["contents"].as_array().cloned().unwrap_or_default();
    let has_result = contents
        .iter()
        .flat_map(|c| c["parts"].as_array().cloned().unwrap_or_default())
        .any(|p| p.get("functionResponse").is_some());
    let declarations: Vec<&Value> = req["tools"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|t| t["functionDeclarations"].as_array().into_iter().flatten())
        .collect();
    // A shell tool (Codex's exec_command, Claude Code's Bash) is called with a command it can
    // run; otherwise the first tool, for Paris.
    let shell_param = |d: &Value| {
        let props = d["parameters"]["properties"].as_object()?;
        ["cmd", "command"].into_iter().find(|p| props.contains_key(*p))
    };
    let shell = declarations.iter().find_map(|d| shell_param(d).map(|p| (*d, p)));
    let declaration = shell.map(|(d, _)| d).or(declarations.first().copied());
    let tool = declaration.and_then(|d| d["name"].as_str().map(String::from));
    let shell = shell.map(|(_, p)| p);
    let usage = json!({"promptTokenCount": 7, "candidatesTokenCount": 5, "totalTokenCount": 12});
    let answer = |parts: Value| {
        json!({"candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": "STOP", "index": 0}],
                                        "usageMetadata": usage, "modelVersion": "gemini-2.5-flash", "responseId": "fake-1"})
    };
    if let (Some(name), false) = (tool, has_result) {
        let args = match shell {
            Some(p) => json!({ p: "echo Paris: sunny" }),
            None => json!({"city": "Paris"}),
        };
        return answer(
            json!([{"functionCall": {"name": name, "args": args}, "thoughtSignature": "ZmFrZS1zaWduYXR1cmU="}]),
        );
    }
    if has_result {
        return answer(json!([{"text": "It is 21 degrees in Paris."}]));
    }
    if req.pointer("/generationConfig/responseMimeType") == Some(&json!("application/json")) {
        return answer(json!([{"text": "{\"answer\": 42}"}]));
    }
    generate_answer()
}

fn success(path: &str, sse: bool, body: &Bytes) -> Response<FakeBody> {
    if path.starts_with("/v1beta/openai/") {
        return openai_surface(path, body);
    }
    let Some(rest) = path.strip_prefix("/v1beta/models").or_else(|| path.strip_prefix("/v1/models")) else {
        return google_error(404, "NOT_FOUND", &format!("the fake serves no {path}"), json!([]));
    };
    if rest.is_empty() {
        return json_response(200, &model_list());
    }
    let Some(name) = rest.strip_prefix('/').filter(|n| !n.is_empty() && !n.contains('/')) else {
        return google_error(404, "NOT_FOUND", &format!("the fake serves no {path}"), json!([]));
    };
    let Some((model, method)) = name.split_once(':') else {
        return json_response(
            200,
            &json!({"name": format!("models/{name}"), "displayName": name, "supportedGenerationMethods": ["generateContent"]}),
        );
    };
    if matches!(method, "generateContent" | "streamGenerateContent")
        && let Some(refused) = crate::strict::refusal(model, &serde_json::from_slice(body).unwrap_or(Value::Null))
    {
        return refused;
    }
    match method {
        "generateContent" => {
            let req: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
            let modalities = req["generationConfig"]["responseModalities"].as_array().cloned().unwrap_or_default();
            let wants = |m: &str| modalities.iter().any(|v| v == m);
            let unsupported = || {
                google_error(
                    400,
                    "INVALID_ARGUMENT",
                    "The requested combination of response modalities is not supported by the model.",
                    json!([]),
                )
            };
            match (wants("AUDIO"), wants("IMAGE")) {
                (true, _) if !model.contains("tts") => unsupported(),
                (true, _) => json_response(200, &crate::media::speech_answer(&req)),
                (_, true) if !model.contains("image") => unsupported(),
                (_, true) => json_response(200, &crate::media::image_answer(&req)),
                _ => json_response(200, &model_answer_for(model, &req)),
            }
        }
        "streamGenerateContent" => {
            let req: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
            let events = stream_for(model, &req);
            if sse {
                let text: String = events.iter().map(|e| String::from_utf8(sse_event(e).to_vec()).unwrap()).collect();
                let mut r = Response::new(full(text));
                r.headers_mut().insert("content-type", "text/event-stream".parse().unwrap());
                r
            } else {
                let text = format!("[{}]", events.iter().map(|e| e.to_string()).collect::<Vec<_>>().join(",\r\n"));
                json_response_text(200, text)
            }
        }
        "countTokens" => json_response(200, &json!({"totalTokens": 7})),
        // Imagen: one PNG per requested image.
        "predict" => {
            let n = serde_json::from_slice::<Value>(body)
                .ok()
                .and_then(|v| v["parameters"]["sampleCount"].as_u64())
                .unwrap_or(1);
            let png = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, PNG);
            let predictions: Vec<Value> =
                (0..n).map(|_| json!({"bytesBase64Encoded": png, "mimeType": "image/png"})).collect();
            json_response(200, &json!({ "predictions": predictions }))
        }
        "embedContent" => json_response(200, &json!({"embedding": {"values": [0.1, 0.2, 0.3]}})),
        "batchEmbedContents" => {
            let n = serde_json::from_slice::<Value>(body)
                .ok()
                .and_then(|v| v["requests"].as_array().map(|a| a.len()))
                .unwrap_or(0);
            let embeddings: Vec<Value> = (0..n).map(|i| json!({"values": [i as f64, 0.5, 0.25]})).collect();
            json_response(200, &json!({"embeddings": embeddings}))
        }
        _ => google_error(404, "NOT_FOUND", &format!("method {method} not found"), json!([])),
    }
}

/// Google's own OpenAI-compatible surface, as the passthrough reaches it.
fn openai_surface(path: &str, body: &Bytes) -> Response<FakeBody> {
    let req: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    match path {
        "/v1beta/openai/chat/completions" if req["stream"] == json!(true) => {
            let chunk = json!({"id": "x", "object": "chat.completion.chunk", "created": 1, "model": req["model"],
                               "choices": [{"index": 0, "delta": {"role": "assistant", "content": "hi"}, "finish_reason": null}]});
            let mut r = Response::new(full(format!("data: {chunk}\n\ndata: [DONE]\n\n")));
            r.headers_mut().insert("content-type", "text/event-stream".parse().unwrap());
            r
        }
        "/v1beta/openai/chat/completions" => json_response(
            200,
            &json!({"id": "x", "object": "chat.completion", "created": 1, "model": req["model"],
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "from google's openai surface"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}}),
        ),
        "/v1beta/openai/models" => json_response(
            200,
            &json!({"object": "list", "data": [{"id": "models/gemini-2.5-flash", "object": "model", "owned_by": "google"}]}),
        ),
        _ => json_response(404, &json!([{"error": {"code": 404, "message": "not found", "status": "NOT_FOUND"}}])),
    }
}

pub fn sse_event(v: &Value) -> Bytes {
    Bytes::from(format!("data: {v}\r\n\r\n"))
}

pub(crate) fn full(text: impl Into<Bytes>) -> FakeBody {
    Full::new(text.into()).map_err(|never| match never {}).boxed()
}

pub(crate) fn json_response(status: u16, v: &Value) -> Response<FakeBody> {
    json_response_text(status, v.to_string())
}

fn json_response_text(status: u16, text: String) -> Response<FakeBody> {
    let mut r = Response::new(full(text));
    *r.status_mut() = StatusCode::from_u16(status).unwrap();
    r.headers_mut().insert("content-type", "application/json; charset=UTF-8".parse().unwrap());
    r
}

pub(crate) fn google_error(code: u16, status: &str, message: &str, details: Value) -> Response<FakeBody> {
    json_response(code, &json!({"error": {"code": code, "message": message, "status": status, "details": details}}))
}

fn invalid_key() -> Response<FakeBody> {
    google_error(
        400,
        "INVALID_ARGUMENT",
        "API key not valid. Please pass a valid API key.",
        json!([{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID", "domain": "googleapis.com",
                "metadata": {"service": "generativelanguage.googleapis.com"}}]),
    )
}

/// A streamed SSE response fed from a channel of capacity 1, so the producer only gets ahead of
/// the connection by one event.
fn stream_response() -> (mpsc::Sender<Result<Bytes, std::io::Error>>, Response<FakeBody>) {
    let (tx, rx) = mpsc::channel(1);
    let mut r = Response::new(ChannelBody { rx }.boxed());
    r.headers_mut().insert("content-type", "text/event-stream".parse().unwrap());
    (tx, r)
}

struct ChannelBody {
    rx: mpsc::Receiver<Result<Bytes, std::io::Error>>,
}

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = std::io::Error;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        self.rx.poll_recv(cx).map(|o| o.map(|r| r.map(Frame::data)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn get(fake: &FakeHandle, path: &str, key: &str) -> (StatusCode, Value) {
        let mut req = Request::new(Full::new(Bytes::new()));
        *req.uri_mut() = format!("{}{path}", fake.base_url()).parse().unwrap();
        req.headers_mut().insert("x-goog-api-key", key.parse().unwrap());
        match crate::client().request(req).await {
            Ok(res) => {
                let status = res.status();
                let body = res.into_body().collect().await.unwrap().to_bytes();
                (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
            }
            Err(_) => (StatusCode::BAD_GATEWAY, Value::Null),
        }
    }

    #[tokio::test]
    async fn unknown_paths_are_googles_404_and_models_answer() {
        let fake = FakeGemini::new().key("k", Script::Ok).start().await;
        assert_eq!(get(&fake, "/v1beta/interactions", "k").await.0, StatusCode::NOT_FOUND);
        assert_eq!(get(&fake, "/v1beta/files", "k").await.1, serde_json::json!({"files": []}), "the Files API");
        assert_eq!(get(&fake, "/v1beta/whatever/x", "k").await.0, StatusCode::NOT_FOUND);
        assert_eq!(get(&fake, "/images/cat.png", "k").await.0, StatusCode::NOT_FOUND, "images only when asked for");
        let (status, model) = get(&fake, "/v1beta/models/gemini-2.5-flash", "k").await;
        assert_eq!((status, model["name"].as_str()), (StatusCode::OK, Some("models/gemini-2.5-flash")));
        assert_eq!(get(&fake, "/v1beta/models", "k").await.0, StatusCode::OK);
        assert_eq!(get(&fake, "/v1beta/models", "unknown").await.0, StatusCode::BAD_REQUEST, "an unknown key");
    }

    #[tokio::test]
    #[should_panic(expected = "FakeGemini panicked while serving")]
    async fn a_panic_inside_the_fake_fails_the_test() {
        let fake = FakeGemini::new().key("k", Script::Panic).start().await;
        let _ = get(&fake, "/v1beta/models", "k").await;
        // Give the connection task a moment to be reaped by the accept loop.
        for _ in 0..100 {
            if !fake.shared.panics.lock().unwrap().is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        drop(fake);
    }
}
