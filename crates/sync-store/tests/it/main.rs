//! Integration tests of the store: the conformance suite every `SyncStore`
//! passes, run here against sled and (when `SYNC_TEST_DATABASE_URL` is set)
//! PostgreSQL, and each store's own tests (durability, several nodes).

mod conformance;
mod crash;
mod postgres;
mod sled_encrypted;
mod sled_store;
mod support;
