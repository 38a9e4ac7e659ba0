//! PURE: an OpenAI Responses request → a Gemini generateContent body. `input` is a string or
//! items (messages with text, images and files; `function_call` and `function_call_output`;
//! `reasoning`, which Gemini has no use for and is not sent back: the thought signatures ride in
//! the `call_id`s, so a client that keeps state itself, as Codex does, round-trips them).
//! `history` is the conversation of `previous_response_id`, already loaded, in the same items.

use std::collections::HashMap;

use serde_json::{Map, Value, json};

use crate::dialect::openai::bad_request::{BadRequest, bad, checked_model};
use crate::dialect::openai::chat::Options;
use crate::dialect::openai::chat::request::{inline_from_url, parse_arguments};
use crate::dialect::schema::tool_parameters;
use crate::dialect::signature::signature_from_id;
use crate::dialect::wire::{
    Empty, FunctionCallingConfig, FunctionDeclaration, GenerateRequest, GenerationConfig, Part, Role,
    SystemInstruction, ThinkingConfig, Tool, ToolConfig,
};
use crate::models::{self, ModelName};

#[derive(Debug, Clone, PartialEq)]
pub struct ResponsesRequest {
    pub model: String,
    pub upstream_model: ModelName,
    pub stream: bool,
    pub store: bool,
    /// The request's own input as items (a string input becomes one user message), to store.
    pub input: Vec<Value>,
    /// The namespace of each function declared inside a `namespace` tool, for its calls' items.
    pub namespaces: HashMap<String, String>,
    pub body: GenerateRequest,
}

/// The input as items: a string is one user message.
pub fn input_items(req: &Value) -> Result<Vec<Value>, BadRequest> {
    match req.get("input") {
        Some(Value::String(s)) => Ok(vec![json!({"type": "message", "role": "user", "content": s})]),
        Some(Value::Array(items)) => Ok(items.clone()),
        None | Some(Value::Null) => Err(bad("input", "required: a string or an array of items")),
        Some(_) => Err(bad("input", "must be a string or an array of items")),
    }
}

/// The http(s) image URLs the input names, for the gateway to fetch first.
pub fn remote_image_urls(items: &[Value]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for item in items {
        for part in item.get("content").and_then(Value::as_array).into_iter().flatten() {
            if part.get("type").and_then(Value::as_str) == Some("input_image")
                && let Some(url) = part.get("image_url").and_then(Value::as_str)
                && (url.starts_with("http://") || url.starts_with("https://"))
                && !out.iter().any(|u| u == url)
            {
                out.push(url.to_string());
            }
        }
    }
    out
}

pub fn responses_request(req: &Value, history: &[Value], opts: &Options) -> Result<ResponsesRequest, BadRequest> {
    let obj = req.as_object().ok_or_else(|| bad("body", "must be a JSON object"))?;
    let (model, upstream_model) = checked_model(obj)?;
    let mut upstream_model = match opts.aliases {
        Some(a) => models::aliased(a, upstream_model),
        None => upstream_model,
    };
    let mut body = GenerateRequest::default();
    if let Some(base) = models::search_base(upstream_model.as_str(), opts.search_models) {
        upstream_model = ModelName::parse(base).map_err(|e| bad("model", e.to_string()))?;
        body.tools.push(Tool::GoogleSearch(Empty {}));
    }
    let flag = |name: &str, default: bool| match obj.get(name) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(bad(name, "must be a boolean")),
    };
    let (stream, store) = (flag("stream", false)?, flag("store", true)?);
    let input = input_items(req)?;
    let mut system = Vec::new();
    let mut calls: HashMap<String, String> = HashMap::new();
    for (i, item) in history.iter().enumerate() {
        convert_item(item, &format!("previous_response_id[{i}]"), opts, &mut body, &mut system, &mut calls)?;
    }
    for (i, item) in input.iter().enumerate() {
        convert_item(item, &format!("input[{i}]"), opts, &mut body, &mut system, &mut calls)?;
    }
    if body.contents.is_empty() {
        return Err(bad("input", "no message with content"));
    }
    if let Some(instructions) = obj.get("instructions").and_then(Value::as_str).filter(|s| !s.is_empty()) {
        system.insert(0, Part::text(instructions));
    }
    if !system.is_empty() {
        body.system_instruction = Some(SystemInstruction { parts: system });
    }
    let mut namespaces = HashMap::new();
    if let Some(tools) = obj.get("tools").filter(|t| !t.is_null()) {
        body.tools.extend(tools_of(tools, &mut namespaces)?);
    }
    if let Some(choice) = obj.get("tool_choice").filter(|c| !c.is_null()) {
        body.tool_config = Some(ToolConfig { function_calling_config: tool_choice(choice)? });
    }
    body.generation_config = generation_config(obj, upstream_model.as_str(), opts)?;
    body.finish_for(upstream_model.as_str(), opts.safety);
    Ok(ResponsesRequest { model, upstream_model, stream, store, input, namespaces, body })
}

