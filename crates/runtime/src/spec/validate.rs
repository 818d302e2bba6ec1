//! Every check husk can make on a config before it touches anything. Each rule has its own
//! function and a message naming the field; runc's wording is kept where runc has one.

use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use oci_spec::runtime::{Hook, Hooks, Linux, LinuxNamespace, LinuxNamespaceType, Spec};

use super::SpecError;

fn invalid(msg: impl Into<String>) -> SpecError {
    SpecError::Invalid(msg.into())
}

/// Check everything husk can check before any side effect: version, root (and that the rootfs
/// exists), process, namespaces and id mappings, hostname, mounts, hooks, rlimits, sysctls.
pub fn validate(spec: &Spec, bundle: &Path) -> Result<(), SpecError> {
    check_version(spec.version())?;
    super::rootfs(spec, bundle)?;
    check_process(spec)?;
    // Linux::default() is oci-spec's template (with namespaces); absent means empty here.
    let mut empty = Linux::default();
    empty
        .set_namespaces(None)
        .set_masked_paths(None)
        .set_readonly_paths(None);
    let linux = match spec.linux() {
        Some(l) => l,
        None => &empty,
    };
    let namespaces: &[LinuxNamespace] = match linux.namespaces() {
        Some(n) => n,
        None => &[],
    };
    let ns = Namespaces(namespaces);
    check_namespaces(namespaces)?;
    check_shared_mount_ns(linux, &ns)?;
    check_user_ns(linux, &ns)?;
    check_uts(spec, &ns)?;
    check_mounts(spec, &ns)?;
    if let Some(hooks) = spec.hooks() {
        check_hooks(hooks)?;
    }
    check_sysctl(spec, linux, &ns)?;
    // scheduler, ioPriority, execCPUAffinity, personality, memoryPolicy, intelRdt.
    crate::extras::validate(spec).map_err(|e| invalid(e.to_string()))?;
    Ok(())
}

/// The namespaces of a config, by type.
struct Namespaces<'a>(&'a [LinuxNamespace]);

impl Namespaces<'_> {
    fn get(&self, t: LinuxNamespaceType) -> Option<&LinuxNamespace> {
        self.0.iter().find(|n| n.typ() == t)
    }
    /// A namespace of this type is listed (new, or joined by path).
    fn has(&self, t: LinuxNamespaceType) -> bool {
        self.get(t).is_some()
    }
    /// A namespace of this type is listed without a path: husk creates it.
    fn is_new(&self, t: LinuxNamespaceType) -> bool {
        self.get(t).is_some_and(|n| n.path().is_none())
    }
}

fn ns_name(t: LinuxNamespaceType) -> &'static str {
    match t {
        LinuxNamespaceType::Mount => "mount",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Network => "network",
        LinuxNamespaceType::Time => "time",
    }
}

fn unsupported_version(v: &str) -> SpecError {
    invalid(format!(
        "unsupported ociVersion {v:?}: husk supports {} to {}",
        crate::features::OCI_VERSION_MIN,
        crate::OCI_VERSION
    ))
}

/// `ociVersion` must be SemVer 2.0.0 with major version 1.
pub(super) fn check_version(v: &str) -> Result<(), SpecError> {
    let major = parse_semver_major(v).ok_or_else(|| unsupported_version(v))?;
    if major != 1 {
        return Err(unsupported_version(v));
    }
    Ok(())
}

/// The major version of a SemVer 2.0.0 string, or None if it is not one.
fn parse_semver_major(v: &str) -> Option<u64> {
    let (rest, build) = match v.split_once('+') {
        Some((r, b)) => (r, Some(b)),
        None => (v, None),
    };
    let (core, pre) = match rest.split_once('-') {
        Some((c, p)) => (c, Some(p)),
        None => (rest, None),
    };
    let ident_ok =
        |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if let Some(b) = build {
        if !b.split('.').all(ident_ok) {
            return None;
        }
    }
    if let Some(p) = pre {
        let numeric_ok =
            |s: &str| !(s.len() > 1 && s.starts_with('0') && s.bytes().all(|b| b.is_ascii_digit()));
        if !p.split('.').all(|s| ident_ok(s) && numeric_ok(s)) {
            return None;
        }
    }
    let parts: Vec<&str> = core.split('.').collect();
    if parts.len() != 3 {
        return None;
    }
    let mut nums = [0u64; 3];
    for (n, p) in nums.iter_mut().zip(&parts) {
        if p.is_empty()
            || !p.bytes().all(|b| b.is_ascii_digit())
            || (p.len() > 1 && p.starts_with('0'))
        {
            return None;
        }
        *n = p.parse().ok()?;
    }
    Some(nums[0])
}

