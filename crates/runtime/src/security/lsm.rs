//! Linux security modules: `process.apparmorProfile`, `process.selinuxLabel` and
//! `linux.mountLabel`.
//!
//! Both process labels take effect at the next execve: init writes them to its own
//! `attr/.../exec` file through a verified procfs ([`super::procfs`]). Asking for a profile or
//! label on a host where that LSM is not enabled is an error, found by `create` before
//! anything exists (runc's behaviour): silently running unconfined is never acceptable.

use oci_spec::runtime::Spec;

use super::procfs::ProcFs;
use super::SecurityError;

/// The LSMs the kernel has active, from securityfs (`/sys/kernel/security/lsm`, e.g.
/// `lockdown,capability,landlock,yama,apparmor`), with the module files as a fallback.
fn active_lsms() -> Vec<String> {
    if let Ok(s) = std::fs::read_to_string("/sys/kernel/security/lsm") {
        return parse_lsm_list(&s);
    }
    let mut out = Vec::new();
    if std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .is_ok_and(|s| s.trim_start().starts_with('Y'))
    {
        out.push("apparmor".to_string());
    }
    if std::path::Path::new("/sys/fs/selinux/enforce").exists() {
        out.push("selinux".to_string());
    }
    out
}

fn parse_lsm_list(s: &str) -> Vec<String> {
    s.trim()
        .split(',')
        .filter(|x| !x.is_empty())
        .map(str::to_string)
        .collect()
}

/// Whether AppArmor is enabled on this host.
pub fn apparmor_enabled() -> bool {
    active_lsms().iter().any(|l| l == "apparmor")
}

/// Whether SELinux is enabled on this host.
pub fn selinux_enabled() -> bool {
    active_lsms().iter().any(|l| l == "selinux")
}

fn non_empty(s: &Option<String>) -> Option<&str> {
    s.as_deref().filter(|v| !v.is_empty())
}

/// Refuse an AppArmor profile or SELinux label the host cannot apply. Run before clone.
pub fn validate(spec: &Spec) -> Result<(), SecurityError> {
    let process = spec.process().as_ref();
    let apparmor = process.and_then(|p| non_empty(p.apparmor_profile()));
    let selinux = process.and_then(|p| non_empty(p.selinux_label()));
    let mount_label = spec
        .linux()
        .as_ref()
        .and_then(|l| non_empty(l.mount_label()));
    check(apparmor, selinux, mount_label, &active_lsms())
}

fn check(
    apparmor: Option<&str>,
    selinux: Option<&str>,
    mount_label: Option<&str>,
    lsms: &[String],
) -> Result<(), SecurityError> {
    let has = |name: &str| lsms.iter().any(|l| l == name);
    if let Some(p) = apparmor {
        if !has("apparmor") {
            return Err(SecurityError::Lsm(format!(
                "process.apparmorProfile {p:?} is set, but AppArmor is not enabled on this host"
            )));
        }
        if p.contains('\n') || p.contains('\0') {
            return Err(SecurityError::Lsm(format!(
                "process.apparmorProfile {p:?} is not a profile name"
            )));
        }
    }
    for (field, label) in [
        ("process.selinuxLabel", selinux),
        ("linux.mountLabel", mount_label),
    ] {
        let Some(l) = label else { continue };
        if !has("selinux") {
            return Err(SecurityError::Lsm(format!(
                "{field} {l:?} is set, but SELinux is not enabled on this host"
            )));
        }
        if l.contains('\n') || l.contains('\0') || l.contains('"') {
            return Err(SecurityError::Lsm(format!(
                "{field} {l:?} is not a valid label"
            )));
        }
    }
    Ok(())
}

/// What to write to the AppArmor exec attribute for `profile`.
fn apparmor_exec_payload(profile: &str) -> String {
    format!("exec {profile}")
}

