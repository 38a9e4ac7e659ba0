//! PURE: an OpenAI chat-completions request → a Gemini generateContent body (gemini-api.md's
//! mapping). Nothing is lost silently: a field that cannot be translated is refused with its name.

use std::collections::{BTreeMap, HashMap};

use base64::prelude::{BASE64_STANDARD, Engine as _};
use serde_json::{Map, Value, json};

use crate::dialect::openai::bad_request::{BadRequest, bad, checked_model};
use crate::dialect::schema::tool_parameters;
use crate::dialect::signature::signature_from_id;
use crate::dialect::wire::{
    Empty, FunctionCallingConfig, FunctionDeclaration, GenerateRequest, GenerationConfig, Part, Role,
    SystemInstruction, ThinkingConfig, Tool, ToolConfig,
};
use crate::models::ModelName;

/// What the request translation needs from configuration and from the gateway's image fetches.
#[derive(Debug, Default)]
pub struct Options<'a> {
    /// `models.aliases`.
    pub aliases: Option<&'a BTreeMap<String, String>>,
    pub search_models: &'a [String],
    pub thinking_budget: Option<&'a BTreeMap<String, i64>>,
    /// `passthrough` or a threshold for every category.
    pub safety: &'a str,
    /// http(s) image URLs already fetched by the gateway: url → (mime type, base64 data).
    pub images: Option<&'a HashMap<String, (String, String)>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ChatRequest {
    /// The model as the client named it (echoed back).
    pub model: String,
    /// The Gemini model to call.
    pub upstream_model: ModelName,
    pub stream: bool,
    pub include_usage: bool,
    /// The generateContent body.
    pub body: GenerateRequest,
}

/// The http(s) image URLs a request refers to, for the gateway to fetch before translating.
pub fn remote_image_urls(req: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for m in req.get("messages").and_then(Value::as_array).into_iter().flatten() {
        for part in m.get("content").and_then(Value::as_array).into_iter().flatten() {
            if let Some(url) = image_url(part)
                && (url.starts_with("http://") || url.starts_with("https://"))
                && !out.iter().any(|u| u == url)
            {
                out.push(url.to_string());
            }
        }
    }
    out
}

fn image_url(part: &Value) -> Option<&str> {
    if part.get("type").and_then(Value::as_str) != Some("image_url") {
        return None;
    }
    let iu = part.get("image_url")?;
    iu.as_str().or_else(|| iu.get("url").and_then(Value::as_str))
}

pub fn chat_request(req: &Value, opts: &Options) -> Result<ChatRequest, BadRequest> {
    let obj = req.as_object().ok_or_else(|| bad("body", "must be a JSON object"))?;
    let (model, mut upstream_model) = checked_model(obj)?;
    if let Some(aliases) = opts.aliases {
        upstream_model = crate::models::aliased(aliases, upstream_model);
    }
    let mut body = GenerateRequest::default();
    if let Some(base) = crate::models::search_base(upstream_model.as_str(), opts.search_models) {
        upstream_model = ModelName::parse(base).map_err(|e| bad("model", e.to_string()))?;
        body.tools.push(Tool::GoogleSearch(Empty {}));
    }
    let stream = match obj.get("stream") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(bad("stream", "must be a boolean")),
    };
    let include_usage = req.pointer("/stream_options/include_usage").and_then(Value::as_bool).unwrap_or(false);
    let messages = obj
        .get("messages")
        .and_then(Value::as_array)
        .filter(|m| !m.is_empty())
        .ok_or_else(|| bad("messages", "must be a non-empty array"))?;
    let system = convert_messages(messages, opts, &mut body)?;
    if !system.is_empty() {
        body.system_instruction = Some(SystemInstruction { parts: system });
    }
    if let Some(declared) = obj.get("tools").filter(|t| !t.is_null()) {
        let declarations = function_declarations(declared)?;
        if !declarations.is_empty() {
            body.tools.push(Tool::FunctionDeclarations(declarations));
        }
    }
    if let Some(choice) = obj.get("tool_choice").filter(|t| !t.is_null()) {
        body.tool_config = Some(ToolConfig { function_calling_config: tool_choice(choice)? });
    }
    body.generation_config = generation_config(obj, upstream_model.as_str(), opts)?;
    google_extension(obj, &mut body)?;
    body.finish_for(upstream_model.as_str(), opts.safety);
    Ok(ChatRequest { model, upstream_model, stream, include_usage, body })
}

