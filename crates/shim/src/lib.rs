//! The `husk` command line as a library: the parser (which the fuzz target and the tests
//! drive), the commands and logging. `main.rs` is the binary over it.

pub mod cli;
pub mod commands;
pub mod logging;
