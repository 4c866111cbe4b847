//! Diffs two versions of a document in the three formats and applies each
//! diff back: `cargo run -p sync-diff --example diff`.

// An example prints what it shows.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use serde_json::json;
use sync_core::DiffCalculator;
use sync_diff::{FieldDeltaDiff, JsonPatchDiff, MergePatchDiff};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let old = json!({"title": "Buy milk", "tags": ["home"], "done": false, "note": "2 l"});
    let new = json!({"title": "Buy oat milk", "tags": ["home", "shop"], "done": false});

    // RFC 7386: the changed members, `null` removing one.
    let merge = MergePatchDiff.diff(&old, &new);
    println!("merge patch: {merge}");
    assert_eq!(MergePatchDiff.apply(&old, &merge)?, new);

    // RFC 6902: precise operations, applied all or nothing.
    let patch = JsonPatchDiff.diff(&old, &new);
    println!("JSON Patch:  {}", serde_json::to_string(&patch)?);
    assert_eq!(JsonPatchDiff.apply(&old, &patch)?, new);

    // Field deltas: added, modified and removed values by path.
    let delta = FieldDeltaDiff.diff(&old, &new);
    println!("field delta: {}", serde_json::to_string(&delta)?);
    assert_eq!(FieldDeltaDiff.apply(&old, &delta)?, new);
    Ok(())
}
