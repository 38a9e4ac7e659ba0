//! gatewayd's entry: arguments, tracing, configuration (exit 78 when bad), binding, then the
//! library's `Daemon` until SIGTERM or SIGINT.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use gatewayd::clock::Clock;
use gatewayd::config::{ConfigError, EX_CONFIG, Layers};
use gatewayd::server::{Listeners, SocketError, bind_admin_socket};
use gatewayd::{BootError, Daemon};

/// jemalloc, chosen by measurement (BENCH.md): it gives memory back after a burst of streams,
/// where glibc malloc kept the peak, and holds less per open stream.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Parser)]
#[command(name = "gatewayd", version, about = "Pools Gemini API keys behind one endpoint", long_about = None)]
struct Cli {
    /// Configuration file (else $GATEWAY_CONFIG, else ./gateway.toml if present, else defaults)
    #[arg(long, global = true, value_name = "PATH")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Print the effective configuration (secrets redacted) and exit
    CheckConfig,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let layers = match Layers::discover(cli.config.as_deref()) {
        Ok(l) => l,
        Err(e) => return config_refused(&e),
    };
    if let Some(Command::CheckConfig) = cli.command {
        return check_config(&layers);
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("gatewayd: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(serve(layers))
}

fn config_refused(e: &dyn std::fmt::Display) -> ExitCode {
    eprintln!("gatewayd: {e}");
    ExitCode::from(EX_CONFIG)
}

/// Prints the configuration as it would run: file and environment, plus runtime settings when the
/// database already exists (check-config never creates it).
fn check_config(layers: &Layers) -> ExitCode {
    let base = match layers.resolve(&BTreeMap::new()) {
        Ok(c) => c,
        Err(e) => return config_refused(&e),
    };
    let db = std::path::Path::new(&base.database.path);
    let stored = match db.exists() {
        true => gatewayd::store::Store::open(db).and_then(|s| s.load_settings()).unwrap_or_else(|e| {
            eprintln!("gatewayd: runtime settings not read from {}: {e}", db.display());
            Default::default()
        }),
        false => Default::default(),
    };
    let effective = match gatewayd::settings::effective(layers, stored) {
        Ok((c, _)) => c,
        Err(e) => return config_refused(&e),
    };
    match toml::to_string_pretty(&effective) {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("gatewayd: cannot print the configuration: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(layers: Layers) -> ExitCode {
    let (shutdown, force) = match shutdown_signals() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("gatewayd: cannot install signal handlers: {e}");
            return ExitCode::FAILURE;
        }
    };
    let daemon = match Daemon::boot(layers, Arc::new(Clock::default())).await {
        Ok(d) => d,
        Err(e) => {
            eprintln!("gatewayd: {e}");
            return ExitCode::from(e.exit_code());
        }
    };
    let config = daemon.state.config.load();
    let listeners = match bind(&config).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("gatewayd: {e}");
            return ExitCode::from(e.exit_code());
        }
    };
    if let Some(token) = &daemon.generated_token {
        // Shown once, by design: it is stored in the database and accepted while auth.tokens is empty.
        eprintln!("gatewayd: generated client token: {token} (shown only now; used while auth.tokens is empty)");
    }
    raise_open_file_limit();
    // A background thread returns freed pages to the system on jemalloc's decay clock (10 s)
    // even while the daemon idles; without it, purging waits for allocator activity and a burst
    // of streams would leave its peak resident.
    if let Err(e) = tikv_jemalloc_ctl::background_thread::write(true) {
        tracing::warn!("jemalloc background thread not started: {e}");
    }
    daemon.run_until(listeners, shutdown, force).await;
    ExitCode::SUCCESS
}

async fn bind(config: &gatewayd::config::Config) -> Result<Listeners, BootError> {
    let api = tokio::net::TcpListener::bind(&config.server.listen)
        .await
        .map_err(|e| BootError::Other(format!("cannot listen on {} (server.listen): {e}", config.server.listen)))?;
    let socket = std::path::Path::new(&config.server.admin_socket);
    let admin = bind_admin_socket(socket, std::path::Path::new(&config.database.path)).map_err(|e| match e {
        SocketError::Refused(why) => BootError::Config(ConfigError::new("server.admin_socket", why)),
        SocketError::Io(e) => {
            BootError::Other(format!("cannot bind {} (server.admin_socket): {e}", config.server.admin_socket))
        }
    })?;
    let metrics = if config.server.metrics_listen.is_empty() {
        None
    } else {
        Some(tokio::net::TcpListener::bind(&config.server.metrics_listen).await.map_err(|e| {
            BootError::Other(format!("cannot listen on {} (server.metrics_listen): {e}", config.server.metrics_listen))
        })?)
    };
    Ok(Listeners { api, admin, metrics })
}

/// Installs the SIGTERM/SIGINT handlers now (not when first polled), so a signal that arrives
/// right after start is a clean shutdown rather than the default kill. The first signal starts
/// the drain; a second one ends it at once.
fn shutdown_signals() -> std::io::Result<(impl std::future::Future<Output = ()>, impl std::future::Future<Output = ()>)>
{
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let (first_tx, first_rx) = tokio::sync::oneshot::channel::<()>();
    let (second_tx, second_rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        for (i, tx) in [first_tx, second_tx].into_iter().enumerate() {
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM received"),
                _ = int.recv() => tracing::info!("SIGINT received"),
            }
            if i == 1 {
                tracing::warn!("second signal: stopping now");
            }
            let _ = tx.send(());
        }
    });
    let first = async move {
        let _ = first_rx.await;
    };
    let second = async move {
        if second_rx.await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    Ok((first, second))
}

/// Raises the soft limit on open files to the hard limit: each client connection and each
/// upstream connection is a descriptor, and 1024 is a common default.
fn raise_open_file_limit() {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.current.is_some() && limit.current != limit.maximum {
        match setrlimit(Resource::Nofile, Rlimit { current: limit.maximum, maximum: limit.maximum }) {
            Ok(()) => tracing::info!("open file limit raised to {:?}", limit.maximum),
            Err(e) => tracing::warn!("cannot raise the open file limit: {e}"),
        }
    }
}
