//! The scheduler and the simulated network: one seeded RNG picks every
//! step's action; messages wait in per-client queues until the scheduler
//! delivers, drops, duplicates or reorders them.

use std::collections::VecDeque;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use sync_client::logic::{self, AckEffect, Delivery};
use sync_core::store::ChangeFilter;
use sync_core::{
    Action, Change, CollectionName, DocId, DocKey, JsonObject, Namespace, OpResult, OpStatus,
    Operation, Seq, SyncStore,
};

use crate::client::{Client, Received, op_key};
use crate::server::{COLLECTIONS, NAMESPACES, Server};
use crate::{SimConfig, Stats};

/// The wall time the simulation starts at (2023-11-14).
const START_MS: u64 = 1_700_000_000_000;

/// Document ids per collection and namespace.
const IDS: usize = 6;

/// Changes a client's push queue holds before the server gives up on its
/// live stream and sends `resync`.
const PUSH_QUEUE_MAX: usize = 4;

/// Operations per request at most.
const BATCH_MAX: usize = 3;

/// A request in flight to the server.
#[derive(Debug, Clone)]
pub(crate) struct Request {
    ops: Vec<Operation>,
}

/// A response in flight to the client.
#[derive(Debug, Clone)]
pub(crate) struct Response {
    ops: Vec<Operation>,
    results: Vec<OpResult>,
}

/// A message of the server's ordered push stream.
#[derive(Debug, Clone)]
pub(crate) enum Push {
    Change(Box<Change>),
    Resync,
}

/// One client's connection and the messages on the wire. Requests and
/// responses are independent messages (any order, each may be lost or
/// duplicated); the push stream is ordered, as one WebSocket is.
#[derive(Debug, Default)]
pub(crate) struct Link {
    pub(crate) connected: bool,
    partitioned_until: usize,
    pub(crate) up: Vec<Request>,
    pub(crate) down: Vec<Response>,
    pub(crate) stream: VecDeque<Push>,
    /// The server's position in this client's subscription.
    pushed_upto: Seq,
    /// The live stream was dropped; nothing is pushed until the client
    /// resubscribes from its cursor.
    awaiting_resync: bool,
}

/// The actions of the scheduler, with their weights.
#[derive(Debug, Clone, Copy)]
enum Act {
    Write,
    Send,
    DeliverRequest,
    DeliverConcurrently,
    DropRequest,
    DuplicateRequest,
    DeliverResponse,
    DropResponse,
    DeliverPush,
    ServerPush,
    Timeout,
    Partition,
    Connect,
    ClientRestart,
    ServerRestart,
    Skew,
}

const ACTS: [(Act, u32); 16] = [
    (Act::Write, 30),
    (Act::Send, 14),
    (Act::DeliverRequest, 14),
    (Act::DeliverConcurrently, 4),
    (Act::DropRequest, 2),
    (Act::DuplicateRequest, 3),
    (Act::DeliverResponse, 12),
    (Act::DropResponse, 2),
    (Act::DeliverPush, 14),
    (Act::ServerPush, 10),
    (Act::Timeout, 3),
    (Act::Partition, 2),
    (Act::Connect, 6),
    (Act::ClientRestart, 2),
    (Act::ServerRestart, 1),
    (Act::Skew, 2),
];

/// A whole simulation run.
pub(crate) struct Sim {
    pub(crate) rng: StdRng,
    pub(crate) config: SimConfig,
    pub(crate) step: usize,
    pub(crate) server: Server,
    pub(crate) clients: Vec<Client>,
    pub(crate) links: Vec<Link>,
    pub(crate) stats: Stats,
    pub(crate) violations: Vec<String>,
    pub(crate) trace: Vec<String>,
    /// Every operation a client enqueued, with the client.
    pub(crate) enqueued: std::collections::BTreeMap<sync_core::OpId, usize>,
    /// Operations the server refused, with the reason.
    pub(crate) refused: std::collections::BTreeMap<sync_core::OpId, String>,
    /// Whether the faults have stopped.
    healing: bool,
}

fn obj(value: Value) -> JsonObject {
    value.as_object().cloned().unwrap_or_default()
}

