//! Issue 2: the Gemini-native proxy, its key pool and logs, through the real daemon.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, StatusCode};
use http_body_util::BodyExt;
use serde_json::json;
use tokio::sync::Notify;

use gatewayd_testkit::fake::{FakeGemini, Script, final_chunk, generate_answer, text_chunk};
use gatewayd_testkit::{GENERATE, Gateway, HELLO, STREAM_SSE, TOKEN, key};

#[tokio::test]
async fn health_needs_no_token() {
    let fake = FakeGemini::new().start().await;
    let gw = Gateway::builder(&fake.base_url()).start().await;
    let r = gw.request(Method::GET, "/health", &[], Bytes::new()).await;
    assert_eq!((r.status, r.json()), (StatusCode::OK, json!({"status": "ok"})));
    gw.stop().await;
}

#[tokio::test]
async fn missing_or_unknown_token_is_401_in_googles_shape() {
    let fake = FakeGemini::new().key(&key(1), Script::Ok).start().await;
    let gw = Gateway::builder(&fake.base_url()).keys(&[key(1)]).start().await;
    for headers in [vec![], vec![("x-goog-api-key", "wrong")], vec![("authorization", "Bearer wrong")]] {
        let r = gw.request(Method::POST, GENERATE, &headers, HELLO).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        let v = r.json();
        assert_eq!((v["error"]["code"].as_u64(), v["error"]["status"].as_str()), (Some(401), Some("UNAUTHENTICATED")));
        assert!(v["error"]["message"].as_str().unwrap().contains("token"));
    }
    let r = gw.request(Method::POST, &format!("{GENERATE}?key=wrong"), &[], HELLO).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(fake.requests().is_empty(), "nothing reaches upstream without a valid token");
    // All three token forms are accepted.
    for (path, headers) in [
        (GENERATE.to_string(), vec![("x-goog-api-key", TOKEN)]),
        (GENERATE.to_string(), vec![("authorization", "Bearer test-token-0123456789")]),
        (format!("{GENERATE}?key={TOKEN}"), vec![]),
    ] {
        assert_eq!(gw.request(Method::POST, &path, &headers, HELLO).await.status, StatusCode::OK);
    }
    gw.stop().await;
}

#[tokio::test]
async fn body_passes_byte_for_byte_and_token_never_travels() {
    let fake = FakeGemini::new().key(&key(1), Script::Ok).start().await;
    let gw = Gateway::builder(&fake.base_url()).keys(&[key(1)]).start().await;
    // Unknown fields, odd spacing and key order must survive untouched.
    let body = "{ \"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"hi\",\"thoughtSignature\":\"c2ln\"}]}],\n  \"toolConfig\":{\"functionCallingConfig\":{\"mode\":\"ANY\"}}, \"labels\":{\"team\":\"abc\"}, \"futureField\":[1,2.50,null]}";
    let r = gw
        .request(
            Method::POST,
            &format!("{GENERATE}?key={TOKEN}&foo=bar"),
            &[("content-type", "application/json"), ("cookie", "session=1")],
            body,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json(), generate_answer());
    let seen = fake.requests();
    assert_eq!(seen.len(), 1);
    let req = &seen[0];
    assert_eq!(req.body, Bytes::from(body), "body byte-identical");
    assert_eq!(req.path, "/v1beta/models/gemini-2.5-flash:generateContent");
    assert_eq!(req.query.as_deref(), Some("foo=bar"), "the key query parameter is removed");
    assert_eq!(req.key.as_deref(), Some(key(1).as_str()), "the pooled key goes as x-goog-api-key");
    assert!(req.headers.get("authorization").is_none());
    assert!(req.headers.get("cookie").is_none());
    for (_, v) in req.headers.iter() {
        assert!(!v.to_str().unwrap_or("").contains(TOKEN), "the gateway token never travels upstream");
    }
    gw.stop().await;
}

