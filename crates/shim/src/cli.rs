//! The command line, shaped like runc's: `husk [global options] <command> [options] <args>`.
//!
//! Global options come before the command, as runc (urfave/cli) parses them. Flags that husk
//! accepts for compatibility but ignores are hidden from `--help`, so the help lists only what
//! works.

use std::path::PathBuf;

use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};

/// husk: an OCI container runtime, a drop-in replacement for runc.
#[derive(Debug, Parser)]
#[command(
    name = "husk",
    disable_version_flag = true,
    arg_required_else_help = true,
    after_help = "Global options go before the command, as with runc."
)]
pub struct Cli {
    /// Root directory for the containers' state (keep it on tmpfs) [default: /run/husk; rootless: $XDG_RUNTIME_DIR/husk]
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,

    /// Write log lines to FILE (appended) instead of stderr
    #[arg(long, value_name = "FILE")]
    pub log: Option<PathBuf>,

    /// Format of the log lines
    #[arg(long, value_enum, value_name = "FORMAT", default_value = "text")]
    pub log_format: LogFormat,

    /// Also log debug messages
    #[arg(long)]
    pub debug: bool,

    /// Use the systemd cgroup driver: a transient scope unit per container, cgroupsPath as slice:prefix:name
    #[arg(long)]
    pub systemd_cgroup: bool,

    /// Rootless cgroup handling and the user's systemd: auto (not root, or root only in a user namespace), true, false
    #[arg(long, value_name = "auto|true|false", default_value = "auto")]
    pub rootless: husk_runtime::rootless::Mode,

    /// Accepted for runc compatibility and ignored (husk does no checkpoint/restore)
    #[arg(long, value_name = "PATH", hide = true)]
    pub criu: Option<PathBuf>,

    /// Print the version, commit and runtime-spec version
    #[arg(short = 'v', long = "version", action = ArgAction::SetTrue)]
    pub version: bool,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    // logrus-style `time="..." level=info msg="..."`
    Text,
    // One JSON object a line: `{"level":...,"msg":...,"time":...}`
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a container from a bundle; its process waits for `start`
    Create(CreateArgs),
    /// Start the process of a created container
    Start(IdArg),
    /// Create and start a container, wait for it unless --detach
    Run(RunArgs),
    /// Print the state of a container as JSON
    State(IdArg),
    /// Run a new process inside a running container
    Exec(ExecArgs),
    /// Send a signal (default SIGTERM) to the container's init process
    Kill(KillArgs),
    /// Delete a stopped container and everything it holds (--force kills it first)
    Delete(DeleteArgs),
    /// List the containers under --root
    List(ListArgs),
    /// Write a default config.json into a bundle
    Spec(SpecArgs),
    /// Print what this build of husk supports, as JSON
    Features,
    /// Update the resource limits of a running container
    Update(crate::commands::cgroups::UpdateArgs),
    /// Freeze every process of a container
    Pause(IdArg),
    /// Thaw a paused container
    Resume(IdArg),
    /// List the processes of a container
    Ps(crate::commands::cgroups::PsArgs),
    /// Print a container's statistics and OOM events as JSON lines
    Events(crate::commands::cgroups::EventsArgs),
}

#[derive(Debug, Args)]
pub struct IdArg {
    /// Container id
    #[arg(value_name = "ID")]
    pub id: String,
}

/// The options `create` and `run` share.
#[derive(Debug, Args)]
pub struct CreateFlags {
    /// Bundle directory (holds config.json)
    #[arg(short = 'b', long, value_name = "DIR", default_value = ".")]
    pub bundle: PathBuf,

    /// Write the container's pid to FILE
    #[arg(long, value_name = "FILE")]
    pub pid_file: Option<PathBuf>,

    /// Unix socket that receives the pty master when process.terminal is true
    #[arg(long, value_name = "SOCKET")]
    pub console_socket: Option<PathBuf>,

    /// Use MS_MOVE and chroot instead of pivot_root (for a rootfs on ramfs)
    #[arg(long)]
    pub no_pivot: bool,

    /// Do not create a new session keyring for the container
    #[arg(long)]
    pub no_new_keyring: bool,

    /// Pass N more fds (from 3 on) to the container process
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub preserve_fds: u32,
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    #[command(flatten)]
    pub flags: CreateFlags,

