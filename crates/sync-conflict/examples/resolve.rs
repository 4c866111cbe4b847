//! Seed 004's conflict: a visitor's record whose `title` the server changed
//! to "Director of Operations" while a client, offline, changed it to
//! "Senior Manager", and whose `interests` both sides extended. Resolved
//! under every strategy: `cargo run -p sync-conflict --example resolve`.

// An example prints what it shows.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::collections::BTreeMap;

use serde_json::json;
use sync_conflict::{
    Base, ClientEdit, ConflictConfig, ConflictEngine, ResolveRequest, ServerState,
};
use sync_core::{DocKey, Hlc, JsonObject, NodeId, Strategy};

fn object(value: serde_json::Value) -> Result<JsonObject, serde_json::Error> {
    serde_json::from_value(value)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let key = DocKey::new("default".parse()?, "visitors".parse()?, "v-1".parse()?);
    let base = object(json!({
        "name": "John Smith",
        "title": "Manager",
        "interests": ["technology", "innovation"],
    }))?;
    let server = object(json!({
        "name": "John Smith",
        "title": "Director of Operations",
        "interests": ["technology", "innovation", "leadership"],
    }))?;
    let patch = object(json!({
        "title": "Senior Manager",
        "interests": ["technology", "innovation", "AI"],
    }))?;
    let clocks = BTreeMap::new();
    let at = |ms, node| Hlc::new(ms, 0, NodeId(node)).ok_or("a time past year 9999");
    let engine = ConflictEngine::new(ConflictConfig::default());
    for strategy in [
        Strategy::Merge,
        Strategy::Lww,
        Strategy::ServerWins,
        Strategy::ClientWins,
        Strategy::Manual,
    ] {
        let outcome = engine.resolve(&ResolveRequest {
            key: &key,
            base: Base::Document(&base),
            server: ServerState {
                data: &server,
                deleted: false,
                field_clocks: &clocks,
                updated_at: at(1_000, 1)?,
            },
            edit: ClientEdit::Update(&patch),
            client_time: at(2_000, 2)?,
            strategy: Some(strategy),
        });
        println!(
            "{:<11} {:?} title={} interests={} conflicts={:?}{}",
            strategy.to_string(),
            outcome.status,
            outcome.data["title"],
            outcome.data["interests"],
            outcome.conflict_fields,
            if outcome.pending {
                " (left pending)"
            } else {
                ""
            },
        );
    }
    Ok(())
}
