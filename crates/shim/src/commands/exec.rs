//! `exec`: run one more process inside a container.

use husk_runtime::lifecycle::ExecOpts;
use husk_runtime::Runtime;

use super::{absolute, Result};
use crate::cli::ExecArgs;

/// The library's options, with every relative path made absolute against the cwd.
fn exec_opts(a: &ExecArgs) -> Result<ExecOpts> {
    let abs = |what, p: &Option<std::path::PathBuf>| -> Result<_> {
        p.as_deref().map(|p| absolute(what, p)).transpose()
    };
    Ok(ExecOpts {
        process: abs("--process", &a.process)?,
        args: a.command.clone(),
        detach: a.detach,
        pid_file: abs("--pid-file", &a.pid_file)?,
        console_socket: abs("--console-socket", &a.console_socket)?,
        tty: a.tty,
        cwd: a.cwd.clone(),
        env: a.env.clone(),
        user: a.user.clone(),
        additional_gids: a.additional_gids.clone(),
        caps: a.cap.clone(),
        no_new_privs: a.no_new_privs,
        process_label: a.process_label.clone(),
        apparmor: a.apparmor.clone(),
        preserve_fds: a.preserve_fds,
        ignore_paused: a.ignore_paused,
        cgroup: a.cgroup.clone(),
    })
}

/// Foreground: the process's exit code (or 128+signal). Detached: 0 once it runs.
pub fn exec(rt: &Runtime, a: &ExecArgs) -> Result<i32> {
    Ok(rt.exec(&a.id, &exec_opts(a)?)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn paths_are_absolute_and_flags_carried() {
        let cli = crate::cli::Cli::try_parse_from([
            "husk",
            "exec",
            "-p",
            "p.json",
            "--pid-file",
            "x.pid",
            "--cwd",
            "rel",
            "-t",
            "id",
        ])
        .expect("parse");
        let Some(crate::cli::Command::Exec(a)) = cli.command else {
            panic!("not exec")
        };
        let o = exec_opts(&a).expect("opts");
        let cwd = std::env::current_dir().expect("cwd");
        assert_eq!(o.process, Some(cwd.join("p.json")));
        assert_eq!(o.pid_file, Some(cwd.join("x.pid")));
        // --cwd is a path inside the container: left as given (the library rejects it).
        assert_eq!(o.cwd, Some("rel".into()));
        assert!(o.tty && !o.detach);
    }
}
