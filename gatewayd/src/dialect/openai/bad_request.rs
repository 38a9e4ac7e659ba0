//! A client mistake in an OpenAI body, naming the offending field (`messages[2].tool_call_id`), and
//! the checked `model` every OpenAI request carries.

use serde_json::{Map, Value};

use crate::models::ModelName;

/// A client mistake, naming the offending field (`messages[2].tool_call_id`).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct BadRequest {
    pub field: String,
    pub message: String,
}

pub(crate) fn bad(field: impl Into<String>, message: impl Into<String>) -> BadRequest {
    BadRequest { field: field.into(), message: message.into() }
}

/// The client's `model`, checked; the name as the client wrote it is kept for the answer.
pub(crate) fn checked_model(obj: &Map<String, Value>) -> Result<(String, ModelName), BadRequest> {
    let model =
        obj.get("model").and_then(Value::as_str).filter(|m| !m.is_empty()).ok_or_else(|| bad("model", "required"))?;
    let checked = ModelName::parse(model).map_err(|e| bad("model", e.to_string()))?;
    Ok((model.to_string(), checked))
}

/// An optional number field, kept as the client wrote it (an integer stays an integer).
pub(crate) fn number(obj: &Map<String, Value>, name: &str) -> Result<Option<serde_json::Number>, BadRequest> {
    match obj.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => Ok(Some(n.clone())),
        Some(_) => Err(bad(name, "must be a number")),
    }
}
