//! The documents the diff benchmark and the `diff_apply_repeat` example
//! work on.

use serde_json::{Value, json};

/// A realistic ~10 KB document: contacts with nested addresses, tag arrays,
/// numbers and free text.
pub(crate) fn document(edited: bool) -> Value {
    let contacts: Vec<Value> = (0..24)
        .map(|i| {
            let changed = edited && i % 10 == 3;
            json!({
                "name": format!("Contact {i}"),
                "title": if changed { "Chief Marketing Officer" } else { "VP Marketing" },
                "email": format!("contact{i}@example.com"),
                "phone": format!("+1-555-01{i:02}"),
                "address": {
                    "street": format!("{i} Main Street"),
                    "city": if changed { "Bergen" } else { "Oslo" },
                    "zip": format!("0{i:03}"),
                },
                "interests": if changed {
                    json!(["marketing", "digital", "analytics", "branding"])
                } else {
                    json!(["marketing", "digital", "analytics"])
                },
                "score": i * 7,
                "active": i % 2 == 0,
                "notes": "Follow up on Q1 campaign discussion; interested in the new product line.",
            })
        })
        .collect();
    json!({"id": "doc-1", "owner": "alice", "version": 3, "contacts": contacts})
}
