//! The real `gatewayd` binary as an operator runs it: defaults, config refusals (exit 78),
//! check-config, and SIGTERM draining a stream. These tests wait on the child process with
//! blocking calls, so they run on a multi-threaded runtime: the in-process FakeGemini keeps a
//! thread of its own to answer on.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use http::{Method, StatusCode};
use http_body_util::BodyExt;

use gatewayd_testkit::fake::{FakeGemini, Script, final_chunk, text_chunk};
use gatewayd_testkit::{HELLO, STREAM_SSE, TOKEN, key};

fn gatewayd(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gatewayd"));
    cmd.current_dir(dir);
    for (k, _) in std::env::vars() {
        if k.starts_with("GATEWAY_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("RUST_LOG", "info");
    cmd
}

/// A temp dir holding a gateway.toml for one key of `upstream`, the test token and port 0.
fn one_key_config(upstream: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n[upstream]\nbase_url = \"{upstream}\"\n[auth]\ntokens = [\"{TOKEN}\"]\n[keys]\napi_keys = [\"{}\"]\n",
        key(1)
    );
    std::fs::write(dir.path().join("gateway.toml"), config).unwrap();
    dir
}

/// A running gatewayd whose stderr is collected line by line.
struct Running {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Running {
    fn start(mut cmd: Command) -> Running {
        let mut child = cmd.stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        Running { child, lines, seen: Vec::new() }
    }

    /// Waits (generously) for a stderr line containing `needle`.
    fn wait_for(&mut self, needle: &str) -> String {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while std::time::Instant::now() < deadline {
            if let Ok(line) = self.lines.recv_timeout(Duration::from_millis(100)) {
                self.seen.push(line.clone());
                if line.contains(needle) {
                    return line;
                }
            }
        }
        panic!("gatewayd never printed {needle:?}; it printed: {:#?}", self.seen);
    }

    fn addr(&mut self) -> String {
        let line = self.wait_for("serving API clients on http://");
        line.rsplit("http://").next().unwrap().trim().to_string()
    }

    fn signal(&self, sig: &str) {
        let ok =
            Command::new("kill").arg(format!("-{sig}")).arg(self.child.id().to_string()).status().unwrap().success();
        assert!(ok);
    }

    fn wait_exit(&mut self) -> i32 {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                while let Ok(line) = self.lines.recv_timeout(Duration::from_millis(200)) {
                    self.seen.push(line);
                }
                return status.code().unwrap_or(-1);
            }
            assert!(std::time::Instant::now() < deadline, "gatewayd did not exit");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fresh_start_on_embedded_defaults() {
    let dir = tempfile::tempdir().unwrap();
    // Everything default but the port (8000 may be taken on a test machine).
    let mut cmd = gatewayd(dir.path());
    cmd.env("GATEWAY_SERVER__LISTEN", "127.0.0.1:0");
    let mut gw = Running::start(cmd);
    let token_line = gw.wait_for("generated client token: ");
    assert!(token_line.contains("shown only now"));
    let token =
        token_line.split("generated client token: ").nth(1).unwrap().split_whitespace().next().unwrap().to_string();
    assert!(token.starts_with("gw-") && token.len() == 51, "{token}");
    let addr = gw.addr();
    assert!(dir.path().join("data/gateway.db").exists());
    let socket = dir.path().join("data/gatewayd.sock");
    assert_eq!(std::fs::metadata(&socket).unwrap().permissions().mode() & 0o777, 0o600);
    let client = gatewayd_testkit::client();
    let res = client.get(format!("http://{addr}/health").parse().unwrap()).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    // The generated token works.
    let mut req = http::Request::new(http_body_util::Full::new(bytes::Bytes::new()));
    *req.uri_mut() = format!("http://{addr}/v1beta/models").parse().unwrap();
    req.headers_mut().insert("x-goog-api-key", token.parse().unwrap());
    let res = client.request(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE, "authenticated; no keys yet");
    gw.signal("INT");
    assert_eq!(gw.wait_exit(), 0);
    assert!(!socket.exists(), "the socket is removed on a clean stop");
    // A second start prints no token: it is stored, and still works.
    let mut cmd = gatewayd(dir.path());
    cmd.env("GATEWAY_SERVER__LISTEN", "127.0.0.1:0");
    let mut gw = Running::start(cmd);
    let addr = gw.addr();
    assert_eq!(status_with(&addr, &token).await, StatusCode::SERVICE_UNAVAILABLE);
    gw.signal("TERM");
    assert_eq!(gw.wait_exit(), 0);
    assert!(!gw.seen.iter().any(|l| l.contains("gw-")), "{:#?}", gw.seen);
    // A token configured later (here from the environment) takes over from the generated one.
    let mut cmd = gatewayd(dir.path());
    cmd.env("GATEWAY_SERVER__LISTEN", "127.0.0.1:0").env("GATEWAY_AUTH__TOKENS", "operator-token-1");
    let mut gw = Running::start(cmd);
    let addr = gw.addr();
    assert_eq!(status_with(&addr, "operator-token-1").await, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(status_with(&addr, &token).await, StatusCode::UNAUTHORIZED);
    gw.signal("TERM");
    assert_eq!(gw.wait_exit(), 0);
}

/// The status of an authenticated `GET /v1beta/models` (503 with no keys: authenticated).
async fn status_with(addr: &str, token: &str) -> StatusCode {
    let mut req = http::Request::new(http_body_util::Full::new(bytes::Bytes::new()));
    *req.uri_mut() = format!("http://{addr}/v1beta/models").parse().unwrap();
    req.headers_mut().insert("x-goog-api-key", token.parse().unwrap());
    gatewayd_testkit::client().request(req).await.unwrap().status()
}

#[test]
fn check_config_shows_defaults_with_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = gatewayd(dir.path()).arg("check-config").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    let v: toml::Table = toml::from_str(&text).unwrap();
    assert_eq!(v["server"]["listen"].as_str(), Some("127.0.0.1:8000"));
    assert_eq!(v["database"]["path"].as_str(), Some("data/gateway.db"));
    assert!(!dir.path().join("data").exists(), "check-config creates nothing");
}

#[test]
fn check_config_redacts_secrets_and_layers_env() {
    let dir = tempfile::tempdir().unwrap();
    let k = key(7);
    std::fs::write(
        dir.path().join("gateway.toml"),
        format!("[auth]\ntokens = [\"supersecret-token-wxyz\"]\n[keys]\napi_keys = [\"{k}\"]\nmax_retries = 5\n"),
    )
    .unwrap();
    let out = gatewayd(dir.path()).arg("check-config").env("GATEWAY_KEYS__MAX_RETRIES", "9").output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(!text.contains("supersecret") && !text.contains(&k), "{text}");
    assert!(text.contains("supe…wxyz") && text.contains("AIza…Key7"), "{text}");
    assert!(text.contains("max_retries = 9"), "env beats file: {text}");
}

#[test]
fn bad_configuration_exits_78_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("[server]\nlisten = \"not-an-address\"\n", "server.listen"),
        ("[keys]\nmax_retriez = 3\n", "max_retriez"),
        ("[logs]\nrequest_retention_days = \"thirty\"\n", "logs.request_retention_days"),
        ("[keys\n", "not valid TOML"),
    ];
    for (text, needle) in cases {
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, text).unwrap();
        for args in [vec!["--config", "bad.toml"], vec!["check-config", "--config", "bad.toml"]] {
            let out = gatewayd(dir.path()).args(&args).output().unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(78), "{args:?} {text}: {stderr}");
            assert!(stderr.contains(needle), "{stderr}");
        }
    }
    // From the environment, and through $GATEWAY_CONFIG.
    let out = gatewayd(dir.path()).env("GATEWAY_UPSTREAM__TIMEOUT_SECS", "0").output().unwrap();
    assert_eq!(out.status.code(), Some(78));
    assert!(String::from_utf8_lossy(&out.stderr).contains("GATEWAY_UPSTREAM__TIMEOUT_SECS"), "names the variable");
    // Kubernetes' own variables for a Service named `gateway` are not ours: ignored.
    let out = gatewayd(dir.path())
        .arg("check-config")
        .env("GATEWAY_SERVICE_HOST", "10.0.0.7")
        .env("GATEWAY_PORT", "tcp://10.0.0.7:8000")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let out = gatewayd(dir.path()).arg("check-config").env("GATEWAY_CONFIG", "bad.toml").output().unwrap();
    assert_eq!(out.status.code(), Some(78));
    let out = gatewayd(dir.path()).args(["--config", "missing.toml"]).output().unwrap();
    assert_eq!(out.status.code(), Some(78));
}

