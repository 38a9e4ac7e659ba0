//! Issue 5: key health through the real daemon: quota-aware cooldowns, the wait queue, egress
//! throttling, persistence, and the scheduled verification and retention jobs.

use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{Method, StatusCode};
use serde_json::json;

use gatewayd::clock::Clock;
use gatewayd::keypool::KeyState;

use gatewayd_testkit::fake::{FakeGemini, Script};
use gatewayd_testkit::{GENERATE, Gateway, HELLO, key};

/// Sets a runtime setting through the admin socket, as `gbctl settings set` does.
async fn set_setting(gw: &Gateway, name: &str, literal: &str) {
    let body = Some(json!({"value": literal}).to_string());
    let (status, text) = gatewayd_testkit::admin(&gw.socket, Method::PUT, &format!("/v1/settings/{name}"), body).await;
    assert_eq!(status, StatusCode::OK, "{text}");
}

/// Polls (generously) until `check` holds.
async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    for _ in 0..300 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("never happened: {what}");
}

#[tokio::test]
async fn a_per_day_quota_keeps_the_key_out_until_pacific_midnight() {
    let clock = Arc::new(Clock::default());
    let per_day = Script::quota("GenerateRequestsPerDayPerProjectPerModel-FreeTier", Some("20s"));
    let fake = FakeGemini::new().key_seq(&key(1), vec![per_day]).key(&key(2), Script::Ok).start().await;
    let gw = Gateway::builder(&fake.base_url()).keys(&[key(1), key(2)]).clock(clock.clone()).start().await;
    assert_eq!(gw.post(GENERATE, HELLO).await.status, StatusCode::OK);
    let h = gw.health(&key(1));
    let cooldown = h.cooldowns()["gemini-2.5-flash"].clone();
    assert_eq!(cooldown.reason, gatewayd::outcome::CoolReason::Rpd);
    assert_eq!(cooldown.until, gatewayd::outcome::next_pacific_midnight(gw.state.now()), "not the 20 s retry delay");
    // One second before Pacific midnight it is still out...
    clock.advance(cooldown.until - gw.state.now() - chrono::Duration::seconds(1));
    for _ in 0..4 {
        assert_eq!(gw.post(GENERATE, HELLO).await.status, StatusCode::OK);
    }
    assert_eq!(fake.hits(&key(1)), 1);
    // ...and back right after it.
    clock.advance(chrono::Duration::seconds(2));
    for _ in 0..4 {
        assert_eq!(gw.post(GENERATE, HELLO).await.status, StatusCode::OK);
    }
    assert!(fake.hits(&key(1)) > 1);
    gw.stop().await;
}

#[tokio::test]
async fn all_keys_cooling_waits_for_the_first_to_reopen() {
    let quick = Script::quota("GenerateRequestsPerMinutePerProjectPerModel-FreeTier", Some("1s"));
    let fake = FakeGemini::new().key_seq(&key(1), vec![quick]).start().await;
    let gw = Gateway::builder(&fake.base_url()).keys(&[key(1)]).set("keys.wait_secs", "5").start().await;
    let started = Instant::now();
    let r = gw.post(GENERATE, HELLO).await;
    assert_eq!(r.status, StatusCode::OK, "held until the key reopened, then served");
    assert!(started.elapsed() >= Duration::from_millis(900), "{:?}", started.elapsed());
    assert_eq!(gw.logged_requests(1).await[0].record.trail(), "#1 429 rpm → #1 200");
    // Past the wait window: 429 at once, Retry-After from the earliest reopening.
    fake.set(&key(1), Script::quota("GenerateRequestsPerMinutePerProjectPerModel-FreeTier", Some("30s")));
    let r = gw.post(GENERATE, HELLO).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((29..=30).contains(&retry), "{retry}");
    assert!(r.json()["error"]["message"].as_str().unwrap().contains("all API keys are cooling"));
    gw.stop().await;
}

