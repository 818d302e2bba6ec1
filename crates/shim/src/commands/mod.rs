//! One function per command: turn the parsed flags into library calls and print the result.
//!
//! Every command returns the code husk exits with (0, or the container's status for a foreground
//! `run`), or an error that `main` logs and turns into exit code 1.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use husk_runtime::Runtime;

use crate::cli::{Cli, Command};

pub mod cgroups;
mod container;
mod exec;
mod info;
mod list;

pub use info::version_text;

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Runtime(#[from] husk_runtime::Error),
    #[error("making {what} {} absolute: {source}", path.display())]
    Absolute {
        what: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("{what}: {source}")]
    Io { what: String, source: io::Error },
    #[error("encoding {what} as JSON: {source}")]
    Json {
        what: &'static str,
        source: serde_json::Error,
    },
    #[error("{0}")]
    Usage(String),
}

pub type Result<T, E = CliError> = std::result::Result<T, E>;

/// Run the command `cli` names. `cli.command` is `Some` (main handles the other cases).
pub fn dispatch(cli: &Cli) -> Result<i32> {
    let Some(command) = &cli.command else {
        return Err(CliError::Usage("no command given; see husk --help".into()));
    };
    let rt = || -> Result<Runtime> {
        let root = match &cli.root {
            Some(root) => absolute("--root", root)?,
            None => husk_runtime::rootless::default_root().map_err(husk_runtime::Error::from)?,
        };
        Ok(Runtime {
            root,
            systemd_cgroup: cli.systemd_cgroup,
            rootless: husk_runtime::rootless::detect(cli.rootless),
        })
    };
    match command {
        Command::Create(a) => container::create(&rt()?, a),
        Command::Start(a) => container::start(&rt()?, &a.id),
        Command::Run(a) => container::run(&rt()?, a),
        Command::State(a) => container::state(&rt()?, &a.id),
        Command::Exec(a) => exec::exec(&rt()?, a),
        Command::Kill(a) => container::kill(&rt()?, a),
        Command::Delete(a) => container::delete(&rt()?, a),
        Command::List(a) => list::list(&rt()?, a),
        Command::Spec(a) => info::spec(a),
        Command::Features => info::features(),
        Command::Update(a) => cgroups::update(&rt()?, a),
        Command::Pause(a) => cgroups::pause(&rt()?, &a.id),
        Command::Resume(a) => cgroups::resume(&rt()?, &a.id),
        Command::Ps(a) => cgroups::ps(&rt()?, a),
        Command::Events(a) => cgroups::events(&rt()?, a),
    }
}

/// `path` made absolute against the current directory (not canonicalized: like Go's filepath.Abs
/// without the lexical cleaning, so symlinks and `..` are left to the kernel).
pub(crate) fn absolute(what: &'static str, path: &Path) -> Result<PathBuf> {
    std::path::absolute(path).map_err(|source| CliError::Absolute {
        what,
        path: path.to_path_buf(),
        source,
    })
}

/// Write `bytes` to stdout and flush; a closed stdout is an error, not a panic.
pub(crate) fn print_stdout(bytes: &[u8]) -> Result<()> {
    let mut out = io::stdout().lock();
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .map_err(|source| CliError::Io {
            what: "writing to stdout".into(),
            source,
        })
}

/// `value` as JSON indented with `indent` (runc's Go encoders use "  ", "    " or "\t").
pub(crate) fn to_json_indented<T: serde::Serialize>(
    what: &'static str,
    value: &T,
    indent: &[u8],
) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(indent);
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
    value
        .serialize(&mut ser)
        .map_err(|source| CliError::Json { what, source })?;
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absolute_paths() {
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(
            absolute("x", Path::new("/a/b")).unwrap(),
            PathBuf::from("/a/b")
        );
        assert_eq!(absolute("x", Path::new("b")).unwrap(), cwd.join("b"));
        assert_eq!(absolute("x", Path::new(".")).unwrap(), cwd);
    }

    #[test]
    fn json_indents() {
        let v = serde_json::json!({"a": [1]});
        let two = to_json_indented("v", &v, b"  ").unwrap();
        assert_eq!(
            String::from_utf8(two).unwrap(),
            "{\n  \"a\": [\n    1\n  ]\n}"
        );
        let tab = to_json_indented("v", &v, b"\t").unwrap();
        assert_eq!(
            String::from_utf8(tab).unwrap(),
            "{\n\t\"a\": [\n\t\t1\n\t]\n}"
        );
    }
}
