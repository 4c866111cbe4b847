//! Crash rounds of the real server process (guarantees 1 and 2 of
//! `docs/protocol.md`): the `sync-server` binary runs over a sled store
//! with `durability = fsync` while 64 WebSocket writers (one `insert` at a
//! time, each waiting for its `ack`) and one bulk-sync writer
//! (`POST /v1/sync`, batches of 100) load it; it is killed with SIGKILL at
//! a random moment and started again on the same data directory. Then
//! every acknowledged operation must be there exactly once: sent again,
//! each is a `duplicate` with its first seq, and the change log has the
//! gap-free seqs 1..n with each acknowledged opId once, at the seq it was
//! acknowledged with. The next round goes on over the same data, so the
//! state accumulates.
//!
//! `SYNC_CRASH_ROUNDS` sets the number of rounds (default 20) and
//! `SYNC_CRASH_SEED` replays a seed; the seed is printed first.
//! Once more than `FULL_CHECK_MAX` operations were acknowledged, a round
//! re-sends its own operations and a rotating window of older ones and
//! reads the log from where the last round stopped (checking that no opId
//! appears twice in the whole log); every `FULL_CHECK_EVERY` rounds and in
//! the last round everything is checked again from the start.

// The rounds report their figures on stderr (`--nocapture` shows them).
#![allow(clippy::print_stderr)]

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use sync_testkit::{ChildServer, Random, seed};
use tokio_tungstenite::connect_async;
use tokio_tungstenite::tungstenite::Message;

const WS_WRITERS: usize = 64;
const BULK_BATCH: usize = 100;
const RESEND_CHUNK: usize = 500;
const PAGE: usize = 10_000;
/// Up to this many acknowledged operations, every round checks them all.
const FULL_CHECK_MAX: usize = 3_000;
/// Older operations re-sent per round once past `FULL_CHECK_MAX`.
const OLDER_WINDOW: usize = 1_000;
/// Past `FULL_CHECK_MAX`, a full check every this many rounds.
const FULL_CHECK_EVERY: u64 = 10;

/// Limits raised so the writers and the re-sends are never rate limited.
const CONFIG: &str = "compaction_interval_secs = 0\n\
    [limits]\n\
    operations_per_second = 100000000\n\
    operations_burst = 100000000\n\
    connections_per_user_max = 100000\n";

/// An acknowledged operation: its opId and the seq it was acknowledged at.
#[derive(Debug, Clone)]
struct Acked {
    op_id: String,
    seq: u64,
}

/// Starts the server binary over `dir` with `config`, its output appended
/// to `log`.
async fn start_server(dir: &Path, config: &Path, log: &Path) -> ChildServer {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sync-server"));
    command
        .arg("--config")
        .arg(config)
        .args(["--store", "sled", "--durability", "fsync"])
        .arg("--data-dir")
        .arg(dir)
        .env("RUST_LOG", "warn");
    ChildServer::start(command, Some(log)).await
}

fn text(value: &Value) -> Message {
    Message::Text(value.to_string().into())
}

