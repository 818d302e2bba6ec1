//! The resctrl filesystem operations behind `linux.intelRdt`. Every function takes the resctrl
//! root (the mount point) as a parameter, and the few operations that behave differently on a
//! real resctrl than on a plain directory tree (mkdir auto-creating `schemata`/`tasks`, rmdir of
//! a non-empty-looking group, the statfs magic) go through [`Ops`], so the rules of the spec are
//! unit-tested against a temporary directory that imitates resctrl.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::sys::statfs::FsType;
use oci_spec::runtime::LinuxIntelRdt;
use tracing::{debug, warn};

use super::{compare, parse_schemata, RdtCreated};
use crate::extras::ExtrasError;

/// `RDTGROUP_SUPER_MAGIC` from linux/magic.h.
const RDTGROUP_SUPER_MAGIC: u32 = 0x0765_5821;

/// The filesystem operations whose behaviour differs between resctrl and a test directory.
pub(super) struct Ops {
    /// mkdir(2) of one group; resctrl fills it with `schemata`, `tasks`, `mon_groups`...
    pub mkdir: fn(&Path) -> io::Result<()>,
    /// rmdir(2) of one group; resctrl moves its tasks to the parent group.
    pub rmdir: fn(&Path) -> io::Result<()>,
    /// One write(2) of `data` to an existing file (never creates it).
    pub write: fn(&Path, &[u8]) -> io::Result<usize>,
    /// Whether `path` lives on a resctrl filesystem (checked before any rmdir at delete).
    pub on_resctrl: fn(&Path) -> io::Result<bool>,
}

/// The operations on the real resctrl filesystem.
pub(super) const REAL: Ops = Ops {
    mkdir: real_mkdir,
    rmdir: real_rmdir,
    write: real_write,
    on_resctrl: real_on_resctrl,
};

fn real_mkdir(path: &Path) -> io::Result<()> {
    fs::DirBuilder::new().mode(0o755).create(path)
}

fn real_rmdir(path: &Path) -> io::Result<()> {
    fs::remove_dir(path)
}

fn real_write(path: &Path, data: &[u8]) -> io::Result<usize> {
    // O_APPEND without O_CREAT: resctrl ignores the offset (each write is one command), and a
    // missing file is an error rather than something to create.
    OpenOptions::new().append(true).open(path)?.write(data)
}

fn real_on_resctrl(path: &Path) -> io::Result<bool> {
    let st = nix::sys::statfs::statfs(path).map_err(io::Error::from)?;
    Ok(st.filesystem_type() == FsType(RDTGROUP_SUPER_MAGIC as _))
}

/// `closID`, treating "" as unset (as runc does: Go cannot tell them apart).
pub(super) fn clos_id(rdt: &LinuxIntelRdt) -> Option<&str> {
    rdt.clos_id().as_deref().filter(|c| !c.is_empty())
}

/// The lines written to `schemata`, in the order of the spec: `l3CacheSchema`, `memBwSchema`,
/// then every `schemata` element. Empty strings count as unset.
pub(super) fn schemata_lines(rdt: &LinuxIntelRdt) -> Vec<&str> {
    let mut lines = Vec::new();
    lines.extend(rdt.l3_cache_schema().as_deref().filter(|s| !s.is_empty()));
    lines.extend(rdt.mem_bw_schema().as_deref().filter(|s| !s.is_empty()));
    if let Some(s) = rdt.schemata() {
        lines.extend(s.iter().map(String::as_str));
    }
    lines
}

