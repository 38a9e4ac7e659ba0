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
/// too) finish for up to `server.shutdown_grace_secs`.
pub async fn serve(state: Arc<State>, listeners: Listeners, shutdown: impl Future<Output = ()>) {
    let graceful = GracefulShutdown::new();
    let api_builder = auto::Builder::new(TokioExecutor::new());
    let admin_builder = auto::Builder::new(TokioExecutor::new()).http1_only();
    tokio::pin!(shutdown);
    let metrics = listeners.metrics;
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listeners.api.accept() => match accepted {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    watch(&graceful, &api_builder, stream, &state, crate::router::handle);
                }
                Err(e) => accept_failed("api", e).await,
            },
            accepted = listeners.admin.accept() => match accepted {
                Ok((stream, _)) => watch(&graceful, &admin_builder, stream, &state, crate::admin::handle),
                Err(e) => accept_failed("admin", e).await,
            },
            accepted = async { metrics.as_ref().expect("guarded").accept().await }, if metrics.is_some() => match accepted {
                Ok((stream, _)) => watch(&graceful, &admin_builder, stream, &state, crate::admin::metrics_only),
                Err(e) => accept_failed("metrics", e).await,
            },
        }
    }
    // Stop accepting now: closed listeners refuse new clients instead of leaving them queued in
    // the kernel's backlog for the whole drain.
    drop(listeners.api);
    drop(listeners.admin);
    drop(metrics);
    // send_replace stores the value even when no receiver exists yet (a job not yet polled).
    state.stopping.send_replace(true);
    let grace = Duration::from_secs(state.config.load().server.shutdown_grace_secs);
    tracing::info!("shutting down: draining in-flight requests for up to {grace:?}");
    if tokio::time::timeout(grace, graceful.shutdown()).await.is_err() {
        tracing::warn!("shutdown grace period ended with requests still in flight");
    }
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

/// Accept errors (such as running out of file descriptors) are transient: wait a little instead of
/// spinning.
async fn accept_failed(which: &str, e: std::io::Error) {
    tracing::warn!("accepting a {which} connection failed: {e}");
    tokio::time::sleep(Duration::from_millis(50)).await;
}
