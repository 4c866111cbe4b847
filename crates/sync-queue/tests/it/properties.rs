//! The queue against a model: random sequences of enqueue, ready,
//! acknowledge, failure, retry, discard, release and reopen, checked after
//! every step against a `BTreeMap` that implements the documented rules in
//! the plainest way (a linear scan for `ready`, the coalescing table as a
//! `match`). They must agree on every answer, every entry (order, data,
//! attempts, state), the counts, the failed and the blocked entries.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use serde_json::{Value, json};
use sync_core::queue::{QueueId, QueuedOp};
use sync_core::{Action, Operation};
use sync_diff::merge_patch;
use sync_queue::{Enqueued, EntryState, FailureOutcome, QueueConfig, QueueCounts, SledQueue};

use crate::support::op;

const MAX_ENTRIES: usize = 10;
/// The documents the steps write to (`d0`, `d1`, ...).
const DOCUMENTS: u8 = 3;

/// Whether a merge patch removes a member anywhere.
fn removes_something(patch: &sync_core::JsonObject) -> bool {
    patch.values().any(|value| match value {
        serde_json::Value::Null => true,
        serde_json::Value::Object(inner) => removes_something(inner),
        _ => false,
    })
}

fn model_config(coalesce: bool) -> QueueConfig {
    QueueConfig {
        max_attempts: 3,
        base_delay_ms: 10,
        max_delay_ms: 25,
        jitter: 0.0,
        coalesce,
        max_entries: MAX_ENTRIES,
    }
}

#[derive(Debug, Clone)]
enum Step {
    Enqueue {
        doc: u8,
        action: Action,
        data: Value,
    },
    Ready {
        max: usize,
    },
    Ack {
        picks: Vec<usize>,
    },
    Fail {
        pick: usize,
    },
    Retry {
        pick: usize,
    },
    Discard {
        pick: usize,
    },
    Advance {
        ms: u64,
    },
    Release,
    Reopen,
}

/// `{"p": value}` or `{"q": value}`: nested patches, some of which do not
/// compose with an earlier `null` or scalar.
fn nested(key: usize, value: Value) -> Value {
    let mut object = serde_json::Map::new();
    object.insert(["p", "q"][key].to_owned(), value);
    Value::Object(object)
}

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        (0..3i64).prop_map(Value::from),
        (0..2usize, 0..3i64).prop_map(|(key, n)| nested(key, Value::from(n))),
        (0..2usize).prop_map(|key| nested(key, Value::Null)),
    ]
}

fn data() -> impl Strategy<Value = Value> {
    prop::collection::btree_map(prop::sample::select(vec!["a", "b", "c"]), value(), 1..3)
        .prop_map(|fields| json!(fields))
}

fn step() -> impl Strategy<Value = Step> {
    let action = prop::sample::select(vec![
        Action::Create,
        Action::Update,
        Action::Update,
        Action::Update,
        Action::Delete,
        Action::Upsert,
    ]);
    prop_oneof![
        6 => (0..DOCUMENTS, action, data()).prop_map(|(doc, action, data)| Step::Enqueue { doc, action, data }),
        3 => (1..4usize).prop_map(|max| Step::Ready { max }),
        2 => prop::collection::vec(0..12usize, 1..3).prop_map(|picks| Step::Ack { picks }),
        2 => (0..12usize).prop_map(|pick| Step::Fail { pick }),
        1 => (0..12usize).prop_map(|pick| Step::Retry { pick }),
        1 => (0..12usize).prop_map(|pick| Step::Discard { pick }),
        2 => (0..40u64).prop_map(|ms| Step::Advance { ms }),
        1 => Just(Step::Release),
        1 => Just(Step::Reopen),
    ]
}

#[derive(Debug, Clone)]
struct ModelEntry {
    queued: QueuedOp,
    doc: u8,
    failed: bool,
    sent: bool,
    in_flight: bool,
}

impl ModelEntry {
    fn state(&self) -> EntryState {
        if self.failed {
            EntryState::Failed
        } else if self.in_flight {
            EntryState::InFlight
        } else {
            EntryState::Waiting
        }
    }
}

struct Model {
    entries: BTreeMap<QueueId, ModelEntry>,
    next_id: u64,
    coalesce: bool,
}

impl Model {
    fn pick(&self, pick: usize) -> QueueId {
        // Mostly an existing entry; sometimes one that is not there.
        self.entries
            .keys()
            .nth(pick)
            .copied()
            .unwrap_or(QueueId(1_000 + pick as u64))
    }

