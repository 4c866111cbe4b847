//! The conflict engine: what happens when a client's edit meets a server
//! document that changed since the client last saw it.
//!
//! **The server decides once.** Replicas converge because only the server
//! resolves conflicts: it stores the outcome as the next version and every
//! client adopts it, then replays its still-pending edits on top
//! ([`rebase`]). Resolution is therefore a pure, deterministic function of
//! its input ([`ConflictEngine::resolve`]): no I/O, no clock, no randomness.
//!
//! **Detection is three-way.** With the client's base document, a field is
//! in conflict when both sides changed it since the base to different values;
//! nested objects are compared field by field and reported by dotted path
//! (`address.city`). A field only one side changed merges without conflict.
//! Without a base but with the client's last sync point, a field the client
//! sends is in conflict when the server changed it after that point. With
//! neither, every field the client sends with a value different from the
//! server's is in conflict and last-write-wins decides.
//!
//! **Strategies** (per collection, overridable per request): `merge` merges
//! arrays of scalars three-way, recurses into objects, merges strings as text
//! (both sides' edits apply; where both changed the same words, the later
//! write's words are kept) and falls back to last-write-wins; `lww`
//! keeps the later write per field, comparing the client's time with the
//! field's clock (when the server last wrote that field), so the outcome
//! does not depend on arrival order; `server_wins` and `client_wins` name
//! the winner; `manual` applies the fields without conflict, keeps the
//! server's values for the rest and leaves the conflict pending; `custom`
//! calls the application's [`sync_core::ConflictResolver`]. Named
//! [`FieldRule`]s (`union`, `concat`, `max`, ...) override the strategy for
//! single fields.
//!
//! ```
//! use std::collections::BTreeMap;
//! use serde_json::json;
//! use sync_conflict::{Base, ClientEdit, ConflictEngine, ResolveRequest, ServerState};
//! use sync_core::{DocKey, Hlc, NodeId, OpStatus};
//!
//! let key = DocKey::new("default".parse()?, "visitors".parse()?, "v-1".parse()?);
//! let obj = serde_json::from_value::<sync_core::JsonObject>;
//! let base = obj(json!({"interests": ["technology", "innovation"], "title": "Dev"}))?;
//! let server = obj(json!({"interests": ["technology", "innovation", "leadership"], "title": "Dev"}))?;
//! let patch = obj(json!({"interests": ["technology", "innovation", "AI"]}))?;
//! let clocks = BTreeMap::new();
//! let at = |ms, node| Hlc::new(ms, 0, NodeId(node)).ok_or("a time past year 9999");
//! let outcome = ConflictEngine::default().resolve(&ResolveRequest {
//!     key: &key,
//!     base: Base::Document(&base),
//!     server: ServerState { data: &server, deleted: false, field_clocks: &clocks,
//!                           updated_at: at(1_000, 1)? },
//!     edit: ClientEdit::Update(&patch),
//!     client_time: at(2_000, 2)?,
//!     strategy: None,
//! });
//! assert_eq!(outcome.status, OpStatus::Merged);
//! assert_eq!(outcome.data["interests"], json!(["technology", "innovation", "AI", "leadership"]));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod config;
mod engine;

pub use config::{CollectionConfig, ConflictConfig, FieldRule};
pub use engine::{
    Base, ClientEdit, ConflictEngine, Outcome, RecordContext, ResolveRequest, ServerState,
    merge_arrays, rebase,
};

/// The README's example, compiled (and run where it can) as a doctest.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
