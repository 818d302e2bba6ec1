//! The cgroup v2 device filter: a `BPF_PROG_TYPE_CGROUP_DEVICE` program generated from an
//! emulated device state (pure, unit-tested; loading and attaching is in `sys::bpf`).
//!
//! The program sees `struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }`,
//! where `access_type` is `type | access << 16` (type 1 block, 2 char; access 1 mknod, 2 read,
//! 4 write), and returns 1 to allow, 0 to deny. It loads the four values into r2..r5, then
//! tests each exception in turn (type, access, major, minor: any mismatch jumps to the next
//! block) and returns the exception's verdict on a match, the default's otherwise. The access
//! test follows the kernel's v1 semantics: an allow exception must cover every requested bit,
//! a deny exception denies when it shares any bit.

use super::devices::{DevType, DeviceState, ACC_ALL};

/// The license the program is loaded under (the kernel wants one; no GPL-only helpers are used).
pub const LICENSE: &str = "Apache";

/// One eBPF instruction (`struct bpf_insn`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    pub code: u8,
    pub dst: u8,
    pub src: u8,
    pub off: i16,
    pub imm: i32,
}

// Opcodes (class | op | source).
pub const LDX_MEM_W: u8 = 0x61; // BPF_LDX | BPF_MEM | BPF_W
pub const ALU32_AND_K: u8 = 0x54; // BPF_ALU | BPF_AND | BPF_K
pub const ALU32_RSH_K: u8 = 0x74; // BPF_ALU | BPF_RSH | BPF_K
pub const ALU32_MOV_K: u8 = 0xb4; // BPF_ALU | BPF_MOV | BPF_K
pub const ALU32_MOV_X: u8 = 0xbc; // BPF_ALU | BPF_MOV | BPF_X
pub const JMP_JEQ_K: u8 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
pub const JMP_JNE_K: u8 = 0x55; // BPF_JMP | BPF_JNE | BPF_K
pub const JMP_EXIT: u8 = 0x95; // BPF_JMP | BPF_EXIT

/// `BPF_DEVCG_DEV_BLOCK` / `BPF_DEVCG_DEV_CHAR`.
pub fn bpf_type(t: DevType) -> i32 {
    match t {
        DevType::Block => 1,
        DevType::Char => 2,
    }
}

impl Insn {
    const fn new(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
        Insn {
            code,
            dst,
            src,
            off,
            imm,
        }
    }

    /// The 8 bytes the kernel reads (little-endian host: dst in the low nibble of byte 1).
    pub fn encode(&self) -> [u8; 8] {
        let off = self.off.to_ne_bytes();
        let imm = self.imm.to_ne_bytes();
        let regs = if cfg!(target_endian = "little") {
            (self.dst & 0xf) | (self.src << 4)
        } else {
            (self.dst << 4) | (self.src & 0xf)
        };
        [
            self.code, regs, off[0], off[1], imm[0], imm[1], imm[2], imm[3],
        ]
    }
}

/// The whole program as the bytes `BPF_PROG_LOAD` takes.
pub fn encode(prog: &[Insn]) -> Vec<u8> {
    prog.iter().flat_map(|i| i.encode()).collect()
}

