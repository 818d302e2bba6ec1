#![no_main]
//! The state.json reader (husk_runtime::fuzzing::state).

libfuzzer_sys::fuzz_target!(|data: &[u8]| husk_runtime::fuzzing::state(data));
