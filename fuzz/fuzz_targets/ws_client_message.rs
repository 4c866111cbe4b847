//! Fuzz target `ws_client_message`: the body is `sync_fuzz::ws_client_message`.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sync_fuzz::ws_client_message(data));