#[tokio::test]
async fn round_robin_spreads_evenly() {
    let keys = [key(1), key(2), key(3)];
    let fake =
        FakeGemini::new().key(&keys[0], Script::Ok).key(&keys[1], Script::Ok).key(&keys[2], Script::Ok).start().await;
    let gw = Gateway::builder(&fake.base_url()).keys(&keys).start().await;
    for _ in 0..30 {
        assert_eq!(gw.post(GENERATE, HELLO).await.status, StatusCode::OK);
    }
    for k in &keys {
        assert_eq!(fake.hits(k), 10, "each key serves a third");
    }
    gw.stop().await;
}

#[tokio::test]
async fn failing_keys_are_skipped_and_the_client_gets_200() {
    let keys = [key(1), key(2), key(3)];
    let fake = FakeGemini::new()
        .key(&keys[0], Script::quota("GenerateRequestsPerMinutePerProjectPerModel-FreeTier", Some("30s")))
        .key(&keys[1], Script::InvalidKey)
        .key(&keys[2], Script::Ok)
        .start()
        .await;
    let gw = Gateway::builder(&fake.base_url()).keys(&keys).start().await;
    for _ in 0..6 {
        assert_eq!(gw.post(GENERATE, HELLO).await.status, StatusCode::OK);
    }
    // Each failing key was tried once, then set aside (cooling for this model / invalid).
    assert_eq!((fake.hits(&keys[0]), fake.hits(&keys[1]), fake.hits(&keys[2])), (1, 1, 6));
    assert_eq!(gw.health(&keys[1]).state(), gatewayd::keypool::KeyState::Invalid);
    assert!(gw.health(&keys[0]).cooling_until("gemini-2.5-flash", gw.state.now()).is_some());
    let rows = gw.logged_requests(6).await;
    let trails: Vec<String> = rows.iter().map(|r| r.record.trail()).collect();
    assert!(trails.iter().any(|t| t.contains("429 rpm → ")), "{trails:?}");
    assert!(trails.iter().any(|t| t.contains("400 invalid → ")), "{trails:?}");
    // The error log holds the failed attempts, keys redacted.
    let errors = gw.logged_errors(2).await;
    assert!(
        errors
            .iter()
            .any(|e| e.record.status == Some(429) && e.record.body.as_deref().unwrap_or("").contains("QuotaFailure"))
    );
    for e in &errors {
        let text = format!("{:?}", e.record);
        assert!(!keys.iter().any(|k| text.contains(k.as_str())), "no key in the error log: {text}");
    }
    gw.stop().await;
}

#[tokio::test]
async fn client_errors_are_returned_at_once_with_their_status() {
    let keys = [key(1), key(2)];
    let not_found = json!({"error": {"code": 404, "message": "models/nope is not found for API version v1beta", "status": "NOT_FOUND"}});
    let bad = json!({"error": {"code": 400, "message": "Invalid JSON payload received. Unknown name \"x\"", "status": "INVALID_ARGUMENT"}});
    let fake = FakeGemini::new()
        .key(&keys[0], Script::Json(404, not_found.clone()))
        .key(&keys[1], Script::Json(404, not_found.clone()))
        .start()
        .await;
    let gw = Gateway::builder(&fake.base_url()).keys(&keys).start().await;
    let r = gw.post("/v1beta/models/nope:generateContent", HELLO).await;
    assert_eq!((r.status, r.json()), (StatusCode::NOT_FOUND, not_found));
    assert_eq!(fake.requests().len(), 1, "a client error is never retried");
    fake.set(&keys[0], Script::Json(400, bad.clone()));
    fake.set(&keys[1], Script::Json(400, bad.clone()));
    let r = gw.post(GENERATE, "{\"x\":1}").await;
    assert_eq!((r.status, r.json()), (StatusCode::BAD_REQUEST, bad));
    assert_eq!(fake.requests().len(), 2);
    for k in &keys {
        assert_eq!(gw.health(k), gatewayd::keypool::Health::default(), "client errors never count against a key");
    }
    gw.stop().await;
}

