//! What the lifecycle commands do with a container's cgroup once it exists: apply and update
//! resources, freeze and thaw, signal every process, read stats, watch for OOM kills. Each
//! goes through the [`Manager`] driver the host calls for.

use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;

use super::manager::{Manager, OomWatch};
use super::mountinfo::{self, Kind};
use super::resources::Resources;
use super::stats::Stats;
use super::v1::V1;
use super::v2::V2;
use super::{kill, Cgroup, CgroupError, Pid, Signal};

impl Cgroup {
    /// The driver for this cgroup: v2 on a pure cgroup v2 host, v1 otherwise.
    pub fn manager(&self) -> Box<dyn Manager> {
        match &self.unified {
            Some(u) if self.is_unified_only() => Box::new(V2 { path: u.clone() }),
            _ => Box::new(V1 {
                subsystems: self.subsystem_map(),
                unified: self.unified.clone(),
            }),
        }
    }

    /// The v1 controller -> leaf map; for a state written before it was stored, found again
    /// from the mount table.
    fn subsystem_map(&self) -> BTreeMap<String, PathBuf> {
        if !self.subsystems.is_empty() {
            return self.subsystems.clone();
        }
        let text = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mut map = BTreeMap::new();
        for h in mountinfo::parse(&text) {
            let Kind::V1 { controllers } = &h.kind else {
                continue;
            };
            if let Some(leaf) = self.paths.iter().find(|p| p.starts_with(&h.mount_point)) {
                for c in controllers.iter().filter(|c| !c.starts_with("name=")) {
                    map.insert(c.clone(), leaf.clone());
                }
            }
        }
        map
    }

    /// "v1" or "v2".
    pub fn version(&self) -> &'static str {
        self.manager().version()
    }

    /// The resources applied so far.
    pub fn resources(&self) -> &Resources {
        &self.resources
    }

    /// Apply `res` (from config.json), with the device rules (and the default ones) when
    /// `devices`, before the container's init joins, and remember it for `update`.
    ///
    /// `devices` is false rootless: no device filter is installed, neither the config's rules
    /// nor the default ones. The cgroup2 device program needs CAP_SYS_ADMIN on the host, and
    /// v1's devices controller is never delegated; the user namespace already limits the
    /// container to the host nodes the user may open, and runc ignores the rules there too.
    pub fn apply(&mut self, res: Resources, devices: bool) -> Result<(), CgroupError> {
        skipped_devices(&res, devices);
        self.manager().apply(&res, devices, false)?;
        self.resources = res;
        Ok(())
    }

    /// `update`: merge `upd` into the applied resources and apply the result (the device rules
    /// only when `upd` has some and `devices`, false rootless as for [`Cgroup::apply`]). The
    /// caller saves the state.
    pub fn update(&mut self, upd: &Resources, devices: bool) -> Result<(), CgroupError> {
        skipped_devices(upd, devices);
        let devices = devices && !upd.devices.is_empty();
        let mut merged = self.resources.clone();
        merged.merge(upd);
        if let Some(unit) = &self.systemd {
            super::systemd::set_properties(unit, &merged, devices)?;
        }
        self.manager().apply(&merged, devices, true)?;
        self.resources = merged;
        Ok(())
    }

    /// Freeze every process of the container.
    pub fn freeze(&self) -> Result<(), CgroupError> {
        self.manager().set_frozen(true)
    }

    /// Thaw every process of the container.
    pub fn thaw(&self) -> Result<(), CgroupError> {
        self.manager().set_frozen(false)
    }

    /// Whether the container is frozen (paused).
    pub fn is_frozen(&self) -> bool {
        !self.paths.is_empty() && self.manager().frozen()
    }

    /// The container's statistics, each file read once.
    pub fn stats(&self) -> Result<Stats, CgroupError> {
        self.manager().stats()
    }

    /// OOM notifications for `events`, if the memory controller is there.
    pub fn oom_watch(&self) -> Result<Option<OomWatch>, CgroupError> {
        self.manager().oom_watch()
    }

    /// Send `sig` to every process of the container so that none escapes by forking: with
    /// `cgroup.kill` for SIGKILL where the kernel has it, otherwise freeze, signal each
    /// process, thaw. A frozen container stays frozen unless the signal is SIGKILL (the
    /// processes die only once thawed).
    pub fn signal_all(&self, sig: Signal) -> Result<(), CgroupError> {
        let m = self.manager();
        let was_frozen = m.frozen();
        if sig == Signal::SIGKILL && m.kill_all()? {
            if was_frozen {
                m.set_frozen(false)?;
            }
            return Ok(());
        }
        let froze = !was_frozen && m.set_frozen(true).is_ok();
        let pids = self.pids();
        for pid in pids.as_deref().unwrap_or_default() {
            if let Err(e) = kill(Pid::from_raw(*pid), sig) {
                tracing::debug!("sending {sig} to {pid}: {e}");
            }
        }
        if froze || (was_frozen && sig == Signal::SIGKILL) {
            m.set_frozen(false)?;
        }
        pids.map(drop)
    }

    /// Every process in the cgroup and the cgroups below it (for `ps`), from the first
    /// hierarchy that has the directory (pids, memory or freezer preferred).
    pub fn all_pids(&self) -> Result<Vec<i32>, CgroupError> {
        fn walk(dir: &std::path::Path, out: &mut Vec<i32>) -> Result<(), CgroupError> {
            let procs = dir.join("cgroup.procs");
            if let Some(text) = super::manager::read_opt(&procs)? {
                out.extend(super::parse_procs(&text, &procs));
            }
            let Ok(rd) = fs::read_dir(dir) else {
                return Ok(());
            };
            for e in rd.flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    walk(&e.path(), out)?;
                }
            }
            Ok(())
        }
        let mut out = Vec::new();
        if let Some(leaf) = self.paths.iter().find(|p| p.is_dir()) {
            walk(leaf, &mut out)?;
        }
        Ok(out)
    }
}

/// Says at debug level that `res` has device rules that are not applied (`devices` false).
fn skipped_devices(res: &Resources, devices: bool) {
    if !devices && !res.devices.is_empty() {
        tracing::debug!(
            rules = res.devices.len(),
            "rootless: device cgroup rules not applied (the user namespace limits the devices)"
        );
    }
}
