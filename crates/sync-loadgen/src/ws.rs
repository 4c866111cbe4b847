//! The protocol side shared by the scenarios: connecting, `hello` and
//! `subscribe` as `docs/protocol.md` has them, and the cheap byte-level
//! reading of frames the receive paths use instead of parsing every
//! frame's JSON.

use std::net::IpAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use crate::error::{LoadError, Result};
use crate::raw::RawSocket;

/// The client WebSocket the scenarios use.
pub type Socket = RawSocket;

/// Which protocol the server under test speaks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Protocol {
    /// The sync server's protocol (`docs/protocol.md`, "WebSocket
    /// protocol"): `hello` answered by `welcome`, then `subscribe` answered
    /// by `subscribed`.
    #[default]
    Sync,
    /// The Node.js relay of `bench/peer-relay`, the benchmarks' peer: no
    /// `hello`; `subscribe` is answered by `subscribed`; writes are
    /// relayed, never acknowledged.
    Relay,
}

impl std::str::FromStr for Protocol {
    type Err = String;

    fn from_str(text: &str) -> std::result::Result<Self, String> {
        match text {
            "sync" => Ok(Protocol::Sync),
            "relay" => Ok(Protocol::Relay),
            other => Err(format!("unknown protocol {other:?} (sync | relay)")),
        }
    }
}

/// How long a setup step (handshake, `welcome`, `subscribed`) may take.
pub const SETUP_TIMEOUT: Duration = Duration::from_secs(30);

/// `host:port` of a `ws://` or `http://` URL.
pub fn authority(url: &str) -> Result<&str> {
    let rest = url
        .strip_prefix("ws://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| LoadError::Invalid(format!("{url}: only ws:// and http:// URLs")))?;
    let end = rest.find('/').unwrap_or(rest.len());
    let authority = &rest[..end];
    if authority.is_empty() {
        return Err(LoadError::Invalid(format!("{url}: no host")));
    }
    Ok(authority)
}

/// Opens a WebSocket to `url` (`ws://host:port/ws`) with a receive buffer
/// of `read_buffer` bytes (small for many idle sockets, large for busy
/// ones).
pub async fn connect(url: &str, read_buffer: usize) -> Result<Socket> {
    connect_from(url, read_buffer, None).await
}

/// [`connect`] from the local address `source` (the system's choice when
/// `None`).
pub async fn connect_from(url: &str, read_buffer: usize, source: Option<IpAddr>) -> Result<Socket> {
    tokio::time::timeout(SETUP_TIMEOUT, RawSocket::connect(url, read_buffer, source))
        .await
        .map_err(|_| LoadError::Timeout(format!("WebSocket handshake with {url}")))?
}

/// Sends one text frame.
pub async fn send(socket: &mut Socket, text: String) -> Result<()> {
    socket.send_text(text.as_bytes()).await
}

/// The next text frame; an error when the socket closes or nothing
/// arrives within `wait`.
pub async fn next_text(socket: &mut Socket, wait: Duration) -> Result<Vec<u8>> {
    tokio::time::timeout(wait, socket.next_text())
        .await
        .map_err(|_| LoadError::Timeout("no frame from the server".into()))?
}

/// Reads frames until one of type `wanted` (returned, parsed); frames of
/// other types are skipped, an `error` frame fails.
pub async fn expect(socket: &mut Socket, wanted: &str) -> Result<Value> {
    let deadline = tokio::time::Instant::now() + SETUP_TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let text = next_text(socket, left).await?;
        match message_type(&text) {
            Some(kind) if kind == wanted.as_bytes() => {
                return serde_json::from_slice(&text).map_err(|error| {
                    LoadError::Protocol(format!("{error}: {}", String::from_utf8_lossy(&text)))
                });
            }
            Some(b"error") => {
                return Err(LoadError::Protocol(format!(
                    "waiting for {wanted}, got {}",
                    String::from_utf8_lossy(&text)
                )));
            }
            _ => {}
        }
    }
}

/// Sends `hello` (for `device`, when given: the server then registers the
/// device) and returns the `welcome`'s cursor (the head of the log).
pub async fn hello(socket: &mut Socket, device: Option<&str>) -> Result<String> {
    let mut message = json!({"type": "hello", "client": {"name": "sync-loadgen"}});
    if let Some(device) = device {
        message["deviceId"] = json!(device);
    }
    send(socket, message.to_string()).await?;
    let welcome = expect(socket, "welcome").await?;
    welcome["cursor"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| LoadError::Protocol(format!("welcome without cursor: {welcome}")))
}