#[tokio::test]
async fn upstream_429_keeps_its_status_when_retries_run_out() {
    let keys = [key(1), key(2), key(3)];
    let quota = Script::quota("GenerateRequestsPerMinutePerProjectPerModel-FreeTier", Some("20s"));
    let fake = FakeGemini::new()
        .key(&keys[0], quota.clone())
        .key(&keys[1], quota.clone())
        .key(&keys[2], Script::Ok)
        .start()
        .await;
    let gw = Gateway::builder(&fake.base_url()).keys(&keys).set("keys.max_retries", "0").start().await;
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(gw.post(GENERATE, HELLO).await.status);
    }
    statuses.sort();
    assert_eq!(statuses, vec![StatusCode::OK, StatusCode::TOO_MANY_REQUESTS, StatusCode::TOO_MANY_REQUESTS]);
    gw.stop().await;
}

#[tokio::test]
async fn every_key_cooling_answers_429_with_retry_after() {
    let fake = FakeGemini::new()
        .key(&key(1), Script::quota("GenerateRequestsPerMinutePerProjectPerModel-FreeTier", Some("42s")))
        .start()
        .await;
    let gw = Gateway::builder(&fake.base_url()).keys(&[key(1)]).start().await;
    let r = gw.post(GENERATE, HELLO).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((40..=42).contains(&retry), "{retry}");
    assert!(r.json()["error"]["message"].as_str().unwrap().contains("cooling"));
    // Still usable for another model.
    fake.set(&key(1), Script::Ok);
    assert_eq!(gw.post("/v1beta/models/gemini-2.5-pro:generateContent", HELLO).await.status, StatusCode::OK);
    gw.stop().await;
}

#[tokio::test]
async fn no_keys_is_503_naming_the_reason() {
    let fake = FakeGemini::new().start().await;
    let gw = Gateway::builder(&fake.base_url()).start().await;
    let r = gw.post(GENERATE, HELLO).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(r.json()["error"]["message"].as_str().unwrap().contains("no API keys"));
    gw.stop().await;
}

/// Dropped connections and empty answers are transient failures too: retried on the next key,
/// and charged to a key only while another key serves the model.
#[tokio::test]
async fn resets_and_empty_answers_are_transient_failures() {
    let fake =
        FakeGemini::new().key(&key(3), Script::Drop).key(&key(4), Script::Empty).key(&key(5), Script::Ok).start().await;
    let gw = Gateway::builder(&fake.base_url()).keys(&[key(3), key(4), key(5)]).start().await;
    assert_eq!(gw.post(GENERATE, HELLO).await.status, StatusCode::OK);
    assert_eq!(gw.health(&key(3)).failures(), 0, "no key had served the model yet: nobody's key pays");
    assert_eq!(gw.health(&key(4)).failures(), 0);
    let rows = gw.logged_requests(1).await;
    assert_eq!(rows[0].record.trail(), "#1 reset → #2 200 empty → #3 200");
    // Now key 3 served the model: the next failures are the failing keys' own.
    assert_eq!(gw.post(GENERATE, HELLO).await.status, StatusCode::OK);
    assert_eq!(gw.health(&key(3)).failures() + gw.health(&key(4)).failures(), 2);
    gw.stop().await;
}

#[tokio::test]
async fn every_key_failing_is_503_with_the_last_failure() {
    let fake = FakeGemini::new().key(&key(1), Script::Status(500)).key(&key(2), Script::Status(500)).start().await;
    let gw = Gateway::builder(&fake.base_url()).keys(&[key(1), key(2)]).set("keys.max_retries", "5").start().await;
    let r = gw.post(GENERATE, HELLO).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    let msg = r.json()["error"]["message"].as_str().unwrap().to_string();
    assert!(msg.contains("every usable API key was tried") && msg.contains("500"), "{msg}");
    assert_eq!(fake.requests().len(), 2, "each key once");
    gw.stop().await;
}

