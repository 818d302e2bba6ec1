//! `process.scheduler` (sched_setattr), `process.ioPriority` (ioprio_set) and
//! `process.execCPUAffinity` (sched_setaffinity, for `husk exec` only: the spec says it does
//! not apply to the container's init).

use nix::sched::CpuSet;
use nix::unistd::Pid;
use oci_spec::runtime::{
    ExecCPUAffinity, IOPriorityClass, LinuxIOPriority, LinuxSchedulerFlag, LinuxSchedulerPolicy,
    Scheduler,
};

use super::{cpulist, ExtrasError};
use crate::sys::sched::SchedAttr;

fn invalid(msg: impl Into<String>) -> ExtrasError {
    ExtrasError::Invalid(msg.into())
}

/// The kernel's number for a policy (SCHED_ISO is reserved, 4, and refused by mainline).
pub fn policy_number(p: LinuxSchedulerPolicy) -> u32 {
    match p {
        LinuxSchedulerPolicy::SchedOther => 0,
        LinuxSchedulerPolicy::SchedFifo => 1,
        LinuxSchedulerPolicy::SchedRr => 2,
        LinuxSchedulerPolicy::SchedBatch => 3,
        LinuxSchedulerPolicy::SchedIso => 4,
        LinuxSchedulerPolicy::SchedIdle => 5,
        LinuxSchedulerPolicy::SchedDeadline => 6,
    }
}

/// The spec's name of a policy.
pub fn policy_name(p: LinuxSchedulerPolicy) -> &'static str {
    match p {
        LinuxSchedulerPolicy::SchedOther => "SCHED_OTHER",
        LinuxSchedulerPolicy::SchedFifo => "SCHED_FIFO",
        LinuxSchedulerPolicy::SchedRr => "SCHED_RR",
        LinuxSchedulerPolicy::SchedBatch => "SCHED_BATCH",
        LinuxSchedulerPolicy::SchedIso => "SCHED_ISO",
        LinuxSchedulerPolicy::SchedIdle => "SCHED_IDLE",
        LinuxSchedulerPolicy::SchedDeadline => "SCHED_DEADLINE",
    }
}

/// Every flag: the spec's name, oci-spec's serde name, the kernel's bit.
pub const FLAGS: &[(&str, &str, u64)] = &[
    ("SCHED_FLAG_RESET_ON_FORK", "SCHED_RESET_ON_FORK", 0x01),
    ("SCHED_FLAG_RECLAIM", "SCHED_FLAG_RECLAIM", 0x02),
    ("SCHED_FLAG_DL_OVERRUN", "SCHED_FLAG_D_L_OVERRUN", 0x04),
    ("SCHED_FLAG_KEEP_POLICY", "SCHED_FLAG_KEEP_POLICY", 0x08),
    ("SCHED_FLAG_KEEP_PARAMS", "SCHED_FLAG_KEEP_PARAMS", 0x10),
    (
        "SCHED_FLAG_UTIL_CLAMP_MIN",
        "SCHED_FLAG_UTIL_CLAMP_MIN",
        0x20,
    ),
    (
        "SCHED_FLAG_UTIL_CLAMP_MAX",
        "SCHED_FLAG_UTIL_CLAMP_MAX",
        0x40,
    ),
];

fn flag_bit(f: LinuxSchedulerFlag) -> u64 {
    match f {
        LinuxSchedulerFlag::SchedResetOnFork => 0x01,
        LinuxSchedulerFlag::SchedFlagReclaim => 0x02,
        LinuxSchedulerFlag::SchedFlagDLOverrun => 0x04,
        LinuxSchedulerFlag::SchedFlagKeepPolicy => 0x08,
        LinuxSchedulerFlag::SchedFlagKeepParams => 0x10,
        LinuxSchedulerFlag::SchedFlagUtilClampMin => 0x20,
        LinuxSchedulerFlag::SchedFlagUtilClampMax => 0x40,
    }
}