    /// Container id
    #[arg(value_name = "ID")]
    pub id: String,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub flags: CreateFlags,

    /// Return once the container has started instead of waiting for it
    #[arg(short = 'd', long)]
    pub detach: bool,

    /// Keep the container's state after it exits (foreground only)
    #[arg(long)]
    pub keep: bool,

    /// Container id
    #[arg(value_name = "ID")]
    pub id: String,
}

/// `exec`: runc's flags. Everything after the container id is the command.
#[derive(Debug, Args)]
pub struct ExecArgs {
    /// A process JSON (config.json's `process` object) instead of the command and the flags
    #[arg(short = 'p', long, value_name = "FILE")]
    pub process: Option<PathBuf>,

    /// Return once the process runs instead of waiting for it
    #[arg(short = 'd', long)]
    pub detach: bool,

    /// Write the process's pid to FILE
    #[arg(long, value_name = "FILE")]
    pub pid_file: Option<PathBuf>,

    /// Unix socket that receives the pty master (with --tty and --detach)
    #[arg(long, value_name = "SOCKET")]
    pub console_socket: Option<PathBuf>,

    /// Allocate a pseudo-terminal
    #[arg(short = 't', long)]
    pub tty: bool,

    /// Working directory in the container
    #[arg(long, value_name = "DIR")]
    pub cwd: Option<PathBuf>,

    /// Add an environment variable (repeatable)
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,

    /// User and group ids: UID[:GID]
    #[arg(short = 'u', long, value_name = "UID[:GID]")]
    pub user: Option<String>,

    /// An additional group id (repeatable)
    #[arg(short = 'g', long = "additional-gids", value_name = "GID")]
    pub additional_gids: Vec<u32>,

    /// Add a capability to the bounding, effective, permitted and ambient sets (repeatable)
    #[arg(short = 'c', long = "cap", value_name = "CAP")]
    pub cap: Vec<String>,

    /// Set no_new_privs for the process
    #[arg(long)]
    pub no_new_privs: bool,

    /// SELinux label for the process
    #[arg(long, value_name = "LABEL")]
    pub process_label: Option<String>,

    /// AppArmor profile for the process
    #[arg(long, value_name = "PROFILE")]
    pub apparmor: Option<String>,

    /// Pass N more fds (from 3 on) to the process
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub preserve_fds: u32,

    /// Run in an existing sub-cgroup: [CONTROLLER[,CONTROLLER]:]PATH (repeatable)
    #[arg(long, value_name = "CGROUP")]
    pub cgroup: Vec<String>,

    /// Allow exec in a paused container
    #[arg(long)]
    pub ignore_paused: bool,

    /// Container id
    #[arg(value_name = "ID")]
    pub id: String,

    /// The command and its arguments
    #[arg(
        value_name = "COMMAND",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct KillArgs {
    /// Send the signal to every process in the container's cgroup
    #[arg(short = 'a', long)]
    pub all: bool,

    /// Signal as the runtime spec's `--signal` option (same as the SIGNAL argument)
    #[arg(
        short = 's',
        long = "signal",
        value_name = "SIGNAL",
        conflicts_with = "signal"
    )]
    pub signal_flag: Option<String>,

    /// Container id
    #[arg(value_name = "ID")]
    pub id: String,

    /// Signal name or number: KILL, SIGKILL, kill or 9 (default SIGTERM)
    #[arg(value_name = "SIGNAL")]
    pub signal: Option<String>,
}

#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// Kill the container first if it is still running
    #[arg(short = 'f', long)]
    pub force: bool,

    /// Container id
    #[arg(value_name = "ID")]
    pub id: String,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Output format
    #[arg(
        short = 'f',
        long,
        value_enum,
        value_name = "FORMAT",
        default_value = "table"
    )]
    pub format: ListFormat,

    /// Print only the container ids
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ListFormat {
    Table,
    Json,
}

#[derive(Debug, Args)]
pub struct SpecArgs {
    /// Bundle directory to write config.json into
    #[arg(short = 'b', long, value_name = "DIR", default_value = ".")]
    pub bundle: PathBuf,

    /// Write a spec for a rootless container (user namespace, no cgroup limits)
    #[arg(long)]
    pub rootless: bool,
}

