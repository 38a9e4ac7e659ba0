//! PURE: the one JSON-Schema → Gemini conversion every dialect uses for tool parameters (chat
//! completions, Responses, Messages). Gemini's `Schema` is an OpenAPI subset; the conversion keeps
//! the meaning of what it cannot say:
//! - local `$ref`s (`#/$defs/X`, `#/definitions/X`) are resolved in place (nested pydantic models
//!   keep their fields), a cycle ending in a described object rather than recursing forever;
//! - `allOf` is merged; `oneOf` becomes `anyOf`; `type: [T, "null"]` becomes `nullable`;
//! - a string `const` becomes a one-value `enum`; a non-string `enum` or `const` (which Gemini
//!   refuses) keeps its type and moves into the description ("one of: 1, 2, 3");
//! - a `format` Gemini does not know (`uri`, `email`, `uuid`, ...) moves into the description;
//! - keywords Gemini lacks (`additionalProperties`, `$schema`, `exclusiveMinimum`, ...) are
//!   dropped, those that constrain values noted in the description.
//!
//! (`parametersJsonSchema` would take full JSON Schema, but not every model accepts it and the
//! answers of those that do are no better for the schemas agents send; `parameters` with this
//! conversion works on every model.)

use serde_json::{Map, Value, json};

/// Keywords Gemini's `Schema` takes as they are.
const KEPT: &[&str] = &[
    "title",
    "description",
    "nullable",
    "maxItems",
    "minItems",
    "required",
    "minProperties",
    "maxProperties",
    "minLength",
    "maxLength",
    "pattern",
    "example",
    "propertyOrdering",
    "default",
    "minimum",
    "maximum",
];

/// Formats Gemini knows, by type.
const FORMATS: &[(&str, &str)] = &[
    ("string", "enum"),
    ("string", "date-time"),
    ("number", "float"),
    ("number", "double"),
    ("integer", "int32"),
    ("integer", "int64"),
];

/// Constraints Gemini lacks, said in the description instead.
const NOTED: &[&str] = &["exclusiveMinimum", "exclusiveMaximum", "multipleOf", "uniqueItems"];

/// How deep `$ref`s may nest before the conversion stops expanding (a guard on top of the
/// cycle check, for schemas that are merely enormous).
const MAX_DEPTH: usize = 32;

pub fn clean_schema(v: &Value) -> Value {
    convert(v, v, &mut Vec::new())
}

/// A tool's parameters for a function declaration: converted, or none when they describe an
/// object with no properties (which Gemini refuses, and which says the same as none).
pub fn tool_parameters(schema: Option<&Value>) -> Option<Value> {
    let cleaned = clean_schema(schema.filter(|s| !s.is_null())?);
    let empty_object = cleaned.get("type") == Some(&json!("object"))
        && cleaned.get("properties").and_then(Value::as_object).is_none_or(|o| o.is_empty());
    (!empty_object).then_some(cleaned)
}

