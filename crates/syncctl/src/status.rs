//! `syncctl status`: one look at a server. Liveness and readiness (with
//! the reason it is not ready), then the figures of `/v1/stats` (admin):
//! the log head, live documents, connections, devices online, operations
//! per second (two samples `--sample-ms` apart) and pending conflicts.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::api::Api;
use crate::output;
use crate::{FormatArg, Target};

/// Most pending conflicts counted (the list endpoint's page).
const PENDING_COUNTED_MAX: usize = 1_000;

#[derive(Debug, clap::Args)]
pub(crate) struct StatusArgs {
    /// Time between the two samples of the operation counters.
    #[arg(long, default_value_t = 1_000)]
    sample_ms: u64,
    #[command(flatten)]
    format: FormatArg,
}

fn operations_total(stats: &Value) -> u64 {
    stats["operations"]
        .as_object()
        .map(|by_status| by_status.values().filter_map(Value::as_u64).sum())
        .unwrap_or(0)
}

/// Whether the server can commit now, and if not the reason it gives
/// (`/ready` answers 503 with `reason`, or an error body).
async fn readiness(api: &Api) -> anyhow::Result<(bool, Option<String>)> {
    let response = api
        .request(reqwest::Method::GET, "/ready")
        .send()
        .await
        .map_err(|error| {
            anyhow::anyhow!(
                "GET /ready: cannot reach the server at {}: {}",
                api.url(),
                crate::api::describe(&error)
            )
        })?;
    if response.status().is_success() {
        return Ok((true, None));
    }
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    let reason = body["reason"]
        .as_str()
        .or_else(|| body["error"]["message"].as_str())
        .map_or_else(
            || format!("{status}"),
            |reason| format!("{status}: {reason}"),
        );
    Ok((false, Some(reason)))
}

pub(crate) async fn run(target: &Target, args: StatusArgs) -> anyhow::Result<ExitCode> {
    crate::api::check_url(&target.url)?;
    let api = Api::new(target)?;
    let health = match api.get_json("/health").await {
        Ok(body) => body["status"].as_str().unwrap_or("unknown").to_owned(),
        Err(error) => {
            // Nothing else can be asked of a server that does not answer.
            return Err(error.context("the server is not live"));
        }
    };
    let (ready, reason) = readiness(&api).await?;
    let started = Instant::now();
    // A server that cannot commit may not answer the figures either:
    // then they are left out, and the reason it is not ready stands.
    let stats = match api.get_json("/v1/stats").await {
        Ok(stats) => stats,
        Err(error) if !ready => {
            output::note(&format!("{error:#}"));
            Value::Null
        }
        Err(error) => return Err(error),
    };
    let mut rate = None;
    if args.sample_ms > 0 && !stats.is_null() {
        tokio::time::sleep(Duration::from_millis(args.sample_ms)).await;
        let second = api.get_json("/v1/stats").await?;
        let elapsed = started.elapsed().as_secs_f64().max(0.001);
        let done = operations_total(&second).saturating_sub(operations_total(&stats));
        rate = Some((done as f64 / elapsed * 10.0).round() / 10.0);
    }
    let pending = match api
        .get_json(&format!(
            "/v1/conflicts?status=pending&limit={PENDING_COUNTED_MAX}"
        ))
        .await
    {
        Ok(list) => list["conflicts"].as_array().map_or(0, Vec::len),
        Err(error) if !ready => {
            output::note(&format!("{error:#}"));
            0
        }
        Err(error) => return Err(error),
    };
    let value = json!({
        "url": api.url(),
        "health": health,
        "ready": ready,
        "readyReason": reason,
        "head": stats["head"],
        "documents": stats["documents"],
        "connections": stats["activeConnections"],
        "devicesOnline": stats["devicesOnline"],
        "operationsPerSecond": rate,
        "operationsTotal": operations_total(&stats),
        "conflictsPending": pending,
    });
    output::result(args.format.format, &value, || {
        let mut text = format!("server      {}\n", api.url());
        text += &format!("health      {health}\n");
        match &reason {
            None => text += "ready       yes\n",
            Some(reason) => text += &format!("ready       NO: {reason}\n"),
        }
        text += &format!("log head    {}\n", stats["head"]);
        text += &format!("documents   {}\n", stats["documents"]);
        text += &format!("connections {}\n", stats["activeConnections"]);
        text += &format!("devices     {} online\n", stats["devicesOnline"]);
        match rate {
            Some(rate) => text += &format!("operations  {rate}/s\n"),
            None => text += &format!("operations  {} in all\n", operations_total(&stats)),
        }
        let more = if pending >= PENDING_COUNTED_MAX {
            "+"
        } else {
            ""
        };
        text += &format!("conflicts   {pending}{more} pending\n");
        text
    });
    // Not ready is a result, printed, with its own exit status.
    Ok(if ready {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}
