//! Key affinity: a resource created through the pool (an uploaded file, for now) belongs to the key
//! that created it and to the client token that asked for it. The bindings live in SQLite and,
//! for the hot path, in memory here; a request naming resources goes out with their owner key.
//! Upload sessions (the resumable protocol's state between its start and its finalize) are held
//! here too, in memory only: an upload in progress does not survive a restart.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use parking_lot::RwLock;

use crate::error::ApiError;

/// Who asked: a SHA-256 of the client token, never the token itself.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Owner(pub String);

impl Owner {
    pub fn of_token(token: &str) -> Owner {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let digest = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
        let mut hex = String::with_capacity(64);
        for b in digest.as_ref() {
            hex.push(HEX[usize::from(b >> 4)] as char);
            hex.push(HEX[usize::from(b & 15)] as char);
        }
        Owner(hex)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    pub key_id: i64,
    pub owner: Owner,
    pub expires: Option<DateTime<Utc>>,
}

/// An upload between its start and its finalize: where Google expects the bytes, with which key.
#[derive(Debug, Clone)]
pub struct Upload {
    /// Path and query of Google's upload URL.
    pub upstream: String,
    pub key_id: i64,
    pub owner: Owner,
}

#[derive(Default)]
pub struct Affinity {
    bindings: RwLock<HashMap<String, Binding>>,
    uploads: RwLock<HashMap<String, Upload>>,
}

/// The name a reference means: `files/abc` from `files/abc`, a full Google URL
/// (`https://…/v1beta/files/abc`) or a download path; `None` when it names no file.
pub fn file_name(reference: &str) -> Option<String> {
    named(reference, "files/")
}

/// `{prefix}{id}` for the last `{prefix}` in a reference, its id cut at `?`, `#` or `:` and made
/// only of the characters Google's ids use.
fn named(reference: &str, prefix: &str) -> Option<String> {
    let at = reference.rfind(prefix)?;
    let id = reference[at + prefix.len()..].split(['?', '#', ':']).next()?;
    let ok = !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    ok.then(|| format!("{prefix}{id}"))
}

/// The files an operation's answer says it made: every `"uri"` naming a file (Veo's
/// `generatedSamples[].video.uri`).
pub fn files_made(body: &[u8]) -> Vec<String> {
    scan(body, &[(b"\"uri\"", file_name)])
}

/// The name of a batch or long-running operation as Google returns it (`batches/x`,
/// `operations/x`, `models/{m}/operations/x`), checked for the characters names carry.
pub fn operation_name(name: &str) -> Option<String> {
    let ok = name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_./".contains(&b)) && !name.contains("..");
    let shaped = name.strip_prefix("batches/").is_some_and(|id| !id.is_empty() && !id.contains('/'))
        || name.strip_prefix("operations/").is_some_and(|id| !id.is_empty() && !id.contains('/'))
        || name
            .strip_prefix("models/")
            .and_then(|r| r.split_once("/operations/"))
            .is_some_and(|(m, id)| !m.is_empty() && !m.contains('/') && !id.is_empty() && !id.contains('/'));
    (ok && shaped).then(|| name.to_string())
}

/// The name of interaction `id` (`interactions/{id}`), when the id is made of the characters
/// Google's ids use.
pub fn interaction_name(id: &str) -> Option<String> {
    named(&format!("interactions/{id}"), "interactions/").filter(|n| n.len() == "interactions/".len() + id.len())
}

/// A content `uri` that names a file of the Files API: `files/abc` or a URL whose path is a
/// Files API path (`…/v1beta/files/abc`). Other URIs (`gs://`, public images) name no resource.
fn api_file(reference: &str) -> Option<String> {
    let api = reference.starts_with("files/")
        || (reference.starts_with("http") && ["/v1beta/files/", "/v1/files/"].iter().any(|p| reference.contains(p)));
    if api { file_name(reference) } else { None }
}

/// Every resource an Interactions API request names: `previous_interaction_id`, the files in
/// its contents' `uri`s, a `cached_content`. Found by the same byte scan as `resources_in_body`.
pub fn resources_in_interaction(body: &[u8]) -> Vec<String> {
    scan(
        body,
        &[
            (b"\"previous_interaction_id\"", interaction_name),
            (b"\"uri\"", api_file),
            (b"\"cached_content\"", cache_name),
        ],
    )
}

/// The name a `cachedContent` value means (`cachedContents/abc`, also as a full URL).
pub fn cache_name(reference: &str) -> Option<String> {
    named(reference, "cachedContents/")
}

/// Every resource a body names: files in `fileUri` (or `file_uri`), cached contents in
/// `cachedContent` (or `cached_content`). Found by a byte scan (memchr's SIMD search), not a
/// parse: the body passes through untouched and may be large.
pub fn resources_in_body(body: &[u8]) -> Vec<String> {
    scan(
        body,
        &[
            (b"\"fileUri\"", file_name),
            (b"\"file_uri\"", file_name),
            // A batch's input file (`inputConfig.fileName`).
            (b"\"fileName\"", file_name),
            (b"\"file_name\"", file_name),
            (b"\"cachedContent\"", cache_name),
            (b"\"cached_content\"", cache_name),
        ],
    )
}

type Namer = fn(&str) -> Option<String>;

/// The names the string values of `fields` mean, each once. One pass over the body per distinct
/// 5-byte field prefix (`"file`, `"cach`), not one per field: bodies can be large.
fn scan(body: &[u8], fields: &[(&[u8], Namer)]) -> Vec<String> {
    let mut out = Vec::new();
    let mut prefixes: Vec<&[u8]> = Vec::new();
    for (f, _) in fields {
        let p = &f[..f.len().min(5)];
        if !prefixes.contains(&p) {
            prefixes.push(p);
        }
    }
    for prefix in prefixes {
        let finder = memchr::memmem::Finder::new(prefix);
        let mut from = 0;
        while let Some(at) = finder.find(&body[from..]) {
            let start = from + at;
            from = start + prefix.len();
            let Some(&(field, namer)) = fields.iter().find(|(f, _)| body[start..].starts_with(f)) else {
                continue;
            };
            let after = start + field.len();
            from = after;
            let rest = &body[after..];
            let Some(colon) = rest.iter().position(|b| !b.is_ascii_whitespace()) else { break };
            if rest[colon] != b':' {
                continue;
            }
            let rest = &rest[colon + 1..];
            let Some(quote) = rest.iter().position(|b| !b.is_ascii_whitespace()) else { break };
            if rest[quote] != b'"' {
                continue;
            }
            let value = &rest[quote + 1..];
            let end = value.iter().position(|b| *b == b'"' || *b == b'\\').unwrap_or(value.len());
            if let Some(name) = std::str::from_utf8(&value[..end]).ok().and_then(namer)
                && !out.contains(&name)
            {
                out.push(name);
            }
        }
    }
    out
}

impl Affinity {
    pub fn new(rows: Vec<(String, Binding)>) -> Self {
        Affinity { bindings: RwLock::new(rows.into_iter().collect()), uploads: RwLock::default() }
    }