/// For the fuzz target and its corpus test: `data` split at NULs is the argv after `husk`;
/// parse it and render the outcome (help, usage errors) as main would. Nothing runs.
#[doc(hidden)]
pub fn parse_for_fuzzing(data: &[u8]) {
    use std::os::unix::ffi::OsStringExt;
    let args = std::iter::once(std::ffi::OsString::from("husk")).chain(
        data.split(|b| *b == 0)
            .map(|a| std::ffi::OsString::from_vec(a.to_vec())),
    );
    if let Err(e) = Cli::try_parse_from(args) {
        let _ = e.to_string();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn parse(args: &[&str]) -> Cli {
        match Cli::try_parse_from(args) {
            Ok(c) => c,
            Err(e) => panic!("{args:?}: {e}"),
        }
    }

    #[test]
    fn clap_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn containerd_create() {
        let c = parse(&[
            "husk",
            "--root",
            "/r",
            "--log",
            "/l",
            "--log-format",
            "json",
            "create",
            "--bundle",
            "/b",
            "--pid-file",
            "/p",
            "--console-socket",
            "/s",
            "id1",
        ]);
        assert_eq!(c.root, Some(PathBuf::from("/r")));
        assert_eq!(c.log, Some(PathBuf::from("/l")));
        assert_eq!(c.log_format, LogFormat::Json);
        let Some(Command::Create(a)) = c.command else {
            panic!("not create")
        };
        assert_eq!(a.id, "id1");
        assert_eq!(a.flags.bundle, PathBuf::from("/b"));
        assert_eq!(a.flags.pid_file, Some(PathBuf::from("/p")));
        assert_eq!(a.flags.console_socket, Some(PathBuf::from("/s")));
    }

    #[test]
    fn podman_create_with_equals_forms() {
        let c = parse(&[
            "husk",
            "--log-format=json",
            "--log=/l",
            "--root=/r",
            "--systemd-cgroup",
            "create",
            "--bundle=/b",
            "--pid-file=/p",
            "--no-new-keyring",
            "id2",
        ]);
        assert!(c.systemd_cgroup);
        assert_eq!(c.log_format, LogFormat::Json);
        let Some(Command::Create(a)) = c.command else {
            panic!("not create")
        };
        assert!(a.flags.no_new_keyring);
        assert_eq!(a.flags.bundle, PathBuf::from("/b"));
        assert_eq!(a.flags.preserve_fds, 0);
    }

    #[test]
    fn create_defaults_and_short_bundle() {
        let c = parse(&["husk", "create", "x"]);
        let Some(Command::Create(a)) = c.command else {
            panic!("not create")
        };
        assert_eq!(a.flags.bundle, PathBuf::from("."));
        assert_eq!(c.root, None);
        assert_eq!(c.log_format, LogFormat::Text);
        let c = parse(&["husk", "create", "-b", "/b", "--preserve-fds", "2", "x"]);
        let Some(Command::Create(a)) = c.command else {
            panic!("not create")
        };
        assert_eq!(a.flags.bundle, PathBuf::from("/b"));
        assert_eq!(a.flags.preserve_fds, 2);
    }

    #[test]
    fn exec_forms() {
        let c = parse(&[
            "husk",
            "exec",
            "-t",
            "-d",
            "--pid-file",
            "/p",
            "--console-socket",
            "/s",
            "-e",
            "A=1",
            "--env=B=2",
            "-u",
            "1000:1000",
            "-g",
            "5",
            "--additional-gids",
            "6",
            "--cap",
            "CAP_KILL",
            "--cwd",
            "/tmp",
            "--preserve-fds",
            "2",
            "--ignore-paused",
            "id",
            "sh",
            "-c",
            "echo -n hi",
        ]);
        let Some(Command::Exec(e)) = c.command else {
            panic!("not exec")
        };
        assert!(e.tty && e.detach && e.ignore_paused);
        assert_eq!(e.id, "id");
        assert_eq!(e.command, ["sh", "-c", "echo -n hi"]);
        assert_eq!(e.env, ["A=1", "B=2"]);
        assert_eq!(e.additional_gids, [5, 6]);
        assert_eq!(e.user.as_deref(), Some("1000:1000"));
        assert_eq!(e.preserve_fds, 2);
        assert_eq!(e.console_socket, Some(PathBuf::from("/s")));
        // Flags after the command belong to it.
        let c = parse(&["husk", "exec", "id", "ls", "-l", "--tty"]);
        let Some(Command::Exec(e)) = c.command else {
            panic!("not exec")
        };
        assert!(!e.tty);
        assert_eq!(e.command, ["ls", "-l", "--tty"]);
        let c = parse(&["husk", "exec", "-p", "/proc.json", "id"]);
        let Some(Command::Exec(e)) = c.command else {
            panic!("not exec")
        };
        assert!(e.command.is_empty() && e.process == Some(PathBuf::from("/proc.json")));
        assert!(Cli::try_parse_from(["husk", "exec"]).is_err());
        assert!(Cli::try_parse_from(["husk", "exec", "-g", "-1", "id", "x"]).is_err());
    }

    #[test]
    fn kill_forms() {
        let c = parse(&["husk", "--root", "/r", "kill", "--all", "id", "9"]);
        let Some(Command::Kill(k)) = c.command else {
            panic!("not kill")
        };
        assert!(k.all && k.id == "id" && k.signal.as_deref() == Some("9"));
        let c = parse(&["husk", "kill", "id"]);
        let Some(Command::Kill(k)) = c.command else {
            panic!("not kill")
        };
        assert!(!k.all && k.signal.is_none() && k.signal_flag.is_none());
        let c = parse(&["husk", "kill", "--signal", "KILL", "id"]);
        let Some(Command::Kill(k)) = c.command else {
            panic!("not kill")
        };
        assert_eq!(k.signal_flag.as_deref(), Some("KILL"));
        assert!(Cli::try_parse_from(["husk", "kill", "-s", "KILL", "id", "TERM"]).is_err());
    }

    #[test]
    fn delete_start_state() {
        let c = parse(&["husk", "delete", "--force", "id"]);
        assert!(matches!(
            c.command,
            Some(Command::Delete(DeleteArgs { force: true, .. }))
        ));
        let c = parse(&["husk", "delete", "-f", "id"]);
        assert!(matches!(
            c.command,
            Some(Command::Delete(DeleteArgs { force: true, .. }))
        ));
        assert!(matches!(
            parse(&["husk", "start", "id"]).command,
            Some(Command::Start(_))
        ));
        assert!(matches!(
            parse(&["husk", "state", "id"]).command,
            Some(Command::State(_))
        ));
    }

    #[test]
    fn run_flags() {
        let c = parse(&["husk", "run", "-d", "--keep", "-b", "/b", "id"]);
        let Some(Command::Run(r)) = c.command else {
            panic!("not run")
        };
        assert!(r.detach && r.keep);
        assert_eq!(r.flags.bundle, PathBuf::from("/b"));
    }

    #[test]
    fn list_and_spec() {
        let c = parse(&["husk", "list", "-f", "json", "-q"]);
        let Some(Command::List(l)) = c.command else {
            panic!("not list")
        };
        assert!(l.quiet && l.format == ListFormat::Json);
        let c = parse(&["husk", "spec", "--rootless", "-b", "/b"]);
        let Some(Command::Spec(s)) = c.command else {
            panic!("not spec")
        };
        assert!(s.rootless && s.bundle == Path::new("/b"));
        assert!(matches!(
            parse(&["husk", "features"]).command,
            Some(Command::Features)
        ));
    }

    #[test]
    fn ignored_globals_and_version() {
        let c = parse(&[
            "husk",
            "--rootless",
            "auto",
            "--criu",
            "/usr/sbin/criu",
            "--debug",
            "state",
            "x",
        ]);
        assert!(c.debug && c.rootless == husk_runtime::rootless::Mode::Auto);
        assert!(parse(&["husk", "-v"]).version);
        assert!(parse(&["husk", "--version"]).version);
    }

    #[test]
    fn usage_errors() {
        assert!(Cli::try_parse_from(["husk", "bogus"]).is_err());
        assert!(Cli::try_parse_from(["husk", "create"]).is_err());
        assert!(Cli::try_parse_from(["husk", "--log-format", "xml", "state", "x"]).is_err());
        // Global options go before the command, as runc parses them.
        assert!(Cli::try_parse_from(["husk", "state", "--root", "/r", "x"]).is_err());
    }
}
