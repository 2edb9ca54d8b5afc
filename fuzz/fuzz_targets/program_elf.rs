//! See `nexus_fuzz_targets::program_elf`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| nexus_fuzz_targets::program_elf(data));
