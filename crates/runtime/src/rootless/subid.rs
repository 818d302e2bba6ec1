//! /etc/subuid and /etc/subgid: the subordinate ids an unprivileged user may map into a user
//! namespace (through newuidmap/newgidmap, which check them again). husk checks a config's
//! mappings against them before any side effect, so that the error names the range.

use std::path::Path;

use oci_spec::runtime::LinuxIdMapping;

/// `name:start:count` lines of `text` that belong to the user `name` (or to its uid spelt as
/// a number), as `(start, count)`.
pub fn ranges(text: &str, name: Option<&str>, uid: u32) -> Vec<(u64, u64)> {
    let uid = uid.to_string();
    text.lines()
        .filter_map(|l| {
            let mut f = l.trim().split(':');
            let (who, start, count) = (f.next()?, f.next()?, f.next()?);
            if who != uid && Some(who) != name {
                return None;
            }
            Some((start.parse().ok()?, count.parse().ok()?))
        })
        .filter(|(_, count)| *count > 0)
        .collect()
}

/// Whether `[start, start+count)` is covered by `ranges` (which may be adjacent).
fn covered(ranges: &[(u64, u64)], start: u64, count: u64) -> bool {
    let (mut at, end) = (start, start.saturating_add(count));
    let mut sorted = ranges.to_vec();
    sorted.sort();
    for (s, c) in sorted {
        if s <= at && at < s.saturating_add(c) {
            at = s.saturating_add(c);
        }
        if at >= end {
            return true;
        }
    }
    at >= end
}

/// Checks each mapping of `field` (`linux.uidMappings`) against the caller's own id `own`
/// and the ranges of `file` for `user`: the caller's own id (size 1) needs no entry, every
/// other host id must be one of the user's subordinate ids.
pub fn check(
    maps: &[LinuxIdMapping],
    field: &str,
    own: u32,
    file: &Path,
    user: &str,
    ranges: &[(u64, u64)],
) -> Result<(), String> {
    for (i, m) in maps.iter().enumerate() {
        let (host, size) = (u64::from(m.host_id()), u64::from(m.size()));
        if size == 1 && host == u64::from(own) {
            continue;
        }
        if size == 0 || !covered(ranges, host, size) {
            let has = match ranges {
                [] => "none".to_string(),
                r => r
                    .iter()
                    .map(|(s, c)| format!("{s}-{}", s + c - 1))
                    .collect::<Vec<_>>()
                    .join(", "),
            };
            return Err(format!(
                "{field}[{i}]: host ids {host}-{} are not subordinate ids of user {user} in {} \
                 (it has: {has}; its own id is {own})",
                (host + size).saturating_sub(1),
                file.display()
            ));
        }
    }
    Ok(())
}

/// The name of `uid` in /etc/passwd (as runc reads it, without NSS).
pub fn user_name(uid: u32) -> Option<String> {
    let uid = uid.to_string();
    std::fs::read_to_string("/etc/passwd").ok()?.lines().find_map(|l| {
        let mut f = l.split(':');
        let name = f.next()?;
        (f.nth(1)? == uid).then(|| name.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::LinuxIdMappingBuilder;

    fn map(c: u32, h: u32, s: u32) -> LinuxIdMapping {
        LinuxIdMappingBuilder::default()
            .container_id(c)
            .host_id(h)
            .size(s)
            .build()
            .unwrap()
    }

    const FILE: &str = "root:100000:65536\nalice:300000:65536\n1001:400000:10\n# x\nalice:365536:100\nbad\n";

    #[test]
    fn ranges_by_name_or_uid() {
        assert_eq!(
            ranges(FILE, Some("alice"), 1000),
            vec![(300000, 65536), (365536, 100)]
        );
        assert_eq!(ranges(FILE, None, 1001), vec![(400000, 10)]);
        assert_eq!(ranges(FILE, Some("bob"), 1002), vec![]);
    }

    #[test]
    fn mappings_must_be_own_id_or_subordinate() {
        let r = ranges(FILE, Some("alice"), 1000);
        let p = Path::new("/etc/subuid");
        let ok = [map(0, 1000, 1), map(1, 300000, 65536), map(65537, 365536, 100)];
        assert_eq!(check(&ok, "linux.uidMappings", 1000, p, "alice", &r), Ok(()));
        // Spanning two adjacent entries is allowed, as newuidmap allows it.
        let span = [map(0, 365000, 600)];
        assert_eq!(check(&span, "linux.uidMappings", 1000, p, "alice", &r), Ok(()));
        let e = check(&[map(0, 0, 1)], "linux.uidMappings", 1000, p, "alice", &r).unwrap_err();
        assert_eq!(
            e,
            "linux.uidMappings[0]: host ids 0-0 are not subordinate ids of user alice in \
             /etc/subuid (it has: 300000-365535, 365536-365635; its own id is 1000)"
        );
        let e = check(&[map(0, 1000, 2)], "linux.gidMappings", 1000, p, "alice", &r).unwrap_err();
        assert!(e.starts_with("linux.gidMappings[0]: host ids 1000-1001"), "{e}");
        let e = check(&[map(0, 365600, 100)], "f", 1000, p, "alice", &r).unwrap_err();
        assert!(e.contains("365600-365699"), "{e}");
        let e = check(&[map(0, 5, 1)], "f", 1000, p, "bob", &[]).unwrap_err();
        assert!(e.contains("(it has: none;"), "{e}");
    }
}
