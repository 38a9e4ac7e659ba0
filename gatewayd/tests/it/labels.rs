//! Issue 13: key labels through the daemon: kinds (Vertex AI Express keys on their own routes),
//! groups (`models.groups`), projects (shared cooldowns), and egress proxies per key.

use http::{Method, StatusCode};
use serde_json::{Value, json};

use gatewayd_testkit::fake::{FakeGemini, Script};
use gatewayd_testkit::proxies::connect_proxy;
use gatewayd_testkit::{GENERATE, Gateway, HELLO, admin, key};

async fn keys_json(gw: &Gateway) -> Vec<Value> {
    let (status, text) = admin(&gw.socket, Method::GET, "/v1/keys", None).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    serde_json::from_str(&text).unwrap()
}

async fn admin_ok(gw: &Gateway, path: &str, body: Value) -> String {
    let (status, text) = admin(&gw.socket, Method::POST, path, Some(body.to_string())).await;
    assert_eq!(status, StatusCode::OK, "{path}: {text}");
    text
}

fn id_of(keys: &[Value], secret: &str) -> i64 {
    let shown = shared::redact(secret);
    keys.iter().find(|k| k["key"] == shown.as_str()).unwrap()["id"].as_i64().unwrap()
}

const VERTEX_GENERATE: &str = "/vertex-express/v1beta/models/gemini-2.5-flash:generateContent";

#[tokio::test]
async fn vertex_keys_serve_only_vertex_routes_and_gemini_keys_only_gemini_routes() {
    let (g1, g2, v1, v2) = (key(1), key(2), key(3), key(4));
    let fake = FakeGemini::new()
        .key(&g1, Script::Ok)
        .key(&g2, Script::Ok)
        .vertex_key(&v1, Script::Ok)
        .vertex_key(&v2, Script::Ok)
        .start()
        .await;
    let gw = Gateway::builder(&fake.base_url())
        .keys(&[g1.clone(), g2.clone()])
        .set("vertex.base_url", &format!("\"{}\"", fake.base_url()))
        .start()
        .await;
    // No vertex key yet: the vertex route says what to do, and nothing goes upstream.
    let r = gw.post(VERTEX_GENERATE, HELLO).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text());
    assert!(r.text().contains("--kind vertex"), "{}", r.text());
    assert!(fake.requests().is_empty());
    admin_ok(&gw, "/v1/keys/add", json!({"keys": [v1, v2], "kind": "vertex", "note": "express"})).await;
    let keys = keys_json(&gw).await;
    assert_eq!(keys.iter().filter(|k| k["kind"] == "vertex").count(), 2);
    assert!(keys.iter().filter(|k| k["kind"] == "vertex").all(|k| k["note"] == "express"));
    for _ in 0..4 {
        let r = gw.post(VERTEX_GENERATE, HELLO).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        assert!(r.text().contains("Hello from the fake."));
        let r = gw.post(GENERATE, HELLO).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    }
    let sse = gw.post("/vertex-express/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse", HELLO).await;
    assert_eq!(sse.status, StatusCode::OK);
    assert!(sse.text().contains("data: "), "{}", sse.text());
    for r in fake.requests() {
        let vertex = r.path.starts_with("/v1beta1/publishers/google/models/");
        let by_vertex_key = [&v1, &v2].contains(&r.key.as_ref().unwrap());
        assert_eq!(vertex, by_vertex_key, "{} went with the wrong kind of key", r.path);
    }
    let used: std::collections::HashSet<_> = fake.requests().into_iter().filter_map(|r| r.key).collect();
    assert_eq!(used.len(), 4, "round-robin over each kind's keys");
    // The request log names the route; verify probes vertex keys at Vertex's address.
    let logged = gw.logged_requests(9).await;
    assert!(logged.iter().any(|r| r.record.route == "vertex.generateContent"));
    let text = admin_ok(&gw, "/v1/keys/verify", json!({"all": true})).await;
    let results: Vec<Value> = serde_json::from_str(&text).unwrap();
    assert!(results.iter().all(|r| r["ok"] == true), "{text}");
    let probes: Vec<_> = fake.requests().into_iter().rev().take(4).collect();
    assert!(probes.iter().any(|r| r.path == "/v1beta1/publishers/google/models/gemini-2.5-flash-lite:countTokens"));
    // Methods Vertex Express does not serve are refused at the edge.
    let r = gw.post("/vertex-express/v1beta/models/gemini-2.5-flash:embedContent", HELLO).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text());
    gw.stop().await;
}

