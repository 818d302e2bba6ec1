//! `husk`: the runc-compatible command line over `husk_runtime`.
//!
//! Parse the arguments, set up logging, run the command, and turn its outcome into an exit code:
//! 0 on success, the container's status for a foreground `run` or an `exec`, 1 on any error or
//! usage error, except that a failed `exec` exits 255 with "exec failed: ..." as runc's does
//! (so that a caller can tell it from a process that exited 1).

use std::error::Error as StdError;
use std::io::{self, Write};
use std::process::exit;

use clap::{CommandFactory, Parser};

use husk_cli::{cli, commands, logging};

use cli::Cli;
use logging::{Destination, Logger};

fn main() {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // Help goes to stdout with 0; usage errors to stderr with 1, as runc exits.
            let code = if e.use_stderr() { 1 } else { 0 };
            let _ = e.print();
            exit(code);
        }
    };
    if cli.version {
        let _ = io::stdout().write_all(commands::version_text().as_bytes());
        exit(0);
    }
    if cli.command.is_none() {
        let _ = Cli::command().write_help(&mut io::stderr());
        exit(1);
    }

    let dest = match Destination::open(cli.log.as_deref()) {
        Ok(d) => d,
        Err(e) => {
            let _ = writeln!(io::stderr(), "{e}");
            exit(1);
        }
    };
    let log_to_stderr = dest.is_stderr();
    if let Err(e) = logging::install(Logger::new(cli.log_format, cli.debug, dest)) {
        let _ = writeln!(io::stderr(), "{e}");
    }

    match commands::dispatch(&cli) {
        Ok(code) => exit(code),
        Err(e) => {
            let exec = matches!(cli.command, Some(cli::Command::Exec(_)));
            let msg = match exec {
                true => format!("exec failed: {}", error_chain(&e)),
                false => error_chain(&e),
            };
            tracing::error!("{msg}");
            // As runc: the error goes to the log, and to stderr too when the log is a file.
            if !log_to_stderr {
                let _ = writeln!(io::stderr(), "{msg}");
            }
            exit(if exec { 255 } else { 1 });
        }
    }
}

/// The error's message followed by each cause that its message does not already include.
fn error_chain(err: &dyn StdError) -> String {
    let mut msg = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let m = s.to_string();
        if !msg.contains(&m) {
            msg.push_str(": ");
            msg.push_str(&m);
        }
        source = s.source();
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    enum Outer {
        #[error("reading /x")]
        Hidden(#[source] io::Error),
        #[error("reading /y: {0}")]
        Shown(#[source] io::Error),
    }

    #[test]
    fn chain_adds_missing_causes_once() {
        let e = Outer::Hidden(io::Error::other("EACCES"));
        assert_eq!(error_chain(&e), "reading /x: EACCES");
        let e = Outer::Shown(io::Error::other("EACCES"));
        assert_eq!(error_chain(&e), "reading /y: EACCES");
    }
}
