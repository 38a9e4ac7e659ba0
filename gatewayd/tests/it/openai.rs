//! Issue 4: the OpenAI-compatible routes through the real daemon, with the exact upstream body
//! asserted on FakeGemini.

use base64::prelude::{BASE64_STANDARD, Engine as _};
use bytes::Bytes;
use http::{Method, StatusCode};
use serde_json::{Value, json};

use gatewayd_testkit::fake::{FakeGemini, Script, final_chunk, text_chunk};
use gatewayd_testkit::{Gateway, TOKEN, key};

const BEARER: &str = "Bearer test-token-0123456789";

async fn post(gw: &Gateway, path: &str, body: &Value) -> gatewayd_testkit::Reply {
    gw.request(Method::POST, path, &[("authorization", BEARER), ("content-type", "application/json")], body.to_string())
        .await
}

/// SSE `data:` payloads of a response body.
fn events(text: &str) -> Vec<String> {
    text.split("\n\n").filter_map(|e| e.strip_prefix("data: ")).map(String::from).collect()
}

#[tokio::test]
async fn chat_translates_the_request_exactly_and_the_answer_back() {
    let fake = FakeGemini::new().key(&key(1), Script::Ok).start().await;
    let gw = Gateway::builder(&fake.base_url()).keys(&[key(1)]).start().await;
    let r = post(
        &gw,
        "/v1/chat/completions",
        &json!({
            "model": "gemini-2.5-flash",
            "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello"}],
            "temperature": 0.3, "max_tokens": 50, "stop": ["\n\n"], "user": "ignored"
        }),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let seen = fake.requests();
    assert_eq!(seen[0].path, "/v1beta/models/gemini-2.5-flash:generateContent");
    assert_eq!(seen[0].key.as_deref(), Some(key(1).as_str()));
    let upstream: Value = serde_json::from_slice(&seen[0].body).unwrap();
    assert_eq!(
        upstream,
        json!({
            "contents": [{"role": "user", "parts": [{"text": "Hello"}]}],
            "systemInstruction": {"parts": [{"text": "Be brief."}]},
            "generationConfig": {"temperature": 0.3, "maxOutputTokens": 50, "stopSequences": ["\n\n"]}
        })
    );
    let v = r.json();
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["model"], "gemini-2.5-flash");
    assert_eq!(v["choices"][0]["message"], json!({"role": "assistant", "content": "Hello from the fake."}));
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    assert_eq!(v["usage"]["total_tokens"], 12);
    let rows = gw.logged_requests(1).await;
    assert_eq!(
        (rows[0].record.route.as_str(), rows[0].record.prompt_tokens, rows[0].record.completion_tokens),
        ("chat.completions", Some(7), Some(5))
    );
    gw.stop().await;
}

