//! Finding the user program the way execvp would, so a missing args[0] fails at create time.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// PATH from the process env, or the default.
pub fn path_from_env(env: &[String]) -> &str {
    env.iter()
        .rev()
        .find_map(|kv| kv.strip_prefix("PATH="))
        .unwrap_or(DEFAULT_PATH)
}

fn is_executable(p: &Path) -> bool {
    std::fs::metadata(p)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Resolves `arg0` (relative to `cwd` when it contains a slash, else through `path`).
pub fn resolve(arg0: &str, path: &str, cwd: &Path) -> Result<PathBuf, String> {
    if arg0.is_empty() {
        return Err("process.args[0] is empty".into());
    }
    if arg0.contains('/') {
        let p = cwd.join(arg0);
        return match std::fs::metadata(&p) {
            Err(e) => Err(format!("exec: {arg0:?}: {e}")),
            Ok(_) if !is_executable(&p) => Err(format!("exec: {arg0:?}: permission denied")),
            Ok(_) => Ok(p),
        };
    }
    path.split(':')
        .map(|dir| if dir.is_empty() { cwd.to_path_buf() } else { cwd.join(dir) })
        .map(|dir| dir.join(arg0))
        .find(|p| is_executable(p))
        .ok_or_else(|| format!("exec: {arg0:?}: executable file not found in $PATH ({path})"))
}

/// HOME for a process whose env has none: the user's home in the container's /etc/passwd
/// (read after pivot_root), else "/" (runc's behaviour).
pub fn home_env(env: &[String], uid: u32) -> Option<String> {
    if env.iter().any(|kv| kv.starts_with("HOME=")) {
        return None;
    }
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    Some(format!("HOME={}", home_in_passwd(&passwd, uid).unwrap_or("/")))
}

/// One entry per name, as runc's init builds the environment it execs with (a setenv per
/// entry): each name where it first appears, with the last value given for it. An entry
/// without `=` counts as a name of its own.
pub fn merge_env<I: IntoIterator<Item = String>>(env: I) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut index: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for kv in env {
        let name = kv.split_once('=').map_or(kv.as_str(), |(k, _)| k).to_string();
        match index.get(&name) {
            Some(&i) => out[i] = kv,
            None => {
                index.insert(name, out.len());
                out.push(kv);
            }
        }
    }
    out
}

fn home_in_passwd(passwd: &str, uid: u32) -> Option<&str> {
    let uid = uid.to_string();
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 6 && f[2] == uid && !f[5].is_empty()).then_some(f[5])
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn home_comes_from_passwd_or_defaults_to_root() {
        let pw = "root:x:0:0:root:/root:/bin/sh\nbob:x:1000:1000::/home/bob:/bin/sh\n";
        assert_eq!(home_in_passwd(pw, 1000), Some("/home/bob"));
        assert_eq!(home_in_passwd(pw, 5), None);
        assert_eq!(home_env(&["HOME=/x".into()], 0), None);
    }

    use super::*;

    #[test]
    fn finds_through_path_and_reports_missing() {
        assert_eq!(
            resolve("sh", "/nonexistent:/bin", Path::new("/")).ok(),
            Some(PathBuf::from("/bin/sh"))
        );
        let err = resolve("no-such-program-xyz", "/bin", Path::new("/")).unwrap_err();
        assert!(err.contains("executable file not found in $PATH"), "{err}");
        assert!(resolve("/etc/hostname-nope", "/bin", Path::new("/")).is_err());
    }

    #[test]
    fn merged_env_keeps_first_places_and_last_values() {
        let env = ["A=1", "B=2", "A=3", "C=", "B=4=5", "A=6"].map(String::from);
        assert_eq!(merge_env(env), ["A=6", "B=4=5", "C="]);
        assert!(merge_env(Vec::new()).is_empty());
    }

    #[test]
    fn path_comes_from_the_last_env_entry() {
        let env = vec!["PATH=/a".to_string(), "X=1".into(), "PATH=/b".into()];
        assert_eq!(path_from_env(&env), "/b");
        assert_eq!(path_from_env(&[]), DEFAULT_PATH);
    }
}
