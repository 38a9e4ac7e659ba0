//! Configuration: the serde structs with their embedded defaults and the validation that names
//! the offending field. The layering lives in `layers`, the field registry in `fields`.

mod fields;
mod layers;

use std::collections::BTreeMap;
use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

pub use self::fields::{FIELDS, Field, field_value, find_field};
pub use self::layers::{ConfigError, Layers, parse_literal};
use crate::secret::Secret;

/// Exit status for a bad configuration (sysexits EX_CONFIG).
pub const EX_CONFIG: u8 = 78;

const ENV_PREFIX: &str = "GATEWAY_";

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub database: DatabaseConfig,
    pub upstream: UpstreamConfig,
    pub auth: AuthConfig,
    pub keys: KeysConfig,
    pub logs: LogsConfig,
    pub models: ModelsConfig,
    pub vertex: VertexConfig,
    pub responses: ResponsesConfig,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ResponsesConfig {
    /// Stored Responses API responses (for `previous_response_id`) are deleted after this.
    pub store_days: u64,
}

impl Default for ResponsesConfig {
    fn default() -> Self {
        ResponsesConfig { store_days: 30 }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct VertexConfig {
    /// API root for Vertex AI Express keys (`kind = vertex`).
    pub base_url: String,
}

impl Default for VertexConfig {
    fn default() -> Self {
        VertexConfig { base_url: "https://aiplatform.googleapis.com".into() }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    pub listen: String,
    pub admin_socket: String,
    pub max_body_bytes: u64,
    pub metrics_listen: String,
    pub shutdown_grace_secs: u64,
    /// A client that has not sent its whole request head by then is disconnected; a body that
    /// makes no progress for this long is cut.
    pub header_timeout_secs: u64,
    /// A keep-alive connection idle this long is closed.
    pub idle_timeout_secs: u64,
    /// Client connections beyond this are accepted and closed at once.
    pub max_connections: u64,
    /// Request bodies held in memory at once, all requests together.
    pub max_inflight_body_bytes: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: "127.0.0.1:8000".into(),
            admin_socket: "data/gatewayd.sock".into(),
            max_body_bytes: 33_554_432,
            metrics_listen: String::new(),
            shutdown_grace_secs: 30,
            header_timeout_secs: 10,
            idle_timeout_secs: 75,
            max_connections: 4096,
            max_inflight_body_bytes: 268_435_456,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    pub path: String,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig { path: "data/gateway.db".into() }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct UpstreamConfig {
    pub base_url: String,
    /// One attempt's deadline: for its whole answer, or for a stream, until its first event.
    pub timeout_secs: u64,
    /// A stream that sends nothing for this long is cut; one that keeps sending never is.
    pub stream_idle_secs: u64,
    pub connect_timeout_secs: u64,
    /// Its password is a secret: shown redacted wherever the value is shown.
    #[serde(serialize_with = "crate::secret::serialize_url")]
    pub proxy: String,
    /// Egress proxies, each key pinned to one by a consistent hash of its id; when set,
    /// `proxy` is not used. Passwords are secrets, like `proxy`'s.
    #[serde(serialize_with = "crate::secret::serialize_urls")]
    pub proxies: Vec<String>,
}

impl Default for UpstreamConfig {
    fn default() -> Self {
        UpstreamConfig {
            base_url: "https://generativelanguage.googleapis.com".into(),
            timeout_secs: 300,
            stream_idle_secs: 120,
            connect_timeout_secs: 10,
            proxy: String::new(),
            proxies: Vec::new(),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    pub tokens: Vec<Secret>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct KeysConfig {
    pub api_keys: Vec<Secret>,
    pub max_failures: u32,
    pub max_retries: u32,
    pub cooldown_secs: u64,
    pub wait_secs: u64,
    pub verify_model: String,
    pub verify_generate: bool,
    pub verify_schedule: String,
}

impl Default for KeysConfig {
    fn default() -> Self {
        KeysConfig {
            api_keys: Vec::new(),
            max_failures: 3,
            max_retries: 3,
            cooldown_secs: 60,
            wait_secs: 0,
            verify_model: "gemini-2.5-flash-lite".into(),
            verify_generate: false,
            verify_schedule: "0 0 * * * *".into(),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LogsConfig {
    pub request_retention_days: u64,
    pub error_retention_days: u64,
    pub cleanup_schedule: String,
    pub record_request_body: bool,
}

impl Default for LogsConfig {
    fn default() -> Self {
        LogsConfig {
            request_retention_days: 30,
            error_retention_days: 7,
            cleanup_schedule: "0 30 3 * * *".into(),
            record_request_body: false,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ModelsConfig {
    pub hidden: Vec<String>,
    pub search_models: Vec<String>,
    pub thinking_budget: BTreeMap<String, i64>,
    pub safety_settings: String,
    /// How OpenAI/Anthropic image URLs are fetched: `public`, `off` or `any`.
    pub image_fetch: String,
    /// `{glob = model}`: a client's model name matching the glob is served as that model.
    pub aliases: BTreeMap<String, String>,
    /// `{glob = group}`: models matching the glob are served only by keys of that group.
    pub groups: BTreeMap<String, String>,
}

impl Default for ModelsConfig {
    fn default() -> Self {
        ModelsConfig {
            hidden: Vec::new(),
            search_models: vec!["gemini-2.5-flash".into(), "gemini-2.5-pro".into()],
            thinking_budget: BTreeMap::new(),
            safety_settings: "passthrough".into(),
            image_fetch: "public".into(),
            aliases: BTreeMap::new(),
            groups: BTreeMap::new(),
        }
    }
}

pub(crate) fn validate(c: &Config) -> Result<(), ConfigError> {
    parse_addr(&c.server.listen).map_err(|m| ConfigError::new("server.listen", m))?;
    if c.server.admin_socket.trim().is_empty() {
        return Err(ConfigError::new("server.admin_socket", "must not be empty"));
    }
    if c.server.admin_socket == c.database.path {
        return Err(ConfigError::new("server.admin_socket", "must not be the database's path (database.path)"));
    }
    if c.server.max_body_bytes < 1024 {
        return Err(ConfigError::new("server.max_body_bytes", "must be at least 1024"));
    }
    if !c.server.metrics_listen.is_empty() {
        parse_addr(&c.server.metrics_listen).map_err(|m| ConfigError::new("server.metrics_listen", m))?;
    }
    if c.database.path.trim().is_empty() {
        return Err(ConfigError::new("database.path", "must not be empty"));
    }
    validate_url(&c.upstream.base_url, &["http", "https"]).map_err(|m| ConfigError::new("upstream.base_url", m))?;
    if c.upstream.timeout_secs == 0 {
        return Err(ConfigError::new("upstream.timeout_secs", "must be at least 1"));
    }
    for (name, v) in [
        ("server.header_timeout_secs", c.server.header_timeout_secs),
        ("server.idle_timeout_secs", c.server.idle_timeout_secs),
        ("server.max_connections", c.server.max_connections),
    ] {
        if v == 0 {
            return Err(ConfigError::new(name, "must be at least 1"));
        }
    }
    if c.server.max_inflight_body_bytes < c.server.max_body_bytes {
        return Err(ConfigError::new(
            "server.max_inflight_body_bytes",
            format!("must be at least server.max_body_bytes ({})", c.server.max_body_bytes),
        ));
    }
    if c.upstream.stream_idle_secs == 0 {
        return Err(ConfigError::new("upstream.stream_idle_secs", "must be at least 1"));
    }
    if c.upstream.connect_timeout_secs == 0 {
        return Err(ConfigError::new("upstream.connect_timeout_secs", "must be at least 1"));
    }
    if !c.upstream.proxy.is_empty() {
        // The message never quotes the value: it may hold a password.
        validate_url(&c.upstream.proxy, &["http", "socks5", "socks5h"])
            .map_err(|m| ConfigError::new("upstream.proxy", m.replace(&c.upstream.proxy, "…")))?;
    }
    for (i, proxy) in c.upstream.proxies.iter().enumerate() {
        validate_url(proxy, &["http", "socks5", "socks5h"])
            .map_err(|m| ConfigError::new(format!("upstream.proxies[{i}]"), m.replace(proxy.as_str(), "…")))?;
        if c.upstream.proxies[..i].contains(proxy) {
            return Err(ConfigError::new(format!("upstream.proxies[{i}]"), "is listed twice"));
        }
    }
    if c.responses.store_days == 0 {
        return Err(ConfigError::new("responses.store_days", "must be at least 1"));
    }
    validate_url(&c.vertex.base_url, &["http", "https"]).map_err(|m| ConfigError::new("vertex.base_url", m))?;
    for (pattern, model) in &c.models.aliases {
        crate::models::check_glob(pattern).map_err(|m| ConfigError::new(format!("models.aliases.{pattern}"), m))?;
        crate::models::ModelName::parse(model)
            .map_err(|e| ConfigError::new(format!("models.aliases.{pattern}"), e.to_string()))?;
    }
    for (pattern, group) in &c.models.groups {
        crate::models::check_glob(pattern).map_err(|m| ConfigError::new(format!("models.groups.{pattern}"), m))?;
        crate::keypool::labels::name("group", group).ok().flatten().ok_or_else(|| {
            ConfigError::new(
                format!("models.groups.{pattern}"),
                "must be a group name: 1 to 64 characters of A-Z a-z 0-9 . - _",
            )
        })?;
    }
    for t in &c.auth.tokens {
        let t = t.expose();
        if t.is_empty() || t.chars().any(|ch| ch.is_whitespace() || ch.is_control()) {
            return Err(ConfigError::new("auth.tokens", "a token must be non-empty and hold no whitespace"));
        }
    }
    for k in &c.keys.api_keys {
        let k = k.expose();
        if k.is_empty() || !k.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.')) {
            return Err(ConfigError::new("keys.api_keys", "a key must be non-empty and hold only [A-Za-z0-9_.-]"));
        }
    }
    if c.keys.max_failures == 0 {
        return Err(ConfigError::new("keys.max_failures", "must be at least 1"));
    }
    if c.keys.max_retries > 100 {
        return Err(ConfigError::new("keys.max_retries", "must be at most 100"));
    }
    if c.keys.cooldown_secs == 0 {
        return Err(ConfigError::new("keys.cooldown_secs", "must be at least 1"));
    }
    if c.keys.wait_secs > 3600 {
        return Err(ConfigError::new("keys.wait_secs", "must be at most 3600"));
    }
    if c.keys.verify_model.trim().is_empty() {
        return Err(ConfigError::new("keys.verify_model", "must not be empty"));
    }
    validate_schedule(&c.keys.verify_schedule).map_err(|m| ConfigError::new("keys.verify_schedule", m))?;
    validate_schedule(&c.logs.cleanup_schedule).map_err(|m| ConfigError::new("logs.cleanup_schedule", m))?;
    if c.logs.request_retention_days == 0 {
        return Err(ConfigError::new("logs.request_retention_days", "must be at least 1"));
    }
    if c.logs.error_retention_days == 0 {
        return Err(ConfigError::new("logs.error_retention_days", "must be at least 1"));
    }
    for (model, budget) in &c.models.thinking_budget {
        if *budget < -1 {
            return Err(ConfigError::new(
                format!("models.thinking_budget.{model}"),
                "must be -1 (dynamic), 0 (off) or positive",
            ));
        }
    }
    const THRESHOLDS: &[&str] = &[
        "passthrough",
        "BLOCK_NONE",
        "BLOCK_ONLY_HIGH",
        "BLOCK_MEDIUM_AND_ABOVE",
        "BLOCK_LOW_AND_ABOVE",
        "OFF",
        "HARM_BLOCK_THRESHOLD_UNSPECIFIED",
    ];
    if crate::image_fetch::Policy::parse(&c.models.image_fetch).is_none() {
        return Err(ConfigError::new("models.image_fetch", "must be one of public, off, any"));
    }
    if !THRESHOLDS.contains(&c.models.safety_settings.as_str()) {
        return Err(ConfigError::new("models.safety_settings", format!("must be one of {}", THRESHOLDS.join(", "))));
    }
    Ok(())
}

fn parse_addr(s: &str) -> Result<SocketAddr, String> {
    s.parse().map_err(|_| format!("expected IP:PORT such as 127.0.0.1:8000, found {s:?}"))
}

fn validate_url(s: &str, schemes: &[&str]) -> Result<(), String> {
    let uri: http::Uri = s.parse().map_err(|e| format!("not a URL ({e}): {s:?}"))?;
    let scheme = uri.scheme_str().unwrap_or("");
    if !schemes.contains(&scheme) {
        return Err(format!("scheme must be one of {}, found {s:?}", schemes.join(", ")));
    }
    if uri.authority().is_none() {
        return Err(format!("no host in {s:?}"));
    }
    if uri.query().is_some() {
        return Err("must not carry a query string".into());
    }
    Ok(())
}

fn validate_schedule(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Ok(());
    }
    s.parse::<cron::Schedule>()
        .map(|_| ())
        .map_err(|e| format!("not a cron expression with seconds (e.g. \"0 30 3 * * *\"): {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn file(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("gateway.toml");
        std::fs::write(&p, text).unwrap();
        (dir, p)
    }

    #[test]
    fn defaults_match_the_contract() {
        let c = Layers::from_parts(None, BTreeMap::new()).unwrap().resolve(&BTreeMap::new()).unwrap();
        assert_eq!(c, Config::default());
        assert_eq!(c.server.listen, "127.0.0.1:8000");
        assert_eq!(c.database.path, "data/gateway.db");
        assert_eq!(c.server.admin_socket, "data/gatewayd.sock");
        assert_eq!(c.server.max_body_bytes, 33_554_432);
        assert_eq!(c.keys.verify_schedule, "0 0 * * * *");
    }

    /// Platforms inject GATEWAY_* variables of their own; only GATEWAY_<SECTION>__<FIELD> and
    /// GATEWAY_CONFIG are ours. A bad one is named by its variable, and a secret is not echoed.
    #[test]
    fn only_section_field_variables_are_read_and_errors_name_them() {
        let k8s = env(&[
            ("GATEWAY_SERVICE_HOST", "10.0.0.7"),
            ("GATEWAY_PORT", "tcp://10.0.0.7:8000"),
            ("GATEWAY_PORT_8000_TCP", "tcp://10.0.0.7:8000"),
            ("GATEWAY_KEYS__MAX_RETRIES", "5"),
        ]);
        let c = Layers::from_parts(None, k8s).unwrap().resolve(&BTreeMap::new()).unwrap();
        assert_eq!(c.keys.max_retries, 5);
        let bad = Layers::from_parts(None, env(&[("GATEWAY_KEYS__MAX_RETRIES", "many")])).unwrap();
        assert_eq!(bad.resolve(&BTreeMap::new()).unwrap_err().field, "GATEWAY_KEYS__MAX_RETRIES");
        let unknown = Layers::from_parts(None, env(&[("GATEWAY_KEYS__MAX_RETRIEZ", "5")])).unwrap();
        assert_eq!(unknown.resolve(&BTreeMap::new()).unwrap_err().field, "GATEWAY_KEYS__MAX_RETRIEZ");
        let invalid = Layers::from_parts(None, env(&[("GATEWAY_UPSTREAM__TIMEOUT_SECS", "0")])).unwrap();
        assert_eq!(invalid.resolve(&BTreeMap::new()).unwrap_err().field, "GATEWAY_UPSTREAM__TIMEOUT_SECS");
        let proxy = Layers::from_parts(None, env(&[("GATEWAY_UPSTREAM__PROXY", "ftp://u:hunter2@h:1")])).unwrap();
        let e = proxy.resolve(&BTreeMap::new()).unwrap_err();
        assert_eq!(e.field, "GATEWAY_UPSTREAM__PROXY");
        assert!(!e.to_string().contains("hunter2"), "{e}");
        let (_d, p) = file("[upstream]\nproxy = 7\n");
        let e = Layers::from_parts(Some(p), BTreeMap::new()).unwrap().resolve(&BTreeMap::new()).unwrap_err();
        assert_eq!(e.field, "upstream.proxy");
        assert!(!e.message.contains('7'), "{e}");
    }

    #[test]
    fn issue_13_fields_are_checked_naming_the_entry() {
        let refused = |text: &str| {
            let (_d, p) = file(text);
            Layers::from_parts(Some(p), BTreeMap::new()).unwrap().resolve(&BTreeMap::new()).unwrap_err()
        };
        let e = refused("[upstream]\nproxies = [\"http://a:3128\", \"ftp://u:hunter2@b:21\"]\n");
        assert_eq!(e.field, "upstream.proxies[1]");
        assert!(!e.to_string().contains("hunter2"), "{e}");
        assert_eq!(refused("[upstream]\nproxies = [\"http://a:1\", \"http://a:1\"]\n").field, "upstream.proxies[1]");
        assert_eq!(refused("[models]\naliases = {\"gpt-*\" = \"../x\"}\n").field, "models.aliases.gpt-*");
        assert_eq!(refused("[models]\naliases = {\"a/b\" = \"m\"}\n").field, "models.aliases.a/b");
        assert_eq!(refused("[models]\ngroups = {\"imagen-*\" = \"pa id\"}\n").field, "models.groups.imagen-*");
        assert_eq!(refused("[vertex]\nbase_url = \"aiplatform\"\n").field, "vertex.base_url");
        let (_d, p) = file(
            "[models]\naliases = {\"tts-1*\" = \"gemini-2.5-flash-preview-tts\"}\ngroups = {\"imagen-*\" = \"paid\"}\n",
        );
        let c = Layers::from_parts(Some(p), BTreeMap::new()).unwrap().resolve(&BTreeMap::new()).unwrap();
        assert_eq!(c.models.groups["imagen-*"], "paid");
    }

    #[test]
    fn layers_file_then_env_then_runtime() {
        let (_d, p) = file("[keys]\nmax_retries = 5\ncooldown_secs = 9\n[server]\nlisten = \"0.0.0.0:9000\"\n");
        let layers =
            Layers::from_parts(Some(p), env(&[("GATEWAY_KEYS__MAX_RETRIES", "7"), ("GATEWAY_CONFIG", "ignored.toml")]))
                .unwrap();
        let mut runtime = BTreeMap::new();
        let c = layers.resolve(&runtime).unwrap();
        assert_eq!((c.keys.max_retries, c.keys.cooldown_secs), (7, 9));
        assert_eq!(c.server.listen, "0.0.0.0:9000");
        runtime.insert("keys.max_retries".to_string(), toml::Value::Integer(1));
        assert_eq!(layers.resolve(&runtime).unwrap().keys.max_retries, 1);
        assert_eq!(layers.source("keys.max_retries", &runtime), "runtime");
        assert_eq!(layers.source("keys.cooldown_secs", &runtime), "file");
        assert_eq!(layers.source("server.max_body_bytes", &runtime), "default");
        runtime.clear();
        assert_eq!(layers.source("keys.max_retries", &runtime), "env");
    }

    #[test]
    fn secret_lists_from_env_keep_their_text() {
        let layers = Layers::from_parts(
            None,
            env(&[("GATEWAY_AUTH__TOKENS", "007"), ("GATEWAY_KEYS__API_KEYS", "[\"12345678\", \"AIzaX-1\"]")]),
        )
        .unwrap();
        let c = layers.resolve(&BTreeMap::new()).unwrap();
        assert_eq!(c.auth.tokens, vec![Secret::new("007")]);
        assert_eq!(c.keys.api_keys, vec![Secret::new("12345678"), Secret::new("AIzaX-1")]);
        let layers = Layers::from_parts(None, env(&[("GATEWAY_AUTH__TOKENS", "a1,b2")])).unwrap();
        assert_eq!(layers.resolve(&BTreeMap::new()).unwrap().auth.tokens.len(), 2);
    }

    #[test]
    fn refusals_name_the_field() {
        let cases = [
            ("[server]\nlisten = \"nowhere\"\n", "server.listen"),
            ("[server]\nbogus = 1\n", "server.bogus"),
            ("bogus = 1\n", "bogus"),
            ("[keys]\nmax_retries = \"many\"\n", "keys.max_retries"),
            ("[keys]\nverify_schedule = \"every hour\"\n", "keys.verify_schedule"),
            ("[upstream]\nbase_url = \"ftp://x\"\n", "upstream.base_url"),
            ("[models]\nsafety_settings = \"LOUD\"\n", "models.safety_settings"),
            ("[keys]\nmax_failures = 0\n", "keys.max_failures"),
        ];
        for (text, field) in cases {
            let (_d, p) = file(text);
            let e = Layers::from_parts(Some(p), BTreeMap::new()).unwrap().resolve(&BTreeMap::new()).unwrap_err();
            assert_eq!(e.field, field, "{text}: {e}");
            assert!(e.to_string().contains(field));
        }
        let e = Layers::from_parts(None, env(&[("GATEWAY_SERVER__MAX_BODY_BYTES", "lots")]))
            .unwrap()
            .resolve(&BTreeMap::new())
            .unwrap_err();
        assert_eq!(e.field, "GATEWAY_SERVER__MAX_BODY_BYTES", "the environment's errors name the variable");
    }

    #[test]
    fn secrets_never_print() {
        let mut c = Config::default();
        c.auth.tokens = vec![Secret::new("supersecret-token-1234")];
        let text = toml::to_string(&c).unwrap();
        assert!(!text.contains("supersecret"));
        assert!(format!("{c:?}").contains("supe…1234"));
        assert_eq!(field_value(&c, "auth.tokens").unwrap(), serde_json::json!(["supe…1234"]));
        c.upstream.proxy = "http://alice:proxy-password-99@proxy.internal:3128".into();
        let text = toml::to_string(&c).unwrap();
        assert!(!text.contains("proxy-password-99") && text.contains("alice:"), "{text}");
        c.upstream.proxies = vec!["socks5://bob:other-secret-77@p2:1080".into(), "http://p3:3128".into()];
        let text = toml::to_string(&c).unwrap();
        assert!(!text.contains("other-secret-77") && text.contains("bob:"), "{text}");
        assert!(!field_value(&c, "upstream.proxies").unwrap().to_string().contains("other-secret-77"));
        let shown = field_value(&c, "upstream.proxy").unwrap();
        assert_eq!(
            shown,
            serde_json::json!(format!("http://alice:{}@proxy.internal:3128", shared::redact("proxy-password-99")))
        );
    }

    #[test]
    fn literals_parse_like_toml() {
        assert_eq!(parse_literal("5").unwrap(), toml::Value::Integer(5));
        assert_eq!(parse_literal("[\"a\",\"b\"]").unwrap().as_array().unwrap().len(), 2);
        assert_eq!(parse_literal("gemini-2.5-pro").unwrap(), toml::Value::String("gemini-2.5-pro".into()));
        assert!(parse_literal("[1,").is_err());
    }

    #[test]
    fn every_field_is_addressable() {
        let c = Config::default();
        for f in FIELDS {
            assert!(field_value(&c, f.name).is_some(), "{}", f.name);
        }
    }

    /// The other direction: a field added to a struct but not to the registry could not be set,
    /// listed or checked by `gbctl settings`.
    #[test]
    fn every_struct_field_is_in_the_registry() {
        let json = serde_json::to_value(Config::default()).unwrap();
        let mut seen = 0;
        for (section, fields) in json.as_object().unwrap() {
            for name in fields.as_object().unwrap().keys() {
                let dotted = format!("{section}.{name}");
                assert!(find_field(&dotted).is_some(), "{dotted} is missing from config::FIELDS");
                seen += 1;
            }
        }
        assert_eq!(seen, FIELDS.len(), "FIELDS lists a name twice or one no struct has");
    }
}
