//! The PostgreSQL implementation of [`SyncStore`]: several server nodes
//! share one database, and so one change log.
//!
//! - **Schema.** Every table lives in one PostgreSQL schema
//!   ([`PgConfig::schema`], set as each connection's `search_path`), created
//!   and migrated at [`PgStore::connect`] (see `schema`). The log id is
//!   created once, in the database, so every node hands out cursors of the
//!   same log.
//! - **Writes.** One committer task per node does group commit: it takes
//!   every `apply` queued while its previous group was committed and
//!   commits them in one transaction, which first locks the single
//!   `log_head` row. That lock orders all writing transactions of all
//!   nodes, so seqs are assigned in commit order and without gaps; it is
//!   released at the commit, before the WAL flush, so the nodes' flushes
//!   run concurrently (see `commit`).
//! - **Durability.** `apply` answers after the group's *settle* returns: a
//!   statement committed with `synchronous_commit = on` after the group's
//!   commit, durable (flushed to disk, and to synchronous standbys if
//!   configured) only once the WAL is flushed past the group's commit, so
//!   [`SyncStore::flush`] has nothing left to do. A database run with
//!   `synchronous_commit = off` or `fsync = off` gives up the durability
//!   guarantee of `docs/protocol.md` ("Guarantees").
//! - **Readers** of the log read up to the settled head only: every seq at
//!   or below it is committed and durable, so a reader that has seen up to
//!   `c` never misses a change committed later with a seq at or below `c`,
//!   and never reads one a crash could take back. Point reads that return
//!   a row not yet known settled settle before answering.
//! - **The head.** Every node keeps the settled head in a `watch`, fed by
//!   its own settles, by `LISTEN`/`NOTIFY` (each settle notifies the
//!   schema's channel) and by a poll every
//!   [`PgConfig::head_poll_interval_ms`] as the fallback, which also
//!   settles a commit left unsettled by a node that died (see `head`).
//! - **Counters** are rows updated in the writing transaction. Every
//!   transaction updates the same few rows (the `success` counter, the
//!   head), which is a hot spot, but writing transactions are serialised by
//!   the head lock anyway (only their flushes overlap); per-node sharded
//!   counters would be the next step if a single database ever needs more
//!   write throughput than one serial stream of group transactions gives.
//!
//! Connections are unencrypted (`NoTls`): run the database on a private
//! network or over a local socket. No tokio-postgres or deadpool type
//! appears in this module's public API.

mod commit;
mod head;
mod rows;
mod schema;
mod snapshot;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use sync_core::store::{
    BranchRecord, ChangeFilter, ChangePage, CommitObserver, CommitOutcome, ConflictQuery,
    DeviceRecord, DeviceStats, DocumentPage, RetentionPolicy, StoreSnapshot, StoreStats,
    StoredDocument, Write,
};
use sync_core::{
    BranchName, Change, CollectionName, ConflictId, ConflictRecord, DeviceId, DocId, DocKey,
    Document, Filter, LogId, Namespace, OpId, OpResult, RawChange, Seq, StoreError, SyncStore,
    Timestamp, UserId, Version,
};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio_postgres::types::ToSql;
use tokio_postgres::{IsolationLevel, NoTls};

use self::commit::{Committer, Request};
use self::head::{Settler, advance, read_head};
use self::rows::{
    DOCUMENT_COLUMNS, decode, decode_change, document_from_row, encode, from_name, get, get_u64,
    key_params, limit_param, pg, pool, to_db,
};
use crate::committed::CommitWatch;
use crate::error::Error;
use crate::log_change::LogChange;
use crate::replay::{document_at, projection_differences};

/// Settings of a [`PgStore`].
#[derive(Debug, Clone)]
pub struct PgConfig {
    /// The PostgreSQL schema holding the store's tables: 1-50 characters of
    /// `[a-z0-9_]`, not starting with a digit. Nodes sharing a log use the
    /// same schema; tests use a fresh one each.
    pub schema: String,
    /// The most pooled connections (reads, the committer's transactions);
    /// the `LISTEN` connection comes on top.
    pub pool_connections_max: usize,
    /// How long a caller waits for a pooled connection before failing.
    pub pool_wait_ms: u64,
    /// The most writes one group commit takes.
    pub batch_writes_max: usize,
    /// The most `apply` calls waiting for the committer.
    pub queue_depth_max: usize,
    /// How often the head is polled, the fallback when a notification is
    /// lost; this bounds how late a waiter can learn of another node's
    /// commit.
    pub head_poll_interval_ms: u64,
    /// Whether to `LISTEN` for other nodes' commits. Off behind a pooler in
    /// transaction mode (which cannot hold a `LISTEN`): waiters then learn
    /// of other nodes' commits by polling only.
    pub listen: bool,
    /// Told of every group commit of this node.
    pub commit_observer: Option<Arc<dyn CommitObserver>>,
    /// A group commit running longer than this makes the store not ready
    /// (`check_writable`): the committer is stalled.
    pub stall_after_ms: u64,
}

