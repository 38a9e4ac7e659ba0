//! Compatibility with the real official clients: the openai and google-genai Python SDKs,
//! installed with pinned versions (tests/sdk/requirements.txt) into `.venv` by ./scripts/test,
//! driving the real daemon in front of FakeGemini.

use std::path::PathBuf;
use std::time::Duration;

use gatewayd_testkit::fake::{FakeGemini, Script};
use gatewayd_testkit::{Gateway, TOKEN, key};

/// The model the fake answers with 429 on every key (the SDK tests name it too).
const EXHAUSTED: &str = "gemini-2.5-flash-exhausted";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

async fn run_sdk_tests(file: &str) {
    let python =
        std::env::var_os("GATEWAY_SDK_PYTHON").map(PathBuf::from).unwrap_or_else(|| repo().join(".venv/bin/python"));
    assert!(python.exists(), "{} is missing: run ./scripts/test, which installs the pinned SDKs", python.display());
    // One model out of quota on every key, for the SDKs' rate-limit error.
    let quota = Script::quota("GenerateRequestsPerMinutePerProjectPerModel-FreeTier", Some("30s"));
    let fake =
        FakeGemini::new().key(&key(1), Script::Ok).key(&key(2), Script::Ok).model(EXHAUSTED, quota).start().await;
    let gw = Gateway::builder(&fake.base_url())
        .keys(&[key(1), key(2)])
        .set("models.hidden", "[\"gemini-2.5-flash-lite\"]")
        // OpenAI's speech model names reach a Gemini TTS model, as the example config documents.
        .set("models.aliases", r#"{"tts-1*" = "gemini-2.5-flash-preview-tts", "claude-*" = "gemini-3-pro-preview", "gpt-5*" = "gemini-3-pro-preview"}"#)
        .start()
        .await;
    let out = tokio::time::timeout(
        Duration::from_secs(300),
        tokio::process::Command::new(&python)
            .args(["-m", "unittest", "-v", file])
            .current_dir(repo().join("tests/sdk"))
            .env("GATEWAY_URL", format!("http://{}", gw.addr))
            .env("GATEWAY_TOKEN", TOKEN)
            .output(),
    )
    .await
    .expect("SDK tests finish")
    .unwrap();
    let report = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{file} failed:\n{report}\n{}", String::from_utf8_lossy(&out.stdout));
    assert!(report.contains("OK") && !report.contains("skipped"), "{report}");
    println!("{report}");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the pinned SDKs in .venv: ./scripts/test installs them and runs this"]
async fn openai_python_sdk() {
    run_sdk_tests("test_openai_sdk.py").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the pinned SDKs in .venv: ./scripts/test installs them and runs this"]
async fn google_genai_python_sdk() {
    run_sdk_tests("test_genai_sdk.py").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the pinned SDKs in .venv: ./scripts/test installs them and runs this"]
async fn anthropic_python_sdk() {
    run_sdk_tests("test_anthropic_sdk.py").await;
}
