//! FakeGemini's Files API, strict like Google's: the resumable upload protocol (start, upload,
//! finalize, query, with offsets) on an upload URL of the fake's own, and files that only the
//! key that uploaded them can see (another key gets Google's 403 wording).

use std::collections::HashMap;
use std::sync::Mutex;

use bytes::Bytes;
use http::{HeaderMap, Method, Response, StatusCode};
use serde_json::{Value, json};

use crate::fake::{FakeBody, full, google_error, json_response};

#[derive(Default)]
pub struct Files {
    inner: Mutex<Inner>,
    /// The most files a list page holds (Google's cap is 100); tests lower it to see paging.
    pub page_cap: std::sync::atomic::AtomicUsize,
}

#[derive(Default)]
struct Inner {
    next: u64,
    /// upload id -> the session.
    sessions: HashMap<String, Session>,
    /// file id -> the file.
    files: HashMap<String, File>,
}

struct Session {
    key: String,
    display_name: String,
    mime: String,
    declared: Option<u64>,
    data: Vec<u8>,
}

struct File {
    key: String,
    meta: Value,
    data: Vec<u8>,
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

fn denied(id: &str) -> Response<FakeBody> {
    google_error(
        403,
        "PERMISSION_DENIED",
        &format!("You do not have permission to access the File {id} or it may not exist."),
        json!([]),
    )
}

impl Files {
    /// Whether `key` may use the file a `fileUri` names (full URL or `files/{id}`).
    pub fn visible(&self, key: &str, uri: &str) -> bool {
        let id = uri.rsplit("files/").next().unwrap_or(uri);
        self.inner.lock().unwrap().files.get(id).is_some_and(|f| f.key == key)
    }

    /// A file the API generated (a Veo video) for `key`, downloadable like an uploaded one.
    pub fn add_generated(&self, key: &str, id: &str, mime: &str, data: &[u8]) {
        let meta = json!({"name": format!("files/{id}"), "mimeType": mime, "sizeBytes": data.len().to_string(),
            "uri": format!("https://generativelanguage.googleapis.com/v1beta/files/{id}"),
            "downloadUri": format!("https://generativelanguage.googleapis.com/v1beta/files/{id}:download?alt=media"),
            "source": "GENERATED", "state": "ACTIVE"});
        let file = File { key: key.to_string(), meta, data: data.to_vec() };
        self.inner.lock().unwrap().files.entry(id.to_string()).or_insert(file);
    }

    pub fn count(&self) -> usize {
        self.inner.lock().unwrap().files.len()
    }

