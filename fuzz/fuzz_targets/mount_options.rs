#![no_main]
//! The mount option parser (husk_runtime::fuzzing::mount_options).

libfuzzer_sys::fuzz_target!(|data: &[u8]| husk_runtime::fuzzing::mount_options(data));