fn convert_item(
    item: &Value,
    f: &str,
    opts: &Options,
    body: &mut GenerateRequest,
    system: &mut Vec<Part>,
    calls: &mut HashMap<String, String>,
) -> Result<(), BadRequest> {
    let kind = item.get("type").and_then(Value::as_str).unwrap_or("message");
    match kind {
        "message" => {
            let role = item.get("role").and_then(Value::as_str).ok_or_else(|| bad(format!("{f}.role"), "required"))?;
            let parts = content_parts(item.get("content").unwrap_or(&Value::Null), &format!("{f}.content"), opts)?;
            match role {
                "system" | "developer" => system.extend(parts),
                "user" if !parts.is_empty() => body.push_turn(Role::User, parts),
                "assistant" if !parts.is_empty() => body.push_turn(Role::Model, parts),
                "user" | "assistant" => {}
                other => return Err(bad(format!("{f}.role"), format!("unknown role {other:?}"))),
            }
        }
        "function_call" => {
            let name = item.get("name").and_then(Value::as_str).ok_or_else(|| bad(format!("{f}.name"), "required"))?;
            let call_id =
                item.get("call_id").and_then(Value::as_str).ok_or_else(|| bad(format!("{f}.call_id"), "required"))?;
            let args = parse_arguments(item.get("arguments"), &format!("{f}.arguments"))?;
            calls.insert(call_id.to_string(), name.to_string());
            body.push_turn(Role::Model, vec![Part::call(name, args, signature_from_id(call_id))]);
        }
        "function_call_output" => {
            let call_id =
                item.get("call_id").and_then(Value::as_str).ok_or_else(|| bad(format!("{f}.call_id"), "required"))?;
            let name = calls.get(call_id).cloned().ok_or_else(|| {
                bad(format!("{f}.call_id"), format!("no earlier function_call has call_id {call_id:?}"))
            })?;
            let text = match item.get("output") {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Array(parts)) => {
                    parts.iter().filter_map(|p| p.get("text").and_then(Value::as_str)).collect::<Vec<_>>().join("")
                }
                None | Some(Value::Null) => String::new(),
                Some(other) => other.to_string(),
            };
            let response = match serde_json::from_str::<Value>(&text) {
                Ok(Value::Object(o)) => Value::Object(o),
                _ => json!({ "result": text }),
            };
            body.push_turn(Role::User, vec![Part::response(name, response)]);
        }
        // Gemini's thoughts are not sent back; the signatures ride in the call ids.
        "reasoning" | "item_reference" => {}
        other => return Err(bad(format!("{f}.type"), format!("unsupported input item type {other:?}"))),
    }
    Ok(())
}

fn content_parts(content: &Value, f: &str, opts: &Options) -> Result<Vec<Part>, BadRequest> {
    match content {
        Value::Null => Ok(Vec::new()),
        Value::String(s) if s.is_empty() => Ok(Vec::new()),
        Value::String(s) => Ok(vec![Part::text(s.as_str())]),
        Value::Array(parts) => {
            let mut out = Vec::new();
            for (k, p) in parts.iter().enumerate() {
                let pf = format!("{f}[{k}]");
                match p.get("type").and_then(Value::as_str) {
                    Some("input_text" | "output_text" | "text" | "summary_text") => {
                        let t = p
                            .get("text")
                            .and_then(Value::as_str)
                            .ok_or_else(|| bad(format!("{pf}.text"), "required"))?;
                        if !t.is_empty() {
                            out.push(Part::text(t));
                        }
                    }
                    Some("refusal") => {}
                    Some("input_image") => {
                        let url = p
                            .get("image_url")
                            .and_then(Value::as_str)
                            .ok_or_else(|| bad(format!("{pf}.image_url"), "required (file_id is not supported)"))?;
                        out.push(inline_from_url(url, &format!("{pf}.image_url"), opts)?);
                    }
                    Some("input_file") => {
                        let data = p
                            .get("file_data")
                            .and_then(Value::as_str)
                            .ok_or_else(|| bad(format!("{pf}.file_data"), "required (a data: URL)"))?;
                        out.push(inline_from_url(data, &format!("{pf}.file_data"), opts)?);
                    }
                    other => return Err(bad(format!("{pf}.type"), format!("unsupported content type {other:?}"))),
                }
            }
            Ok(out)
        }
        _ => Err(bad(f, "must be a string or an array of content parts")),
    }
}

fn declaration(t: &Value, f: &str) -> Result<FunctionDeclaration, BadRequest> {
    let name = t.get("name").and_then(Value::as_str).ok_or_else(|| bad(format!("{f}.name"), "required"))?;
    let description = t.get("description").and_then(Value::as_str).map(String::from);
    let parameters = tool_parameters(t.get("parameters"));
    Ok(FunctionDeclaration { name: name.to_string(), description, parameters })
}

