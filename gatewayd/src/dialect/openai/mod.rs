//! OpenAI-compatible routes (`/v1/...`, `/hf/v1/...`): the route table, and the renderers that
//! show chat completions, embeddings, images and speech (translated to and from Gemini) in
//! OpenAI's shape. The translations themselves live by noun in `chat/`, `embeddings`, `images`
//! and `speech`.

pub(crate) mod bad_request;
pub mod chat;
pub mod embeddings;
pub mod images;
pub mod speech;

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode, header};
use serde_json::Value;

use self::chat::{ChunkTranslator, Options, Translate};
use crate::body::Body;
use crate::config::Config;
use crate::dialect::wire::GenerateResponse;
use crate::error::{ApiError, Dialect};
use crate::models::{self, ModelName};
use crate::outcome::Expect;
use crate::proxy::{self, KeyChoice, Passthrough, Plan, Render, Served, forwarded_headers};
use crate::state::State;
use crate::upstream::{KeyPlacement, OutBody, Outgoing};
use crate::usage::Usage;
use crate::{catalog, image_fetch};

pub async fn handle(
    state: &Arc<State>,
    rest: &str,
    method: &Method,
    headers: &HeaderMap,
    body: Bytes,
    token: &str,
) -> Result<Response<Body>, ApiError> {
    match (method, rest) {
        (&Method::POST, "/chat/completions") => chat(state, headers, body, token).await,
        (&Method::POST, "/embeddings") => embeddings(state, headers, body).await,
        (&Method::POST, "/images/generations") => generate_images(state, headers, body).await,
        (&Method::POST, "/audio/speech") => speech(state, headers, body).await,
        (&Method::GET, "/models") => {
            let list = catalog::upstream_models(state).await?;
            let cfg = state.config.load();
            Ok(json_ok(&catalog::models_list(&list, &cfg.models)))
        }
        (&Method::GET, r) if r.starts_with("/models/") => {
            let id = models::bare(&r["/models/".len()..]).to_string();
            let list = catalog::upstream_models(state).await?;
            let cfg = state.config.load();
            let all = catalog::models_list(&list, &cfg.models);
            match all["data"].as_array().into_iter().flatten().find(|m| m["id"] == id.as_str()) {
                Some(m) => Ok(json_ok(m)),
                None => Err(ApiError::NotFound(format!("The model '{id}' does not exist"))),
            }
        }
        (_, "/chat/completions" | "/embeddings" | "/models" | "/images/generations" | "/audio/speech") => {
            Err(ApiError::MethodNotAllowed(method.clone()))
        }
        _ => Err(ApiError::NotFound(format!("no route for /v1{rest}"))),
    }
}

fn json_ok(v: &Value) -> Response<Body> {
    crate::body::json_response(StatusCode::OK, v)
}

pub(crate) fn parse_json(body: &Bytes) -> Result<Value, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::BadRequest(format!("body: not valid JSON: {e}")))
}

fn created() -> i64 {
    chrono::Utc::now().timestamp()
}

async fn chat(state: &Arc<State>, headers: &HeaderMap, body: Bytes, token: &str) -> Result<Response<Body>, ApiError> {
    // Each stage frees what it read before the next one builds, so a large body is held at most
    // twice (raw and parsed, parsed and translated, translated and serialized), never all at once
    // for the whole request.
    let req = parse_json(&body)?;
    let size_hint = body.len();
    drop(body);
    let images = image_fetch::fetch_map(state, chat::remote_image_urls(&req)).await?;
    let cfg = state.config.load();
    let opts = Options {
        aliases: Some(&cfg.models.aliases),
        search_models: &cfg.models.search_models,
        thinking_budget: Some(&cfg.models.thinking_budget),
        safety: &cfg.models.safety_settings,
        images: Some(&images),
    };
    let chat = chat::chat_request(&req, &opts).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    drop(req);
    refuse_hidden(&cfg, &chat.upstream_model, &chat.model)?;
    let method = if chat.stream { "streamGenerateContent?alt=sse" } else { "generateContent" };
    let (mut plan, out) =
        gemini_call("chat.completions", &chat.upstream_model, method, headers, (&chat.body, size_hint), chat.stream);
    // A cached content (Google's `extra_body.google.cached_content`) lives on the key that made it.
    if let Some(cache) = &chat.body.cached_content
        && let Some(key) = state.affinity.resolve(
            std::slice::from_ref(cache),
            &crate::affinity::Owner::of_token(token),
            state.now(),
        )?
    {
        plan.keys = crate::dialect::owned::pinned(state, cache, key)?;
    }
    drop(chat.body);
    let render = Chat { model: chat.model, include_usage: chat.include_usage };
    Ok(proxy::serve(state, plan, out, render).await)
}

