//! The cgroup v2 driver: one directory; v1-only fields converted as runc converts them;
//! devices as an eBPF program. What each field writes is planned by [`plan`] (pure apart from
//! its [`Probe`] reads, unit-tested).

use std::collections::BTreeSet;
use std::ffi::CString;
use std::fs;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::devices::DeviceState;
use super::manager::{self, write_file, Manager, OomWatch, Write};
use super::resources::Resources;
use super::stats::{self, Stats};
use super::v1::{rdma_line, Probe};
use super::{convert, ebpf, CgroupError};
use crate::sys::bpf;

/// Enable in `dir`'s `cgroup.subtree_control` every controller `dir` has, so that the cgroups
/// below it get them. Best effort: a controller the kernel refuses (a parent with processes of
/// its own, a threaded subtree, ...) is logged and skipped.
pub(crate) fn enable_subtree_controllers(dir: &Path) {
    let available = match fs::read_to_string(dir.join("cgroup.controllers")) {
        Ok(s) => s,
        Err(e) => {
            tracing::debug!(dir = %dir.display(), error = %e, "reading cgroup.controllers");
            return;
        }
    };
    let enabled = fs::read_to_string(dir.join("cgroup.subtree_control")).unwrap_or_default();
    let enabled: Vec<&str> = enabled.split_whitespace().collect();
    let missing: Vec<&str> = available
        .split_whitespace()
        .filter(|c| !enabled.contains(c))
        .collect();
    if missing.is_empty() {
        return;
    }
    let file = dir.join("cgroup.subtree_control");
    let all: String = missing.iter().map(|c| format!("+{c} ")).collect();
    if fs::write(&file, all.trim_end()).is_ok() {
        return;
    }
    for c in missing {
        if let Err(e) = fs::write(&file, format!("+{c}")) {
            tracing::debug!(path = %file.display(), controller = c, error = %e, "enabling controller");
        }
    }
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

/// The writes for every set field of `r` but the device rules. `update`: checkBeforeUpdate
/// applies.
pub(crate) fn plan(r: &Resources, p: &dyn Probe, update: bool) -> Result<Vec<Write>, CgroupError> {
    let mut w = Vec::new();
    if let Some(m) = &r.memory {
        let limit = m.limit.unwrap_or(0);
        let swap = m.swap.unwrap_or(0);
        if update && m.check_before_update == Some(true) && limit > 0 {
            let usage = p
                .read("memory", "memory.current")
                .and_then(|s| stats::parse_u64(&s))
                .unwrap_or(0);
            if usage > limit as u64 {
                return Err(invalid(
                    "memory.limit",
                    format!("rejecting memory limit {limit} below the current usage {usage} (checkBeforeUpdate)"),
                ));
            }
        }
        let v2swap =
            convert::memory_swap_to_v2(swap, limit).map_err(|e| invalid("memory.swap", e))?;
        let swap_value = match v2swap {
            0 if swap > 0 => Some("0".to_string()), // memory == memory+swap: no swap at all
            0 => None,
            v => Some(convert::v2_limit(v)),
        };
        if let Some(v) = swap_value {
            // Without swap accounting there is no memory.swap.max; "max" and "0" then hold anyway.
            if p.exists("memory", "memory.swap.max") || (v != "max" && v != "0") {
                let d = v == "max";
                w.push(Write::new("memory.swap", "memory", "memory.swap.max", v).default_value(d));
            }
        }
        if limit != 0 {
            w.push(
                Write::new(
                    "memory.limit",
                    "memory",
                    "memory.max",
                    convert::v2_limit(limit),
                )
                .default_value(limit < 0),
            );
        }
        if let Some(res) = m.reservation.filter(|v| *v != 0) {
            w.push(
                Write::new(
                    "memory.reservation",
                    "memory",
                    "memory.low",
                    convert::v2_limit(res),
                )
                .default_value(res < 0),
            );
        }
        if m.swappiness.is_some() {
            return Err(unsupported(
                "memory.swappiness",
                "cgroup v2 has no per-cgroup swappiness",
            ));
        }
        if m.disable_oom_killer == Some(true) {
            return Err(unsupported(
                "memory.disableOOMKiller",
                "cgroup v2 cannot disable the OOM killer (use unified memory.oom.group or memory.high)",
            ));
        }
        if m.kernel.is_some_and(|k| k != 0) || m.kernel_tcp.is_some_and(|k| k != 0) {
            tracing::warn!(
                "linux.resources.memory.kernel and kernelTCP are deprecated and ignored"
            );
        }
    }
    if let Some(c) = &r.cpu {
        if c.realtime_runtime.is_some_and(|v| v != 0) || c.realtime_period.is_some_and(|v| v != 0) {
            let field = if c.realtime_runtime.is_some() {
                "cpu.realtimeRuntime"
            } else {
                "cpu.realtimePeriod"
            };
            return Err(unsupported(
                field,
                "cgroup v2 has no realtime group scheduling",
            ));
        }
        if let Some(i) = c.idle {
            w.push(Write::new("cpu.idle", "cpu", "cpu.idle", i).default_value(i == 0));
        }
        if let Some(s) = c.shares.filter(|s| *s != 0) {
            w.push(Write::new(
                "cpu.shares",
                "cpu",
                "cpu.weight",
                convert::cpu_shares_to_weight(s),
            ));
        }
        let quota = c.quota.unwrap_or(0);
        let period = c.period.unwrap_or(0);
        if let Some(b) = c.burst {
            let mut wr = Write::new("cpu.burst", "cpu", "cpu.max.burst", b).default_value(b == 0);
            if quota != 0 {
                wr = wr.retry_einval();
            }
            w.push(wr);
        }
        if quota != 0 || period != 0 {
            let q = if quota > 0 {
                quota.to_string()
            } else {
                "max".into()
            };
            let per = if period == 0 { 100_000 } else { period };
            w.push(
                Write::new("cpu.quota", "cpu", "cpu.max", format!("{q} {per}"))
                    .default_value(quota <= 0 && per == 100_000),
            );
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
        if b.leaf_weight.is_some_and(|v| v != 0)
            || b.weight_device.iter().any(|d| d.leaf_weight.is_some())
        {
            return Err(unsupported(
                "blockIO.leafWeight",
                "cgroup v2 has no leaf weights",
            ));
        }
        let bfq = p.exists("io", "io.bfq.weight");
        if let Some(v) = b.weight.filter(|v| *v != 0) {
            w.push(if bfq {
                Write::new("blockIO.weight", "io", "io.bfq.weight", v)
            } else {
                Write::new(
                    "blockIO.weight",
                    "io",
                    "io.weight",
                    convert::blkio_weight_to_io_weight(v),
                )
            });
        }
        for d in &b.weight_device {
            if let Some(v) = d.weight {
                w.push(if bfq {
                    Write::new(
                        "blockIO.weightDevice",
                        "io",
                        "io.bfq.weight",
                        format!("{}:{} {v}", d.major, d.minor),
                    )
                } else {
                    let conv = convert::blkio_weight_to_io_weight(v);
                    Write::new(
                        "blockIO.weightDevice",
                        "io",
                        "io.weight",
                        format!("{}:{} {conv}", d.major, d.minor),
                    )
                });
            }
        }
        for (field, _, key, list) in b.throttles() {
            for t in list {
                let line = format!("{}:{} {key}={}", t.major, t.minor, t.rate);
                w.push(Write::new(field, "io", "io.max", line));
            }
        }
    }
    for h in &r.hugepage_limits {
        w.push(Write::new(
            "hugepageLimits",
            "hugetlb",
            &format!("hugetlb.{}.max", h.page_size),
            h.limit,
        ));
        let rsvd = format!("hugetlb.{}.rsvd.max", h.page_size);
        if p.exists("hugetlb", &rsvd) {
            w.push(Write::new("hugepageLimits", "hugetlb", &rsvd, h.limit));
        }
    }
    if let Some(n) = &r.network {
        if n.class_id.is_some_and(|c| c != 0) || !n.priorities.is_empty() {
            let field = if n.class_id.is_some() {
                "network.classID"
            } else {
                "network.priorities"
            };
            return Err(unsupported(
                field,
                "net_cls and net_prio do not exist in cgroup v2",
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
    for (key, value) in &r.unified {
        let field = format!("unified.{key}");
        if key.contains('/') || key.starts_with('.') || key.is_empty() {
            return Err(invalid(&field, "must be a file name (no slashes)".into()));
        }
        let Some((controller, _)) = key.split_once('.') else {
            return Err(invalid(&field, "must be CONTROLLER.PARAMETER".into()));
        };
        let controller = if controller == "cgroup" {
            ""
        } else {
            controller
        };
        w.push(Write::new(&field, controller, key, value));
    }
    Ok(w)
}

/// The cgroup v2 driver.
pub(crate) struct V2 {
    pub path: PathBuf,
}

impl Probe for V2 {
    fn exists(&self, _controller: &str, file: &str) -> bool {
        self.path.join(file).exists()
    }

    fn read(&self, _controller: &str, file: &str) -> Option<String> {
        fs::read_to_string(self.path.join(file)).ok()
    }
}

const FREEZE_TIMEOUT: Duration = Duration::from_secs(10);

impl V2 {
    fn u64_of(&self, file: &str) -> u64 {
        self.read("", file)
            .and_then(|s| stats::parse_u64(&s))
            .unwrap_or(0)
    }

    /// Load the device filter for `res` and make it the cgroup's only one: attach the new
    /// program, then detach the ones attached before (meanwhile both apply: stricter, never
    /// looser).
    fn apply_devices(&self, res: &Resources) -> Result<(), CgroupError> {
        let state = DeviceState::from_config(&res.devices)?;
        let prog = ebpf::encode(&ebpf::device_filter(&state));
        let license = CString::new(ebpf::LICENSE).unwrap_or_default();
        let bpf_err = |what: &str, e: nix::Error| CgroupError::Bpf {
            what: what.to_string(),
            path: self.path.clone(),
            errno: e,
            log: String::new(),
        };
        let dir = manager::open_dir(&self.path)?;
        let old = bpf::query_cgroup_device(dir.as_fd())
            .map_err(|e| bpf_err("listing device programs", e))?;
        let fd =
            bpf::load_cgroup_device_prog(&prog, &license, "husk_devices").map_err(|(e, log)| {
                CgroupError::Bpf {
                    what: "loading the device filter".into(),
                    path: self.path.clone(),
                    errno: e,
                    log,
                }
            })?;
        bpf::attach_cgroup_device(dir.as_fd(), fd.as_fd(), bpf::BPF_F_ALLOW_MULTI)
            .map_err(|e| bpf_err("attaching the device filter", e))?;
        for id in old {
            match bpf::prog_fd_by_id(id) {
                Ok(old_fd) => {
                    if let Err(e) = bpf::detach_cgroup_device(dir.as_fd(), old_fd.as_fd()) {
                        tracing::warn!("detaching the previous device filter (id {id}): {e}");
                    }
                }
                Err(e) => tracing::warn!("opening the previous device filter (id {id}): {e}"),
            }
        }
        Ok(())
    }
}

impl Manager for V2 {
    fn version(&self) -> &'static str {
        "v2"
    }

    fn apply(&self, res: &Resources, devices: bool, update: bool) -> Result<(), CgroupError> {
        let writes = plan(res, self, update)?;
        if !writes.is_empty() {
            let available: BTreeSet<String> =
                fs::read_to_string(self.path.join("cgroup.controllers"))
                    .unwrap_or_default()
                    .split_whitespace()
                    .map(String::from)
                    .collect();
            manager::execute(&writes, |c: &str| {
                (c.is_empty() || available.contains(c)).then(|| self.path.clone())
            })?;
        }
        if devices {
            self.apply_devices(res)?;
        }
        Ok(())
    }

    fn set_frozen(&self, frozen: bool) -> Result<(), CgroupError> {
        let file = self.path.join("cgroup.freeze");
        let value = if frozen { "1" } else { "0" };
        write_file(&file, value).map_err(|source| CgroupError::Write {
            what: value.into(),
            path: file.clone(),
            source,
        })?;
        let want = format!("frozen {value}");
        let events = self.path.join("cgroup.events");
        if manager::wait_for(&events, FREEZE_TIMEOUT, |s| {
            s.lines().any(|l| l.trim() == want)
        })? {
            return Ok(());
        }
        if frozen {
            let _ = write_file(&file, "0");
        }
        Err(CgroupError::Freeze {
            path: file,
            state: if frozen { "frozen" } else { "thawed" },
        })
    }

    fn frozen(&self) -> bool {
        self.read("", "cgroup.freeze")
            .is_some_and(|s| s.trim() == "1")
    }

    fn stats(&self) -> Result<Stats, CgroupError> {
        let mut s = Stats::default();
        let cpu = stats::parse_flat_keyed(&self.read("", "cpu.stat").unwrap_or_default());
        let g = |k: &str| cpu.get(k).copied().unwrap_or(0);
        s.cpu.usage.total = g("usage_usec") * 1000;
        s.cpu.usage.user = g("user_usec") * 1000;
        s.cpu.usage.kernel = g("system_usec") * 1000;
        s.cpu.throttling.periods = g("nr_periods");
        s.cpu.throttling.throttled_periods = g("nr_throttled");
        s.cpu.throttling.throttled_time = g("throttled_usec") * 1000;
        s.cpuset.cpus =
            convert::parse_cpu_list(&self.read("", "cpuset.cpus.effective").unwrap_or_default());
        s.cpuset.mems =
            convert::parse_cpu_list(&self.read("", "cpuset.mems.effective").unwrap_or_default());
        if let Some(text) = self.read("", "memory.stat") {
            let m = &mut s.memory;
            m.raw = stats::parse_flat_keyed(&text);
            m.cache = m.raw.get("file").copied().unwrap_or(0);
            m.usage.usage = self.u64_of("memory.current");
            m.usage.limit = self.u64_of("memory.max");
            m.usage.max = self.u64_of("memory.peak");
            // v1 reports swap as memory+swap; so does runc on v2.
            m.swap.usage = self.u64_of("memory.swap.current") + m.usage.usage;
            let swap_max = self.u64_of("memory.swap.max");
            m.swap.limit = if swap_max == u64::MAX || m.usage.limit == u64::MAX {
                u64::MAX
            } else {
                swap_max + m.usage.limit
            };
            let ev = stats::parse_flat_keyed(&self.read("", "memory.events").unwrap_or_default());
            m.usage.failcnt = ev.get("max").copied().unwrap_or(0);
        }
        s.pids.current = self.u64_of("pids.current");
        s.pids.limit = match self.u64_of("pids.max") {
            u64::MAX => 0,
            n => n,
        };
        let (bytes, ios) = stats::parse_io_stat(&self.read("", "io.stat").unwrap_or_default());
        s.blkio.io_service_bytes_recursive = bytes;
        s.blkio.io_serviced_recursive = ios;
        for size in convert::hugepage_sizes() {
            let Some(cur) = self.read("", &format!("hugetlb.{size}.current")) else {
                continue;
            };
            let ev = stats::parse_flat_keyed(
                &self
                    .read("", &format!("hugetlb.{size}.events"))
                    .unwrap_or_default(),
            );
            s.hugetlb.insert(
                size,
                stats::Hugetlb {
                    usage: stats::parse_u64(&cur).unwrap_or(0),
                    max: 0,
                    failcnt: ev.get("max").copied().unwrap_or(0),
                },
            );
        }
        Ok(s)
    }

    fn kill_all(&self) -> Result<bool, CgroupError> {
        let file = self.path.join("cgroup.kill");
        match write_file(&file, "1") {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(source) => Err(CgroupError::Write {
                what: "1".into(),
                path: file,
                source,
            }),
        }
    }

    fn oom_watch(&self) -> Result<Option<OomWatch>, CgroupError> {
        manager::oom_watch_v2(&self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fake(Vec<(&'static str, &'static str)>);

    impl Probe for Fake {
        fn exists(&self, _c: &str, f: &str) -> bool {
            self.0.iter().any(|(ff, _)| *ff == f)
        }
        fn read(&self, _c: &str, f: &str) -> Option<String> {
            self.0
                .iter()
                .find(|(ff, _)| *ff == f)
                .map(|(_, v)| v.to_string())
        }
    }

    fn res(json: &str) -> Resources {
        Resources::from_value(serde_json::from_str(json).unwrap(), "test").unwrap()
    }

    fn lines(w: &[Write]) -> Vec<String> {
        w.iter()
            .map(|w| format!("{}={}", w.file, w.value))
            .collect()
    }

    fn err(json: &str) -> String {
        plan(&res(json), &Fake(vec![]), false)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn memory_conversions() {
        let host = Fake(vec![("memory.swap.max", "max"), ("memory.current", "5000")]);
        let w = plan(
            &res(r#"{"memory":{"limit":1000,"swap":3000,"reservation":500}}"#),
            &host,
            false,
        )
        .unwrap();
        assert_eq!(
            lines(&w),
            ["memory.swap.max=2000", "memory.max=1000", "memory.low=500"]
        );
        let w = plan(
            &res(r#"{"memory":{"limit":1000,"swap":1000}}"#),
            &host,
            false,
        )
        .unwrap();
        assert_eq!(lines(&w), ["memory.swap.max=0", "memory.max=1000"]);
        let w = plan(&res(r#"{"memory":{"limit":-1}}"#), &host, false).unwrap();
        assert_eq!(lines(&w), ["memory.swap.max=max", "memory.max=max"]);
        // No swap accounting: "max" is skipped, not an error.
        let w = plan(&res(r#"{"memory":{"limit":-1}}"#), &Fake(vec![]), false).unwrap();
        assert_eq!(lines(&w), ["memory.max=max"]);
        assert!(err(r#"{"memory":{"swap":3000}}"#).contains("without memory limit"));
        assert!(
            err(r#"{"memory":{"swappiness":10}}"#).contains("linux.resources.memory.swappiness")
        );
        assert!(err(r#"{"memory":{"disableOOMKiller":true}}"#).contains("disableOOMKiller"));
        // checkBeforeUpdate only on update.
        let r = res(r#"{"memory":{"limit":1000,"checkBeforeUpdate":true}}"#);
        assert!(plan(&r, &host, false).is_ok());
        let e = plan(&r, &host, true).unwrap_err().to_string();
        assert!(e.contains("below the current usage 5000"), "{e}");
    }

    #[test]
    fn cpu_conversions() {
        let w = plan(
            &res(r#"{"cpu":{"shares":1024,"quota":50000,"period":200000,"burst":1000,"idle":0,"cpus":"0-1","mems":"0"}}"#),
            &Fake(vec![]),
            false,
        )
        .unwrap();
        assert_eq!(
            lines(&w),
            [
                "cpu.idle=0",
                "cpu.weight=39",
                "cpu.max.burst=1000",
                "cpu.max=50000 200000",
                "cpuset.cpus=0-1",
                "cpuset.mems=0"
            ]
        );
        assert!(w[2].retry_einval);
        let w = plan(&res(r#"{"cpu":{"quota":-1}}"#), &Fake(vec![]), false).unwrap();
        assert_eq!(lines(&w), ["cpu.max=max 100000"]);
        assert!(w[0].default);
        let w = plan(&res(r#"{"cpu":{"period":50000}}"#), &Fake(vec![]), false).unwrap();
        assert_eq!(lines(&w), ["cpu.max=max 50000"]);
        assert!(err(r#"{"cpu":{"realtimeRuntime":5}}"#).contains("realtime"));
    }

    #[test]
    fn io_pids_hugetlb_rdma_unified() {
        let w = plan(
            &res(
                r#"{"blockIO":{"weight":500,"weightDevice":[{"major":8,"minor":0,"weight":100}],
                     "throttleReadBpsDevice":[{"major":8,"minor":0,"rate":100}],
                     "throttleWriteIOPSDevice":[{"major":8,"minor":0,"rate":7}]},
                     "pids":{"limit":32},"hugepageLimits":[{"pageSize":"2MB","limit":2097152}],
                     "rdma":{"mlx4_0":{"hcaObjects":1000}},
                     "unified":{"memory.high":"1000000","cgroup.max.depth":"2"}}"#,
            ),
            &Fake(vec![("hugetlb.2MB.rsvd.max", "max")]),
            false,
        )
        .unwrap();
        assert_eq!(
            lines(&w),
            [
                "pids.max=32",
                "io.weight=4950",
                "io.weight=8:0 910",
                "io.max=8:0 rbps=100",
                "io.max=8:0 wiops=7",
                "hugetlb.2MB.max=2097152",
                "hugetlb.2MB.rsvd.max=2097152",
                "rdma.max=mlx4_0 hca_object=1000",
                "cgroup.max.depth=2",
                "memory.high=1000000"
            ]
        );
        assert_eq!(w[8].controller, "");
        assert_eq!(w[9].controller, "memory");
        // bfq present: the v1 weight as is.
        let w = plan(
            &res(r#"{"blockIO":{"weight":500}}"#),
            &Fake(vec![("io.bfq.weight", "")]),
            false,
        )
        .unwrap();
        assert_eq!(lines(&w), ["io.bfq.weight=500"]);
        assert!(err(r#"{"blockIO":{"leafWeight":10}}"#).contains("leafWeight"));
        assert!(err(r#"{"network":{"classID":5}}"#).contains("network.classID"));
        assert!(
            plan(&res(r#"{"network":{"classID":0}}"#), &Fake(vec![]), false)
                .unwrap()
                .is_empty()
        );
        assert!(err(r#"{"unified":{"../x":"1"}}"#).contains("no slashes"));
        assert!(err(r#"{"unified":{"nodot":"1"}}"#).contains("CONTROLLER.PARAMETER"));
    }
}
