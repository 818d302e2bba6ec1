//! Classic BPF as seccomp uses it: the instruction encoding, a builder that lays a program out
//! from its end towards its start (so every jump is forward and its distance known when it is
//! emitted, with long jumps inserted where a conditional jump cannot reach), and, for tests, an
//! interpreter that runs a program on a `struct seccomp_data`.

/// One BPF instruction, laid out as the kernel's `struct sock_filter`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub struct Insn {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

// Instruction classes and modes (linux/bpf_common.h).
const BPF_LD: u16 = 0x00;
const BPF_ALU: u16 = 0x04;
const BPF_JMP: u16 = 0x05;
const BPF_RET: u16 = 0x06;
const BPF_W: u16 = 0x00;
const BPF_ABS: u16 = 0x20;
const BPF_AND: u16 = 0x50;
const BPF_JA: u16 = 0x00;
const BPF_JEQ: u16 = 0x10;
const BPF_JGT: u16 = 0x20;
const BPF_JGE: u16 = 0x30;
const BPF_JSET: u16 = 0x40;
const BPF_K: u16 = 0x00;

/// The kernel refuses longer programs (BPF_MAXINSNS).
pub const MAX_INSNS: usize = 4096;

/// Conditional jumps, all against a constant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Jmp {
    /// A == k
    Eq,
    /// A > k (unsigned)
    Gt,
    /// A >= k (unsigned)
    Ge,
    /// A & k != 0
    Set,
}

impl Jmp {
    fn code(self) -> u16 {
        BPF_JMP
            | BPF_K
            | match self {
                Jmp::Eq => BPF_JEQ,
                Jmp::Gt => BPF_JGT,
                Jmp::Ge => BPF_JGE,
                Jmp::Set => BPF_JSET,
            }
    }
}

/// A position in a program under construction: the instruction it names is the one a jump to
/// it lands on. Labels count from the end of the program.
pub type Label = usize;

/// Builds a program backwards: each `push` prepends an instruction. Jumps can only go to
/// instructions already emitted, i.e. forward in the final program.
#[derive(Debug, Default)]
pub struct Builder {
    rev: Vec<Insn>,
}

impl Builder {
    pub fn new() -> Builder {
        Builder::default()
    }

    fn push(&mut self, insn: Insn) -> Label {
        self.rev.push(insn);
        self.rev.len() - 1
    }

    /// The instruction emitted last, i.e. the one right after the next instruction to be pushed
    /// (the fall-through target). Only valid once something was pushed.
    pub fn here(&self) -> Label {
        self.rev.len().saturating_sub(1)
    }

    /// The distance a jump pushed now would need to reach `target`.
    fn distance(&self, target: Label) -> u32 {
        (self.rev.len() - target - 1) as u32
    }

    /// `ret k`.
    pub fn ret(&mut self, k: u32) -> Label {
        self.push(Insn {
            code: BPF_RET | BPF_K,
            jt: 0,
            jf: 0,
            k,
        })
    }

    /// `ld [off]`: a 32-bit word of `struct seccomp_data`.
    pub fn load(&mut self, off: u32) -> Label {
        self.push(Insn {
            code: BPF_LD | BPF_W | BPF_ABS,
            jt: 0,
            jf: 0,
            k: off,
        })
    }

    /// `and k`.
    pub fn and(&mut self, k: u32) -> Label {
        self.push(Insn {
            code: BPF_ALU | BPF_AND | BPF_K,
            jt: 0,
            jf: 0,
            k,
        })
    }

    /// `ja target` (32-bit offset: reaches anything).
    pub fn jump(&mut self, target: Label) -> Label {
        let k = self.distance(target);
        self.push(Insn {
            code: BPF_JMP | BPF_JA,
            jt: 0,
            jf: 0,
            k,
        })
    }

    /// A conditional jump to `t` when the condition holds, else to `f`. A target more than 255
    /// instructions away is reached through a `ja` placed right after the jump.
    pub fn cond(&mut self, op: Jmp, k: u32, t: Label, f: Label) -> Label {
        let (mut t, mut f) = (t, f);
        if self.distance(f) > 255 {
            f = self.jump(f);
        }
        if self.distance(t) > 255 {
            t = self.jump(t);
            if self.distance(f) > 255 {
                f = self.jump(f);
            }
        }
        let (jt, jf) = (self.distance(t) as u8, self.distance(f) as u8);
        self.push(Insn {
            code: op.code(),
            jt,
            jf,
            k,
        })
    }

    /// The program, first instruction first.
    pub fn finish(mut self) -> Vec<Insn> {
        self.rev.reverse();
        self.rev
    }
}

