//! Issue 12: the Interactions API through the pool, each interaction pinned to the key that
//! created it and to the client token that asked.

use bytes::Bytes;
use http::{Method, StatusCode};
use serde_json::json;

use super::files::{OTHER, pool, upload};
use gatewayd::affinity::Owner;
use gatewayd_testkit::fake::{FakeGemini, Script};
use gatewayd_testkit::{Gateway, Reply, TOKEN, key};

const CREATE: &str = "/v1beta/interactions";

async fn create(gw: &Gateway, body: serde_json::Value) -> Reply {
    gw.post(CREATE, body.to_string()).await
}

fn owner_key(gw: &Gateway, name: &str) -> i64 {
    gw.state.affinity.resolve(&[name.to_string()], &Owner::of_token(TOKEN), gw.state.now()).unwrap().unwrap()
}

#[tokio::test]
async fn an_interaction_and_its_next_turns_stay_on_the_key_that_made_it() {
    let (fake, gw) = pool(3).await;
    let r = create(&gw, json!({"model": "gemini-2.5-flash", "input": "Hello"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let first = r.json();
    assert_eq!(first["status"], "completed");
    let id = first["id"].as_str().unwrap().to_string();
    let name = format!("interactions/{id}");
    let made_by = fake.requests().last().unwrap().key.clone();
    // Round-robin would move each of these to another key; every one goes to the owner.
    let mut previous = id.clone();
    for _ in 0..3 {
        let r = create(&gw, json!({"model": "gemini-2.5-flash", "input": "and?", "previous_interaction_id": previous}))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        let text = r.json()["steps"][0]["content"][0]["text"].as_str().unwrap().to_string();
        assert_eq!(text, format!("Continuing {previous}"), "the owner key knows the previous turn");
        previous = r.json()["id"].as_str().unwrap().to_string();
        let r = gw.get(&format!("/v1beta/interactions/{id}")).await;
        assert_eq!((r.status, r.json()["id"].as_str()), (StatusCode::OK, Some(id.as_str())));
    }
    let upstream = fake.requests();
    assert_eq!(upstream.len(), 7);
    assert!(upstream.iter().all(|r| r.key == made_by), "one key served the whole conversation");
    // The request log records what each request was pinned to.
    let logged = gw.logged_requests(7).await;
    assert_eq!(logged[0].record.resource, None, "the first turn went to any key");
    assert_eq!(logged[2].record.resource.as_deref(), Some(name.as_str()), "{logged:?}");
    // Another client token sees none of it, and nothing goes upstream for it.
    let other = [("x-goog-api-key", OTHER)];
    let r = gw.request(Method::GET, &format!("/v1beta/{name}"), &other, Bytes::new()).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let turn = json!({"model": "gemini-2.5-flash", "input": "hi", "previous_interaction_id": id}).to_string();
    let r = gw.request(Method::POST, CREATE, &other, turn).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(fake.requests().len(), 7);
    // Deleting it ends the binding: the gateway answers 404 without asking Google.
    let r = gw.request(Method::DELETE, &format!("/v1beta/{name}"), &[("x-goog-api-key", TOKEN)], Bytes::new()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(gw.get(&format!("/v1beta/{name}")).await.status, StatusCode::NOT_FOUND);
    assert_eq!(fake.requests().len(), 8);
    gw.stop().await;
}

#[tokio::test]
async fn a_streamed_interaction_is_relayed_untouched_and_bound_before_its_client_reads_the_id() {
    let (fake, gw) = pool(3).await;
    let body = json!({"model": "gemini-2.5-flash", "input": "Hello", "stream": true}).to_string();
    let r = gw
        .request(
            Method::POST,
            "/gemini/v1beta/interactions",
            &[("x-goog-api-key", TOKEN), ("content-type", "application/json"), ("accept", "text/event-stream")],
            body,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.headers["content-type"], "text/event-stream");
    let text = r.text();
    let kinds: Vec<&str> = text.lines().filter_map(|l| l.strip_prefix("event: ")).collect();
    assert_eq!(
        kinds,
        ["interaction.created", "step.start", "step.delta", "step.delta", "step.stop", "interaction.completed"]
    );
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
    let id = text.split("\"id\":\"").nth(1).unwrap().split('"').next().unwrap().to_string();
    let made_by = fake.requests().last().unwrap().key.clone();
    // At once, and on every spelling: pinned to the key that streamed it.
    for path in [format!("/v1beta/interactions/{id}"), format!("/gemini/v1beta/interactions/{id}")] {
        let r = gw.get(&path).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    }
    // Resuming the stream goes to the same key, and is streamed.
    let r = gw.get(&format!("/v1beta/interactions/{id}?stream=true&last_event_id=e2")).await;
    assert_eq!((r.status, r.headers["content-type"].to_str().unwrap()), (StatusCode::OK, "text/event-stream"));
    assert!(r.text().contains("interaction.completed"));
    let sent = fake.requests();
    assert!(sent.iter().all(|r| r.key == made_by));
    assert_eq!(sent.last().unwrap().query.as_deref(), Some("stream=true&last_event_id=e2"));
    // The binding is in the database too (written beside the stream).
    let name = format!("interactions/{id}");
    let store = gw.state.store.clone();
    let mut saved = false;
    for _ in 0..100 {
        if store.load_resources(gw.state.now()).unwrap().iter().any(|(n, _)| *n == name) {
            saved = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(saved, "{name} saved");
    gw.stop().await;
}

#[tokio::test]
async fn a_background_interaction_is_polled_and_cancelled_on_its_key_and_revisions_pass() {
    let (fake, gw) = pool(2).await;
    let body = json!({"agent": "deep-research-pro-preview-12-2025", "input": "Research", "background": true});
    let r = gw
        .request(
            Method::POST,
            CREATE,
            &[("x-goog-api-key", TOKEN), ("content-type", "application/json"), ("api-revision", "2026-05-20")],
            body.to_string(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["status"], "in_progress");
    let id = r.json()["id"].as_str().unwrap().to_string();
    let sent = fake.requests().pop().unwrap();
    assert_eq!(sent.headers["api-revision"], "2026-05-20", "Google's revision header goes up as sent");
    assert_eq!(&sent.body[..], body.to_string().as_bytes(), "the body goes up untouched");
    let made_by = sent.key;
    for cancel in [format!("/v1beta/interactions/{id}/cancel"), format!("/v1beta/interactions/{id}:cancel")] {
        let r = gw.post(&cancel, "{}").await;
        assert_eq!((r.status, r.json()["status"].as_str()), (StatusCode::OK, Some("cancelled")), "{cancel}");
        let sent = fake.requests().pop().unwrap();
        assert_eq!((sent.path, sent.key), (format!("/v1beta/interactions/{id}/cancel"), made_by.clone()));
    }
    let logged = gw.logged_requests(3).await;
    assert_eq!(logged[0].record.model.as_deref(), Some("deep-research-pro-preview-12-2025"));
    assert_eq!(logged[2].record.route, "interactions.cancel");
    gw.stop().await;
}

#[tokio::test]
async fn an_owner_key_out_of_rotation_is_a_409_cooling_a_429_and_mixed_owners_a_400() {
    let (fake, gw) = pool(2).await;
    let id = create(&gw, json!({"model": "gemini-2.5-flash", "input": "a"})).await.json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let name = format!("interactions/{id}");
    let ka = owner_key(&gw, &name);
    // A file on the other key, named with the interaction: two keys in one request.
    let mut file = upload(&gw, TOKEN, &[b"doc"]).await.json()["file"].clone();
    if owner_key(&gw, file["name"].as_str().unwrap()) == ka {
        file = upload(&gw, TOKEN, &[b"doc"]).await.json()["file"].clone();
    }
    let both = json!({"model": "gemini-2.5-flash", "previous_interaction_id": id,
                      "input": [{"type": "text", "text": "read"}, {"type": "document", "uri": file["uri"]}]});
    let before = fake.requests().len();
    let r = create(&gw, both).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    assert!(r.json()["error"]["message"].as_str().unwrap().contains("different API keys"));
    // Cooling for the model: waited for (keys.wait_secs), then 429 with Retry-After.
    gw.cool(ka, "gemini-2.5-flash", gw.state.now() + chrono::Duration::seconds(40));
    let keys = |k: i64| Some(json!({"keys": [k.to_string()]}).to_string());
    let turn = json!({"model": "gemini-2.5-flash", "input": "b", "previous_interaction_id": id});
    let r = create(&gw, turn.clone()).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.text());
    assert!(r.headers.contains_key("retry-after"));
    let (status, _) = gatewayd_testkit::admin(&gw.socket, Method::POST, "/v1/keys/reset", keys(ka)).await;
    assert_eq!(status, StatusCode::OK);
    // Disabled by the operator: 409, and the same once enabled again is served.
    let (status, _) = gatewayd_testkit::admin(&gw.socket, Method::POST, "/v1/keys/disable", keys(ka)).await;
    assert_eq!(status, StatusCode::OK);
    let r = create(&gw, turn.clone()).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text());
    assert!(r.json()["error"]["message"].as_str().unwrap().contains("disabled"), "{}", r.text());
    let (status, _) = gatewayd_testkit::admin(&gw.socket, Method::POST, "/v1/keys/enable", keys(ka)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(fake.requests().len(), before, "nothing sent while the owner could not serve");
    assert_eq!(create(&gw, turn.clone()).await.status, StatusCode::OK);
    let before = fake.requests().len();
    gw.invalidate(ka);
    let r = create(&gw, turn).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    let v = r.json();
    assert_eq!(v["error"]["status"], "FAILED_PRECONDITION");
    let message = v["error"]["message"].as_str().unwrap();
    assert!(message.contains(&name) && message.contains(&format!("#{ka}")), "{message}");
    assert_eq!(gw.get(&format!("/v1beta/{name}")).await.status, StatusCode::CONFLICT);
    assert_eq!(fake.requests().len(), before, "never sent with another key");
    gw.stop().await;
}

#[tokio::test]
async fn a_create_is_retried_on_another_key_and_bound_to_the_one_that_answered() {
    let keys: Vec<String> = (1..=2).map(key).collect();
    let fake = FakeGemini::new().key(&keys[0], Script::Status(503)).key(&keys[1], Script::Ok).start().await;
    let gw = Gateway::builder(&fake.base_url()).keys(&keys).start().await;
    for _ in 0..2 {
        let r = create(&gw, json!({"model": "gemini-2.5-flash", "input": "x"})).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        let name = format!("interactions/{}", r.json()["id"].as_str().unwrap());
        let good = gw.state.pool.snapshot().iter().find(|k| k.secret.expose() == keys[1]).unwrap().id;
        assert_eq!(owner_key(&gw, &name), good);
    }
    // Not stored at Google: nothing to bind.
    let r = create(&gw, json!({"model": "gemini-2.5-flash", "input": "x", "store": false})).await;
    assert_eq!(r.status, StatusCode::OK);
    let name = format!("interactions/{}", r.json()["id"].as_str().unwrap());
    assert!(gw.state.affinity.resolve(&[name], &Owner::of_token(TOKEN), gw.state.now()).is_err());
    assert_eq!(fake.interaction_count(), 2);
    gw.stop().await;
}

#[tokio::test]
async fn bad_interaction_requests_are_refused_at_the_edge() {
    let (fake, gw) = pool(2).await;
    let r = create(&gw, json!({"model": "../files/x", "input": "x"})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = gw.get("/v1beta/interactions/a%2Fb").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    let r = gw.get("/v1beta/interactions/never-made").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = gw.request(Method::PUT, CREATE, &[("x-goog-api-key", TOKEN)], Bytes::new()).await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    let r = gw.post("/v1beta/interactions/x/y", "{}").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(fake.requests().is_empty(), "nothing went upstream");
    gw.stop().await;
}

#[tokio::test]
async fn v1_spellings_go_to_v1_upstream_and_bare_v1_with_a_bearer_token_stays_openai() {
    let (fake, gw) = pool(2).await;
    let r = gw.post("/v1/interactions", json!({"model": "gemini-2.5-flash", "input": "x"}).to_string()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let id = r.json()["id"].as_str().unwrap().to_string();
    let made_by = fake.requests().pop().unwrap();
    assert_eq!(made_by.path, "/v1/interactions");
    let r = gw.get(&format!("/gemini/v1/interactions/{id}")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let sent = fake.requests().pop().unwrap();
    assert_eq!((sent.path, sent.key), (format!("/v1/interactions/{id}"), made_by.key));
    // OpenAI's `/v1/files` (which the gateway does not serve) is OpenAI's no-route 404.
    let before = fake.requests().len();
    let r = gw.request(Method::GET, "/v1/files", &[("authorization", &format!("Bearer {TOKEN}"))], Bytes::new()).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.json()["error"]["message"].as_str().unwrap().contains("no route"), "{}", r.text());
    assert!(r.json()["error"]["type"].is_string(), "OpenAI's error shape: {}", r.text());
    // With a Gemini SDK's header it is the Files API.
    assert_eq!(gw.get("/v1/files").await.json(), json!({"files": []}));
    assert_eq!(fake.requests().len(), before, "an empty merged list asks no key");
    gw.stop().await;
}
