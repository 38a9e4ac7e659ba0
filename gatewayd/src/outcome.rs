//! PURE: what one upstream attempt's result means, and who is to blame (the contract's "Who is to
//! blame" table). Reads Google's error bodies (ErrorInfo, QuotaFailure, RetryInfo) so a key is
//! cooled for exactly as long as its quota demands, only a rejection of the key itself sets a key
//! aside, and the client's own mistakes never count against a key. Whether a transient failure is
//! the key's or the model's depends on what the other keys see: `keypool` decides that.

use chrono::{DateTime, Duration, NaiveTime, TimeZone, Utc};
use chrono_tz::America::Los_Angeles;
use serde_json::Value;

/// Why a key cools for a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CoolReason {
    Rpm,
    Tpm,
    Rpd,
    /// A spending cap or depleted prepayment credits.
    Spend,
    Unknown,
    /// This key kept failing while other keys served the model.
    Errors,
}

impl CoolReason {
    pub fn as_str(self) -> &'static str {
        match self {
            CoolReason::Rpm => "rpm",
            CoolReason::Tpm => "tpm",
            CoolReason::Rpd => "rpd",
            CoolReason::Spend => "spend",
            CoolReason::Unknown => "unknown",
            CoolReason::Errors => "errors",
        }
    }
    pub fn parse(s: &str) -> CoolReason {
        match s {
            "rpm" => CoolReason::Rpm,
            "tpm" => CoolReason::Tpm,
            "rpd" => CoolReason::Rpd,
            "spend" => CoolReason::Spend,
            "errors" => CoolReason::Errors,
            _ => CoolReason::Unknown,
        }
    }
}

/// A 429's verdict: rest the key for this model until `until`.
#[derive(Debug, Clone, PartialEq)]
pub struct Cooldown {
    pub until: DateTime<Utc>,
    pub reason: CoolReason,
    /// The body named a quota (QuotaFailure or RetryInfo); a bare 429 did not.
    pub quota_detail: bool,
    /// `quotaValue` 0: this key's tier has no quota for the model at all.
    pub zero_quota: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Success,
    /// The client's own problem (malformed body, unknown model, blocked prompt): returned at once,
    /// never retried, never counted against the key.
    Client,
    RateLimited(Cooldown),
    /// Upstream rejected the key itself: set it aside at once.
    InvalidKey(String),
    /// 5xx, timeout, reset, an empty answer or one that is not the expected JSON: retried
    /// elsewhere, and charged to the key only while other keys serve the model.
    Transient(String),
    /// The gateway's own network failed (connect, DNS, TLS, descriptors): nobody's key.
    Network(String),
}

/// The five parties a failed attempt can be charged to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Party {
    Client,
    Key,
    Model,
    Network,
    Egress,
}

impl Party {
    pub fn as_str(self) -> &'static str {
        match self {
            Party::Client => "client",
            Party::Key => "key",
            Party::Model => "model",
            Party::Network => "network",
            Party::Egress => "egress",
        }
    }
}

impl Outcome {
    /// The word shown in an attempt trail, e.g. `429 rpm`.
    pub fn trail_word(&self) -> Option<&'static str> {
        match self {
            Outcome::RateLimited(c) => Some(c.reason.as_str()),
            Outcome::InvalidKey(_) => Some("invalid"),
            Outcome::Network(_) => Some("network"),
            _ => None,
        }
    }
}

/// A zero quota means the model has no quota on this key's tier at all; retrying within the day is
/// pointless, so such a key rests for a day (clamped, like every rest, to the next Pacific midnight).
const ZERO_QUOTA_COOLDOWN: Duration = Duration::hours(24);

/// How a 200 is checked before it counts as a success.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// A generateContent answer: JSON with candidate content (or a blocked prompt).
    Content,
    /// Any JSON document.
    Json,
    /// Not looked at (a stream, checked by its first bytes instead).
    Anything,
}

