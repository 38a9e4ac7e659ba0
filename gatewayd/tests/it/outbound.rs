//! The outbound side: `upstream.proxy` (HTTP CONNECT and SOCKS5, with credentials, changed at
//! runtime), and h2c from clients.

use bytes::Bytes;
use http::StatusCode;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use gatewayd_testkit::fake::{FakeGemini, Script};
use gatewayd_testkit::proxies::{connect_proxy, socks5_proxy};
use gatewayd_testkit::{GENERATE, Gateway, HELLO, TOKEN, key};

#[tokio::test]
async fn upstream_goes_through_an_http_connect_proxy_with_credentials() {
    let fake = FakeGemini::new().key(&key(1), Script::Ok).start().await;
    let (proxy, seen) = connect_proxy().await;
    let gw = Gateway::builder(&fake.base_url())
        .keys(&[key(1)])
        .set("upstream.proxy", &format!("\"http://user:pw@{proxy}\""))
        .start()
        .await;
    assert_eq!(gw.post(GENERATE, HELLO).await.status, StatusCode::OK);
    assert_eq!(seen.targets.lock().unwrap().as_slice(), &[fake.addr.to_string()]);
    assert_eq!(seen.auth.lock().unwrap().as_slice(), &["Basic dXNlcjpwdw==".to_string()]);
    gw.stop().await;
}

#[tokio::test]
async fn upstream_goes_through_socks5_and_the_proxy_is_hot() {
    let fake = FakeGemini::new().key(&key(1), Script::Ok).start().await;
    let (proxy, seen) = socks5_proxy().await;
    let gw = Gateway::builder(&fake.base_url()).keys(&[key(1)]).start().await;
    assert_eq!(gw.post(GENERATE, HELLO).await.status, StatusCode::OK);
    assert!(seen.targets.lock().unwrap().is_empty(), "direct while no proxy is set");
    // A new proxy set at runtime is used by the next request (the client is rebuilt).
    let mut config = gw.state.settings.layers().resolve(&Default::default()).unwrap();
    config.upstream.proxy = format!("socks5://alice:s3cret@{proxy}");
    gw.state.config.store(config);
    assert_eq!(gw.post(GENERATE, HELLO).await.status, StatusCode::OK);
    assert_eq!(seen.targets.lock().unwrap().as_slice(), &[fake.addr.to_string()]);
    assert_eq!(seen.auth.lock().unwrap().as_slice(), &["alice:s3cret".to_string()]);
    gw.stop().await;
}

#[tokio::test]
async fn an_unreachable_proxy_is_our_network_not_a_key_and_not_a_hang() {
    let fake = FakeGemini::new().key(&key(1), Script::Ok).start().await;
    let gw = Gateway::builder(&fake.base_url())
        .keys(&[key(1)])
        .set("upstream.proxy", "\"http://127.0.0.1:1\"")
        .start()
        .await;
    let r = gw.post(GENERATE, HELLO).await;
    assert_eq!(r.status, StatusCode::BAD_GATEWAY, "the gateway's own network: {}", r.text());
    assert!(r.json()["error"]["message"].as_str().unwrap().contains("cannot connect upstream"), "{}", r.text());
    assert!(fake.requests().is_empty());
    assert_eq!(gw.health(&key(1)).failures(), 0, "no key charged");
    gw.stop().await;
}

#[tokio::test]
async fn clients_may_speak_h2c() {
    let fake = FakeGemini::new().key(&key(1), Script::Ok).start().await;
    let gw = Gateway::builder(&fake.base_url()).keys(&[key(1)]).start().await;
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).http2_only(true).build_http();
    let mut req = http::Request::new(Full::new(Bytes::from(HELLO)));
    *req.method_mut() = http::Method::POST;
    *req.uri_mut() = gw.url(GENERATE).parse().unwrap();
    req.headers_mut().insert("x-goog-api-key", TOKEN.parse().unwrap());
    let res = client.request(req).await.unwrap();
    assert_eq!((res.status(), res.version()), (StatusCode::OK, http::Version::HTTP_2));
    let body = res.into_body().collect().await.unwrap().to_bytes();
    assert!(String::from_utf8_lossy(&body).contains("Hello from the fake."));
    gw.stop().await;
}
