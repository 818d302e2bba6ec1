//! Seeded mutations of the captured configs: a fixed seed, so the case names are stable.

use super::*;

// ---- seeded mutations -----------------------------------------------------------------------

/// xorshift64*: a tiny deterministic PRNG, so the mutated corpus is the same on every run.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    pub(crate) fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[self.below(v.len())]
    }
}

pub(crate) const SEED: u64 = 0x5eed_d1ff_2026_0001;
pub(crate) const MUTATIONS_PER_FIXTURE: usize = 26;

/// Paths a mutation never drops or flips: what the test itself sets, and their parents.
pub(crate) fn protected(p: &str) -> bool {
    const KEEP: &[&str] = &[
        "/process", "/process/args", "/process/terminal", "/root", "/root/path", "/linux",
        "/linux/cgroupsPath",
    ];
    KEEP.contains(&p) || p.starts_with("/process/args/")
}

pub(crate) fn esc(k: &str) -> String {
    k.replace('~', "~0").replace('/', "~1")
}

/// Every JSON pointer in `v` up to `depth` segments, skipping the long seccomp name lists.
pub(crate) fn paths(v: &Value, prefix: &str, depth: usize, out: &mut Vec<String>) {
    if depth == 0 || prefix.ends_with("/names") {
        return;
    }
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                let p = format!("{prefix}/{}", esc(k));
                out.push(p.clone());
                paths(x, &p, depth - 1, out);
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                let p = format!("{prefix}/{i}");
                out.push(p.clone());
                paths(x, &p, depth - 1, out);
            }
        }
        _ => {}
    }
}

/// A readable form of a pointer for case names: `/linux/seccomp` -> `.linux.seccomp`.
pub(crate) fn dotted(p: &str) -> String {
    p.replace('/', ".")
}

/// Fields a mutation may add (set where absent): ones both runtimes implement.
pub(crate) fn additions(files: &HostFiles) -> Vec<(&'static str, &'static str, Value)> {
    vec![
        ("oomScoreAdj", "/process/oomScoreAdj", json!(500)),
        ("umask", "/process/user/umask", json!(63)),
        ("additionalGids", "/process/user/additionalGids", json!([5, 1000])),
        ("hostname", "/hostname", json!("mutant")),
        ("domainname", "/domainname", json!("mutant.example")),
        ("annotation", "/annotations/org.example.mutant", json!("yes")),
        ("sysctl", "/linux/sysctl/kernel.msgmax", json!("8192")),
        ("pids", "/linux/resources/pids/limit", json!(123)),
        ("memory", "/linux/resources/memory/limit", json!(268435456)),
        ("shares", "/linux/resources/cpu/shares", json!(512)),
        ("quota", "/linux/resources/cpu/quota", json!(50000)),
        ("cpus", "/linux/resources/cpu/cpus", json!("0")),
        ("swappiness", "/linux/resources/memory/swappiness", json!(10)),
        ("propagation-private", "/linux/rootfsPropagation", json!("private")),
        ("propagation-rslave", "/linux/rootfsPropagation", json!("rslave")),
        ("readonly-root", "/root/readonly", json!(true)),
        ("nnp", "/process/noNewPrivileges", json!(true)),
        ("cwd", "/process/cwd", json!("/tmp")),
        ("uid", "/process/user/uid", json!(1000)),
        ("env", "/process/env/-", json!("ADDED=1")),
        ("env-dup-path", "/process/env/-", json!("PATH=/bin")),
        ("mount-tmpfs", "/mounts/-", json!({
            "destination": "/mnt", "type": "tmpfs", "source": "tmpfs",
            "options": ["nosuid", "nodev", "size=1m", "mode=750"] })),
        ("mount-rbind-ro", "/mounts/-", json!({
            "destination": "/mnt", "type": "bind", "source": files.rbind.path_str(),
            "options": ["rbind", "ro", "nosuid"] })),
        ("rlimit-nproc", "/process/rlimits/-", json!({ "type": "RLIMIT_NPROC", "hard": 512, "soft": 256 })),
        ("rlimit-core", "/process/rlimits/-", json!({ "type": "RLIMIT_CORE", "hard": 0, "soft": 0 })),
        ("masked", "/linux/maskedPaths/-", json!("/proc/cpuinfo")),
        ("readonly-path", "/linux/readonlyPaths/-", json!("/proc/interrupts")),
        ("cap-sys-admin", "/process/capabilities/bounding/-", json!("CAP_SYS_ADMIN")),
        ("cgroup-ns", "/linux/namespaces/-", json!({ "type": "cgroup" })),
    ]
}

