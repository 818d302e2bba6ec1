//! The probe, and running one case under one runtime: what the container saw, as fields.

use super::*;

// ---- the probe ----------------------------------------------------------------------------

/// The container's process: prints what it sees, in `== section` blocks, then (with `wait`
/// as $1) waits until the host creates `/.go` in its rootfs, so that the host can read the
/// container's cgroup files while it runs. Always exits 0: a non-zero `run` means the
/// runtime refused the config.
pub(crate) const PROBE: &str = r#"
echo '== ns'
for n in cgroup ipc mnt net pid pid_for_children time time_for_children user uts; do
  echo "$n $(readlink /proc/self/ns/$n)"
done
echo '== mountinfo'
cat /proc/$$/mountinfo
echo '== status'
grep -E '^(Cap|NoNewPrivs|Seccomp|Uid|Gid|Groups)' /proc/$$/status
echo '== limits'
cat /proc/$$/limits
echo '== env'
tr '\0' '\n' < /proc/$$/environ
echo '== misc'
echo "umask $(umask)"
echo "cwd $(pwd -P)"
echo "hostname $(uname -n)"
echo "oom_score_adj $(cat /proc/$$/oom_score_adj)"
echo '== cgroup'
cat /proc/$$/cgroup
echo '== end'
if [ "$1" = wait ]; then
  n=0
  while [ ! -e /.go ] && [ $n -lt 4000 ]; do usleep 5000; n=$((n+1)); done
fi
exit 0
"#;

pub(crate) fn probe_args(mode: &str) -> Value {
    json!(["/bin/sh", "-c", PROBE, "probe", mode])
}

/// The cgroup v1 files read from the host for every container (what `linux.resources` and
/// `linux.devices` set), as `<controller>/<file>`.
pub(crate) const CGROUP_FILES: &[&str] = &[
    "memory/memory.limit_in_bytes",
    "memory/memory.soft_limit_in_bytes",
    "memory/memory.memsw.limit_in_bytes",
    "memory/memory.swappiness",
    "memory/memory.oom_control",
    "cpu/cpu.shares",
    "cpu/cpu.cfs_quota_us",
    "cpu/cpu.cfs_period_us",
    "cpuset/cpuset.cpus",
    "cpuset/cpuset.mems",
    "pids/pids.max",
    "blkio/blkio.weight",
    "devices/devices.list",
];

// ---- running one case under one runtime ---------------------------------------------------

/// What one runtime showed for one case: field -> value, and messages for people.
#[derive(Default, Debug)]
pub(crate) struct Obs {
    pub(crate) fields: BTreeMap<String, String>,
    pub(crate) notes: Vec<String>,
}

impl Obs {
    pub(crate) fn set(&mut self, k: impl Into<String>, v: impl Into<String>) {
        self.fields.insert(k.into(), v.into());
    }
}

/// The recording hook: saves its stdin and its environment into DIR (the rootfs seen from
/// where the hook runs) and appends its kind to DIR/hooks.log.
pub(crate) fn hook_json(kind: HookKind, with_env: bool, dir: &str, fail: bool) -> Value {
    let k = kind.key();
    let script = if fail {
        format!("echo {k}-failed >> {dir}/hooks.log; exit 1")
    } else {
        format!(
            "cat > {dir}/hook-{k}.state; cat /proc/$$/environ > {dir}/hook-{k}.env; echo {k} >> {dir}/hooks.log"
        )
    };
    let mut h = json!({ "path": "/bin/sh", "args": ["sh", "-c", script], "timeout": 10 });
    if with_env {
        h["env"] = json!(["PATH=/usr/sbin:/usr/bin:/sbin:/bin", format!("HOOK_KIND={k}")]);
    }
    h
}

pub(crate) fn prepare(case: &Case, tag: &str) -> Bundle {
    let mut b = Bundle::new(&format!("dif-{tag}"));
    let cg = b.cgroups_path().unwrap();
    let rootfs = b.rootfs().to_string_lossy().into_owned();
    let mut c = case.config.clone();
    set_ptr(&mut c, "/root/path", json!("rootfs"));
    set_ptr(&mut c, "/linux/cgroupsPath", json!(cg));
    if c.pointer("/process/args").is_none() {
        set_ptr(&mut c, "/process/args", probe_args("wait"));
    }
    let fail = case.flow == Flow::FailingStart;
    for (kind, with_env) in &case.hooks {
        let dir = if kind.in_container() { "" } else { rootfs.as_str() };
        let fails = fail && *kind == HookKind::StartContainer;
        push_ptr(&mut c, &format!("/hooks/{}", kind.key()), hook_json(*kind, *with_env, dir, fails));
    }
    if matches!(case.flow, Flow::FailingStart) {
        set_ptr(&mut c, "/process/args", probe_args("nowait"));
    }
    *b.config_mut() = c;
    b.write();
    b
}