#[test]
fn example_config_parses_and_validates() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../gateway.toml.example");
    let layers = gatewayd::config::Layers::from_parts(Some(path.clone()), Default::default()).unwrap();
    let config = layers.resolve(&Default::default()).unwrap();
    assert_eq!(config, gatewayd::config::Config::default(), "the example documents the defaults");
    let text = std::fs::read_to_string(path).unwrap();
    for field in gatewayd::config::FIELDS {
        let leaf = field.name.split('.').nth(1).unwrap();
        assert!(text.contains(&format!("\n{leaf} = ")), "the example documents {}", field.name);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_a_running_stream() {
    let events = vec![text_chunk("one"), text_chunk("two"), text_chunk("three"), final_chunk("four", 5, 4)];
    let fake = FakeGemini::new().key(&key(1), Script::Sse { events, gap: Duration::from_millis(400) }).start().await;
    let dir = one_key_config(&fake.base_url());
    let mut gw = Running::start(gatewayd(dir.path()));
    let addr = gw.addr();
    let client = gatewayd_testkit::client();
    let mut req = http::Request::new(http_body_util::Full::new(bytes::Bytes::from(HELLO)));
    *req.method_mut() = Method::POST;
    *req.uri_mut() = format!("http://{addr}{STREAM_SSE}").parse().unwrap();
    req.headers_mut().insert("x-goog-api-key", TOKEN.parse().unwrap());
    let res = client.request(req).await.unwrap();
    let mut body = res.into_body();
    let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert!(String::from_utf8_lossy(&first).contains("one"));
    gw.signal("TERM");
    gw.wait_for("shutting down: draining");
    // New connections are refused at once while the stream finishes.
    let refused = tokio::time::timeout(
        Duration::from_secs(5),
        gatewayd_testkit::client().get(format!("http://{addr}/health").parse().unwrap()),
    )
    .await
    .expect("refused promptly, not queued until the drain ends");
    assert!(refused.is_err(), "stopped accepting");
    let rest = body.collect().await.expect("the stream completes").to_bytes();
    let rest = String::from_utf8_lossy(&rest);
    assert!(rest.contains("two") && rest.contains("three") && rest.contains("four"), "{rest}");
    assert_eq!(gw.wait_exit(), 0);
    // The log writer was flushed: the drained stream is in the request log.
    let store = gatewayd::store::Store::open(&dir.path().join("data/gateway.db")).unwrap();
    let rows = store.recent_requests(&gatewayd::store::LogFilter { limit: 10, ..Default::default() }).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (rows[0].record.prompt_tokens, rows[0].record.completion_tokens, rows[0].record.error.as_deref()),
        (Some(5), Some(4), None)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_listen_serves_only_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = gatewayd(dir.path());
    cmd.env("GATEWAY_SERVER__LISTEN", "127.0.0.1:0").env("GATEWAY_SERVER__METRICS_LISTEN", "127.0.0.1:0");
    let mut gw = Running::start(cmd);
    let line = gw.wait_for("serving metrics on http://");
    let url = line.rsplit("http://").next().unwrap().trim().to_string();
    let client = gatewayd_testkit::client();
    let res = client.get(format!("http://{url}").parse().unwrap()).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let text = res.into_body().collect().await.unwrap().to_bytes();
    assert!(String::from_utf8_lossy(&text).contains("gateway_keys{state=\"active\"} 0"));
    let other = url.replace("/metrics", "/v1/status");
    assert_eq!(client.get(format!("http://{other}").parse().unwrap()).await.unwrap().status(), StatusCode::NOT_FOUND);
    gw.signal("TERM");
    assert_eq!(gw.wait_exit(), 0);
}

/// Files on disk: the data directory 0700 and the database with its -wal and -shm 0600 under a
/// umask of 022, existing files tightened; another local user reads nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_files_are_private_whatever_the_umask() {
    let dir = tempfile::tempdir().unwrap();
    let start = || {
        let mut cmd = Command::new("sh");
        cmd.current_dir(dir.path())
            .arg("-c")
            .arg(format!("umask 022; exec {}", env!("CARGO_BIN_EXE_gatewayd")))
            .env("GATEWAY_SERVER__LISTEN", "127.0.0.1:0")
            .env("RUST_LOG", "info");
        Running::start(cmd)
    };
    let mut gw = start();
    gw.addr();
    let mode = |name: &str| std::fs::metadata(dir.path().join(name)).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode("data"), 0o700);
    for f in ["data/gateway.db", "data/gateway.db-wal", "data/gateway.db-shm", "data/gatewayd.sock"] {
        assert_eq!(mode(f), 0o600, "{f}");
    }
    gw.signal("TERM");
    assert_eq!(gw.wait_exit(), 0);
    // Files left readable by an older version are tightened at the next start.
    std::fs::set_permissions(dir.path().join("data/gateway.db"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut gw = start();
    gw.addr();
    assert_eq!(mode("data/gateway.db"), 0o600);
    gw.signal("TERM");
    assert_eq!(gw.wait_exit(), 0);
}

/// `server.admin_socket` replaces only a stale socket: a regular file there, or the database
/// itself, is refused at start (exit 78 naming the field) and left as it was.
#[test]
fn the_admin_socket_never_replaces_another_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notes.txt"), "keep me").unwrap();
    let out = gatewayd(dir.path())
        .env("GATEWAY_SERVER__LISTEN", "127.0.0.1:0")
        .env("GATEWAY_SERVER__ADMIN_SOCKET", "notes.txt")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("server.admin_socket"));
    assert_eq!(std::fs::read_to_string(dir.path().join("notes.txt")).unwrap(), "keep me");
    // The database's own path, spelled differently from database.path.
    std::fs::create_dir_all(dir.path().join("data")).unwrap();
    let out = gatewayd(dir.path())
        .env("GATEWAY_SERVER__LISTEN", "127.0.0.1:0")
        .env("GATEWAY_SERVER__ADMIN_SOCKET", "./data/../data/gateway.db")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("server.admin_socket"));
    let db = std::fs::metadata(dir.path().join("data/gateway.db")).unwrap();
    assert!(db.is_file() && db.len() > 0, "the database is still there");
}

