//! `linux.intelRdt`: husk does not implement resctrl. The spec requires an error when no
//! resctrl filesystem is mounted; husk refuses the field on every host, with the reason.

use oci_spec::runtime::LinuxIntelRdt;

use super::ExtrasError;

/// Where the resctrl filesystem is mounted when the host has one.
pub const RESCTRL: &str = "/sys/fs/resctrl";

pub fn validate(_rdt: &LinuxIntelRdt) -> Result<(), ExtrasError> {
    let mounted = std::fs::read_to_string("/proc/self/mountinfo")
        .map(|m| m.lines().any(|l| l.contains(" - resctrl ")))
        .unwrap_or(false);
    Err(ExtrasError::Invalid(if mounted {
        "linux.intelRdt: Intel RDT (resctrl) is not supported by husk".into()
    } else {
        format!(
            "linux.intelRdt: Intel RDT needs a mounted resctrl filesystem and none is mounted \
             (expected at {RESCTRL}); husk does not support Intel RDT"
        )
    }))
}
