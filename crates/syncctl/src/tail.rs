//! `syncctl tail`: live changes as they are committed.
//!
//! With `--collection`, over WebSocket: `hello`, then one subscription
//! (namespace, `where` equalities) from the cursor, printing each change.
//! After a dropped connection (a server restart, the network) it connects
//! again with backoff and subscribes from the cursor of the last change it
//! printed, so nothing is lost and, as a change at or below the last seq
//! printed is dropped, nothing is printed twice. Without `--collection` it
//! follows every collection (of `--namespace`, if given) through the
//! long-polled change feed, `/v1/changes`, which is in log order across
//! collections, and resumes the same way.
//!
//! `--from now` (the default) starts at the head, `--from start` at the
//! oldest retained change, or a cursor printed earlier resumes after it.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use sync_core::{CollectionName, Cursor, ErrorCode, Filter, Namespace, Seq};
use sync_realtime::{Backoff, ClientMessage, ServerChange, ServerMessage};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

use crate::Target;
use crate::api::{Api, Refused, encode};
use crate::output;

/// How long a connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Seconds a long-poll of the change feed waits for a change.
const FEED_WAIT_SECS: u64 = 25;
/// Changes asked for per page of the change feed.
const FEED_PAGE: usize = 500;

/// How `tail` prints changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum TailFormat {
    /// One line for people per change.
    Pretty,
    /// One JSON object per change.
    #[value(alias = "json")]
    Ndjson,
}

#[derive(Debug, clap::Args)]
pub(crate) struct TailArgs {
    /// Only this namespace (WebSocket: the subscription's; default
    /// `default`).
    #[arg(long)]
    namespace: Option<String>,
    /// The collection to follow (all when left out).
    #[arg(long)]
    collection: Option<String>,
    /// Only documents whose top-level field equals the value
    /// (`done=false`, `roomId=42`; the value is read as JSON when it is
    /// a JSON scalar). Repeatable.
    #[arg(long = "where", value_name = "FIELD=VALUE")]
    filters: Vec<String>,
    /// Where to start: `now`, `start` or a cursor.
    #[arg(long, default_value = "now")]
    from: String,
    /// Exit after this many changes.
    #[arg(long)]
    limit: Option<u64>,
    /// How to print.
    #[arg(long, value_enum, default_value_t = TailFormat::Pretty)]
    format: TailFormat,
}

/// Where the tail stands: the cursor to resume after and what was printed.
#[derive(Debug)]
struct Position {
    cursor: Option<Cursor>,
    from_start: bool,
    last_seq: Seq,
    printed: u64,
    limit: Option<u64>,
    format: TailFormat,
}

/// One change, printed the same way whatever door it came through.
#[derive(Debug)]
struct Printed<'a> {
    op: &'a str,
    namespace: &'a str,
    collection: &'a str,
    id: &'a str,
    seq: Seq,
    version: u64,
    cursor: Cursor,
    timestamp: String,
    delta: &'a Value,
    data: Option<&'a Value>,
    op_id: Option<&'a str>,
    matches: Option<bool>,
}

impl Position {
    fn done(&self) -> bool {
        self.limit.is_some_and(|limit| self.printed >= limit)
    }

    /// Prints `change` unless it was printed already; moves the cursor.
    fn print(&mut self, change: &Printed<'_>) -> anyhow::Result<()> {
        if change.seq <= self.last_seq {
            return Ok(());
        }
        let text = match self.format {
            TailFormat::Ndjson => {
                let mut line = json!({
                    "seq": change.seq,
                    "op": change.op,
                    "namespace": change.namespace,
                    "collection": change.collection,
                    "id": change.id,
                    "version": change.version,
                    "delta": change.delta,
                    "data": change.data,
                    "cursor": change.cursor.to_string(),
                    "timestamp": change.timestamp,
                    "opId": change.op_id,
                });
                if let Some(matches) = change.matches {
                    line["matches"] = Value::Bool(matches);
                }
                line.to_string()
            }
            TailFormat::Pretty => {
                let gone = if change.matches == Some(false) {
                    " (no longer matches)"
                } else {
                    ""
                };
                format!(
                    "#{:<6} {:<6} {}/{}/{} v{} {}{gone}",
                    change.seq.get(),
                    change.op,
                    change.namespace,
                    change.collection,
                    change.id,
                    change.version,
                    change.delta
                )
            }
        };
        output::line(&text).context("cannot write to standard output")?;
        self.last_seq = change.seq;
        self.cursor = Some(change.cursor);
        self.printed += 1;
        Ok(())
    }
}

/// A failure that reconnecting cannot mend.
#[derive(Debug)]
struct Fatal(String);

impl std::fmt::Display for Fatal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Fatal {}

