//! `linux.intelRdt`: Intel RDT through the resctrl filesystem (runtime-spec config-linux.md
//! "IntelRdt"). [`validate`] checks the field before any side effect, [`apply`] puts the
//! container's init into its CLOS (and MON group) from the create parent, and [`remove`] undoes
//! what `apply` created, at `husk delete`, from the paths recorded in state.json.
//!
//! The filesystem work is in the child module `resctrl` (resctrl.rs), where every operation
//! takes the resctrl root; the pure parts (field checks, mountinfo, schemata comparison) are here.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use oci_spec::runtime::LinuxIntelRdt;
use serde::{Deserialize, Serialize};

use super::ExtrasError;

// The filesystem side, a child module so that `cargo test extras::rdt` runs its tests too.
mod resctrl;

/// Where the resctrl filesystem is mounted when the host has one.
pub const RESCTRL: &str = "/sys/fs/resctrl";

const MOUNTINFO: &str = "/proc/self/mountinfo";

/// The resctrl directories `apply` created and `remove` must rmdir at delete, in removal
/// order: the container's MON group (`<clos>/mon_groups/<id>`, when `enableMonitoring`), then
/// the `<id>` CLOS directory (only when `closID` is unset and husk created it; a `closID`
/// directory is never removed, per the spec). Empty when there is nothing to remove.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RdtCreated {
    #[serde(default)]
    pub dirs: Vec<PathBuf>,
}

impl RdtCreated {
    pub fn is_empty(&self) -> bool {
        self.dirs.is_empty()
    }
}

/// What `husk features` reports under `linux.intelRdt`.
pub fn features() -> serde_json::Value {
    serde_json::json!({ "enabled": true, "schemata": true, "monitoring": true })
}

/// Every check of `linux.intelRdt` that needs no side effect: the values themselves, then a
/// mounted resctrl (spec MUST) and the resources the schemata need.
pub fn validate(rdt: &LinuxIntelRdt) -> Result<(), ExtrasError> {
    validate_fields(rdt)?;
    let root = mount_point()?;
    check_root(rdt, root.as_deref())
}

/// Applies `linux.intelRdt` to `pid` (the container's init, before it runs the container):
/// creates or joins the CLOS directory, writes the schemata, the pid to `tasks`, and creates
/// the MON group when `enableMonitoring`. Returns what [`remove`] must remove at delete. On
/// error nothing created here is left behind.
pub fn apply(rdt: &LinuxIntelRdt, id: &str, pid: i32) -> Result<RdtCreated, ExtrasError> {
    let Some(root) = mount_point()? else {
        return Err(no_resctrl());
    };
    resctrl::apply_at(&root, rdt, id, pid, &resctrl::REAL)
}

/// Removes (rmdir only) what [`apply`] created; a directory already gone is fine. Needs
/// nothing but the recorded paths, so `husk delete` can call it from another process.
pub fn remove(created: &RdtCreated) -> Result<(), ExtrasError> {
    resctrl::remove_with(created, &resctrl::REAL)
}

/// The checks on the values alone.
fn validate_fields(rdt: &LinuxIntelRdt) -> Result<(), ExtrasError> {
    let invalid = |msg: String| Err(ExtrasError::Invalid(msg));
    if let Some(c) = resctrl::clos_id(rdt) {
        if c != "/" && (c == "." || c == ".." || c.contains('/')) {
            return invalid(format!(
                "linux.intelRdt.closID {c:?}: must be \"/\" (the default CLOS) or a single \
                 directory name (not \".\", \"..\", no \"/\")"
            ));
        }
        if c.contains('\0') {
            return invalid(format!(
                "linux.intelRdt.closID {c:?}: must not contain a NUL byte"
            ));
        }
    }
    if let Some(l3) = rdt.l3_cache_schema().as_deref() {
        no_newline("l3CacheSchema", l3)?;
    }
    if let Some(mb) = rdt.mem_bw_schema().as_deref().filter(|s| !s.is_empty()) {
        no_newline("memBwSchema", mb)?;
        if !mb.starts_with("MB:") {
            return invalid(format!(
                "linux.intelRdt.memBwSchema {mb:?}: must start with \"MB:\""
            ));
        }
    }
    for (i, line) in rdt.schemata().iter().flatten().enumerate() {
        no_newline(&format!("schemata[{i}]"), line)?;
        if line
            .split_once(':')
            .is_none_or(|(r, _)| r.trim().is_empty())
        {
            return invalid(format!(
                "linux.intelRdt.schemata[{i}] {line:?}: must be a schemata line \
                 \"<resource>:<domain>=<value>;...\""
            ));
        }
    }
    Ok(())
}