fn convert(v: &Value, root: &Value, refs: &mut Vec<String>) -> Value {
    let Some(obj) = v.as_object() else { return v.clone() };
    if let Some(r) = obj.get("$ref").and_then(Value::as_str) {
        return resolve(r, obj, root, refs);
    }
    if let Some(all) = obj.get("allOf").and_then(Value::as_array) {
        return convert(&merge_all_of(obj, all, root), root, refs);
    }
    let mut out = Map::new();
    let mut notes: Vec<String> = Vec::new();
    let ty = obj.get("type");
    for (k, val) in obj {
        match k.as_str() {
            "properties" => {
                let props: Map<String, Value> = val
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(name, s)| (name.clone(), convert(s, root, refs)))
                    .collect();
                out.insert(k.clone(), Value::Object(props));
            }
            "items" => {
                out.insert(k.clone(), convert(val, root, refs));
            }
            "anyOf" | "oneOf" => {
                let list: Vec<Value> = val.as_array().into_iter().flatten().map(|s| convert(s, root, refs)).collect();
                out.insert("anyOf".into(), Value::Array(list));
            }
            "type" => match val {
                Value::Array(types) => {
                    let non_null: Vec<&Value> = types.iter().filter(|t| t.as_str() != Some("null")).collect();
                    if non_null.len() < types.len() {
                        out.insert("nullable".into(), json!(true));
                    }
                    match non_null.as_slice() {
                        [one] => {
                            out.insert("type".into(), (*one).clone());
                        }
                        [] => {}
                        many => {
                            let alternatives: Vec<Value> = many.iter().map(|t| json!({ "type": t })).collect();
                            out.insert("anyOf".into(), Value::Array(alternatives));
                        }
                    }
                }
                other => {
                    out.insert("type".into(), other.clone());
                }
            },
            "enum" => match val.as_array() {
                Some(values) if values.iter().all(Value::is_string) => {
                    out.insert("enum".into(), val.clone());
                    if ty.is_none() {
                        out.insert("type".into(), json!("string"));
                    }
                }
                Some(values) => {
                    let shown: Vec<String> = values.iter().map(Value::to_string).collect();
                    notes.push(format!("one of: {}", shown.join(", ")));
                    if ty.is_none()
                        && let Some(t) = json_type(values)
                    {
                        out.insert("type".into(), json!(t));
                    }
                }
                None => {}
            },
            "const" => match val {
                Value::String(_) => {
                    out.insert("enum".into(), json!([val]));
                    out.insert("type".into(), json!("string"));
                }
                other => {
                    notes.push(format!("must be {other}"));
                    if ty.is_none()
                        && let Some(t) = json_type(std::slice::from_ref(other))
                    {
                        out.insert("type".into(), json!(t));
                    }
                }
            },
            "format" => {
                let t = ty.and_then(Value::as_str).unwrap_or("string");
                match val.as_str() {
                    Some(f) if FORMATS.contains(&(t, f)) => {
                        out.insert("format".into(), val.clone());
                    }
                    Some(f) => notes.push(format!("format: {f}")),
                    None => {}
                }
            }
            k if NOTED.contains(&k) => notes.push(format!("{k}: {val}")),
            k if KEPT.contains(&k) => {
                out.insert(k.to_string(), val.clone());
            }
            _ => {}
        }
    }
    if !notes.is_empty() {
        let said = notes.join("; ");
        let description = match out.get("description").and_then(Value::as_str) {
            Some(d) if !d.is_empty() => format!("{d} ({said})"),
            _ => said,
        };
        out.insert("description".into(), json!(description));
    }
    Value::Object(out)
}

/// The JSON type all `values` share, when they share one.
fn json_type(values: &[Value]) -> Option<&'static str> {
    let of = |v: &Value| match v {
        Value::Number(n) if n.is_i64() || n.is_u64() => Some("integer"),
        Value::Number(_) => Some("number"),
        Value::Bool(_) => Some("boolean"),
        Value::String(_) => Some("string"),
        _ => None,
    };
    let first = of(values.first()?)?;
    values.iter().all(|v| of(v) == Some(first) || (first == "number" && of(v) == Some("integer"))).then_some(first)
}

/// A local `$ref`, expanded with its siblings (a description next to a `$ref` wins); a cycle or a
/// reference that leads nowhere becomes a described object.
fn resolve(r: &str, siblings: &Map<String, Value>, root: &Value, refs: &mut Vec<String>) -> Value {
    let name = r.rsplit('/').next().unwrap_or(r).to_string();
    let target = r.strip_prefix('#').and_then(|pointer| root.pointer(pointer));
    let mut out = match target {
        Some(t) if !refs.contains(&r.to_string()) && refs.len() < MAX_DEPTH => {
            refs.push(r.to_string());
            let v = convert(t, root, refs);
            refs.pop();
            v
        }
        Some(_) => json!({"type": "object", "description": format!("a {name} (recursive; see its definition above)")}),
        None => json!({"type": "object", "description": format!("a {name}")}),
    };
    if let Some(obj) = out.as_object_mut() {
        for key in ["description", "title", "default"] {
            if let Some(v) = siblings.get(key) {
                obj.insert(key.into(), v.clone());
            }
        }
    }
    out
}

