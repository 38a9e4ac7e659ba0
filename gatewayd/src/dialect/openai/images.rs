//! PURE: OpenAI image generation (`POST /v1/images/generations`) to and from Gemini. An
//! `imagen-*` model is served by `:predict` (`n` → `sampleCount`, `size` → the nearest aspect
//! ratio Imagen offers); any other model is taken for a Gemini image-output model and served by
//! generateContent with image output. Images come back inline (`b64_json`); `url` is refused.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::bad_request::{BadRequest, bad, checked_model};
use crate::models::{self, ModelName};

/// The aspect ratios Imagen and Gemini image models generate.
const RATIOS: &[(&str, f64)] =
    &[("1:1", 1.0), ("3:4", 0.75), ("4:3", 4.0 / 3.0), ("9:16", 9.0 / 16.0), ("16:9", 16.0 / 9.0)];

/// The most images one request may ask for (Imagen's `sampleCount` limit).
const MAX_N: u64 = 4;

#[derive(Debug, Clone, PartialEq)]
pub struct ImagesRequest {
    /// As the client named it.
    pub model: String,
    pub upstream_model: ModelName,
    /// Served by Imagen's `:predict` (else by generateContent).
    pub imagen: bool,
    pub body: Value,
}

impl ImagesRequest {
    pub fn method(&self) -> &'static str {
        if self.imagen { "predict" } else { "generateContent" }
    }
}

pub fn images_request(req: &Value, aliases: &BTreeMap<String, String>) -> Result<ImagesRequest, BadRequest> {
    let obj = req.as_object().ok_or_else(|| bad("body", "must be a JSON object"))?;
    let (model, upstream_model) = checked_model(obj)?;
    let upstream_model = models::aliased(aliases, upstream_model);
    let prompt = obj
        .get("prompt")
        .and_then(Value::as_str)
        .filter(|p| !p.trim().is_empty())
        .ok_or_else(|| bad("prompt", "required: a non-empty string"))?;
    let n = match obj.get("n") {
        None | Some(Value::Null) => 1,
        Some(v) => {
            v.as_u64().filter(|n| (1..=MAX_N).contains(n)).ok_or_else(|| bad("n", format!("must be 1 to {MAX_N}")))?
        }
    };
    let ratio = match obj.get("size").and_then(|v| if v.is_null() { None } else { Some(v) }) {
        None => None,
        Some(v) => aspect_ratio(v.as_str().unwrap_or(""))?,
    };
    match obj.get("response_format").and_then(Value::as_str) {
        None | Some("b64_json") => {}
        Some("url") => {
            return Err(bad(
                "response_format",
                "url is not supported: the gateway returns images inline; use b64_json (the default here)",
            ));
        }
        Some(other) => return Err(bad("response_format", format!("{other:?} is not supported: use b64_json"))),
    }
    let imagen = upstream_model.as_str().starts_with("imagen");
    let body = if imagen {
        let mut parameters = json!({ "sampleCount": n });
        if let Some(r) = ratio {
            parameters["aspectRatio"] = json!(r);
        }
        json!({ "instances": [{ "prompt": prompt }], "parameters": parameters })
    } else {
        let mut config = json!({ "responseModalities": ["TEXT", "IMAGE"] });
        if n > 1 {
            config["candidateCount"] = json!(n);
        }
        if let Some(r) = ratio {
            config["imageConfig"] = json!({ "aspectRatio": r });
        }
        json!({ "contents": [{ "role": "user", "parts": [{ "text": prompt }] }], "generationConfig": config })
    };
    Ok(ImagesRequest { model, upstream_model, imagen, body })
}

/// `WIDTHxHEIGHT` to the nearest ratio offered (by the ratio's logarithm); `auto` is none.
fn aspect_ratio(size: &str) -> Result<Option<&'static str>, BadRequest> {
    if size == "auto" {
        return Ok(None);
    }
    let parsed = size.split_once('x').and_then(|(w, h)| Some((w.parse::<u32>().ok()?, h.parse::<u32>().ok()?)));
    let Some((w, h)) = parsed.filter(|(w, h)| *w > 0 && *h > 0) else {
        return Err(bad("size", "use WIDTHxHEIGHT such as 1024x1024 or 1792x1024, or auto"));
    };
    let want = (f64::from(w) / f64::from(h)).ln();
    let nearest = RATIOS.iter().min_by(|a, b| (a.1.ln() - want).abs().total_cmp(&(b.1.ln() - want).abs()));
    Ok(nearest.map(|(name, _)| *name))
}

