//! Device access rules: the cgroup v1 `devices` controller's semantics, emulated (pure,
//! unit-tested). The same emulated state drives both drivers: on v1 it becomes the writes to
//! `devices.allow`/`devices.deny` that move the cgroup from its current state to the requested
//! one; on v2 it becomes the eBPF program (see `ebpf.rs`).
//!
//! The kernel's rules, which this follows: a cgroup has a default (allow all or deny all) and a
//! list of exceptions, each a type (`c`/`b`), major and minor (or `*`) and an access set. A rule
//! of type `a` resets the default and drops every exception. Any other rule that agrees with
//! the default removes access bits from the exception of exactly the same type/major/minor;
//! one that disagrees adds them (merging into such an exception). With default deny, an access
//! is allowed when one exception covers all its bits; with default allow, it is denied when
//! any exception shares a bit with it.

use super::resources::DeviceRule;
use super::CgroupError;

pub const ACC_MKNOD: u8 = 1;
pub const ACC_READ: u8 = 2;
pub const ACC_WRITE: u8 = 4;
pub const ACC_ALL: u8 = ACC_MKNOD | ACC_READ | ACC_WRITE;

/// A device type as exceptions carry it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DevType {
    Char,
    Block,
}

impl DevType {
    pub fn letter(self) -> char {
        match self {
            DevType::Char => 'c',
            DevType::Block => 'b',
        }
    }
}

/// One exception: `None` major or minor is the wildcard `*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exception {
    pub typ: DevType,
    pub major: Option<u32>,
    pub minor: Option<u32>,
    pub access: u8,
}

impl Exception {
    fn same_node(&self, other: &Exception) -> bool {
        self.typ == other.typ && self.major == other.major && self.minor == other.minor
    }

    fn matches(&self, typ: DevType, major: u32, minor: u32) -> bool {
        self.typ == typ
            && self.major.is_none_or(|m| m == major)
            && self.minor.is_none_or(|m| m == minor)
    }

    /// `c 1:3 rwm`, as devices.list shows it and devices.allow/deny take it.
    pub fn to_line(&self, access: u8) -> String {
        let num = |n: Option<u32>| n.map_or_else(|| "*".to_string(), |n| n.to_string());
        format!(
            "{} {}:{} {}",
            self.typ.letter(),
            num(self.major),
            num(self.minor),
            access_string(access)
        )
    }
}

/// `rwm` order, as the kernel prints it.
pub fn access_string(access: u8) -> String {
    let mut s = String::new();
    if access & ACC_READ != 0 {
        s.push('r');
    }
    if access & ACC_WRITE != 0 {
        s.push('w');
    }
    if access & ACC_MKNOD != 0 {
        s.push('m');
    }
    s
}

/// One rule, validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// Type `a`: reset to allow all (`true`) or deny all.
    All(bool),
    /// An exception to allow (`true`) or deny.
    Node(bool, Exception),
}

fn parse_access(s: &str) -> Option<u8> {
    let mut acc = 0;
    for c in s.chars() {
        acc |= match c {
            'r' => ACC_READ,
            'w' => ACC_WRITE,
            'm' => ACC_MKNOD,
            _ => return None,
        };
    }
    Some(acc)
}

/// Validate `linux.resources.devices[i]`. An absent type is `a`, an absent major or minor `*`,
/// an absent access `rwm`.
pub fn parse_rule(i: usize, r: &DeviceRule) -> Result<Rule, CgroupError> {
    let invalid = |reason: String| CgroupError::Invalid {
        field: format!("linux.resources.devices[{i}]"),
        reason,
    };
    let access = match r.access.as_deref() {
        None => ACC_ALL,
        Some(a) => parse_access(a)
            .filter(|a| *a != 0)
            .ok_or_else(|| invalid(format!("access {a:?} is not a combination of r, w and m")))?,
    };
    let num = |what: &str, v: Option<i64>| -> Result<Option<u32>, CgroupError> {
        match v {
            None | Some(-1) => Ok(None),
            Some(n) => u32::try_from(n)
                .ok()
                .filter(|n| *n <= i32::MAX as u32)
                .map(Some)
                .ok_or_else(|| invalid(format!("{what} {n} is out of range"))),
        }
    };
    let typ = match r.typ.as_deref() {
        None | Some("a") => return Ok(Rule::All(r.allow)),
        Some("c") => DevType::Char,
        Some("b") => DevType::Block,
        Some(t) => return Err(invalid(format!("type {t:?} is not one of a, c, b"))),
    };
    Ok(Rule::Node(
        r.allow,
        Exception {
            typ,
            major: num("major", r.major)?,
            minor: num("minor", r.minor)?,
            access,
        },
    ))
}

