//! Switching to `process.user` and applying the capability sets, inside the container init
//! just before exec.

use ::caps::{Capability as KernelCap, CapsHashSet};
use nix::errno::Errno;
use nix::sys::prctl;
use nix::sys::stat::{umask, Mode};
use nix::unistd::{setgroups, setresgid, setresuid, Gid, Uid};
use oci_spec::runtime::Process;

use super::caps::{mask, CapSets};
use super::SecurityError;
use crate::sys::security::{
    ambient_clear_all, ambient_raise, capbset_drop, capbset_read, capget, capset,
};

fn syscall(what: impl Into<String>) -> impl FnOnce(nix::errno::Errno) -> SecurityError {
    let what = what.into();
    move |errno| SecurityError::Syscall { what, errno }
}

/// Whether this user namespace allows setgroups(2) (`/proc/self/setgroups` is not "deny").
fn setgroups_allowed() -> bool {
    match std::fs::read_to_string("/proc/self/setgroups") {
        Ok(s) => s.trim() != "deny",
        Err(_) => true,
    }
}

/// Drop from the bounding set every capability in it that `keep` lacks.
fn limit_bounding(keep: &[KernelCap], current: &CapsHashSet) -> Result<(), SecurityError> {
    let mut all: Vec<KernelCap> = current.iter().copied().collect();
    all.sort_by_key(|c| c.index());
    for cap in all {
        if keep.contains(&cap) {
            continue;
        }
        capbset_drop(cap.index())
            .map_err(syscall(format!("dropping {cap} from the bounding set")))?;
    }
    Ok(())
}

/// The capability sets the process holds before `apply_identity` changes anything.
struct Held {
    bounding: CapsHashSet,
    permitted: CapsHashSet,
    inheritable: CapsHashSet,
}

/// A capability left out, the set it was asked for in, and why.
type Skipped = (KernelCap, &'static str, &'static str);

/// What can actually be applied. Capabilities this kernel does not know are skipped (as runc
/// does), and so are those husk itself does not hold (e.g. CAP_SYS_RESOURCE on a host whose
/// bounding set lacks it): the kernel would refuse the whole capset for them. `wanted` has
/// passed [`CapSets::check`].
fn plan(wanted: &CapSets, kernel: &CapsHashSet, now: &Held) -> (CapSets, Vec<Skipped>) {
    let mut skipped = Vec::new();
    let mut keep = |set: &[KernelCap],
                    name: &'static str,
                    ok: &dyn Fn(&KernelCap) -> Verdict| {
        let mut out = Vec::new();
        for cap in set {
            if !kernel.contains(cap) {
                skipped.push((*cap, name, "not supported by this kernel"));
                continue;
            }
            match ok(cap) {
                Verdict::Keep => out.push(*cap),
                Verdict::Skip(why) => skipped.push((*cap, name, why)),
            }
        }
        out
    };
    let bounding = keep(&wanted.bounding, "bounding", &|c| {
        Verdict::skip_if(!now.bounding.contains(c), "not in husk's own bounding set")
    });
    let permitted = keep(&wanted.permitted, "permitted", &|c| {
        Verdict::skip_if(!now.permitted.contains(c), "not in husk's own permitted set")
    });
    let effective = keep(&wanted.effective, "effective", &|c| {
        Verdict::skip_if(!permitted.contains(c), "not in the permitted set")
    });
    let inheritable = keep(&wanted.inheritable, "inheritable", &|c| {
        if !now.inheritable.contains(c) && !now.permitted.contains(c) {
            Verdict::Skip("not in husk's own permitted set")
        } else if !now.inheritable.contains(c) && !bounding.contains(c) {
            Verdict::Skip("not in husk's own bounding set")
        } else {
            Verdict::Keep
        }
    });
    let ambient = keep(&wanted.ambient, "ambient", &|c| {
        if !wanted.bounding.contains(c) {
            Verdict::Skip(AMBIENT_OUTSIDE_BOUNDING)
        } else {
            Verdict::skip_if(
                !(permitted.contains(c) && inheritable.contains(c)),
                "not both permitted and inheritable",
            )
        }
    });
    (
        CapSets {
            bounding,
            effective,
            permitted,
            inheritable,
            ambient,
        },
        skipped,
    )
}

/// Why an ambient capability is skipped with a warning rather than at debug level (the
/// others are routine: `runc spec` asks for ambient capabilities it does not make inheritable).
const AMBIENT_OUTSIDE_BOUNDING: &str = "not in the bounding set";

