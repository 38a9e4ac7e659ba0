//! PURE: an Anthropic Messages request → a Gemini generateContent body. Tool calls carry their
//! Gemini thought signatures in their `toolu_` ids (dialect/signature.rs), so a replayed turn
//! gives Gemini back every signature it made; `thinking` and `redacted_thinking` blocks are not
//! sent back (Gemini keeps no use for its thought text, and its signatures ride in the ids).

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
use crate::models::{self, ModelName};

#[derive(Debug, Default)]
pub struct Options<'a> {
    pub aliases: Option<&'a BTreeMap<String, String>>,
    /// `passthrough` or a threshold for every category.
    pub safety: &'a str,
    /// http(s) image URLs already fetched by the gateway: url → (mime type, base64 data).
    pub images: Option<&'a HashMap<String, (String, String)>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MessagesRequest {
    /// As the client named it (the answer names it too).
    pub model: String,
    pub upstream_model: ModelName,
    pub stream: bool,
    pub body: GenerateRequest,
}

/// The http(s) image URLs a request names, for the gateway to fetch first.
pub fn remote_image_urls(req: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let mut visit = |block: &Value| {
        if block.get("type").and_then(Value::as_str) == Some("image")
            && block.pointer("/source/type").and_then(Value::as_str) == Some("url")
            && let Some(url) = block.pointer("/source/url").and_then(Value::as_str)
            && !out.iter().any(|u| u == url)
        {
            out.push(url.to_string());
        }
    };
    for m in req.get("messages").and_then(Value::as_array).into_iter().flatten() {
        for block in m.get("content").and_then(Value::as_array).into_iter().flatten() {
            visit(block);
            for inner in block.get("content").and_then(Value::as_array).into_iter().flatten() {
                visit(inner);
            }
        }
    }
    out
}

pub fn messages_request(req: &Value, opts: &Options) -> Result<MessagesRequest, BadRequest> {
    let obj = req.as_object().ok_or_else(|| bad("body", "must be a JSON object"))?;
    let (model, upstream_model) = checked_model(obj)?;
    let upstream_model = match opts.aliases {
        Some(a) => models::aliased(a, upstream_model),
        None => upstream_model,
    };
    let stream = match obj.get("stream") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(bad("stream", "must be a boolean")),
    };
    let mut body = GenerateRequest::default();
    let messages =
        obj.get("messages").and_then(Value::as_array).ok_or_else(|| bad("messages", "required: an array"))?;
    let later_system = convert_messages(messages, opts, &mut body)?;
    let mut system = system_parts(obj.get("system"))?;
    system.extend(later_system);
    if !system.is_empty() {
        body.system_instruction = Some(SystemInstruction { parts: system });
    }
    if let Some(tools) = obj.get("tools").filter(|t| !t.is_null()) {
        body.tools = tools_of(tools)?;
    }
    if let Some(choice) = obj.get("tool_choice").filter(|c| !c.is_null()) {
        body.tool_config = Some(ToolConfig { function_calling_config: tool_choice(choice)? });
    }
    body.generation_config = generation_config(obj)?;
    body.finish_for(upstream_model.as_str(), opts.safety);
    Ok(MessagesRequest { model, upstream_model, stream, body })
}

fn system_parts(system: Option<&Value>) -> Result<Vec<Part>, BadRequest> {
    match system {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) if s.is_empty() => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(vec![Part::text(s.as_str())]),
        Some(Value::Array(blocks)) => blocks
            .iter()
            .enumerate()
            .map(|(i, b)| {
                b.get("text")
                    .and_then(Value::as_str)
                    .map(Part::text)
                    .ok_or_else(|| bad(format!("system[{i}].text"), "required: system blocks are text"))
            })
            .collect(),
        Some(_) => Err(bad("system", "must be a string or an array of text blocks")),
    }
}

