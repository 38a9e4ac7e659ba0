//! Configuration: the serde structs with their embedded defaults, the layering (defaults < TOML
//! file < environment < runtime settings from the database), validation that names the offending
//! field, and the registry of field names that `gbctl settings` addresses.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::RwLock;

use figment::Figment;
use figment::providers::{Format, Serialized, Toml};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Exit status for a bad configuration (sysexits EX_CONFIG).
pub const EX_CONFIG: u8 = 78;

const ENV_PREFIX: &str = "GATEWAY_";

/// A secret string (client token, Gemini key) whose Debug, Display and Serialize never show it.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&shared::redact(&self.0))
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&shared::redact(&self.0))
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&shared::redact(&self.0))
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Secret)
    }
}

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
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    pub listen: String,
    pub admin_socket: String,
    pub max_body_bytes: u64,
    pub metrics_listen: String,
    pub shutdown_grace_secs: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: "127.0.0.1:8000".into(),
            admin_socket: "data/gatewayd.sock".into(),
            max_body_bytes: 33_554_432,
            metrics_listen: String::new(),
            shutdown_grace_secs: 30,
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
    pub timeout_secs: u64,
    pub connect_timeout_secs: u64,
    pub proxy: String,
}

impl Default for UpstreamConfig {
    fn default() -> Self {
        UpstreamConfig {
            base_url: "https://generativelanguage.googleapis.com".into(),
            timeout_secs: 300,
            connect_timeout_secs: 10,
            proxy: String::new(),
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
}

impl Default for ModelsConfig {
    fn default() -> Self {
        ModelsConfig {
            hidden: Vec::new(),
            search_models: vec!["gemini-2.5-flash".into(), "gemini-2.5-pro".into()],
            thinking_budget: BTreeMap::new(),
            safety_settings: "passthrough".into(),
        }
    }
}

/// One addressable setting: its dotted name, whether it changes at runtime, whether it is secret.
#[derive(Debug, Clone, Copy)]
pub struct Field {
    pub name: &'static str,
    pub hot: bool,
    pub secret: bool,
}

const fn field(name: &'static str, hot: bool) -> Field {
    Field { name, hot, secret: false }
}

/// Every field of the contract's table, in its order.
pub const FIELDS: &[Field] = &[
    field("server.listen", false),
    field("server.admin_socket", false),
    field("server.max_body_bytes", true),
    field("server.metrics_listen", false),
    field("server.shutdown_grace_secs", true),
    field("database.path", false),
    field("upstream.base_url", true),
    field("upstream.timeout_secs", true),
    field("upstream.connect_timeout_secs", true),
    field("upstream.proxy", true),
    Field { name: "auth.tokens", hot: true, secret: true },
    Field { name: "keys.api_keys", hot: false, secret: true },
    field("keys.max_failures", true),
    field("keys.max_retries", true),
    field("keys.cooldown_secs", true),
    field("keys.wait_secs", true),
    field("keys.verify_model", true),
    field("keys.verify_generate", true),
    field("keys.verify_schedule", true),
    field("logs.request_retention_days", true),
    field("logs.error_retention_days", true),
    field("logs.cleanup_schedule", true),
    field("logs.record_request_body", true),
    field("models.hidden", true),
    field("models.search_models", true),
    field("models.thinking_budget", true),
    field("models.safety_settings", true),
];

pub fn find_field(name: &str) -> Option<&'static Field> {
    FIELDS.iter().find(|f| f.name == name)
}

/// Why a configuration was refused; always names the field.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid configuration: {field}: {message}")]
pub struct ConfigError {
    pub field: String,
    pub message: String,
}

impl ConfigError {
    fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError { field: field.into(), message: message.into() }
    }
}

/// Where the layers come from. Built once at start; `resolve` can be called again with new runtime
/// settings to produce the next snapshot.
#[derive(Debug, Clone)]
pub struct Layers {
    file_text: Option<String>,
    file_table: toml::Table,
    env: BTreeMap<String, String>,
}

/// Secret lists are read from the environment raw, because figment's env parser turns `007` into 7
/// and refuses a bare token where a list is expected.
const RAW_ENV_LISTS: &[(&str, &str)] =
    &[("GATEWAY_AUTH__TOKENS", "auth.tokens"), ("GATEWAY_KEYS__API_KEYS", "keys.api_keys")];

