//! PURE: what one upstream attempt's result means for the key that made it. Reads Google's error
//! bodies (ErrorInfo, QuotaFailure, RetryInfo) so a key is cooled for exactly as long as its quota
//! demands, dead keys are set aside, and the client's own mistakes never count against a key.

use chrono::{DateTime, Duration, NaiveTime, TimeZone, Utc};
use chrono_tz::America::Los_Angeles;
use serde_json::Value;

/// Why a key cools for a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CoolReason {
    Rpm,
    Tpm,
    Rpd,
    Unknown,
}

impl CoolReason {
    pub fn as_str(self) -> &'static str {
        match self {
            CoolReason::Rpm => "rpm",
            CoolReason::Tpm => "tpm",
            CoolReason::Rpd => "rpd",
            CoolReason::Unknown => "unknown",
        }
    }
    pub fn parse(s: &str) -> CoolReason {
        match s {
            "rpm" => CoolReason::Rpm,
            "tpm" => CoolReason::Tpm,
            "rpd" => CoolReason::Rpd,
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
    /// 5xx, timeout, reset, empty answer: retry elsewhere; `invalid` after too many in a row.
    Transient(String),
}

impl Outcome {
    /// The word shown in an attempt trail, e.g. `429 rpm`.
    pub fn trail_word(&self) -> Option<&'static str> {
        match self {
            Outcome::RateLimited(c) => Some(c.reason.as_str()),
            Outcome::InvalidKey(_) => Some("invalid"),
            _ => None,
        }
    }
}

/// A zero quota means the model has no quota on this key's tier at all; retrying within the day is
/// pointless, so such a key rests for a day.
const ZERO_QUOTA_COOLDOWN: Duration = Duration::hours(24);

/// Classifies an upstream answer: any error status, or a generateContent 200 given its body (the
/// only 200 whose content is checked; other methods' 200s are successes without looking).
pub fn classify(status: u16, body: &[u8], now: DateTime<Utc>, default_cooldown_secs: u64) -> Outcome {
    let json: Option<Value> = serde_json::from_slice(body).ok();
    let error = json.as_ref().and_then(|j| j.get("error"));
    let message = error.and_then(|e| e.get("message")).and_then(Value::as_str).unwrap_or("");
    match status {
        200..=299 => match &json {
            Some(j) if is_empty_answer(j) => Outcome::Transient("empty answer (no candidate content)".into()),
            _ => Outcome::Success,
        },
        429 => Outcome::RateLimited(cooldown_from_429(error, now, default_cooldown_secs)),
        401 | 403 => Outcome::InvalidKey(short_reason(status, message)),
        400 if has_error_reason(error, "API_KEY_INVALID") || message.contains("API key not valid") => {
            Outcome::InvalidKey(short_reason(status, message))
        }
        408 | 500..=599 => Outcome::Transient(short_reason(status, message)),
        _ => Outcome::Client,
    }
}

