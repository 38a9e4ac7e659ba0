//! gbctl: the operator's CLI for a running gatewayd, over its Unix admin socket only.
//! Exit status: 0 done; 1 the operation failed or found a problem; 2 usage error; 3 unreachable.

mod cli;
mod client;
mod commands;
mod output;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser};

use crate::cli::{Cli, Command};
use crate::client::{Client, ClientError};
use crate::commands::Ctx;

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Completions { shell } = cli.command {
        let mut out = Vec::new();
        clap_complete::generate(shell, &mut Cli::command(), "gbctl", &mut out);
        output::emit(&String::from_utf8_lossy(&out));
        return ExitCode::SUCCESS;
    }
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("gbctl: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    let ctx = Ctx { client: Client::new(socket_path(cli.socket)), format: cli.output };
    // `logs -f` follows until stopped; every other command gives up after --timeout.
    let follows = matches!(&cli.command, Command::Logs(a) if a.follow);
    let timeout = cli.timeout;
    let work = async {
        match cli.command {
            Command::Status => commands::status::run(&ctx).await,
            Command::Keys(c) => commands::keys::run(&ctx, c).await,
            Command::Settings(c) => commands::settings::run(&ctx, c).await,
            Command::Logs(a) => commands::logs::run(&ctx, a).await,
            Command::Stats(a) => commands::stats::run(&ctx, a).await,
            Command::Completions { .. } => unreachable!("handled above"),
        }
    };
    let result = runtime.block_on(async {
        if follows {
            return work.await;
        }
        match tokio::time::timeout(timeout, work).await {
            Ok(result) => result,
            Err(_) => Err(ClientError::Unreachable {
                socket: ctx.client.socket().to_path_buf(),
                reason: format!("no answer within {}s (--timeout)", timeout.as_secs()),
            }),
        }
    });
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("gbctl: {e}");
            ExitCode::from(match e {
                ClientError::Unreachable { .. } => 3,
                _ => 1,
            })
        }
    }
}

/// `--socket` (or $GBCTL_SOCKET, via clap), else `server.admin_socket` of $GATEWAY_CONFIG or
/// ./gateway.toml, else `data/gatewayd.sock`: the same places gatewayd looks.
fn socket_path(explicit: Option<PathBuf>) -> PathBuf {
    if let Some(p) = explicit {
        return p;
    }
    if let Some(p) = std::env::var_os("GATEWAY_SERVER__ADMIN_SOCKET").filter(|v| !v.is_empty()) {
        return PathBuf::from(p);
    }
    let config = std::env::var_os("GATEWAY_CONFIG").filter(|v| !v.is_empty()).map(PathBuf::from).or_else(|| {
        let local = PathBuf::from("gateway.toml");
        local.exists().then_some(local)
    });
    if let Some(path) = config
        && let Ok(text) = std::fs::read_to_string(&path)
        && let Ok(table) = text.parse::<toml::Table>()
        && let Some(socket) = table.get("server").and_then(|s| s.get("admin_socket")).and_then(|v| v.as_str())
    {
        return PathBuf::from(socket);
    }
    PathBuf::from("data/gatewayd.sock")
}