#[tokio::test]
async fn timeouts_move_to_the_next_key() {
    let slow = Script::Delay(Duration::from_secs(30), Box::new(Script::Ok));
    let fake = FakeGemini::new().key(&key(1), slow).key(&key(2), Script::Ok).start().await;
    let gw = Gateway::builder(&fake.base_url()).keys(&[key(1), key(2)]).set("upstream.timeout_secs", "1").start().await;
    for _ in 0..2 {
        assert_eq!(gw.post(GENERATE, HELLO).await.status, StatusCode::OK);
    }
    let rows = gw.logged_requests(2).await;
    assert!(rows.iter().any(|r| r.record.trail().contains(" timeout → ")));
    gw.stop().await;
}

#[tokio::test]
async fn oversized_bodies_get_413() {
    let fake = FakeGemini::new().key(&key(1), Script::Ok).start().await;
    let gw = Gateway::builder(&fake.base_url()).keys(&[key(1)]).set("server.max_body_bytes", "2048").start().await;
    let r = gw.post(GENERATE, vec![b'x'; 4096]).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    let v = r.json();
    assert_eq!(v["error"]["code"], 413);
    assert!(v["error"]["message"].as_str().unwrap().contains("max_body_bytes"));
    assert!(fake.requests().is_empty());
    gw.stop().await;
}

#[tokio::test]
async fn unknown_routes_hidden_models_and_wrong_methods() {
    let fake = FakeGemini::new().key(&key(1), Script::Ok).start().await;
    let gw =
        Gateway::builder(&fake.base_url()).keys(&[key(1)]).set("models.hidden", "[\"gemini-2.5-pro\"]").start().await;
    let r = gw.post("/v1beta/nothing", HELLO).await;
    assert_eq!((r.status, r.json()["error"]["status"].as_str()), (StatusCode::NOT_FOUND, Some("NOT_FOUND")));
    let r = gw.post("/v1beta/models/gemini-2.5-pro:generateContent", HELLO).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(gw.get("/v1beta/models/gemini-2.5-pro").await.status, StatusCode::NOT_FOUND);
    let list = gw.get("/v1beta/models").await.json();
    let names: Vec<&str> = list["models"].as_array().unwrap().iter().map(|m| m["name"].as_str().unwrap()).collect();
    assert!(names.contains(&"models/gemini-2.5-flash") && !names.contains(&"models/gemini-2.5-pro"), "{names:?}");
    assert_eq!(gw.get(GENERATE).await.status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(fake.requests().iter().all(|r| !r.path.contains("gemini-2.5-pro")));
    gw.stop().await;
}

#[tokio::test]
async fn aliases_and_api_versions() {
    let fake = FakeGemini::new().key(&key(1), Script::Ok).start().await;
    let gw = Gateway::builder(&fake.base_url()).keys(&[key(1)]).start().await;
    for (path, upstream) in [
        ("/gemini/v1beta/models/gemini-2.5-flash:generateContent", "/v1beta/models/gemini-2.5-flash:generateContent"),
        ("/v1/models/gemini-2.5-flash:generateContent", "/v1/models/gemini-2.5-flash:generateContent"),
        ("/gemini/v1/models/gemini-2.5-flash:countTokens", "/v1/models/gemini-2.5-flash:countTokens"),
        ("/v1beta/models/text-embedding-004:embedContent", "/v1beta/models/text-embedding-004:embedContent"),
        (
            "/v1beta/models/text-embedding-004:batchEmbedContents",
            "/v1beta/models/text-embedding-004:batchEmbedContents",
        ),
    ] {
        fake.clear();
        let r = gw.post(path, HELLO).await;
        assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.text());
        assert_eq!(fake.requests()[0].path, upstream);
    }
    // GET /v1/models answers in Gemini's format when the token came as x-goog-api-key or ?key=.
    for r in [
        gw.get("/v1/models").await,
        gw.request(Method::GET, &format!("/v1/models?key={TOKEN}"), &[], Bytes::new()).await,
    ] {
        assert_eq!(r.status, StatusCode::OK);
        assert!(r.json()["models"].is_array(), "{}", r.text());
    }
    assert_eq!(gw.get("/v1/models/gemini-2.5-flash").await.json()["name"], "models/gemini-2.5-flash");
    let list = gw.get("/gemini/v1beta/models").await.json();
    let names: Vec<&str> = list["models"].as_array().unwrap().iter().map(|m| m["name"].as_str().unwrap()).collect();
    assert_eq!(names.len(), 6, "{names:?}");
    assert!(names.contains(&"models/gemini-2.5-flash-search") && names.contains(&"models/gemini-2.5-pro-search"));
    gw.stop().await;
}