#[tokio::test]
async fn a_group_serves_only_its_models_and_labels_change_at_runtime() {
    let (free1, free2, paid) = (key(1), key(2), key(3));
    let fake = FakeGemini::new().key(&free1, Script::Ok).key(&free2, Script::Ok).key(&paid, Script::Ok).start().await;
    let gw = Gateway::builder(&fake.base_url())
        .keys(&[free1.clone(), free2.clone(), paid.clone()])
        .set("models.groups", r#"{"imagen-*" = "paid"}"#)
        .start()
        .await;
    let paid_id = id_of(&keys_json(&gw).await, &paid);
    // Before the label, no key serves imagen: a 503 that says how to fix it.
    let predict = "/v1beta/models/imagen-4.0-generate-001:predict";
    let body = r#"{"instances":[{"prompt":"a cat"}]}"#;
    let r = gw.post(predict, body).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text());
    assert!(r.text().contains("--group paid"), "{}", r.text());
    admin_ok(&gw, "/v1/keys/set", json!({"keys": [paid_id.to_string()], "group": "paid", "project": "billing-1"}))
        .await;
    let keys = keys_json(&gw).await;
    let row = keys.iter().find(|k| k["id"] == paid_id).unwrap();
    assert_eq!((row["group"].as_str(), row["project"].as_str()), (Some("paid"), Some("billing-1")));
    for _ in 0..4 {
        assert_eq!(gw.post(predict, body).await.status, StatusCode::OK);
        assert_eq!(gw.post(GENERATE, HELLO).await.status, StatusCode::OK);
    }
    for r in fake.requests() {
        let imagen = r.path.contains("imagen-");
        assert_eq!(imagen, r.key.as_deref() == Some(paid.as_str()), "{} used the wrong group's key", r.path);
    }
    // Labels survive a restart; "" clears one.
    let text = admin_ok(&gw, "/v1/keys/set", json!({"keys": [paid_id.to_string()], "project": ""})).await;
    assert!(text.contains(&paid_id.to_string()));
    let dir = gw.stop().await;
    let gw = Gateway::builder(&fake.base_url())
        .keys(&[free1, free2, paid])
        .set("models.groups", r#"{"imagen-*" = "paid"}"#)
        .dir(dir)
        .start()
        .await;
    let row = keys_json(&gw).await.into_iter().find(|k| k["id"] == paid_id).unwrap();
    assert_eq!((row["group"].as_str(), row["project"].as_str()), (Some("paid"), None));
    // Bad labels are refused with the reason.
    let (status, text) = admin(
        &gw.socket,
        Method::POST,
        "/v1/keys/set",
        Some(json!({"keys": [paid_id.to_string()], "group": "a b"}).to_string()),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(text.contains("group \\\"a b\\\" is not a name"), "{text}");
    gw.stop().await;
}

#[tokio::test]
async fn a_429_on_one_key_cools_its_projects_other_keys_for_that_model_only() {
    let (a1, a2, b) = (key(1), key(2), key(3));
    let quota = Script::quota("GenerateRequestsPerMinutePerProjectPerModel-FreeTier", Some("40s"));
    let fake = FakeGemini::new().key_seq(&a1, vec![quota]).key(&a2, Script::Ok).key(&b, Script::Ok).start().await;
    let gw = Gateway::builder(&fake.base_url()).keys(&[a1.clone(), a2.clone(), b.clone()]).start().await;
    let keys = keys_json(&gw).await;
    let (id1, id2) = (id_of(&keys, &a1), id_of(&keys, &a2));
    admin_ok(&gw, "/v1/keys/set", json!({"keys": [id1.to_string(), id2.to_string()], "project": "proj-a"})).await;
    // The first request meets the 429 on a1 (round-robin starts there) and is served by another key.
    assert_eq!(gw.post(GENERATE, HELLO).await.status, StatusCode::OK);
    let cooled = gw.health(&a2);
    assert!(cooled.cooling_until("gemini-2.5-flash", gw.state.now()).is_some(), "a2 shares a1's quota");
    assert!(gw.health(&b).cooldowns().is_empty());
    let before = fake.hits(&a2);
    for _ in 0..4 {
        assert_eq!(gw.post(GENERATE, HELLO).await.status, StatusCode::OK);
    }
    assert_eq!(fake.hits(&a2), before, "a2 rests for the model with a1");
    // Another model is unaffected.
    let pro = GENERATE.replace("gemini-2.5-flash", "gemini-2.5-pro");
    for _ in 0..3 {
        assert_eq!(gw.post(&pro, HELLO).await.status, StatusCode::OK);
    }
    assert!(fake.hits(&a2) > before, "a2 still serves other models");
    // The shared cooldown is persisted like any other.
    let row = keys_json(&gw).await.into_iter().find(|k| k["id"] == id2).unwrap();
    assert_eq!(row["state"], "cooling");
    assert_eq!(row["cooldowns"][0]["model"], "gemini-2.5-flash");
    gw.stop().await;
}

#[tokio::test]
async fn each_key_leaves_through_the_proxy_its_hash_picks() {
    let fake = FakeGemini::new();
    let keys: Vec<String> = (1..=32).map(key).collect();
    let fake = keys.iter().fold(fake, |f, k| f.key(k, Script::Ok)).start().await;
    let ((p1, seen1), (p2, seen2)) = (connect_proxy().await, connect_proxy().await);
    let proxies = [format!("http://u:secret-one@{p1}"), format!("http://u:secret-two@{p2}")];
    let gw = Gateway::builder(&fake.base_url())
        .keys(&keys)
        .set("upstream.proxies", &format!(r#"["{}", "{}"]"#, proxies[0], proxies[1]))
        .start()
        .await;
    let listed = keys_json(&gw).await;
    let text = serde_json::to_string(&listed).unwrap();
    assert!(!text.contains("secret-one") && !text.contains("secret-two"), "passwords redacted: {text}");
    let on = |p: &std::net::SocketAddr| -> Vec<i64> {
        listed
            .iter()
            .filter(|k| k["proxy"].as_str().is_some_and(|s| s.ends_with(&p.to_string())))
            .map(|k| k["id"].as_i64().unwrap())
            .collect()
    };
    let (on1, on2) = (on(&p1), on(&p2));
    assert_eq!(on1.len() + on2.len(), 32, "every key shows its proxy");
    assert!(!on1.is_empty() && !on2.is_empty(), "32 keys spread over 2 proxies");
    // Only one key in rotation at a time: its requests leave through its own proxy only.
    let all: Vec<String> = listed.iter().map(|k| k["id"].to_string()).collect();
    admin_ok(&gw, "/v1/keys/disable", json!({"keys": all})).await;
    for (id, seen, other) in [(on1[0], &seen1, &seen2), (on2[0], &seen2, &seen1)] {
        admin_ok(&gw, "/v1/keys/enable", json!({"keys": [id.to_string()]})).await;
        let before = other.targets.lock().unwrap().len();
        assert_eq!(gw.post(GENERATE, HELLO).await.status, StatusCode::OK);
        assert!(!seen.targets.lock().unwrap().is_empty(), "key #{id} left through its proxy");
        assert_eq!(other.targets.lock().unwrap().len(), before, "and not through the other");
        admin_ok(&gw, "/v1/keys/disable", json!({"keys": [id.to_string()]})).await;
    }
    let auths = [seen1.auth.lock().unwrap()[0].clone(), seen2.auth.lock().unwrap()[0].clone()];
    use base64::Engine as _;
    let basic = |pw: &str| format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("u:{pw}")));
    assert_eq!(auths, [basic("secret-one"), basic("secret-two")], "each proxy got its own credentials");
    gw.stop().await;
}

#[tokio::test]
async fn a_vertex_key_meets_the_same_blame_and_cooldowns() {
    let (v1, v2) = (key(1), key(2));
    let quota = Script::quota("GenerateRequestsPerMinutePerProjectPerModel-FreeTier", Some("40s"));
    let fake = FakeGemini::new().vertex_key(&v1, quota).vertex_key(&v2, Script::Ok).start().await;
    let gw =
        Gateway::builder(&fake.base_url()).set("vertex.base_url", &format!("\"{}\"", fake.base_url())).start().await;
    admin_ok(&gw, "/v1/keys/add", json!({"keys": [v1, v2], "kind": "vertex"})).await;
    // The 429 cools v1 for the model and the attempt goes on to v2, as on the Gemini routes.
    let r = gw.post(VERTEX_GENERATE, HELLO).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let cooling = gw.health(&v1);
    assert_eq!(cooling.cooldowns()["gemini-2.5-flash"].reason, gatewayd::outcome::CoolReason::Rpm);
    let before = fake.hits(&v1);
    for _ in 0..3 {
        assert_eq!(gw.post(VERTEX_GENERATE, HELLO).await.status, StatusCode::OK);
    }
    assert_eq!(fake.hits(&v1), before, "the cooling key rests");
    let trail = gw.logged_requests(4).await[0].record.trail();
    assert!(trail.contains("429") && trail.contains("200"), "{trail}");
    gw.stop().await;
}
