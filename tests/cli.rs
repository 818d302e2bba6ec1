//! The command line itself: --version, features, spec (and its round trip: the generated
//! config runs), global options, short flags, relative bundle paths.

use husk_tests::*;
use serde_json::Value;

#[test]
fn version_output() {
    let rt = Runtime::new("cli-version");
    for flag in ["--version", "-v"] {
        let out = rt.cmd_global(&[], &[flag]);
        out.assert_ok();
        let lines: Vec<&str> = out.stdout.lines().collect();
        let first: Vec<&str> = lines.first().unwrap_or(&"").split(' ').collect();
        assert_eq!(first.get(1), Some(&"version"), "{flag}: {:?}", out.stdout);
        let v = first.get(2).unwrap_or(&"");
        assert!(
            v.split(['.', '+', '-'])
                .take(3)
                .all(|p| p.parse::<u32>().is_ok()),
            "version {v:?}"
        );
        assert!(
            lines.iter().any(|l| l.starts_with("commit: ")),
            "{:?}",
            out.stdout
        );
        let spec = lines
            .iter()
            .find_map(|l| l.strip_prefix("spec: "))
            .expect("spec line");
        if flavor() == Flavor::Husk {
            assert_eq!(first[0], "husk");
            assert_eq!(spec, "1.3.0");
            assert_eq!(lines.len(), 3, "{:?}", out.stdout);
        }
    }
}

#[test]
fn features_lists_what_is_implemented() {
    let rt = Runtime::new("cli-features");
    let out = rt.cmd(&["features"]);
    out.assert_ok();
    let f = out.json();
    assert!(
        f["ociVersionMin"]
            .as_str()
            .is_some_and(|v| v.starts_with("1.0")),
        "{f}"
    );
    let max = f["ociVersionMax"].as_str().unwrap_or("");
    assert!(max.starts_with("1."), "{f}");
    if flavor() == Flavor::Husk {
        assert_eq!(max, "1.3.0");
    }
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let hooks = strings(&f["hooks"]);
    for h in HookKind::ALL {
        assert!(
            hooks.contains(&h.key().to_string()),
            "hook {} missing: {hooks:?}",
            h.key()
        );
    }
    let opts = strings(&f["mountOptions"]);
    for o in [
        "ro",
        "rw",
        "bind",
        "rbind",
        "nosuid",
        "nodev",
        "noexec",
        "noatime",
        "strictatime",
        "rshared",
        "rprivate",
    ] {
        assert!(
            opts.contains(&o.to_string()),
            "mount option {o} missing: {opts:?}"
        );
    }
    let ns = strings(&f["linux"]["namespaces"]);
    for n in [
        "pid", "network", "ipc", "uts", "mount", "user", "cgroup", "time",
    ] {
        assert!(ns.contains(&n.to_string()), "namespace {n} missing: {ns:?}");
    }
    let caps = strings(&f["linux"]["capabilities"]);
    assert!(caps.contains(&"CAP_SYS_ADMIN".to_string()), "{caps:?}");
}

/// A bundle dir with a busybox rootfs and the config.json that `spec EXTRA...` wrote,
/// patched only to not need a terminal and to run `script`.
fn spec_bundle(rt: &Runtime, name: &str, extra: &[&str], script: &str) -> Bundle {
    let mut b = Bundle::new(name);
    std::fs::remove_file(b.dir().join("config.json")).unwrap();
    let dir = b.dir_str();
    let mut args = vec!["spec", "--bundle", &dir];
    args.extend_from_slice(extra);
    rt.cmd(&args).assert_ok();
    let text =
        std::fs::read_to_string(b.dir().join("config.json")).expect("spec wrote config.json");
    let mut cfg: Value = serde_json::from_str(&text).expect("spec output is JSON");
    assert_eq!(cfg["root"]["path"], "rootfs", "{cfg}");
    cfg["process"]["terminal"] = Value::Bool(false);
    cfg["process"]["args"] = serde_json::json!(["sh", "-c", script]);
    *b.config_mut() = cfg;
    b
}

#[test]
fn spec_output_runs() {
    let rt = Runtime::new("cli-spec");
    let b = spec_bundle(
        &rt,
        "cli-spec",
        &[],
        "echo ok; hostname; grep CapEff /proc/self/status",
    );
    if flavor() == Flavor::Husk {
        assert_eq!(b.config()["ociVersion"], "1.3.0");
    }
    let id = rt.id("c");
    let out = rt.run_capture(&b, &id);
    out.assert_ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines[0], "ok");
    assert_eq!(lines[1], b.config()["hostname"].as_str().unwrap());
    assert!(lines[2].starts_with("CapEff:"), "{}", out.stdout);
    rt.assert_nothing_left(&b, &id);
}

