//! Integration tests of sync-diff: properties over random documents and
//! arbitrary input, and the three-way text merge.

mod properties;
mod strategies;
mod text_merge;