impl Layers {
    /// Finds the file: `--config`, else `$GATEWAY_CONFIG`, else `./gateway.toml` if present.
    pub fn discover(explicit: Option<&Path>) -> Result<Self, ConfigError> {
        let from_env = std::env::var_os("GATEWAY_CONFIG").filter(|v| !v.is_empty()).map(PathBuf::from);
        let path = match explicit.map(Path::to_path_buf).or(from_env) {
            Some(p) => Some(p),
            None => Some(PathBuf::from("gateway.toml")).filter(|p| p.exists()),
        };
        let env = std::env::vars().filter(|(k, _)| k.starts_with(ENV_PREFIX)).collect();
        Self::from_parts(path, env)
    }

    /// Layers from an explicit file (or none) and an explicit environment; tests use this.
    pub fn from_parts(path: Option<PathBuf>, env: BTreeMap<String, String>) -> Result<Self, ConfigError> {
        let (file_text, file_table) = match &path {
            None => (None, toml::Table::new()),
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .map_err(|e| ConfigError::new("--config", format!("cannot read {}: {e}", p.display())))?;
                let table: toml::Table = toml::from_str(&text)
                    .map_err(|e| ConfigError::new(p.display().to_string(), format!("not valid TOML: {e}")))?;
                (Some(text), table)
            }
        };
        Ok(Layers { file_text, file_table, env })
    }

    /// The effective configuration for the given runtime overrides (dotted name → TOML value).
    pub fn resolve(&self, runtime: &BTreeMap<String, toml::Value>) -> Result<Config, ConfigError> {
        let mut fig = Figment::new();
        if let Some(text) = &self.file_text {
            fig = fig.merge(Toml::string(text));
        }
        for (var, value) in &self.env {
            let Some(key) = plain_env_key(var) else { continue };
            let value: figment::value::Value =
                value.parse().unwrap_or_else(|never: std::convert::Infallible| match never {});
            fig = fig.merge(Serialized::default(&key, value));
        }
        for (var, name) in RAW_ENV_LISTS {
            if let Some(raw) = self.env.get(*var) {
                let list = parse_env_list(raw).map_err(|m| ConfigError::new(*name, m))?;
                fig = fig.merge(Serialized::default(name, list));
            }
        }
        if !runtime.is_empty() {
            fig = fig.merge(Serialized::defaults(nest(runtime)));
        }
        let config: Config = fig.extract().map_err(figment_error)?;
        validate(&config)?;
        Ok(config)
    }

    /// Where the effective value of `name` comes from: `runtime`, `env`, `file` or `default`.
    pub fn source(&self, name: &str, runtime: &BTreeMap<String, toml::Value>) -> &'static str {
        if runtime.contains_key(name) {
            return "runtime";
        }
        let var = format!("{ENV_PREFIX}{}", name.replace('.', "__")).to_ascii_uppercase();
        if self.env.keys().any(|k| k.eq_ignore_ascii_case(&var)) {
            return "env";
        }
        let mut parts = name.split('.');
        let (Some(section), Some(leaf)) = (parts.next(), parts.next()) else { return "default" };
        match self.file_table.get(section).and_then(|s| s.as_table()) {
            Some(t) if t.contains_key(leaf) => "file",
            _ => "default",
        }
    }
}

/// `GATEWAY_KEYS__MAX_RETRIES` → `keys.max_retries`; `None` for variables handled elsewhere.
/// The environment is passed in rather than read by figment, so tests can run in parallel.
fn plain_env_key(var: &str) -> Option<String> {
    let rest = var.strip_prefix(ENV_PREFIX)?;
    if rest.eq_ignore_ascii_case("CONFIG") || RAW_ENV_LISTS.iter().any(|(raw, _)| raw.eq_ignore_ascii_case(var)) {
        return None;
    }
    Some(rest.to_ascii_lowercase().replace("__", "."))
}

