//! Model names and the operator's rules about models. A `ModelName` is made only by the edge
//! check (1 to 128 of `A-Z a-z 0-9 . - _`, after percent-decoding, `models/` dropped), so no client
//! text can steer an upstream path elsewhere; then `models.hidden`, the `NAME-search` variants
//! and the `models.safety_settings` threshold.

use std::fmt;

use crate::config::ModelsConfig;

/// The longest model name the gateway accepts.
pub const MAX_LEN: usize = 128;

/// A checked model name, without the `models/` prefix.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ModelName(String);

/// Why a client's model name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("model name {shown:?} is not valid: use 1 to {MAX_LEN} characters of A-Z a-z 0-9 . - _")]
pub struct BadModelName {
    /// The name as the client sent it, cut and with control characters escaped.
    shown: String,
}

impl ModelName {
    /// Checks a decoded name (from a JSON body, say); a leading `models/` is dropped.
    pub fn parse(raw: &str) -> Result<ModelName, BadModelName> {
        let name = bare(raw);
        let valid = !name.is_empty()
            && name.len() <= MAX_LEN
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
        if !valid {
            return Err(BadModelName { shown: raw.chars().take(64).flat_map(char::escape_debug).collect() });
        }
        Ok(ModelName(name.to_string()))
    }

    /// Checks a name taken from a URL path segment, percent-decoding it first.
    pub fn from_path(segment: &str) -> Result<ModelName, BadModelName> {
        let decoded = percent_encoding::percent_decode_str(segment).decode_utf8_lossy();
        ModelName::parse(&decoded)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ModelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Whether `name` matches a glob of `models.aliases` or `models.groups`: `*` stands for any run of
/// characters, everything else for itself.
pub fn glob_matches(pattern: &str, name: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or("");
    let Some(mut rest) = name.strip_prefix(first) else { return false };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else { return rest.is_empty() };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

/// The value of the longest pattern of `map` that `name` matches (the first in order on a tie).
pub fn glob_lookup<'m>(map: &'m std::collections::BTreeMap<String, String>, name: &str) -> Option<&'m str> {
    let mut best: Option<(&str, &str)> = None;
    for (pattern, value) in map {
        if glob_matches(pattern, name) && best.is_none_or(|(p, _)| pattern.len() > p.len()) {
            best = Some((pattern, value));
        }
    }
    best.map(|(_, v)| v)
}

/// The model a client's name is served as under `models.aliases` (the longest matching glob),
/// or the name itself. Targets were checked when the configuration was.
pub fn aliased(aliases: &std::collections::BTreeMap<String, String>, name: ModelName) -> ModelName {
    match glob_lookup(aliases, name.as_str()) {
        Some(target) => ModelName::parse(target).unwrap_or(name),
        None => name,
    }
}

/// A JSON body with its top-level `model` set to `model` (for an alias on a route whose body
/// otherwise passes through untouched); the body unchanged when it is not a JSON object.
pub fn with_model(body: &bytes::Bytes, model: &str) -> bytes::Bytes {
    let Ok(serde_json::Value::Object(mut obj)) = serde_json::from_slice(body) else { return body.clone() };
    obj.insert("model".into(), serde_json::Value::String(model.to_string()));
    serde_json::to_vec(&obj).map(bytes::Bytes::from).unwrap_or_else(|_| body.clone())
}

/// A pattern is 1 to 128 characters of a model name's, plus `*`.
pub fn check_glob(pattern: &str) -> Result<(), String> {
    let ok = !pattern.is_empty()
        && pattern.len() <= MAX_LEN
        && pattern.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'*'));
    if ok { Ok(()) } else { Err("a pattern is 1 to 128 characters of A-Z a-z 0-9 . - _ and *".into()) }
}

/// A model name without Google's `models/` prefix.
pub fn bare(name: &str) -> &str {
    name.strip_prefix("models/").unwrap_or(name)
}

/// Whether `model` (with or without `models/`) is in `models.hidden`; names compare decoded.
pub fn is_hidden(models: &ModelsConfig, model: &str) -> bool {
    let model = bare(model);
    models.hidden.iter().any(|h| bare(h) == model)
}