/// One WebSocket writer: hello, then inserts one at a time until the
/// server dies or `stop` is set. Returns what was acknowledged and the
/// unexpected answers.
async fn ws_writer(
    addr: String,
    round: u64,
    writer: usize,
    stop: Arc<AtomicBool>,
    acks: Arc<AtomicUsize>,
) -> (Vec<Acked>, Vec<String>) {
    let mut acked = Vec::new();
    let mut odd = Vec::new();
    let mut socket = match connect_async(format!("ws://{addr}/ws")).await {
        Ok((socket, _)) => socket,
        Err(error) => {
            if !stop.load(Ordering::Relaxed) {
                odd.push(format!("connect: {error}"));
            }
            return (acked, odd);
        }
    };
    let device = format!("crash-ws-{writer}");
    if socket
        .send(text(&json!({"type": "hello", "deviceId": device})))
        .await
        .is_err()
    {
        return (acked, odd);
    }
    let welcome = tokio::time::timeout(Duration::from_secs(10), socket.next()).await;
    match welcome {
        Ok(Some(Ok(Message::Text(frame)))) if frame.contains("\"welcome\"") => {}
        Ok(Some(Ok(Message::Text(frame)))) => {
            odd.push(format!("instead of welcome: {frame}"));
            return (acked, odd);
        }
        other => {
            if !stop.load(Ordering::Relaxed) {
                odd.push(format!("no welcome: {other:?}"));
            }
            return (acked, odd);
        }
    }
    let mut n = 0u64;
    'writes: while !stop.load(Ordering::Relaxed) {
        let op_id = format!("r{round}-w{writer}-{n}");
        n += 1;
        let insert = json!({"type": "insert", "collection": "crash", "recordId": op_id,
                            "opId": op_id, "data": {"writer": writer, "n": n}});
        if socket.send(text(&insert)).await.is_err() {
            break;
        }
        loop {
            let frame = tokio::time::timeout(Duration::from_secs(10), socket.next()).await;
            let frame = match frame {
                Ok(Some(Ok(Message::Text(frame)))) => frame,
                Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
                Ok(Some(Ok(Message::Close(_)))) | Ok(Some(Err(_))) | Ok(None) => {
                    if !stop.load(Ordering::Relaxed) {
                        odd.push(format!("connection ended: {frame:?}"));
                    }
                    break 'writes;
                }
                Ok(Some(Ok(other))) => {
                    odd.push(format!("unexpected frame {other:?}"));
                    break 'writes;
                }
                Err(_) => {
                    odd.push(format!("no answer to {op_id} within 10 s"));
                    break 'writes;
                }
            };
            let answer: Value = serde_json::from_str(&frame).unwrap();
            if answer["type"] == "ack" && answer["opId"] == op_id.as_str() {
                match (answer["status"].as_str(), answer["seq"].as_u64()) {
                    (Some("success"), Some(seq)) => {
                        acked.push(Acked {
                            op_id: op_id.clone(),
                            seq,
                        });
                        acks.fetch_add(1, Ordering::Relaxed);
                    }
                    _ => odd.push(format!("ack of a fresh insert: {answer}")),
                }
                break;
            }
            odd.push(format!("answer to {op_id}: {answer}"));
            break 'writes;
        }
    }
    (acked, odd)
}

/// The bulk-sync writer: batches of creates until the server dies or
/// `stop` is set.
async fn bulk_writer(
    addr: String,
    round: u64,
    stop: Arc<AtomicBool>,
    acks: Arc<AtomicUsize>,
) -> (Vec<Acked>, Vec<String>) {
    let client = reqwest::Client::new();
    let mut acked = Vec::new();
    let mut odd = Vec::new();
    let mut batch = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let operations: Vec<Value> = (0..BULK_BATCH)
            .map(|i| {
                let op_id = format!("r{round}-b{batch}-{i}");
                json!({"opId": op_id, "action": "create", "collection": "crash",
                       "id": op_id, "data": {"batch": batch, "i": i}})
            })
            .collect();
        batch += 1;
        let sent = client
            .post(format!("http://{addr}/v1/sync"))
            .json(&json!({"deviceId": "crash-bulk", "operations": operations}))
            .timeout(Duration::from_secs(20))
            .send()
            .await;
        let response = match sent {
            Ok(response) => response,
            Err(error) => {
                if !stop.load(Ordering::Relaxed) {
                    odd.push(format!("bulk sync: {error}"));
                }
                break;
            }
        };
        let status = response.status();
        let Ok(body) = response.json::<Value>().await else {
            break;
        };
        if !status.is_success() {
            odd.push(format!("bulk sync answered {status}: {body}"));
            break;
        }
        let results = body["results"].as_array().cloned().unwrap_or_default();
        if results.len() != BULK_BATCH {
            odd.push(format!("bulk sync answered {} results", results.len()));
        }
        for (op, result) in operations.iter().zip(&results) {
            match (result["status"].as_str(), result["seq"].as_u64()) {
                (Some("success"), Some(seq)) if result["opId"] == op["opId"] => {
                    acked.push(Acked {
                        op_id: op["opId"].as_str().unwrap().to_owned(),
                        seq,
                    });
                    acks.fetch_add(1, Ordering::Relaxed);
                }
                _ => odd.push(format!("bulk result for {}: {result}", op["opId"])),
            }
        }
    }
    (acked, odd)
}