/// Splits the probe's output into its sections.
pub(crate) fn sections(out: &str) -> BTreeMap<String, Vec<String>> {
    let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut cur = String::from("preamble");
    for l in out.lines() {
        if let Some(s) = l.strip_prefix("== ") {
            cur = s.trim().to_string();
            m.entry(cur.clone()).or_default();
        } else {
            m.entry(cur.clone()).or_default().push(l.to_string());
        }
    }
    m
}

/// Host namespace links, read once by the test process.
pub(crate) fn host_ns() -> &'static BTreeMap<String, String> {
    static NS: std::sync::OnceLock<BTreeMap<String, String>> = std::sync::OnceLock::new();
    NS.get_or_init(|| {
        ["cgroup", "ipc", "mnt", "net", "pid", "pid_for_children", "time",
         "time_for_children", "user", "uts"]
            .iter()
            .map(|n| (n.to_string(), ns_link("self", n)))
            .collect()
    })
}

/// Turns the probe's output into fields, prefixed with `prefix` (`` or `exec.`).
pub(crate) fn parse_probe(out: &str, config: &Value, cg: &str, prefix: &str, obs: &mut Obs) {
    let s = sections(out);
    let empty = vec![];
    let sec = |n: &str| s.get(n).unwrap_or(&empty);
    obs.set(format!("{prefix}probe"), if s.contains_key("end") { "complete" } else { "incomplete" });
    for l in sec("ns") {
        let (n, link) = l.split_once(' ').unwrap_or((l, ""));
        let v = if link.is_empty() {
            "absent"
        } else if host_ns().get(n).is_some_and(|h| h == link) {
            "host"
        } else {
            "new"
        };
        obs.set(format!("{prefix}ns.{n}"), v);
    }
    // Mounts: config mounts by destination, to know which tmpfs sizes the config chose.
    let cfg_types: BTreeMap<String, String> = config["mounts"]
        .as_array()
        .map(|ms| {
            ms.iter()
                .filter_map(|m| {
                    Some((
                        m["destination"].as_str()?.trim_end_matches('/').to_string(),
                        m["type"].as_str().unwrap_or("").to_string(),
                    ))
                })
                .collect()
        })
        .unwrap_or_default();
    let infos = parse_mountinfo(&sec("mountinfo").join("\n"));
    // The order of the config's own mounts (mutations swap them); the runtime's extra mounts
    // (device binds, masks, cgroup binds) are compared one by one below, not by position.
    let order: Vec<&str> = infos
        .iter()
        .map(|m| m.mount_point.as_str())
        .filter(|p| cfg_types.contains_key(*p))
        .collect();
    obs.set(format!("{prefix}mounts.order"), order.join(" "));
    let mut per_point: BTreeMap<String, [Vec<String>; 5]> = BTreeMap::new();
    for m in &infos {
        let mut sup = m.super_opts.clone();
        // A tmpfs the runtime made on its own (masked directories, the tmpfs under a v1
        // /sys/fs/cgroup, a missing /dev): its size and inode count are the runtime's
        // choice, not the config's. Only a tmpfs the config asked for keeps them.
        if m.fs_type == "tmpfs" && cfg_types.get(&m.mount_point).map(String::as_str) != Some("tmpfs") {
            sup.retain(|o| !o.starts_with("size=") && !o.starts_with("nr_inodes="));
        }
        // Peer group and master ids are run-specific; the propagation kind is not.
        let prop: Vec<String> = m
            .optional
            .iter()
            .map(|o| o.split(':').next().unwrap_or("").to_string())
            .collect();
        let e = per_point.entry(m.mount_point.clone()).or_default();
        e[0].push(m.fs_type.clone());
        e[1].push(m.source.clone());
        e[2].push(m.mount_opts.join(","));
        e[3].push(sup.join(","));
        e[4].push(if prop.is_empty() { "private".to_string() } else { prop.join(",") });
    }
    // One field per mount point and attribute (stacked mounts joined by " | "), so that a
    // listed difference in one attribute does not hide another.
    for (p, attrs) in per_point {
        for (name, vals) in ["fs", "src", "opts", "super", "prop"].iter().zip(attrs) {
            obs.set(format!("{prefix}mount:{p}:{name}"), vals.join(" | "));
        }
    }
    for l in sec("status") {
        if let Some((k, v)) = l.split_once(':') {
            let v = v.split_whitespace().collect::<Vec<_>>().join(" ");
            obs.set(format!("{prefix}status.{k}"), v);
        }
    }
    for l in sec("limits").iter().skip(1) {
        if l.len() < 26 {
            continue;
        }
        let name = l[..25].trim();
        let vals: Vec<&str> = l[25..].split_whitespace().take(2).collect();
        obs.set(format!("{prefix}limit.{name}"), vals.join(" "));
    }
    obs.set(format!("{prefix}env"), format!("{:?}", sec("env")));
    for l in sec("misc") {
        let (k, v) = l.split_once(' ').unwrap_or((l, ""));
        obs.set(format!("{prefix}{k}"), v);
    }
    let cgl: Vec<String> = sec("cgroup")
        .iter()
        .map(|l| {
            let l = l.replace(&format!("{cg}/"), "<cgroupsPath>/");
            if l.ends_with(cg) {
                format!("{}<cgroupsPath>", &l[..l.len() - cg.len()])
            } else {
                l
            }
        })
        .collect();
    obs.set(format!("{prefix}proc.cgroup"), cgl.join(" "));
}

