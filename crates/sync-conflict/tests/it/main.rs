//! Integration tests of the conflict engine: seed 004's scenarios, the
//! configuration format and the properties convergence rests on.

mod properties;
mod scenarios;
mod support;
