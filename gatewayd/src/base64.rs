//! Standard base64 (RFC 4648) encoding: proxy credentials and base64 embeddings. Too small a need
//! for a crate.

const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

pub fn encode(input: &[u8]) -> String {
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |acc, (i, &b)| acc | (b as u32) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ABC[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Whether `s` is plausible standard base64 (alphabet and padding), without decoding it.
pub fn looks_valid(s: &str) -> bool {
    let body = s.trim_end_matches('=');
    s.len() - body.len() <= 2 && body.bytes().all(|b| ABC.contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_rfc4648() {
        for (i, o) in [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("user:pass", "dXNlcjpwYXNz")] {
            assert_eq!(encode(i.as_bytes()), o);
            assert!(looks_valid(o));
        }
        assert!(!looks_valid("not base64!"));
    }
}
