//! Integration tests of the store: the conformance suite every `SyncStore`
//! passes, run here against sled, and sled's own durability tests.

mod conformance;
mod crash;
mod sled_store;
mod support;
