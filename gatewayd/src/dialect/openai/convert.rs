//! PURE: OpenAI ↔ Gemini translation for chat completions (request, response, stream chunks),
//! embeddings and model lists, following the mapping of gemini-api.md. Nothing is lost silently: a
//! field that cannot be translated is refused with its name.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{Hash, Hasher};

use base64::prelude::{BASE64_STANDARD, Engine as _};
use serde_json::{Map, Value, json};

use crate::models::ModelName;

/// A client mistake, naming the offending field (`messages[2].tool_call_id`).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct BadRequest {
    pub field: String,
    pub message: String,
}

fn bad(field: impl Into<String>, message: impl Into<String>) -> BadRequest {
    BadRequest { field: field.into(), message: message.into() }
}

/// What the request translation needs from configuration and from the gateway's image fetches.
#[derive(Debug, Default)]
pub struct Options<'a> {
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
    pub body: Value,
}

/// Separates a tool-call id from the Gemini thought signature carried inside it, so a client that
/// sends the id back (as every OpenAI client does) also sends the signature back, with no state
/// kept in the gateway.
const SIGNATURE_MARK: &str = "__thought__";

fn model_name(v: &str) -> &str {
    v.strip_prefix("models/").unwrap_or(v)
}

/// The client's `model`, checked; the name as the client wrote it is kept for the answer.
fn checked_model(obj: &Map<String, Value>) -> Result<(String, ModelName), BadRequest> {
    let model =
        obj.get("model").and_then(Value::as_str).filter(|m| !m.is_empty()).ok_or_else(|| bad("model", "required"))?;
    let checked = ModelName::parse(model).map_err(|e| bad("model", e.to_string()))?;
    Ok((model.to_string(), checked))
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
    let mut tools: Vec<Value> = Vec::new();
    if let Some(base) = crate::models::search_base(upstream_model.as_str(), opts.search_models) {
        upstream_model = ModelName::parse(base).map_err(|e| bad("model", e.to_string()))?;
        tools.push(json!({"googleSearch": {}}));
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
    let (system, contents) = convert_messages(messages, opts)?;
    let mut body = Map::new();
    body.insert("contents".into(), Value::Array(contents));
    if !system.is_empty() {
        body.insert("systemInstruction".into(), json!({"parts": system}));
    }
    if let Some(declared) = obj.get("tools").filter(|t| !t.is_null()) {
        let declarations = function_declarations(declared)?;
        if !declarations.is_empty() {
            tools.push(json!({"functionDeclarations": declarations}));
        }
    }
    if !tools.is_empty() {
        body.insert("tools".into(), Value::Array(tools));
    }
    if let Some(choice) = obj.get("tool_choice").filter(|t| !t.is_null()) {
        body.insert("toolConfig".into(), json!({"functionCallingConfig": tool_choice(choice)?}));
    }
    let generation = generation_config(obj, upstream_model.as_str(), opts)?;
    if !generation.is_empty() {
        body.insert("generationConfig".into(), Value::Object(generation));
    }
    let mut body = Value::Object(body);
    crate::models::merge_safety(&mut body, opts.safety);
    Ok(ChatRequest { model, upstream_model, stream, include_usage, body })
}

fn convert_messages(messages: &[Value], opts: &Options) -> Result<(Vec<Value>, Vec<Value>), BadRequest> {
    let mut system: Vec<Value> = Vec::new();
    let mut contents: Vec<Value> = Vec::new();
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
                push_turn(&mut contents, "user", parts);
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
                    let mut part = json!({"functionCall": {"name": name, "args": args}});
                    let signature = signature_from_id(id).map(String::from).or_else(|| {
                        call.pointer("/extra_content/google/thought_signature")
                            .and_then(Value::as_str)
                            .map(String::from)
                    });
                    if let Some(sig) = signature {
                        part["thoughtSignature"] = Value::String(sig);
                    }
                    if !id.is_empty() {
                        call_names.insert(id.to_string(), name.to_string());
                    }
                    parts.push(part);
                }
                // The legacy single `function_call`.
                if let Some(fc) = m.get("function_call").filter(|v| !v.is_null()) {
                    let name = fc
                        .get("name")
                        .and_then(Value::as_str)
                        .ok_or_else(|| bad(format!("{field}.function_call.name"), "required"))?;
                    let args = parse_arguments(fc.get("arguments"), &format!("{field}.function_call.arguments"))?;
                    parts.push(json!({"functionCall": {"name": name, "args": args}}));
                }
                if !parts.is_empty() {
                    push_turn(&mut contents, "model", parts);
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
                push_turn(
                    &mut contents,
                    "user",
                    vec![json!({"functionResponse": {"name": name, "response": response}})],
                );
            }
            other => return Err(bad(format!("{field}.role"), format!("unknown role {other:?}"))),
        }
    }
    if contents.is_empty() {
        return Err(bad("messages", "no user or assistant message"));
    }
    Ok((system, contents))
}

/// Gemini wants alternating turns: consecutive messages of one role become one turn (several tool
/// results answer several calls in one turn, as Gemini requires).
fn push_turn(contents: &mut Vec<Value>, role: &str, parts: Vec<Value>) {
    if let Some(last) = contents.last_mut()
        && last["role"] == role
        && let Some(existing) = last["parts"].as_array_mut()
    {
        existing.extend(parts);
        return;
    }
    contents.push(json!({"role": role, "parts": parts}));
}

