//! Issue 14: the OpenAI Responses API through the pool: stored and stateless tool loops on a
//! Gemini 3 model, the stream's event sequence, and stored responses per client token.

use std::sync::Arc;

use bytes::Bytes;
use http::{Method, StatusCode};
use serde_json::{Value, json};

use gatewayd::clock::Clock;
use gatewayd_testkit::fake::{FakeGemini, Script};
use gatewayd_testkit::{Gateway, Reply, TOKEN, key};

const G3: &str = "gemini-3-pro-preview";
const OTHER: &str = "other-token-0123456789";

async fn start(clock: Option<Arc<Clock>>) -> (gatewayd_testkit::fake::FakeHandle, Gateway) {
    let fake = FakeGemini::new().key(&key(1), Script::Ok).key(&key(2), Script::Ok).start().await;
    let mut b = Gateway::builder(&fake.base_url())
        .keys(&[key(1), key(2)])
        .set("auth.tokens", &format!(r#"["{TOKEN}", "{OTHER}"]"#))
        .set("models.aliases", &format!(r#"{{"gpt-5*" = "{G3}"}}"#));
    if let Some(c) = clock {
        b = b.clock(c);
    }
    (fake, b.start().await)
}

async fn call(gw: &Gateway, method: Method, path: &str, token: &str, body: Option<&Value>) -> Reply {
    let bearer = format!("Bearer {token}");
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    gw.request(method, path, &[("authorization", &bearer), ("content-type", "application/json")], Bytes::from(body))
        .await
}

fn shell_tool() -> Value {
    json!({"type": "function", "name": "get_weather", "description": "Weather", "strict": true,
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"], "additionalProperties": false}})
}

#[tokio::test]
async fn a_stored_response_is_the_clients_own_until_deleted_or_expired() {
    let clock = Arc::new(Clock::default());
    let (_fake, gw) = start(Some(clock.clone())).await;
    let r =
        call(&gw, Method::POST, "/v1/responses", TOKEN, Some(&json!({"model": "gemini-2.5-flash", "input": "Hello"})))
            .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let v = r.json();
    let id = v["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("resp_"));
    assert_eq!((v["object"].as_str(), v["status"].as_str()), (Some("response"), Some("completed")));
    assert_eq!(v["output"][0]["content"][0]["text"], "Hello from the fake.");
    assert_eq!(v["usage"]["input_tokens"], 7);
    let path = format!("/v1/responses/{id}");
    assert_eq!(call(&gw, Method::GET, &path, TOKEN, None).await.json(), v);
    assert_eq!(call(&gw, Method::GET, &path, OTHER, None).await.status, StatusCode::NOT_FOUND);
    let other_turn = json!({"model": "gemini-2.5-flash", "input": "x", "previous_response_id": id});
    assert_eq!(call(&gw, Method::POST, "/v1/responses", OTHER, Some(&other_turn)).await.status, StatusCode::NOT_FOUND);
    assert_eq!(call(&gw, Method::DELETE, &path, OTHER, None).await.status, StatusCode::NOT_FOUND);
    let r = call(&gw, Method::DELETE, &path, TOKEN, None).await;
    assert_eq!(r.json(), json!({"id": id, "object": "response", "deleted": true}));
    assert_eq!(call(&gw, Method::GET, &path, TOKEN, None).await.status, StatusCode::NOT_FOUND);
    // Not stored: nothing to get. Stored: gone after responses.store_days.
    let r = call(
        &gw,
        Method::POST,
        "/v1/responses",
        TOKEN,
        Some(&json!({"model": "gemini-2.5-flash", "input": "x", "store": false})),
    )
    .await;
    let unstored = r.json()["id"].as_str().unwrap().to_string();
    assert_eq!(
        call(&gw, Method::GET, &format!("/v1/responses/{unstored}"), TOKEN, None).await.status,
        StatusCode::NOT_FOUND
    );
    let r = call(&gw, Method::POST, "/v1/responses", TOKEN, Some(&json!({"model": "gemini-2.5-flash", "input": "x"})))
        .await;
    let kept = format!("/v1/responses/{}", r.json()["id"].as_str().unwrap());
    clock.advance(chrono::Duration::days(29));
    assert_eq!(call(&gw, Method::GET, &kept, TOKEN, None).await.status, StatusCode::OK);
    clock.advance(chrono::Duration::days(2));
    assert_eq!(call(&gw, Method::GET, &kept, TOKEN, None).await.status, StatusCode::NOT_FOUND);
    gw.stop().await;
}

#[tokio::test]
async fn a_gemini_3_tool_loop_over_previous_response_id_stays_on_its_key() {
    let (fake, gw) = start(None).await;
    let first = json!({"model": "gpt-5-codex", "input": "Weather in Paris?", "tools": [shell_tool()],
                       "reasoning": {"effort": "low", "summary": "auto"}, "include": ["reasoning.encrypted_content"]});
    let r = call(&gw, Method::POST, "/v1/responses", TOKEN, Some(&first)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let v = r.json();
    assert_eq!(v["model"], "gpt-5-codex");
    let output = v["output"].as_array().unwrap();
    assert_eq!(output[0]["type"], "reasoning");
    let fc = output.iter().find(|i| i["type"] == "function_call").unwrap();
    assert_eq!(fc["arguments"], "{\"city\":\"Paris\"}");
    let call_id = fc["call_id"].as_str().unwrap().to_string();
    let made_by = fake.requests().pop().unwrap().key;
    for _ in 0..2 {
        // Round-robin would move the next turn to the other key; the stored conversation's key serves it.
        let next = json!({"model": "gpt-5-codex", "previous_response_id": v["id"], "tools": [shell_tool()],
                          "input": [{"type": "function_call_output", "call_id": call_id, "output": "{\"temp\": 21}"}]});
        let r = call(&gw, Method::POST, "/v1/responses", TOKEN, Some(&next)).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        assert_eq!(r.json()["output"][0]["content"][0]["text"], "It is 21 degrees in Paris.");
        let sent = fake.requests().pop().unwrap();
        assert_eq!(sent.key, made_by);
        let body: Value = serde_json::from_slice(&sent.body).unwrap();
        assert_eq!(body["contents"][0]["parts"][0]["text"], "Weather in Paris?", "history first");
        assert_eq!(body["contents"][1]["parts"][0]["thoughtSignature"], "ZmFrZS1zaWduYXR1cmU=");
    }
    // Stateless, as Codex runs: the client resends the items, the call_id carries the signature.
    let stateless = json!({"model": "gpt-5-codex", "store": false, "tools": [shell_tool()], "input": [
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Weather in Paris?"}]},
        output[0], fc, {"type": "function_call_output", "call_id": call_id, "output": "21"}]});
    let r = call(&gw, Method::POST, "/v1/responses", TOKEN, Some(&stateless)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    // A call id that never carried a signature (a turn that never came from Gemini) gets
    // Google's documented stand-in; one that did keeps its own (above).
    let unsigned = json!({"model": "gpt-5-codex", "store": false, "input": [
        {"type": "function_call", "call_id": "call_plain", "name": "get_weather", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "call_plain", "output": "21"}]});
    let r = call(&gw, Method::POST, "/v1/responses", TOKEN, Some(&unsigned)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let body: Value = serde_json::from_slice(&fake.requests().pop().unwrap().body).unwrap();
    assert_eq!(body["contents"][0]["parts"][0]["thoughtSignature"], "skip_thought_signature_validator");
    let r = call(
        &gw,
        Method::POST,
        "/v1/responses",
        TOKEN,
        Some(&json!({"model": "m", "input": "x", "tools": [{"type": "computer_use_preview"}]})),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.json()["error"]["message"].as_str().unwrap().contains("tools[0].type"));
    gw.stop().await;
}

#[tokio::test]
async fn the_stream_emits_the_full_event_sequence_and_is_kept() {
    let (_fake, gw) = start(None).await;
    let body = json!({"model": "gpt-5", "input": "Weather in Paris?", "stream": true, "tools": [shell_tool()],
                      "reasoning": {"effort": "medium", "summary": "auto"}});
    let r = call(&gw, Method::POST, "/v1/responses", TOKEN, Some(&body)).await;
    assert_eq!((r.status, r.headers["content-type"].to_str().unwrap()), (StatusCode::OK, "text/event-stream"));
    let text = r.text();
    let data: Vec<Value> =
        text.lines().filter_map(|l| l.strip_prefix("data: ")).map(|d| serde_json::from_str(d).unwrap()).collect();
    let kinds: Vec<&str> = data.iter().map(|d| d["type"].as_str().unwrap()).collect();
    assert_eq!(kinds.first(), Some(&"response.created"));
    assert_eq!(kinds[1], "response.in_progress");
    for k in
        ["response.reasoning_summary_text.delta", "response.function_call_arguments.delta", "response.output_item.done"]
    {
        assert!(kinds.contains(&k), "{k} in {kinds:?}");
    }
    assert_eq!(kinds.last(), Some(&"response.completed"));
    let seqs: Vec<u64> = data.iter().map(|d| d["sequence_number"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (0..seqs.len() as u64).collect::<Vec<_>>());
    let done = &data.last().unwrap()["response"];
    let fc = done["output"].as_array().unwrap().iter().find(|i| i["type"] == "function_call").unwrap().clone();
    // At once: the streamed response is there for the next turn.
    let next = json!({"model": "gpt-5", "previous_response_id": done["id"], "tools": [shell_tool()],
                      "input": [{"type": "function_call_output", "call_id": fc["call_id"], "output": "21"}]});
    let r = call(&gw, Method::POST, "/v1/responses", TOKEN, Some(&next)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["output"][0]["content"][0]["text"], "It is 21 degrees in Paris.");
    gw.stop().await;
}
