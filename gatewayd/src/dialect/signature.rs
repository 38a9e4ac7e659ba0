//! PURE: the one carrier for Gemini thought signatures. A tool call's id carries the signature of
//! the call it names, so a client that sends the id back (as every OpenAI-style client does) also
//! sends the signature back, with no state kept in the gateway.

use std::hash::{Hash, Hasher};

use serde_json::Value;

/// Separates a tool-call id from the Gemini thought signature carried inside it, so a client that
/// sends the id back (as every OpenAI client does) also sends the signature back, with no state
/// kept in the gateway.
const SIGNATURE_MARK: &str = "__thought__";

/// A stable tool-call id: the same call always gets the same id, and the Gemini thought signature
/// rides inside it.
pub fn tool_call_id(call: &Value, position: usize, signature: Option<&str>) -> String {
    let mut h = std::hash::DefaultHasher::new();
    call.to_string().hash(&mut h);
    position.hash(&mut h);
    let base = format!("call_{:016x}", h.finish());
    match signature {
        Some(sig) => format!("{base}{SIGNATURE_MARK}{sig}"),
        None => base,
    }
}

pub fn signature_from_id(id: &str) -> Option<&str> {
    id.split_once(SIGNATURE_MARK).map(|(_, sig)| sig).filter(|s| !s.is_empty())
}