fn check_process(spec: &Spec) -> Result<(), SpecError> {
    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| invalid("process must be set: husk needs it to create a container"))?;
    if process.args().as_ref().is_none_or(|a| a.is_empty()) {
        return Err(invalid("process.args must not be empty"));
    }
    if !process.cwd().is_absolute() {
        return Err(invalid(format!(
            "process.cwd {} is not absolute",
            process.cwd().display()
        )));
    }
    if let Some(rlimits) = process.rlimits() {
        for (i, r) in rlimits.iter().enumerate() {
            if rlimits[..i].iter().any(|p| p.typ() == r.typ()) {
                return Err(invalid(format!(
                    "process.rlimits[{i}]: duplicate rlimit type {}",
                    r.typ()
                )));
            }
            if r.soft() > r.hard() {
                return Err(invalid(format!(
                    "process.rlimits[{i}]: {} soft limit {} is greater than the hard limit {}",
                    r.typ(),
                    r.soft(),
                    r.hard()
                )));
            }
        }
    }
    Ok(())
}

fn check_namespaces(namespaces: &[LinuxNamespace]) -> Result<(), SpecError> {
    let mut seen = HashSet::new();
    for (i, n) in namespaces.iter().enumerate() {
        if !seen.insert(n.typ()) {
            return Err(invalid(format!(
                "linux.namespaces[{i}]: duplicate namespace type {}",
                ns_name(n.typ())
            )));
        }
        let Some(path) = n.path() else { continue };
        if !path.is_absolute() {
            return Err(invalid(format!(
                "linux.namespaces[{i}]: path {} is not absolute",
                path.display()
            )));
        }
        match nix::sys::statfs::statfs(path) {
            // nsfs (0x6e736673) holds the `/proc/<pid>/ns/*` files.
            Ok(fs) if fs.filesystem_type() == nix::sys::statfs::NSFS_MAGIC => {}
            Ok(_) => {
                return Err(invalid(format!(
                    "linux.namespaces[{i}]: {} is not a namespace",
                    path.display()
                )))
            }
            Err(nix::errno::Errno::ENOENT) => {
                return Err(invalid(format!(
                    "linux.namespaces[{i}]: namespace path {} does not exist",
                    path.display()
                )))
            }
            Err(e) => {
                return Err(invalid(format!(
                    "linux.namespaces[{i}]: checking namespace path {}: {e}",
                    path.display()
                )))
            }
        }
    }
    Ok(())
}

/// Without a mount namespace (none listed: the runtime's is inherited), the container's
/// mounts are made in the runtime's namespace, beneath the rootfs (rootfs::shared_ns). Masked
/// and readonly paths would then have to cover the host's own /proc and /sys entries: refused,
/// as runc does.
fn check_shared_mount_ns(linux: &Linux, ns: &Namespaces) -> Result<(), SpecError> {
    if ns.has(LinuxNamespaceType::Mount) {
        return Ok(());
    }
    for (field, paths) in [
        ("linux.maskedPaths", linux.masked_paths()),
        ("linux.readonlyPaths", linux.readonly_paths()),
    ] {
        if paths.as_ref().is_some_and(|p| !p.is_empty()) {
            return Err(invalid(format!(
                "{field}: unable to restrict sys entries without a private mount namespace (add {{\"type\": \"mount\"}} to linux.namespaces, or leave {field} empty)"
            )));
        }
    }
    Ok(())
}