    pub fn bind(&self, name: &str, binding: Binding) {
        self.bindings.write().insert(name.to_string(), binding);
    }

    pub fn unbind(&self, name: &str) {
        self.bindings.write().remove(name);
    }

    /// The one key every named resource belongs to, when `owner` owns them all; 404 for a
    /// resource unknown, expired or another token's; 400 when they belong to two keys.
    pub fn resolve(&self, names: &[String], owner: &Owner, now: DateTime<Utc>) -> Result<Option<i64>, ApiError> {
        let bindings = self.bindings.read();
        let mut key: Option<(i64, &str)> = None;
        for name in names {
            let b = bindings
                .get(name)
                .filter(|b| b.owner == *owner && b.expires.is_none_or(|e| e > now))
                .ok_or_else(|| ApiError::NotFound(format!("{name} is not found")))?;
            match key {
                Some((k, first)) if k != b.key_id => {
                    return Err(ApiError::BadRequest(format!(
                        "this request names {first} and {name}, which belong to different API keys of the pool; \
                         use resources of one key per request"
                    )));
                }
                _ => key = Some((b.key_id, name)),
            }
        }
        Ok(key.map(|(k, _)| k))
    }

    /// Forgets the bindings expired at `now` (the database's go with the log retention job).
    pub fn prune(&self, now: DateTime<Utc>) {
        self.bindings.write().retain(|_, b| b.expires.is_none_or(|e| e > now));
    }

    /// The live resources each key owns.
    pub fn counts(&self, now: DateTime<Utc>) -> HashMap<i64, u64> {
        let mut out = HashMap::new();
        for b in self.bindings.read().values().filter(|b| b.expires.is_none_or(|e| e > now)) {
            *out.entry(b.key_id).or_default() += 1;
        }
        out
    }

    /// The live resources of `owner` whose names start with `prefix`, with their keys.
    pub fn owned(&self, owner: &Owner, prefix: &str, now: DateTime<Utc>) -> Vec<(String, i64)> {
        let mut v: Vec<(String, i64)> = self
            .bindings
            .read()
            .iter()
            .filter(|(n, b)| n.starts_with(prefix) && b.owner == *owner && b.expires.is_none_or(|e| e > now))
            .map(|(n, b)| (n.clone(), b.key_id))
            .collect();
        v.sort();
        v
    }

    pub fn start_upload(&self, id: &str, upload: Upload) {
        self.uploads.write().insert(id.to_string(), upload);
    }

    /// The upload `id`: its URL is the credential, so whoever holds it continues the upload.
    pub fn upload(&self, id: &str) -> Option<Upload> {
        self.uploads.read().get(id).cloned()
    }