impl Default for PgConfig {
    fn default() -> Self {
        PgConfig {
            schema: "sync".into(),
            pool_connections_max: 16,
            pool_wait_ms: 30_000,
            batch_writes_max: 4_096,
            queue_depth_max: 8_192,
            head_poll_interval_ms: 1_000,
            listen: true,
            commit_observer: None,
            stall_after_ms: 10_000,
        }
    }
}

impl PgConfig {
    /// The settings with `schema` as the schema.
    pub fn with_schema(schema: impl Into<String>) -> PgConfig {
        PgConfig {
            schema: schema.into(),
            ..PgConfig::default()
        }
    }
}

/// Checks that `schema` is a plain lower-case identifier, so it can be
/// written into SQL and into the notification channel's name unquoted.
fn validate_schema(schema: &str) -> Result<(), Error> {
    let mut chars = schema.chars();
    let valid = (1..=50).contains(&schema.len())
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if valid {
        Ok(())
    } else {
        Err(Error::Config(format!(
            "schema {schema:?}: expected 1-50 characters of [a-z0-9_], not starting with a digit"
        )))
    }
}

/// The driver's settings for `url`, with the store's schema as the
/// `search_path`.
fn connection_config(url: &str, schema: &str) -> Result<tokio_postgres::Config, Error> {
    let mut config: tokio_postgres::Config = url
        .parse()
        .map_err(|error| Error::Config(format!("database URL: {error}")))?;
    // A node that stalls inside its write transaction (a frozen process,
    // a half-open connection) would hold the head lock and stop every
    // node's writes: the server ends such a transaction after 30 s idle.
    let ours = format!("-c search_path={schema} -c idle_in_transaction_session_timeout=30000");
    let options = match config.get_options() {
        Some(options) if !options.is_empty() => format!("{options} {ours}"),
        _ => ours,
    };
    config.options(&options);
    if config.get_application_name().is_none() {
        config.application_name("sync-store");
    }
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(Duration::from_secs(10));
    }
    Ok(config)
}

/// A random id for a row of `log_settled`.
fn node_id() -> i64 {
    i64::from_be_bytes(LogId::generate().0.to_be_bytes())
}

/// The scale-out store: documents, change log and the rest in PostgreSQL
/// tables, shared by every node connected to the same schema.
pub struct PgStore {
    pool: Pool,
    schema: String,
    /// The log's id; replaced once by a snapshot load.
    log_id: AtomicU64,
    heads: Arc<watch::Sender<Seq>>,
    /// Settles what readers read before it is known settled.
    settler: Arc<Settler>,
    committer: mpsc::Sender<Request>,
    committer_task: JoinHandle<()>,
    /// The group commit in flight.
    watch: Arc<CommitWatch>,
    /// How long one group commit may run before the store is not ready.
    stall_after: Duration,
    /// Dropped with the store, which stops the listener and the poller.
    _shutdown: watch::Sender<()>,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("schema", &self.schema)
            .field("log_id", &self.log_id())
            .field("known_head", &*self.heads.borrow())
            .finish()
    }
}

