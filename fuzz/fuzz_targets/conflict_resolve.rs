//! Fuzz target `conflict_resolve`: the body is `sync_fuzz::conflict_resolve`.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sync_fuzz::conflict_resolve(data));