/// Classifies an upstream answer: any error status, or a 200 given what the route expects of it.
pub fn classify(status: u16, body: &[u8], now: DateTime<Utc>, default_cooldown_secs: u64, expect: Expect) -> Outcome {
    if (200..300).contains(&status) {
        return match expect {
            Expect::Anything => Outcome::Success,
            Expect::Json if serde_json::from_slice::<serde::de::IgnoredAny>(body).is_ok() => Outcome::Success,
            Expect::Json => Outcome::Transient("upstream answered 200 with a body that is not JSON".into()),
            Expect::Content => match serde_json::from_slice::<AnswerShape>(body) {
                Ok(a) if a.is_empty() => Outcome::Transient("empty answer (no candidate content)".into()),
                Ok(_) => Outcome::Success,
                Err(_) => Outcome::Transient("upstream answered 200 with a body that is not a Gemini answer".into()),
            },
        };
    }
    let json: Option<Value> = serde_json::from_slice(body).ok();
    let error = json.as_ref().and_then(|j| j.get("error"));
    let message = error.and_then(|e| e.get("message")).and_then(Value::as_str).unwrap_or("");
    match status {
        429 => Outcome::RateLimited(cooldown_from_429(error, message, now, default_cooldown_secs)),
        401 => Outcome::InvalidKey(short_reason(status, message)),
        403 if forbids_the_key(error, message) => Outcome::InvalidKey(short_reason(status, message)),
        400 if has_error_reason(error, "API_KEY_INVALID") || message.contains("API key not valid") => {
            Outcome::InvalidKey(short_reason(status, message))
        }
        408 | 500..=599 => Outcome::Transient(short_reason(status, message)),
        _ => Outcome::Client,
    }
}

/// A 403 about the key itself, its consumer, project or service (suspended, API not enabled,
/// billing), rather than about a resource (a file or cached content this key cannot read, which
/// is the client's business).
fn forbids_the_key(error: Option<&Value>, message: &str) -> bool {
    const KEY_REASONS: &[&str] = &[
        "API_KEY_INVALID",
        "API_KEY_SERVICE_BLOCKED",
        "API_KEY_HTTP_REFERRER_BLOCKED",
        "API_KEY_IP_ADDRESS_BLOCKED",
        "API_KEY_ANDROID_APP_BLOCKED",
        "API_KEY_IOS_APP_BLOCKED",
        "SERVICE_DISABLED",
        "CONSUMER_SUSPENDED",
        "BILLING_DISABLED",
        "ACCESS_TOKEN_TYPE_UNSUPPORTED",
    ];
    if details(error).any(|d| {
        detail_type(d).ends_with("google.rpc.ErrorInfo")
            && d.get("reason").and_then(Value::as_str).is_some_and(|r| KEY_REASONS.contains(&r))
    }) {
        return true;
    }
    let m = message.to_ascii_lowercase();
    let about_resource = ["file", "cachedcontent", "cached content", "tuned model", "corpus", "batch", "operation"]
        .iter()
        .any(|w| m.contains(w));
    let about_key = [
        "api key",
        "api_key",
        "consumer",
        "project",
        "suspended",
        "has not been used",
        "is disabled",
        "billing",
        "not enabled",
        "unregistered callers",
    ]
    .iter()
    .any(|w| m.contains(w));
    about_key && !about_resource
}

/// Just enough of a generateContent answer to judge it: serde skips the rest (texts, parts'
/// contents) without building any of it.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct AnswerShape<'a> {
    #[serde(default, borrow)]
    candidates: Option<Vec<CandidateShape<'a>>>,
    #[serde(default)]
    prompt_feedback: Option<FeedbackShape>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct CandidateShape<'a> {
    #[serde(default)]
    content: Option<ContentShape>,
    #[serde(default, borrow)]
    finish_reason: Option<crate::dialect::wire::Str<'a>>,
}

