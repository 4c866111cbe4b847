//! Resident memory per document: the server's resident memory (`VmRSS`)
//! before and after writing `N` documents of about `document_bytes` bytes
//! of JSON each (bulk sync, batches of 500, 4 clients), and the difference
//! per document.
//!
//! What the figure holds is mostly the store's: sled keeps the pages it
//! wrote and read in its page cache, sized by the server's `cache_mb`
//! (1,024 MB by default), so while the data fits in that cache the
//! resident memory grows with the data. The cache's size is sled's own
//! estimate, not a hard bound on the process: with `cache_mb = 64`,
//! 100,000 documents of 100 bytes still left 175 MB resident. Memory the
//! allocator keeps from handling the bulk requests is in the figure too,
//! which is why the run waits a moment before the second reading.

use std::time::Duration;

use serde::Serialize;

use crate::bulk::{self, BulkConfig};
use crate::error::{LoadError, Result};
use crate::stats::{self, CpuUse};

/// What to run.
#[derive(Debug, Clone)]
pub struct MemoryConfig {
    /// `http://host:port` (a `ws://` URL of the same server also does).
    pub url: String,
    /// Documents to write.
    pub documents: u64,
    /// The JSON size of each document, in bytes (at least the size of the
    /// bulk scenario's documents, about 45 bytes).
    pub document_bytes: usize,
    /// The server's pid, whose memory is read.
    pub server_pid: u32,
    /// How long to wait after the writes before reading the memory.
    pub settle: Duration,
}

/// What a memory run measured.
#[derive(Debug, Clone, Serialize)]
pub struct MemoryResult {
    /// Documents written.
    pub documents: u64,
    /// The JSON size of one document, in bytes.
    pub document_bytes: usize,
    /// The server's resident memory before the writes, in MB.
    pub rss_before_mb: f64,
    /// Its resident memory after them, in MB.
    pub rss_after_mb: f64,
    /// The difference per document, in bytes.
    pub bytes_per_document: f64,
    /// Seconds the writes took.
    pub write_s: f64,
    /// CPU spent by the generator and the server while writing.
    pub cpu: CpuUse,
}

/// Runs the scenario.
pub async fn run(config: &MemoryConfig) -> Result<MemoryResult> {
    if config.documents == 0 {
        return Err(LoadError::Invalid("memory needs documents".into()));
    }
    let base = bulk::document(0, "").len() + r#","pad":"""#.len();
    let pad_bytes = config.document_bytes.saturating_sub(base);
    let before = stats::resident_kib(config.server_pid)?;
    let written = bulk::run(&BulkConfig {
        operations: Some(config.documents),
        pad_bytes,
        server_pid: Some(config.server_pid),
        ..BulkConfig::new(config.url.replacen("ws://", "http://", 1), 500, 0.0)
    })
    .await?;
    if written.operations < config.documents {
        return Err(LoadError::Protocol(format!(
            "only {} of {} documents were written",
            written.operations, config.documents
        )));
    }
    tokio::time::sleep(config.settle).await;
    let after = stats::resident_kib(config.server_pid)?;
    Ok(MemoryResult {
        documents: config.documents,
        document_bytes: bulk::document(0, &"x".repeat(pad_bytes)).len(),
        rss_before_mb: before as f64 / 1024.0,
        rss_after_mb: after as f64 / 1024.0,
        bytes_per_document: after.saturating_sub(before) as f64 * 1024.0 / config.documents as f64,
        write_s: written.cpu.wall_s,
        cpu: written.cpu,
    })
}