pub(crate) fn read_cgroups(cg: &str, obs: &mut Obs) {
    let rel = cg.trim_start_matches('/');
    for f in CGROUP_FILES {
        let (ctrl, file) = f.split_once('/').unwrap();
        let p = Path::new("/sys/fs/cgroup").join(ctrl).join(rel).join(file);
        let v = match fs::read_to_string(&p) {
            Ok(t) if file == "memory.oom_control" => {
                t.lines().find(|l| l.starts_with("oom_kill_disable")).unwrap_or("").to_string()
            }
            // The kernel keeps device rules in the order they were written; what they allow
            // is the set: one field per rule.
            Ok(t) if file == "devices.list" => {
                for rule in t.lines() {
                    obs.set(format!("cgroup.devices.list[{rule}]"), "allowed");
                }
                continue;
            }
            Ok(t) => t.split_whitespace().collect::<Vec<_>>().join(" "),
            Err(e) => format!("<{}>", e.kind()),
        };
        obs.set(format!("cgroup.{ctrl}/{file}"), v);
    }
}

pub(crate) fn hook_fields(b: &Bundle, id: &str, prefix: &str, obs: &mut Obs) {
    let log = b.read("hooks.log");
    obs.set(format!("{prefix}hooks.ran"), log.split_whitespace().collect::<Vec<_>>().join(" "));
    if !prefix.is_empty() {
        // An intermediate look (after create, after start): which hooks ran so far.
        return;
    }
    for kind in HookKind::ALL {
        let k = kind.key();
        let st = b.read(&format!("hook-{k}.state"));
        if !st.is_empty() || b.rootfs().join(format!("hook-{k}.state")).exists() {
            let v = match serde_json::from_str::<Value>(st.trim()) {
                Ok(mut v) => {
                    // Run-specific: the pid (kept when it is 1, the container's own view),
                    // the bundle dir and the container id.
                    if v["pid"].as_i64().is_some_and(|p| p != 1) {
                        v["pid"] = json!("<pid>");
                    }
                    if v["bundle"] == json!(b.dir_str()) {
                        v["bundle"] = json!("<bundle>");
                    }
                    if v["id"] == json!(id) {
                        v["id"] = json!("<id>");
                    }
                    // One field per key of the state.
                    for (key, val) in v.as_object().into_iter().flatten() {
                        obs.set(format!("{prefix}hook.{k}.stdin.{key}"), val.to_string());
                    }
                    "JSON object".to_string()
                }
                Err(_) => format!("not JSON: {st:?}"),
            };
            obs.set(format!("{prefix}hook.{k}.stdin"), v);
        }
        if let Ok(env) = fs::read(b.rootfs().join(format!("hook-{k}.env"))) {
            let list: Vec<String> = String::from_utf8_lossy(&env)
                .split('\0')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect();
            // Two fields: what the hook gets (sorted), and in which order (husk starts hooks
            // with std's Command, which sorts: a listed, cosmetic difference).
            let mut sorted = list.clone();
            sorted.sort();
            obs.set(format!("{prefix}hook.{k}.env"), format!("{sorted:?}"));
            obs.set(format!("{prefix}hook.{k}.env.order"), format!("{list:?}"));
        }
    }
}

/// The error lines of a command's output, for the report.
pub(crate) fn why(out: &Output) -> String {
    let mut msgs: Vec<String> = out
        .log
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["level"] == "error" || v["level"] == "fatal")
        .filter_map(|v| v["msg"].as_str().map(str::to_string))
        .collect();
    if msgs.is_empty() {
        msgs = out.stderr.lines().rev().take(3).map(str::to_string).collect();
    }
    let s = msgs.join(" / ");
    if s.len() > 400 { format!("{}...", &s[..400]) } else { s }
}