#[tokio::test]
async fn chat_streams_openai_chunks_as_events_arrive() {
    let events_in = vec![text_chunk("Hel"), text_chunk("lo"), final_chunk("!", 7, 3)];
    let fake = FakeGemini::new()
        .key(&key(1), Script::Sse { events: events_in, gap: std::time::Duration::from_millis(10) })
        .start()
        .await;
    let gw = Gateway::builder(&fake.base_url()).keys(&[key(1)]).start().await;
    let r = post(
        &gw,
        "/hf/v1/chat/completions",
        &json!({"model": "gemini-2.5-flash", "stream": true,
        "stream_options": {"include_usage": true}, "messages": [{"role": "user", "content": "Hi"}]}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.headers["content-type"], "text/event-stream");
    let seen = fake.requests();
    assert_eq!(seen[0].path, "/v1beta/models/gemini-2.5-flash:streamGenerateContent");
    assert_eq!(seen[0].query.as_deref(), Some("alt=sse"));
    let ev = events(&r.text());
    assert_eq!(ev.last().map(String::as_str), Some("[DONE]"));
    let chunks: Vec<Value> = ev[..ev.len() - 1].iter().map(|e| serde_json::from_str(e).unwrap()).collect();
    assert_eq!(chunks[0]["choices"][0]["delta"], json!({"role": "assistant", "content": "Hel"}));
    assert_eq!(chunks[1]["choices"][0]["delta"], json!({"content": "lo"}));
    assert_eq!(chunks[2]["choices"][0]["delta"], json!({"content": "!"}));
    assert_eq!(chunks[2]["choices"][0]["finish_reason"], "stop");
    assert_eq!(chunks[3]["choices"], json!([]));
    assert_eq!(chunks[3]["usage"]["prompt_tokens"], 7);
    assert!(chunks.iter().all(|c| c["object"] == "chat.completion.chunk" && c["model"] == "gemini-2.5-flash"));
    let rows = gw.logged_requests(1).await;
    assert!(rows[0].record.stream);
    assert_eq!((rows[0].record.prompt_tokens, rows[0].record.completion_tokens), (Some(7), Some(3)));
    gw.stop().await;
}

#[tokio::test]
async fn a_stream_failing_after_the_first_byte_ends_with_an_error_event() {
    let fake = FakeGemini::new()
        .key(&key(1), Script::SseBreak { events: vec![text_chunk("partial ")] })
        .key(&key(2), Script::Ok)
        .start()
        .await;
    let gw = Gateway::builder(&fake.base_url()).keys(&[key(1), key(2)]).start().await;
    let r = post(
        &gw,
        "/v1/chat/completions",
        &json!({"model": "gemini-2.5-flash", "stream": true, "messages": [{"role": "user", "content": "Hi"}]}),
    )
    .await;
    let ev = events(&r.text());
    assert_eq!(ev.iter().filter(|e| e.contains("partial")).count(), 1, "no replay of text already sent: {ev:?}");
    let last: Value = serde_json::from_str(ev.last().unwrap()).unwrap();
    assert!(last["error"]["message"].as_str().unwrap().contains("upstream"), "{last}");
    assert!(!ev.contains(&"[DONE]".to_string()));
    assert_eq!(fake.hits(&key(2)), 0, "no retry once bytes were sent");
    let rows = gw.logged_requests(1).await;
    assert!(rows[0].record.error.as_deref().unwrap().contains("broke"));
    // Blamed by the same rules as any transient failure: no other key served the model yet, so
    // the model is blamed, not key 1; the error log keeps the cut.
    assert_eq!(gw.health(&key(1)).failures(), 0);
    let errors = gw.logged_errors(1).await;
    assert!(errors[0].record.error.contains("broke") && errors[0].record.error.contains("charged to: model"));
    gw.stop().await;
}

#[tokio::test]
async fn an_empty_stream_is_retried_on_another_key() {
    let fake = FakeGemini::new()
        .key(&key(1), Script::Sse { events: vec![], gap: std::time::Duration::ZERO })
        .key(&key(2), Script::Ok)
        .start()
        .await;
    let gw = Gateway::builder(&fake.base_url()).keys(&[key(1), key(2)]).start().await;
    let r = gw.post("/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse", gatewayd_testkit::HELLO).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(events(&r.text().replace("\r\n", "\n")).len(), 3);
    let rows = gw.logged_requests(1).await;
    assert_eq!(rows[0].record.trail(), "#1 200 empty → #2 200");
    gw.stop().await;
}

#[tokio::test]
async fn tool_round_trip_carries_the_thought_signature_upstream() {
    let fake = FakeGemini::new().key(&key(1), Script::Ok).start().await;
    let gw = Gateway::builder(&fake.base_url()).keys(&[key(1)]).start().await;
    let tools = json!([{"type": "function", "function": {"name": "get_weather", "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"], "additionalProperties": false}}}]);
    let mut messages = vec![json!({"role": "user", "content": "Weather in Paris?"})];
    let r = post(
        &gw,
        "/v1/chat/completions",
        &json!({"model": "gemini-3-pro", "messages": messages, "tools": tools, "tool_choice": "auto"}),
    )
    .await;
    let v = r.json();
    assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
    let call = v["choices"][0]["message"]["tool_calls"][0].clone();
    assert_eq!(call["function"], json!({"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}));
    let first: Value = serde_json::from_slice(&fake.requests()[0].body).unwrap();
    assert_eq!(first["toolConfig"], json!({"functionCallingConfig": {"mode": "AUTO"}}));
    assert_eq!(
        first["tools"][0]["functionDeclarations"][0]["parameters"],
        json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]})
    );
    messages.push(v["choices"][0]["message"].clone());
    messages.push(json!({"role": "tool", "tool_call_id": call["id"], "content": "{\"temp_c\": 21}"}));
    let r = post(&gw, "/v1/chat/completions", &json!({"model": "gemini-3-pro", "messages": messages, "tools": tools}))
        .await;
    assert_eq!(r.json()["choices"][0]["message"]["content"], "It is 21 degrees in Paris.");
    let second: Value = serde_json::from_slice(&fake.requests()[1].body).unwrap();
    assert_eq!(
        second["contents"][1],
        json!({"role": "model", "parts": [
        {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}, "thoughtSignature": "ZmFrZS1zaWduYXR1cmU="}]})
    );
    assert_eq!(
        second["contents"][2],
        json!({"role": "user", "parts": [{"functionResponse": {"name": "get_weather", "response": {"temp_c": 21}}}]})
    );
    gw.stop().await;
}

