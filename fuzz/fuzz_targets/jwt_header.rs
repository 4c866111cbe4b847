//! Fuzz target `jwt_header`: the body is `sync_fuzz::jwt_header`.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sync_fuzz::jwt_header(data));
