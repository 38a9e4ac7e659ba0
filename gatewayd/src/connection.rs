//! One client connection's clocks, the way nginx keeps them: a new connection, and each request
//! once its first byte arrives, must complete its head within `server.header_timeout_secs` (then
//! 408 and close); a keep-alive connection with nothing in flight closes after
//! `server.idle_timeout_secs` of silence; a request in flight (a long stream included) is never
//! cut here. hyper's own header timer also runs while a keep-alive connection idles, which would
//! cut idle connections at the header timeout, so the IO wrapper here keeps both clocks instead.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body as HttpBody, Frame};
use parking_lot::Mutex;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

use crate::body::{Body, BoxError};

const NO_HEAD: u64 = u64::MAX;
const ALIVE: u8 = 0;
const HEAD_TOO_SLOW: u8 = 1;
const IDLE_TOO_LONG: u8 = 2;

/// The answer a client gets when its request head was too slow.
const TIMEOUT_408: &[u8] = b"HTTP/1.1 408 Request Timeout\r\nconnection: close\r\ncontent-length: 0\r\n\r\n";

/// What the IO wrapper, the service and the watchdog share about one connection.
pub struct Watch {
    started: Instant,
    header_timeout: Duration,
    idle_timeout: Duration,
    /// Milliseconds since `started` of the last byte read or written.
    last_activity: AtomicU64,
    /// Milliseconds since `started` when the current request head began; `NO_HEAD` when none is
    /// being read.
    head_since: AtomicU64,
    in_flight: AtomicUsize,
    verdict: AtomicU8,
    reader: Mutex<Option<Waker>>,
    /// The client speaks HTTP/2 (its preface came first): no HTTP/1 408 is written to it.
    h2: std::sync::atomic::AtomicBool,
}

impl Watch {
    pub fn new(header_timeout: Duration, idle_timeout: Duration) -> Arc<Watch> {
        Arc::new(Watch {
            started: Instant::now(),
            header_timeout,
            idle_timeout,
            last_activity: AtomicU64::new(0),
            // A new connection owes its first head at once.
            head_since: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            verdict: AtomicU8::new(ALIVE),
            reader: Mutex::new(None),
            h2: Default::default(),
        })
    }

    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// A request's head is complete and it is being served: nothing here cuts it.
    pub fn request_started(self: &Arc<Self>) -> InFlight {
        self.head_since.store(NO_HEAD, Ordering::Relaxed);
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(self.clone())
    }

    /// Runs until the connection should be cut, then says so to the reader. Sleeps to the next
    /// deadline, not in a fixed tick, so a quiet connection costs one timer.
    pub async fn watchdog(self: Arc<Self>) {
        loop {
            let now = self.now_ms();
            let head = self.head_since.load(Ordering::Relaxed);
            let busy = self.in_flight.load(Ordering::Relaxed) > 0;
            let deadline = match (busy, head) {
                (true, _) => now + self.idle_timeout.as_millis() as u64,
                (false, NO_HEAD) => self.last_activity.load(Ordering::Relaxed) + self.idle_timeout.as_millis() as u64,
                (false, since) => since + self.header_timeout.as_millis() as u64,
            };
            if !busy && deadline <= now {
                let verdict = if head == NO_HEAD { IDLE_TOO_LONG } else { HEAD_TOO_SLOW };
                self.verdict.store(verdict, Ordering::Relaxed);
                if let Some(w) = self.reader.lock().take() {
                    w.wake();
                }
                return;
            }
            tokio::time::sleep(Duration::from_millis(deadline.saturating_sub(now).max(5))).await;
        }
    }
}

/// Held while a request is served, response body included.
pub struct InFlight(Arc<Watch>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let now = self.0.now_ms();
        self.0.last_activity.store(now, Ordering::Relaxed);
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A response body that keeps its request in flight until it is done or dropped.
pub fn tracked(body: Body, in_flight: InFlight) -> Body {
    use http_body_util::BodyExt;
    Tracked { inner: body, _in_flight: in_flight }.boxed()
}

struct Tracked {
    inner: Body,
    _in_flight: InFlight,
}

impl HttpBody for Tracked {
    type Data = Bytes;
    type Error = BoxError;
    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }
    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }
    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