impl Sim {
    /// A simulation of `seed`: 3 to 8 clients, a fresh server.
    pub(crate) fn new(seed: u64, config: SimConfig) -> Result<Sim, String> {
        let mut rng = StdRng::seed_from_u64(seed);
        let clients = rng.random_range(3..=8);
        let server = Server::start(START_MS)?;
        let clients: Vec<Client> = (0..clients).map(|i| Client::new(i, START_MS)).collect();
        let links = clients
            .iter()
            .map(|_| Link {
                connected: true,
                ..Link::default()
            })
            .collect();
        let stats = Stats {
            seed,
            clients: clients.len(),
            ..Stats::default()
        };
        Ok(Sim {
            rng,
            config,
            step: 0,
            server,
            clients,
            links,
            stats,
            violations: Vec::new(),
            trace: Vec::new(),
            enqueued: Default::default(),
            refused: Default::default(),
            healing: false,
        })
    }

    /// Records a line of the trace (only when tracing).
    pub(crate) fn note(&mut self, line: impl FnOnce() -> String) {
        if self.config.trace {
            let line = format!("{:>4} {}", self.step, line());
            self.trace.push(line);
        }
    }

    /// Records a broken guarantee.
    pub(crate) fn violation(&mut self, message: String) {
        self.note(|| format!("VIOLATION {message}"));
        self.violations.push(message);
    }

    /// The random phase, then the heal.
    pub(crate) async fn run(&mut self) -> Result<(), String> {
        for step in 0..self.config.steps {
            self.step = step;
            self.advance_time();
            self.random_step().await?;
        }
        self.step = self.config.steps;
        self.heal().await
    }

    fn advance_time(&mut self) {
        let by = self.rng.random_range(0..=1_500);
        let wall = self.server.wall_ms() + by;
        self.server.clock.set(wall);
        for client in &self.clients {
            client.tick(wall);
        }
    }

    fn pick_act(&mut self) -> Act {
        let total: u32 = ACTS.iter().map(|(_, weight)| weight).sum();
        let mut roll = self.rng.random_range(0..total);
        for (act, weight) in ACTS {
            if roll < weight {
                return act;
            }
            roll -= weight;
        }
        Act::Write
    }

    async fn random_step(&mut self) -> Result<(), String> {
        let act = self.pick_act();
        let i = self.rng.random_range(0..self.clients.len());
        match act {
            Act::Write => self.write(i),
            Act::Send => self.send(i),
            Act::DeliverRequest => {
                if !self.links[i].up.is_empty() {
                    let at = self.rng.random_range(0..self.links[i].up.len());
                    // Sometimes the server commits and the answer is lost.
                    let cut = self.rng.random_bool(0.08);
                    self.deliver_request(i, at, false, cut).await?;
                }
            }
            Act::DeliverConcurrently => {
                let j = self.rng.random_range(0..self.clients.len());
                self.deliver_concurrently(i, j).await?;
            }
            Act::DropRequest => {
                if !self.links[i].up.is_empty() {
                    let at = self.rng.random_range(0..self.links[i].up.len());
                    self.links[i].up.remove(at);
                    self.stats.dropped += 1;
                    self.note(|| format!("c{i} request dropped"));
                }
            }
            Act::DuplicateRequest => {
                if !self.links[i].up.is_empty() {
                    let at = self.rng.random_range(0..self.links[i].up.len());
                    self.deliver_request(i, at, true, false).await?;
                }
            }
            Act::DeliverResponse => {
                if !self.links[i].down.is_empty() {
                    let at = self.rng.random_range(0..self.links[i].down.len());
                    let crash = self.rng.random_bool(0.05);
                    self.deliver_response(i, at, crash).await?;
                }
            }
            Act::DropResponse => {
                if !self.links[i].down.is_empty() {
                    let at = self.rng.random_range(0..self.links[i].down.len());
                    self.links[i].down.remove(at);
                    self.stats.dropped += 1;
                    self.note(|| format!("c{i} response dropped"));
                }
            }
            Act::DeliverPush => {
                let duplicate = self.rng.random_bool(0.1);
                self.deliver_push(i, duplicate);
            }
            Act::ServerPush => self.server_push(i).await?,
            Act::Timeout => {
                // The client gives up waiting: what was in flight goes
                // again (late answers may still arrive).
                if !self.clients[i].volatile.in_flight.is_empty() {
                    self.clients[i].volatile.in_flight.clear();
                    self.note(|| format!("c{i} timeout"));
                }
            }
            Act::Partition => {
                if self.links[i].connected {
                    let until = self.step + self.rng.random_range(5..40);
                    self.disconnect(i).await?;
                    self.links[i].partitioned_until = until;
                    self.stats.partitions += 1;
                    self.note(|| format!("c{i} partitioned until {until}"));
                }
            }
            Act::Connect => self.connect(i),
            Act::ClientRestart => {
                self.disconnect(i).await?;
                self.clients[i].crash();
                self.links[i].partitioned_until = self.step + self.rng.random_range(1..10);
                self.stats.client_restarts += 1;
                self.note(|| format!("c{i} killed and restarted"));
            }
            Act::ServerRestart => self.server_restart().await?,
            Act::Skew => {
                const SKEWS: [i64; 9] = [
                    0,
                    0,
                    20_000,
                    -20_000,
                    300_000,
                    -300_000,
                    2 * 3_600_000,
                    -2 * 3_600_000,
                    6 * 3_600_000,
                ];
                let skew = SKEWS[self.rng.random_range(0..SKEWS.len())];
                self.clients[i].skew_ms = skew;
                self.clients[i].tick(self.server.wall_ms());
                self.stats.skews += 1;
                self.note(|| format!("c{i} clock skew {skew} ms"));
            }
        }
        Ok(())
    }

