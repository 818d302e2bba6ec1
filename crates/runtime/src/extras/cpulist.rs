//! The list format of `execCPUAffinity` and `memoryPolicy.nodes`: comma-separated numbers and
//! dash ranges, e.g. `0-3,7`.

/// The largest CPU or node number husk accepts (the kernel's CONFIG_NR_CPUS and
/// MAX_NUMNODES are at most 8192 and 1024; a glibc cpu_set_t holds 1024).
pub const MAX: u32 = 1023;

/// Parses `0-3,7` into the sorted, deduplicated numbers it names. An empty string is an
/// empty list; anything else malformed (spaces, `3-1`, `,,`, numbers above [`MAX`]) is an
/// error saying what is wrong.
pub fn parse(s: &str) -> Result<Vec<u32>, String> {
    if s.is_empty() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for part in s.split(',') {
        let (lo, hi) = match part.split_once('-') {
            Some((a, b)) => (num(a, s)?, num(b, s)?),
            None => {
                let n = num(part, s)?;
                (n, n)
            }
        };
        if lo > hi {
            return Err(format!("range {part:?} in {s:?} is reversed"));
        }
        out.extend(lo..=hi);
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

fn num(t: &str, whole: &str) -> Result<u32, String> {
    if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{whole:?} is not a list like \"0-3,7\""));
    }
    let n: u32 = t
        .parse()
        .map_err(|_| format!("{t:?} in {whole:?} is too large"))?;
    if n > MAX {
        return Err(format!("{n} in {whole:?} is above the maximum {MAX}"));
    }
    Ok(n)
}

/// The numbers as a bitmask of 64-bit words (bit n of word n/64).
pub fn to_mask(list: &[u32]) -> Vec<u64> {
    let Some(&max) = list.iter().max() else {
        return Vec::new();
    };
    let mut mask = vec![0u64; max as usize / 64 + 1];
    for &n in list {
        mask[n as usize / 64] |= 1u64 << (n % 64);
    }
    mask
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lists_and_ranges() {
        assert_eq!(parse("0-3,7").unwrap(), vec![0, 1, 2, 3, 7]);
        assert_eq!(parse("5").unwrap(), vec![5]);
        assert_eq!(parse("3,1,1-2").unwrap(), vec![1, 2, 3]);
        assert_eq!(parse("").unwrap(), Vec::<u32>::new());
        assert_eq!(parse("1023").unwrap(), vec![1023]);
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "a",
            "1,,2",
            "1-",
            "-1",
            "3-1",
            " 1",
            "1024",
            "99999999999",
            "1,",
            "1-2-3",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn masks() {
        assert_eq!(to_mask(&[]), Vec::<u64>::new());
        assert_eq!(to_mask(&[0, 2]), vec![0b101]);
        assert_eq!(to_mask(&[64]), vec![0, 1]);
    }
}
