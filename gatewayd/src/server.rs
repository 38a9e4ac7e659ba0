//! Accept loops: API clients over TCP (HTTP/1.1 and h2c), the admin API over the Unix socket
//! (HTTP/1.1), optional metrics over TCP; and the graceful drain on shutdown.

use std::convert::Infallible;
use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, UnixListener};

use crate::body::Body;
use crate::connection::{Watch, Watched};
use crate::state::State;

pub struct Listeners {
    pub api: TcpListener,
    pub admin: UnixListener,
    pub metrics: Option<TcpListener>,
}

/// Why the admin socket could not be bound.
#[derive(Debug, thiserror::Error)]
pub enum SocketError {
    /// Something other than a stale socket is at the path: it is never deleted.
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Binds the admin socket with mode 0600. Only a socket file left by a killed daemon is replaced:
/// one a live daemon still answers on, any other kind of file, and the database itself are
/// refused and left alone.
pub fn bind_admin_socket(path: &Path, database: &Path) -> Result<UnixListener, SocketError> {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    let same_file = |a: &Path, b: &Path| match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    };
    if same_file(path, database) {
        return Err(SocketError::Refused(format!("{} is the database (database.path)", path.display())));
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(SocketError::Refused(format!(
                "{} exists and is not a socket; refusing to replace it",
                path.display()
            )));
        }
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(SocketError::Refused(format!("another gatewayd is serving on {}", path.display())));
        }
        std::fs::remove_file(path)?;
    }
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

/// Serves until `shutdown` resolves, then stops accepting and lets in-flight requests (streams
/// too) finish for up to `server.shutdown_grace_secs`, or until `force` resolves (a second signal).
pub async fn serve(
    state: Arc<State>,
    listeners: Listeners,
    shutdown: impl Future<Output = ()>,
    force: impl Future<Output = ()>,
) {
    let graceful = GracefulShutdown::new();
    let api_builder = auto::Builder::new(TokioExecutor::new());
    let admin_builder = auto::Builder::new(TokioExecutor::new()).http1_only();
    let (max_connections, header_timeout, idle_timeout) = {
        let cfg = state.config.load();
        (
            cfg.server.max_connections.min(u32::MAX as u64) as usize,
            Duration::from_secs(cfg.server.header_timeout_secs),
            Duration::from_secs(cfg.server.idle_timeout_secs),
        )
    };
    let slots = Arc::new(tokio::sync::Semaphore::new(max_connections));
    let mut accept_errors = AcceptErrors::default();
    tokio::pin!(shutdown);
    let metrics = listeners.metrics;
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listeners.api.accept() => match accepted {
                Ok((stream, _)) => {
                    // Beyond max_connections a client is accepted and closed at once: cheap for us,
                    // and it learns now instead of waiting in the kernel's backlog.
                    let Ok(slot) = slots.clone().try_acquire_owned() else {
                        state.logbook.metrics().connection_refused();
                        drop(stream);
                        continue;
                    };
                    let _ = stream.set_nodelay(true);
                    let watch = Watch::new(header_timeout, idle_timeout);
                    serve_client(&graceful, &api_builder, stream, &state, watch, slot);
                }
                Err(e) => accept_errors.failed("api", e).await,
            },
            accepted = listeners.admin.accept() => match accepted {
                Ok((stream, _)) => watch(&graceful, &admin_builder, stream, &state, crate::admin::handle),
                Err(e) => accept_errors.failed("admin", e).await,
            },
            accepted = async { metrics.as_ref().expect("guarded").accept().await }, if metrics.is_some() => match accepted {
                Ok((stream, _)) => watch(&graceful, &admin_builder, stream, &state, crate::admin::metrics_only),
                Err(e) => accept_errors.failed("metrics", e).await,
            },
        }
    }
    // Stop accepting clients now: a closed listener refuses new ones instead of leaving them
    // queued in the kernel's backlog for the whole drain. The admin socket stays up, so
    // `gbctl status` can show the drain.
    drop(listeners.api);
    drop(metrics);
    // send_replace stores the value even when no receiver exists yet (a job not yet polled).
    state.stopping.send_replace(true);
    let grace = Duration::from_secs(state.config.load().server.shutdown_grace_secs);
    tracing::info!("shutting down: draining in-flight requests for up to {grace:?} (a second signal ends it now)");
    let admin = listeners.admin;
    let drained = async {
        // Admin connections made during the drain are not waited for (a `logs -f` would hold
        // the drain open); the daemon answers them until it stops.
        let admin_loop = async {
            loop {
                if let Ok((stream, _)) = admin.accept().await {
                    let state = state.clone();
                    let svc = service_fn(move |req| {
                        let state = state.clone();
                        async move { Ok::<_, Infallible>(crate::admin::handle(state, req).await) }
                    });
                    let conn = admin_builder.serve_connection(TokioIo::new(stream), svc).into_owned();
                    tokio::spawn(conn);
                }
            }
        };
        tokio::select! {
            _ = graceful.shutdown() => true,
            _ = admin_loop => false,
        }
    };
    let finished = tokio::select! {
        done = tokio::time::timeout(grace, drained) => {
            let finished = matches!(done, Ok(true));
            if !finished {
                tracing::warn!(
                    "shutdown grace period ended with {} request(s) still in flight; cutting them",
                    state.in_flight.load(std::sync::atomic::Ordering::Relaxed)
                );
            }
            finished
        }
        _ = force => {
            tracing::warn!(
                "second signal: ending the drain now with {} request(s) in flight",
                state.in_flight.load(std::sync::atomic::Ordering::Relaxed)
            );
            false
        }
    };
    if !finished {
        // Drop what is left, so each request writes its log row (499) before the writer closes.
        state.cut.send_replace(true);
        let all = max_connections as u32;
        let _ = tokio::time::timeout(Duration::from_secs(2), slots.acquire_many(all)).await;
    }
}