/// The program enforcing `state`.
pub fn device_filter(state: &DeviceState) -> Vec<Insn> {
    let mut p = vec![
        Insn::new(LDX_MEM_W, 2, 1, 0, 0),        // r2 = ctx->access_type
        Insn::new(ALU32_AND_K, 2, 0, 0, 0xffff), // r2 = type
        Insn::new(LDX_MEM_W, 3, 1, 0, 0),        // r3 = ctx->access_type
        Insn::new(ALU32_RSH_K, 3, 0, 0, 16),     // r3 = access
        Insn::new(LDX_MEM_W, 4, 1, 4, 0),        // r4 = ctx->major
        Insn::new(LDX_MEM_W, 5, 1, 8, 0),        // r5 = ctx->minor
    ];
    let verdict = i32::from(!state.default_allow);
    for ex in &state.exceptions {
        // Conditions as (opcode, register, immediate); each jumps to the next block on failure.
        let mut block: Vec<Insn> = Vec::new();
        let mut jumps: Vec<usize> = Vec::new();
        block.push(Insn::new(JMP_JNE_K, 2, 0, 0, bpf_type(ex.typ)));
        jumps.push(0);
        if state.default_allow {
            // Deny exception: matches when the request shares a bit with it.
            if ex.access != ACC_ALL {
                block.push(Insn::new(ALU32_MOV_X, 1, 3, 0, 0));
                block.push(Insn::new(ALU32_AND_K, 1, 0, 0, i32::from(ex.access)));
                jumps.push(block.len());
                block.push(Insn::new(JMP_JEQ_K, 1, 0, 0, 0));
            }
        } else if ex.access != ACC_ALL {
            // Allow exception: matches when it covers every requested bit.
            block.push(Insn::new(ALU32_MOV_X, 1, 3, 0, 0));
            block.push(Insn::new(
                ALU32_AND_K,
                1,
                0,
                0,
                i32::from(!ex.access & ACC_ALL),
            ));
            jumps.push(block.len());
            block.push(Insn::new(JMP_JNE_K, 1, 0, 0, 0));
        }
        if let Some(major) = ex.major {
            jumps.push(block.len());
            block.push(Insn::new(JMP_JNE_K, 4, 0, 0, major as i32));
        }
        if let Some(minor) = ex.minor {
            jumps.push(block.len());
            block.push(Insn::new(JMP_JNE_K, 5, 0, 0, minor as i32));
        }
        block.push(Insn::new(ALU32_MOV_K, 0, 0, 0, verdict));
        block.push(Insn::new(JMP_EXIT, 0, 0, 0, 0));
        let len = block.len();
        for j in jumps {
            // Offsets count from the instruction after the jump; the next block starts at `len`.
            block[j].off = (len - j - 1) as i16;
        }
        p.extend(block);
    }
    p.push(Insn::new(
        ALU32_MOV_K,
        0,
        0,
        0,
        i32::from(state.default_allow),
    ));
    p.push(Insn::new(JMP_EXIT, 0, 0, 0, 0));
    p
}

#[cfg(test)]
mod tests {
    use super::super::devices::{ACC_MKNOD, ACC_READ, ACC_WRITE};
    use super::super::resources::DeviceRule;
    use super::*;

    /// Runs `prog` the way the kernel would, for the few opcodes the generator uses.
    fn run(prog: &[Insn], typ: DevType, major: u32, minor: u32, access: u8) -> u64 {
        let ctx = [
            (bpf_type(typ) as u32) | (u32::from(access) << 16),
            major,
            minor,
        ];
        let mut r = [0u64; 11];
        let mut pc = 0usize;
        for _ in 0..10_000 {
            let i = prog[pc];
            let (d, s) = (i.dst as usize, i.src as usize);
            pc += 1;
            match i.code {
                LDX_MEM_W => {
                    assert_eq!(s, 1, "loads only from the context");
                    r[d] = u64::from(ctx[(i.off / 4) as usize]);
                }
                ALU32_AND_K => r[d] = u64::from((r[d] as u32) & (i.imm as u32)),
                ALU32_RSH_K => r[d] = u64::from((r[d] as u32) >> i.imm),
                ALU32_MOV_K => r[d] = u64::from(i.imm as u32),
                ALU32_MOV_X => r[d] = u64::from(r[s] as u32),
                JMP_JEQ_K | JMP_JNE_K => {
                    let eq = r[d] == i.imm as i64 as u64;
                    if eq == (i.code == JMP_JEQ_K) {
                        pc = (pc as i64 + i64::from(i.off)) as usize;
                    }
                }
                JMP_EXIT => return r[0],
                c => panic!("unexpected opcode {c:#x}"),
            }
        }
        panic!("program did not exit");
    }

    fn rule(
        allow: bool,
        typ: Option<&str>,
        major: Option<i64>,
        minor: Option<i64>,
        access: &str,
    ) -> DeviceRule {
        DeviceRule {
            allow,
            typ: typ.map(String::from),
            major,
            minor,
            access: Some(access.into()),
        }
    }