/// A 200 whose candidates carry no content, with no `promptFeedback.blockReason` (a blocked prompt
/// is the client's content, passed on as it is).
pub fn is_empty_answer(json: &Value) -> bool {
    if json.pointer("/promptFeedback/blockReason").is_some() {
        return false;
    }
    let Some(candidates) = json.get("candidates").and_then(Value::as_array) else { return true };
    !candidates.iter().any(|c| {
        let has_parts = c.pointer("/content/parts").and_then(Value::as_array).is_some_and(|p| !p.is_empty());
        // A candidate stopped for safety or recitation is an answer, even without parts.
        let finished_with_reason = c
            .get("finishReason")
            .and_then(Value::as_str)
            .is_some_and(|r| r != "STOP" && r != "FINISH_REASON_UNSPECIFIED");
        has_parts || finished_with_reason
    })
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

fn cooldown_from_429(error: Option<&Value>, now: DateTime<Utc>, default_secs: u64) -> Cooldown {
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
    let quota_detail = reason.is_some() || retry_delay.is_some();
    let reason = reason.unwrap_or(CoolReason::Unknown);
    let until = if per_day {
        next_pacific_midnight(now)
    } else if zero_quota {
        now + ZERO_QUOTA_COOLDOWN
    } else if let Some(delay) = retry_delay {
        now + delay
    } else {
        now + Duration::seconds(default_secs as i64)
    };
    Cooldown { until, reason, quota_detail, zero_quota }
}

/// `"37s"`, `"0.5s"`, `"1.25s"` → a duration (Google's protobuf Duration JSON form).
pub fn parse_delay(s: &str) -> Option<Duration> {
    let secs: f64 = s.trim().strip_suffix('s')?.parse().ok()?;
    if !secs.is_finite() || secs < 0.0 {
        return None;
    }
    Some(Duration::milliseconds((secs * 1000.0).ceil() as i64))
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

    /// Every row of the errors table in gemini-api.md, plus the 200 cases.
    #[test]
    fn classification_table() {
        let now = at("2026-03-10T12:00:00Z");
        let bad_key = error_body(
            400,
            "INVALID_ARGUMENT",
            "API key not valid. Please pass a valid API key.",
            json!([{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID", "domain": "googleapis.com"}]),
        );
        let rows: Vec<(u16, Vec<u8>, &str)> = vec![
            (400, bad_key, "invalid"),
            (403, error_body(403, "PERMISSION_DENIED", "Permission denied: Consumer 'api_key:x' has been suspended.", json!([])), "invalid"),
            (401, error_body(401, "UNAUTHENTICATED", "no", json!([])), "invalid"),
            (400, error_body(400, "FAILED_PRECONDITION", "User location is not supported for the API use.", json!([])), "client"),
            (429, quota_429("GenerateRequestsPerMinutePerProjectPerModel-FreeTier", "10", Some("37s")), "cooling"),
            (400, error_body(400, "INVALID_ARGUMENT", "Invalid JSON payload received.", json!([])), "client"),
            (404, error_body(404, "NOT_FOUND", "models/nope is not found", json!([])), "client"),
            (503, error_body(503, "UNAVAILABLE", "The model is overloaded.", json!([])), "transient"),
            (500, error_body(500, "INTERNAL", "An internal error has occurred.", json!([])), "transient"),
            (504, error_body(504, "DEADLINE_EXCEEDED", "Deadline", json!([])), "transient"),
            (200, br#"{"candidates":[{"content":{"role":"model","parts":[{"text":"hi"}]},"finishReason":"STOP"}]}"#.to_vec(), "success"),
            (200, br#"{"candidates":[{"content":{"role":"model"},"finishReason":"STOP"}],"usageMetadata":{"promptTokenCount":3}}"#.to_vec(), "transient"),
            (200, br#"{"candidates":[],"usageMetadata":{"promptTokenCount":3}}"#.to_vec(), "transient"),
            (200, br#"{"promptFeedback":{"blockReason":"SAFETY"},"usageMetadata":{"promptTokenCount":3}}"#.to_vec(), "success"),
            (200, br#"{"candidates":[{"finishReason":"SAFETY"}]}"#.to_vec(), "success"),
        ];
        for (status, body, want) in rows {
            let got = match classify(status, &body, now, 60) {
                Outcome::Success => "success",
                Outcome::Client => "client",
                Outcome::RateLimited(_) => "cooling",
                Outcome::InvalidKey(_) => "invalid",
                Outcome::Transient(_) => "transient",
            };
            assert_eq!(got, want, "{status} {}", String::from_utf8_lossy(&body));
        }
    }

    #[test]
    fn cooldown_lengths() {
        let now = at("2026-03-10T12:00:00Z");
        let cool = |body: &[u8]| match classify(429, body, now, 60) {
            Outcome::RateLimited(c) => c,
            other => panic!("{other:?}"),
        };
        let c = cool(&quota_429("GenerateRequestsPerMinutePerProjectPerModel-FreeTier", "10", Some("37s")));
        assert_eq!((c.until, c.reason), (now + Duration::seconds(37), CoolReason::Rpm));
        let c = cool(&quota_429("GenerateContentInputTokensPerModelPerMinute-FreeTier", "250000", Some("1.5s")));
        assert_eq!((c.until, c.reason), (now + Duration::milliseconds(1500), CoolReason::Tpm));
        // Per day: Pacific midnight, whatever short delay comes with it. PDT is UTC-7 on March 11.
        let c = cool(&quota_429("GenerateRequestsPerDayPerProjectPerModel-FreeTier", "250", Some("20s")));
        assert_eq!((c.until, c.reason), (at("2026-03-11T07:00:00Z"), CoolReason::Rpd));
        let c = cool(&quota_429("GenerateRequestsPerMinutePerProjectPerModel-FreeTier", "0", Some("20s")));
        assert_eq!((c.until, c.zero_quota), (now + Duration::hours(24), true));
        let c = cool(br#"{"error":{"code":429,"message":"Resource exhausted","status":"RESOURCE_EXHAUSTED"}}"#);
        assert_eq!((c.until, c.reason, c.quota_detail), (now + Duration::seconds(60), CoolReason::Unknown, false));
        let c = cool(b"not json");
        assert_eq!(c.until, now + Duration::seconds(60));
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
    }
}
