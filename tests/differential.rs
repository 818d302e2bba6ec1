//! Differential test: the same configs under runc and under husk, compared from the inside.
//!
//! Every case is a config.json. It runs once under `runc` (found on PATH: the test fails,
//! never skips, without it) and once under husk ([`husk_bin`]), each with its own state root
//! and its own bundle (a fresh busybox rootfs), and with the same probe as the container's
//! process: a busybox shell script that prints what the process sees (namespaces compared
//! with the test's own, mountinfo, Cap*/NoNewPrivs/Seccomp/Uid/Gid/Groups of
//! /proc/self/status, /proc/self/limits, the exact environment, umask, cwd, hostname,
//! oom_score_adj, /proc/self/cgroup). While the probe waits (for `/.go` in its rootfs), the
//! test reads the cgroup files of the container from the host; hooks record their stdin
//! (the state) and their environment into the rootfs. The two observations are compared
//! field by field.
//!
//! A difference fails the test unless docs/runc-differences.md lists it: that doc holds a
//! markdown table whose first column is a key in backticks, a glob (`*` any text, `?` one
//! character) matched against `<case>/<field>`. The failure message names the case, the
//! field, husk's value and runc's value.
//!
//! The corpus: configs captured from real generators (tests/differential/configs/, made by
//! tests/differential/capture.sh), hand-written cases, and seeded mutations of the captured
//! configs. `DIFF_FILTER=substring` runs only the cases whose name contains it;
//! `DIFF_THREADS=n` sets the number of cases run at once (default 4).
//!
//! Layout: this file runs the cases and compares; tests/differential/corpus.rs holds the
//! cases, mutations.rs the seeded mutations, observe.rs the probe and what one run saw.

use husk_tests::*;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[path = "differential/corpus.rs"]
mod corpus;
#[path = "differential/mutations.rs"]
mod mutations;
#[path = "differential/observe.rs"]
mod observe;

use corpus::*;
use mutations::*;
use observe::*;

// ---- the doc of deliberate differences ------------------------------------------------------

fn doc_path() -> PathBuf {
    workspace_dir().join("docs/runc-differences.md")
}

/// The keys of docs/runc-differences.md: the first backticked text of the first cell of
/// every table row.
fn doc_keys() -> Vec<String> {
    let text = fs::read_to_string(doc_path()).expect("docs/runc-differences.md");
    text.lines()
        .filter_map(|l| {
            let cell = l.trim().strip_prefix('|')?.split('|').next()?.trim();
            let k = cell.strip_prefix('`')?;
            Some(k[..k.find('`')?].to_string())
        })
        .collect()
}

