//! Fuzz target bodies: one function per target, taking the fuzzer's bytes.
//!
//! Each function feeds the bytes to the code that reads untrusted input on
//! the server (WebSocket messages, sync request bodies, cursors, times,
//! bearer tokens) or to a pure engine the server runs on client data
//! (merge patches and JSON Patch, the three-way text merge, the conflict
//! engine), and checks properties of what comes out: round trips, the
//! agreement of two ways of computing the same thing, the documented laws
//! of each engine. A function returns normally for every input unless a
//! property is broken; then it panics with what broke, which is what
//! libFuzzer reports as a crash.
//!
//! The cargo-fuzz project in `fuzz/` has one target per function (each
//! only calls it), and `tests/replay.rs` runs every kept corpus and
//! regression input through [`run`], so CI replays them without libFuzzer.

mod conflict;
mod cursor;
mod jwt;
mod patch;
mod split;
mod sync_request;
mod text;
mod time;
mod ws;

pub use conflict::conflict_resolve;
pub use cursor::cursor;
pub use jwt::jwt_header;
pub use patch::patch_apply;
pub use sync_request::sync_request;
pub use text::text_merge3;
pub use time::time_parse;
pub use ws::ws_client_message;

/// Every target, by the name of its function and of its `fuzz/` binary.
pub const TARGETS: [&str; 8] = [
    "ws_client_message",
    "sync_request",
    "cursor",
    "jwt_header",
    "patch_apply",
    "text_merge3",
    "conflict_resolve",
    "time_parse",
];

/// Runs the target named `target` on `data`; `false` when there is no such
/// target.
pub fn run(target: &str, data: &[u8]) -> bool {
    let body: fn(&[u8]) = match target {
        "ws_client_message" => ws_client_message,
        "sync_request" => sync_request,
        "cursor" => cursor,
        "jwt_header" => jwt_header,
        "patch_apply" => patch_apply,
        "text_merge3" => text_merge3,
        "conflict_resolve" => conflict_resolve,
        "time_parse" => time_parse,
        _ => return false,
    };
    body(data);
    true
}