fn parse_arguments(v: Option<&Value>, field: &str) -> Result<Value, BadRequest> {
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

fn content_parts(content: &Value, field: &str, opts: &Options) -> Result<Vec<Value>, BadRequest> {
    match content {
        Value::Null => Ok(Vec::new()),
        Value::String(s) if s.is_empty() => Ok(Vec::new()),
        Value::String(s) => Ok(vec![json!({"text": s})]),
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
                        out.push(json!({"text": t}));
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
                        out.push(json!({"inlineData": {"mimeType": format!("audio/{format}"), "data": data}}));
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

fn inline_from_url(url: &str, field: &str, opts: &Options) -> Result<Value, BadRequest> {
    if let Some(rest) = url.strip_prefix("data:") {
        let (meta, data) = rest.split_once(',').ok_or_else(|| bad(field, "malformed data: URL"))?;
        let mime = meta.strip_suffix(";base64").ok_or_else(|| bad(field, "data: URL must be base64-encoded"))?;
        let data: String = data.chars().filter(|c| !c.is_whitespace()).collect();
        if BASE64_STANDARD.decode(&data).is_err() {
            return Err(bad(field, "data: URL holds invalid base64"));
        }
        let mime = if mime.is_empty() { "application/octet-stream" } else { mime };
        return Ok(json!({"inlineData": {"mimeType": mime, "data": data}}));
    }
    if url.starts_with("http://") || url.starts_with("https://") {
        return match opts.images.and_then(|m| m.get(url)) {
            Some((mime, data)) => Ok(json!({"inlineData": {"mimeType": mime, "data": data}})),
            None => Err(bad(field, "the image could not be fetched")),
        };
    }
    Err(bad(field, "must be a data: URL or an http(s) URL"))
}

fn function_declarations(tools: &Value) -> Result<Vec<Value>, BadRequest> {
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
        let mut decl = json!({"name": name});
        if let Some(d) = f.get("description").and_then(Value::as_str) {
            decl["description"] = json!(d);
        }
        if let Some(p) = f.get("parameters").filter(|p| !p.is_null()) {
            let cleaned = clean_schema(p);
            // An object schema with no properties is rejected by Gemini; no parameters says the same.
            let empty_object = cleaned.get("type") == Some(&json!("object"))
                && cleaned.get("properties").and_then(Value::as_object).is_none_or(|o| o.is_empty());
            if !empty_object {
                decl["parameters"] = cleaned;
            }
        }
        out.push(decl);
    }
    Ok(out)
}

/// The OpenAPI subset Gemini's `Schema` accepts. Everything else (`$schema`, `additionalProperties`,
/// `strict`, `$ref`, ...) is removed; `type: [T, "null"]` becomes `type: T, nullable: true`;
/// `const` becomes a one-value `enum`.
pub fn clean_schema(v: &Value) -> Value {
    const KEPT: &[&str] = &[
        "type",
        "format",
        "title",
        "description",
        "nullable",
        "enum",
        "maxItems",
        "minItems",
        "properties",
        "required",
        "minProperties",
        "maxProperties",
        "minLength",
        "maxLength",
        "pattern",
        "example",
        "anyOf",
        "propertyOrdering",
        "default",
        "items",
        "minimum",
        "maximum",
    ];
    let Some(obj) = v.as_object() else { return v.clone() };
    let mut out = Map::new();
    for (k, val) in obj {
        match k.as_str() {
            "properties" => {
                let props: Map<String, Value> =
                    val.as_object().into_iter().flatten().map(|(name, s)| (name.clone(), clean_schema(s))).collect();
                out.insert(k.clone(), Value::Object(props));
            }
            "items" => {
                out.insert(k.clone(), clean_schema(val));
            }
            "anyOf" | "oneOf" => {
                let list: Vec<Value> = val.as_array().into_iter().flatten().map(clean_schema).collect();
                out.insert("anyOf".into(), Value::Array(list));
            }
            "type" => match val {
                Value::Array(types) => {
                    let non_null: Vec<&Value> = types.iter().filter(|t| t.as_str() != Some("null")).collect();
                    if non_null.len() < types.len() {
                        out.insert("nullable".into(), json!(true));
                    }
                    if let Some(t) = non_null.first() {
                        out.insert("type".into(), (*t).clone());
                    }
                }
                other => {
                    out.insert("type".into(), other.clone());
                }
            },
            "const" => {
                out.insert("enum".into(), json!([val]));
            }
            k if KEPT.contains(&k) => {
                out.insert(k.to_string(), val.clone());
            }
            _ => {}
        }
    }
    Value::Object(out)
}

fn tool_choice(choice: &Value) -> Result<Value, BadRequest> {
    match choice {
        Value::String(s) => match s.as_str() {
            "none" => Ok(json!({"mode": "NONE"})),
            "auto" => Ok(json!({"mode": "AUTO"})),
            "required" => Ok(json!({"mode": "ANY"})),
            other => Err(bad("tool_choice", format!("unknown value {other:?}: use none, auto, required or an object"))),
        },
        Value::Object(_) => {
            let name = choice
                .pointer("/function/name")
                .and_then(Value::as_str)
                .ok_or_else(|| bad("tool_choice.function.name", "required"))?;
            Ok(json!({"mode": "ANY", "allowedFunctionNames": [name]}))
        }
        _ => Err(bad("tool_choice", "must be a string or an object")),
    }
}

fn generation_config(obj: &Map<String, Value>, model: &str, opts: &Options) -> Result<Map<String, Value>, BadRequest> {
    let mut g = Map::new();
    let number = |name: &str| -> Result<Option<Value>, BadRequest> {
        match obj.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(v @ Value::Number(_)) => Ok(Some(v.clone())),
            Some(_) => Err(bad(name, "must be a number")),
        }
    };
    for (openai, gemini) in [
        ("temperature", "temperature"),
        ("top_p", "topP"),
        ("top_k", "topK"),
        ("seed", "seed"),
        ("presence_penalty", "presencePenalty"),
        ("frequency_penalty", "frequencyPenalty"),
        ("n", "candidateCount"),
    ] {
        if let Some(v) = number(openai)? {
            g.insert(gemini.into(), v);
        }
    }
    if let Some(v) = number("max_completion_tokens")?.or(number("max_tokens")?) {
        g.insert("maxOutputTokens".into(), v);
    }
    match obj.get("stop") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) => {
            g.insert("stopSequences".into(), json!([s]));
        }
        Some(Value::Array(a)) if a.iter().all(Value::is_string) => {
            g.insert("stopSequences".into(), Value::Array(a.clone()));
        }
        Some(_) => return Err(bad("stop", "must be a string or an array of strings")),
    }
    if let Some(rf) = obj.get("response_format").filter(|v| !v.is_null()) {
        match rf.get("type").and_then(Value::as_str) {
            Some("text") => {}
            Some("json_object") => {
                g.insert("responseMimeType".into(), json!("application/json"));
            }
            Some("json_schema") => {
                let schema = rf
                    .pointer("/json_schema/schema")
                    .ok_or_else(|| bad("response_format.json_schema.schema", "required"))?;
                g.insert("responseMimeType".into(), json!("application/json"));
                g.insert("responseJsonSchema".into(), schema.clone());
            }
            other => {
                return Err(bad(
                    "response_format.type",
                    format!("unsupported {other:?}: use text, json_object or json_schema"),
                ));
            }
        }
    }
    match obj.get("reasoning_effort").filter(|v| !v.is_null()) {
        Some(effort) => {
            let budget = match effort.as_str() {
                Some("none") | Some("minimal") => 0,
                Some("low") => 1024,
                Some("medium") => 8192,
                Some("high") => 24576,
                _ => return Err(bad("reasoning_effort", "use none, minimal, low, medium or high")),
            };
            g.insert("thinkingConfig".into(), json!({"thinkingBudget": budget, "includeThoughts": budget != 0}));
        }
        None => {
            if let Some(budget) = opts.thinking_budget.and_then(|b| b.get(model)) {
                g.insert("thinkingConfig".into(), json!({"thinkingBudget": budget}));
            }
        }
    }
    Ok(g)
}

