//! Maps a client request to its route: `/health`, then authentication, then the Gemini-native or
//! OpenAI handlers, with errors in the route's own dialect.

use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use serde_json::json;

use crate::auth::{self, TokenSource};
use crate::body::{Body, json_response};
use crate::connection::{BodyBudget, Held};
use crate::dialect::{
    Call, anthropic, caches, files, gemini, interactions, openai, operations, passthrough, responses, vertex,
};
use crate::error::{ApiError, Dialect};
use crate::state::State;

/// A route after aliases are resolved.
#[derive(Debug, PartialEq, Eq)]
enum Route<'a> {
    Health,
    /// Gemini-native on an API version, with the rest of the path (`/models/...`).
    Native {
        version: &'static str,
        rest: &'a str,
    },
    /// `GET /v1/models[/{m}]`: Gemini or OpenAI format depending on how the token came.
    SharedModels {
        rest: &'a str,
    },
    OpenAi {
        rest: &'a str,
    },
    OpenAiPassthrough {
        rest: &'a str,
    },
    /// `/v1/messages[/count_tokens]`: Anthropic's Messages API.
    Anthropic {
        rest: &'a str,
    },
    /// `/vertex-express/v1beta/...`: Vertex AI Express keys only.
    Vertex {
        rest: &'a str,
    },
    /// A resource the pool binds to the key that created it, on an API version.
    Stateful {
        version: &'static str,
        resource: Stateful<'a>,
    },
    Unknown,
}

#[derive(Debug, PartialEq, Eq)]
enum Stateful<'a> {
    /// The Files API (upload, list, get, delete, download).
    Files(files::Target<'a>),
    /// Cached contents (create, list, get, patch, delete).
    Caches(caches::Target<'a>),
    /// Batches and long-running operations (get, list, cancel, delete).
    Operations(operations::Target<'a>),
    /// The Interactions API (create, get, resume, cancel, delete).
    Interactions(interactions::Target<'a>),
}

/// The stateful resource a path after the API version names, if any.
fn stateful(rest: &str) -> Option<Stateful<'_>> {
    match rest.strip_prefix("/files") {
        Some("") => return Some(Stateful::Files(files::Target::List)),
        Some(id) if id.starts_with('/') && id.len() > 1 => {
            let id = &id[1..];
            return Some(Stateful::Files(match id.strip_suffix(":download") {
                Some(id) => files::Target::Media(id),
                None => files::Target::File(id),
            }));
        }
        _ => {}
    }
    if let Some(target) = operation_target(rest) {
        return Some(Stateful::Operations(target));
    }
    if let Some(target) = interactions::parse(rest) {
        return Some(Stateful::Interactions(target));
    }
    match rest.strip_prefix("/cachedContents") {
        Some("") => Some(Stateful::Caches(caches::Target::Collection)),
        Some(id) if id.starts_with('/') && id.len() > 1 => Some(Stateful::Caches(caches::Target::Item(&id[1..]))),
        _ => None,
    }
}

/// The route of a path. `google_token`: the token came as `x-goog-api-key` or `?key=`, as the
/// Gemini SDKs send it; on bare `/v1/...`, shared with OpenAI's paths (`/v1/files`,
/// `/v1/batches`), that makes a stateful path Gemini's.
fn resolve(path: &str, google_token: bool) -> Route<'_> {
    if path == "/health" {
        return Route::Health;
    }
    let native = path
        .strip_prefix("/gemini")
        .filter(|p| p.starts_with("/v1") || p.starts_with("/upload/") || p.starts_with("/download/"))
        .unwrap_or(path);
    for version in ["v1beta", "v1"] {
        fn files<'p>(p: &'p str, version: &str) -> Option<&'p str> {
            p.strip_prefix(version).and_then(|p| p.strip_prefix("/files"))
        }
        let files = |p| files(p, version);
        if native.strip_prefix("/upload/").and_then(files) == Some("") {
            return Route::Stateful { version, resource: Stateful::Files(files::Target::Upload) };
        }
        if let Some(id) = native
            .strip_prefix("/download/")
            .and_then(files)
            .and_then(|r| r.strip_prefix('/'))
            .and_then(|r| r.strip_suffix(":download"))
        {
            return Route::Stateful { version, resource: Stateful::Files(files::Target::Download(id)) };
        }
    }
    if let Some(rest) = native.strip_prefix("/v1beta").filter(|r| r.is_empty() || r.starts_with('/')) {
        return match stateful(rest) {
            Some(resource) => Route::Stateful { version: "v1beta", resource },
            None => Route::Native { version: "v1beta", rest },
        };
    }
    if let Some(rest) = path.strip_prefix("/openai/v1").filter(|r| r.starts_with('/')) {
        return Route::OpenAiPassthrough { rest };
    }
    if let Some(rest) = path.strip_prefix("/vertex-express/v1beta").filter(|r| r.starts_with('/')) {
        return Route::Vertex { rest };
    }
    let via_gemini_alias = native.len() != path.len();
    if let Some(resource) = native.strip_prefix("/v1").filter(|_| via_gemini_alias || google_token).and_then(stateful) {
        return Route::Stateful { version: "v1", resource };
    }
    let v1 = path.strip_prefix("/hf").filter(|p| p.starts_with("/v1/")).unwrap_or(native);
    if let Some(rest) =
        v1.strip_prefix("/v1").filter(|r| !via_gemini_alias && (*r == "/messages" || r.starts_with("/messages/")))
    {
        return Route::Anthropic { rest };
    }
    if let Some(rest) = v1.strip_prefix("/v1").filter(|r| r.starts_with('/')) {
        // `/v1/models/{m}:{method}` is native (a bad name there is the native route's 400);
        // `/v1/models[/{m}]` is shared by both dialects.
        let parsed = gemini::parse(rest);
        let is_method = match &parsed {
            Some(Ok(gemini::Target::Method { .. })) => true,
            Some(Err(_)) => rest.contains(':'),
            _ => false,
        };
        return match () {
            _ if is_method || via_gemini_alias => Route::Native { version: "v1", rest },
            _ if parsed.is_some() => Route::SharedModels { rest },
            _ => Route::OpenAi { rest },
        };
    }
    Route::Unknown
}