/// A corrupt database fails in well under 2 s with one message naming the file and the cause.
#[test]
fn a_corrupt_database_fails_fast_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("data")).unwrap();
    std::fs::write(dir.path().join("data/gateway.db"), vec![0x42u8; 8192]).unwrap();
    let started = std::time::Instant::now();
    let out = gatewayd(dir.path()).env("GATEWAY_SERVER__LISTEN", "127.0.0.1:0").output().unwrap();
    let took = started.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(took < Duration::from_secs(2), "took {took:?}");
    assert!(stderr.contains("data/gateway.db") && stderr.contains("not a database"), "{stderr}");
    assert!(stderr.lines().filter(|l| l.contains("gateway.db")).count() <= 2, "no repeated lines: {stderr}");
}

/// What gbctl was told is saved is saved: kill -9 right after each acknowledged write, restart,
/// and the change is there, again and again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_kill_9() {
    use gatewayd_testkit::admin;
    let dir = tempfile::tempdir().unwrap();
    let start = || {
        let mut cmd = gatewayd(dir.path());
        cmd.env("GATEWAY_SERVER__LISTEN", "127.0.0.1:0")
            .env("GATEWAY_KEYS__API_KEYS", r#"["key-one-0001","key-two-0002"]"#)
            .env("GATEWAY_AUTH__TOKENS", r#"["t-0123456789"]"#);
        let mut gw = Running::start(cmd);
        gw.addr();
        gw
    };
    let socket = dir.path().join("data/gatewayd.sock");
    let state_of = |keys: &str, id: u64| -> String {
        let v: serde_json::Value = serde_json::from_str(keys).unwrap();
        v.as_array().unwrap().iter().find(|k| k["id"] == id).unwrap()["state"].as_str().unwrap().to_string()
    };
    for round in 0..3 {
        for (path, want) in [("/v1/keys/disable", "disabled"), ("/v1/keys/enable", "active")] {
            let mut gw = start();
            let body = Some(serde_json::json!({"keys": ["1", "2"]}).to_string());
            let (status, text) = admin(&socket, Method::POST, path, body).await;
            assert_eq!(status, StatusCode::OK, "{text}");
            gw.signal("KILL");
            gw.wait_exit();
            let mut gw = start();
            let (_, keys) = admin(&socket, Method::GET, "/v1/keys", None).await;
            assert_eq!(
                (state_of(&keys, 1), state_of(&keys, 2)),
                (want.to_string(), want.to_string()),
                "round {round} {path}"
            );
            gw.signal("KILL");
            gw.wait_exit();
        }
    }
    // A runtime setting likewise.
    let mut gw = start();
    let body = Some(serde_json::json!({"value": "7"}).to_string());
    assert_eq!(admin(&socket, Method::PUT, "/v1/settings/keys.max_retries", body).await.0, StatusCode::OK);
    gw.signal("KILL");
    gw.wait_exit();
    let mut gw = start();
    let (_, setting) = admin(&socket, Method::GET, "/v1/settings/keys.max_retries", None).await;
    assert!(setting.contains("\"value\":7"), "{setting}");
    gw.signal("TERM");
    gw.wait_exit();
}

/// During the drain the admin socket answers and `status` says the daemon is draining and what
/// is in flight; a second signal ends the drain at once, and the stream it cut leaves a 499 row.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_signal_ends_the_drain_and_cut_streams_are_logged() {
    let gate = std::sync::Arc::new(tokio::sync::Notify::new());
    let endless = Script::Gated { first: text_chunk("one"), gate, rest: vec![] };
    let fake = FakeGemini::new().key(&key(1), endless).start().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("gateway.toml"),
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\nshutdown_grace_secs = 60\n[upstream]\nbase_url = \"{}\"\n[auth]\ntokens = [\"{TOKEN}\"]\n[keys]\napi_keys = [\"{}\"]\n",
            fake.base_url(),
            key(1)
        ),
    )
    .unwrap();
    let mut gw = Running::start(gatewayd(dir.path()));
    let addr = gw.addr();
    let mut req = http::Request::new(http_body_util::Full::new(bytes::Bytes::from(HELLO)));
    *req.method_mut() = Method::POST;
    *req.uri_mut() = format!("http://{addr}{STREAM_SSE}").parse().unwrap();
    req.headers_mut().insert("x-goog-api-key", TOKEN.parse().unwrap());
    let res = gatewayd_testkit::client().request(req).await.unwrap();
    let mut body = res.into_body();
    let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert!(String::from_utf8_lossy(&first).contains("one"));
    gw.signal("TERM");
    gw.wait_for("shutting down");
    let socket = dir.path().join("data/gatewayd.sock");
    let (status, text) = gatewayd_testkit::admin(&socket, Method::GET, "/v1/status", None).await;
    assert_eq!(status, StatusCode::OK, "the admin socket stays up during the drain: {text}");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!((v["draining"].as_bool(), v["in_flight"].as_u64()), (Some(true), Some(1)), "{v}");
    let started = std::time::Instant::now();
    gw.signal("TERM");
    assert_eq!(gw.wait_exit(), 0);
    assert!(started.elapsed() < Duration::from_secs(10), "not the 60 s grace: {:?}", started.elapsed());
    let store = gatewayd::store::Store::open(&dir.path().join("data/gateway.db")).unwrap();
    let rows = store.recent_requests(&gatewayd::store::LogFilter { limit: 10, ..Default::default() }).unwrap();
    assert_eq!(rows.len(), 1, "the cut stream is logged");
    assert_eq!(rows[0].record.status, 499);
    assert!(rows[0].record.error.as_deref().unwrap().contains("shutdown"), "{:?}", rows[0].record.error);
}