/// oci-spec 0.10 spells two flags differently from the spec (`SCHED_RESET_ON_FORK`,
/// `SCHED_FLAG_D_L_OVERRUN`): rewrites the spec's names in `scheduler.flags` of a process
/// object (config.json's `process`, or an `exec --process` file) to the ones oci-spec
/// parses. Unknown names are left for the parser to refuse.
pub fn normalize_flag_names(process: &mut serde_json::Value) {
    let Some(flags) = process
        .pointer_mut("/scheduler/flags")
        .and_then(|f| f.as_array_mut())
    else {
        return;
    };
    for f in flags {
        if let Some((_, serde_name, _)) = FLAGS.iter().find(|(spec, _, _)| f == spec) {
            *f = serde_json::Value::String((*serde_name).to_string());
        }
    }
}

/// The sched_attr for `process.scheduler`, after runc's checks: nice in -20..=19, a priority
/// only for SCHED_FIFO/SCHED_RR (and then 1..=99), runtime/deadline/period only for
/// SCHED_DEADLINE (and then runtime <= deadline <= period).
pub fn sched_attr(s: &Scheduler) -> Result<SchedAttr, ExtrasError> {
    let policy = *s.policy();
    let name = policy_name(policy);
    let nice = (*s.nice()).unwrap_or(0);
    if !(-20..=19).contains(&nice) {
        return Err(invalid(format!(
            "process.scheduler.nice {nice} is out of range: it must be between -20 and 19"
        )));
    }
    let priority = (*s.priority()).unwrap_or(0);
    let realtime = matches!(
        policy,
        LinuxSchedulerPolicy::SchedFifo | LinuxSchedulerPolicy::SchedRr
    );
    if realtime && !(1..=99).contains(&priority) {
        return Err(invalid(format!(
            "process.scheduler.priority {priority} is out of range for {name}: it must be between 1 and 99"
        )));
    }
    if !realtime && priority != 0 {
        return Err(invalid(format!(
            "process.scheduler.priority can only be specified for SCHED_FIFO or SCHED_RR, not {name}"
        )));
    }
    let (runtime, deadline, period) = (
        s.runtime().unwrap_or(0),
        s.deadline().unwrap_or(0),
        s.period().unwrap_or(0),
    );
    if policy == LinuxSchedulerPolicy::SchedDeadline {
        if runtime == 0 {
            return Err(invalid(
                "process.scheduler.runtime must be set (and non-zero) for SCHED_DEADLINE",
            ));
        }
        if deadline != 0 && runtime > deadline {
            return Err(invalid(format!(
                "process.scheduler.runtime {runtime} is greater than the deadline {deadline}"
            )));
        }
        if period != 0 && deadline.max(runtime) > period {
            return Err(invalid(format!(
                "process.scheduler.deadline {deadline} is greater than the period {period}"
            )));
        }
    } else if runtime != 0 || deadline != 0 || period != 0 {
        return Err(invalid(format!(
            "process.scheduler.runtime, deadline and period can only be specified for SCHED_DEADLINE, not {name}"
        )));
    }
    let flags = s
        .flags()
        .iter()
        .flatten()
        .fold(0, |acc, f| acc | flag_bit(*f));
    Ok(SchedAttr {
        sched_policy: policy_number(policy),
        sched_flags: flags,
        sched_nice: nice,
        sched_priority: priority as u32,
        sched_runtime: runtime,
        sched_deadline: deadline,
        sched_period: period,
        ..SchedAttr::default()
    })
}

pub fn apply_scheduler(s: &Scheduler) -> Result<(), ExtrasError> {
    let attr = sched_attr(s)?;
    crate::sys::sched::sched_setattr(&attr).map_err(|e| {
        let rt = matches!(attr.sched_policy, 1 | 2);
        // With RT group scheduling a new cgroup has no realtime budget (cpu.rt_runtime_us 0).
        let hint = if e == nix::Error::EPERM && rt {
            " (a realtime policy needs a realtime budget in the container's cgroup: \
             linux.resources.cpu.realtimeRuntime on cgroup v1 with RT group scheduling)"
        } else {
            ""
        };
        ExtrasError::Sys {
            what: format!(
                "setting process.scheduler (policy {}, nice {}, priority {}) with sched_setattr{hint}",
                policy_name(*s.policy()),
                attr.sched_nice,
                attr.sched_priority
            ),
            source: e,
        }
    })
}

