//! Tests of `syncctl`, the binary itself run as a child against real
//! servers started in this process on ephemeral ports.

mod backup;
mod commands;
mod support;
mod tail;
mod transfer;