pub(crate) fn mutate(base: &Case, n: usize, rng: &mut Rng, files: &HostFiles) -> Option<Case> {
    let mut c = base.config.clone();
    let label;
    match rng.below(6) {
        // Drop an optional field (or a required one: then both should refuse).
        0 => {
            let mut ps = vec![];
            paths(&c, "", 4, &mut ps);
            ps.retain(|p| !protected(p));
            let p = rng.pick(&ps).clone();
            remove_ptr(&mut c, &p);
            label = format!("drop{}", dotted(&p));
        }
        // Add a field.
        1 => {
            let adds = additions(files);
            let (what, p, v) = rng.pick(&adds).clone();
            if let Some(parent) = p.strip_suffix("/-") {
                if *what == *"rlimit-nproc" || *what == *"rlimit-core" {
                    let typ = v["type"].clone();
                    if let Some(list) = c.pointer_mut(parent).and_then(Value::as_array_mut) {
                        list.retain(|r| r["type"] != typ);
                    }
                }
                if what == "mount-tmpfs" || what == "mount-rbind-ro" {
                    if let Some(list) = c.pointer_mut(parent).and_then(Value::as_array_mut) {
                        list.retain(|m| m["destination"] != "/mnt");
                    }
                }
                push_ptr(&mut c, parent, v);
            } else {
                set_ptr(&mut c, p, v);
            }
            label = format!("add-{what}");
        }
        // Flip a boolean (never process.terminal).
        2 => {
            let mut ps = vec![];
            paths(&c, "", 6, &mut ps);
            ps.retain(|p| !protected(p) && c.pointer(p).is_some_and(Value::is_boolean));
            if ps.is_empty() {
                return None;
            }
            let p = rng.pick(&ps).clone();
            let b = c.pointer(&p).unwrap().as_bool().unwrap();
            *c.pointer_mut(&p).unwrap() = json!(!b);
            label = format!("flip{}", dotted(&p));
        }
        // Swap two mounts or two env entries.
        3 | 4 => {
            let what = if rng.below(2) == 0 { "/mounts" } else { "/process/env" };
            let len = c.pointer(what).and_then(Value::as_array).map_or(0, Vec::len);
            if len < 2 {
                return None;
            }
            let i = rng.below(len);
            let mut j = rng.below(len - 1);
            if j >= i {
                j += 1;
            }
            c.pointer_mut(what).and_then(Value::as_array_mut).unwrap().swap(i, j);
            label = format!("swap{}-{}-{}", dotted(what), i.min(j), i.max(j));
        }
        // Add an unknown field, at top level or nested in an object.
        _ => {
            let mut ps = vec![String::new()];
            paths(&c, "", 3, &mut ps);
            ps.retain(|p| p.is_empty() || c.pointer(p).is_some_and(Value::is_object));
            let p = rng.pick(&ps).clone();
            let target = if p.is_empty() { &mut c } else { c.pointer_mut(&p).unwrap() };
            target["xHuskUnknown"] = json!({ "nested": [1, "two", { "three": null }] });
            label = format!("unknown{}", if p.is_empty() { ".top".into() } else { dotted(&p) });
        }
    }
    Some(Case {
        name: format!("{}~m{n:02}~{label}", base.name),
        config: c,
        flow: Flow::Run,
        hooks: vec![],
    })
}

pub(crate) fn mutations(bases: &[Case], files: &HostFiles) -> Vec<Case> {
    let mut rng = Rng(SEED);
    let mut out = vec![];
    let mut seen = BTreeSet::new();
    for b in bases {
        let mut n = 0;
        let mut tries = 0;
        while n < MUTATIONS_PER_FIXTURE && tries < MUTATIONS_PER_FIXTURE * 4 {
            tries += 1;
            if let Some(m) = mutate(b, n, &mut rng, files) {
                let label = m.name.split('~').nth(2).unwrap_or("").to_string();
                if seen.insert((b.name.clone(), label)) {
                    out.push(m);
                    n += 1;
                }
            }
        }
    }
    out
}