/// Google's own extension of the chat API, as its compatibility layer takes it: `google` (what
/// `extra_body={"google": …}` puts in the body) or `extra_body.google`, with `thinking_config`,
/// `cached_content` and `safety_settings` in Gemini's terms. They win over what the gateway
/// would otherwise set.
fn google_extension(obj: &Map<String, Value>, body: &mut GenerateRequest) -> Result<(), BadRequest> {
    let Some(g) = obj.get("google").or_else(|| obj.get("extra_body").and_then(|e| e.get("google"))) else {
        return Ok(());
    };
    if let Some(tc) = g.get("thinking_config").filter(|t| !t.is_null()) {
        let budget = match tc.get("thinking_budget") {
            None | Some(Value::Null) => -1,
            Some(v) => v.as_i64().ok_or_else(|| bad("google.thinking_config.thinking_budget", "must be an integer"))?,
        };
        let include = tc.get("include_thoughts").and_then(Value::as_bool);
        body.generation_config.thinking_config =
            Some(ThinkingConfig { thinking_budget: budget, include_thoughts: include });
    }
    if let Some(cc) = g.get("cached_content").filter(|c| !c.is_null()) {
        let name = cc
            .as_str()
            .and_then(crate::affinity::cache_name)
            .ok_or_else(|| bad("google.cached_content", "must name a cached content: cachedContents/{id}"))?;
        body.cached_content = Some(name);
    }
    if let Some(list) = g.get("safety_settings").filter(|s| !s.is_null()) {
        let list = list.as_array().ok_or_else(|| bad("google.safety_settings", "must be an array"))?;
        for (i, s) in list.iter().enumerate() {
            let field = |f: &str| {
                s.get(f)
                    .and_then(Value::as_str)
                    .map(String::from)
                    .ok_or_else(|| bad(format!("google.safety_settings[{i}].{f}"), "required"))
            };
            body.safety_settings.push(crate::dialect::wire::SafetySetting {
                category: field("category")?,
                threshold: field("threshold")?,
            });
        }
    }
    Ok(())
}

/// The messages as Gemini turns in `body`; returns the system parts.
fn convert_messages(messages: &[Value], opts: &Options, body: &mut GenerateRequest) -> Result<Vec<Part>, BadRequest> {
    let mut system: Vec<Part> = Vec::new();
    let mut call_names: HashMap<String, String> = HashMap::new();
    for (i, m) in messages.iter().enumerate() {
        let field = format!("messages[{i}]");
        let role = m.get("role").and_then(Value::as_str).ok_or_else(|| bad(format!("{field}.role"), "required"))?;
        let content = m.get("content").unwrap_or(&Value::Null);
        match role {
            "system" | "developer" => system.extend(content_parts(content, &format!("{field}.content"), opts)?),
            "user" => {
                let parts = content_parts(content, &format!("{field}.content"), opts)?;
                if parts.is_empty() {
                    return Err(bad(format!("{field}.content"), "must not be empty"));
                }
                body.push_turn(Role::User, parts);
            }
            "assistant" => {
                let mut parts = content_parts(content, &format!("{field}.content"), opts)?;
                for (j, call) in m.get("tool_calls").and_then(Value::as_array).into_iter().flatten().enumerate() {
                    let f = format!("{field}.tool_calls[{j}]");
                    let name = call
                        .pointer("/function/name")
                        .and_then(Value::as_str)
                        .ok_or_else(|| bad(format!("{f}.function.name"), "required"))?;
                    let args =
                        parse_arguments(call.pointer("/function/arguments"), &format!("{f}.function.arguments"))?;
                    let id = call.get("id").and_then(Value::as_str).unwrap_or("");
                    let signature = signature_from_id(id).or_else(|| {
                        call.pointer("/extra_content/google/thought_signature")
                            .and_then(Value::as_str)
                            .map(String::from)
                    });
                    if !id.is_empty() {
                        call_names.insert(id.to_string(), name.to_string());
                    }
                    parts.push(Part::call(name, args, signature));
                }
                // The legacy single `function_call`.
                if let Some(fc) = m.get("function_call").filter(|v| !v.is_null()) {
                    let name = fc
                        .get("name")
                        .and_then(Value::as_str)
                        .ok_or_else(|| bad(format!("{field}.function_call.name"), "required"))?;
                    let args = parse_arguments(fc.get("arguments"), &format!("{field}.function_call.arguments"))?;
                    parts.push(Part::call(name, args, None));
                }
                if !parts.is_empty() {
                    body.push_turn(Role::Model, parts);
                }
            }
            "tool" | "function" => {
                let name = if role == "tool" {
                    let id = m
                        .get("tool_call_id")
                        .and_then(Value::as_str)
                        .ok_or_else(|| bad(format!("{field}.tool_call_id"), "required"))?;
                    call_names.get(id).cloned().ok_or_else(|| {
                        bad(format!("{field}.tool_call_id"), format!("no earlier assistant tool call has id {id:?}"))
                    })?
                } else {
                    m.get("name")
                        .and_then(Value::as_str)
                        .map(String::from)
                        .ok_or_else(|| bad(format!("{field}.name"), "required"))?
                };
                let text = text_of(content, &format!("{field}.content"))?;
                let response = match serde_json::from_str::<Value>(&text) {
                    Ok(Value::Object(o)) => Value::Object(o),
                    Ok(other) if !text.trim().is_empty() => json!({"result": other}),
                    _ => json!({"result": text}),
                };
                body.push_turn(Role::User, vec![Part::response(name, response)]);
            }
            other => return Err(bad(format!("{field}.role"), format!("unknown role {other:?}"))),
        }
    }
    if body.contents.is_empty() {
        return Err(bad("messages", "no user or assistant message"));
    }
    Ok(system)
}