/// Applies `models.safety_settings` to a generateContent body: the threshold for every category
/// the client did not set itself. `passthrough` leaves the body alone.
pub fn merge_safety(body: &mut serde_json::Value, threshold: &str) {
    if threshold == "passthrough" || threshold.is_empty() {
        return;
    }
    let Some(obj) = body.as_object_mut() else { return };
    let settings = obj.entry("safetySettings").or_insert_with(|| serde_json::Value::Array(Vec::new()));
    let Some(list) = settings.as_array_mut() else { return };
    for category in crate::dialect::wire::SAFETY_CATEGORIES {
        if !list.iter().any(|s| s.get("category").and_then(|c| c.as_str()) == Some(category)) {
            list.push(serde_json::json!({"category": category, "threshold": threshold}));
        }
    }
}

/// `NAME-search` for a model in `models.search_models`: the base model, with the googleSearch tool.
pub fn search_base<'a>(model: &'a str, search_models: &[String]) -> Option<&'a str> {
    let base = model.strip_suffix("-search")?;
    search_models.iter().any(|s| bare(s) == base).then_some(base)
}

pub fn add_search_tool(body: &mut serde_json::Value) {
    let Some(obj) = body.as_object_mut() else { return };
    let tools = obj.entry("tools").or_insert_with(|| serde_json::Value::Array(Vec::new()));
    if let Some(list) = tools.as_array_mut()
        && !list.iter().any(|t| t.get("googleSearch").is_some())
    {
        list.push(serde_json::json!({"googleSearch": {}}));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_runs_and_the_longest_pattern_wins() {
        for (p, n) in [
            ("imagen-*", "imagen-4.0-generate-001"),
            ("*", "x"),
            ("gpt-4o*", "gpt-4o"),
            ("a*b*c", "aXbYbc"),
            ("tts-1", "tts-1"),
        ] {
            assert!(glob_matches(p, n), "{p} {n}");
        }
        for (p, n) in [("imagen-*", "gemini"), ("tts-1", "tts-1-hd"), ("*a", "ab"), ("a*b*c", "acb"), ("ab*ba", "aba")]
        {
            assert!(!glob_matches(p, n), "{p} {n}");
        }
        let map: std::collections::BTreeMap<String, String> =
            [("gpt-*", "flash"), ("gpt-4o*", "pro"), ("*", "lite")].map(|(a, b)| (a.into(), b.into())).into();
        assert_eq!(glob_lookup(&map, "gpt-4o-mini"), Some("pro"));
        assert_eq!(glob_lookup(&map, "gpt-3.5"), Some("flash"));
        assert_eq!(glob_lookup(&map, "claude"), Some("lite"));
        assert!(check_glob("claude-*").is_ok() && check_glob("a/b").is_err() && check_glob("").is_err());
    }

    #[test]
    fn names_are_checked_after_decoding() {
        assert_eq!(ModelName::parse("models/gemini-2.5-flash").unwrap().as_str(), "gemini-2.5-flash");
        assert_eq!(ModelName::from_path("%67emini-2.5-pro").unwrap().as_str(), "gemini-2.5-pro");
        assert_eq!(ModelName::parse(&"a".repeat(MAX_LEN)).unwrap().as_str().len(), MAX_LEN);
        for bad in [
            "",
            "models/",
            "a b",
            "a\tb",
            "a<b",
            "a\r\nb",
            "a\0b",
            "m?x=1",
            "m#frag",
            "../../v1beta/files",
            "a/b",
            "a:b",
            "gemini%2e",
            "é",
        ] {
            assert!(ModelName::parse(bad).is_err(), "{bad:?}");
        }
        assert!(ModelName::parse(&"a".repeat(MAX_LEN + 1)).is_err());
        for bad in ["a%20b", "..%2F..%2Fv1beta%2Ffiles", "m%3Fx%3D1", "%00", "m%3AgenerateContent"] {
            assert!(ModelName::from_path(bad).is_err(), "{bad:?}");
        }
        let e = ModelName::parse("a\u{1b}[31m").unwrap_err().to_string();
        assert!(!e.contains('\u{1b}'), "control characters are escaped: {e}");
    }
}
