//! Conversions between the store's types and PostgreSQL rows: integers
//! (`u64` counters in `bigint` columns), JSON text, names and errors.
//!
//! Every payload (document data, field clocks, changes, results, conflict
//! records, devices) is stored as JSON *text*, written and read by
//! serde_json, rather than as `jsonb`: `jsonb` normalises numbers (`1e17`
//! comes back as an integer, so a float would turn into an integer on the
//! way back), and it refuses the `\u0000` escape that JSON allows. Text
//! keeps the round trip exact; the store never queries inside a payload.

use serde::Serialize;
use serde::de::DeserializeOwned;
use sync_core::store::StoredDocument;
use sync_core::{CoreError, DocKey, Document, Hlc, Seq, Version};
use tokio_postgres::Row;
use tokio_postgres::types::FromSql;

use crate::error::Error;
use crate::log_change::{self, LogChange};

/// Maps a driver error, keeping the server's message and SQLSTATE.
pub(super) fn pg(error: tokio_postgres::Error) -> Error {
    match error.as_db_error() {
        Some(db) => Error::Postgres {
            message: format!("{}: {}", db.severity(), db.message())
                + &db
                    .detail()
                    .map(|detail| format!(" ({detail})"))
                    .unwrap_or_default(),
            code: Some(db.code().code().to_owned()),
        },
        None => {
            let mut message = error.to_string();
            let mut source = std::error::Error::source(&error);
            while let Some(cause) = source {
                message = format!("{message}: {cause}");
                source = cause.source();
            }
            Error::Postgres {
                message,
                code: None,
            }
        }
    }
}

/// Maps a pool error (no connection available, or connecting failed).
pub(super) fn pool(error: deadpool_postgres::PoolError) -> Error {
    match error {
        deadpool_postgres::PoolError::Backend(error) => pg(error),
        other => Error::Pool(other.to_string()),
    }
}

fn corrupt(table: &'static str, message: impl std::fmt::Display) -> Error {
    Error::Corrupt {
        tree: table,
        message: message.to_string(),
    }
}

/// A counter for a `bigint` column. Seqs, versions and counts stay far
/// below `i64::MAX`; reaching it is refused rather than wrapped.
pub(super) fn to_db(value: u64) -> Result<i64, Error> {
    i64::try_from(value).map_err(|_| Error::Postgres {
        message: format!("{value} does not fit a bigint column"),
        code: None,
    })
}

/// A `LIMIT` parameter: anything past `i64::MAX` means no limit anyway.
pub(super) fn limit_param(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

/// A counter read back from a `bigint` column (never negative).
pub(super) fn from_db(table: &'static str, value: i64) -> Result<u64, Error> {
    u64::try_from(value).map_err(|_| corrupt(table, format!("negative counter {value}")))
}

/// A column of `row`, without panicking on a type mismatch.
pub(super) fn get<'a, T: FromSql<'a>>(
    row: &'a Row,
    table: &'static str,
    index: usize,
) -> Result<T, Error> {
    row.try_get(index).map_err(|error| corrupt(table, error))
}

/// A `bigint` counter column of `row`.
pub(super) fn get_u64(row: &Row, table: &'static str, index: usize) -> Result<u64, Error> {
    from_db(table, get(row, table, index)?)
}

/// JSON text of a record.
pub(super) fn encode<T: Serialize>(table: &'static str, value: &T) -> Result<String, Error> {
    serde_json::to_string(value).map_err(|error| corrupt(table, error))
}

/// A record from its JSON text.
pub(super) fn decode<T: DeserializeOwned>(table: &'static str, text: &str) -> Result<T, Error> {
    serde_json::from_str(text).map_err(|error| corrupt(table, error))
}

/// A change from its stored JSON text, as [`log_change`] reads it.
pub(super) fn decode_change<C: LogChange>(text: &str) -> Result<C, Error> {
    log_change::decode(text.as_bytes()).map_err(|error| corrupt("changes", error))
}

/// The wire name of a unit enum (`OpStatus::Success` is `success`).
pub(super) fn name_of<T: Serialize>(table: &'static str, value: &T) -> Result<String, Error> {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(name)) => Ok(name),
        Ok(other) => Err(corrupt(table, format!("not a name: {other}"))),
        Err(error) => Err(corrupt(table, error)),
    }
}

/// A unit enum from its wire name.
pub(super) fn from_name<T: DeserializeOwned>(
    table: &'static str,
    name: String,
) -> Result<T, Error> {
    serde_json::from_value(serde_json::Value::String(name)).map_err(|error| corrupt(table, error))
}

/// A validated name (namespace, collection, id) read from a column.
pub(super) fn parse_name<T: TryFrom<String, Error = CoreError>>(
    table: &'static str,
    value: String,
) -> Result<T, Error> {
    T::try_from(value).map_err(|error| corrupt(table, error))
}

/// The columns [`document_from_row`] reads, in its order.
pub(super) const DOCUMENT_COLUMNS: &str =
    "namespace, collection, id, version, seq, deleted, updated_at, data, field_clocks";

/// A stored document from a row of [`DOCUMENT_COLUMNS`].
pub(super) fn document_from_row(row: &Row) -> Result<StoredDocument, Error> {
    const TABLE: &str = "documents";
    let updated_at: String = get(row, TABLE, 6)?;
    let data: &str = get(row, TABLE, 7)?;
    let field_clocks: &str = get(row, TABLE, 8)?;
    Ok(StoredDocument {
        document: Document {
            namespace: parse_name(TABLE, get(row, TABLE, 0)?)?,
            collection: parse_name(TABLE, get(row, TABLE, 1)?)?,
            id: parse_name(TABLE, get(row, TABLE, 2)?)?,
            version: Version(get_u64(row, TABLE, 3)?),
            seq: Seq(get_u64(row, TABLE, 4)?),
            deleted: get(row, TABLE, 5)?,
            updated_at: updated_at
                .parse::<Hlc>()
                .map_err(|error| corrupt(TABLE, error))?,
            data: decode(TABLE, data)?,
        },
        field_clocks: decode(TABLE, field_clocks)?,
    })
}

/// The three key columns of a document, as query parameters.
pub(super) fn key_params(key: &DocKey) -> [&str; 3] {
    [
        key.namespace.as_str(),
        key.collection.as_str(),
        key.id.as_str(),
    ]
}