/// The rules runc adds after the configured ones, so that the default devices work whatever
/// the config says: mknod of any node, /dev/null, random, full, tty, zero, urandom, the ptys
/// and ptmx.
pub fn default_rules() -> Vec<Rule> {
    let node = |typ, major, minor, access| {
        Rule::Node(
            true,
            Exception {
                typ,
                major,
                minor,
                access,
            },
        )
    };
    use DevType::{Block, Char};
    vec![
        node(Char, None, None, ACC_MKNOD),
        node(Block, None, None, ACC_MKNOD),
        node(Char, Some(1), Some(3), ACC_ALL),
        node(Char, Some(1), Some(8), ACC_ALL),
        node(Char, Some(1), Some(7), ACC_ALL),
        node(Char, Some(5), Some(0), ACC_ALL),
        node(Char, Some(1), Some(5), ACC_ALL),
        node(Char, Some(1), Some(9), ACC_ALL),
        node(Char, Some(136), None, ACC_ALL),
        node(Char, Some(5), Some(2), ACC_ALL),
    ]
}

/// A devices cgroup state: the default and the exceptions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceState {
    pub default_allow: bool,
    pub exceptions: Vec<Exception>,
}

impl DeviceState {
    /// Deny all, no exceptions: where the configured rules start from (as runc's emulator).
    pub fn deny_all() -> DeviceState {
        DeviceState {
            default_allow: false,
            exceptions: Vec::new(),
        }
    }

    /// The state the configured rules (in order) followed by runc's default rules produce.
    pub fn from_config(rules: &[DeviceRule]) -> Result<DeviceState, CgroupError> {
        let mut st = DeviceState::deny_all();
        for (i, r) in rules.iter().enumerate() {
            st.apply(parse_rule(i, r)?);
        }
        for r in default_rules() {
            st.apply(r);
        }
        Ok(st)
    }

    pub fn apply(&mut self, rule: Rule) {
        match rule {
            Rule::All(allow) => {
                self.default_allow = allow;
                self.exceptions.clear();
            }
            Rule::Node(allow, ex) if allow == self.default_allow => {
                if let Some(pos) = self.exceptions.iter().position(|e| e.same_node(&ex)) {
                    self.exceptions[pos].access &= !ex.access;
                    if self.exceptions[pos].access == 0 {
                        self.exceptions.remove(pos);
                    }
                }
            }
            Rule::Node(_, ex) => match self.exceptions.iter_mut().find(|e| e.same_node(&ex)) {
                Some(e) => e.access |= ex.access,
                None => self.exceptions.push(ex),
            },
        }
    }

    /// Whether `access` to the node is allowed, as the kernel decides it.
    pub fn allows(&self, typ: DevType, major: u32, minor: u32, access: u8) -> bool {
        let mut matching = self
            .exceptions
            .iter()
            .filter(|e| e.matches(typ, major, minor));
        if self.default_allow {
            !matching.any(|e| e.access & access != 0)
        } else {
            matching.any(|e| access & !e.access == 0)
        }
    }

    /// Parse `devices.list`: `a *:* rwm` means allow all (the kernel does not show the deny
    /// exceptions then), otherwise the lines are the allow exceptions of a deny-all cgroup.
    pub fn from_list(text: &str) -> DeviceState {
        let mut st = DeviceState::deny_all();
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let mut parts = line.split_whitespace();
            let (Some(t), Some(node), Some(acc)) = (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            let typ = match t {
                "a" => {
                    st.default_allow = true;
                    st.exceptions.clear();
                    continue;
                }
                "c" => DevType::Char,
                "b" => DevType::Block,
                _ => continue,
            };
            let Some((ma, mi)) = node.split_once(':') else {
                continue;
            };
            let num = |s: &str| {
                if s == "*" {
                    Some(None)
                } else {
                    s.parse().ok().map(Some)
                }
            };
            let (Some(major), Some(minor), Some(access)) = (num(ma), num(mi), parse_access(acc))
            else {
                continue;
            };
            st.exceptions.push(Exception {
                typ,
                major,
                minor,
                access,
            });
        }
        st
    }

