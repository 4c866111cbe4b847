//! The engine's HTTP mode, for when the WebSocket is not connected (still
//! connecting, reconnecting, given up, or turned off): the queue goes out
//! by `POST /v1/sync` in chunks, and changes come in from the change feed
//! `GET /v1/changes`, long-polled.
//!
//! Reading the feed from the stored cursors is also how a collection
//! without a cursor catches up before its WebSocket subscription, and how
//! `sync_now` pulls.

use sync_core::queue::QueuedOp;
use sync_core::{CollectionName, Cursor, OfflineQueue, Seq};

use super::remote::{Batch, Remote};
use crate::error::Error;
use crate::events::SyncEvent;
use crate::logic::{self, Delivery};

/// Sends the queue by bulk sync, in chunks of `chunk_size` with progress
/// events, until nothing is ready.
pub(super) async fn push(remote: &Remote) -> Result<(), Error> {
    let shared = &remote.shared;
    let total = shared.queue.pending_count().await?;
    if total == 0 {
        return Ok(());
    }
    // Taking entries marks them sent, which stops later edits from being
    // folded into them: only take them when the server answers.
    remote.http.health().await?;
    let chunk_size = shared.settings.chunk_size;
    let mut done = 0;
    loop {
        let batch = shared
            .queue
            .ready_from(shared.now_ms(), 10 * chunk_size, shared.lowest_priority())
            .await?;
        if batch.is_empty() {
            return Ok(());
        }
        let chunks: Vec<&[QueuedOp]> = batch.chunks(chunk_size).collect();
        let count = chunks.len();
        for (index, chunk) in chunks.into_iter().enumerate() {
            let mut operations = Vec::with_capacity(chunk.len());
            for queued in chunk {
                operations.push(remote.outgoing(&queued.op)?);
            }
            let answer = match remote
                .http
                .sync(&operations, &shared.device_id, (index + 1, count))
                .await
            {
                Ok(answer) => answer,
                Err(error) => {
                    shared.queue.release_in_flight();
                    return Err(error);
                }
            };
            let mut settled = Batch::default();
            for queued in chunk {
                let result = answer
                    .results
                    .iter()
                    .find(|result| result.op_id.is_some() && result.op_id == queued.op.op_id)
                    .cloned();
                let delivery = match &result {
                    Some(result) => logic::classify_result(result),
                    None => match answer.errors.iter().find(|e| e.op_id == queued.op.op_id) {
                        Some(error) => {
                            Delivery::Refused(format!("{}: {}", error.code, error.message))
                        }
                        None => Delivery::Retry,
                    },
                };
                let result = result.map(|mut result| {
                    if result.strategy.is_none() {
                        result.strategy = answer
                            .conflicts
                            .iter()
                            .find(|c| Some(&c.id) == result.conflict_id.as_ref())
                            .map(|c| c.strategy);
                    }
                    result
                });
                remote.settle(&mut settled, queued, delivery, result).await;
            }
            remote.finish(&settled).await?;
            done += chunk.len();
            shared.emit(SyncEvent::SyncProgress {
                done,
                total: total.max(done),
            });
            if settled.retry {
                shared.queue.release_in_flight();
                return Ok(());
            }
        }
    }
}

/// Pulls the change feed for `collections` until it has nothing more,
/// long-polling `wait_secs` on the first page. A cursor the server no
/// longer knows resets the collections and reads them again.
pub(super) async fn pull(
    remote: &Remote,
    collections: &[CollectionName],
    wait_secs: u64,
) -> Result<(), Error> {
    let shared = &remote.shared;
    let ns = shared.settings.namespace.clone();
    let mut wait = wait_secs;
    loop {
        // The oldest cursor of the collections; any without one reads
        // from the start. Changes already known are skipped by version.
        let mut cursor: Option<Cursor> = None;
        let mut from_start = false;
        for collection in collections {
            match shared.local.cursor(&ns, collection)? {
                Some(c) => {
                    if cursor.is_none_or(|old| c.seq() < old.seq()) {
                        cursor = Some(c);
                    }
                }
                None => from_start = true,
            }
        }
        if from_start {
            cursor = None;
        }
        let feed = match remote
            .http
            .changes(cursor, &ns, collections, wait, &shared.device_id)
            .await
        {
            Ok(feed) => feed,
            Err(Error::Server { code, .. }) if code == "cursor_expired" => {
                for collection in collections {
                    shared.local.clear_collection(&ns, collection)?;
                    shared.touch(collection);
                }
                continue;
            }
            Err(error) => return Err(error),
        };
        for change in &feed.changes {
            // The stored cursor may belong to nothing yet: the page's log
            // names it.
            if shared.local.cursor(&ns, &change.collection)?.is_none() {
                shared.local.advance_cursor(
                    &ns,
                    &change.collection,
                    Cursor::new(feed.cursor.log(), Seq::ZERO),
                )?;
            }
            remote.apply(change, true)?;
        }
        for collection in collections {
            shared.local.advance_cursor(&ns, collection, feed.cursor)?;
        }
        if !feed.has_more {
            return Ok(());
        }
        wait = 0;
    }
}