#[tokio::test]
async fn images_are_fetched_and_inlined() {
    let fake = FakeGemini::new().images().key(&key(1), Script::Ok).start().await;
    // The fake serves its images on 127.0.0.1: only `any` may fetch from there.
    let gw = Gateway::builder(&fake.base_url()).keys(&[key(1)]).set("models.image_fetch", "\"any\"").start().await;
    for url in [format!("{}/images/cat.png", fake.base_url()), format!("{}/images/moved.png", fake.base_url())] {
        fake.clear();
        let r = post(
            &gw,
            "/v1/chat/completions",
            &json!({"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": [
            {"type": "text", "text": "What is this?"}, {"type": "image_url", "image_url": {"url": url}}]}]}),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        let generate = fake.requests().into_iter().find(|r| r.method == "POST").unwrap();
        let body: Value = serde_json::from_slice(&generate.body).unwrap();
        let inline = &body["contents"][0]["parts"][1]["inlineData"];
        assert_eq!(inline["mimeType"], "image/png");
        assert_eq!(inline["data"].as_str().unwrap(), BASE64_STANDARD.encode(gatewayd_testkit::fake::PNG));
    }
    let r = post(
        &gw,
        "/v1/chat/completions",
        &json!({"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": format!("{}/images/missing.png", fake.base_url())}}]}]}),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.json()["error"]["message"].as_str().unwrap().contains("image_url"));
    gw.stop().await;
}