/// The input of a seccomp filter (`struct seccomp_data`), for the interpreter.
#[cfg(test)]
#[derive(Debug, Clone, Copy, Default)]
pub struct Data {
    pub nr: u32,
    pub arch: u32,
    pub ip: u64,
    pub args: [u64; 6],
}

#[cfg(test)]
impl Data {
    fn word(&self, off: u32) -> Option<u32> {
        let mut bytes = [0u8; 64];
        bytes[0..4].copy_from_slice(&self.nr.to_ne_bytes());
        bytes[4..8].copy_from_slice(&self.arch.to_ne_bytes());
        bytes[8..16].copy_from_slice(&self.ip.to_ne_bytes());
        for (i, a) in self.args.iter().enumerate() {
            bytes[16 + 8 * i..24 + 8 * i].copy_from_slice(&a.to_ne_bytes());
        }
        let off = off as usize;
        if !off.is_multiple_of(4) || off + 4 > bytes.len() {
            return None;
        }
        let mut w = [0u8; 4];
        w.copy_from_slice(&bytes[off..off + 4]);
        Some(u32::from_ne_bytes(w))
    }
}

/// Runs `prog` as the kernel would on `data` and returns the filter's return value. Panics on
/// anything the kernel's checker would refuse (bad opcodes, jumps out of the program,
/// falling off the end), which makes tests fail loudly.
#[cfg(test)]
pub fn run(prog: &[Insn], data: &Data) -> u32 {
    assert!(!prog.is_empty(), "empty program");
    let (mut pc, mut a) = (0usize, 0u32);
    loop {
        let i = prog[pc];
        pc += 1;
        let jump = |pc: usize, off: usize| {
            let to = pc + off;
            assert!(to < prog.len(), "jump out of the program at {}", pc - 1);
            to
        };
        match i.code {
            c if c == BPF_RET | BPF_K => return i.k,
            c if c == BPF_LD | BPF_W | BPF_ABS => {
                a = data
                    .word(i.k)
                    .unwrap_or_else(|| panic!("bad load offset {}", i.k))
            }
            c if c == BPF_ALU | BPF_AND | BPF_K => a &= i.k,
            c if c == BPF_JMP | BPF_JA => pc = jump(pc, i.k as usize),
            c => {
                let taken = match c {
                    c if c == Jmp::Eq.code() => a == i.k,
                    c if c == Jmp::Gt.code() => a > i.k,
                    c if c == Jmp::Ge.code() => a >= i.k,
                    c if c == Jmp::Set.code() => a & i.k != 0,
                    other => panic!("unknown opcode {other:#x} at {}", pc - 1),
                };
                pc = jump(pc, if taken { i.jt } else { i.jf } as usize);
            }
        }
        assert!(pc < prog.len(), "fell off the end of the program");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_matches_sock_filter() {
        assert_eq!(std::mem::size_of::<Insn>(), 8);
    }

    #[test]
    fn builds_forward_jumps() {
        let mut b = Builder::new();
        let deny = b.ret(1);
        let allow = b.ret(2);
        b.cond(Jmp::Eq, 7, allow, deny);
        b.load(0);
        let p = b.finish();
        assert_eq!(p.len(), 4);
        assert_eq!(
            run(
                &p,
                &Data {
                    nr: 7,
                    ..Data::default()
                }
            ),
            2
        );
        assert_eq!(
            run(
                &p,
                &Data {
                    nr: 8,
                    ..Data::default()
                }
            ),
            1
        );
    }

    #[test]
    fn far_targets_get_long_jumps() {
        let mut b = Builder::new();
        let far_false = b.ret(10);
        let far_true = b.ret(20);
        for _ in 0..300 {
            b.ret(99);
        }
        let gt = b.cond(Jmp::Gt, 5, far_true, far_false);
        b.cond(Jmp::Eq, 1, far_false, gt);
        b.load(0);
        let p = b.finish();
        assert!(p.iter().any(|i| i.code == BPF_JMP | BPF_JA));
        assert_eq!(
            run(
                &p,
                &Data {
                    nr: 1,
                    ..Data::default()
                }
            ),
            10
        );
        assert_eq!(
            run(
                &p,
                &Data {
                    nr: 6,
                    ..Data::default()
                }
            ),
            20
        );
        assert_eq!(
            run(
                &p,
                &Data {
                    nr: 3,
                    ..Data::default()
                }
            ),
            10
        );
    }

    #[test]
    fn loads_argument_words() {
        let d = Data {
            args: [0, 0x1122_3344_5566_7788, 0, 0, 0, 0],
            ..Data::default()
        };
        let (lo, hi) = if cfg!(target_endian = "little") {
            (24, 28)
        } else {
            (28, 24)
        };
        assert_eq!(d.word(lo), Some(0x5566_7788));
        assert_eq!(d.word(hi), Some(0x1122_3344));
        assert_eq!(d.word(64), None);
    }
}
