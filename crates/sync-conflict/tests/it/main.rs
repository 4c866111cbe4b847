//! Integration tests of the conflict engine: the conflict scenarios of the
//! bulk-sync examples, the configuration format and the properties
//! convergence rests on.

mod properties;
mod scenarios;
mod support;