/// What [`plan`] does with one capability.
enum Verdict {
    Keep,
    Skip(&'static str),
}

impl Verdict {
    fn skip_if(cond: bool, why: &'static str) -> Verdict {
        if cond {
            Verdict::Skip(why)
        } else {
            Verdict::Keep
        }
    }
}

/// The last capset, deferred by [`apply_identity`] until the seccomp filter is in: the
/// configured sets without the CAP_SYS_ADMIN held for installing it.
#[derive(Debug)]
#[must_use = "the process still holds CAP_SYS_ADMIN until FinalCaps::apply"]
pub struct FinalCaps {
    effective: u64,
    permitted: u64,
    inheritable: u64,
}

impl FinalCaps {
    /// Drops to the configured sets (only ever removes capabilities, so the kernel allows it;
    /// ambient capabilities stay, being permitted and inheritable).
    pub fn apply(self) -> Result<(), SecurityError> {
        capset(self.effective, self.permitted, self.inheritable).map_err(syscall(
            "dropping CAP_SYS_ADMIN held for installing the seccomp filter (capset)",
        ))
    }
}

/// Switch to `process.user` and apply `process.capabilities`, in this order: limit the
/// bounding set (needs CAP_SETPCAP, so first) -> keep capabilities across the uid change ->
/// setgroups(additionalGids) (skipped when the user namespace denies it and none are asked
/// for) -> setresgid -> setresuid -> effective/permitted/inheritable as configured, in one
/// capset -> ambient (cleared, then each configured one raised) -> umask if set.
/// Without `process.capabilities`, every set ends up empty. Capabilities that cannot be had
/// (unknown to the kernel, not held by husk itself, ambient but outside the bounding set) are
/// skipped with a warning, as runc skips them; an inheritable capability outside the bounding
/// set ([`CapSets::check`]) fails with an error naming the capability and the set.
///
/// With `hold_sys_admin`, CAP_SYS_ADMIN stays effective and permitted (if held now), so that
/// a seccomp filter can still be installed without no_new_privs after everything else here
/// is done; the returned [`FinalCaps`] drops it, right after the filter.
pub fn apply_identity(
    process: &Process,
    hold_sys_admin: bool,
) -> Result<Option<FinalCaps>, SecurityError> {
    let wanted = CapSets::from_spec(process.capabilities().as_ref())?;
    wanted.check()?;
    let all = ::caps::runtime::thread_all_supported();
    let (_, permitted_now, inheritable_now) = capget().map_err(syscall("capget"))?;
    let mut bounding_now = CapsHashSet::new();
    for cap in &all {
        if capbset_read(cap.index())
            .map_err(syscall(format!("reading {cap} in the bounding set")))?
        {
            bounding_now.insert(*cap);
        }
    }
    let in_mask = |m: u64| -> CapsHashSet {
        all.iter()
            .filter(|c| m & c.bitmask() != 0)
            .copied()
            .collect()
    };
    let now = Held {
        bounding: bounding_now,
        permitted: in_mask(permitted_now),
        inheritable: in_mask(inheritable_now),
    };
    let (sets, skipped) = plan(&wanted, &all, &now);
    for (cap, set, why) in skipped {
        if set == "ambient" && why != AMBIENT_OUTSIDE_BOUNDING {
            tracing::debug!(capability = %cap, set, "capability skipped: {why}");
        } else {
            tracing::warn!(capability = %cap, set, "capability skipped: {why}");
        }
    }
    let CapSets {
        bounding,
        effective,
        permitted,
        inheritable,
        ambient,
    } = sets;
    let setgroups_ok = setgroups_allowed();

    limit_bounding(&bounding, &now.bounding)?;
    prctl::set_keepcaps(true).map_err(syscall("prctl(PR_SET_KEEPCAPS, 1)"))?;

    let user = process.user();
    let gids: Vec<u32> = user.additional_gids().clone().unwrap_or_default();
    if setgroups_ok {
        let groups: Vec<Gid> = gids.iter().copied().map(Gid::from_raw).collect();
        setgroups(&groups).map_err(syscall(format!("setgroups({gids:?})")))?;
    } else if !gids.is_empty() {
        return Err(SecurityError::SetgroupsDenied { gids });
    }
    let (uid, gid) = (Uid::from_raw(user.uid()), Gid::from_raw(user.gid()));
    setresgid(gid, gid, gid).map_err(syscall(format!("setresgid({gid})")))?;
    setresuid(uid, uid, uid).map_err(syscall(format!("setresuid({uid})")))?;
    prctl::set_keepcaps(false).map_err(syscall("prctl(PR_SET_KEEPCAPS, 0)"))?;

    let (eff, perm, inh) = (mask(&effective), mask(&permitted), mask(&inheritable));
    let admin = KernelCap::CAP_SYS_ADMIN.bitmask();
    let hold = if hold_sys_admin && now.permitted.contains(&KernelCap::CAP_SYS_ADMIN) {
        admin
    } else {
        0
    };
    capset(eff | hold, perm | hold, inh).map_err(syscall(format!(
        "setting capabilities effective={effective:?} permitted={permitted:?} inheritable={inheritable:?}"
    )))?;

    // EINVAL: a kernel without ambient capabilities (< 4.3); fine when none are asked for.
    match ambient_clear_all() {
        Ok(()) => {}
        Err(Errno::EINVAL) if ambient.is_empty() => {}
        Err(errno) => {
            return Err(SecurityError::Syscall {
                what: "clearing the ambient capabilities".into(),
                errno,
            })
        }
    }
    for cap in ambient {
        ambient_raise(cap.index()).map_err(syscall(format!(
            "raising {cap} in the ambient set (it must also be permitted and inheritable)"
        )))?;
    }

    if let Some(mask) = user.umask() {
        umask(Mode::from_bits_truncate(mask));
    }
    Ok((hold != 0 && (eff & admin == 0 || perm & admin == 0)).then_some(FinalCaps {
        effective: eff,
        permitted: perm,
        inheritable: inh,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use KernelCap::*;

    fn set(caps: &[KernelCap]) -> CapsHashSet {
        caps.iter().copied().collect()
    }

    /// A host like this one: root without CAP_SYS_RESOURCE.
    fn held_here() -> Held {
        let mut held_caps = ::caps::all();
        held_caps.remove(&CAP_SYS_RESOURCE);
        Held {
            bounding: held_caps.clone(),
            permitted: held_caps,
            inheritable: set(&[]),
        }
    }

    fn names(v: &[(KernelCap, &str, &str)]) -> Vec<String> {
        v.iter().map(|(c, s, _)| format!("{s}:{c}")).collect()
    }

    #[test]
    fn plan_keeps_what_can_be_applied() {
        let wanted = CapSets {
            bounding: vec![CAP_CHOWN, CAP_KILL, CAP_SYS_RESOURCE],
            effective: vec![CAP_KILL, CAP_SYS_RESOURCE, CAP_NET_RAW],
            permitted: vec![CAP_KILL, CAP_SYS_RESOURCE],
            inheritable: vec![CAP_KILL, CAP_CHOWN, CAP_SYS_RESOURCE],
            ambient: vec![CAP_KILL, CAP_SYS_RESOURCE, CAP_MKNOD],
        };
        let (sets, skipped) = plan(&wanted, &::caps::all(), &held_here());
        assert_eq!(sets.bounding, [CAP_CHOWN, CAP_KILL]);
        assert_eq!(sets.permitted, [CAP_KILL]);
        assert_eq!(sets.effective, [CAP_KILL]);
        assert_eq!(sets.inheritable, [CAP_KILL, CAP_CHOWN]);
        assert_eq!(sets.ambient, [CAP_KILL]);
        assert_eq!(
            names(&skipped),
            [
                "bounding:CAP_SYS_RESOURCE",
                "permitted:CAP_SYS_RESOURCE",
                "effective:CAP_SYS_RESOURCE",
                "effective:CAP_NET_RAW",
                "inheritable:CAP_SYS_RESOURCE",
                "ambient:CAP_SYS_RESOURCE",
                "ambient:CAP_MKNOD"
            ]
        );
        assert_eq!(skipped[6].2, AMBIENT_OUTSIDE_BOUNDING);
        assert!(wanted.check().is_ok());
    }

    #[test]
    fn plan_skips_capabilities_the_kernel_lacks() {
        let wanted = CapSets {
            bounding: vec![CAP_KILL, CAP_CHECKPOINT_RESTORE],
            ..CapSets::default()
        };
        let mut kernel = ::caps::all();
        kernel.remove(&CAP_CHECKPOINT_RESTORE);
        let now = Held {
            bounding: kernel.clone(),
            permitted: kernel.clone(),
            inheritable: set(&[]),
        };
        let (sets, skipped) = plan(&wanted, &kernel, &now);
        assert_eq!(sets.bounding, [CAP_KILL]);
        assert_eq!(
            skipped,
            [(
                CAP_CHECKPOINT_RESTORE,
                "bounding",
                "not supported by this kernel"
            )]
        );
    }
}
