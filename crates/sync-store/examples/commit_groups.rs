//! Commits groups of 64 new documents to a sled store without fsync, to
//! count what the committer spends on a write under
//! `valgrind --tool=callgrind --separate-threads=yes` (instruction counts
//! do not move with the machine's load, as timings do):
//!
//! ```text
//! cargo build --release -p sync-store --example commit_groups
//! valgrind --tool=callgrind --separate-threads=yes \
//!     target/release/examples/commit_groups --groups 200 --document-bytes 1000
//! ```
//!
//! Timed figures come from `cargo xtask bench`, not from here.

// An example prints what it did.
#![allow(clippy::print_stdout)]

use sync_core::store::{CommitOutcome, Write, WriteEffect};
use sync_core::{Action, ChangeOp, DocKey, Hlc, JsonObject, NodeId, OpResult, OpStatus, Version};
use sync_store::{Durability, SledStore, StoreConfig};

/// The server's allocator, so the counts are the server's.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

const GROUP_WRITES: usize = 64;

/// The insert of document `n`, with `bytes` bytes of text.
fn insert(n: usize, bytes: usize) -> Result<Write, Box<dyn std::error::Error>> {
    let id = format!("d{n}");
    let op_id = format!("op-{n}");
    let mut data = JsonObject::new();
    data.insert("n".into(), n.into());
    data.insert("text".into(), "x".repeat(bytes).into());
    let mut result = OpResult::new(Action::Create, OpStatus::Success);
    result.op_id = Some(op_id.parse()?);
    Ok(Write {
        op_id: op_id.parse()?,
        key: DocKey::new("default".parse()?, "todos".parse()?, id.parse()?),
        expected_version: Version::ZERO,
        effect: WriteEffect::Change {
            op: ChangeOp::Insert,
            delta: data.clone(),
            data,
            field_clocks: Default::default(),
            timestamp: Hlc::new(1_700_000_000_000, 0, NodeId(1)).ok_or("a timestamp")?,
        },
        device_id: None,
        user: None,
        result,
        conflict: None,
        resolves: None,
    })
}

/// The value after `flag` in the arguments, or `default`.
fn argument(flag: &str, default: usize) -> Result<usize, Box<dyn std::error::Error>> {
    let arguments: Vec<String> = std::env::args().collect();
    match arguments.iter().position(|argument| argument == flag) {
        Some(at) => Ok(arguments.get(at + 1).ok_or("a value")?.parse()?),
        None => Ok(default),
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let groups = argument("--groups", 200)?;
    let bytes = argument("--document-bytes", 100)?;
    let dir = tempfile::tempdir()?;
    let config = StoreConfig {
        durability: Durability::Os,
        ..StoreConfig::default()
    };
    let store = SledStore::open(dir.path(), config)?;
    for group in 0..groups {
        let writes = (0..GROUP_WRITES)
            .map(|i| insert(group * GROUP_WRITES + i, bytes))
            .collect::<Result<Vec<_>, _>>()?;
        let outcomes = sync_core::SyncStore::apply(&store, writes).await?;
        if !outcomes
            .iter()
            .all(|outcome| matches!(outcome, CommitOutcome::Committed(_)))
        {
            return Err("a write did not commit".into());
        }
    }
    store.close()?;
    println!(
        "{} writes of {bytes}-byte documents in {groups} groups",
        groups * GROUP_WRITES
    );
    Ok(())
}
