//! `GET /openapi.json`: the OpenAPI 3.1 document of the HTTP API, complete
//! (every endpoint of `docs/protocol.md` with its methods, the error
//! answers, the credentials) and the only way routes are added.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::support::TestServer;

/// Every endpoint and method of the HTTP API.
const ENDPOINTS: &[(&str, &str)] = &[
    ("post", "/api/{collection}/bulk-sync"),
    ("post", "/v1/sync"),
    ("get", "/v1/changes"),
    ("get", "/v1/collections"),
    ("get", "/v1/ns/{ns}/{collection}"),
    ("get", "/v1/ns/{ns}/{collection}/{id}"),
    ("get", "/v1/ns/{ns}/{collection}/{id}/history"),
    ("get", "/v1/ns/{ns}/{collection}/{id}/versions/{version}"),
    ("post", "/v1/ns/{ns}/{collection}/{id}/restore/{version}"),
    ("post", "/v1/ns/{ns}/{collection}/{id}/branches"),
    ("get", "/v1/ns/{ns}/{collection}/{id}/branches"),
    ("get", "/v1/ns/{ns}/{collection}/{id}/branches/{name}"),
    ("delete", "/v1/ns/{ns}/{collection}/{id}/branches/{name}"),
    (
        "post",
        "/v1/ns/{ns}/{collection}/{id}/branches/{name}/merge",
    ),
    ("get", "/v1/conflicts"),
    ("get", "/v1/conflicts/{id}"),
    ("post", "/v1/conflicts/{id}/resolve"),
    ("post", "/v1/devices"),
    ("get", "/v1/devices"),
    ("delete", "/v1/devices/{id}"),
    ("get", "/v1/admin/snapshot"),
    ("post", "/v1/admin/snapshot"),
    ("post", "/v1/admin/reload"),
    ("get", "/v1/stats"),
    ("get", "/v1/stats/devices"),
    ("get", "/metrics"),
    ("get", "/health"),
    ("get", "/ready"),
];

#[tokio::test]
async fn the_document_describes_every_endpoint_with_its_errors() {
    let server = TestServer::start(|_| {}).await;
    let reply = server.get_json("/openapi.json").await;
    assert_eq!(reply.status, 200);
    let document = reply.body;
    assert_eq!(document["openapi"], "3.1.0");
    let schemes = &document["components"]["securitySchemes"];
    assert_eq!(schemes["bearer"]["scheme"], "bearer", "{schemes}");
    assert_eq!(schemes["token"]["in"], "query", "{schemes}");

    let paths = document["paths"].as_object().expect("paths");
    let described: BTreeSet<(String, String)> = paths
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .into_iter()
                .flatten()
                .map(move |(method, _)| (method.clone(), path.clone()))
        })
        .collect();
    let expected: BTreeSet<(String, String)> = ENDPOINTS
        .iter()
        .map(|(method, path)| ((*method).to_owned(), (*path).to_owned()))
        .collect();
    assert_eq!(described, expected);

    // Every authenticated endpoint documents the error answers, with the
    // schema of the error body.
    for (method, path) in &expected {
        let operation = &paths[path][method];
        let responses = operation["responses"].as_object().expect("responses");
        if path != "/health" && path != "/ready" {
            for status in ["400", "401", "403", "429", "500", "503", "507"] {
                let response = &responses[status];
                assert_eq!(
                    response["content"]["application/json"]["schema"]["$ref"],
                    "#/components/schemas/ErrorResponse",
                    "{method} {path} {status}"
                );
            }
            assert!(
                responses["429"]["headers"]["Retry-After"].is_object(),
                "{method} {path}"
            );
        }
        assert!(
            responses.keys().any(|status| status.starts_with('2')),
            "{method} {path} has no success answer"
        );
    }
    let schemas = document["components"]["schemas"]
        .as_object()
        .expect("schemas");
    for name in [
        "Document",
        "Change",
        "Operation",
        "OpResult",
        "ConflictRecord",
        "ErrorBody",
    ] {
        assert!(schemas.contains_key(name), "no schema {name}");
    }
    let codes: Vec<&Value> = schemas["ErrorCode"]["enum"]
        .as_array()
        .expect("codes")
        .iter()
        .collect();
    assert!(
        codes.contains(&&Value::from("insufficient_storage")),
        "{codes:?}"
    );
    server.shutdown().await;
}

/// The routes come from the handlers' annotations (`utoipa_axum`), so one
/// served without being described would have to be added by hand: the API
/// router adds none but the document itself.
#[test]
fn routes_are_only_added_with_their_description() {
    let router = include_str!("../../src/api/mod.rs");
    let by_hand: Vec<&str> = router
        .lines()
        .filter(|line| line.trim_start().starts_with(".route("))
        .collect();
    assert_eq!(by_hand, ["        .route("], "{by_hand:?}");
    assert!(router.contains("\"/openapi.json\","));
}
