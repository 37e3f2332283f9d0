//! libFuzzer driver for `fuzzing::image`.
#![no_main]

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| fuzzing::image(bytes));
