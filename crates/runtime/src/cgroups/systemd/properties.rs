//! `linux.resources` as systemd unit properties, with runc's conversions (pure, unit-tested).
//! Only what systemd has a property for; husk writes every field to the delegated cgroup's
//! files afterwards as well, so the limits are the cgroupfs driver's to the byte.

use super::super::convert;
use super::super::devices::{DevType, DeviceState, ACC_MKNOD, ACC_READ, ACC_WRITE};
use super::super::resources::Resources;
use super::super::CgroupError;
use crate::dbus::Value;
use crate::extras::cpulist;

/// systemd's "infinity" for sizes, counts and times.
const INFINITY: u64 = u64::MAX;
/// The CFS period systemd and the kernel assume when none is given.
const DEFAULT_PERIOD: u64 = 100_000;

pub type Property = (String, Value);

fn prop(name: &str, v: Value) -> Property {
    (name.to_string(), v)
}

fn limit(v: i64) -> u64 {
    if v < 0 {
        INFINITY
    } else {
        v as u64
    }
}

/// A cpu or memory-node list (`0-3,8`) as systemd's bitmask: byte i holds ids 8i..8i+7
/// (the cpu_set_t words of [`cpulist::to_mask`], little-endian, without trailing zeros).
pub fn cpu_mask(list: &str) -> Result<Vec<u8>, String> {
    let ids = cpulist::parse(list.trim())?;
    if ids.is_empty() {
        return Err("the list is empty".into());
    }
    let mut mask: Vec<u8> = cpulist::to_mask(&ids)
        .iter()
        .flat_map(|w| w.to_le_bytes())
        .collect();
    while mask.last() == Some(&0) {
        mask.pop();
    }
    Ok(mask)
}

fn bytes(v: Vec<u8>) -> Value {
    Value::Array("y".into(), v.into_iter().map(Value::Byte).collect())
}

/// runc's CPUQuotaPerSecUSec: quota per second of CPU time, rounded up to 10 ms (systemd keeps a
/// percentage); -1 or no quota with a period is infinity.
pub fn quota_per_sec(quota: i64, period: u64) -> u64 {
    if quota <= 0 {
        return INFINITY;
    }
    let period = if period == 0 { DEFAULT_PERIOD } else { period };
    let per_sec = (quota as u64).saturating_mul(1_000_000) / period;
    per_sec.div_ceil(10_000) * 10_000
}

/// The unit properties for `res`. Errors only for values that cannot be converted (the
/// cgroupfs writes would refuse them too).
pub fn resources(res: &Resources) -> Result<Vec<Property>, CgroupError> {
    let mut out = Vec::new();
    let invalid = |field: &str, reason: String| CgroupError::Invalid {
        field: format!("linux.resources.{field}"),
        reason,
    };
    if let Some(m) = &res.memory {
        let mem = m.limit.unwrap_or(0);
        if mem != 0 {
            out.push(prop("MemoryMax", Value::U64(limit(mem))));
        }
        if let Some(r) = m.reservation.filter(|r| *r != 0) {
            out.push(prop("MemoryLow", Value::U64(limit(r))));
        }
        let swap = convert::memory_swap_to_v2(m.swap.unwrap_or(0), mem)
            .map_err(|r| invalid("memory.swap", r))?;
        if swap != 0 {
            out.push(prop("MemorySwapMax", Value::U64(limit(swap))));
        }
    }
    if let Some(c) = &res.cpu {
        if let Some(s) = c.shares.filter(|s| *s != 0) {
            out.push(prop(
                "CPUWeight",
                Value::U64(convert::cpu_shares_to_weight(s)),
            ));
        }
        let (quota, period) = (c.quota.unwrap_or(0), c.period.unwrap_or(0));
        if period != 0 {
            out.push(prop("CPUQuotaPeriodUSec", Value::U64(period)));
        }
        if quota != 0 || period != 0 {
            out.push(prop(
                "CPUQuotaPerSecUSec",
                Value::U64(quota_per_sec(quota, period)),
            ));
        }
        if let Some(cpus) = c.cpus.as_deref().filter(|s| !s.is_empty()) {
            let mask = cpu_mask(cpus).map_err(|r| invalid("cpu.cpus", r))?;
            out.push(prop("AllowedCPUs", bytes(mask)));
        }
        if let Some(mems) = c.mems.as_deref().filter(|s| !s.is_empty()) {
            let mask = cpu_mask(mems).map_err(|r| invalid("cpu.mems", r))?;
            out.push(prop("AllowedMemoryNodes", bytes(mask)));
        }
    }
    if let Some(l) = res.pids.as_ref().and_then(|p| p.limit) {
        if l > 0 || l == -1 {
            out.push(prop("TasksMax", Value::U64(limit(l))));
        }
    }
    if let Some(b) = &res.block_io {
        if let Some(w) = b.weight.filter(|w| *w != 0) {
            out.push(prop(
                "IOWeight",
                Value::U64(convert::blkio_weight_to_io_weight(w)),
            ));
        }
        let dev = |major: i64, minor: i64| format!("/dev/block/{major}:{minor}");
        let weights: Vec<Value> = b
            .weight_device
            .iter()
            .filter_map(|d| {
                let w = d.weight.filter(|w| *w != 0)?;
                Some(Value::Struct(vec![
                    Value::Str(dev(d.major, d.minor)),
                    Value::U64(convert::blkio_weight_to_io_weight(w)),
                ]))
            })
            .collect();
        if !weights.is_empty() {
            out.push(prop("IODeviceWeight", Value::Array("(st)".into(), weights)));
        }
        let names = [
            "IOReadBandwidthMax",
            "IOWriteBandwidthMax",
            "IOReadIOPSMax",
            "IOWriteIOPSMax",
        ];
        for (name, (_, _, _, list)) in names.iter().zip(b.throttles()) {
            if list.is_empty() {
                continue;
            }
            let items = list
                .iter()
                .map(|t| Value::Struct(vec![Value::Str(dev(t.major, t.minor)), Value::U64(t.rate)]))
                .collect();
            out.push(prop(name, Value::Array("(st)".into(), items)));
        }
    }
    unified(res, &mut out).map_err(|(k, r)| invalid(&format!("unified.{k:?}"), r))?;
    Ok(out)
}

