//! Client authentication: the gateway token from `Authorization: Bearer`, `x-goog-api-key`,
//! `x-api-key` (Anthropic's clients) or `?key=`, compared in constant time against every
//! configured token.

use http::HeaderMap;
use subtle::ConstantTimeEq;

use crate::error::ApiError;
use crate::secret::Secret;

/// How the client presented its token; `GET /v1/models` answers in OpenAI's format for `Bearer`
/// and in Gemini's for the other two.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenSource {
    Bearer,
    GoogHeader,
    /// `x-api-key`, as Anthropic's SDKs and Claude Code send it.
    ApiKey,
    Query,
}

pub fn extract(headers: &HeaderMap, query: Option<&str>) -> Option<(String, TokenSource)> {
    if let Some(v) = headers.get(http::header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        let v = v.trim();
        if v.len() > 7 && v[..7].eq_ignore_ascii_case("bearer ") {
            return Some((v[7..].trim().to_string(), TokenSource::Bearer));
        }
    }
    if let Some(v) = headers.get("x-goog-api-key").and_then(|v| v.to_str().ok()) {
        return Some((v.trim().to_string(), TokenSource::GoogHeader));
    }
    if let Some(v) = headers.get("x-api-key").and_then(|v| v.to_str().ok()) {
        return Some((v.trim().to_string(), TokenSource::ApiKey));
    }
    query_param(query?, "key").map(|k| (k, TokenSource::Query))
}

pub fn check(presented: Option<&str>, tokens: &[Secret]) -> Result<(), ApiError> {
    let presented = presented.filter(|p| !p.is_empty()).ok_or(ApiError::MissingToken)?;
    // Compare against every token, without stopping early, so timing tells nothing.
    let mut ok = subtle::Choice::from(0);
    for t in tokens {
        ok |= presented.as_bytes().ct_eq(t.expose().as_bytes());
    }
    if bool::from(ok) { Ok(()) } else { Err(ApiError::InvalidToken) }
}

/// The decoded value of query parameter `name` (`+` and percent escapes as forms encode them).
pub fn query_param(query: &str, name: &str) -> Option<String> {
    form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

/// The query without `key=` (the client's token must never travel upstream). The other
/// parameters are kept byte for byte, as the client wrote them.
pub fn strip_key_param(query: Option<&str>) -> Option<String> {
    let kept: Vec<&str> = query?.split('&').filter(|p| !p.is_empty() && p.split('=').next() != Some("key")).collect();
    (!kept.is_empty()).then(|| kept.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_sources() {
        let mut h = HeaderMap::new();
        assert_eq!(extract(&h, Some("alt=sse&key=t%2B1")), Some(("t+1".into(), TokenSource::Query)));
        h.insert("x-api-key", "a".parse().unwrap());
        assert_eq!(extract(&h, None), Some(("a".into(), TokenSource::ApiKey)));
        h.insert("x-goog-api-key", "g".parse().unwrap());
        assert_eq!(extract(&h, None), Some(("g".into(), TokenSource::GoogHeader)));
        h.insert("authorization", "Bearer b".parse().unwrap());
        assert_eq!(extract(&h, None), Some(("b".into(), TokenSource::Bearer)));
    }

    #[test]
    fn checks_in_constant_time() {
        let tokens = vec![Secret::new("alpha"), Secret::new("beta")];
        assert!(check(Some("beta"), &tokens).is_ok());
        assert!(matches!(check(Some("gamma"), &tokens), Err(ApiError::InvalidToken)));
        assert!(matches!(check(None, &tokens), Err(ApiError::MissingToken)));
        assert!(matches!(check(Some(""), &tokens), Err(ApiError::MissingToken)));
    }

    #[test]
    fn key_param_is_stripped() {
        assert_eq!(strip_key_param(Some("alt=sse&key=abc")), Some("alt=sse".into()));
        assert_eq!(strip_key_param(Some("key=abc")), None);
        assert_eq!(strip_key_param(Some("pageSize=5&keyx=1")), Some("pageSize=5&keyx=1".into()));
    }
}