pub(crate) fn run_case(case: &Case, runtime: &str, bin: &Path) -> Obs {
    let mut obs = Obs::default();
    let b = prepare(case, &format!("{}-{runtime}", &case.name[..case.name.len().min(20)]));
    let cg = b.cgroups_path().unwrap();
    let result = catch_unwind(AssertUnwindSafe(|| {
        let rt = Runtime::with_bin(&format!("dif-{runtime}"), bin.to_path_buf());
        let id = rt.id("d");
        match &case.flow {
            Flow::FailingStart => {
                let o = rt.create(&b, &id);
                obs.set("create", if o.ok() { "ok" } else { "refused" });
                if !o.ok() {
                    obs.notes.push(format!("{runtime} create: {}", why(&o)));
                }
                hook_fields(&b, &id, "after-create.", &mut obs);
                let o = rt.start(&id);
                obs.set("start", if o.ok() { "ok" } else { "failed" });
                let st = rt.state(&id);
                let status = if st.ok() {
                    st.json()["status"].as_str().unwrap_or("").to_string()
                } else {
                    "no state".into()
                };
                obs.set("state-after-start", status);
                hook_fields(&b, &id, "after-start.", &mut obs);
                let d = rt.delete(&id);
                let d = if d.ok() { "ok".to_string() } else {
                    let f = rt.delete_force(&id);
                    format!("failed, then --force {}", if f.ok() { "ok" } else { "failed" })
                };
                obs.set("delete", d);
                hook_fields(&b, &id, "", &mut obs);
            }
            flow => {
                let mut running = rt.spawn_run(&b, &id, &[]);
                let deadline = Instant::now() + Duration::from_secs(20);
                let mut seen_end = false;
                while Instant::now() < deadline {
                    if running.peek().stdout.contains("\n== end\n") {
                        seen_end = true;
                        break;
                    }
                    if running.exited() {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(3));
                }
                if seen_end {
                    read_cgroups(&cg, &mut obs);
                    match flow {
                        Flow::Exec(opts) => {
                            let mut args: Vec<String> = vec!["exec".into()];
                            args.extend(opts.iter().cloned());
                            args.push(id.clone());
                            for a in probe_args("nowait").as_array().unwrap() {
                                args.push(a.as_str().unwrap().to_string());
                            }
                            let a: Vec<&str> = args.iter().map(String::as_str).collect();
                            let o = rt.cmd(&a);
                            obs.set("exec.status", if o.ok() { "ok" } else { "refused" });
                            if !o.ok() {
                                obs.notes.push(format!("{runtime} exec: {}", why(&o)));
                            }
                            parse_probe(&o.stdout, &b.config()["process"], &cg, "exec.", &mut obs);
                        }
                        Flow::ExecProcess(p) => {
                            let f = rt.scratch().join("process.json");
                            fs::write(&f, p.to_string()).unwrap();
                            let fs_ = f.to_string_lossy().into_owned();
                            let o = rt.cmd(&["exec", "--process", &fs_, &id]);
                            obs.set("exec.status", if o.ok() { "ok" } else { "refused" });
                            if !o.ok() {
                                obs.notes.push(format!("{runtime} exec: {}", why(&o)));
                            }
                            parse_probe(&o.stdout, &json!({}), &cg, "exec.", &mut obs);
                        }
                        _ => {}
                    }
                }
                let _ = fs::write(b.rootfs().join(".go"), "");
                let out = running.wait(Duration::from_secs(30));
                let ok = out.ok() && seen_end;
                obs.set("status", if ok { "ok" } else { "refused" });
                if !ok {
                    obs.notes.push(format!("{runtime} run (exit {}): {}", out.code, why(&out)));
                } else {
                    parse_probe(&out.stdout, b.config(), &cg, "", &mut obs);
                }
                hook_fields(&b, &id, "", &mut obs);
            }
        }
        // What the container left on the host after its last command (the drop guard would
        // fail on it; record it as a field instead, then clean up).
        let l = rt.leftovers(&b, &id);
        let items: Vec<String> = l
            .items
            .iter()
            .map(|i| {
                i.replace(&b.dir_str(), "<bundle>")
                    .replace(&rt.root_str(), "<root>")
                    .replace(&cg, "<cgroupsPath>")
            })
            .map(|i| {
                // Pids are run-specific.
                i.split(' ')
                    .map(|w| if w.parse::<u32>().is_ok() { "<n>" } else { w })
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect();
        obs.set("leftovers", if items.is_empty() { "none".to_string() } else { items.join("; ") });
        if !l.is_empty() {
            let _ = rt.delete_force(&id);
            clean_up(rt.root(), b.dir(), Some(&cg), None);
        }
    }));
    if let Err(e) = result {
        let msg = e
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "panic".into());
        let short: String = msg.chars().take(600).collect();
        obs.set("harness", format!("panicked: {short}"));
    }
    // Mounts under the bundle (e.g. a runtime that mounted into the host's namespace)
    // would make the bundle's drop panic: it reports them as leftovers above already.
    for m in mounts_under(b.dir()).iter().rev() {
        let _ = std::process::Command::new("umount").arg("-l").arg(m).status();
    }
    obs
}