/// The messages as Gemini turns in `body`; returns the text of `system` messages (Claude Code
/// sends some among the turns), which joins the system instruction.
fn convert_messages(messages: &[Value], opts: &Options, body: &mut GenerateRequest) -> Result<Vec<Part>, BadRequest> {
    // Tool results name their call by id; Gemini names it by function name.
    let mut call_names: HashMap<String, String> = HashMap::new();
    let mut system = Vec::new();
    for (i, m) in messages.iter().enumerate() {
        let field = format!("messages[{i}]");
        let role = match m.get("role").and_then(Value::as_str) {
            Some("user") => Role::User,
            Some("assistant") => Role::Model,
            Some("system") => {
                system.extend(system_parts(m.get("content")).map_err(|e| bad(format!("{field}.content"), e.message))?);
                continue;
            }
            Some(other) => {
                return Err(bad(format!("{field}.role"), format!("{other:?}: use user, assistant or system")));
            }
            None => return Err(bad(format!("{field}.role"), "required")),
        };
        let mut parts = Vec::new();
        let mut responses = Vec::new();
        match m.get("content") {
            Some(Value::String(s)) => {
                if !s.is_empty() {
                    parts.push(Part::text(s.as_str()));
                }
            }
            Some(Value::Array(blocks)) => {
                for (k, b) in blocks.iter().enumerate() {
                    let f = format!("{field}.content[{k}]");
                    block(b, &f, role, opts, &mut call_names, &mut parts, &mut responses)?;
                }
            }
            _ => return Err(bad(format!("{field}.content"), "required: a string or an array of blocks")),
        }
        // Function responses lead their turn, as Gemini pairs them with the calls before.
        responses.extend(parts);
        if !responses.is_empty() {
            body.push_turn(role, responses);
        }
    }
    if body.contents.is_empty() {
        return Err(bad("messages", "no message with content"));
    }
    Ok(system)
}

fn block(
    b: &Value,
    f: &str,
    role: Role,
    opts: &Options,
    call_names: &mut HashMap<String, String>,
    parts: &mut Vec<Part>,
    responses: &mut Vec<Part>,
) -> Result<(), BadRequest> {
    let kind = b.get("type").and_then(Value::as_str).ok_or_else(|| bad(format!("{f}.type"), "required"))?;
    match (kind, role) {
        ("text", _) => {
            let t = b.get("text").and_then(Value::as_str).ok_or_else(|| bad(format!("{f}.text"), "required"))?;
            if !t.is_empty() {
                parts.push(Part::text(t));
            }
        }
        ("image" | "document", _) => parts.push(source(b, f, opts)?),
        ("tool_use", Role::Model) => {
            let name = b.get("name").and_then(Value::as_str).ok_or_else(|| bad(format!("{f}.name"), "required"))?;
            let id = b.get("id").and_then(Value::as_str).ok_or_else(|| bad(format!("{f}.id"), "required"))?;
            let input = match b.get("input") {
                None | Some(Value::Null) => json!({}),
                Some(Value::Object(o)) => Value::Object(o.clone()),
                Some(_) => return Err(bad(format!("{f}.input"), "must be an object")),
            };
            call_names.insert(id.to_string(), name.to_string());
            parts.push(Part::call(name, input, signature_from_id(id)));
        }
        ("tool_result", Role::User) => {
            let id = b
                .get("tool_use_id")
                .and_then(Value::as_str)
                .ok_or_else(|| bad(format!("{f}.tool_use_id"), "required"))?;
            let name = call_names.get(id).cloned().ok_or_else(|| {
                bad(format!("{f}.tool_use_id"), format!("no earlier assistant tool_use has id {id:?}"))
            })?;
            let mut text = String::new();
            match b.get("content") {
                None | Some(Value::Null) => {}
                Some(Value::String(s)) => text.push_str(s),
                Some(Value::Array(inner)) => {
                    for (j, c) in inner.iter().enumerate() {
                        match c.get("type").and_then(Value::as_str) {
                            Some("text") => text.push_str(c.get("text").and_then(Value::as_str).unwrap_or("")),
                            // Images a tool returned follow the responses in the same turn.
                            Some("image" | "document") => parts.push(source(c, &format!("{f}.content[{j}]"), opts)?),
                            other => {
                                return Err(bad(format!("{f}.content[{j}].type"), format!("unsupported {other:?}")));
                            }
                        }
                    }
                }
                Some(_) => return Err(bad(format!("{f}.content"), "must be a string or an array of blocks")),
            }
            let is_error = b.get("is_error").and_then(Value::as_bool).unwrap_or(false);
            let response = match (serde_json::from_str::<Value>(&text), is_error) {
                (_, true) => json!({ "error": text }),
                (Ok(Value::Object(o)), false) => Value::Object(o),
                (_, false) => json!({ "result": text }),
            };
            responses.push(Part::response(name, response));
        }
        // Gemini's thoughts are not sent back; their signatures ride in the tool ids.
        ("thinking" | "redacted_thinking", Role::Model) => {}
        ("tool_use" | "thinking" | "redacted_thinking", Role::User) => {
            return Err(bad(format!("{f}.type"), format!("{kind} blocks belong to assistant messages")));
        }
        ("tool_result", Role::Model) => {
            return Err(bad(format!("{f}.type"), "tool_result blocks belong to user messages"));
        }
        (other, _) => return Err(bad(format!("{f}.type"), format!("unsupported block type {other:?}"))),
    }
    Ok(())
}

