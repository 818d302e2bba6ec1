//! The cgroup v1 driver: one directory per controller. What each `linux.resources` field
//! writes is planned by [`plan`] (pure apart from the few reads it asks its [`Probe`] for, and
//! unit-tested), then written by the executor.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::devices::DeviceState;
use super::manager::{self, read_opt, write_file, Manager, OomWatch, Write};
use super::resources::Resources;
use super::stats::{self, Stats};
use super::{convert, CgroupError};

/// A new cpuset cgroup starts with empty `cpuset.cpus` and `cpuset.mems` (unless the parent
/// has `cgroup.clone_children`), and the kernel refuses tasks in it (ENOSPC): copy the parent's.
pub(crate) fn init_cpuset(dir: &Path) -> Result<(), CgroupError> {
    let Some(parent) = dir.parent() else {
        return Ok(());
    };
    for name in ["cpuset.cpus", "cpuset.mems"] {
        let file = dir.join(name);
        let current = fs::read_to_string(&file).map_err(|e| CgroupError::Read {
            path: file.clone(),
            source: e,
        })?;
        if !current.trim().is_empty() {
            continue;
        }
        let from = parent.join(name);
        let value = fs::read_to_string(&from).map_err(|e| CgroupError::Read {
            path: from.clone(),
            source: e,
        })?;
        let value = value.trim();
        if value.is_empty() {
            continue;
        }
        tracing::debug!(path = %file.display(), value, "copying cpuset from parent");
        fs::write(&file, value).map_err(|source| CgroupError::Write {
            what: format!("{value:?}"),
            path: file.clone(),
            source,
        })?;
    }
    Ok(())
}

/// What the planner may ask about the cgroup.
pub(crate) trait Probe {
    /// Whether `file` exists in the controller's directory.
    fn exists(&self, controller: &str, file: &str) -> bool;
    /// The contents of `file` in the controller's directory.
    fn read(&self, controller: &str, file: &str) -> Option<String>;
}

fn unsupported(field: &str, reason: &str) -> CgroupError {
    CgroupError::Unsupported {
        field: field.into(),
        reason: reason.into(),
    }
}

fn invalid(field: &str, reason: String) -> CgroupError {
    CgroupError::Invalid {
        field: format!("linux.resources.{field}"),
        reason,
    }
}