#[test]
fn spec_rootless_output_runs() {
    let rt = Runtime::new("cli-spec-rootless");
    let b = spec_bundle(
        &rt,
        "cli-spec-rootless",
        &["--rootless"],
        "cat /proc/self/uid_map; id -u",
    );
    let ns: Vec<&str> = b.config()["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|n| n["type"].as_str())
        .collect();
    assert!(
        ns.contains(&"user"),
        "--rootless without a user namespace: {ns:?}"
    );
    let id = rt.id("c");
    let out = rt.run_capture(&b, &id);
    out.assert_ok();
    let lines: Vec<String> = out
        .stdout
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(lines, ["0 0 1", "0"], "{}", out.stdout);
    rt.assert_nothing_left(&b, &id);
}

#[test]
fn spec_does_not_overwrite_an_existing_config() {
    let b = Bundle::new("cli-spec-exists");
    let before = std::fs::read_to_string(b.dir().join("config.json")).unwrap();
    let rt = Runtime::new("cli-spec-exists");
    rt.cmd(&["spec", "--bundle", &b.dir_str()])
        .assert_error("exists", "exists");
    assert_eq!(
        std::fs::read_to_string(b.dir().join("config.json")).unwrap(),
        before
    );
}

#[test]
fn short_flags_and_relative_bundle_path() {
    let mut b = Bundle::new("cli-short");
    b.args(&["sleep", "300"]);
    b.write();
    let rt = Runtime::new("cli-short");
    let id = rt.id("c");
    rt.track(&b, &id);
    // run -d -b <relative dir>, from the bundle's parent directory.
    let parent = b.dir().parent().unwrap().to_string_lossy().into_owned();
    let rel = b.dir().file_name().unwrap().to_string_lossy().into_owned();
    let script = format!(
        "cd {} && exec {}",
        shell_quote(&parent),
        rt.shell_cmdline(&["run", "-d", "-b", &rel, &id])
    );
    rt.sh(&script).assert_ok();
    let st = rt.state_json(&id);
    assert_eq!(st["status"], "running");
    assert_eq!(
        st["bundle"],
        b.dir_str().as_str(),
        "bundle path not made absolute: {st}"
    );
    rt.cmd(&["delete", "-f", &id]).assert_ok();
    rt.assert_nothing_left(&b, &id);
}

#[test]
fn global_options_are_accepted() {
    let mut b = Bundle::new("cli-global");
    b.sh("echo hi");
    b.write();
    let rt = Runtime::new("cli-global");
    let id = rt.id("c");
    rt.track(&b, &id);
    let log = rt.scratch().join("text.log");
    let log_s = log.to_string_lossy().into_owned();
    let out = rt.cmd_global(
        &[
            "--debug",
            "--log",
            &log_s,
            "--log-format",
            "text",
            "--rootless",
            "false",
        ],
        &["run", "--bundle", &b.dir_str(), &id],
    );
    out.assert_ok();
    assert_eq!(out.stdout, "hi\n");
    // --debug writes something to the log.
    assert!(
        std::fs::metadata(&log)
            .map(|m| m.len() > 0)
            .unwrap_or(false),
        "--debug logged nothing"
    );
    rt.assert_nothing_left(&b, &id);
}

#[test]
fn json_log_lines_are_objects_with_level_msg_time() {
    let mut b = Bundle::new("cli-jsonlog");
    b.sh("true");
    b.write();
    let rt = Runtime::new("cli-jsonlog");
    let id = rt.id("c");
    rt.track(&b, &id);
    let log = rt.scratch().join("debug.json");
    let log_s = log.to_string_lossy().into_owned();
    rt.cmd_global(
        &["--debug", "--log", &log_s, "--log-format", "json"],
        &["run", "--bundle", &b.dir_str(), &id],
    )
    .assert_ok();
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(!text.trim().is_empty(), "--debug logged nothing");
    for l in text.lines().filter(|l| !l.trim().is_empty()) {
        let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l:?}"));
        assert!(v["level"].is_string() && v["msg"].is_string(), "{l}");
        assert!(v["time"].as_str().is_some_and(is_rfc3339), "{l}");
    }
    rt.assert_nothing_left(&b, &id);
}

#[test]
fn help_and_unknown_command() {
    let rt = Runtime::new("cli-help");
    let out = rt.cmd_global(&[], &["--help"]);
    out.assert_ok();
    for c in [
        "create", "start", "state", "kill", "delete", "run", "list", "spec", "features",
    ] {
        assert!(
            out.stdout.contains(c),
            "--help does not mention {c}:\n{}",
            out.stdout
        );
    }
    rt.cmd_global(&[], &["no-such-command"]).assert_fail();
    rt.cmd_global(&[], &["create"]).assert_fail(); // missing id
}
