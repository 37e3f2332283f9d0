//! libFuzzer driver for `fuzzing::idx`.
#![no_main]

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| fuzzing::idx(bytes));