const IOPRIO_CLASS_SHIFT: i32 = 13;

fn ioprio_class(c: IOPriorityClass) -> (i32, &'static str) {
    match c {
        IOPriorityClass::IoprioClassRt => (1, "IOPRIO_CLASS_RT"),
        IOPriorityClass::IoprioClassBe => (2, "IOPRIO_CLASS_BE"),
        IOPriorityClass::IoprioClassIdle => (3, "IOPRIO_CLASS_IDLE"),
    }
}

/// The ioprio value for `process.ioPriority`: class << 13 | priority, priority in 0..=7.
pub fn ioprio_value(io: &LinuxIOPriority) -> Result<i32, ExtrasError> {
    let (class, _) = ioprio_class(io.class());
    let prio = io.priority();
    if !(0..=7).contains(&prio) {
        return Err(invalid(format!(
            "process.ioPriority.priority {prio} is out of range: it must be between 0 (highest) and 7 (lowest)"
        )));
    }
    Ok(class << IOPRIO_CLASS_SHIFT | prio as i32)
}

pub fn apply_ioprio(io: &LinuxIOPriority) -> Result<(), ExtrasError> {
    let v = ioprio_value(io)?;
    crate::sys::sched::ioprio_set(v).map_err(ExtrasError::sys(format!(
        "setting process.ioPriority ({} {}) with ioprio_set",
        ioprio_class(io.class()).1,
        io.priority()
    )))
}

/// `process.execCPUAffinity`, parsed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Affinity {
    pub initial: Option<Vec<u32>>,
    pub final_: Option<Vec<u32>>,
}

impl Affinity {
    pub fn from_spec(a: &ExecCPUAffinity) -> Result<Affinity, ExtrasError> {
        let parse = |field: &str, v: &Option<String>| -> Result<Option<Vec<u32>>, ExtrasError> {
            match v.as_deref() {
                None | Some("") => Ok(None),
                Some(s) => cpulist::parse(s)
                    .map(Some)
                    .map_err(|e| invalid(format!("process.execCPUAffinity.{field}: {e}"))),
            }
        };
        Ok(Affinity {
            initial: parse("initial", a.initial())?,
            final_: parse("final", a.cpu_affinity_final())?,
        })
    }
}