fn check_user_ns(linux: &Linux, ns: &Namespaces) -> Result<(), SpecError> {
    let has_maps = linux.uid_mappings().as_ref().is_some_and(|m| !m.is_empty())
        || linux.gid_mappings().as_ref().is_some_and(|m| !m.is_empty());
    if ns.has(LinuxNamespaceType::User) {
        if ns.is_new(LinuxNamespaceType::User) && !has_maps {
            return Err(invalid(
                "user namespaces enabled, but no namespace path to join nor mappings to apply \
                 specified (linux.uidMappings, linux.gidMappings)",
            ));
        }
    } else if has_maps {
        return Err(invalid(
            "linux.uidMappings/gidMappings specified, but user namespace isn't enabled in the config",
        ));
    }
    if linux.time_offsets().as_ref().is_some_and(|t| !t.is_empty())
        && !ns.is_new(LinuxNamespaceType::Time)
    {
        return Err(invalid(
            "linux.timeOffsets specified, but no new time namespace in the config",
        ));
    }
    Ok(())
}

/// runc's rule: hostname and domainname need a private UTS namespace (new or joined by path).
fn check_uts(spec: &Spec, ns: &Namespaces) -> Result<(), SpecError> {
    if ns.has(LinuxNamespaceType::Uts) {
        return Ok(());
    }
    if spec.hostname().as_ref().is_some_and(|h| !h.is_empty()) {
        return Err(invalid(
            "unable to set hostname without a private UTS namespace",
        ));
    }
    if spec.domainname().as_ref().is_some_and(|h| !h.is_empty()) {
        return Err(invalid(
            "unable to set domainname without a private UTS namespace",
        ));
    }
    Ok(())
}

fn check_mounts(spec: &Spec, ns: &Namespaces) -> Result<(), SpecError> {
    let Some(mounts) = spec.mounts() else {
        return Ok(());
    };
    for (index, m) in mounts.iter().enumerate() {
        let dest = m.destination();
        if !dest.is_absolute() {
            return Err(invalid(format!(
                "mounts[{index}]: mount destination {} is not absolute",
                dest.display()
            )));
        }
        let opts: &[String] = match m.options() {
            Some(o) => o,
            None => &[],
        };
        let parsed =
            crate::rootfs::options::parse(opts).map_err(|source| SpecError::MountOptions {
                index,
                destination: dest.clone(),
                source,
            })?;
        check_idmapped_mount(m, &parsed, ns)
            .map_err(|why| invalid(format!("mounts[{index}] ({}): {why}", dest.display())))?;
    }
    Ok(())
}

/// An id-mapped mount (`idmap`, `ridmap`, or `uidMappings`/`gidMappings` on the mount) must
/// be a bind mount with both mappings, or take the container's user namespace.
fn check_idmapped_mount(
    m: &oci_spec::runtime::Mount,
    opts: &crate::rootfs::options::MountOptions,
    ns: &Namespaces,
) -> Result<(), String> {
    let (uid, gid) = (m.uid_mappings().as_ref(), m.gid_mappings().as_ref());
    if uid.is_none() && gid.is_none() && opts.idmap.is_none() {
        return Ok(());
    }
    if uid.is_some() != gid.is_some() {
        return Err("uidMappings and gidMappings must be specified together".into());
    }
    if !(opts.bind || m.typ().as_deref() == Some("bind")) {
        return Err(
            "id-mapped mounts (idmap, ridmap, uidMappings/gidMappings) need a bind mount \
             (option bind or rbind)"
                .into(),
        );
    }
    for (field, maps) in [("uidMappings", uid), ("gidMappings", gid)] {
        for (i, map) in maps.into_iter().flatten().enumerate() {
            let fits = |start: u32| start.checked_add(map.size()).is_some();
            if map.size() == 0 || !fits(map.container_id()) || !fits(map.host_id()) {
                return Err(format!(
                    "{field}[{i}] ({} {} {}): the size must be at least 1 and each range \
                     must fit in 32 bits",
                    map.container_id(),
                    map.host_id(),
                    map.size()
                ));
            }
        }
        if maps.is_some_and(|v| v.is_empty()) {
            return Err(format!("{field} is empty"));
        }
    }
    if uid.is_none() && !ns.has(LinuxNamespaceType::User) {
        return Err(
            "idmap/ridmap without uidMappings and gidMappings on the mount takes the \
             container's user namespace mapping, and the container has no user namespace"
                .into(),
        );
    }
    Ok(())
}

