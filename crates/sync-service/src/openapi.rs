//! `GET /openapi.json`: the OpenAPI 3.1 description of the HTTP API,
//! generated from the handlers' `#[utoipa::path]` annotations and the wire
//! types' schemas. The routes are registered from the same annotations
//! (`utoipa_axum`), so a route cannot be served without being described.

use std::collections::BTreeMap;

use serde::Serialize;
use sync_core::{CollectionName, DocId, ErrorBody, ErrorCode, Namespace};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, HeaderBuilder, Ref, RefOr, Response, ResponseBuilder, Type};
use utoipa::{IntoParams, IntoResponses, Modify, OpenApi, ToSchema};

/// The document's fixed parts: what it is, the security schemes, the tags.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "sync-server",
        description = "The HTTP API of the sync engine's server. The WebSocket protocol (`GET /ws`) \
                       and the semantics of operations, conflicts and cursors are in the project's \
                       `docs/protocol.md`. In `auth = none` mode no credentials are needed; in `jwt` \
                       mode every endpoint but `/health`, `/ready` and `/openapi.json` needs a bearer \
                       token (or `?token=`)."
    ),
    modifiers(&Security),
    components(schemas(ErrorResponse)),
    tags(
        (name = "sync", description = "Bulk sync: operations in, results, conflicts and changes out"),
        (name = "documents", description = "Documents, their history and restore"),
        (name = "branches", description = "Branches of a document: fork, merge, delete"),
        (name = "changes", description = "The change feed"),
        (name = "conflicts", description = "Recorded conflicts and their resolution"),
        (name = "devices", description = "The device registry"),
        (name = "operations", description = "Stats, metrics, health, readiness, snapshots"),
    )
)]
pub(crate) struct ApiDoc;

/// The body of every error answer.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ErrorResponse {
    error: ErrorBody,
}

/// Adds the credentials a request may carry: a bearer JWT, or the same
/// token as the `token` query parameter.
struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
        components.add_security_scheme(
            "token",
            SecurityScheme::ApiKey(ApiKey::Query(ApiKeyValue::new("token"))),
        );
    }
}

/// The error answers any endpoint may give (`docs/protocol.md`, "Errors").
pub(crate) struct Errors;

impl IntoResponses for Errors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        ErrorCode::ALL
            .into_iter()
            .filter(|code| *code != ErrorCode::CursorExpired)
            .map(|code| (code.http_status().to_string(), error_response(code)))
            .collect()
    }
}

/// `Errors` and `410 cursor_expired`, for the endpoints that take a cursor.
pub(crate) struct CursorErrors;

impl IntoResponses for CursorErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        let mut responses = Errors::responses();
        responses.insert(
            ErrorCode::CursorExpired.http_status().to_string(),
            error_response(ErrorCode::CursorExpired),
        );
        responses
    }
}

fn error_response(code: ErrorCode) -> RefOr<Response> {
    let mut response = ResponseBuilder::new()
        .description(format!("`{code}`"))
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorResponse")))
                .build(),
        );
    if code == ErrorCode::RateLimited || code.retry_after_secs().is_some() {
        response = response.header(
            "Retry-After",
            HeaderBuilder::new()
                .schema(
                    utoipa::openapi::ObjectBuilder::new()
                        .schema_type(Type::Integer)
                        .minimum(Some(1)),
                )
                .description(Some("Seconds to wait before trying again."))
                .build(),
        );
    }
    response.build().into()
}

/// A collection in a namespace.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub(crate) struct CollectionPath {
    /// The namespace.
    ns: Namespace,
    /// The collection.
    collection: CollectionName,
}

/// A document.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub(crate) struct DocumentPath {
    /// The namespace.
    ns: Namespace,
    /// The collection.
    collection: CollectionName,
    /// The document's id.
    id: DocId,
}

/// One branch of a document.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub(crate) struct BranchPath {
    /// The namespace.
    ns: Namespace,
    /// The document's collection.
    collection: CollectionName,
    /// The document's id.
    id: DocId,
    /// The branch's name.
    name: sync_core::BranchName,
}

/// One version of a document.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub(crate) struct VersionPath {
    /// The namespace.
    ns: Namespace,
    /// The collection.
    collection: CollectionName,
    /// The document's id.
    id: DocId,
    /// The version, from 1.
    version: u64,
}