// ---- responses --------------------------------------------------------------------------------

pub fn finish_reason(gemini: &str) -> &'static str {
    match gemini {
        "MAX_TOKENS" => "length",
        "SAFETY" | "RECITATION" | "BLOCKLIST" | "PROHIBITED_CONTENT" | "SPII" | "IMAGE_SAFETY" | "LANGUAGE" => {
            "content_filter"
        }
        _ => "stop",
    }
}

pub fn usage(meta: &Value) -> Value {
    let n = |k: &str| meta.get(k).and_then(Value::as_u64).unwrap_or(0);
    let (prompt, candidates, thoughts) = (n("promptTokenCount"), n("candidatesTokenCount"), n("thoughtsTokenCount"));
    json!({
        "prompt_tokens": prompt,
        "completion_tokens": candidates + thoughts,
        "total_tokens": prompt + candidates + thoughts,
        "completion_tokens_details": {"reasoning_tokens": thoughts},
    })
}

/// A stable tool-call id: the same call always gets the same id, and the Gemini thought signature
/// rides inside it.
pub fn tool_call_id(call: &Value, position: usize, signature: Option<&str>) -> String {
    let mut h = std::hash::DefaultHasher::new();
    call.to_string().hash(&mut h);
    position.hash(&mut h);
    let base = format!("call_{:016x}", h.finish());
    match signature {
        Some(sig) => format!("{base}{SIGNATURE_MARK}{sig}"),
        None => base,
    }
}

pub fn signature_from_id(id: &str) -> Option<&str> {
    id.split_once(SIGNATURE_MARK).map(|(_, sig)| sig).filter(|s| !s.is_empty())
}

/// What one candidate holds, in OpenAI's terms.
#[derive(Default)]
struct Pieces {
    text: String,
    reasoning: String,
    tool_calls: Vec<Value>,
}

fn pieces(candidate: &Value, first_tool_index: usize) -> Pieces {
    let mut p = Pieces::default();
    for part in candidate.pointer("/content/parts").and_then(Value::as_array).into_iter().flatten() {
        if let Some(call) = part.get("functionCall") {
            let position = first_tool_index + p.tool_calls.len();
            let signature = part.get("thoughtSignature").and_then(Value::as_str);
            let args = call.get("args").cloned().unwrap_or(json!({}));
            let mut tc = json!({
                "id": tool_call_id(call, position, signature),
                "type": "function",
                "function": {"name": call.get("name").cloned().unwrap_or(json!("")), "arguments": args.to_string()},
            });
            if let Some(sig) = signature {
                tc["extra_content"] = json!({"google": {"thought_signature": sig}});
            }
            p.tool_calls.push(tc);
        } else if let Some(text) = part.get("text").and_then(Value::as_str) {
            if part.get("thought").and_then(Value::as_bool) == Some(true) {
                p.reasoning.push_str(text);
            } else {
                p.text.push_str(text);
            }
        } else if let Some(data) = part.get("inlineData") {
            let mime = data.get("mimeType").and_then(Value::as_str).unwrap_or("application/octet-stream");
            let b64 = data.get("data").and_then(Value::as_str).unwrap_or("");
            p.text.push_str(&format!("![image](data:{mime};base64,{b64})"));
        }
    }
    p
}

fn candidates(gemini: &Value) -> Vec<&Value> {
    let mut c: Vec<&Value> = gemini.get("candidates").and_then(Value::as_array).into_iter().flatten().collect();
    c.sort_by_key(|c| c.get("index").and_then(Value::as_u64).unwrap_or(0));
    c
}

fn completion_id(gemini: &Value) -> String {
    match gemini.get("responseId").and_then(Value::as_str) {
        Some(id) => format!("chatcmpl-{id}"),
        None => {
            let mut h = std::hash::DefaultHasher::new();
            gemini.to_string().hash(&mut h);
            format!("chatcmpl-{:016x}", h.finish())
        }
    }
}