fn parse_filter(filters: &[String]) -> anyhow::Result<Filter> {
    let params: Vec<String> = filters
        .iter()
        .map(|f| {
            f.split_once('=')
                .map(|(field, value)| format!("{field}:{value}"))
                .ok_or_else(|| anyhow!("--where {f:?}: expected FIELD=VALUE"))
        })
        .collect::<anyhow::Result<_>>()?;
    Filter::parse_query_params(params.iter().map(String::as_str))
        .map_err(|error| anyhow!("--where: {error}"))
}

pub(crate) async fn run(target: &Target, args: TailArgs) -> anyhow::Result<ExitCode> {
    crate::api::check_url(&target.url)?;
    let filter = parse_filter(&args.filters)?;
    let mut position = Position {
        cursor: None,
        from_start: false,
        last_seq: Seq::ZERO,
        printed: 0,
        limit: args.limit,
        format: args.format,
    };
    match args.from.as_str() {
        "now" => {}
        "start" => position.from_start = true,
        cursor => {
            let cursor: Cursor = cursor
                .parse()
                .map_err(|error| anyhow!("--from {cursor:?}: {error}"))?;
            position.last_seq = cursor.seq();
            position.cursor = Some(cursor);
        }
    }
    if position.done() {
        return Ok(ExitCode::SUCCESS);
    }
    let namespace = args
        .namespace
        .as_deref()
        .map(Namespace::new)
        .transpose()
        .map_err(|error| anyhow!("--namespace: {error}"))?;
    let collection = args
        .collection
        .as_deref()
        .map(CollectionName::new)
        .transpose()
        .map_err(|error| anyhow!("--collection: {error}"))?;
    let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5), None);
    loop {
        let ended = match &collection {
            Some(collection) => {
                websocket(
                    target,
                    &mut position,
                    collection,
                    namespace.as_ref(),
                    &filter,
                    &mut backoff,
                )
                .await
            }
            None => {
                feed(
                    target,
                    &mut position,
                    namespace.as_ref(),
                    &filter,
                    &mut backoff,
                )
                .await
            }
        };
        match ended {
            Ok(()) => return Ok(ExitCode::SUCCESS),
            Err(error) if error.downcast_ref::<Fatal>().is_some() => return Err(error),
            Err(error) => {
                let delay = backoff.next_delay().unwrap_or(Duration::from_secs(5));
                output::note(&format!("{error:#}; reconnecting in {delay:?}"));
                tokio::time::sleep(delay).await;
            }
        }
    }
}

/// One WebSocket session; `Ok` when the limit is reached.
async fn websocket(
    target: &Target,
    position: &mut Position,
    collection: &CollectionName,
    namespace: Option<&Namespace>,
    filter: &Filter,
    backoff: &mut Backoff,
) -> anyhow::Result<()> {
    let url = format!("ws{}/ws", target.url.trim_start_matches("http"));
    let mut request = url
        .as_str()
        .into_client_request()
        .map_err(|error| Fatal(format!("bad address {url:?}: {error}")))?;
    if let Some(token) = &target.token {
        let value = HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|error| Fatal(format!("bad token: {error}")))?;
        request.headers_mut().insert("authorization", value);
    }
    let (mut socket, _) = match tokio::time::timeout(
        CONNECT_TIMEOUT,
        tokio_tungstenite::connect_async(request),
    )
    .await
    {
        Err(_) => bail!("connecting to {url} timed out"),
        Ok(Err(tokio_tungstenite::tungstenite::Error::Http(response)))
            if matches!(response.status().as_u16(), 401 | 403) =>
        {
            return Err(Fatal(format!("{url}: upgrade refused with {}", response.status())).into());
        }
        Ok(Err(error)) => bail!("cannot connect to {url}: {error}"),
        Ok(Ok(connected)) => connected,
    };
    let send =
        |message: &ClientMessage| Message::text(serde_json::to_string(message).unwrap_or_default());
    socket
        .send(send(&ClientMessage::Hello {
            device_id: None,
            cursor: None,
            client: Some(json!({"name": "syncctl tail"})),
        }))
        .await
        .context("cannot send hello")?;
    let mut subscribed = false;
    while let Some(frame) = socket.next().await {
        let frame = frame.context("the connection failed")?;
        let text = match frame {
            Message::Text(text) => text,
            Message::Close(close) => bail!(
                "the server closed the connection{}",
                close
                    .map(|c| format!(" ({} {})", c.code, c.reason))
                    .unwrap_or_default()
            ),
            _ => continue,
        };
        let message: ServerMessage = match serde_json::from_str(&text) {
            Ok(message) => message,
            Err(error) => {
                output::note(&format!("unreadable message from the server: {error}"));
                continue;
            }
        };
        match message {
            ServerMessage::Welcome { cursor: head, .. } if !subscribed => {
                backoff.reset();
                let from = match position.cursor {
                    Some(cursor) => cursor,
                    None if position.from_start => Cursor::new(head.log(), Seq::ZERO),
                    None => head,
                };
                position.cursor = Some(from);
                socket
                    .send(send(&ClientMessage::Subscribe {
                        id: Some("tail".into()),
                        collection: collection.clone(),
                        branch: None,
                        namespace: namespace.cloned(),
                        filter: (!filter.is_empty()).then(|| filter.clone()),
                        cursor: Some(from.to_string()),
                    }))
                    .await
                    .context("cannot subscribe")?;
                subscribed = true;
            }
            ServerMessage::Insert(change) => print_ws(position, "insert", &change)?,
            ServerMessage::Update(change) => print_ws(position, "update", &change)?,
            ServerMessage::Delete(change) => print_ws(position, "delete", &change)?,
            ServerMessage::Resync { reset: true, .. } => {
                output::note(
                    "the server no longer has this cursor's changes: the current documents follow",
                );
                position.last_seq = Seq::ZERO;
            }
            ServerMessage::Resync { cursor, .. } => {
                if let Some(cursor) = cursor {
                    position.cursor = Some(cursor);
                }
                bail!("the server dropped the live stream (too slow); resuming");
            }
            ServerMessage::Error(error) => {
                let text = format!("{}: {}", error.code.as_str(), error.message);
                if matches!(
                    error.code,
                    ErrorCode::Unauthorized | ErrorCode::Forbidden | ErrorCode::InvalidRequest
                ) {
                    return Err(Fatal(text).into());
                }
                output::note(&text);
            }
            _ => {}
        }
        if position.done() {
            let _ = socket.close(None).await;
            return Ok(());
        }
    }
    bail!("the connection ended")
}

