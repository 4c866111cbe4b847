//! `sync-server`: the sync engine's server.
//!
//! With no argument it serves on 127.0.0.1:7700 with a sled store in
//! `./sync-data` and no authentication (and says so). Settings come from a
//! TOML file (`--config`), then `SYNC_*` environment variables, then flags.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use sync_service::config::{AuthMode, DurabilityMode, JwtAlgorithm, Overrides, StoreKind};

use sync_service::{Config, ConfigSource, Server, ServerBuilder};

/// jemalloc instead of glibc's allocator: under write load glibc's arenas
/// gave memory back to the kernel and faulted it in again (`clear_page`
/// and `malloc_consolidate` high in the profile); jemalloc took bulk sync
/// from about 12,500 to 21,000 operations/s (docs/benchmarks.md). mimalloc
/// did as well on writes but added 40 MB of resident memory at start. Its
/// options are built in from `.cargo/config.toml`.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// The sync engine's server.
#[derive(Debug, Parser)]
#[command(name = "sync-server", version, about)]
struct Args {
    /// A TOML configuration file.
    #[arg(long, env = "SYNC_CONFIG")]
    config: Option<PathBuf>,
    /// Address to serve on [default: 127.0.0.1:7700].
    #[arg(long, env = "SYNC_LISTEN")]
    listen: Option<SocketAddr>,
    /// Serve HTTPS and WSS with this PEM certificate chain (with --tls-key).
    #[arg(long, env = "SYNC_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, env = "SYNC_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Data directory of the sled store [default: ./sync-data].
    #[arg(long, env = "SYNC_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Store: sled or postgres [default: sled].
    #[arg(long, env = "SYNC_STORE")]
    store: Option<StoreKind>,
    /// PostgreSQL URL for store postgres.
    #[arg(long, env = "SYNC_DATABASE_URL")]
    database_url: Option<String>,
    /// The PostgreSQL schema of the store [default: sync].
    #[arg(long, env = "SYNC_DATABASE_SCHEMA")]
    database_schema: Option<String>,
    /// This node's name (distinct per node when several share a database).
    #[arg(long, env = "SYNC_NODE_NAME")]
    node_name: Option<String>,
    /// Authentication: none or jwt [default: none].
    #[arg(long, env = "SYNC_AUTH")]
    auth: Option<AuthMode>,
    /// The one JWT algorithm accepted: HS256, EdDSA or RS256.
    #[arg(long, env = "SYNC_JWT_ALGORITHM")]
    jwt_algorithm: Option<JwtAlgorithm>,
    /// The HS256 secret (prefer the environment to the command line).
    #[arg(long, env = "SYNC_JWT_SECRET", hide_env_values = true)]
    jwt_secret: Option<String>,
    /// A PEM public key for EdDSA or RS256.
    #[arg(long, env = "SYNC_JWT_PUBLIC_KEY_FILE")]
    jwt_public_key_file: Option<PathBuf>,
    /// Seconds between WebSocket pings [default: 30].
    #[arg(long, env = "SYNC_HEARTBEAT_SECS")]
    heartbeat_secs: Option<u64>,
    /// Client clocks further ahead than this are clamped [default: 60].
    #[arg(long, env = "SYNC_MAX_CLOCK_SKEW_SECS")]
    max_clock_skew_secs: Option<u64>,
    /// fsync (default) or os (no fsync: tests and benchmarks only).
    #[arg(long, env = "SYNC_DURABILITY", value_parser = parse_durability)]
    durability: Option<DurabilityMode>,
    /// Serve the console at / and the todo demo at /demo: true or false [default: true].
    #[arg(long, env = "SYNC_CONSOLE")]
    console: Option<bool>,
    /// Log lines as text or as JSON objects, one per line.
    #[arg(long, env = "SYNC_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Print the effective settings as TOML (secrets masked) and exit.
    #[arg(long)]
    print_config: bool,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    /// For people.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// The log filter without `RUST_LOG`: information and up, without the
/// per-operation audit line (target `sync::audit`), which costs a line per
/// write; `RUST_LOG=info,sync::audit=info` turns it on.
const DEFAULT_LOG_FILTER: &str = "info,sync::audit=off";

fn init_logs(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_LOG_FILTER));
    let logs = tracing_subscriber::fmt().with_env_filter(filter);
    match format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().init(),
    }
}

