//! The in-memory index of the queue: every entry with its state, the
//! entries of each document in order, and the documents' heads.
//!
//! No I/O here: [`SledQueue`](crate::SledQueue) writes each change to sled
//! first and then applies it to this index, under one lock, so the index is
//! always what a reopen would read (plus the in-flight marks, which live in
//! memory only).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use sync_core::Priority;
use sync_core::queue::{QueueId, QueuedOp};

use crate::key::DocumentKey;
use crate::record::Record;
use crate::{EntryState, QueueCounts, QueueEntry};

/// One entry and its state.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub(crate) queued: QueuedOp,
    pub(crate) key: DocumentKey,
    pub(crate) failed: bool,
    pub(crate) sent: bool,
    pub(crate) in_flight: bool,
}

impl Entry {
    /// An entry read from disk: nothing is in flight after a reopen.
    pub(crate) fn from_record(record: Record) -> Entry {
        let key = DocumentKey::of(&record.queued.op, record.queued.id);
        Entry {
            queued: record.queued,
            key,
            failed: record.failed,
            sent: record.sent,
            in_flight: false,
        }
    }

    /// The entry as stored.
    pub(crate) fn record(&self) -> Record {
        Record::new(self.queued.clone(), self.failed, self.sent)
    }

    /// The entry as the inspection API shows it.
    pub(crate) fn snapshot(&self) -> QueueEntry {
        let state = if self.failed {
            EntryState::Failed
        } else if self.in_flight {
            EntryState::InFlight
        } else {
            EntryState::Waiting
        };
        QueueEntry {
            queued: self.queued.clone(),
            state,
            sent: self.sent,
        }
    }
}

/// All entries, by id and by document.
#[derive(Debug, Default)]
pub(crate) struct State {
    entries: BTreeMap<QueueId, Entry>,
    documents: HashMap<DocumentKey, BTreeSet<QueueId>>,
    /// The oldest entry of each document: the only ones `ready` may return.
    heads: BTreeSet<QueueId>,
    failed: usize,
    in_flight: usize,
    /// The id the next new entry gets.
    pub(crate) next_id: u64,
}

impl State {
    /// An empty index whose first entry gets `next_id`.
    pub(crate) fn new(next_id: u64) -> State {
        State {
            next_id,
            ..State::default()
        }
    }

    /// How many entries there are, failed ones included.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// The counts the watch channel publishes.
    pub(crate) fn counts(&self) -> QueueCounts {
        QueueCounts {
            pending: self.entries.len() - self.failed,
            in_flight: self.in_flight,
            failed: self.failed,
        }
    }

    /// The entry `id`.
    pub(crate) fn get(&self, id: QueueId) -> Option<&Entry> {
        self.entries.get(&id)
    }