pub fn chat_response(gemini: &Value, model: &str, created: i64) -> Value {
    let mut choices = Vec::new();
    for (i, c) in candidates(gemini).into_iter().enumerate() {
        let p = pieces(c, 0);
        let index = c.get("index").and_then(Value::as_u64).unwrap_or(i as u64);
        let finish = if !p.tool_calls.is_empty() {
            "tool_calls"
        } else {
            finish_reason(c.get("finishReason").and_then(Value::as_str).unwrap_or("STOP"))
        };
        let mut message = json!({"role": "assistant", "content": if p.text.is_empty() && !p.tool_calls.is_empty() { Value::Null } else { json!(p.text) }});
        if !p.reasoning.is_empty() {
            message["reasoning_content"] = json!(p.reasoning);
        }
        if !p.tool_calls.is_empty() {
            message["tool_calls"] = Value::Array(p.tool_calls);
        }
        choices.push(json!({"index": index, "message": message, "finish_reason": finish, "logprobs": null}));
    }
    if choices.is_empty() {
        // A blocked prompt: no candidates, the reason in promptFeedback.
        choices.push(json!({"index": 0, "message": {"role": "assistant", "content": null}, "finish_reason": "content_filter", "logprobs": null}));
    }
    let mut out = json!({
        "id": completion_id(gemini),
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": choices,
    });
    if let Some(meta) = gemini.get("usageMetadata") {
        out["usage"] = usage(meta);
    }
    out
}

/// Translates Gemini stream events into `chat.completion.chunk`s as they arrive.
pub struct ChunkTranslator {
    id: Option<String>,
    model: String,
    created: i64,
    include_usage: bool,
    started: HashSet<u64>,
    tool_calls: HashMap<u64, usize>,
    finished: HashSet<u64>,
    usage: Option<Value>,
}

impl ChunkTranslator {
    pub fn new(model: &str, created: i64, include_usage: bool) -> Self {
        ChunkTranslator {
            id: None,
            model: model.to_string(),
            created,
            include_usage,
            started: HashSet::new(),
            tool_calls: HashMap::new(),
            finished: HashSet::new(),
            usage: None,
        }
    }

    fn chunk(&self, choices: Vec<Value>) -> Value {
        let mut c = json!({
            "id": self.id.clone().unwrap_or_default(),
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": choices,
        });
        if self.include_usage {
            c["usage"] = Value::Null;
        }
        c
    }

    pub fn feed(&mut self, event: &Value) -> Vec<Value> {
        if self.id.is_none() {
            self.id = Some(completion_id(event));
        }
        if let Some(meta) = event.get("usageMetadata") {
            self.usage = Some(usage(meta));
        }
        let mut out = Vec::new();
        let cands = candidates(event);
        if cands.is_empty() && event.pointer("/promptFeedback/blockReason").is_some() && !self.finished.contains(&0) {
            self.finished.insert(0);
            let delta = if self.started.insert(0) { json!({"role": "assistant"}) } else { json!({}) };
            out.push(
                self.chunk(vec![
                    json!({"index": 0, "delta": delta, "finish_reason": "content_filter", "logprobs": null}),
                ]),
            );
        }
        for (i, c) in cands.into_iter().enumerate() {
            let index = c.get("index").and_then(Value::as_u64).unwrap_or(i as u64);
            let first_tool = *self.tool_calls.get(&index).unwrap_or(&0);
            let p = pieces(c, first_tool);
            let mut delta = Map::new();
            if self.started.insert(index) {
                delta.insert("role".into(), json!("assistant"));
            }
            if !p.text.is_empty() {
                delta.insert("content".into(), json!(p.text));
            }
            if !p.reasoning.is_empty() {
                delta.insert("reasoning_content".into(), json!(p.reasoning));
            }
            if !p.tool_calls.is_empty() {
                let calls: Vec<Value> = p
                    .tool_calls
                    .into_iter()
                    .enumerate()
                    .map(|(k, mut tc)| {
                        tc["index"] = json!(first_tool + k);
                        tc
                    })
                    .collect();
                self.tool_calls.insert(index, first_tool + calls.len());
                delta.insert("tool_calls".into(), Value::Array(calls));
            }
            let finish = c.get("finishReason").and_then(Value::as_str).map(|r| {
                if self.tool_calls.get(&index).is_some_and(|n| *n > 0) { "tool_calls" } else { finish_reason(r) }
            });
            if finish.is_some() {
                self.finished.insert(index);
            }
            if !delta.is_empty() || finish.is_some() {
                out.push(
                    self.chunk(vec![
                        json!({"index": index, "delta": delta, "finish_reason": finish, "logprobs": null}),
                    ]),
                );
            }
        }
        out
    }

    /// After the upstream stream ended cleanly: close any choice left open, then the usage chunk.
    pub fn finish(&mut self) -> Vec<Value> {
        let mut out = Vec::new();
        let mut open: Vec<u64> = self.started.difference(&self.finished).copied().collect();
        open.sort_unstable();
        for index in open {
            let finish = if self.tool_calls.get(&index).is_some_and(|n| *n > 0) { "tool_calls" } else { "stop" };
            self.finished.insert(index);
            out.push(self.chunk(vec![json!({"index": index, "delta": {}, "finish_reason": finish, "logprobs": null})]));
        }
        if self.include_usage {
            let mut c = self.chunk(Vec::new());
            c["usage"] = self.usage.clone().unwrap_or_else(|| usage(&json!({})));
            out.push(c);
        }
        out
    }
}

// ---- embeddings and models ---------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
pub struct EmbeddingsRequest {
    pub model: String,
    pub upstream_model: ModelName,
    pub base64: bool,
    pub inputs: Vec<String>,
    pub body: Value,
}