    /// A random local edit: an upsert of an absent document, an update or
    /// a delete of a present one (what `save`/`update`/`delete` plan with
    /// `logic::plan_save`), now and then a create of a fresh id.
    fn write(&mut self, i: usize) {
        let rng = &mut self.rng;
        let fresh = rng.random_bool(0.05);
        let namespace = NAMESPACES[rng.random_range(0..NAMESPACES.len())];
        let (collection, _) = COLLECTIONS[rng.random_range(0..COLLECTIONS.len())];
        let id = if fresh {
            let n = self.clients[i].durable.next_fresh;
            self.clients[i].durable.next_fresh += 1;
            format!("f{i}-{n}")
        } else {
            format!("d{}", rng.random_range(0..IDS))
        };
        let key = DocKey::new(
            Namespace::new(namespace).expect("a valid namespace"),
            CollectionName::new(collection).expect("a valid collection"),
            DocId::new(id).expect("a valid id"),
        );
        let view = self.clients[i].view(&key);
        let planned = match &view {
            None => logic::plan_save(None, random_document(&mut self.rng), fresh),
            Some(_) if self.rng.random_bool(0.12) => Some((Action::Delete, JsonObject::new())),
            Some(current) => {
                let new = random_edit(&mut self.rng, current);
                logic::plan_save(Some(current), new, false)
            }
        };
        let Some((action, data)) = planned else {
            return;
        };
        let data = (action != Action::Delete).then_some(data);
        let op = self.clients[i].enqueue(&key, action, data);
        let op_id = op.op_id.clone().expect("enqueued operations have an opId");
        self.enqueued.insert(op_id.clone(), i);
        self.stats.writes += 1;
        self.note(|| {
            format!(
                "c{i} {action} {key} {op_id} base={:?} data={}",
                op.base_version.map(|v| v.get()),
                op.data
                    .as_ref()
                    .map_or(String::new(), |d| Value::Object(d.clone()).to_string()),
            )
        });
    }

    /// The client sends its next ready entries as one request.
    fn send(&mut self, i: usize) {
        if !self.links[i].connected {
            return;
        }
        let max = self.rng.random_range(1..=BATCH_MAX);
        let ops = self.clients[i].ready(max);
        if ops.is_empty() {
            return;
        }
        self.stats.requests += 1;
        self.note(|| {
            let ids: Vec<String> = ops
                .iter()
                .map(|op| format!("{:?}", op.op_id.as_ref().map(|id| id.as_str())))
                .collect();
            format!("c{i} sends {}", ids.join(","))
        });
        self.links[i].up.push(Request { ops });
    }

    /// The server receives request `at` of client `i` (a copy of it when
    /// `duplicate`), applies it, and answers unless `cut` (committed, but
    /// the answer is lost).
    async fn deliver_request(
        &mut self,
        i: usize,
        at: usize,
        duplicate: bool,
        cut: bool,
    ) -> Result<(), String> {
        let request = if duplicate {
            self.links[i].up[at].clone()
        } else {
            self.links[i].up.remove(at)
        };
        let device = self.clients[i].device.clone();
        let reports = self.server.apply(&device, request.ops.clone()).await?;
        self.answered(i, request, reports, duplicate, cut).await
    }

