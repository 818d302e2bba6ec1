#![no_main]
//! The command line parser: the input split at NULs is argv after `husk`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| husk_cli::cli::parse_for_fuzzing(data));
