//! The `Secret` newtype: a client token or a Gemini key whose Debug, Display and Serialize show
//! only its redacted form, so no log line or JSON output can carry it by accident.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A secret string (client token, Gemini key) whose Debug, Display and Serialize never show it.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&shared::redact(&self.0))
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&shared::redact(&self.0))
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&shared::redact(&self.0))
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Secret)
    }
}

/// Serializes a URL with the password of its userinfo redacted (`http://user:pass…word@host`).
pub fn serialize_url<S: Serializer>(url: &str, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&redact_url(url))
}

/// A URL with the password of its userinfo redacted; anything else unchanged.
/// Serializes proxy URLs with each password redacted.
pub fn serialize_urls<S: Serializer>(urls: &[String], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(urls.iter().map(|u| redact_url(u)))
}

pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_string() };
    let Some((userinfo, host)) = rest.rsplit_once('@') else { return url.to_string() };
    match userinfo.split_once(':') {
        Some((user, password)) => format!("{scheme}://{user}:{}@{host}", shared::redact(password)),
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_passwords_are_redacted() {
        assert_eq!(
            redact_url("http://alice:s3cret-password@proxy:3128"),
            format!("http://alice:{}@proxy:3128", shared::redact("s3cret-password"))
        );
        assert!(!redact_url("socks5://u:hunter2@h:1080").contains("hunter2"));
        assert_eq!(redact_url("http://proxy:3128"), "http://proxy:3128");
        assert_eq!(redact_url(""), "");
        assert_eq!(
            format!("{:?}", Secret::new("AIzaSyA-very-secret-key-0001")),
            shared::redact("AIzaSyA-very-secret-key-0001")
        );
    }
}
