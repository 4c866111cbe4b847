//! The HTTP API (`docs/protocol.md`, "HTTP API"): routes, the extractors
//! that authenticate callers and read bodies within the limits, and the
//! layers every request passes (request ids, tracing, gzip both ways, CORS,
//! panics as 500).

mod admin;
mod branches;
mod changes;
mod collections;
mod conflicts;
mod devices;
mod documents;
mod ops;
mod sync;

pub use sync::SyncRequest;

use axum::Router;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue, Method};
use axum::routing::get;
use serde::de::DeserializeOwned;
use sync_core::{CollectionName, DocId, Namespace};
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use utoipa::OpenApi as _;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Principal;
use crate::error::ApiError;
use crate::state::AppState;

pub(crate) use sync::PullScope;

/// The request id header, set on every request and echoed on its response.
pub(crate) const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Every HTTP route, with its layers, over `state`. The WebSocket routes
/// are merged in by the caller.
pub(crate) fn router(state: AppState, cors_origins: &[String]) -> Router<AppState> {
    let catalog = axum::Extension(collections::SharedCatalog::default());
    let (collections_schemas, collections_paths, collections_route) = routes!(collections::list);
    let (routes, api) = OpenApiRouter::with_openapi(crate::openapi::ApiDoc::openapi())
        .routes(routes!(sync::bulk_sync))
        .routes(routes!(sync::sync))
        .routes(routes!(changes::feed))
        .routes((
            collections_schemas,
            collections_paths,
            collections_route.layer(catalog),
        ))
        .routes(routes!(documents::list))
        .routes(routes!(documents::one))
        .routes(routes!(documents::history))
        .routes(routes!(documents::version))
        .routes(routes!(documents::restore))
        .routes(routes!(branches::fork, branches::list))
        .routes(routes!(branches::one, branches::delete))
        .routes(routes!(branches::merge))
        .routes(routes!(conflicts::list))
        .routes(routes!(conflicts::one))
        .routes(routes!(conflicts::resolve))
        .routes(routes!(devices::register, devices::list))
        .routes(routes!(devices::unregister))
        .routes(routes!(admin::snapshot, admin::load))
        .routes(routes!(admin::reload))
        .routes(routes!(ops::stats))
        .routes(routes!(ops::device_stats))
        .routes(routes!(ops::metrics))
        .routes(routes!(ops::health))
        .routes(routes!(ops::ready))
        .split_for_parts();
    let document = bytes::Bytes::from(
        api.to_pretty_json()
            .expect("the OpenAPI document serialises"),
    );
    let routes = routes
        .route(
            "/openapi.json",
            get(move || async move {
                (
                    [(axum::http::header::CONTENT_TYPE, "application/json")],
                    document,
                )
            }),
        )
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(tower_http::compression::CompressionLayer::new().gzip(true))
        .layer(tower_http::decompression::RequestDecompressionLayer::new().gzip(true));
    let _ = state;
    let cors = cors_layer(cors_origins);
    match cors {
        Some(cors) => routes.layer(cors),
        None => routes,
    }
}

/// The layers outside every route, WebSocket included: request ids,
/// tracing and panics turned into 500s.
pub(crate) fn outer_layers(router: Router) -> Router {
    router
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(|_| {
            axum::response::IntoResponse::into_response(ApiError::Internal(
                "the server failed on this request".into(),
            ))
        }))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(
            tower_http::trace::TraceLayer::new_for_http().make_span_with(
                |request: &axum::http::Request<_>| {
                    let id = request
                        .headers()
                        .get(&REQUEST_ID)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("");
                    // The query is left out: it may carry a token.
                    tracing::info_span!(
                        "request",
                        method = %request.method(),
                        path = request.uri().path(),
                        request_id = id
                    )
                },
            ),
        )
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
}

