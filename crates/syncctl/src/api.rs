//! The server's HTTP API as the commands use it: requests with the token,
//! and failures turned into messages that say what was asked, what the
//! server answered (its error code and message) or that it could not be
//! reached.

use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde::Serialize;
use serde_json::Value;

use crate::Target;

/// How long one request may take before it is given up.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// A client of one server.
#[derive(Debug, Clone)]
pub(crate) struct Api {
    http: reqwest::Client,
    target: Target,
}

/// An answer the server refused, with what it said.
#[derive(Debug)]
pub(crate) struct Refused {
    pub(crate) status: StatusCode,
    pub(crate) code: String,
    pub(crate) message: String,
    pub(crate) retry_after_secs: Option<u64>,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.code,
            self.message
        )
    }
}

impl std::error::Error for Refused {}

impl Api {
    pub(crate) fn new(target: &Target) -> anyhow::Result<Api> {
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(Duration::from_secs(10))
            .build()
            .context("cannot build the HTTP client")?;
        Ok(Api {
            http,
            target: target.clone(),
        })
    }

    /// The server's base URL.
    pub(crate) fn url(&self) -> &str {
        &self.target.url
    }

    pub(crate) fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let builder = self
            .http
            .request(method, format!("{}{path}", self.target.url));
        match &self.target.token {
            Some(token) => builder.bearer_auth(token),
            None => builder,
        }
    }

    /// Sends `request`; a refusal becomes a [`Refused`] error.
    pub(crate) async fn send(
        &self,
        what: &str,
        request: RequestBuilder,
    ) -> anyhow::Result<Response> {
        let response = request.send().await.map_err(|error| {
            anyhow!(
                "{what}: cannot reach the server at {}: {}",
                self.target.url,
                describe(&error)
            )
        })?;
        if response.status().is_success() {
            return Ok(response);
        }
        Err(anyhow::Error::new(refused(response).await).context(what.to_owned()))
    }

    pub(crate) async fn get_json(&self, path: &str) -> anyhow::Result<Value> {
        let what = format!("GET {path}");
        let response = self.send(&what, self.request(Method::GET, path)).await?;
        response
            .json()
            .await
            .with_context(|| format!("{what}: the answer is not JSON"))
    }

    pub(crate) async fn post_json(
        &self,
        path: &str,
        body: &impl Serialize,
    ) -> anyhow::Result<Value> {
        let what = format!("POST {path}");
        let response = self
            .send(&what, self.request(Method::POST, path).json(body))
            .await?;
        response
            .json()
            .await
            .with_context(|| format!("{what}: the answer is not JSON"))
    }
}

/// The refusal in `response`, with the error body's code and message.
pub(crate) async fn refused(response: Response) -> Refused {
    let status = response.status();
    let retry_after_secs = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok());
    let body: Value = response.json().await.unwrap_or(Value::Null);
    let error = &body["error"];
    Refused {
        status,
        code: error["code"].as_str().unwrap_or("unknown").to_owned(),
        message: error["message"]
            .as_str()
            .unwrap_or("the server gave no reason")
            .to_owned(),
        retry_after_secs,
    }
}

/// A transport error with its causes, on one line.
pub(crate) fn describe(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text = format!("{text}: {cause}");
        source = cause.source();
    }
    text
}

/// Percent-encodes one path segment or query value.
pub(crate) fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Fails unless `url` is an http URL (https needs TLS, which this build
/// leaves out).
pub(crate) fn check_url(url: &str) -> anyhow::Result<()> {
    if url.starts_with("http://") {
        Ok(())
    } else if url.starts_with("https://") {
        bail!(
            "{url}: https is not supported by this build; put a TLS proxy's plain side or an http URL"
        )
    } else {
        bail!("{url}: the server URL must start with http://")
    }
}
