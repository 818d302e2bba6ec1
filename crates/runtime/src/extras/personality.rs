//! `linux.personality`: the execution domain (LINUX or LINUX32) set with personality(2).

use oci_spec::runtime::{LinuxPersonality, LinuxPersonalityDomain};

use super::ExtrasError;

const PER_LINUX: libc::c_ulong = 0x0000;
const PER_LINUX32: libc::c_ulong = 0x0008;

/// The persona for the domain. The spec defines no flags: any is refused.
pub fn persona(p: &LinuxPersonality) -> Result<libc::c_ulong, ExtrasError> {
    if let Some(f) = p.flags().as_ref().and_then(|f| f.first()) {
        return Err(ExtrasError::Invalid(format!(
            "linux.personality.flags: flag {f:?} is not supported (the spec defines none)"
        )));
    }
    Ok(match p.domain() {
        LinuxPersonalityDomain::PerLinux => PER_LINUX,
        LinuxPersonalityDomain::PerLinux32 => PER_LINUX32,
    })
}

pub fn validate(p: &LinuxPersonality) -> Result<(), ExtrasError> {
    persona(p).map(drop)
}

pub fn apply(p: &LinuxPersonality) -> Result<(), ExtrasError> {
    let persona = persona(p)?;
    crate::sys::sched::set_personality(persona)
        .map(drop)
        .map_err(ExtrasError::sys(format!(
            "setting linux.personality (domain {}) with personality(0x{persona:x})",
            p.domain()
        )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn domains_and_flags() {
        let p: LinuxPersonality = serde_json::from_value(json!({"domain": "LINUX32"})).unwrap();
        assert_eq!(persona(&p).unwrap(), PER_LINUX32);
        let p: LinuxPersonality =
            serde_json::from_value(json!({"domain": "LINUX", "flags": []})).unwrap();
        assert_eq!(persona(&p).unwrap(), PER_LINUX);
        let p: LinuxPersonality =
            serde_json::from_value(json!({"domain": "LINUX", "flags": ["ADDR_NO_RANDOMIZE"]}))
                .unwrap();
        assert!(persona(&p)
            .unwrap_err()
            .to_string()
            .contains("linux.personality.flags"));
        assert!(serde_json::from_value::<LinuxPersonality>(json!({"domain": "LINUX64"})).is_err());
    }
}
