//! `/metrics` in Prometheus text: the counters the log writer keeps, and the key gauges read now.

use http::{HeaderValue, Response, header};

use crate::body::{Body, full};
use crate::metrics::KEY_STATES;
use crate::state::State;

pub(super) fn metrics(state: &State) -> Response<Body> {
    let now = state.now();
    let mut by_state: Vec<(&'static str, i64)> = KEY_STATES.iter().map(|s| (*s, 0)).collect();
    for k in state.pool.snapshot().iter() {
        let shown = k.read(|h| h.display_state(now));
        if let Some(entry) = by_state.iter_mut().find(|(s, _)| *s == shown) {
            entry.1 += 1;
        }
    }
    let mut res = Response::new(full(state.logbook.metrics().render(&by_state)));
    // The contract promises Prometheus text: the body the crate writes (OpenMetrics) reads as
    // text format 0.0.4 too (its `# EOF` is a comment there), so it keeps the header it had.
    res.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"));
    res
}
