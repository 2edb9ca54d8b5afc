//! See `nexus_fuzz_targets::das_sample`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| nexus_fuzz_targets::das_sample(data));
