//! The syscall ABIs a filter can meet on this machine, their `AUDIT_ARCH_*` values and syscall
//! tables. Only ABIs the running kernel can execute matter: a filter section for another
//! architecture could never run. On x86_64 those are x86_64, x86 (i386) and x32.

use oci_spec::runtime::Arch;

#[cfg(target_arch = "x86_64")]
#[path = "table_x32.rs"]
#[rustfmt::skip]
mod x32;
#[cfg(target_arch = "x86_64")]
#[path = "table_x86.rs"]
#[rustfmt::skip]
mod x86;
#[cfg(target_arch = "x86_64")]
#[path = "table_x86_64.rs"]
#[rustfmt::skip]
mod x86_64;

/// `AUDIT_ARCH_X86_64` (EM_X86_64 | 64-bit | little endian).
pub const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
/// `AUDIT_ARCH_I386` (EM_386 | little endian).
pub const AUDIT_ARCH_I386: u32 = 0x4000_0003;
/// x32 syscalls run as AUDIT_ARCH_X86_64 with this bit set in the syscall number.
pub const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// A syscall ABI with a table in husk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Abi {
    X86_64,
    X86,
    X32,
}

impl Abi {
    /// The ABI husk was built for, if husk has a syscall table for it.
    pub fn native() -> Option<Abi> {
        if cfg!(target_arch = "x86_64") {
            Some(Abi::X86_64)
        } else {
            None
        }
    }

    /// The ABI for a spec architecture, or None when it cannot run on this machine (or husk has
    /// no table for it). `SCMP_ARCH_NATIVE` is the native ABI.
    pub fn from_spec(arch: Arch) -> Option<Abi> {
        let abi = match arch {
            Arch::ScmpArchNative => return Abi::native(),
            Arch::ScmpArchX86_64 => Abi::X86_64,
            Arch::ScmpArchX86 => Abi::X86,
            Arch::ScmpArchX32 => Abi::X32,
            _ => return None,
        };
        // A table exists only for the ABIs the native architecture can run.
        Abi::native()
            .filter(|_| !abi.table().is_empty())
            .map(|_| abi)
    }

    /// The `seccomp_data.arch` value the kernel reports for this ABI.
    pub fn audit_arch(self) -> u32 {
        match self {
            Abi::X86_64 | Abi::X32 => AUDIT_ARCH_X86_64,
            Abi::X86 => AUDIT_ARCH_I386,
        }
    }

    /// Whether syscall arguments are compared on 64 bits (else only the low 32, as libseccomp
    /// does for 32-bit ABIs, x32 included).
    pub fn wide_args(self) -> bool {
        self == Abi::X86_64
    }

    pub fn name(self) -> &'static str {
        match self {
            Abi::X86_64 => "SCMP_ARCH_X86_64",
            Abi::X86 => "SCMP_ARCH_X86",
            Abi::X32 => "SCMP_ARCH_X32",
        }
    }

    /// (name, number) pairs sorted by name; empty when husk was built for another architecture.
    pub fn table(self) -> &'static [(&'static str, u32)] {
        #[cfg(target_arch = "x86_64")]
        {
            match self {
                Abi::X86_64 => x86_64::TABLE,
                Abi::X86 => x86::TABLE,
                Abi::X32 => x32::TABLE,
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            &[]
        }
    }

    /// The number of syscall `name` in this ABI.
    pub fn lookup(self, name: &str) -> Option<u32> {
        let t = self.table();
        t.binary_search_by(|(n, _)| (*n).cmp(name))
            .ok()
            .map(|i| t[i].1)
    }
}

/// Every spec architecture name husk can filter on this machine (for `husk features`).
pub fn supported_names() -> Vec<&'static str> {
    [Abi::X86_64, Abi::X86, Abi::X32]
        .into_iter()
        .filter(|a| !a.table().is_empty())
        .map(Abi::name)
        .collect()
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;

    #[test]
    fn tables_are_sorted_and_unique() {
        for abi in [Abi::X86_64, Abi::X86, Abi::X32] {
            let t = abi.table();
            assert!(t.len() > 300, "{abi:?}");
            for w in t.windows(2) {
                assert!(w[0].0 < w[1].0, "{abi:?}: {} then {}", w[0].0, w[1].0);
            }
        }
    }

    #[test]
    fn known_numbers() {
        assert_eq!(Abi::X86_64.lookup("read"), Some(0));
        assert_eq!(Abi::X86_64.lookup("getpid"), Some(libc::SYS_getpid as u32));
        assert_eq!(Abi::X86_64.lookup("clone3"), Some(libc::SYS_clone3 as u32));
        assert_eq!(
            Abi::X86_64.lookup("mkdirat"),
            Some(libc::SYS_mkdirat as u32)
        );
        assert_eq!(Abi::X86_64.lookup("fchmodat2"), Some(452));
        assert_eq!(Abi::X86_64.lookup("socketcall"), None);
        assert_eq!(Abi::X86.lookup("socketcall"), Some(102));
        assert_eq!(Abi::X86.lookup("getpid"), Some(20));
        assert_eq!(Abi::X32.lookup("getpid"), Some(X32_SYSCALL_BIT + 39));
        assert_eq!(Abi::X32.lookup("rt_sigaction"), Some(X32_SYSCALL_BIT + 512));
        assert_eq!(Abi::X86_64.lookup("no_such_syscall"), None);
    }

    #[test]
    fn spec_arches() {
        assert_eq!(Abi::from_spec(Arch::ScmpArchNative), Some(Abi::X86_64));
        assert_eq!(Abi::from_spec(Arch::ScmpArchX32), Some(Abi::X32));
        assert_eq!(Abi::from_spec(Arch::ScmpArchAarch64), None);
        assert_eq!(
            supported_names(),
            ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
        );
    }
}
