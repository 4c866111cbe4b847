//! A value that changes over time: published by one side, watched by any
//! number of others, such as a connection's state or an offline queue's
//! counts. A watcher sees the latest value, not every one in between.

use tokio::sync::watch;

/// The publishing side of a [`Watch`].
#[derive(Debug)]
pub struct Publisher<T>(watch::Sender<T>);

impl<T> Publisher<T> {
    /// A publisher of `initial`.
    pub fn new(initial: T) -> Publisher<T> {
        Publisher(watch::Sender::new(initial))
    }

    /// Publishes `value` (watched or not) and returns the value it replaces.
    pub fn replace(&self, value: T) -> T {
        self.0.send_replace(value)
    }

    /// A new watcher, which counts the current value as seen.
    pub fn watch(&self) -> Watch<T> {
        Watch(self.0.subscribe())
    }
}

impl<T: PartialEq> Publisher<T> {
    /// Publishes `value` if it differs from the current one; whether it did.
    pub fn set(&self, value: T) -> bool {
        self.0.send_if_modified(|current| {
            let changed = *current != value;
            if changed {
                *current = value;
            }
            changed
        })
    }
}

/// The watching side of a [`Publisher`]: the latest value, and waiting for
/// a later one. Each clone keeps its own note of what it has seen.
#[derive(Debug, Clone)]
pub struct Watch<T>(watch::Receiver<T>);

impl<T: Clone> Watch<T> {
    /// The latest value.
    pub fn get(&self) -> T {
        self.0.borrow().clone()
    }

    /// The latest value, noted as seen: [`changed`](Self::changed) then
    /// waits for a later one.
    pub fn see(&mut self) -> T {
        self.0.borrow_and_update().clone()
    }

    /// Whether a value not yet seen was published; `None` once the
    /// publisher is gone.
    pub fn has_changed(&self) -> Option<bool> {
        self.0.has_changed().ok()
    }

    /// Waits for a value not yet seen and returns it, noted as seen;
    /// `None` once the publisher is gone and its last value was seen.
    pub async fn changed(&mut self) -> Option<T> {
        self.0.changed().await.ok()?;
        Some(self.see())
    }

    /// Waits until the value meets `condition` (at once if it does now)
    /// and returns it; `None` if the publisher went first.
    pub async fn wait_for(&mut self, condition: impl FnMut(&T) -> bool) -> Option<T> {
        Some(self.0.wait_for(condition).await.ok()?.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::Publisher;

    #[tokio::test]
    async fn a_watcher_sees_the_latest_value_and_then_the_end() {
        let publisher = Publisher::new(1);
        let mut watch = publisher.watch();
        assert_eq!(watch.has_changed(), Some(false));
        publisher.replace(2);
        assert!(!publisher.set(2), "the same value is not published again");
        assert!(publisher.set(3));
        assert_eq!(watch.has_changed(), Some(true));
        assert_eq!(watch.changed().await, Some(3), "only the latest value");
        assert_eq!(watch.has_changed(), Some(false));

        let waiter = tokio::spawn({
            let mut watch = watch.clone();
            async move { watch.wait_for(|n| *n >= 5).await }
        });
        publisher.replace(4);
        publisher.replace(5);
        assert_eq!(waiter.await.expect("waiter"), Some(5));
        assert_eq!(watch.see(), 5);

        drop(publisher);
        assert_eq!(watch.has_changed(), None);
        assert_eq!(watch.changed().await, None);
        assert_eq!(watch.wait_for(|n| *n > 5).await, None);
        assert_eq!(watch.get(), 5, "the last value stays");

        let publisher = Publisher::new(0);
        let mut watch = publisher.watch();
        publisher.replace(1);
        drop(publisher);
        assert_eq!(watch.changed().await, Some(1), "the last value, unseen");
        assert_eq!(watch.changed().await, None);
    }
}
