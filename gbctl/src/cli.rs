//! gbctl's command line (clap derive).

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser, Debug)]
#[command(
    name = "gbctl",
    version,
    about = "Operate a running gatewayd over its admin socket",
    long_about = "Operate a running gatewayd over its Unix admin socket: keys, settings, logs and stats.\n\n\
                  The socket is --socket, else $GBCTL_SOCKET, else server.admin_socket of $GATEWAY_CONFIG or \
                  ./gateway.toml, else data/gatewayd.sock.\n\n\
                  Exit status: 0 done; 1 the operation failed or found a problem; 2 usage error; \
                  3 gatewayd could not be reached."
)]
pub struct Cli {
    /// Admin socket of the gatewayd to talk to
    #[arg(long, global = true, value_name = "PATH", env = "GBCTL_SOCKET")]
    pub socket: Option<PathBuf>,
    /// Output format: aligned tables for people, JSON for scripts
    #[arg(short, long, global = true, value_enum, default_value_t = Format::Table)]
    pub output: Format,
    /// Give up after this long (a number with s, m, h or d); exit 3. Not for `logs -f`
    #[arg(long, global = true, value_name = "DUR", default_value = "30s", value_parser = parse_timeout)]
    pub timeout: std::time::Duration,
    #[command(subcommand)]
    pub command: Command,
}

fn parse_timeout(s: &str) -> Result<std::time::Duration, String> {
    match shared::admin::parse_duration(s)? {
        0 => Err("must be at least 1s".into()),
        secs => Ok(std::time::Duration::from_secs(secs)),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Version, uptime, listen address, keys by state, recent request counts
    Status,
    /// List, add, remove, disable, enable, verify and reset keys
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Read and change settings at runtime (no restart)
    #[command(subcommand)]
    Settings(SettingsCommand),
    /// Recent request log (or error log); -f follows live
    Logs(LogsArgs),
    /// Requests, errors, tokens and latency percentiles per key or model
    Stats(StatsArgs),
    /// Print a shell completion script
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(Subcommand, Debug)]
pub enum KeysCommand {
    /// One row per key
    List {
        /// Only keys in this state
        #[arg(long, value_parser = ["active", "cooling", "invalid", "disabled"])]
        state: Option<String>,
    },
    /// Add keys from arguments, a file, or stdin (`-`): one per line or any text holding AIza… keys
    Add {
        /// Keys, or `-` to read stdin
        #[arg(value_name = "KEY", allow_hyphen_values = true)]
        keys: Vec<String>,
        /// Read keys from this file
        #[arg(long, value_name = "F")]
        file: Option<PathBuf>,
        #[command(flatten)]
        labels: LabelArgs,
        /// `gemini` (a Gemini API key, the default) or `vertex` (a Vertex AI Express key)
        #[arg(long, value_parser = ["gemini", "vertex"])]
        kind: Option<String>,
    },
    /// Label keys: a group for models.groups, the Google project (its keys share cooldowns), a
    /// free note; `""` clears one
    Set {
        /// Numeric ids or unique tails (4+ characters)
        #[arg(value_name = "KEY", allow_hyphen_values = true, required = true)]
        keys: Vec<String>,
        #[command(flatten)]
        labels: LabelArgs,
    },
    /// Delete keys
    Remove {
        /// Numeric ids or unique tails (4+ characters)
        #[arg(value_name = "KEY", allow_hyphen_values = true, required = true)]
        keys: Vec<String>,
        /// Also remove keys that own live resources (files uploaded through them)
        #[arg(long)]
        force: bool,
    },
    /// Take keys out of rotation
    Disable {
        #[arg(value_name = "KEY", allow_hyphen_values = true, required = true)]
        keys: Vec<String>,
    },
    /// Put disabled keys back in rotation
    Enable {
        #[arg(value_name = "KEY", allow_hyphen_values = true, required = true)]
        keys: Vec<String>,
    },
    /// Live-test keys concurrently and update their state (all keys when none is named)
    Verify {
        #[arg(value_name = "KEY", allow_hyphen_values = true, conflicts_with_all = ["all", "invalid"])]
        keys: Vec<String>,
        /// Every key
        #[arg(long)]
        all: bool,
        /// Only invalid keys
        #[arg(long, conflicts_with = "all")]
        invalid: bool,
    },
    /// Clear failure counts and cooldowns
    Reset {
        #[arg(value_name = "KEY", allow_hyphen_values = true, required_unless_present = "all", conflicts_with = "all")]
        keys: Vec<String>,
        /// Every key
        #[arg(long)]
        all: bool,
    },
}

/// The labels `keys add` and `keys set` take.
#[derive(clap::Args, Debug, Default, Clone)]
pub struct LabelArgs {
    /// Group, for models.groups
    #[arg(long, value_name = "G")]
    pub group: Option<String>,
    /// Google project: keys of one project share cooldowns
    #[arg(long, value_name = "P")]
    pub project: Option<String>,
    /// Free note
    #[arg(long, value_name = "TEXT")]
    pub note: Option<String>,
}

impl From<LabelArgs> for shared::admin::KeyLabels {
    fn from(l: LabelArgs) -> Self {
        shared::admin::KeyLabels { group: l.group, project: l.project, note: l.note }
    }
}

#[derive(Subcommand, Debug)]
pub enum SettingsCommand {
    /// Every field with its value and source (default, file, env, runtime)
    List,
    /// One field
    Get { name: String },
    /// Set a hot field at runtime; VALUE is a TOML literal (5, true, '["a","b"]')
    Set { name: String, value: String },
    /// Remove the runtime override of a field
    Unset { name: String },
}

#[derive(clap::Args, Debug)]
pub struct LogsArgs {
    /// How many recent records
    #[arg(short = 'n', default_value_t = 20)]
    pub n: u32,
    /// Follow: print new records as they are written
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// The error log (failed upstream attempts) instead of the request log
    #[arg(long)]
    pub errors: bool,
    /// Only requests that used this key (id or tail)
    #[arg(long, value_name = "KEY", allow_hyphen_values = true)]
    pub key: Option<String>,
    /// Only this model
    #[arg(long, value_name = "M")]
    pub model: Option<String>,
    /// Only records newer than this (e.g. 15m, 2h, 1d)
    #[arg(long, value_name = "DUR", value_parser = parse_dur)]
    pub since: Option<String>,
}

#[derive(clap::Args, Debug)]
pub struct StatsArgs {
    /// Group by key or by model
    #[arg(long, value_parser = ["key", "model"], default_value = "model")]
    pub by: String,
    /// Window (default 24h)
    #[arg(long, value_name = "DUR", value_parser = parse_dur)]
    pub since: Option<String>,
}

fn parse_dur(s: &str) -> Result<String, String> {
    shared::admin::parse_duration(s).map(|_| s.to_string())
}
