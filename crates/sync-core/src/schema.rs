//! OpenAPI schemas of the types whose wire form is written by hand (names,
//! counters, times, cursors), for the server's `/openapi.json`. The types
//! with derived serde forms derive theirs.

use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
use utoipa::openapi::{RefOr, Schema};

use crate::clock::Hlc;
use crate::cursor::Cursor;
use crate::timestamp::Timestamp;

/// A string schema with `description` and at most `max_chars` characters.
pub(crate) fn string(description: &str, max_chars: Option<usize>) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(description))
        .max_length(max_chars)
        .into()
}

/// The schema of a name: `description`, at most `max_chars` characters
/// matching `pattern`.
pub(crate) fn name(description: &str, max_chars: usize, pattern: &str) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(description))
        .min_length(Some(1))
        .max_length(Some(max_chars))
        .pattern(Some(pattern))
        .into()
}

/// A schema of a non-negative counter.
pub(crate) fn counter(name: &str) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
        .minimum(Some(0))
        .description(Some(format!(
            "A {}: a non-negative integer.",
            name.to_lowercase()
        )))
        .into()
}

impl utoipa::PartialSchema for Timestamp {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
            .description(Some("An ISO-8601 UTC time with milliseconds."))
            .examples([serde_json::json!("2023-12-01T10:30:00.000Z")])
            .into()
    }
}

impl utoipa::ToSchema for Timestamp {}

impl utoipa::PartialSchema for Hlc {
    fn schema() -> RefOr<Schema> {
        string(
            "A hybrid logical clock reading: the ISO-8601 time, the logical counter and the node.",
            None,
        )
    }
}

impl utoipa::ToSchema for Hlc {}

impl utoipa::PartialSchema for Cursor {
    fn schema() -> RefOr<Schema> {
        string("An opaque position in the change log, to pass back.", None)
    }
}

impl utoipa::ToSchema for Cursor {}
