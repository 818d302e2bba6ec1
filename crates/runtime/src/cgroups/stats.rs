//! Container statistics in runc's `events` JSON shape (its `types.Stats`: the same field names
//! and the same omitted-when-zero fields), and the parsers of the cgroup files they come from
//! (pure, unit-tested). The drivers read the files.

use std::collections::BTreeMap;

use serde::Serialize;

fn is_zero(v: &u64) -> bool {
    *v == 0
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Stats {
    pub cpu: Cpu,
    pub cpuset: CpuSet,
    pub memory: Memory,
    pub pids: Pids,
    pub blkio: Blkio,
    pub hugetlb: BTreeMap<String, Hugetlb>,
    pub intel_rdt: IntelRdt,
    /// Always `null`: husk does not read network namespaces' counters.
    pub network_interfaces: Option<Vec<()>>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct IntelRdt {}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Hugetlb {
    #[serde(skip_serializing_if = "is_zero")]
    pub usage: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub max: u64,
    pub failcnt: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct BlkioEntry {
    #[serde(skip_serializing_if = "is_zero")]
    pub major: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub minor: u64,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub op: String,
    #[serde(skip_serializing_if = "is_zero")]
    pub value: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Blkio {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub io_service_bytes_recursive: Vec<BlkioEntry>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub io_serviced_recursive: Vec<BlkioEntry>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Pids {
    #[serde(skip_serializing_if = "is_zero")]
    pub current: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub limit: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Throttling {
    #[serde(skip_serializing_if = "is_zero")]
    pub periods: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub throttled_periods: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub throttled_time: u64,
}

/// Nanoseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CpuUsage {
    #[serde(skip_serializing_if = "is_zero")]
    pub total: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu: Vec<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu_kernel: Vec<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu_user: Vec<u64>,
    pub kernel: u64,
    pub user: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Cpu {
    pub usage: CpuUsage,
    pub throttling: Throttling,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CpuSet {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cpus: Vec<u16>,
    pub cpu_exclusive: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mems: Vec<u16>,
    pub mem_hardwall: u64,
    pub mem_exclusive: u64,
    pub memory_migrate: u64,
    pub memory_spread_page: u64,
    pub memory_spread_slab: u64,
    pub memory_pressure: u64,
    pub sched_load_balance: u64,
    pub sched_relax_domain_level: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct MemoryEntry {
    pub limit: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub usage: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub max: u64,
    pub failcnt: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Memory {
    #[serde(skip_serializing_if = "is_zero")]
    pub cache: u64,
    pub usage: MemoryEntry,
    pub swap: MemoryEntry,
    pub kernel: MemoryEntry,
    #[serde(rename = "kernelTCP")]
    pub kernel_tcp: MemoryEntry,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub raw: BTreeMap<String, u64>,
}

/// The runc events envelope: `{"type":"stats","id":ID,"data":{...}}`, `data` omitted for `oom`.
#[derive(Debug, Clone, Serialize)]
pub struct Event<'a> {
    #[serde(rename = "type")]
    pub typ: &'a str,
    pub id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<&'a Stats>,
}

/// A number as cgroup files print them; `max` (v2) counts as u64::MAX.
pub fn parse_u64(s: &str) -> Option<u64> {
    let s = s.trim();
    if s == "max" {
        return Some(u64::MAX);
    }
    s.parse().ok()
}

/// `key value` lines (memory.stat, cpu.stat, memory.events, cpuacct.stat); others skipped.
pub fn parse_flat_keyed(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let (k, v) = (it.next()?, it.next()?);
            Some((k.to_string(), parse_u64(v)?))
        })
        .collect()
}

/// Space-separated numbers on one line (cpuacct.usage_percpu).
pub fn parse_numbers(text: &str) -> Vec<u64> {
    text.split_whitespace()
        .filter_map(|n| n.parse().ok())
        .collect()
}

/// cpuacct.usage_all: `cpu user system` rows after a header -> (per-cpu user, per-cpu system).
pub fn parse_cpuacct_usage_all(text: &str) -> (Vec<u64>, Vec<u64>) {
    let (mut user, mut sys) = (Vec::new(), Vec::new());
    for l in text.lines().skip(1) {
        let f: Vec<u64> = parse_numbers(l);
        if f.len() == 3 {
            user.push(f[1]);
            sys.push(f[2]);
        }
    }
    (user, sys)
}

/// v1 blkio `*_recursive` files: `8:0 Read 4096` lines (the `Total` line is skipped).
pub fn parse_blkio_v1(text: &str) -> Vec<BlkioEntry> {
    let mut out = Vec::new();
    for l in text.lines() {
        let f: Vec<&str> = l.split_whitespace().collect();
        let (dev, op, value) = match f.as_slice() {
            [dev, op, value] => (*dev, *op, *value),
            [dev, value] if dev.contains(':') => (*dev, "", *value),
            _ => continue,
        };
        let Some((ma, mi)) = dev.split_once(':') else {
            continue;
        };
        let (Ok(major), Ok(minor), Ok(value)) = (ma.parse(), mi.parse(), value.parse()) else {
            continue;
        };
        out.push(BlkioEntry {
            major,
            minor,
            op: op.to_string(),
            value,
        });
    }
    out
}

/// v2 io.stat (`8:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0 dios=0`) in v1's layout:
/// (service bytes, serviced), Read and Write entries per device.
pub fn parse_io_stat(text: &str) -> (Vec<BlkioEntry>, Vec<BlkioEntry>) {
    let (mut bytes, mut ios) = (Vec::new(), Vec::new());
    for l in text.lines() {
        let mut it = l.split_whitespace();
        let Some((ma, mi)) = it.next().and_then(|d| d.split_once(':')) else {
            continue;
        };
        let (Ok(major), Ok(minor)) = (ma.parse(), mi.parse()) else {
            continue;
        };
        for kv in it {
            let Some((k, v)) = kv.split_once('=') else {
                continue;
            };
            let Ok(value) = v.parse() else { continue };
            let (table, op) = match k {
                "rbytes" => (&mut bytes, "Read"),
                "wbytes" => (&mut bytes, "Write"),
                "rios" => (&mut ios, "Read"),
                "wios" => (&mut ios, "Write"),
                _ => continue,
            };
            table.push(BlkioEntry {
                major,
                minor,
                op: op.into(),
                value,
            });
        }
    }
    (bytes, ios)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_shape_matches_runc() {
        let mut s = Stats {
            pids: Pids {
                current: 1,
                limit: 50,
            },
            ..Default::default()
        };
        s.memory.usage = MemoryEntry {
            limit: 99,
            usage: 5,
            max: 7,
            failcnt: 0,
        };
        s.memory.kernel_tcp = MemoryEntry {
            limit: 9,
            ..Default::default()
        };
        let ev = Event {
            typ: "stats",
            id: "c1",
            data: Some(&s),
        };
        let v: serde_json::Value = serde_json::to_value(&ev).unwrap();
        assert_eq!(v["type"], "stats");
        assert_eq!(v["id"], "c1");
        let d = &v["data"];
        assert_eq!(d["pids"], serde_json::json!({"current": 1, "limit": 50}));
        assert_eq!(
            d["cpu"],
            serde_json::json!({"usage": {"kernel": 0, "user": 0}, "throttling": {}})
        );
        assert_eq!(
            d["memory"]["usage"],
            serde_json::json!({"limit": 99, "usage": 5, "max": 7, "failcnt": 0})
        );
        assert_eq!(
            d["memory"]["kernelTCP"],
            serde_json::json!({"limit": 9, "failcnt": 0})
        );
        assert!(d["memory"].get("raw").is_none());
        assert_eq!(d["blkio"], serde_json::json!({}));
        assert_eq!(d["hugetlb"], serde_json::json!({}));
        assert_eq!(d["intel_rdt"], serde_json::json!({}));
        assert!(d["network_interfaces"].is_null());
        assert_eq!(d["cpuset"]["sched_relax_domain_level"], 0);
        let oom = serde_json::to_string(&Event {
            typ: "oom",
            id: "c1",
            data: None,
        })
        .unwrap();
        assert_eq!(oom, r#"{"type":"oom","id":"c1"}"#);
    }

    #[test]
    fn parsers() {
        let m = parse_flat_keyed("cache 4096\nrss 8192\nbad\nhierarchical_memory_limit max\n");
        assert_eq!(m["cache"], 4096);
        assert_eq!(m["hierarchical_memory_limit"], u64::MAX);
        assert_eq!(m.len(), 3);
        assert_eq!(parse_numbers("1 2 3 \n"), [1, 2, 3]);
        let (u, s) = parse_cpuacct_usage_all("cpu user system\n0 10 20\n1 30 40\n");
        assert_eq!((u, s), (vec![10, 30], vec![20, 40]));
        let b = parse_blkio_v1("8:0 Read 4096\n8:0 Write 0\n8:0 Total 4096\nTotal 4096\n");
        assert_eq!(b.len(), 3);
        assert_eq!(
            b[0],
            BlkioEntry {
                major: 8,
                minor: 0,
                op: "Read".into(),
                value: 4096
            }
        );
        let (bytes, ios) =
            parse_io_stat("254:0 rbytes=10 wbytes=20 rios=1 wios=2 dbytes=0 dios=0\n");
        assert_eq!(bytes.len(), 2);
        assert_eq!(
            ios[1],
            BlkioEntry {
                major: 254,
                minor: 0,
                op: "Write".into(),
                value: 2
            }
        );
        assert_eq!(parse_u64(" 12\n"), Some(12));
        assert_eq!(parse_u64("x"), None);
    }
}
