//! `/metrics` in Prometheus text.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use http::{HeaderValue, Response, header};

use crate::body::{Body, full};
use crate::state::State;

pub(super) fn metrics(state: &State) -> Response<Body> {
    let m = state.logbook.metrics().snapshot();
    let now = state.now();
    let mut out = String::new();
    let esc = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n");
    let _ = writeln!(out, "# HELP gateway_requests_total Client requests by route, model and status.");
    let _ = writeln!(out, "# TYPE gateway_requests_total counter");
    for ((route, model, status), n) in &m.requests {
        let _ = writeln!(
            out,
            "gateway_requests_total{{route=\"{}\",model=\"{}\",status=\"{status}\"}} {n}",
            esc(route),
            esc(model)
        );
    }
    let _ = writeln!(out, "# HELP gateway_upstream_attempts_total Upstream attempts by key id and outcome.");
    let _ = writeln!(out, "# TYPE gateway_upstream_attempts_total counter");
    for ((key, outcome), n) in &m.attempts {
        let _ = writeln!(out, "gateway_upstream_attempts_total{{key_id=\"{key}\",outcome=\"{outcome}\"}} {n}");
    }
    let _ = writeln!(out, "# HELP gateway_request_duration_seconds Client request latency by route.");
    let _ = writeln!(out, "# TYPE gateway_request_duration_seconds histogram");
    for (route, (buckets, sum_ms)) in &m.latency {
        let mut cumulative = 0;
        for (i, count) in buckets.iter().enumerate() {
            cumulative += count;
            let le = crate::logbook::LATENCY_BUCKETS_MS
                .get(i)
                .map(|ms| format!("{}", *ms as f64 / 1000.0))
                .unwrap_or("+Inf".into());
            let _ = writeln!(
                out,
                "gateway_request_duration_seconds_bucket{{route=\"{}\",le=\"{le}\"}} {cumulative}",
                esc(route)
            );
        }
        let _ = writeln!(
            out,
            "gateway_request_duration_seconds_sum{{route=\"{}\"}} {}",
            esc(route),
            *sum_ms as f64 / 1000.0
        );
        let _ = writeln!(out, "gateway_request_duration_seconds_count{{route=\"{}\"}} {cumulative}", esc(route));
    }
    let _ = writeln!(out, "# HELP gateway_keys Keys by state.");
    let _ = writeln!(out, "# TYPE gateway_keys gauge");
    let mut by_state: BTreeMap<&str, u64> =
        ["active", "cooling", "invalid", "disabled"].iter().map(|s| (*s, 0)).collect();
    for k in state.pool.snapshot().iter() {
        *by_state.entry(k.read(|h| h.display_state(now))).or_default() += 1;
    }
    for (s, n) in by_state {
        let _ = writeln!(out, "gateway_keys{{state=\"{s}\"}} {n}");
    }
    let _ = writeln!(out, "# HELP gateway_tokens_total Tokens by model and kind (prompt, completion).");
    let _ = writeln!(out, "# TYPE gateway_tokens_total counter");
    for ((model, kind), n) in &m.tokens {
        let _ = writeln!(out, "gateway_tokens_total{{model=\"{}\",kind=\"{kind}\"}} {n}", esc(model));
    }
    let _ =
        writeln!(out, "# HELP gateway_log_records_dropped_total Log records dropped because the writer fell behind.");
    let _ = writeln!(out, "# TYPE gateway_log_records_dropped_total counter");
    let _ = writeln!(out, "gateway_log_records_dropped_total {}", state.logbook.dropped());
    let mut res = Response::new(full(out));
    res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4"));
    res
}
