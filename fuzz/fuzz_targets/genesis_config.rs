//! See `nexus_fuzz_targets::genesis_config`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| nexus_fuzz_targets::genesis_config(data));
