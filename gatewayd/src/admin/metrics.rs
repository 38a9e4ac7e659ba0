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
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    res
}
