//! PURE: OpenAI text to speech (`POST /v1/audio/speech`) served by a Gemini TTS model:
//! generateContent with audio output and a prebuilt voice. Gemini answers 24 kHz, 16-bit mono
//! PCM (`audio/L16;codec=pcm;rate=24000`); the client gets it as WAV (a RIFF header on it) or
//! raw PCM. OpenAI's voice names map to Gemini voices by the table below; Gemini's own names
//! pass as they are. OpenAI model names (`tts-1`) reach a TTS model through `models.aliases`.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::bad_request::{BadRequest, bad, checked_model};
use crate::models::{self, ModelName};

/// OpenAI's voices and the Gemini voice each is served by (by likeness of character).
pub const OPENAI_VOICES: &[(&str, &str)] = &[
    ("alloy", "Zephyr"),
    ("ash", "Orus"),
    ("ballad", "Algieba"),
    ("coral", "Aoede"),
    ("echo", "Puck"),
    ("fable", "Fenrir"),
    ("nova", "Kore"),
    ("onyx", "Charon"),
    ("sage", "Sadaltager"),
    ("shimmer", "Leda"),
    ("verse", "Achird"),
    ("marin", "Despina"),
    ("cedar", "Iapetus"),
];

/// Gemini's prebuilt voices.
pub const GEMINI_VOICES: &[&str] = &[
    "Zephyr",
    "Puck",
    "Charon",
    "Kore",
    "Fenrir",
    "Leda",
    "Orus",
    "Aoede",
    "Callirrhoe",
    "Autonoe",
    "Enceladus",
    "Iapetus",
    "Umbriel",
    "Algieba",
    "Despina",
    "Erinome",
    "Algenib",
    "Rasalgethi",
    "Laomedeia",
    "Achernar",
    "Alnilam",
    "Schedar",
    "Gacrux",
    "Pulcherrima",
    "Achird",
    "Zubenelgenubi",
    "Vindemiatrix",
    "Sadachbia",
    "Sadaltager",
    "Sulafat",
];

/// The formats served: what Gemini makes, with or without a WAV header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Wav,
    Pcm,
}

impl Format {
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Wav => "audio/wav",
            Format::Pcm => "audio/pcm",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct SpeechRequest {
    pub model: String,
    pub upstream_model: ModelName,
    pub format: Format,
    pub body: Value,
}

pub fn speech_request(req: &Value, aliases: &BTreeMap<String, String>) -> Result<SpeechRequest, BadRequest> {
    let obj = req.as_object().ok_or_else(|| bad("body", "must be a JSON object"))?;
    let (model, upstream_model) = checked_model(obj)?;
    let upstream_model = models::aliased(aliases, upstream_model);
    let input = obj
        .get("input")
        .and_then(Value::as_str)
        .filter(|t| !t.trim().is_empty())
        .ok_or_else(|| bad("input", "required: the text to speak"))?;
    let voice = obj.get("voice").map(voice_name).transpose()?.unwrap_or("Kore");
    let format = match obj.get("response_format").and_then(Value::as_str) {
        None | Some("wav") => Format::Wav,
        Some("pcm") => Format::Pcm,
        Some(other) => {
            return Err(bad(
                "response_format",
                format!("{other:?} is not supported: use wav or pcm (24 kHz, 16-bit, mono)"),
            ));
        }
    };
    // Gemini TTS takes its direction in the text itself.
    let text = match obj.get("instructions").and_then(Value::as_str).filter(|i| !i.trim().is_empty()) {
        Some(how) => format!("{how}: {input}"),
        None => input.to_string(),
    };
    let body = json!({
        "contents": [{ "role": "user", "parts": [{ "text": text }] }],
        "generationConfig": {
            "responseModalities": ["AUDIO"],
            "speechConfig": { "voiceConfig": { "prebuiltVoiceConfig": { "voiceName": voice } } }
        }
    });
    Ok(SpeechRequest { model, upstream_model, format, body })
}

/// A voice as OpenAI names it (`alloy`, or `{"id": "alloy"}`) or a Gemini voice, any case.
fn voice_name(v: &Value) -> Result<&'static str, BadRequest> {
    let name = v.as_str().or_else(|| v.get("id").and_then(Value::as_str)).unwrap_or("");
    let lower = name.to_ascii_lowercase();
    if let Some((_, gemini)) = OPENAI_VOICES.iter().find(|(o, _)| *o == lower) {
        return Ok(gemini);
    }
    GEMINI_VOICES.iter().find(|g| g.eq_ignore_ascii_case(name)).copied().ok_or_else(|| {
        let openai: Vec<&str> = OPENAI_VOICES.iter().map(|(o, _)| *o).collect();
        bad(
            "voice",
            format!(
                "{name:?} is not a voice: use one of {} or a Gemini voice ({})",
                openai.join(", "),
                GEMINI_VOICES.join(", ")
            ),
        )
    })
}