/// `allOf` as one schema: properties and required lists joined, other keywords of the first
/// schema that has them.
fn merge_all_of(obj: &Map<String, Value>, all: &[Value], root: &Value) -> Value {
    let mut merged = obj.clone();
    merged.remove("allOf");
    let mut properties = merged.remove("properties").and_then(|p| p.as_object().cloned()).unwrap_or_default();
    let mut required: Vec<Value> = merged.remove("required").and_then(|r| r.as_array().cloned()).unwrap_or_default();
    for part in all {
        // A `$ref` inside allOf (pydantic's way of describing a field) is looked up first.
        let part = match part.get("$ref").and_then(Value::as_str).and_then(|r| r.strip_prefix('#')) {
            Some(pointer) => root.pointer(pointer).unwrap_or(part),
            None => part,
        };
        let Some(p) = part.as_object() else { continue };
        for (k, v) in p {
            match k.as_str() {
                "properties" => properties.extend(v.as_object().cloned().unwrap_or_default()),
                "required" => required.extend(v.as_array().cloned().unwrap_or_default()),
                _ => {
                    merged.entry(k.clone()).or_insert_with(|| v.clone());
                }
            }
        }
    }
    if !properties.is_empty() {
        merged.insert("properties".into(), Value::Object(properties));
    }
    if !required.is_empty() {
        merged.insert("required".into(), Value::Array(required));
    }
    Value::Object(merged)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_pydantic_models_keep_their_fields() {
        let schema = json!({
            "$defs": {"Address": {"type": "object", "properties": {"city": {"type": "string"}, "zip": {"type": "string"}},
                                  "required": ["city"], "additionalProperties": false}},
            "type": "object",
            "properties": {"home": {"$ref": "#/$defs/Address", "description": "where they live"},
                           "work": {"allOf": [{"$ref": "#/$defs/Address"}], "description": "office"}},
            "required": ["home"], "additionalProperties": false, "$schema": "http://json-schema.org/draft-07/schema#"
        });
        let out = clean_schema(&schema);
        assert_eq!(
            out["properties"]["home"],
            json!({"type": "object", "properties": {"city": {"type": "string"}, "zip": {"type": "string"}},
                   "required": ["city"], "description": "where they live"})
        );
        assert_eq!(out["properties"]["work"]["properties"]["zip"], json!({"type": "string"}));
        assert_eq!(out["properties"]["work"]["description"], "office");
        assert!(
            out.get("$defs").is_none() && out.get("$schema").is_none() && out.get("additionalProperties").is_none()
        );
    }

    #[test]
    fn a_recursive_schema_ends() {
        let schema = json!({"definitions": {"Node": {"type": "object", "properties": {
            "value": {"type": "integer"}, "children": {"type": "array", "items": {"$ref": "#/definitions/Node"}}}}},
            "$ref": "#/definitions/Node"});
        let out = clean_schema(&schema);
        assert_eq!(out["properties"]["value"], json!({"type": "integer"}));
        let inner = &out["properties"]["children"]["items"];
        assert_eq!(inner["type"], "object");
        assert!(inner["description"].as_str().unwrap().contains("recursive"), "{inner}");
        assert_eq!(clean_schema(&json!({"$ref": "#/$defs/Missing"}))["description"], "a Missing");
    }

    #[test]
    fn const_enums_and_formats_keep_their_meaning() {
        let schema = json!({"type": "object", "properties": {
            "level": {"type": "integer", "enum": [1, 2, 3], "description": "Severity"},
            "kind": {"const": "circle"},
            "version": {"const": 2},
            "mode": {"enum": ["a", "b"]},
            "site": {"type": "string", "format": "uri"},
            "when": {"type": "string", "format": "date-time"},
            "ratio": {"type": "number", "exclusiveMinimum": 0},
            "tags": {"type": ["array", "null"], "items": {"type": "string"}},
            "either": {"type": ["string", "integer"]}
        }});
        let p = clean_schema(&schema)["properties"].clone();
        assert_eq!(p["level"], json!({"type": "integer", "description": "Severity (one of: 1, 2, 3)"}));
        assert_eq!(p["kind"], json!({"type": "string", "enum": ["circle"]}));
        assert_eq!(p["version"], json!({"type": "integer", "description": "must be 2"}));
        assert_eq!(p["mode"], json!({"type": "string", "enum": ["a", "b"]}));
        assert_eq!(p["site"], json!({"type": "string", "description": "format: uri"}));
        assert_eq!(p["when"], json!({"type": "string", "format": "date-time"}));
        assert_eq!(p["ratio"], json!({"type": "number", "description": "exclusiveMinimum: 0"}));
        assert_eq!(p["tags"], json!({"type": "array", "nullable": true, "items": {"type": "string"}}));
        assert_eq!(p["either"], json!({"anyOf": [{"type": "string"}, {"type": "integer"}]}));
    }

    #[test]
    fn an_mcp_style_schema_passes() {
        let schema = json!({"type": "object", "properties": {"path": {"type": "string", "description": "File path"},
            "options": {"type": "object", "properties": {"recursive": {"type": "boolean", "default": false}},
                        "additionalProperties": {"type": "string"}}},
            "required": ["path"], "additionalProperties": false, "$schema": "https://json-schema.org/draft/2020-12/schema"});
        assert_eq!(
            clean_schema(&schema),
            json!({"type": "object", "properties": {"path": {"type": "string", "description": "File path"},
                "options": {"type": "object", "properties": {"recursive": {"type": "boolean", "default": false}}}},
                "required": ["path"]})
        );
    }
}
