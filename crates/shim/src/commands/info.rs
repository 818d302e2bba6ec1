//! Commands that need no container: `spec`, `features`, and the `--version` text.

use std::fs::OpenOptions;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;

use super::{absolute, print_stdout, to_json_indented, CliError, Result};
use crate::cli::SpecArgs;

/// The commit this binary was built from (build.rs), or "unknown".
const GIT_COMMIT: &str = env!("HUSK_GIT_COMMIT");

/// `husk --version`, with its trailing newline.
pub fn version_text() -> String {
    format!(
        "husk version {}\ncommit: {}\nspec: {}\n",
        env!("CARGO_PKG_VERSION"),
        GIT_COMMIT,
        husk_runtime::OCI_VERSION
    )
}

/// Write `<bundle>/config.json`, tab-indented as runc writes it; never overwrite one.
pub fn spec(a: &SpecArgs) -> Result<i32> {
    let path = absolute("--bundle", &a.bundle)?.join("config.json");
    let spec = husk_runtime::spec::default_spec(a.rootless);
    let data = to_json_indented("the default spec", &spec, b"\t")?;
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o666)
        .open(&path)
        .map_err(|source| match source.kind() {
            io::ErrorKind::AlreadyExists => {
                CliError::Usage("File config.json exists. Remove it first".into())
            }
            _ => CliError::Io {
                what: format!("creating {}", path.display()),
                source,
            },
        })?;
    file.write_all(&data).map_err(|source| CliError::Io {
        what: format!("writing {}", path.display()),
        source,
    })?;
    Ok(0)
}

/// The features document, indented by four spaces as runc's encoder does.
pub fn features() -> Result<i32> {
    let mut out = to_json_indented("the features", &husk_runtime::features::features(), b"    ")?;
    out.push(b'\n');
    print_stdout(&out)?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_has_three_lines() {
        let v = version_text();
        let lines: Vec<&str> = v.lines().collect();
        assert_eq!(lines.len(), 3, "{v}");
        assert_eq!(
            lines[0],
            format!("husk version {}", env!("CARGO_PKG_VERSION"))
        );
        assert!(lines[1].starts_with("commit: ") && lines[1].len() > "commit: ".len());
        assert_eq!(lines[2], format!("spec: {}", husk_runtime::OCI_VERSION));
    }

    #[test]
    fn spec_writes_once() {
        let dir = std::env::temp_dir().join(format!("husk-spec-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let _ = std::fs::remove_file(dir.join("config.json"));
        let args = SpecArgs {
            bundle: dir.clone(),
            rootless: false,
        };
        assert_eq!(spec(&args).unwrap(), 0);
        let text = std::fs::read_to_string(dir.join("config.json")).unwrap();
        let _: serde_json::Value = serde_json::from_str(&text).unwrap();
        let err = spec(&args).unwrap_err();
        assert_eq!(err.to_string(), "File config.json exists. Remove it first");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