/// sched_setaffinity of the calling process to `cpus`; `field` names it in the error.
pub fn set_affinity(cpus: &[u32], field: &str) -> Result<(), ExtrasError> {
    let mut set = CpuSet::new();
    for &c in cpus {
        set.set(c as usize).map_err(ExtrasError::sys(format!(
            "process.execCPUAffinity.{field}: CPU {c}"
        )))?;
    }
    nix::sched::sched_setaffinity(Pid::from_raw(0), &set).map_err(ExtrasError::sys(format!(
        "setting process.execCPUAffinity.{field} (CPUs {cpus:?}) with sched_setaffinity"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sched(v: serde_json::Value) -> Scheduler {
        let mut process = json!({ "scheduler": v });
        normalize_flag_names(&mut process);
        serde_json::from_value(process["scheduler"].take()).unwrap()
    }

    #[test]
    fn other_with_nice() {
        let a = sched_attr(&sched(json!({"policy": "SCHED_OTHER", "nice": 5}))).unwrap();
        assert_eq!((a.sched_policy, a.sched_nice, a.sched_priority), (0, 5, 0));
    }

    #[test]
    fn fifo_with_priority_and_spec_flag_names() {
        let s = sched(json!({"policy": "SCHED_FIFO", "priority": 10,
            "flags": ["SCHED_FLAG_RESET_ON_FORK", "SCHED_FLAG_DL_OVERRUN", "SCHED_FLAG_KEEP_PARAMS"]}));
        let a = sched_attr(&s).unwrap();
        assert_eq!(
            (a.sched_policy, a.sched_priority, a.sched_flags),
            (1, 10, 0x01 | 0x04 | 0x10)
        );
    }

    #[test]
    fn refuses_bad_values() {
        for (v, msg) in [
            (json!({"policy": "SCHED_OTHER", "nice": 20}), "nice 20"),
            (
                json!({"policy": "SCHED_OTHER", "priority": 3}),
                "priority can only",
            ),
            (
                json!({"policy": "SCHED_FIFO"}),
                "priority 0 is out of range",
            ),
            (
                json!({"policy": "SCHED_RR", "priority": 100}),
                "priority 100",
            ),
            (
                json!({"policy": "SCHED_BATCH", "runtime": 5}),
                "only be specified for SCHED_DEADLINE",
            ),
            (json!({"policy": "SCHED_DEADLINE"}), "runtime must be set"),
            (
                json!({"policy": "SCHED_DEADLINE", "runtime": 10, "deadline": 5}),
                "greater than the deadline",
            ),
            (
                json!({"policy": "SCHED_DEADLINE", "runtime": 10, "deadline": 50, "period": 20}),
                "greater than the period",
            ),
        ] {
            let e = sched_attr(&sched(v.clone())).unwrap_err().to_string();
            assert!(
                e.contains(msg) && e.contains("process.scheduler"),
                "{v}: {e}"
            );
        }
    }

    #[test]
    fn deadline_ok() {
        let a = sched_attr(&sched(json!({"policy": "SCHED_DEADLINE",
            "runtime": 1000000, "deadline": 2000000, "period": 3000000})))
        .unwrap();
        assert_eq!(
            (a.sched_policy, a.sched_runtime, a.sched_period),
            (6, 1000000, 3000000)
        );
    }

    #[test]
    fn config_with_the_spec_flag_names_parses() {
        let cfg = json!({"ociVersion": "1.3.0", "process": {"cwd": "/", "user": {"uid": 0, "gid": 0},
            "scheduler": {"policy": "SCHED_DEADLINE", "runtime": 1,
                "flags": ["SCHED_FLAG_RESET_ON_FORK", "SCHED_FLAG_DL_OVERRUN", "SCHED_FLAG_RECLAIM"]}}});
        let spec = crate::spec::parse(cfg.to_string().as_bytes()).unwrap();
        let s = spec
            .process()
            .as_ref()
            .unwrap()
            .scheduler()
            .clone()
            .unwrap();
        assert_eq!(sched_attr(&s).unwrap().sched_flags, 0x01 | 0x04 | 0x02);
        // An unknown flag still names the field.
        let mut bad = cfg.clone();
        bad["process"]["scheduler"]["flags"] = json!(["SCHED_FLAG_RESET_ON_FORK", "NOPE"]);
        let (field, _) = crate::spec::parse(bad.to_string().as_bytes()).unwrap_err();
        assert_eq!(field, "process.scheduler.flags[1]");
    }

    #[test]
    fn ioprio() {
        let io: LinuxIOPriority =
            serde_json::from_value(json!({"class": "IOPRIO_CLASS_IDLE", "priority": 7})).unwrap();
        assert_eq!(ioprio_value(&io).unwrap(), 3 << 13 | 7);
        let io: LinuxIOPriority =
            serde_json::from_value(json!({"class": "IOPRIO_CLASS_BE", "priority": 8})).unwrap();
        assert!(ioprio_value(&io)
            .unwrap_err()
            .to_string()
            .contains("process.ioPriority.priority 8"));
    }

    #[test]
    fn affinity() {
        let a: ExecCPUAffinity =
            serde_json::from_value(json!({"initial": "0-1", "final": "1"})).unwrap();
        let a = Affinity::from_spec(&a).unwrap();
        assert_eq!(
            a,
            Affinity {
                initial: Some(vec![0, 1]),
                final_: Some(vec![1])
            }
        );
        let a: ExecCPUAffinity = serde_json::from_value(json!({"final": "2000"})).unwrap();
        assert!(Affinity::from_spec(&a)
            .unwrap_err()
            .to_string()
            .contains("execCPUAffinity.final"));
    }
}
