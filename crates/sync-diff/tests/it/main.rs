//! Integration tests of sync-diff: properties over random documents and
//! arbitrary input, the optimised code against its reference forms, and
//! the three-way text merge.

mod owned;
mod properties;
mod reference;
mod rewrites;
mod strategies;
mod text_merge;
