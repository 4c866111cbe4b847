//! The console (`GET /`) and the todo demo (`GET /demo`): two pages built
//! from `web/` (TypeScript on the TypeScript client and the HTTP API), whose
//! build output is committed under `assets/` and embedded in the binary, so
//! `sync-server` serves them with no Node.js at run time. `cargo xtask ci`
//! rebuilds them and fails when the committed files differ from their
//! sources' build.
//!
//! Scripts and styles live under `/assets/{version}/`, where the version is
//! a hash of their contents written by the build (`assets/VERSION`): they
//! are cached for good, and a page served by a newer binary names new URLs.
//! The pages themselves are revalidated on every load. Every page carries a
//! strict Content-Security-Policy: scripts, styles and images from this
//! origin only, no inline script, connections to this origin's HTTP and
//! WebSocket endpoints only, no framing.

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::error::ApiError;

/// The build's version of the assets (a hash of their contents).
const VERSION_FILE: &str = include_str!("../assets/VERSION");

/// The console's page.
const CONSOLE_HTML: &[u8] = include_bytes!("../assets/console.html");
/// The demo's page.
const DEMO_HTML: &[u8] = include_bytes!("../assets/demo.html");
/// The demo's service worker: keeps the page and its assets for offline
/// reloads. Served from the root so its scope can be `/demo`.
const DEMO_WORKER: &[u8] = include_bytes!("../assets/demo-sw.js");

const JAVASCRIPT: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const SVG: &str = "image/svg+xml";

/// The versioned files: name, content type, bytes.
const ASSETS: &[(&str, &str, &[u8])] = &[
    (
        "console.js",
        JAVASCRIPT,
        include_bytes!("../assets/console.js"),
    ),
    ("demo.js", JAVASCRIPT, include_bytes!("../assets/demo.js")),
    ("web.css", CSS, include_bytes!("../assets/web.css")),
    ("icon.svg", SVG, include_bytes!("../assets/icon.svg")),
];

/// Cached for a year and never revalidated: the URL changes with the content.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// Revalidated on every use.
const REVALIDATE: &str = "no-cache";

/// The console's and the demo's routes.
pub(crate) fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(console_page))
        .route("/demo", get(demo_page))
        .route("/demo-sw.js", get(demo_worker))
        .route("/assets/{version}/{file}", get(asset))
        .layer(tower_http::compression::CompressionLayer::new().gzip(true))
}

fn version() -> &'static str {
    VERSION_FILE.trim()
}

async fn console_page(headers: HeaderMap) -> Response {
    page(&headers, CONSOLE_HTML)
}

async fn demo_page(headers: HeaderMap) -> Response {
    page(&headers, DEMO_HTML)
}

/// A page: revalidated on every load (its `ETag` is the assets' version,
/// which the build puts in the page), with the security headers.
fn page(request: &HeaderMap, body: &'static [u8]) -> Response {
    let etag = format!("\"{}\"", version());
    let csp = content_security_policy(request.get(header::HOST));
    let fresh = request
        .get(header::IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|tags| tags.split(',').any(|tag| tag.trim() == etag));
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        body.into_response()
    };
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(REVALIDATE));
    if let Ok(etag) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, etag);
    }
    if let Ok(csp) = HeaderValue::from_str(&csp) {
        headers.insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    security_headers(headers);
    response
}

fn security_headers(headers: &mut HeaderMap) {
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
}

/// The policy of a page: everything from this origin only, no inline
/// script or style, and connections to this origin's HTTP and WebSocket
/// endpoints (named by `Host` for `ws:` and `wss:`, which `'self'` does not
/// cover in every browser; a `Host` that is not a plain host and port is
/// left out).
fn content_security_policy(host: Option<&HeaderValue>) -> String {
    let host = host
        .and_then(|value| value.to_str().ok())
        .filter(|host| is_plain_host(host));
    let sockets = host
        .map(|host| format!(" ws://{host} wss://{host}"))
        .unwrap_or_default();
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
         connect-src 'self'{sockets}; worker-src 'self'; manifest-src 'self'; \
         base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )
}

/// A host name, IPv4 or bracketed IPv6 address, with an optional port.
fn is_plain_host(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 255
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
}

async fn demo_worker() -> Response {
    let mut response = DEMO_WORKER.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(JAVASCRIPT));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(REVALIDATE));
    security_headers(headers);
    response
}

async fn asset(Path((version, file)): Path<(String, String)>) -> Response {
    let found = ASSETS.iter().find(|(name, _, _)| *name == file);
    let Some((_, content_type, bytes)) = found.filter(|_| version == self::version()) else {
        return ApiError::NotFound(format!("no asset {version}/{file}")).into_response();
    };
    let mut response = bytes.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(IMMUTABLE));
    security_headers(headers);
    response
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    use super::*;

    async fn get(path: &str, headers: &[(&str, &str)]) -> Response {
        let mut request = Request::get(path);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        router::<()>()
            .oneshot(request.body(Body::empty()).unwrap())
            .await
            .unwrap()
    }

    fn header(response: &Response, name: header::HeaderName) -> &str {
        response.headers()[name].to_str().unwrap()
    }

    #[tokio::test]
    async fn pages_are_revalidated_and_carry_the_policy() {
        for path in ["/", "/demo"] {
            let response = get(path, &[("host", "127.0.0.1:7700")]).await;
            assert_eq!(response.status(), StatusCode::OK, "{path}");
            assert_eq!(
                header(&response, header::CONTENT_TYPE),
                "text/html; charset=utf-8"
            );
            assert_eq!(header(&response, header::CACHE_CONTROL), "no-cache");
            let csp = header(&response, header::CONTENT_SECURITY_POLICY);
            assert!(csp.contains("script-src 'self';"), "{csp}");
            assert!(!csp.contains("unsafe-inline"), "{csp}");
            assert!(
                csp.contains("connect-src 'self' ws://127.0.0.1:7700 wss://127.0.0.1:7700;"),
                "{csp}"
            );
            let etag = header(&response, header::ETAG).to_owned();
            let again = get(path, &[("if-none-match", &etag)]).await;
            assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
        }
    }

    #[tokio::test]
    async fn pages_name_the_assets_of_this_version() {
        let page = String::from_utf8(CONSOLE_HTML.to_vec()).unwrap();
        assert!(page.contains(&format!("/assets/{}/console.js", version())));
        assert!(!page.contains("<script>"), "no inline script");
        for (name, content_type, _) in ASSETS {
            let response = get(&format!("/assets/{}/{name}", version()), &[]).await;
            assert_eq!(response.status(), StatusCode::OK, "{name}");
            assert_eq!(header(&response, header::CONTENT_TYPE), *content_type);
            assert_eq!(header(&response, header::CACHE_CONTROL), IMMUTABLE);
            assert_eq!(header(&response, header::X_CONTENT_TYPE_OPTIONS), "nosniff");
        }
        let stale = get("/assets/0000/console.js", &[]).await;
        assert_eq!(stale.status(), StatusCode::NOT_FOUND);
        let unknown = get(&format!("/assets/{}/passwd", version()), &[]).await;
        assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    }

    #[test]
    fn a_strange_host_is_left_out_of_the_policy() {
        let policy =
            |host: &str| content_security_policy(Some(&HeaderValue::from_str(host).unwrap()));
        assert!(policy("[::1]:7700").contains("ws://[::1]:7700"));
        assert!(!policy("x; script-src *").contains("script-src *"));
        assert!(content_security_policy(None).contains("connect-src 'self';"));
    }
}
