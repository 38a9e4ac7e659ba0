//! Issue 14, end to end: the real coding agents (Claude Code, Codex CLI), installed from npm by
//! `scripts/test`, run non-interactively against the daemon and FakeGemini, each finishing a
//! task that takes one tool call. Ignored unless `GATEWAY_AGENTS` names the directory holding
//! `node_modules/.bin/{claude,codex}` (`scripts/test` installs them, pinned in
//! `tests/agents/package.json`, and sets it).

use std::path::PathBuf;
use std::time::Duration;

use gatewayd_testkit::fake::{FakeGemini, Script};
use gatewayd_testkit::{Gateway, TOKEN, key};

fn agent(name: &str) -> Option<PathBuf> {
    let dir = std::env::var_os("GATEWAY_AGENTS")?;
    let bin = PathBuf::from(dir).join("node_modules/.bin").join(name);
    bin.exists().then_some(bin)
}

async fn pool() -> (gatewayd_testkit::fake::FakeHandle, Gateway) {
    let fake = FakeGemini::new().key(&key(1), Script::Ok).key(&key(2), Script::Ok).start().await;
    let gw = Gateway::builder(&fake.base_url())
        .keys(&[key(1), key(2)])
        .set(
            "models.aliases",
            r#"{"claude-*" = "gemini-2.5-flash", "gpt-*" = "gemini-2.5-flash", "*" = "gemini-2.5-flash"}"#,
        )
        .start()
        .await;
    (fake, gw)
}

async fn run(cmd: &mut tokio::process::Command) -> (i32, String, String) {
    let out = tokio::time::timeout(Duration::from_secs(240), cmd.output()).await.expect("the agent finishes").unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the agents from npm: ./scripts/test installs them and runs this"]
async fn claude_code_finishes_a_task_with_one_tool_call() {
    let Some(claude) = agent("claude") else { panic!("GATEWAY_AGENTS does not hold claude") };
    let (fake, gw) = pool().await;
    let home = tempfile::tempdir().unwrap();
    let mut cmd = tokio::process::Command::new(claude);
    cmd.args([
        "-p",
        "What is the weather in Paris? Use a tool.",
        "--output-format",
        "text",
        "--max-turns",
        "4",
        "--allowedTools",
        "Bash",
    ])
    .current_dir(home.path())
    .env("HOME", home.path())
    .env("ANTHROPIC_BASE_URL", format!("http://{}", gw.addr))
    .env("ANTHROPIC_API_KEY", TOKEN)
    .env("DISABLE_TELEMETRY", "1")
    .env("DISABLE_AUTOUPDATER", "1")
    .env("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1")
    .env_remove("ANTHROPIC_AUTH_TOKEN");
    let (code, stdout, stderr) = run(&mut cmd).await;
    let sent = fake.requests();
    assert_eq!(
        code,
        0,
        "stdout: {stdout}\nstderr: {stderr}\nupstream: {:?}",
        sent.iter().map(|r| &r.path).collect::<Vec<_>>()
    );
    assert!(stdout.contains("21 degrees"), "the answer after the tool call: {stdout}\n{stderr}");
    let ran = |r: &&gatewayd_testkit::fake::Recorded| {
        let body = String::from_utf8_lossy(&r.body).into_owned();
        body.contains("functionResponse") && body.contains("Paris: sunny")
    };
    assert!(sent.iter().any(|r| ran(&r)), "the tool ran the command, and its output went back to the model");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the agents from npm: ./scripts/test installs them and runs this"]
async fn codex_exec_finishes_a_task_with_one_tool_call() {
    let Some(codex) = agent("codex") else { panic!("GATEWAY_AGENTS does not hold codex") };
    let (fake, gw) = pool().await;
    let home = tempfile::tempdir().unwrap();
    let config = format!(
        "model = \"gpt-5-codex\"\nmodel_provider = \"gateway\"\n[model_providers.gateway]\nname = \"gateway\"\nbase_url = \"http://{}/v1\"\nenv_key = \"GATEWAY_TOKEN\"\nwire_api = \"responses\"\n",
        gw.addr
    );
    std::fs::write(home.path().join("config.toml"), config).unwrap();
    let mut cmd = tokio::process::Command::new(codex);
    cmd.args([
        "exec",
        "--skip-git-repo-check",
        "--dangerously-bypass-approvals-and-sandbox",
        "What is the weather in Paris? Use a tool.",
    ])
    .current_dir(home.path())
    .env("CODEX_HOME", home.path())
    .env("HOME", home.path())
    .env("GATEWAY_TOKEN", TOKEN);
    let (code, stdout, stderr) = run(&mut cmd).await;
    let sent = fake.requests();
    assert_eq!(
        code,
        0,
        "stdout: {stdout}\nstderr: {stderr}\nupstream: {:?}",
        sent.iter().map(|r| &r.path).collect::<Vec<_>>()
    );
    assert!(format!("{stdout}{stderr}").contains("21 degrees"), "the answer after the tool call: {stdout}\n{stderr}");
    let ran = sent.iter().any(|r| {
        let body = String::from_utf8_lossy(&r.body).into_owned();
        body.contains("functionResponse") && body.contains("Paris: sunny")
    });
    assert!(ran, "the tool ran the command, and its output went back to the model");
    gw.stop().await;
}
