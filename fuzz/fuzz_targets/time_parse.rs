//! Fuzz target `time_parse`: the body is `sync_fuzz::time_parse`.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sync_fuzz::time_parse(data));
