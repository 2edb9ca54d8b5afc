//! See `nexus_fuzz_targets::consensus`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| nexus_fuzz_targets::consensus(data));
