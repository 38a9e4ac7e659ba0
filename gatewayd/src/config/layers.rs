//! The layering: defaults < TOML file < environment < runtime settings, resolved with figment
//! into a validated `Config`; every refusal names the field or the variable.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Format, Serialized, Toml};
use serde::Deserialize;

use super::{Config, ENV_PREFIX, validate};

/// Why a configuration was refused; always names the field.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid configuration: {field}: {message}")]
pub struct ConfigError {
    pub field: String,
    pub message: String,
}

impl ConfigError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
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
        let config: Config = fig.extract().map_err(|e| self.name_the_variable(figment_error(e), true))?;
        validate(&config).map_err(|e| self.name_the_variable(e, false))?;
        Ok(config)
    }

    /// An error about a field the environment sets is named by its variable; a secret field's
    /// value is never echoed (figment's type errors quote the value they found; our own
    /// validation messages never quote a secret).
    fn name_the_variable(&self, mut e: ConfigError, from_figment: bool) -> ConfigError {
        let secret = crate::config::find_field(&e.field).is_some_and(|f| f.secret);
        if secret && from_figment {
            e.message = "not a valid value (the value is secret and not shown)".into();
        }
        if let Some(var) = env_var_of(&self.env, &e.field) {
            e.field = var.to_string();
        } else if let Some((var, _)) = RAW_ENV_LISTS.iter().find(|(v, f)| *f == e.field && self.env.contains_key(*v)) {
            e.field = var.to_string();
        }
        e
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
/// Only names of the form `GATEWAY_<SECTION>__<FIELD>` are read: platforms inject other
/// `GATEWAY_*` variables of their own (Kubernetes sets `GATEWAY_SERVICE_HOST` and
/// `GATEWAY_PORT=tcp://…` for a Service named `gateway`), and those are not ours.
fn plain_env_key(var: &str) -> Option<String> {
    let rest = var.strip_prefix(ENV_PREFIX)?;
    let (section, field) = rest.split_once("__")?;
    if section.is_empty() || field.is_empty() || field.contains("__") {
        return None;
    }
    if RAW_ENV_LISTS.iter().any(|(raw, _)| raw.eq_ignore_ascii_case(var)) {
        return None;
    }
    Some(format!("{}.{}", section.to_ascii_lowercase(), field.to_ascii_lowercase()))
}

/// The environment variable that sets `field`, when one does (it then names the error).
fn env_var_of<'a>(env: &'a BTreeMap<String, String>, field: &str) -> Option<&'a str> {
    env.keys().map(String::as_str).find(|var| plain_env_key(var).as_deref() == Some(field))
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