    /// The writes (`(allow_file, line)`, `true` for devices.allow) that take a v1 cgroup from
    /// `self` to `target` (runc's transition). An allow-all cgroup's deny exceptions cannot be
    /// read back, so leaving or entering allow-all starts with a reset.
    pub fn transition(&self, target: &DeviceState) -> Vec<(bool, String)> {
        let mut out = Vec::new();
        // Exceptions of `target` are written to the file opposite to its default.
        let add_file = !target.default_allow;
        let mut source = self.clone();
        if self.default_allow || self.default_allow != target.default_allow {
            out.push((target.default_allow, "a".to_string()));
            source = DeviceState {
                default_allow: target.default_allow,
                exceptions: Vec::new(),
            };
        }
        for cur in &source.exceptions {
            let keep = target
                .exceptions
                .iter()
                .find(|t| t.same_node(cur))
                .map_or(0, |t| t.access);
            let drop = cur.access & !keep;
            if drop != 0 {
                out.push((!add_file, cur.to_line(drop)));
            }
        }
        for t in &target.exceptions {
            let have = source
                .exceptions
                .iter()
                .find(|c| c.same_node(t))
                .map_or(0, |c| c.access);
            let add = t.access & !have;
            if add != 0 {
                out.push((add_file, t.to_line(add)));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn parses_rules() {
        assert_eq!(
            parse_rule(0, &rule(false, None, None, None, "rwm")).unwrap(),
            Rule::All(false)
        );
        assert_eq!(
            parse_rule(0, &rule(true, Some("a"), Some(1), None, "r")).unwrap(),
            Rule::All(true)
        );
        let r = parse_rule(0, &rule(true, Some("c"), Some(1), Some(3), "rw")).unwrap();
        assert_eq!(
            r,
            Rule::Node(
                true,
                Exception {
                    typ: DevType::Char,
                    major: Some(1),
                    minor: Some(3),
                    access: ACC_READ | ACC_WRITE
                }
            )
        );
        let r = parse_rule(0, &rule(true, Some("b"), None, Some(-1), "m")).unwrap();
        assert!(matches!(
            r,
            Rule::Node(
                true,
                Exception {
                    major: None,
                    minor: None,
                    ..
                }
            )
        ));
        let e = parse_rule(3, &rule(true, Some("u"), None, None, "r"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("devices[3]") && e.contains("\"u\""), "{e}");
        assert!(parse_rule(0, &rule(true, Some("c"), None, None, "rx")).is_err());
        assert!(parse_rule(0, &rule(true, Some("c"), None, None, "")).is_err());
        assert!(parse_rule(0, &rule(true, Some("c"), Some(-5), None, "r")).is_err());
        let no_access = DeviceRule {
            allow: true,
            typ: Some("c".into()),
            ..Default::default()
        };
        assert!(matches!(
            parse_rule(0, &no_access).unwrap(),
            Rule::Node(
                true,
                Exception {
                    access: ACC_ALL,
                    ..
                }
            )
        ));
    }

    #[test]
    fn deny_all_then_allow_with_defaults() {
        let st = DeviceState::from_config(&[
            rule(false, None, None, None, "rwm"),
            rule(true, Some("c"), Some(10), Some(229), "rw"),
        ])
        .unwrap();
        assert!(!st.default_allow);
        assert!(st.allows(DevType::Char, 10, 229, ACC_READ | ACC_WRITE));
        assert!(!st.allows(DevType::Char, 10, 229, ACC_MKNOD | ACC_READ));
        assert!(st.allows(DevType::Char, 1, 3, ACC_ALL));
        assert!(st.allows(DevType::Char, 136, 7, ACC_READ));
        assert!(st.allows(DevType::Block, 8, 0, ACC_MKNOD));
        assert!(!st.allows(DevType::Block, 8, 0, ACC_READ));
        assert!(!st.allows(DevType::Char, 1, 1, ACC_READ)); // /dev/mem
    }

    #[test]
    fn allow_all_with_deny_exceptions() {
        let st = DeviceState::from_config(&[
            rule(true, None, None, None, "rwm"),
            rule(false, Some("c"), Some(1), Some(1), "rw"),
        ])
        .unwrap();
        assert!(st.default_allow);
        assert!(!st.allows(DevType::Char, 1, 1, ACC_READ));
        assert!(!st.allows(DevType::Char, 1, 1, ACC_READ | ACC_MKNOD)); // partial overlap denies
        assert!(st.allows(DevType::Char, 1, 1, ACC_MKNOD));
        assert!(st.allows(DevType::Block, 8, 0, ACC_READ));
        // The default allow rules remove nothing here (no exception for those nodes).
        assert_eq!(st.exceptions.len(), 1);
    }

    #[test]
    fn kernel_merge_and_remove() {
        let mut st = DeviceState::deny_all();
        let ex = |acc| Exception {
            typ: DevType::Char,
            major: Some(4),
            minor: None,
            access: acc,
        };
        st.apply(Rule::Node(true, ex(ACC_READ)));
        st.apply(Rule::Node(true, ex(ACC_WRITE)));
        assert_eq!(st.exceptions, vec![ex(ACC_READ | ACC_WRITE)]);
        st.apply(Rule::Node(false, ex(ACC_READ)));
        assert_eq!(st.exceptions, vec![ex(ACC_WRITE)]);
        st.apply(Rule::Node(false, ex(ACC_ALL)));
        assert!(st.exceptions.is_empty());
        // A deny for a node that only a wildcard exception covers changes nothing (kernel).
        st.apply(Rule::Node(
            true,
            Exception {
                typ: DevType::Char,
                major: None,
                minor: None,
                access: ACC_READ,
            },
        ));
        st.apply(Rule::Node(
            false,
            Exception {
                typ: DevType::Char,
                major: Some(1),
                minor: Some(3),
                access: ACC_READ,
            },
        ));
        assert!(st.allows(DevType::Char, 1, 3, ACC_READ));
    }

    #[test]
    fn list_round_trip() {
        let st = DeviceState::from_list("a *:* rwm\n");
        assert!(st.default_allow && st.exceptions.is_empty());
        let st = DeviceState::from_list("c 1:3 rwm\nb *:* m\nc 136:* rw\ngarbage\n");
        assert!(!st.default_allow);
        assert_eq!(st.exceptions.len(), 3);
        assert_eq!(st.exceptions[1].to_line(st.exceptions[1].access), "b *:* m");
        assert_eq!(
            st.exceptions[2].to_line(st.exceptions[2].access),
            "c 136:* rw"
        );
        assert_eq!(DeviceState::from_list(""), DeviceState::deny_all());
    }

    #[test]
    fn transitions() {
        let target = DeviceState::from_config(&[rule(false, None, None, None, "rwm")]).unwrap();
        // From the usual inherited allow-all: reset to deny, then every allow exception.
        let w = DeviceState::from_list("a *:* rwm").transition(&target);
        assert_eq!(w[0], (false, "a".to_string()));
        assert_eq!(w.len(), 1 + target.exceptions.len());
        assert!(w[1..].iter().all(|(allow, _)| *allow));
        assert!(w.contains(&(true, "c 1:3 rwm".to_string())));
        // Already there: nothing to write.
        assert!(target.transition(&target).is_empty());
        // Deny-mode to deny-mode: minimal diff, removals first.
        let cur = DeviceState::from_list("c 1:3 rwm\nc 1:5 rw\nc 10:200 rwm");
        let tgt = DeviceState::from_list("c 1:3 rwm\nc 1:5 rwm\n");
        assert_eq!(
            cur.transition(&tgt),
            vec![
                (false, "c 10:200 rwm".to_string()),
                (true, "c 1:5 m".to_string())
            ]
        );
        // To allow-all with a deny exception: reset to allow, then the deny.
        let tgt = DeviceState::from_config(&[
            rule(true, None, None, None, "rwm"),
            rule(false, Some("b"), Some(8), None, "w"),
        ])
        .unwrap();
        assert_eq!(
            cur.transition(&tgt),
            vec![(true, "a".to_string()), (false, "b 8:* w".to_string())]
        );
    }
}
