//! The admin API spoken over the Unix socket: paths and JSON bodies. Field names are the contract's
//! `-o json` names, so gbctl can print what it receives without renaming anything.

use serde::{Deserialize, Serialize};

pub const STATUS: &str = "/v1/status";
pub const KEYS: &str = "/v1/keys";
pub const KEYS_ADD: &str = "/v1/keys/add";
pub const KEYS_REMOVE: &str = "/v1/keys/remove";
pub const KEYS_DISABLE: &str = "/v1/keys/disable";
pub const KEYS_ENABLE: &str = "/v1/keys/enable";
pub const KEYS_VERIFY: &str = "/v1/keys/verify";
pub const KEYS_RESET: &str = "/v1/keys/reset";
pub const KEYS_SET: &str = "/v1/keys/set";
pub const SETTINGS: &str = "/v1/settings";
pub const LOGS: &str = "/v1/logs";
pub const LOGS_FOLLOW: &str = "/v1/logs/follow";
pub const STATS: &str = "/v1/stats";
pub const METRICS: &str = "/metrics";

/// Every admin error: a sentence, and for an ambiguous key argument the keys it could mean.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub candidates: Vec<KeyRef>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct KeyRef {
    pub id: i64,
    pub key: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct KeyCounts {
    pub active: u64,
    pub cooling: u64,
    pub invalid: u64,
    pub disabled: u64,
    pub total: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StatusView {
    pub version: String,
    pub started_at: String,
    pub uptime_secs: u64,
    pub listen: String,
    pub admin_socket: String,
    pub keys: KeyCounts,
    pub requests_1m: u64,
    pub requests_1h: u64,
    pub requests_24h: u64,
    pub logs_dropped: u64,
    /// `ok`, or the first problem the database's integrity check found at start.
    #[serde(default)]
    pub database: String,
    /// Shutting down: no new connections, in-flight requests finishing.
    #[serde(default)]
    pub draining: bool,
    /// Client requests being proxied now (streams included).
    #[serde(default)]
    pub in_flight: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CooldownView {
    pub model: String,
    pub until: String,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyView {
    pub id: i64,
    pub key: String,
    /// `gemini` or `vertex`.
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub group: Option<String>,
    #[serde(default)]
    pub project: Option<String>,
    #[serde(default)]
    pub note: Option<String>,
    /// The egress proxy the key leaves through (password redacted), or null.
    #[serde(default)]
    pub proxy: Option<String>,
    pub state: String,
    pub failures: u32,
    pub cooling_until: Option<String>,
    pub cooldowns: Vec<CooldownView>,
    pub last_used: Option<String>,
    pub requests_24h: u64,
    pub errors_24h: u64,
    pub last_error: Option<String>,
    /// Live resources (uploaded files, ...) bound to the key.
    #[serde(default)]
    pub resources: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AddKeysRequest {
    pub keys: Vec<String>,
    /// Lines of the input that held no key, counted by the client that parsed them.
    #[serde(default)]
    pub malformed: u64,
    /// The kind of every key added: `gemini` (the default) or `vertex`.
    #[serde(default)]
    pub kind: Option<String>,
    /// Labels for every key added.
    #[serde(flatten)]
    pub labels: KeyLabels,
}

/// Labels an operator gives keys; each one given is set, `""` clears it, one not given stays.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct KeyLabels {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// `gbctl keys set`: the labels given, on every key named.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SetKeysRequest {
    pub keys: Vec<String>,
    #[serde(flatten)]
    pub labels: KeyLabels,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AddKeysResponse {
    pub added: u64,
    pub duplicates: u64,
    pub malformed: u64,
}

/// Which keys an operation applies to: explicit KEY arguments (ids or tails), or a whole class.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct KeySelection {
    #[serde(default)]
    pub keys: Vec<String>,
    #[serde(default)]
    pub all: bool,
    #[serde(default)]
    pub invalid: bool,
    /// `remove`: also keys that own live resources (which then cannot be used any more).
    #[serde(default)]
    pub force: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VerifyResult {
    pub id: i64,
    pub key: String,
    pub ok: bool,
    pub status: Option<u16>,
    pub latency_ms: u64,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SettingView {
    pub name: String,
    pub value: serde_json::Value,
    pub source: String,
    pub hot: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SetSettingRequest {
    /// A TOML literal, e.g. `5`, `true`, `'["a","b"]'`.
    pub value: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LogView {
    pub ts: String,
    pub route: String,
    pub model: Option<String>,
    pub key: Option<String>,
    pub status: u16,
    pub latency_ms: u64,
    pub attempts: u32,
    pub trail: String,
    pub stream: bool,
    pub prompt_tokens: Option<u64>,
    pub completion_tokens: Option<u64>,
    pub error: Option<String>,
    /// The resource the request was pinned to by key affinity (`files/abc`); present only then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ErrorLogView {
    pub ts: String,
    pub route: String,
    pub model: Option<String>,
    pub key: Option<String>,
    pub status: Option<u16>,
    pub error: String,
    pub body: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StatsRow {
    pub name: String,
    pub requests: u64,
    pub errors: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub p50_ms: u64,
    pub p95_ms: u64,
}

/// Pulls keys out of operator input: one per line, or any text holding `AIza…` keys (a pasted
/// export, a CSV). Returns the keys in order of appearance and the count of non-empty lines that
/// held none.
pub fn extract_keys(text: &str) -> (Vec<String>, u64) {
    let mut keys = Vec::new();
    let mut malformed = 0;
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let found = keys_in_line(trimmed);
        if found.is_empty() {
            if is_plain_key(trimmed) {
                keys.push(trimmed.to_string());
            } else {
                malformed += 1;
            }
        } else {
            keys.extend(found);
        }
    }
    (keys, malformed)
}

fn keys_in_line(line: &str) -> Vec<String> {
    let bytes = line.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(pos) = line[i..].find("AIza") {
        let start = i + pos;
        let mut end = start;
        while end < bytes.len() && (bytes[end].is_ascii_alphanumeric() || matches!(bytes[end], b'_' | b'-')) {
            end += 1;
        }
        if end - start == 39 {
            out.push(line[start..end].to_string());
        }
        i = end.max(start + 4);
    }
    out
}

/// A line that is one token of key characters is taken as a key even without the `AIza` prefix,
/// so test keys and future key formats can be imported; anything with spaces is not.
pub fn is_plain_key(line: &str) -> bool {
    !line.is_empty()
        && line.len() <= 256
        && line.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extracts_keys_from_lines_and_text() {
        let k1 = format!("AIza{}", "a".repeat(35));
        let k2 = format!("AIza{}", "B".repeat(35));
        let text = format!("{k1}\n\n# comment\nname,key\nproj-1,{k2}\nnot a key\nplain-test-key-1\n");
        let (keys, malformed) = extract_keys(&text);
        assert_eq!(keys, vec![k1, k2, "plain-test-key-1".to_string()]);
        assert_eq!(malformed, 2);
    }
}

/// `90s`, `5m`, `2h`, `7d` → seconds (the CLI's DUR).
pub fn parse_duration(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.len().saturating_sub(1));
    let mult = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => return Err(format!("invalid duration {s:?}: use a number with s, m, h or d (e.g. 15m)")),
    };
    num.parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| format!("invalid duration {s:?}: use a number with s, m, h or d (e.g. 15m)"))
}

#[cfg(test)]
mod duration_tests {
    use super::parse_duration;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s"), Ok(90));
        assert_eq!(parse_duration("5m"), Ok(300));
        assert_eq!(parse_duration("2h"), Ok(7200));
        assert_eq!(parse_duration("7d"), Ok(604800));
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("m").is_err());
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("").is_err());
    }
}