/// The `linux.resources.unified` keys systemd has properties for (as runc converts them);
/// later entries for the same property replace earlier ones.
fn unified(res: &Resources, out: &mut Vec<Property>) -> Result<(), (String, String)> {
    for (key, value) in &res.unified {
        let v = value.trim();
        let num = |v: &str| -> Result<u64, (String, String)> {
            if v == "max" {
                return Ok(INFINITY);
            }
            v.parse()
                .map_err(|_| (key.clone(), format!("{v:?} is not a number or \"max\"")))
        };
        let p = match key.as_str() {
            "memory.max" => prop("MemoryMax", Value::U64(num(v)?)),
            "memory.high" => prop("MemoryHigh", Value::U64(num(v)?)),
            "memory.low" => prop("MemoryLow", Value::U64(num(v)?)),
            "memory.min" => prop("MemoryMin", Value::U64(num(v)?)),
            "memory.swap.max" => prop("MemorySwapMax", Value::U64(num(v)?)),
            "pids.max" => prop("TasksMax", Value::U64(num(v)?)),
            "cpu.weight" => prop("CPUWeight", Value::U64(num(v)?)),
            "cpuset.cpus" => prop(
                "AllowedCPUs",
                bytes(cpu_mask(v).map_err(|r| (key.clone(), r))?),
            ),
            "cpuset.mems" => prop(
                "AllowedMemoryNodes",
                bytes(cpu_mask(v).map_err(|r| (key.clone(), r))?),
            ),
            "cpu.max" => {
                let mut it = v.split_whitespace();
                let quota = it.next().unwrap_or("max");
                let period: u64 = match it.next() {
                    Some(p) => p
                        .parse()
                        .map_err(|_| (key.clone(), format!("bad period in {v:?}")))?,
                    None => DEFAULT_PERIOD,
                };
                let quota: i64 = if quota == "max" {
                    -1
                } else {
                    quota
                        .parse()
                        .map_err(|_| (key.clone(), format!("bad quota in {v:?}")))?
                };
                out.retain(|(n, _)| n != "CPUQuotaPeriodUSec" && n != "CPUQuotaPerSecUSec");
                out.push(prop("CPUQuotaPeriodUSec", Value::U64(period)));
                prop(
                    "CPUQuotaPerSecUSec",
                    Value::U64(quota_per_sec(quota, period)),
                )
            }
            _ => continue,
        };
        out.retain(|(n, _)| *n != p.0);
        out.push(p);
    }
    Ok(())
}

