//! The edge as a hostile client meets it: slow heads, idle sockets, connection floods, slow and
//! stalled bodies, with short timeouts in the test config and raw TCP.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use gatewayd_testkit::fake::{FakeGemini, Script};
use gatewayd_testkit::{Gateway, TOKEN, key};

/// Reads until the peer closes (or `within` passes); returns what came and whether it closed.
async fn read_until_closed(s: &mut TcpStream, within: Duration) -> (String, bool) {
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + within;
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Err(_) => return (String::from_utf8_lossy(&got).into_owned(), false),
            Ok(Ok(0)) | Ok(Err(_)) => return (String::from_utf8_lossy(&got).into_owned(), true),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
}

async fn gateway(settings: &[(&str, &str)]) -> (gatewayd_testkit::fake::FakeHandle, Gateway) {
    let fake = FakeGemini::new().key(&key(1), Script::Ok).start().await;
    let mut b = Gateway::builder(&fake.base_url()).keys(&[key(1)]);
    for (name, value) in settings {
        b = b.set(name, value);
    }
    (fake, b.start().await)
}

const HEALTH: &[u8] = b"GET /health HTTP/1.1\r\nhost: gw\r\n\r\n";

/// A slowloris client that never finishes its head is answered 408 and cut within
/// `server.header_timeout_secs`; one that connects and sends nothing is cut too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_heads_are_cut_with_408() {
    let (_fake, gw) = gateway(&[("server.header_timeout_secs", "1"), ("server.idle_timeout_secs", "30")]).await;
    let started = Instant::now();
    let mut slow = TcpStream::connect(gw.addr).await.unwrap();
    slow.write_all(b"POST /v1beta/models/gemini-2.5-flash:generateContent HTTP/1.1\r\nhost: gw\r\n").await.unwrap();
    let mut silent = TcpStream::connect(gw.addr).await.unwrap();
    let (text, closed) = read_until_closed(&mut slow, Duration::from_secs(5)).await;
    assert!(closed && text.starts_with("HTTP/1.1 408"), "{closed} {text:?}");
    let (_, closed) = read_until_closed(&mut silent, Duration::from_secs(5)).await;
    assert!(closed, "a connection that sends nothing is cut as well");
    assert!(started.elapsed() < Duration::from_secs(4), "within the timeout: {:?}", started.elapsed());
    gw.stop().await;
}

/// A keep-alive connection may idle longer than the header timeout between requests, and is
/// closed once it idles for `server.idle_timeout_secs`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_keep_alive_connections_close_after_idle_timeout() {
    let (_fake, gw) = gateway(&[("server.header_timeout_secs", "1"), ("server.idle_timeout_secs", "3")]).await;
    let mut s = TcpStream::connect(gw.addr).await.unwrap();
    let mut buf = [0u8; 4096];
    s.write_all(HEALTH).await.unwrap();
    let n = s.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    tokio::time::sleep(Duration::from_millis(1800)).await;
    s.write_all(HEALTH).await.unwrap();
    let n = tokio::time::timeout(Duration::from_secs(3), s.read(&mut buf)).await.unwrap().unwrap();
    assert!(
        String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"),
        "reused after idling past the header timeout"
    );
    let started = Instant::now();
    let (text, closed) = read_until_closed(&mut s, Duration::from_secs(8)).await;
    assert!(closed && text.is_empty(), "{text:?}");
    let idle = started.elapsed();
    assert!(idle >= Duration::from_millis(2500) && idle < Duration::from_secs(6), "closed after {idle:?}");
    gw.stop().await;
}

/// Beyond `server.max_connections` a connection is accepted and closed at once, and counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_limit_are_closed_at_once() {
    let (_fake, gw) = gateway(&[("server.max_connections", "50"), ("server.header_timeout_secs", "120")]).await;
    let mut conns = Vec::new();
    for _ in 0..60 {
        conns.push(TcpStream::connect(gw.addr).await.unwrap());
    }
    let mut closed = 0;
    for c in &mut conns {
        if read_until_closed(c, Duration::from_millis(100)).await.1 {
            closed += 1;
        }
    }
    assert_eq!(closed, 10, "the ten beyond 50");
    let (_, text) = gatewayd_testkit::admin(&gw.socket, http::Method::GET, "/metrics", None).await;
    assert!(text.contains("gateway_connections_refused_total 10"), "{text}");
    drop(conns);
    // The slots come back: a new client is served.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(gw.get("/health").await.status, http::StatusCode::OK);
    gw.stop().await;
}

fn slow_post(declared: usize) -> String {
    format!(
        "POST /v1beta/models/gemini-2.5-flash:countTokens HTTP/1.1\r\nhost: gw\r\nx-goog-api-key: {TOKEN}\r\n\
         content-type: application/json\r\ncontent-length: {declared}\r\n\r\n"
    )
}

/// Request bodies held at once are bounded by `server.max_inflight_body_bytes`: past it a
/// request gets 503 with Retry-After, and the others finish.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_held_at_once_are_bounded() {
    let (_fake, gw) = gateway(&[
        ("server.max_body_bytes", "1024"),
        ("server.max_inflight_body_bytes", "2048"),
        ("server.header_timeout_secs", "5"),
    ])
    .await;
    let body = format!("{{\"contents\":[{{\"parts\":[{{\"text\":\"{}\"}}]}}]}}", "x".repeat(940));
    let mut slow = Vec::new();
    for _ in 0..2 {
        let mut s = TcpStream::connect(gw.addr).await.unwrap();
        s.write_all(slow_post(body.len()).as_bytes()).await.unwrap();
        s.write_all(&body.as_bytes()[..10]).await.unwrap();
        slow.push(s);
    }
    for _ in 0..200 {
        if gw.state.bodies.held() == 2 * body.len() as u64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(gw.state.bodies.held(), 2 * body.len() as u64, "both slow bodies hold their share");
    let mut third = TcpStream::connect(gw.addr).await.unwrap();
    third.write_all(slow_post(body.len()).as_bytes()).await.unwrap();
    let (text, _) = read_until_closed(&mut third, Duration::from_secs(2)).await;
    assert!(text.starts_with("HTTP/1.1 503") && text.to_ascii_lowercase().contains("retry-after: 1"), "{text}");
    for s in &mut slow {
        s.write_all(&body.as_bytes()[10..]).await.unwrap();
        let mut buf = [0u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await.unwrap().unwrap();
        assert!(
            String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"),
            "{}",
            String::from_utf8_lossy(&buf[..n])
        );
    }
    assert_eq!(gw.state.bodies.held(), 0, "given back");
    gw.stop().await;
}

/// A body that stops making progress is cut after `server.header_timeout_secs` with 408.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_body_is_cut_with_408() {
    let (fake, gw) = gateway(&[("server.header_timeout_secs", "1")]).await;
    let mut s = TcpStream::connect(gw.addr).await.unwrap();
    s.write_all(slow_post(500).as_bytes()).await.unwrap();
    s.write_all(b"{\"contents\":").await.unwrap();
    let started = Instant::now();
    let (text, _) = read_until_closed(&mut s, Duration::from_secs(5)).await;
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(started.elapsed() < Duration::from_secs(4));
    assert!(fake.requests().is_empty(), "nothing went upstream");
    gw.stop().await;
}