#[tokio::test]
async fn cooldowns_survive_a_restart_and_expired_ones_are_ignored() {
    let clock = Arc::new(Clock::default());
    let fake = FakeGemini::new()
        .key_seq(&key(1), vec![Script::quota("GenerateRequestsPerMinutePerProjectPerModel-FreeTier", Some("60s"))])
        .key(&key(2), Script::Ok)
        .start()
        .await;
    let gw = Gateway::builder(&fake.base_url()).keys(&[key(1), key(2)]).clock(clock.clone()).start().await;
    assert_eq!(gw.post(GENERATE, HELLO).await.status, StatusCode::OK);
    let cooled = gw.health(&key(1));
    let dir = gw.stop().await;
    let gw = Gateway::builder(&fake.base_url()).keys(&[key(1), key(2)]).clock(clock.clone()).dir(dir).start().await;
    assert_eq!(gw.health(&key(1)), cooled, "end time and reason survive");
    for _ in 0..3 {
        gw.post(GENERATE, HELLO).await;
    }
    assert_eq!(fake.hits(&key(1)), 1, "still cooling after the restart");
    let dir = gw.stop().await;
    clock.advance(chrono::Duration::seconds(61));
    let gw = Gateway::builder(&fake.base_url()).keys(&[key(1), key(2)]).clock(clock.clone()).dir(dir).start().await;
    for _ in 0..3 {
        assert_eq!(gw.post(GENERATE, HELLO).await.status, StatusCode::OK);
    }
    assert!(fake.hits(&key(1)) > 1, "an expired cooldown is simply ignored");
    gw.stop().await;
}

#[tokio::test]
async fn egress_throttling_backs_off_the_gateway_not_each_key() {
    let bare = Script::Json(
        429,
        json!({"error": {"code": 429, "message": "Resource has been exhausted (e.g. check quota).", "status": "RESOURCE_EXHAUSTED"}}),
    );
    let clock = Arc::new(Clock::default());
    let keys: Vec<String> = (1..=4).map(key).collect();
    let mut fake = FakeGemini::new();
    for k in &keys {
        fake = fake.key(k, bare.clone());
    }
    let fake = fake.start().await;
    let gw = Gateway::builder(&fake.base_url()).keys(&keys).clock(clock.clone()).start().await;
    let r = gw.post(GENERATE, HELLO).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=10).contains(&retry), "one short backoff: {retry}");
    assert!(r.json()["error"]["message"].as_str().unwrap().contains("throttling this gateway"));
    assert_eq!(fake.requests().len(), 3, "three of four keys answering 429 at once is enough");
    for k in &keys {
        assert!(gw.health(k).cooldowns().is_empty(), "no per-key cooldown for {k}");
    }
    let rows = gw.logged_requests(1).await;
    assert!(rows[0].record.trail().ends_with("429 throttled"), "{}", rows[0].record.trail());
    // During the backoff nothing goes upstream; after it, everything flows again.
    assert_eq!(gw.post(GENERATE, HELLO).await.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(fake.requests().len(), 3);
    for k in &keys {
        fake.set(k, Script::Ok);
    }
    clock.advance(chrono::Duration::seconds(11));
    assert_eq!(gw.post(GENERATE, HELLO).await.status, StatusCode::OK);
    gw.stop().await;
}

#[tokio::test]
async fn a_bare_429_on_one_key_still_cools_that_key() {
    let bare = Script::Json(
        429,
        json!({"error": {"code": 429, "message": "Resource exhausted", "status": "RESOURCE_EXHAUSTED"}}),
    );
    let fake =
        FakeGemini::new().key_seq(&key(1), vec![bare]).key(&key(2), Script::Ok).key(&key(3), Script::Ok).start().await;
    let gw = Gateway::builder(&fake.base_url())
        .keys(&[key(1), key(2), key(3)])
        .set("keys.cooldown_secs", "45")
        .start()
        .await;
    assert_eq!(gw.post(GENERATE, HELLO).await.status, StatusCode::OK);
    let h = gw.health(&key(1));
    let c = &h.cooldowns()["gemini-2.5-flash"];
    assert_eq!(c.reason, gatewayd::outcome::CoolReason::Unknown);
    let left = (c.until - gw.state.now()).num_seconds();
    assert!((43..=45).contains(&left), "keys.cooldown_secs when upstream names no delay: {left}");
    gw.stop().await;
}