/// Chat completions as OpenAI clients read them.
struct Chat {
    model: String,
    include_usage: bool,
}

impl Render for Chat {
    type Stream = Translate;

    fn whole(self, served: Served) -> (Response<Body>, Option<Usage>) {
        // The attempt loop already judged the body (a 200 that is not an answer is retried), so a
        // body that still does not read is answered as an empty completion.
        let gemini: GenerateResponse = serde_json::from_slice(&served.body).unwrap_or_default();
        let usage = gemini.usage();
        (json_ok(&chat::chat_response(&gemini, &served.body, &self.model, created())), usage)
    }

    fn stream(self, _upstream: &HeaderMap, _key_id: i64) -> (Translate, HeaderMap) {
        let translate = Translate::new(ChunkTranslator::new(&self.model, created(), self.include_usage));
        (translate, event_stream_headers())
    }

    fn error(&self, error: ApiError) -> Response<Body> {
        error.into_response(Dialect::OpenAi)
    }
}

fn event_stream_headers() -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers
}

fn refuse_hidden(cfg: &Config, upstream_model: &ModelName, requested: &str) -> Result<(), ApiError> {
    match models::is_hidden(&cfg.models, upstream_model.as_str()) {
        true => Err(ApiError::NotFound(format!("The model '{requested}' does not exist"))),
        false => Ok(()),
    }
}

/// A translated request to a Gemini method (of every translating dialect); a generateContent
/// answer must carry content.
pub(crate) fn gemini_call(
    route: &'static str,
    model: &ModelName,
    method: &str,
    headers: &HeaderMap,
    (body, size_hint): (&impl serde::Serialize, usize),
    stream: bool,
) -> (Plan, Outgoing) {
    let plan = Plan {
        route: route.into(),
        model: Some(model.to_string()),
        stream,
        expect: if method == "generateContent" { Expect::Content } else { Expect::Json },
        keys: KeyChoice::Any,
    };
    let out = Outgoing {
        method: Method::POST,
        path_and_query: format!("/v1beta/models/{model}:{method}"),
        headers: json_headers(headers),
        body: OutBody::Bytes(Bytes::from(to_json(body, size_hint))),
        placement: KeyPlacement::GoogHeader,
    };
    (plan, out)
}

/// Serializes a translated body into a buffer of about the client's body size (a translated
/// body is about as large as the one it came from), so a large body is written once, without the
/// doubling copies where old and new buffers are both resident.
fn to_json(body: &impl serde::Serialize, size_hint: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(size_hint + 1024);
    serde_json::to_writer(&mut out, body).map(|_| out).unwrap_or_default()
}

fn json_headers(client: &HeaderMap) -> HeaderMap {
    let mut h = forwarded_headers(client);
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h.remove(header::ACCEPT);
    h
}

async fn embeddings(state: &Arc<State>, headers: &HeaderMap, body: Bytes) -> Result<Response<Body>, ApiError> {
    let req = parse_json(&body)?;
    let cfg = state.config.load();
    let emb =
        embeddings::embeddings_request(&req, &cfg.models.aliases).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    refuse_hidden(&state.config.load(), &emb.upstream_model, &emb.model)?;
    let (plan, out) =
        gemini_call("embeddings", &emb.upstream_model, "batchEmbedContents", headers, (&emb.body, 0), false);
    Ok(proxy::serve(state, plan, out, Embeddings(emb)).await)
}

