//! Fuzz target `patch_apply`: the body is `sync_fuzz::patch_apply`.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sync_fuzz::patch_apply(data));