#[tokio::test]
async fn errors_in_openai_shape_with_their_status() {
    let bad = json!({"error": {"code": 400, "message": "Invalid value at 'contents'", "status": "INVALID_ARGUMENT"}});
    let fake = FakeGemini::new().key(&key(1), Script::Json(400, bad)).start().await;
    let gw = Gateway::builder(&fake.base_url())
        .keys(&[key(1)])
        .set("models.hidden", "[\"secret-model\"]")
        .set("server.max_body_bytes", "4096")
        .start()
        .await;
    let chat = |model: &str| json!({"model": model, "messages": [{"role": "user", "content": "x"}]});
    let shape = |r: &gatewayd_testkit::Reply| {
        let v = r.json();
        assert!(
            v["error"]["message"].is_string() && v["error"]["type"].is_string() && v["error"].get("code").is_some(),
            "{v}"
        );
        v
    };
    let r = gw
        .request(Method::POST, "/v1/chat/completions", &[("authorization", "Bearer nope")], chat("m").to_string())
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(shape(&r)["error"]["code"], "invalid_api_key");
    let r = post(
        &gw,
        "/v1/chat/completions",
        &json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "temperature": "hot"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(shape(&r)["error"]["message"].as_str().unwrap().starts_with("temperature:"));
    let r = gw.request(Method::POST, "/v1/chat/completions", &[("authorization", BEARER)], "{not json").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    shape(&r);
    let r = post(&gw, "/v1/chat/completions", &chat("secret-model")).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    shape(&r);
    let r = post(&gw, "/v1/chat/completions", &chat("gemini-2.5-flash")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "upstream 400 kept");
    assert_eq!(shape(&r)["error"]["message"], "Invalid value at 'contents'");
    let r = gw.request(Method::POST, "/v1/chat/completions", &[("authorization", BEARER)], vec![b' '; 8192]).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    shape(&r);
    fake.set(&key(1), Script::quota("GenerateRequestsPerMinutePerProjectPerModel-FreeTier", Some("30s")));
    let r = post(&gw, "/v1/chat/completions", &chat("gemini-2.5-flash")).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(r.headers.get("retry-after").is_some());
    assert_eq!(shape(&r)["error"]["type"], "rate_limit_error");
    let r = post(&gw, "/v1/nothing", &json!({})).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    shape(&r);
    gw.stop().await;
    let empty = Gateway::builder(&fake.base_url()).start().await;
    let r = post(&empty, "/v1/chat/completions", &chat("gemini-2.5-flash")).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    shape(&r);
    empty.stop().await;
}

#[tokio::test]
async fn models_in_openai_format_and_embeddings() {
    let fake = FakeGemini::new().key(&key(1), Script::Ok).start().await;
    let gw = Gateway::builder(&fake.base_url())
        .keys(&[key(1)])
        .set("models.hidden", "[\"gemini-2.5-flash-lite\"]")
        .start()
        .await;
    let r = gw.request(Method::GET, "/v1/models", &[("authorization", BEARER)], Bytes::new()).await;
    let v = r.json();
    assert_eq!(v["object"], "list");
    let ids: Vec<&str> = v["data"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        vec![
            "gemini-2.5-flash",
            "gemini-2.5-pro",
            "text-embedding-004",
            "gemini-2.5-flash-search",
            "gemini-2.5-pro-search"
        ]
    );
    let r =
        gw.request(Method::GET, "/v1/models/gemini-2.5-pro-search", &[("authorization", BEARER)], Bytes::new()).await;
    assert_eq!(r.json()["id"], "gemini-2.5-pro-search");
    let r =
        gw.request(Method::GET, "/v1/models/gemini-2.5-flash-lite", &[("authorization", BEARER)], Bytes::new()).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let lists = fake.requests().iter().filter(|r| r.path == "/v1beta/models").count();
    assert_eq!(lists, 1, "the model list is cached");
    // A -search model adds the googleSearch tool.
    post(
        &gw,
        "/v1/chat/completions",
        &json!({"model": "gemini-2.5-flash-search", "messages": [{"role": "user", "content": "news"}]}),
    )
    .await;
    let generate = fake.requests().into_iter().rfind(|r| r.method == "POST").unwrap();
    assert_eq!(generate.path, "/v1beta/models/gemini-2.5-flash:generateContent");
    assert_eq!(serde_json::from_slice::<Value>(&generate.body).unwrap()["tools"], json!([{"googleSearch": {}}]));
    // Embeddings, float and base64.
    let r = post(&gw, "/v1/embeddings", &json!({"model": "text-embedding-004", "input": ["a", "b"], "dimensions": 3}))
        .await;
    let v = r.json();
    assert_eq!(v["object"], "list");
    assert_eq!(v["data"][1], json!({"object": "embedding", "index": 1, "embedding": [1.0, 0.5, 0.25]}));
    assert_eq!(v["usage"]["prompt_tokens"], 2);
    let generate = fake.requests().into_iter().rfind(|r| r.method == "POST").unwrap();
    assert_eq!(generate.path, "/v1beta/models/text-embedding-004:batchEmbedContents");
    assert_eq!(
        serde_json::from_slice::<Value>(&generate.body).unwrap()["requests"][0],
        json!({"model": "models/text-embedding-004", "content": {"parts": [{"text": "a"}]}, "outputDimensionality": 3})
    );
    let r =
        post(&gw, "/v1/embeddings", &json!({"model": "text-embedding-004", "input": "a", "encoding_format": "base64"}))
            .await;
    let expected: Vec<u8> = [0.0f32, 0.5, 0.25].iter().flat_map(|f| f.to_le_bytes()).collect();
    assert_eq!(r.json()["data"][0]["embedding"], json!(BASE64_STANDARD.encode(&expected)));
    gw.stop().await;
}

#[tokio::test]
async fn openai_passthrough_uses_a_pooled_key_as_bearer() {
    let fake = FakeGemini::new().key(&key(1), Script::Ok).start().await;
    let gw = Gateway::builder(&fake.base_url()).keys(&[key(1)]).start().await;
    let body = r#"{"model":"gemini-2.5-flash","messages":[{"role":"user","content":"hi"}],"extra":{"kept":true}}"#;
    let r = gw
        .request(
            Method::POST,
            &format!("/openai/v1/chat/completions?key={TOKEN}"),
            &[("content-type", "application/json")],
            body,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["choices"][0]["message"]["content"], "from google's openai surface");
    let seen = &fake.requests()[0];
    assert_eq!(seen.path, "/v1beta/openai/chat/completions");
    assert_eq!(seen.query, None);
    assert_eq!(seen.body, Bytes::from(body), "untouched");
    assert_eq!(seen.headers["authorization"], format!("Bearer {}", key(1)).as_str());
    assert!(seen.headers.get("x-goog-api-key").is_none());
    let r =
        post(&gw, "/openai/v1/chat/completions", &json!({"model": "gemini-2.5-flash", "stream": true, "messages": []}))
            .await;
    assert!(r.text().ends_with("data: [DONE]\n\n"), "{}", r.text());
    let r = gw.request(Method::GET, "/openai/v1/models", &[("authorization", BEARER)], Bytes::new()).await;
    assert_eq!(r.json()["object"], "list");
    let r = gw.request(Method::GET, "/openai/v1/nowhere", &[("authorization", BEARER)], Bytes::new()).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.json().is_array(), "Google's own error body passes through");
    let rows = gw.logged_requests(4).await;
    assert!(rows.iter().any(|r| r.record.route == "openai/chat/completions" && r.record.prompt_tokens == Some(3)));
    gw.stop().await;
}