/// An image or document `source`: base64 data, plain text, or a URL the gateway fetched.
fn source(b: &Value, f: &str, opts: &Options) -> Result<Part, BadRequest> {
    let src = b.get("source").ok_or_else(|| bad(format!("{f}.source"), "required"))?;
    match src.get("type").and_then(Value::as_str) {
        Some("base64") => {
            let mime = src.get("media_type").and_then(Value::as_str).unwrap_or("application/octet-stream");
            let data =
                src.get("data").and_then(Value::as_str).ok_or_else(|| bad(format!("{f}.source.data"), "required"))?;
            if BASE64_STANDARD.decode(data).is_err() {
                return Err(bad(format!("{f}.source.data"), "invalid base64"));
            }
            Ok(Part::inline(mime, data))
        }
        Some("text") => Ok(Part::text(src.get("data").and_then(Value::as_str).unwrap_or(""))),
        Some("url") => {
            let url =
                src.get("url").and_then(Value::as_str).ok_or_else(|| bad(format!("{f}.source.url"), "required"))?;
            match opts.images.and_then(|m| m.get(url)) {
                Some((mime, data)) => Ok(Part::inline(mime.as_str(), data.as_str())),
                None => Err(bad(format!("{f}.source.url"), "the image could not be fetched")),
            }
        }
        other => Err(bad(format!("{f}.source.type"), format!("unsupported {other:?}: use base64, text or url"))),
    }
}

fn tools_of(tools: &Value) -> Result<Vec<Tool>, BadRequest> {
    let list = tools.as_array().ok_or_else(|| bad("tools", "must be an array"))?;
    let mut declarations = Vec::new();
    let mut out = Vec::new();
    for (i, t) in list.iter().enumerate() {
        let kind = t.get("type").and_then(Value::as_str).unwrap_or("custom");
        if kind.starts_with("web_search") {
            out.push(Tool::GoogleSearch(Empty {}));
            continue;
        }
        if kind != "custom" {
            return Err(bad(
                format!("tools[{i}].type"),
                format!("unsupported tool type {kind:?}: use custom tools or web_search"),
            ));
        }
        let name = t.get("name").and_then(Value::as_str).ok_or_else(|| bad(format!("tools[{i}].name"), "required"))?;
        let description = t.get("description").and_then(Value::as_str).map(String::from);
        let parameters = tool_parameters(t.get("input_schema"));
        declarations.push(FunctionDeclaration { name: name.to_string(), description, parameters });
    }
    if !declarations.is_empty() {
        out.push(Tool::FunctionDeclarations(declarations));
    }
    Ok(out)
}

fn tool_choice(choice: &Value) -> Result<FunctionCallingConfig, BadRequest> {
    let mode = |mode| FunctionCallingConfig { mode, allowed_function_names: Vec::new() };
    match choice.get("type").and_then(Value::as_str) {
        Some("auto") => Ok(mode("AUTO")),
        Some("any") => Ok(mode("ANY")),
        Some("none") => Ok(mode("NONE")),
        Some("tool") => {
            let name = choice.get("name").and_then(Value::as_str).ok_or_else(|| bad("tool_choice.name", "required"))?;
            Ok(FunctionCallingConfig { mode: "ANY", allowed_function_names: vec![name.to_string()] })
        }
        _ => Err(bad("tool_choice.type", "use auto, any, tool or none")),
    }
}

