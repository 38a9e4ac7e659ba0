//! Benchmark (not a test): how `keys list`, `stats` and `status` scale with the request log.
//! Fills a database with ROWS request-log rows (default 10 M) spread over the last 24 hours on
//! 50 keys and 4 models, through the log writer's own batched insert (so the rollups are built
//! as in production), then times the store's queries behind those commands, median of 5.
//! Run: `ROWS=10000000 DB=/tmp/big.db cargo bench -p gatewayd --bench logscale`; `scripts/bench`
//! runs it and times the gbctl commands against a gatewayd on the same database.

use std::time::Instant;

use chrono::{Duration, Utc};
use gatewayd::keypool::Labels;
use gatewayd::record::{AttemptRecord, RequestRecord};
use gatewayd::store::{StatsBy, Store};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn time<T>(f: impl Fn() -> T) -> f64 {
    median(
        (0..5)
            .map(|_| {
                let t = Instant::now();
                std::hint::black_box(f());
                t.elapsed().as_secs_f64() * 1000.0
            })
            .collect(),
    )
}

fn main() {
    let rows: u64 = std::env::var("ROWS").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000_000);
    let dir = tempfile::tempdir().unwrap();
    let path = std::env::var("DB").map(std::path::PathBuf::from).unwrap_or_else(|_| dir.path().join("big.db"));
    let _ = std::fs::remove_file(&path);
    let store = Store::open(&path).unwrap();
    let keys: Vec<String> = (0..50).map(|i| format!("AIzaSyBench{i:028}")).collect();
    let (added, _) = store.add_keys(&keys, &Labels::default(), false, Utc::now()).unwrap();
    let ids: Vec<i64> = added.iter().map(|k| k.id).collect();
    let models = ["gemini-2.5-flash", "gemini-2.5-pro", "gemini-2.0-flash", "text-embedding-004"];
    let now = Utc::now();
    let step = Duration::hours(24).num_milliseconds() as f64 / rows as f64;
    let started = Instant::now();
    let mut batch = Vec::with_capacity(512);
    for i in 0..rows {
        let ts = now - Duration::hours(24) + Duration::milliseconds((i as f64 * step) as i64);
        let key = ids[(i % ids.len() as u64) as usize];
        let status = if i % 50 == 0 { 429 } else { 200 };
        let attempt = AttemptRecord {
            ts,
            key_id: key,
            status: Some(status),
            ok: status == 200,
            latency_ms: 40 + i % 900,
            word: None,
        };
        batch.push(RequestRecord {
            model: Some(models[(i % 4) as usize].into()),
            key_id: Some(key),
            status,
            latency_ms: 40 + i % 900,
            attempts: vec![attempt],
            attempt_count: 1,
            prompt_tokens: Some(12),
            completion_tokens: Some(30),
            ..RequestRecord::bare(ts, "generateContent")
        });
        if batch.len() == 512 || i + 1 == rows {
            store.insert_logs(&batch, &[]).unwrap();
            batch.clear();
        }
    }
    println!("filled {rows} rows in {:.1} s ({})", started.elapsed().as_secs_f64(), path.display());
    let since = now - Duration::hours(24);
    println!("key_usage (keys list)     {:>8.1} ms", time(|| store.key_usage(since).unwrap()));
    println!("stats --by key            {:>8.1} ms", time(|| store.stats(StatsBy::Key, since).unwrap()));
    println!("stats --by model          {:>8.1} ms", time(|| store.stats(StatsBy::Model, since).unwrap()));
    println!(
        "status (1 m, 1 h, 24 h)   {:>8.1} ms",
        time(|| {
            [Duration::minutes(1), Duration::hours(1), Duration::hours(24)]
                .map(|d| store.count_requests_since(Utc::now() - d).unwrap())
        })
    );
}