    /// Every entry, oldest first.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Entry> {
        self.entries.values()
    }

    /// The entries of the document `key`, oldest first.
    pub(crate) fn of_document(&self, key: &DocumentKey) -> impl Iterator<Item = &Entry> {
        self.documents
            .get(key)
            .into_iter()
            .flatten()
            .filter_map(|id| self.entries.get(id))
    }

    /// Adds an entry; its id must be new.
    pub(crate) fn insert(&mut self, entry: Entry) {
        let id = entry.queued.id;
        let ids = self.documents.entry(entry.key.clone()).or_default();
        ids.insert(id);
        if ids.first() == Some(&id) {
            if let Some(old_head) = ids.iter().nth(1) {
                self.heads.remove(old_head);
            }
            self.heads.insert(id);
        }
        self.count(&entry, 1);
        if let Some(previous) = self.entries.insert(id, entry) {
            // Ids are handed out once, so this is a bug; keep the counts
            // right rather than compound it.
            self.count(&previous, -1);
        }
    }

    /// Removes and returns entry `id`.
    pub(crate) fn remove(&mut self, id: QueueId) -> Option<Entry> {
        let entry = self.entries.remove(&id)?;
        self.count(&entry, -1);
        if let Some(ids) = self.documents.get_mut(&entry.key) {
            ids.remove(&id);
            if self.heads.remove(&id)
                && let Some(next) = ids.first()
            {
                self.heads.insert(*next);
            }
            if ids.is_empty() {
                self.documents.remove(&entry.key);
            }
        }
        Some(entry)
    }

    /// Changes entry `id` through `change`, which must not change its key.
    pub(crate) fn modify<R>(
        &mut self,
        id: QueueId,
        change: impl FnOnce(&mut Entry) -> R,
    ) -> Option<R> {
        let mut entry = self.entries.remove(&id)?;
        self.count(&entry, -1);
        let result = change(&mut entry);
        self.count(&entry, 1);
        self.entries.insert(id, entry);
        Some(result)
    }

    /// The newest entry of document `key`.
    pub(crate) fn newest_of(&self, key: &DocumentKey) -> Option<QueueId> {
        self.documents.get(key)?.last().copied()
    }

    /// Whether document `key` has exactly one entry.
    pub(crate) fn is_alone(&self, key: &DocumentKey) -> bool {
        self.documents.get(key).is_some_and(|ids| ids.len() == 1)
    }

    /// Up to `max` entries to send at `now_ms`, most urgent first and
    /// oldest first within a priority: heads of their documents (so nothing
    /// overtakes an older entry of its document, which also means one entry
    /// per document at a time) that are neither failed, nor in flight, nor
    /// waiting out a backoff. A head is as urgent as the most urgent entry
    /// of its document (a high edit queued behind a low one lifts it, since
    /// it cannot go first); heads less urgent than `lowest` stay.
    pub(crate) fn ready(&self, now_ms: u64, max: usize, lowest: Priority) -> Vec<QueueId> {
        let mut by_priority: [Vec<QueueId>; 3] = Default::default();
        for entry in self.heads.iter().filter_map(|id| self.entries.get(id)) {
            if entry.failed || entry.in_flight || entry.queued.next_attempt_ms > now_ms {
                continue;
            }
            let priority = self.urgency(&entry.key);
            if priority <= lowest {
                by_priority[priority.index()].push(entry.queued.id);
            }
        }
        by_priority.into_iter().flatten().take(max).collect()
    }

    /// The most urgent priority among the entries of document `key`.
    pub(crate) fn urgency(&self, key: &DocumentKey) -> Priority {
        self.documents
            .get(key)
            .into_iter()
            .flatten()
            .filter_map(|id| self.entries.get(id))
            .map(|entry| entry.queued.op.priority)
            .min()
            .unwrap_or_default()
    }

    /// Entries that wait behind an older failed entry of their document:
    /// they stay until that one is retried or discarded.
    pub(crate) fn blocked(&self) -> Vec<QueueId> {
        let mut blocked = Vec::new();
        for ids in self.documents.values() {
            let mut behind_failed = false;
            for id in ids {
                let Some(entry) = self.entries.get(id) else {
                    continue;
                };
                if entry.failed {
                    behind_failed = true;
                } else if behind_failed {
                    blocked.push(*id);
                }
            }
        }
        blocked.sort_unstable();
        blocked
    }

    /// Clears every in-flight mark; returns how many there were.
    pub(crate) fn release_in_flight(&mut self) -> usize {
        let released = self.in_flight;
        for entry in self.entries.values_mut() {
            entry.in_flight = false;
        }
        self.in_flight = 0;
        released
    }

    fn count(&mut self, entry: &Entry, sign: isize) {
        let apply = |counter: &mut usize| {
            *counter = counter.saturating_add_signed(sign);
        };
        if entry.failed {
            apply(&mut self.failed);
        }
        if entry.in_flight {
            apply(&mut self.in_flight);
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use sync_core::Operation;

    use super::*;

    fn entry(id: u64, doc: &str) -> Entry {
        entry_at(id, doc, "normal")
    }

    fn entry_at(id: u64, doc: &str, priority: &str) -> Entry {
        let op: Operation = serde_json::from_value(
            json!({"action": "update", "id": doc, "data": {}, "priority": priority}),
        )
        .unwrap();
        let key = DocumentKey::of(&op, QueueId(id));
        Entry {
            queued: QueuedOp {
                id: QueueId(id),
                op,
                attempts: 0,
                next_attempt_ms: 0,
                last_error: None,
            },
            key,
            failed: false,
            sent: false,
            in_flight: false,
        }
    }

    #[test]
    fn only_the_head_of_each_document_is_ready() {
        let mut state = State::new(1);
        for (id, doc) in [(1, "a"), (2, "b"), (3, "a"), (4, "c"), (5, "b")] {
            state.insert(entry(id, doc));
        }
        assert_eq!(
            state.ready(0, 10, Priority::Low),
            [QueueId(1), QueueId(2), QueueId(4)]
        );
        assert_eq!(state.ready(0, 2, Priority::Low), [QueueId(1), QueueId(2)]);
        state.modify(QueueId(1), |e| e.in_flight = true);
        assert_eq!(state.ready(0, 10, Priority::Low), [QueueId(2), QueueId(4)]);
        assert_eq!(state.counts().in_flight, 1);
        state.remove(QueueId(1));
        assert_eq!(
            state.ready(0, 10, Priority::Low),
            [QueueId(2), QueueId(3), QueueId(4)]
        );
        state.modify(QueueId(2), |e| e.failed = true);
        assert_eq!(state.ready(0, 10, Priority::Low), [QueueId(3), QueueId(4)]);
        assert_eq!(state.blocked(), [QueueId(5)]);
        assert_eq!(
            state.counts(),
            QueueCounts {
                pending: 3,
                in_flight: 0,
                failed: 1
            }
        );
        assert_eq!(state.release_in_flight(), 0);
    }

    #[test]
    fn urgent_heads_go_first_and_never_past_their_document() {
        let mut state = State::new(1);
        for (id, doc, priority) in [
            (1, "a", "low"),
            (2, "b", "low"),
            (3, "c", "normal"),
            (4, "d", "high"),
            (5, "b", "high"),
            (6, "e", "low"),
        ] {
            state.insert(entry_at(id, doc, priority));
        }
        // b's head is low but a high edit waits behind it: it goes with the
        // high ones, and entry 5 itself only after it.
        assert_eq!(
            state.ready(0, 10, Priority::Low),
            [QueueId(2), QueueId(4), QueueId(3), QueueId(1), QueueId(6)]
        );
        assert_eq!(state.ready(0, 2, Priority::Low), [QueueId(2), QueueId(4)]);
        assert_eq!(
            state.ready(0, 10, Priority::Normal),
            [QueueId(2), QueueId(4), QueueId(3)]
        );
        assert_eq!(state.ready(0, 10, Priority::High), [QueueId(2), QueueId(4)]);
        state.remove(QueueId(2));
        assert_eq!(state.ready(0, 1, Priority::High), [QueueId(4)]);
        state.remove(QueueId(4));
        assert_eq!(state.ready(0, 10, Priority::High), [QueueId(5)]);
    }
}
