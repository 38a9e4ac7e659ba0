//! Types and helpers shared by `gatewayd` and `gbctl`: the admin API's request and response bodies,
//! its paths, and the one redaction rule. No tokio, hyper or rusqlite here, so both sides agree by
//! construction and neither can drift.

pub mod admin;
pub mod redact;

pub use redact::{redact, redact_keys_in};
