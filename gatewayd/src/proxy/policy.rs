//! PURE: the attempt policy. Every decision the attempt loop makes (try again, on which terms,
//! wait for a cooldown, or give up with which error) is taken here from what the loop observed;
//! the loop only performs it. The clock is a parameter, so the rules are unit-tested without I/O.

use chrono::{DateTime, Utc};
use http::StatusCode;

use crate::error::ApiError;
use crate::keypool::NoKey;
use crate::outcome::Outcome;

/// What the loop does next, before an attempt.
#[derive(Debug)]
pub enum Next {
    /// Pick a key and send.
    Attempt,
    /// Sleep until then, and ask again.
    Wait(DateTime<Utc>),
    /// Answer the client with this error.
    Stop(ApiError),
}

/// Why the gateway holds requests for a model before sending any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backoff {
    /// Google throttles our egress IP (most keys answered bare 429s at once): 429.
    Egress(DateTime<Utc>),
    /// No key is serving the model (it fails on all of them): 503. Only a request that has not
    /// sent anything yet waits for it; one already retrying goes on to its other keys.
    Model(DateTime<Utc>),
}

/// What the loop does with an attempt's answer.
#[derive(Debug, PartialEq, Eq)]
pub enum After {
    /// Hand the answer to the client.
    Deliver,
    /// The client's own problem: relay the upstream error at once, never retried.
    Refuse,
    /// Try again (on another key, if the budget allows: `Policy::next` decides).
    Retry,
}

/// The budget and memory of one client request's attempts.
#[derive(Debug)]
pub struct Policy {
    max_attempts: usize,
    /// A request may wait for a cooldown to end up to then (`keys.wait_secs`).
    wait_until: DateTime<Utc>,
    attempts: usize,
    /// Keys this request may not use again, and those of them only rate-limited: once a wait for a
    /// cooldown is over, those are worth another try.
    tried: Vec<i64>,
    rate_limited: Vec<i64>,
    last_failure: Option<ApiError>,
    /// The last failure was the gateway's own network: no key is to blame, so when every key was
    /// tried the client gets that 502 itself, not a 503 about keys.
    last_was_network: bool,
}

impl Policy {
    /// `retries` further attempts after the first (`keys.max_retries`); none when the body can be
    /// sent only once or the request is pinned to one key.
    pub fn new(retries: u32, wait_until: DateTime<Utc>, single_attempt: bool) -> Self {
        let max_attempts = if single_attempt { 1 } else { retries as usize + 1 };
        Policy {
            max_attempts,
            wait_until,
            attempts: 0,
            tried: Vec::new(),
            rate_limited: Vec::new(),
            last_failure: None,
            last_was_network: false,
        }
    }

    /// Keys already tried by this request, which `pick` must skip.
    pub fn tried(&self) -> &[i64] {
        &self.tried
    }

    /// Before an attempt: is there budget left, and is the gateway backing off this model?
    pub fn next(&mut self, model: &str, now: DateTime<Utc>, backoff: Option<Backoff>) -> Next {
        if self.attempts >= self.max_attempts {
            return Next::Stop(
                self.last_failure
                    .take()
                    .unwrap_or_else(|| ApiError::BadGateway("no upstream attempt succeeded".into())),
            );
        }
        match backoff {
            Some(Backoff::Model(_)) if self.attempts > 0 => Next::Attempt,
            Some(Backoff::Egress(until) | Backoff::Model(until)) if until <= self.wait_until => Next::Wait(until),
            Some(Backoff::Egress(until)) => Next::Stop(throttled_error(model, until, now)),
            Some(Backoff::Model(until)) => Next::Stop(model_backoff_error(model, until, now)),
            None => Next::Attempt,
        }
    }

