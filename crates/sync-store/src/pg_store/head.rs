//! The settled head as this node knows it: a `watch` fed by this node's
//! settles, by `LISTEN`/`NOTIFY` from every node's settles, and by a
//! periodic poll as the fallback, so a lost notification (a dropped
//! listener connection, a restart of the database) only delays a waiter by
//! one poll interval.
//!
//! The settled head is the greatest `up_to` of `log_settled`: every seq at
//! or below it is committed and durable (see `commit`). It is the only head
//! readers use; `log_head.head`, the committed head, may be ahead of it by
//! commits whose flush is still under way.
//!
//! The head only grows: every source goes through [`advance`], which
//! ignores a value at or below the current one.

use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Object, Pool};
use sync_core::Seq;
use tokio::sync::{Mutex, watch};
use tokio_postgres::{AsyncMessage, NoTls};

use super::rows::{get_u64, pg, pool};
use crate::error::Error;

/// The settled head, as a scalar subquery.
pub(super) const SETTLED_HEAD: &str = "SELECT coalesce(max(up_to), 0) FROM log_settled";

/// The settled head and the committed head.
const READ_HEADS: &str =
    "SELECT (SELECT coalesce(max(up_to), 0) FROM log_settled), head FROM log_head WHERE id = 1";

/// Raises node `$1`'s row of `log_settled` to the committed head this
/// statement sees, and returns the row's value. Run in a transaction of its
/// own with `synchronous_commit` on: its commit is durable only once the
/// WAL is flushed past it, and so past every commit it saw.
pub(super) const SETTLE: &str = "INSERT INTO log_settled (node, up_to)
    SELECT $1, head FROM log_head WHERE id = 1
    ON CONFLICT (node) DO UPDATE SET up_to = greatest(log_settled.up_to, EXCLUDED.up_to)
    RETURNING up_to";

/// Raises the known head to `head` (never lowers it).
pub(super) fn advance(heads: &watch::Sender<Seq>, head: Seq) {
    heads.send_if_modified(|known| {
        if head > *known {
            *known = head;
            true
        } else {
            false
        }
    });
}

/// The settled head, read from the database.
pub(super) async fn read_head(pool: &Pool) -> Result<Seq, Error> {
    Ok(read_heads(pool).await?.0)
}

/// The settled head and the committed head, read from the database.
async fn read_heads(pool: &Pool) -> Result<(Seq, Seq), Error> {
    let client = pool.get().await.map_err(self::pool)?;
    let statement = client.prepare_cached(READ_HEADS).await.map_err(pg)?;
    let row = client.query_one(&statement, &[]).await.map_err(pg)?;
    Ok((
        Seq(get_u64(&row, "log_settled", 0)?),
        Seq(get_u64(&row, "log_head", 1)?),
    ))
}

/// Settles what this node has seen outside its committer: by readers that
/// read rows of commits not yet known settled, and by the poll when a
/// node committed and then never settled (it died in between).
#[derive(Debug)]
pub(super) struct Settler {
    /// Where connections come from.
    pub(super) pool: Pool,
    /// This settler's row of `log_settled`.
    pub(super) node: i64,
    /// The known head, raised by each settle.
    pub(super) heads: Arc<watch::Sender<Seq>>,
    /// One settle at a time: the row is this settler's alone.
    pub(super) running: Mutex<()>,
}

impl Settler {
    /// Makes sure what a reader read is durable before it is answered:
    /// `seq` is the greatest seq the reader saw (`None` when what it read
    /// carries no seq, such as a result that changed no document, which
    /// only a settle begun after the read makes sure of).
    pub(super) async fn settle_past(&self, seq: Option<Seq>) -> Result<(), Error> {
        let settled = |heads: &watch::Sender<Seq>| seq.is_some_and(|seq| seq <= *heads.borrow());
        if settled(&self.heads) {
            return Ok(());
        }
        let _one = self.running.lock().await;
        if settled(&self.heads) {
            return Ok(());
        }
        self.settle().await.map(|_| ())
    }

    /// Settles every commit visible now; returns the node's settled head.
    pub(super) async fn settle(&self) -> Result<Seq, Error> {
        let client = self.pool.get().await.map_err(pool)?;
        let up_to = settle_on(&client, self.node).await?;
        advance(&self.heads, up_to);
        Ok(up_to)
    }
}