#[tokio::test]
async fn the_same_pool_retries_and_logs_on_openai_routes() {
    let quota = Script::quota("GenerateRequestsPerMinutePerProjectPerModel-FreeTier", Some("30s"));
    let fake = FakeGemini::new().key_seq(&key(1), vec![quota]).key(&key(2), Script::Ok).start().await;
    let gw = Gateway::builder(&fake.base_url()).keys(&[key(1), key(2)]).start().await;
    let r = post(
        &gw,
        "/v1/chat/completions",
        &json!({"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": "x"}]}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let rows = gw.logged_requests(1).await;
    assert_eq!(rows[0].record.trail(), "#1 429 rpm → #2 200");
    gw.stop().await;
}

#[tokio::test]
async fn slow_images_are_refused_in_bounded_time() {
    let fake = FakeGemini::new().images().key(&key(1), Script::Ok).start().await;
    let gw = Gateway::builder(&fake.base_url())
        .keys(&[key(1)])
        .set("upstream.timeout_secs", "1")
        .set("models.image_fetch", "\"any\"")
        .start()
        .await;
    let started = std::time::Instant::now();
    let r = post(
        &gw,
        "/v1/chat/completions",
        &json!({"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": format!("{}/images/slow.png", fake.base_url())}}]}]}),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.json()["error"]["message"].as_str().unwrap().contains("could not be fetched"), "{}", r.text());
    assert!(started.elapsed() < std::time::Duration::from_secs(20), "bounded: {:?}", started.elapsed());
    gw.stop().await;
}

