//! Benchmark (not a test): importing 10,000 keys with `gbctl keys add --file`, end to end
//! (CLI parse, one admin request, one SQLite transaction, pool insert), against a real daemon.
//! Run: `cargo bench -p gbctl --bench import`.

use gatewayd_testkit as support;

use std::time::{Duration, Instant};

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let fake = support::fake::FakeGemini::new().start().await;
        let mut times = Vec::new();
        for run in 0..5 {
            let gw = support::Gateway::builder(&fake.base_url()).start().await;
            let file = gw.dir.path().join("keys.txt");
            let keys: String = (0..10_000).map(|n| format!("AIzaSyBench{run}{n:0>27}\n")[..40].to_string()).collect();
            std::fs::write(&file, keys).unwrap();
            let started = Instant::now();
            let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_gbctl"))
                .args([
                    "--socket",
                    gw.socket.to_str().unwrap(),
                    "-o",
                    "json",
                    "keys",
                    "add",
                    "--file",
                    file.to_str().unwrap(),
                ])
                .output()
                .await
                .unwrap();
            let elapsed = started.elapsed();
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON answer");
            assert_eq!(v["added"], 10_000, "{v}");
            assert_eq!(gw.state.pool.snapshot().len(), 10_000);
            times.push(elapsed);
            gw.stop().await;
        }
        times.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        println!(
            "import 10,000 keys via gbctl keys add --file: min {:.1} ms, median {:.1} ms, max {:.1} ms (5 runs)",
            ms(times[0]),
            ms(times[2]),
            ms(times[4])
        );
    });
}
