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
    /// Client connections closed at once because `server.max_connections` were open.
    refused: Counter,
    /// The models a label may name: those the gateway has served, or the upstream lists. Any
    /// other name is `other`, so clients cannot grow the series without bound.
    known: parking_lot::Mutex<std::collections::HashSet<String>>,
}

/// The label for a model nobody has served or listed.
pub const OTHER_MODEL: &str = "other";

/// At most this many distinct model labels, whatever the upstream lists.
const MAX_MODELS: usize = 4096;

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        let attempts = Family::<AttemptLabels, Counter>::default();
        let latency = Family::new_with_constructor(LatencyHistogram);
        let tokens = Family::<TokenLabels, Counter>::default();
        let keys = Family::<StateLabels, Gauge>::default();
        let dropped = Counter::default();
        let refused = Counter::default();
        registry.register(
            "gateway_connections_refused",
            "Client connections closed at once because server.max_connections were open",
            refused.clone(),
        );
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
        Metrics { registry, requests, attempts, latency, tokens, keys, dropped, refused, known: Default::default() }
    }
}

impl Metrics {
    /// A client connection was closed at once: `server.max_connections` were open.
    pub fn connection_refused(&self) {
        self.refused.inc();
    }

    /// The counter of dropped log records, for the logbook to increment.
    pub fn dropped_counter(&self) -> Counter {
        self.dropped.clone()
    }

    /// Models the upstream lists may be named in labels.
    pub fn know(&self, models: impl IntoIterator<Item = String>) {
        let mut known = self.known.lock();
        for m in models {
            if known.len() >= MAX_MODELS {
                break;
            }
            known.insert(m);
        }
    }

    /// The label for `model`: itself once served (this record succeeding counts) or listed.
    fn model_label(&self, model: Option<&str>, served: bool) -> String {
        let Some(model) = model else { return String::new() };
        let mut known = self.known.lock();
        if known.contains(model) {
            return label(model);
        }
        if served && known.len() < MAX_MODELS {
            known.insert(model.to_string());
            return label(model);
        }
        OTHER_MODEL.to_string()
    }

    /// Counts the records the writer has written.
    pub fn observe(&self, requests: &[RequestRecord]) {
        for r in requests {
            let model = self.model_label(r.model.as_deref(), (200..300).contains(&r.status));
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
    fn unknown_models_share_one_label() {
        let m = Metrics::default();
        m.know(["listed".to_string()]);
        let record = |model: &str, status: u16| {
            let mut r = RequestRecord::bare(chrono::Utc::now(), "r");
            r.model = Some(model.into());
            r.status = status;
            r
        };
        let made_up: Vec<RequestRecord> = (0..500).map(|i| record(&format!("made-up-{i}"), 404)).collect();
        m.observe(&made_up);
        m.observe(&[record("listed", 400), record("served", 200), record("served", 500)]);
        let text = m.render(&[]);
        assert!(text.contains(r#"gateway_requests_total{route="r",model="other",status="404"} 500"#), "{text}");
        assert!(text.contains(r#"model="listed",status="400"} 1"#));
        assert!(text.contains(r#"model="served",status="500"} 1"#), "served once, named from then on");
        assert!(!text.contains("made-up"));
        assert!(text.lines().count() < 60, "bounded: {} lines", text.lines().count());
    }

    #[test]
    fn renders_counters_histograms_and_gauges() {
        let m = Metrics::default();
        let mut r = RequestRecord::bare(chrono::Utc::now(), "r");
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
