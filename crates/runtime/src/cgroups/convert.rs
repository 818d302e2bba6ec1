//! The cgroup v1 -> v2 value conversions runc applies when only the v1 field is given, and a
//! few value formats (pure, unit-tested).

/// cpu.shares `[2, 262144]` -> cpu.weight `[1, 10000]`, linearly: `1 + (shares - 2) * 9999 /
/// 262142` (runc's `ConvertCPUSharesToCgroupV2Value`). 0 means unset and stays 0; out-of-range
/// shares are clamped first, as the v1 kernel clamps them.
pub fn cpu_shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    let s = shares.clamp(2, 262_144);
    1 + (s - 2) * 9999 / 262_142
}

/// blkio.weight `[10, 1000]` -> io.weight `[1, 10000]`, linearly: `1 + (w - 10) * 9999 / 990`
/// (runc's `ConvertBlkIOToIOWeightValue`). 0 means unset and stays 0; clamped like cpu shares.
pub fn blkio_weight_to_io_weight(weight: u16) -> u64 {
    if weight == 0 {
        return 0;
    }
    let w = u64::from(weight.clamp(10, 1000));
    1 + (w - 10) * 9999 / 990
}

/// The spec's memory.swap is memory+swap (the v1 memsw limit); v2's memory.swap.max is swap
/// alone. Returns the value for memory.swap.max: -1 is "max", 0 is "leave alone" (runc's
/// `ConvertMemorySwapToCgroupV2Value`).
pub fn memory_swap_to_v2(swap: i64, memory: i64) -> Result<i64, String> {
    match (swap, memory) {
        // Memory unlimited and swap not given: both unlimited, as on v1.
        (0, -1) => Ok(-1),
        (-1, _) | (0, _) => Ok(swap),
        (_, -1) => Ok(swap),
        (_, 0) => Err("unable to set swap limit without memory limit".into()),
        (_, m) if m < 0 => Err(format!("invalid memory value: {m}")),
        (s, m) if s < m => Err(format!(
            "memory+swap limit ({s}) should be >= memory limit ({m})"
        )),
        (s, m) => Ok(s - m),
    }
}

/// A v2 limit value: -1 (or any negative) is `max`.
pub fn v2_limit(v: i64) -> String {
    if v < 0 {
        "max".into()
    } else {
        v.to_string()
    }
}

/// The name the kernel uses in hugetlb file names for a page size in KiB: 2048 -> "2MB",
/// 1048576 -> "1GB", 64 -> "64KB".
pub fn hugepage_size_name(kib: u64) -> String {
    if kib >= 1 << 20 && kib & ((1 << 20) - 1) == 0 {
        format!("{}GB", kib >> 20)
    } else if kib >= 1 << 10 && kib & ((1 << 10) - 1) == 0 {
        format!("{}MB", kib >> 10)
    } else {
        format!("{kib}KB")
    }
}

/// The page sizes the kernel supports, from `/sys/kernel/mm/hugepages/hugepages-<n>kB`.
pub fn hugepage_sizes() -> Vec<String> {
    let Ok(rd) = std::fs::read_dir("/sys/kernel/mm/hugepages") else {
        return Vec::new();
    };
    let mut sizes: Vec<(u64, String)> = rd
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name();
            let kib: u64 = name
                .to_str()?
                .strip_prefix("hugepages-")?
                .strip_suffix("kB")?
                .parse()
                .ok()?;
            Some((kib, hugepage_size_name(kib)))
        })
        .collect();
    sizes.sort();
    sizes.into_iter().map(|(_, n)| n).collect()
}

/// A cpu or node list (`0-3,7`) as the numbers it names; malformed parts are skipped.
pub fn parse_cpu_list(s: &str) -> Vec<u16> {
    let mut out = Vec::new();
    for part in s.trim().split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                if let (Ok(a), Ok(b)) = (a.parse::<u16>(), b.parse::<u16>()) {
                    out.extend(a..=b);
                }
            }
            None => {
                if let Ok(n) = part.parse() {
                    out.push(n);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_shares() {
        assert_eq!(cpu_shares_to_weight(0), 0);
        assert_eq!(cpu_shares_to_weight(2), 1);
        assert_eq!(cpu_shares_to_weight(1024), 39);
        assert_eq!(cpu_shares_to_weight(512), 20);
        assert_eq!(cpu_shares_to_weight(262_144), 10_000);
        // Clamped like the v1 kernel does.
        assert_eq!(cpu_shares_to_weight(1), 1);
        assert_eq!(cpu_shares_to_weight(1 << 40), 10_000);
    }

    #[test]
    fn blkio_weight() {
        assert_eq!(blkio_weight_to_io_weight(0), 0);
        assert_eq!(blkio_weight_to_io_weight(10), 1);
        assert_eq!(blkio_weight_to_io_weight(500), 4950);
        assert_eq!(blkio_weight_to_io_weight(1000), 10_000);
        assert_eq!(blkio_weight_to_io_weight(5), 1);
    }

    #[test]
    fn memory_swap() {
        assert_eq!(memory_swap_to_v2(0, -1), Ok(-1));
        assert_eq!(memory_swap_to_v2(-1, 100), Ok(-1));
        assert_eq!(memory_swap_to_v2(0, 100), Ok(0));
        assert_eq!(memory_swap_to_v2(300, -1), Ok(300));
        assert_eq!(memory_swap_to_v2(300, 100), Ok(200));
        assert_eq!(memory_swap_to_v2(100, 100), Ok(0));
        assert!(memory_swap_to_v2(300, 0).is_err());
        assert!(memory_swap_to_v2(300, -5).is_err());
        let e = memory_swap_to_v2(50, 100).unwrap_err();
        assert!(e.contains("should be >= memory limit"), "{e}");
    }

    #[test]
    fn formats() {
        assert_eq!(v2_limit(-1), "max");
        assert_eq!(v2_limit(0), "0");
        assert_eq!(v2_limit(42), "42");
        assert_eq!(hugepage_size_name(2048), "2MB");
        assert_eq!(hugepage_size_name(1 << 20), "1GB");
        assert_eq!(hugepage_size_name(64), "64KB");
        assert_eq!(hugepage_size_name(32 << 10), "32MB");
        assert_eq!(parse_cpu_list("0-3,7\n"), [0, 1, 2, 3, 7]);
        assert_eq!(parse_cpu_list(""), Vec::<u16>::new());
        assert_eq!(parse_cpu_list("x,2"), [2]);
    }
}
