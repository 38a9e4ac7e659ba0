//! PURE: the one carrier for Gemini thought signatures. A tool call's id carries the signature of
//! the call it names, so a client that sends the id back (as every OpenAI- and Anthropic-style
//! client does) also sends the signature back, with no state kept in the gateway.

use std::hash::{Hash, Hasher};

/// Separates a tool-call id from the Gemini thought signature carried inside it, so a client that
/// sends the id back (as every OpenAI client does) also sends the signature back, with no state
/// kept in the gateway.
const SIGNATURE_MARK: &str = "__thought__";

fn base(prefix: &str, name: &str, arguments: &str, position: usize) -> String {
    let mut h = std::hash::DefaultHasher::new();
    (name, arguments, position).hash(&mut h);
    format!("{prefix}{:016x}", h.finish())
}

/// A tool-call id for a call (its name, arguments and position in the answer), with the Gemini
/// thought signature riding inside it. The hash only has to differ between the calls of one
/// answer: ids are echoed back by clients, never recomputed.
pub fn tool_call_id(name: &str, arguments: &str, position: usize, signature: Option<&str>) -> String {
    let base = base("call_", name, arguments, position);
    match signature {
        Some(sig) => format!("{base}{SIGNATURE_MARK}{sig}"),
        None => base,
    }
}

/// The same for clients that hold ids to `[A-Za-z0-9_-]` (Anthropic's `toolu_…`, the Responses
/// API's `call_…` item ids): the signature rides in base64url without padding.
pub fn url_safe_call_id(prefix: &str, name: &str, arguments: &str, position: usize, signature: Option<&str>) -> String {
    let base = base(prefix, name, arguments, position);
    match signature {
        Some(sig) => {
            let safe: String = sig
                .chars()
                .filter(|c| *c != '=')
                .map(|c| match c {
                    '+' => '-',
                    '/' => '_',
                    c => c,
                })
                .collect();
            format!("{base}{SIGNATURE_MARK}{safe}")
        }
        None => base,
    }
}

/// The signature an id carries, in the standard base64 Gemini gave it (ids of either form).
pub fn signature_from_id(id: &str) -> Option<String> {
    let carried = id.split_once(SIGNATURE_MARK).map(|(_, sig)| sig).filter(|s| !s.is_empty())?;
    // Standard base64 holds no `-` or `_`, so mapping them back leaves a standard signature alone.
    let mut sig: String = carried
        .chars()
        .map(|c| match c {
            '-' => '+',
            '_' => '/',
            c => c,
        })
        .collect();
    if !carried.contains('=') {
        while !sig.len().is_multiple_of(4) {
            sig.push('=');
        }
    }
    Some(sig)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_ride_in_ids_of_both_forms() {
        let sig = "Cq8B+a/b+w==";
        let plain = tool_call_id("f", "{}", 0, Some(sig));
        assert_eq!(signature_from_id(&plain).as_deref(), Some(sig));
        let safe = url_safe_call_id("toolu_", "f", "{}", 0, Some(sig));
        assert!(
            safe.starts_with("toolu_") && safe.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'),
            "{safe}"
        );
        assert_eq!(signature_from_id(&safe).as_deref(), Some(sig));
        assert_eq!(signature_from_id("toolu_0123"), None);
        assert_ne!(url_safe_call_id("toolu_", "f", "{}", 0, None), url_safe_call_id("toolu_", "f", "{}", 1, None));
        // A signature of no special characters is its own url-safe form.
        assert_eq!(signature_from_id(&url_safe_call_id("toolu_", "g", "{}", 2, Some("QUJD"))).as_deref(), Some("QUJD"));
    }
}
