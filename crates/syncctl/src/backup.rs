//! `syncctl backup`, `restore` and `verify`.
//!
//! A backup is a directory with the server's snapshot, read at one log
//! position by the store while writes go on (`GET /v1/admin/snapshot`,
//! admin): `snapshot.ndjson` (a header with the log id and head, every
//! retained change, document, op result, conflict, device and the
//! counters, and an end line counting the records) and `manifest.json`
//! (what it holds, for people and scripts). The snapshot is written to a
//! temporary name and checked whole before it takes its name, so a backup
//! directory never holds a truncated snapshot under the real name.
//!
//! `restore DIR --data-dir NEW` loads it into a new sled data directory
//! (which must not exist or be empty) with the server stopped, and checks
//! it; `restore DIR` without `--data-dir` sends it to the server at
//! `--url`, whose store must be empty. Either way the log id is kept, so
//! the clients' cursors stay valid. `verify --data-dir DIR` opens a sled
//! data directory (the server stopped) and checks that the documents are
//! exactly the replay of the log and that seqs are gap-free.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, anyhow, bail};
use reqwest::Method;
use serde_json::json;
use sync_core::store::{ChangeFilter, SnapshotLine, StoreSnapshot};
use sync_core::{Seq, SyncStore};
use sync_store::{Encryption, EncryptionKey, SledStore, StoreConfig};

use crate::api::Api;
use crate::output;
use crate::{FormatArg, Target};

/// The snapshot's file in a backup directory.
const SNAPSHOT_FILE: &str = "snapshot.ndjson";
/// What the backup holds, as JSON.
const MANIFEST_FILE: &str = "manifest.json";
/// Changes read per page by `verify`.
const VERIFY_PAGE: usize = 10_000;

#[derive(Debug, clap::Args)]
pub(crate) struct BackupArgs {
    /// The backup directory to create (must not exist or be empty).
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    format: FormatArg,
}

#[derive(Debug, clap::Args)]
pub(crate) struct RestoreArgs {
    /// The backup directory.
    dir: PathBuf,
    /// A new sled data directory to restore into (must not exist or be
    /// empty), with no server running on it. Without it, the backup goes
    /// to the server at --url, whose store must be empty.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// With --data-dir: the key to encrypt the restored store under (the
    /// server's `storage.encryption_key_file`).
    #[arg(long, requires = "data_dir")]
    encryption_key_file: Option<PathBuf>,
    #[command(flatten)]
    format: FormatArg,
}

#[derive(Debug, clap::Args)]
pub(crate) struct VerifyArgs {
    /// The sled data directory (the server stopped).
    #[arg(long)]
    data_dir: PathBuf,
    /// Accept gaps in the seqs (a store compacted by retention removes
    /// old changes by design).
    #[arg(long)]
    allow_compacted: bool,
    /// The key the store is encrypted under, if it is (the server's
    /// `storage.encryption_key_file`).
    #[arg(long)]
    encryption_key_file: Option<PathBuf>,
    #[command(flatten)]
    format: FormatArg,
}

/// Fails unless `dir` does not exist or is an empty directory.
fn check_empty(dir: &Path, what: &str) -> anyhow::Result<()> {
    match std::fs::read_dir(dir) {
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(anyhow!("cannot read {what} {}: {error}", dir.display())),
        Ok(mut entries) => match entries.next() {
            None => Ok(()),
            Some(_) => bail!("{what} {} is not empty", dir.display()),
        },
    }
}

fn counts(snapshot: &StoreSnapshot) -> serde_json::Value {
    json!({
        "logId": snapshot.log_id,
        "head": snapshot.head,
        "changes": snapshot.changes.len(),
        "documents": snapshot.documents.len(),
        "liveDocuments": snapshot.stats.documents,
        "opResults": snapshot.op_results.len(),
        "conflicts": snapshot.conflicts.len(),
        "devices": snapshot.devices.len(),
    })
}