#[tokio::test]
async fn streams_relay_sse_and_record_usage() {
    let fake = FakeGemini::new().key(&key(1), Script::Ok).start().await;
    let gw = Gateway::builder(&fake.base_url()).keys(&[key(1)]).start().await;
    let r = gw.post(STREAM_SSE, HELLO).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.headers["content-type"], "text/event-stream");
    let text = r.text();
    assert_eq!(text.matches("data: ").count(), 3);
    assert!(text.contains("\r\n\r\n"), "upstream framing is untouched");
    // JSON-array form without alt=sse.
    let r = gw.post("/v1beta/models/gemini-2.5-flash:streamGenerateContent", HELLO).await;
    let arr: serde_json::Value = r.json();
    assert_eq!(arr.as_array().unwrap().len(), 3);
    let rows = gw.logged_requests(2).await;
    for row in &rows {
        assert!(row.record.stream);
        assert_eq!((row.record.prompt_tokens, row.record.completion_tokens), (Some(7), Some(3)), "{:?}", row.record);
    }
    gw.stop().await;
}

#[tokio::test]
async fn first_event_arrives_while_upstream_is_still_sending() {
    let gate = Arc::new(Notify::new());
    let script =
        Script::Gated { first: text_chunk("first"), gate: gate.clone(), rest: vec![final_chunk("last", 3, 2)] };
    let fake = FakeGemini::new().key(&key(1), script).start().await;
    let gw = Gateway::builder(&fake.base_url()).keys(&[key(1)]).start().await;
    let res = gw.send(Method::POST, STREAM_SSE, &[("x-goog-api-key", TOKEN)], HELLO).await;
    let mut body = res.into_body();
    // The upstream holds the rest until we open the gate: the first event must arrive before.
    let first = tokio::time::timeout(Duration::from_secs(10), body.frame())
        .await
        .expect("first event before upstream finishes");
    let first = first.unwrap().unwrap().into_data().unwrap();
    assert!(String::from_utf8_lossy(&first).contains("first"));
    gate.notify_one();
    let rest = tokio::time::timeout(Duration::from_secs(10), body.collect()).await.unwrap().unwrap().to_bytes();
    assert!(String::from_utf8_lossy(&rest).contains("last"));
    gw.stop().await;
}

#[tokio::test]
async fn stream_memory_does_not_grow_with_stream_length() {
    // A 128 MiB stream that the client stops reading after the first event: if the gateway held
    // the stream, upstream could push all of it; relayed frame by frame, backpressure stops the
    // upstream after a few socket buffers' worth.
    let sent = Arc::new(AtomicU64::new(0));
    let fake = FakeGemini::new()
        .key(&key(1), Script::Firehose { size: 64 * 1024, count: 2048, sent: sent.clone() })
        .start()
        .await;
    let gw = Gateway::builder(&fake.base_url()).keys(&[key(1)]).set("upstream.timeout_secs", "600").start().await;
    let res = gw.send(Method::POST, STREAM_SSE, &[("x-goog-api-key", TOKEN)], HELLO).await;
    let mut body = res.into_body();
    let _first = body.frame().await.unwrap().unwrap();
    // Wait until the upstream has stalled (no progress for a while), then check how far it got.
    let mut last = 0;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = sent.load(Ordering::Relaxed);
        if now == last && now > 0 {
            break;
        }
        last = now;
    }
    let stalled_at = sent.load(Ordering::Relaxed);
    println!("upstream stalled after {stalled_at} bytes");
    assert!(stalled_at < 32 << 20, "upstream pushed {stalled_at} bytes into a stream nobody read");
    // Reading on drains the whole stream: 128 MiB passed through bounded memory.
    let mut total = 0u64;
    while let Some(frame) = body.frame().await {
        total += frame.unwrap().into_data().map(|d| d.len() as u64).unwrap_or(0);
    }
    assert!(total >= 128 << 20, "{total}");
    gw.stop().await;
}

