//! See `nexus_fuzz_targets::api_json`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| nexus_fuzz_targets::api_json(data));