/// Reads and checks the snapshot of a backup file.
fn read_snapshot(path: &Path) -> anyhow::Result<StoreSnapshot> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut lines = Vec::new();
    for (index, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.with_context(|| format!("cannot read {}", path.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        let line: SnapshotLine = serde_json::from_str(&line).with_context(|| {
            format!(
                "{} line {}: not a snapshot record",
                path.display(),
                index + 1
            )
        })?;
        lines.push(line);
    }
    StoreSnapshot::from_lines(lines).map_err(|error| anyhow!("{}: {error}", path.display()))
}

pub(crate) async fn backup(target: &Target, args: BackupArgs) -> anyhow::Result<ExitCode> {
    crate::api::check_url(&target.url)?;
    check_empty(&args.out, "the backup directory")?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let api = Api::new(target)?;
    let partial = args.out.join(format!("{SNAPSHOT_FILE}.partial"));
    let mut response = api
        .send(
            "GET /v1/admin/snapshot",
            api.request(Method::GET, "/v1/admin/snapshot"),
        )
        .await?;
    let bar = output::progress(response.content_length(), "backing up", true);
    {
        let mut file = std::io::BufWriter::new(
            std::fs::File::create(&partial)
                .with_context(|| format!("cannot create {}", partial.display()))?,
        );
        while let Some(chunk) = response.chunk().await.map_err(|error| {
            anyhow!(
                "the snapshot stream broke off: {}",
                crate::api::describe(&error)
            )
        })? {
            file.write_all(&chunk)
                .with_context(|| format!("cannot write {}", partial.display()))?;
            bar.inc(chunk.len() as u64);
        }
        let file = file
            .into_inner()
            .map_err(|error| anyhow!("cannot write {}: {}", partial.display(), error.error()))?;
        file.sync_all()
            .with_context(|| format!("cannot flush {}", partial.display()))?;
    }
    bar.finish_and_clear();
    let snapshot = read_snapshot(&partial).context("the snapshot received is incomplete")?;
    let summary = json!({
        "format": 1,
        "server": api.url(),
        "snapshot": SNAPSHOT_FILE,
        "contents": counts(&snapshot),
    });
    std::fs::write(
        args.out.join(MANIFEST_FILE),
        serde_json::to_string_pretty(&summary)? + "\n",
    )
    .context("cannot write the manifest")?;
    std::fs::rename(&partial, args.out.join(SNAPSHOT_FILE)).context("cannot name the snapshot")?;
    let mut value = summary.clone();
    value["dir"] = json!(args.out.display().to_string());
    output::result(args.format.format, &value, || {
        format!(
            "backed up {} documents and {} changes at log head {} to {}",
            snapshot.documents.len(),
            snapshot.changes.len(),
            snapshot.head,
            args.out.display()
        )
    });
    Ok(ExitCode::SUCCESS)
}

/// Opens the sled store in `dir` on a blocking thread, encrypted under the
/// key in `key_file` if one is given.
async fn open_sled(dir: &Path, key_file: Option<&Path>) -> anyhow::Result<SledStore> {
    let path = dir.to_owned();
    let encryption = key_file
        .map(|file| EncryptionKey::from_file(file).map(|key| Encryption::new(key, [])))
        .transpose()?;
    let config = StoreConfig {
        encryption,
        ..StoreConfig::default()
    };
    tokio::task::spawn_blocking(move || SledStore::open(&path, config))
        .await
        .context("the store's opening failed")?
        .map_err(|error| {
            anyhow!(
                "cannot open the data directory {} (is a server running on it?): {error}",
                dir.display()
            )
        })
}

async fn close_sled(store: SledStore) -> anyhow::Result<()> {
    tokio::task::spawn_blocking(move || store.close())
        .await
        .context("closing the store failed")?
        .context("cannot close the store")
}

pub(crate) async fn restore(target: &Target, args: RestoreArgs) -> anyhow::Result<ExitCode> {
    let path = args.dir.join(SNAPSHOT_FILE);
    if !path.exists() {
        bail!(
            "{} holds no {SNAPSHOT_FILE}: not a backup directory (or the backup did not finish)",
            args.dir.display()
        );
    }
    let snapshot = read_snapshot(&path)?;
    let contents = counts(&snapshot);
    let (value, text) = match &args.data_dir {
        Some(data_dir) => {
            check_empty(data_dir, "the data directory")?;
            let store = open_sled(data_dir, args.encryption_key_file.as_deref()).await?;
            let loaded = store.load_snapshot(snapshot).await;
            let differing = match loaded {
                Ok(()) => SyncStore::verify_projection(&store).await,
                Err(error) => Err(error),
            };
            close_sled(store).await?;
            let differing = differing.with_context(|| {
                format!(
                    "cannot restore into {}; remove what it left there before trying again",
                    data_dir.display()
                )
            })?;
            if !differing.is_empty() {
                bail!(
                    "the restored documents differ from the log's replay for {} documents",
                    differing.len()
                );
            }
            (
                json!({"restoredTo": data_dir.display().to_string(), "contents": contents}),
                format!(
                    "restored {} documents at log head {} into {}; start the server on it",
                    contents["documents"],
                    contents["head"],
                    data_dir.display()
                ),
            )
        }
        None => {
            crate::api::check_url(&target.url)?;
            let api = Api::new(target)?;
            let body =
                std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
            let bar = output::progress(None, "restoring", false);
            let answer = api
                .send(
                    "POST /v1/admin/snapshot",
                    api.request(Method::POST, "/v1/admin/snapshot")
                        .header("content-type", "application/x-ndjson")
                        .body(body),
                )
                .await?;
            bar.finish_and_clear();
            let _answer: serde_json::Value = answer.json().await.unwrap_or_default();
            (
                json!({"restoredTo": api.url(), "contents": contents}),
                format!(
                    "restored {} documents at log head {} into the server at {}",
                    contents["documents"],
                    contents["head"],
                    api.url()
                ),
            )
        }
    };
    output::result(args.format.format, &value, || text);
    Ok(ExitCode::SUCCESS)
}

pub(crate) async fn verify(args: VerifyArgs) -> anyhow::Result<ExitCode> {
    if !args.data_dir.join("db").exists() {
        bail!(
            "{} is not a sled data directory (no db file)",
            args.data_dir.display()
        );
    }
    let store = open_sled(&args.data_dir, args.encryption_key_file.as_deref()).await?;
    let checked = check(&store).await;
    close_sled(store).await?;
    let report = checked?;
    let ok = report.differing.is_empty()
        && report.out_of_order.is_empty()
        && report.last_is_head
        && (args.allow_compacted || report.missing == 0);
    let value = json!({
        "dataDir": args.data_dir.display().to_string(),
        "ok": ok,
        "head": report.head,
        "changes": report.changes,
        "missingSeqs": report.missing,
        "outOfOrder": report.out_of_order,
        "lastIsHead": report.last_is_head,
        "documentsDiffering": report.differing,
    });
    output::result(args.format.format, &value, || {
        let mut text = format!(
            "{}: {} changes up to head {}\n",
            args.data_dir.display(),
            report.changes,
            report.head
        );
        if report.differing.is_empty() {
            text += "documents: exactly the replay of the log\n";
        } else {
            text += &format!(
                "documents: {} differ from the log's replay: {}\n",
                report.differing.len(),
                report.differing.join(", ")
            );
        }
        if report.missing == 0 && report.out_of_order.is_empty() && report.last_is_head {
            text += "seqs: gap-free\n";
        } else {
            text += &format!(
                "seqs: {} missing{}, {} out of order, last {} the head\n",
                report.missing,
                if args.allow_compacted {
                    " (compaction allowed)"
                } else {
                    ""
                },
                report.out_of_order.len(),
                if report.last_is_head { "is" } else { "is NOT" }
            );
        }
        text + if ok { "OK" } else { "FAILED" }
    });
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

/// What `verify` found.
#[derive(Debug)]
struct Report {
    head: Seq,
    changes: u64,
    missing: u64,
    out_of_order: Vec<u64>,
    last_is_head: bool,
    differing: Vec<String>,
}

async fn check(store: &SledStore) -> anyhow::Result<Report> {
    let differing = SyncStore::verify_projection(store)
        .await
        .context("cannot replay the log")?
        .iter()
        .map(ToString::to_string)
        .collect();
    let head = store.head().await?;
    let mut report = Report {
        head,
        changes: 0,
        missing: 0,
        out_of_order: Vec::new(),
        last_is_head: head == Seq::ZERO,
        differing,
    };
    let mut previous = Seq::ZERO;
    loop {
        let page = store
            .changes_after(previous, &ChangeFilter::default(), VERIFY_PAGE)
            .await?;
        for change in &page.changes {
            report.changes += 1;
            if change.seq <= previous {
                report.out_of_order.push(change.seq.get());
                continue;
            }
            report.missing += change.seq.get() - previous.get() - 1;
            previous = change.seq;
        }
        if !page.has_more || page.changes.is_empty() {
            break;
        }
    }
    if head > Seq::ZERO {
        report.last_is_head = previous == head;
    }
    Ok(report)
}