fn print_ws(position: &mut Position, op: &str, change: &ServerChange) -> anyhow::Result<()> {
    let data = change.data.clone().map(Value::Object);
    let delta = Value::Object(change.delta.clone());
    position.print(&Printed {
        op,
        namespace: change.namespace.as_str(),
        collection: change.collection.as_str(),
        id: change.record_id.as_str(),
        seq: change.seq,
        version: change.version.get(),
        cursor: change.cursor,
        timestamp: change.timestamp.to_string(),
        delta: &delta,
        data: data.as_ref(),
        op_id: change.origin.as_ref().map(|o| o.op_id.as_str()),
        matches: change.matches,
    })
}

/// Follows the change feed; `Ok` when the limit is reached.
async fn feed(
    target: &Target,
    position: &mut Position,
    namespace: Option<&Namespace>,
    filter: &Filter,
    backoff: &mut Backoff,
) -> anyhow::Result<()> {
    let api = Api::new(target)?;
    loop {
        let mut path = format!("/v1/changes?limit={FEED_PAGE}&wait={FEED_WAIT_SECS}");
        match (position.cursor, position.from_start) {
            (Some(cursor), _) => path += &format!("&cursor={}", encode(&cursor.to_string())),
            (None, true) => {}
            (None, false) => path += "&cursor=now",
        }
        if let Some(namespace) = namespace {
            path += &format!("&namespace={}", encode(namespace.as_str()));
        }
        let page = match api.get_json(&path).await {
            Ok(page) => page,
            Err(error) => {
                if let Some(refused) = error.downcast_ref::<Refused>() {
                    match refused.status.as_u16() {
                        410 => {
                            output::note(
                                "the server no longer has this cursor: starting at the oldest retained change",
                            );
                            position.cursor = None;
                            position.from_start = true;
                            position.last_seq = Seq::ZERO;
                            continue;
                        }
                        401 | 403 | 400 => return Err(Fatal(format!("{error:#}")).into()),
                        _ => {}
                    }
                }
                return Err(error);
            }
        };
        backoff.reset();
        let cursor: Cursor = page["cursor"]
            .as_str()
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| anyhow!("the change feed's answer has no cursor"))?;
        for change in page["changes"].as_array().into_iter().flatten() {
            let change: sync_core::Change = serde_json::from_value(change.clone())
                .context("the change feed sent an unreadable change")?;
            let data = change.data.clone().map(Value::Object);
            if !filter.is_empty()
                && !data
                    .as_ref()
                    .and_then(Value::as_object)
                    .is_some_and(|d| filter.matches(d))
            {
                continue;
            }
            let delta = Value::Object(change.delta.clone());
            position.print(&Printed {
                op: change.op.as_str(),
                namespace: change.namespace.as_str(),
                collection: change.collection.as_str(),
                id: change.id.as_str(),
                seq: change.seq,
                version: change.version.get(),
                cursor: Cursor::new(cursor.log(), change.seq),
                timestamp: change.timestamp.to_string(),
                delta: &delta,
                data: data.as_ref(),
                op_id: Some(change.op_id.as_str()),
                matches: None,
            })?;
            if position.done() {
                return Ok(());
            }
        }
        // Filtered-out entries move the cursor too.
        position.cursor = Some(cursor);
        position.from_start = false;
    }
}