#[tokio::test]
async fn oversized_images_are_refused() {
    let fake = FakeGemini::new().images().key(&key(1), Script::Ok).start().await;
    let gw = Gateway::builder(&fake.base_url())
        .keys(&[key(1)])
        .set("models.image_fetch", "\"any\"")
        .set("server.max_body_bytes", "1048576")
        .start()
        .await;
    let url = format!("{}/images/huge.png", fake.base_url());
    let r = post(
        &gw,
        "/v1/chat/completions",
        &json!({"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": url}}]}]}),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.json()["error"]["message"].as_str().unwrap().contains("at most 1048576 bytes"), "{}", r.text());
    assert!(fake.requests().is_empty(), "nothing went upstream");
    gw.stop().await;
}

/// Every truncation and many type confusions of valid bodies: always a 4xx in OpenAI's shape,
/// never a panic or a 5xx, and the gateway keeps serving.
#[tokio::test]
async fn malformed_bodies_are_refused_before_anything_goes_upstream() {
    let fake = FakeGemini::new().key(&key(1), Script::Ok).start().await;
    let gw = Gateway::builder(&fake.base_url()).keys(&[key(1)]).start().await;
    let chat = json!({"model": "gemini-2.5-flash", "stream": false, "temperature": 0.5, "n": 1, "stop": ["x"],
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {"a": {"type": "string"}}}}}],
        "tool_choice": {"type": "function", "function": {"name": "f"}}, "response_format": {"type": "json_object"},
        "messages": [{"role": "system", "content": "s"}, {"role": "user", "content": [{"type": "text", "text": "t"}]},
                     {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
                     {"role": "tool", "tool_call_id": "c1", "content": "ok"}]});
    let embed = json!({"model": "text-embedding-004", "input": ["a"], "dimensions": 3, "encoding_format": "float"});
    let messages = json!({"model": "gemini-2.5-flash", "max_tokens": 5, "system": "s", "tools": [{"name": "f",
        "input_schema": {"type": "object", "properties": {"a": {"type": "string"}}}}],
        "messages": [{"role": "user", "content": [{"type": "text", "text": "t"}]},
                     {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}}]},
                     {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "ok"}]}]});
    let responses = json!({"model": "gemini-2.5-flash", "store": false, "instructions": "i",
        "tools": [{"type": "function", "name": "f", "parameters": {"type": "object", "properties": {"a": {"type": "string"}}}}],
        "input": [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "t"}]},
                  {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
                  {"type": "function_call_output", "call_id": "c1", "output": "ok"}]});
    let images = json!({"model": "imagen-4.0-generate-001", "prompt": "a cat", "n": 1, "size": "1024x1024"});
    let speech =
        json!({"model": "gemini-2.5-flash-preview-tts", "input": "hi", "voice": "alloy", "response_format": "wav"});
    let mut bodies: Vec<(String, String)> = Vec::new();
    for (path, valid) in [
        ("/v1/chat/completions", &chat),
        ("/v1/embeddings", &embed),
        ("/v1/messages", &messages),
        ("/v1/responses", &responses),
        ("/v1/images/generations", &images),
        ("/v1/audio/speech", &speech),
    ] {
        let text = valid.to_string();
        for cut in (0..text.len()).step_by(7) {
            bodies.push((path.to_string(), text[..cut].to_string()));
        }
        // Replace every scalar and container, one at a time, with values of other types.
        let mut pointers = Vec::new();
        collect_pointers(valid, String::new(), &mut pointers);
        for p in pointers {
            for replacement in [json!(null), json!(7), json!("s"), json!([]), json!({}), json!(-1.5), json!(true)] {
                let mut v = valid.clone();
                *v.pointer_mut(&p).unwrap() = replacement;
                bodies.push((path.to_string(), v.to_string()));
            }
        }
    }
    assert!(bodies.len() > 900, "{}", bodies.len());
    for (path, body) in bodies {
        let before = fake.requests().len();
        let r = gw.request(Method::POST, &path, &[("authorization", BEARER)], body.clone()).await;
        assert!(r.status.as_u16() < 500, "{path} {body}: {} {}", r.status, r.text());
        if !r.status.is_success() {
            let v = r.json();
            assert!(v["error"]["message"].is_string(), "{path} {body}: {v}");
            if path == "/v1/messages" {
                assert_eq!(v["type"], "error", "Anthropic's shape: {v}");
            }
            // (Images and speech under another model name are well-formed requests that Google
            // itself refuses, the model lacking the modality: those do go upstream.)
            let googles = matches!(path.as_str(), "/v1/images/generations" | "/v1/audio/speech")
                && fake.requests().len() == before + 1;
            assert!(googles || fake.requests().len() == before, "{path} {body}: refused, yet something went upstream");
        }
    }
    assert_eq!(gw.health(&key(1)).failures(), 0, "no malformed body is charged to a key");
    assert_eq!(post(&gw, "/v1/chat/completions", &chat).await.status, StatusCode::OK, "still serving");
    gw.stop().await;
}

