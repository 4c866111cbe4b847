//! Integration tests of the offline queue, a module per feature: the model
//! check, persistence, ordering, coalescing, backoff, the inspection API and
//! a crash test that kills a real process.

mod api;
mod backoff;
mod coalescing;
mod crash;
mod ordering;
mod persistence;
mod properties;
mod support;