pub fn embeddings_request(req: &Value) -> Result<EmbeddingsRequest, BadRequest> {
    let obj = req.as_object().ok_or_else(|| bad("body", "must be a JSON object"))?;
    let (model, upstream_model) = checked_model(obj)?;
    let inputs: Vec<String> = match req.get("input") {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) if !a.is_empty() && a.iter().all(Value::is_string) => {
            a.iter().map(|v| v.as_str().unwrap_or_default().to_string()).collect()
        }
        Some(Value::Array(a)) if !a.is_empty() => {
            return Err(bad("input", "token arrays are not supported by Gemini; send text"));
        }
        _ => return Err(bad("input", "must be a string or a non-empty array of strings")),
    };
    let base64 = match req.get("encoding_format").and_then(|v| if v.is_null() { None } else { Some(v) }) {
        None => false,
        Some(v) => match v.as_str() {
            Some("float") => false,
            Some("base64") => true,
            _ => return Err(bad("encoding_format", "use float or base64")),
        },
    };
    let dimensions = match req.get("dimensions") {
        None | Some(Value::Null) => None,
        Some(v) => Some(v.as_u64().filter(|d| *d > 0).ok_or_else(|| bad("dimensions", "must be a positive integer"))?),
    };
    let requests: Vec<Value> = inputs
        .iter()
        .map(|text| {
            let mut r = json!({"model": format!("models/{upstream_model}"), "content": {"parts": [{"text": text}]}});
            if let Some(d) = dimensions {
                r["outputDimensionality"] = json!(d);
            }
            r
        })
        .collect();
    Ok(EmbeddingsRequest {
        model: model.to_string(),
        upstream_model,
        base64,
        inputs,
        body: json!({"requests": requests}),
    })
}

/// Gemini does not count embedding tokens; usage is estimated at four characters a token.
pub fn estimate_tokens(inputs: &[String]) -> u64 {
    inputs.iter().map(|s| (s.chars().count() as u64).div_ceil(4)).sum()
}

pub fn embeddings_response(gemini: &Value, req: &EmbeddingsRequest) -> Value {
    let data: Vec<Value> = gemini
        .get("embeddings")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
        .map(|(i, e)| {
            let values: Vec<f64> =
                e.get("values").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_f64).collect();
            let embedding = if req.base64 {
                let bytes: Vec<u8> = values.iter().flat_map(|v| (*v as f32).to_le_bytes()).collect();
                json!(BASE64_STANDARD.encode(&bytes))
            } else {
                json!(values)
            };
            json!({"object": "embedding", "index": i, "embedding": embedding})
        })
        .collect();
    let tokens = estimate_tokens(&req.inputs);
    json!({"object": "list", "data": data, "model": req.model, "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})
}

/// OpenAI's model list from Gemini's: hidden names removed, `-search` variants added.
pub fn models_list(gemini: &Value, hidden: &[String], search_models: &[String]) -> Value {
    let is_hidden = |name: &str| hidden.iter().any(|h| model_name(h) == name);
    let mut data = Vec::new();
    let names: Vec<&str> = gemini
        .get("models")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|m| m.get("name").and_then(Value::as_str))
        .map(model_name)
        .collect();
    for name in &names {
        if !is_hidden(name) {
            data.push(model_entry(name));
        }
    }
    for s in search_models {
        let base = model_name(s);
        let variant = format!("{base}-search");
        if names.contains(&base) && !is_hidden(base) && !is_hidden(&variant) {
            data.push(model_entry(&variant));
        }
    }
    json!({"object": "list", "data": data})
}

