//! The HTTP side of the protocol the client uses: device registration,
//! the change feed (long-poll fallback and catch-up), one document's read,
//! bulk sync of the queue in chunks, and conflict resolution.

use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};
use sync_core::{
    Change, CollectionName, ConflictId, ConflictRecord, Cursor, DeviceId, Document, JsonObject,
    Namespace, OpError, OpResult, Operation,
};

use crate::error::Error;

/// The change feed's answer.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Feed {
    pub(crate) changes: Vec<Change>,
    pub(crate) cursor: Cursor,
    pub(crate) has_more: bool,
}

/// The parts of a bulk-sync answer the client reads.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SyncAnswer {
    #[serde(default)]
    pub(crate) results: Vec<OpResult>,
    #[serde(default)]
    pub(crate) conflicts: Vec<ConflictRecord>,
    #[serde(default)]
    pub(crate) errors: Vec<OpError>,
}

#[derive(Debug, Deserialize)]
struct Resolved {
    document: Document,
}

#[derive(Debug, Deserialize)]
struct ErrorEnvelope {
    error: ErrorFields,
}

#[derive(Debug, Deserialize)]
struct ErrorFields {
    code: String,
    message: String,
}

/// An HTTP connection to one server.
#[derive(Debug, Clone)]
pub(crate) struct Http {
    client: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl Http {
    /// A connection trusting the Mozilla roots and `root_certificates`.
    pub(crate) fn new(
        base: &str,
        token: Option<String>,
        root_certificates: &[sync_realtime::RootCertificate],
    ) -> Result<Http, Error> {
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .connect_timeout(Duration::from_secs(5));
        for root in root_certificates {
            let certificate = reqwest::Certificate::from_der(root.der())
                .map_err(|error| Error::Config(format!("root certificate: {error}")))?;
            builder = builder.add_root_certificate(certificate);
        }
        let client = builder.build().map_err(Error::network)?;
        Ok(Http {
            client,
            base: base.trim_end_matches('/').to_owned(),
            token,
        })
    }

    fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        timeout: Duration,
    ) -> reqwest::RequestBuilder {
        let builder = self
            .client
            .request(method, format!("{}{path}", self.base))
            .timeout(timeout);
        match &self.token {
            Some(token) => builder.bearer_auth(token),
            None => builder,
        }
    }

    async fn answer<T: serde::de::DeserializeOwned>(
        response: reqwest::Response,
    ) -> Result<T, Error> {
        let status = response.status();
        if status.is_success() {
            return response.json().await.map_err(Error::network);
        }
        let text = response.text().await.unwrap_or_default();
        let (code, message) = match serde_json::from_str::<ErrorEnvelope>(&text) {
            Ok(envelope) => (envelope.error.code, envelope.error.message),
            Err(_) => ("unknown".to_owned(), text),
        };
        Err(Error::Server {
            status: status.as_u16(),
            code,
            message,
        })
    }

    /// `GET /health`: whether the server answers at all.
    pub(crate) async fn health(&self) -> Result<(), Error> {
        let response = self
            .request(reqwest::Method::GET, "/health", Duration::from_secs(5))
            .send()
            .await
            .map_err(Error::network)?;
        Self::answer::<Value>(response).await.map(drop)
    }

    /// `POST /v1/devices`: registers this device with what it syncs.
    pub(crate) async fn register_device(
        &self,
        device: &DeviceId,
        name: &str,
        platform: &str,
        collections: &[CollectionName],
        bandwidth_limit: Option<u64>,
    ) -> Result<(), Error> {
        let mut capabilities = json!({"collections": collections, "supportsRealTime": true});
        if let Some(limit) = bandwidth_limit {
            capabilities["bandwidthLimit"] = json!(limit);
        }
        let body = json!({
            "deviceId": device,
            "name": name,
            "platform": platform,
            "appVersion": env!("CARGO_PKG_VERSION"),
            "capabilities": capabilities,
        });
        let response = self
            .request(
                reqwest::Method::POST,
                "/v1/devices",
                Duration::from_secs(10),
            )
            .json(&body)
            .send()
            .await
            .map_err(Error::network)?;
        Self::answer::<Value>(response).await.map(drop)
    }

    /// `GET /v1/changes`: the changes after `cursor` (from the start when
    /// `None`) in `collections` of `namespace`, long-polling `wait_secs`.
    pub(crate) async fn changes(
        &self,
        cursor: Option<Cursor>,
        namespace: &Namespace,
        collections: &[CollectionName],
        wait_secs: u64,
        device: &DeviceId,
    ) -> Result<Feed, Error> {
        let names: Vec<&str> = collections.iter().map(CollectionName::as_str).collect();
        let mut query = vec![
            ("namespace", namespace.to_string()),
            ("collection", names.join(",")),
            ("wait", wait_secs.to_string()),
            ("deviceId", device.to_string()),
        ];
        if let Some(cursor) = cursor {
            query.push(("cursor", cursor.to_string()));
        }
        let timeout = Duration::from_secs(wait_secs + 15);
        let response = self
            .request(reqwest::Method::GET, "/v1/changes", timeout)
            .query(&query)
            .send()
            .await
            .map_err(Error::network)?;
        Self::answer(response).await
    }

    /// `GET /v1/ns/{ns}/{collection}/{id}`; `None` when the server has no
    /// such document.
    pub(crate) async fn document(
        &self,
        namespace: &Namespace,
        collection: &CollectionName,
        id: &str,
    ) -> Result<Option<Document>, Error> {
        let path = format!("/v1/ns/{namespace}/{collection}/{}", encode(id));
        let response = self
            .request(reqwest::Method::GET, &path, Duration::from_secs(10))
            .send()
            .await
            .map_err(Error::network)?;
        if response.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        Self::answer(response).await.map(Some)
    }

    /// `POST /v1/sync` with one chunk of operations, `X-Sync-Chunk: n/total`.
    pub(crate) async fn sync(
        &self,
        operations: &[Operation],
        device: &DeviceId,
        chunk: (usize, usize),
    ) -> Result<SyncAnswer, Error> {
        let body = json!({"operations": operations, "deviceId": device, "pull": false});
        let response = self
            .request(reqwest::Method::POST, "/v1/sync", Duration::from_secs(60))
            .header("X-Sync-Chunk", format!("{}/{}", chunk.0, chunk.1))
            .json(&body)
            .send()
            .await
            .map_err(Error::network)?;
        Self::answer(response).await
    }

    /// `POST /v1/conflicts/{id}/resolve` with the application's document;
    /// returns the document the server stored.
    pub(crate) async fn resolve_conflict(
        &self,
        id: &ConflictId,
        resolved: &JsonObject,
    ) -> Result<Document, Error> {
        let path = format!("/v1/conflicts/{}/resolve", encode(id.as_str()));
        let body = json!({"strategy": "manual", "resolvedData": resolved});
        let response = self
            .request(reqwest::Method::POST, &path, Duration::from_secs(10))
            .json(&body)
            .send()
            .await
            .map_err(Error::network)?;
        Self::answer::<Resolved>(response).await.map(|r| r.document)
    }
}

/// Percent-encodes a path segment (ids may hold any character).
fn encode(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn path_segments_are_encoded() {
        assert_eq!(super::encode("a b/c"), "a%20b%2Fc");
        assert_eq!(super::encode("0192-ab_c.~"), "0192-ab_c.~");
    }
}
