//! The relay of a streamed answer: upstream frames pass through a dialect's `Transform` one at a
//! time (nothing is held beyond the frame in hand), and the stream's end, however it comes, is
//! reported to its key and written to the request log.

use std::collections::VecDeque;
use std::future::Future as _;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::StatusCode;
use hyper::body::{Body as HttpBody, Frame, Incoming};
use tokio::time::Instant;

use super::ledger::{self, Ledger};
use super::report;
use crate::body::BoxError;
use crate::keypool::KeyEntry;
use crate::outcome::Outcome;
use crate::state::State;
use crate::usage::{StreamMeter, Usage};

/// What a relayed stream reports when it ends, however it ends: the outcome to its key, and the
/// request-log record. It keeps only what those need, not the request.
pub(super) struct StreamEnd {
    pub state: Arc<State>,
    pub key: Arc<KeyEntry>,
    pub model: String,
    pub ledger: Ledger,
}

/// How a relayed stream ended.
pub(super) enum StreamFinish {
    /// Upstream finished it: a success for the key.
    Completed,
    /// The client went away: nobody's fault, nothing reported.
    ClientGone,
    /// Upstream failed or timed out after bytes went out: a transient failure for the key.
    Failed(String),
}

impl StreamEnd {
    fn complete(self, usage: Option<Usage>, finish: StreamFinish) {
        let StreamEnd { state, key, model, mut ledger } = self;
        let error = match finish {
            StreamFinish::Completed => {
                report(&state, &key, &model, &Outcome::Success);
                None
            }
            StreamFinish::ClientGone => {
                let why = match *state.cut.borrow() {
                    true => "cut at the end of the shutdown drain (server.shutdown_grace_secs or a second signal)",
                    false => "client closed the stream",
                };
                ledger.finish(ledger::CLIENT_CLOSED, usage, Some(why.to_string()));
                return;
            }
            StreamFinish::Failed(e) => {
                // Blamed by the same rules as any transient failure, and kept in the error log.
                let party = report(&state, &key, &model, &Outcome::Transient(e.clone()));
                let blamed = party.map_or("", crate::outcome::Party::as_str);
                ledger.failed_attempt(&key, Some(StatusCode::OK), &format!("{e} (charged to: {blamed})"), b"", None);
                Some(e)
            }
        };
        ledger.finish(StatusCode::OK.as_u16(), usage, error);
    }
}

/// How a relay turns upstream stream bytes into client frames.
pub trait Transform: Send + Sync + Unpin + 'static {
    /// Upstream bytes in; frames for the client out.
    fn data(&mut self, bytes: Bytes, out: &mut VecDeque<Bytes>);
    /// Upstream ended cleanly.
    fn end(&mut self, out: &mut VecDeque<Bytes>);
    /// Upstream failed after bytes went out: `Some(frame)` ends the stream with that frame (an
    /// error event), `None` aborts the connection.
    fn fail(&mut self, message: &str) -> Option<Bytes>;
    fn usage(&self) -> Option<Usage>;
}

/// Native routes: bytes pass untouched; usage is read on the way.
pub struct Passthrough {
    meter: StreamMeter,
}

impl Passthrough {
    pub fn new(sse: bool) -> Self {
        Passthrough { meter: StreamMeter::new(sse) }
    }
}

impl Transform for Passthrough {
    fn data(&mut self, bytes: Bytes, out: &mut VecDeque<Bytes>) {
        self.meter.feed(&bytes);
        out.push_back(bytes);
    }
    fn end(&mut self, _out: &mut VecDeque<Bytes>) {}
    fn fail(&mut self, _message: &str) -> Option<Bytes> {
        None
    }
    fn usage(&self) -> Option<Usage> {
        self.meter.usage
    }
}

/// Relays an upstream stream frame by frame through a `Transform`; reports its end.
pub struct Relay<T: Transform> {
    inner: Incoming,
    first: Option<Bytes>,
    transform: T,
    out: VecDeque<Bytes>,
    done: bool,
    /// `upstream.stream_idle_secs`: the stream is cut only after this long with no bytes. The
    /// timer is re-armed lazily from `last_data` when it fires, not reset on every frame.
    idle: Duration,
    last_data: Instant,
    idle_timer: Pin<Box<tokio::time::Sleep>>,
    end: Option<StreamEnd>,
}

impl<T: Transform> Relay<T> {
    pub(super) fn new(inner: Incoming, first: Bytes, transform: T, idle: Duration, end: StreamEnd) -> Self {
        let now = Instant::now();
        Relay {
            inner,
            first: Some(first),
            transform,
            out: VecDeque::new(),
            done: false,
            idle,
            last_data: now,
            idle_timer: Box::pin(tokio::time::sleep_until(now + idle)),
            end: Some(end),
        }
    }

    /// Whether the stream has been silent for `idle`; re-arms the timer when it fired early.
    fn silent_too_long(&mut self, cx: &mut Context<'_>) -> bool {
        while self.idle_timer.as_mut().poll(cx).is_ready() {
            let due = self.last_data + self.idle;
            if due <= Instant::now() {
                return true;
            }
            self.idle_timer.as_mut().reset(due);
        }
        false
    }

    fn finish(&mut self, result: StreamFinish) {
        if let Some(end) = self.end.take() {
            end.complete(self.transform.usage(), result);
        }
    }

    /// Ends the stream after a failure: with the transform's error frame, or by aborting.
    fn failed(&mut self, message: String) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.finish(StreamFinish::Failed(message.clone()));
        self.done = true;
        match self.transform.fail(&message) {
            Some(frame) => Poll::Ready(Some(Ok(Frame::data(frame)))),
            None => Poll::Ready(Some(Err(message.into()))),
        }
    }
}

impl<T: Transform> HttpBody for Relay<T> {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        loop {
            if let Some(frame) = this.out.pop_front() {
                return Poll::Ready(Some(Ok(Frame::data(frame))));
            }
            if this.done {
                return Poll::Ready(None);
            }
            if let Some(first) = this.first.take() {
                this.transform.data(first, &mut this.out);
                continue;
            }
            match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Pending if this.silent_too_long(cx) => {
                    let secs = this.idle.as_secs();
                    return this
                        .failed(format!("upstream stream sent nothing for {secs} s (upstream.stream_idle_secs)"));
                }
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => {
                    this.transform.end(&mut this.out);
                    this.finish(StreamFinish::Completed);
                    this.done = true;
                }
                Poll::Ready(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        this.last_data = Instant::now();
                        this.transform.data(data, &mut this.out);
                    }
                }
                Poll::Ready(Some(Err(e))) => return this.failed(format!("upstream stream broke: {e}")),
            }
        }
    }
}

impl<T: Transform> Drop for Relay<T> {
    fn drop(&mut self) {
        self.finish(StreamFinish::ClientGone);
    }
}
