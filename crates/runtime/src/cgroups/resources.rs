//! `linux.resources` as husk applies it: one serde model for config.json, `update -r` and
//! state.json (same JSON spelling as the runtime spec), and the merge `update` performs (pure,
//! unit-tested).

use std::collections::BTreeMap;

use oci_spec::runtime::Spec;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::CgroupError;

/// One `linux.resources.devices` entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceRule {
    pub allow: bool,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub typ: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub major: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minor: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Memory {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reservation: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swap: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel: Option<i64>,
    #[serde(rename = "kernelTCP", default, skip_serializing_if = "Option::is_none")]
    pub kernel_tcp: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swappiness: Option<u64>,
    #[serde(
        rename = "disableOOMKiller",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub disable_oom_killer: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub use_hierarchy: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check_before_update: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Cpu {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shares: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub realtime_runtime: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub realtime_period: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpus: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mems: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pids {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WeightDevice {
    pub major: i64,
    pub minor: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leaf_weight: Option<u16>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThrottleDevice {
    pub major: i64,
    pub minor: i64,
    pub rate: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockIo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leaf_weight: Option<u16>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub weight_device: Vec<WeightDevice>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub throttle_read_bps_device: Vec<ThrottleDevice>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub throttle_write_bps_device: Vec<ThrottleDevice>,
    #[serde(
        rename = "throttleReadIOPSDevice",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub throttle_read_iops_device: Vec<ThrottleDevice>,
    #[serde(
        rename = "throttleWriteIOPSDevice",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub throttle_write_iops_device: Vec<ThrottleDevice>,
}

impl BlockIo {
    /// The four throttle lists with their v1 file and v2 `io.max` key.
    pub fn throttles(&self) -> [(&'static str, &'static str, &'static str, &[ThrottleDevice]); 4] {
        [
            (
                "blockIO.throttleReadBpsDevice",
                "blkio.throttle.read_bps_device",
                "rbps",
                &self.throttle_read_bps_device,
            ),
            (
                "blockIO.throttleWriteBpsDevice",
                "blkio.throttle.write_bps_device",
                "wbps",
                &self.throttle_write_bps_device,
            ),
            (
                "blockIO.throttleReadIOPSDevice",
                "blkio.throttle.read_iops_device",
                "riops",
                &self.throttle_read_iops_device,
            ),
            (
                "blockIO.throttleWriteIOPSDevice",
                "blkio.throttle.write_iops_device",
                "wiops",
                &self.throttle_write_iops_device,
            ),
        ]
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HugepageLimit {
    pub page_size: String,
    pub limit: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InterfacePriority {
    pub name: String,
    pub priority: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Network {
    #[serde(rename = "classID", default, skip_serializing_if = "Option::is_none")]
    pub class_id: Option<u32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub priorities: Vec<InterfacePriority>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rdma {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hca_handles: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hca_objects: Option<u32>,
}

/// `linux.resources`, every field optional. Unknown fields are ignored (as runc's decoder does).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Resources {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<DeviceRule>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<Memory>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<Cpu>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pids: Option<Pids>,
    #[serde(rename = "blockIO", default, skip_serializing_if = "Option::is_none")]
    pub block_io: Option<BlockIo>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hugepage_limits: Vec<HugepageLimit>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<Network>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub rdma: BTreeMap<String, Rdma>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub unified: BTreeMap<String, String>,
}

/// Deserialize with `null` anywhere treated as absent (Go encoders write `null` for nil).
fn strip_nulls(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|_, v| !v.is_null());
            m.values_mut().for_each(strip_nulls);
        }
        Value::Array(a) => a.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}

impl Resources {
    /// The spec's `linux.resources` (empty when absent).
    pub fn from_spec(spec: &Spec) -> Result<Resources, CgroupError> {
        let Some(r) = spec.linux().as_ref().and_then(|l| l.resources().as_ref()) else {
            return Ok(Resources::default());
        };
        let value = serde_json::to_value(r).map_err(|e| CgroupError::Invalid {
            field: "linux.resources".into(),
            reason: e.to_string(),
        })?;
        Resources::from_value(value, "linux.resources")
    }

    /// Parse a resources JSON object (`update -r FILE`); `what` names the source in errors.
    pub fn from_value(mut value: Value, what: &str) -> Result<Resources, CgroupError> {
        strip_nulls(&mut value);
        serde_json::from_value(value).map_err(|e| CgroupError::Invalid {
            field: what.into(),
            reason: e.to_string(),
        })
    }

    /// Whether nothing at all is set.
    pub fn is_empty(&self) -> bool {
        *self == Resources::default()
    }

    /// The resources that are limits (everything but device rules), by their field names.
    /// An object with nothing in it (`"memory": {}`) is no limit.
    pub fn limits(&self) -> Vec<&'static str> {
        fn set<T: Default + PartialEq>(v: &Option<T>) -> bool {
            v.as_ref().is_some_and(|v| *v != T::default())
        }
        [
            ("memory", set(&self.memory)),
            ("cpu", set(&self.cpu)),
            ("pids", set(&self.pids)),
            ("blockIO", set(&self.block_io)),
            ("hugepageLimits", !self.hugepage_limits.is_empty()),
            ("network", set(&self.network)),
            ("rdma", !self.rdma.is_empty()),
            ("unified", !self.unified.is_empty()),
        ]
        .into_iter()
        .filter_map(|(name, set)| set.then_some(name))
        .collect()
    }

    /// Fold an `update` into the stored resources: every field the update sets replaces the
    /// stored one (device rules and maps as a whole when given).
    pub fn merge(&mut self, upd: &Resources) {
        macro_rules! take {
            ($dst:expr, $src:expr, $($f:ident),+) => {
                $( if $src.$f.is_some() { $dst.$f = $src.$f.clone(); } )+
            };
        }
        if !upd.devices.is_empty() {
            self.devices = upd.devices.clone();
        }
        if let Some(m) = &upd.memory {
            let dst = self.memory.get_or_insert_with(Memory::default);
            take!(
                dst,
                m,
                limit,
                reservation,
                swap,
                kernel,
                kernel_tcp,
                swappiness
            );
            take!(
                dst,
                m,
                disable_oom_killer,
                use_hierarchy,
                check_before_update
            );
        }
        if let Some(c) = &upd.cpu {
            let dst = self.cpu.get_or_insert_with(Cpu::default);
            take!(
                dst,
                c,
                shares,
                quota,
                burst,
                period,
                realtime_runtime,
                realtime_period
            );
            take!(dst, c, cpus, mems, idle);
        }
        if let Some(p) = &upd.pids {
            if p.limit.is_some() {
                self.pids = Some(p.clone());
            }
        }
        if let Some(b) = &upd.block_io {
            let dst = self.block_io.get_or_insert_with(BlockIo::default);
            take!(dst, b, weight, leaf_weight);
            if !b.weight_device.is_empty() {
                dst.weight_device = b.weight_device.clone();
            }
            for (d, s) in [
                (
                    &mut dst.throttle_read_bps_device,
                    &b.throttle_read_bps_device,
                ),
                (
                    &mut dst.throttle_write_bps_device,
                    &b.throttle_write_bps_device,
                ),
                (
                    &mut dst.throttle_read_iops_device,
                    &b.throttle_read_iops_device,
                ),
                (
                    &mut dst.throttle_write_iops_device,
                    &b.throttle_write_iops_device,
                ),
            ] {
                if !s.is_empty() {
                    *d = s.clone();
                }
            }
        }
        if !upd.hugepage_limits.is_empty() {
            self.hugepage_limits = upd.hugepage_limits.clone();
        }
        if let Some(n) = &upd.network {
            let dst = self.network.get_or_insert_with(Network::default);
            take!(dst, n, class_id);
            if !n.priorities.is_empty() {
                dst.priorities = n.priorities.clone();
            }
        }
        for (k, v) in &upd.rdma {
            self.rdma.insert(k.clone(), v.clone());
        }
        for (k, v) in &upd.unified {
            self.unified.insert(k.clone(), v.clone());
        }
    }
}

/// Names of the `linux.resources` fields that are set, in spec spelling: `memory.limit`,
/// `pids.limit`, `cpu.shares`, `devices`, `hugepageLimits`, `unified`, ... Objects are listed by
/// their set members, lists and maps by their own name when non-empty.
pub fn requested_resources(spec: &Spec) -> Vec<String> {
    let Some(resources) = spec.linux().as_ref().and_then(|l| l.resources().as_ref()) else {
        return Vec::new();
    };
    let Ok(Value::Object(top)) = serde_json::to_value(resources) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (key, value) in top {
        match value {
            Value::Null => {}
            Value::Array(a) if a.is_empty() => {}
            Value::Object(members) if key == "rdma" || key == "unified" => {
                if !members.is_empty() {
                    out.push(key);
                }
            }
            Value::Object(members) => {
                for (member, v) in members {
                    match v {
                        Value::Null => {}
                        Value::Array(a) if a.is_empty() => {}
                        _ => out.push(format!("{key}.{member}")),
                    }
                }
            }
            _ => out.push(key),
        }
    }
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(resources: &str) -> Spec {
        let json = format!(r#"{{"ociVersion":"1.0.2","linux":{{"resources":{resources}}}}}"#);
        serde_json::from_str(&json).unwrap_or_else(|e| panic!("bad test spec {json}: {e}"))
    }

    #[test]
    fn limits_leave_out_devices_and_empty_objects() {
        let r = |j: &str| Resources::from_spec(&spec(j)).unwrap().limits();
        assert!(r(r#"{"devices":[{"allow":false,"access":"rwm"}],"memory":{},"cpu":{}}"#).is_empty());
        assert_eq!(
            r(r#"{"memory":{"limit":1000000},"pids":{"limit":10},"unified":{"a.b":"1"}}"#),
            ["memory", "pids", "unified"]
        );
    }

    #[test]
    fn lists_set_fields() {
        let s = spec(
            r#"{"memory":{"limit":100000,"swappiness":0},"pids":{"limit":10},
                "cpu":{"shares":512},"devices":[{"allow":false,"access":"rwm"}],
                "blockIO":{"weight":10,"weightDevice":[]},"unified":{"memory.high":"1M"}}"#,
        );
        assert_eq!(
            requested_resources(&s),
            [
                "blockIO.weight",
                "cpu.shares",
                "devices",
                "memory.limit",
                "memory.swappiness",
                "pids.limit",
                "unified"
            ]
        );
    }

    #[test]
    fn empty_when_nothing_set() {
        assert!(requested_resources(&spec(r#"{}"#)).is_empty());
        assert!(
            requested_resources(&spec(r#"{"memory":{},"devices":[],"unified":{}}"#)).is_empty()
        );
        let none: Spec =
            serde_json::from_str(r#"{"ociVersion":"1.0.2"}"#).unwrap_or_else(|e| panic!("{e}"));
        assert!(requested_resources(&none).is_empty());
        assert!(Resources::from_spec(&none).unwrap().is_empty());
    }

    #[test]
    fn parses_every_field_from_the_spec() {
        let s = spec(
            r#"{"devices":[{"allow":false,"access":"rwm"},{"allow":true,"type":"c","major":1,"minor":3,"access":"rw"}],
                "memory":{"limit":1,"reservation":2,"swap":3,"kernel":4,"kernelTCP":5,"swappiness":6,
                          "disableOOMKiller":true,"useHierarchy":true,"checkBeforeUpdate":true},
                "cpu":{"shares":7,"quota":8,"burst":9,"period":10,"realtimeRuntime":11,"realtimePeriod":12,
                       "cpus":"0-1","mems":"0","idle":1},
                "pids":{"limit":13},
                "blockIO":{"weight":14,"leafWeight":15,"weightDevice":[{"major":8,"minor":0,"weight":16,"leafWeight":17}],
                           "throttleReadBpsDevice":[{"major":8,"minor":0,"rate":18}],
                           "throttleWriteBpsDevice":[{"major":8,"minor":0,"rate":19}],
                           "throttleReadIOPSDevice":[{"major":8,"minor":0,"rate":20}],
                           "throttleWriteIOPSDevice":[{"major":8,"minor":0,"rate":21}]},
                "hugepageLimits":[{"pageSize":"2MB","limit":22}],
                "network":{"classID":23,"priorities":[{"name":"eth0","priority":24}]},
                "rdma":{"mlx5_1":{"hcaHandles":25,"hcaObjects":26}},
                "unified":{"memory.high":"27"}}"#,
        );
        let r = Resources::from_spec(&s).unwrap();
        assert_eq!(r.devices.len(), 2);
        assert_eq!(r.devices[1].typ.as_deref(), Some("c"));
        let m = r.memory.as_ref().unwrap();
        assert_eq!(
            (m.limit, m.kernel_tcp, m.swappiness),
            (Some(1), Some(5), Some(6))
        );
        assert_eq!(m.disable_oom_killer, Some(true));
        let c = r.cpu.as_ref().unwrap();
        assert_eq!(
            (c.burst, c.realtime_period, c.idle),
            (Some(9), Some(12), Some(1))
        );
        assert_eq!(c.cpus.as_deref(), Some("0-1"));
        assert_eq!(r.pids.as_ref().unwrap().limit, Some(13));
        let b = r.block_io.as_ref().unwrap();
        assert_eq!(b.weight_device[0].leaf_weight, Some(17));
        assert_eq!(b.throttle_write_iops_device[0].rate, 21);
        assert_eq!(r.hugepage_limits[0].page_size, "2MB");
        assert_eq!(r.network.as_ref().unwrap().class_id, Some(23));
        assert_eq!(r.rdma["mlx5_1"].hca_objects, Some(26));
        assert_eq!(r.unified["memory.high"], "27");
        // Round trip through state.json.
        let json = serde_json::to_string(&r).unwrap();
        assert!(json.contains("\"blockIO\"") && json.contains("\"throttleReadIOPSDevice\""));
        let back: Resources = serde_json::from_str(&json).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn update_json_with_nulls_and_unknown_fields() {
        let v: Value = serde_json::from_str(
            r#"{"memory":{"limit":null,"swap":5},"cpu":null,"bogus":1,"pids":{}}"#,
        )
        .unwrap();
        let r = Resources::from_value(v, "update").unwrap();
        assert_eq!(r.memory.as_ref().unwrap().swap, Some(5));
        assert!(r.memory.as_ref().unwrap().limit.is_none());
        assert!(r.cpu.is_none());
        let bad: Value = serde_json::from_str(r#"{"memory":{"limit":"x"}}"#).unwrap();
        let e = Resources::from_value(bad, "update resources")
            .unwrap_err()
            .to_string();
        assert!(e.contains("update resources"), "{e}");
    }

    #[test]
    fn merge_replaces_only_what_is_set() {
        let mut stored = Resources {
            memory: Some(Memory {
                limit: Some(100),
                swap: Some(200),
                ..Default::default()
            }),
            cpu: Some(Cpu {
                quota: Some(5000),
                period: Some(10000),
                ..Default::default()
            }),
            pids: Some(Pids { limit: Some(10) }),
            devices: vec![DeviceRule {
                allow: false,
                access: Some("rwm".into()),
                ..Default::default()
            }],
            ..Default::default()
        };
        let upd = Resources {
            memory: Some(Memory {
                limit: Some(300),
                ..Default::default()
            }),
            cpu: Some(Cpu {
                quota: Some(20000),
                cpus: Some("0".into()),
                ..Default::default()
            }),
            pids: Some(Pids { limit: None }),
            unified: [("pids.max".to_string(), "5".to_string())].into(),
            ..Default::default()
        };
        stored.merge(&upd);
        let m = stored.memory.as_ref().unwrap();
        assert_eq!((m.limit, m.swap), (Some(300), Some(200)));
        let c = stored.cpu.as_ref().unwrap();
        assert_eq!((c.quota, c.period), (Some(20000), Some(10000)));
        assert_eq!(c.cpus.as_deref(), Some("0"));
        assert_eq!(stored.pids.as_ref().unwrap().limit, Some(10));
        assert_eq!(stored.devices.len(), 1);
        assert_eq!(stored.unified["pids.max"], "5");
    }
}