/// The writes for every set field of `r` but the device rules.
pub(crate) fn plan(r: &Resources, p: &dyn Probe) -> Result<Vec<Write>, CgroupError> {
    let mut w = Vec::new();
    if !r.unified.is_empty() {
        return Err(unsupported(
            "unified",
            "it holds cgroup v2 files, and this host manages resources with cgroup v1",
        ));
    }
    if let Some(m) = &r.memory {
        let limit = m.limit.unwrap_or(0);
        let mut swap = m.swap.unwrap_or(0);
        if limit == -1 && swap == 0 && p.exists("memory", "memory.memsw.limit_in_bytes") {
            swap = -1;
        }
        let mem = (limit != 0).then(|| {
            Write::new("memory.limit", "memory", "memory.limit_in_bytes", limit)
                .default_value(limit == -1)
        });
        let sw = (swap != 0).then(|| {
            Write::new("memory.swap", "memory", "memory.memsw.limit_in_bytes", swap)
                .default_value(swap == -1)
        });
        // memsw must stay >= the memory limit after each write: raise memsw first when
        // growing past the current memory limit.
        let swap_first = limit != 0
            && swap != 0
            && (swap == -1 || {
                let cur = p
                    .read("memory", "memory.limit_in_bytes")
                    .and_then(|s| s.trim().parse::<u64>().ok())
                    .unwrap_or(u64::MAX);
                cur < swap as u64
            });
        if swap_first {
            w.extend(sw);
            w.extend(mem);
        } else {
            w.extend(mem);
            w.extend(sw);
        }
        if let Some(res) = m.reservation.filter(|v| *v != 0) {
            w.push(
                Write::new(
                    "memory.reservation",
                    "memory",
                    "memory.soft_limit_in_bytes",
                    res,
                )
                .default_value(res == -1),
            );
        }
        if m.disable_oom_killer == Some(true) {
            w.push(Write::new(
                "memory.disableOOMKiller",
                "memory",
                "memory.oom_control",
                1,
            ));
        }
        if let Some(s) = m.swappiness {
            if s > 100 {
                return Err(invalid("memory.swappiness", format!("{s} is not in 0-100")));
            }
            w.push(Write::new(
                "memory.swappiness",
                "memory",
                "memory.swappiness",
                s,
            ));
        }
        if m.kernel.is_some_and(|k| k != 0) || m.kernel_tcp.is_some_and(|k| k != 0) {
            tracing::warn!(
                "linux.resources.memory.kernel and kernelTCP are deprecated and ignored"
            );
        }
        if m.use_hierarchy == Some(false) {
            tracing::warn!("linux.resources.memory.useHierarchy=false is ignored (always on)");
        }
    }
    if let Some(c) = &r.cpu {
        if let Some(s) = c.shares.filter(|s| *s != 0) {
            w.push(
                Write::new("cpu.shares", "cpu", "cpu.shares", s)
                    .verify()
                    .default_value(s == 1024),
            );
        }
        let quota_set = c.quota.is_some_and(|q| q != 0);
        if let Some(per) = c.period.filter(|p| *p != 0) {
            let mut wr = Write::new("cpu.period", "cpu", "cpu.cfs_period_us", per);
            if quota_set {
                wr = wr.retry_einval();
            }
            w.push(wr.default_value(per == 100_000));
        }
        if let Some(b) = c.burst {
            let mut wr = Write::new("cpu.burst", "cpu", "cpu.cfs_burst_us", b);
            if quota_set {
                wr = wr.retry_einval();
            }
            w.push(wr.default_value(b == 0));
        }
        if let Some(q) = c.quota.filter(|q| *q != 0) {
            w.push(Write::new("cpu.quota", "cpu", "cpu.cfs_quota_us", q).default_value(q < 0));
        }
        if let Some(rp) = c.realtime_period.filter(|v| *v != 0) {
            w.push(Write::new(
                "cpu.realtimePeriod",
                "cpu",
                "cpu.rt_period_us",
                rp,
            ));
        }
        if let Some(rr) = c.realtime_runtime.filter(|v| *v != 0) {
            w.push(Write::new(
                "cpu.realtimeRuntime",
                "cpu",
                "cpu.rt_runtime_us",
                rr,
            ));
        }
        if let Some(i) = c.idle {
            w.push(Write::new("cpu.idle", "cpu", "cpu.idle", i).default_value(i == 0));
        }
        if let Some(cpus) = c.cpus.as_deref().filter(|s| !s.is_empty()) {
            w.push(Write::new("cpu.cpus", "cpuset", "cpuset.cpus", cpus));
        }
        if let Some(mems) = c.mems.as_deref().filter(|s| !s.is_empty()) {
            w.push(Write::new("cpu.mems", "cpuset", "cpuset.mems", mems));
        }
    }
    if let Some(l) = r.pids.as_ref().and_then(|p| p.limit) {
        w.push(
            Write::new("pids.limit", "pids", "pids.max", convert::v2_limit(l)).default_value(l < 0),
        );
    }
    if let Some(b) = &r.block_io {
        let (weight_file, weight_dev_file) = if p.exists("blkio", "blkio.weight") {
            ("blkio.weight", "blkio.weight_device")
        } else {
            ("blkio.bfq.weight", "blkio.bfq.weight_device")
        };
        if let Some(v) = b.weight.filter(|v| *v != 0) {
            w.push(Write::new("blockIO.weight", "blkio", weight_file, v));
        }
        if let Some(v) = b.leaf_weight.filter(|v| *v != 0) {
            w.push(Write::new(
                "blockIO.leafWeight",
                "blkio",
                "blkio.leaf_weight",
                v,
            ));
        }
        for d in &b.weight_device {
            if let Some(v) = d.weight {
                let line = format!("{}:{} {v}", d.major, d.minor);
                w.push(Write::new(
                    "blockIO.weightDevice",
                    "blkio",
                    weight_dev_file,
                    line,
                ));
            }
            if let Some(v) = d.leaf_weight {
                let line = format!("{}:{} {v}", d.major, d.minor);
                w.push(Write::new(
                    "blockIO.weightDevice.leafWeight",
                    "blkio",
                    "blkio.leaf_weight_device",
                    line,
                ));
            }
        }
        for (field, file, _, list) in b.throttles() {
            for t in list {
                w.push(Write::new(
                    field,
                    "blkio",
                    file,
                    format!("{}:{} {}", t.major, t.minor, t.rate),
                ));
            }
        }
    }
    for h in &r.hugepage_limits {
        let file = format!("hugetlb.{}.limit_in_bytes", h.page_size);
        w.push(Write::new("hugepageLimits", "hugetlb", &file, h.limit));
        let rsvd = format!("hugetlb.{}.rsvd.limit_in_bytes", h.page_size);
        if p.exists("hugetlb", &rsvd) {
            w.push(Write::new("hugepageLimits", "hugetlb", &rsvd, h.limit));
        }
    }
    if let Some(n) = &r.network {
        if let Some(id) = n.class_id {
            w.push(
                Write::new("network.classID", "net_cls", "net_cls.classid", id)
                    .default_value(id == 0),
            );
        }
        for prio in &n.priorities {
            let line = format!("{} {}", prio.name, prio.priority);
            w.push(Write::new(
                "network.priorities",
                "net_prio",
                "net_prio.ifpriomap",
                line,
            ));
        }
    }
    for (dev, limit) in &r.rdma {
        w.push(Write::new(
            "rdma",
            "rdma",
            "rdma.max",
            rdma_line(dev, limit)?,
        ));
    }
    Ok(w)
}

