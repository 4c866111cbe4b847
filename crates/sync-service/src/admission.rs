//! The write gate: how many batches of writes go to the store at once,
//! and in which order the waiting ones follow.
//!
//! Every door (bulk sync, `POST /v1/sync`, a WebSocket connection's write
//! pipeline) takes a [`WritePermit`] before it hands a batch to
//! `Syncer::apply`, and holds it until the batch is answered. At most
//! `writes_in_flight_max` batches hold one at a time; under load the
//! others wait, and a freed permit goes to the most urgent waiter (high,
//! then normal, then low; first come, first served within a priority). A
//! batch waits as its most urgent operation: one high operation in a
//! request is enough for the request not to queue behind low ones.
//!
//! Why above the store: the store commits whatever it is given in groups
//! and knows nothing of urgency, and a long queue of writes in front of
//! its committer is what makes a high write slow. Bounding the writes in
//! flight keeps that queue short and moves the waiting here, where the
//! order can be chosen. The order of one connection's writes is not
//! touched: a connection's pipeline takes one permit per batch and sends
//! its batches in the order the writes came (see `ws`).
//!
//! A waiter that gives up (its request was dropped) leaves the queue; a
//! permit handed to it just before passes on at once, so no slot is lost.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use sync_core::Priority;
use tokio::sync::oneshot;

/// The gate of one server node. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub(crate) struct WriteGate {
    state: Mutex<GateState>,
}

#[derive(Debug)]
struct GateState {
    capacity: usize,
    in_flight: usize,
    /// Waiters by priority, most urgent first.
    waiting: [VecDeque<oneshot::Sender<()>>; 3],
}

/// The right to have one batch at the store; dropping it lets the next
/// waiter in.
#[derive(Debug)]
#[must_use = "the batch is admitted only while the permit is held"]
pub struct WritePermit {
    gate: Arc<WriteGate>,
}

impl Drop for WritePermit {
    fn drop(&mut self) {
        self.gate.release();
    }
}

/// How many batches are at the store and how many wait, by priority.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct GateLoad {
    /// Batches holding a permit.
    pub(crate) in_flight: usize,
    /// Batches waiting, indexed by [`Priority::index`].
    pub(crate) waiting: [usize; 3],
}

