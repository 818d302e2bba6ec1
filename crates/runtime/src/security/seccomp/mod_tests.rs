//! Validation of `linux.seccomp` and the end-to-end compile of small profiles.

use super::*;
use crate::security::seccomp::arch::AUDIT_ARCH_X86_64;
use crate::security::seccomp::bpf::{run, Data, Insn};

fn parse(json: &str) -> LinuxSeccomp {
    serde_json::from_str(json).unwrap_or_else(|e| panic!("bad test profile {json}: {e}"))
}

fn err(json: &str) -> String {
    match Filter::from_spec(&parse(json)) {
        Ok(_) => panic!("accepted: {json}"),
        Err(e) => e.to_string(),
    }
}

fn program(f: &Filter) -> Vec<Insn> {
    f.program
        .iter()
        .map(|i| Insn {
            code: i.code,
            jt: i.jt,
            jf: i.jf,
            k: i.k,
        })
        .collect()
}

fn eval(f: &Filter, name: &str, args: [u64; 6]) -> u32 {
    let nr = Abi::X86_64.lookup(name).unwrap_or_else(|| panic!("{name}"));
    run(
        &program(f),
        &Data {
            nr,
            arch: AUDIT_ARCH_X86_64,
            ip: 0,
            args,
        },
    )
}

#[test]
fn actions_and_errno() {
    let f = Filter::from_spec(&parse(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
            {"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO","errnoRet":13},
            {"names":["getppid"],"action":"SCMP_ACT_ERRNO"},
            {"names":["kill"],"action":"SCMP_ACT_KILL"},
            {"names":["tkill"],"action":"SCMP_ACT_KILL_PROCESS"},
            {"names":["tgkill"],"action":"SCMP_ACT_KILL_THREAD"},
            {"names":["uname"],"action":"SCMP_ACT_TRAP"},
            {"names":["sync"],"action":"SCMP_ACT_TRACE","errnoRet":5},
            {"names":["syncfs"],"action":"SCMP_ACT_LOG"},
            {"names":["getpid"],"action":"SCMP_ACT_ALLOW"},
            {"names":["not_a_syscall"],"action":"SCMP_ACT_ERRNO"}]}"#,
    ))
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(!f.needs_listener());
    assert_eq!(eval(&f, "mkdirat", [0; 6]), RET_ERRNO | 13);
    assert_eq!(eval(&f, "getppid", [0; 6]), RET_ERRNO | 1);
    assert_eq!(eval(&f, "kill", [0; 6]), RET_KILL_THREAD);
    assert_eq!(eval(&f, "tkill", [0; 6]), compile::RET_KILL_PROCESS);
    assert_eq!(eval(&f, "tgkill", [0; 6]), RET_KILL_THREAD);
    assert_eq!(eval(&f, "uname", [0; 6]), RET_TRAP);
    assert_eq!(eval(&f, "sync", [0; 6]), RET_TRACE | 5);
    assert_eq!(eval(&f, "syncfs", [0; 6]), RET_LOG);
    assert_eq!(eval(&f, "getpid", [0; 6]), RET_ALLOW);
    assert_eq!(eval(&f, "read", [0; 6]), RET_ALLOW);
}

#[test]
fn repeated_argument_index_means_or() {
    // runc: two checks on the same argument become two rules.
    let f = Filter::from_spec(&parse(
        r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[
            {"names":["personality"],"action":"SCMP_ACT_ALLOW","args":[
                {"index":0,"value":0,"op":"SCMP_CMP_EQ"},{"index":0,"value":8,"op":"SCMP_CMP_EQ"}]},
            {"names":["ioctl"],"action":"SCMP_ACT_ALLOW","args":[
                {"index":0,"value":1,"op":"SCMP_CMP_EQ"},{"index":1,"value":2,"op":"SCMP_CMP_EQ"}]}]}"#,
    ))
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(eval(&f, "personality", [0; 6]), RET_ALLOW);
    assert_eq!(eval(&f, "personality", [8, 0, 0, 0, 0, 0]), RET_ALLOW);
    assert_eq!(eval(&f, "personality", [9, 0, 0, 0, 0, 0]), RET_ERRNO | 1);
    assert_eq!(eval(&f, "ioctl", [1, 2, 0, 0, 0, 0]), RET_ALLOW);
    assert_eq!(eval(&f, "ioctl", [1, 3, 0, 0, 0, 0]), RET_ERRNO | 1);
}