#[tokio::test]
async fn the_verify_job_restores_a_fixed_key_and_reschedules_without_restart() {
    let fake = FakeGemini::new().key(&key(1), Script::InvalidKey).key(&key(2), Script::Ok).start().await;
    let gw =
        Gateway::builder(&fake.base_url()).keys(&[key(1), key(2)]).set("keys.verify_schedule", "\"\"").start().await;
    assert_eq!(gw.post(GENERATE, HELLO).await.status, StatusCode::OK);
    assert_eq!(gw.health(&key(1)).state(), KeyState::Invalid);
    fake.set(&key(1), Script::Ok);
    // Every second, set at runtime: the job picks the new schedule up at once.
    set_setting(&gw, "keys.verify_schedule", "\"* * * * * *\"").await;
    eventually("the verify job restores the key", || gw.health(&key(1)).state() == KeyState::Active).await;
    let h = gw.health(&key(1));
    assert_eq!(h.failures(), 0);
    let probe =
        fake.requests().into_iter().find(|r| r.method == "GET" && r.key.as_deref() == Some(key(1).as_str())).unwrap();
    assert_eq!(probe.path, "/v1beta/models/gemini-2.5-flash-lite", "the free model probe");
    // With verify_generate, the probe is a 1-token generateContent.
    gw.invalidate(1);
    set_setting(&gw, "keys.verify_generate", "true").await;
    eventually("a generate probe", || {
        fake.requests().iter().any(|r| r.path == "/v1beta/models/gemini-2.5-flash-lite:generateContent")
    })
    .await;
    let probe = fake.requests().into_iter().find(|r| r.path.ends_with("flash-lite:generateContent")).unwrap();
    let body: serde_json::Value = serde_json::from_slice(&probe.body).unwrap();
    assert_eq!(body["generationConfig"]["maxOutputTokens"], 1);
    gw.stop().await;
}

#[tokio::test]
async fn verification_covers_invalid_and_cooled_down_keys_only() {
    let clock = Arc::new(Clock::default());
    let fake =
        FakeGemini::new().key(&key(1), Script::Ok).key(&key(2), Script::Ok).key(&key(3), Script::Ok).start().await;
    let gw = Gateway::builder(&fake.base_url()).keys(&[key(1), key(2), key(3)]).clock(clock.clone()).start().await;
    let now = gw.state.now();
    gw.cool(1, "m", now + chrono::Duration::seconds(5));
    gw.cool(2, "m", now + chrono::Duration::seconds(600));
    gw.invalidate(3);
    assert_eq!(gatewayd::jobs::reverify(&gw.state).await, (1, 1), "only the invalid key is due now");
    clock.advance(chrono::Duration::seconds(6));
    assert_eq!(gatewayd::jobs::reverify(&gw.state).await, (1, 1), "then the key whose cooldown ended");
    assert!(gw.health(&key(1)).cooldowns().is_empty());
    assert!(!gw.health(&key(2)).cooldowns().is_empty(), "a key still cooling is left alone");
    gw.stop().await;
}

#[tokio::test]
async fn the_retention_job_deletes_only_old_rows() {
    let fake = FakeGemini::new().start().await;
    let gw = Gateway::builder(&fake.base_url())
        .set("logs.request_retention_days", "30")
        .set("logs.error_retention_days", "7")
        .set("logs.cleanup_schedule", "\"\"")
        .start()
        .await;
    let now = gw.state.now();
    let request = |days: i64| gatewayd::record::RequestRecord {
        model: Some("m".into()),
        ..gatewayd::record::RequestRecord::bare(now - chrono::Duration::days(days), "generateContent")
    };
    let error = |days: i64| gatewayd::record::ErrorRecord {
        ts: now - chrono::Duration::days(days),
        route: "generateContent".into(),
        model: None,
        key_id: None,
        status: Some(503),
        error: "x".into(),
        body: None,
        request_body: None,
    };
    // 2,500 old request rows: more than one batch.
    let mut requests: Vec<_> = (0..2500).map(|_| request(31)).collect();
    requests.push(request(29));
    gw.state.store.insert_logs(&requests, &[error(8), error(6)]).unwrap();
    set_setting(&gw, "logs.cleanup_schedule", "\"* * * * * *\"").await;
    let store = gw.state.store.clone();
    let all = gatewayd::store::LogFilter { limit: 100_000, ..Default::default() };
    eventually("old rows deleted", || {
        store.recent_requests(&all).unwrap().len() == 1 && store.recent_errors(&all).unwrap().len() == 1
    })
    .await;
    assert_eq!(store.recent_requests(&all).unwrap()[0].record.ts, now - chrono::Duration::days(29));
    assert_eq!(store.recent_errors(&all).unwrap()[0].record.ts, now - chrono::Duration::days(6));
    gw.stop().await;
}