impl WriteGate {
    /// A gate letting `capacity` batches (at least one) in at once.
    pub(crate) fn new(capacity: usize) -> Arc<WriteGate> {
        Arc::new(WriteGate {
            state: Mutex::new(GateState {
                capacity: capacity.max(1),
                in_flight: 0,
                waiting: Default::default(),
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, GateState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Waits for a permit for a batch of `priority`.
    pub(crate) async fn enter(self: &Arc<Self>, priority: Priority) -> WritePermit {
        let receiver = {
            let mut state = self.lock();
            let nobody_waits = state.waiting.iter().all(VecDeque::is_empty);
            if state.in_flight < state.capacity && nobody_waits {
                state.in_flight += 1;
                return WritePermit {
                    gate: Arc::clone(self),
                };
            }
            let (sender, receiver) = oneshot::channel();
            state.waiting[priority.index()].push_back(sender);
            receiver
        };
        let mut waiting = Waiting {
            gate: self,
            receiver: Some(receiver),
        };
        if let Some(receiver) = waiting.receiver.as_mut() {
            // The sender lives in the gate, which outlives this call: an
            // error cannot happen, and would only mean the slot was handed
            // over already.
            let _ = receiver.await;
        }
        waiting.receiver = None;
        WritePermit {
            gate: Arc::clone(self),
        }
    }

    /// Changes how many batches may be in flight (a reload); waiters are
    /// let in at once when it grows.
    pub(crate) fn set_capacity(&self, capacity: usize) {
        let mut state = self.lock();
        state.capacity = capacity.max(1);
        while state.in_flight < state.capacity && Self::hand_over(&mut state) {
            state.in_flight += 1;
        }
    }

    /// The load now.
    pub(crate) fn load(&self) -> GateLoad {
        let state = self.lock();
        GateLoad {
            in_flight: state.in_flight,
            waiting: [0, 1, 2].map(|index| state.waiting[index].len()),
        }
    }

    /// A permit came back: it goes to the most urgent live waiter, or the
    /// slot is freed.
    fn release(&self) {
        let mut state = self.lock();
        if state.in_flight > state.capacity || !Self::hand_over(&mut state) {
            state.in_flight = state.in_flight.saturating_sub(1);
        }
    }

    /// Wakes the most urgent waiter still waiting; whether there was one.
    fn hand_over(state: &mut GateState) -> bool {
        for queue in &mut state.waiting {
            while let Some(sender) = queue.pop_front() {
                if sender.send(()).is_ok() {
                    return true;
                }
            }
        }
        false
    }
}

/// A waiter in line; dropped before its permit arrives, it leaves the
/// line, and a permit that arrived meanwhile passes on.
struct Waiting<'a> {
    gate: &'a Arc<WriteGate>,
    receiver: Option<oneshot::Receiver<()>>,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if let Some(mut receiver) = self.receiver.take() {
            receiver.close();
            if receiver.try_recv().is_ok() {
                self.gate.release();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex as StdMutex;
    use std::time::Duration;

    use super::*;

    /// Lets tasks run until they are all waiting again.
    async fn settle() {
        for _ in 0..50 {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test]
    async fn waiting_batches_are_let_in_most_urgent_first() {
        let gate = WriteGate::new(1);
        let order = Arc::new(StdMutex::new(Vec::new()));
        let holder = gate.enter(Priority::Low).await;
        let mut tasks = Vec::new();
        for (name, priority) in [
            ("low-1", Priority::Low),
            ("normal-1", Priority::Normal),
            ("low-2", Priority::Low),
            ("high-1", Priority::High),
            ("normal-2", Priority::Normal),
            ("high-2", Priority::High),
        ] {
            let (gate, order) = (Arc::clone(&gate), Arc::clone(&order));
            tasks.push(tokio::spawn(async move {
                let _permit = gate.enter(priority).await;
                order.lock().unwrap().push(name);
            }));
            settle().await;
        }
        assert_eq!(
            gate.load(),
            GateLoad {
                in_flight: 1,
                waiting: [2, 2, 2]
            }
        );
        drop(holder);
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(
            *order.lock().unwrap(),
            ["high-1", "high-2", "normal-1", "normal-2", "low-1", "low-2"]
        );
        assert_eq!(gate.load(), GateLoad::default());
    }

    #[tokio::test]
    async fn at_most_capacity_batches_hold_a_permit() {
        let gate = WriteGate::new(3);
        let held = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let most = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for n in 0..40 {
            let (gate, held, most) = (Arc::clone(&gate), Arc::clone(&held), Arc::clone(&most));
            tasks.push(tokio::spawn(async move {
                let priority = Priority::ALL[n % 3];
                let _permit = gate.enter(priority).await;
                let now = held.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                most.fetch_max(now, std::sync::atomic::Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(1)).await;
                held.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(most.load(std::sync::atomic::Ordering::SeqCst), 3);
        assert_eq!(gate.load(), GateLoad::default());
    }

    #[tokio::test]
    async fn a_waiter_that_gives_up_loses_no_slot() {
        let gate = WriteGate::new(1);
        let holder = gate.enter(Priority::Normal).await;
        let abandoned = {
            let gate = Arc::clone(&gate);
            tokio::spawn(async move {
                let _permit = gate.enter(Priority::High).await;
                std::future::pending::<()>().await;
            })
        };
        settle().await;
        abandoned.abort();
        let _ = abandoned.await;
        drop(holder);
        // The slot is free again: a new batch gets in without waiting.
        let again = tokio::time::timeout(Duration::from_secs(5), gate.enter(Priority::Low)).await;
        assert!(again.is_ok(), "the abandoned waiter kept the slot");
        drop(again);
        assert_eq!(gate.load(), GateLoad::default());
    }

    #[tokio::test]
    async fn a_larger_capacity_lets_waiters_in_at_once() {
        let gate = WriteGate::new(1);
        let _holder = gate.enter(Priority::Normal).await;
        let waiter = {
            let gate = Arc::clone(&gate);
            tokio::spawn(async move { drop(gate.enter(Priority::Low).await) })
        };
        settle().await;
        assert_eq!(gate.load().waiting, [0, 0, 1]);
        gate.set_capacity(2);
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("let in")
            .unwrap();
        assert_eq!(gate.load().in_flight, 1);
    }
}
