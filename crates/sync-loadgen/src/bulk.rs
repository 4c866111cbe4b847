//! Bulk sync throughput: a few concurrent HTTP clients posting batches of
//! creates to `POST /v1/sync`, each waiting for its response before the
//! next batch; the figure is operations applied per second.
//!
//! Request bodies are written as text directly and responses are counted
//! by a byte search for `"status":"success"`, so the generator spends
//! little CPU per operation.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::error::{LoadError, Result};
use crate::stats::{self, CpuMeter, CpuUse, Percentiles};
use crate::ws;

/// What to run.
#[derive(Debug, Clone)]
pub struct BulkConfig {
    /// `http://host:port`.
    pub url: String,
    /// Operations per request.
    pub batch: usize,
    /// Concurrent clients.
    pub clients: usize,
    /// How long they post.
    pub seconds: f64,
    /// The collection written (a fresh one when `None`).
    pub collection: Option<String>,
    /// Stop after this many operations (`None`: run for `seconds`).
    pub operations: Option<u64>,
    /// Bytes of filler in each document (a `pad` string field; 0: none),
    /// to write documents of a given size.
    pub pad_bytes: usize,
    /// The server's pid, to report its CPU time.
    pub server_pid: Option<u32>,
}

impl BulkConfig {
    /// Batches of `batch` from 4 clients for `seconds`.
    pub fn new(url: impl Into<String>, batch: usize, seconds: f64) -> Self {
        BulkConfig {
            url: url.into(),
            batch,
            clients: 4,
            seconds,
            collection: None,
            operations: None,
            pad_bytes: 0,
            server_pid: None,
        }
    }
}

/// What a bulk run measured.
#[derive(Debug, Clone, Serialize)]
pub struct BulkResult {
    /// Operations per request.
    pub batch: usize,
    /// Concurrent clients.
    pub clients: usize,
    /// Requests answered 200.
    pub requests: u64,
    /// Operations applied (`success`).
    pub operations: u64,
    /// Operations not applied, and operations of failed requests.
    pub failed: u64,
    /// Operations applied per second.
    pub operations_per_s: f64,
    /// Request round trips.
    pub request_latency: Percentiles,
    /// The collection written.
    pub collection: String,
    /// CPU spent by the generator and the server.
    pub cpu: CpuUse,
}

/// The data of document `n`, with `pad` bytes of filler.
pub fn document(n: u64, pad: &str) -> String {
    if pad.is_empty() {
        format!(r#"{{"n":{n},"text":"bulk load","done":false}}"#)
    } else {
        format!(r#"{{"n":{n},"text":"bulk load","done":false,"pad":"{pad}"}}"#)
    }
}

/// The body of one request: `batch` creates with ids `b{client}-{first + i}`.
fn body(collection: &str, tag: &str, client: usize, first: u64, batch: usize, pad: &str) -> String {
    let mut body = String::with_capacity(batch * (160 + pad.len()) + 32);
    body.push_str(r#"{"operations":["#);
    for i in 0..batch as u64 {
        let n = first + i;
        if i > 0 {
            body.push(',');
        }
        let _ = write!(
            body,
            r#"{{"opId":"lg-{tag}-{client}-{n}","action":"create","collection":"{collection}","id":"b{client}-{n}","data":{}}}"#,
            document(n, pad)
        );
    }
    body.push_str("]}");
    body
}

/// Runs the scenario.
pub async fn run(config: &BulkConfig) -> Result<BulkResult> {
    if config.batch == 0 || config.clients == 0 {
        return Err(LoadError::Invalid(
            "bulk needs a batch size and clients".into(),
        ));
    }
    let tag = ws::run_tag();
    let collection = config
        .collection
        .clone()
        .unwrap_or_else(|| format!("bulk_{tag}"));
    let endpoint = format!("http://{}/v1/sync", ws::authority(&config.url)?);
    // No gzip: on loopback compressing 70 KB responses would only cost
    // both sides CPU.
    let http = reqwest::Client::builder()
        .no_gzip()
        .pool_max_idle_per_host(config.clients)
        .timeout(Duration::from_secs(60))
        .build()?;
    let run_for = Duration::from_secs_f64(config.seconds.max(0.0));
    let per_client = config
        .operations
        .map(|total| total.div_ceil(config.clients as u64));
    let meter = CpuMeter::start(config.server_pid);
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(config.clients);
    for client in 0..config.clients {
        let http = http.clone();
        let endpoint = endpoint.clone();
        let collection = collection.clone();
        let tag = tag.clone();
        let batch = config.batch;
        let pad = "x".repeat(config.pad_bytes);
        tasks.push(tokio::spawn(async move {
            let mut histogram = stats::micros_histogram();
            let (mut requests, mut applied, mut failed) = (0u64, 0u64, 0u64);
            let mut next = 0u64;
            loop {
                let this_batch = match per_client {
                    Some(limit) if next >= limit => break,
                    Some(limit) => batch.min((limit - next) as usize),
                    None if started.elapsed() >= run_for => break,
                    None => batch,
                };
                let text = body(&collection, &tag, client, next, this_batch, &pad);
                next += this_batch as u64;
                let sent = Instant::now();
                let response = http
                    .post(&endpoint)
                    .header("content-type", "application/json")
                    .body(text)
                    .send()
                    .await?;
                let status = response.status();
                let bytes = response.bytes().await?;
                stats::record(&mut histogram, sent.elapsed().as_micros() as u64);
                if !status.is_success() {
                    return Err(LoadError::Protocol(format!(
                        "POST /v1/sync answered {status}: {}",
                        String::from_utf8_lossy(&bytes[..bytes.len().min(300)])
                    )));
                }
                requests += 1;
                let ok = ws::count_occurrences(&bytes, br#""status":"success""#) as u64;
                applied += ok;
                failed += this_batch as u64 - ok.min(this_batch as u64);
            }
            Ok::<_, LoadError>((histogram, requests, applied, failed))
        }));
    }
    let mut histogram = stats::micros_histogram();
    let (mut requests, mut operations, mut failed) = (0u64, 0u64, 0u64);
    for task in tasks {
        let (one, r, a, f) = task
            .await
            .map_err(|error| LoadError::Protocol(format!("bulk client failed: {error}")))??;
        histogram
            .add(&one)
            .map_err(|error| LoadError::Protocol(format!("histogram: {error}")))?;
        requests += r;
        operations += a;
        failed += f;
    }
    let elapsed = started.elapsed().as_secs_f64();
    Ok(BulkResult {
        batch: config.batch,
        clients: config.clients,
        requests,
        operations,
        failed,
        operations_per_s: operations as f64 / elapsed,
        request_latency: Percentiles::from_micros(&histogram),
        collection,
        cpu: meter.stop(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_is_valid_json_with_the_operations_asked_for() {
        let text = body("todos", "t", 2, 10, 3, "");
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        let operations = value["operations"].as_array().unwrap();
        assert_eq!(operations.len(), 3);
        assert_eq!(operations[2]["id"], "b2-12");
        assert_eq!(operations[2]["data"]["n"], 12);
        assert_eq!(operations[0]["action"], "create");
        let padded = body("todos", "t", 0, 0, 1, "xxxx");
        let value: serde_json::Value = serde_json::from_str(&padded).unwrap();
        assert_eq!(value["operations"][0]["data"]["pad"], "xxxx");
        assert_eq!(document(7, "xxxx").len(), document(7, "").len() + 4 + 9);
    }
}
