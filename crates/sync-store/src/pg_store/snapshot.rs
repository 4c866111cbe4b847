//! Snapshots of a PostgreSQL store: read in one repeatable-read, read-only
//! transaction (so every table is seen as of one commit, and the head read
//! in it is the head of exactly that state, while other nodes keep
//! writing), and loaded into an empty schema in one transaction that holds
//! the `log_head` lock, so no node commits in between. A snapshot read may
//! hold commits not settled yet: the store settles before handing it out.

use sync_core::store::StoreSnapshot;
use sync_core::{Change, LogId, OpId, Seq};
use tokio_postgres::{IsolationLevel, Transaction};

use super::rows::{
    DOCUMENT_COLUMNS, decode, decode_change, document_from_row, encode, get, name_of, pg, to_db,
};
use crate::error::Error;
use crate::log_change;

/// Rows read per query while reading the change log.
const CHANGES_PAGE_ROWS: i64 = 10_000;

/// Everything in the schema as of one commit.
pub(super) async fn read(client: &mut tokio_postgres::Client) -> Result<StoreSnapshot, Error> {
    let tx = client
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await
        .map_err(pg)?;
    let row = tx
        .query_one("SELECT log_id FROM log_head WHERE id = 1", &[])
        .await
        .map_err(pg)?;
    let log_id: i64 = get(&row, "log_head", 0)?;
    let stats = super::read_stats(&tx).await?;
    let mut snapshot =
        StoreSnapshot::new(LogId(u64::from_be_bytes(log_id.to_be_bytes())), stats.head);
    snapshot.stats = stats;
    let mut after = 0i64;
    loop {
        let rows = tx
            .query(
                "SELECT seq, body FROM changes WHERE seq > $1 ORDER BY seq LIMIT $2",
                &[&after, &CHANGES_PAGE_ROWS],
            )
            .await
            .map_err(pg)?;
        for row in &rows {
            after = get(row, "changes", 0)?;
            let change: Change = decode_change(get(row, "changes", 1)?)?;
            snapshot.changes.push(change);
        }
        if (rows.len() as i64) < CHANGES_PAGE_ROWS {
            break;
        }
    }
    for row in &tx
        .query(
            &format!("SELECT {DOCUMENT_COLUMNS} FROM documents ORDER BY namespace, collection, id"),
            &[],
        )
        .await
        .map_err(pg)?
    {
        snapshot.documents.push(document_from_row(row)?);
    }
    for row in &tx
        .query("SELECT op_id, body FROM op_results ORDER BY op_id", &[])
        .await
        .map_err(pg)?
    {
        let op_id: &str = get(row, "op_results", 0)?;
        let op_id = OpId::new(op_id).map_err(|error| Error::Corrupt {
            tree: "op_results",
            message: error.to_string(),
        })?;
        snapshot
            .op_results
            .push((op_id, decode("op_results", get(row, "op_results", 1)?)?));
    }
    for row in &tx
        .query("SELECT body FROM conflicts ORDER BY id", &[])
        .await
        .map_err(pg)?
    {
        snapshot
            .conflicts
            .push(decode("conflicts", get(row, "conflicts", 0)?)?);
    }
    for row in &tx
        .query("SELECT body FROM devices ORDER BY device_id", &[])
        .await
        .map_err(pg)?
    {
        snapshot
            .devices
            .push(decode("devices", get(row, "devices", 0)?)?);
    }
    for row in &tx
        .query(
            "SELECT body FROM branches ORDER BY namespace, collection, id, name",
            &[],
        )
        .await
        .map_err(pg)?
    {
        snapshot
            .branches
            .push(decode("branches", get(row, "branches", 0)?)?);
    }
    tx.commit().await.map_err(pg)?;
    Ok(snapshot)
}

/// Whether the schema holds nothing yet; `tx` holds the head lock.
async fn is_empty(tx: &Transaction<'_>) -> Result<bool, Error> {
    let row = tx
        .query_one(
            "SELECT head = 0
                AND NOT EXISTS (SELECT 1 FROM changes)
                AND NOT EXISTS (SELECT 1 FROM documents)
                AND NOT EXISTS (SELECT 1 FROM op_results)
                AND NOT EXISTS (SELECT 1 FROM conflicts)
                AND NOT EXISTS (SELECT 1 FROM devices)
                AND NOT EXISTS (SELECT 1 FROM branches)
             FROM log_head WHERE id = 1 FOR UPDATE",
            &[],
        )
        .await
        .map_err(pg)?;
    get(&row, "log_head", 0)
}