/// The PCM in a Gemini answer, with its sample rate (from the MIME type, else 24 kHz).
pub fn pcm_of(upstream: &Value) -> Option<(Vec<u8>, u32)> {
    use base64::Engine as _;
    let parts = upstream["candidates"][0]["content"]["parts"].as_array()?;
    let inline = parts
        .iter()
        .filter_map(|p| p.get("inlineData"))
        .find(|i| i["mimeType"].as_str().is_some_and(|m| m.starts_with("audio/")))?;
    let mime = inline["mimeType"].as_str().unwrap_or("");
    let rate =
        mime.split(';').find_map(|p| p.trim().strip_prefix("rate=")).and_then(|r| r.parse().ok()).unwrap_or(24_000);
    let pcm = base64::engine::general_purpose::STANDARD.decode(inline["data"].as_str()?).ok()?;
    Some((pcm, rate))
}

/// A WAV file of 16-bit mono PCM at `rate`: the 44-byte RIFF header, then the samples.
pub fn wav(pcm: &[u8], rate: u32) -> Vec<u8> {
    let data = pcm.len() as u32;
    let mut out = Vec::with_capacity(44 + pcm.len());
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes()); // fmt chunk size
    out.extend_from_slice(&1u16.to_le_bytes()); // PCM
    out.extend_from_slice(&1u16.to_le_bytes()); // mono
    out.extend_from_slice(&rate.to_le_bytes());
    out.extend_from_slice(&(rate * 2).to_le_bytes()); // bytes per second
    out.extend_from_slice(&2u16.to_le_bytes()); // block align
    out.extend_from_slice(&16u16.to_le_bytes()); // bits per sample
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data.to_le_bytes());
    out.extend_from_slice(pcm);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(v: Value) -> Result<SpeechRequest, BadRequest> {
        speech_request(&v, &BTreeMap::from([("tts-1*".to_string(), "gemini-2.5-flash-preview-tts".to_string())]))
    }

    #[test]
    fn openai_names_reach_a_gemini_tts_model_and_voice() {
        let r = request(json!({"model": "tts-1-hd", "input": "Hello", "voice": "alloy", "response_format": "pcm"}))
            .unwrap();
        assert_eq!(r.upstream_model.as_str(), "gemini-2.5-flash-preview-tts");
        assert_eq!(r.format, Format::Pcm);
        assert_eq!(r.body["generationConfig"]["responseModalities"], json!(["AUDIO"]));
        assert_eq!(
            r.body["generationConfig"]["speechConfig"]["voiceConfig"]["prebuiltVoiceConfig"]["voiceName"],
            "Zephyr"
        );
        let r = request(json!({"model": "tts-1", "input": "Hi", "voice": "puck", "instructions": "Say cheerfully"}))
            .unwrap();
        assert_eq!(r.format, Format::Wav, "wav unless pcm is asked for");
        assert_eq!(r.body["contents"][0]["parts"][0]["text"], "Say cheerfully: Hi");
        assert_eq!(
            r.body["generationConfig"]["speechConfig"]["voiceConfig"]["prebuiltVoiceConfig"]["voiceName"],
            "Puck"
        );
        assert_eq!(OPENAI_VOICES.len(), 13);
        assert!(OPENAI_VOICES.iter().all(|(_, g)| GEMINI_VOICES.contains(g)));
    }

    #[test]
    fn mistakes_name_their_field_and_what_is_supported() {
        let err = |v: Value| request(v).unwrap_err();
        let mp3 = err(json!({"model": "tts-1", "input": "x", "response_format": "mp3"}));
        assert!(mp3.field == "response_format" && mp3.message.contains("wav or pcm"), "{mp3}");
        let voice = err(json!({"model": "tts-1", "input": "x", "voice": "robot"}));
        assert!(voice.field == "voice" && voice.message.contains("alloy") && voice.message.contains("Kore"), "{voice}");
        assert_eq!(err(json!({"model": "tts-1"})).field, "input");
        assert_eq!(err(json!({"input": "x"})).field, "model");
    }

    #[test]
    fn pcm_becomes_a_valid_wav() {
        use base64::Engine as _;
        let samples: Vec<u8> = (0..480u16).flat_map(|i| i.to_le_bytes()).collect();
        let answer = json!({"candidates": [{"content": {"parts": [{"inlineData": {
            "mimeType": "audio/L16;codec=pcm;rate=24000",
            "data": base64::engine::general_purpose::STANDARD.encode(&samples)}}]}}]});
        let (pcm, rate) = pcm_of(&answer).unwrap();
        assert_eq!((pcm.len(), rate), (960, 24_000));
        let w = wav(&pcm, rate);
        assert_eq!(&w[..4], b"RIFF");
        assert_eq!(u32::from_le_bytes(w[4..8].try_into().unwrap()), 36 + 960);
        assert_eq!(&w[8..16], b"WAVEfmt ");
        assert_eq!(u32::from_le_bytes(w[24..28].try_into().unwrap()), 24_000);
        assert_eq!(u32::from_le_bytes(w[28..32].try_into().unwrap()), 48_000);
        assert_eq!(u16::from_le_bytes(w[34..36].try_into().unwrap()), 16);
        assert_eq!(&w[36..40], b"data");
        assert_eq!(&w[44..], &pcm[..]);
        assert_eq!(pcm_of(&json!({"candidates": [{"content": {"parts": [{"text": "no audio"}]}}]})), None);
    }
}