/// systemd's device policy for the rules: `strict` with the allow list when the rules are a
/// deny-all plus allow exceptions that systemd can name, else `auto` with no list (systemd then
/// filters nothing). Either way husk's own eBPF filter, attached after, is the container's
/// exact policy; this keeps systemd's filter from ever being stricter than it.
/// `proc_devices` is /proc/devices, to name a major-only wildcard (`char-pts`).
pub fn devices(rules: &DeviceState, proc_devices: &str) -> Vec<Property> {
    let auto = || vec![prop("DevicePolicy", Value::str("auto"))];
    if rules.default_allow {
        return auto();
    }
    let mut allow = Vec::new();
    for e in &rules.exceptions {
        let kind = match e.typ {
            DevType::Char => "char",
            DevType::Block => "block",
        };
        let node = match (e.major, e.minor) {
            (Some(ma), Some(mi)) => format!("/dev/{kind}/{ma}:{mi}"),
            (None, None) => format!("{kind}-*"),
            (Some(ma), None) => match major_name(proc_devices, kind, ma) {
                Some(name) => format!("{kind}-{name}"),
                None => return auto(),
            },
            (None, Some(_)) => return auto(),
        };
        let mut acc = String::new();
        for (bit, c) in [(ACC_READ, 'r'), (ACC_WRITE, 'w'), (ACC_MKNOD, 'm')] {
            if e.access & bit != 0 {
                acc.push(c);
            }
        }
        allow.push(Value::Struct(vec![Value::Str(node), Value::Str(acc)]));
    }
    vec![
        prop("DevicePolicy", Value::str("strict")),
        prop("DeviceAllow", Value::Array("(ss)".into(), allow)),
    ]
}