#[allow(deprecated)] // `prestart` is deprecated in the spec but still run
fn check_hooks(hooks: &Hooks) -> Result<(), SpecError> {
    let kinds: [(&str, &Option<Vec<Hook>>); 6] = [
        ("prestart", hooks.prestart()),
        ("createRuntime", hooks.create_runtime()),
        ("createContainer", hooks.create_container()),
        ("startContainer", hooks.start_container()),
        ("poststart", hooks.poststart()),
        ("poststop", hooks.poststop()),
    ];
    for (kind, list) in kinds {
        for (i, h) in list.iter().flatten().enumerate() {
            if !h.path().is_absolute() {
                return Err(invalid(format!(
                    "hooks.{kind}[{i}].path {} is not absolute",
                    h.path().display()
                )));
            }
            if let Some(t) = h.timeout() {
                if t <= 0 {
                    return Err(invalid(format!(
                        "hooks.{kind}[{i}].timeout must be greater than zero, got {t}"
                    )));
                }
            }
        }
    }
    Ok(())
}

/// IPC sysctls runc allows (plus every `fs.mqueue.*`): they need an IPC namespace.
const IPC_SYSCTLS: &[&str] = &[
    "kernel.msgmax",
    "kernel.msgmnb",
    "kernel.msgmni",
    "kernel.sem",
    "kernel.shmall",
    "kernel.shmmax",
    "kernel.shmmni",
    "kernel.shm_rmid_forced",
];

/// runc's rule: only namespaced sysctls, each only with its namespace (not the host's).
fn check_sysctl(spec: &Spec, linux: &Linux, ns: &Namespaces) -> Result<(), SpecError> {
    let Some(sysctl) = linux.sysctl() else {
        return Ok(());
    };
    let mut keys: Vec<&String> = sysctl.keys().collect();
    keys.sort(); // deterministic messages
    for raw in keys {
        // "net/ipv4/ip_forward" is the same key as "net.ipv4.ip_forward".
        let key = if raw.contains('.') {
            raw.clone()
        } else {
            raw.replace('/', ".")
        };
        let key = key.as_str();
        if IPC_SYSCTLS.contains(&key) || key.starts_with("fs.mqueue.") {
            if !ns.has(LinuxNamespaceType::Ipc) {
                return Err(invalid(format!(
                    "linux.sysctl: sysctl {raw} is not allowed in the host's ipc namespace"
                )));
            }
            continue;
        }
        if key.starts_with("net.") {
            match ns.get(LinuxNamespaceType::Network) {
                None => {
                    return Err(invalid(format!(
                        "linux.sysctl: sysctl {raw} is not allowed in the host's network namespace"
                    )))
                }
                Some(n) => {
                    if let Some(p) = n.path() {
                        if same_file(p, Path::new("/proc/self/ns/net")) {
                            return Err(invalid(format!(
                                "linux.sysctl: sysctl {raw} is not allowed in the host's network \
                                 namespace ({} is the host's)",
                                p.display()
                            )));
                        }
                    }
                }
            }
            continue;
        }
        if key == "kernel.hostname" || key == "kernel.domainname" {
            if !ns.has(LinuxNamespaceType::Uts) {
                return Err(invalid(format!(
                    "linux.sysctl: sysctl {raw} is not allowed in the host's uts namespace"
                )));
            }
            let field = if key == "kernel.hostname" {
                spec.hostname()
            } else {
                spec.domainname()
            };
            let name = key.trim_start_matches("kernel.");
            if field
                .as_ref()
                .is_some_and(|f| !f.is_empty() && Some(f) != sysctl.get(raw))
            {
                return Err(invalid(format!(
                    "linux.sysctl: sysctl {raw} conflicts with the {name} field"
                )));
            }
            continue;
        }
        return Err(invalid(format!(
            "linux.sysctl: sysctl {raw} is not allowed in the container"
        )));
    }
    Ok(())
}

/// Two paths name the same file (following symlinks); false if either cannot be read.
fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        _ => false,
    }
}
