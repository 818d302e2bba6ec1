//! Signal names and numbers as `husk kill` accepts them (runc semantics: "KILL", "SIGKILL",
//! "kill" and "9" all mean SIGKILL).

use nix::sys::signal::Signal;

#[derive(Debug, thiserror::Error)]
pub enum SignalError {
    #[error("unknown signal {0:?}")]
    Unknown(String),
}

/// Parse a signal given by name (any case, with or without `SIG`) or by number.
/// 0, negative and unknown numbers are errors; so are real-time signals, which `nix`
/// cannot represent as a [`Signal`].
pub fn parse_signal(s: &str) -> Result<Signal, SignalError> {
    let unknown = || SignalError::Unknown(s.to_string());
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        let n: i32 = s.parse().map_err(|_| unknown())?;
        return Signal::try_from(n).map_err(|_| unknown());
    }
    let up = s.to_ascii_uppercase();
    let name = if up.starts_with("SIG") {
        up
    } else {
        format!("SIG{up}")
    };
    let name = match name.as_str() {
        "SIGIOT" => "SIGABRT",
        "SIGPOLL" => "SIGIO",
        "SIGCLD" => "SIGCHLD",
        other => other,
    };
    name.parse::<Signal>().map_err(|_| unknown())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers() {
        for s in ["KILL", "SIGKILL", "kill", "sigkill", "Kill", "9"] {
            assert_eq!(parse_signal(s).unwrap(), Signal::SIGKILL, "{s}");
        }
        assert_eq!(parse_signal("TERM").unwrap(), Signal::SIGTERM);
        assert_eq!(parse_signal("15").unwrap(), Signal::SIGTERM);
        assert_eq!(parse_signal("hup").unwrap(), Signal::SIGHUP);
        assert_eq!(parse_signal("SIGUSR1").unwrap(), Signal::SIGUSR1);
        assert_eq!(parse_signal("WINCH").unwrap(), Signal::SIGWINCH);
        assert_eq!(parse_signal("IOT").unwrap(), Signal::SIGABRT);
        assert_eq!(parse_signal("31").unwrap(), Signal::SIGSYS);
    }

    #[test]
    fn rejects() {
        for s in [
            "",
            "0",
            "-9",
            "+9",
            "65",
            "99999999999",
            "FOO",
            "SIG",
            "SIGKILLX",
            " 9",
            "9 ",
        ] {
            let e = parse_signal(s).unwrap_err();
            assert_eq!(e.to_string(), format!("unknown signal {s:?}"));
        }
    }
}
