//! Capability names and sets: from the spec's names to kernel capability numbers.

use ::caps::Capability as KernelCap;
use oci_spec::runtime::{Capabilities, Capability, LinuxCapabilities};

use super::SecurityError;

/// The kernel capability for a spec capability (`Capability::SysAdmin` -> `CAP_SYS_ADMIN`).
pub(crate) fn to_kernel(cap: &Capability) -> Option<KernelCap> {
    format!("CAP_{cap}").parse().ok()
}

/// The configured sets, as kernel capabilities. A set the config leaves out is empty
/// (runc's behaviour), and so are all of them when `process.capabilities` is absent.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct CapSets {
    pub bounding: Vec<KernelCap>,
    pub effective: Vec<KernelCap>,
    pub permitted: Vec<KernelCap>,
    pub inheritable: Vec<KernelCap>,
    pub ambient: Vec<KernelCap>,
}

/// Map one set, failing on a name the kernel interface does not know.
fn map_set(
    set: &Option<Capabilities>,
    name: &'static str,
) -> Result<Vec<KernelCap>, SecurityError> {
    let mut out: Vec<KernelCap> = Vec::new();
    for cap in set.iter().flatten() {
        match to_kernel(cap) {
            Some(k) => out.push(k),
            None => {
                return Err(SecurityError::UnknownCapability {
                    name: format!("CAP_{cap}"),
                    set: name,
                })
            }
        }
    }
    out.sort_by_key(|c| c.index());
    out.dedup();
    Ok(out)
}

impl CapSets {
    pub fn from_spec(caps: Option<&LinuxCapabilities>) -> Result<CapSets, SecurityError> {
        let Some(c) = caps else {
            return Ok(CapSets::default());
        };
        Ok(CapSets {
            bounding: map_set(c.bounding(), "bounding")?,
            effective: map_set(c.effective(), "effective")?,
            permitted: map_set(c.permitted(), "permitted")?,
            inheritable: map_set(c.inheritable(), "inheritable")?,
            ambient: map_set(c.ambient(), "ambient")?,
        })
    }
}

impl CapSets {
    /// Refuses what no process can have, whatever the runtime holds: an inheritable
    /// capability outside the bounding set (the kernel refuses the capset; runc fails the
    /// create with "unable to apply caps: operation not permitted"). Ambient capabilities that
    /// cannot be raised are skipped instead, as runc does (`security::apply_identity`): `runc
    /// spec` writes ambient capabilities without an inheritable set, and a config whose
    /// bounding set was trimmed keeps runc's ambient list.
    pub fn check(&self) -> Result<(), SecurityError> {
        if let Some(cap) = self.inheritable.iter().find(|c| !self.bounding.contains(c)) {
            return Err(SecurityError::Refused(format!(
                "process.capabilities.inheritable: {cap} cannot be applied: it is not in process.capabilities.bounding"
            )));
        }
        Ok(())
    }
}

/// The bit mask of a set (bit n = capability number n), for capset(2).
pub(crate) fn mask(set: &[KernelCap]) -> u64 {
    set.iter().fold(0, |m, c| m | c.bitmask())
}