pub(crate) fn parse_arguments(v: Option<&Value>, field: &str) -> Result<Value, BadRequest> {
    match v {
        None | Some(Value::Null) => Ok(json!({})),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(json!({})),
        Some(Value::String(s)) => match serde_json::from_str::<Value>(s) {
            Ok(Value::Object(o)) => Ok(Value::Object(o)),
            Ok(_) => Err(bad(field, "must be a JSON object encoded as a string")),
            Err(e) => Err(bad(field, format!("not valid JSON: {e}"))),
        },
        Some(Value::Object(o)) => Ok(Value::Object(o.clone())),
        Some(_) => Err(bad(field, "must be a JSON string")),
    }
}

fn text_of(content: &Value, field: &str) -> Result<String, BadRequest> {
    match content {
        Value::Null => Ok(String::new()),
        Value::String(s) => Ok(s.clone()),
        Value::Array(parts) => {
            let mut out = String::new();
            for (k, p) in parts.iter().enumerate() {
                match p.get("text").and_then(Value::as_str) {
                    Some(t) => out.push_str(t),
                    None => return Err(bad(format!("{field}[{k}]"), "only text parts are allowed here")),
                }
            }
            Ok(out)
        }
        _ => Err(bad(field, "must be a string or an array of parts")),
    }
}

fn content_parts(content: &Value, field: &str, opts: &Options) -> Result<Vec<Part>, BadRequest> {
    match content {
        Value::Null => Ok(Vec::new()),
        Value::String(s) if s.is_empty() => Ok(Vec::new()),
        Value::String(s) => Ok(vec![Part::text(s.as_str())]),
        Value::Array(parts) => {
            let mut out = Vec::new();
            for (k, p) in parts.iter().enumerate() {
                let f = format!("{field}[{k}]");
                let kind = p.get("type").and_then(Value::as_str).unwrap_or("text");
                match kind {
                    "text" => {
                        let t = p
                            .get("text")
                            .and_then(Value::as_str)
                            .ok_or_else(|| bad(format!("{f}.text"), "required"))?;
                        out.push(Part::text(t));
                    }
                    "image_url" => {
                        let url = image_url(p).ok_or_else(|| bad(format!("{f}.image_url.url"), "required"))?;
                        out.push(inline_from_url(url, &format!("{f}.image_url.url"), opts)?);
                    }
                    "input_audio" => {
                        let data = p
                            .pointer("/input_audio/data")
                            .and_then(Value::as_str)
                            .ok_or_else(|| bad(format!("{f}.input_audio.data"), "required"))?;
                        let format = p.pointer("/input_audio/format").and_then(Value::as_str).unwrap_or("wav");
                        out.push(Part::inline(format!("audio/{format}"), data));
                    }
                    "file" => {
                        let data = p
                            .pointer("/file/file_data")
                            .and_then(Value::as_str)
                            .ok_or_else(|| bad(format!("{f}.file.file_data"), "required (a data: URL)"))?;
                        out.push(inline_from_url(data, &format!("{f}.file.file_data"), opts)?);
                    }
                    other => return Err(bad(format!("{f}.type"), format!("unsupported content part type {other:?}"))),
                }
            }
            Ok(out)
        }
        _ => Err(bad(field, "must be a string or an array of parts")),
    }
}

pub(crate) fn inline_from_url(url: &str, field: &str, opts: &Options) -> Result<Part, BadRequest> {
    if let Some(rest) = url.strip_prefix("data:") {
        let (meta, data) = rest.split_once(',').ok_or_else(|| bad(field, "malformed data: URL"))?;
        let mime = meta.strip_suffix(";base64").ok_or_else(|| bad(field, "data: URL must be base64-encoded"))?;
        let data: String = data.chars().filter(|c| !c.is_whitespace()).collect();
        if BASE64_STANDARD.decode(&data).is_err() {
            return Err(bad(field, "data: URL holds invalid base64"));
        }
        let mime = if mime.is_empty() { "application/octet-stream" } else { mime };
        return Ok(Part::inline(mime, data));
    }
    if url.starts_with("http://") || url.starts_with("https://") {
        return match opts.images.and_then(|m| m.get(url)) {
            Some((mime, data)) => Ok(Part::inline(mime.as_str(), data.as_str())),
            None => Err(bad(field, "the image could not be fetched")),
        };
    }
    Err(bad(field, "must be a data: URL or an http(s) URL"))
}