    fn enqueue(&mut self, doc: u8, op: Operation) -> Result<Enqueued, ()> {
        if self.coalesce {
            let newest = self.entries.values().rev().find(|entry| entry.doc == doc);
            let alone = self
                .entries
                .values()
                .filter(|entry| entry.doc == doc)
                .count()
                == 1;
            if let Some(newest) = newest.filter(|entry| !entry.sent && !entry.failed) {
                let id = newest.queued.id;
                let earlier = &newest.queued.op;
                let merged_data = match (earlier.action, op.action) {
                    // An upsert's data is the whole document on a server
                    // that has none: a removal is not folded into it.
                    (Action::Upsert, Action::Update)
                        if op.data.as_ref().is_some_and(removes_something) =>
                    {
                        None
                    }
                    (Action::Update | Action::Upsert, Action::Update) => merge_patch::compose(
                        earlier.data.as_ref().unwrap(),
                        op.data.as_ref().unwrap(),
                    ),
                    (Action::Create, Action::Update) => Some(merge_patch::apply_to_object(
                        earlier.data.as_ref().unwrap(),
                        op.data.as_ref().unwrap(),
                    )),
                    (Action::Create, Action::Delete) if alone => {
                        self.entries.remove(&id);
                        return Ok(Enqueued::Cancelled(id));
                    }
                    _ => None,
                };
                if let Some(data) = merged_data {
                    let entry = self.entries.get_mut(&id).unwrap();
                    entry.queued.op.data = Some(data);
                    return Ok(Enqueued::Coalesced(id));
                }
            }
        }
        if self.entries.len() >= MAX_ENTRIES {
            return Err(());
        }
        let id = QueueId(self.next_id);
        self.next_id += 1;
        self.entries.insert(
            id,
            ModelEntry {
                queued: QueuedOp {
                    id,
                    op,
                    attempts: 0,
                    next_attempt_ms: 0,
                    last_error: None,
                },
                doc,
                failed: false,
                sent: false,
                in_flight: false,
            },
        );
        Ok(Enqueued::Appended(id))
    }

    fn ready(&mut self, now: u64, max: usize) -> Vec<QueuedOp> {
        let mut seen = BTreeSet::new();
        let mut taken = Vec::new();
        for entry in self.entries.values_mut() {
            if taken.len() == max {
                break;
            }
            if !seen.insert(entry.doc) {
                continue;
            }
            if !entry.failed && !entry.in_flight && entry.queued.next_attempt_ms <= now {
                entry.in_flight = true;
                entry.sent = true;
                taken.push(entry.queued.clone());
            }
        }
        taken
    }

    fn fail(&mut self, id: QueueId, reason: &str, now: u64) -> Option<FailureOutcome> {
        let entry = self.entries.get_mut(&id)?;
        entry.queued.last_error = Some(reason.to_owned());
        if entry.failed {
            return Some(FailureOutcome::Failed);
        }
        entry.in_flight = false;
        entry.sent = true;
        entry.queued.attempts += 1;
        if entry.queued.attempts >= 3 {
            entry.failed = true;
            return Some(FailureOutcome::Failed);
        }
        let delay = (10u64 << (entry.queued.attempts - 1)).min(25);
        entry.queued.next_attempt_ms = now + delay;
        Some(FailureOutcome::RetryAt(now + delay))
    }

    fn blocked(&self) -> Vec<QueueId> {
        let mut failed_docs = BTreeSet::new();
        let mut blocked = Vec::new();
        for entry in self.entries.values() {
            if entry.failed {
                failed_docs.insert(entry.doc);
            } else if failed_docs.contains(&entry.doc) {
                blocked.push(entry.queued.id);
            }
        }
        blocked
    }

    fn counts(&self) -> QueueCounts {
        let failed = self.entries.values().filter(|e| e.failed).count();
        QueueCounts {
            pending: self.entries.len() - failed,
            in_flight: self.entries.values().filter(|e| e.in_flight).count(),
            failed,
        }
    }
}

