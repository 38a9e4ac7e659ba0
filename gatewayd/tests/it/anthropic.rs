//! Issue 14: the Anthropic Messages API through the pool, with Gemini 3 tool loops whose thought
//! signatures ride in the `toolu_` ids.

use http::{Method, StatusCode};
use serde_json::{Value, json};

use gatewayd_testkit::fake::{FakeGemini, Script};
use gatewayd_testkit::{Gateway, Reply, TOKEN, key};

const G3: &str = "gemini-3-pro-preview";

async fn start() -> (gatewayd_testkit::fake::FakeHandle, Gateway) {
    let quota = Script::quota("GenerateRequestsPerMinutePerProjectPerModel-FreeTier", Some("30s"));
    let fake = FakeGemini::new()
        .key(&key(1), Script::Ok)
        .key(&key(2), Script::Ok)
        .model("gemini-2.5-flash-exhausted", quota)
        .model("gemini-2.5-flash-overloaded", Script::Status(503))
        .start()
        .await;
    let gw = Gateway::builder(&fake.base_url())
        .keys(&[key(1), key(2)])
        .set("models.aliases", &format!(r#"{{"claude-*" = "{G3}"}}"#))
        .start()
        .await;
    (fake, gw)
}

async fn post(gw: &Gateway, path: &str, body: &Value) -> Reply {
    let headers = [
        ("x-api-key", TOKEN),
        ("anthropic-version", "2023-06-01"),
        ("anthropic-beta", "interleaved-thinking-2025-05-14"),
        ("content-type", "application/json"),
    ];
    gw.request(Method::POST, path, &headers, body.to_string()).await
}

fn weather_tool() -> Value {
    json!({"name": "get_weather", "description": "Weather for a city", "input_schema": {
        "type": "object", "$defs": {"Unit": {"type": "string", "enum": ["c", "f"]}},
        "properties": {"city": {"type": "string"}, "unit": {"$ref": "#/$defs/Unit"},
                       "days": {"type": "integer", "enum": [1, 3, 7]}, "kind": {"const": "forecast"}},
        "required": ["city"], "additionalProperties": false}})
}

#[tokio::test]
async fn a_message_in_anthropics_shape() {
    let (fake, gw) = start().await;
    let body = json!({"model": "gemini-2.5-flash", "max_tokens": 256, "system": "Be brief.",
                      "messages": [{"role": "user", "content": "Hello"}]});
    let r = post(&gw, "/v1/messages?beta=true", &body).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let m = r.json();
    assert!(m["id"].as_str().unwrap().starts_with("msg_"));
    assert_eq!(
        (m["type"].as_str(), m["role"].as_str(), m["model"].as_str()),
        (Some("message"), Some("assistant"), Some("gemini-2.5-flash"))
    );
    assert_eq!(m["content"], json!([{"type": "text", "text": "Hello from the fake."}]));
    assert_eq!(m["stop_reason"], "end_turn");
    assert_eq!(m["usage"]["input_tokens"], 7);
    assert_eq!(m["usage"]["output_tokens"], 5);
    let sent: Value = serde_json::from_slice(&fake.requests().pop().unwrap().body).unwrap();
    assert_eq!(sent["systemInstruction"], json!({"parts": [{"text": "Be brief."}]}));
    assert_eq!(sent["generationConfig"]["maxOutputTokens"], 256);
    // Bearer works too; count_tokens counts the whole request.
    let bearer = format!("Bearer {TOKEN}");
    let r =
        gw.request(Method::POST, "/v1/messages/count_tokens", &[("authorization", &bearer)], body.to_string()).await;
    assert_eq!((r.status, r.json()), (StatusCode::OK, json!({"input_tokens": 7})));
    let sent = fake.requests().pop().unwrap();
    assert_eq!(sent.path, "/v1beta/models/gemini-2.5-flash:countTokens");
    let sent: Value = serde_json::from_slice(&sent.body).unwrap();
    assert_eq!(sent["generateContentRequest"]["model"], "models/gemini-2.5-flash");
    assert!(sent["generateContentRequest"]["systemInstruction"].is_object());
    gw.stop().await;
}

#[tokio::test]
async fn a_gemini_3_tool_loop_round_trips_its_signature_through_the_toolu_id() {
    let (fake, gw) = start().await;
    let ask = json!({"role": "user", "content": "Weather in Paris?"});
    let body = json!({"model": "claude-sonnet-4-5", "max_tokens": 512, "tools": [weather_tool()],
                      "thinking": {"type": "enabled", "budget_tokens": 1024}, "messages": [ask]});
    let r = post(&gw, "/v1/messages", &body).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let m = r.json();
    assert_eq!(m["model"], "claude-sonnet-4-5", "the client's name, served by {G3}");
    assert_eq!(m["stop_reason"], "tool_use");
    let blocks = m["content"].as_array().unwrap();
    assert_eq!(blocks[0]["type"], "thinking");
    let call = blocks.iter().find(|b| b["type"] == "tool_use").unwrap().clone();
    let id = call["id"].as_str().unwrap();
    assert!(id.starts_with("toolu_") && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-".contains(&b)), "{id}");
    assert_eq!(call["input"], json!({"city": "Paris"}));
    let sent = fake.requests().pop().unwrap();
    assert_eq!(sent.path, format!("/v1beta/models/{G3}:generateContent"));
    let sent: Value = serde_json::from_slice(&sent.body).unwrap();
    let params = &sent["tools"][0]["functionDeclarations"][0]["parameters"];
    assert_eq!(params["properties"]["unit"], json!({"type": "string", "enum": ["c", "f"]}), "the $ref resolved");
    // The client replays the turn (thinking, tool_use) and answers the call.
    let turn = json!([ask, {"role": "assistant", "content": m["content"]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": id, "content": "{\"temp\": 21}"}]}]);
    let r = post(
        &gw,
        "/v1/messages",
        &json!({"model": "claude-sonnet-4-5", "max_tokens": 512, "tools": [weather_tool()], "messages": turn}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "Gemini 3 found its signature: {}", r.text());
    assert_eq!(r.json()["content"][0]["text"], "It is 21 degrees in Paris.");
    let sent: Value = serde_json::from_slice(&fake.requests().pop().unwrap().body).unwrap();
    assert_eq!(sent["contents"][1]["parts"][0]["thoughtSignature"], "ZmFrZS1zaWduYXR1cmU=");
    assert_eq!(
        sent["contents"][2]["parts"][0]["functionResponse"],
        json!({"name": "get_weather", "response": {"temp": 21}})
    );
    // A call that never came from Gemini (a history written by another model) carries Google's
    // documented stand-in, so Gemini 3 takes it.
    let bare = json!([ask, {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_01abc", "name": "get_weather", "input": {"city": "Paris"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_01abc", "content": "21"}]}]);
    let r = post(&gw, "/v1/messages", &json!({"model": "claude-sonnet-4-5", "max_tokens": 64, "messages": bare})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let sent: Value = serde_json::from_slice(&fake.requests().pop().unwrap().body).unwrap();
    assert_eq!(sent["contents"][1]["parts"][0]["thoughtSignature"], "skip_thought_signature_validator");
    // Gemini 3's own 400 for a call without a signature, were one to reach it, is the client's: in
    // Anthropic's shape, no key charged.
    let raw = json!({"contents": [{"role": "user", "parts": [{"text": "x"}]},
        {"role": "model", "parts": [{"functionCall": {"name": "get_weather", "args": {}}}]}]});
    let r = gw.post(&format!("/v1beta/models/{G3}:generateContent"), raw.to_string()).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.text().contains("thought_signature"), "{}", r.text());
    assert_eq!(gw.health(&key(1)).failures() + gw.health(&key(2)).failures(), 0);
    gw.stop().await;
}

#[tokio::test]
async fn the_stream_is_anthropics_event_sequence() {
    let (_fake, gw) = start().await;
    let body = json!({"model": "claude-opus-4-1", "max_tokens": 512, "stream": true, "tools": [weather_tool()],
                      "thinking": {"type": "enabled", "budget_tokens": 1024},
                      "messages": [{"role": "user", "content": "Weather in Paris?"}]});
    let r = post(&gw, "/v1/messages", &body).await;
    assert_eq!((r.status, r.headers["content-type"].to_str().unwrap()), (StatusCode::OK, "text/event-stream"));
    let text = r.text();
    let names: Vec<&str> = text.lines().filter_map(|l| l.strip_prefix("event: ")).collect();
    assert_eq!(
        names,
        [
            "message_start",
            "ping",
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ],
        "{text}"
    );
    let data: Vec<Value> =
        text.lines().filter_map(|l| l.strip_prefix("data: ")).map(|d| serde_json::from_str(d).unwrap()).collect();
    assert_eq!(data[3]["delta"], json!({"type": "thinking_delta", "thinking": "Thinking it over."}));
    assert_eq!(data[5]["content_block"]["type"], "tool_use");
    assert_eq!(data[6]["delta"]["type"], "input_json_delta");
    assert_eq!(data[8]["delta"]["stop_reason"], "tool_use");
    gw.stop().await;
}

#[tokio::test]
async fn errors_use_anthropics_types_and_statuses() {
    let (_fake, gw) = start().await;
    let msg = |model: &str| json!({"model": model, "max_tokens": 8, "messages": [{"role": "user", "content": "x"}]});
    let r =
        gw.request(Method::POST, "/v1/messages", &[("x-api-key", "wrong")], msg("gemini-2.5-flash").to_string()).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        r.json(),
        json!({"type": "error", "error": {"type": "authentication_error", "message": "invalid gateway token"}})
    );
    let r = post(&gw, "/v1/messages/batches", &msg("m")).await;
    assert_eq!((r.status, r.json()["error"]["type"].as_str()), (StatusCode::NOT_FOUND, Some("not_found_error")));
    let r = post(&gw, "/v1/messages", &json!({"model": "m", "messages": [{"role": "robot", "content": "x"}]})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.json()["error"]["message"].as_str().unwrap().contains("messages[0].role"));
    let r = post(&gw, "/v1/messages", &msg("gemini-2.5-flash-exhausted")).await;
    assert_eq!(
        (r.status, r.json()["error"]["type"].as_str()),
        (StatusCode::TOO_MANY_REQUESTS, Some("rate_limit_error"))
    );
    assert!(r.headers.contains_key("retry-after"));
    let r = post(&gw, "/v1/messages", &msg("gemini-2.5-flash-overloaded")).await;
    assert_eq!(r.status.as_u16(), 529, "{}", r.text());
    assert_eq!(r.json()["error"]["type"], "overloaded_error");
    gw.stop().await;
}
