//! Model lists: the upstream list (all pages, cached briefly) for `GET /v1/models`, OpenAI's list
//! shape, and the native list with `models.hidden` removed and `NAME-search` variants added.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method};
use serde_json::{Value, json};

use crate::config::{Config, ModelsConfig};
use crate::error::ApiError;
use crate::models;
use crate::outcome::Expect;
use crate::proxy::{self, KeyChoice, Plan};
use crate::state::State;
use crate::upstream::{KeyPlacement, OutBody, Outgoing};

/// How long the upstream model list is reused.
const MODELS_TTL: Duration = Duration::from_secs(60);

/// The upstream model list (all pages), reused for `MODELS_TTL`.
pub async fn upstream_models(state: &Arc<State>) -> Result<Value, ApiError> {
    if let Some((at, list)) = state.models_cache.read().as_ref()
        && at.elapsed() < MODELS_TTL
    {
        return Ok(list.clone());
    }
    let mut models = Vec::new();
    let mut page_token: Option<String> = None;
    for _ in 0..20 {
        let query = match &page_token {
            Some(t) => format!(
                "pageSize=1000&pageToken={}",
                percent_encoding::utf8_percent_encode(t, percent_encoding::NON_ALPHANUMERIC)
            ),
            None => "pageSize=1000".into(),
        };
        let plan = Plan {
            route: "models.list".into(),
            model: None,
            stream: false,
            expect: Expect::Json,
            keys: KeyChoice::Any,
        };
        let out = Outgoing {
            method: Method::GET,
            path_and_query: format!("/v1beta/models?{query}"),
            headers: HeaderMap::new(),
            body: OutBody::Bytes(Bytes::new()),
            placement: KeyPlacement::GoogHeader,
        };
        let served = proxy::fetch(state, plan, out).await?;
        let page: Value = serde_json::from_slice(&served.body).unwrap_or(Value::Null);
        models.extend(page.get("models").and_then(Value::as_array).cloned().unwrap_or_default());
        page_token = page.get("nextPageToken").and_then(Value::as_str).filter(|t| !t.is_empty()).map(String::from);
        if page_token.is_none() {
            break;
        }
    }
    state
        .logbook
        .metrics()
        .know(models.iter().filter_map(|m| m.get("name").and_then(Value::as_str)).map(|n| models::bare(n).to_string()));
    let list = json!({"models": models});
    *state.models_cache.write() = Some((std::time::Instant::now(), list.clone()));
    Ok(list)
}

/// OpenAI's model list from Gemini's: hidden names removed, `-search` variants added.
pub fn models_list(gemini: &Value, rules: &ModelsConfig) -> Value {
    let is_hidden = |name: &str| models::is_hidden(rules, name);
    let mut data = Vec::new();
    let names: Vec<&str> = gemini
        .get("models")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|m| m.get("name").and_then(Value::as_str))
        .map(models::bare)
        .collect();
    for name in &names {
        if !is_hidden(name) {
            data.push(model_entry(name));
        }
    }
    for s in &rules.search_models {
        let base = models::bare(s);
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

/// An upstream model list with `models.hidden` removed and `NAME-search` variants of
/// `models.search_models` added; the bytes are untouched when there is nothing to do.
pub fn shape_model_list(cfg: &Config, body: Bytes) -> Bytes {
    if cfg.models.hidden.is_empty() && cfg.models.search_models.is_empty() {
        return body;
    }
    let Ok(mut v) = serde_json::from_slice::<Value>(&body) else { return body };
    if let Some(models) = v.get_mut("models").and_then(Value::as_array_mut) {
        let mut variants = Vec::new();
        for m in models.iter() {
            let Some(name) = m.get("name").and_then(Value::as_str) else { continue };
            let base = models::bare(name);
            let variant = format!("{base}-search");
            if models::search_base(&variant, &cfg.models.search_models).is_some()
                && !models::is_hidden(&cfg.models, &variant)
            {
                variants.push(search_variant(m, &variant));
            }
        }
        models.retain(|m| !m.get("name").and_then(Value::as_str).is_some_and(|n| models::is_hidden(&cfg.models, n)));
        models.extend(variants);
    }
    serde_json::to_vec(&v).map(Bytes::from).unwrap_or(body)
}

fn search_variant(base: &Value, variant: &str) -> Value {
    let mut m = base.clone();
    m["name"] = Value::String(format!("models/{variant}"));
    if let Some(d) = base.get("displayName").and_then(Value::as_str) {
        m["displayName"] = Value::String(format!("{d} (with Google Search)"));
    }
    m
}

/// `GET models/NAME-search` answers with the base model, renamed.
pub fn name_search_variant(cfg: &Config, requested: &str, body: Bytes) -> Bytes {
    if models::search_base(requested, &cfg.models.search_models).is_none() {
        return body;
    }
    match serde_json::from_slice::<Value>(&body) {
        Ok(v) => serde_json::to_vec(&search_variant(&v, requested)).map(Bytes::from).unwrap_or(body),
        Err(_) => body,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_list_hides_and_adds_search_variants() {
        let g = json!({"models": [{"name": "models/gemini-2.5-flash"}, {"name": "models/gemini-2.5-pro"}, {"name": "models/secret"}]});
        let rules = ModelsConfig {
            hidden: vec!["secret".to_string(), "models/gemini-2.5-pro-search".to_string()],
            search_models: vec!["gemini-2.5-flash".into(), "gemini-2.5-pro".into()],
            ..ModelsConfig::default()
        };
        let out = models_list(&g, &rules);
        let ids: Vec<&str> = out["data"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap()).collect();
        assert_eq!(ids, vec!["gemini-2.5-flash", "gemini-2.5-pro", "gemini-2.5-flash-search"]);
        assert_eq!(
            out["data"][0],
            json!({"id": "gemini-2.5-flash", "object": "model", "created": 0, "owned_by": "google"})
        );
    }
}
