//! OpenAI-compatible routes.
pub mod convert;