/// `/batches[/{id}[:cancel]]`, `/operations/{id}`, `/models/{m}/operations/{id}` after the version.
fn operation_target(rest: &str) -> Option<operations::Target<'_>> {
    if rest == "/batches" {
        return Some(operations::Target::Batches);
    }
    if let Some(id) = rest.strip_prefix("/batches/").filter(|id| !id.is_empty() && !id.contains('/')) {
        return Some(match id.strip_suffix(":cancel") {
            Some(id) => operations::Target::Batch { id, cancel: true },
            None => operations::Target::Batch { id, cancel: false },
        });
    }
    let name = rest.strip_prefix('/')?;
    crate::affinity::operation_name(name).filter(|n| !n.starts_with("batches/")).map(operations::Target::Operation)
}

pub async fn handle(state: Arc<State>, req: Request<Incoming>) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_string();
    if path == "/health" {
        return json_response(StatusCode::OK, &json!({"status": "ok"}));
    }
    let token = auth::extract(&parts.headers, parts.uri.query());
    let source = token.as_ref().map(|(_, s)| *s);
    let google_token = matches!(source, Some(TokenSource::GoogHeader | TokenSource::Query));
    let route = resolve(&path, google_token);
    let dialect = match route {
        Route::Native { .. } | Route::Stateful { .. } | Route::Vertex { .. } => Dialect::Gemini,
        Route::SharedModels { .. } if google_token => Dialect::Gemini,
        Route::Anthropic { .. } => Dialect::Anthropic,
        Route::Unknown if !path.starts_with("/v1/") && !path.starts_with("/hf/") && !path.starts_with("/openai/") => {
            Dialect::Gemini
        }
        _ => Dialect::OpenAi,
    };
    // A resumable upload's later commands carry no token (the SDKs send none): the upload URL,
    // with its unguessable id, is the credential, as it is at Google.
    let upload_url = matches!(route, Route::Stateful { resource: Stateful::Files(files::Target::Upload), .. })
        && files::known_upload(&state, parts.uri.query());
    let version = match route {
        Route::Stateful { version, .. } | Route::Native { version, .. } => version,
        _ => "v1beta",
    };
    if !upload_url && let Err(e) = state.check_token(token.as_ref().map(|(t, _)| t.as_str())) {
        return e.into_response(dialect);
    }
    let presented = token.as_ref().map(|(t, _)| t.as_str()).unwrap_or("");
    let cfg = state.config.load();
    let rules = BodyRules {
        limit: cfg.server.max_body_bytes,
        budget: Some((&state.bodies, cfg.server.max_inflight_body_bytes)),
        progress: Some(std::time::Duration::from_secs(cfg.server.header_timeout_secs)),
    };
    drop(cfg);
    let result = async {
        let query = parts.uri.query();
        if upload_url {
            // An upload's bytes pass as they arrive, in bounded memory, up to Google's 2 GB cap.
            let stream = http_body_util::Limited::new(body, files::MAX_UPLOAD_BYTES)
                .map_err(|e| -> crate::body::BoxError { e })
                .boxed();
            let call = Call {
                version,
                method: &parts.method,
                headers: &parts.headers,
                query,
                body: Bytes::new(),
                token: presented,
                stream: Some(stream),
            };
            return files::handle(&state, files::Target::Upload, call).await;
        }
        let (body, _held) = read_body(&parts.headers, body, rules).await?;
        let call = Call {
            version,
            method: &parts.method,
            headers: &parts.headers,
            query,
            body: body.clone(),
            token: presented,
            stream: None,
        };
        match route {
            Route::Native { version, rest } => {
                let target = gemini::parse(rest).ok_or_else(|| not_found(&path))??;
                gemini::handle(&state, version, target, call).await
            }
            Route::Vertex { rest } => {
                let target = gemini::parse(rest).ok_or_else(|| not_found(&path))??;
                vertex::handle(&state, target, call).await
            }
            Route::SharedModels { rest } if dialect == Dialect::Gemini => {
                let target = gemini::parse(rest).ok_or_else(|| not_found(&path))??;
                gemini::handle(&state, "v1", target, call).await
            }
            Route::Stateful { resource, .. } => match resource {
                Stateful::Files(target) => files::handle(&state, target, call).await,
                Stateful::Caches(target) => caches::handle(&state, target, call).await,
                Stateful::Operations(target) => operations::handle(&state, target, call).await,
                Stateful::Interactions(target) => interactions::handle(&state, target, call).await,
            },
            Route::OpenAi { rest } if rest == "/responses" || rest.starts_with("/responses/") => {
                responses::handle(&state, rest, &parts.method, &parts.headers, body, presented).await
            }
            Route::SharedModels { rest } | Route::OpenAi { rest } => {
                openai::handle(&state, rest, &parts.method, &parts.headers, body, presented).await
            }
            Route::Anthropic { rest } => anthropic::handle(&state, rest, &parts.method, &parts.headers, body).await,
            Route::OpenAiPassthrough { rest } => {
                Ok(passthrough::passthrough(&state, rest, &parts.method, &parts.headers, query, body).await)
            }
            _ => Err(not_found(&path)),
        }
    }
    .await;
    result.unwrap_or_else(|e| e.into_response(dialect))
}