/// Set the AppArmor profile the next execve switches to: `attr/apparmor/exec` (the per-LSM
/// interface, Linux 5.8+), falling back to the shared `attr/exec`.
pub fn set_apparmor_exec(procfs: &ProcFs, profile: &str) -> Result<(), SecurityError> {
    let payload = apparmor_exec_payload(profile);
    tracing::debug!(profile, "AppArmor profile on exec");
    let missing = |e: &SecurityError| {
        matches!(
            e,
            SecurityError::Syscall {
                errno: nix::errno::Errno::ENOENT,
                ..
            }
        )
    };
    match procfs.write("self/attr/apparmor/exec", payload.as_bytes()) {
        Err(e) if missing(&e) => procfs.write("self/attr/exec", payload.as_bytes()),
        r => r,
    }
    .map_err(|e| {
        // The kernel answers ENOENT both for a missing attr file and, on the write, for a
        // profile it does not know; the attr files exist wherever AppArmor is enabled.
        let why = if missing(&e) { " (is the profile loaded? see aa-status)" } else { "" };
        SecurityError::Lsm(format!("applying process.apparmorProfile {profile:?}: {e}{why}"))
    })
}

/// Set the SELinux context the next execve switches to (`attr/exec`, like setexeccon(3)).
pub fn set_selinux_exec(procfs: &ProcFs, label: &str) -> Result<(), SecurityError> {
    tracing::debug!(label, "SELinux label on exec");
    procfs
        .write("self/attr/exec", label.as_bytes())
        .map_err(|e| SecurityError::Lsm(format!("applying process.selinuxLabel {label:?}: {e}")))
}

/// Apply `process.apparmorProfile` and `process.selinuxLabel` (both take effect at execve).
pub fn apply_exec_labels(
    procfs: &ProcFs,
    process: &oci_spec::runtime::Process,
) -> Result<(), SecurityError> {
    if let Some(p) = non_empty(process.apparmor_profile()) {
        set_apparmor_exec(procfs, p)?;
    }
    if let Some(l) = non_empty(process.selinux_label()) {
        set_selinux_exec(procfs, l)?;
    }
    Ok(())
}

/// The `context=` mount option carrying `linux.mountLabel`, for the filesystems that take one
/// (as runc: not bind mounts, proc, sysfs, mqueue or cgroup, whose labels come from policy).
pub fn mount_label_option(fstype: &str, mount_label: Option<&str>) -> Option<String> {
    let label = mount_label.filter(|l| !l.is_empty())?;
    if matches!(
        fstype,
        "proc" | "sysfs" | "mqueue" | "cgroup" | "cgroup2" | "bind" | ""
    ) {
        return None;
    }
    Some(format!("context=\"{label}\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lsms(s: &str) -> Vec<String> {
        parse_lsm_list(s)
    }

    #[test]
    fn parses_the_lsm_list() {
        assert_eq!(
            lsms("lockdown,capability,yama,apparmor\n"),
            ["lockdown", "capability", "yama", "apparmor"]
        );
        assert!(lsms("").is_empty());
    }

    #[test]
    fn refuses_labels_the_host_cannot_apply() {
        let none = lsms("capability,yama");
        let e = check(Some("docker-default"), None, None, &none)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("process.apparmorProfile \"docker-default\"")
                && e.contains("AppArmor is not enabled"),
            "{e}"
        );
        let e = check(None, Some("system_u:system_r:container_t:s0"), None, &none)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("process.selinuxLabel") && e.contains("SELinux is not enabled"),
            "{e}"
        );
        let e = check(
            None,
            None,
            Some("system_u:object_r:container_file_t:s0"),
            &none,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("linux.mountLabel"), "{e}");
        assert!(check(None, None, None, &none).is_ok());
        assert!(check(Some("p"), None, None, &lsms("apparmor")).is_ok());
        assert!(check(None, Some("a:b:c:s0"), Some("a:b:c:s0"), &lsms("selinux")).is_ok());
        assert!(check(Some("p\nchangeprofile x"), None, None, &lsms("apparmor")).is_err());
        assert!(check(None, None, Some("x\",context=\"y"), &lsms("selinux")).is_err());
    }

    #[test]
    fn payloads() {
        assert_eq!(apparmor_exec_payload("husk-test"), "exec husk-test");
        assert_eq!(
            mount_label_option("tmpfs", Some("s:o:t:s0")).as_deref(),
            Some("context=\"s:o:t:s0\"")
        );
        assert_eq!(
            mount_label_option("devpts", Some("s:o:t:s0")).as_deref(),
            Some("context=\"s:o:t:s0\"")
        );
        assert_eq!(mount_label_option("proc", Some("s:o:t:s0")), None);
        assert_eq!(mount_label_option("mqueue", Some("s:o:t:s0")), None);
        assert_eq!(mount_label_option("tmpfs", None), None);
        assert_eq!(mount_label_option("tmpfs", Some("")), None);
    }
}