fn check_agree(queue: &SledQueue, model: &Model) -> Result<(), TestCaseError> {
    let entries = queue.entries();
    prop_assert_eq!(entries.len(), model.entries.len());
    for (entry, expected) in entries.iter().zip(model.entries.values()) {
        prop_assert_eq!(&entry.queued, &expected.queued);
        prop_assert_eq!(entry.state, expected.state());
        prop_assert_eq!(entry.sent, expected.sent);
    }
    prop_assert_eq!(queue.counts(), model.counts());
    let failed: Vec<QueueId> = queue.failed_entries().iter().map(|q| q.id).collect();
    let expected: Vec<QueueId> = model
        .entries
        .values()
        .filter(|e| e.failed)
        .map(|e| e.queued.id)
        .collect();
    prop_assert_eq!(failed, expected);
    let blocked: Vec<QueueId> = queue.blocked_entries().iter().map(|q| q.id).collect();
    prop_assert_eq!(blocked, model.blocked());
    let namespace = sync_core::Namespace::default_namespace();
    let todos: sync_core::CollectionName = "todos".parse().expect("collection");
    // One document more than the steps write to, which has no entries.
    for doc in 0..=DOCUMENTS {
        let id: sync_core::DocId = format!("d{doc}").parse().expect("id");
        let of_document: Vec<QueueId> = queue
            .entries_of(&namespace, &todos, &id)
            .iter()
            .map(|e| e.queued.id)
            .collect();
        let expected: Vec<QueueId> = entries
            .iter()
            .filter(|e| e.queued.op.id.as_ref() == Some(&id))
            .map(|e| e.queued.id)
            .collect();
        prop_assert_eq!(of_document, expected);
    }
    Ok(())
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|cases| cases.parse().ok())
        .unwrap_or(48)
}

fn run(steps: Vec<Step>, coalesce: bool) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let config = model_config(coalesce);
    let mut queue = Some(SledQueue::open_seeded(dir.path(), config.clone(), 0).unwrap());
    let mut model = Model {
        entries: BTreeMap::new(),
        next_id: 1,
        coalesce,
    };
    let mut now = 0;
    for (n, step) in steps.into_iter().enumerate() {
        let current = queue.as_ref().unwrap();
        match step {
            Step::Enqueue { doc, action, data } => {
                let data = if action == Action::Delete {
                    Value::Null
                } else {
                    data
                };
                let op = op(action, &format!("d{doc}"), &format!("op{n}"), data);
                let result = current.push(op.clone());
                match (model.enqueue(doc, op), result) {
                    (Ok(expected), Ok(actual)) => prop_assert_eq!(actual, expected),
                    (Err(()), Err(sync_queue::Error::Full { .. })) => {}
                    (expected, actual) => {
                        prop_assert!(false, "step {n}: model {expected:?}, queue {actual:?}");
                    }
                }
            }
            Step::Ready { max } => {
                let actual = current.take_ready(now, max).unwrap();
                prop_assert_eq!(actual, model.ready(now, max));
            }
            Step::Ack { picks } => {
                let ids: Vec<QueueId> = picks.iter().map(|pick| model.pick(*pick)).collect();
                let mut expected = 0;
                for id in &ids {
                    expected += usize::from(model.entries.remove(id).is_some());
                }
                prop_assert_eq!(current.ack(&ids).unwrap(), expected);
            }
            Step::Fail { pick } => {
                let id = model.pick(pick);
                let reason = format!("error {n}");
                match (model.fail(id, &reason, now), current.fail(id, &reason, now)) {
                    (Some(expected), Ok(actual)) => prop_assert_eq!(actual, expected),
                    (None, Err(sync_queue::Error::NotFound(missing))) => {
                        prop_assert_eq!(missing, id);
                    }
                    (expected, actual) => {
                        prop_assert!(false, "step {n}: model {expected:?}, queue {actual:?}");
                    }
                }
            }
            Step::Retry { pick } => {
                let id = model.pick(pick);
                let expected = model.entries.get_mut(&id).map(|entry| {
                    entry.failed = false;
                    entry.queued.attempts = 0;
                    entry.queued.next_attempt_ms = 0;
                });
                prop_assert_eq!(current.requeue(id).is_ok(), expected.is_some());
            }
            Step::Discard { pick } => {
                let id = model.pick(pick);
                let expected = model.entries.remove(&id).map(|entry| entry.queued.op);
                prop_assert_eq!(current.remove(id).ok(), expected);
            }
            Step::Advance { ms } => now += ms,
            Step::Release => {
                let expected = model.entries.values().filter(|e| e.in_flight).count();
                for entry in model.entries.values_mut() {
                    entry.in_flight = false;
                }
                prop_assert_eq!(current.release_in_flight(), expected);
            }
            Step::Reopen => {
                drop(queue.take());
                for entry in model.entries.values_mut() {
                    entry.in_flight = false;
                }
                queue = Some(SledQueue::open_seeded(dir.path(), config.clone(), 0).unwrap());
            }
        }
        check_agree(queue.as_ref().unwrap(), &model)?;
    }
    Ok(())
}

proptest! {
    // 48 cases by default (each opens sled and fsyncs every step);
    // `PROPTEST_CASES=1000` for a deeper run.
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn the_queue_behaves_like_the_model(steps in prop::collection::vec(step(), 1..45)) {
        run(steps, true)?;
    }

    #[test]
    fn the_queue_behaves_like_the_model_without_coalescing(
        steps in prop::collection::vec(step(), 1..45)
    ) {
        run(steps, false)?;
    }
}