/// Sends `ops` again in chunks; every result must be `duplicate` at its
/// first seq.
async fn resend(client: &reqwest::Client, server: &ChildServer, ops: &[Acked], seed: u64) {
    for chunk in ops.chunks(RESEND_CHUNK) {
        let operations: Vec<Value> = chunk
            .iter()
            .map(|op| {
                json!({"opId": op.op_id, "action": "upsert", "collection": "crash",
                       "id": op.op_id, "data": {"again": true}})
            })
            .collect();
        let response = client
            .post(server.url("/v1/sync"))
            .json(&json!({"deviceId": "crash-check", "operations": operations}))
            .timeout(Duration::from_secs(60))
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_success(),
            "re-send answered {} (seed {seed})",
            response.status()
        );
        let body: Value = response.json().await.unwrap();
        let results = body["results"].as_array().unwrap();
        assert_eq!(results.len(), chunk.len(), "(seed {seed}) {body}");
        for (op, result) in chunk.iter().zip(results) {
            assert_eq!(
                result["status"], "duplicate",
                "acknowledged {} was not there (seed {seed}): {result}",
                op.op_id
            );
            assert_eq!(
                result["seq"].as_u64(),
                Some(op.seq),
                "{} acknowledged at seq {} (seed {seed}): {result}",
                op.op_id,
                op.seq
            );
        }
    }
}

/// The change log as read so far: opId -> seq, the head and the cursor
/// after it.
#[derive(Debug, Default)]
struct Log {
    seqs: HashMap<String, u64>,
    head: u64,
    cursor: Option<String>,
}

impl Log {
    /// Reads the changes after `self.cursor` and checks they continue the
    /// log without a gap and without an opId seen before.
    async fn read_on(&mut self, client: &reqwest::Client, server: &ChildServer, seed: u64) {
        loop {
            let path = match &self.cursor {
                Some(cursor) => format!("/v1/changes?limit={PAGE}&cursor={cursor}"),
                None => format!("/v1/changes?limit={PAGE}"),
            };
            let response = client
                .get(server.url(&path))
                .timeout(Duration::from_secs(60))
                .send()
                .await
                .unwrap();
            assert!(
                response.status().is_success(),
                "change feed answered {} (seed {seed})",
                response.status()
            );
            let page: Value = response.json().await.unwrap();
            for change in page["changes"].as_array().unwrap() {
                let seq = change["seq"].as_u64().unwrap();
                assert_eq!(
                    seq,
                    self.head + 1,
                    "the log has a gap or a repeat at {} (seed {seed})",
                    self.head
                );
                self.head = seq;
                let op_id = change["opId"].as_str().unwrap().to_owned();
                if let Some(first) = self.seqs.insert(op_id.clone(), seq) {
                    panic!("{op_id} is in the log twice: seqs {first} and {seq} (seed {seed})");
                }
            }
            self.cursor = Some(page["cursor"].as_str().unwrap().to_owned());
            if page["hasMore"] != true {
                return;
            }
        }
    }

