//! Benchmark (not a test): requests through the gateway versus straight to FakeGemini, to see
//! what the gateway adds per request. Run: `cargo bench -p gatewayd --bench proxy`.

use gatewayd_testkit as support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};

const REQUESTS: usize = 20_000;
const CONCURRENCY: usize = 32;

async fn run(url: String, headers: Vec<(&'static str, String)>, body: &'static str) -> (f64, Vec<Duration>) {
    let client = support::client();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..CONCURRENCY {
        let (client, next, url, headers) = (client.clone(), next.clone(), url.clone(), headers.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < REQUESTS {
                let mut req = http::Request::new(Full::new(Bytes::from_static(body.as_bytes())));
                *req.method_mut() = http::Method::POST;
                *req.uri_mut() = url.parse().unwrap();
                for (k, v) in &headers {
                    req.headers_mut().insert(*k, v.parse().unwrap());
                }
                let t = Instant::now();
                let res = client.request(req).await.unwrap();
                assert!(res.status().is_success());
                res.into_body().collect().await.unwrap();
                latencies.push(t.elapsed());
            }
            latencies
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let rps = REQUESTS as f64 / started.elapsed().as_secs_f64();
    all.sort();
    (rps, all)
}

fn report(name: &str, (rps, lat): &(f64, Vec<Duration>)) {
    let p = |q: f64| lat[((lat.len() as f64 * q) as usize).min(lat.len() - 1)].as_secs_f64() * 1000.0;
    println!("{name:<34} {rps:>9.0} req/s   p50 {:>6.2} ms   p99 {:>6.2} ms", p(0.50), p(0.99));
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let keys: Vec<String> = (1..=50).map(support::key).collect();
        let mut fake = support::fake::FakeGemini::new();
        for k in &keys {
            fake = fake.key(k, support::fake::Script::Ok);
        }
        let fake = fake.start().await;
        let gw = support::Gateway::builder(&fake.base_url()).keys(&keys).start().await;
        let direct_headers =
            vec![("x-goog-api-key", keys[0].clone()), ("content-type", "application/json".to_string())];
        let gw_headers =
            vec![("x-goog-api-key", support::TOKEN.to_string()), ("content-type", "application/json".to_string())];
        println!("{REQUESTS} requests, {CONCURRENCY} concurrent, 2 worker threads, 50 keys, loopback");
        let gen_direct =
            run(format!("{}{}", fake.base_url(), support::GENERATE), direct_headers.clone(), support::HELLO).await;
        let gen_gw = run(gw.url(support::GENERATE), gw_headers.clone(), support::HELLO).await;
        report("generateContent, direct to fake", &gen_direct);
        report("generateContent, via gateway", &gen_gw);
        let sse_direct =
            run(format!("{}{}", fake.base_url(), support::STREAM_SSE), direct_headers, support::HELLO).await;
        let sse_gw = run(gw.url(support::STREAM_SSE), gw_headers, support::HELLO).await;
        report("streamGenerateContent, direct", &sse_direct);
        report("streamGenerateContent, via gateway", &sse_gw);
        let chat = r#"{"model":"gemini-2.5-flash","messages":[{"role":"user","content":"Hello"}]}"#;
        let bearer = vec![
            ("authorization", format!("Bearer {}", support::TOKEN)),
            ("content-type", "application/json".to_string()),
        ];
        report("chat.completions, via gateway", &run(gw.url("/v1/chat/completions"), bearer, chat).await);
        println!("log records dropped: {}", gw.state.logbook.dropped());
        gw.stop().await;
    });
}
