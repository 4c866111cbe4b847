//! Integration tests of sync-diff: properties over random documents and
//! arbitrary input.

mod properties;
mod strategies;