async fn generate_images(state: &Arc<State>, headers: &HeaderMap, body: Bytes) -> Result<Response<Body>, ApiError> {
    let req = parse_json(&body)?;
    let cfg = state.config.load();
    let images = images::images_request(&req, &cfg.models.aliases).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    refuse_hidden(&cfg, &images.upstream_model, &images.model)?;
    let (plan, out) =
        gemini_call("images.generations", &images.upstream_model, images.method(), headers, (&images.body, 0), false);
    drop(cfg);
    Ok(proxy::serve(state, plan, out, Images { imagen: images.imagen }).await)
}

/// Generated images as OpenAI clients read them.
struct Images {
    imagen: bool,
}

impl Render for Images {
    type Stream = Passthrough;

    fn whole(self, served: Served) -> (Response<Body>, Option<Usage>) {
        let upstream: Value = serde_json::from_slice(&served.body).unwrap_or(Value::Null);
        let usage = crate::usage::usage_of_body(&served.body);
        match images::images_response(&upstream, self.imagen, created()) {
            Some(answer) => (json_ok(&answer), usage),
            None => {
                let e = ApiError::BadRequest(
                    "no image was generated: Google's safety filters declined the prompt or every image".into(),
                );
                (e.into_response(Dialect::OpenAi), usage)
            }
        }
    }

    fn stream(self, upstream: &HeaderMap, _key_id: i64) -> (Passthrough, HeaderMap) {
        (Passthrough::new(false), upstream.clone())
    }

    fn error(&self, error: ApiError) -> Response<Body> {
        error.into_response(Dialect::OpenAi)
    }
}

async fn speech(state: &Arc<State>, headers: &HeaderMap, body: Bytes) -> Result<Response<Body>, ApiError> {
    let req = parse_json(&body)?;
    let cfg = state.config.load();
    let speech = speech::speech_request(&req, &cfg.models.aliases).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    refuse_hidden(&cfg, &speech.upstream_model, &speech.model)?;
    let (plan, out) =
        gemini_call("audio.speech", &speech.upstream_model, "generateContent", headers, (&speech.body, 0), false);
    drop(cfg);
    Ok(proxy::serve(state, plan, out, Speech { format: speech.format }).await)
}

/// Speech as OpenAI clients read it: the audio bytes, WAV or raw PCM.
struct Speech {
    format: speech::Format,
}

impl Render for Speech {
    type Stream = Passthrough;

    fn whole(self, served: Served) -> (Response<Body>, Option<Usage>) {
        let upstream: Value = serde_json::from_slice(&served.body).unwrap_or(Value::Null);
        let usage = crate::usage::usage_of_body(&served.body);
        let Some((pcm, rate)) = speech::pcm_of(&upstream) else {
            let e = ApiError::BadGateway(
                "the model answered without audio: is it a TTS model (e.g. gemini-2.5-flash-preview-tts)?".into(),
            );
            return (e.into_response(Dialect::OpenAi), usage);
        };
        let bytes = match self.format {
            speech::Format::Wav => speech::wav(&pcm, rate),
            speech::Format::Pcm => pcm,
        };
        let mut res = Response::new(crate::body::full(bytes));
        res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(self.format.content_type()));
        (res, usage)
    }

    fn stream(self, upstream: &HeaderMap, _key_id: i64) -> (Passthrough, HeaderMap) {
        (Passthrough::new(false), upstream.clone())
    }

    fn error(&self, error: ApiError) -> Response<Body> {
        error.into_response(Dialect::OpenAi)
    }
}

/// Embeddings as OpenAI clients read them.
struct Embeddings(embeddings::EmbeddingsRequest);

impl Render for Embeddings {
    type Stream = Passthrough;

    fn whole(self, served: Served) -> (Response<Body>, Option<Usage>) {
        let gemini: Value = serde_json::from_slice(&served.body).unwrap_or(Value::Null);
        let usage = Usage { prompt: embeddings::estimate_tokens(&self.0.inputs), completion: 0 };
        (json_ok(&embeddings::embeddings_response(&gemini, &self.0)), Some(usage))
    }

    /// Never called: the plan asks for no stream.
    fn stream(self, upstream: &HeaderMap, _key_id: i64) -> (Passthrough, HeaderMap) {
        (Passthrough::new(false), upstream.clone())
    }

    fn error(&self, error: ApiError) -> Response<Body> {
        error.into_response(Dialect::OpenAi)
    }
}
