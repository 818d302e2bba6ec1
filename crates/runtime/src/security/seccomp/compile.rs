//! From rules to a BPF program. Pure: no syscalls, unit-tested with the interpreter in
//! `bpf.rs`.
//!
//! Layout of the program:
//!
//! ```text
//!   ld arch; one jeq per AUDIT_ARCH in the filter; ret <bad arch>
//!   x86_64: ld nr; jset X32_SYSCALL_BIT -> x32 part (or <bad arch>) else -> x86_64 part
//!   each ABI part (A = nr): a binary search over segments of the syscall numbers, each
//!     leading to one return or one syscall's block. A segment is a run of consecutive
//!     numbers with the same unconditional action, a gap (the default action), or, above the
//!     highest number the profile names, runc's -ENOSYS stub (ret ERRNO(ENOSYS), so programs
//!     fall back from syscalls newer than the profile);
//!   a syscall's block: its conditional rules in order (argument checks ANDed, the first rule
//!     that matches decides), else ret <default>.
//! ```

use std::collections::BTreeMap;

use super::arch::{Abi, X32_SYSCALL_BIT};
use super::bpf::{Builder, Insn, Jmp, Label};

/// SECCOMP_RET_KILL_PROCESS: what a syscall of an ABI the filter does not cover gets.
pub const RET_KILL_PROCESS: u32 = 0x8000_0000;
/// SECCOMP_RET_ERRNO | ENOSYS.
pub const RET_ENOSYS: u32 = 0x0005_0000 | libc::ENOSYS as u32;

/// Offset of `nr` and `arch` in `struct seccomp_data`.
const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;

/// A comparison operator on a syscall argument (libseccomp's SCMP_CMP_*).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Ne,
    Lt,
    Le,
    Eq,
    Ge,
    Gt,
    /// `(arg & mask) == value`.
    MaskedEq,
}

/// One argument check. For `MaskedEq`, `value` is the mask and `value_two` the value, as in
/// the runtime-spec (and libseccomp's SCMP_CMP(arg, SCMP_CMP_MASKED_EQ, mask, value)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cond {
    pub index: u8,
    pub op: Op,
    pub value: u64,
    pub value_two: u64,
}

/// A rule for one syscall name: all `conds` must hold (none: always), then `action` is returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub name: String,
    pub conds: Vec<Cond>,
    pub action: u32,
}

/// Everything the program is made from.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The action of any syscall no rule matches.
    pub default: u32,
    /// The ABIs to cover (the native one included), without duplicates.
    pub abis: Vec<Abi>,
    /// Rules in config order.
    pub rules: Vec<Rule>,
    /// Every syscall name the profile mentions (for the -ENOSYS stub), or None for no stub.
    pub stub_names: Option<Vec<String>>,
}

/// What a syscall number leads to in one ABI.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Entry {
    /// An unconditional rule: always this action.
    Always(u32),
    /// Conditional rules, tried in order.
    Rules(Vec<(Vec<Cond>, u32)>),
}

/// The rules of one ABI by syscall number. libseccomp's merging is followed where it matters:
/// once a syscall has an unconditional rule, that rule decides and later rules for it are
/// ignored; an unconditional rule replaces earlier conditional ones.
fn entries(abi: Abi, rules: &[Rule]) -> BTreeMap<u32, Entry> {
    let mut out: BTreeMap<u32, Entry> = BTreeMap::new();
    for r in rules {
        let Some(nr) = abi.lookup(&r.name) else {
            continue;
        };
        let e = out.entry(nr).or_insert_with(|| Entry::Rules(Vec::new()));
        match e {
            Entry::Always(_) => {}
            Entry::Rules(v) => {
                if r.conds.is_empty() {
                    *e = Entry::Always(r.action);
                } else {
                    v.push((r.conds.clone(), r.action));
                }
            }
        }
    }
    out
}

/// Offsets of the low and high 32-bit words of argument `i` in `struct seccomp_data`.
fn arg_words(i: u8) -> (u32, u32) {
    let base = 16 + 8 * u32::from(i);
    if cfg!(target_endian = "little") {
        (base, base + 4)
    } else {
        (base + 4, base)
    }
}

fn lo(v: u64) -> u32 {
    v as u32
}

fn hi(v: u64) -> u32 {
    (v >> 32) as u32
}

/// Emit the check of one condition: jumps to `t` when it holds, else to `f`. Returns its start.
fn cond(b: &mut Builder, c: &Cond, wide: bool, t: Label, f: Label) -> Label {
    let (lo_off, hi_off) = arg_words(c.index);
    // Each operator is reduced to "greater than"/"greater or equal"/"equal" with swapped targets.
    let (op, t, f) = match c.op {
        Op::Ne => (Op::Eq, f, t),
        Op::Lt => (Op::Ge, f, t),
        Op::Le => (Op::Gt, f, t),
        other => (other, t, f),
    };
    match op {
        Op::Eq => {
            b.cond(Jmp::Eq, lo(c.value), t, f);
            let start = b.load(lo_off);
            if !wide {
                return start;
            }
            b.cond(Jmp::Eq, hi(c.value), start, f);
            b.load(hi_off)
        }
        Op::MaskedEq => {
            let (mask, value) = (c.value, c.value_two & c.value);
            b.cond(Jmp::Eq, lo(value), t, f);
            b.and(lo(mask));
            let start = b.load(lo_off);
            if !wide || hi(mask) == 0 {
                return start;
            }
            b.cond(Jmp::Eq, hi(value), start, f);
            b.and(hi(mask));
            b.load(hi_off)
        }
        Op::Gt | Op::Ge => {
            let j = if op == Op::Gt { Jmp::Gt } else { Jmp::Ge };
            b.cond(j, lo(c.value), t, f);
            let low = b.load(lo_off);
            if !wide {
                return low;
            }
            // hi > v.hi: holds; hi == v.hi: decided by the low word; hi < v.hi: fails.
            let equal = b.cond(Jmp::Eq, hi(c.value), low, f);
            b.cond(Jmp::Gt, hi(c.value), t, equal);
            b.load(hi_off)
        }
        Op::Ne | Op::Lt | Op::Le => unreachable_op(b, f),
    }
}