/// The `upstream.proxy` password never shows: not in check-config, not in settings, not in the
/// logs or errors of a request that failed through the proxy. And the open-file limit is raised.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proxy_password_is_absent_from_every_output() {
    let dir = tempfile::tempdir().unwrap();
    let password = "hunter2-proxy-password";
    let proxy = format!("http://alice:{password}@127.0.0.1:1");
    // And upstream.proxies, whose entries carry passwords the same way (the requests go there).
    let pinned = "swordfish-proxies-password";
    let proxies = format!(r#"["http://bob:{pinned}@127.0.0.1:1", "socks5://carol:{pinned}@127.0.0.1:1"]"#);
    let secret = |text: &str| text.contains(password) || text.contains(pinned);
    let out = gatewayd(dir.path())
        .arg("check-config")
        .env("GATEWAY_UPSTREAM__PROXY", &proxy)
        .env("GATEWAY_UPSTREAM__PROXIES", &proxies)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!secret(&text) && text.contains("alice:") && text.contains("bob:"), "{text}");
    let mut cmd = gatewayd(dir.path());
    cmd.env("GATEWAY_SERVER__LISTEN", "127.0.0.1:0")
        .env("GATEWAY_UPSTREAM__PROXY", &proxy)
        .env("GATEWAY_UPSTREAM__PROXIES", &proxies)
        .env("GATEWAY_KEYS__API_KEYS", r#"["key-one-0001"]"#)
        .env("GATEWAY_AUTH__TOKENS", r#"["t-0123456789"]"#);
    let mut gw = Running::start(cmd);
    let addr = gw.addr();
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", gw.child.id())).unwrap();
    let open_files = limits.lines().find(|l| l.starts_with("Max open files")).unwrap().to_string();
    let fields: Vec<&str> = open_files.split_whitespace().collect();
    assert_eq!(fields[3], fields[4], "the soft limit is raised to the hard one: {open_files}");
    let socket = dir.path().join("data/gatewayd.sock");
    for path in ["/v1/settings/upstream.proxy", "/v1/settings/upstream.proxies", "/v1/settings", "/v1/keys"] {
        let (_, text) = gatewayd_testkit::admin(&socket, Method::GET, path, None).await;
        assert!(!secret(&text) && (text.contains("alice") || text.contains("bob")), "{path}: {text}");
    }
    let mut req = http::Request::new(http_body_util::Full::new(bytes::Bytes::from(HELLO)));
    *req.method_mut() = Method::POST;
    *req.uri_mut() = format!("http://{addr}/v1beta/models/gemini-2.5-flash:generateContent").parse().unwrap();
    req.headers_mut().insert("x-goog-api-key", "t-0123456789".parse().unwrap());
    let res = gatewayd_testkit::client().request(req).await.unwrap();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    assert!(!secret(&String::from_utf8_lossy(&body)));
    tokio::time::sleep(Duration::from_millis(300)).await;
    for path in ["/v1/logs?n=10", "/v1/logs?n=10&errors=true"] {
        let (_, text) = gatewayd_testkit::admin(&socket, Method::GET, path, None).await;
        assert!(!secret(&text), "{path}: {text}");
    }
    gw.signal("TERM");
    gw.wait_exit();
    assert!(!gw.seen.iter().any(|l| secret(l)), "{:#?}", gw.seen);
}

/// A request body of `left` bytes made as it is sent, 1 MiB a frame: the client holds no more
/// than a frame, so whatever memory the upload takes is the daemon's.
struct Generated {
    frame: bytes::Bytes,
    left: usize,
}

impl hyper::body::Body for Generated {
    type Data = bytes::Bytes;
    type Error = std::convert::Infallible;
    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<bytes::Bytes>, Self::Error>>> {
        let n = self.left.min(self.frame.len());
        self.left -= n;
        std::task::Poll::Ready((n > 0).then(|| Ok(hyper::body::Frame::data(self.frame.slice(..n)))))
    }
}

/// Peak resident memory of a process (`VmHWM`), in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_few_hundred_mb_upload_passes_with_the_daemons_memory_flat() {
    const SIZE: usize = 320 << 20;
    let fake = FakeGemini::new().key(&key(1), Script::Ok).start().await;
    let dir = one_key_config(&fake.base_url());
    let mut gw = Running::start(gatewayd(dir.path()));
    let addr = gw.addr();
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::combinators::BoxBody<bytes::Bytes, std::convert::Infallible>>();
    let send = |path: String, headers: Vec<(&'static str, String)>, body: Generated| {
        let mut req = http::Request::new(body.boxed());
        *req.method_mut() = Method::POST;
        *req.uri_mut() = format!("http://{addr}{path}").parse().unwrap();
        for (k, v) in headers {
            req.headers_mut().insert(k, v.parse().unwrap());
        }
        client.request(req)
    };
    let empty = || Generated { frame: bytes::Bytes::new(), left: 0 };
    let start = send(
        "/upload/v1beta/files".into(),
        vec![
            ("x-goog-api-key", TOKEN.into()),
            ("x-goog-upload-protocol", "resumable".into()),
            ("x-goog-upload-command", "start".into()),
            ("x-goog-upload-header-content-length", SIZE.to_string()),
        ],
        empty(),
    )
    .await
    .unwrap();
    assert_eq!(start.status(), StatusCode::OK);
    let url = start.headers()["x-goog-upload-url"].to_str().unwrap().to_string();
    let path = url.strip_prefix(&format!("http://{addr}")).expect("the upload URL is the gateway's").to_string();
    let before = peak_rss_kib(gw.child.id());
    let frame = bytes::Bytes::from(vec![b'x'; 1 << 20]);
    let done = send(
        path,
        vec![("x-goog-upload-command", "upload, finalize".into()), ("x-goog-upload-offset", "0".into())],
        Generated { frame, left: SIZE },
    )
    .await
    .unwrap();
    assert_eq!(done.status(), StatusCode::OK);
    let body = done.into_body().collect().await.unwrap().to_bytes();
    let file: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(file["file"]["sizeBytes"], SIZE.to_string(), "every byte arrived upstream");
    let after = peak_rss_kib(gw.child.id());
    let grew_mib = after.saturating_sub(before) / 1024;
    println!("gatewayd peak RSS {} MiB before, {} MiB after a {} MiB upload", before / 1024, after / 1024, SIZE >> 20);
    assert!(grew_mib < 32, "the daemon's peak RSS grew {grew_mib} MiB relaying {} MiB", SIZE >> 20);
}
