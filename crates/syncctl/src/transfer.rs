//! `syncctl export` and `syncctl import`: documents as NDJSON, one
//! document a line, in the shape the server returns them (`id`,
//! `namespace`, `collection`, `data`, and metadata that import ignores).
//!
//! Import is idempotent. Each line becomes an `upsert` whose `opId` is
//! derived from the line's content (`imp-` and a SHA-256 of namespace,
//! collection, id and the data in canonical form), sent in chunks through
//! `POST /v1/sync`. The server applies each `opId` once, so a re-run, or a
//! run after an interrupted one, finds the lines already applied as
//! `duplicate` and adds nothing. A line that is not a valid document is
//! reported with its number and skipped; with `--strict` every line is
//! checked before anything is sent, and one bad line stops the import with
//! nothing written.

use std::collections::BTreeMap;
use std::io::{BufRead, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use sync_core::{CollectionName, DocId, Namespace};

use crate::api::{Api, Refused, encode};
use crate::output;
use crate::{FormatArg, Target, is_stdio};

/// Documents asked for per page of an export (the server's maximum).
const EXPORT_PAGE: usize = 1_000;
/// The request body an import chunk stays under (the server's default
/// limit is 1 MiB).
const CHUNK_BYTES_MAX: usize = 768 * 1024;
/// Tries of one chunk when the server is busy or unreachable.
const CHUNK_TRIES_MAX: u32 = 10;

#[derive(Debug, clap::Args)]
pub(crate) struct ExportArgs {
    /// Only this namespace.
    #[arg(long)]
    namespace: Option<String>,
    /// Only this collection.
    #[arg(long)]
    collection: Option<String>,
    /// The file to write (default: standard output).
    #[arg(long, short)]
    out: Option<PathBuf>,
    #[command(flatten)]
    format: FormatArg,
}

#[derive(Debug, clap::Args)]
pub(crate) struct ImportArgs {
    /// The NDJSON file (`-` for standard input).
    file: PathBuf,
    /// Operations per request.
    #[arg(long, default_value_t = 500)]
    chunk: usize,
    /// Check every line first; any bad line stops the import with nothing
    /// written.
    #[arg(long)]
    strict: bool,
    #[command(flatten)]
    format: FormatArg,
}

/// The (namespace, collection) pairs to export.
async fn pairs(api: &Api, args: &ExportArgs) -> anyhow::Result<Vec<(String, String)>> {
    if let (Some(namespace), Some(collection)) = (&args.namespace, &args.collection) {
        return Ok(vec![(namespace.clone(), collection.clone())]);
    }
    let catalog = api.get_json("/v1/collections").await?;
    let mut pairs = Vec::new();
    for entry in catalog["collections"].as_array().into_iter().flatten() {
        let (Some(namespace), Some(collection)) =
            (entry["namespace"].as_str(), entry["collection"].as_str())
        else {
            continue;
        };
        let wanted = args.namespace.as_deref().is_none_or(|n| n == namespace)
            && args.collection.as_deref().is_none_or(|c| c == collection);
        if wanted {
            pairs.push((namespace.to_owned(), collection.to_owned()));
        }
    }
    pairs.sort();
    Ok(pairs)
}

pub(crate) async fn export(target: &Target, args: ExportArgs) -> anyhow::Result<ExitCode> {
    crate::api::check_url(&target.url)?;
    let api = Api::new(target)?;
    let pairs = pairs(&api, &args).await?;
    // The total for the bar when the token may read the stats.
    let total = match (&args.namespace, &args.collection) {
        (None, None) => api
            .get_json("/v1/stats")
            .await
            .ok()
            .and_then(|s| s["documents"].as_u64()),
        _ => None,
    };
    let to_file = args.out.as_ref().filter(|p| !is_stdio(p));
    let mut sink: Box<dyn Write> = match to_file {
        Some(path) => Box::new(BufWriter::new(
            std::fs::File::create(path)
                .with_context(|| format!("cannot create {}", path.display()))?,
        )),
        None => Box::new(BufWriter::new(std::io::stdout())),
    };
    let bar = output::progress(total, "exporting", false);
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    for (namespace, collection) in &pairs {
        let mut after: Option<String> = None;
        loop {
            let mut path = format!(
                "/v1/ns/{}/{}?limit={EXPORT_PAGE}",
                encode(namespace),
                encode(collection)
            );
            if let Some(after) = &after {
                path += &format!("&after={}", encode(after));
            }
            let page = api.get_json(&path).await?;
            for document in page["documents"].as_array().into_iter().flatten() {
                serde_json::to_writer(&mut sink, document)?;
                sink.write_all(b"\n")?;
                *counts
                    .entry(format!("{namespace}/{collection}"))
                    .or_default() += 1;
                bar.inc(1);
            }
            match page["next"].as_str() {
                Some(next) => after = Some(next.to_owned()),
                None => break,
            }
        }
    }
    sink.flush().context("cannot write the export")?;
    drop(sink);
    bar.finish_and_clear();
    let documents: u64 = counts.values().sum();
    let summary = json!({
        "documents": documents,
        "collections": counts,
        "out": to_file.map(|p| p.display().to_string()),
    });
    match to_file {
        // The documents went to a file: the summary is the result.
        Some(path) => output::result(args.format.format, &summary, || {
            format!(
                "exported {documents} documents of {} collections to {}",
                counts.len(),
                path.display()
            )
        }),
        None => output::note(&format!(
            "exported {documents} documents of {} collections",
            counts.len()
        )),
    }
    Ok(ExitCode::SUCCESS)
}

/// One line of an import file, checked: its operation, whose `localId`
/// (`line-N`) ties the server's answer back to the line.
#[derive(Debug)]
struct Line {
    operation: Value,
}

/// The canonical text of `value`: keys sorted at every level (serde_json's
/// map is ordered by key), no spaces.
fn canonical(value: &Value) -> String {
    value.to_string()
}

/// The operation's id, derived from what the line says: the same line
/// gives the same id on every run.
pub(crate) fn import_op_id(namespace: &str, collection: &str, id: &str, data: &Value) -> String {
    let mut hasher = Sha256::new();
    for part in [namespace, collection, id, &canonical(data)] {
        hasher.update(part.as_bytes());
        hasher.update([0u8]);
    }
    let digest = hasher.finalize();
    let hex: String = digest.iter().take(20).map(|b| format!("{b:02x}")).collect();
    format!("imp-{hex}")
}

/// The operation a document line asks for, or why it is not one.
fn parse_line(number: usize, text: &str) -> Result<Line, String> {
    let value: Value = serde_json::from_str(text).map_err(|error| format!("not JSON: {error}"))?;
    let Value::Object(object) = value else {
        return Err("not a JSON object".into());
    };
    let field = |name: &str| -> Result<&str, String> {
        object
            .get(name)
            .and_then(Value::as_str)
            .ok_or_else(|| format!("{name:?} is missing or not a string"))
    };
    let id = DocId::new(field("id")?).map_err(|e| e.to_string())?;
    let collection = CollectionName::new(field("collection")?).map_err(|e| e.to_string())?;
    let namespace = match object.get("namespace") {
        None | Some(Value::Null) => Namespace::new("default").map_err(|e| e.to_string())?,
        Some(Value::String(name)) => Namespace::new(name.as_str()).map_err(|e| e.to_string())?,
        Some(_) => return Err("\"namespace\" is not a string".into()),
    };
    let deleted = object.get("deleted").and_then(Value::as_bool) == Some(true);
    let data = match object.get("data") {
        Some(Value::Object(data)) => Value::Object(data.clone()),
        None if deleted => Value::Object(Map::new()),
        _ => return Err("\"data\" is missing or not an object".into()),
    };
    let op_id = import_op_id(namespace.as_str(), collection.as_str(), id.as_str(), &data);
    let mut operation = json!({
        "opId": op_id,
        "action": if deleted { "delete" } else { "upsert" },
        "namespace": namespace.as_str(),
        "collection": collection.as_str(),
        "id": id.as_str(),
        "localId": format!("line-{number}"),
    });
    if !deleted {
        operation["data"] = data;
    }
    Ok(Line { operation })
}

/// What the server made of the import's operations.
#[derive(Debug, Default)]
struct Tally {
    by_status: BTreeMap<String, u64>,
    failed: Vec<(usize, String)>,
}

/// The line number in a result's or error's `localId`.
fn line_of(entry: &Value) -> Option<usize> {
    entry["localId"]
        .as_str()?
        .strip_prefix("line-")?
        .parse()
        .ok()
}

/// The file to import, read twice (once to check every line, once to
/// send), so that a large file is never held in memory; standard input,
/// which cannot be read twice, is kept in memory.
enum Input {
    File(PathBuf),
    Memory(Vec<(usize, String)>),
}

/// The non-empty lines of an input, with their numbers.
type Lines<'a> = Box<dyn Iterator<Item = anyhow::Result<(usize, String)>> + 'a>;

impl Input {
    fn open(path: &Path) -> anyhow::Result<Input> {
        if !is_stdio(path) {
            // Fails early, with the name, when it cannot be read.
            std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
            return Ok(Input::File(path.to_owned()));
        }
        let stdin = std::io::BufReader::new(std::io::stdin());
        Ok(Input::Memory(
            numbered(Box::new(stdin)).collect::<anyhow::Result<_>>()?,
        ))
    }

    fn lines(&self) -> anyhow::Result<Lines<'_>> {
        match self {
            Input::File(path) => {
                let file = std::fs::File::open(path)
                    .with_context(|| format!("cannot open {}", path.display()))?;
                Ok(numbered(Box::new(std::io::BufReader::new(file))))
            }
            Input::Memory(lines) => Ok(Box::new(lines.iter().cloned().map(Ok))),
        }
    }
}

