//! PURE: the one JSON-Schema → Gemini conversion every dialect uses for tool parameters and
//! response schemas.

use serde_json::{Map, Value, json};

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
