//! libFuzzer driver for `fuzzing::exif`.
#![no_main]

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| fuzzing::exif(bytes));
