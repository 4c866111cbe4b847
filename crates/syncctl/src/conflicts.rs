//! `syncctl conflicts list | show ID | resolve ID`: the conflict inbox of
//! `/v1/conflicts`. `resolve` takes a side (`--use server|client|merge`)
//! or the whole resolved document (`--data file.json`, a manual
//! resolution); the server writes it as a new change.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::api::{Api, encode};
use crate::output;
use crate::{FormatArg, Target};

/// Most conflicts one `list` shows (the server's page maximum).
const LIST_MAX: usize = 1_000;

#[derive(Debug, clap::Subcommand)]
pub(crate) enum ConflictsCommand {
    /// Lists conflicts, newest first.
    List {
        /// `pending`, `resolved` or `all`.
        #[arg(long, default_value = "pending")]
        status: String,
        /// Only this namespace.
        #[arg(long)]
        namespace: Option<String>,
        /// Only this collection.
        #[arg(long)]
        collection: Option<String>,
        #[command(flatten)]
        format: FormatArg,
    },
    /// Shows one conflict with both sides.
    Show {
        /// The conflict's id.
        id: String,
        #[command(flatten)]
        format: FormatArg,
    },
    /// Resolves a pending conflict.
    Resolve {
        /// The conflict's id.
        id: String,
        /// Keep the server's side, the client's, or merge them.
        #[arg(
            long = "use",
            value_enum,
            conflicts_with = "data",
            required_unless_present = "data"
        )]
        side: Option<Side>,
        /// A JSON file with the whole resolved document.
        #[arg(long)]
        data: Option<PathBuf>,
        #[command(flatten)]
        format: FormatArg,
    },
}

/// Which side a resolution keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Side {
    /// The document as the server has it.
    Server,
    /// The client's edit.
    Client,
    /// Both, field by field.
    Merge,
}

fn describe(record: &Value) -> String {
    format!(
        "{}  {}/{}/{}  {}  {}  fields: {}",
        record["id"].as_str().unwrap_or("?"),
        record["namespace"].as_str().unwrap_or("?"),
        record["collection"].as_str().unwrap_or("?"),
        record["serverId"].as_str().unwrap_or("?"),
        record["strategy"].as_str().unwrap_or("?"),
        record["status"].as_str().unwrap_or("?"),
        record["conflictData"]["conflictFields"]
            .as_array()
            .map(|fields| {
                fields
                    .iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default()
    )
}

fn both_sides(record: &Value) -> String {
    let pretty = |value: &Value| serde_json::to_string_pretty(value).unwrap_or_default();
    let mut text = describe(record) + "\n";
    text += &format!(
        "created {} by {} (opId {})\n",
        record["createdAt"].as_str().unwrap_or("?"),
        record["user"].as_str().unwrap_or("?"),
        record["opId"].as_str().unwrap_or("?")
    );
    text += &format!(
        "server:\n{}\n",
        pretty(&record["conflictData"]["serverData"])
    );
    text += &format!(
        "client:\n{}\n",
        pretty(&record["conflictData"]["clientData"])
    );
    if !record["resolvedData"].is_null() {
        text += &format!("resolved:\n{}\n", pretty(&record["resolvedData"]));
    }
    text
}

pub(crate) async fn run(target: &Target, command: ConflictsCommand) -> anyhow::Result<ExitCode> {
    crate::api::check_url(&target.url)?;
    let api = Api::new(target)?;
    match command {
        ConflictsCommand::List {
            status,
            namespace,
            collection,
            format,
        } => {
            let mut path = format!("/v1/conflicts?limit={LIST_MAX}");
            match status.as_str() {
                "all" => {}
                "pending" | "resolved" => path += &format!("&status={status}"),
                other => bail!("--status {other:?}: expected pending, resolved or all"),
            }
            if let Some(namespace) = &namespace {
                path += &format!("&namespace={}", encode(namespace));
            }
            if let Some(collection) = &collection {
                path += &format!("&collection={}", encode(collection));
            }
            let list = api.get_json(&path).await?;
            output::result(format.format, &list, || {
                let records = list["conflicts"].as_array().cloned().unwrap_or_default();
                if records.is_empty() {
                    return format!("no {status} conflicts");
                }
                records.iter().map(|r| describe(r) + "\n").collect()
            });
        }
        ConflictsCommand::Show { id, format } => {
            let record = api
                .get_json(&format!("/v1/conflicts/{}", encode(&id)))
                .await?;
            output::result(format.format, &record, || both_sides(&record));
        }
        ConflictsCommand::Resolve {
            id,
            side,
            data,
            format,
        } => {
            let body = match (side, data) {
                (_, Some(path)) => {
                    let text = std::fs::read_to_string(&path)
                        .with_context(|| format!("cannot read {}", path.display()))?;
                    let document: Value = serde_json::from_str(&text)
                        .with_context(|| format!("{} is not JSON", path.display()))?;
                    if !document.is_object() {
                        bail!(
                            "{}: the resolved document must be a JSON object",
                            path.display()
                        );
                    }
                    json!({"strategy": "manual", "resolvedData": document})
                }
                (Some(Side::Server), None) => json!({"strategy": "server_wins"}),
                (Some(Side::Client), None) => json!({"strategy": "client_wins"}),
                (Some(Side::Merge), None) => json!({"strategy": "merge"}),
                (None, None) => bail!("give --use server|client|merge or --data FILE"),
            };
            let resolved = api
                .post_json(&format!("/v1/conflicts/{}/resolve", encode(&id)), &body)
                .await?;
            output::result(format.format, &resolved, || {
                format!(
                    "resolved {id}: {}/{}/{} is now version {}\n{}",
                    resolved["document"]["namespace"].as_str().unwrap_or("?"),
                    resolved["document"]["collection"].as_str().unwrap_or("?"),
                    resolved["document"]["id"].as_str().unwrap_or("?"),
                    resolved["document"]["version"],
                    serde_json::to_string_pretty(&resolved["document"]["data"]).unwrap_or_default()
                )
            });
        }
    }
    Ok(ExitCode::SUCCESS)
}
