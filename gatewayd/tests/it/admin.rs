//! The admin socket's `/metrics`, and the optional TCP metrics listener.

use bytes::Bytes;
use http::StatusCode;

use gatewayd_testkit::fake::{FakeGemini, Script};
use gatewayd_testkit::{GENERATE, Gateway, HELLO, key};

async fn uds_get(socket: &std::path::Path, path: &str) -> (StatusCode, String) {
    gatewayd_testkit::admin(socket, http::Method::GET, path, None).await
}

#[tokio::test]
async fn metrics_on_the_admin_socket() {
    let fake = FakeGemini::new().key(&key(1), Script::InvalidKey).key(&key(2), Script::Ok).start().await;
    let gw = Gateway::builder(&fake.base_url()).keys(&[key(1), key(2)]).start().await;
    assert_eq!(gw.post(GENERATE, HELLO).await.status, StatusCode::OK);
    gw.logged_requests(1).await;
    let (status, text) = uds_get(&gw.socket, "/metrics").await;
    assert_eq!(status, StatusCode::OK);
    for needle in [
        "gateway_requests_total{route=\"generateContent\",model=\"gemini-2.5-flash\",status=\"200\"} 1",
        "gateway_upstream_attempts_total{key_id=\"1\",outcome=\"failed\"} 1",
        "gateway_upstream_attempts_total{key_id=\"2\",outcome=\"ok\"} 1",
        "gateway_request_duration_seconds_count{route=\"generateContent\"} 1",
        "gateway_keys{state=\"invalid\"} 1",
        "gateway_keys{state=\"active\"} 1",
        "gateway_tokens_total{model=\"gemini-2.5-flash\",kind=\"prompt\"} 7",
        "gateway_log_records_dropped_total 0",
    ] {
        assert!(text.contains(needle), "missing {needle}:\n{text}");
    }
    assert!(!text.contains(&key(1)), "no key in metrics");
    let (status, _) = uds_get(&gw.socket, "/v1/nothing").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Admin routes are not reachable over TCP.
    assert_eq!(gw.get("/v1/status").await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        gw.request(http::Method::GET, "/metrics", &[("x-goog-api-key", gatewayd_testkit::TOKEN)], Bytes::new())
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    gw.stop().await;
}

/// A write the database refuses (another process holds it locked) is answered with an error,
/// not a success; log rows that cannot be written are counted as dropped while proxying goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_the_database_refuses_is_an_error_and_lost_rows_are_counted() {
    let fake = FakeGemini::new().key(&key(1), Script::Ok).start().await;
    let gw = Gateway::builder(&fake.base_url()).keys(&[key(1)]).start().await;
    let db = gw.state.config.load().database.path.clone();
    let locker = rusqlite::Connection::open(&db).unwrap();
    locker.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let body = Some(serde_json::json!({"keys": ["1"]}).to_string());
    let (status, text) = gatewayd_testkit::admin(&gw.socket, http::Method::POST, "/v1/keys/disable", body).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{text}");
    assert!(text.contains("not saved"), "{text}");
    assert_eq!(gw.post(GENERATE, HELLO).await.status, StatusCode::OK, "proxying goes on");
    for _ in 0..400 {
        if gw.state.logbook.dropped() > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(gw.state.logbook.dropped() > 0, "the unwritten request row is counted as dropped");
    locker.execute_batch("ROLLBACK").unwrap();
    gw.stop().await;
}
