//! The redaction rule for secrets (keys and tokens): first 4 characters, `…`, last 4.

/// `AIza…x9Zq`: the first 4 characters, `…`, the last 4. A secret of 8 characters or fewer would
/// be shown whole that way, so it is shown as `…` alone.
pub fn redact(secret: &str) -> String {
    let chars: Vec<char> = secret.chars().collect();
    if chars.len() <= 8 {
        return "…".to_string();
    }
    let head: String = chars[..4].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}…{tail}")
}

/// Redacts every Gemini-key-shaped string (`AIza` + 35 characters of `[0-9A-Za-z_-]`) in `text`,
/// so an upstream message or a logged body can never carry a key out.
pub fn redact_keys_in(text: &str) -> String {
    const KEY_LEN: usize = 39;
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let mut copied = 0;
    while let Some(pos) = text[i..].find("AIza") {
        let start = i + pos;
        let mut end = start + 4;
        while end < bytes.len() && is_key_byte(bytes[end]) {
            end += 1;
        }
        if end - start >= KEY_LEN {
            out.push_str(&text[copied..start]);
            out.push_str(&redact(&text[start..end]));
            copied = end;
        }
        i = end;
    }
    out.push_str(&text[copied..]);
    out
}

fn is_key_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_head_and_tail() {
        assert_eq!(redact("AIzaSyA0123456789abcdefghijklmnopqx9Zq"), "AIza…x9Zq");
        assert_eq!(redact("short"), "…");
        assert_eq!(redact("12345678"), "…");
        assert_eq!(redact("key-alpha-1"), "key-…ha-1");
    }

    #[test]
    fn finds_keys_in_text() {
        // Built at run time so no key-shaped literal sits in the source.
        let key = format!("AIza{}x9Zq", "0".repeat(31));
        assert_eq!(key.len(), 39);
        let text = format!("bad key {key}, and again:{key}.");
        assert_eq!(redact_keys_in(&text), "bad key AIza…x9Zq, and again:AIza…x9Zq.");
        assert_eq!(redact_keys_in("AIza too short"), "AIza too short");
        assert_eq!(redact_keys_in("ünïcode AIza"), "ünïcode AIza");
    }
}
