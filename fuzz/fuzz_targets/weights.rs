//! libFuzzer driver for `fuzzing::weights`.
#![no_main]

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| fuzzing::weights(bytes));