#[derive(serde::Deserialize)]
struct ContentShape {
    #[serde(default)]
    parts: Vec<serde::de::IgnoredAny>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct FeedbackShape {
    #[serde(default)]
    block_reason: Option<serde::de::IgnoredAny>,
}

impl AnswerShape<'_> {
    /// No candidate carries content, and no `promptFeedback.blockReason` (a blocked prompt is the
    /// client's content, passed on as it is).
    fn is_empty(&self) -> bool {
        if self.prompt_feedback.as_ref().is_some_and(|f| f.block_reason.is_some()) {
            return false;
        }
        let Some(candidates) = &self.candidates else { return true };
        !candidates.iter().any(|c| {
            let has_parts = c.content.as_ref().is_some_and(|c| !c.parts.is_empty());
            // A candidate stopped for safety or recitation is an answer, even without parts.
            let finished_with_reason =
                c.finish_reason.as_deref().is_some_and(|r| r != "STOP" && r != "FINISH_REASON_UNSPECIFIED");
            has_parts || finished_with_reason
        })
    }
}

fn short_reason(status: u16, message: &str) -> String {
    let message = shared::redact_keys_in(message);
    let mut m: String = message.chars().take(200).collect();
    if m.is_empty() {
        m = format!("HTTP {status}");
    } else {
        m = format!("{status} {m}");
    }
    m
}

fn details(error: Option<&Value>) -> impl Iterator<Item = &Value> {
    error.and_then(|e| e.get("details")).and_then(Value::as_array).into_iter().flatten()
}

fn detail_type(d: &Value) -> &str {
    d.get("@type").and_then(Value::as_str).unwrap_or("")
}

fn has_error_reason(error: Option<&Value>, reason: &str) -> bool {
    details(error).any(|d| {
        detail_type(d).ends_with("google.rpc.ErrorInfo") && d.get("reason").and_then(Value::as_str) == Some(reason)
    })
}

/// How long a spending-cap 429 rests the key, and a depleted-prepayment one.
const SPEND_CAP_COOLDOWN: Duration = Duration::minutes(10);
const PREPAY_COOLDOWN: Duration = Duration::hours(1);
/// The shortest rest any 429 gives.
const MIN_COOLDOWN: Duration = Duration::seconds(1);

fn cooldown_from_429(error: Option<&Value>, message: &str, now: DateTime<Utc>, default_secs: u64) -> Cooldown {
    let mut reason = None;
    let mut per_day = false;
    let mut zero_quota = false;
    for d in details(error).filter(|d| detail_type(d).ends_with("google.rpc.QuotaFailure")) {
        for v in d.get("violations").and_then(Value::as_array).into_iter().flatten() {
            let id = v.get("quotaId").and_then(Value::as_str).unwrap_or("");
            let metric = v.get("quotaMetric").and_then(Value::as_str).unwrap_or("");
            let this = if id.contains("PerDay") {
                per_day = true;
                CoolReason::Rpd
            } else if id.contains("Token") || metric.contains("token") {
                CoolReason::Tpm
            } else if id.contains("PerMinute") || metric.contains("requests") {
                CoolReason::Rpm
            } else {
                CoolReason::Unknown
            };
            // The longest-lasting reason wins: a day beats a minute.
            reason = Some(match (reason, this) {
                (Some(CoolReason::Rpd), _) | (_, CoolReason::Rpd) => CoolReason::Rpd,
                (Some(CoolReason::Tpm), _) | (_, CoolReason::Tpm) => CoolReason::Tpm,
                (Some(CoolReason::Rpm), _) | (_, CoolReason::Rpm) => CoolReason::Rpm,
                _ => CoolReason::Unknown,
            });
            let value = v.get("quotaValue");
            if value.and_then(Value::as_str) == Some("0") || value.and_then(Value::as_i64) == Some(0) {
                zero_quota = true;
            }
        }
    }
    let retry_delay = details(error)
        .filter(|d| detail_type(d).ends_with("google.rpc.RetryInfo"))
        .find_map(|d| d.get("retryDelay").and_then(Value::as_str).and_then(parse_delay));
    let lower = message.to_ascii_lowercase();
    let spend = if lower.contains("prepayment credits are depleted") {
        Some(PREPAY_COOLDOWN)
    } else if lower.contains("spending cap") || lower.contains("spend limit") {
        Some(SPEND_CAP_COOLDOWN)
    } else {
        None
    };
    let quota_detail = reason.is_some() || retry_delay.is_some() || spend.is_some();
    let midnight = next_pacific_midnight(now);
    // Every candidate rest, and the longest-lasting one wins.
    let mut rests: Vec<(DateTime<Utc>, CoolReason)> = Vec::new();
    if per_day {
        rests.push((midnight, CoolReason::Rpd));
    }
    if zero_quota {
        rests.push((now + ZERO_QUOTA_COOLDOWN, reason.unwrap_or(CoolReason::Unknown)));
    }
    if let Some(s) = spend {
        rests.push((now + s, CoolReason::Spend));
    }
    if let Some(delay) = retry_delay {
        rests.push((now + delay, reason.unwrap_or(CoolReason::Unknown)));
    }
    if rests.is_empty() {
        rests.push((
            now + Duration::seconds(default_secs.min(i32::MAX as u64) as i64),
            reason.unwrap_or(CoolReason::Unknown),
        ));
    }
    let (until, reason) = rests.into_iter().max_by_key(|(until, _)| *until).unwrap_or((now, CoolReason::Unknown));
    Cooldown { until: clamp_rest(until, now), reason, quota_detail, zero_quota }
}