/// Validate the capability sets without side effects: an unknown name, or a capability no
/// process can have ([`CapSets::check`]), is an error naming the capability and the set.
pub fn validate_capabilities(caps: &LinuxCapabilities) -> Result<(), SecurityError> {
    CapSets::from_spec(Some(caps))?.check()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> LinuxCapabilities {
        serde_json::from_str(json).unwrap_or_else(|e| panic!("bad test capabilities {json}: {e}"))
    }

    #[test]
    fn maps_every_spec_capability() {
        let names = [
            "CAP_CHOWN",
            "CAP_DAC_OVERRIDE",
            "CAP_DAC_READ_SEARCH",
            "CAP_FOWNER",
            "CAP_FSETID",
            "CAP_KILL",
            "CAP_SETGID",
            "CAP_SETUID",
            "CAP_SETPCAP",
            "CAP_LINUX_IMMUTABLE",
            "CAP_NET_BIND_SERVICE",
            "CAP_NET_BROADCAST",
            "CAP_NET_ADMIN",
            "CAP_NET_RAW",
            "CAP_IPC_LOCK",
            "CAP_IPC_OWNER",
            "CAP_SYS_MODULE",
            "CAP_SYS_RAWIO",
            "CAP_SYS_CHROOT",
            "CAP_SYS_PTRACE",
            "CAP_SYS_PACCT",
            "CAP_SYS_ADMIN",
            "CAP_SYS_BOOT",
            "CAP_SYS_NICE",
            "CAP_SYS_RESOURCE",
            "CAP_SYS_TIME",
            "CAP_SYS_TTY_CONFIG",
            "CAP_MKNOD",
            "CAP_LEASE",
            "CAP_AUDIT_WRITE",
            "CAP_AUDIT_CONTROL",
            "CAP_SETFCAP",
            "CAP_MAC_OVERRIDE",
            "CAP_MAC_ADMIN",
            "CAP_SYSLOG",
            "CAP_WAKE_ALARM",
            "CAP_BLOCK_SUSPEND",
            "CAP_AUDIT_READ",
            "CAP_PERFMON",
            "CAP_BPF",
            "CAP_CHECKPOINT_RESTORE",
        ];
        for (n, name) in names.iter().enumerate() {
            let spec: Capability = serde_json::from_str(&format!("\"{name}\""))
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            let k = to_kernel(&spec).unwrap_or_else(|| panic!("{name} has no kernel capability"));
            assert_eq!(k.to_string(), *name);
            assert_eq!(k.index() as usize, n, "{name}");
        }
    }

    #[test]
    fn builds_sets_and_masks() {
        let c = parse(
            r#"{"bounding":["CAP_KILL","CAP_CHOWN","CAP_KILL"],"effective":["CAP_KILL"],
                "permitted":["CAP_KILL","CAP_NET_BIND_SERVICE"]}"#,
        );
        let sets = CapSets::from_spec(Some(&c)).unwrap_or_default();
        assert_eq!(sets.bounding, [KernelCap::CAP_CHOWN, KernelCap::CAP_KILL]);
        assert_eq!(sets.effective, [KernelCap::CAP_KILL]);
        assert!(sets.inheritable.is_empty() && sets.ambient.is_empty());
        assert_eq!(mask(&sets.bounding), (1 << 0) | (1 << 5));
        assert_eq!(mask(&sets.permitted), (1 << 5) | (1 << 10));
        assert_eq!(
            CapSets::from_spec(None).unwrap_or_default(),
            CapSets::default()
        );
        assert!(validate_capabilities(&c).is_ok());
    }

    #[test]
    fn refuses_what_no_process_can_have() {
        let err = |json: &str| match validate_capabilities(&parse(json)) {
            Err(e) => e.to_string(),
            Ok(()) => String::new(),
        };
        assert_eq!(
            err(r#"{"bounding":["CAP_KILL"],"permitted":["CAP_KILL"],"inheritable":["CAP_KILL","CAP_NET_RAW"]}"#),
            "process.capabilities.inheritable: CAP_NET_RAW cannot be applied: it is not in process.capabilities.bounding"
        );
        // Ambient outside the bounding set: skipped later (as runc), not refused.
        assert_eq!(
            err(r#"{"bounding":["CAP_KILL"],"permitted":["CAP_KILL"],"inheritable":["CAP_KILL"],"ambient":["CAP_MKNOD"]}"#),
            ""
        );
        // Ambient without inheritable (what `runc spec` writes): skipped later, not refused.
        assert_eq!(
            err(r#"{"bounding":["CAP_KILL"],"permitted":["CAP_KILL"],"ambient":["CAP_KILL"]}"#),
            ""
        );
        // No bounding set at all: it is empty, so nothing can be inheritable.
        assert!(err(r#"{"inheritable":["CAP_KILL"]}"#).contains("not in process.capabilities.bounding"));
    }

    #[test]
    fn unknown_name_error_names_the_set() {
        let e = SecurityError::UnknownCapability {
            name: "CAP_FOO".into(),
            set: "bounding",
        };
        assert_eq!(
            e.to_string(),
            "unknown capability CAP_FOO in process.capabilities.bounding"
        );
    }
}