fn no_newline(field: &str, value: &str) -> Result<(), ExtrasError> {
    if value.contains(['\n', '\r']) {
        return Err(ExtrasError::Invalid(format!(
            "linux.intelRdt.{field} {value:?}: must not contain newlines"
        )));
    }
    Ok(())
}

fn no_resctrl() -> ExtrasError {
    ExtrasError::Invalid(format!(
        "linux.intelRdt: no resctrl filesystem is mounted (expected at {RESCTRL}, \
         e.g. `mount -t resctrl resctrl {RESCTRL}`)"
    ))
}

/// The checks against the resctrl found at `root` (None: not mounted).
fn check_root(rdt: &LinuxIntelRdt, root: Option<&Path>) -> Result<(), ExtrasError> {
    let Some(root) = root else {
        return Err(no_resctrl());
    };
    let info = root.join("info");
    if rdt
        .l3_cache_schema()
        .as_deref()
        .is_some_and(|s| !s.is_empty())
        && !["L3", "L3CODE", "L3DATA"]
            .iter()
            .any(|r| info.join(r).is_dir())
    {
        return Err(ExtrasError::Invalid(format!(
            "linux.intelRdt.l3CacheSchema: Intel RDT/CAT is not enabled (no L3 resource in {})",
            info.display()
        )));
    }
    if rdt
        .mem_bw_schema()
        .as_deref()
        .is_some_and(|s| !s.is_empty())
        && !info.join("MB").is_dir()
    {
        return Err(ExtrasError::Invalid(format!(
            "linux.intelRdt.memBwSchema: Intel RDT/MBA is not enabled (no {})",
            info.join("MB").display()
        )));
    }
    if rdt.enable_monitoring() == &Some(true) && !root.join("mon_groups").is_dir() {
        return Err(ExtrasError::Invalid(format!(
            "linux.intelRdt.enableMonitoring: resctrl monitoring is not enabled (no {})",
            root.join("mon_groups").display()
        )));
    }
    Ok(())
}

/// The resctrl mount point of the runtime's mount namespace, if any.
fn mount_point() -> Result<Option<PathBuf>, ExtrasError> {
    let text = fs::read_to_string(MOUNTINFO).map_err(|e| ExtrasError::Sys {
        what: format!("linux.intelRdt: reading {MOUNTINFO}"),
        source: Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
    })?;
    Ok(find_resctrl(&text))
}

/// The mount point of the first `resctrl` mount in a mountinfo text (as runc takes the first).
fn find_resctrl(mountinfo: &str) -> Option<PathBuf> {
    crate::rootfs::mountinfo::parse(mountinfo)
        .into_iter()
        .find(|m| m.fstype == "resctrl")
        .map(|m| m.mount_point)
}

/// resource -> (domain id -> value), later lines overriding earlier ones (as later writes do).
type Schemata = BTreeMap<String, BTreeMap<String, String>>;