/// `mlx5_1 hca_handle=3 hca_object=10000` for rdma.max (v1 and v2 alike).
pub(crate) fn rdma_line(dev: &str, l: &super::resources::Rdma) -> Result<String, CgroupError> {
    if l.hca_handles.is_none() && l.hca_objects.is_none() {
        return Err(invalid(
            &format!("rdma.{dev}"),
            "neither hcaHandles nor hcaObjects is set".into(),
        ));
    }
    let mut s = dev.to_string();
    if let Some(h) = l.hca_handles {
        s.push_str(&format!(" hca_handle={h}"));
    }
    if let Some(o) = l.hca_objects {
        s.push_str(&format!(" hca_object={o}"));
    }
    Ok(s)
}

/// The devices.allow / devices.deny writes that take the cgroup from `current_list` (its
/// devices.list) to the configured rules plus runc's defaults.
pub(crate) fn plan_devices(r: &Resources, current_list: &str) -> Result<Vec<Write>, CgroupError> {
    let target = DeviceState::from_config(&r.devices)?;
    let current = DeviceState::from_list(current_list);
    Ok(current
        .transition(&target)
        .into_iter()
        .map(|(allow, line)| {
            let file = if allow {
                "devices.allow"
            } else {
                "devices.deny"
            };
            Write::new("devices", "devices", file, line)
        })
        .collect())
}

/// The v1 driver: a leaf directory per controller, and on a hybrid host the cgroup2 leaf.
pub(crate) struct V1 {
    pub subsystems: BTreeMap<String, PathBuf>,
    pub unified: Option<PathBuf>,
}

impl Probe for V1 {
    fn exists(&self, controller: &str, file: &str) -> bool {
        self.dir(controller).is_some_and(|d| d.join(file).exists())
    }

    fn read(&self, controller: &str, file: &str) -> Option<String> {
        fs::read_to_string(self.dir(controller)?.join(file)).ok()
    }
}

const FREEZE_TIMEOUT: Duration = Duration::from_secs(10);

impl V1 {
    fn dir(&self, controller: &str) -> Option<&Path> {
        self.subsystems.get(controller).map(PathBuf::as_path)
    }

    fn u64_in(&self, controller: &str, file: &str) -> u64 {
        self.read(controller, file)
            .and_then(|s| stats::parse_u64(&s))
            .unwrap_or(0)
    }

    fn memory_entry(&self, prefix: &str) -> stats::MemoryEntry {
        let f = |suffix: &str| self.u64_in("memory", &format!("{prefix}.{suffix}"));
        stats::MemoryEntry {
            limit: f("limit_in_bytes"),
            usage: f("usage_in_bytes"),
            max: f("max_usage_in_bytes"),
            failcnt: f("failcnt"),
        }
    }
}

