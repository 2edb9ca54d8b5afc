//! See `nexus_fuzz_targets::wire_messages`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| nexus_fuzz_targets::wire_messages(data));