    fn check_acknowledged(&self, ops: &[Acked], seed: u64) {
        for op in ops {
            assert_eq!(
                self.seqs.get(&op.op_id),
                Some(&op.seq),
                "acknowledged {} (seq {}) not in the log at its seq (seed {seed})",
                op.op_id,
                op.seq
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_crash_rounds() {
    let rounds: u64 = std::env::var("SYNC_CRASH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let seed = seed("SYNC_CRASH_SEED");
    eprintln!("server crash rounds: running {rounds} rounds");
    let mut random = Random::new(seed);
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let config = root.path().join("sync.toml");
    let server_log = root.path().join("server.log");
    std::fs::write(&config, CONFIG).unwrap();
    let client = reqwest::Client::new();
    let started = Instant::now();
    let mut acknowledged: Vec<Acked> = Vec::new();
    let mut log = Log::default();
    let mut verified_total = 0usize;
    let mut older_from = 0usize;

    let mut server = start_server(&data, &config, &server_log).await;
    for round in 0..rounds {
        let stop = Arc::new(AtomicBool::new(false));
        let acks = Arc::new(AtomicUsize::new(0));
        let mut writers = Vec::new();
        for writer in 0..WS_WRITERS {
            writers.push(tokio::spawn(ws_writer(
                server.addr().to_string(),
                round,
                writer,
                Arc::clone(&stop),
                Arc::clone(&acks),
            )));
        }
        writers.push(tokio::spawn(bulk_writer(
            server.addr().to_string(),
            round,
            Arc::clone(&stop),
            Arc::clone(&acks),
        )));
        // The load phase starts with the first acknowledgement (a restart
        // over a large store may take a moment to serve its first write).
        let first_ack = Instant::now() + Duration::from_secs(20);
        while acks.load(Ordering::Relaxed) == 0 && Instant::now() < first_ack {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let load_ms = 300 + random.next(501);
        if acks.load(Ordering::Relaxed) > 0 {
            tokio::time::sleep(Duration::from_millis(load_ms)).await;
        }
        stop.store(true, Ordering::Relaxed);
        server.kill();
        let mut round_acked = Vec::new();
        let mut odd = Vec::new();
        for writer in writers {
            let (acked, answers) = writer.await.unwrap();
            round_acked.extend(acked);
            odd.extend(answers);
        }
        assert!(
            odd.is_empty(),
            "round {round}: {} unexpected answers or missing answers (a writer waits 10 s for \
             each; when all go unanswered the server is wedged) (seed {seed}): {:?}",
            odd.len(),
            &odd[..odd.len().min(5)]
        );
        assert!(
            !round_acked.is_empty(),
            "round {round}: nothing acknowledged within 20 s of the start (seed {seed})"
        );

        let restart = Instant::now();
        server = start_server(&data, &config, &server_log).await;
        let restart_ms = restart.elapsed().as_millis();
        let verify = Instant::now();
        let before = acknowledged.len();
        acknowledged.extend(round_acked.iter().cloned());
        let full = acknowledged.len() <= FULL_CHECK_MAX
            || round + 1 == rounds
            || (round + 1) % FULL_CHECK_EVERY == 0;
        if full {
            resend(&client, &server, &acknowledged, seed).await;
            let previous = std::mem::take(&mut log);
            log.read_on(&client, &server, seed).await;
            assert!(
                log.head >= previous.head,
                "round {round}: the log shrank from {} to {} (seed {seed})",
                previous.head,
                log.head
            );
            for (op_id, seq) in &previous.seqs {
                assert_eq!(
                    log.seqs.get(op_id),
                    Some(seq),
                    "round {round}: {op_id}, in the log at {seq} before, moved or vanished \
                     (seed {seed})"
                );
            }
            log.check_acknowledged(&acknowledged, seed);
            verified_total += acknowledged.len();
        } else {
            resend(&client, &server, &round_acked, seed).await;
            older_from = older_from.checked_rem(before).unwrap_or(0);
            let older_to = (older_from + OLDER_WINDOW).min(before);
            resend(&client, &server, &acknowledged[older_from..older_to], seed).await;
            log.read_on(&client, &server, seed).await;
            log.check_acknowledged(&round_acked, seed);
            log.check_acknowledged(&acknowledged[older_from..older_to], seed);
            verified_total += round_acked.len() + (older_to - older_from);
            older_from = older_to;
        }
        let verify_ms = verify.elapsed().as_millis();
        eprintln!(
            "round {round}: killed after {load_ms} ms, restart {restart_ms} ms, check \
             {verify_ms} ms, {} acknowledged this round, {} in all, log head {}, {} ({:.1} s)",
            round_acked.len(),
            acknowledged.len(),
            log.head,
            if full { "full check" } else { "partial check" },
            started.elapsed().as_secs_f64()
        );
    }
    server.kill();
    eprintln!(
        "server crash rounds: {rounds} rounds, {} writes acknowledged, {verified_total} \
         verifications, log head {}, seed {seed}, {:.1} s",
        acknowledged.len(),
        log.head,
        started.elapsed().as_secs_f64()
    );
}
