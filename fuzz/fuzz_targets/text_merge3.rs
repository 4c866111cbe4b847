//! Fuzz target `text_merge3`: the body is `sync_fuzz::text_merge3`.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sync_fuzz::text_merge3(data));