#[tokio::test]
async fn restart_keeps_keys_and_their_state() {
    let fake = FakeGemini::new()
        .key(&key(1), Script::InvalidKey)
        .key(&key(2), Script::quota("GenerateRequestsPerMinutePerProjectPerModel-FreeTier", Some("600s")))
        .key(&key(3), Script::Ok)
        .start()
        .await;
    let keys = [key(1), key(2), key(3)];
    let gw = Gateway::builder(&fake.base_url()).keys(&keys).start().await;
    for _ in 0..3 {
        assert_eq!(gw.post(GENERATE, HELLO).await.status, StatusCode::OK);
    }
    // Removed keys stay removed even though they remain in keys.api_keys.
    gw.state.store.remove_keys(&[3]).unwrap();
    let before: Vec<_> = [&keys[0], &keys[1]].iter().map(|k| gw.health(k)).collect();
    let dir = gw.stop().await;
    let gw = Gateway::builder(&fake.base_url()).keys(&keys).dir(dir).start().await;
    let after: Vec<_> = [&keys[0], &keys[1]].iter().map(|k| gw.health(k)).collect();
    assert_eq!(before, after);
    assert_eq!(after[0].state(), gatewayd::keypool::KeyState::Invalid);
    assert!(after[1].cooling_until("gemini-2.5-flash", gw.state.now()).is_some());
    assert_eq!(gw.state.pool.snapshot().len(), 2, "a removed key is not seeded again");
    gw.stop().await;
}

#[tokio::test]
async fn forbidden_keys_become_invalid_with_the_reason_kept() {
    let fake = FakeGemini::new().key(&key(1), Script::Forbidden).key(&key(2), Script::Ok).start().await;
    let gw = Gateway::builder(&fake.base_url()).keys(&[key(1), key(2)]).start().await;
    assert_eq!(gw.post(GENERATE, HELLO).await.status, StatusCode::OK);
    let h = gw.health(&key(1));
    assert_eq!(h.state(), gatewayd::keypool::KeyState::Invalid);
    assert!(h.last_error().unwrap().contains("403"));
    gw.stop().await;
}

/// A success between failures resets the count: a key that fails now and then is never cooled.
#[tokio::test]
async fn a_success_resets_the_failure_count() {
    let s503 = || Script::Status(503);
    let seq = vec![s503(), s503(), Script::Ok, s503(), s503(), Script::Ok, s503(), s503()];
    let fake = FakeGemini::new().key_seq(&key(1), seq).key(&key(2), Script::Ok).start().await;
    let gw = Gateway::builder(&fake.base_url()).keys(&[key(1), key(2)]).start().await;
    for _ in 0..16 {
        assert_eq!(gw.post(GENERATE, HELLO).await.status, StatusCode::OK);
    }
    let h = gw.health(&key(1));
    assert_eq!(h.state(), gatewayd::keypool::KeyState::Active);
    assert!(h.cooldowns().is_empty(), "never 3 in a row: {h:?}");
    assert!(fake.hits(&key(1)) >= 8, "key 1 kept being used: {}", fake.hits(&key(1)));
    gw.stop().await;
}