fn generation_config(obj: &Map<String, Value>) -> Result<GenerationConfig, BadRequest> {
    let number = |name: &str| crate::dialect::openai::bad_request::number(obj, name);
    let mut g = GenerationConfig {
        temperature: number("temperature")?,
        top_p: number("top_p")?,
        top_k: number("top_k")?,
        max_output_tokens: number("max_tokens")?,
        ..GenerationConfig::default()
    };
    g.stop_sequences = match obj.get("stop_sequences") {
        None | Some(Value::Null) => None,
        Some(Value::Array(a)) if a.iter().all(Value::is_string) => {
            Some(a.iter().filter_map(Value::as_str).map(String::from).collect())
        }
        Some(_) => return Err(bad("stop_sequences", "must be an array of strings")),
    };
    g.thinking_config = match obj.get("thinking").filter(|t| !t.is_null()) {
        None => None,
        Some(t) => match t.get("type").and_then(Value::as_str) {
            Some("enabled") => {
                let budget = t
                    .get("budget_tokens")
                    .and_then(Value::as_i64)
                    .filter(|b| *b >= 0)
                    .ok_or_else(|| bad("thinking.budget_tokens", "required: a number of tokens"))?;
                Some(ThinkingConfig { thinking_budget: budget, include_thoughts: Some(true) })
            }
            // `adaptive`: the model decides, and shows its thoughts.
            Some("adaptive") => Some(ThinkingConfig { thinking_budget: -1, include_thoughts: Some(true) }),
            Some("disabled") => None,
            _ => return Err(bad("thinking.type", "use enabled, adaptive or disabled")),
        },
    };
    Ok(g)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dialect::signature::url_safe_call_id;

    fn convert(v: Value) -> Result<MessagesRequest, BadRequest> {
        messages_request(&v, &Options { safety: "passthrough", ..Options::default() })
    }

    #[test]
    fn a_tool_loop_becomes_gemini_turns_with_signatures_back_on_their_calls() {
        let id = url_safe_call_id("toolu_", "get_weather", "{\"city\":\"Paris\"}", 0, Some("c2lnLzE+"));
        let r = convert(json!({
            "model": "claude-sonnet-4-5", "max_tokens": 1024, "system": [{"type": "text", "text": "Be brief."}],
            "messages": [
                {"role": "user", "content": "Weather in Paris?"},
                {"role": "assistant", "content": [
                    {"type": "thinking", "thinking": "I should call the tool", "signature": "c2lnLzE+"},
                    {"type": "text", "text": "Let me check."},
                    {"type": "tool_use", "id": id, "name": "get_weather", "input": {"city": "Paris"}}]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": id, "content": [{"type": "text", "text": "{\"temp\": 21}"}]},
                    {"type": "text", "text": "And tomorrow?"}]}],
            "tools": [{"name": "get_weather", "description": "Weather", "input_schema": {"type": "object",
                "properties": {"city": {"type": "string"}}, "required": ["city"], "additionalProperties": false}}],
            "tool_choice": {"type": "auto"},
            "thinking": {"type": "enabled", "budget_tokens": 2048}, "stop_sequences": ["END"], "top_k": 5
        }))
        .unwrap();
        let v = serde_json::to_value(&r.body).unwrap();
        assert_eq!(v["systemInstruction"], json!({"parts": [{"text": "Be brief."}]}));
        assert_eq!(
            v["contents"][1],
            json!({"role": "model", "parts": [{"text": "Let me check."},
                {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}, "thoughtSignature": "c2lnLzE+"}]})
        );
        assert_eq!(
            v["contents"][2],
            json!({"role": "user", "parts": [{"functionResponse": {"name": "get_weather", "response": {"temp": 21}}},
                {"text": "And tomorrow?"}]})
        );
        assert_eq!(
            v["tools"][0]["functionDeclarations"][0]["parameters"],
            json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]})
        );
        assert_eq!(v["toolConfig"], json!({"functionCallingConfig": {"mode": "AUTO"}}));
        assert_eq!(
            v["generationConfig"],
            json!({"maxOutputTokens": 1024, "topK": 5, "stopSequences": ["END"],
                   "thinkingConfig": {"thinkingBudget": 2048, "includeThoughts": true}})
        );
    }

    #[test]
    fn parallel_calls_answered_out_of_order_reach_gemini_in_its_order() {
        let a = url_safe_call_id("toolu_", "weather", "{}", 0, Some("U0lH"));
        let b = url_safe_call_id("toolu_", "time", "{}", 1, None);
        let r = convert(json!({"model": "gemini-3-pro-preview", "messages": [
            {"role": "user", "content": "both"},
            {"role": "assistant", "content": [
                {"type": "tool_use", "id": a, "name": "weather", "input": {}},
                {"type": "tool_use", "id": b, "name": "time", "input": {}}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": b, "content": "noon"},
                {"type": "tool_result", "tool_use_id": a, "content": "sunny"}]}]}))
        .unwrap();
        let v = serde_json::to_value(&r.body).unwrap();
        assert_eq!(
            v["contents"][1]["parts"][0]["thoughtSignature"], "U0lH",
            "Gemini's own signature, on the first call"
        );
        assert!(
            v["contents"][1]["parts"][1].get("thoughtSignature").is_none(),
            "the parallel call Gemini left unsigned"
        );
        let names: Vec<&str> = v["contents"][2]["parts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["functionResponse"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["weather", "time"]);
    }

    /// Every truncation and type confusion of a valid body translates or is refused naming a field.
    #[test]
    fn malformed_bodies_translate_or_are_refused_naming_a_field() {
        let valid = json!({"model": "m", "max_tokens": 5, "system": [{"type": "text", "text": "s"}], "stream": false,
            "temperature": 0.5, "stop_sequences": ["x"], "thinking": {"type": "enabled", "budget_tokens": 10},
            "tools": [{"name": "f", "input_schema": {"type": "object", "properties": {"a": {"type": "string"}}}}],
            "tool_choice": {"type": "tool", "name": "f"},
            "messages": [{"role": "user", "content": [{"type": "text", "text": "t"},
                          {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}]},
                         {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}}]},
                         {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "ok"}]}]});
        let bodies = crate::dialect::openai::chat::tests::malformed_variants(&valid);
        let (mut refused, mut translated) = (0, 0);
        for body in &bodies {
            let Ok(v) = serde_json::from_str::<Value>(body) else { continue };
            match convert(v.clone()) {
                Ok(r) => {
                    assert!(serde_json::to_vec(&r.body).is_ok());
                    translated += 1;
                }
                Err(e) => {
                    let root = e.field.split(['.', '[']).next().unwrap_or("");
                    assert!(root == "body" || v.get(root).is_some() || root == "messages", "{body}: {e}");
                    refused += 1;
                }
            }
        }
        assert!(refused > 30 && translated > 20, "refused {refused}, translated {translated}");
    }

    #[test]
    fn images_errors_and_choices() {
        let r = convert(json!({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": [
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
            {"type": "text", "text": "what is this"}]}],
            "tool_choice": {"type": "tool", "name": "f"}}))
        .unwrap();
        let v = serde_json::to_value(&r.body).unwrap();
        assert_eq!(
            v["contents"][0]["parts"][0],
            json!({"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}})
        );
        assert_eq!(v["toolConfig"]["functionCallingConfig"], json!({"mode": "ANY", "allowedFunctionNames": ["f"]}));
        let err = |v: Value| convert(v).unwrap_err().field;
        assert_eq!(err(json!({"max_tokens": 5, "messages": []})), "model");
        assert_eq!(err(json!({"model": "m", "messages": [{"role": "robot", "content": "x"}]})), "messages[0].role");
        let r = convert(json!({"model": "m", "system": "A", "messages": [{"role": "user", "content": "x"}, {"role": "system", "content": "B"}]})).unwrap();
        assert_eq!(
            serde_json::to_value(&r.body).unwrap()["systemInstruction"],
            json!({"parts": [{"text": "A"}, {"text": "B"}]})
        );
        assert_eq!(
            err(
                json!({"model": "m", "messages": [{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_x"}]}]})
            ),
            "messages[0].content[0].tool_use_id"
        );
        assert_eq!(
            err(
                json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "tools": [{"type": "bash_20250124", "name": "bash"}]})
            ),
            "tools[0].type"
        );
        assert_eq!(
            err(
                json!({"model": "m", "messages": [{"role": "user", "content": [{"type": "image", "source": {"type": "base64", "data": "%%%"}}]}]})
            ),
            "messages[0].content[0].source.data"
        );
        let r = convert(json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "tools": [{"type": "web_search_20250305", "name": "web_search"}]})).unwrap();
        assert_eq!(serde_json::to_value(&r.body).unwrap()["tools"], json!([{"googleSearch": {}}]));
        let error = convert(json!({"model": "m", "messages": [
            {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "boom", "is_error": true}]}]})).unwrap();
        assert_eq!(
            serde_json::to_value(&error.body).unwrap()["contents"][1]["parts"][0]["functionResponse"]["response"],
            json!({"error": "boom"})
        );
    }
}
