//! FakeGemini's strictness about what Gemini refuses: `parameters` schemas with keywords
//! Gemini's `Schema` lacks (Google's "Unknown name" 400), a non-string `enum`, and, on
//! `gemini-3-*` models, a replayed function call without its thought signature (Google's 400).

use serde_json::{Value, json};

use crate::fake::{FakeBody, google_error};

/// What Gemini's `Schema` accepts.
const SCHEMA_KEYS: &[&str] = &[
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

/// The value Google documents for turns that never came from Gemini.
pub const BYPASS: &str = "skip_thought_signature_validator";

fn check_schema(s: &Value, at: &str) -> Result<(), String> {
    let Some(obj) = s.as_object() else { return Ok(()) };
    for (k, v) in obj {
        if !SCHEMA_KEYS.contains(&k.as_str()) {
            return Err(format!("Invalid JSON payload received. Unknown name \"{k}\" at '{at}': Cannot find field."));
        }
        match k.as_str() {
            "properties" => {
                for (name, p) in v.as_object().into_iter().flatten() {
                    check_schema(p, &format!("{at}.properties[{name}].value"))?;
                }
            }
            "items" => check_schema(v, &format!("{at}.items"))?,
            "anyOf" => {
                for (i, p) in v.as_array().into_iter().flatten().enumerate() {
                    check_schema(p, &format!("{at}.any_of[{i}]"))?;
                }
            }
            "enum" if v.as_array().is_some_and(|a| !a.iter().all(Value::is_string)) => {
                return Err(format!("Invalid value at '{at}.enum[0]' (TYPE_STRING), 1"));
            }
            "enum" if obj.get("type").and_then(Value::as_str) != Some("string") => {
                return Err(format!("* GenerateContentRequest.{at}.enum: only allowed for STRING type"));
            }
            _ => {}
        }
    }
    Ok(())
}

/// Google's 400 for what `model` would refuse in `req`, if anything.
pub fn refusal(model: &str, req: &Value) -> Option<http::Response<FakeBody>> {
    for (t, tool) in req["tools"].as_array().into_iter().flatten().enumerate() {
        for (d, decl) in tool["functionDeclarations"].as_array().into_iter().flatten().enumerate() {
            if let Some(p) = decl.get("parameters")
                && let Err(m) = check_schema(p, &format!("tools[{t}].function_declarations[{d}].parameters"))
            {
                return Some(google_error(400, "INVALID_ARGUMENT", &m, json!([])));
            }
        }
    }
    if !model.starts_with("gemini-3") {
        return None;
    }
    // Only the current turn's calls (after the last user text) must carry their signatures; for
    // simplicity this fake, like Google for function-calling turns, checks every model turn.
    let mut position = 0;
    for content in req["contents"].as_array().into_iter().flatten() {
        for part in content["parts"].as_array().into_iter().flatten() {
            position += 1;
            if content["role"] == "model"
                && let Some(call) = part.get("functionCall")
                && part.get("thoughtSignature").and_then(Value::as_str).is_none_or(str::is_empty)
            {
                let name = call["name"].as_str().unwrap_or("");
                return Some(google_error(
                    400,
                    "INVALID_ARGUMENT",
                    &format!(
                        "Function call is missing a thought_signature in functionCall parts. This is required for tools to work correctly, and missing thought_signature may lead to degraded model performance. Additional data, function call `default_api:{name}` , position {position}. Please refer to https://ai.google.dev/gemini-api/docs/thought-signatures for more details."
                    ),
                    json!([]),
                ));
            }
        }
    }
    None
}