#[tokio::test]
async fn a_cooled_key_returns_after_its_retry_delay() {
    let clock = Arc::new(gatewayd::clock::Clock::default());
    let quota = Script::quota("GenerateRequestsPerMinutePerProjectPerModel-FreeTier", Some("2s"));
    let fake = FakeGemini::new().key_seq(&key(1), vec![quota]).key(&key(2), Script::Ok).start().await;
    let gw = Gateway::builder(&fake.base_url()).keys(&[key(1), key(2)]).clock(clock.clone()).start().await;
    for _ in 0..4 {
        assert_eq!(gw.post(GENERATE, HELLO).await.status, StatusCode::OK);
    }
    assert_eq!(fake.hits(&key(1)), 1, "skipped for this model while cooling");
    assert_eq!(gw.post("/v1beta/models/gemini-2.5-pro:generateContent", HELLO).await.status, StatusCode::OK);
    assert_eq!(gw.post("/v1beta/models/gemini-2.5-pro:generateContent", HELLO).await.status, StatusCode::OK);
    assert_eq!(fake.hits(&key(1)), 2, "still used for another model");
    clock.advance(chrono::Duration::seconds(2));
    for _ in 0..4 {
        assert_eq!(gw.post(GENERATE, HELLO).await.status, StatusCode::OK);
    }
    assert_eq!(fake.hits(&key(1)), 4, "back in rotation after the delay");
    gw.stop().await;
}

#[tokio::test]
async fn operator_generation_options_apply_on_native_routes() {
    let fake = FakeGemini::new().key(&key(1), Script::Ok).start().await;
    let gw = Gateway::builder(&fake.base_url())
        .keys(&[key(1)])
        .set("models.safety_settings", "\"BLOCK_NONE\"")
        .start()
        .await;
    let body = json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}],
                      "safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_LOW_AND_ABOVE"}]});
    assert_eq!(gw.post(GENERATE, body.to_string()).await.status, StatusCode::OK);
    let sent: serde_json::Value = serde_json::from_slice(&fake.requests()[0].body).unwrap();
    let settings = sent["safetySettings"].as_array().unwrap();
    assert_eq!(settings.len(), 5);
    assert_eq!(settings[0]["threshold"], "BLOCK_LOW_AND_ABOVE", "the client's own setting wins");
    assert!(settings[1..].iter().all(|s| s["threshold"] == "BLOCK_NONE"));
    // NAME-search: the base model, with the googleSearch tool added.
    fake.clear();
    let r = gw.post("/v1beta/models/gemini-2.5-flash-search:streamGenerateContent?alt=sse", HELLO).await;
    assert_eq!(r.status, StatusCode::OK);
    let seen = &fake.requests()[0];
    assert_eq!(seen.path, "/v1beta/models/gemini-2.5-flash:streamGenerateContent");
    let sent: serde_json::Value = serde_json::from_slice(&seen.body).unwrap();
    assert_eq!(sent["tools"], json!([{"googleSearch": {}}]));
    assert_eq!(gw.get("/v1beta/models/gemini-2.5-pro-search").await.json()["name"], "models/gemini-2.5-pro-search");
    // A model not in models.search_models keeps its name.
    fake.clear();
    gw.post("/v1beta/models/other-search:generateContent", HELLO).await;
    assert_eq!(fake.requests()[0].path, "/v1beta/models/other-search:generateContent");
    gw.stop().await;
}

#[tokio::test]
async fn error_log_bodies_are_truncated() {
    let huge = "x".repeat(20_000);
    let fake = FakeGemini::new()
        .key_seq(
            &key(1),
            vec![Script::Json(500, json!({"error": {"code": 500, "message": huge, "status": "INTERNAL"}}))],
        )
        .start()
        .await;
    let gw = Gateway::builder(&fake.base_url()).keys(&[key(1)]).set("keys.max_retries", "1").start().await;
    gw.post(GENERATE, HELLO).await;
    let errors = gw.logged_errors(1).await;
    let body = errors[0].record.body.as_deref().unwrap();
    assert!(body.len() <= 4096 + "…".len() && body.ends_with('…'), "{}", body.len());
    assert!(errors[0].record.error.len() < 300, "the error line is short too");
    gw.stop().await;
}