/// Writes `snapshot` into the empty schema in one transaction, log id and
/// head included.
pub(super) async fn load(
    client: &mut tokio_postgres::Client,
    snapshot: &StoreSnapshot,
) -> Result<(), Error> {
    let tx = client.transaction().await.map_err(pg)?;
    if !is_empty(&tx).await? {
        tx.rollback().await.map_err(pg)?;
        return Err(Error::NotEmpty);
    }
    let mut previous = Seq::ZERO;
    let insert_change = tx
        .prepare(
            "INSERT INTO changes (seq, namespace, collection, id, version, body)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .await
        .map_err(pg)?;
    for change in &snapshot.changes {
        if change.seq <= previous || change.seq > snapshot.head {
            return Err(Error::Corrupt {
                tree: "snapshot",
                message: format!("change {} out of order or past the head", change.seq),
            });
        }
        previous = change.seq;
        tx.execute(
            &insert_change,
            &[
                &to_db(change.seq.get())?,
                &change.namespace.as_str(),
                &change.collection.as_str(),
                &change.id.as_str(),
                &to_db(change.version.get())?,
                &log_change::encode(change),
            ],
        )
        .await
        .map_err(pg)?;
    }
    let insert_document = tx
        .prepare(&format!(
            "INSERT INTO documents ({DOCUMENT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        ))
        .await
        .map_err(pg)?;
    for stored in &snapshot.documents {
        let document = &stored.document;
        tx.execute(
            &insert_document,
            &[
                &document.namespace.as_str(),
                &document.collection.as_str(),
                &document.id.as_str(),
                &to_db(document.version.get())?,
                &to_db(document.seq.get())?,
                &document.deleted,
                &document.updated_at.to_string(),
                &encode("documents", &document.data)?,
                &encode("documents", &stored.field_clocks)?,
            ],
        )
        .await
        .map_err(pg)?;
    }
    let insert_op = tx
        .prepare("INSERT INTO op_results (op_id, body) VALUES ($1, $2)")
        .await
        .map_err(pg)?;
    for (op_id, result) in &snapshot.op_results {
        tx.execute(
            &insert_op,
            &[&op_id.as_str(), &encode("op_results", result)?],
        )
        .await
        .map_err(pg)?;
    }
    for record in &snapshot.conflicts {
        tx.execute(
            "INSERT INTO conflicts (id, namespace, collection, status, created_at, body)
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                &record.id.as_str(),
                &record.namespace.as_str(),
                &record.collection.as_str(),
                &name_of("conflicts", &record.status)?,
                &to_db(record.created_at.as_millis())?,
                &encode("conflicts", record)?,
            ],
        )
        .await
        .map_err(pg)?;
    }
    for device in &snapshot.devices {
        tx.execute(
            "INSERT INTO devices (device_id, user_id, body) VALUES ($1, $2, $3)",
            &[
                &device.device_id.as_str(),
                &device.user.as_str(),
                &encode("devices", device)?,
            ],
        )
        .await
        .map_err(pg)?;
    }
    for branch in &snapshot.branches {
        tx.execute(
            "INSERT INTO branches (namespace, collection, id, name, body)
             VALUES ($1, $2, $3, $4, $5)",
            &[
                &branch.namespace.as_str(),
                &branch.collection.as_str(),
                &branch.id.as_str(),
                &branch.name.as_str(),
                &encode("branches", branch)?,
            ],
        )
        .await
        .map_err(pg)?;
    }
    load_counters(&tx, snapshot).await?;
    tx.execute(
        "UPDATE log_head SET log_id = $1, head = $2, live_documents = $3 WHERE id = 1",
        &[
            &i64::from_be_bytes(snapshot.log_id.0.to_be_bytes()),
            &to_db(snapshot.head.get())?,
            &to_db(snapshot.stats.documents)?,
        ],
    )
    .await
    .map_err(pg)?;
    // Committed synchronously with the rest: the whole log is settled.
    tx.execute("DELETE FROM log_settled", &[])
        .await
        .map_err(pg)?;
    tx.execute(
        "INSERT INTO log_settled (node, up_to) VALUES (0, $1)",
        &[&to_db(snapshot.head.get())?],
    )
    .await
    .map_err(pg)?;
    tx.commit().await.map_err(pg)?;
    Ok(())
}

/// The counter rows of the snapshot's stats (the tables are empty: an
/// empty store has no counters).
async fn load_counters(tx: &Transaction<'_>, snapshot: &StoreSnapshot) -> Result<(), Error> {
    let stats = &snapshot.stats;
    for (status, count) in &stats.operations {
        tx.execute(
            "INSERT INTO op_counters (status, count) VALUES ($1, $2)
             ON CONFLICT (status) DO UPDATE SET count = EXCLUDED.count",
            &[&name_of("op_counters", status)?, &to_db(*count)?],
        )
        .await
        .map_err(pg)?;
    }
    for (strategy, count) in &stats.conflicts {
        tx.execute(
            "INSERT INTO conflict_counters (strategy, count) VALUES ($1, $2)
             ON CONFLICT (strategy) DO UPDATE SET count = EXCLUDED.count",
            &[&name_of("conflict_counters", strategy)?, &to_db(*count)?],
        )
        .await
        .map_err(pg)?;
    }
    for (device, counters) in &stats.devices {
        let last_sync = counters
            .last_sync
            .map(|t| to_db(t.as_millis()))
            .transpose()?;
        tx.execute(
            "INSERT INTO device_counters (device_id, last_sync, conflicts) VALUES ($1, $2, $3)
             ON CONFLICT (device_id) DO UPDATE SET
                 last_sync = EXCLUDED.last_sync, conflicts = EXCLUDED.conflicts",
            &[&device.as_str(), &last_sync, &to_db(counters.conflicts)?],
        )
        .await
        .map_err(pg)?;
        for (status, count) in &counters.operations {
            tx.execute(
                "INSERT INTO device_op_counters (device_id, status, count) VALUES ($1, $2, $3)
                 ON CONFLICT (device_id, status) DO UPDATE SET count = EXCLUDED.count",
                &[
                    &device.as_str(),
                    &name_of("device_op_counters", status)?,
                    &to_db(*count)?,
                ],
            )
            .await
            .map_err(pg)?;
        }
    }
    Ok(())
}
