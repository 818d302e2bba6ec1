//! The systemd driver's names (pure, unit-tested): `linux.cgroupsPath` as `slice:prefix:name`
//! to a parent slice and a scope unit, and a slice name to its cgroup path (runc's rules).

use super::super::CgroupError;

/// Where a container goes: the scope unit `unit` in the slice `slice`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeName {
    pub slice: String,
    pub unit: String,
}

/// The characters systemd allows in a unit name besides the suffix' dot.
fn valid_unit_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, ':' | '-' | '_' | '.' | '\\' | '@')
}

/// Parse `linux.cgroupsPath` for the systemd driver. Absent or empty: `system.slice:husk:ID`
/// (`user.slice` when rootless). An empty slice is the default slice; an empty prefix gives
/// `name.scope`. Refused: anything but three `:`-separated parts, a slice that does not
/// expand, a name ending in `.slice` (husk runs containers in scopes only), a unit name
/// systemd would refuse.
pub fn parse(
    cgroups_path: Option<&str>,
    id: &str,
    rootless: bool,
) -> Result<ScopeName, CgroupError> {
    let default_slice = if rootless {
        "user.slice"
    } else {
        "system.slice"
    };
    let raw = cgroups_path.unwrap_or("");
    let shown = if raw.is_empty() {
        format!(":husk:{id}")
    } else {
        raw.to_string()
    };
    let invalid = |reason: String| CgroupError::InvalidPath {
        path: raw.to_string(),
        reason,
    };
    let parts: Vec<&str> = shown.split(':').collect();
    let [slice, prefix, name] = parts[..] else {
        return Err(invalid(
            "with --systemd-cgroup it must be \"slice:prefix:name\" (for example \
             \"machine.slice:libpod:ID\")"
                .into(),
        ));
    };
    let slice = if slice.is_empty() {
        default_slice
    } else {
        slice
    };
    expand_slice(slice).map_err(|r| invalid(format!("slice {slice:?}: {r}")))?;
    if name.is_empty() {
        return Err(invalid("the name (after the second ':') is empty".into()));
    }
    if name.ends_with(".slice") {
        return Err(invalid(format!(
            "{name:?} is a slice; husk puts a container in a scope unit (use a name without .slice)"
        )));
    }
    let unit = if prefix.is_empty() {
        format!("{name}.scope")
    } else {
        format!("{prefix}-{name}.scope")
    };
    if let Some(c) = unit.chars().find(|c| !valid_unit_char(*c)) {
        return Err(invalid(format!(
            "unit name {unit:?}: systemd does not allow {c:?}"
        )));
    }
    if unit.len() > 255 {
        return Err(invalid(format!(
            "unit name {unit:?} is longer than systemd's 255 bytes"
        )));
    }
    Ok(ScopeName {
        slice: slice.to_string(),
        unit,
    })
}

/// A slice's cgroup path below the manager's root: `a-b-c.slice` is
/// `/a.slice/a-b.slice/a-b-c.slice`; `-.slice` is `/`.
pub fn expand_slice(slice: &str) -> Result<String, String> {
    let Some(base) = slice.strip_suffix(".slice") else {
        return Err("a slice name ends in \".slice\"".into());
    };
    if slice.contains('/') {
        return Err("a slice name has no '/'".into());
    }
    if base == "-" {
        return Ok("/".into());
    }
    if let Some(c) = slice.chars().find(|c| !valid_unit_char(*c)) {
        return Err(format!("systemd does not allow {c:?} in a unit name"));
    }
    let mut path = String::new();
    let mut prefix = String::new();
    for part in base.split('-') {
        if part.is_empty() {
            return Err("empty component (a leading, trailing or doubled '-')".into());
        }
        path.push('/');
        path.push_str(&prefix);
        path.push_str(part);
        path.push_str(".slice");
        prefix.push_str(part);
        prefix.push('-');
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(path: Option<&str>) -> Result<ScopeName, String> {
        parse(path, "ctr1", false).map_err(|e| e.to_string())
    }

    #[test]
    fn engines_paths() {
        assert_eq!(
            p(Some("machine.slice:libpod:abc")),
            Ok(ScopeName {
                slice: "machine.slice".into(),
                unit: "libpod-abc.scope".into()
            })
        );
        assert_eq!(
            p(Some("kubepods-burstable-pod12.slice:cri-containerd:f00")).map(|s| s.unit),
            Ok("cri-containerd-f00.scope".into())
        );
        assert_eq!(
            p(None),
            Ok(ScopeName {
                slice: "system.slice".into(),
                unit: "husk-ctr1.scope".into()
            })
        );
        assert_eq!(p(Some("")).map(|s| s.unit), Ok("husk-ctr1.scope".into()));
        assert_eq!(
            parse(Some(":podman:x"), "x", true).map(|s| s.slice).ok(),
            Some("user.slice".into())
        );
        assert_eq!(
            p(Some("system.slice::x")).map(|s| s.unit),
            Ok("x.scope".into())
        );
    }

    #[test]
    fn bad_paths_are_refused() {
        for bad in [
            "/sys/fs/cgroup/x",
            "a:b",
            "a.slice:b:c:d",
            "machine:libpod:x",
            "a--b.slice:p:x",
            "-a.slice:p:x",
            "system.slice:p:",
            "system.slice:p:x.slice",
            "system.slice:p:x/y",
            "system.slice:p q:x",
        ] {
            let e = p(Some(bad));
            assert!(e.is_err(), "{bad} accepted: {e:?}");
            assert!(e.unwrap_err().contains(bad), "the error names the path");
        }
        let long = format!("system.slice:p:{}", "x".repeat(300));
        assert!(p(Some(&long)).is_err());
    }

    #[test]
    fn slices_expand_to_their_parents() {
        assert_eq!(
            expand_slice("a-b-c.slice").ok(),
            Some("/a.slice/a-b.slice/a-b-c.slice".into())
        );
        assert_eq!(
            expand_slice("system.slice").ok(),
            Some("/system.slice".into())
        );
        assert_eq!(expand_slice("-.slice").ok(), Some("/".into()));
        assert_eq!(
            expand_slice("kubepods-burstable-pod1.slice").ok(),
            Some("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice".into())
        );
        assert!(expand_slice("a.scope").is_err());
        assert!(expand_slice("a-.slice").is_err());
    }
}