fn tools_of(tools: &Value, namespaces: &mut HashMap<String, String>) -> Result<Vec<Tool>, BadRequest> {
    let list = tools.as_array().ok_or_else(|| bad("tools", "must be an array"))?;
    let mut out = Vec::new();
    let mut declarations = Vec::new();
    for (i, t) in list.iter().enumerate() {
        match t.get("type").and_then(Value::as_str) {
            Some("function") => declarations.push(declaration(t, &format!("tools[{i}]"))?),
            // A group of functions (Codex's sub-agent tools): each is declared; its calls name the
            // namespace again.
            Some("namespace") => {
                let ns =
                    t.get("name").and_then(Value::as_str).ok_or_else(|| bad(format!("tools[{i}].name"), "required"))?;
                for (j, inner) in t.get("tools").and_then(Value::as_array).into_iter().flatten().enumerate() {
                    let f = format!("tools[{i}].tools[{j}]");
                    if inner.get("type").and_then(Value::as_str) != Some("function") {
                        return Err(bad(format!("{f}.type"), "a namespace holds function tools"));
                    }
                    let d = declaration(inner, &f)?;
                    namespaces.insert(d.name.clone(), ns.to_string());
                    declarations.push(d);
                }
            }
            Some("web_search" | "web_search_preview" | "web_search_2025_08_26") => {
                out.push(Tool::GoogleSearch(Empty {}));
            }
            other => {
                return Err(bad(
                    format!("tools[{i}].type"),
                    format!("unsupported tool type {other:?}: use function, namespace or web_search"),
                ));
            }
        }
    }
    if !declarations.is_empty() {
        out.push(Tool::FunctionDeclarations(declarations));
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
        Value::Object(o) => match o.get("name").and_then(Value::as_str) {
            Some(name) => Ok(FunctionCallingConfig { mode: "ANY", allowed_function_names: vec![name.to_string()] }),
            None => Err(bad("tool_choice.name", "required")),
        },
        _ => Err(bad("tool_choice", "must be a string or an object")),
    }
}