/// A client that leaves before its answer still leaves exactly one request-log row (499), and
/// the key that was still working on it is not charged.
#[tokio::test]
async fn a_client_that_leaves_early_leaves_one_log_row() {
    let slow = Script::Delay(Duration::from_secs(3), Box::new(Script::Ok));
    let fake = FakeGemini::new().key(&key(1), slow).start().await;
    let gw = Gateway::builder(&fake.base_url()).keys(&[key(1)]).start().await;
    let abandoned = tokio::time::timeout(Duration::from_millis(300), gw.post(GENERATE, HELLO)).await;
    assert!(abandoned.is_err(), "the client gave up first");
    let rows = gw.logged_requests(1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rows_later = gw.logged_requests(1).await;
    assert_eq!((rows.len(), rows_later.len()), (1, 1), "exactly one row");
    let row = &rows_later[0].record;
    assert_eq!((row.status, row.route.as_str()), (499, "generateContent"));
    assert!(row.error.as_deref().is_some_and(|e| e.contains("client closed")), "{:?}", row.error);
    assert_eq!(gw.health(&key(1)).failures(), 0, "leaving is nobody's fault");
    gw.stop().await;
}

#[tokio::test]
async fn aliases_serve_a_clients_model_name_as_the_configured_model_on_every_route_family() {
    let fake = FakeGemini::new().key(&key(1), Script::Ok).start().await;
    let gw = Gateway::builder(&fake.base_url())
        .keys(&[key(1)])
        .set(
            "models.aliases",
            r#"{"gpt-4o*" = "gemini-2.5-flash", "gpt-4o-mini" = "gemini-2.5-flash-lite", "claude-*" = "gemini-2.5-pro", "text-embedding-*" = "gemini-embedding-001"}"#,
        )
        .start()
        .await;
    let bearer = format!("Bearer {TOKEN}");
    let openai = |path: &'static str, body: serde_json::Value| {
        let bearer = bearer.clone();
        let gw = &gw;
        async move {
            gw.request(
                Method::POST,
                path,
                &[("authorization", &bearer), ("content-type", "application/json")],
                body.to_string(),
            )
            .await
        }
    };
    let last = || fake.requests().pop().unwrap();
    // Native: the path's model.
    assert_eq!(gw.post("/v1beta/models/claude-3-opus:generateContent", HELLO).await.status, StatusCode::OK);
    assert_eq!(last().path, "/v1beta/models/gemini-2.5-pro:generateContent");
    // OpenAI chat: the longest pattern wins; the answer names the model the client asked for.
    let chat = |m: &str| json!({"model": m, "messages": [{"role": "user", "content": "hi"}]});
    let r = openai("/v1/chat/completions", chat("gpt-4o-mini")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["model"], "gpt-4o-mini");
    assert_eq!(last().path, "/v1beta/models/gemini-2.5-flash-lite:generateContent");
    assert_eq!(openai("/v1/chat/completions", chat("gpt-4o")).await.status, StatusCode::OK);
    assert_eq!(last().path, "/v1beta/models/gemini-2.5-flash:generateContent");
    // Embeddings: the path and each request's model.
    let r = openai("/v1/embeddings", json!({"model": "text-embedding-3-small", "input": ["a"]})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let sent = last();
    assert_eq!(sent.path, "/v1beta/models/gemini-embedding-001:batchEmbedContents");
    assert!(String::from_utf8_lossy(&sent.body).contains("models/gemini-embedding-001"));
    // Google's OpenAI surface: the body's model is rewritten, the rest passes.
    assert_eq!(openai("/openai/v1/chat/completions", chat("claude-sonnet")).await.status, StatusCode::OK);
    let sent: serde_json::Value = serde_json::from_slice(&last().body).unwrap();
    assert_eq!((sent["model"].as_str(), sent["messages"][0]["content"].as_str()), (Some("gemini-2.5-pro"), Some("hi")));
    // A name no pattern matches is served as itself.
    assert_eq!(gw.post(GENERATE, HELLO).await.status, StatusCode::OK);
    assert_eq!(last().path, GENERATE);
    gw.stop().await;
}