    pub fn end_upload(&self, id: &str) {
        self.uploads.write().remove(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding(key_id: i64, owner: &Owner) -> Binding {
        Binding { key_id, owner: owner.clone(), expires: None }
    }

    #[test]
    fn references_in_every_form_name_the_file() {
        assert_eq!(file_name("files/abc-1").as_deref(), Some("files/abc-1"));
        assert_eq!(
            file_name("https://generativelanguage.googleapis.com/v1beta/files/abc?alt=media").as_deref(),
            Some("files/abc")
        );
        assert_eq!(file_name("/download/v1beta/files/abc:download").as_deref(), Some("files/abc"));
        assert_eq!(file_name("gs://bucket/x.png"), None);
        assert_eq!(file_name("files/"), None);
        assert_eq!(file_name("files/../x"), None);
        let body =
            br#"{"contents":[{"parts":[{"fileData":{"mimeType":"image/png","fileUri" : "https://h/v1beta/files/f1"}},
            {"file_data":{"file_uri":"files/f2"}},{"text":"fileUri"},{"fileData":{"fileUri":"files/f1"}}]}]}"#;
        assert_eq!(resources_in_body(body), vec!["files/f1".to_string(), "files/f2".to_string()]);
        assert!(resources_in_body(br#"{"fileUri":"#).is_empty());
        assert!(resources_in_body(b"").is_empty());
        let body = br#"{"cachedContent": "cachedContents/c-1", "contents": [{"parts": [{"fileData": {"fileUri": "files/f9"}}]}]}"#;
        assert_eq!(resources_in_body(body), vec!["files/f9".to_string(), "cachedContents/c-1".to_string()]);
        assert_eq!(cache_name("cachedContents/"), None);
        let batch = br#"{"batch":{"inputConfig":{"fileName":"files/in-1"}}}"#;
        assert_eq!(resources_in_body(batch), vec!["files/in-1".to_string()]);
        for ok in ["batches/b1", "operations/o-1", "models/veo-3/operations/o1"] {
            assert_eq!(operation_name(ok).as_deref(), Some(ok));
        }
        let veo = br#"{"done":true,"response":{"generateVideoResponse":{"generatedSamples":[{"video":{"uri":"https://generativelanguage.googleapis.com/v1beta/files/v1:download?alt=media"}}]}}}"#;
        assert_eq!(files_made(veo), vec!["files/v1".to_string()]);
        let turn =
            br#"{"model":"gemini-2.5-flash","previous_interaction_id":"v1_abc-9","input":[{"type":"text","text":"uri"},
            {"type":"image","uri":"https://generativelanguage.googleapis.com/v1beta/files/img1"},
            {"type":"image","uri":"https://example.com/cat.png"},{"type":"document","uri":"gs://b/files/x"}]}"#;
        assert_eq!(resources_in_interaction(turn), vec!["interactions/v1_abc-9".to_string(), "files/img1".to_string()]);
        assert_eq!(interaction_name("a/b"), None);
        assert_eq!(interaction_name("x?y"), None);
        assert_eq!(interaction_name(""), None);
        for bad in ["batches/", "batches/a/b", "models//operations/x", "models/m/operations/../x", "files/x", "x"] {
            assert_eq!(operation_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn resolution_pins_to_the_owner_key_and_refuses_strangers_and_mixtures() {
        let (me, other) = (Owner::of_token("tok-a"), Owner::of_token("tok-b"));
        assert_ne!(me, other);
        assert!(!me.0.contains("tok-a"));
        // SHA-256("abc"), the FIPS 180-2 example.
        assert_eq!(Owner::of_token("abc").0, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        let now = Utc::now();
        let a = Affinity::new(vec![
            ("files/a".into(), binding(1, &me)),
            ("files/b".into(), binding(1, &me)),
            ("files/c".into(), binding(2, &me)),
            ("files/old".into(), Binding { expires: Some(now - chrono::Duration::seconds(1)), ..binding(1, &me) }),
        ]);
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(a.resolve(&[], &me, now).unwrap(), None);
        assert_eq!(a.resolve(&names(&["files/a", "files/b"]), &me, now).unwrap(), Some(1));
        assert_eq!(a.resolve(&names(&["files/a"]), &other, now).unwrap_err().status().as_u16(), 404);
        assert_eq!(a.resolve(&names(&["files/zz"]), &me, now).unwrap_err().status().as_u16(), 404);
        assert_eq!(a.resolve(&names(&["files/old"]), &me, now).unwrap_err().status().as_u16(), 404);
        let mixed = a.resolve(&names(&["files/a", "files/c"]), &me, now).unwrap_err();
        assert_eq!(mixed.status().as_u16(), 400);
        assert!(mixed.message().contains("files/a") && mixed.message().contains("files/c"));
        assert_eq!(a.counts(now), HashMap::from([(1, 2), (2, 1)]));
        assert_eq!(a.owned(&me, "files/", now).len(), 3);
        assert!(a.owned(&other, "files/", now).is_empty());
        a.unbind("files/a");
        assert_eq!(a.counts(now)[&1], 1);
        assert_eq!(a.bindings.read().len(), 3);
        a.prune(now);
        assert_eq!(a.bindings.read().len(), 2, "files/old expired");
    }
}
