//! Who is to blame, through the real daemon: every failure the blame issue lists leaves every key
//! in the state the contract says, and other models and clients are served throughout.

use std::sync::Arc;
use std::time::Duration;

use http::{Method, StatusCode};
use serde_json::{Value, json};

use gatewayd::clock::Clock;
use gatewayd::keypool::KeyState;
use gatewayd::outcome::CoolReason;
use gatewayd_testkit::fake::{FakeGemini, Script, final_chunk, text_chunk};
use gatewayd_testkit::{GENERATE, Gateway, HELLO, TOKEN, key};

const PRO: &str = "/v1beta/models/gemini-2.5-pro:generateContent";
const BEARER: (&str, &str) = ("authorization", "Bearer test-token-0123456789");

fn chat(model: &str) -> String {
    json!({"model": model, "messages": [{"role": "user", "content": "Hi"}]}).to_string()
}

fn assert_untouched(gw: &Gateway, keys: &[String]) {
    for k in keys {
        let h = gw.health(k);
        assert_eq!((h.state(), h.failures()), (KeyState::Active, 0), "{k}: {h:?}");
        assert!(h.cooldowns().is_empty(), "{k}: {h:?}");
    }
}

/// Model names with spaces, tabs, `<`, CR/LF, NUL, 200 characters, `?`, `#` or `../` are refused
/// with 400 on both route families, nothing goes upstream and no key is charged.
#[tokio::test]
async fn hostile_model_names_are_400_with_nothing_upstream() {
    let keys = vec![key(1), key(2), key(3)];
    let fake = FakeGemini::new().key(&keys[0], Script::Ok).key(&keys[1], Script::Ok).key(&keys[2], Script::Ok);
    let fake = fake.start().await;
    let gw = Gateway::builder(&fake.base_url()).keys(&keys).start().await;
    let long = "a".repeat(200);
    let names =
        ["a b", "a\tb", "a<b", "a\r\nb", "a\0b", long.as_str(), "m?x=1", "m#frag", "../../v1beta/files", "x/y", "é"];
    for name in names {
        let r = gw.request(Method::POST, "/v1/chat/completions", &[BEARER], chat(name)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "chat {name:?}: {}", r.text());
        assert_eq!(r.json()["error"]["type"], "invalid_request_error", "OpenAI's shape");
        let body = json!({"model": name, "input": "x"}).to_string();
        let r = gw.request(Method::POST, "/v1/embeddings", &[BEARER], body).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "embeddings {name:?}");
        let encoded: String = name.bytes().map(|b| format!("%{b:02X}")).collect();
        for path in [
            format!("/v1beta/models/{encoded}:generateContent"),
            format!("/v1/models/{encoded}:generateContent"),
            format!("/gemini/v1beta/models/{encoded}:streamGenerateContent?alt=sse"),
            format!("/v1beta/models/{encoded}"),
        ] {
            let r = gw.post(&path, HELLO).await;
            assert_eq!(r.status, StatusCode::BAD_REQUEST, "{path}: {}", r.text());
            assert_eq!(r.json()["error"]["status"], "INVALID_ARGUMENT", "Google's shape: {}", r.text());
        }
        let body = json!({"model": name, "messages": []}).to_string();
        let r = gw.request(Method::POST, "/openai/v1/chat/completions", &[BEARER], body).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "passthrough {name:?}");
    }
    for path in ["/openai/v1/../v1beta/files", "/openai/v1/chat/%2e%2e/files", "/openai/v1/a%2Fb"] {
        let r = gw.request(Method::GET, path, &[BEARER], "").await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{path}: {}", r.text());
    }
    assert!(fake.requests().is_empty(), "nothing went upstream: {:?}", fake.requests());
    assert_untouched(&gw, &keys);
    assert_eq!(gw.post(GENERATE, HELLO).await.status, StatusCode::OK, "still serving");
    gw.stop().await;
}