fn numbered<'a>(reader: Box<dyn BufRead + 'a>) -> Lines<'a> {
    Box::new(
        reader
            .lines()
            .enumerate()
            .map(|(index, line)| {
                line.map(|line| (index + 1, line))
                    .with_context(|| format!("cannot read line {}", index + 1))
            })
            .filter(|line| !matches!(line, Ok((_, text)) if text.trim().is_empty())),
    )
}

/// Sends one chunk, again while the server is busy or unreachable (the
/// opIds make a repeat harmless).
async fn send_chunk(api: &Api, operations: &[Value]) -> anyhow::Result<Value> {
    let body = json!({ "operations": operations, "deviceId": "syncctl-import" });
    let mut tries = 0;
    loop {
        tries += 1;
        let error = match api.post_json("/v1/sync", &body).await {
            Ok(answer) => return Ok(answer),
            Err(error) => error,
        };
        let wait = match error.downcast_ref::<Refused>() {
            Some(refused) if matches!(refused.status.as_u16(), 429 | 503 | 507) => {
                Duration::from_secs(refused.retry_after_secs.unwrap_or(1).clamp(1, 30))
            }
            Some(_) => return Err(error),
            None => Duration::from_millis(250 * u64::from(tries)),
        };
        if tries >= CHUNK_TRIES_MAX {
            return Err(error.context(format!("gave up after {tries} tries")));
        }
        output::note(&format!("{error:#}; trying again in {wait:?}"));
        tokio::time::sleep(wait).await;
    }
}