impl PgStore {
    /// Connects to the database at `url` (a `postgres://` URL or a
    /// key-value connection string), creates or migrates the schema, and
    /// starts the committer, the listener and the head poller on the
    /// current tokio runtime.
    pub async fn connect(url: &str, config: PgConfig) -> Result<PgStore, Error> {
        validate_schema(&config.schema)?;
        let pg_config = connection_config(url, &config.schema)?;
        let manager = Manager::from_config(
            pg_config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(config.pool_connections_max.max(1))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(Duration::from_millis(config.pool_wait_ms)))
            .build()
            .map_err(|error| Error::Pool(error.to_string()))?;
        let state = {
            let mut client = pool.get().await.map_err(self::pool)?;
            schema::migrate(&mut client, &config.schema).await?
        };

        let heads = Arc::new(watch::Sender::new(state.head));
        let (shutdown, shutdown_receiver) = watch::channel(());
        let channel = format!("sync_head_{}", config.schema);
        if config.listen {
            tokio::spawn(head::listen(
                pg_config,
                channel.clone(),
                Arc::clone(&heads),
                shutdown_receiver.clone(),
            ));
        }
        // Random row ids in `log_settled`, one for the committer and one for
        // everything else, so neither waits for the other's flush.
        let settler = Arc::new(Settler {
            pool: pool.clone(),
            node: node_id(),
            heads: Arc::clone(&heads),
            running: tokio::sync::Mutex::new(()),
        });
        tokio::spawn(head::poll(
            Arc::clone(&settler),
            Duration::from_millis(config.head_poll_interval_ms.max(1)),
            shutdown_receiver,
        ));
        let (settled_sender, settled) = watch::channel(state.head);
        tokio::spawn(head::notify(pool.clone(), channel, settled));
        let (sender, receiver) = mpsc::channel(config.queue_depth_max.max(1));
        let watch = Arc::new(CommitWatch::default());
        let committer = Committer {
            pool: pool.clone(),
            heads: Arc::clone(&heads),
            node: node_id(),
            settled: settled_sender,
            batch_writes_max: config.batch_writes_max.max(1),
            observer: config.commit_observer.clone(),
            watch: Arc::clone(&watch),
        };
        let committer_task = tokio::spawn(committer.run(receiver));
        Ok(PgStore {
            pool,
            schema: config.schema,
            log_id: AtomicU64::new(state.log_id.0),
            heads,
            settler,
            committer: sender,
            committer_task,
            watch,
            stall_after: Duration::from_millis(config.stall_after_ms),
            _shutdown: shutdown,
        })
    }

    /// The PostgreSQL schema this store lives in.
    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// Stops accepting writes, lets the committer finish what is queued,
    /// and closes the connections.
    pub async fn close(self) -> Result<(), Error> {
        let PgStore {
            pool,
            committer,
            committer_task,
            _shutdown,
            ..
        } = self;
        drop(committer);
        committer_task.await.map_err(|_| Error::Closed)?;
        drop(_shutdown);
        pool.close();
        Ok(())
    }

    /// Drops this store's schema with everything in it. For tests; the
    /// store is useless afterwards.
    pub async fn drop_schema(&self) -> Result<(), Error> {
        let client = self.pool.get().await.map_err(pool)?;
        client
            .batch_execute(&format!(
                "DROP SCHEMA IF EXISTS \"{}\" CASCADE",
                self.schema
            ))
            .await
            .map_err(pg)
    }

    /// Drops `schema` of the database at `url` with everything in it, on a
    /// connection of its own (so it works without a store, e.g. from a
    /// test's clean-up). For tests.
    pub async fn drop_schema_at(url: &str, schema: &str) -> Result<(), Error> {
        validate_schema(schema)?;
        let config = connection_config(url, schema)?;
        let (client, connection) = config.connect(NoTls).await.map_err(pg)?;
        let driver = tokio::spawn(connection);
        let dropped = client
            .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
            .await
            .map_err(pg);
        drop(client);
        let _ = driver.await;
        dropped
    }

    /// Recomputes every document from the change log and compares it with
    /// the stored projection; returns the keys that differ (empty when the
    /// projection is exactly the log's). Reads one consistent snapshot, so
    /// it can run while other nodes write.
    pub async fn verify_projection(&self) -> Result<Vec<DocKey>, Error> {
        let mut client = self.pool.get().await.map_err(pool)?;
        let tx = client
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(pg)?;
        let mut by_document: BTreeMap<DocKey, Vec<Change>> = BTreeMap::new();
        let mut after = 0i64;
        loop {
            let rows = tx
                .query(
                    "SELECT seq, body FROM changes WHERE seq > $1 ORDER BY seq LIMIT 10000",
                    &[&after],
                )
                .await
                .map_err(pg)?;
            for row in &rows {
                after = get(row, "changes", 0)?;
                let change: Change = decode_change(get(row, "changes", 1)?)?;
                by_document.entry(change.key()).or_default().push(change);
            }
            if rows.len() < 10_000 {
                break;
            }
        }
        let documents = tx
            .query(&format!("SELECT {DOCUMENT_COLUMNS} FROM documents"), &[])
            .await
            .map_err(pg)?;
        tx.commit().await.map_err(pg)?;
        let mut stored: BTreeMap<DocKey, Document> = BTreeMap::new();
        for row in &documents {
            let document = document_from_row(row)?.document;
            stored.insert(document.key(), document);
        }
        Ok(projection_differences(&by_document, stored))
    }