impl Manager for V1 {
    fn version(&self) -> &'static str {
        "v1"
    }

    fn apply(&self, res: &Resources, devices: bool, _update: bool) -> Result<(), CgroupError> {
        let mut writes = plan(res, self)?;
        if devices {
            match self.dir("devices") {
                Some(dir) => {
                    let list = read_opt(&dir.join("devices.list"))?.unwrap_or_default();
                    writes.extend(plan_devices(res, &list)?);
                }
                None if !res.devices.is_empty() => {
                    return Err(unsupported(
                        "devices",
                        "the devices controller is not mounted",
                    ))
                }
                None => {}
            }
        }
        manager::execute(&writes, |c: &str| self.dir(c).map(Path::to_path_buf))
    }

    fn set_frozen(&self, frozen: bool) -> Result<(), CgroupError> {
        let Some(dir) = self.dir("freezer") else {
            return match &self.unified {
                Some(u) => super::v2::V2 { path: u.clone() }.set_frozen(frozen),
                None => Err(unsupported(
                    "freezer",
                    "the freezer controller is not mounted",
                )),
            };
        };
        let file = dir.join("freezer.state");
        let (want, value) = if frozen {
            ("FROZEN", "FROZEN")
        } else {
            ("THAWED", "THAWED")
        };
        let write = |v: &str| {
            write_file(&file, v).map_err(|source| CgroupError::Write {
                what: v.into(),
                path: file.clone(),
                source,
            })
        };
        // A freeze can stall on a task in an uninterruptible state; re-asking helps (as runc).
        for _ in 0..100 {
            write(value)?;
            if manager::wait_for(&file, FREEZE_TIMEOUT / 100, |s| s.trim() == want)? {
                return Ok(());
            }
            if frozen {
                write("THAWED")?;
            }
        }
        if frozen {
            let _ = write("THAWED");
        }
        Err(CgroupError::Freeze {
            path: file,
            state: want,
        })
    }

    fn frozen(&self) -> bool {
        match self.dir("freezer") {
            Some(_) => self
                .read("freezer", "freezer.state")
                .is_some_and(|s| s.trim() != "THAWED"),
            None => self
                .unified
                .as_ref()
                .is_some_and(|u| super::v2::V2 { path: u.clone() }.frozen()),
        }
    }

    fn stats(&self) -> Result<Stats, CgroupError> {
        let mut s = Stats::default();
        if self.dir("cpu").is_some() {
            let t = stats::parse_flat_keyed(&self.read("cpu", "cpu.stat").unwrap_or_default());
            s.cpu.throttling.periods = t.get("nr_periods").copied().unwrap_or(0);
            s.cpu.throttling.throttled_periods = t.get("nr_throttled").copied().unwrap_or(0);
            s.cpu.throttling.throttled_time = t.get("throttled_time").copied().unwrap_or(0);
        }
        if self.dir("cpuacct").is_some() {
            let u = &mut s.cpu.usage;
            u.total = self.u64_in("cpuacct", "cpuacct.usage");
            u.percpu = stats::parse_numbers(
                &self
                    .read("cpuacct", "cpuacct.usage_percpu")
                    .unwrap_or_default(),
            );
            let (user, sys) = stats::parse_cpuacct_usage_all(
                &self
                    .read("cpuacct", "cpuacct.usage_all")
                    .unwrap_or_default(),
            );
            u.percpu_user = user;
            u.percpu_kernel = sys;
            // cpuacct.stat is in USER_HZ ticks (100 per second on Linux).
            let st =
                stats::parse_flat_keyed(&self.read("cpuacct", "cpuacct.stat").unwrap_or_default());
            u.user = st.get("user").copied().unwrap_or(0) * 10_000_000;
            u.kernel = st.get("system").copied().unwrap_or(0) * 10_000_000;
        }
        if self.dir("cpuset").is_some() {
            let c = &mut s.cpuset;
            c.cpus =
                convert::parse_cpu_list(&self.read("cpuset", "cpuset.cpus").unwrap_or_default());
            c.mems =
                convert::parse_cpu_list(&self.read("cpuset", "cpuset.mems").unwrap_or_default());
            c.cpu_exclusive = self.u64_in("cpuset", "cpuset.cpu_exclusive");
            c.mem_hardwall = self.u64_in("cpuset", "cpuset.mem_hardwall");
            c.mem_exclusive = self.u64_in("cpuset", "cpuset.mem_exclusive");
            c.memory_migrate = self.u64_in("cpuset", "cpuset.memory_migrate");
            c.memory_spread_page = self.u64_in("cpuset", "cpuset.memory_spread_page");
            c.memory_spread_slab = self.u64_in("cpuset", "cpuset.memory_spread_slab");
            c.memory_pressure = self.u64_in("cpuset", "cpuset.memory_pressure");
            c.sched_load_balance = self.u64_in("cpuset", "cpuset.sched_load_balance");
            c.sched_relax_domain_level = self
                .read("cpuset", "cpuset.sched_relax_domain_level")
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
        }
        if self.dir("memory").is_some() {
            let m = &mut s.memory;
            m.raw =
                stats::parse_flat_keyed(&self.read("memory", "memory.stat").unwrap_or_default());
            m.cache = m.raw.get("cache").copied().unwrap_or(0);
            m.usage = self.memory_entry("memory");
            m.swap = self.memory_entry("memory.memsw");
            m.kernel = self.memory_entry("memory.kmem");
            m.kernel_tcp = self.memory_entry("memory.kmem.tcp");
        }
        if self.dir("pids").is_some() {
            s.pids.current = self.u64_in("pids", "pids.current");
            s.pids.limit = match self.u64_in("pids", "pids.max") {
                u64::MAX => 0,
                n => n,
            };
        }
        if self.dir("blkio").is_some() {
            let prefix = if self.exists("blkio", "blkio.bfq.io_service_bytes_recursive") {
                "blkio.bfq"
            } else {
                "blkio.throttle"
            };
            let read = |f: &str| {
                stats::parse_blkio_v1(
                    &self
                        .read("blkio", &format!("{prefix}.{f}"))
                        .unwrap_or_default(),
                )
            };
            s.blkio.io_service_bytes_recursive = read("io_service_bytes_recursive");
            s.blkio.io_serviced_recursive = read("io_serviced_recursive");
        }
        if self.dir("hugetlb").is_some() {
            for size in convert::hugepage_sizes() {
                let f = |suffix: &str| self.u64_in("hugetlb", &format!("hugetlb.{size}.{suffix}"));
                s.hugetlb.insert(
                    size.clone(),
                    stats::Hugetlb {
                        usage: f("usage_in_bytes"),
                        max: f("max_usage_in_bytes"),
                        failcnt: f("failcnt"),
                    },
                );
            }
        }
        Ok(s)
    }

    fn kill_all(&self) -> Result<bool, CgroupError> {
        match &self.unified {
            Some(u) => super::v2::V2 { path: u.clone() }.kill_all(),
            None => Ok(false),
        }
    }

    fn oom_watch(&self) -> Result<Option<OomWatch>, CgroupError> {
        match self.dir("memory") {
            Some(d) => manager::oom_watch_v1(d).map(Some),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroups::resources::Resources;

    /// A fake cgroup: the files that exist and their contents.
    struct Fake(Vec<(&'static str, &'static str, &'static str)>);

    impl Probe for Fake {
        fn exists(&self, c: &str, f: &str) -> bool {
            self.0.iter().any(|(cc, ff, _)| *cc == c && *ff == f)
        }
        fn read(&self, c: &str, f: &str) -> Option<String> {
            self.0
                .iter()
                .find(|(cc, ff, _)| *cc == c && *ff == f)
                .map(|(_, _, v)| v.to_string())
        }
    }

    fn res(json: &str) -> Resources {
        Resources::from_value(serde_json::from_str(json).unwrap(), "test").unwrap()
    }

    fn lines(w: &[Write]) -> Vec<String> {
        w.iter()
            .map(|w| format!("{}/{}={}", w.controller, w.file, w.value))
            .collect()
    }

    #[test]
    fn memory_order_and_values() {
        let host = Fake(vec![
            ("memory", "memory.memsw.limit_in_bytes", ""),
            ("memory", "memory.limit_in_bytes", "104857600\n"),
        ]);
        // Growing both past the current limit: memsw first.
        let w = plan(
            &res(r#"{"memory":{"limit":209715200,"swap":314572800}}"#),
            &host,
        )
        .unwrap();
        assert_eq!(
            lines(&w),
            [
                "memory/memory.memsw.limit_in_bytes=314572800",
                "memory/memory.limit_in_bytes=209715200"
            ]
        );
        // Shrinking: memory first.
        let w = plan(&res(r#"{"memory":{"limit":1000,"swap":2000}}"#), &host).unwrap();
        assert_eq!(w[0].file, "memory.limit_in_bytes");
        // Unlimited memory, swap unset: both unlimited, memsw first.
        let w = plan(&res(r#"{"memory":{"limit":-1}}"#), &host).unwrap();
        assert_eq!(
            lines(&w),
            [
                "memory/memory.memsw.limit_in_bytes=-1",
                "memory/memory.limit_in_bytes=-1"
            ]
        );
        assert!(w.iter().all(|w| w.default));
        let w = plan(
            &res(
                r#"{"memory":{"reservation":5,"disableOOMKiller":true,"swappiness":0,"kernel":5}}"#,
            ),
            &host,
        )
        .unwrap();
        assert_eq!(
            lines(&w),
            [
                "memory/memory.soft_limit_in_bytes=5",
                "memory/memory.oom_control=1",
                "memory/memory.swappiness=0"
            ]
        );
        let e = plan(&res(r#"{"memory":{"swappiness":101}}"#), &host)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("memory.swappiness") && e.contains("0-100"),
            "{e}"
        );
    }

    #[test]
    fn cpu_pids_blkio_and_more() {
        let host = Fake(vec![("hugetlb", "hugetlb.2MB.rsvd.limit_in_bytes", "")]);
        let w = plan(
            &res(
                r#"{"cpu":{"shares":512,"quota":50000,"period":100000,"burst":1000,"idle":1,
                     "realtimeRuntime":100,"realtimePeriod":1000,"cpus":"0","mems":"0"},
                     "pids":{"limit":-1}}"#,
            ),
            &host,
        )
        .unwrap();
        assert_eq!(
            lines(&w),
            [
                "cpu/cpu.shares=512",
                "cpu/cpu.cfs_period_us=100000",
                "cpu/cpu.cfs_burst_us=1000",
                "cpu/cpu.cfs_quota_us=50000",
                "cpu/cpu.rt_period_us=1000",
                "cpu/cpu.rt_runtime_us=100",
                "cpu/cpu.idle=1",
                "cpuset/cpuset.cpus=0",
                "cpuset/cpuset.mems=0",
                "pids/pids.max=max"
            ]
        );
        assert!(w[0].verify && w[1].retry_einval && w[2].retry_einval && !w[3].retry_einval);
        let w = plan(&res(r#"{"pids":{"limit":0}}"#), &host).unwrap();
        assert_eq!(lines(&w), ["pids/pids.max=0"]);
        let w = plan(
            &res(r#"{"blockIO":{"weight":300,"leafWeight":200,
                     "weightDevice":[{"major":8,"minor":0,"weight":500,"leafWeight":100}],
                     "throttleReadBpsDevice":[{"major":8,"minor":0,"rate":1048576}],
                     "throttleWriteIOPSDevice":[{"major":8,"minor":16,"rate":30}]},
                     "hugepageLimits":[{"pageSize":"2MB","limit":4194304}],
                     "network":{"classID":1048577,"priorities":[{"name":"eth0","priority":5}]},
                     "rdma":{"mlx5_1":{"hcaHandles":3,"hcaObjects":10000}}}"#),
            &host,
        )
        .unwrap();
        assert_eq!(
            lines(&w),
            [
                "blkio/blkio.bfq.weight=300",
                "blkio/blkio.leaf_weight=200",
                "blkio/blkio.bfq.weight_device=8:0 500",
                "blkio/blkio.leaf_weight_device=8:0 100",
                "blkio/blkio.throttle.read_bps_device=8:0 1048576",
                "blkio/blkio.throttle.write_iops_device=8:16 30",
                "hugetlb/hugetlb.2MB.limit_in_bytes=4194304",
                "hugetlb/hugetlb.2MB.rsvd.limit_in_bytes=4194304",
                "net_cls/net_cls.classid=1048577",
                "net_prio/net_prio.ifpriomap=eth0 5",
                "rdma/rdma.max=mlx5_1 hca_handle=3 hca_object=10000"
            ]
        );
        // CFQ's file when the kernel has it.
        let cfq = Fake(vec![("blkio", "blkio.weight", "")]);
        let w = plan(&res(r#"{"blockIO":{"weight":300}}"#), &cfq).unwrap();
        assert_eq!(lines(&w), ["blkio/blkio.weight=300"]);
    }

    #[test]
    fn unified_is_refused_on_v1() {
        let e = plan(&res(r#"{"unified":{"memory.high":"1"}}"#), &Fake(vec![]))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("linux.resources.unified") && e.contains("cgroup v1"),
            "{e}"
        );
        assert!(plan(&res(r#"{"rdma":{"x":{}}}"#), &Fake(vec![])).is_err());
    }

    #[test]
    fn devices_from_allow_all() {
        let w = plan_devices(
            &res(r#"{"devices":[{"allow":false,"access":"rwm"}]}"#),
            "a *:* rwm\n",
        )
        .unwrap();
        assert_eq!(w[0].file, "devices.deny");
        assert_eq!(w[0].value, "a");
        assert!(w[1..].iter().all(|w| w.file == "devices.allow"));
        assert!(w.iter().any(|w| w.value == "c 136:* rwm"));
        // Re-applying onto the resulting state writes nothing.
        let list: String = DeviceState::from_config(&[])
            .unwrap()
            .exceptions
            .iter()
            .map(|e| e.to_line(e.access) + "\n")
            .collect();
        assert!(plan_devices(&res("{}"), &list).unwrap().is_empty());
    }
}