fn parse_durability(text: &str) -> Result<DurabilityMode, String> {
    match text {
        "fsync" => Ok(DurabilityMode::Fsync),
        "os" => Ok(DurabilityMode::Os),
        other => Err(format!("unknown durability {other:?} (fsync | os)")),
    }
}

/// Raises the soft limit of open files to the hard one: every connection
/// is a file, and the usual soft limit (1,024) is far below what a server
/// holds.
fn raise_file_limit() {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => tracing::info!(limit, "open files"),
        Err(error) => tracing::warn!(%error, "cannot raise the limit of open files"),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    init_logs(args.log_format);
    let overrides = Overrides {
        listen: args.listen,
        tls_cert: args.tls_cert,
        tls_key: args.tls_key,
        data_dir: args.data_dir,
        store: args.store,
        database_url: args.database_url,
        database_schema: args.database_schema,
        node_name: args.node_name,
        auth: args.auth,
        jwt_algorithm: args.jwt_algorithm,
        jwt_secret: args.jwt_secret,
        jwt_public_key_file: args.jwt_public_key_file,
        heartbeat_secs: args.heartbeat_secs,
        max_clock_skew_secs: args.max_clock_skew_secs,
        durability: args.durability,
        console: args.console,
    };
    let file = args.config.clone();
    // The settings as the file, the environment and the flags give them,
    // read again for each reload.
    let source: ConfigSource = Arc::new(move || {
        let mut config = match &file {
            Some(path) => Config::from_file(path)?,
            None => Config::default(),
        };
        config.apply(overrides.clone());
        Ok(config)
    });
    let config = source()?;
    config.validate().context("invalid configuration")?;
    if args.print_config {
        std::io::Write::write_all(&mut std::io::stdout(), config.to_toml_masked().as_bytes())?;
        return Ok(());
    }
    if config.auth.mode == AuthMode::None {
        tracing::warn!(
            "AUTH IS OFF (auth = none): every request is user `anonymous` with access to every \
             namespace. For development only; set SYNC_AUTH=jwt and SYNC_JWT_SECRET in production."
        );
    }
    if config.durability == DurabilityMode::Os {
        tracing::warn!("durability = os: acknowledged writes are not fsynced and can be lost");
    }
    raise_file_limit();
    let server = ServerBuilder::new(config)
        .config_source(source)
        .start()
        .await?;
    serve_until_stopped(&server).await;
    tracing::info!("shutting down: finishing requests, closing sockets, flushing the store");
    server.shutdown().await?;
    tracing::info!("stopped");
    Ok(())
}

/// Waits for SIGINT or SIGTERM; on SIGHUP, reloads the settings (the
/// file, the environment and the flags again), logging why when the new
/// ones are refused.
async fn serve_until_stopped(server: &Server) {
    let interrupt = tokio::signal::ctrl_c();
    tokio::pin!(interrupt);
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut terminate), Ok(mut hangup)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::hangup()),
        ) else {
            let _ = interrupt.await;
            return;
        };
        loop {
            tokio::select! {
                _ = &mut interrupt => return,
                _ = terminate.recv() => return,
                _ = hangup.recv() => {
                    if let Err(error) = server.reload_from_source() {
                        tracing::error!(%error, "reload refused; the running settings stay");
                    }
                }
            }
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_reference_lists_every_flag_and_variable() {
        let reference = include_str!("../../../docs/configuration.md");
        for arg in Args::command().get_arguments() {
            if let Some(long) = arg.get_long() {
                assert!(
                    reference.contains(&format!("`--{long}`")),
                    "docs/configuration.md does not list --{long}"
                );
            }
            if let Some(env) = arg.get_env() {
                let env = env.to_string_lossy();
                assert!(
                    reference.contains(&format!("`{env}`")),
                    "docs/configuration.md does not list {env}"
                );
            }
        }
    }
}
