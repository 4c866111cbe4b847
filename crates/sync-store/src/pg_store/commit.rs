//! Group commit: one committer task per store takes every `apply` queued
//! while the previous group was committed and commits them in one
//! PostgreSQL transaction; the nodes on one database flush their commits
//! concurrently, and readers read the log only up to the *settled head*.
//!
//! **Ordering.** The transaction first locks the single `log_head` row
//! (`SELECT ... FOR UPDATE`), so the writing transactions of every node
//! run one at a time, and commits with `synchronous_commit = off`: the
//! lock is released as soon as the commit record is in the WAL buffers,
//! not held across the WAL flush. Under the lock:
//!
//! - the seqs a transaction assigns (`head + 1, head + 2, ...`) follow the
//!   head the previous transaction committed: no two transactions take the
//!   same seq, and a transaction that fails or is killed before its commit
//!   leaves no gap (its head update rolls back with its changes). Seqs are
//!   never reserved ahead of a commit, so there are no holes to void;
//! - a transaction that commits later takes the lock later and so has
//!   larger seqs, and a later commit record: the WAL holds commits in seq
//!   order;
//! - the reads that decide a write (its `opId`, the document's version, the
//!   pending conflict) run after the lock, so they see every earlier commit
//!   of every node: compare-and-swap and exactly-once hold across nodes
//!   with no other lock and no retry.
//!
//! **Durability: the settle.** Right after the commit, on the same
//! connection and in the same round trip, the committer *settles*: a
//! statement in a transaction of its own, committed with
//! `synchronous_commit = on`, raises this node's row of `log_settled` to
//! the committed head it sees (`log_head.head`). Its commit returns once
//! the WAL is flushed past its own record, which comes after the group's
//! commit record and after the commit records of every transaction it
//! saw: so when it returns, every seq at or below the value it wrote is
//! durable. Concurrent settles of several nodes
//! share WAL flushes, and no lock is held across any of them but the
//! node's own `log_settled` row. Only then are the group's writes
//! answered, so an acknowledgement still means durable.
//!
//! **Readers.** The settled head is the greatest `up_to` of `log_settled`.
//! `head`, `changes_after`, `wait_for_head` and catch-up read changes only
//! up to it: every seq at or below it is committed (the settle saw the
//! committed head, and `log_head.head` only ever counts committed seqs) and
//! durable (flushed), so a reader after cursor `c` never finds a change
//! with a seq it has passed appear later, sees no seq before the ones below
//! it, and never reads a change a crash of the database could take back.
//! A commit of a node that dies before its settle is settled by the next
//! settle of any node, or by a node's poll that finds it unsettled (see
//! `head`). Point reads (a document, a list, a history, an op result) see
//! committed rows at once; one that returns something not yet known
//! settled settles first, so nothing answered can be lost by a crash.
//!
//! **Why not seqs reserved ahead.** Taking seqs from a sequence or a
//! counter in a transaction of their own would let whole transactions of
//! several nodes run at once, not only their flushes; but a transaction
//! that dies after taking its seqs leaves holes, which would have to be
//! voided durably (by whom, after how long?) and would show to clients as
//! gaps in a log the protocol calls gap-free. Here nothing is taken before
//! the commit that uses it, so there is nothing to void; the price is that
//! the transactions themselves (two round trips each) stay serial.
//!
//! Nodes of the version before the settle read `log_head.head` as their
//! head: they must not run beside these ones on one database.
//!
//! A group that stores nothing (duplicates and mismatches only) rolls back
//! and still settles before answering when what it read may not be settled
//! yet: a duplicate's first result may come from a commit whose node has
//! not settled it.
//!
//! The reads and the writes are batched per group, in two round trips:
//!
//! 1. `BEGIN`, `synchronous_commit = off` for the transaction, the head
//!    lock, then one query each for the op results, documents and
//!    conflicts the group names, pipelined in that order: the server runs
//!    them in order, so the loads run once the lock is granted;
//! 2. (the writes are decided in memory; a later write sees the earlier
//!    ones) one statement whose data-modifying `WITH` clauses insert the
//!    changes, documents, op results, conflicts and counters as multi-row
//!    `unnest`s and advance the head, pipelined with the `COMMIT` and the
//!    settle: one WAL flush for the whole group, shared with the other
//!    nodes'.
//!
//! The other nodes learn of the settle from a notification sent after it,
//! off the acknowledgement's path (see `head::notify`).
//!
//! A connection whose transaction failed is closed rather than handed back
//! to the pool, so no later user finds a transaction left open on it.

