//! One regression test per published container-runtime breakout. Each builds the attack's
//! configuration (and, for races, keeps swapping files in a loop for a bounded time) and then
//! checks from the host that nothing escaped. docs/security.md maps CVEs to these tests.

use std::ffi::CString;
use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use husk_tests::*;
use serde_json::json;

/// How long each race runs at most.
const RACE_TIME: Duration = Duration::from_secs(4);

/// Keeps exchanging `a` and `b` (renameat2 RENAME_EXCHANGE) until stopped.
struct Swapper {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<u64>>,
}

impl Swapper {
    fn start(a: &Path, b: &Path) -> Swapper {
        let stop = Arc::new(AtomicBool::new(false));
        let (ca, cb) = (cstr(a), cstr(b));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut n = 0u64;
            while !flag.load(Ordering::Relaxed) {
                // SAFETY: two valid NUL-terminated paths; RENAME_EXCHANGE swaps them atomically.
                unsafe {
                    libc::syscall(
                        libc::SYS_renameat2,
                        libc::AT_FDCWD,
                        ca.as_ptr(),
                        libc::AT_FDCWD,
                        cb.as_ptr(),
                        libc::RENAME_EXCHANGE,
                    );
                }
                n += 1;
            }
            n
        });
        Swapper {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Swapper {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn cstr(p: &Path) -> CString {
    CString::new(p.as_os_str().as_encoded_bytes()).expect("path without NUL")
}

fn core_pattern() -> String {
    fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap_or_default()
}

/// A host directory outside every rootfs, removed on drop.
struct Victim(PathBuf);

impl Victim {
    fn new(name: &str) -> Victim {
        let p = PathBuf::from(format!("/tmp/husk-cve-victim-{}", unique(name)));
        fs::create_dir_all(&p).expect("victim dir");
        fs::write(p.join("marker"), "host").expect("marker");
        Victim(p)
    }

    fn entries(&self) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(&self.0)
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }
}

impl Drop for Victim {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// The mount points in the container's mount namespace (container paths, after pivot_root).
fn container_mounts(pid: i32) -> Vec<MountInfo> {
    parse_mountinfo(&fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap_or_default())
}

// --- CVE-2019-5736 ------------------------------------------------------------------------

/// Runs a copy of the runtime binary, so a successful attack could not damage the one the
/// other tests use.
fn husk_copy(rt: &Runtime) -> PathBuf {
    let copy = rt.scratch().join("runtime-copy");
    fs::copy(rt.bin(), &copy).expect("copying the runtime");
    copy
}

fn run_copy(bin: &Path, rt: &Runtime, args: &[&str]) -> std::process::Output {
    Command::new(bin)
        .arg("--root")
        .arg(rt.root())
        .args(args)
        .output()
        .expect("runtime copy")
}

#[test]
fn cve_2019_5736_runtime_binary_cannot_be_overwritten() {
    let mut b = Bundle::new("cve-5736");
    // A script interpreted by /proc/self/exe: executing it runs whatever the container's
    // init was running before its exec. While that runs, keep an fd to it; once it exited,
    // try to write through that fd.
    fs::write(b.rootfs().join("bin/evil"), "#!/proc/self/exe\n").expect("evil");
    set_exec(&b.rootfs().join("bin/evil"));
    b.sh(
        "i=0; while [ $i -lt 50 ]; do i=$((i+1)); \
         ( /bin/evil >/dev/null 2>&1 & p=$!; exec 3</proc/$p/exe || exit 0; sleep 0.05; \
           readlink /proc/self/fd/3 > /tmp/exe-was; echo PWNED >> /proc/self/fd/3 && echo WROTE ) 2>/dev/null; \
         done; cat /tmp/exe-was 2>/dev/null; true",
    );
    let rt = Runtime::new("cve-5736");
    let bin = husk_copy(&rt);
    let before = fs::read(&bin).expect("read runtime");
    let id = rt.id("c");
    let dir = b.dir_str();
    b.write();
    let out = run_copy(&bin, &rt, &["run", "--bundle", &dir, &id]);
    let after = fs::read(&bin).expect("read runtime");
    let _ = run_copy(&bin, &rt, &["delete", "--force", &id]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        before == after,
        "the runtime binary on the host was modified: {stdout}"
    );
    assert!(!stdout.contains("WROTE"), "{stdout}");
    // While the container's init had not exec'd yet, its exe was not the host binary.
    let mut b2 = Bundle::new("cve-5736-created");
    b2.args(&["true"]);
    let id2 = rt.id("c2");
    rt.create(&b2, &id2).assert_ok();
    let pid = rt.pid(&id2);
    let exe = fs::read_link(format!("/proc/{pid}/exe")).unwrap_or_default();
    if flavor() == Flavor::Husk {
        // A sealed memfd copy, or the binary through a read-only (detached) bind mount.
        let ro = nix::sys::statvfs::statvfs(format!("/proc/{pid}/exe").as_str())
            .is_ok_and(|st| st.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY));
        assert!(
            ro || exe.to_string_lossy().starts_with("/memfd:"),
            "init's exe is {} on a writable mount",
            exe.display()
        );
    }
    let write = fs::OpenOptions::new()
        .append(true)
        .open(format!("/proc/{pid}/exe"))
        .and_then(|mut f| std::io::Write::write_all(&mut f, b"PWNED"));
    assert!(write.is_err(), "writing through /proc/<init>/exe succeeded");
    rt.delete_force(&id2);
}

fn set_exec(p: &Path) {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(p, fs::Permissions::from_mode(0o755)).expect("chmod");
}

// --- CVE-2019-16884 -----------------------------------------------------------------------

#[test]
fn cve_2019_16884_no_fake_procfs_over_proc() {
    // A volume mounted over /proc, or over /proc/self/attr, would receive the LSM label
    // writes meant for procfs. Such mounts are refused; nothing is written to the host files.
    let victim = Victim::new("16884");
    for (name, dest) in [
        ("cve-16884-proc", "/proc"),
        ("cve-16884-attr", "/proc/self/attr"),
    ] {
        let mut b = Bundle::new(name);
        b.add_bind(&victim.0.to_string_lossy(), dest, &["rbind"]);
        b.set("/process/oomScoreAdj", json!(100));
        let rt = Runtime::new(name);
        let id = rt.id("c");
        let out = rt.create(&b, &id);
        out.assert_fail();
        rt.assert_nothing_left(&b, &id);
    }
    assert_eq!(victim.entries(), ["marker"]);
    assert_eq!(
        fs::read_to_string(victim.0.join("marker")).unwrap_or_default(),
        "host"
    );
}

// --- CVE-2021-30465, CVE-2023-27561, CVE-2024-45310 -----------------------------------------

/// Creates containers while a swapper exchanges `rootfs/<dir>` (a real directory) with a
/// symlink pointing out of the rootfs (to `victim`); returns the created containers' pids
/// handed to `check`, then deletes them.
fn race_creates(
    name: &str,
    dir: &str,
    victim: &Path,
    setup: impl Fn(&mut Bundle),
    check: impl Fn(i32),
) -> (u32, u32) {
    let mut b = Bundle::new(name);
    let real = b.rootfs().join(dir);
    fs::create_dir_all(&real).expect("race dir");
    let link = b.rootfs().join(format!("{dir}-link"));
    // Absolute, and with enough `..` to climb out of the rootfs if resolved on the host.
    symlink(format!("/../../../../../../..{}", victim.display()), &link).expect("symlink");
    setup(&mut b);
    b.args(&["true"]);
    let rt = Runtime::new(name);
    let swapper = Swapper::start(&real, &link);
    let deadline = Instant::now() + RACE_TIME;
    let (mut ok, mut failed) = (0, 0);
    while Instant::now() < deadline {
        let id = rt.id("c");
        let out = rt.create(&b, &id);
        if out.ok() {
            ok += 1;
            check(rt.pid(&id));
            rt.delete_force(&id);
        } else {
            failed += 1;
        }
    }
    drop(swapper);
    // Leave the real directory in place so cleanup finds everything.
    if fs::symlink_metadata(&real).is_ok_and(|m| m.file_type().is_symlink()) {
        let _ = fs::rename(&real, b.rootfs().join("tmp-swap"));
        let _ = fs::rename(&link, &real);
        let _ = fs::rename(b.rootfs().join("tmp-swap"), &link);
    }
    (ok, failed)
}

#[test]
fn cve_2021_30465_mount_target_swapped_for_a_symlink() {
    let victim = Victim::new("30465");
    let tag = unique("race-tmpfs");
    let (ok, failed) = race_creates(
        "cve-30465",
        "mnt/race",
        &victim.0,
        |b| {
            b.add_mount("/mnt/race/sub", "tmpfs", &tag, &["nosuid"]);
        },
        |pid| {
            // The tmpfs is in the container: at /mnt/race/sub, or (symlink followed inside the
            // rootfs) at <victim path>/sub *inside* the container. Never lost outside.
            let m = container_mounts(pid);
            assert!(
                m.iter().any(|e| e.source == tag),
                "the tmpfs mount escaped the rootfs: {m:?}"
            );
        },
    );
    assert!(ok + failed > 0);
    assert_eq!(
        victim.entries(),
        ["marker"],
        "something was created in the host directory"
    );
}

#[test]
fn cve_2023_27561_proc_swapped_for_a_symlink() {
    let victim = Victim::new("27561");
    let (_ok, _failed) =
        race_creates(
            "cve-27561",
            "proc",
            &victim.0,
            |_| {},
            |pid| {
                // proc was mounted on the real directory (never through the symlink) and got its
                // protections: wherever the racer has renamed that directory to since, proc's
                // sys is read-only under it.
                // (Names in mountinfo move with the racer's renames: compare shapes, not names.)
                let m = container_mounts(pid);
                let procs: Vec<&MountInfo> = m.iter().filter(|e| e.fs_type == "proc").collect();
                assert!(
                    procs.iter().all(|e| e.mount_point.starts_with("/proc")),
                    "proc mounts: {procs:?}"
                );
                let rw_roots = procs
                    .iter()
                    .filter(|e| e.mount_opts.iter().any(|o| o == "rw"))
                    .count();
                assert_eq!(rw_roots, 1, "proc mounts: {procs:?}");
                assert!(
                    procs.iter().any(|e| e.mount_point.ends_with("/sys")
                        && e.mount_opts.iter().any(|o| o == "ro")),
                    "proc's sys is not read-only: {procs:?}"
                );
            },
        );
    assert_eq!(victim.entries(), ["marker"]);
}

#[test]
fn cve_2024_45310_no_mkdir_outside_the_rootfs() {
    let victim = Victim::new("45310");
    let src = Victim::new("45310-src");
    let (_ok, _failed) = race_creates(
        "cve-45310",
        "data",
        &victim.0,
        |b| {
            b.add_bind(&src.0.to_string_lossy(), "/data/deep/er/target", &["rbind"]);
        },
        |_| {},
    );
    assert_eq!(
        victim.entries(),
        ["marker"],
        "directories were created on the host"
    );
}

// --- CVE-2022-29162 -----------------------------------------------------------------------

#[test]
fn cve_2022_29162_no_inheritable_capabilities() {
    let mut b = Bundle::new("cve-29162");
    b.capset(
        "bounding",
        &["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
    );
    b.capset("permitted", &["CAP_CHOWN", "CAP_KILL"]);
    b.capset("effective", &["CAP_CHOWN", "CAP_KILL"]);
    b.sh("grep -E '^Cap(Inh|Amb)' /proc/self/status");
    let rt = Runtime::new("cve-29162");
    let id = rt.id("c");
    let out = rt.run_capture(&b, &id);
    out.assert_ok();
    assert_eq!(
        status_field(&out.stdout, "CapInh").as_deref(),
        Some("0000000000000000"),
        "{}",
        out.stdout
    );
    assert_eq!(
        status_field(&out.stdout, "CapAmb").as_deref(),
        Some("0000000000000000"),
        "{}",
        out.stdout
    );
    rt.assert_nothing_left(&b, &id);
}

// --- CVE-2024-21626 -----------------------------------------------------------------------

#[test]
fn cve_2024_21626_no_leaked_fd_reaches_the_container() {
    let mut b = Bundle::new("cve-21626");
    let rt = Runtime::new("cve-21626");
    let rootfs = fs::canonicalize(b.rootfs()).expect("rootfs");
    for n in 3..=12 {
        b.cwd(&format!("/proc/self/fd/{n}"));
        b.args(&["sleep", "5"]);
        let id = rt.id("c");
        if rt.create(&b, &id).ok() {
            // The cwd of the created init must be inside the rootfs.
            let pid = rt.pid(&id);
            let cwd = fs::read_link(format!("/proc/{pid}/cwd")).unwrap_or_default();
            assert!(
                cwd.starts_with(&rootfs),
                "fd {n}: cwd {} is outside the rootfs",
                cwd.display()
            );
            rt.delete_force(&id);
        }
    }
    // And after exec the process holds nothing but stdio.
    b.cwd("/");
    b.sh("ls /proc/self/fd");
    let id = rt.id("c");
    let out = rt.run_capture(&b, &id);
    out.assert_ok();
    let fds: Vec<&str> = out.stdout.split_whitespace().collect();
    assert_eq!(
        fds,
        ["0", "1", "2", "3"],
        "open fds in the container: {}",
        out.stdout
    );
}

// --- CVE-2025-31133 -----------------------------------------------------------------------

#[test]
fn cve_2025_31133_masked_path_with_a_fake_dev_null() {
    // /dev comes from a directory where `null` is a symlink to core_pattern: masking a path
    // must not bind core_pattern there.
    let before = core_pattern();
    let devdir = Victim::new("31133-dev");
    symlink("/proc/sys/kernel/core_pattern", devdir.0.join("null")).expect("symlink");
    let mut b = Bundle::new("cve-31133");
    b.remove_mount("/dev");
    b.add_bind(&devdir.0.to_string_lossy(), "/dev", &["rbind"]);
    b.set("/linux/maskedPaths", json!(["/etc/hostname"]));
    b.sh("echo '|/tmp/pwned' > /etc/hostname; cat /etc/hostname");
    let rt = Runtime::new("cve-31133");
    let id = rt.id("c");
    let out = rt.run_capture(&b, &id);
    assert_eq!(
        core_pattern(),
        before,
        "core_pattern changed: {}",
        out.stdout
    );
    if flavor() == Flavor::Husk {
        out.assert_fail();
        out.assert_msg("not the null device", "");
    }
    rt.assert_nothing_left(&b, &id);
}

// --- CVE-2025-52565 -----------------------------------------------------------------------

#[test]
fn cve_2025_52565_dev_console_swapped_for_a_symlink() {
    // /dev/console is a symlink to core_pattern when the console is bind-mounted.
    let before = core_pattern();
    let devdir = Victim::new("52565-dev");
    symlink("/proc/sys/kernel/core_pattern", devdir.0.join("console")).expect("symlink");
    let mut b = Bundle::new("cve-52565");
    b.remove_mount("/dev");
    b.add_bind(&devdir.0.to_string_lossy(), "/dev", &["rbind"]);
    b.add_mount(
        "/dev/pts",
        "devpts",
        "devpts",
        &["newinstance", "ptmxmode=0666", "mode=0620"],
    );
    b.set("/process/terminal", json!(true));
    b.sh("echo '|/tmp/pwned' > /dev/console");
    let rt = Runtime::new("cve-52565");
    let id = rt.id("c");
    let _ = rt.run_capture(&b, &id);
    assert_eq!(core_pattern(), before, "core_pattern changed");
    // The host's /dev directory entry was not followed either.
    assert!(fs::symlink_metadata(devdir.0.join("console")).is_ok());
}

// --- CVE-2025-52881 -----------------------------------------------------------------------

#[test]
fn cve_2025_52881_procfs_writes_are_not_redirected() {
    // A bind mount over one of the few /proc files that may be covered (lxcfs style), with the
    // host's core_pattern as source: a runtime write to that /proc file (sysctl) must not
    // land in core_pattern.
    let before = core_pattern();
    let mut b = Bundle::new("cve-52881");
    b.add_bind(
        "/proc/sys/kernel/core_pattern",
        "/proc/sys/kernel/ns_last_pid",
        &["bind"],
    );
    b.set(
        "/linux/sysctl",
        json!({"kernel.ns_last_pid": "|/tmp/pwned"}),
    );
    b.set("/process/oomScoreAdj", json!(200));
    b.sh("cat /proc/self/oom_score_adj");
    let rt = Runtime::new("cve-52881");
    let id = rt.id("c");
    let _ = rt.run_capture(&b, &id);
    assert_eq!(core_pattern(), before, "core_pattern changed");
    rt.assert_nothing_left(&b, &id);
}
