//! `syncctl`, the operator's command-line tool for a sync server.
//!
//! It talks to a running server the way any client does, over HTTP and
//! WebSocket (`--url`, `--token` or `SYNC_URL`, `SYNC_TOKEN`), so it needs
//! no access to the server's machine: `status`, `tail`, `export`, `import`,
//! `conflicts`, `backup` and an online `restore`. Two commands work on a
//! data directory instead, with the server stopped: `restore --data-dir`
//! (a backup into an empty directory) and `verify`. `token mint` needs
//! neither.
//!
//! Every command prints for people by default and, with `--format json`,
//! one JSON value a script can read (`tail` prints NDJSON, one change a
//! line). Progress bars go to standard error, and only on a terminal.

mod api;
mod backup;
mod conflicts;
mod key;
mod output;
mod status;
mod tail;
mod token;
mod transfer;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::output::Format;

/// The operator's tool for a sync server.
#[derive(Debug, Parser)]
#[command(name = "syncctl", version, about)]
struct Cli {
    /// The server's base URL.
    #[arg(
        long,
        env = "SYNC_URL",
        default_value = "http://127.0.0.1:7700",
        global = true
    )]
    url: String,
    /// A bearer token (jwt mode); an admin token for status, backup and
    /// restore.
    #[arg(long, env = "SYNC_TOKEN", global = true, hide_env_values = true)]
    token: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Health, readiness, log head, documents, connections, devices online,
    /// operations per second and pending conflicts.
    Status(status::StatusArgs),
    /// Prints live changes, resuming from its cursor after a reconnect.
    Tail(tail::TailArgs),
    /// Writes documents as NDJSON (one document a line).
    Export(transfer::ExportArgs),
    /// Imports NDJSON documents; a re-run adds nothing.
    Import(transfer::ImportArgs),
    /// Lists, shows and resolves conflicts.
    Conflicts {
        #[command(subcommand)]
        command: conflicts::ConflictsCommand,
    },
    /// Development tokens.
    Token {
        #[command(subcommand)]
        command: token::TokenCommand,
    },
    /// Keys for the store's encryption at rest.
    Key {
        #[command(subcommand)]
        command: key::KeyCommand,
    },
    /// Takes an online, consistent backup of the server's store.
    Backup(backup::BackupArgs),
    /// Restores a backup into an empty data directory or an empty server.
    Restore(backup::RestoreArgs),
    /// Checks a data directory offline (the server stopped).
    Verify(backup::VerifyArgs),
}

/// Where the server is and who asks.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub(crate) url: String,
    pub(crate) token: Option<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            output::error(&anyhow::anyhow!("cannot start the runtime: {error}"));
            return ExitCode::FAILURE;
        }
    };
    let target = Target {
        url: cli.url.trim_end_matches('/').to_owned(),
        token: cli.token.filter(|t| !t.is_empty()),
    };
    match runtime.block_on(run(cli.command, target)) {
        Ok(code) => code,
        Err(error) => {
            output::error(&error);
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, target: Target) -> anyhow::Result<ExitCode> {
    match command {
        Command::Status(args) => status::run(&target, args).await,
        Command::Tail(args) => tail::run(&target, args).await,
        Command::Export(args) => transfer::export(&target, args).await,
        Command::Import(args) => transfer::import(&target, args).await,
        Command::Conflicts { command } => conflicts::run(&target, command).await,
        Command::Token { command } => token::run(command),
        Command::Key { command } => key::run(command),
        Command::Backup(args) => backup::backup(&target, args).await,
        Command::Restore(args) => backup::restore(&target, args).await,
        Command::Verify(args) => backup::verify(args).await,
    }
}

/// `--format`, shared by the commands that print a result.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct FormatArg {
    /// How to print the result.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub(crate) format: Format,
}

/// A file argument, `-` for standard input or output.
pub(crate) fn is_stdio(path: &std::path::Path) -> bool {
    path == std::path::Path::new("-")
}
