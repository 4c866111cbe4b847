//! A terminal todo list on the sync engine: two people run it against the
//! same server and see each other's changes as they arrive, online or not.
//!
//! ```text
//! cargo run --release -p sync-service &
//! cargo run -p sync-client --example todo -- --server http://127.0.0.1:7700 --data-dir ./todo-a
//! cargo run -p sync-client --example todo -- --server http://127.0.0.1:7700 --data-dir ./todo-b
//! ```
//!
//! Commands: `add <text>`, `done <n>`, `rm <n>`, `list`, `sync`, `quit`.

use std::io::Write;

use futures::StreamExt;
use serde_json::{Value, json};
use sync_client::{JsonObject, Order, SyncClient, SyncEvent};
use tokio::io::{AsyncBufReadExt, BufReader};

fn say(line: &str) {
    let mut out = std::io::stdout();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn show(todos: &[JsonObject]) {
    say("---- todos ----");
    if todos.is_empty() {
        say("(nothing to do)");
    }
    for (n, todo) in todos.iter().enumerate() {
        let done = todo.get("done").and_then(Value::as_bool).unwrap_or(false);
        let text = todo.get("text").and_then(Value::as_str).unwrap_or("");
        say(&format!(
            "{:>3}. [{}] {text}",
            n + 1,
            if done { "x" } else { " " }
        ));
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut server = "http://127.0.0.1:7700".to_owned();
    let mut data_dir = "./todo-data".to_owned();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--server" => server = args.next().ok_or("--server needs a value")?,
            "--data-dir" => data_dir = args.next().ok_or("--data-dir needs a value")?,
            other => return Err(format!("unknown argument {other:?}").into()),
        }
    }
    let client = SyncClient::builder()
        .server_url(&server)
        .data_dir(&data_dir)
        .collections(["todos"])
        .device_info("todo example", std::env::consts::OS)
        .build()
        .await?;
    say(&format!(
        "device {} syncing with {server}",
        client.device_id()
    ));
    let todos = client.collection("todos")?;

    // The list as the terminal shows it, in creation order.
    let mut live = todos
        .query()
        .order_by("createdAt", Order::Ascending)
        .watch();
    let mut events = client.events();
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut current: Vec<JsonObject> = Vec::new();
    loop {
        tokio::select! {
            Some(list) = live.next() => {
                current = list;
                show(&current);
            }
            Some(event) = events.recv() => match event {
                SyncEvent::Connected { .. } => say("(online)"),
                SyncEvent::Disconnected => say("(offline: changes are kept and sent later)"),
                SyncEvent::Insert { .. } | SyncEvent::Update { .. } | SyncEvent::Delete { .. } => {
                    say("(update from another device)");
                }
                SyncEvent::ConflictResolved { id, strategy, .. } => {
                    say(&format!("(conflict on {id} resolved by {strategy:?})"));
                }
                SyncEvent::Error { message } => say(&format!("(sync error: {message})")),
                _ => {}
            },
            line = lines.next_line() => {
                let Some(line) = line? else { break };
                let (command, rest) = line.trim().split_once(' ').unwrap_or((line.trim(), ""));
                let pick = |rest: &str| -> Option<String> {
                    let n: usize = rest.trim().parse().ok()?;
                    current.get(n.checked_sub(1)?)?.get("id")?.as_str().map(str::to_owned)
                };
                let outcome = match command {
                    "add" if !rest.is_empty() => todos
                        .save(json!({
                            "text": rest,
                            "done": false,
                            "createdAt": std::time::SystemTime::now()
                                .duration_since(std::time::UNIX_EPOCH)
                                .map_or(0, |d| d.as_millis() as u64),
                        }))
                        .await
                        .map(drop),
                    "done" => match pick(rest) {
                        Some(id) => todos.update(&id, json!({"done": true})).await,
                        None => { say("no such todo"); Ok(()) }
                    },
                    "rm" => match pick(rest) {
                        Some(id) => todos.delete(&id).await,
                        None => { say("no such todo"); Ok(()) }
                    },
                    "list" => { show(&current); Ok(()) }
                    "sync" => client.sync_now().await,
                    "quit" | "exit" => break,
                    "" => Ok(()),
                    _ => { say("commands: add <text>, done <n>, rm <n>, list, sync, quit"); Ok(()) }
                };
                if let Err(error) = outcome {
                    say(&format!("error: {error}"));
                }
            }
        }
    }
    drop(live);
    client.close().await?;
    Ok(())
}