pub fn model_entry(id: &str) -> Value {
    json!({"id": id, "object": "model", "created": 0, "owned_by": "google"})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sse::SseParser;

    fn opts() -> Options<'static> {
        Options { safety: "passthrough", ..Default::default() }
    }

    fn req(v: Value) -> ChatRequest {
        chat_request(&v, &opts()).unwrap()
    }

    fn refused(v: Value) -> BadRequest {
        chat_request(&v, &opts()).unwrap_err()
    }

    #[test]
    fn system_developer_user_and_images() {
        let r = req(json!({"model": "gemini-2.5-flash", "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "developer", "content": [{"type": "text", "text": "Use English."}]},
            {"role": "user", "content": [
                {"type": "text", "text": "What is this?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
            ]}
        ]}));
        assert_eq!(r.body["systemInstruction"], json!({"parts": [{"text": "Be brief."}, {"text": "Use English."}]}));
        assert_eq!(
            r.body["contents"],
            json!([{"role": "user", "parts": [{"text": "What is this?"}, {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}}]}])
        );
        assert!(r.body.get("generationConfig").is_none(), "unset stays unset");
        assert!(!r.stream);
        // http(s) images come from the gateway's fetches.
        let v = json!({"model": "m", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x/cat.jpg"}}]}]});
        assert_eq!(remote_image_urls(&v), vec!["https://x/cat.jpg".to_string()]);
        let images: HashMap<String, (String, String)> =
            [("https://x/cat.jpg".to_string(), ("image/jpeg".to_string(), "AAAA".to_string()))].into();
        let o = Options { images: Some(&images), safety: "passthrough", ..Default::default() };
        let r = chat_request(&v, &o).unwrap();
        assert_eq!(r.body["contents"][0]["parts"][0]["inlineData"]["mimeType"], "image/jpeg");
        assert_eq!(refused(v).field, "messages[0].content[0].image_url.url");
    }

    #[test]
    fn sampling_parameters_only_when_set() {
        let r = req(json!({"model": "m", "messages": [{"role": "user", "content": "hi"}],
            "temperature": 0.2, "top_p": 0.9, "max_tokens": 100, "stop": "END", "n": 2, "seed": 7,
            "presence_penalty": 0.5, "frequency_penalty": -0.5}));
        assert_eq!(
            r.body["generationConfig"],
            json!({"temperature": 0.2, "topP": 0.9, "maxOutputTokens": 100, "stopSequences": ["END"],
            "candidateCount": 2, "seed": 7, "presencePenalty": 0.5, "frequencyPenalty": -0.5})
        );
        let r = req(
            json!({"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_completion_tokens": 5, "max_tokens": 9, "stop": ["a", "b"]}),
        );
        assert_eq!(r.body["generationConfig"], json!({"maxOutputTokens": 5, "stopSequences": ["a", "b"]}));
        assert_eq!(
            refused(json!({"model": "m", "messages": [{"role": "user", "content": "hi"}], "temperature": "hot"})).field,
            "temperature"
        );
    }

    #[test]
    fn response_format_and_reasoning() {
        let r = req(
            json!({"model": "m", "messages": [{"role": "user", "content": "hi"}], "response_format": {"type": "json_object"}}),
        );
        assert_eq!(r.body["generationConfig"], json!({"responseMimeType": "application/json"}));
        let schema = json!({"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"], "additionalProperties": false});
        let r = req(json!({"model": "m", "messages": [{"role": "user", "content": "hi"}],
            "response_format": {"type": "json_schema", "json_schema": {"name": "x", "strict": true, "schema": schema}}}));
        assert_eq!(
            r.body["generationConfig"],
            json!({"responseMimeType": "application/json", "responseJsonSchema": schema})
        );
        let r = req(json!({"model": "m", "messages": [{"role": "user", "content": "hi"}], "reasoning_effort": "low"}));
        assert_eq!(
            r.body["generationConfig"]["thinkingConfig"],
            json!({"thinkingBudget": 1024, "includeThoughts": true})
        );
        // models.thinking_budget applies only when the client set no effort.
        let budgets: BTreeMap<String, i64> = [("gemini-2.5-pro".to_string(), 2048)].into();
        let o = Options { thinking_budget: Some(&budgets), safety: "passthrough", ..Default::default() };
        let r = chat_request(&json!({"model": "gemini-2.5-pro", "messages": [{"role": "user", "content": "hi"}]}), &o)
            .unwrap();
        assert_eq!(r.body["generationConfig"]["thinkingConfig"], json!({"thinkingBudget": 2048}));
        let r = chat_request(&json!({"model": "gemini-2.5-pro", "messages": [{"role": "user", "content": "hi"}], "reasoning_effort": "high"}), &o).unwrap();
        assert_eq!(r.body["generationConfig"]["thinkingConfig"]["thinkingBudget"], 24576);
        assert_eq!(refused(json!({"model": "m", "messages": [{"role": "user", "content": "hi"}], "response_format": {"type": "yaml"}})).field, "response_format.type");
    }

    #[test]
    fn tools_and_every_tool_choice() {
        let params = json!({"$schema": "http://json-schema.org/draft-07/schema#", "type": "object", "additionalProperties": false,
            "properties": {"city": {"type": "string", "description": "City"}, "unit": {"type": ["string", "null"], "enum": ["c", "f"]},
                           "tags": {"type": "array", "items": {"type": "string", "additionalProperties": false}}, "kind": {"const": "x"}},
            "required": ["city"]});
        let base = json!({"model": "m", "messages": [{"role": "user", "content": "weather?"}],
            "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Weather", "parameters": params, "strict": true}},
                      {"type": "function", "function": {"name": "now", "parameters": {"type": "object", "properties": {}}}}]});
        let r = req(base.clone());
        assert_eq!(
            r.body["tools"],
            json!([{"functionDeclarations": [
            {"name": "get_weather", "description": "Weather", "parameters": {"type": "object", "required": ["city"], "properties": {
                "city": {"type": "string", "description": "City"}, "unit": {"type": "string", "nullable": true, "enum": ["c", "f"]},
                "tags": {"type": "array", "items": {"type": "string"}}, "kind": {"enum": ["x"]}}}},
            {"name": "now"}]}])
        );
        for (choice, want) in [
            (json!("none"), json!({"mode": "NONE"})),
            (json!("auto"), json!({"mode": "AUTO"})),
            (json!("required"), json!({"mode": "ANY"})),
            (
                json!({"type": "function", "function": {"name": "get_weather"}}),
                json!({"mode": "ANY", "allowedFunctionNames": ["get_weather"]}),
            ),
        ] {
            let mut v = base.clone();
            v["tool_choice"] = choice;
            assert_eq!(req(v).body["toolConfig"], json!({"functionCallingConfig": want}));
        }
    }

    #[test]
    fn search_suffix_and_safety() {
        let search = vec!["gemini-2.5-flash".to_string()];
        let o = Options { search_models: &search, safety: "BLOCK_NONE", ..Default::default() };
        let r = chat_request(
            &json!({"model": "gemini-2.5-flash-search", "messages": [{"role": "user", "content": "news"}]}),
            &o,
        )
        .unwrap();
        assert_eq!((r.model.as_str(), r.upstream_model.as_str()), ("gemini-2.5-flash-search", "gemini-2.5-flash"));
        assert_eq!(r.body["tools"], json!([{"googleSearch": {}}]));
        assert_eq!(r.body["safetySettings"].as_array().unwrap().len(), 5);
        assert_eq!(r.body["safetySettings"][0]["threshold"], "BLOCK_NONE");
        // Not a search model: the name passes as it is.
        let r = chat_request(&json!({"model": "other-search", "messages": [{"role": "user", "content": "x"}]}), &o)
            .unwrap();
        assert_eq!(r.upstream_model.as_str(), "other-search");
    }

    /// A Gemini 3 tool loop: the call comes back with a thought signature; the client's next turn
    /// (assistant tool_calls + tool result, as the OpenAI SDK builds it) sends it back upstream.
    #[test]
    fn multi_turn_tool_loop_keeps_the_thought_signature() {
        let first = json!({"candidates": [{"content": {"role": "model", "parts": [
            {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}, "thoughtSignature": "c2lnLTE="},
            {"functionCall": {"name": "get_time", "args": {}}}
        ]}, "finishReason": "STOP", "index": 0}], "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 5}, "responseId": "r1"});
        let out = chat_response(&first, "gemini-3-pro", 1);
        let choice = &out["choices"][0];
        assert_eq!(choice["finish_reason"], "tool_calls");
        assert_eq!(choice["message"]["content"], Value::Null);
        let calls = choice["message"]["tool_calls"].as_array().unwrap();
        assert_eq!(calls[0]["function"], json!({"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}));
        let id1 = calls[0]["id"].as_str().unwrap();
        let id2 = calls[1]["id"].as_str().unwrap();
        assert_ne!(id1, id2);
        assert_eq!(signature_from_id(id1), Some("c2lnLTE="));
        assert_eq!(signature_from_id(id2), None);
        // Stable: the same answer yields the same ids.
        assert_eq!(
            chat_response(&first, "gemini-3-pro", 1)["choices"][0]["message"]["tool_calls"][0]["id"],
            calls[0]["id"]
        );
        let next = req(json!({"model": "gemini-3-pro", "messages": [
            {"role": "user", "content": "Weather and time in Paris?"},
            {"role": "assistant", "content": null, "tool_calls": calls},
            {"role": "tool", "tool_call_id": id1, "content": "{\"temp\": 21}"},
            {"role": "tool", "tool_call_id": id2, "content": "12:00"},
            {"role": "user", "content": "Thanks"}
        ]}));
        assert_eq!(
            next.body["contents"],
            json!([
                {"role": "user", "parts": [{"text": "Weather and time in Paris?"}]},
                {"role": "model", "parts": [
                    {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}, "thoughtSignature": "c2lnLTE="},
                    {"functionCall": {"name": "get_time", "args": {}}}]},
                {"role": "user", "parts": [
                    {"functionResponse": {"name": "get_weather", "response": {"temp": 21}}},
                    {"functionResponse": {"name": "get_time", "response": {"result": "12:00"}}},
                    {"text": "Thanks"}]}
            ])
        );
        // A client that keeps only extra_content (not the id) still sends the signature.
        let mut plain = calls[0].clone();
        plain["id"] = json!("call_x");
        let r = req(json!({"model": "m", "messages": [
            {"role": "user", "content": "q"}, {"role": "assistant", "tool_calls": [plain]}, {"role": "tool", "tool_call_id": "call_x", "content": "ok"}]}));
        assert_eq!(r.body["contents"][1]["parts"][0]["thoughtSignature"], "c2lnLTE=");
        let e = refused(
            json!({"model": "m", "messages": [{"role": "user", "content": "q"}, {"role": "tool", "tool_call_id": "nope", "content": "x"}]}),
        );
        assert_eq!(e.field, "messages[1].tool_call_id");
    }

    #[test]
    fn responses_map_finish_reasons_usage_and_thoughts() {
        for (gemini, openai) in [
            ("STOP", "stop"),
            ("MAX_TOKENS", "length"),
            ("SAFETY", "content_filter"),
            ("RECITATION", "content_filter"),
            ("BLOCKLIST", "content_filter"),
            ("PROHIBITED_CONTENT", "content_filter"),
            ("OTHER", "stop"),
        ] {
            let g = json!({"candidates": [{"content": {"parts": [{"text": "x"}]}, "finishReason": gemini}]});
            assert_eq!(chat_response(&g, "m", 0)["choices"][0]["finish_reason"], openai, "{gemini}");
        }
        let g = json!({"candidates": [{"content": {"role": "model", "parts": [{"text": "Let me think", "thought": true}, {"text": "42"}]}, "finishReason": "STOP"},
                                      {"content": {"role": "model", "parts": [{"text": "43"}]}, "finishReason": "STOP", "index": 1}],
                       "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 2, "thoughtsTokenCount": 5, "totalTokenCount": 10},
                       "responseId": "abc"});
        let out = chat_response(&g, "my-model", 99);
        assert_eq!(out["id"], "chatcmpl-abc");
        assert_eq!(
            (out["object"].as_str(), out["model"].as_str(), out["created"].as_i64()),
            (Some("chat.completion"), Some("my-model"), Some(99))
        );
        assert_eq!(
            out["choices"][0]["message"],
            json!({"role": "assistant", "content": "42", "reasoning_content": "Let me think"})
        );
        assert_eq!(out["choices"][1]["message"]["content"], "43");
        assert_eq!(
            out["usage"],
            json!({"prompt_tokens": 3, "completion_tokens": 7, "total_tokens": 10, "completion_tokens_details": {"reasoning_tokens": 5}})
        );
        let blocked = json!({"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": {"promptTokenCount": 3}});
        assert_eq!(chat_response(&blocked, "m", 0)["choices"][0]["finish_reason"], "content_filter");
    }

    /// SSE bytes split at awkward places, through the parser and the translator.
    #[test]
    fn streamed_tool_call_split_across_events() {
        let events = [
            json!({"candidates": [{"content": {"role": "model", "parts": [{"text": "Checking", "thought": true}]}, "index": 0}], "responseId": "s1"}),
            json!({"candidates": [{"content": {"role": "model", "parts": [{"text": "Sure. "}]}, "index": 0}]}),
            json!({"candidates": [{"content": {"role": "model", "parts": [{"functionCall": {"name": "a", "args": {"x": 1}}, "thoughtSignature": "U0lH"}]}, "index": 0}]}),
            json!({"candidates": [{"content": {"role": "model", "parts": [{"functionCall": {"name": "b", "args": {}}}]}, "finishReason": "STOP", "index": 0}],
                   "usageMetadata": {"promptTokenCount": 4, "candidatesTokenCount": 6, "totalTokenCount": 10}}),
        ];
        let wire: String = events.iter().map(|e| format!("data: {e}\r\n\r\n")).collect();
        let mut parser = SseParser::default();
        let mut t = ChunkTranslator::new("gemini-3-pro", 5, true);
        let mut chunks = Vec::new();
        for piece in wire.as_bytes().chunks(7) {
            let mut data = Vec::new();
            parser.feed(piece, &mut data);
            for d in data {
                chunks.extend(t.feed(&serde_json::from_str(&d).unwrap()));
            }
        }
        chunks.extend(t.finish());
        assert_eq!(chunks.len(), 5);
        assert!(chunks.iter().all(|c| c["object"] == "chat.completion.chunk"
            && c["id"] == "chatcmpl-s1"
            && c["model"] == "gemini-3-pro"));
        assert_eq!(chunks[0]["choices"][0]["delta"], json!({"role": "assistant", "reasoning_content": "Checking"}));
        assert_eq!(chunks[1]["choices"][0]["delta"], json!({"content": "Sure. "}));
        let call_a = &chunks[2]["choices"][0]["delta"]["tool_calls"][0];
        assert_eq!(
            (call_a["index"].as_u64(), call_a["function"]["name"].as_str(), call_a["function"]["arguments"].as_str()),
            (Some(0), Some("a"), Some("{\"x\":1}"))
        );
        assert_eq!(signature_from_id(call_a["id"].as_str().unwrap()), Some("U0lH"));
        let call_b = &chunks[3]["choices"][0]["delta"]["tool_calls"][0];
        assert_eq!((call_b["index"].as_u64(), call_b["type"].as_str()), (Some(1), Some("function")));
        assert_eq!(chunks[3]["choices"][0]["finish_reason"], "tool_calls");
        assert!(chunks[0]["choices"][0]["finish_reason"].is_null());
        assert_eq!(chunks[4]["choices"], json!([]));
        assert_eq!(chunks[4]["usage"]["total_tokens"], 10);
        assert!(chunks[0]["usage"].is_null());
    }

    #[test]
    fn an_unfinished_stream_is_closed_on_finish() {
        let mut t = ChunkTranslator::new("m", 0, false);
        t.feed(&json!({"candidates": [{"content": {"parts": [{"text": "hi"}]}}]}));
        let end = t.finish();
        assert_eq!(end.len(), 1);
        assert_eq!(end[0]["choices"][0]["finish_reason"], "stop");
        assert!(end[0].get("usage").is_none());
    }

    #[test]
    fn malformed_requests_name_the_field() {
        for (v, field) in [
            (json!([]), "body"),
            (json!({"messages": [{"role": "user", "content": "x"}]}), "model"),
            (json!({"model": "m"}), "messages"),
            (json!({"model": "m", "messages": []}), "messages"),
            (json!({"model": "m", "messages": [{"content": "x"}]}), "messages[0].role"),
            (json!({"model": "m", "messages": [{"role": "robot", "content": "x"}]}), "messages[0].role"),
            (json!({"model": "m", "messages": [{"role": "user", "content": 5}]}), "messages[0].content"),
            (
                json!({"model": "m", "messages": [{"role": "user", "content": [{"type": "video"}]}]}),
                "messages[0].content[0].type",
            ),
            (json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "stream": "yes"}), "stream"),
            (
                json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "tool_choice": "sometimes"}),
                "tool_choice",
            ),
            (
                json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "tools": [{"type": "function", "function": {}}]}),
                "tools[0].function.name",
            ),
            (
                json!({"model": "m", "messages": [{"role": "assistant", "tool_calls": [{"id": "1", "function": {"name": "f", "arguments": "{bad"}}]}]}),
                "messages[0].tool_calls[0].function.arguments",
            ),
            (
                json!({"model": "m", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/png,xyz"}}]}]}),
                "messages[0].content[0].image_url.url",
            ),
        ] {
            assert_eq!(refused(v.clone()).field, field, "{v}");
        }
    }

    #[test]
    fn embeddings_both_ways() {
        let r =
            embeddings_request(&json!({"model": "text-embedding-004", "input": ["a", "bb"], "dimensions": 3})).unwrap();
        assert_eq!(
            r.body,
            json!({"requests": [
            {"model": "models/text-embedding-004", "content": {"parts": [{"text": "a"}]}, "outputDimensionality": 3},
            {"model": "models/text-embedding-004", "content": {"parts": [{"text": "bb"}]}, "outputDimensionality": 3}]})
        );
        assert!(!r.base64);
        let g = json!({"embeddings": [{"values": [0.5, 1.0]}, {"values": [0.25, -2.0]}]});
        let out = embeddings_response(&g, &r);
        assert_eq!(out["data"][1], json!({"object": "embedding", "index": 1, "embedding": [0.25, -2.0]}));
        assert_eq!(out["usage"], json!({"prompt_tokens": 2, "total_tokens": 2}));
        assert_eq!(out["model"], "text-embedding-004");
        let r = embeddings_request(&json!({"model": "m", "input": "x", "encoding_format": "base64"})).unwrap();
        let out = embeddings_response(&json!({"embeddings": [{"values": [1.0, -2.0]}]}), &r);
        let expected: Vec<u8> = [1.0f32, -2.0f32].iter().flat_map(|v| v.to_le_bytes()).collect();
        assert_eq!(out["data"][0]["embedding"], json!(BASE64_STANDARD.encode(&expected)));
        assert_eq!(embeddings_request(&json!({"model": "m", "input": [1, 2]})).unwrap_err().field, "input");
        assert_eq!(
            embeddings_request(&json!({"model": "m", "input": "x", "encoding_format": "hex"})).unwrap_err().field,
            "encoding_format"
        );
        assert_eq!(embeddings_request(&json!({"input": "x"})).unwrap_err().field, "model");
    }

    #[test]
    fn model_list_hides_and_adds_search_variants() {
        let g = json!({"models": [{"name": "models/gemini-2.5-flash"}, {"name": "models/gemini-2.5-pro"}, {"name": "models/secret"}]});
        let out = models_list(
            &g,
            &["secret".to_string(), "gemini-2.5-pro-search".to_string()],
            &["gemini-2.5-flash".into(), "gemini-2.5-pro".into()],
        );
        let ids: Vec<&str> = out["data"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap()).collect();
        assert_eq!(ids, vec!["gemini-2.5-flash", "gemini-2.5-pro", "gemini-2.5-flash-search"]);
        assert_eq!(
            out["data"][0],
            json!({"id": "gemini-2.5-flash", "object": "model", "created": 0, "owned_by": "google"})
        );
    }
}