fn not_found(path: &str) -> ApiError {
    ApiError::NotFound(format!("no route for {path}"))
}

/// How a request body may be read.
pub struct BodyRules<'a> {
    /// Larger bodies get 413 (`server.max_body_bytes`).
    pub limit: u64,
    /// Bodies held at once, all requests together (`server.max_inflight_body_bytes`).
    pub budget: Option<(&'a BodyBudget, u64)>,
    /// A body that makes no progress this long is cut (`server.header_timeout_secs`).
    pub progress: Option<std::time::Duration>,
}

/// Reads a request body within `rules`; a larger one is refused with 413 before it is read when
/// its length is declared. The bytes held count against the shared budget until the returned
/// `Held` is dropped; past the budget the client gets 503 with `Retry-After`.
pub async fn read_body<'a>(
    headers: &http::HeaderMap,
    mut body: Incoming,
    rules: BodyRules<'a>,
) -> Result<(Bytes, Option<Held<'a>>), ApiError> {
    let limit = rules.limit;
    let declared =
        headers.get(http::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(ApiError::BodyTooLarge { limit });
    }
    let busy = || ApiError::NoKey {
        status: StatusCode::SERVICE_UNAVAILABLE,
        message: "the gateway holds as many request bodies as it may (server.max_inflight_body_bytes); retry shortly"
            .into(),
        retry_after_secs: Some(1),
    };
    let mut held = None;
    if let (Some((budget, max)), Some(n)) = (rules.budget, declared)
        && !budget.take(&mut held, n, max)
    {
        return Err(busy());
    }
    let mut buf: Vec<u8> = Vec::with_capacity(declared.unwrap_or(0).min(limit) as usize);
    loop {
        let frame = match rules.progress {
            Some(d) => tokio::time::timeout(d, body.frame()).await.map_err(|_| ApiError::BodyStalled(d.as_secs()))?,
            None => body.frame().await,
        };
        let Some(frame) = frame else { break };
        let frame = frame.map_err(|e| ApiError::ClientBody(e.to_string()))?;
        let Ok(data) = frame.into_data() else { continue };
        if buf.len() as u64 + data.len() as u64 > limit {
            return Err(ApiError::BodyTooLarge { limit });
        }
        let beyond_declared = (buf.len() + data.len()) as u64 > declared.unwrap_or(0);
        if let Some((budget, max)) = rules.budget
            && beyond_declared
            && !budget.take(&mut held, data.len() as u64, max)
        {
            return Err(busy());
        }
        buf.extend_from_slice(&data);
    }
    Ok((Bytes::from(buf), held))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A route as a Bearer-token client reaches it.
    fn resolve_b(path: &str) -> Route<'_> {
        resolve(path, false)
    }

    #[test]
    fn resolves_aliases() {
        assert_eq!(resolve_b("/health"), Route::Health);
        assert_eq!(resolve_b("/v1beta/models"), Route::Native { version: "v1beta", rest: "/models" });
        assert_eq!(
            resolve_b("/gemini/v1beta/models/m:generateContent"),
            Route::Native { version: "v1beta", rest: "/models/m:generateContent" }
        );
        assert_eq!(
            resolve_b("/v1/models/m:generateContent"),
            Route::Native { version: "v1", rest: "/models/m:generateContent" }
        );
        assert_eq!(resolve_b("/gemini/v1/models"), Route::Native { version: "v1", rest: "/models" });
        assert_eq!(resolve_b("/v1/models"), Route::SharedModels { rest: "/models" });
        assert_eq!(resolve_b("/hf/v1/models/x"), Route::SharedModels { rest: "/models/x" });
        assert_eq!(resolve_b("/v1/chat/completions"), Route::OpenAi { rest: "/chat/completions" });
        assert_eq!(resolve_b("/v1/messages"), Route::Anthropic { rest: "/messages" });
        assert_eq!(resolve_b("/v1/messages/count_tokens"), Route::Anthropic { rest: "/messages/count_tokens" });
        assert_eq!(
            resolve_b("/hf/v1/messages"),
            Route::Anthropic { rest: "/messages" },
            "/hf/v1 aliases every /v1 route"
        );
        assert!(matches!(resolve_b("/gemini/v1/messages"), Route::Native { .. }), "the Gemini alias stays Gemini's");
        assert_eq!(resolve_b("/hf/v1/embeddings"), Route::OpenAi { rest: "/embeddings" });
        assert_eq!(resolve_b("/openai/v1/chat/completions"), Route::OpenAiPassthrough { rest: "/chat/completions" });
        assert_eq!(
            resolve_b("/vertex-express/v1beta/models/m:generateContent"),
            Route::Vertex { rest: "/models/m:generateContent" }
        );
        assert_eq!(resolve_b("/v1betax"), Route::Unknown);
        assert_eq!(resolve_b("/"), Route::Unknown);
    }

    #[test]
    fn resolves_the_stateful_routes_on_every_spelling() {
        use crate::dialect::{
            caches::Target as C, files::Target as F, interactions::Target as I, operations::Target as O,
        };
        let at = |version, resource| Route::Stateful { version, resource };
        for (prefix, version) in [("", "v1beta"), ("/gemini", "v1beta"), ("", "v1"), ("/gemini", "v1")] {
            // A route borrows its path: each test path lives for the test (leaked, a few bytes).
            let r = |p: &str| resolve(String::leak(format!("{prefix}{}", p.replace("VER", version))), true);
            let at = |resource| at(version, resource);
            assert_eq!(r("/upload/VER/files"), at(Stateful::Files(F::Upload)));
            assert_eq!(r("/download/VER/files/abc:download"), at(Stateful::Files(F::Download("abc"))));
            assert_eq!(r("/VER/files"), at(Stateful::Files(F::List)));
            assert_eq!(r("/VER/files/abc"), at(Stateful::Files(F::File("abc"))));
            assert_eq!(r("/VER/files/abc:download"), at(Stateful::Files(F::Media("abc"))));
            assert_eq!(r("/VER/cachedContents"), at(Stateful::Caches(C::Collection)));
            assert_eq!(r("/VER/cachedContents/c1"), at(Stateful::Caches(C::Item("c1"))));
            assert_eq!(r("/VER/batches"), at(Stateful::Operations(O::Batches)));
            assert_eq!(r("/VER/batches/b1:cancel"), at(Stateful::Operations(O::Batch { id: "b1", cancel: true })));
            assert_eq!(
                r("/VER/models/veo/operations/o1"),
                at(Stateful::Operations(O::Operation("models/veo/operations/o1".into())))
            );
            assert_eq!(r("/VER/operations/o1"), at(Stateful::Operations(O::Operation("operations/o1".into()))));
            assert_eq!(r("/VER/interactions"), at(Stateful::Interactions(I::Create)));
            assert_eq!(r("/VER/interactions/v1_i"), at(Stateful::Interactions(I::Item("v1_i"))));
            assert_eq!(r("/VER/interactions/v1_i/cancel"), at(Stateful::Interactions(I::Cancel("v1_i"))));
        }
        // Not resources: a model path, and a batch path with more segments.
        assert!(matches!(resolve_b("/v1beta/models/m:batchGenerateContent"), Route::Native { .. }));
        assert!(matches!(resolve_b("/v1beta/batches/a/b"), Route::Native { .. }));
        // Bare /v1 shares `files` and `batches` with OpenAI's paths: a Bearer token means OpenAI's.
        assert_eq!(resolve("/v1/files", false), Route::OpenAi { rest: "/files" });
        assert_eq!(resolve("/v1/batches", false), Route::OpenAi { rest: "/batches" });
        assert_eq!(resolve("/hf/v1/files", true), Route::OpenAi { rest: "/files" });
        assert_eq!(resolve("/gemini/v1/files", false), at("v1", Stateful::Files(F::List)));
        assert_eq!(resolve("/upload/v1/files", false), at("v1", Stateful::Files(F::Upload)));
    }
}