use std::collections::BTreeSet;
use std::sync::Arc;

use deadpool_postgres::{Object, Pool};
use sync_core::store::{CommitObserver, CommitOutcome, Write};
use sync_core::{DocKey, OpId, Seq};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_postgres::types::ToSql;
use tokio_postgres::{Row, Statement};

use super::head::{SETTLE, advance};
use super::rows::{
    DOCUMENT_COLUMNS, decode, document_from_row, encode, get, get_u64, name_of, parse_name, pg,
    pool, to_db,
};
use crate::committed::{CommitWatch, Group, Preloaded};
use crate::error::Error;
use crate::log_change;

/// Where a caller of `apply` is answered.
pub(super) type Reply = oneshot::Sender<Result<Vec<CommitOutcome>, Error>>;
/// One `apply` call waiting for the committer.
pub(super) type Request = (Vec<Write>, Reply);

/// The committer task's state.
pub(super) struct Committer {
    /// Where connections come from.
    pub(super) pool: Pool,
    /// The known settled head, raised after each settle.
    pub(super) heads: Arc<watch::Sender<Seq>>,
    /// This committer's row of `log_settled`.
    pub(super) node: i64,
    /// This committer's settles, which the notifier tells the other nodes
    /// of (see `head::notify`).
    pub(super) settled: watch::Sender<Seq>,
    /// The most writes one transaction takes.
    pub(super) batch_writes_max: usize,
    /// Told of every group commit.
    pub(super) observer: Option<Arc<dyn CommitObserver>>,
    /// The group commit in flight, for readiness.
    pub(super) watch: Arc<CommitWatch>,
}

impl Committer {
    /// Commits queued requests until every sender is gone.
    pub(super) async fn run(self, mut receiver: mpsc::Receiver<Request>) {
        let mut last_group = 0usize;
        loop {
            // The callers just answered are about to send their next
            // writes: give them a moment (a few yields, no timer) so that
            // the next group takes them all, rather than alternating a
            // large group with one of the few that were quickest.
            for _ in 0..GATHER_YIELDS_MAX {
                if receiver.len() >= last_group {
                    break;
                }
                tokio::task::yield_now().await;
            }
            let Some(first) = receiver.recv().await else {
                break;
            };
            let mut queued = first.0.len();
            let mut requests = vec![first];
            while queued < self.batch_writes_max {
                match receiver.try_recv() {
                    Ok(request) => {
                        queued += request.0.len();
                        requests.push(request);
                    }
                    Err(_) => break,
                }
            }
            last_group = requests.len();
            let started = std::time::Instant::now();
            self.watch.started();
            let committed = self.commit_group(&requests).await;
            self.watch.finished();
            match committed {
                Ok(outcomes) => {
                    if let Some(observer) = &self.observer {
                        observer.committed(queued, started.elapsed());
                    }
                    answer(requests, outcomes);
                }
                // The server refused a statement, so the transaction rolled
                // back and nothing of it stayed: commit the requests one by
                // one, so that one bad request fails alone. (A lost
                // connection is not retried: the commit may have happened.)
                Err(Error::Postgres {
                    code: Some(code), ..
                }) if requests.len() > 1 && statement_failed(&code) => {
                    for request in requests {
                        let single = [request];
                        let result = self.commit_group(&single).await;
                        let [(_, reply)] = single;
                        let _ = reply.send(
                            result.map(|outcomes| outcomes.into_iter().next().unwrap_or_default()),
                        );
                    }
                }
                Err(error) => {
                    for (_, reply) in requests {
                        let _ = reply.send(Err(error.clone()));
                    }
                }
            }
        }
    }

    /// Commits every request's writes in one transaction; returns each
    /// request's outcomes and raises the known head.
    async fn commit_group(&self, requests: &[Request]) -> Result<Vec<Vec<CommitOutcome>>, Error> {
        let client = self.pool.get().await.map_err(pool)?;
        let result = self.commit_on(&client, requests).await;
        if result.is_err() {
            // The transaction may still be open on this connection: close
            // it (the server rolls back) instead of returning it.
            drop(Object::take(client));
        }
        result
    }

