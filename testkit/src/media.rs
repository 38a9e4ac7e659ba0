//! FakeGemini's media answers: a Gemini image-output model's images and a TTS model's speech,
//! shaped as Google's are.

use base64::Engine as _;
use serde_json::{Value, json};

use crate::fake::PNG;

/// A generateContent answer with image output: one candidate per `candidateCount`, each a text
/// part and the PNG inline.
pub fn image_answer(req: &Value) -> Value {
    let n = req["generationConfig"]["candidateCount"].as_u64().unwrap_or(1);
    let png = base64::engine::general_purpose::STANDARD.encode(PNG);
    let candidates: Vec<Value> = (0..n)
        .map(|i| {
            json!({"index": i, "finishReason": "STOP", "content": {"role": "model", "parts": [
                {"text": "A cat, as asked."}, {"inlineData": {"mimeType": "image/png", "data": png}}]}})
        })
        .collect();
    json!({"candidates": candidates, "usageMetadata": {"promptTokenCount": 6, "candidatesTokenCount": 1290, "totalTokenCount": 1296}})
}

/// The samples a TTS answer carries: 0.1 s of a ramp at 24 kHz, 16-bit little-endian mono.
pub fn speech_samples() -> Vec<u8> {
    (0..2400u16).flat_map(|i| (i.wrapping_mul(13) as i16).to_le_bytes()).collect()
}

/// A TTS model's answer: PCM inline, with the voice it was asked for echoed in no field (as
/// Google's), so tests read the voice from the request.
pub fn speech_answer(_req: &Value) -> Value {
    let data = base64::engine::general_purpose::STANDARD.encode(speech_samples());
    json!({"candidates": [{"index": 0, "finishReason": "STOP", "content": {"role": "model", "parts": [
        {"inlineData": {"mimeType": "audio/L16;codec=pcm;rate=24000", "data": data}}]}}],
        "usageMetadata": {"promptTokenCount": 4, "candidatesTokenCount": 60, "totalTokenCount": 64}})
}