/// Applies `rdt` under the resctrl mounted at `root` to `pid`, the container's init. Returns
/// the directories husk must remove at delete (removal order: the MON group, then the CLOS
/// directory). On error, every directory created by this call has been removed again.
pub(super) fn apply_at(
    root: &Path,
    rdt: &LinuxIntelRdt,
    id: &str,
    pid: i32,
    ops: &Ops,
) -> Result<RdtCreated, ExtrasError> {
    if id.is_empty() || id == "." || id == ".." || id.contains('/') {
        return Err(ExtrasError::Invalid(format!(
            "linux.intelRdt: container id {id:?} cannot name a resctrl group"
        )));
    }
    if pid <= 0 {
        return Err(ExtrasError::Invalid(format!(
            "linux.intelRdt: invalid pid {pid}"
        )));
    }
    // (path, remove at delete), in creation order.
    let mut made: Vec<(PathBuf, bool)> = Vec::new();
    match apply_steps(root, rdt, id, pid, ops, &mut made) {
        Ok(()) => Ok(RdtCreated {
            dirs: made
                .into_iter()
                .rev()
                .filter(|(_, remove)| *remove)
                .map(|(p, _)| p)
                .collect(),
        }),
        Err(e) => {
            for (dir, _) in made.iter().rev() {
                if let Err(re) = (ops.rmdir)(dir) {
                    warn!(
                        "linux.intelRdt: removing {} after an error: {re}",
                        dir.display()
                    );
                }
            }
            Err(e)
        }
    }
}

fn apply_steps(
    root: &Path,
    rdt: &LinuxIntelRdt,
    id: &str,
    pid: i32,
    ops: &Ops,
    made: &mut Vec<(PathBuf, bool)>,
) -> Result<(), ExtrasError> {
    let clos = clos_id(rdt);
    let lines = schemata_lines(rdt);
    let dir = match clos {
        Some("/") => root.to_path_buf(),
        Some(c) => root.join(c),
        None => root.join(id),
    };
    let exists = dir_exists(&dir)?;
    match clos {
        Some(c) if exists && !lines.is_empty() => {
            // A shared, pre-existing CLOS: its schemata must already be what the config asks
            // for (then writing would change nothing, so husk does not write).
            check_matches(&dir, c, &lines)?;
        }
        Some(c) if !exists && lines.is_empty() => {
            return Err(ExtrasError::Invalid(format!(
                "linux.intelRdt.closID {c:?}: {} does not exist; without l3CacheSchema, \
                 memBwSchema or schemata, closID must name a pre-configured CLOS",
                dir.display()
            )));
        }
        Some(_) if exists => debug!("linux.intelRdt: joining the CLOS {}", dir.display()),
        _ => {
            if exists {
                // closID unset and `<id>` already there (left over?): reuse it like runc, but
                // it is not husk's to remove.
                warn!(
                    "linux.intelRdt: resctrl group {} already exists, reusing it",
                    dir.display()
                );
            } else {
                (ops.mkdir)(&dir).map_err(|e| {
                    sys_err(
                        root,
                        format!("creating the resctrl group {}", dir.display()),
                        e,
                    )
                })?;
                // Spec: remove at delete only when closID is unset and husk created it.
                made.push((dir.clone(), clos.is_none()));
            }
            let schemata = dir.join("schemata");
            for line in &lines {
                write_line(root, ops, &schemata, line)?;
            }
        }
    }
    write_line(root, ops, &dir.join("tasks"), &pid.to_string())?;
    if rdt.enable_monitoring() == &Some(true) {
        // After the CTRL_MON group's tasks: the kernel refuses a task in a MON group whose
        // parent is not the task's control group.
        let mon = dir.join("mon_groups").join(id);
        (ops.mkdir)(&mon).map_err(|e| {
            sys_err(
                root,
                format!("creating the monitoring group {}", mon.display()),
                e,
            )
        })?;
        made.push((mon.clone(), true));
        write_line(root, ops, &mon.join("tasks"), &pid.to_string())?;
    }
    Ok(())
}

