//! The real gbctl binary against a real daemon (in-process, temp socket) and FakeGemini: every
//! command in both output modes, exit codes, socket mode, hot settings, and `logs -f`.

use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;
use std::time::Duration;

use gatewayd_testkit::fake::{FakeGemini, Script};
use gatewayd_testkit::{GENERATE, Gateway, HELLO, TOKEN, key};
use http::StatusCode;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{}", self.stdout, self.stderr))
    }
}

fn cmd(gw: &Gateway, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_gbctl"));
    c.arg("--socket").arg(&gw.socket).args(args).env_remove("GBCTL_SOCKET");
    c
}

async fn gbctl(gw: &Gateway, args: &[&str]) -> Run {
    gbctl_in(gw, args, None).await
}

async fn gbctl_in(gw: &Gateway, args: &[&str], stdin: Option<&str>) -> Run {
    let mut c = cmd(gw, args);
    c.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).await.unwrap();
    }
    drop(input);
    let out =
        tokio::time::timeout(Duration::from_secs(60), child.wait_with_output()).await.expect("gbctl finishes").unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn fields(v: &Value) -> Vec<String> {
    let mut f: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
    f.sort();
    f
}

fn sorted(names: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socket_is_private_and_a_stale_one_is_replaced() {
    let fake = FakeGemini::new().start().await;
    let gw = Gateway::builder(&fake.base_url()).start().await;
    assert_eq!(std::fs::metadata(&gw.socket).unwrap().permissions().mode() & 0o777, 0o600);
    // A live daemon's socket is not taken over.
    let db = std::path::Path::new("no-such.db");
    assert!(gatewayd::server::bind_admin_socket(&gw.socket, db).is_err());
    let dir = gw.stop().await;
    // A socket file left by a killed daemon (nobody listening) is replaced at start.
    let stale = dir.path().join("gatewayd.sock");
    drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
    assert!(stale.exists());
    let gw = Gateway::builder(&fake.base_url()).dir(dir).start().await;
    assert_eq!(gbctl(&gw, &["status"]).await.code, 0);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_in_both_modes() {
    let fake = FakeGemini::new().key(&key(1), Script::Ok).start().await;
    let gw = Gateway::builder(&fake.base_url()).keys(&[key(1), key(2)]).start().await;
    gw.post(GENERATE, HELLO).await;
    gw.logged_requests(1).await;
    let r = gbctl(&gw, &["status"]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("2 total: 2 active"), "{}", r.stdout);
    let v = gbctl(&gw, &["-o", "json", "status"]).await.json();
    assert_eq!(v["keys"]["active"], 2);
    assert_eq!(v["requests_24h"], 1);
    assert_eq!(v["listen"], gw.addr.to_string());
    assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_add_list_disable_enable_reset_remove() {
    let fake = FakeGemini::new().start().await;
    let gw = Gateway::builder(&fake.base_url()).start().await;
    // From arguments.
    let r = gbctl(&gw, &["keys", "add", &key(1), &key(2)]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("added 2"), "{}", r.stdout);
    // From a file: one per line, with a duplicate and a junk line.
    let file = gw.dir.path().join("keys.txt");
    std::fs::write(&file, format!("{}\n{}\nnot a key at all\n", key(2), key(3))).unwrap();
    let v = gbctl(&gw, &["-o", "json", "keys", "add", "--file", file.to_str().unwrap()]).await.json();
    assert_eq!(v, serde_json::json!({"added": 1, "duplicates": 1, "malformed": 1}));
    // From stdin: any text holding keys (a pasted export).
    let pasted = format!("project,key\nalpha,{}\nbeta,{}\n", key(4), key(5));
    let r = gbctl_in(&gw, &["keys", "add", "-"], Some(&pasted)).await;
    assert!(r.stdout.contains("added 2"), "{} {}", r.stdout, r.stderr);
    // List, both modes; keys always redacted.
    let r = gbctl(&gw, &["keys", "list"]).await;
    assert_eq!(r.code, 0);
    assert!(r.stdout.contains("AIza…Key1") && !r.stdout.contains(&key(1)), "{}", r.stdout);
    for header in [
        "ID",
        "KEY",
        "KIND",
        "GROUP",
        "PROJECT",
        "STATE",
        "FAILURES",
        "COOLING UNTIL",
        "LAST USED",
        "REQ 24H",
        "ERR 24H",
        "RESOURCES",
        "LAST ERROR",
        "NOTE",
    ] {
        assert!(r.stdout.contains(header), "{header}");
    }
    let list = gbctl(&gw, &["-o", "json", "keys", "list"]).await.json();
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 5);
    assert_eq!(
        fields(&list[0]),
        sorted(&[
            "id",
            "key",
            "kind",
            "group",
            "project",
            "note",
            "proxy",
            "state",
            "failures",
            "cooling_until",
            "cooldowns",
            "last_used",
            "requests_24h",
            "errors_24h",
            "last_error",
            "resources"
        ])
    );
    assert_eq!(list[0]["key"], "AIza…Key1");
    // Disable by id and by tail; list --state filters.
    let v = gbctl(&gw, &["-o", "json", "keys", "disable", "1", "Key2"]).await.json();
    assert_eq!(v.as_array().unwrap().len(), 2);
    let disabled = gbctl(&gw, &["-o", "json", "keys", "list", "--state", "disabled"]).await.json();
    assert_eq!(disabled.as_array().unwrap().len(), 2);
    assert_eq!(gw.health(&key(1)).state(), gatewayd::keypool::KeyState::Disabled);
    assert_eq!(gbctl(&gw, &["keys", "enable", "1"]).await.code, 0);
    assert_eq!(gw.health(&key(1)).state(), gatewayd::keypool::KeyState::Active);
    // An ambiguous tail is refused with the candidates listed.
    assert_eq!(gbctl(&gw, &["keys", "add", "plain-key-one-abcd", "plain-key-two-abcd"]).await.code, 0);
    let r = gbctl(&gw, &["keys", "remove", "abcd"]).await;
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("2 keys end with") && r.stderr.contains("#6 plai…abcd") && r.stderr.contains("#7 plai…abcd"),
        "{}",
        r.stderr
    );
    assert_eq!(gbctl(&gw, &["keys", "remove", "one-abcd", "7"]).await.code, 0);
    let r = gbctl(&gw, &["keys", "remove", "99"]).await;
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("no key with id 99"));
    // Reset clears failures and cooldowns.
    {
        let k = gw.state.pool.get(3).unwrap();
        let failure = gatewayd::outcome::Outcome::Transient("503 test".into());
        // Charged to key 3 only while another key serves the model.
        let k1 = gw.state.pool.get(1).unwrap();
        gw.state.pool.report(&k1, "m", &gatewayd::outcome::Outcome::Success, gw.state.now(), gatewayd_testkit::RULES);
        for _ in 0..2 {
            gw.state.pool.report(&k, "m", &failure, gw.state.now(), gatewayd_testkit::RULES);
        }
        gw.cool(3, "m", gw.state.now() + chrono::Duration::hours(1));
        assert_eq!(gw.health(&key(3)).failures(), 2);
    }
    let cooling = gbctl(&gw, &["-o", "json", "keys", "list", "--state", "cooling"]).await.json();
    assert_eq!(cooling[0]["cooldowns"][0]["reason"], "rpm");
    assert!(cooling[0]["cooling_until"].as_str().unwrap().ends_with('Z'));
    assert_eq!(gbctl(&gw, &["keys", "reset", "3"]).await.code, 0);
    assert_eq!(gw.health(&key(3)).failures(), 0);
    assert!(gw.health(&key(3)).cooldowns().is_empty());
    // Remove; the removed key stays removed across a restart.
    let r = gbctl(&gw, &["keys", "remove", "Key5"]).await;
    assert_eq!(r.code, 0);
    assert!(r.stdout.contains("removed 1"));
    let dir = gw.stop().await;
    let gw = Gateway::builder(&fake.base_url()).dir(dir).start().await;
    let list = gbctl(&gw, &["-o", "json", "keys", "list"]).await.json();
    assert_eq!(list.as_array().unwrap().len(), 4);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_verify_reports_and_updates_state() {
    let fake = FakeGemini::new().key(&key(1), Script::Ok).key(&key(2), Script::InvalidKey).start().await;
    let gw = Gateway::builder(&fake.base_url()).keys(&[key(1), key(2)]).start().await;
    let r = gbctl(&gw, &["-o", "json", "keys", "verify"]).await;
    assert_eq!(r.code, 1, "a failed key makes verify exit 1");
    let v = r.json();
    let rows = v.as_array().unwrap();
    assert_eq!(fields(&rows[0]), sorted(&["id", "key", "ok", "status", "latency_ms", "error"]));
    assert_eq!((rows[0]["ok"].as_bool(), rows[0]["status"].as_u64()), (Some(true), Some(200)));
    assert_eq!((rows[1]["ok"].as_bool(), rows[1]["status"].as_u64()), (Some(false), Some(400)));
    assert!(rows[1]["error"].as_str().unwrap().contains("API key not valid"));
    assert_eq!(gw.health(&key(2)).state(), gatewayd::keypool::KeyState::Invalid);
    // The probe is the free model GET with the pooled key in the header.
    let probe = fake.requests().into_iter().find(|r| r.method == "GET").unwrap();
    assert_eq!(probe.path, "/v1beta/models/gemini-2.5-flash-lite");
    // Fixed upstream: verify --invalid restores the key.
    fake.set(&key(2), Script::Ok);
    let r = gbctl(&gw, &["keys", "verify", "--invalid"]).await;
    assert_eq!(r.code, 0, "{} {}", r.stdout, r.stderr);
    assert!(r.stdout.contains("1 verified, 1 ok, 0 failed"), "{}", r.stdout);
    assert_eq!(gw.health(&key(2)).state(), gatewayd::keypool::KeyState::Active);
    assert_eq!(gbctl(&gw, &["keys", "verify", "Key1"]).await.code, 0);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_change_behaviour_with_no_restart() {
    let fake = FakeGemini::new().key(&key(1), Script::Status(503)).key(&key(2), Script::Ok).start().await;
    let gw = Gateway::builder(&fake.base_url()).keys(&[key(1), key(2)]).set("keys.max_retries", "0").start().await;
    // list: every field, with value, source and hot.
    let list = gbctl(&gw, &["-o", "json", "settings", "list"]).await.json();
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), gatewayd::config::FIELDS.len());
    assert_eq!(fields(&list[0]), sorted(&["name", "value", "source", "hot"]));
    let get = |name: &str| list.iter().find(|s| s["name"] == name).unwrap().clone();
    assert_eq!(
        (get("keys.max_retries")["value"].as_u64(), get("keys.max_retries")["source"].as_str()),
        (Some(0), Some("file"))
    );
    assert_eq!(get("keys.cooldown_secs")["source"], "default");
    assert_eq!(get("server.listen")["hot"], false);
    assert_eq!(get("auth.tokens")["value"], serde_json::json!(["test…6789"]), "secrets redacted");
    // keys.max_retries: with 0 retries a failing key's 503 reaches the client; with 2 it does not.
    let mut statuses = Vec::new();
    for _ in 0..2 {
        statuses.push(gw.post(GENERATE, HELLO).await.status);
    }
    assert!(statuses.contains(&StatusCode::SERVICE_UNAVAILABLE), "{statuses:?}");
    let r = gbctl(&gw, &["settings", "set", "keys.max_retries", "2"]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("runtime"));
    let k1 = gw.state.pool.get(1).unwrap();
    gw.state.pool.reset(&k1);
    for _ in 0..4 {
        assert_eq!(gw.post(GENERATE, HELLO).await.status, StatusCode::OK);
    }
    // server.max_body_bytes.
    assert_eq!(gbctl(&gw, &["settings", "set", "server.max_body_bytes", "2048"]).await.code, 0);
    assert_eq!(gw.post(GENERATE, vec![b' '; 4096]).await.status, StatusCode::PAYLOAD_TOO_LARGE);
    // auth.tokens: the new token works at once, the old one no longer does.
    let r = gbctl(&gw, &["settings", "set", "auth.tokens", "[\"fresh-token-1234\"]"]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!r.stdout.contains("fresh-token-1234"), "shown redacted: {}", r.stdout);
    assert_eq!(gw.post(GENERATE, HELLO).await.status, StatusCode::UNAUTHORIZED);
    let ok = gw.request(http::Method::POST, GENERATE, &[("x-goog-api-key", "fresh-token-1234")], HELLO).await;
    assert_eq!(ok.status, StatusCode::OK);
    // Refusals name the reason and exit 1.
    for (args, needle) in [
        (vec!["settings", "set", "keys.max_retries", "many"], "keys.max_retries"),
        (vec!["settings", "set", "keys.verify_schedule", "\"every day\""], "cron"),
        (vec!["settings", "set", "server.listen", "\"0.0.0.0:1\""], "not hot"),
        (vec!["settings", "set", "no.such", "1"], "unknown setting"),
        (vec!["settings", "get", "no.such"], "unknown setting"),
        (vec!["settings", "set", "auth.tokens", "[]"], "no client token"),
    ] {
        let r = gbctl(&gw, &args).await;
        assert_eq!(r.code, 1, "{args:?}");
        assert!(r.stderr.contains(needle), "{args:?}: {}", r.stderr);
    }
    // get and unset.
    let v = gbctl(&gw, &["-o", "json", "settings", "get", "keys.max_retries"]).await.json();
    assert_eq!((v["value"].as_u64(), v["source"].as_str()), (Some(2), Some("runtime")));
    let v = gbctl(&gw, &["-o", "json", "settings", "unset", "keys.max_retries"]).await.json();
    assert_eq!((v["value"].as_u64(), v["source"].as_str()), (Some(0), Some("file")));
    // Runtime settings survive a restart.
    let dir = gw.stop().await;
    let gw = Gateway::builder(&fake.base_url()).keys(&[key(1), key(2)]).dir(dir).start().await;
    let v = gbctl(&gw, &["-o", "json", "settings", "get", "server.max_body_bytes"]).await.json();
    assert_eq!(v["value"], 2048);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_and_stats_in_both_modes() {
    let quota = Script::quota("GenerateRequestsPerMinutePerProjectPerModel-FreeTier", Some("60s"));
    let fake = FakeGemini::new().key_seq(&key(1), vec![quota]).key(&key(2), Script::Ok).start().await;
    let gw = Gateway::builder(&fake.base_url()).keys(&[key(1), key(2)]).start().await;
    for _ in 0..3 {
        assert_eq!(gw.post(GENERATE, HELLO).await.status, StatusCode::OK);
    }
    assert_eq!(gw.post("/v1beta/models/gemini-2.5-pro:generateContent", HELLO).await.status, StatusCode::OK);
    gw.logged_requests(4).await;
    gw.logged_errors(1).await;
    let v = gbctl(&gw, &["-o", "json", "logs"]).await.json();
    let rows = v.as_array().unwrap();
    assert_eq!(rows.len(), 4);
    assert_eq!(
        fields(&rows[0]),
        sorted(&[
            "ts",
            "route",
            "model",
            "key",
            "status",
            "latency_ms",
            "attempts",
            "trail",
            "stream",
            "prompt_tokens",
            "completion_tokens",
            "error"
        ])
    );
    assert_eq!(rows[0]["trail"], "#1 429 rpm → #2 200");
    assert_eq!(rows[0]["attempts"], 2);
    assert_eq!(rows[0]["key"], "AIza…Key2");
    assert_eq!((rows[0]["prompt_tokens"].as_u64(), rows[0]["completion_tokens"].as_u64()), (Some(7), Some(5)));
    assert!(rows[0]["ts"].as_str().unwrap().ends_with('Z'));
    // Filters.
    assert_eq!(gbctl(&gw, &["-o", "json", "logs", "-n", "2"]).await.json().as_array().unwrap().len(), 2);
    assert_eq!(
        gbctl(&gw, &["-o", "json", "logs", "--model", "gemini-2.5-pro"]).await.json().as_array().unwrap().len(),
        1
    );
    assert_eq!(gbctl(&gw, &["-o", "json", "logs", "--key", "1"]).await.json().as_array().unwrap().len(), 2);
    assert_eq!(gbctl(&gw, &["-o", "json", "logs", "--since", "1h"]).await.json().as_array().unwrap().len(), 4);
    let errors = gbctl(&gw, &["-o", "json", "logs", "--errors"]).await.json();
    assert_eq!(errors[0]["status"], 429);
    assert_eq!(errors[0]["key"], "AIza…Key1");
    let table = gbctl(&gw, &["logs"]).await;
    assert!(table.stdout.contains("#1 429 rpm → #2 200") && table.stdout.contains("TRAIL"), "{}", table.stdout);
    assert_eq!(gbctl(&gw, &["logs", "--since", "soon"]).await.code, 2, "a bad DUR is a usage error");
    // Stats by model and by key.
    let by_model = gbctl(&gw, &["-o", "json", "stats"]).await.json();
    let flash = by_model.as_array().unwrap().iter().find(|r| r["name"] == "gemini-2.5-flash").unwrap().clone();
    assert_eq!(
        fields(&flash),
        sorted(&["name", "requests", "errors", "prompt_tokens", "completion_tokens", "p50_ms", "p95_ms"])
    );
    assert_eq!((flash["requests"].as_u64(), flash["prompt_tokens"].as_u64()), (Some(3), Some(21)));
    let by_key = gbctl(&gw, &["-o", "json", "stats", "--by", "key", "--since", "1d"]).await.json();
    assert!(by_key.as_array().unwrap().iter().all(|r| r["name"].as_str().unwrap().starts_with("AIza…")));
    let t = gbctl(&gw, &["stats", "--by", "key"]).await;
    assert!(t.stdout.contains("P95 MS") && t.stdout.contains("AIza…Key2"), "{}", t.stdout);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_follow_streams_live_and_ends_with_the_daemon() {
    let fake = FakeGemini::new().key(&key(1), Script::Ok).start().await;
    let gw = Gateway::builder(&fake.base_url()).keys(&[key(1)]).start().await;
    let mut child =
        cmd(&gw, &["-o", "json", "logs", "-f"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    // The follower subscribes as it connects; keep sending until it sees one.
    let mut got = None;
    for _ in 0..50 {
        assert_eq!(gw.post(GENERATE, HELLO).await.status, StatusCode::OK);
        if let Ok(Ok(Some(line))) = tokio::time::timeout(Duration::from_millis(200), lines.next_line()).await {
            got = Some(line);
            break;
        }
    }
    let line: Value = serde_json::from_str(&got.expect("a live record")).unwrap();
    assert_eq!(line["status"], 200);
    assert_eq!(line["trail"], "#1 200");
    gw.stop().await;
    let status =
        tokio::time::timeout(Duration::from_secs(20), child.wait()).await.expect("gbctl ends with the daemon").unwrap();
    assert_eq!(status.code(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_codes_help_completions_and_broken_pipes() {
    let fake = FakeGemini::new().start().await;
    let gw = Gateway::builder(&fake.base_url()).start().await;
    // 3: daemon unreachable, naming the socket and how to point elsewhere.
    let r = Command::new(env!("CARGO_BIN_EXE_gbctl"))
        .args(["--socket", "/nonexistent/gw.sock", "status"])
        .output()
        .await
        .unwrap();
    assert_eq!(r.status.code(), Some(3));
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(err.contains("/nonexistent/gw.sock") && err.contains("--socket") && err.contains("GBCTL_SOCKET"), "{err}");
    // GBCTL_SOCKET is honoured.
    let r =
        Command::new(env!("CARGO_BIN_EXE_gbctl")).arg("status").env("GBCTL_SOCKET", &gw.socket).output().await.unwrap();
    assert_eq!(r.status.code(), Some(0));
    // ... and so is server.admin_socket of ./gateway.toml.
    let r = Command::new(env!("CARGO_BIN_EXE_gbctl"))
        .arg("status")
        .current_dir(gw.dir.path())
        .env_remove("GBCTL_SOCKET")
        .env_remove("GATEWAY_CONFIG")
        .output()
        .await
        .unwrap();
    assert_eq!(r.status.code(), Some(0), "{}", String::from_utf8_lossy(&r.stderr));
    // 2: usage errors.
    assert_eq!(gbctl(&gw, &["keys", "frobnicate"]).await.code, 2);
    assert_eq!(gbctl(&gw, &["keys", "remove"]).await.code, 2);
    assert_eq!(gbctl(&gw, &["-o", "yaml", "status"]).await.code, 2);
    // Help reads well for every command; completions for three shells.
    for args in [
        vec!["--help"],
        vec!["keys", "--help"],
        vec!["keys", "add", "--help"],
        vec!["keys", "verify", "--help"],
        vec!["settings", "set", "--help"],
        vec!["logs", "--help"],
        vec!["stats", "--help"],
    ] {
        let r = gbctl(&gw, &args).await;
        assert_eq!(r.code, 0, "{args:?}");
        assert!(r.stdout.contains("Usage: gbctl"), "{args:?}");
    }
    for shell in ["bash", "zsh", "fish"] {
        let r = gbctl(&gw, &["completions", shell]).await;
        assert_eq!(r.code, 0);
        assert!(r.stdout.contains("gbctl") && r.stdout.len() > 500, "{shell}");
    }
    // `| head -1` is not an error.
    let many: String = (100..2100).map(|n| format!("{}\n", key(n))).collect();
    assert_eq!(gbctl_in(&gw, &["keys", "add", "-"], Some(&many)).await.code, 0);
    let script = format!(
        "{} --socket {} keys list | head -1; exit ${{PIPESTATUS[0]}}",
        env!("CARGO_BIN_EXE_gbctl"),
        gw.socket.display()
    );
    let r = Command::new("bash").arg("-c").arg(script).output().await.unwrap();
    assert_eq!(r.status.code(), Some(0), "{}", String::from_utf8_lossy(&r.stderr));
    assert!(String::from_utf8_lossy(&r.stderr).is_empty(), "{}", String::from_utf8_lossy(&r.stderr));
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_command_in_both_output_modes() {
    let fake =
        FakeGemini::new().key(&key(1), Script::Ok).key(&key(2), Script::Ok).key(&key(3), Script::Ok).start().await;
    let gw = Gateway::builder(&fake.base_url()).keys(&[key(1), key(2), key(3)]).start().await;
    assert_eq!(gw.post(GENERATE, HELLO).await.status, StatusCode::OK);
    gw.logged_requests(1).await;
    let commands: Vec<Vec<&str>> = vec![
        vec!["status"],
        vec!["keys", "list"],
        vec!["keys", "list", "--state", "active"],
        vec!["keys", "add", "plain-key-for-modes-1"],
        vec!["keys", "disable", "Key1"],
        vec!["keys", "enable", "Key1"],
        vec!["keys", "verify", "Key2"],
        vec!["keys", "reset", "--all"],
        vec!["settings", "list"],
        vec!["settings", "get", "keys.wait_secs"],
        vec!["settings", "set", "keys.wait_secs", "1"],
        vec!["settings", "unset", "keys.wait_secs"],
        vec!["logs"],
        vec!["logs", "--errors", "-n", "5"],
        vec!["stats"],
        vec!["stats", "--by", "key"],
    ];
    for args in &commands {
        let table = gbctl(&gw, args).await;
        assert_eq!(table.code, 0, "{args:?}: {}", table.stderr);
        assert!(!table.stdout.trim().is_empty(), "{args:?} prints something");
        assert!(serde_json::from_str::<Value>(&table.stdout).is_err(), "{args:?}: a table, not JSON");
        let mut json_args = vec!["-o", "json"];
        json_args.extend(args.iter().copied());
        let json = gbctl(&gw, &json_args).await;
        assert_eq!(json.code, 0, "{json_args:?}: {}", json.stderr);
        json.json();
    }
    // The last mutating command in each mode: remove.
    assert_eq!(gbctl(&gw, &["keys", "remove", "Key3"]).await.code, 0);
    let v = gbctl(&gw, &["-o", "json", "keys", "remove", "Key2"]).await.json();
    assert_eq!(v, serde_json::json!([{"id": 2, "key": "AIza…Key2"}]));
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_runs_concurrently_with_a_bound() {
    // 16 keys whose probe takes 1 s each: one at a time would take 16 s; all at once 1 s; with
    // the bound of 8, two rounds: about 2 s.
    let keys: Vec<String> = (1..=16).map(key).collect();
    let slow = Script::Delay(Duration::from_secs(1), Box::new(Script::Ok));
    let mut fake = FakeGemini::new();
    for k in &keys {
        fake = fake.key(k, slow.clone());
    }
    let fake = fake.start().await;
    let gw = Gateway::builder(&fake.base_url()).keys(&keys).start().await;
    let started = std::time::Instant::now();
    let r = gbctl(&gw, &["-o", "json", "keys", "verify", "--all"]).await;
    let took = started.elapsed();
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.json().as_array().unwrap().len(), 16);
    assert!(took >= Duration::from_secs(2), "at most {} at once: {took:?}", gatewayd::verify::CONCURRENCY);
    assert!(took < Duration::from_secs(12), "concurrent, not one by one: {took:?}");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_setting_changes_are_all_kept() {
    let fake = FakeGemini::new().start().await;
    let gw = Gateway::builder(&fake.base_url()).start().await;
    let names =
        ["keys.max_retries", "keys.wait_secs", "keys.cooldown_secs", "keys.max_failures", "logs.error_retention_days"];
    // All five processes run at once.
    let children: Vec<_> =
        names.iter().map(|n| cmd(&gw, &["settings", "set", n, "9"]).stdout(Stdio::null()).spawn().unwrap()).collect();
    for mut child in children {
        assert_eq!(child.wait().await.unwrap().code(), Some(0));
    }
    let list = gbctl(&gw, &["-o", "json", "settings", "list"]).await.json();
    for n in names {
        let s = list.as_array().unwrap().iter().find(|s| s["name"] == n).unwrap();
        assert_eq!((s["value"].as_u64(), s["source"].as_str()), (Some(9), Some("runtime")), "{n}");
    }
    gw.stop().await;
}

/// A socket that accepts and never answers: every command but `logs -f` gives up after
/// `--timeout` with exit 3, in time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_that_never_answers_is_exit_3_within_the_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("silent.sock");
    let listener = tokio::net::UnixListener::bind(&path).unwrap();
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            open.push(stream);
        }
    });
    for args in [vec!["status"], vec!["keys", "list"], vec!["keys", "disable", "1"]] {
        let started = std::time::Instant::now();
        let mut c = Command::new(env!("CARGO_BIN_EXE_gbctl"));
        c.arg("--socket").arg(&path).args(["--timeout", "2s"]).args(&args).env_remove("GBCTL_SOCKET");
        let out = tokio::time::timeout(Duration::from_secs(20), c.output()).await.expect("gbctl gave up").unwrap();
        assert_eq!(out.status.code(), Some(3), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(String::from_utf8_lossy(&out.stderr).contains("--timeout"), "says why");
        assert!(started.elapsed() < Duration::from_secs(10), "{args:?} took {:?}", started.elapsed());
    }
    let bad = Command::new(env!("CARGO_BIN_EXE_gbctl")).args(["--timeout", "soon", "status"]).output().await.unwrap();
    assert_eq!(bad.status.code(), Some(2), "a bad DUR is a usage error");
    held.abort();
}

/// Real keys hold `-` and `_`: a tail that begins with `-` is a KEY, not an option; and client
/// text in a table cell (a model name with an escape sequence) is shown escaped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_tails_may_begin_with_a_dash_and_cells_are_escaped() {
    let fake = FakeGemini::new().start().await;
    let gw = Gateway::builder(&fake.base_url()).start().await;
    let dashed = "AIzaSyDashed0000000000000000000-xyz9";
    assert_eq!(gbctl(&gw, &["keys", "add", dashed]).await.code, 0);
    let r = gbctl(&gw, &["keys", "disable", "-xyz9"]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(gbctl(&gw, &["-o", "json", "keys", "list"]).await.json()[0]["state"], "disabled");
    assert_eq!(gbctl(&gw, &["keys", "enable", "--", "-xyz9"]).await.code, 0, "after -- too");
    assert_eq!(gbctl(&gw, &["keys", "reset", "-xyz9"]).await.code, 0);
    // A request whose model name carries an escape sequence: refused, but logged.
    let body = serde_json::json!({"model": "evil\u{1b}[31m", "messages": [{"role": "user", "content": "x"}]});
    let r = gw
        .request(
            http::Method::POST,
            "/v1/chat/completions",
            &[("authorization", "Bearer test-token-0123456789")],
            body.to_string(),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    gw.state.logbook.request(gatewayd::record::RequestRecord {
        model: Some("evil\u{1b}[31mred".into()),
        status: 400,
        error: Some("line one\nline two".into()),
        ..gatewayd::record::RequestRecord::bare(gw.state.now(), "chat.completions")
    });
    gw.logged_requests(1).await;
    let table = gbctl(&gw, &["logs", "-n", "5"]).await;
    assert_eq!(table.code, 0, "{}", table.stderr);
    assert!(!table.stdout.contains('\u{1b}'), "no raw escape reaches the terminal: {:?}", table.stdout);
    assert!(table.stdout.contains("\\u{1b}"), "shown escaped: {}", table.stdout);
    gw.stop().await;
}

#[tokio::test]
async fn removing_a_key_that_owns_files_needs_force() {
    let fake = FakeGemini::new().key(&key(1), Script::Ok).start().await;
    let gw = Gateway::builder(&fake.base_url()).keys(&[key(1)]).start().await;
    let h = |k: &'static str, v: &'static str| (k, v);
    let start = gw
        .request(
            http::Method::POST,
            "/upload/v1beta/files",
            &[
                h("x-goog-api-key", TOKEN),
                h("x-goog-upload-protocol", "resumable"),
                h("x-goog-upload-command", "start"),
            ],
            "{}",
        )
        .await;
    let url = start.headers["x-goog-upload-url"].to_str().unwrap().to_string();
    let path = url.strip_prefix(&gw.url("")).unwrap().to_string();
    let chunk = [h("x-goog-upload-command", "upload, finalize"), h("x-goog-upload-offset", "0")];
    assert_eq!(gw.request(http::Method::POST, &path, &chunk, "data").await.status, StatusCode::OK);
    let listed = gbctl(&gw, &["-o", "json", "keys", "list"]).await.json();
    assert_eq!(listed[0]["resources"], 1);
    let r = gbctl(&gw, &["keys", "remove", "1"]).await;
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(r.stderr.contains("owns 1 live resource") && r.stderr.contains("--force"), "{}", r.stderr);
    let r = gbctl(&gw, &["keys", "remove", "1", "--force"]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    gw.stop().await;
}

#[tokio::test]
async fn keys_carry_labels_from_add_and_set() {
    let fake = FakeGemini::new().start().await;
    let gw = Gateway::builder(&fake.base_url()).start().await;
    // Options after the keys (which may begin with `-`) are still options.
    let r =
        gbctl(&gw, &["keys", "add", &key(1), &key(2), "--kind", "vertex", "--group", "paid", "--note", "card 4"]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("added 2"), "{}", r.stdout);
    let r = gbctl(&gw, &["keys", "add", "--project=proj-1", &key(3)]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let list = gbctl(&gw, &["-o", "json", "keys", "list"]).await.json();
    let row = |i: usize| list[i].clone();
    assert_eq!(
        (row(0)["kind"].as_str(), row(0)["group"].as_str(), row(0)["note"].as_str(), row(0)["project"].as_str()),
        (Some("vertex"), Some("paid"), Some("card 4"), None)
    );
    assert_eq!(
        (row(2)["kind"].as_str(), row(2)["project"].as_str(), row(2)["proxy"].as_str()),
        (Some("gemini"), Some("proj-1"), None)
    );
    // keys set: by id and tail, "" clears; the table shows the labels.
    let r = gbctl(&gw, &["keys", "set", "1", "Key3", "--project", "proj-2", "--group", ""]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let list = gbctl(&gw, &["-o", "json", "keys", "list"]).await.json();
    assert_eq!((list[0]["project"].as_str(), list[0]["group"].as_str()), (Some("proj-2"), None));
    assert_eq!(list[1]["group"], "paid", "key 2 was not named");
    let table = gbctl(&gw, &["keys", "list"]).await.stdout;
    assert!(table.contains("vertex") && table.contains("proj-2") && table.contains("card 4"), "{table}");
    // Refusals: nothing to set (usage, 2), a bad name (1, with the reason), a bad kind (2).
    let r = gbctl(&gw, &["keys", "set", "1"]).await;
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("--group, --project or --note"), "{}", r.stderr);
    let r = gbctl(&gw, &["keys", "set", "1", "--group", "two words"]).await;
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("is not a name"), "{}", r.stderr);
    let r = gbctl(&gw, &["keys", "add", &key(4), "--kind", "openai"]).await;
    assert_eq!(r.code, 2, "{}", r.stderr);
    let r = gbctl(&gw, &["keys", "set", "99", "--note", "x"]).await;
    assert_eq!(r.code, 1, "no such key");
    gw.stop().await;
}