    async fn query(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<tokio_postgres::Row>, Error> {
        let client = self.pool.get().await.map_err(pool)?;
        let statement = client.prepare_cached(sql).await.map_err(pg)?;
        client.query(&statement, params).await.map_err(pg)
    }

    async fn execute(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64, Error> {
        let client = self.pool.get().await.map_err(pool)?;
        let statement = client.prepare_cached(sql).await.map_err(pg)?;
        client.execute(&statement, params).await.map_err(pg)
    }

    /// The settled head from the database, which also raises the known
    /// head.
    async fn durable_head(&self) -> Result<Seq, Error> {
        let head = read_head(&self.pool).await?;
        advance(&self.heads, head);
        Ok(head)
    }

    /// The durable changes after `after` that pass `filter`, at most
    /// `limit`, decoded as `C`.
    ///
    /// One statement reads the settled head and the page, so both come from
    /// one snapshot: every seq at or below that head is committed and
    /// durable, so the snapshot sees all of them. Rows past the head
    /// (committed, their flush still under way) are read but not returned.
    /// The head is not a bound of the scan, because the planner, not knowing
    /// it, would then sort the whole rest of the log instead of walking the
    /// index in order.
    async fn read_changes<C: LogChange>(
        &self,
        after: Seq,
        filter: &ChangeFilter,
        limit: usize,
    ) -> Result<ChangePage<C>, Error> {
        // As in the sled store, a page holds at least one change.
        let limit = limit.max(1);
        let namespaces: Option<Vec<&str>> = filter
            .namespaces
            .as_ref()
            .map(|set| set.iter().map(Namespace::as_str).collect());
        let collections: Option<Vec<&str>> = filter
            .collections
            .as_ref()
            .map(|set| set.iter().map(CollectionName::as_str).collect());
        let rows = self
            .query(
                &format!(
                    "SELECT settled.head, page.seq, page.body
                     FROM ({}) AS settled (head)
                     LEFT JOIN LATERAL (
                         SELECT seq, body FROM changes
                         WHERE seq > $1
                           AND ($2::text[] IS NULL OR namespace = ANY($2))
                           AND (collection = ANY($3)
                                OR $3::text[] IS NULL
                                   AND NOT ($5 AND strpos(collection, '@') > 0))
                         ORDER BY seq LIMIT $4
                     ) AS page ON true",
                    head::SETTLED_HEAD
                ),
                &[
                    &to_db(after.get())?,
                    &namespaces,
                    &collections,
                    &limit_param(limit),
                    &filter.skip_branches,
                ],
            )
            .await?;
        let head = match rows.first() {
            Some(row) => Seq(get_u64(row, "log_settled", 0)?),
            None => {
                return Err(Error::Corrupt {
                    tree: "log_settled",
                    message: "no settled head".to_owned(),
                });
            }
        };
        advance(&self.heads, head);
        let mut changes = Vec::with_capacity(rows.len());
        for row in &rows {
            let Some(seq) = get::<Option<i64>>(row, "changes", 1)? else {
                break;
            };
            let seq = Seq(rows::from_db("changes", seq)?);
            if seq > head {
                break;
            }
            let change: C = decode_change(get(row, "changes", 2)?)?;
            if change.seq() != seq {
                return Err(Error::Corrupt {
                    tree: "changes",
                    message: format!("row {seq} holds change {}", change.seq()),
                });
            }
            changes.push(change);
        }
        // A full page ends at its last change; otherwise every entry up to
        // the head was examined.
        let last_seq = match changes.last() {
            Some(last) if changes.len() == limit => last.seq(),
            _ => head.max(after),
        };
        Ok(ChangePage {
            changes,
            last_seq,
            has_more: last_seq < head,
        })
    }

    /// Settles the commits that wrote `documents` unless known settled.
    async fn settle_documents(&self, documents: &[Document]) -> Result<(), Error> {
        match documents.iter().map(|document| document.seq).max() {
            Some(seq) => self.settler.settle_past(Some(seq)).await,
            None => Ok(()),
        }
    }

    async fn changes_of(&self, key: &DocKey) -> Result<Vec<Change>, Error> {
        let [namespace, collection, id] = key_params(key);
        let rows = self
            .query(
                "SELECT body FROM changes WHERE namespace = $1 AND collection = $2 AND id = $3
                 ORDER BY version",
                &[&namespace, &collection, &id],
            )
            .await?;
        let changes = rows
            .iter()
            .map(|row| decode_change(get(row, "changes", 0)?))
            .collect::<Result<Vec<Change>, Error>>()?;
        self.settler
            .settle_past(changes.iter().map(|change| change.seq).max())
            .await?;
        Ok(changes)
    }
}

/// The counters behind the stats endpoint, read in `tx` (one consistent
/// snapshot when `tx` is repeatable-read).
async fn read_stats(tx: &tokio_postgres::Transaction<'_>) -> Result<StoreStats, Error> {
    let (head_rows, op_rows, conflict_rows, device_rows, device_op_rows) = tokio::try_join!(
        tx.query(
            "SELECT head, live_documents FROM log_head WHERE id = 1",
            &[]
        ),
        tx.query("SELECT status, count FROM op_counters", &[]),
        tx.query("SELECT strategy, count FROM conflict_counters", &[]),
        tx.query(
            "SELECT device_id, last_sync, conflicts FROM device_counters",
            &[]
        ),
        tx.query(
            "SELECT device_id, status, count FROM device_op_counters",
            &[]
        ),
    )
    .map_err(pg)?;

    let mut stats = StoreStats::default();
    if let Some(row) = head_rows.first() {
        stats.head = Seq(get_u64(row, "log_head", 0)?);
        stats.documents = get_u64(row, "log_head", 1)?;
    }
    for row in &op_rows {
        let status = from_name("op_counters", get(row, "op_counters", 0)?)?;
        stats
            .operations
            .insert(status, get_u64(row, "op_counters", 1)?);
    }
    for row in &conflict_rows {
        let strategy = from_name("conflict_counters", get(row, "conflict_counters", 0)?)?;
        stats
            .conflicts
            .insert(strategy, get_u64(row, "conflict_counters", 1)?);
    }
    for row in &device_rows {
        let device: DeviceId =
            rows::parse_name("device_counters", get(row, "device_counters", 0)?)?;
        let last_sync: Option<i64> = get(row, "device_counters", 1)?;
        let last_sync = last_sync
            .map(|millis| {
                Timestamp::from_millis(rows::from_db("device_counters", millis)?).ok_or_else(|| {
                    Error::Corrupt {
                        tree: "device_counters",
                        message: format!("last sync {millis}"),
                    }
                })
            })
            .transpose()?;
        stats.devices.insert(
            device,
            DeviceStats {
                last_sync,
                conflicts: get_u64(row, "device_counters", 2)?,
                ..DeviceStats::default()
            },
        );
    }
    for row in &device_op_rows {
        let device: DeviceId =
            rows::parse_name("device_op_counters", get(row, "device_op_counters", 0)?)?;
        let status = from_name("device_op_counters", get(row, "device_op_counters", 1)?)?;
        stats
            .devices
            .entry(device)
            .or_default()
            .operations
            .insert(status, get_u64(row, "device_op_counters", 2)?);
    }
    Ok(stats)
}

/// How many documents `list` reads per query when it filters: a filter is
/// applied to the decoded data (with serde_json's equality, as the sled
/// store does), so pages are read until enough documents match.
const LIST_CHUNK_MAX: usize = 500;

#[async_trait]
impl SyncStore for PgStore {
    fn log_id(&self) -> LogId {
        LogId(self.log_id.load(Ordering::Acquire))
    }

    async fn get(&self, key: &DocKey) -> Result<Option<StoredDocument>, StoreError> {
        let [namespace, collection, id] = key_params(key);
        let rows = self
            .query(
                &format!(
                    "SELECT {DOCUMENT_COLUMNS} FROM documents
                     WHERE namespace = $1 AND collection = $2 AND id = $3"
                ),
                &[&namespace, &collection, &id],
            )
            .await?;
        let stored = rows.first().map(document_from_row).transpose()?;
        if let Some(stored) = &stored {
            self.settler.settle_past(Some(stored.document.seq)).await?;
        }
        Ok(stored)
    }

    async fn list(
        &self,
        namespace: &Namespace,
        collection: &CollectionName,
        filter: &Filter,
        after: Option<&DocId>,
        limit: usize,
    ) -> Result<DocumentPage, StoreError> {
        let mut documents: Vec<Document> = Vec::new();
        if limit == 0 {
            return Ok(DocumentPage {
                documents,
                next: None,
            });
        }
        let chunk = if filter.is_empty() {
            limit.saturating_add(1)
        } else {
            limit.saturating_add(1).min(LIST_CHUNK_MAX)
        };
        let chunk_param = limit_param(chunk);
        let mut cursor: Option<String> = after.map(|id| id.as_str().to_owned());
        loop {
            let rows = match &cursor {
                Some(after) => {
                    self.query(
                        &format!(
                            "SELECT {DOCUMENT_COLUMNS} FROM documents
                             WHERE namespace = $1 AND collection = $2 AND NOT deleted AND id > $3
                             ORDER BY id LIMIT $4"
                        ),
                        &[
                            &namespace.as_str(),
                            &collection.as_str(),
                            after,
                            &chunk_param,
                        ],
                    )
                    .await?
                }
                None => {
                    self.query(
                        &format!(
                            "SELECT {DOCUMENT_COLUMNS} FROM documents
                             WHERE namespace = $1 AND collection = $2 AND NOT deleted
                             ORDER BY id LIMIT $3"
                        ),
                        &[&namespace.as_str(), &collection.as_str(), &chunk_param],
                    )
                    .await?
                }
            };
            for row in &rows {
                let document = document_from_row(row)?.document;
                cursor = Some(document.id.as_str().to_owned());
                if !filter.matches(&document.data) {
                    continue;
                }
                if documents.len() == limit {
                    let next = documents.last().map(|d| d.id.clone());
                    self.settle_documents(&documents).await?;
                    return Ok(DocumentPage { documents, next });
                }
                documents.push(document);
            }
            if rows.len() < chunk {
                self.settle_documents(&documents).await?;
                return Ok(DocumentPage {
                    documents,
                    next: None,
                });
            }
        }
    }

    async fn lookup_op(&self, op_id: &OpId) -> Result<Option<OpResult>, StoreError> {
        let rows = self
            .query(
                "SELECT body FROM op_results WHERE op_id = $1",
                &[&op_id.as_str()],
            )
            .await?;
        let result: Option<OpResult> = rows
            .first()
            .map(|row| decode("op_results", get(row, "op_results", 0)?))
            .transpose()?;
        // A recorded result answers a retry as a duplicate: it must be
        // durable first.
        if let Some(result) = &result {
            self.settler.settle_past(result.seq).await?;
        }
        Ok(result)
    }

    async fn apply(&self, writes: Vec<Write>) -> Result<Vec<CommitOutcome>, StoreError> {
        if writes.is_empty() {
            return Ok(Vec::new());
        }
        let (reply, answer) = oneshot::channel();
        self.committer
            .send((writes, reply))
            .await
            .map_err(|_| StoreError::Closed)?;
        Ok(answer.await.map_err(|_| StoreError::Closed)??)
    }

    async fn changes_after(
        &self,
        after: Seq,
        filter: &ChangeFilter,
        limit: usize,
    ) -> Result<ChangePage, StoreError> {
        Ok(self.read_changes(after, filter, limit).await?)
    }

    async fn raw_changes_after(
        &self,
        after: Seq,
        filter: &ChangeFilter,
        limit: usize,
    ) -> Result<ChangePage<RawChange>, StoreError> {
        Ok(self.read_changes(after, filter, limit).await?)
    }

    async fn head(&self) -> Result<Seq, StoreError> {
        Ok(self.durable_head().await?)
    }

    async fn wait_for_head(&self, after: Seq) -> Result<Seq, StoreError> {
        let mut heads = self.heads.subscribe();
        let known = *heads.borrow_and_update();
        if known > after {
            return Ok(known);
        }
        // The known head may lag another node's settle (a notification in
        // flight): ask the database once before waiting.
        self.durable_head().await?;
        let head = heads
            .wait_for(|head| *head > after)
            .await
            .map_err(|_| StoreError::Closed)?;
        Ok(*head)
    }

    async fn oldest_retained(&self) -> Result<Seq, StoreError> {
        let rows = self
            .query(
                &format!(
                    "SELECT (SELECT min(seq) FROM changes WHERE seq <= settled.head), settled.head
                     FROM ({}) AS settled (head)",
                    head::SETTLED_HEAD
                ),
                &[],
            )
            .await?;
        let Some(row) = rows.first() else {
            return Err(Error::Corrupt {
                tree: "log_settled",
                message: "no settled head".into(),
            }
            .into());
        };
        let oldest: Option<i64> = get(row, "changes", 0)?;
        match oldest {
            Some(oldest) => Ok(Seq(rows::from_db("changes", oldest)?)),
            None => Ok(Seq(get_u64(row, "log_settled", 1)?).next()),
        }
    }

    async fn history(&self, key: &DocKey) -> Result<Vec<Change>, StoreError> {
        Ok(self.changes_of(key).await?)
    }

    async fn verify_projection(&self) -> Result<Vec<DocKey>, StoreError> {
        Ok(PgStore::verify_projection(self).await?)
    }

    async fn check_writable(&self) -> Result<(), StoreError> {
        if let Some(busy) = self
            .watch
            .busy_for()
            .filter(|busy| *busy > self.stall_after)
        {
            // Of unknown fate, like a lost connection: not ready.
            return Err(Error::Postgres {
                message: format!(
                    "the committer has been on one group commit for {} ms \
                     (a lock held elsewhere, or a database that does not answer)",
                    busy.as_millis()
                ),
                code: None,
            }
            .into());
        }
        // The database is reachable and answers; whether it could commit
        // (a full disk there) shows only in a commit, as `StorageFull`.
        self.query("SELECT 1", &[]).await?;
        Ok(())
    }

    async fn document_at(
        &self,
        key: &DocKey,
        version: Version,
    ) -> Result<Option<Document>, StoreError> {
        Ok(document_at(&self.changes_of(key).await?, version))
    }

    async fn get_conflict(&self, id: &ConflictId) -> Result<Option<ConflictRecord>, StoreError> {
        let rows = self
            .query("SELECT body FROM conflicts WHERE id = $1", &[&id.as_str()])
            .await?;
        Ok(rows
            .first()
            .map(|row| decode("conflicts", get(row, "conflicts", 0)?))
            .transpose()?)
    }

    async fn list_conflicts(
        &self,
        query: &ConflictQuery,
    ) -> Result<Vec<ConflictRecord>, StoreError> {
        let status = query
            .status
            .map(|status| rows::name_of("conflicts", &status))
            .transpose()?;
        let namespaces: Option<Vec<&str>> = query
            .namespaces
            .as_ref()
            .map(|set| set.iter().map(Namespace::as_str).collect());
        let collection = query.collection.as_ref().map(CollectionName::as_str);
        let rows = self
            .query(
                "SELECT body FROM conflicts
                 WHERE ($1::text IS NULL OR status = $1)
                   AND ($2::text[] IS NULL OR namespace = ANY($2))
                   AND ($3::text IS NULL OR collection = $3)
                 ORDER BY created_at DESC, id DESC LIMIT $4",
                &[&status, &namespaces, &collection, &limit_param(query.limit)],
            )
            .await?;
        rows.iter()
            .map(|row| Ok(decode("conflicts", get(row, "conflicts", 0)?)?))
            .collect()
    }

    async fn put_device(&self, device: DeviceRecord) -> Result<(), StoreError> {
        let body = encode("devices", &device)?;
        self.execute(
            "INSERT INTO devices (device_id, user_id, body) VALUES ($1, $2, $3)
             ON CONFLICT (device_id) DO UPDATE SET user_id = EXCLUDED.user_id, body = EXCLUDED.body",
            &[&device.device_id.as_str(), &device.user.as_str(), &body],
        )
        .await?;
        Ok(())
    }

    async fn get_device(&self, id: &DeviceId) -> Result<Option<DeviceRecord>, StoreError> {
        let rows = self
            .query(
                "SELECT body FROM devices WHERE device_id = $1",
                &[&id.as_str()],
            )
            .await?;
        Ok(rows
            .first()
            .map(|row| decode("devices", get(row, "devices", 0)?))
            .transpose()?)
    }

    async fn list_devices(&self, user: &UserId) -> Result<Vec<DeviceRecord>, StoreError> {
        let rows = self
            .query(
                "SELECT body FROM devices WHERE user_id = $1 ORDER BY device_id",
                &[&user.as_str()],
            )
            .await?;
        rows.iter()
            .map(|row| Ok(decode("devices", get(row, "devices", 0)?)?))
            .collect()
    }

    async fn remove_device(&self, id: &DeviceId) -> Result<bool, StoreError> {
        let removed = self
            .execute("DELETE FROM devices WHERE device_id = $1", &[&id.as_str()])
            .await?;
        Ok(removed > 0)
    }

    async fn put_branch(&self, branch: BranchRecord) -> Result<(), StoreError> {
        let body = encode("branches", &branch)?;
        self.execute(
            "INSERT INTO branches (namespace, collection, id, name, body) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (namespace, collection, id, name) DO UPDATE SET body = EXCLUDED.body",
            &[
                &branch.namespace.as_str(),
                &branch.collection.as_str(),
                &branch.id.as_str(),
                &branch.name.as_str(),
                &body,
            ],
        )
        .await?;
        Ok(())
    }

    async fn get_branch(
        &self,
        key: &DocKey,
        name: &BranchName,
    ) -> Result<Option<BranchRecord>, StoreError> {
        let [namespace, collection, id] = key_params(key);
        let rows = self
            .query(
                "SELECT body FROM branches
                 WHERE namespace = $1 AND collection = $2 AND id = $3 AND name = $4",
                &[&namespace, &collection, &id, &name.as_str()],
            )
            .await?;
        Ok(rows
            .first()
            .map(|row| decode("branches", get(row, "branches", 0)?))
            .transpose()?)
    }

    async fn list_branches(&self, key: &DocKey) -> Result<Vec<BranchRecord>, StoreError> {
        let [namespace, collection, id] = key_params(key);
        let rows = self
            .query(
                "SELECT body FROM branches
                 WHERE namespace = $1 AND collection = $2 AND id = $3 ORDER BY name",
                &[&namespace, &collection, &id],
            )
            .await?;
        rows.iter()
            .map(|row| Ok(decode("branches", get(row, "branches", 0)?)?))
            .collect()
    }

    async fn remove_branch(&self, key: &DocKey, name: &BranchName) -> Result<bool, StoreError> {
        let [namespace, collection, id] = key_params(key);
        let removed = self
            .execute(
                "DELETE FROM branches
                 WHERE namespace = $1 AND collection = $2 AND id = $3 AND name = $4",
                &[&namespace, &collection, &id, &name.as_str()],
            )
            .await?;
        Ok(removed > 0)
    }

    async fn stats(&self) -> Result<StoreStats, StoreError> {
        let mut client = self.pool.get().await.map_err(pool)?;
        let tx = client
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(pg)?;
        let stats = read_stats(&tx).await?;
        tx.commit().await.map_err(pg)?;
        drop(client);
        self.settler.settle_past(Some(stats.head)).await?;
        Ok(stats)
    }

    async fn compact(&self, policy: &RetentionPolicy) -> Result<u64, StoreError> {
        // Per document, the changes older than its last `keep_versions`
        // that are at or below the low-water mark. A document's seqs grow
        // with its versions, so this is exactly the sled store's walk from
        // the oldest change that stops at the first one above the mark.
        let keep = policy.keep_versions.max(1);
        let collections: Option<Vec<&str>> = policy
            .collections
            .as_ref()
            .map(|set| set.iter().map(CollectionName::as_str).collect());
        let removed = self
            .execute(
                "DELETE FROM changes WHERE seq IN (
                     SELECT seq FROM (
                         SELECT seq, row_number() OVER (
                             PARTITION BY namespace, collection, id ORDER BY version DESC
                         ) AS newer
                         FROM changes
                         WHERE $3::text[] IS NULL OR collection = ANY($3)
                     ) AS ranked
                     WHERE newer > $1 AND seq <= $2
                 )",
                &[&to_db(keep)?, &to_db(policy.low_water.get())?, &collections],
            )
            .await?;
        Ok(removed)
    }

    async fn flush(&self) -> Result<(), StoreError> {
        // Every `apply` answered after its COMMIT, which is durable with
        // `synchronous_commit = on`: nothing is buffered on this side.
        Ok(())
    }

    async fn snapshot(&self) -> Result<StoreSnapshot, StoreError> {
        let mut client = self.pool.get().await.map_err(pool)?;
        let snapshot = snapshot::read(&mut client).await?;
        drop(client);
        // What the snapshot read may include commits not settled yet.
        self.settler.settle_past(None).await?;
        Ok(snapshot)
    }

    /// Other nodes on the schema keep the log id they read at connect:
    /// load into a schema no other node is connected to.
    async fn load_snapshot(&self, snapshot: StoreSnapshot) -> Result<(), StoreError> {
        let mut client = self.pool.get().await.map_err(pool)?;
        snapshot::load(&mut client, &snapshot).await?;
        self.log_id.store(snapshot.log_id.0, Ordering::Release);
        advance(&self.heads, snapshot.head);
        Ok(())
    }
}
