//! The request and error logs on their way to SQLite: a bounded channel the hot path
//! sends on without ever waiting (a full channel drops the record and counts it), and the one
//! writer task that batches inserts. Key-health changes travel on their own unbounded channel,
//! because those must never be dropped (they are rare: only a change of state is sent).

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::Utc;
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::keypool::Health;
use crate::metrics::Metrics;
use crate::record::{ErrorRecord, RequestRecord};
use crate::store::Store;

/// How many records are written in one transaction at most.
const BATCH: usize = 512;
/// How long the writer gathers records before it commits, unless a batch fills first: one
/// transaction per request under light load cost about a third of a request's instructions.
const BATCH_WINDOW: std::time::Duration = std::time::Duration::from_millis(50);

enum Record {
    Request(Box<RequestRecord>),
    Error(Box<ErrorRecord>),
}

/// A record as written, with its row id, for `gbctl logs -f`.
#[derive(Debug, Clone)]
pub enum Written {
    Request(i64, RequestRecord),
    Error(i64, ErrorRecord),
}

/// The hot path's handle: cheap to clone, never blocks.
#[derive(Clone)]
pub struct Logbook {
    records: mpsc::Sender<Record>,
    health: mpsc::UnboundedSender<HealthWrite>,
    dropped: prometheus_client::metrics::counter::Counter,
    follow: broadcast::Sender<Written>,
    metrics: Arc<Metrics>,
}

impl Logbook {
    pub fn request(&self, r: RequestRecord) {
        self.send(Record::Request(Box::new(r)));
    }

    pub fn error(&self, e: ErrorRecord) {
        self.send(Record::Error(Box::new(e)));
    }

    fn send(&self, r: Record) {
        if self.records.try_send(r).is_err() {
            self.dropped.inc();
        }
    }

    /// Persists a key's new health (sent only when it changed), soon.
    pub fn health(&self, id: i64, h: Health) {
        // The receiver lives until shutdown; a send after it is gone has nowhere to go.
        let _ = self.health.send(HealthWrite { id, health: h, committed: None });
    }

    /// Persists a key's new health and waits until it is committed: what an operator's write
    /// acknowledges. It rides the same queue as `health`, so an older change sent earlier can
    /// never overwrite it.
    pub async fn health_committed(&self, id: i64, h: Health) -> Result<(), String> {
        let (tx, rx) = oneshot::channel();
        self.health
            .send(HealthWrite { id, health: h, committed: Some(tx) })
            .map_err(|_| "gatewayd is shutting down".to_string())?;
        rx.await.map_err(|_| "the log writer stopped before saving".to_string())?
    }