/// A hidden model stays hidden however its name is percent-encoded.
#[tokio::test]
async fn hidden_models_compare_decoded_names() {
    let fake = FakeGemini::new().key(&key(1), Script::Ok).start().await;
    let gw =
        Gateway::builder(&fake.base_url()).keys(&[key(1)]).set("models.hidden", r#"["gemini-2.5-pro"]"#).start().await;
    for path in
        [PRO, "/v1beta/models/%67emini-2.5-pro:generateContent", "/gemini/v1/models/%67emini-2.5-pro:countTokens"]
    {
        assert_eq!(gw.post(path, HELLO).await.status, StatusCode::NOT_FOUND, "{path}");
    }
    let r = gw.request(Method::GET, "/v1beta/models/gemini%2D2.5-pro", &[("x-goog-api-key", TOKEN)], "").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(fake.requests().is_empty());
    gw.stop().await;
}

/// Three and more 503 "The model is overloaded" on one model, on every key: the model backs off,
/// no key is charged, other models are served throughout, and the model comes back.
#[tokio::test]
async fn a_model_overloaded_on_every_key_leaves_the_keys_alone() {
    let keys = vec![key(1), key(2), key(3)];
    let overloaded = Script::Json(
        503,
        json!({"error": {"code": 503, "message": "The model is overloaded. Please try again later.", "status": "UNAVAILABLE"}}),
    );
    let fake = FakeGemini::new()
        .key(&keys[0], Script::Ok)
        .key(&keys[1], Script::Ok)
        .key(&keys[2], Script::Ok)
        .model("gemini-2.5-flash", overloaded)
        .start()
        .await;
    let clock = Arc::new(Clock::default());
    let gw = Gateway::builder(&fake.base_url()).keys(&keys).clock(clock.clone()).start().await;
    for _ in 0..4 {
        let r = gw.post(GENERATE, HELLO).await;
        assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text());
        assert_eq!(gw.post(PRO, HELLO).await.status, StatusCode::OK, "another model is served meanwhile");
        // While the model backs off, a new request is held back with Retry-After, sending nothing.
        let before = fake.requests().len();
        let held = gw.post(GENERATE, HELLO).await;
        assert_eq!(held.status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(held.headers.get("retry-after").is_some(), "{:?}", held.headers);
        assert_eq!(fake.requests().len(), before);
        clock.advance(chrono::Duration::seconds(31));
    }
    let overloaded_hits = fake.requests().iter().filter(|r| r.path.contains("gemini-2.5-flash:")).count();
    assert!(overloaded_hits > 3, "a real storm: more 503s ({overloaded_hits}) than keys.max_failures");
    assert_untouched(&gw, &keys);
    fake.set_model("gemini-2.5-flash", None);
    assert_eq!(gw.post(GENERATE, HELLO).await.status, StatusCode::OK, "the model is back");
    let errors = gw.logged_errors(1).await;
    assert!(errors.iter().any(|e| e.record.error.contains("charged to: model")), "{:?}", errors[0].record);
    gw.stop().await;
}

/// A key that keeps failing while other keys serve the model cools for it with reason `errors`,
/// never `invalid`, and the client is served by the others throughout.
#[tokio::test]
async fn a_key_failing_while_others_serve_cools_with_reason_errors() {
    let fake = FakeGemini::new().key(&key(1), Script::Status(500)).key(&key(2), Script::Ok).start().await;
    let gw = Gateway::builder(&fake.base_url()).keys(&[key(1), key(2)]).start().await;
    for _ in 0..8 {
        assert_eq!(gw.post(GENERATE, HELLO).await.status, StatusCode::OK);
    }
    let h = gw.health(&key(1));
    assert_eq!(h.state(), KeyState::Active, "never invalid for transient failures");
    let c = &h.cooldowns()["gemini-2.5-flash"];
    assert_eq!(c.reason, CoolReason::Errors);
    let rest = (c.until - gw.state.now()).num_seconds();
    assert!((55..=60).contains(&rest), "keys.cooldown_secs: {rest}");
    assert_eq!(fake.hits(&key(1)), 4, "the first failure was nobody's (no key had served yet), then 3 charged");
    assert_eq!(gw.post(PRO, HELLO).await.status, StatusCode::OK);
    let listed = gw.request(Method::GET, "/v1beta/models/gemini-2.5-flash", &[("x-goog-api-key", TOKEN)], "").await;
    assert_eq!(listed.status, StatusCode::OK);
    gw.stop().await;
}

/// A 200 that is not the expected JSON is a failed attempt, retried on another key before any
/// byte reaches the client, and never turned into `content_filter`.
#[tokio::test]
async fn a_garbage_200_is_retried_and_never_relayed_as_success() {
    let garbage = Script::Raw(200, "<html><body>upstream proxy error</body></html>");
    let fake = FakeGemini::new().key(&key(1), garbage).key(&key(2), Script::Ok).start().await;
    let gw = Gateway::builder(&fake.base_url()).keys(&[key(1), key(2)]).start().await;
    for _ in 0..2 {
        let r = gw.request(Method::POST, "/v1/chat/completions", &[BEARER], chat("gemini-2.5-flash")).await;
        assert_eq!(r.status, StatusCode::OK);
        let v: Value = r.json();
        assert_eq!(v["choices"][0]["finish_reason"], "stop", "{v}");
        assert_eq!(v["choices"][0]["message"]["content"], "Hello from the fake.");
        let r = gw
            .request(Method::POST, "/v1beta/models/gemini-2.5-flash:countTokens", &[("x-goog-api-key", TOKEN)], HELLO)
            .await;
        assert_eq!((r.status, r.json()["totalTokens"].as_u64()), (StatusCode::OK, Some(7)));
    }
    let rows = gw.logged_requests(4).await;
    assert!(rows.iter().any(|r| r.record.trail().contains("200 garbled")), "{:?}", rows[0].record.trail());
    // With only the garbling key, the client gets an error, not a made-up answer.
    let fake = FakeGemini::new().key(&key(1), Script::Raw(200, "not json")).start().await;
    let gw1 = Gateway::builder(&fake.base_url()).keys(&[key(1)]).start().await;
    let r = gw1.request(Method::POST, "/v1/chat/completions", &[BEARER], chat("gemini-2.5-flash")).await;
    assert!(r.status.is_server_error(), "{} {}", r.status, r.text());
    gw.stop().await;
    gw1.stop().await;
}

/// Connection refused is the gateway's own network: retried, then 502 naming the cause, and no
/// key is charged, across a restart too.
#[tokio::test]
async fn a_closed_upstream_port_charges_no_key() {
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let keys = vec![key(1), key(2)];
    let gw = Gateway::builder(&format!("http://{closed}")).keys(&keys).start().await;
    for _ in 0..5 {
        let r = gw.post(GENERATE, HELLO).await;
        assert_eq!(r.status, StatusCode::BAD_GATEWAY, "{}", r.text());
        assert!(r.json()["error"]["message"].as_str().unwrap().contains("connect"), "{}", r.text());
    }
    assert_untouched(&gw, &keys);
    let rows = gw.logged_requests(5).await;
    assert_eq!(rows[0].record.trail(), "#1 connect → #2 connect");
    gw.stop().await;
}

/// `upstream.timeout_secs` bounds a stream only until its first event: a healthy stream that
/// keeps sending for longer is relayed whole and charged to nobody.
#[tokio::test]
async fn a_live_stream_outlives_timeout_secs() {
    let events = vec![text_chunk("a"), text_chunk("b"), text_chunk("c"), text_chunk("d"), final_chunk("e", 4, 5)];
    let slow = Script::Sse { events, gap: Duration::from_millis(600) };
    let fake = FakeGemini::new().key(&key(1), slow).start().await;
    let gw = Gateway::builder(&fake.base_url()).keys(&[key(1)]).set("upstream.timeout_secs", "1").start().await;
    let started = std::time::Instant::now();
    let r = gw.post("/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse", HELLO).await;
    assert!(started.elapsed() > Duration::from_secs(2), "the stream took longer than timeout_secs");
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.text().matches("data: ").count(), 5, "every event: {}", r.text());
    let rows = gw.logged_requests(1).await;
    assert_eq!((rows[0].record.status, rows[0].record.error.as_deref()), (200, None));
    assert_untouched(&gw, &[key(1)]);
    gw.stop().await;
}