/// Runs [`SETTLE`] for `node` on `client`, outside any transaction.
async fn settle_on(client: &Object, node: i64) -> Result<Seq, Error> {
    let statement = client.prepare_cached(SETTLE).await.map_err(pg)?;
    let row = client.query_one(&statement, &[&node]).await.map_err(pg)?;
    Ok(Seq(get_u64(&row, "log_settled", 0)?))
}

/// Polls the heads every `interval` until `shutdown`'s sender is dropped;
/// settles when a commit seen at the previous poll is still not settled
/// (its node died between its commit and its settle, or has no more
/// commits to settle it with).
pub(super) async fn poll(
    settler: Arc<Settler>,
    interval: Duration,
    mut shutdown: watch::Receiver<()>,
) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut committed_before = Seq::ZERO;
    loop {
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = ticker.tick() => {
                // A failed poll is retried at the next tick; readers see the
                // failure themselves when they query.
                if let Ok((settled, committed)) = read_heads(&settler.pool).await {
                    advance(&settler.heads, settled);
                    if settled < committed_before {
                        let _ = settler.settle().await;
                    }
                    committed_before = committed;
                }
            }
        }
    }
}

/// Tells the other nodes of each head the committer settled: a `NOTIFY`
/// on `channel` after the settle, in a transaction of its own that does
/// not wait for a WAL flush. PostgreSQL orders notifying transactions by a
/// lock held through their commit, so a notification sent by the settle
/// itself would serialise every node's settle, flush included. One
/// notification is in flight at a time, for the latest head: under load one
/// covers several groups. Runs until the committer is gone.
pub(super) async fn notify(pool: Pool, channel: String, mut settled: watch::Receiver<Seq>) {
    while settled.changed().await.is_ok() {
        let head = settled.borrow_and_update().get().to_string();
        // A lost notification delays the other nodes by one poll at most.
        if let Ok(client) = pool.get().await
            && let Ok(statement) = client.prepare_cached(NOTIFY).await
        {
            let _ = client.execute(&statement, &[&channel, &head]).await;
        }
    }
}

/// The notification of a settled head (`$2`) on channel `$1`.
const NOTIFY: &str =
    "SELECT set_config('synchronous_commit', 'off', true), pg_notify($1, $2)::text";

/// How often the listener checks that its connection is still alive: a
/// half-open TCP connection delivers no notification and reports no error.
const LISTENER_PING: Duration = Duration::from_secs(30);
/// The longest wait before reconnecting the listener.
const RECONNECT_MAX: Duration = Duration::from_secs(5);

/// Holds a dedicated connection that `LISTEN`s on `channel` and raises the
/// head to each notification's payload; reconnects (with backoff) when the
/// connection drops, and reads the settled head after each (re)connection to catch
/// what was committed while it was not listening. Runs until `shutdown`'s
/// sender is dropped.
pub(super) async fn listen(
    config: tokio_postgres::Config,
    channel: String,
    heads: Arc<watch::Sender<Seq>>,
    mut shutdown: watch::Receiver<()>,
) {
    let mut backoff = Duration::from_millis(100);
    loop {
        if let Ok((client, mut connection)) = config.connect(NoTls).await {
            backoff = Duration::from_millis(100);
            let notified = Arc::clone(&heads);
            let mut driver = tokio::spawn(async move {
                while let Some(message) =
                    std::future::poll_fn(|cx| connection.poll_message(cx)).await
                {
                    match message {
                        Ok(AsyncMessage::Notification(notification)) => {
                            if let Ok(head) = notification.payload().parse::<u64>() {
                                advance(&notified, Seq(head));
                            }
                        }
                        Ok(_) => {}
                        Err(_) => break,
                    }
                }
            });
            // The channel is built from a validated schema name.
            let listening = client
                .batch_execute(&format!("LISTEN \"{channel}\""))
                .await
                .is_ok();
            if listening {
                if let Ok(row) = client.query_one(READ_HEADS, &[]).await
                    && let Ok(head) = get_u64(&row, "log_settled", 0)
                {
                    advance(&heads, Seq(head));
                }
                let mut ping = tokio::time::interval(LISTENER_PING);
                ping.tick().await;
                loop {
                    tokio::select! {
                        _ = shutdown.changed() => {
                            driver.abort();
                            return;
                        }
                        _ = &mut driver => break,
                        _ = ping.tick() => {
                            let alive = tokio::time::timeout(
                                RECONNECT_MAX,
                                client.simple_query("SELECT 1"),
                            )
                            .await;
                            if !matches!(alive, Ok(Ok(_))) {
                                break;
                            }
                        }
                    }
                }
            }
            driver.abort();
        }
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(RECONNECT_MAX);
    }
}