fn figment_error(err: figment::Error) -> ConfigError {
    let first = err.into_iter().next().expect("a figment error holds at least one error");
    let path = first.path.join(".");
    let field = match &first.kind {
        figment::error::Kind::UnknownField(name, _) if path.is_empty() => name.clone(),
        _ if path.is_empty() => "config".to_string(),
        _ => path,
    };
    ConfigError::new(field, first.kind.to_string())
}

/// A list from the environment: a TOML/JSON array of strings, or comma-separated bare values.
fn parse_env_list(raw: &str) -> Result<Vec<String>, String> {
    let raw = raw.trim();
    if raw.starts_with('[') {
        #[derive(Deserialize)]
        struct Wrap {
            v: Vec<String>,
        }
        toml::from_str::<Wrap>(&format!("v = {raw}"))
            .map(|w| w.v)
            .map_err(|e| format!("expected an array of strings such as [\"a\",\"b\"]: {}", e.message()))
    } else {
        Ok(raw.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect())
    }
}

/// Turns `{"keys.max_retries": 5}` into `{keys = {max_retries = 5}}`.
fn nest(runtime: &BTreeMap<String, toml::Value>) -> toml::Table {
    let mut root = toml::Table::new();
    for (name, value) in runtime {
        let Some((section, leaf)) = name.split_once('.') else { continue };
        let entry = root.entry(section).or_insert_with(|| toml::Value::Table(toml::Table::new()));
        if let toml::Value::Table(t) = entry {
            t.insert(leaf.to_string(), value.clone());
        }
    }
    root
}

/// Parses an operator's TOML literal (`5`, `true`, `'["a","b"]'`, `"text"`). A bare word that is
/// not TOML is taken as a string, so `gbctl settings set keys.verify_model gemini-2.5-pro` works.
pub fn parse_literal(text: &str) -> Result<toml::Value, String> {
    #[derive(Deserialize)]
    struct Wrap {
        v: toml::Value,
    }
    match toml::from_str::<Wrap>(&format!("v = {text}")) {
        Ok(w) => Ok(w.v),
        Err(_) if !text.trim().is_empty() && !text.trim_start().starts_with(['[', '{', '"', '\'']) => {
            Ok(toml::Value::String(text.to_string()))
        }
        Err(e) => Err(format!("not a TOML value: {}", e.message())),
    }
}

/// The value of one field as JSON, secrets redacted.
pub fn field_value(config: &Config, name: &str) -> Option<serde_json::Value> {
    let json = serde_json::to_value(config).ok()?;
    json.pointer(&format!("/{}", name.replace('.', "/"))).cloned()
}

fn validate(c: &Config) -> Result<(), ConfigError> {
    parse_addr(&c.server.listen).map_err(|m| ConfigError::new("server.listen", m))?;
    if c.server.admin_socket.trim().is_empty() {
        return Err(ConfigError::new("server.admin_socket", "must not be empty"));
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
    if c.upstream.connect_timeout_secs == 0 {
        return Err(ConfigError::new("upstream.connect_timeout_secs", "must be at least 1"));
    }
    if !c.upstream.proxy.is_empty() {
        validate_url(&c.upstream.proxy, &["http", "socks5", "socks5h"])
            .map_err(|m| ConfigError::new("upstream.proxy", m))?;
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

/// The atomically swapped configuration snapshot the hot path reads: a read lock held only long
/// enough to clone an `Arc`, never across an await.
#[derive(Debug)]
pub struct Live<T> {
    inner: RwLock<Arc<T>>,
}

impl<T> Live<T> {
    pub fn new(value: T) -> Self {
        Live { inner: RwLock::new(Arc::new(value)) }
    }
    pub fn load(&self) -> Arc<T> {
        self.inner.read().clone()
    }
    pub fn store(&self, value: T) {
        *self.inner.write() = Arc::new(value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(e.field, "server.max_body_bytes");
    }

    #[test]
    fn secrets_never_print() {
        let mut c = Config::default();
        c.auth.tokens = vec![Secret::new("supersecret-token-1234")];
        let text = toml::to_string(&c).unwrap();
        assert!(!text.contains("supersecret"));
        assert!(format!("{c:?}").contains("supe…1234"));
        assert_eq!(field_value(&c, "auth.tokens").unwrap(), serde_json::json!(["supe…1234"]));
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
}