/// Google's answer as OpenAI's `ImagesResponse`; `None` when it holds no image (Google filtered
/// the prompt or every image).
pub fn images_response(upstream: &Value, imagen: bool, created: i64) -> Option<Value> {
    let mut data = Vec::new();
    if imagen {
        for p in upstream["predictions"].as_array().into_iter().flatten() {
            if let Some(b64) = p["bytesBase64Encoded"].as_str() {
                data.push(json!({ "b64_json": b64 }));
            }
        }
    } else {
        for c in upstream["candidates"].as_array().into_iter().flatten() {
            let parts = c["content"]["parts"].as_array().into_iter().flatten();
            let text: String = parts.clone().filter_map(|p| p["text"].as_str()).collect::<Vec<_>>().join("");
            for inline in parts.filter_map(|p| p.get("inlineData")) {
                if inline["mimeType"].as_str().is_some_and(|m| m.starts_with("image/"))
                    && let Some(b64) = inline["data"].as_str()
                {
                    let mut image = json!({ "b64_json": b64 });
                    if !text.is_empty() {
                        image["revised_prompt"] = json!(text);
                    }
                    data.push(image);
                }
            }
        }
    }
    if data.is_empty() {
        return None;
    }
    let mut out = json!({ "created": created, "data": data });
    if let Some(u) = upstream.get("usageMetadata") {
        let (input, output) =
            (u["promptTokenCount"].as_u64().unwrap_or(0), u["candidatesTokenCount"].as_u64().unwrap_or(0));
        out["usage"] = json!({ "input_tokens": input, "output_tokens": output, "total_tokens": input + output,
            "input_tokens_details": { "text_tokens": input, "image_tokens": 0 } });
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(v: Value) -> Result<ImagesRequest, BadRequest> {
        images_request(&v, &BTreeMap::new())
    }

    #[test]
    fn imagen_gets_predict_with_count_and_the_nearest_ratio() {
        let r = request(json!({"model": "imagen-4.0-generate-001", "prompt": "a cat", "n": 2, "size": "1792x1024"}))
            .unwrap();
        assert!(r.imagen);
        assert_eq!(r.method(), "predict");
        assert_eq!(
            r.body,
            json!({"instances": [{"prompt": "a cat"}], "parameters": {"sampleCount": 2, "aspectRatio": "16:9"}})
        );
        let r = request(json!({"model": "imagen-3", "prompt": "x", "size": "1024x1536"})).unwrap();
        assert_eq!(r.body["parameters"]["aspectRatio"], "3:4");
        let r = request(json!({"model": "imagen-3", "prompt": "x", "size": "auto"})).unwrap();
        assert!(r.body["parameters"].get("aspectRatio").is_none());
    }

    #[test]
    fn a_gemini_image_model_gets_image_output() {
        let r = request(json!({"model": "gemini-2.5-flash-image", "prompt": "a cat", "n": 2, "size": "1024x1024"}))
            .unwrap();
        assert_eq!(r.method(), "generateContent");
        assert_eq!(r.body["generationConfig"]["responseModalities"], json!(["TEXT", "IMAGE"]));
        assert_eq!(r.body["generationConfig"]["candidateCount"], 2);
        assert_eq!(r.body["generationConfig"]["imageConfig"]["aspectRatio"], "1:1");
        let aliases = BTreeMap::from([("dall-e-*".to_string(), "imagen-4.0-generate-001".to_string())]);
        let r = images_request(&json!({"model": "dall-e-3", "prompt": "x"}), &aliases).unwrap();
        assert!(r.imagen && r.model == "dall-e-3");
    }

    #[test]
    fn mistakes_name_their_field() {
        let field = |v: Value| request(v).unwrap_err().field;
        assert_eq!(field(json!({"prompt": "x"})), "model");
        assert_eq!(field(json!({"model": "imagen-3"})), "prompt");
        assert_eq!(field(json!({"model": "imagen-3", "prompt": "x", "n": 9})), "n");
        assert_eq!(field(json!({"model": "imagen-3", "prompt": "x", "size": "big"})), "size");
        let url = request(json!({"model": "imagen-3", "prompt": "x", "response_format": "url"})).unwrap_err();
        assert!(url.field == "response_format" && url.message.contains("b64_json"), "{url}");
        assert_eq!(field(json!({"model": "../x", "prompt": "x"})), "model");
    }

    #[test]
    fn answers_carry_every_image_inline() {
        let imagen = json!({"predictions": [{"bytesBase64Encoded": "AAA", "mimeType": "image/png"}, {"bytesBase64Encoded": "BBB"}]});
        let out = images_response(&imagen, true, 7).unwrap();
        assert_eq!(out, json!({"created": 7, "data": [{"b64_json": "AAA"}, {"b64_json": "BBB"}]}));
        let gemini = json!({"candidates": [{"content": {"parts": [{"text": "Here"}, {"inlineData": {"mimeType": "image/png", "data": "CCC"}}]}}],
                            "usageMetadata": {"promptTokenCount": 5, "candidatesTokenCount": 1290}});
        let out = images_response(&gemini, false, 7).unwrap();
        assert_eq!(out["data"], json!([{"b64_json": "CCC", "revised_prompt": "Here"}]));
        assert_eq!(out["usage"]["total_tokens"], 1295);
        assert_eq!(images_response(&json!({"predictions": []}), true, 7), None);
        assert_eq!(images_response(&json!({"candidates": [{"content": {"parts": [{"text": "no"}]}}]}), false, 7), None);
    }
}