    /// Two clients' requests reach the server at the same time and race.
    async fn deliver_concurrently(&mut self, i: usize, j: usize) -> Result<(), String> {
        if i == j || self.links[i].up.is_empty() || self.links[j].up.is_empty() {
            return Ok(());
        }
        let first = self.links[i].up.remove(0);
        let second = self.links[j].up.remove(0);
        let (device_i, device_j) = (
            self.clients[i].device.clone(),
            self.clients[j].device.clone(),
        );
        let (a, b) = self
            .server
            .apply_both(
                (&device_i, first.ops.clone()),
                (&device_j, second.ops.clone()),
            )
            .await?;
        self.note(|| format!("c{i} and c{j} race"));
        self.answered(i, first, a, false, false).await?;
        self.answered(j, second, b, false, false).await
    }

    /// After the server applied `request` of client `i`: counts, the
    /// fan-out, and the answer on the wire (unless `cut`).
    async fn answered(
        &mut self,
        i: usize,
        request: Request,
        reports: Vec<sync_engine::OpReport>,
        duplicate: bool,
        cut: bool,
    ) -> Result<(), String> {
        let results: Vec<OpResult> = reports.into_iter().map(|report| report.result).collect();
        for result in &results {
            match result.status {
                OpStatus::Duplicate => self.stats.duplicates += 1,
                OpStatus::Merged => self.stats.merged += 1,
                OpStatus::Conflict => self.stats.pending_conflicts += 1,
                OpStatus::Error => self.stats.errors += 1,
                OpStatus::Success => {}
            }
        }
        self.note(|| {
            let outcomes: Vec<String> = results
                .iter()
                .map(|r| {
                    format!(
                        "{}={:?}@v{:?}/s{:?}{}",
                        r.op_id.as_ref().map_or("", |id| id.as_str()),
                        r.status,
                        r.version.map(|v| v.get()),
                        r.seq.map(|s| s.get()),
                        r.error
                            .as_ref()
                            .map_or(String::new(), |e| format!(" ({}: {})", e.code, e.message)),
                    )
                })
                .collect();
            format!(
                "server applies c{i}{}{}: {}",
                if duplicate { " (duplicate)" } else { "" },
                if cut { " (answer lost)" } else { "" },
                outcomes.join(", ")
            )
        });
        if !self.healing && self.rng.random_bool(0.5) {
            // The fan-out after a commit: every subscriber gets the news.
            for other in 0..self.clients.len() {
                self.server_push(other).await?;
            }
        }
        if cut {
            self.stats.cut_after_commit += 1;
        } else if self.links[i].connected {
            self.links[i].down.push(Response {
                ops: request.ops,
                results,
            });
        }
        Ok(())
    }

    /// The client receives response `at`: each answer goes through
    /// `logic::classify_result` and `logic::ack_effect`, as in the engine.
    /// With `crash`, the client dies between storing the first answer's
    /// known state and removing its queue entry (two separate writes in
    /// the real client).
    async fn deliver_response(&mut self, i: usize, at: usize, crash: bool) -> Result<(), String> {
        let response = self.links[i].down.remove(at);
        for (op, result) in response.ops.iter().zip(&response.results) {
            let Some(op_id) = &op.op_id else { continue };
            let Some(entry) = self.clients[i].entry_of(op_id) else {
                // Answered already (a late or duplicated answer).
                continue;
            };
            let qid = entry.qid;
            let queued = entry.op.clone();
            match logic::classify_result(result) {
                Delivery::Delivered { .. } => {
                    let effect = self.clients[i].ack_effect(op, result);
                    match effect {
                        AckEffect::Apply(doc) => {
                            self.clients[i].durable.known.insert(op_key(op), doc);
                        }
                        AckEffect::Keep => {}
                        AckEffect::Fetch => {
                            let stored = self
                                .server
                                .store()
                                .get(&op_key(op))
                                .await
                                .map_err(|e| format!("reading a document: {e}"))?;
                            if let Some(stored) = stored {
                                self.clients[i].store_document(&stored.document);
                            }
                        }
                    }
                    if crash {
                        self.disconnect(i).await?;
                        self.clients[i].crash();
                        self.links[i].partitioned_until = self.step + 3;
                        self.stats.client_restarts += 1;
                        self.note(|| format!("c{i} killed while acknowledging {op_id}"));
                        return Ok(());
                    }
                    self.clients[i].remove(qid);
                    self.stats.acks += 1;
                }
                Delivery::Retry => {
                    self.clients[i].volatile.in_flight.remove(&qid);
                }
                Delivery::Refused(reason) => {
                    // The application discards a refused edit.
                    self.clients[i].remove(qid);
                    self.note(|| format!("c{i} {op_id} refused: {reason}"));
                    if let Some(op_id) = &queued.op_id {
                        self.refused.insert(op_id.clone(), reason);
                    }
                    self.stats.refused += 1;
                }
            }
        }
        self.note(|| format!("c{i} got answers"));
        Ok(())
    }

