#![no_main]
//! The seccomp compiler (husk_runtime::fuzzing::seccomp).

libfuzzer_sys::fuzz_target!(|data: &[u8]| husk_runtime::fuzzing::seccomp(data));
