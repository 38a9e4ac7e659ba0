//! Issue 12: the Files API through the pool, each file pinned to the key that uploaded it.

use bytes::Bytes;
use http::{Method, StatusCode};
use serde_json::json;

use gatewayd_testkit::fake::{FakeGemini, Script};
use gatewayd_testkit::{GENERATE, Gateway, Reply, TOKEN, key};

pub(crate) const OTHER: &str = "other-token-0123456789";

pub(crate) async fn pool(n: u32) -> (gatewayd_testkit::fake::FakeHandle, Gateway) {
    let keys: Vec<String> = (1..=n).map(key).collect();
    let mut fake = FakeGemini::new();
    for k in &keys {
        fake = fake.key(k, Script::Ok);
    }
    let fake = fake.start().await;
    let gw = Gateway::builder(&fake.base_url())
        .keys(&keys)
        .set("auth.tokens", &format!(r#"["{TOKEN}", "{OTHER}"]"#))
        .start()
        .await;
    (fake, gw)
}

/// The resumable upload as the google-genai SDK drives it: start, then one upload-and-finalize
/// (or several chunks). Returns the finalize reply.
pub(crate) async fn upload(gw: &Gateway, token: &str, chunks: &[&[u8]]) -> Reply {
    let total: usize = chunks.iter().map(|c| c.len()).sum();
    let start = gw
        .request(
            Method::POST,
            "/upload/v1beta/files",
            &[
                ("x-goog-api-key", token),
                ("content-type", "application/json"),
                ("x-goog-upload-protocol", "resumable"),
                ("x-goog-upload-command", "start"),
                ("x-goog-upload-header-content-length", &total.to_string()),
                ("x-goog-upload-header-content-type", "text/plain"),
            ],
            r#"{"file":{"display_name":"notes"}}"#,
        )
        .await;
    assert_eq!(start.status, StatusCode::OK, "{}", start.text());
    let url = start.headers["x-goog-upload-url"].to_str().unwrap().to_string();
    let prefix = gw.url("/upload/v1beta/files?upload_id=");
    assert!(url.starts_with(&prefix), "the upload URL points at the gateway: {url}");
    assert!(!url.contains("AIza") && !url.contains("up1"), "no key and no upstream id in {url}");
    let path = url.strip_prefix(&gw.url("")).unwrap().to_string();
    let mut offset = 0;
    let mut last = None;
    for (i, chunk) in chunks.iter().enumerate() {
        let command = if i + 1 == chunks.len() { "upload, finalize" } else { "upload" };
        let r = gw
            .request(
                Method::POST,
                &path,
                // No token, as the SDKs send them: the upload URL is the credential.
                &[("x-goog-upload-command", command), ("x-goog-upload-offset", &offset.to_string())],
                Bytes::copy_from_slice(chunk),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        offset += chunk.len();
        last = Some(r);
    }
    last.unwrap()
}

#[tokio::test]
async fn a_file_is_uploaded_in_chunks_and_used_only_through_its_owner_key() {
    let (fake, gw) = pool(3).await;
    let done = upload(&gw, TOKEN, &[b"hello ", b"files ", b"api"]).await;
    assert_eq!(done.headers["x-goog-upload-status"], "final");
    let file = done.json()["file"].clone();
    let name = file["name"].as_str().unwrap().to_string();
    assert_eq!(file["sizeBytes"], "15");
    let owner = fake.requests().iter().rev().find(|r| r.path == "/upload/v1beta/files").unwrap().key.clone();
    // Round-robin would move each of these to another key; every one goes to the owner.
    for _ in 0..4 {
        let r = gw.get(&format!("/v1beta/{name}")).await;
        assert_eq!((r.status, r.json()["name"].as_str()), (StatusCode::OK, Some(name.as_str())));
        let body = json!({"contents":[{"parts":[{"text":"sum up"},{"fileData":{"mimeType":"text/plain","fileUri":file["uri"]}}]}]});
        let r = gw.post(GENERATE, body.to_string()).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    }
    let r = gw
        .request(
            Method::GET,
            &format!("/download/v1beta/{name}:download?alt=media"),
            &[("x-goog-api-key", TOKEN)],
            Bytes::new(),
        )
        .await;
    assert_eq!((r.status, r.text().as_str()), (StatusCode::OK, "hello files api"));
    let upstream: Vec<_> = fake.requests().into_iter().filter(|r| r.path != "/upload/v1beta/files").collect();
    assert!(upstream.iter().all(|r| r.key == owner), "every request that names the file used its owner key");
    // The request log records what each pinned request was pinned to, and nothing for the rest.
    let logged = gw.logged_requests(13).await;
    let named: Vec<_> = logged.iter().filter(|r| r.record.route != "files.upload").collect();
    assert_eq!(named.len(), 9, "4 gets, 4 generations, 1 download: {logged:?}");
    assert!(named.iter().all(|r| r.record.resource.as_deref() == Some(name.as_str())), "{named:?}");
    let start = logged.iter().find(|r| r.record.route == "files.upload").unwrap();
    assert_eq!(start.record.resource, None, "the upload's start went to any key");
    // The list shows the client's own files, merged across keys.
    let second = upload(&gw, TOKEN, &[b"two"]).await.json()["file"]["name"].as_str().unwrap().to_string();
    let list = gw.get("/v1beta/files").await.json();
    let mut names: Vec<&str> = list["files"].as_array().unwrap().iter().map(|f| f["name"].as_str().unwrap()).collect();
    names.sort();
    let mut want = vec![name.as_str(), second.as_str()];
    want.sort();
    assert_eq!(names, want);
    // Every page of each key is read: with pages of one file, the list is still whole.
    fake.files_page_cap(1);
    let mut more = Vec::new();
    for text in [&b"three"[..], b"four"] {
        more.push(upload(&gw, TOKEN, &[text]).await.json()["file"]["name"].as_str().unwrap().to_string());
    }
    let list = gw.get("/v1beta/files").await.json();
    assert_eq!(list["files"].as_array().unwrap().len(), 4, "{list}");
    let paged = fake.requests().into_iter().filter(|r| r.query.as_deref().is_some_and(|q| q.contains("pageToken=")));
    assert!(paged.count() >= 1, "a key holding two files was read a page at a time");
    for name in more {
        let r =
            gw.request(Method::DELETE, &format!("/v1beta/{name}"), &[("x-goog-api-key", TOKEN)], Bytes::new()).await;
        assert_eq!(r.status, StatusCode::OK);
    }
    // Deleting it ends the binding.
    let r = gw.request(Method::DELETE, &format!("/v1beta/{name}"), &[("x-goog-api-key", TOKEN)], Bytes::new()).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(gw.get(&format!("/v1beta/{name}")).await.status, StatusCode::NOT_FOUND);
    assert_eq!(fake.file_count(), 1);
    gw.stop().await;
}

#[tokio::test]
async fn another_token_cannot_see_a_file_or_its_upload() {
    let (fake, gw) = pool(2).await;
    let name = upload(&gw, TOKEN, &[b"secret"]).await.json()["file"]["name"].as_str().unwrap().to_string();
    let before = fake.requests().len();
    let other = [("x-goog-api-key", OTHER)];
    let r = gw.request(Method::GET, &format!("/v1beta/{name}"), &other, Bytes::new()).await;
    assert_eq!((r.status, r.json()["error"]["status"].as_str()), (StatusCode::NOT_FOUND, Some("NOT_FOUND")));
    let body = json!({"contents":[{"parts":[{"fileData":{"fileUri":name}}]}]}).to_string();
    let r = gw
        .request(Method::POST, GENERATE, &[("x-goog-api-key", OTHER), ("content-type", "application/json")], body)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = gw.request(Method::DELETE, &format!("/v1beta/{name}"), &other, Bytes::new()).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let list = gw.request(Method::GET, "/v1beta/files", &other, Bytes::new()).await.json();
    assert_eq!(list, json!({"files": []}));
    // A made-up upload id is nobody's upload; without a token it is not even that far.
    let guessed = "/upload/v1beta/files?upload_id=00000000000000000000000000000000&upload_protocol=resumable";
    let chunk = [("x-goog-upload-command", "upload, finalize"), ("x-goog-upload-offset", "0")];
    let r = gw.request(Method::POST, guessed, &[("x-goog-api-key", OTHER), chunk[0], chunk[1]], "x").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(gw.request(Method::POST, guessed, &chunk, "x").await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(fake.requests().len(), before, "nothing went upstream for the stranger");
    gw.stop().await;
}

#[tokio::test]
async fn an_owner_key_out_of_rotation_is_a_409_naming_file_and_key_and_mixed_owners_a_400() {
    let (fake, gw) = pool(2).await;
    let a = upload(&gw, TOKEN, &[b"a"]).await.json()["file"]["name"].as_str().unwrap().to_string();
    let b = upload(&gw, TOKEN, &[b"b"]).await.json()["file"]["name"].as_str().unwrap().to_string();
    let owner_of = |name: &str| {
        gw.state
            .affinity
            .resolve(&[name.to_string()], &gatewayd::affinity::Owner::of_token(TOKEN), gw.state.now())
            .unwrap()
            .unwrap()
    };
    let (ka, kb) = (owner_of(&a), owner_of(&b));
    assert_ne!(ka, kb, "two uploads went round-robin to two keys");
    let both = json!({"contents":[{"parts":[{"fileData":{"fileUri":a}},{"fileData":{"fileUri":b}}]}]}).to_string();
    let r = gw.post(GENERATE, both).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.json()["error"]["message"].as_str().unwrap().contains("different API keys"));
    gw.invalidate(ka);
    let before = fake.requests().len();
    let r = gw.get(&format!("/v1beta/{a}")).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    let v = r.json();
    assert_eq!(v["error"]["status"], "FAILED_PRECONDITION");
    let message = v["error"]["message"].as_str().unwrap();
    assert!(message.contains(&a) && message.contains(&format!("#{ka}")), "{message}");
    let one = json!({"contents":[{"parts":[{"fileData":{"fileUri":a}}]}]}).to_string();
    assert_eq!(gw.post(GENERATE, one).await.status, StatusCode::CONFLICT);
    assert_eq!(fake.requests().len(), before, "never retried on another key");
    gw.stop().await;
}

#[tokio::test]
async fn bindings_survive_a_restart() {
    let (fake, gw) = pool(3).await;
    let name = upload(&gw, TOKEN, &[b"kept"]).await.json()["file"]["name"].as_str().unwrap().to_string();
    let dir = gw.stop().await;
    let keys: Vec<String> = (1..=3).map(key).collect();
    let gw = Gateway::builder(&fake.base_url())
        .keys(&keys)
        .set("auth.tokens", &format!(r#"["{TOKEN}", "{OTHER}"]"#))
        .dir(dir)
        .start()
        .await;
    for _ in 0..3 {
        assert_eq!(gw.get(&format!("/v1beta/{name}")).await.status, StatusCode::OK);
    }
    gw.stop().await;
}

#[tokio::test]
async fn operators_see_each_keys_resources_and_cannot_remove_an_owner_by_accident() {
    let (_fake, gw) = pool(2).await;
    let name = upload(&gw, TOKEN, &[b"held"]).await.json()["file"]["name"].as_str().unwrap().to_string();
    let owner = gw
        .state
        .affinity
        .resolve(std::slice::from_ref(&name), &gatewayd::affinity::Owner::of_token(TOKEN), gw.state.now())
        .unwrap()
        .unwrap();
    let (status, text) = gatewayd_testkit::admin(&gw.socket, Method::GET, "/v1/keys", None).await;
    assert_eq!(status, StatusCode::OK);
    let keys: serde_json::Value = serde_json::from_str(&text).unwrap();
    for k in keys.as_array().unwrap() {
        let want = if k["id"] == owner { 1 } else { 0 };
        assert_eq!(k["resources"], want, "{k}");
    }
    let body = |force: bool| Some(json!({"keys": [owner.to_string()], "force": force}).to_string());
    let (status, text) = gatewayd_testkit::admin(&gw.socket, Method::POST, "/v1/keys/remove", body(false)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{text}");
    assert!(text.contains("owns 1 live resource") && text.contains("--force"), "{text}");
    assert!(gw.state.pool.get(owner).is_some(), "the key stays");
    let (status, _) = gatewayd_testkit::admin(&gw.socket, Method::POST, "/v1/keys/remove", body(true)).await;
    assert_eq!(status, StatusCode::OK);
    // The file's key is gone: the request is refused, not moved to another key.
    let r = gw.get(&format!("/v1beta/{name}")).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert!(r.json()["error"]["message"].as_str().unwrap().contains("removed"));
    gw.stop().await;
}

#[tokio::test]
async fn a_cache_follows_its_files_key_and_generations_follow_the_cache() {
    let (fake, gw) = pool(3).await;
    let file = upload(&gw, TOKEN, &[b"a long document"]).await.json()["file"].clone();
    let create = json!({"model": "models/gemini-2.5-flash", "displayName": "doc",
        "contents": [{"role": "user", "parts": [{"fileData": {"mimeType": "text/plain", "fileUri": file["uri"]}}]}],
        "ttl": "600s"});
    // Created with the file's key (the fake refuses another key's file), whatever round-robin says.
    for _ in 0..2 {
        let r = gw.post("/v1beta/cachedContents", create.to_string()).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    }
    let cache =
        gw.post("/v1beta/cachedContents", create.to_string()).await.json()["name"].as_str().unwrap().to_string();
    assert!(cache.starts_with("cachedContents/"));
    let owner = fake.requests().last().unwrap().key.clone();
    for _ in 0..3 {
        let body = json!({"cachedContent": cache, "contents": [{"role": "user", "parts": [{"text": "and?"}]}]});
        let r = gw.post(GENERATE, body.to_string()).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        assert_eq!(fake.requests().last().unwrap().key, owner);
        assert_eq!(gw.get(&format!("/v1beta/{cache}")).await.json()["name"], cache.as_str());
    }
    let r = gw
        .request(Method::PATCH, &format!("/v1beta/{cache}"), &[("x-goog-api-key", TOKEN)], r#"{"ttl":"7200s"}"#)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let list = gw.get("/v1beta/cachedContents").await.json();
    assert_eq!(list["cachedContents"].as_array().unwrap().len(), 3);
    let other = [("x-goog-api-key", OTHER)];
    assert_eq!(
        gw.request(Method::GET, &format!("/v1beta/{cache}"), &other, Bytes::new()).await.status,
        StatusCode::NOT_FOUND
    );
    let r = gw.request(Method::DELETE, &format!("/v1beta/{cache}"), &[("x-goog-api-key", TOKEN)], Bytes::new()).await;
    assert_eq!(r.status, StatusCode::OK);
    let body = json!({"cachedContent": cache, "contents": [{"parts": [{"text": "x"}]}]});
    assert_eq!(gw.post(GENERATE, body.to_string()).await.status, StatusCode::NOT_FOUND, "a deleted cache is unknown");
    gw.stop().await;
}

#[tokio::test]
async fn batches_and_operations_stay_on_the_key_that_made_them() {
    let (fake, gw) = pool(3).await;
    let file = upload(&gw, TOKEN, &[b"{\"key\":\"1\",\"request\":{}}\n"]).await.json()["file"]["name"]
        .as_str()
        .unwrap()
        .to_string();
    let body = json!({"batch": {"displayName": "b", "inputConfig": {"fileName": file}}}).to_string();
    let r = gw.post("/v1beta/models/gemini-2.5-flash:batchGenerateContent", body).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let batch = r.json()["name"].as_str().unwrap().to_string();
    let owner = fake.requests().last().unwrap().key.clone();
    for _ in 0..3 {
        let r = gw.get(&format!("/v1beta/{batch}")).await;
        assert_eq!((r.status, r.json()["name"].as_str()), (StatusCode::OK, Some(batch.as_str())));
        assert_eq!(fake.requests().last().unwrap().key, owner);
    }
    let r = gw.request(Method::POST, &format!("/v1beta/{batch}:cancel"), &[("x-goog-api-key", TOKEN)], "{}").await;
    assert_eq!(r.status, StatusCode::OK);
    let list = gw.get("/v1beta/batches").await.json();
    assert_eq!(list["operations"].as_array().unwrap().len(), 1);
    let other = [("x-goog-api-key", OTHER)];
    assert_eq!(
        gw.request(Method::GET, &format!("/v1beta/{batch}"), &other, Bytes::new()).await.status,
        StatusCode::NOT_FOUND
    );
    let r = gw.request(Method::DELETE, &format!("/v1beta/{batch}"), &[("x-goog-api-key", TOKEN)], Bytes::new()).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(gw.get(&format!("/v1beta/{batch}")).await.status, StatusCode::NOT_FOUND);
    // A long-running operation (Veo's predictLongRunning) is polled on its key, on both paths.
    let r = gw
        .post("/v1beta/models/veo-3.0-generate-001:predictLongRunning", r#"{"instances":[{"prompt":"a cat"}]}"#)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let op = r.json()["name"].as_str().unwrap().to_string();
    assert!(op.starts_with("models/veo-3.0-generate-001/operations/"), "{op}");
    let owner = fake.requests().last().unwrap().key.clone();
    for _ in 0..3 {
        let r = gw.get(&format!("/v1beta/{op}")).await;
        assert_eq!((r.status, r.json()["done"].as_bool()), (StatusCode::OK, Some(true)));
        assert_eq!(fake.requests().last().unwrap().key, owner);
    }
    assert_eq!(
        gw.request(Method::GET, &format!("/v1beta/{op}"), &other, Bytes::new()).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(gw.get("/v1beta/operations/never-made").await.status, StatusCode::NOT_FOUND);
    // The video the finished operation made is a file of the operation's key, for its download.
    let video = format!("files/video{}", op.rsplit('/').next().unwrap());
    let me = gatewayd::affinity::Owner::of_token(TOKEN);
    let op_key = gw.state.affinity.resolve(std::slice::from_ref(&op), &me, gw.state.now()).unwrap();
    assert_eq!(gw.state.affinity.resolve(std::slice::from_ref(&video), &me, gw.state.now()).unwrap(), op_key);
    // Downloaded on both spellings (Veo's URI is `/v1beta/files/{id}:download?alt=media`), each
    // time on the key that made it, streamed back untouched.
    for path in [format!("/v1beta/{video}:download?alt=media"), format!("/download/v1beta/{video}:download?alt=media")]
    {
        let r = gw.get(&path).await;
        assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.text());
        assert!(r.body.ends_with(b"fake video"), "{path}");
        assert_eq!(fake.requests().last().unwrap().key, owner);
    }
    gw.stop().await;
}

#[tokio::test]
async fn an_upload_chunk_larger_than_any_request_body_is_relayed_as_it_arrives() {
    let (fake, gw) = pool(2).await;
    // 40 MB in one chunk, over server.max_body_bytes (32 MiB), which bounds every other body.
    let big = vec![b'z'; 40 << 20];
    let done = upload(&gw, TOKEN, &[&big]).await;
    assert_eq!(done.json()["file"]["sizeBytes"], (40u64 << 20).to_string());
    assert_eq!(fake.file_count(), 1);
    let r = gw.post(GENERATE, vec![b' '; 33 << 20]).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "other bodies keep their bound");
    gw.stop().await;
}

#[tokio::test]
async fn a_cooling_owner_key_is_waited_for_then_429_never_another_key() {
    let (fake, gw) = pool(3).await;
    let file = upload(&gw, TOKEN, &[b"doc"]).await.json()["file"].clone();
    let name = file["name"].as_str().unwrap().to_string();
    let me = gatewayd::affinity::Owner::of_token(TOKEN);
    let owner = gw.state.affinity.resolve(std::slice::from_ref(&name), &me, gw.state.now()).unwrap().unwrap();
    gw.cool(owner, "gemini-2.5-flash", gw.state.now() + chrono::Duration::seconds(40));
    let before = fake.requests().len();
    let body = json!({"contents":[{"parts":[{"fileData":{"fileUri":file["uri"]}}]}]}).to_string();
    let r = gw.post(GENERATE, body.clone()).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.text());
    let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=40).contains(&retry), "{retry}");
    assert_eq!(fake.requests().len(), before, "the other keys were free, and not used");
    // Another model is not cooling on that key: the same file serves there.
    let other_model = GENERATE.replace("gemini-2.5-flash", "gemini-2.5-pro");
    assert_eq!(gw.post(&other_model, body).await.status, StatusCode::OK);
    gw.stop().await;
}

#[tokio::test]
async fn imagen_predict_passes_through_the_pool() {
    let (fake, gw) = pool(2).await;
    let body = r#"{"instances":[{"prompt":"a cat"}],"parameters":{"sampleCount":2}}"#;
    let r = gw.post("/v1beta/models/imagen-4.0-generate-001:predict", body).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["predictions"].as_array().unwrap().len(), 2);
    let sent = fake.requests().pop().unwrap();
    assert_eq!(
        (sent.path.as_str(), &sent.body[..]),
        ("/v1beta/models/imagen-4.0-generate-001:predict", body.as_bytes())
    );
    gw.stop().await;
}

#[tokio::test]
async fn the_chat_route_takes_googles_extension_and_follows_its_cache() {
    let (fake, gw) = pool(3).await;
    let create = json!({"model": "models/gemini-2.5-flash", "contents": [{"role": "user", "parts": [{"text": "a long document"}]}], "ttl": "600s"});
    let cache =
        gw.post("/v1beta/cachedContents", create.to_string()).await.json()["name"].as_str().unwrap().to_string();
    let owner = fake.requests().last().unwrap().key.clone();
    let bearer = format!("Bearer {TOKEN}");
    for wrap in [false, true] {
        let google = json!({"cached_content": cache, "thinking_config": {"thinking_budget": 512, "include_thoughts": true},
                            "safety_settings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}]});
        let mut body = json!({"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": "Summarise it"}]});
        if wrap {
            body["extra_body"] = json!({"google": google});
        } else {
            body["google"] = google;
        }
        for _ in 0..2 {
            let r = gw
                .request(
                    Method::POST,
                    "/v1/chat/completions",
                    &[("authorization", &bearer), ("content-type", "application/json")],
                    body.to_string(),
                )
                .await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.text());
            let sent = fake.requests().pop().unwrap();
            assert_eq!(sent.key, owner, "the cache's key serves it, whatever round-robin says");
            let sent: serde_json::Value = serde_json::from_slice(&sent.body).unwrap();
            assert_eq!(sent["cachedContent"], cache.as_str());
            assert_eq!(
                sent["generationConfig"]["thinkingConfig"],
                json!({"thinkingBudget": 512, "includeThoughts": true})
            );
            assert_eq!(
                sent["safetySettings"][0],
                json!({"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"})
            );
        }
    }
    let bad = json!({"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": "x"}], "google": {"cached_content": "nope"}});
    let r = gw.request(Method::POST, "/v1/chat/completions", &[("authorization", &bearer)], bad.to_string()).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.json()["error"]["message"].as_str().unwrap().contains("google.cached_content"));
    gw.stop().await;
}