    async fn commit_on(
        &self,
        client: &Object,
        requests: &[Request],
    ) -> Result<Vec<Vec<CommitOutcome>>, Error> {
        let statements = Statements::prepare(client).await?;
        let names = Names::of(requests);
        let op_params: [&(dyn ToSql + Sync); 1] = [&names.op_ids];
        let document_params: [&(dyn ToSql + Sync); 3] =
            [&names.namespaces, &names.collections, &names.ids];
        let conflict_params: [&(dyn ToSql + Sync); 1] = [&names.conflict_ids];
        // `biased`: sent in this order, so the loads queue behind the lock.
        let (_, head_row, op_rows, document_rows, conflict_rows) = tokio::try_join!(
            biased;
            client.batch_execute(BEGIN),
            client.query_one(&statements.lock, &[]),
            client.query(&statements.load_ops, &op_params),
            client.query(&statements.load_documents, &document_params),
            client.query(&statements.load_conflicts, &conflict_params),
        )
        .map_err(pg)?;
        let start = Seq(get_u64(&head_row, "log_head", 0)?);
        let mut group = loaded_group(start, &names, &op_rows, &document_rows, &conflict_rows)?;
        let mut outcomes = Vec::with_capacity(requests.len());
        for (writes, _) in requests {
            let mut answers = Vec::with_capacity(writes.len());
            for write in writes {
                answers.push(group.apply(write.clone(), &Preloaded)?);
            }
            outcomes.push(answers);
        }
        let settle_params: [&(dyn ToSql + Sync); 1] = [&self.node];
        if group.is_empty() {
            // Only duplicates and mismatches: nothing to store. What they
            // answer is settled when it is at or below the settled head
            // (every seq up to `start` was committed before the lock),
            // unless it carries no seq.
            let settled = start <= *self.heads.borrow()
                && outcomes.iter().flatten().all(|outcome| match outcome {
                    CommitOutcome::Duplicate(first) => first.seq.is_some(),
                    CommitOutcome::ConflictNotPending => false,
                    _ => true,
                });
            if settled {
                client.batch_execute("ROLLBACK").await.map_err(pg)?;
            } else {
                let (_, row) = tokio::try_join!(
                    biased;
                    client.batch_execute("ROLLBACK"),
                    client.query_one(&statements.settle, &settle_params),
                )
                .map_err(pg)?;
                advance(&self.heads, Seq(get_u64(&row, "log_settled", 0)?));
            }
            return Ok(outcomes);
        }
        let settled = store(&group, client, &statements, start, &settle_params).await?;
        let row = settled.map_err(|error| match pg(error) {
            // Committed but not known durable: of unknown fate, like a
            // lost connection, and never retried.
            Error::Postgres { message, .. } => Error::Postgres {
                message: format!("committed, then the settle failed: {message}"),
                code: None,
            },
            other => other,
        })?;
        let settled = Seq(get_u64(&row, "log_settled", 0)?);
        if settled < group.head {
            return Err(Error::Corrupt {
                tree: "log_settled",
                message: format!(
                    "settled up to {settled} right after committing up to {}",
                    group.head
                ),
            });
        }
        advance(&self.heads, settled);
        self.settled.send_replace(settled);
        Ok(outcomes)
    }
}

/// The committer's prepared statements (cached per connection, so only a
/// new connection prepares them).
struct Statements {
    lock: Statement,
    load_ops: Statement,
    load_documents: Statement,
    load_conflicts: Statement,
    store: Statement,
    settle: Statement,
}

impl Statements {
    async fn prepare(client: &Object) -> Result<Statements, Error> {
        Ok(Statements {
            lock: client.prepare_cached(LOCK_HEAD).await.map_err(pg)?,
            load_ops: client.prepare_cached(LOAD_OPS).await.map_err(pg)?,
            load_documents: client
                .prepare_cached(&load_documents_sql())
                .await
                .map_err(pg)?,
            load_conflicts: client.prepare_cached(LOAD_CONFLICTS).await.map_err(pg)?,
            store: client.prepare_cached(STORE).await.map_err(pg)?,
            settle: client.prepare_cached(SETTLE).await.map_err(pg)?,
        })
    }
}