/// Every rest a 429 gives, and every `Retry-After` sent, lies between 1 s and the next Pacific
/// midnight, when per-day quotas reset: no 429 is worth more (a zero-quota key tries again then).
pub fn clamp_rest(until: DateTime<Utc>, now: DateTime<Utc>) -> DateTime<Utc> {
    let latest = next_pacific_midnight(now).max(now + MIN_COOLDOWN);
    until.clamp(now + MIN_COOLDOWN, latest)
}

/// `"37s"`, `"0.5s"`, `"1.25s"` → a duration (Google's protobuf Duration JSON form).
pub fn parse_delay(s: &str) -> Option<Duration> {
    let secs: f64 = s.trim().strip_suffix('s')?.parse().ok()?;
    if !secs.is_finite() || secs < 0.0 {
        return None;
    }
    // A day and a half is beyond any rest we give (the clamp takes it to midnight).
    Some(Duration::milliseconds((secs.min(129_600.0) * 1000.0).ceil() as i64))
}

/// Per-day quotas reset at midnight America/Los_Angeles; daylight saving is the time zone
/// database's business, not ours.
pub fn next_pacific_midnight(now: DateTime<Utc>) -> DateTime<Utc> {
    let local = now.with_timezone(&Los_Angeles);
    let tomorrow = local.date_naive().succ_opt().expect("date in range");
    let midnight = tomorrow.and_time(NaiveTime::MIN);
    Los_Angeles
        .from_local_datetime(&midnight)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
        // Midnight never falls in a Pacific DST gap; an hour later is a safe bound if it ever did.
        .unwrap_or_else(|| now + Duration::hours(24))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn quota_429(quota_id: &str, value: &str, delay: Option<&str>) -> Vec<u8> {
        let mut details = vec![json!({
            "@type": "type.googleapis.com/google.rpc.QuotaFailure",
            "violations": [{"quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
                            "quotaId": quota_id, "quotaDimensions": {"model": "gemini-2.5-flash", "location": "global"},
                            "quotaValue": value}]
        })];
        if let Some(d) = delay {
            details.push(json!({"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": d}));
        }
        serde_json::to_vec(
            &json!({"error": {"code": 429, "message": "quota", "status": "RESOURCE_EXHAUSTED", "details": details}}),
        )
        .unwrap()
    }

    fn error_body(code: u16, status: &str, message: &str, details: Value) -> Vec<u8> {
        serde_json::to_vec(&json!({"error": {"code": code, "message": message, "status": status, "details": details}}))
            .unwrap()
    }

    fn kind(o: &Outcome) -> &'static str {
        match o {
            Outcome::Success => "success",
            Outcome::Client => "client",
            Outcome::RateLimited(_) => "cooling",
            Outcome::InvalidKey(_) => "invalid",
            Outcome::Transient(_) => "transient",
            Outcome::Network(_) => "network",
        }
    }

    fn error_info(reason: &str) -> Value {
        json!([{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": reason, "domain": "googleapis.com"}])
    }

    /// Every row of the contract's blame table and of gemini-api.md's errors table that a single
    /// answer decides (transient rows are split between key and model by the pool), plus the 200s.
    #[test]
    fn classification_table() {
        let now = at("2026-03-10T12:00:00Z");
        let bad_key = error_body(
            400,
            "INVALID_ARGUMENT",
            "API key not valid. Please pass a valid API key.",
            error_info("API_KEY_INVALID"),
        );
        let rows: Vec<(u16, Vec<u8>, Expect, &str)> = vec![
            // The key: auth rejections.
            (400, bad_key, Expect::Content, "invalid"),
            (401, error_body(401, "UNAUTHENTICATED", "no", json!([])), Expect::Content, "invalid"),
            (403, error_body(403, "PERMISSION_DENIED", "Permission denied: Consumer 'api_key:x' has been suspended.", json!([])), Expect::Content, "invalid"),
            (403, error_body(403, "PERMISSION_DENIED", "Generative Language API has not been used in project 1 before or it is disabled.", error_info("SERVICE_DISABLED")), Expect::Content, "invalid"),
            (403, error_body(403, "PERMISSION_DENIED", "Billing is not enabled for this project.", json!([])), Expect::Content, "invalid"),
            (403, error_body(403, "PERMISSION_DENIED", "Requests from this client are blocked.", error_info("API_KEY_SERVICE_BLOCKED")), Expect::Content, "invalid"),
            // The client: a 403 about a resource, and every other 4xx.
            (403, error_body(403, "PERMISSION_DENIED", "You do not have permission to access the File abc or it may not exist.", json!([])), Expect::Content, "client"),
            (403, error_body(403, "PERMISSION_DENIED", "CachedContent not found (or permission denied)", json!([])), Expect::Content, "client"),
            (400, error_body(400, "FAILED_PRECONDITION", "User location is not supported for the API use.", json!([])), Expect::Content, "client"),
            (400, error_body(400, "INVALID_ARGUMENT", "Invalid JSON payload received.", json!([])), Expect::Content, "client"),
            (404, error_body(404, "NOT_FOUND", "models/nope is not found", json!([])), Expect::Content, "client"),
            (413, b"too big".to_vec(), Expect::Content, "client"),
            // A 429: the key cools.
            (429, quota_429("GenerateRequestsPerMinutePerProjectPerModel-FreeTier", "10", Some("37s")), Expect::Content, "cooling"),
            // Transient: the key's or the model's, as the other keys tell.
            (503, error_body(503, "UNAVAILABLE", "The model is overloaded.", json!([])), Expect::Content, "transient"),
            (500, error_body(500, "INTERNAL", "An internal error has occurred.", json!([])), Expect::Content, "transient"),
            (504, error_body(504, "DEADLINE_EXCEEDED", "Deadline", json!([])), Expect::Content, "transient"),
            (502, b"<html>bad gateway</html>".to_vec(), Expect::Content, "transient"),
            (200, br#"{"candidates":[{"content":{"role":"model"},"finishReason":"STOP"}],"usageMetadata":{"promptTokenCount":3}}"#.to_vec(), Expect::Content, "transient"),
            (200, br#"{"candidates":[],"usageMetadata":{"promptTokenCount":3}}"#.to_vec(), Expect::Content, "transient"),
            (200, b"<html>captive portal</html>".to_vec(), Expect::Content, "transient"),
            (200, b"".to_vec(), Expect::Json, "transient"),
            (200, b"{\"truncated\": ".to_vec(), Expect::Json, "transient"),
            // Successes: content, a blocked prompt (the client's content, passed on), any JSON.
            (200, br#"{"candidates":[{"content":{"role":"model","parts":[{"text":"hi"}]},"finishReason":"STOP"}]}"#.to_vec(), Expect::Content, "success"),
            (200, br#"{"promptFeedback":{"blockReason":"SAFETY"},"usageMetadata":{"promptTokenCount":3}}"#.to_vec(), Expect::Content, "success"),
            (200, br#"{"candidates":[{"finishReason":"SAFETY"}]}"#.to_vec(), Expect::Content, "success"),
            (200, br#"{"totalTokens":7}"#.to_vec(), Expect::Json, "success"),
            (200, b"anything".to_vec(), Expect::Anything, "success"),
        ];
        for (status, body, expect, want) in rows {
            let got = kind(&classify(status, &body, now, 60, expect));
            assert_eq!(got, want, "{status} {}", String::from_utf8_lossy(&body));
        }
    }

    fn cool_at(now: DateTime<Utc>, body: &[u8]) -> Cooldown {
        match classify(429, body, now, 60, Expect::Content) {
            Outcome::RateLimited(c) => c,
            other => panic!("{other:?}"),
        }
    }

    fn spend_429(message: &str) -> Vec<u8> {
        error_body(429, "RESOURCE_EXHAUSTED", message, json!([]))
    }

    /// Every 429 shape of the contract's "How long a key cools after a 429".
    #[test]
    fn cooldown_lengths() {
        let now = at("2026-03-10T12:00:00Z");
        let midnight = at("2026-03-11T07:00:00Z"); // PDT is UTC-7 on March 11
        let cool = |body: &[u8]| cool_at(now, body);
        let c = cool(&quota_429("GenerateRequestsPerMinutePerProjectPerModel-FreeTier", "10", Some("37s")));
        assert_eq!((c.until, c.reason), (now + Duration::seconds(37), CoolReason::Rpm));
        let c = cool(&quota_429("GenerateContentInputTokensPerModelPerMinute-FreeTier", "250000", Some("1.5s")));
        assert_eq!((c.until, c.reason), (now + Duration::milliseconds(1500), CoolReason::Tpm));
        // Per day: Pacific midnight, whatever short delay comes with it.
        let c = cool(&quota_429("GenerateRequestsPerDayPerProjectPerModel-FreeTier", "250", Some("20s")));
        assert_eq!((c.until, c.reason), (midnight, CoolReason::Rpd));
        // Zero quota: a day, clamped to midnight like every rest.
        let c = cool(&quota_429("GenerateRequestsPerMinutePerProjectPerModel-FreeTier", "0", Some("20s")));
        assert_eq!((c.until, c.zero_quota), (midnight, true));
        // Bare: keys.cooldown_secs, and no quota detail (the egress-throttle rule looks at that).
        let c = cool(br#"{"error":{"code":429,"message":"Resource exhausted","status":"RESOURCE_EXHAUSTED"}}"#);
        assert_eq!((c.until, c.reason, c.quota_detail), (now + Duration::seconds(60), CoolReason::Unknown, false));
        assert_eq!(cool(b"not json").until, now + Duration::seconds(60));
        // Spending cap and depleted prepayment: reason spend, 10 minutes and an hour.
        let c = cool(&spend_429("Your project has exceeded its monthly spending cap. Raise the spend limit."));
        assert_eq!((c.until, c.reason, c.quota_detail), (now + Duration::minutes(10), CoolReason::Spend, true));
        let c = cool(&spend_429("Your prepayment credits are depleted. Please add credits."));
        assert_eq!((c.until, c.reason), (now + Duration::hours(1), CoolReason::Spend));
        // A huge delay is clamped to the next Pacific midnight, a tiny one to 1 s.
        let c = cool(&quota_429("GenerateRequestsPerMinutePerProjectPerModel-FreeTier", "10", Some("99999999999s")));
        assert_eq!(c.until, midnight);
        let c = cool(&quota_429("GenerateRequestsPerMinutePerProjectPerModel-FreeTier", "10", Some("0.001s")));
        assert_eq!(c.until, now + Duration::seconds(1));
        // Three violations at once: the longest-lasting wins.
        let three = serde_json::to_vec(
            &json!({"error": {"code": 429, "message": "quota", "status": "RESOURCE_EXHAUSTED", "details": [
            {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [
                {"quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier", "quotaValue": "10"},
                {"quotaId": "GenerateRequestsPerDayPerProjectPerModel-FreeTier", "quotaValue": "250"},
                {"quotaId": "GenerateContentInputTokensPerModelPerMinute-FreeTier", "quotaValue": "250000"}]},
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "12s"}]}}),
        )
        .unwrap();
        let c = cool(&three);
        assert_eq!((c.until, c.reason), (midnight, CoolReason::Rpd));
        // RetryInfo alone, and quotaDimensions that is not an object ("[MaxDepth]").
        let retry_only = serde_json::to_vec(&json!({"error": {"code": 429, "message": "x", "details": [
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "9s"}]}}))
        .unwrap();
        assert_eq!(cool(&retry_only).until, now + Duration::seconds(9));
        let max_depth = serde_json::to_vec(&json!({"error": {"code": 429, "message": "x", "details": [
            {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [
                {"quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier", "quotaDimensions": "[MaxDepth]", "quotaValue": "10"}]},
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "5s"}]}})).unwrap();
        let c = cool(&max_depth);
        assert_eq!((c.until, c.reason), (now + Duration::seconds(5), CoolReason::Rpm));
        // Just before midnight the clamp still leaves at least a second.
        let late = at("2026-03-11T06:59:59.500Z");
        let c = cool_at(late, &quota_429("GenerateRequestsPerMinutePerProjectPerModel-FreeTier", "10", Some("60s")));
        assert_eq!(c.until, at("2026-03-11T07:00:00Z").max(late + Duration::seconds(1)));
    }

    #[test]
    fn pacific_midnight_across_dst() {
        // 2026-03-08 is the spring-forward day: the day before is PST (UTC-8), after is PDT (UTC-7).
        assert_eq!(next_pacific_midnight(at("2026-03-07T20:00:00Z")), at("2026-03-08T08:00:00Z"));
        assert_eq!(next_pacific_midnight(at("2026-03-08T12:00:00Z")), at("2026-03-09T07:00:00Z"));
        // 2026-11-01 falls back: midnight Nov 1 is still PDT, midnight Nov 2 is PST.
        assert_eq!(next_pacific_midnight(at("2026-10-31T20:00:00Z")), at("2026-11-01T07:00:00Z"));
        assert_eq!(next_pacific_midnight(at("2026-11-01T12:00:00Z")), at("2026-11-02T08:00:00Z"));
        // Just after Pacific midnight, the next reset is a whole day away.
        assert_eq!(next_pacific_midnight(at("2026-06-01T07:00:01Z")), at("2026-06-02T07:00:00Z"));
    }

    #[test]
    fn delays_parse() {
        assert_eq!(parse_delay("37s"), Some(Duration::seconds(37)));
        assert_eq!(parse_delay("0.25s"), Some(Duration::milliseconds(250)));
        assert_eq!(parse_delay("x"), None);
        assert_eq!(parse_delay("-1s"), None);
        assert_eq!(parse_delay("1e300s"), Some(Duration::seconds(129_600)), "no overflow");
    }
}