    pub fn dropped(&self) -> u64 {
        self.dropped.get()
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Written> {
        self.follow.subscribe()
    }

    /// How many `logs -f` followers are connected.
    pub fn followers(&self) -> usize {
        self.follow.receiver_count()
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }
}

/// A key's health on its way to the database, and whom to tell once it is committed.
struct HealthWrite {
    id: i64,
    health: Health,
    committed: Option<oneshot::Sender<Result<(), String>>>,
}

/// Failed log writes are logged at most this often, with a count.
const WRITE_FAILURE_LOG_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

/// Owns the writer task; `close` flushes what is queued and waits for it.
pub struct Writer {
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Writer {
    pub async fn close(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = self.task.await;
    }
}

pub fn start(store: Store, capacity: usize) -> (Logbook, Writer) {
    let (records_tx, records) = mpsc::channel(capacity);
    let (health_tx, health) = mpsc::unbounded_channel();
    let (follow, _) = broadcast::channel(1024);
    let (stop_tx, stop) = oneshot::channel();
    let metrics = Arc::new(Metrics::default());
    let book = Logbook {
        records: records_tx,
        health: health_tx,
        dropped: metrics.dropped_counter(),
        follow: follow.clone(),
        metrics: metrics.clone(),
    };
    let task = tokio::spawn(write_loop(store, records, health, stop, follow, metrics));
    (book, Writer { stop: Some(stop_tx), task })
}

async fn write_loop(
    store: Store,
    mut records: mpsc::Receiver<Record>,
    mut health: mpsc::UnboundedReceiver<HealthWrite>,
    mut stop: oneshot::Receiver<()>,
    follow: broadcast::Sender<Written>,
    metrics: Arc<Metrics>,
) {
    let mut stopping = false;
    let dropped = metrics.dropped_counter();
    // Failed writes since the last warning, and when that was.
    let mut unlogged_failures: u64 = 0;
    let mut last_warning: Option<std::time::Instant> = None;
    loop {
        let mut requests = Vec::new();
        let mut errors = Vec::new();
        let mut healths: BTreeMap<i64, Health> = BTreeMap::new();
        let mut acks: Vec<oneshot::Sender<Result<(), String>>> = Vec::new();
        let mut keep = |w: HealthWrite, healths: &mut BTreeMap<i64, Health>| {
            healths.insert(w.id, w.health);
            acks.extend(w.committed);
        };
        let take = |r: Record, requests: &mut Vec<RequestRecord>, errors: &mut Vec<ErrorRecord>| match r {
            Record::Request(r) => requests.push(*r),
            Record::Error(e) => errors.push(*e),
        };
        if !stopping {
            tokio::select! {
                r = records.recv() => match r {
                    Some(r) => take(r, &mut requests, &mut errors),
                    None => stopping = true,
                },
                Some(w) = health.recv() => keep(w, &mut healths),
                _ = &mut stop => stopping = true,
            }
        }
        let deadline = tokio::time::Instant::now() + BATCH_WINDOW;
        while !stopping && requests.len() + errors.len() < BATCH {
            tokio::select! {
                r = records.recv() => match r {
                    Some(r) => take(r, &mut requests, &mut errors),
                    None => stopping = true,
                },
                Some(w) = health.recv() => keep(w, &mut healths),
                _ = tokio::time::sleep_until(deadline) => break,
                _ = &mut stop => stopping = true,
            }
        }
        while requests.len() + errors.len() < BATCH {
            match records.try_recv() {
                Ok(r) => take(r, &mut requests, &mut errors),
                Err(_) => break,
            }
        }
        while let Ok(w) = health.try_recv() {
            keep(w, &mut healths);
        }
        let idle = requests.is_empty() && errors.is_empty() && healths.is_empty();
        if !idle {
            metrics.observe(&requests);
            let store = store.clone();
            let (saved, logged) = tokio::task::spawn_blocking(move || {
                let now = Utc::now();
                let saved = match healths.is_empty() {
                    true => Ok(()),
                    false => {
                        let updates: Vec<(i64, Health)> = healths.into_iter().collect();
                        store.save_health(&updates, now).map_err(|e| format!("saving key health failed: {e}"))
                    }
                };
                let count = requests.len() + errors.len();
                let logged = match count {
                    0 => Ok(Vec::new()),
                    _ => match store.insert_logs(&requests, &errors) {
                        Ok((request_ids, error_ids)) => {
                            let requests = request_ids.into_iter().zip(requests).map(|(id, r)| Written::Request(id, r));
                            let errors = error_ids.into_iter().zip(errors).map(|(id, e)| Written::Error(id, e));
                            Ok(requests.chain(errors).collect::<Vec<_>>())
                        }
                        Err(e) => Err((count as u64, e.to_string())),
                    },
                };
                (saved, logged)
            })
            .await
            .unwrap_or_else(|e| (Err(format!("the writer task failed: {e}")), Ok(Vec::new())));
            if let Err(e) = &saved {
                tracing::error!("{e}");
            }
            for ack in acks {
                let _ = ack.send(saved.clone());
            }
            match logged {
                Ok(written) => {
                    for w in written {
                        let _ = follow.send(w);
                    }
                }
                // Lost rows are dropped rows: counted (the status and the metric show it) and
                // logged at most once per WRITE_FAILURE_LOG_EVERY, while proxying goes on.
                Err((count, e)) => {
                    dropped.inc_by(count);
                    unlogged_failures += count;
                    if last_warning.is_none_or(|at| at.elapsed() >= WRITE_FAILURE_LOG_EVERY) {
                        tracing::error!(
                            "writing log records failed ({unlogged_failures} dropped since the last warning): {e}"
                        );
                        unlogged_failures = 0;
                        last_warning = Some(std::time::Instant::now());
                    }
                }
            }
        }
        if stopping && idle {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn full_channel_drops_and_counts_and_close_flushes() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("g.db")).unwrap();
        // A current-thread runtime: the writer cannot run while this test sends, so the channel fills.
        let (book, writer) = start(store.clone(), 4);
        for _ in 0..10 {
            book.request(RequestRecord::bare(Utc::now(), "r"));
        }
        assert_eq!(book.dropped(), 6);
        writer.close().await;
        let rows = store.recent_requests(&crate::store::LogFilter { limit: 100, ..Default::default() }).unwrap();
        assert_eq!(rows.len(), 4);
    }
}
