//! Fuzz target `cursor`: the body is `sync_fuzz::cursor`.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sync_fuzz::cursor(data));