fn collect_pointers(v: &Value, at: String, out: &mut Vec<String>) {
    match v {
        Value::Object(o) => {
            for (k, child) in o {
                let p = format!("{at}/{k}");
                out.push(p.clone());
                collect_pointers(child, p, out);
            }
        }
        Value::Array(a) => {
            for (i, child) in a.iter().enumerate() {
                let p = format!("{at}/{i}");
                out.push(p.clone());
                collect_pointers(child, p, out);
            }
        }
        _ => {}
    }
}

/// `models.image_fetch = "public"` (the default) never connects to loopback or internal
/// addresses, by IP or by name, and says only that the address is not allowed; `off` fetches
/// nothing.
#[tokio::test]
async fn image_urls_to_internal_addresses_are_refused_unfetched() {
    let fake = FakeGemini::new().images().key(&key(1), Script::Ok).start().await;
    let gw = Gateway::builder(&fake.base_url()).keys(&[key(1)]).start().await;
    let port = fake.addr.port();
    for url in [
        format!("http://127.0.0.1:{port}/images/cat.png"),
        format!("http://localhost:{port}/images/cat.png"),
        format!("http://[::1]:{port}/images/cat.png"),
        "http://169.254.169.254/latest/meta-data/".to_string(),
        format!("http://10.0.0.1:{port}/images/cat.png"),
    ] {
        let body = json!({"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": url}}]}]});
        let r = post(&gw, "/v1/chat/completions", &body).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{url}");
        let msg = r.json()["error"]["message"].as_str().unwrap().to_string();
        assert!(msg.contains("not allowed"), "{url}: {msg}");
    }
    assert_eq!(fake.image_hits(), 0, "nothing was fetched from the internal server");
    assert!(fake.requests().is_empty(), "nothing went upstream either");
    gw.stop().await;
    let off = Gateway::builder(&fake.base_url()).keys(&[key(1)]).set("models.image_fetch", "\"off\"").start().await;
    let body = json!({"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": format!("{}/images/cat.png", fake.base_url())}}]}]});
    let r = post(&off, "/v1/chat/completions", &body).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.json()["error"]["message"].as_str().unwrap().contains("off"), "{}", r.text());
    assert_eq!(fake.image_hits(), 0);
    off.stop().await;
}