fn cors_layer(origins: &[String]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(
            origins
                .iter()
                .filter_map(|origin| HeaderValue::from_str(origin).ok()),
        )
    };
    Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([Method::GET, Method::POST, Method::DELETE, Method::OPTIONS])
            .allow_headers([
                axum::http::header::AUTHORIZATION,
                axum::http::header::CONTENT_TYPE,
                axum::http::header::CONTENT_ENCODING,
                HeaderName::from_static("x-sync-chunk"),
            ])
            .expose_headers([REQUEST_ID, HeaderName::from_static("x-sync-chunk")]),
    )
}

async fn not_found() -> ApiError {
    ApiError::NotFound("no such route".into())
}

/// A route asked with a method it does not have: 405 (with `Allow`), and
/// the error body every other failure has.
async fn method_not_allowed(method: Method) -> axum::response::Response {
    let mut response = axum::response::IntoResponse::into_response(ApiError::Invalid(format!(
        "method {method} is not allowed on this route"
    )));
    *response.status_mut() = axum::http::StatusCode::METHOD_NOT_ALLOWED;
    response
}

/// The authenticated caller of a request.
pub(crate) struct Caller(pub Principal);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let query = QueryPairs::of(parts.uri.query());
        state
            .auth()
            .authenticate_request(&parts.headers, query.first("token"))
            .map(Caller)
    }
}

/// The query string as its pairs, in order (a key may repeat:
/// `?where=a:1&where=b:2`).
#[derive(Debug, Default)]
pub(crate) struct QueryPairs(Vec<(String, String)>);

impl QueryPairs {
    /// The pairs of `query`; a malformed query reads as empty.
    pub(crate) fn of(query: Option<&str>) -> QueryPairs {
        QueryPairs(
            query
                .and_then(|q| serde_urlencoded::from_str(q).ok())
                .unwrap_or_default(),
        )
    }

    /// The first value of `key`.
    pub(crate) fn first(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `key`.
    pub(crate) fn all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The first value of `key` parsed as a number.
    pub(crate) fn number(&self, key: &str) -> Result<Option<u64>, ApiError> {
        self.first(key)
            .map(|text| {
                text.parse::<u64>()
                    .map_err(|_| ApiError::Invalid(format!("{key} must be a whole number")))
            })
            .transpose()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for QueryPairs {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        Ok(QueryPairs::of(parts.uri.query()))
    }
}

/// A JSON body read within the size and depth limits (after gzip
/// decompression, so a small compressed body cannot inflate past them).
pub(crate) struct JsonBody<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, ApiError> {
        let limits = state.limits();
        let bytes = read_body(request, limits.request_bytes_max).await?;
        limits.check_depth(&bytes)?;
        serde_json::from_slice(&bytes)
            .map(JsonBody)
            .map_err(|error| ApiError::Invalid(format!("invalid JSON body: {error}")))
    }
}

/// The body of `request`, at most `limit` bytes.
pub(crate) async fn read_body(request: Request, limit: usize) -> Result<bytes::Bytes, ApiError> {
    axum::body::to_bytes(request.into_body(), limit)
        .await
        .map_err(|error| {
            let too_large =
                std::iter::successors(Some(&error as &(dyn std::error::Error + 'static)), |e| {
                    e.source()
                })
                .any(|e| e.is::<http_body_util::LengthLimitError>());
            if too_large {
                ApiError::TooLarge {
                    message: format!("request body over {limit} bytes"),
                    limit: limit as u64,
                }
            } else {
                ApiError::Invalid(format!("cannot read the request body: {error}"))
            }
        })
}

/// A namespace and collection from a path, checked.
pub(crate) fn collection_path(
    namespace: &str,
    collection: &str,
) -> Result<(Namespace, CollectionName), ApiError> {
    Ok((Namespace::new(namespace)?, CollectionName::new(collection)?))
}

/// A document id from a path, checked.
pub(crate) fn doc_id(id: &str) -> Result<DocId, ApiError> {
    Ok(DocId::new(id)?)
}
