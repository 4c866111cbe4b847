//! The durable head as this node knows it: a `watch` fed by this node's
//! commits, by `LISTEN`/`NOTIFY` from every node's commits, and by a
//! periodic poll of `log_head` as the fallback, so a lost notification (a
//! dropped listener connection, a restart of the database) only delays a
//! waiter by one poll interval.
//!
//! The head only grows: every source goes through [`advance`], which
//! ignores a value at or below the current one.

use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::Pool;
use sync_core::Seq;
use tokio::sync::watch;
use tokio_postgres::{AsyncMessage, NoTls};

use super::rows::{get_u64, pg, pool};
use crate::error::Error;

/// The statement every reader of the head runs.
pub(super) const READ_HEAD: &str = "SELECT head FROM log_head WHERE id = 1";

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

/// The durable head, read from the database.
pub(super) async fn read_head(pool: &Pool) -> Result<Seq, Error> {
    let client = pool.get().await.map_err(self::pool)?;
    let statement = client.prepare_cached(READ_HEAD).await.map_err(pg)?;
    let row = client.query_one(&statement, &[]).await.map_err(pg)?;
    Ok(Seq(get_u64(&row, "log_head", 0)?))
}

/// Polls the head every `interval` until `shutdown`'s sender is dropped.
pub(super) async fn poll(
    pool: Pool,
    heads: Arc<watch::Sender<Seq>>,
    interval: Duration,
    mut shutdown: watch::Receiver<()>,
) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = ticker.tick() => {
                // A failed poll is retried at the next tick; readers see the
                // failure themselves when they query.
                if let Ok(head) = read_head(&pool).await {
                    advance(&heads, head);
                }
            }
        }
    }
}

/// How often the listener checks that its connection is still alive: a
/// half-open TCP connection delivers no notification and reports no error.
const LISTENER_PING: Duration = Duration::from_secs(30);
/// The longest wait before reconnecting the listener.
const RECONNECT_MAX: Duration = Duration::from_secs(5);

/// Holds a dedicated connection that `LISTEN`s on `channel` and raises the
/// head to each notification's payload; reconnects (with backoff) when the
/// connection drops, and reads the head after each (re)connection to catch
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
                if let Ok(row) = client.query_one(READ_HEAD, &[]).await
                    && let Ok(head) = get_u64(&row, "log_head", 0)
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
