//! The PostgreSQL schema and its migrations.
//!
//! Migrations are numbered SQL scripts recorded in `schema_migrations`.
//! `migrate` runs in one transaction that first takes a transaction-level
//! advisory lock named after the schema, so two server nodes starting at
//! once on a fresh database do not race: the second waits, then finds the
//! work done. PostgreSQL's DDL is transactional, so a migration that fails
//! leaves nothing half-applied. The same transaction creates the single
//! `log_head` row with a fresh log id, once: every node on the database
//! then reads the same log id. A database of an earlier schema is upgraded
//! in place by the same transaction.
//!
//! Names (namespaces, collections, ids) are stored `COLLATE "C"`, so the
//! database orders them by bytes, as the sled store does, whatever the
//! database's default collation.

use sync_core::{LogId, Seq};

use super::head::SETTLED_HEAD;
use super::rows::{get, get_u64, pg};
use crate::error::Error;

/// The first schema: every table of the store.
const V1: &str = r#"
CREATE TABLE log_head (
    id smallint PRIMARY KEY CHECK (id = 1),
    log_id bigint NOT NULL,
    head bigint NOT NULL,
    live_documents bigint NOT NULL
);

CREATE TABLE documents (
    namespace text COLLATE "C" NOT NULL,
    collection text COLLATE "C" NOT NULL,
    id text COLLATE "C" NOT NULL,
    version bigint NOT NULL,
    seq bigint NOT NULL,
    deleted boolean NOT NULL,
    updated_at text NOT NULL,
    data text NOT NULL,
    field_clocks text NOT NULL,
    PRIMARY KEY (namespace, collection, id)
);

CREATE TABLE changes (
    seq bigint PRIMARY KEY,
    namespace text COLLATE "C" NOT NULL,
    collection text COLLATE "C" NOT NULL,
    id text COLLATE "C" NOT NULL,
    version bigint NOT NULL,
    body text NOT NULL
);
CREATE UNIQUE INDEX changes_by_document ON changes (namespace, collection, id, version);

CREATE TABLE op_results (
    op_id text PRIMARY KEY,
    body text NOT NULL
);

CREATE TABLE conflicts (
    id text COLLATE "C" PRIMARY KEY,
    namespace text COLLATE "C" NOT NULL,
    collection text COLLATE "C" NOT NULL,
    status text NOT NULL,
    created_at bigint NOT NULL,
    body text NOT NULL
);
CREATE INDEX conflicts_by_time ON conflicts (created_at DESC, id DESC);

CREATE TABLE devices (
    device_id text COLLATE "C" PRIMARY KEY,
    user_id text COLLATE "C" NOT NULL,
    body text NOT NULL
);
CREATE INDEX devices_by_user ON devices (user_id, device_id);

CREATE TABLE op_counters (
    status text PRIMARY KEY,
    count bigint NOT NULL
);

CREATE TABLE conflict_counters (
    strategy text PRIMARY KEY,
    count bigint NOT NULL
);

CREATE TABLE device_counters (
    device_id text PRIMARY KEY,
    last_sync bigint,
    conflicts bigint NOT NULL
);

CREATE TABLE device_op_counters (
    device_id text NOT NULL,
    status text NOT NULL,
    count bigint NOT NULL,
    PRIMARY KEY (device_id, status)
);
"#;

/// The branches of documents.
const V2: &str = r#"
CREATE TABLE branches (
    namespace text COLLATE "C" NOT NULL,
    collection text COLLATE "C" NOT NULL,
    id text COLLATE "C" NOT NULL,
    name text COLLATE "C" NOT NULL,
    body text NOT NULL,
    PRIMARY KEY (namespace, collection, id, name)
);
"#;

/// How far the log is durable and visible to readers: each node settles
/// its own row (see `commit`); the log reads up to the greatest. An
/// existing log was committed synchronously, so all of it is settled.
const V3: &str = r#"
CREATE TABLE log_settled (
    node bigint PRIMARY KEY,
    up_to bigint NOT NULL
);
INSERT INTO log_settled (node, up_to) SELECT 0, head FROM log_head WHERE id = 1;
"#;

/// A change's body may leave out an insert's delta (see `log_change`).
/// Bodies written before read as they are; the version keeps a build that
/// needs the delta from opening the database.
const V4: &str = "SELECT 1;";

/// Every migration, in order; a new one is appended, never edited.
const MIGRATIONS: &[(i32, &str)] = &[(1, V1), (2, V2), (3, V3), (4, V4)];

/// What the database says about its log once migrated.
pub(super) struct LogState {
    /// The log's identity, shared by every node.
    pub(super) log_id: LogId,
    /// The settled head (see `commit`).
    pub(super) head: Seq,
}

/// Creates `schema` if needed, applies the missing migrations and creates
/// the log's row, under an advisory lock, in one transaction. The client's
/// `search_path` must name `schema`.
pub(super) async fn migrate(
    client: &mut tokio_postgres::Client,
    schema: &str,
) -> Result<LogState, Error> {
    let tx = client.transaction().await.map_err(pg)?;
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtext($1))",
        &[&format!("sync-store migrate {schema}")],
    )
    .await
    .map_err(pg)?;
    // `schema` is validated to be a plain lower-case identifier.
    tx.batch_execute(&format!(
        "CREATE SCHEMA IF NOT EXISTS \"{schema}\";
         CREATE TABLE IF NOT EXISTS \"{schema}\".schema_migrations (
             version integer PRIMARY KEY,
             applied_at timestamptz NOT NULL DEFAULT now()
         );"
    ))
    .await
    .map_err(pg)?;
    let row = tx
        .query_one(
            "SELECT coalesce(max(version), 0) FROM schema_migrations",
            &[],
        )
        .await
        .map_err(pg)?;
    let current: i32 = get(&row, "schema_migrations", 0)?;
    let known = MIGRATIONS.last().map_or(0, |(version, _)| *version);
    if current > known {
        return Err(Error::SchemaTooNew {
            found: current,
            known,
        });
    }
    for (version, script) in MIGRATIONS.iter().filter(|(v, _)| *v > current) {
        tx.batch_execute(script).await.map_err(pg)?;
        tx.execute(
            "INSERT INTO schema_migrations (version) VALUES ($1)",
            &[version],
        )
        .await
        .map_err(pg)?;
    }
    let fresh = LogId::generate();
    tx.execute(
        "INSERT INTO log_head (id, log_id, head, live_documents) VALUES (1, $1, 0, 0)
         ON CONFLICT (id) DO NOTHING",
        &[&i64::from_be_bytes(fresh.0.to_be_bytes())],
    )
    .await
    .map_err(pg)?;
    // The rows of nodes that settled less than another are of no use to
    // readers: dropping them keeps one row per node that ever ran from
    // piling up. A live node whose row goes writes it again.
    tx.execute(
        "DELETE FROM log_settled WHERE up_to < (SELECT max(up_to) FROM log_settled)",
        &[],
    )
    .await
    .map_err(pg)?;
    let row = tx
        .query_one(
            &format!("SELECT log_id, ({SETTLED_HEAD}) FROM log_head WHERE id = 1"),
            &[],
        )
        .await
        .map_err(pg)?;
    // The log id is a random u64 kept bit for bit in a bigint.
    let log_id: i64 = get(&row, "log_head", 0)?;
    let state = LogState {
        log_id: LogId(u64::from_be_bytes(log_id.to_be_bytes())),
        head: Seq(get_u64(&row, "log_head", 1)?),
    };
    tx.commit().await.map_err(pg)?;
    Ok(state)
}