/// Parses schemata lines `RES:dom=val;dom=val`, ignoring whitespace and empty tokens (the
/// kernel pads resource names; values are zero-padded hex for caches).
fn parse_schemata<'a>(lines: impl IntoIterator<Item = &'a str>) -> Result<Schemata, String> {
    let mut out = Schemata::new();
    for line in lines {
        if line.trim().is_empty() {
            continue;
        }
        let (res, doms) = line
            .split_once(':')
            .ok_or_else(|| format!("{line:?}: no ':' after the resource name"))?;
        let entry = out.entry(res.trim().to_string()).or_default();
        for tok in doms.split(';').map(str::trim).filter(|t| !t.is_empty()) {
            let (dom, val) = tok
                .split_once('=')
                .map(|(d, v)| (d.trim(), v.trim()))
                .filter(|(d, v)| !d.is_empty() && !v.is_empty())
                .ok_or_else(|| format!("{line:?}: {tok:?} is not <domain>=<value>"))?;
            let dom = dom
                .parse::<u64>()
                .map_or(dom.to_string(), |n| n.to_string());
            entry.insert(dom, val.to_string());
        }
    }
    Ok(out)
}

/// Whether two values of `resource` are equal: capacity bitmasks (L2*, L3*) as hex numbers,
/// bandwidths (MB, SMBA...) as decimal numbers, anything unparsable as trimmed strings.
fn same_value(resource: &str, a: &str, b: &str) -> bool {
    let num = |v: &str| {
        if resource.starts_with('L') {
            let v = v.trim_start_matches("0x").trim_start_matches("0X");
            u64::from_str_radix(v, 16).ok()
        } else {
            v.parse::<u64>().ok()
        }
    };
    match (num(a), num(b)) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

/// Checks that `want` (the effective lines of the config) agrees with `have` (a `schemata`
/// file) on every (resource, domain) of `want`; the error says where they differ.
fn compare(want: &Schemata, have: &Schemata) -> Result<(), String> {
    for (res, doms) in want {
        let Some(cur) = have.get(res) else {
            return Err(format!("it has no {res} line"));
        };
        for (dom, val) in doms {
            match cur.get(dom) {
                None => return Err(format!("it has no {res} domain {dom}")),
                Some(c) if !same_value(res, val, c) => {
                    return Err(format!("{res} domain {dom} is {c}, the config wants {val}"))
                }
                Some(_) => {}
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::LinuxIntelRdtBuilder;

    fn rdt(json: serde_json::Value) -> LinuxIntelRdt {
        serde_json::from_value(json).expect("test LinuxIntelRdt")
    }

    fn err(r: Result<(), ExtrasError>) -> String {
        match r {
            Ok(()) => panic!("expected an error"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn builder_and_json_agree() {
        let b = LinuxIntelRdtBuilder::default()
            .clos_id("x")
            .build()
            .expect("build");
        assert_eq!(b, rdt(serde_json::json!({ "closID": "x" })));
    }

    #[test]
    fn clos_id_checks() {
        for bad in [".", "..", "a/b", "/x", "x/", "//"] {
            let e = err(validate_fields(&rdt(serde_json::json!({ "closID": bad }))));
            assert!(
                e.starts_with(&format!("linux.intelRdt.closID {bad:?}: ")),
                "{e}"
            );
        }
        let e = err(validate_fields(&rdt(
            serde_json::json!({ "closID": "a\u{0}b" }),
        )));
        assert!(e.contains("NUL"), "{e}");
        for good in ["/", "", "gold", "..x", "x."] {
            validate_fields(&rdt(serde_json::json!({ "closID": good }))).expect(good);
        }
    }

    #[test]
    fn newline_checks() {
        let e = err(validate_fields(&rdt(
            serde_json::json!({ "l3CacheSchema": "L3:0=f\nMB:0=1" }),
        )));
        assert!(e.starts_with("linux.intelRdt.l3CacheSchema "), "{e}");
        assert!(e.contains("newlines"), "{e}");
        let e = err(validate_fields(&rdt(
            serde_json::json!({ "memBwSchema": "MB:0=1\n" }),
        )));
        assert!(e.starts_with("linux.intelRdt.memBwSchema "), "{e}");
        let e = err(validate_fields(&rdt(
            serde_json::json!({ "schemata": ["L3:0=f", "MB:0=1\r"] }),
        )));
        assert!(e.starts_with("linux.intelRdt.schemata[1] "), "{e}");
        assert!(e.contains("newlines"), "{e}");
    }

    #[test]
    fn mem_bw_must_start_with_mb() {
        let e = err(validate_fields(&rdt(
            serde_json::json!({ "memBwSchema": "L3:0=f" }),
        )));
        assert!(
            e.starts_with("linux.intelRdt.memBwSchema \"L3:0=f\": "),
            "{e}"
        );
        assert!(e.contains("\"MB:\""), "{e}");
        validate_fields(&rdt(serde_json::json!({ "memBwSchema": "MB:0=50" }))).expect("MB");
        // "" is unset (as in runc).
        validate_fields(&rdt(serde_json::json!({ "memBwSchema": "" }))).expect("empty");
    }

    #[test]
    fn schemata_lines_need_a_resource() {
        for bad in ["", "0=ff", ":0=ff", "  :x"] {
            let e = err(validate_fields(&rdt(
                serde_json::json!({ "schemata": ["L3:0=f", bad] }),
            )));
            assert!(e.starts_with("linux.intelRdt.schemata[1] "), "{e}");
        }
        validate_fields(&rdt(
            serde_json::json!({ "schemata": ["L3:0=f", "  MB:0=10;1=20", "L2:0=3"] }),
        ))
        .expect("ok");
    }

    #[test]
    fn no_resctrl_is_an_error() {
        let e = err(check_root(&rdt(serde_json::json!({})), None));
        assert!(e.starts_with("linux.intelRdt: "), "{e}");
        assert!(e.contains("no resctrl filesystem is mounted"), "{e}");
        assert!(e.contains(RESCTRL), "{e}");
    }

    #[test]
    fn validate_on_this_host() {
        let mounted = fs::read_to_string(MOUNTINFO)
            .map(|m| find_resctrl(&m).is_some())
            .unwrap_or(true);
        if !mounted {
            let e = err(validate(&rdt(serde_json::json!({ "closID": "x" }))));
            assert!(e.contains("no resctrl filesystem is mounted"), "{e}");
        }
        // Field errors come first, whatever the host.
        let e = err(validate(&rdt(serde_json::json!({ "closID": ".." }))));
        assert!(e.starts_with("linux.intelRdt.closID "), "{e}");
    }

    fn fake_root(name: &str, info: &[&str], mon: bool) -> PathBuf {
        let root =
            std::env::temp_dir().join(format!("husk-rdt-validate-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        for r in info {
            fs::create_dir_all(root.join("info").join(r)).expect("mkdir info");
        }
        fs::create_dir_all(&root).expect("mkdir root");
        if mon {
            fs::create_dir_all(root.join("mon_groups")).expect("mkdir mon_groups");
        }
        root
    }

    #[test]
    fn resources_must_be_enabled() {
        let root = fake_root("none", &["L3_MON"], false);
        let e = err(check_root(
            &rdt(serde_json::json!({ "l3CacheSchema": "L3:0=f" })),
            Some(&root),
        ));
        assert!(e.starts_with("linux.intelRdt.l3CacheSchema: "), "{e}");
        assert!(e.contains("Intel RDT/CAT is not enabled"), "{e}");
        let e = err(check_root(
            &rdt(serde_json::json!({ "memBwSchema": "MB:0=10" })),
            Some(&root),
        ));
        assert!(e.starts_with("linux.intelRdt.memBwSchema: "), "{e}");
        assert!(e.contains("Intel RDT/MBA is not enabled"), "{e}");
        let e = err(check_root(
            &rdt(serde_json::json!({ "enableMonitoring": true })),
            Some(&root),
        ));
        assert!(e.starts_with("linux.intelRdt.enableMonitoring: "), "{e}");
        // Nothing asked: fine.
        check_root(
            &rdt(serde_json::json!({ "closID": "x", "enableMonitoring": false })),
            Some(&root),
        )
        .expect("nothing needed");
        let _ = fs::remove_dir_all(&root);

        let root = fake_root("all", &["L3", "MB"], true);
        check_root(
            &rdt(serde_json::json!({
                "l3CacheSchema": "L3:0=f", "memBwSchema": "MB:0=10", "enableMonitoring": true
            })),
            Some(&root),
        )
        .expect("all enabled");
        let _ = fs::remove_dir_all(&root);

        // With CDP, the L3 resource is split into L3CODE/L3DATA.
        let root = fake_root("cdp", &["L3CODE", "L3DATA"], false);
        check_root(
            &rdt(serde_json::json!({ "l3CacheSchema": "L3CODE:0=f" })),
            Some(&root),
        )
        .expect("cdp");
        let _ = fs::remove_dir_all(&root);
    }

    #[test]
    fn finds_resctrl_in_mountinfo() {
        let mi = "\
22 1 0:21 / /sys rw,nosuid - sysfs sysfs rw
40 22 0:35 / /sys/fs/cgroup rw shared:9 - cgroup2 cgroup2 rw
41 22 0:36 / /sys/fs/resctrl rw,relatime shared:10 master:2 - resctrl resctrl rw,mba_MBps
42 22 0:36 / /other rw - resctrl resctrl rw
";
        assert_eq!(find_resctrl(mi), Some(PathBuf::from("/sys/fs/resctrl")));
        let mi = "41 22 0:36 / /mnt/my\\040rdt rw - resctrl resctrl rw\n";
        assert_eq!(find_resctrl(mi), Some(PathBuf::from("/mnt/my rdt")));
        // Not fooled by a source or mount point named resctrl, nor by garbage.
        let mi = "\
41 22 0:36 / /resctrl rw - tmpfs resctrl rw
garbage
1 2 3
43 22 0:36 / /x rw - - resctrl
";
        assert_eq!(find_resctrl(mi), None);
        assert_eq!(find_resctrl(""), None);
    }

    #[test]
    fn features_are_all_enabled() {
        assert_eq!(
            features(),
            serde_json::json!({ "enabled": true, "schemata": true, "monitoring": true })
        );
    }

    #[test]
    fn created_round_trips_through_json() {
        let c = RdtCreated {
            dirs: vec![PathBuf::from("/r/c/mon_groups/c"), PathBuf::from("/r/c")],
        };
        let v = serde_json::to_value(&c).expect("ser");
        assert_eq!(
            v,
            serde_json::json!({ "dirs": ["/r/c/mon_groups/c", "/r/c"] })
        );
        assert_eq!(serde_json::from_value::<RdtCreated>(v).expect("de"), c);
        let empty: RdtCreated = serde_json::from_str("{}").expect("default");
        assert!(empty.is_empty());
    }
    #[test]
    fn schemata_parsing_and_values() {
        let s = parse_schemata(["  L3:0=0ff; 1 = f ;", "", "MB:0=70", "L3:01=e"]).expect("parse");
        assert_eq!(s["L3"]["0"], "0ff");
        assert_eq!(s["L3"]["1"], "e");
        assert_eq!(s["MB"]["0"], "70");
        assert!(parse_schemata(["L3 0=f"]).is_err());
        assert!(parse_schemata(["L3:0"]).is_err());
        assert!(parse_schemata(["L3:=f"]).is_err());
        assert!(parse_schemata(["L3:0="]).is_err());
        assert!(same_value("L3", "00f0", "f0"));
        assert!(same_value("L3CODE", "0xF0", "f0"));
        assert!(!same_value("L3", "f0", "f"));
        assert!(same_value("MB", "070", "70"));
        assert!(!same_value("MB", "70", "46"));
        assert!(same_value("XY", "a b", "a b"));
        // Resources the config does not mention do not matter.
        let have = parse_schemata(["    L3:0=fff;1=fff", "    MB:0=100;1=100"]).expect("root");
        let want = parse_schemata(["L3:1=fff"]).expect("want");
        assert_eq!(compare(&want, &have), Ok(()));
    }
}
