//! The registry of addressable fields (`gbctl settings` names), with whether each is hot and
//! secret; a test checks that it lists every field of the structs.

use super::Config;

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
    field("server.header_timeout_secs", false),
    field("server.idle_timeout_secs", false),
    field("server.max_connections", false),
    field("server.max_inflight_body_bytes", true),
    field("database.path", false),
    field("upstream.base_url", true),
    field("upstream.timeout_secs", true),
    field("upstream.stream_idle_secs", true),
    field("upstream.connect_timeout_secs", true),
    Field { name: "upstream.proxy", hot: true, secret: true },
    Field { name: "upstream.proxies", hot: true, secret: true },
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
    field("models.aliases", true),
    field("models.groups", true),
    field("models.image_fetch", true),
    field("vertex.base_url", true),
    field("responses.store_days", true),
];

pub fn find_field(name: &str) -> Option<&'static Field> {
    FIELDS.iter().find(|f| f.name == name)
}

/// The value of one field as JSON, secrets redacted.
pub fn field_value(config: &Config, name: &str) -> Option<serde_json::Value> {
    let json = serde_json::to_value(config).ok()?;
    json.pointer(&format!("/{}", name.replace('.', "/"))).cloned()
}