/// Not reachable (the operators were reduced above); fail closed if it ever were.
fn unreachable_op(b: &mut Builder, f: Label) -> Label {
    b.jump(f)
}

/// The block of one syscall.
fn block(b: &mut Builder, e: &Entry, wide: bool, default: u32) -> Label {
    match e {
        Entry::Always(action) => b.ret(*action),
        Entry::Rules(rules) => {
            let mut next = b.ret(default);
            for (conds, action) in rules.iter().rev() {
                let mut ok = b.ret(*action);
                for c in conds.iter().rev() {
                    ok = cond(b, c, wide, ok, next);
                }
                next = ok;
            }
            next
        }
    }
}

/// What a range of syscall numbers leads to.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Leaf<'a> {
    Ret(u32),
    Block(&'a Entry),
}

/// Cut the syscall numbers (0 to u32::MAX) into segments that each lead to one leaf: runs of
/// consecutive numbers with the same unconditional action (or none: the default, or -ENOSYS
/// above `stub_max`) become one segment. Returns (first number, leaf), sorted.
fn segments<'a>(
    table: &'a BTreeMap<u32, Entry>,
    default: u32,
    stub_max: Option<u32>,
    first: u32,
) -> Vec<(u32, Leaf<'a>)> {
    let mut out: Vec<(u32, Leaf)> = Vec::new();
    let mut push = |start: u32, leaf: Leaf<'a>| {
        if out
            .last()
            .is_some_and(|(_, l)| *l == leaf && matches!(leaf, Leaf::Ret(_)))
        {
            return;
        }
        out.push((start, leaf));
    };
    let gap = |nr: u32| match stub_max {
        Some(max) if nr > max => Leaf::Ret(RET_ENOSYS),
        _ => Leaf::Ret(default),
    };
    let mut next = Some(first);
    for (nr, e) in table.range(first..) {
        if let Some(n) = next.filter(|n| n < nr) {
            push(n, gap(n));
            if let Some(max) = stub_max.filter(|m| n <= *m && *m < nr - 1) {
                push(max + 1, Leaf::Ret(RET_ENOSYS));
            }
        }
        push(
            *nr,
            match e {
                Entry::Always(a) => Leaf::Ret(*a),
                rules => Leaf::Block(rules),
            },
        );
        next = nr.checked_add(1);
    }
    if let Some(n) = next {
        push(n, gap(n));
        if let Some(max) = stub_max.filter(|m| n <= *m && *m < u32::MAX) {
            push(max + 1, Leaf::Ret(RET_ENOSYS));
        }
    }
    out
}

/// Binary search over segment starts (A holds the syscall number).
fn dispatch(b: &mut Builder, segs: &[(u32, Leaf)], wide: bool, default: u32) -> Label {
    match segs {
        [] => b.ret(default),
        [(_, Leaf::Ret(a))] => b.ret(*a),
        [(_, Leaf::Block(e))] => block(b, e, wide, default),
        _ => {
            let mid = segs.len() / 2;
            let right = dispatch(b, &segs[mid..], wide, default);
            let left = dispatch(b, &segs[..mid], wide, default);
            b.cond(Jmp::Ge, segs[mid].0, right, left)
        }
    }
}

/// The part of one ABI, entered with the syscall number in A.
fn abi_part(b: &mut Builder, plan: &Plan, abi: Abi) -> Label {
    let table = entries(abi, &plan.rules);
    let stub_max = plan
        .stub_names
        .as_ref()
        .and_then(|names| names.iter().filter_map(|n| abi.lookup(n)).max());
    let first = if abi == Abi::X32 { X32_SYSCALL_BIT } else { 0 };
    let segs = segments(&table, plan.default, stub_max, first);
    dispatch(b, &segs, abi.wide_args(), plan.default)
}

/// Make the next instruction pushed fall through to `target`.
fn enter(b: &mut Builder, target: Label) {
    if target != b.here() {
        b.jump(target);
    }
}

/// Compile `plan` to a program.
pub fn compile(plan: &Plan) -> Vec<Insn> {
    let mut b = Builder::new();
    let bad_arch = b.ret(RET_KILL_PROCESS);
    let has = |a: Abi| plan.abis.contains(&a);
    let mut arches: Vec<(u32, Label)> = Vec::new();
    if has(Abi::X86) {
        let part = abi_part(&mut b, plan, Abi::X86);
        enter(&mut b, part);
        arches.push((Abi::X86.audit_arch(), b.load(OFF_NR)));
    }
    if has(Abi::X86_64) || has(Abi::X32) {
        let x32 = if has(Abi::X32) {
            abi_part(&mut b, plan, Abi::X32)
        } else {
            bad_arch
        };
        let x64 = if has(Abi::X86_64) {
            abi_part(&mut b, plan, Abi::X86_64)
        } else {
            bad_arch
        };
        b.cond(Jmp::Set, X32_SYSCALL_BIT, x32, x64);
        arches.push((Abi::X86_64.audit_arch(), b.load(OFF_NR)));
    }
    let mut next = bad_arch;
    for (audit, start) in arches.iter().rev() {
        next = b.cond(Jmp::Eq, *audit, *start, next);
    }
    b.load(OFF_ARCH);
    b.finish()
}

#[cfg(all(test, target_arch = "x86_64"))]
#[path = "compile_tests.rs"]
mod tests;
