//! Two devices in sync: a server started in-process, two clients with data
//! directories of their own; what one saves shows up in the other's live
//! query. `cargo run -p sync-client --example quickstart`, or
//! `-- https://sync.example.com [ca.pem]` to use a running server (the
//! optional PEM file adds a root certificate, for a private CA).

// An example prints what it shows.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::time::Duration;

use futures::StreamExt;
use serde::Serialize;
use serde_json::json;
use sync_client::{ConnectionState, Order, SyncClient};

#[derive(Serialize)]
struct Todo {
    text: String,
    done: bool,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let mut args = std::env::args().skip(1);
    let mut server = None;
    let url = match args.next() {
        Some(url) => url,
        None => {
            let config = sync_service::Config {
                listen: "127.0.0.1:0".parse()?,
                data_dir: dir.path().join("server"),
                ..sync_service::Config::default()
            };
            let started = sync_service::ServerBuilder::new(config).start().await?;
            let url = format!("http://{}", started.local_addr());
            server = Some(started);
            url
        }
    };
    let ca = args.next().map(std::fs::read).transpose()?;
    let device = |name: &str| {
        let mut builder = SyncClient::builder()
            .server_url(url.clone())
            .data_dir(dir.path().join(name))
            .collections(["todos"]);
        if let Some(pem) = &ca {
            builder = builder.add_root_certificate_pem(pem);
        }
        builder.build()
    };
    let phone = device("phone").await?;
    let laptop = device("laptop").await?;
    laptop
        .connection_state()
        .wait_for(|state| *state == ConnectionState::Connected)
        .await
        .ok_or("the client stopped before it connected")?;

    let mut open = laptop
        .collection("todos")?
        .where_eq("done", false)
        .order_by("text", Order::Ascending)
        .watch();
    let todos = phone.collection("todos")?;
    let id = todos
        .save(Todo {
            text: "Buy milk".into(),
            done: false,
        })
        .await?;
    todos.save(json!({"text": "Walk", "done": false})).await?;
    todos.update(id.as_str(), json!({"done": true})).await?;

    // The laptop's live query: the current result, then each change.
    tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(list) = open.next().await {
            let texts: Vec<_> = list.iter().map(|todo| todo["text"].clone()).collect();
            println!("laptop sees open todos: {texts:?}");
            if texts == [json!("Walk")] {
                break;
            }
        }
    })
    .await?;

    phone.close().await?;
    laptop.close().await?;
    if let Some(server) = server {
        server.shutdown().await?;
    }
    Ok(())
}