/// Sends `subscribe` for `collection` (from `cursor` when given) and waits
/// for `subscribed`. The catch-up that follows is the caller's to read.
pub async fn subscribe(socket: &mut Socket, collection: &str, cursor: Option<&str>) -> Result<()> {
    let mut message = json!({"type": "subscribe", "collection": collection});
    if let Some(cursor) = cursor {
        message["cursor"] = json!(cursor);
    }
    send(socket, message.to_string()).await?;
    expect(socket, "subscribed").await.map(drop)
}

/// Connects, says `hello` when the protocol has it (as `device`, when
/// given) and subscribes to `collection`.
pub async fn subscriber(
    url: &str,
    protocol: Protocol,
    device: Option<&str>,
    collection: &str,
    read_buffer: usize,
) -> Result<Socket> {
    let mut socket = connect(url, read_buffer).await?;
    if protocol == Protocol::Sync {
        hello(&mut socket, device).await?;
    }
    subscribe(&mut socket, collection, None).await?;
    Ok(socket)
}

/// The `type` of a server frame, read from its first bytes: the server
/// writes compact JSON with `type` first (`{"type":"insert",...`).
pub fn message_type(frame: &[u8]) -> Option<&[u8]> {
    let rest = frame.strip_prefix(b"{\"type\":\"")?;
    let end = rest.iter().position(|&byte| byte == b'"')?;
    Some(&rest[..end])
}

/// The unsigned integer after the first occurrence of `key` (the key with
/// its quotes and colon, e.g. `"n":`) in `frame`, found by a byte search.
pub fn find_u64(frame: &[u8], key: &[u8]) -> Option<u64> {
    let first = *key.first()?;
    let mut from = 0;
    while let Some(offset) = frame[from..].iter().position(|&byte| byte == first) {
        let at = from + offset;
        if frame[at..].starts_with(key) {
            let digits = &frame[at + key.len()..];
            let len = digits
                .iter()
                .take_while(|byte| byte.is_ascii_digit())
                .count();
            if len == 0 {
                return None;
            }
            return digits[..len].iter().try_fold(0u64, |value, &digit| {
                value.checked_mul(10)?.checked_add(u64::from(digit - b'0'))
            });
        }
        from = at + 1;
    }
    None
}

/// How often `needle` occurs in `haystack` (non-overlapping).
pub fn count_occurrences(haystack: &[u8], needle: &[u8]) -> usize {
    let Some(&first) = needle.first() else {
        return 0;
    };
    let mut count = 0;
    let mut from = 0;
    while let Some(offset) = haystack[from..].iter().position(|&byte| byte == first) {
        let at = from + offset;
        if haystack[at..].starts_with(needle) {
            count += 1;
            from = at + needle.len();
        } else {
            from = at + 1;
        }
    }
    count
}

/// A name unique to this run, for collections and ids (`[a-z0-9]`).
pub fn run_tag() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_nanos());
    format!("{:x}{:x}", nanos % (1 << 48), std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_type_and_the_sequence_number_from_the_bytes() {
        let frame = br#"{"type":"insert","collection":"c","namespace":"default","recordId":"f-7","data":{"n":12345,"text":"x"},"delta":{"n":12345}}"#;
        assert_eq!(message_type(frame), Some(&b"insert"[..]));
        assert_eq!(find_u64(frame, br#""n":"#), Some(12345));
        assert_eq!(find_u64(br#"{"type":"ack"}"#, br#""n":"#), None);
        assert_eq!(find_u64(br#"{"n":"text"}"#, br#""n":"#), None);
        assert_eq!(message_type(b"[1]"), None);
    }

    #[test]
    fn counts_statuses_and_parses_urls() {
        let body = br#"[{"status":"success"},{"status":"error"},{"status":"success"}]"#;
        assert_eq!(count_occurrences(body, br#""status":"success""#), 2);
        assert_eq!(
            authority("ws://127.0.0.1:7700/ws").unwrap(),
            "127.0.0.1:7700"
        );
        assert_eq!(authority("http://localhost:1").unwrap(), "localhost:1");
        assert!(authority("https://x").is_err());
    }
}