    /// The client takes the next message of its push stream (leaves it
    /// there too when `duplicate`).
    fn deliver_push(&mut self, i: usize, duplicate: bool) {
        let message = if duplicate {
            self.links[i].stream.front().cloned()
        } else {
            self.links[i].stream.pop_front()
        };
        match message {
            None => {}
            Some(Push::Resync) => {
                // The client catches up from its cursor.
                self.links[i].pushed_upto = self.clients[i].durable.cursor;
                self.links[i].awaiting_resync = false;
                self.stats.resyncs += 1;
                self.note(|| format!("c{i} resyncs"));
            }
            Some(Push::Change(change)) => {
                let cursor = self.clients[i].durable.cursor;
                match self.clients[i].receive(&change) {
                    Received::Accepted | Received::Replay => {}
                    Received::Gap => self.violation(format!(
                        "client {i} received seq {} after cursor {cursor}: a gap in the stream",
                        change.seq
                    )),
                }
            }
        }
    }

    /// The server pushes the changes after the client's subscription
    /// position into its bounded queue; a full queue drops the live stream
    /// and sends `resync`.
    async fn server_push(&mut self, i: usize) -> Result<(), String> {
        let link = &self.links[i];
        if !link.connected || link.awaiting_resync {
            return Ok(());
        }
        let free = PUSH_QUEUE_MAX.saturating_sub(link.stream.len());
        let page = self
            .server
            .store()
            .changes_after(link.pushed_upto, &ChangeFilter::default(), free.max(1))
            .await
            .map_err(|e| format!("reading the log: {e}"))?;
        if page.changes.is_empty() {
            return Ok(());
        }
        let link = &mut self.links[i];
        if free == 0 {
            link.stream.clear();
            link.stream.push_back(Push::Resync);
            link.awaiting_resync = true;
            self.note(|| format!("c{i} push queue full: resync"));
            return Ok(());
        }
        for change in page.changes {
            link.pushed_upto = change.seq;
            link.stream.push_back(Push::Change(Box::new(change)));
        }
        Ok(())
    }

    /// The client's connection goes down: each request on the wire is lost
    /// or reaches the server with its answer lost; answers and pushes on
    /// the wire are lost; what was in flight goes again later.
    async fn disconnect(&mut self, i: usize) -> Result<(), String> {
        let requests = std::mem::take(&mut self.links[i].up);
        for request in requests {
            if self.rng.random_bool(0.5) {
                self.links[i].up.push(request);
                let at = self.links[i].up.len() - 1;
                self.deliver_request(i, at, false, true).await?;
            } else {
                self.stats.dropped += 1;
            }
        }
        let link = &mut self.links[i];
        link.connected = false;
        link.down.clear();
        link.stream.clear();
        link.awaiting_resync = false;
        self.clients[i].volatile.in_flight.clear();
        Ok(())
    }

    /// The client connects (when its partition is over) and subscribes
    /// from its cursor.
    fn connect(&mut self, i: usize) {
        let cursor = self.clients[i].durable.cursor;
        let link = &mut self.links[i];
        if link.connected || (!self.healing && self.step < link.partitioned_until) {
            return;
        }
        link.connected = true;
        link.pushed_upto = cursor;
        link.awaiting_resync = false;
        self.note(|| format!("c{i} connects from cursor {cursor}"));
    }

    /// The server crashes and restarts: every connection drops, the store
    /// is reopened from disk, and everything it acknowledged must still be
    /// there.
    async fn server_restart(&mut self) -> Result<(), String> {
        for i in 0..self.clients.len() {
            self.disconnect(i).await?;
        }
        self.server.restart()?;
        self.stats.server_restarts += 1;
        self.note(|| "server crashed and restarted".to_owned());
        let acknowledged: Vec<_> = self.server.acknowledged.keys().cloned().collect();
        for op_id in acknowledged {
            let found = self
                .server
                .store()
                .lookup_op(&op_id)
                .await
                .map_err(|e| format!("looking up an opId: {e}"))?;
            if found.is_none() {
                self.violation(format!(
                    "acknowledged operation {op_id} is gone after a server restart"
                ));
            }
        }
        Ok(())
    }

