//! The compiled programs, run on the BPF interpreter.

use super::*;
use crate::security::seccomp::arch::{AUDIT_ARCH_I386, AUDIT_ARCH_X86_64};
use crate::security::seccomp::bpf::{run, Data};

const ALLOW: u32 = 0x7fff_0000;
const EPERM: u32 = 0x0005_0001;
const TRAP: u32 = 0x0003_0000;

fn rule(name: &str, conds: &[Cond], action: u32) -> Rule {
    Rule {
        name: name.into(),
        conds: conds.to_vec(),
        action,
    }
}

fn c(index: u8, op: Op, value: u64, value_two: u64) -> Cond {
    Cond {
        index,
        op,
        value,
        value_two,
    }
}

fn plan(default: u32, abis: &[Abi], rules: Vec<Rule>) -> Plan {
    Plan {
        default,
        abis: abis.to_vec(),
        rules,
        stub_names: None,
    }
}

fn call(prog: &[Insn], abi: Abi, name: &str, args: [u64; 6]) -> u32 {
    let nr = abi
        .lookup(name)
        .unwrap_or_else(|| panic!("{name} unknown in {abi:?}"));
    run(
        prog,
        &Data {
            nr,
            arch: abi.audit_arch(),
            ip: 0,
            args,
        },
    )
}

fn nr(prog: &[Insn], arch: u32, nr: u32) -> u32 {
    run(
        prog,
        &Data {
            nr,
            arch,
            ip: 0,
            args: [0; 6],
        },
    )
}

#[test]
fn allow_list_with_default_errno() {
    let p = compile(&plan(
        EPERM,
        &[Abi::X86_64],
        vec![
            rule("read", &[], ALLOW),
            rule("write", &[], ALLOW),
            rule("getpid", &[], TRAP),
        ],
    ));
    assert_eq!(call(&p, Abi::X86_64, "read", [0; 6]), ALLOW);
    assert_eq!(call(&p, Abi::X86_64, "write", [0; 6]), ALLOW);
    assert_eq!(call(&p, Abi::X86_64, "getpid", [0; 6]), TRAP);
    assert_eq!(call(&p, Abi::X86_64, "mkdir", [0; 6]), EPERM);
    // Another architecture, and x32 syscalls, are not covered: the process is killed.
    assert_eq!(nr(&p, AUDIT_ARCH_I386, 3), RET_KILL_PROCESS);
    assert_eq!(nr(&p, AUDIT_ARCH_X86_64, X32_SYSCALL_BIT), RET_KILL_PROCESS);
    assert_eq!(nr(&p, 0xc000_00b7, 63), RET_KILL_PROCESS);
}

#[test]
fn every_operator_on_64_bits() {
    let big = 0x1_0000_0005u64;
    type Case = (Op, u64, u64, Vec<(u64, bool)>);
    let cases: Vec<Case> = vec![
        (
            Op::Eq,
            big,
            0,
            vec![
                (big, true),
                (5, false),
                (big + 1, false),
                (0x2_0000_0005, false),
            ],
        ),
        (
            Op::Ne,
            big,
            0,
            vec![(big, false), (5, true), (0x2_0000_0005, true)],
        ),
        (
            Op::Gt,
            big,
            0,
            vec![
                (big + 1, true),
                (big, false),
                (big - 1, false),
                (0x2_0000_0000, true),
                (6, false),
            ],
        ),
        (
            Op::Ge,
            big,
            0,
            vec![
                (big + 1, true),
                (big, true),
                (big - 1, false),
                (0x2_0000_0000, true),
                (6, false),
            ],
        ),
        (
            Op::Lt,
            big,
            0,
            vec![
                (big + 1, false),
                (big, false),
                (big - 1, true),
                (6, true),
                (0x2_0000_0000, false),
            ],
        ),
        (
            Op::Le,
            big,
            0,
            vec![
                (big + 1, false),
                (big, true),
                (big - 1, true),
                (0x2_0000_0000, false),
            ],
        ),
        // (arg & 0xff0000ff) == 0x12000034
        (
            Op::MaskedEq,
            0xff00_00ff,
            0x1200_0034,
            vec![
                (0x12ab_cd34, true),
                (0x1200_0035, false),
                (0x1_1200_0034, true),
            ],
        ),
        (
            Op::MaskedEq,
            0xf_0000_0000,
            0x3_0000_0000,
            vec![(0x3_1234_5678, true), (0x4_0000_0000, false)],
        ),
    ];
    for (op, value, value_two, checks) in cases {
        let p = compile(&plan(
            EPERM,
            &[Abi::X86_64],
            vec![rule("ioctl", &[c(1, op, value, value_two)], ALLOW)],
        ));
        for (arg, allowed) in checks {
            let got = call(&p, Abi::X86_64, "ioctl", [0, arg, 0, 0, 0, 0]);
            assert_eq!(
                got == ALLOW,
                allowed,
                "{op:?} {value:#x}/{value_two:#x} on {arg:#x}"
            );
        }
    }
}

#[test]
fn thirty_two_bit_abis_compare_the_low_word() {
    let p = compile(&plan(
        EPERM,
        &[Abi::X86_64, Abi::X86],
        vec![rule("personality", &[c(0, Op::Eq, 0xffff_ffff, 0)], ALLOW)],
    ));
    assert_eq!(
        call(&p, Abi::X86, "personality", [0xffff_ffff, 0, 0, 0, 0, 0]),
        ALLOW
    );
    assert_eq!(
        call(&p, Abi::X86, "personality", [0x1_ffff_ffff, 0, 0, 0, 0, 0]),
        ALLOW
    );
    assert_eq!(
        call(
            &p,
            Abi::X86_64,
            "personality",
            [0x1_ffff_ffff, 0, 0, 0, 0, 0]
        ),
        EPERM
    );
    assert_eq!(
        call(&p, Abi::X86_64, "personality", [0xffff_ffff, 0, 0, 0, 0, 0]),
        ALLOW
    );
    assert_eq!(call(&p, Abi::X86, "personality", [8, 0, 0, 0, 0, 0]), EPERM);
}

