//! `linux.memoryPolicy`: the NUMA memory policy of the container's init, set with
//! set_mempolicy(2) and inherited by everything it forks and execs.

use oci_spec::runtime::{LinuxMemoryPolicy, MemoryPolicyFlagType, MemoryPolicyModeType};

use super::{cpulist, ExtrasError};

/// Every mode: the spec's name and the kernel's number.
pub const MODES: &[(&str, i32)] = &[
    ("MPOL_DEFAULT", 0),
    ("MPOL_PREFERRED", 1),
    ("MPOL_BIND", 2),
    ("MPOL_INTERLEAVE", 3),
    ("MPOL_LOCAL", 4),
    ("MPOL_PREFERRED_MANY", 5),
    ("MPOL_WEIGHTED_INTERLEAVE", 6),
];

/// Every flag: the spec's name and the kernel's bit (ORed into the mode).
pub const FLAGS: &[(&str, i32)] = &[
    ("MPOL_F_NUMA_BALANCING", 1 << 13),
    ("MPOL_F_RELATIVE_NODES", 1 << 14),
    ("MPOL_F_STATIC_NODES", 1 << 15),
];

fn mode_name(m: MemoryPolicyModeType) -> &'static str {
    match m {
        MemoryPolicyModeType::MpolDefault => "MPOL_DEFAULT",
        MemoryPolicyModeType::MpolPreferred => "MPOL_PREFERRED",
        MemoryPolicyModeType::MpolBind => "MPOL_BIND",
        MemoryPolicyModeType::MpolInterleave => "MPOL_INTERLEAVE",
        MemoryPolicyModeType::MpolLocal => "MPOL_LOCAL",
        MemoryPolicyModeType::MpolPreferredMany => "MPOL_PREFERRED_MANY",
        MemoryPolicyModeType::MpolWeightedInterleave => "MPOL_WEIGHTED_INTERLEAVE",
    }
}

fn flag_name(f: MemoryPolicyFlagType) -> &'static str {
    match f {
        MemoryPolicyFlagType::MpolFNumaBalancing => "MPOL_F_NUMA_BALANCING",
        MemoryPolicyFlagType::MpolFRelativeNodes => "MPOL_F_RELATIVE_NODES",
        MemoryPolicyFlagType::MpolFStaticNodes => "MPOL_F_STATIC_NODES",
    }
}

fn lookup(table: &[(&str, i32)], name: &str) -> i32 {
    table
        .iter()
        .find(|(n, _)| *n == name)
        .map_or(0, |(_, v)| *v)
}

/// A checked memory policy, ready for set_mempolicy.
#[derive(Debug, PartialEq, Eq)]
pub struct Policy {
    /// mode | flags.
    pub mode: i32,
    pub nodes: Vec<u32>,
    /// For messages: `MPOL_BIND nodes "0-1"`.
    pub describe: String,
}

fn invalid(msg: String) -> ExtrasError {
    ExtrasError::Invalid(format!("linux.memoryPolicy: {msg}"))
}

impl Policy {
    /// The spec's rules: MPOL_DEFAULT and MPOL_LOCAL take no nodes; MPOL_BIND,
    /// MPOL_INTERLEAVE, MPOL_WEIGHTED_INTERLEAVE and MPOL_PREFERRED_MANY need at least one;
    /// MPOL_F_STATIC_NODES and MPOL_F_RELATIVE_NODES exclude each other.
    pub fn from_spec(mp: &LinuxMemoryPolicy) -> Result<Policy, ExtrasError> {
        let mode = mp.mode();
        let name = mode_name(mode);
        let text = mp.nodes().clone().unwrap_or_default();
        let nodes = cpulist::parse(&text).map_err(|e| invalid(format!("nodes: {e}")))?;
        match mode {
            MemoryPolicyModeType::MpolDefault | MemoryPolicyModeType::MpolLocal => {
                if !nodes.is_empty() {
                    return Err(invalid(format!("mode {name} takes no nodes, got {text:?}")));
                }
            }
            MemoryPolicyModeType::MpolPreferred => {}
            _ => {
                if nodes.is_empty() {
                    return Err(invalid(format!(
                        "mode {name} needs at least one node in nodes"
                    )));
                }
            }
        }
        let flags: Vec<&str> = mp.flags().iter().flatten().map(|f| flag_name(*f)).collect();
        if flags.contains(&"MPOL_F_STATIC_NODES") && flags.contains(&"MPOL_F_RELATIVE_NODES") {
            return Err(invalid(
                "flags MPOL_F_STATIC_NODES and MPOL_F_RELATIVE_NODES exclude each other".into(),
            ));
        }
        let bits = flags
            .iter()
            .fold(lookup(MODES, name), |acc, f| acc | lookup(FLAGS, f));
        let mut describe = format!("{name} nodes {text:?}");
        if !flags.is_empty() {
            describe.push_str(&format!(" flags {}", flags.join("|")));
        }
        Ok(Policy {
            mode: bits,
            nodes,
            describe,
        })
    }

    pub fn apply(&self) -> Result<(), ExtrasError> {
        let mask = cpulist::to_mask(&self.nodes);
        crate::sys::sched::set_mempolicy(self.mode, &mask).map_err(|e| {
            let hint = match (e, online_nodes()) {
                (nix::Error::EINVAL, Some(online)) => {
                    format!(" (the host's online nodes are {online})")
                }
                _ => String::new(),
            };
            ExtrasError::Sys {
                what: format!(
                    "setting linux.memoryPolicy {} with set_mempolicy{hint}",
                    self.describe
                ),
                source: e,
            }
        })
    }
}

fn online_nodes() -> Option<String> {
    std::fs::read_to_string("/sys/devices/system/node/online")
        .ok()
        .map(|s| s.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn policy(v: serde_json::Value) -> Result<Policy, ExtrasError> {
        Policy::from_spec(&serde_json::from_value(v).unwrap())
    }

    #[test]
    fn modes_and_flags() {
        let p =
            policy(json!({"mode": "MPOL_BIND", "nodes": "0-1", "flags": ["MPOL_F_STATIC_NODES"]}))
                .unwrap();
        assert_eq!(p.mode, 2 | 1 << 15);
        assert_eq!(p.nodes, vec![0, 1]);
        assert_eq!(policy(json!({"mode": "MPOL_LOCAL"})).unwrap().mode, 4);
        assert_eq!(
            policy(json!({"mode": "MPOL_PREFERRED"})).unwrap().nodes,
            Vec::<u32>::new()
        );
        assert_eq!(
            policy(json!({"mode": "MPOL_WEIGHTED_INTERLEAVE", "nodes": "0"}))
                .unwrap()
                .mode,
            6
        );
    }

    #[test]
    fn refuses_bad_combinations() {
        for (v, msg) in [
            (
                json!({"mode": "MPOL_DEFAULT", "nodes": "0"}),
                "takes no nodes",
            ),
            (json!({"mode": "MPOL_BIND"}), "needs at least one node"),
            (
                json!({"mode": "MPOL_INTERLEAVE", "nodes": ""}),
                "needs at least one node",
            ),
            (json!({"mode": "MPOL_BIND", "nodes": "0-x"}), "nodes:"),
            (
                json!({"mode": "MPOL_BIND", "nodes": "0",
                    "flags": ["MPOL_F_STATIC_NODES", "MPOL_F_RELATIVE_NODES"]}),
                "exclude",
            ),
        ] {
            let e = policy(v.clone()).unwrap_err().to_string();
            assert!(
                e.contains(msg) && e.starts_with("linux.memoryPolicy"),
                "{v}: {e}"
            );
        }
    }
}
