//! Fuzz target `sync_request`: the body is `sync_fuzz::sync_request`.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sync_fuzz::sync_request(data));