/// Sends one chunk and counts what the server made of it.
async fn send(api: &Api, chunk: &[Value], tally: &mut Tally) -> anyhow::Result<()> {
    let answer = send_chunk(api, chunk).await?;
    for result in answer["results"].as_array().into_iter().flatten() {
        let status = result["status"].as_str().unwrap_or("unknown").to_owned();
        if status == "error" {
            tally.failed.push((
                line_of(result).unwrap_or(0),
                result["message"].as_str().unwrap_or("error").to_owned(),
            ));
        }
        *tally.by_status.entry(status).or_default() += 1;
    }
    for error in answer["errors"].as_array().into_iter().flatten() {
        let number = line_of(error).unwrap_or(0);
        if !tally.failed.iter().any(|(n, _)| *n == number) {
            let message = format!(
                "{}: {}",
                error["code"].as_str().unwrap_or("error"),
                error["message"].as_str().unwrap_or("")
            );
            tally.failed.push((number, message));
        }
    }
    Ok(())
}

pub(crate) async fn import(target: &Target, args: ImportArgs) -> anyhow::Result<ExitCode> {
    crate::api::check_url(&target.url)?;
    if args.chunk == 0 {
        bail!("--chunk must be at least 1");
    }
    let api = Api::new(target)?;
    let input = Input::open(&args.file)?;
    let mut lines = 0usize;
    let mut good = 0u64;
    let mut bad: Vec<(usize, String)> = Vec::new();
    for line in input.lines()? {
        let (number, text) = line?;
        lines += 1;
        match parse_line(number, &text) {
            Ok(_) => good += 1,
            Err(reason) => {
                if !args.strict {
                    output::note(&format!("line {number}: {reason}; skipped"));
                }
                bad.push((number, reason));
            }
        }
    }
    if args.strict && !bad.is_empty() {
        for (number, reason) in &bad {
            output::note(&format!("line {number}: {reason}"));
        }
        bail!(
            "{} bad line(s) in {}; nothing imported (--strict)",
            bad.len(),
            args.file.display()
        );
    }

    let bar = output::progress(Some(good), "importing", false);
    let mut tally = Tally::default();
    let mut chunk: Vec<Value> = Vec::new();
    let mut chunk_bytes = 0;
    for line in input.lines()? {
        let (number, text) = line?;
        // The bad lines were reported by the first pass.
        let Ok(line) = parse_line(number, &text) else {
            continue;
        };
        let size = line.operation.to_string().len() + 1;
        if !chunk.is_empty() && (chunk.len() >= args.chunk || chunk_bytes + size > CHUNK_BYTES_MAX)
        {
            send(&api, &chunk, &mut tally).await?;
            bar.inc(chunk.len() as u64);
            chunk.clear();
            chunk_bytes = 0;
        }
        chunk_bytes += size;
        chunk.push(line.operation);
    }
    if !chunk.is_empty() {
        send(&api, &chunk, &mut tally).await?;
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    for (number, message) in &tally.failed {
        output::note(&format!("line {number}: refused by the server: {message}"));
    }

    let count = |status: &str| tally.by_status.get(status).copied().unwrap_or(0);
    let imported = count("success") + count("merged");
    let summary = json!({
        "file": args.file.display().to_string(),
        "lines": lines,
        "imported": imported,
        "duplicates": count("duplicate"),
        "conflicts": count("conflict"),
        "failed": tally.failed.iter().map(|(line, message)| json!({"line": line, "error": message})).collect::<Vec<_>>(),
        "skipped": bad.iter().map(|(line, reason)| json!({"line": line, "error": reason})).collect::<Vec<_>>(),
    });
    output::result(args.format.format, &summary, || {
        format!(
            "{} lines: {imported} imported, {} already there, {} left as conflicts, {} refused, {} skipped",
            lines,
            count("duplicate"),
            count("conflict"),
            tally.failed.len(),
            bad.len()
        )
    });
    // Something not imported is worth a distinct status to a script.
    Ok(if bad.is_empty() && tally.failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(3)
    })
}