#[test]
fn conditions_are_anded_and_rules_tried_in_order() {
    // podman's socket rules: AF_NETLINK + NETLINK_AUDIT -> EINVAL, otherwise allowed.
    let einval = 0x0005_0016;
    let p = compile(&plan(
        EPERM,
        &[Abi::X86_64],
        vec![
            rule("socket", &[c(0, Op::Eq, 16, 0), c(2, Op::Eq, 9, 0)], einval),
            rule("socket", &[c(2, Op::Ne, 9, 0)], ALLOW),
            rule("socket", &[c(0, Op::Ne, 16, 0)], ALLOW),
        ],
    ));
    assert_eq!(call(&p, Abi::X86_64, "socket", [16, 3, 9, 0, 0, 0]), einval);
    assert_eq!(call(&p, Abi::X86_64, "socket", [16, 3, 0, 0, 0, 0]), ALLOW);
    assert_eq!(call(&p, Abi::X86_64, "socket", [2, 1, 9, 0, 0, 0]), ALLOW);
    assert_eq!(call(&p, Abi::X86_64, "socket", [2, 1, 0, 0, 0, 0]), ALLOW);
}

#[test]
fn unconditional_rule_wins() {
    let p = compile(&plan(
        ALLOW,
        &[Abi::X86_64],
        vec![
            rule("kill", &[c(1, Op::Eq, 9, 0)], TRAP),
            rule("kill", &[], EPERM),
            rule("kill", &[], TRAP),
        ],
    ));
    assert_eq!(call(&p, Abi::X86_64, "kill", [1, 9, 0, 0, 0, 0]), EPERM);
    assert_eq!(call(&p, Abi::X86_64, "kill", [1, 15, 0, 0, 0, 0]), EPERM);
}

#[test]
fn x32_and_x86_sections() {
    let p = compile(&plan(
        EPERM,
        &[Abi::X86_64, Abi::X86, Abi::X32],
        vec![rule("getpid", &[], ALLOW), rule("socketcall", &[], ALLOW)],
    ));
    for abi in [Abi::X86_64, Abi::X86, Abi::X32] {
        assert_eq!(call(&p, abi, "getpid", [0; 6]), ALLOW, "{abi:?}");
        assert_eq!(call(&p, abi, "getppid", [0; 6]), EPERM, "{abi:?}");
    }
    assert_eq!(call(&p, Abi::X86, "socketcall", [0; 6]), ALLOW);
    // x86_64 getpid (39) with the x32 bit is x32's getpid.
    assert_eq!(nr(&p, AUDIT_ARCH_X86_64, X32_SYSCALL_BIT | 39), ALLOW);
}

#[test]
fn enosys_stub_for_newer_syscalls() {
    let mut pl = plan(
        EPERM,
        &[Abi::X86_64, Abi::X86],
        vec![rule("getpid", &[], ALLOW)],
    );
    pl.stub_names = Some(vec!["getpid".into(), "mkdirat".into(), "no_such".into()]);
    let p = compile(&pl);
    let mkdirat = Abi::X86_64.lookup("mkdirat").unwrap_or(0);
    assert_eq!(nr(&p, AUDIT_ARCH_X86_64, mkdirat), EPERM);
    assert_eq!(nr(&p, AUDIT_ARCH_X86_64, mkdirat + 1), RET_ENOSYS);
    assert_eq!(nr(&p, AUDIT_ARCH_X86_64, 39), ALLOW);
    let mkdirat32 = Abi::X86.lookup("mkdirat").unwrap_or(0);
    assert_eq!(nr(&p, AUDIT_ARCH_I386, mkdirat32 + 1), RET_ENOSYS);
    assert_eq!(nr(&p, AUDIT_ARCH_I386, mkdirat32), EPERM);
}

#[test]
fn no_rules_at_all() {
    let p = compile(&plan(ALLOW, &[Abi::X86_64, Abi::X86], vec![]));
    assert_eq!(nr(&p, AUDIT_ARCH_X86_64, 0), ALLOW);
    assert_eq!(nr(&p, AUDIT_ARCH_I386, 0), ALLOW);
}

#[test]
fn large_profile_stays_valid() {
    // Every x86_64 syscall with an argument rule each: long jumps everywhere.
    let names: Vec<&str> = Abi::X86_64.table().iter().map(|(n, _)| *n).collect();
    let rules = names
        .iter()
        .map(|n| rule(n, &[c(0, Op::Gt, 7, 0)], ALLOW))
        .collect();
    let p = compile(&plan(EPERM, &[Abi::X86_64, Abi::X86], rules));
    assert!(p.len() > 2000);
    for n in names.iter().step_by(17) {
        assert_eq!(call(&p, Abi::X86_64, n, [8, 0, 0, 0, 0, 0]), ALLOW, "{n}");
        assert_eq!(call(&p, Abi::X86_64, n, [7, 0, 0, 0, 0, 0]), EPERM, "{n}");
        if let Some(nr32) = Abi::X86.lookup(n) {
            let args = [8, 0, 0, 0, 0, 0];
            assert_eq!(
                run(
                    &p,
                    &Data {
                        nr: nr32,
                        arch: AUDIT_ARCH_I386,
                        ip: 0,
                        args
                    }
                ),
                ALLOW,
                "{n}"
            );
        }
    }
}