fn function_declarations(tools: &Value) -> Result<Vec<FunctionDeclaration>, BadRequest> {
    let tools = tools.as_array().ok_or_else(|| bad("tools", "must be an array"))?;
    let mut out = Vec::new();
    for (i, t) in tools.iter().enumerate() {
        let kind = t.get("type").and_then(Value::as_str).unwrap_or("function");
        if kind != "function" {
            return Err(bad(format!("tools[{i}].type"), format!("unsupported tool type {kind:?}")));
        }
        let f = t.get("function").ok_or_else(|| bad(format!("tools[{i}].function"), "required"))?;
        let name = f
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| bad(format!("tools[{i}].function.name"), "required"))?;
        let description = f.get("description").and_then(Value::as_str).map(String::from);
        let parameters = tool_parameters(f.get("parameters"));
        out.push(FunctionDeclaration { name: name.to_string(), description, parameters });
    }
    Ok(out)
}

fn tool_choice(choice: &Value) -> Result<FunctionCallingConfig, BadRequest> {
    let mode = |mode| FunctionCallingConfig { mode, allowed_function_names: Vec::new() };
    match choice {
        Value::String(s) => match s.as_str() {
            "none" => Ok(mode("NONE")),
            "auto" => Ok(mode("AUTO")),
            "required" => Ok(mode("ANY")),
            other => Err(bad("tool_choice", format!("unknown value {other:?}: use none, auto, required or an object"))),
        },
        Value::Object(_) => {
            let name = choice
                .pointer("/function/name")
                .and_then(Value::as_str)
                .ok_or_else(|| bad("tool_choice.function.name", "required"))?;
            Ok(FunctionCallingConfig { mode: "ANY", allowed_function_names: vec![name.to_string()] })
        }
        _ => Err(bad("tool_choice", "must be a string or an object")),
    }
}

fn generation_config(obj: &Map<String, Value>, model: &str, opts: &Options) -> Result<GenerationConfig, BadRequest> {
    let number = |name: &str| crate::dialect::openai::bad_request::number(obj, name);
    let mut g = GenerationConfig {
        temperature: number("temperature")?,
        top_p: number("top_p")?,
        top_k: number("top_k")?,
        seed: number("seed")?,
        presence_penalty: number("presence_penalty")?,
        frequency_penalty: number("frequency_penalty")?,
        candidate_count: number("n")?,
        max_output_tokens: number("max_completion_tokens")?.or(number("max_tokens")?),
        ..GenerationConfig::default()
    };
    g.stop_sequences = match obj.get("stop") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(vec![s.clone()]),
        Some(Value::Array(a)) if a.iter().all(Value::is_string) => {
            Some(a.iter().filter_map(Value::as_str).map(String::from).collect())
        }
        Some(_) => return Err(bad("stop", "must be a string or an array of strings")),
    };
    if let Some(rf) = obj.get("response_format").filter(|v| !v.is_null()) {
        match rf.get("type").and_then(Value::as_str) {
            Some("text") => {}
            Some("json_object") => g.response_mime_type = Some("application/json"),
            Some("json_schema") => {
                let schema = rf
                    .pointer("/json_schema/schema")
                    .ok_or_else(|| bad("response_format.json_schema.schema", "required"))?;
                g.response_mime_type = Some("application/json");
                g.response_json_schema = Some(schema.clone());
            }
            other => {
                return Err(bad(
                    "response_format.type",
                    format!("unsupported {other:?}: use text, json_object or json_schema"),
                ));
            }
        }
    }
    g.thinking_config = match obj.get("reasoning_effort").filter(|v| !v.is_null()) {
        Some(effort) => {
            let budget = match effort.as_str() {
                Some("none") | Some("minimal") => 0,
                Some("low") => 1024,
                Some("medium") => 8192,
                Some("high") => 24576,
                _ => return Err(bad("reasoning_effort", "use none, minimal, low, medium or high")),
            };
            Some(ThinkingConfig { thinking_budget: budget, include_thoughts: Some(budget != 0) })
        }
        None => opts
            .thinking_budget
            .and_then(|b| b.get(model))
            .map(|budget| ThinkingConfig { thinking_budget: *budget, include_thoughts: None }),
    };
    Ok(g)
}