/// `*` matches any text (also `/`), `?` one character.
fn glob(pat: &str, s: &str) -> bool {
    let p: Vec<char> = pat.chars().collect();
    let t: Vec<char> = s.chars().collect();
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(sp) = star {
            pi = sp + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

#[test]
fn glob_matches() {
    assert!(glob("a/*", "a/b/c"));
    assert!(glob("*~m??~drop.linux.seccomp/status", "docker-default~m07~drop.linux.seccomp/status"));
    assert!(glob("x", "x"));
    assert!(!glob("x", "xy"));
    assert!(!glob("a*c", "abd"));
    assert!(glob("*", ""));
}

// ---- the test ---------------------------------------------------------------------------------

struct Diff {
    case: String,
    field: String,
    husk: String,
    runc: String,
    listed_by: Option<String>,
}

#[test]
fn husk_and_runc_agree() {
    let t0 = Instant::now();
    let runc = which("runc").expect("runc not found on PATH: the differential test needs it (make deps)");
    let husk = husk_bin();
    assert!(husk.is_file(), "husk binary {} not found: make build, or set HUSK_BIN", husk.display());
    let keys = doc_keys();
    let files = HostFiles {
        sources: HostDir::new("difsrc"),
        rbind: HostDir::with_tmpfs("difrbind", "sub"),
    };
    files.rbind.file("file", "x\n", 0, 0);

    let fixtures = fixture_cases(&files);
    let mut cases = fixtures.clone();
    cases.extend(hand_written(&files));
    cases.extend(mutations(&fixtures, &files));
    if let Ok(f) = std::env::var("DIFF_FILTER") {
        cases.retain(|c| c.name.contains(&f));
    }
    let threads: usize = std::env::var("DIFF_THREADS").ok().and_then(|s| s.parse().ok()).unwrap_or(4);

    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<(usize, Obs, Obs)>> = Mutex::new(vec![]);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(case) = cases.get(i) else { break };
                let h = run_case(case, "husk", &husk);
                let r = run_case(case, "runc", &runc);
                results.lock().unwrap().push((i, h, r));
            });
        }
    });
    let mut results = results.into_inner().unwrap();
    results.sort_by_key(|r| r.0);

    if std::env::var_os("DIFF_DUMP").is_some() {
        for (i, h, r) in &results {
            eprintln!("=== {}", cases[*i].name);
            for (k, v) in &h.fields {
                let rv = r.fields.get(k).map(String::as_str).unwrap_or("<absent>");
                eprintln!("  {k}: husk={v} runc={rv}");
            }
            for (k, v) in r.fields.iter().filter(|(k, _)| !h.fields.contains_key(*k)) {
                eprintln!("  {k}: husk=<absent> runc={v}");
            }
            for n in h.notes.iter().chain(&r.notes) {
                eprintln!("  note: {n}");
            }
        }
    }
    let mut diffs: Vec<Diff> = vec![];
    let mut agree = 0;
    let mut used_keys = BTreeSet::new();
    for (i, h, r) in &results {
        let case = &cases[*i];
        let mut fields: BTreeSet<&String> = h.fields.keys().collect();
        fields.extend(r.fields.keys());
        // When one side refused, the probe fields of the other mean nothing more than
        // `status` says: compare only the lifecycle fields then.
        let refused = h.fields.get("status") != r.fields.get("status");
        let mut n = 0;
        for f in fields {
            if refused && !["status", "leftovers", "harness"].contains(&f.as_str())
                && !f.starts_with("hook")
            {
                continue;
            }
            let hv = h.fields.get(f).cloned().unwrap_or_else(|| "<absent>".into());
            let rv = r.fields.get(f).cloned().unwrap_or_else(|| "<absent>".into());
            if hv == rv {
                continue;
            }
            n += 1;
            let full = format!("{}/{}", case.name, f);
            let listed_by = keys.iter().find(|k| glob(k, &full)).cloned();
            if let Some(k) = &listed_by {
                used_keys.insert(k.clone());
            }
            let (mut hv, mut rv) = (hv, rv);
            if f == "status" || f == "create" || f == "exec.status" {
                for note in &h.notes {
                    hv.push_str(&format!(" [{note}]"));
                }
                for note in &r.notes {
                    rv.push_str(&format!(" [{note}]"));
                }
            }
            diffs.push(Diff { case: case.name.clone(), field: f.clone(), husk: hv, runc: rv, listed_by });
        }
        if n == 0 {
            agree += 1;
        }
    }

    let listed = diffs.iter().filter(|d| d.listed_by.is_some()).count();
    let unlisted: Vec<&Diff> = diffs.iter().filter(|d| d.listed_by.is_none()).collect();
    for d in diffs.iter().filter(|d| d.listed_by.is_some()) {
        eprintln!("listed difference: {}/{} (doc key `{}`)", d.case, d.field, d.listed_by.as_ref().unwrap());
    }
    for k in keys.iter().filter(|k| !used_keys.contains(*k)) {
        eprintln!("note: doc key `{k}` matched no difference in this run");
    }
    let mut report = String::new();
    for d in &unlisted {
        report.push_str(&format!(
            "\ncase {}\n  field {}\n    husk: {}\n    runc: {}\n",
            d.case, d.field, d.husk, d.runc
        ));
    }
    let summary = format!(
        "differential: {} cases, {} agree, {} listed differences, {} unlisted differences ({:.1}s)",
        results.len(),
        agree,
        listed,
        unlisted.len(),
        t0.elapsed().as_secs_f64()
    );
    if !unlisted.is_empty() {
        eprintln!("{report}");
    }
    println!("{summary}");
    assert!(
        unlisted.is_empty(),
        "{} differences between husk and runc are not listed in docs/runc-differences.md \
         (key: `<case>/<field>`, globs allowed):{report}\n{summary}",
        unlisted.len()
    );
}
