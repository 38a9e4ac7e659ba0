//! The counters behind `/metrics`, kept in the Prometheus project's client types and fed by the
//! log writer from the records it writes (off the hot path), so a dropped record is missing here
//! too and `gateway_log_records_dropped_total` says how many. The admin API renders them.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::{Family, MetricConstructor};
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::record::RequestRecord;

/// Client request latency buckets, in seconds.
const LATENCY_BUCKETS: &[f64] = &[0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0];

/// The key states `gateway_keys` reports, always all four (a state with no key is a 0).
pub const KEY_STATES: [&str; 4] = ["active", "cooling", "invalid", "disabled"];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    model: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AttemptLabels {
    key_id: i64,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TokenLabels {
    model: String,
    kind: &'static str,
}

#[derive(Clone)]
struct LatencyHistogram;

impl MetricConstructor<Histogram> for LatencyHistogram {
    fn new_metric(&self) -> Histogram {
        Histogram::new(LATENCY_BUCKETS.iter().copied())
    }
}

pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    attempts: Family<AttemptLabels, Counter>,
    latency: Family<RouteLabels, Histogram, LatencyHistogram>,
    tokens: Family<TokenLabels, Counter>,
    keys: Family<StateLabels, Gauge>,
    /// Shared with the logbook, which counts what it drops.
    dropped: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        let attempts = Family::<AttemptLabels, Counter>::default();
        let latency = Family::new_with_constructor(LatencyHistogram);
        let tokens = Family::<TokenLabels, Counter>::default();
        let keys = Family::<StateLabels, Gauge>::default();
        let dropped = Counter::default();
        registry.register("gateway_requests", "Client requests by route, model and status", requests.clone());
        registry.register("gateway_upstream_attempts", "Upstream attempts by key id and outcome", attempts.clone());
        registry.register("gateway_request_duration_seconds", "Client request latency by route", latency.clone());
        registry.register("gateway_keys", "Keys by state", keys.clone());
        registry.register("gateway_tokens", "Tokens by model and kind (prompt, completion)", tokens.clone());
        registry.register(
            "gateway_log_records_dropped",
            "Log records dropped because the writer fell behind",
            dropped.clone(),
        );
        Metrics { registry, requests, attempts, latency, tokens, keys, dropped }
    }
}

impl Metrics {
    /// The counter of dropped log records, for the logbook to increment.
    pub fn dropped_counter(&self) -> Counter {
        self.dropped.clone()
    }

    /// Counts the records the writer has written.
    pub fn observe(&self, requests: &[RequestRecord]) {
        for r in requests {
            let model = label(r.model.as_deref().unwrap_or_default());
            let route = label(&r.route);
            self.requests
                .get_or_create(&RequestLabels { route: route.clone(), model: model.clone(), status: r.status })
                .inc();
            for a in &r.attempts {
                let outcome = if a.ok { "ok" } else { "failed" };
                self.attempts.get_or_create(&AttemptLabels { key_id: a.key_id, outcome }).inc();
            }
            self.latency.get_or_create(&RouteLabels { route }).observe(r.latency_ms as f64 / 1000.0);
            if let Some(p) = r.prompt_tokens {
                self.tokens.get_or_create(&TokenLabels { model: model.clone(), kind: "prompt" }).inc_by(p);
            }
            if let Some(c) = r.completion_tokens {
                self.tokens.get_or_create(&TokenLabels { model, kind: "completion" }).inc_by(c);
            }
        }
    }

    /// The exposition text (OpenMetrics), with the key gauges set to `keys_by_state` first.
    pub fn render(&self, keys_by_state: &[(&'static str, i64)]) -> String {
        for (state, n) in keys_by_state {
            self.keys.get_or_create(&StateLabels { state }).set(*n);
        }
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// A label value escaped as the exposition format requires: prometheus-client 0.24 writes label
/// values as they are, so a quote or newline in one would break the whole scrape.
fn label(value: &str) -> String {
    if !value.contains(['\\', '"', '\n']) {
        return value.to_string();
    }
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_histograms_and_gauges() {
        let m = Metrics::default();
        let mut r = RequestRecord::for_test(chrono::Utc::now());
        r.model = Some("a\"b".into());
        r.prompt_tokens = Some(7);
        m.observe(&[r]);
        m.dropped_counter().inc_by(2);
        let text = m.render(&[("active", 3), ("invalid", 0)]);
        for line in [
            r#"gateway_requests_total{route="r",model="a\"b",status="200"} 1"#,
            r#"gateway_request_duration_seconds_count{route="r"} 1"#,
            r#"gateway_request_duration_seconds_bucket{le="0.05",route="r"} 1"#,
            r#"gateway_tokens_total{model="a\"b",kind="prompt"} 7"#,
            r#"gateway_keys{state="active"} 3"#,
            r#"gateway_keys{state="invalid"} 0"#,
            "gateway_log_records_dropped_total 2",
            "# EOF",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
        }
    }
}
