//! PURE: OpenAI embeddings ↔ Gemini batchEmbedContents.

use base64::prelude::{BASE64_STANDARD, Engine as _};
use serde_json::{Value, json};

use crate::dialect::openai::bad_request::{BadRequest, bad, checked_model};
use crate::models::ModelName;

#[derive(Debug, Clone, PartialEq)]
pub struct EmbeddingsRequest {
    pub model: String,
    pub upstream_model: ModelName,
    pub base64: bool,
    pub inputs: Vec<String>,
    pub body: Value,
}

/// `aliases`: `models.aliases`, which name the model that serves.
pub fn embeddings_request(
    req: &Value,
    aliases: &std::collections::BTreeMap<String, String>,
) -> Result<EmbeddingsRequest, BadRequest> {
    let obj = req.as_object().ok_or_else(|| bad("body", "must be a JSON object"))?;
    let (model, upstream_model) = checked_model(obj)?;
    let upstream_model = crate::models::aliased(aliases, upstream_model);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embeddings_both_ways() {
        let r = embeddings_request(
            &json!({"model": "text-embedding-004", "input": ["a", "bb"], "dimensions": 3}),
            &Default::default(),
        )
        .unwrap();
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
        let r =
            embeddings_request(&json!({"model": "m", "input": "x", "encoding_format": "base64"}), &Default::default())
                .unwrap();
        let out = embeddings_response(&json!({"embeddings": [{"values": [1.0, -2.0]}]}), &r);
        let expected: Vec<u8> = [1.0f32, -2.0f32].iter().flat_map(|v| v.to_le_bytes()).collect();
        assert_eq!(out["data"][0]["embedding"], json!(BASE64_STANDARD.encode(&expected)));
        assert_eq!(
            embeddings_request(&json!({"model": "m", "input": [1, 2]}), &Default::default()).unwrap_err().field,
            "input"
        );
        assert_eq!(
            embeddings_request(&json!({"model": "m", "input": "x", "encoding_format": "hex"}), &Default::default())
                .unwrap_err()
                .field,
            "encoding_format"
        );
        assert_eq!(embeddings_request(&json!({"input": "x"}), &Default::default()).unwrap_err().field, "model");
    }

    #[test]
    fn malformed_bodies_translate_or_are_refused_naming_a_field() {
        let valid = json!({"model": "text-embedding-004", "input": ["a"], "dimensions": 3, "encoding_format": "float"});
        let bodies = crate::dialect::openai::chat::tests::malformed_variants(&valid);
        let mut refused = 0;
        for body in &bodies {
            let Ok(v) = serde_json::from_str::<Value>(body) else { continue };
            if let Err(e) = embeddings_request(&v, &Default::default()) {
                let root = e.field.split(['.', '[']).next().unwrap_or("");
                assert!(root == "body" || v.get(root).is_some() || root == "model" || root == "input", "{body}: {e}");
                refused += 1;
            }
        }
        assert!(refused > 10, "{refused}");
    }
}