/// A stream that goes silent for `upstream.stream_idle_secs` is cut with an error event, logged
/// in the error log, and blamed by the usual rules.
#[tokio::test]
async fn a_silent_stream_is_cut_after_stream_idle_secs() {
    let gate = Arc::new(tokio::sync::Notify::new());
    let silent = Script::Gated { first: text_chunk("partial"), gate, rest: vec![] };
    let fake = FakeGemini::new().key(&key(1), silent).start().await;
    let gw = Gateway::builder(&fake.base_url()).keys(&[key(1)]).set("upstream.stream_idle_secs", "1").start().await;
    let body = json!({"model": "gemini-2.5-flash", "stream": true, "messages": [{"role": "user", "content": "Hi"}]});
    let r = gw.request(Method::POST, "/v1/chat/completions", &[BEARER], body.to_string()).await;
    let text = r.text();
    assert!(text.contains("partial") && text.contains("stream_idle_secs"), "{text}");
    let errors = gw.logged_errors(1).await;
    assert!(errors[0].record.error.contains("stream_idle_secs"), "{:?}", errors[0].record);
    assert_untouched(&gw, &[key(1)]);
    gw.stop().await;
}

/// `retryDelay: "99999999999s"` cools the key until the next Pacific midnight at most, and every
/// Retry-After sent is clamped the same way.
#[tokio::test]
async fn a_huge_retry_delay_is_clamped_to_pacific_midnight() {
    let huge = Script::quota("GenerateRequestsPerMinutePerProjectPerModel-FreeTier", Some("99999999999s"));
    let fake = FakeGemini::new().key(&key(1), huge).start().await;
    let gw = Gateway::builder(&fake.base_url()).keys(&[key(1)]).start().await;
    let r = gw.post(GENERATE, HELLO).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    let now = gw.state.now();
    let midnight = gatewayd::outcome::next_pacific_midnight(now);
    let until = gw.health(&key(1)).cooldowns()["gemini-2.5-flash"].until;
    assert!(until <= midnight && until > now, "{until} vs {midnight}");
    let r = gw.post(GENERATE, HELLO).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    let retry_after: i64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry_after >= 1 && retry_after <= (midnight - now).num_seconds() + 1, "{retry_after}");
    gw.stop().await;
}

/// Thousands of made-up model names do not grow `/metrics`: they share the label `other`.
#[tokio::test]
async fn made_up_models_do_not_grow_metrics() {
    let fake = FakeGemini::new().key(&key(1), Script::Status(404)).start().await;
    let gw = Gateway::builder(&fake.base_url()).keys(&[key(1)]).start().await;
    for i in 0..300 {
        let r = gw.request(Method::POST, "/v1/chat/completions", &[BEARER], chat(&format!("made-up-{i}"))).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
    }
    gw.logged_requests(300).await;
    let (_, text) = gatewayd_testkit::admin(&gw.socket, Method::GET, "/metrics", None).await;
    assert!(!text.contains("made-up"), "{text}");
    assert!(text.contains(r#"model="other",status="404"} 300"#), "{text}");
    assert!(text.len() < 20_000, "{} bytes", text.len());
    gw.stop().await;
}
