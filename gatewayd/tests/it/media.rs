//! Issue 13: OpenAI image generation (Imagen and Gemini image models) and text to speech
//! (Gemini TTS) through the pool.

use http::StatusCode;
use serde_json::{Value, json};

use base64::prelude::{BASE64_STANDARD, Engine as _};
use gatewayd_testkit::fake::{FakeGemini, PNG, Script};
use gatewayd_testkit::{Gateway, Reply, TOKEN, key};

async fn start() -> (gatewayd_testkit::fake::FakeHandle, Gateway) {
    let fake = FakeGemini::new().key(&key(1), Script::Ok).key(&key(2), Script::Ok).start().await;
    let gw = Gateway::builder(&fake.base_url())
        .keys(&[key(1), key(2)])
        .set("models.aliases", r#"{"tts-1*" = "gemini-2.5-flash-preview-tts", "dall-e-*" = "imagen-4.0-generate-001"}"#)
        .start()
        .await;
    (fake, gw)
}

async fn post(gw: &Gateway, path: &str, body: Value) -> Reply {
    let bearer = format!("Bearer {TOKEN}");
    gw.request(
        http::Method::POST,
        path,
        &[("authorization", &bearer), ("content-type", "application/json")],
        body.to_string(),
    )
    .await
}

#[tokio::test]
async fn images_come_from_imagen_or_a_gemini_image_model_in_openai_shape() {
    let (fake, gw) = start().await;
    let r = post(
        &gw,
        "/v1/images/generations",
        json!({"model": "dall-e-3", "prompt": "a cat", "n": 2, "size": "1792x1024"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let v = r.json();
    assert!(v["created"].is_i64());
    let data = v["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    assert_eq!(BASE64_STANDARD.decode(data[0]["b64_json"].as_str().unwrap()).unwrap(), PNG);
    let sent = fake.requests().pop().unwrap();
    assert_eq!(sent.path, "/v1beta/models/imagen-4.0-generate-001:predict");
    let body: Value = serde_json::from_slice(&sent.body).unwrap();
    assert_eq!(body["parameters"], json!({"sampleCount": 2, "aspectRatio": "16:9"}));
    // A Gemini image-output model, on the /hf alias too.
    let r = post(&gw, "/hf/v1/images/generations", json!({"model": "gemini-2.5-flash-image", "prompt": "a cat"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let v = r.json();
    assert_eq!(v["data"][0]["revised_prompt"], "A cat, as asked.");
    assert_eq!(BASE64_STANDARD.decode(v["data"][0]["b64_json"].as_str().unwrap()).unwrap(), PNG);
    assert_eq!(v["usage"]["total_tokens"], 1296);
    let sent = fake.requests().pop().unwrap();
    assert_eq!(sent.path, "/v1beta/models/gemini-2.5-flash-image:generateContent");
    // Refusals in OpenAI's shape, nothing sent upstream.
    let before = fake.requests().len();
    let r = post(&gw, "/v1/images/generations", json!({"model": "imagen-4", "prompt": "x", "response_format": "url"}))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let message = r.json()["error"]["message"].as_str().unwrap().to_string();
    assert!(message.contains("response_format") && message.contains("b64_json"), "{message}");
    assert_eq!(r.json()["error"]["type"], "invalid_request_error");
    assert_eq!(post(&gw, "/v1/images/generations", json!({"model": "imagen-4"})).await.status, StatusCode::BAD_REQUEST);
    assert_eq!(fake.requests().len(), before);
    // A model that cannot make images: Google's 400, relayed in OpenAI's shape, no key charged.
    let r = post(&gw, "/v1/images/generations", json!({"model": "gemini-2.5-flash", "prompt": "x"})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    assert!(r.json()["error"]["message"].as_str().unwrap().contains("modalities"), "{}", r.text());
    assert_eq!(gw.health(&key(1)).failures() + gw.health(&key(2)).failures(), 0);
    gw.stop().await;
}

#[tokio::test]
async fn speech_is_gemini_tts_as_wav_or_pcm() {
    let (fake, gw) = start().await;
    let r = post(&gw, "/v1/audio/speech", json!({"model": "tts-1", "input": "Hello there", "voice": "alloy"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.headers["content-type"], "audio/wav");
    let wav = r.body.to_vec();
    let samples = gatewayd_testkit::media::speech_samples();
    assert_eq!(&wav[..4], b"RIFF");
    assert_eq!(u32::from_le_bytes(wav[24..28].try_into().unwrap()), 24_000, "24 kHz");
    assert_eq!(u16::from_le_bytes(wav[22..24].try_into().unwrap()), 1, "mono");
    assert_eq!(u16::from_le_bytes(wav[34..36].try_into().unwrap()), 16, "16-bit");
    assert_eq!(u32::from_le_bytes(wav[40..44].try_into().unwrap()) as usize, samples.len());
    assert_eq!(&wav[44..], &samples[..]);
    let sent = fake.requests().pop().unwrap();
    assert_eq!(sent.path, "/v1beta/models/gemini-2.5-flash-preview-tts:generateContent");
    let body: Value = serde_json::from_slice(&sent.body).unwrap();
    assert_eq!(body["generationConfig"]["speechConfig"]["voiceConfig"]["prebuiltVoiceConfig"]["voiceName"], "Zephyr");
    assert_eq!(body["contents"][0]["parts"][0]["text"], "Hello there");
    let r = post(
        &gw,
        "/v1/audio/speech",
        json!({"model": "tts-1-hd", "input": "x", "voice": "Kore", "response_format": "pcm"}),
    )
    .await;
    assert_eq!((r.status, r.headers["content-type"].to_str().unwrap()), (StatusCode::OK, "audio/pcm"));
    assert_eq!(&r.body[..], &samples[..]);
    let before = fake.requests().len();
    for (body, field) in [
        (json!({"model": "tts-1", "input": "x", "response_format": "mp3"}), "wav or pcm"),
        (json!({"model": "tts-1", "input": "x", "voice": "robot"}), "not a voice"),
        (json!({"model": "tts-1", "voice": "alloy"}), "input"),
    ] {
        let r = post(&gw, "/v1/audio/speech", body).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert!(r.json()["error"]["message"].as_str().unwrap().contains(field), "{}", r.text());
    }
    assert_eq!(fake.requests().len(), before, "refused before anything went upstream");
    let logged = gw.logged_requests(2).await;
    assert!(logged.iter().any(|r| r.record.route == "audio.speech" && r.record.prompt_tokens == Some(4)));
    gw.stop().await;
}