    /// Answers a Files API request, or `None` when the path is not one.
    pub fn answer(&self, key: &str, parts: &http::request::Parts, body: &Bytes) -> Option<Response<FakeBody>> {
        let (method, path, query, headers) = (&parts.method, parts.uri.path(), parts.uri.query(), &parts.headers);
        let host = header(headers, "host").unwrap_or("127.0.0.1");
        let mut inner = self.inner.lock().unwrap();
        if path == "/upload/v1beta/files" {
            let upload_id = query.unwrap_or("").split('&').find_map(|p| p.strip_prefix("upload_id=")).map(String::from);
            let command = header(headers, "x-goog-upload-command").unwrap_or("");
            return Some(match upload_id {
                None if command == "start" && header(headers, "x-goog-upload-protocol") == Some("resumable") => {
                    let meta: Value = serde_json::from_slice(body).unwrap_or(json!({}));
                    inner.next += 1;
                    let id = format!("up{}", inner.next);
                    inner.sessions.insert(
                        id.clone(),
                        Session {
                            key: key.to_string(),
                            display_name: meta["file"]["display_name"]
                                .as_str()
                                .or(meta["file"]["displayName"].as_str())
                                .unwrap_or("")
                                .to_string(),
                            mime: header(headers, "x-goog-upload-header-content-type")
                                .unwrap_or("application/octet-stream")
                                .to_string(),
                            declared: header(headers, "x-goog-upload-header-content-length")
                                .and_then(|v| v.parse().ok()),
                            data: Vec::new(),
                        },
                    );
                    let mut r = Response::new(full(Bytes::new()));
                    let url = format!("http://{host}/upload/v1beta/files?upload_id={id}&upload_protocol=resumable");
                    r.headers_mut().insert("x-goog-upload-url", url.parse().unwrap());
                    r.headers_mut().insert("x-goog-upload-status", "active".parse().unwrap());
                    r
                }
                None => google_error(400, "INVALID_ARGUMENT", "Upload has already been terminated.", json!([])),
                Some(id) => self.chunk(&mut inner, key, &id, headers, body),
            });
        }
        // A download, as `/download/v1beta/files/{id}:download` or `/v1beta/files/{id}:download`.
        let download = path.strip_prefix("/download/v1beta/files/").or_else(|| path.strip_prefix("/v1beta/files/"));
        if let Some(id) = download.and_then(|rest| rest.strip_suffix(":download")) {
            return Some(match inner.files.get(id) {
                Some(f) if f.key == key => Response::new(full(f.data.clone())),
                _ => denied(id),
            });
        }
        let rest = path.strip_prefix("/v1beta/files")?;
        if rest.is_empty() && *method == Method::GET {
            // Pages in name order; the page token is the index the next page starts at.
            let mut mine: Vec<&File> = inner.files.values().filter(|f| f.key == key).collect();
            mine.sort_by(|a, b| a.meta["name"].as_str().cmp(&b.meta["name"].as_str()));
            let param = |name: &str| {
                query.unwrap_or("").split('&').find_map(|p| p.strip_prefix(name)).and_then(|v| v.parse::<usize>().ok())
            };
            let cap = match self.page_cap.load(std::sync::atomic::Ordering::Relaxed) {
                0 => 100,
                n => n,
            };
            let size = param("pageSize=").unwrap_or(10).clamp(1, cap);
            let from = param("pageToken=").unwrap_or(0).min(mine.len());
            let to = (from + size).min(mine.len());
            let files: Vec<&Value> = mine[from..to].iter().map(|f| &f.meta).collect();
            let mut page = json!({ "files": files });
            if to < mine.len() {
                page["nextPageToken"] = json!(to.to_string());
            }
            return Some(json_response(200, &page));
        }
        let id = rest.strip_prefix('/')?;
        Some(match (method, inner.files.get(id)) {
            (&Method::GET, Some(f)) if f.key == key => json_response(200, &f.meta),
            (&Method::DELETE, Some(f)) if f.key == key => {
                inner.files.remove(id);
                json_response(200, &json!({}))
            }
            _ => denied(id),
        })
    }

    fn chunk(&self, inner: &mut Inner, key: &str, id: &str, headers: &HeaderMap, body: &Bytes) -> Response<FakeBody> {
        let Some(session) = inner.sessions.get_mut(id) else {
            return google_error(404, "NOT_FOUND", "No such upload.", json!([]));
        };
        if session.key != key {
            return google_error(403, "PERMISSION_DENIED", "The upload belongs to another caller.", json!([]));
        }
        let commands = header(headers, "x-goog-upload-command").unwrap_or("");
        let status = |r: &mut Response<FakeBody>, s: &str| {
            r.headers_mut().insert("x-goog-upload-status", s.parse().unwrap());
        };
        if commands.split(',').any(|c| c.trim() == "query") {
            let mut r = Response::new(full(Bytes::new()));
            status(&mut r, "active");
            r.headers_mut().insert("x-goog-upload-size-received", session.data.len().to_string().parse().unwrap());
            return r;
        }
        let offset: Option<u64> = header(headers, "x-goog-upload-offset").and_then(|v| v.parse().ok());
        if offset != Some(session.data.len() as u64) {
            return google_error(400, "INVALID_ARGUMENT", "Upload offset does not match.", json!([]));
        }
        session.data.extend_from_slice(body);
        if !commands.split(',').any(|c| c.trim() == "finalize") {
            let mut r = Response::new(full(Bytes::new()));
            status(&mut r, "active");
            return r;
        }
        let session = inner.sessions.remove(id).unwrap();
        if session.declared.is_some_and(|d| d != session.data.len() as u64) {
            return google_error(400, "INVALID_ARGUMENT", "Upload size does not match.", json!([]));
        }
        inner.next += 1;
        let file_id = format!("file{}", inner.next);
        let meta = json!({
            "name": format!("files/{file_id}"),
            "displayName": session.display_name,
            "mimeType": session.mime,
            "sizeBytes": session.data.len().to_string(),
            "uri": format!("https://generativelanguage.googleapis.com/v1beta/files/{file_id}"),
            "state": "ACTIVE",
            "expirationTime": "2099-01-01T00:00:00Z",
        });
        inner.files.insert(file_id, File { key: key.to_string(), meta: meta.clone(), data: session.data });
        let mut r = json_response(200, &json!({ "file": meta }));
        status(&mut r, "final");
        *r.status_mut() = StatusCode::OK;
        r
    }
}