    /// No key could be picked: wait until the first cooldown ends (`Ok`) when that is soon
    /// enough, otherwise give up with the reason (`Err`).
    pub fn no_key(&mut self, no_key: NoKey, model: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, ApiError> {
        match no_key {
            NoKey::AllCooling { reopens } if reopens <= self.wait_until => {
                let rate_limited = std::mem::take(&mut self.rate_limited);
                self.tried.retain(|id| !rate_limited.contains(id));
                Ok(reopens)
            }
            NoKey::AllTried { .. } if self.last_was_network && self.last_failure.is_some() => {
                Err(self.last_failure.take().unwrap_or_else(|| ApiError::BadGateway(String::new())))
            }
            other => Err(no_key_error(other, model, now, self.last_failure.take())),
        }
    }

    /// An attempt is about to go out on `key`.
    pub fn sending(&mut self, key: i64) {
        self.attempts += 1;
        self.tried.push(key);
    }

    /// After an attempt on `key`: deliver, refuse, or retry; `failure` is what the client would
    /// read if this attempt turns out to be the last.
    pub fn after(&mut self, key: i64, outcome: &Outcome, failure: impl FnOnce() -> ApiError) -> After {
        match outcome {
            Outcome::Success => After::Deliver,
            Outcome::Client => After::Refuse,
            other => {
                if matches!(other, Outcome::RateLimited(_)) {
                    self.rate_limited.push(key);
                }
                self.last_was_network = matches!(other, Outcome::Network(_));
                self.last_failure = Some(failure());
                After::Retry
            }
        }
    }
}

fn retry_secs(until: DateTime<Utc>, now: DateTime<Utc>) -> u64 {
    ((until - now).num_milliseconds().max(0) as u64).div_ceil(1000).max(1)
}

fn throttled_error(model: &str, until: DateTime<Utc>, now: DateTime<Utc>) -> ApiError {
    let secs = retry_secs(until, now);
    ApiError::NoKey {
        status: StatusCode::TOO_MANY_REQUESTS,
        message: format!(
            "upstream is throttling this gateway for model {model} (most keys answered 429 at once); retry in {secs} s"
        ),
        retry_after_secs: Some(secs),
    }
}

fn model_backoff_error(model: &str, until: DateTime<Utc>, now: DateTime<Utc>) -> ApiError {
    let secs = retry_secs(until, now);
    ApiError::NoKey {
        status: StatusCode::SERVICE_UNAVAILABLE,
        message: format!(
            "model {model} is failing on every key (Google reports it unavailable or overloaded); retry in {secs} s"
        ),
        retry_after_secs: Some(secs),
    }
}

/// "Errors keep the upstream status unless every key was tried": every usable key cooling is a 429
/// with `Retry-After`; every usable key tried is a 503 naming the last failure.
fn no_key_error(no_key: NoKey, model: &str, now: DateTime<Utc>, last: Option<ApiError>) -> ApiError {
    match no_key {
        NoKey::AllCooling { reopens } => ApiError::NoKey {
            status: StatusCode::TOO_MANY_REQUESTS,
            message: no_key.message(model),
            // Clamped like every rest (a cooldown stored by an older version may run longer).
            retry_after_secs: Some(retry_secs(crate::outcome::clamp_rest(reopens, now), now)),
        },
        NoKey::AllTried { .. } => {
            let last =
                last.map(|e| format!("; last failure: {} {}", e.status().as_u16(), e.message())).unwrap_or_default();
            ApiError::NoKey {
                status: StatusCode::SERVICE_UNAVAILABLE,
                message: format!("{}{last}", no_key.message(model)),
                retry_after_secs: None,
            }
        }
        // The key a resource belongs to left rotation between the dialect's check and the pick:
        // the same 409 the dialect gives, never another key.
        NoKey::Pinned { .. } => ApiError::Bound(no_key.message(model)),
        other => ApiError::NoKey {
            status: StatusCode::SERVICE_UNAVAILABLE,
            message: other.message(model),
            retry_after_secs: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pinned_key_out_of_rotation_is_a_409_not_a_503() {
        let e = no_key_error(NoKey::Pinned { id: 3, state: "disabled" }, "m", Utc::now(), None);
        assert_eq!(e.status(), StatusCode::CONFLICT);
        assert!(e.message().contains("#3") && e.message().contains("disabled"), "{}", e.message());
    }
    use crate::outcome::{CoolReason, Cooldown};
    use chrono::Duration;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z").unwrap().with_timezone(&Utc)
    }

    fn rate_limited() -> Outcome {
        Outcome::RateLimited(Cooldown {
            until: now() + Duration::seconds(5),
            reason: CoolReason::Rpm,
            quota_detail: true,
            zero_quota: false,
        })
    }

    fn upstream(status: u16) -> ApiError {
        ApiError::Upstream { status: StatusCode::from_u16(status).unwrap(), body: Default::default() }
    }

    #[test]
    fn retries_stop_at_the_budget_with_the_last_upstream_status() {
        let mut p = Policy::new(2, now(), false);
        for key in 1..=3 {
            assert!(matches!(p.next("m", now(), None), Next::Attempt));
            p.sending(key);
            assert_eq!(p.after(key, &Outcome::Transient("503".into()), || upstream(503)), After::Retry);
        }
        assert_eq!(p.tried(), &[1, 2, 3]);
        match p.next("m", now(), None) {
            Next::Stop(e) => assert_eq!(e.status(), StatusCode::SERVICE_UNAVAILABLE),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn success_delivers_and_client_errors_are_refused_at_once() {
        let mut p = Policy::new(3, now(), false);
        p.sending(1);
        assert_eq!(p.after(1, &Outcome::Success, || unreachable!()), After::Deliver);
        assert_eq!(p.after(1, &Outcome::Client, || unreachable!()), After::Refuse);
    }

    #[test]
    fn a_single_attempt_request_is_never_retried() {
        let mut p = Policy::new(5, now(), true);
        p.sending(1);
        p.after(1, &Outcome::Transient("reset".into()), || upstream(502));
        assert!(matches!(p.next("m", now(), None), Next::Stop(e) if e.status() == StatusCode::BAD_GATEWAY));
    }

    #[test]
    fn cooling_keys_are_waited_for_within_wait_secs_then_429_with_retry_after() {
        let reopens = now() + Duration::seconds(5);
        let mut waits = Policy::new(3, now() + Duration::seconds(10), false);
        waits.sending(1);
        waits.after(1, &rate_limited(), || upstream(429));
        waits.sending(2);
        waits.after(2, &Outcome::Transient("503".into()), || upstream(503));
        assert!(matches!(waits.no_key(NoKey::AllCooling { reopens }, "m", now()), Ok(t) if t == reopens));
        assert_eq!(waits.tried(), &[2], "the rate-limited key may be tried again after the wait");
        let mut refuses = Policy::new(3, now(), false);
        match refuses.no_key(NoKey::AllCooling { reopens }, "m", now()) {
            Err(ApiError::NoKey { status, retry_after_secs, .. }) => {
                assert_eq!((status, retry_after_secs), (StatusCode::TOO_MANY_REQUESTS, Some(5)));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn retry_after_is_clamped_to_the_next_pacific_midnight() {
        let far = now() + Duration::days(400);
        let midnight = crate::outcome::next_pacific_midnight(now());
        match Policy::new(3, now(), false).no_key(NoKey::AllCooling { reopens: far }, "m", now()) {
            Err(ApiError::NoKey { retry_after_secs: Some(secs), .. }) => {
                assert_eq!(secs as i64, (midnight - now()).num_seconds());
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn every_key_tried_is_503_naming_the_last_failure() {
        let mut p = Policy::new(9, now(), false);
        p.sending(1);
        p.after(1, &Outcome::Transient("x".into()), || ApiError::BadGateway("connection refused".into()));
        match p.no_key(NoKey::AllTried { tried: 1 }, "m", now()) {
            Err(e) => {
                assert_eq!(e.status(), StatusCode::SERVICE_UNAVAILABLE);
                assert!(e.message().contains("last failure: 502"), "{}", e.message());
                assert!(e.message().contains("connection refused"), "{}", e.message());
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_model_backoff_holds_new_requests_then_503s_and_lets_retries_go_on() {
        let until = now() + Duration::seconds(2);
        let mut waits = Policy::new(3, now() + Duration::seconds(5), false);
        assert!(matches!(waits.next("m", now(), Some(Backoff::Model(until))), Next::Wait(t) if t == until));
        let mut refuses = Policy::new(3, now(), false);
        match refuses.next("m", now(), Some(Backoff::Model(until))) {
            Next::Stop(ApiError::NoKey { status, retry_after_secs, .. }) => {
                assert_eq!((status, retry_after_secs), (StatusCode::SERVICE_UNAVAILABLE, Some(2)));
            }
            other => panic!("{other:?}"),
        }
        let mut retrying = Policy::new(3, now(), false);
        retrying.sending(1);
        retrying.after(1, &Outcome::Transient("503".into()), || upstream(503));
        assert!(matches!(retrying.next("m", now(), Some(Backoff::Model(until))), Next::Attempt));
    }

    #[test]
    fn a_network_failure_on_every_key_is_the_502_itself() {
        let mut p = Policy::new(3, now(), false);
        for key in [1, 2] {
            p.sending(key);
            p.after(key, &Outcome::Network("refused".into()), || {
                ApiError::BadGateway("cannot connect upstream".into())
            });
        }
        match p.no_key(NoKey::AllTried { tried: 2 }, "m", now()) {
            Err(e) => {
                assert_eq!((e.status(), e.message().contains("cannot connect")), (StatusCode::BAD_GATEWAY, true))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_egress_backoff_is_waited_out_or_refused_with_429() {
        let until = now() + Duration::seconds(3);
        let mut waits = Policy::new(3, now() + Duration::seconds(3), false);
        assert!(matches!(waits.next("m", now(), Some(Backoff::Egress(until))), Next::Wait(t) if t == until));
        let mut refuses = Policy::new(3, now(), false);
        match refuses.next("m", now(), Some(Backoff::Egress(until))) {
            Next::Stop(ApiError::NoKey { status, retry_after_secs, message }) => {
                assert_eq!((status, retry_after_secs), (StatusCode::TOO_MANY_REQUESTS, Some(3)));
                assert!(message.contains("throttling"));
            }
            other => panic!("{other:?}"),
        }
    }
}
