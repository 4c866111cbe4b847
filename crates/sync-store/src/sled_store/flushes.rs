//! Flushes asked for outside the committer (device records, branches,
//! compaction), shared by the callers that arrive together.

use std::sync::atomic::{AtomicU64, Ordering};

/// Flushes asked for outside the committer, so that writes arriving
/// together share one: each asker takes a ticket after its write, and a
/// flush covers every ticket taken before it started.
#[derive(Debug, Default)]
pub(super) struct Flushes {
    /// The last ticket taken.
    taken: AtomicU64,
    /// The last ticket a finished flush covers; held while flushing, so
    /// flushes run one at a time.
    covered: tokio::sync::Mutex<u64>,
}

impl Flushes {
    /// Runs `flush` unless a flush that started after this call has
    /// already finished; flushes run one at a time, and one covers every
    /// caller that arrived before it started.
    pub(super) async fn share<F, E>(&self, flush: impl FnOnce() -> F) -> Result<(), E>
    where
        F: Future<Output = Result<(), E>>,
    {
        let ticket = self.taken.fetch_add(1, Ordering::SeqCst) + 1;
        let mut covered = self.covered.lock().await;
        if *covered >= ticket {
            return Ok(());
        }
        let covers = self.taken.load(Ordering::SeqCst);
        flush().await?;
        *covered = covers;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use tokio::sync::Notify;

    use super::Flushes;

    #[tokio::test]
    async fn callers_arriving_during_a_flush_share_the_next_one() {
        let flushes = Arc::new(Flushes::default());
        let runs = Arc::new(AtomicUsize::new(0));
        let release = Arc::new(Notify::new());
        let flush = |runs: Arc<AtomicUsize>, release: Arc<Notify>| async move {
            runs.fetch_add(1, Ordering::SeqCst);
            release.notified().await;
            Ok::<(), ()>(())
        };
        let first = tokio::spawn({
            let (flushes, runs, release) = (flushes.clone(), runs.clone(), release.clone());
            async move { flushes.share(|| flush(runs, release)).await }
        });
        while runs.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        let later: Vec<_> = (0..16)
            .map(|_| {
                let (flushes, runs, release) = (flushes.clone(), runs.clone(), release.clone());
                tokio::spawn(async move { flushes.share(|| flush(runs, release)).await })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(
            runs.load(Ordering::SeqCst),
            1,
            "one flush at a time, and the waiting callers were written after it started"
        );
        release.notify_one();
        first.await.unwrap().unwrap();
        let second = async {
            while runs.load(Ordering::SeqCst) == 1 {
                tokio::task::yield_now().await;
            }
        };
        tokio::time::timeout(Duration::from_secs(5), second)
            .await
            .expect("the callers written during the first flush need a flush of their own");
        release.notify_one();
        for caller in later {
            caller.await.unwrap().unwrap();
        }
        assert_eq!(
            runs.load(Ordering::SeqCst),
            2,
            "the callers that arrived during the first flush share the second"
        );
    }

    #[tokio::test]
    async fn a_failed_flush_covers_nobody() {
        let flushes = Flushes::default();
        assert_eq!(
            flushes.share(|| async { Err("disk full") }).await,
            Err("disk full")
        );
        let mut ran = false;
        flushes
            .share(|| async {
                ran = true;
                Ok::<(), &str>(())
            })
            .await
            .unwrap();
        assert!(ran, "the next caller flushes again");
    }
}
