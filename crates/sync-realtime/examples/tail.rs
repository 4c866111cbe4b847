//! Tails the changes of a collection as the server pushes them.
//!
//! `cargo run -p sync-realtime --example tail -- wss://sync.example.com/ws todos --ca ca.pem`
//! follows a real server (`--ca` adds a root certificate, for a private
//! CA); with no address it starts a server in-process, writes two
//! documents through a second connection and prints their changes.

// An example prints what it shows.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::time::Duration;

use serde_json::json;
use sync_core::realtime::{RealTimeEvent, Subscription};
use sync_core::{Action, Filter, Operation};
use sync_realtime::{ClientConfig, ConnectionState, RealtimeClient, RootCertificate};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let url = args.next();
    let collection = args.next().unwrap_or_else(|| "todos".to_owned());
    let mut roots = Vec::new();
    while let Some(arg) = args.next() {
        if arg == "--ca" {
            let path = args.next().ok_or("--ca needs a PEM file")?;
            roots.extend(RootCertificate::from_pem(&std::fs::read(path)?)?);
        }
    }

    let mut demo = None;
    let url = match url {
        Some(url) => url,
        None => {
            let dir = tempfile::tempdir()?;
            let config = sync_service::Config {
                listen: "127.0.0.1:0".parse()?,
                data_dir: dir.path().join("store"),
                ..sync_service::Config::default()
            };
            let server = sync_service::ServerBuilder::new(config).start().await?;
            let url = format!("ws://{}/ws", server.local_addr());
            demo = Some((server, dir));
            url
        }
    };

    let mut config = ClientConfig::new(url.clone(), "tail-example".parse()?);
    config.root_certificates = roots;
    let client = RealtimeClient::connect(config);
    client.wait_for(ConnectionState::Connected).await;
    client
        .subscribe(Subscription {
            id: None,
            namespace: Default::default(),
            collection: collection.parse()?,
            filter: Filter::all(),
            cursor: None,
        })
        .await?;
    eprintln!("tailing {collection} at {url}");

    if demo.is_some() {
        let writer = RealtimeClient::connect(ClientConfig::new(url, "writer".parse()?));
        writer.wait_for(ConnectionState::Connected).await;
        for (id, text) in [("todo-1", "Buy milk"), ("todo-2", "Walk")] {
            let mut op = Operation::new(Action::Upsert);
            op.collection = Some(collection.parse()?);
            op.id = Some(id.parse()?);
            op.data = Some(serde_json::from_value(json!({ "text": text }))?);
            writer.send(op).await?;
        }
        writer.close().await;
    }

    let mut seen = 0;
    loop {
        let next = tokio::time::timeout(Duration::from_secs(10), client.next_event()).await;
        let event = match next {
            Ok(Some(event)) => event,
            Ok(None) => break,
            // A real server may be quiet for long; the demo is done.
            Err(_) if demo.is_some() => return Err("no change within 10 s".into()),
            Err(_) => continue,
        };
        if let RealTimeEvent::Change { change, .. } = event {
            println!(
                "{} {:?} {}/{} v{} {}",
                change.seq.0,
                change.op,
                change.collection,
                change.id,
                change.version.0,
                serde_json::to_string(&change.delta)?
            );
            seen += 1;
        }
        if demo.is_some() && seen == 2 {
            break;
        }
    }
    client.close().await;
    if let Some((server, _dir)) = demo {
        server.shutdown().await?;
    }
    Ok(())
}