#[test]
fn enosys_stub_only_when_default_denies() {
    let deny = Filter::from_spec(&parse(
        r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["getpid"],"action":"SCMP_ACT_ALLOW"}]}"#,
    ))
    .unwrap_or_else(|e| panic!("{e}"));
    let p = program(&deny);
    let above = |nr| {
        run(
            &p,
            &Data {
                nr,
                arch: AUDIT_ARCH_X86_64,
                ip: 0,
                args: [0; 6],
            },
        )
    };
    assert_eq!(above(40), compile::RET_ENOSYS);
    assert_eq!(above(38), RET_ERRNO | 1);
    let enosys_default = Filter::from_spec(&parse(
        r#"{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":38,"syscalls":[{"names":["getpid"],"action":"SCMP_ACT_ALLOW"}]}"#,
    ))
    .unwrap_or_else(|e| panic!("{e}"));
    let p = program(&enosys_default);
    let run_nr = |nr| {
        run(
            &p,
            &Data {
                nr,
                arch: AUDIT_ARCH_X86_64,
                ip: 0,
                args: [0; 6],
            },
        )
    };
    assert_eq!(run_nr(38), compile::RET_ENOSYS);
    assert_eq!(run_nr(39), RET_ALLOW);
    let allow = Filter::from_spec(&parse(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["getpid"],"action":"SCMP_ACT_ERRNO"}]}"#,
    ))
    .unwrap_or_else(|e| panic!("{e}"));
    let p = program(&allow);
    assert_eq!(
        run(
            &p,
            &Data {
                nr: 400,
                arch: AUDIT_ARCH_X86_64,
                ip: 0,
                args: [0; 6]
            }
        ),
        RET_ALLOW
    );
}

#[test]
fn notify_needs_a_listener() {
    let f = Filter::from_spec(&parse(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","listenerPath":"/run/agent.sock","listenerMetadata":"x",
            "flags":["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV","SECCOMP_FILTER_FLAG_LOG","SECCOMP_FILTER_FLAG_TSYNC"],
            "syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_NOTIFY"}]}"#,
    ))
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(f.needs_listener());
    assert_eq!(
        f.flags,
        FLAG_NEW_LISTENER | FLAG_WAIT_KILLABLE_RECV | FLAG_LOG
    );
    assert_eq!(
        f.listener().map(|(p, m)| (p.to_path_buf(), m)),
        Some(("/run/agent.sock".into(), Some("x")))
    );
    assert_eq!(eval(&f, "mkdir", [0; 6]), RET_USER_NOTIF);
}

#[test]
fn invalid_profiles_name_the_field() {
    let cases = [
        (
            r#"{"defaultAction":"SCMP_ACT_NOTIFY","listenerPath":"/a"}"#,
            "defaultAction",
        ),
        (
            r#"{"defaultAction":"SCMP_ACT_ALLOW","defaultErrnoRet":1}"#,
            "defaultErrnoRet",
        ),
        (
            r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW","errnoRet":1}]}"#,
            "syscalls[0]: errnoRet",
        ),
        (
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":[],"action":"SCMP_ACT_ERRNO"}]}"#,
            "syscalls[0].names",
        ),
        (
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_ERRNO","args":[{"index":6,"value":1,"op":"SCMP_CMP_EQ"}]}]}"#,
            "syscalls[0].args[0].index 6",
        ),
        (
            r#"{"defaultAction":"SCMP_ACT_ALLOW","listenerPath":"/a"}"#,
            "listenerPath /a is set but no syscall",
        ),
        (
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_NOTIFY"}]}"#,
            "listenerPath is not set",
        ),
        (
            r#"{"defaultAction":"SCMP_ACT_ALLOW","listenerMetadata":"m"}"#,
            "listenerMetadata",
        ),
        (
            r#"{"defaultAction":"SCMP_ACT_ALLOW","listenerPath":"/a","syscalls":[{"names":["sendmsg"],"action":"SCMP_ACT_NOTIFY"}]}"#,
            "cannot be used for sendmsg",
        ),
        (
            r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read"],"action":"SCMP_ACT_ERRNO","errnoRet":70000}]}"#,
            "70000",
        ),
    ];
    for (json, want) in cases {
        let e = err(json);
        assert!(
            e.starts_with("linux.seccomp: ") && e.contains(want),
            "{json}: {e}"
        );
    }
}

#[test]
fn unknown_strings_fail_to_parse() {
    for json in [
        r#"{"defaultAction":"SCMP_ACT_BOGUS"}"#,
        r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_BOGUS"]}"#,
        r#"{"defaultAction":"SCMP_ACT_ALLOW","flags":["SECCOMP_FILTER_FLAG_BOGUS"]}"#,
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_ERRNO","args":[{"index":0,"value":1,"op":"SCMP_CMP_BOGUS"}]}]}"#,
    ] {
        assert!(
            serde_json::from_str::<LinuxSeccomp>(json).is_err(),
            "{json}"
        );
    }
}

#[test]
fn foreign_architectures_are_skipped() {
    let f = Filter::from_spec(&parse(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_AARCH64","SCMP_ARCH_ARM","SCMP_ARCH_X86"],
            "syscalls":[{"names":["getpid"],"action":"SCMP_ACT_ERRNO"}]}"#,
    ))
    .unwrap_or_else(|e| panic!("{e}"));
    let p = program(&f);
    let on = |arch, nr| {
        run(
            &p,
            &Data {
                nr,
                arch,
                ip: 0,
                args: [0; 6],
            },
        )
    };
    assert_eq!(on(arch::AUDIT_ARCH_I386, 20), RET_ERRNO | 1);
    assert_eq!(on(AUDIT_ARCH_X86_64, 39), RET_ERRNO | 1);
    assert_eq!(on(0xc000_00b7, 172), compile::RET_KILL_PROCESS);
}