/// rmdir of every directory in `created` (already gone is fine). Refuses a path that is not on
/// resctrl (state.json is input too). Tries them all and returns the first error.
pub(super) fn remove_with(created: &RdtCreated, ops: &Ops) -> Result<(), ExtrasError> {
    let mut first = None;
    for dir in &created.dirs {
        let res = match (ops.on_resctrl)(dir) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_sys(
                format!("linux.intelRdt: checking {}", dir.display()),
                e,
            )),
            Ok(false) => Err(ExtrasError::Invalid(format!(
                "linux.intelRdt: refusing to remove {}: not on a resctrl filesystem",
                dir.display()
            ))),
            Ok(true) => match (ops.rmdir)(dir) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_sys(
                    format!("linux.intelRdt: removing {}", dir.display()),
                    e,
                )),
                _ => Ok(()),
            },
        };
        if let Err(e) = res {
            first.get_or_insert(e);
        }
    }
    first.map_or(Ok(()), Err)
}

/// Whether `dir` exists (and is a directory).
fn dir_exists(dir: &Path) -> Result<bool, ExtrasError> {
    match fs::metadata(dir) {
        Ok(m) if m.is_dir() => Ok(true),
        Ok(_) => Err(ExtrasError::Invalid(format!(
            "linux.intelRdt: {} is not a directory",
            dir.display()
        ))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(io_sys(
            format!("linux.intelRdt: checking {}", dir.display()),
            e,
        )),
    }
}

/// One write(2) of `line` + "\n" (resctrl wants the trailing newline) to `file`.
fn write_line(root: &Path, ops: &Ops, file: &Path, line: &str) -> Result<(), ExtrasError> {
    let data = format!("{line}\n");
    let what = || format!("writing {line:?} to {}", file.display());
    match (ops.write)(file, data.as_bytes()) {
        Ok(n) if n == data.len() => Ok(()),
        Ok(n) => Err(ExtrasError::Sys {
            what: format!(
                "linux.intelRdt: {} (wrote {n} of {} bytes)",
                what(),
                data.len()
            ),
            source: Errno::EIO,
        }),
        Err(e) => Err(sys_err(root, what(), e)),
    }
}

/// An error of a resctrl operation, with the kernel's explanation from `info/last_cmd_status`
/// when there is one.
fn sys_err(root: &Path, what: String, e: io::Error) -> ExtrasError {
    let status = fs::read_to_string(root.join("info/last_cmd_status"))
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    let what = if status.is_empty() || status == "ok" {
        format!("linux.intelRdt: {what}")
    } else {
        format!("linux.intelRdt: {what} (resctrl: {status})")
    };
    io_sys(what, e)
}

fn io_sys(what: String, e: io::Error) -> ExtrasError {
    ExtrasError::Sys {
        what,
        source: Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
    }
}

/// Checks that every (resource, domain) the config would write already has that value in the
/// `schemata` file of the existing CLOS `dir`.
fn check_matches(dir: &Path, clos: &str, lines: &[&str]) -> Result<(), ExtrasError> {
    let file = dir.join("schemata");
    let existing = fs::read_to_string(&file).map_err(|e| {
        io_sys(
            format!("linux.intelRdt.closID {clos:?}: reading {}", file.display()),
            e,
        )
    })?;
    let bad = |why: String| {
        ExtrasError::Invalid(format!(
            "linux.intelRdt.closID {clos:?}: the schemata of the existing CLOS {} do not match \
             the config: {why}",
            dir.display()
        ))
    };
    let want = parse_schemata(lines.iter().copied()).map_err(bad)?;
    let have = parse_schemata(existing.lines())
        .map_err(|e| bad(format!("cannot parse {}: {e}", file.display())))?;
    compare(&want, &have).map_err(bad)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    thread_local! {
        /// Every write of the fake kernel, in order: (file, data).
        static LOG: RefCell<Vec<(PathBuf, String)>> = const { RefCell::new(Vec::new()) };
    }

    const ROOT_SCHEMATA: &str = "    L3:0=fff;1=fff\n    MB:0=100;1=100\n";

    /// mkdir on resctrl: the kernel fills a new group (never recursive).
    fn fake_mkdir(p: &Path) -> io::Result<()> {
        fs::create_dir(p)?;
        fs::write(p.join("tasks"), "")?;
        let in_mon_groups = p
            .parent()
            .is_some_and(|q| q.file_name().is_some_and(|n| n == "mon_groups"));
        if !in_mon_groups {
            fs::write(p.join("schemata"), "")?;
            fs::create_dir(p.join("mon_groups"))?;
        }
        Ok(())
    }

    /// A mkdir whose group has a `tasks` directory, so that writing the pid fails.
    fn broken_mkdir(p: &Path) -> io::Result<()> {
        fs::create_dir(p)?;
        fs::write(p.join("schemata"), "")?;
        fs::create_dir(p.join("mon_groups"))?;
        fs::create_dir(p.join("tasks"))
    }

    /// rmdir on resctrl succeeds on a group "containing" its files.
    fn fake_rmdir(p: &Path) -> io::Result<()> {
        fs::remove_dir_all(p)
    }

    /// A write on resctrl: the file must exist; a line containing "BAD" is refused like an
    /// invalid mask; a pid goes into a MON group only if it is in the parent CTRL_MON group.
    fn fake_write(p: &Path, data: &[u8]) -> io::Result<usize> {
        let text = String::from_utf8_lossy(data).into_owned();
        if text.contains("BAD") {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        let parent_of_mon = p
            .parent()
            .and_then(Path::parent)
            .filter(|q| q.file_name().is_some_and(|n| n == "mon_groups"))
            .and_then(Path::parent);
        if let Some(ctrl) = parent_of_mon {
            let tasks = fs::read_to_string(ctrl.join("tasks"))?;
            if !tasks.lines().any(|l| l == text.trim()) {
                return Err(io::Error::from_raw_os_error(libc::EINVAL));
            }
        }
        let n = OpenOptions::new().append(true).open(p)?.write(data)?;
        LOG.with(|l| l.borrow_mut().push((p.to_path_buf(), text)));
        Ok(n)
    }

    fn fake_on_resctrl(p: &Path) -> io::Result<bool> {
        fs::metadata(p).map(|_| true)
    }

    const FAKE: Ops = Ops {
        mkdir: fake_mkdir,
        rmdir: fake_rmdir,
        write: fake_write,
        on_resctrl: fake_on_resctrl,
    };

    /// A temp dir imitating a resctrl root; also clears the write log.
    fn fake_root(name: &str) -> PathBuf {
        LOG.with(|l| l.borrow_mut().clear());
        let root = std::env::temp_dir().join(format!("husk-resctrl-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        fs::create_dir_all(root.join("info/L3")).expect("info/L3");
        fs::create_dir_all(root.join("info/MB")).expect("info/MB");
        fs::create_dir_all(root.join("mon_groups")).expect("mon_groups");
        fs::write(root.join("schemata"), ROOT_SCHEMATA).expect("schemata");
        fs::write(root.join("tasks"), "").expect("tasks");
        root
    }

    /// A pre-configured CLOS.
    fn make_clos(root: &Path, name: &str, schemata: &str) -> PathBuf {
        let dir = root.join(name);
        fake_mkdir(&dir).expect("mkdir clos");
        fs::write(dir.join("schemata"), schemata).expect("clos schemata");
        dir
    }

    fn rdt(json: serde_json::Value) -> LinuxIntelRdt {
        serde_json::from_value(json).expect("test LinuxIntelRdt")
    }

    fn read(p: &Path) -> String {
        fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    }

    fn log() -> Vec<(PathBuf, String)> {
        LOG.with(|l| l.borrow().clone())
    }

    /// The names in `dir`, sorted.
    fn entries(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .expect("read_dir")
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    fn err<T: std::fmt::Debug>(r: Result<T, ExtrasError>) -> String {
        match r {
            Ok(v) => panic!("expected an error, got {v:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn unset_clos_creates_the_container_group() {
        let root = fake_root("unset");
        let cfg = rdt(serde_json::json!({
            "l3CacheSchema": "L3:0=ff",
            "memBwSchema": "MB:0=50",
            "schemata": ["L2:0=3", "L3:1=f0"]
        }));
        let created = apply_at(&root, &cfg, "c1", 42, &FAKE).expect("apply");
        let dir = root.join("c1");
        assert_eq!(created.dirs, vec![dir.clone()]);
        assert_eq!(
            read(&dir.join("schemata")),
            "L3:0=ff\nMB:0=50\nL2:0=3\nL3:1=f0\n"
        );
        assert_eq!(read(&dir.join("tasks")), "42\n");
        assert_eq!(read(&root.join("tasks")), "");
        assert_eq!(read(&root.join("schemata")), ROOT_SCHEMATA);
        // One write per line, schemata before tasks.
        let files: Vec<PathBuf> = log().into_iter().map(|(p, _)| p).collect();
        let s = dir.join("schemata");
        assert_eq!(
            files,
            vec![s.clone(), s.clone(), s.clone(), s, dir.join("tasks")]
        );
        assert!(!dir.join("mon_groups/c1").exists());

        remove_with(&created, &FAKE).expect("remove");
        assert!(!dir.exists());
        // Twice is fine (already gone).
        remove_with(&created, &FAKE).expect("remove again");
        let _ = fs::remove_dir_all(&root);
    }

    #[test]
    fn unset_clos_without_schemata_writes_no_schemata() {
        let root = fake_root("unset-bare");
        let created = apply_at(&root, &rdt(serde_json::json!({})), "c1", 7, &FAKE).expect("ok");
        assert_eq!(created.dirs, vec![root.join("c1")]);
        assert_eq!(read(&root.join("c1/schemata")), "");
        assert_eq!(read(&root.join("c1/tasks")), "7\n");
        assert_eq!(log().len(), 1);
        let _ = fs::remove_dir_all(&root);
    }

    #[test]
    fn unset_clos_reuses_an_existing_group_without_owning_it() {
        let root = fake_root("unset-exists");
        let dir = make_clos(&root, "c1", "");
        let cfg = rdt(serde_json::json!({ "l3CacheSchema": "L3:0=f" }));
        let created = apply_at(&root, &cfg, "c1", 7, &FAKE).expect("ok");
        assert!(created.is_empty());
        assert_eq!(read(&dir.join("schemata")), "L3:0=f\n");
        assert_eq!(read(&dir.join("tasks")), "7\n");
        let _ = fs::remove_dir_all(&root);
    }

    #[test]
    fn set_clos_missing_is_created_but_not_owned() {
        let root = fake_root("set-missing");
        let cfg = rdt(serde_json::json!({
            "closID": "gold", "l3CacheSchema": "L3:0=ff", "memBwSchema": "MB:0=50"
        }));
        let created = apply_at(&root, &cfg, "c1", 42, &FAKE).expect("apply");
        // Spec: a closID directory is never removed at delete.
        assert!(created.is_empty());
        let dir = root.join("gold");
        assert_eq!(read(&dir.join("schemata")), "L3:0=ff\nMB:0=50\n");
        assert_eq!(read(&dir.join("tasks")), "42\n");
        assert!(!root.join("c1").exists());
        let _ = fs::remove_dir_all(&root);
    }

    #[test]
    fn set_clos_existing_and_matching_is_joined_without_writing() {
        let root = fake_root("set-match");
        let existing = "    L3:0=0ff;1=fff\n    MB:0=50;1=100\n";
        let dir = make_clos(&root, "gold", existing);
        let cfg = rdt(serde_json::json!({
            "closID": "gold",
            "l3CacheSchema": "L3: 0 = ff",
            "memBwSchema": "MB:0=50;",
            "schemata": ["L3:1=0xFFF"]
        }));
        let created = apply_at(&root, &cfg, "c1", 42, &FAKE).expect("apply");
        assert!(created.is_empty());
        assert_eq!(read(&dir.join("schemata")), existing);
        assert_eq!(read(&dir.join("tasks")), "42\n");
        assert_eq!(log(), vec![(dir.join("tasks"), "42\n".to_string())]);
        let _ = fs::remove_dir_all(&root);
    }

    #[test]
    fn set_clos_existing_and_mismatching_is_an_error() {
        let root = fake_root("set-mismatch");
        let existing = "    L3:0=0ff;1=fff\n    MB:0=50;1=100\n";
        let dir = make_clos(&root, "gold", existing);
        let before = entries(&root);
        for (cfg, why) in [
            (
                serde_json::json!({ "l3CacheSchema": "L3:0=f0" }),
                "L3 domain 0 is 0ff, the config wants f0",
            ),
            (
                serde_json::json!({ "memBwSchema": "MB:1=90" }),
                "MB domain 1 is 100, the config wants 90",
            ),
            (
                serde_json::json!({ "schemata": ["L2:0=3"] }),
                "it has no L2 line",
            ),
            (
                serde_json::json!({ "schemata": ["L3:2=f"] }),
                "it has no L3 domain 2",
            ),
            // The last write of a resource wins, so that is what is compared.
            (
                serde_json::json!({ "l3CacheSchema": "L3:0=ff", "schemata": ["L3:0=f"] }),
                "L3 domain 0 is 0ff, the config wants f",
            ),
        ] {
            let mut cfg = cfg;
            cfg["closID"] = "gold".into();
            cfg["enableMonitoring"] = true.into();
            let e = err(apply_at(&root, &rdt(cfg), "c1", 42, &FAKE));
            assert!(
                e.starts_with("linux.intelRdt.closID \"gold\": the schemata of the existing CLOS"),
                "{e}"
            );
            assert!(e.ends_with(why), "{e}");
        }
        assert_eq!(read(&dir.join("schemata")), existing);
        assert_eq!(read(&dir.join("tasks")), "");
        assert_eq!(entries(&dir.join("mon_groups")), Vec::<String>::new());
        assert_eq!(entries(&root), before);
        assert!(log().is_empty());
        let _ = fs::remove_dir_all(&root);
    }

    #[test]
    fn set_clos_without_schemata_must_exist() {
        let root = fake_root("set-bare");
        let before = entries(&root);
        let cfg = rdt(serde_json::json!({ "closID": "gold", "enableMonitoring": true }));
        let e = err(apply_at(&root, &cfg, "c1", 42, &FAKE));
        assert!(e.starts_with("linux.intelRdt.closID \"gold\": "), "{e}");
        assert!(e.contains("does not exist"), "{e}");
        assert!(e.contains(&root.join("gold").display().to_string()), "{e}");
        assert_eq!(entries(&root), before);

        // Pre-configured: joined, schemata untouched.
        let dir = make_clos(&root, "gold", "L3:0=1\n");
        let created = apply_at(&root, &cfg, "c1", 42, &FAKE).expect("join");
        assert_eq!(created.dirs, vec![dir.join("mon_groups/c1")]);
        assert_eq!(read(&dir.join("schemata")), "L3:0=1\n");
        assert_eq!(read(&dir.join("tasks")), "42\n");
        assert_eq!(read(&dir.join("mon_groups/c1/tasks")), "42\n");
        remove_with(&created, &FAKE).expect("remove");
        assert!(!dir.join("mon_groups/c1").exists());
        assert!(dir.exists(), "a closID directory is not removed");
        let _ = fs::remove_dir_all(&root);
    }

    #[test]
    fn root_clos() {
        let root = fake_root("slash");
        let created = apply_at(
            &root,
            &rdt(serde_json::json!({ "closID": "/" })),
            "c1",
            42,
            &FAKE,
        )
        .expect("root");
        assert!(created.is_empty());
        assert_eq!(read(&root.join("tasks")), "42\n");

        // Schemata are compared with the root's, never written.
        let cfg = rdt(serde_json::json!({ "closID": "/", "l3CacheSchema": "L3:1=fff" }));
        apply_at(&root, &cfg, "c2", 43, &FAKE).expect("matching root");
        let cfg = rdt(serde_json::json!({ "closID": "/", "memBwSchema": "MB:0=10" }));
        let e = err(apply_at(&root, &cfg, "c3", 44, &FAKE));
        assert!(
            e.ends_with("MB domain 0 is 100, the config wants 10"),
            "{e}"
        );
        assert_eq!(read(&root.join("schemata")), ROOT_SCHEMATA);
        assert_eq!(read(&root.join("tasks")), "42\n43\n");

        // Monitoring in the default CLOS: only the MON group is ours.
        let cfg = rdt(serde_json::json!({ "closID": "/", "enableMonitoring": true }));
        let created = apply_at(&root, &cfg, "c4", 45, &FAKE).expect("mon");
        assert_eq!(created.dirs, vec![root.join("mon_groups/c4")]);
        assert_eq!(read(&root.join("mon_groups/c4/tasks")), "45\n");
        let _ = fs::remove_dir_all(&root);
    }

    #[test]
    fn monitoring_group_after_the_control_group() {
        let root = fake_root("mon");
        let cfg = rdt(serde_json::json!({ "l3CacheSchema": "L3:0=f", "enableMonitoring": true }));
        let created = apply_at(&root, &cfg, "c1", 42, &FAKE).expect("apply");
        let dir = root.join("c1");
        let mon = dir.join("mon_groups/c1");
        assert_eq!(created.dirs, vec![mon.clone(), dir.clone()]);
        assert_eq!(read(&mon.join("tasks")), "42\n");
        let files: Vec<PathBuf> = log().into_iter().map(|(p, _)| p).collect();
        assert_eq!(
            files,
            vec![dir.join("schemata"), dir.join("tasks"), mon.join("tasks")]
        );
        remove_with(&created, &FAKE).expect("remove");
        assert!(!dir.exists());
        let _ = fs::remove_dir_all(&root);
    }

    /// A mkdir that fails for MON groups, like a kernel out of RMIDs.
    fn no_rmid_mkdir(p: &Path) -> io::Result<()> {
        if p.parent().is_some_and(|q| q.ends_with("mon_groups")) {
            return Err(io::Error::from_raw_os_error(libc::ENOSPC));
        }
        fake_mkdir(p)
    }

    #[test]
    fn monitoring_group_failure_is_an_error_and_cleaned_up() {
        let root = fake_root("mon-fail");
        let dir = make_clos(&root, "gold", "L3:0=f\n");
        fake_mkdir(&dir.join("mon_groups/c1")).expect("mon");
        let before = entries(&root);
        // The MON group exists already (not ours: kept).
        let cfg = rdt(serde_json::json!({ "closID": "gold", "enableMonitoring": true }));
        let e = err(apply_at(&root, &cfg, "c1", 42, &FAKE));
        let mon = dir.join("mon_groups/c1");
        assert!(
            e.starts_with(&format!(
                "linux.intelRdt: creating the monitoring group {}: ",
                mon.display()
            )),
            "{e}"
        );
        assert!(e.contains("EEXIST"), "{e}");
        assert!(mon.exists());
        assert_eq!(entries(&root), before);

        // No RMID left: the `<id>` group created before is removed again.
        let ops = Ops {
            mkdir: no_rmid_mkdir,
            ..FAKE
        };
        let cfg = rdt(serde_json::json!({ "l3CacheSchema": "L3:0=f", "enableMonitoring": true }));
        let e = err(apply_at(&root, &cfg, "c2", 42, &ops));
        assert!(e.ends_with("ENOSPC: No space left on device"), "{e}");
        assert_eq!(entries(&root), before);
        let _ = fs::remove_dir_all(&root);
    }

    #[test]
    fn failure_removes_what_was_created() {
        let root = fake_root("fail-tasks");
        let before = entries(&root);
        let ops = Ops {
            mkdir: broken_mkdir,
            ..FAKE
        };
        let cfg = rdt(serde_json::json!({ "l3CacheSchema": "L3:0=f" }));
        let e = err(apply_at(&root, &cfg, "c1", 42, &ops));
        let tasks = root.join("c1/tasks");
        assert_eq!(
            e,
            format!(
                "linux.intelRdt: writing \"42\" to {}: EISDIR: Is a directory",
                tasks.display()
            )
        );
        assert_eq!(entries(&root), before);

        // Also a created closID directory (spec: not removed at delete, but this create failed).
        let cfg = rdt(serde_json::json!({ "closID": "gold", "l3CacheSchema": "L3:0=f" }));
        err(apply_at(&root, &cfg, "c1", 42, &ops));
        assert_eq!(entries(&root), before);
        let _ = fs::remove_dir_all(&root);
    }

    #[test]
    fn refused_schemata_names_the_kernel_reason() {
        let root = fake_root("fail-schemata");
        fs::write(root.join("info/last_cmd_status"), "Mask out of range\n").expect("status");
        let before = entries(&root);
        let cfg = rdt(serde_json::json!({
            "l3CacheSchema": "L3:0=f", "schemata": ["L3:0=BAD"], "enableMonitoring": true
        }));
        let e = err(apply_at(&root, &cfg, "c1", 42, &FAKE));
        assert_eq!(
            e,
            format!(
                "linux.intelRdt: writing \"L3:0=BAD\" to {} (resctrl: Mask out of range): \
                 EINVAL: Invalid argument",
                root.join("c1/schemata").display()
            )
        );
        assert_eq!(entries(&root), before);
        // "ok" in last_cmd_status says nothing.
        fs::write(root.join("info/last_cmd_status"), "ok\n").expect("status");
        let e = err(apply_at(&root, &cfg, "c1", 42, &FAKE));
        assert!(!e.contains("resctrl: ok"), "{e}");
        let _ = fs::remove_dir_all(&root);
    }

    #[test]
    fn bad_id_or_pid() {
        let root = fake_root("bad-id");
        for id in ["", ".", "..", "a/b"] {
            let e = err(apply_at(&root, &rdt(serde_json::json!({})), id, 1, &FAKE));
            assert!(e.starts_with("linux.intelRdt: container id"), "{e}");
        }
        let e = err(apply_at(&root, &rdt(serde_json::json!({})), "c", 0, &FAKE));
        assert!(e.contains("invalid pid 0"), "{e}");
        let _ = fs::remove_dir_all(&root);
    }

    #[test]
    fn a_file_where_the_group_should_be() {
        let root = fake_root("file");
        fs::write(root.join("c1"), "").expect("file");
        let e = err(apply_at(&root, &rdt(serde_json::json!({})), "c1", 1, &FAKE));
        assert!(e.ends_with("c1 is not a directory"), "{e}");
        let _ = fs::remove_dir_all(&root);
    }

    #[test]
    fn remove_refuses_what_is_not_resctrl() {
        let root = fake_root("remove");
        let dir = root.join("c1");
        fs::create_dir(&dir).expect("dir");
        let ops = Ops {
            on_resctrl: |p| fs::metadata(p).map(|_| false),
            ..FAKE
        };
        let created = RdtCreated {
            dirs: vec![root.join("gone"), dir.clone()],
        };
        let e = err(remove_with(&created, &ops));
        assert!(e.contains("not on a resctrl filesystem"), "{e}");
        assert!(dir.exists());
        // The real statfs check: a temp dir is not resctrl.
        let e = err(remove_with(&created, &REAL));
        assert!(e.contains("not on a resctrl filesystem"), "{e}");
        assert!(dir.exists());
        let _ = fs::remove_dir_all(&root);
    }

    #[test]
    fn schemata_lines_order_and_empties() {
        let cfg = rdt(serde_json::json!({
            "schemata": ["C:0=1"], "memBwSchema": "MB:0=1", "l3CacheSchema": "L3:0=1"
        }));
        assert_eq!(schemata_lines(&cfg), vec!["L3:0=1", "MB:0=1", "C:0=1"]);
        let cfg = rdt(serde_json::json!({ "l3CacheSchema": "", "memBwSchema": "", "closID": "" }));
        assert!(schemata_lines(&cfg).is_empty());
        assert_eq!(clos_id(&cfg), None);
    }
}