    fn agrees(state: &DeviceState) {
        let prog = device_filter(state);
        for typ in [DevType::Char, DevType::Block] {
            for major in [0, 1, 4, 5, 8, 10, 136, 254] {
                for minor in [0, 1, 2, 3, 5, 7, 8, 9, 229] {
                    for access in 1..=7u8 {
                        let want = state.allows(typ, major, minor, access);
                        let got = run(&prog, typ, major, minor, access);
                        assert_eq!(
                            got,
                            u64::from(want),
                            "{typ:?} {major}:{minor} access {access} for {state:?}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn program_matches_the_emulator() {
        let configs: Vec<Vec<DeviceRule>> = vec![
            vec![],
            vec![rule(false, None, None, None, "rwm")],
            vec![rule(true, None, None, None, "rwm")],
            vec![
                rule(false, None, None, None, "rwm"),
                rule(true, Some("c"), Some(10), Some(229), "rw"),
                rule(true, Some("b"), Some(8), Some(0), "r"),
                rule(true, Some("c"), Some(4), None, "w"),
            ],
            vec![
                rule(true, None, None, None, "rwm"),
                rule(false, Some("c"), Some(1), Some(1), "rw"),
                rule(false, Some("b"), None, None, "w"),
                rule(false, Some("c"), Some(5), None, "m"),
            ],
        ];
        for c in &configs {
            agrees(&DeviceState::from_config(c).unwrap());
        }
        // A state without runc's default rules, too.
        let mut st = DeviceState::deny_all();
        st.apply(super::super::devices::Rule::All(true));
        agrees(&st);
    }

    #[test]
    fn golden_program() {
        let mut st = DeviceState::deny_all();
        st.exceptions.push(super::super::devices::Exception {
            typ: DevType::Char,
            major: Some(1),
            minor: Some(3),
            access: ACC_READ | ACC_WRITE,
        });
        let p = device_filter(&st);
        let expected = [
            Insn::new(LDX_MEM_W, 2, 1, 0, 0),
            Insn::new(ALU32_AND_K, 2, 0, 0, 0xffff),
            Insn::new(LDX_MEM_W, 3, 1, 0, 0),
            Insn::new(ALU32_RSH_K, 3, 0, 0, 16),
            Insn::new(LDX_MEM_W, 4, 1, 4, 0),
            Insn::new(LDX_MEM_W, 5, 1, 8, 0),
            Insn::new(JMP_JNE_K, 2, 0, 7, 2),
            Insn::new(ALU32_MOV_X, 1, 3, 0, 0),
            Insn::new(ALU32_AND_K, 1, 0, 0, i32::from(ACC_MKNOD)),
            Insn::new(JMP_JNE_K, 1, 0, 4, 0),
            Insn::new(JMP_JNE_K, 4, 0, 3, 1),
            Insn::new(JMP_JNE_K, 5, 0, 2, 3),
            Insn::new(ALU32_MOV_K, 0, 0, 0, 1),
            Insn::new(JMP_EXIT, 0, 0, 0, 0),
            Insn::new(ALU32_MOV_K, 0, 0, 0, 0),
            Insn::new(JMP_EXIT, 0, 0, 0, 0),
        ];
        assert_eq!(p, expected);
        assert_eq!(run(&p, DevType::Char, 1, 3, ACC_READ), 1);
        assert_eq!(run(&p, DevType::Char, 1, 3, ACC_WRITE | ACC_MKNOD), 0);
        assert_eq!(run(&p, DevType::Block, 1, 3, ACC_READ), 0);
        let bytes = encode(&p);
        assert_eq!(bytes.len(), 16 * 8);
        // r2 = *(u32 *)(r1 + 0): dst 2 in the low nibble, src 1 in the high one.
        assert_eq!(&bytes[..8], &[0x61, 0x12, 0, 0, 0, 0, 0, 0]);
        // if r4 != 1 goto +3
        assert_eq!(&bytes[80..88], &[0x55, 0x04, 3, 0, 1, 0, 0, 0]);
    }
}
