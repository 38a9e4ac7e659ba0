//! PURE: the one carrier for Gemini thought signatures. A tool call's id carries the signature of
//! the call it names, so a client that sends the id back (as every OpenAI-style client does) also
//! sends the signature back, with no state kept in the gateway.

use std::hash::{Hash, Hasher};

/// Separates a tool-call id from the Gemini thought signature carried inside it, so a client that
/// sends the id back (as every OpenAI client does) also sends the signature back, with no state
/// kept in the gateway.
const SIGNATURE_MARK: &str = "__thought__";

/// A tool-call id for a call (its name, arguments and position in the answer), with the Gemini
/// thought signature riding inside it. The hash only has to differ between the calls of one
/// answer: ids are echoed back by clients, never recomputed.
pub fn tool_call_id(name: &str, arguments: &str, position: usize, signature: Option<&str>) -> String {
    let mut h = std::hash::DefaultHasher::new();
    (name, arguments, position).hash(&mut h);
    let base = format!("call_{:016x}", h.finish());
    match signature {
        Some(sig) => format!("{base}{SIGNATURE_MARK}{sig}"),
        None => base,
    }
}

pub fn signature_from_id(id: &str) -> Option<&str> {
    id.split_once(SIGNATURE_MARK).map(|(_, sig)| sig).filter(|s| !s.is_empty())
}