/// The driver name /proc/devices gives `major` of `kind` ("char" or "block"), if exactly one.
fn major_name(proc_devices: &str, kind: &str, major: u32) -> Option<String> {
    let section = if kind == "char" {
        "Character devices:"
    } else {
        "Block devices:"
    };
    let mut inside = false;
    let mut found = Vec::new();
    for line in proc_devices.lines() {
        if line.ends_with("devices:") {
            inside = line == section;
            continue;
        }
        let mut f = line.split_whitespace();
        if let (true, Some(n), Some(name)) = (inside, f.next(), f.next()) {
            if n.parse() == Ok(major) {
                found.push(name.to_string());
            }
        }
    }
    (found.len() == 1).then(|| found.remove(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroups::resources::DeviceRule;

    fn res(json: &str) -> Resources {
        Resources::from_value(serde_json::from_str(json).unwrap_or_default(), "test")
            .unwrap_or_default()
    }

    fn get<'a>(p: &'a [Property], name: &str) -> Option<&'a Value> {
        p.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    #[test]
    fn runc_conversions() {
        let p = resources(&res(
            r#"{"memory": {"limit": 268435456, "reservation": 1048576, "swap": 536870912},
                "cpu": {"shares": 1024, "quota": 50000, "period": 100000, "cpus": "0-1", "mems": "0"},
                "pids": {"limit": 64}, "blockIO": {"weight": 500}}"#,
        ))
        .unwrap_or_default();
        assert_eq!(get(&p, "MemoryMax"), Some(&Value::U64(268435456)));
        assert_eq!(get(&p, "MemoryLow"), Some(&Value::U64(1048576)));
        assert_eq!(get(&p, "MemorySwapMax"), Some(&Value::U64(268435456)));
        assert_eq!(get(&p, "CPUWeight"), Some(&Value::U64(39)));
        assert_eq!(get(&p, "CPUQuotaPeriodUSec"), Some(&Value::U64(100000)));
        assert_eq!(get(&p, "CPUQuotaPerSecUSec"), Some(&Value::U64(500000)));
        assert_eq!(get(&p, "AllowedCPUs"), Some(&bytes(vec![3])));
        assert_eq!(get(&p, "AllowedMemoryNodes"), Some(&bytes(vec![1])));
        assert_eq!(get(&p, "TasksMax"), Some(&Value::U64(64)));
        assert_eq!(get(&p, "IOWeight"), Some(&Value::U64(1 + 490 * 9999 / 990)));
        // Unlimited values are systemd's infinity; 0 and absent mean "leave alone".
        let p = resources(&res(
            r#"{"memory": {"limit": -1}, "pids": {"limit": -1}, "cpu": {"quota": -1}}"#,
        ))
        .unwrap_or_default();
        assert_eq!(get(&p, "MemoryMax"), Some(&Value::U64(u64::MAX)));
        assert_eq!(get(&p, "MemorySwapMax"), Some(&Value::U64(u64::MAX)));
        assert_eq!(get(&p, "TasksMax"), Some(&Value::U64(u64::MAX)));
        assert_eq!(get(&p, "CPUQuotaPerSecUSec"), Some(&Value::U64(u64::MAX)));
        assert!(resources(&res(r#"{"pids": {"limit": 0}}"#))
            .unwrap_or_default()
            .is_empty());
        // A fractional percentage rounds up to 10 ms per second, as runc does.
        assert_eq!(quota_per_sec(12345, 100000), 130000);
        assert_eq!(quota_per_sec(1000, 0), 10000);
        // Swap without memory is refused, naming the field.
        let e = resources(&res(r#"{"memory": {"swap": 100}}"#))
            .err()
            .map(|e| e.to_string());
        assert!(e.unwrap_or_default().contains("memory.swap"));
    }

    #[test]
    fn unified_keys_and_throttles() {
        let p = resources(&res(
            r#"{"unified": {"memory.high": "1000000", "memory.max": "max", "cpu.max": "20000 50000", "io.weight": "x"},
                "blockIO": {"throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1048576}]}}"#,
        ))
        .unwrap_or_default();
        assert_eq!(get(&p, "MemoryHigh"), Some(&Value::U64(1000000)));
        assert_eq!(get(&p, "MemoryMax"), Some(&Value::U64(u64::MAX)));
        assert_eq!(get(&p, "CPUQuotaPeriodUSec"), Some(&Value::U64(50000)));
        assert_eq!(get(&p, "CPUQuotaPerSecUSec"), Some(&Value::U64(400000)));
        assert_eq!(
            get(&p, "IOReadBandwidthMax"),
            Some(&Value::Array(
                "(st)".into(),
                vec![Value::Struct(vec![
                    Value::str("/dev/block/8:0"),
                    Value::U64(1048576)
                ])]
            ))
        );
        assert!(resources(&res(r#"{"unified": {"pids.max": "lots"}}"#)).is_err());
    }

    #[test]
    fn cpu_masks() {
        assert_eq!(cpu_mask("0-3,8").ok(), Some(vec![0x0f, 0x01]));
        assert_eq!(cpu_mask("9").ok(), Some(vec![0, 0x02]));
        assert!(cpu_mask("").is_err());
        assert!(cpu_mask("3-1").is_err());
        assert!(cpu_mask("a").is_err());
    }

    #[test]
    fn device_policies() {
        let proc_devices =
            "Character devices:\n  1 mem\n136 pts\n  5 /dev/tty\n\nBlock devices:\n  8 sd\n";
        let rules = |json: &str| {
            let r: Vec<DeviceRule> = serde_json::from_str(json).unwrap_or_default();
            DeviceState::from_config(&r).unwrap_or_else(|_| DeviceState::deny_all())
        };
        // Deny all, then runc's defaults: strict, each default named.
        let p = devices(
            &rules(r#"[{"allow": false, "access": "rwm"}]"#),
            proc_devices,
        );
        assert_eq!(get(&p, "DevicePolicy"), Some(&Value::str("strict")));
        let Some(Value::Array(_, allow)) = get(&p, "DeviceAllow") else {
            panic!("no DeviceAllow in {p:?}");
        };
        let has = |node: &str, acc: &str| {
            allow.contains(&Value::Struct(vec![Value::str(node), Value::str(acc)]))
        };
        assert!(has("/dev/char/1:3", "rwm"), "{allow:?}");
        assert!(has("char-pts", "rwm"), "{allow:?}");
        assert!(has("char-*", "m") && has("block-*", "m"), "{allow:?}");
        // Allow all: auto. A major systemd cannot name: auto too (husk's filter decides).
        let p = devices(
            &rules(r#"[{"allow": true, "access": "rwm"}]"#),
            proc_devices,
        );
        assert_eq!(p, vec![prop("DevicePolicy", Value::str("auto"))]);
        let p = devices(
            &rules(
                r#"[{"allow": false}, {"allow": true, "type": "c", "major": 250, "access": "r"}]"#,
            ),
            proc_devices,
        );
        assert_eq!(p, vec![prop("DevicePolicy", Value::str("auto"))]);
    }
}