fn generation_config(obj: &Map<String, Value>, model: &str, opts: &Options) -> Result<GenerationConfig, BadRequest> {
    let number = |name: &str| crate::dialect::openai::bad_request::number(obj, name);
    let mut g = GenerationConfig {
        temperature: number("temperature")?,
        top_p: number("top_p")?,
        max_output_tokens: number("max_output_tokens")?,
        ..GenerationConfig::default()
    };
    if let Some(format) = obj.get("text").and_then(|t| t.get("format")).filter(|f| !f.is_null()) {
        match format.get("type").and_then(Value::as_str) {
            Some("text") => {}
            Some("json_object") => g.response_mime_type = Some("application/json"),
            Some("json_schema") => {
                let schema = format.get("schema").ok_or_else(|| bad("text.format.schema", "required"))?;
                g.response_mime_type = Some("application/json");
                g.response_json_schema = Some(schema.clone());
            }
            other => {
                return Err(bad(
                    "text.format.type",
                    format!("unsupported {other:?}: use text, json_object or json_schema"),
                ));
            }
        }
    }
    let reasoning = obj.get("reasoning").filter(|r| !r.is_null());
    let summary = reasoning.and_then(|r| r.get("summary")).and_then(Value::as_str).is_some_and(|s| s != "none");
    g.thinking_config = match reasoning.and_then(|r| r.get("effort")).filter(|e| !e.is_null()) {
        Some(effort) => {
            let budget = match effort.as_str() {
                Some("none" | "minimal") => 0,
                Some("low") => 1024,
                Some("medium") => 8192,
                Some("high" | "xhigh") => 24576,
                _ => return Err(bad("reasoning.effort", "use minimal, low, medium or high")),
            };
            Some(ThinkingConfig { thinking_budget: budget, include_thoughts: Some(summary && budget != 0) })
        }
        None if summary => Some(ThinkingConfig { thinking_budget: -1, include_thoughts: Some(true) }),
        None => opts
            .thinking_budget
            .and_then(|b| b.get(model))
            .map(|budget| ThinkingConfig { thinking_budget: *budget, include_thoughts: None }),
    };
    Ok(g)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dialect::signature::url_safe_call_id;

    fn convert(v: Value, history: &[Value]) -> Result<ResponsesRequest, BadRequest> {
        responses_request(&v, history, &Options { safety: "passthrough", ..Options::default() })
    }

    #[test]
    fn a_stateless_tool_loop_gives_gemini_back_its_signatures() {
        let call_id = url_safe_call_id("call_", "shell", "{\"cmd\":\"ls\"}", 0, Some("c2ln+w=="));
        let r = convert(
            json!({"model": "gpt-5-codex", "instructions": "You are a coding agent.", "store": false,
                "input": [
                    {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "Be careful."}]},
                    {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "List files"}]},
                    {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "x"},
                    {"type": "function_call", "call_id": call_id, "name": "shell", "arguments": "{\"cmd\":\"ls\"}"},
                    {"type": "function_call_output", "call_id": call_id, "output": "a.txt"}],
                "tools": [{"type": "function", "name": "shell", "description": "Run", "strict": true,
                           "parameters": {"type": "object", "properties": {"cmd": {"type": "string"}}, "required": ["cmd"], "additionalProperties": false}}],
                "tool_choice": "auto", "reasoning": {"effort": "low", "summary": "auto"}, "max_output_tokens": 100,
                "text": {"format": {"type": "json_schema", "name": "x", "schema": {"type": "object"}}}}),
            &[],
        )
        .unwrap();
        assert!(!r.store);
        let v = serde_json::to_value(&r.body).unwrap();
        assert_eq!(
            v["systemInstruction"]["parts"],
            json!([{"text": "You are a coding agent."}, {"text": "Be careful."}])
        );
        assert_eq!(
            v["contents"][1],
            json!({"role": "model", "parts": [{"functionCall": {"name": "shell", "args": {"cmd": "ls"}}, "thoughtSignature": "c2ln+w=="}]})
        );
        assert_eq!(
            v["contents"][2]["parts"][0]["functionResponse"],
            json!({"name": "shell", "response": {"result": "a.txt"}})
        );
        assert_eq!(v["tools"][0]["functionDeclarations"][0]["parameters"]["required"], json!(["cmd"]));
        assert_eq!(v["generationConfig"]["thinkingConfig"], json!({"thinkingBudget": 1024, "includeThoughts": true}));
        assert_eq!(v["generationConfig"]["responseMimeType"], "application/json");
        assert_eq!(v["generationConfig"]["maxOutputTokens"], 100);
    }

    /// Every truncation and type confusion of a valid body translates or is refused naming a field.
    #[test]
    fn malformed_bodies_translate_or_are_refused_naming_a_field() {
        let valid = json!({"model": "m", "instructions": "i", "stream": false, "store": true, "temperature": 0.5,
            "max_output_tokens": 9, "reasoning": {"effort": "low", "summary": "auto"},
            "text": {"format": {"type": "json_schema", "name": "n", "schema": {"type": "object"}}},
            "tools": [{"type": "function", "name": "f", "parameters": {"type": "object", "properties": {"a": {"type": "string"}}}}],
            "tool_choice": {"type": "function", "name": "f"},
            "input": [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "t"}]},
                      {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
                      {"type": "function_call_output", "call_id": "c1", "output": "ok"}]});
        let bodies = crate::dialect::openai::chat::tests::malformed_variants(&valid);
        let (mut refused, mut translated) = (0, 0);
        for body in &bodies {
            let Ok(v) = serde_json::from_str::<Value>(body) else { continue };
            match convert(v.clone(), &[]) {
                Ok(r) => {
                    assert!(serde_json::to_vec(&r.body).is_ok());
                    translated += 1;
                }
                Err(e) => {
                    let root = e.field.split(['.', '[']).next().unwrap_or("");
                    assert!(root == "body" || v.get(root).is_some() || root == "input", "{body}: {e}");
                    refused += 1;
                }
            }
        }
        assert!(refused > 30 && translated > 20, "refused {refused}, translated {translated}");
    }

    #[test]
    fn history_comes_first_and_mistakes_name_their_field() {
        let history = [
            json!({"type": "message", "role": "user", "content": "Hi"}),
            json!({"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Hello"}]}),
        ];
        let r = convert(json!({"model": "m", "input": "And?"}), &history).unwrap();
        assert_eq!(r.body.contents.len(), 3);
        assert_eq!(r.input, vec![json!({"type": "message", "role": "user", "content": "And?"})]);
        let field = |v: Value| convert(v, &[]).unwrap_err().field;
        assert_eq!(field(json!({"model": "m"})), "input");
        assert_eq!(
            field(json!({"model": "m", "input": "x", "tools": [{"type": "code_interpreter"}]})),
            "tools[0].type"
        );
        assert_eq!(
            field(json!({"model": "m", "input": [{"type": "function_call_output", "call_id": "c", "output": "x"}]})),
            "input[0].call_id"
        );
        assert_eq!(field(json!({"model": "m", "input": "x", "reasoning": {"effort": "max"}})), "reasoning.effort");
        let r = convert(json!({"model": "m", "input": "x", "tools": [{"type": "web_search"}]}), &[]).unwrap();
        assert_eq!(serde_json::to_value(&r.body).unwrap()["tools"], json!([{"googleSearch": {}}]));
    }
}