/// The op ids, documents and conflicts a group's writes name, deduplicated.
struct Names<'a> {
    op_ids: Vec<&'a str>,
    keys: BTreeSet<&'a DocKey>,
    namespaces: Vec<&'a str>,
    collections: Vec<&'a str>,
    ids: Vec<&'a str>,
    conflict_ids: Vec<&'a str>,
}

impl<'a> Names<'a> {
    fn of(requests: &'a [Request]) -> Names<'a> {
        let writes = || requests.iter().flat_map(|(writes, _)| writes);
        let op_ids: BTreeSet<&str> = writes().map(|w| w.op_id.as_str()).collect();
        let keys: BTreeSet<&DocKey> = writes().map(|w| &w.key).collect();
        let conflict_ids: BTreeSet<&str> = writes()
            .filter_map(|w| w.resolves.as_ref().map(|c| c.as_str()))
            .collect();
        Names {
            op_ids: op_ids.into_iter().collect(),
            namespaces: keys.iter().map(|k| k.namespace.as_str()).collect(),
            collections: keys.iter().map(|k| k.collection.as_str()).collect(),
            ids: keys.iter().map(|k| k.id.as_str()).collect(),
            keys,
            conflict_ids: conflict_ids.into_iter().collect(),
        }
    }
}

/// The most times the committer yields to let answered callers send again
/// before it takes the next group.
const GATHER_YIELDS_MAX: usize = 8;

/// Whether SQLSTATE `code` says a statement failed (so its transaction
/// surely rolled back), rather than the session: connection exceptions
/// (class 08) and operator intervention (57, e.g. a server shutdown) may
/// have hit a commit that happened.
fn statement_failed(code: &str) -> bool {
    !(code.starts_with("08") || code.starts_with("57"))
}

fn answer(requests: Vec<Request>, outcomes: Vec<Vec<CommitOutcome>>) {
    for ((_, reply), outcome) in requests.into_iter().zip(outcomes) {
        let _ = reply.send(Ok(outcome));
    }
}

/// Starts a group's transaction: its commit does not wait for the WAL
/// flush, which the settle after it waits for.
const BEGIN: &str = "BEGIN; SET LOCAL synchronous_commit TO off";

/// Taken first by every writing transaction, and held to its commit (not
/// to its flush).
const LOCK_HEAD: &str = "SELECT head FROM log_head WHERE id = 1 FOR UPDATE";

const LOAD_OPS: &str = "SELECT op_id, body FROM op_results WHERE op_id = ANY($1::text[])";

fn load_documents_sql() -> String {
    format!(
        "SELECT {DOCUMENT_COLUMNS} FROM documents
         WHERE (namespace, collection, id) IN
             (SELECT * FROM unnest($1::text[], $2::text[], $3::text[]))"
    )
}

const LOAD_CONFLICTS: &str = "SELECT id, body FROM conflicts WHERE id = ANY($1::text[])";

/// Every write of a group in one statement: the data-modifying `WITH`
/// clauses all run, each to completion. `AND head = $36` asserts what the
/// lock guarantees (nobody moved the head since this transaction read it);
/// the statement reports the one row it advanced.
const STORE: &str = "WITH
changes_in AS (
    INSERT INTO changes (seq, namespace, collection, id, version, body)
    SELECT * FROM unnest($1::int8[], $2::text[], $3::text[], $4::text[], $5::int8[], $6::text[])
),
documents_in AS (
    INSERT INTO documents
        (namespace, collection, id, version, seq, deleted, updated_at, data, field_clocks)
    SELECT * FROM unnest($7::text[], $8::text[], $9::text[], $10::int8[], $11::int8[],
                         $12::bool[], $13::text[], $14::text[], $15::text[])
    ON CONFLICT (namespace, collection, id) DO UPDATE SET
        version = EXCLUDED.version, seq = EXCLUDED.seq, deleted = EXCLUDED.deleted,
        updated_at = EXCLUDED.updated_at, data = EXCLUDED.data,
        field_clocks = EXCLUDED.field_clocks
),
ops_in AS (
    INSERT INTO op_results (op_id, body) SELECT * FROM unnest($16::text[], $17::text[])
),
conflicts_in AS (
    INSERT INTO conflicts (id, namespace, collection, status, created_at, body)
    SELECT * FROM unnest($18::text[], $19::text[], $20::text[], $21::text[], $22::int8[],
                         $23::text[])
    ON CONFLICT (id) DO UPDATE SET
        namespace = EXCLUDED.namespace, collection = EXCLUDED.collection,
        status = EXCLUDED.status, created_at = EXCLUDED.created_at, body = EXCLUDED.body
),
op_counts AS (
    INSERT INTO op_counters (status, count) SELECT * FROM unnest($24::text[], $25::int8[])
    ON CONFLICT (status) DO UPDATE SET count = op_counters.count + EXCLUDED.count
),
conflict_counts AS (
    INSERT INTO conflict_counters (strategy, count)
    SELECT * FROM unnest($26::text[], $27::int8[])
    ON CONFLICT (strategy) DO UPDATE SET count = conflict_counters.count + EXCLUDED.count
),
device_counts AS (
    INSERT INTO device_counters (device_id, last_sync, conflicts)
    SELECT * FROM unnest($28::text[], $29::int8[], $30::int8[])
    ON CONFLICT (device_id) DO UPDATE SET
        last_sync = GREATEST(device_counters.last_sync, EXCLUDED.last_sync),
        conflicts = device_counters.conflicts + EXCLUDED.conflicts
),
device_op_counts AS (
    INSERT INTO device_op_counters (device_id, status, count)
    SELECT * FROM unnest($31::text[], $32::text[], $33::int8[])
    ON CONFLICT (device_id, status) DO UPDATE SET
        count = device_op_counters.count + EXCLUDED.count
)
UPDATE log_head SET head = $34, live_documents = live_documents + $35
WHERE id = 1 AND head = $36";

/// A group over the rows loaded under the head lock: everything the group
/// names that has no row does not exist.
fn loaded_group(
    head: Seq,
    names: &Names<'_>,
    op_rows: &[Row],
    document_rows: &[Row],
    conflict_rows: &[Row],
) -> Result<Group, Error> {
    let mut group = Group::new(head, names.keys.len());
    for row in op_rows {
        let op_id: OpId = parse_name("op_results", get(row, "op_results", 0)?)?;
        group.known_op(op_id, decode("op_results", get(row, "op_results", 1)?)?);
    }
    for key in &names.keys {
        group.known_document((*key).clone(), None);
    }
    for row in document_rows {
        let stored = document_from_row(row)?;
        group.known_document(stored.document.key(), Some(stored));
    }
    for row in conflict_rows {
        group.known_conflict(decode("conflicts", get(row, "conflicts", 1)?)?);
    }
    Ok(group)
}

/// Writes the group's effects, the counters and the new head in one
/// statement, commits, and settles (in a transaction of its own), in one
/// round trip; returns the settle's answer. A statement that fails aborts
/// the transaction, and the `COMMIT` after it then rolls back.
async fn store(
    group: &Group,
    client: &Object,
    statements: &Statements,
    start: Seq,
    settle_params: &[&(dyn ToSql + Sync)],
) -> Result<Result<Row, tokio_postgres::Error>, Error> {
    let mut change_seqs = Vec::with_capacity(group.changes.len());
    let mut change_namespaces = Vec::with_capacity(group.changes.len());
    let mut change_collections = Vec::with_capacity(group.changes.len());
    let mut change_ids = Vec::with_capacity(group.changes.len());
    let mut change_versions = Vec::with_capacity(group.changes.len());
    let mut change_bodies = Vec::with_capacity(group.changes.len());
    for change in &group.changes {
        change_seqs.push(to_db(change.seq.get())?);
        change_namespaces.push(change.namespace.as_str());
        change_collections.push(change.collection.as_str());
        change_ids.push(change.id.as_str());
        change_versions.push(to_db(change.version.get())?);
        change_bodies.push(log_change::encode(change));
    }

    let mut doc_namespaces = Vec::new();
    let mut doc_collections = Vec::new();
    let mut doc_ids = Vec::new();
    let mut doc_versions = Vec::new();
    let mut doc_seqs = Vec::new();
    let mut doc_deleted = Vec::new();
    let mut doc_updated = Vec::new();
    let mut doc_data = Vec::new();
    let mut doc_clocks = Vec::new();
    for stored in group.documents() {
        let document = &stored.document;
        doc_namespaces.push(document.namespace.as_str());
        doc_collections.push(document.collection.as_str());
        doc_ids.push(document.id.as_str());
        doc_versions.push(to_db(document.version.get())?);
        doc_seqs.push(to_db(document.seq.get())?);
        doc_deleted.push(document.deleted);
        doc_updated.push(document.updated_at.to_string());
        doc_data.push(encode("documents", &document.data)?);
        doc_clocks.push(encode("documents", &stored.field_clocks)?);
    }

    let mut op_ids = Vec::with_capacity(group.results.len());
    let mut op_bodies = Vec::with_capacity(group.results.len());
    for (op_id, result) in &group.results {
        op_ids.push(op_id.as_str());
        op_bodies.push(encode("op_results", result)?);
    }

    let mut conflict_ids = Vec::new();
    let mut conflict_namespaces = Vec::new();
    let mut conflict_collections = Vec::new();
    let mut conflict_statuses = Vec::new();
    let mut conflict_created = Vec::new();
    let mut conflict_bodies = Vec::new();
    for record in group.conflicts() {
        conflict_ids.push(record.id.as_str());
        conflict_namespaces.push(record.namespace.as_str());
        conflict_collections.push(record.collection.as_str());
        conflict_statuses.push(name_of("conflicts", &record.status)?);
        conflict_created.push(to_db(record.created_at.as_millis())?);
        conflict_bodies.push(encode("conflicts", record)?);
    }

    let mut op_statuses = Vec::new();
    let mut op_counts = Vec::new();
    for (status, count) in &group.tally.operations {
        op_statuses.push(name_of("op_counters", status)?);
        op_counts.push(*count);
    }
    let mut strategies = Vec::new();
    let mut strategy_counts = Vec::new();
    for (strategy, count) in &group.tally.conflicts {
        strategies.push(name_of("conflict_counters", strategy)?);
        strategy_counts.push(*count);
    }
    let mut device_ids = Vec::new();
    let mut device_syncs = Vec::new();
    let mut device_conflicts = Vec::new();
    let mut device_op_ids = Vec::new();
    let mut device_op_statuses = Vec::new();
    let mut device_op_counts = Vec::new();
    for (device, delta) in &group.tally.devices {
        device_ids.push(device.as_str());
        device_syncs.push(delta.last_sync.map(|t| to_db(t.as_millis())).transpose()?);
        device_conflicts.push(delta.conflicts);
        for (status, count) in &delta.operations {
            device_op_ids.push(device.as_str());
            device_op_statuses.push(name_of("device_op_counters", status)?);
            device_op_counts.push(*count);
        }
    }
    let head = to_db(group.head.get())?;
    let start = to_db(start.get())?;

    let params: [&(dyn ToSql + Sync); 36] = [
        &change_seqs,
        &change_namespaces,
        &change_collections,
        &change_ids,
        &change_versions,
        &change_bodies,
        &doc_namespaces,
        &doc_collections,
        &doc_ids,
        &doc_versions,
        &doc_seqs,
        &doc_deleted,
        &doc_updated,
        &doc_data,
        &doc_clocks,
        &op_ids,
        &op_bodies,
        &conflict_ids,
        &conflict_namespaces,
        &conflict_collections,
        &conflict_statuses,
        &conflict_created,
        &conflict_bodies,
        &op_statuses,
        &op_counts,
        &strategies,
        &strategy_counts,
        &device_ids,
        &device_syncs,
        &device_conflicts,
        &device_op_ids,
        &device_op_statuses,
        &device_op_counts,
        &head,
        &group.tally.live_documents,
        &start,
    ];
    let (advanced, committed, settled) = tokio::join!(
        biased;
        client.execute(&statements.store, &params),
        client.batch_execute("COMMIT"),
        client.query_one(&statements.settle, settle_params),
    );
    let advanced = advanced.map_err(pg)?;
    committed.map_err(pg)?;
    if advanced != 1 {
        return Err(Error::Corrupt {
            tree: "log_head",
            message: format!("the head moved from {start} under the head lock"),
        });
    }
    Ok(settled)
}
