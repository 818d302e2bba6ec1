//! The lifecycle commands: create, start, run, state, kill, delete.

use husk_runtime::signals::parse_signal;
use husk_runtime::{CreateOpts, Runtime};
use nix::sys::signal::Signal;

use super::{absolute, print_stdout, to_json_indented, CliError, Result};
use crate::cli::{CreateArgs, CreateFlags, DeleteArgs, KillArgs, RunArgs};

/// The library's options, with every relative path made absolute against the cwd.
fn create_opts(f: &CreateFlags) -> Result<CreateOpts> {
    let abs_opt = |what, p: &Option<std::path::PathBuf>| -> Result<_> {
        p.as_deref().map(|p| absolute(what, p)).transpose()
    };
    Ok(CreateOpts {
        bundle: absolute("--bundle", &f.bundle)?,
        pid_file: abs_opt("--pid-file", &f.pid_file)?,
        console_socket: abs_opt("--console-socket", &f.console_socket)?,
        no_pivot: f.no_pivot,
        no_new_keyring: f.no_new_keyring,
        preserve_fds: f.preserve_fds,
    })
}

pub fn create(rt: &Runtime, a: &CreateArgs) -> Result<i32> {
    rt.create(&a.id, &create_opts(&a.flags)?)?;
    Ok(0)
}

pub fn start(rt: &Runtime, id: &str) -> Result<i32> {
    rt.start(id)?;
    Ok(0)
}

/// Foreground: the container's exit code (or 128+signal). Detached: 0 once started.
pub fn run(rt: &Runtime, a: &RunArgs) -> Result<i32> {
    Ok(rt.run(&a.id, &create_opts(&a.flags)?, a.detach, a.keep)?)
}

/// The state as JSON indented by two spaces, as runc's `json.MarshalIndent(s, "", "  ")`.
pub fn state(rt: &Runtime, id: &str) -> Result<i32> {
    let info = rt.state(id)?;
    let mut out = to_json_indented("the state", &info, b"  ")?;
    out.push(b'\n');
    print_stdout(&out)?;
    Ok(0)
}

/// The signal to send: `--signal`, else the SIGNAL argument, else SIGTERM.
fn kill_signal(a: &KillArgs) -> Result<Signal> {
    match a.signal_flag.as_deref().or(a.signal.as_deref()) {
        None => Ok(Signal::SIGTERM),
        Some(s) => parse_signal(s).map_err(|e| CliError::Runtime(e.into())),
    }
}

pub fn kill(rt: &Runtime, a: &KillArgs) -> Result<i32> {
    rt.kill(&a.id, kill_signal(a)?, a.all)?;
    Ok(0)
}

/// `delete --force` of a container that does not exist succeeds silently, as with runc:
/// podman and containerd call it to clean up after a failed create (whose state is gone).
pub fn delete(rt: &Runtime, a: &DeleteArgs) -> Result<i32> {
    match rt.delete(&a.id, a.force) {
        Err(husk_runtime::Error::State(husk_runtime::state::StateError::NotFound(_)))
            if a.force =>
        {
            Ok(0)
        }
        r => r.map(|()| 0).map_err(Into::into),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn kill_args(flag: Option<&str>, arg: Option<&str>) -> KillArgs {
        KillArgs {
            all: false,
            signal_flag: flag.map(String::from),
            id: "x".into(),
            signal: arg.map(String::from),
        }
    }

    #[test]
    fn kill_signal_default_and_forms() {
        assert_eq!(
            kill_signal(&kill_args(None, None)).unwrap(),
            Signal::SIGTERM
        );
        assert_eq!(
            kill_signal(&kill_args(None, Some("9"))).unwrap(),
            Signal::SIGKILL
        );
        assert_eq!(
            kill_signal(&kill_args(Some("KILL"), None)).unwrap(),
            Signal::SIGKILL
        );
        assert_eq!(
            kill_signal(&kill_args(None, Some("sighup"))).unwrap(),
            Signal::SIGHUP
        );
        let err = kill_signal(&kill_args(None, Some("NOPE"))).unwrap_err();
        assert!(err.to_string().contains("NOPE"), "{err}");
    }

    #[test]
    fn create_opts_are_absolute() {
        let cwd = std::env::current_dir().unwrap();
        let f = CreateFlags {
            bundle: PathBuf::from("b"),
            pid_file: Some(PathBuf::from("p.pid")),
            console_socket: Some(PathBuf::from("/abs/sock")),
            no_pivot: true,
            no_new_keyring: false,
            preserve_fds: 3,
        };
        let o = create_opts(&f).unwrap();
        assert_eq!(o.bundle, cwd.join("b"));
        assert_eq!(o.pid_file, Some(cwd.join("p.pid")));
        assert_eq!(o.console_socket, Some(PathBuf::from("/abs/sock")));
        assert!(o.no_pivot && !o.no_new_keyring && o.preserve_fds == 3);
    }
}