/// The connection's IO, keeping the watch's clocks and ending the connection when it says so.
pub struct Watched<IO> {
    io: IO,
    watch: Arc<Watch>,
    /// How much of the 408 answer went out.
    sent: usize,
}

impl<IO> Watched<IO> {
    pub fn new(io: IO, watch: Arc<Watch>) -> Self {
        Watched { io, watch, sent: 0 }
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin> AsyncRead for Watched<IO> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        match this.watch.verdict.load(Ordering::Relaxed) {
            ALIVE => {}
            verdict => {
                if verdict == HEAD_TOO_SLOW && !this.watch.h2.load(Ordering::Relaxed) {
                    // No response is under way (the head never completed), so the socket is ours
                    // to answer on before it closes.
                    while this.sent < TIMEOUT_408.len() {
                        match Pin::new(&mut this.io).poll_write(cx, &TIMEOUT_408[this.sent..]) {
                            Poll::Ready(Ok(n)) if n > 0 => this.sent += n,
                            Poll::Pending => return Poll::Pending,
                            _ => break,
                        }
                    }
                }
                // End of input: hyper closes the connection.
                return Poll::Ready(Ok(()));
            }
        }
        {
            let mut reader = this.watch.reader.lock();
            if !reader.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                *reader = Some(cx.waker().clone());
            }
        }
        let before = buf.filled().len();
        let result = Pin::new(&mut this.io).poll_read(cx, buf);
        if matches!(result, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            if before == 0 && this.watch.last_activity.load(Ordering::Relaxed) == 0 && buf.filled().starts_with(b"PRI ")
            {
                this.watch.h2.store(true, Ordering::Relaxed);
            }
            let now = this.watch.now_ms();
            this.watch.last_activity.store(now, Ordering::Relaxed);
            if this.watch.in_flight.load(Ordering::Relaxed) == 0 {
                let _ = this.watch.head_since.compare_exchange(NO_HEAD, now, Ordering::Relaxed, Ordering::Relaxed);
            }
        }
        result
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Watched<IO> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<std::io::Result<usize>> {
        let result = Pin::new(&mut self.io).poll_write(cx, data);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            let now = self.watch.now_ms();
            self.watch.last_activity.store(now, Ordering::Relaxed);
        }
        result
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let result = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            let now = self.watch.now_ms();
            self.watch.last_activity.store(now, Ordering::Relaxed);
        }
        result
    }
    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

/// Request bodies held in memory at once, all requests together (`server.max_inflight_body_bytes`).
#[derive(Debug, Default)]
pub struct BodyBudget {
    held: AtomicU64,
}

/// Bytes of the budget one request holds; given back when it is dropped.
pub struct Held<'a> {
    budget: &'a BodyBudget,
    bytes: u64,
}

impl BodyBudget {
    /// Takes `n` more bytes for `held`, unless that would pass `limit`.
    pub fn take<'a>(&'a self, held: &mut Option<Held<'a>>, n: u64, limit: u64) -> bool {
        let mut current = self.held.load(Ordering::Relaxed);
        loop {
            if current.saturating_add(n) > limit {
                return false;
            }
            match self.held.compare_exchange_weak(current, current + n, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => break,
                Err(actual) => current = actual,
            }
        }
        match held {
            Some(h) => h.bytes += n,
            None => *held = Some(Held { budget: self, bytes: n }),
        }
        true
    }

    pub fn held(&self) -> u64 {
        self.held.load(Ordering::Relaxed)
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.budget.held.fetch_sub(self.bytes, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_budget_is_shared_and_given_back() {
        let budget = BodyBudget::default();
        let mut a = None;
        assert!(budget.take(&mut a, 60, 100));
        let mut b = None;
        assert!(!budget.take(&mut b, 50, 100), "60 + 50 > 100");
        assert!(budget.take(&mut b, 40, 100));
        assert_eq!(budget.held(), 100);
        drop(a);
        assert_eq!(budget.held(), 40);
        drop(b);
        assert_eq!(budget.held(), 0);
    }
}