    /// No more faults: everyone reconnects and everything is delivered
    /// until nothing moves.
    async fn heal(&mut self) -> Result<(), String> {
        self.healing = true;
        self.note(|| "heal".to_owned());
        for i in 0..self.clients.len() {
            self.clients[i].volatile.in_flight.clear();
            self.connect(i);
        }
        for _round in 0..10_000 {
            self.advance_time();
            for i in 0..self.clients.len() {
                while !self.links[i].up.is_empty() {
                    self.deliver_request(i, 0, false, false).await?;
                }
                while !self.links[i].down.is_empty() {
                    self.deliver_response(i, 0, false).await?;
                }
                // Answers lost before the heal: what is still in flight
                // has no answer coming.
                self.clients[i].volatile.in_flight.clear();
                self.send(i);
                loop {
                    self.server_push(i).await?;
                    if self.links[i].stream.is_empty() {
                        break;
                    }
                    while !self.links[i].stream.is_empty() {
                        self.deliver_push(i, false);
                    }
                }
            }
            if self.quiet().await? {
                return Ok(());
            }
        }
        self.violation("the system did not quiesce after the heal".to_owned());
        Ok(())
    }

    /// Nothing left to send, deliver or catch up.
    async fn quiet(&self) -> Result<bool, String> {
        let head = self
            .server
            .store()
            .head()
            .await
            .map_err(|e| format!("reading the head: {e}"))?;
        Ok(self
            .links
            .iter()
            .all(|link| link.up.is_empty() && link.down.is_empty() && link.stream.is_empty())
            && self
                .clients
                .iter()
                .all(|client| client.durable.queue.is_empty() && client.durable.cursor == head))
    }
}

const WORDS: [&str; 6] = ["alpha", "beta", "gamma", "delta", "eps", "zeta"];
const TAGS: [&str; 4] = ["a", "b", "c", "d"];

fn random_title(rng: &mut StdRng) -> Value {
    let words: Vec<&str> = (0..rng.random_range(1..=3))
        .map(|_| WORDS[rng.random_range(0..WORDS.len())])
        .collect();
    Value::String(words.join(" "))
}

fn random_tags(rng: &mut StdRng) -> Value {
    let tags: Vec<Value> = TAGS
        .iter()
        .filter(|_| rng.random_bool(0.5))
        .map(|tag| Value::String((*tag).to_owned()))
        .collect();
    Value::Array(tags)
}

/// A whole new document.
fn random_document(rng: &mut StdRng) -> JsonObject {
    let mut doc = obj(json!({ "title": random_title(rng), "n": rng.random_range(0..10) }));
    if rng.random_bool(0.5) {
        doc.insert("tags".to_owned(), random_tags(rng));
    }
    if rng.random_bool(0.5) {
        doc.insert("done".to_owned(), Value::Bool(rng.random_bool(0.5)));
    }
    if rng.random_bool(0.3) {
        doc.insert(
            "meta".to_owned(),
            json!({ "x": rng.random_range(0..5), "y": random_title(rng) }),
        );
    }
    doc
}

/// `current` with one or two fields changed or removed.
fn random_edit(rng: &mut StdRng, current: &JsonObject) -> JsonObject {
    let mut doc = current.clone();
    for _ in 0..rng.random_range(1..=2) {
        match rng.random_range(0..7) {
            0 => {
                doc.insert("title".to_owned(), random_title(rng));
            }
            1 => {
                doc.insert("n".to_owned(), json!(rng.random_range(0..10)));
            }
            2 => {
                doc.insert("tags".to_owned(), random_tags(rng));
            }
            3 => {
                doc.insert("done".to_owned(), Value::Bool(rng.random_bool(0.5)));
            }
            4 => {
                let mut meta = doc
                    .get("meta")
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default();
                meta.insert("x".to_owned(), json!(rng.random_range(0..5)));
                doc.insert("meta".to_owned(), Value::Object(meta));
            }
            5 => {
                let field = ["tags", "done", "meta", "n"][rng.random_range(0..4)];
                doc.remove(field);
            }
            _ => {
                doc.insert("n".to_owned(), json!(rng.random_range(10..20)));
            }
        }
    }
    doc
}
