//! Which `linux.resources` settings a spec asks for (pure, unit-tested).

use oci_spec::runtime::Spec;
use serde_json::Value;

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
    }
}