/// Serves one API client connection: its clocks kept by `connection::Watch`, its slot held until
/// it closes.
fn serve_client(
    graceful: &GracefulShutdown,
    builder: &auto::Builder<TokioExecutor>,
    stream: tokio::net::TcpStream,
    state: &Arc<State>,
    watch: Arc<Watch>,
    slot: tokio::sync::OwnedSemaphorePermit,
) {
    let state_cut = state.cut.clone();
    let state = state.clone();
    let requests = watch.clone();
    let svc = service_fn(move |req| {
        let state = state.clone();
        let in_flight = requests.request_started();
        async move {
            let res = crate::router::handle(state, req).await;
            let (parts, body) = res.into_parts();
            Ok::<_, Infallible>(Response::from_parts(parts, crate::connection::tracked(body, in_flight)))
        }
    });
    let io = TokioIo::new(Watched::new(stream, watch.clone()));
    let conn = graceful.watch(builder.serve_connection(io, svc).into_owned());
    let mut cut = state_cut.subscribe();
    tokio::spawn(async move {
        let _slot = slot;
        tokio::pin!(conn);
        tokio::select! {
            _ = &mut conn => return,
            _ = cut.wait_for(|c| *c) => return,
            _ = watch.watchdog() => {}
        }
        // Cut: the reader now sees the end of input (after a 408 when the head was too slow).
        let _ = tokio::time::timeout(Duration::from_secs(5), conn).await;
    });
}

/// Serves one connection with `handler`, watched by the graceful drain.
fn watch<I, F, Fut>(
    graceful: &GracefulShutdown,
    builder: &auto::Builder<TokioExecutor>,
    io: I,
    state: &Arc<State>,
    handler: F,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    F: Fn(Arc<State>, Request<Incoming>) -> Fut + Copy + Send + Sync + 'static,
    Fut: Future<Output = Response<Body>> + Send + 'static,
{
    let state = state.clone();
    let svc = service_fn(move |req| {
        let state = state.clone();
        async move { Ok::<_, Infallible>(handler(state, req).await) }
    });
    let conn = builder.serve_connection(TokioIo::new(io), svc).into_owned();
    tokio::spawn(graceful.watch(conn));
}

/// Accept errors (such as running out of file descriptors) are transient: wait a little instead
/// of spinning, and log at most once a second, with how many there were.
#[derive(Default)]
struct AcceptErrors {
    unlogged: u64,
    last: Option<std::time::Instant>,
}

impl AcceptErrors {
    async fn failed(&mut self, which: &str, e: std::io::Error) {
        self.unlogged += 1;
        if self.last.is_none_or(|at| at.elapsed() >= Duration::from_secs(1)) {
            tracing::warn!("accepting {which} connections failed {} time(s) lately: {e}", self.unlogged);
            self.unlogged = 0;
            self.last = Some(std::time::Instant::now());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
