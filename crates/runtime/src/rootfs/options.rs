//! Parsing of `mounts[].options` (pure; unit-tested).
//!
//! The words runc and mount(8) know become [`MsFlags`], propagation changes or recursive
//! mount attributes; `key=value` options and a few filesystem-specific bare words
//! (`newinstance`, ...) become mount data. Any other bare word is an error: runc passes it to
//! the kernel as data, which turns a typo into an obscure EINVAL or, worse, silently nothing.

use nix::mount::MsFlags;

use super::RootfsError;
use crate::sys::mount::{attr, MS_NOSYMFOLLOW};

/// Every option string [`parse`] accepts besides `key=value` data options (for `husk features`).
pub const KNOWN: &[&str] = &[
    // mount(8) filesystem-independent flags
    "async",
    "atime",
    "bind",
    "defaults",
    "dev",
    "diratime",
    "dirsync",
    "exec",
    "iversion",
    "lazytime",
    "loud",
    "mand",
    "noatime",
    "nodev",
    "nodiratime",
    "noexec",
    "noiversion",
    "nolazytime",
    "nomand",
    "norelatime",
    "nostrictatime",
    "nosuid",
    "nosymfollow",
    "rbind",
    "relatime",
    "remount",
    "ro",
    "rw",
    "silent",
    "strictatime",
    "suid",
    "symfollow",
    "sync",
    // propagation
    "private",
    "rprivate",
    "shared",
    "rshared",
    "slave",
    "rslave",
    "unbindable",
    "runbindable",
    // recursive attributes (mount_setattr with AT_RECURSIVE)
    "ratime",
    "rdev",
    "rdiratime",
    "rexec",
    "rnoatime",
    "rnodev",
    "rnodiratime",
    "rnoexec",
    "rnorelatime",
    "rnostrictatime",
    "rnosuid",
    "rnosymfollow",
    "rrelatime",
    "rro",
    "rrw",
    "rstrictatime",
    "rsuid",
    "rsymfollow",
    // id-mapped bind mounts (mount_setattr with MOUNT_ATTR_IDMAP)
    "idmap",
    "ridmap",
    // husk extensions
    "tmpcopyup",
    "notmpcopyup",
    // filesystem-specific bare words passed through as data
    "newinstance",
    "inode64",
    "inode32",
    "noswap",
    "nsdelegate",
    "memory_recursiveprot",
    "memory_localevents",
    "favordynmods",
    "userxattr",
    "volatile",
    "user_xattr",
    "nouser_xattr",
    "acl",
    "noacl",
];

/// Filesystem-specific options without a value that are passed to the kernel as data.
const DATA_WORDS: &[&str] = &[
    "newinstance",          // devpts
    "inode64",              // tmpfs
    "inode32",              // tmpfs
    "noswap",               // tmpfs
    "nsdelegate",           // cgroup2
    "memory_recursiveprot", // cgroup2
    "memory_localevents",   // cgroup2
    "favordynmods",         // cgroup, cgroup2
    "userxattr",            // overlay
    "volatile",             // overlay
    "user_xattr",           // ext4 and others
    "nouser_xattr",
    "acl",
    "noacl",
];

/// A parsed mount option list.
#[derive(Debug, Clone, PartialEq)]
pub struct MountOptions {
    /// Flags to set.
    pub flags: MsFlags,
    /// Flags explicitly turned off (`rw`, `suid`, `dev`, `exec`, `atime`, ...).
    pub clear: MsFlags,
    /// Propagation changes (`MS_SHARED`, `MS_SLAVE | MS_REC`, ...), applied in order after the mount.
    pub propagation: Vec<MsFlags>,
    /// Filesystem-specific options (`mode=755`, `newinstance`, ...), joined with `,` as mount data.
    pub data: Vec<String>,
    /// `bind` or `rbind` was given.
    pub bind: bool,
    /// `rbind` was given.
    pub recursive: bool,
    /// Copy the existing contents of the target into the new tmpfs.
    pub tmpcopyup: bool,
    /// `MOUNT_ATTR_*` to set recursively (`rro`, `rnosuid`, ...), applied after the mount.
    pub attr_set: u64,
    /// `MOUNT_ATTR_*` to clear recursively (`rrw`, `rsuid`, ...).
    pub attr_clr: u64,
    /// `idmap` or `ridmap`: the bind mount gets an id mapping.
    pub idmap: Option<Idmap>,
}

/// How an id mapping applies to a bind mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idmap {
    /// `idmap`: the mount itself (for `rbind`, not the mounts beneath it).
    Flat,
    /// `ridmap`: the mount and every mount beneath it.
    Recursive,
}

impl Default for MountOptions {
    fn default() -> Self {
        MountOptions {
            flags: MsFlags::empty(),
            clear: MsFlags::empty(),
            propagation: Vec::new(),
            data: Vec::new(),
            bind: false,
            recursive: false,
            tmpcopyup: false,
            attr_set: 0,
            attr_clr: 0,
            idmap: None,
        }
    }
}

impl MountOptions {
    /// The data argument for mount(2): the data options joined with `,`.
    pub fn data_string(&self) -> String {
        self.data.join(",")
    }

    /// Whether any recursive attribute was asked for.
    pub fn has_recursive_attrs(&self) -> bool {
        self.attr_set != 0 || self.attr_clr != 0
    }

    fn set(&mut self, f: MsFlags) {
        self.flags.insert(f);
        self.clear.remove(f);
    }

    fn unset(&mut self, f: MsFlags) {
        self.flags.remove(f);
        self.clear.insert(f);
    }

    fn rec_set(&mut self, a: u64) {
        // The access-time setting is an enum: changing it needs the whole mask in attr_clr.
        if a & attr::ATIME_MASK != 0 || a == attr::RELATIME {
            self.attr_set &= !attr::ATIME_MASK;
            self.attr_clr |= attr::ATIME_MASK;
        } else {
            self.attr_clr &= !a;
        }
        self.attr_set |= a;
    }

    fn rec_clr(&mut self, a: u64) {
        self.attr_set &= !a;
        if a & !attr::ATIME_MASK == 0 {
            // Turning one access-time value off (`ratime`, `rnorelatime`, `rnostrictatime`)
            // also needs the whole mask in attr_clr: a part of it is EINVAL. Whatever other
            // value was asked for stays; with none, the kernel's zero value, relatime, applies
            // (as in runc, opencontainers/runc#5098).
            self.attr_clr |= attr::ATIME_MASK;
        } else {
            self.attr_clr |= a;
        }
    }
}

/// `MS_NOSYMFOLLOW` as an [`MsFlags`] value.
pub(crate) fn ms_nosymfollow() -> MsFlags {
    MsFlags::from_bits_retain(MS_NOSYMFOLLOW)
}

/// Map a propagation word (`rslave`, `shared`, ...) to its mount(2) flags.
pub fn propagation_flags(word: &str) -> Option<MsFlags> {
    let rec = MsFlags::MS_REC;
    Some(match word {
        "private" => MsFlags::MS_PRIVATE,
        "rprivate" => MsFlags::MS_PRIVATE | rec,
        "shared" => MsFlags::MS_SHARED,
        "rshared" => MsFlags::MS_SHARED | rec,
        "slave" => MsFlags::MS_SLAVE,
        "rslave" => MsFlags::MS_SLAVE | rec,
        "unbindable" => MsFlags::MS_UNBINDABLE,
        "runbindable" => MsFlags::MS_UNBINDABLE | rec,
        _ => return None,
    })
}

/// Parse a mount's option list. Later options override earlier ones (`ro,rw` is read-write).
pub fn parse(opts: &[String]) -> Result<MountOptions, RootfsError> {
    let mut o = MountOptions::default();
    for opt in opts {
        parse_one(&mut o, opt)?;
    }
    Ok(o)
}

fn parse_one(o: &mut MountOptions, opt: &str) -> Result<(), RootfsError> {
    use MsFlags as F;
    match opt {
        "defaults" => {}
        "ro" => o.set(F::MS_RDONLY),
        "rw" => o.unset(F::MS_RDONLY),
        "nosuid" => o.set(F::MS_NOSUID),
        "suid" => o.unset(F::MS_NOSUID),
        "nodev" => o.set(F::MS_NODEV),
        "dev" => o.unset(F::MS_NODEV),
        "noexec" => o.set(F::MS_NOEXEC),
        "exec" => o.unset(F::MS_NOEXEC),
        "sync" => o.set(F::MS_SYNCHRONOUS),
        "async" => o.unset(F::MS_SYNCHRONOUS),
        "dirsync" => o.set(F::MS_DIRSYNC),
        "remount" => o.set(F::MS_REMOUNT),
        "mand" => o.set(F::MS_MANDLOCK),
        "nomand" => o.unset(F::MS_MANDLOCK),
        "noatime" => o.set(F::MS_NOATIME),
        "atime" => o.unset(F::MS_NOATIME),
        "nodiratime" => o.set(F::MS_NODIRATIME),
        "diratime" => o.unset(F::MS_NODIRATIME),
        "relatime" => o.set(F::MS_RELATIME),
        "norelatime" => o.unset(F::MS_RELATIME),
        "strictatime" => o.set(F::MS_STRICTATIME),
        "nostrictatime" => o.unset(F::MS_STRICTATIME),
        "lazytime" => o.set(F::MS_LAZYTIME),
        "nolazytime" => o.unset(F::MS_LAZYTIME),
        "silent" => o.set(F::MS_SILENT),
        "loud" => o.unset(F::MS_SILENT),
        "iversion" => o.set(F::MS_I_VERSION),
        "noiversion" => o.unset(F::MS_I_VERSION),
        "nosymfollow" => o.set(ms_nosymfollow()),
        "symfollow" => o.unset(ms_nosymfollow()),
        "bind" => {
            o.flags.insert(F::MS_BIND);
            o.bind = true;
        }
        "rbind" => {
            o.flags.insert(F::MS_BIND | F::MS_REC);
            o.bind = true;
            o.recursive = true;
        }
        "idmap" => o.idmap = Some(Idmap::Flat),
        "ridmap" => o.idmap = Some(Idmap::Recursive),
        "tmpcopyup" => o.tmpcopyup = true,
        "notmpcopyup" => o.tmpcopyup = false,
        "rro" => o.rec_set(attr::RDONLY),
        "rrw" => o.rec_clr(attr::RDONLY),
        "rnosuid" => o.rec_set(attr::NOSUID),
        "rsuid" => o.rec_clr(attr::NOSUID),
        "rnodev" => o.rec_set(attr::NODEV),
        "rdev" => o.rec_clr(attr::NODEV),
        "rnoexec" => o.rec_set(attr::NOEXEC),
        "rexec" => o.rec_clr(attr::NOEXEC),
        "rnodiratime" => o.rec_set(attr::NODIRATIME),
        "rdiratime" => o.rec_clr(attr::NODIRATIME),
        "rnosymfollow" => o.rec_set(attr::NOSYMFOLLOW),
        "rsymfollow" => o.rec_clr(attr::NOSYMFOLLOW),
        // The access-time setting is one value (relatime, noatime or strictatime): `r<value>`
        // selects it, `rno<value>` (and `ratime`, "not noatime") only turns that value off,
        // which leaves relatime unless another value was selected. runc's table.
        "rnoatime" => o.rec_set(attr::NOATIME),
        "ratime" => o.rec_clr(attr::NOATIME),
        "rstrictatime" => o.rec_set(attr::STRICTATIME),
        "rnostrictatime" => o.rec_clr(attr::STRICTATIME),
        "rrelatime" => o.rec_set(attr::RELATIME),
        "rnorelatime" => o.rec_clr(attr::RELATIME),
        _ => {
            if let Some(p) = propagation_flags(opt) {
                o.propagation.push(p);
            } else if DATA_WORDS.contains(&opt)
                || opt.split_once('=').is_some_and(|(k, _)| !k.is_empty())
            {
                o.data.push(opt.to_string());
            } else {
                return Err(RootfsError::UnknownOption {
                    option: opt.to_string(),
                    dest: None,
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(opts: &[&str]) -> Result<MountOptions, RootfsError> {
        parse(&opts.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    fn ok(opts: &[&str]) -> MountOptions {
        match p(opts) {
            Ok(o) => o,
            Err(e) => panic!("{opts:?}: {e}"),
        }
    }

    #[test]
    fn empty_and_defaults() {
        assert_eq!(ok(&[]), MountOptions::default());
        assert_eq!(ok(&["defaults"]), MountOptions::default());
    }

    #[test]
    fn every_known_word_parses() {
        for w in KNOWN {
            ok(&[w]);
        }
        for w in DATA_WORDS {
            assert!(KNOWN.contains(w), "{w} missing from KNOWN");
        }
    }

    #[test]
    fn spec_must_and_should_words_are_known() {
        let spec = [
            "async",
            "atime",
            "bind",
            "defaults",
            "dev",
            "diratime",
            "dirsync",
            "exec",
            "iversion",
            "lazytime",
            "loud",
            "mand",
            "noatime",
            "nodev",
            "nodiratime",
            "noexec",
            "noiversion",
            "nolazytime",
            "nomand",
            "norelatime",
            "nostrictatime",
            "nosuid",
            "nosymfollow",
            "private",
            "ratime",
            "rbind",
            "rdev",
            "rdiratime",
            "relatime",
            "remount",
            "rexec",
            "rnoatime",
            "rnodiratime",
            "rnoexec",
            "rnorelatime",
            "rnostrictatime",
            "rnosuid",
            "rnosymfollow",
            "ro",
            "rprivate",
            "rrelatime",
            "rro",
            "rrw",
            "rshared",
            "rslave",
            "rstrictatime",
            "rsuid",
            "rsymfollow",
            "runbindable",
            "rw",
            "shared",
            "silent",
            "slave",
            "strictatime",
            "suid",
            "symfollow",
            "sync",
            "tmpcopyup",
            "unbindable",
        ];
        for w in spec {
            assert!(KNOWN.contains(&w), "{w} missing from KNOWN");
        }
    }

    #[test]
    fn flags_set_and_clear() {
        let o = ok(&["nosuid", "noexec", "nodev", "ro", "strictatime"]);
        assert_eq!(
            o.flags,
            MsFlags::MS_NOSUID
                | MsFlags::MS_NOEXEC
                | MsFlags::MS_NODEV
                | MsFlags::MS_RDONLY
                | MsFlags::MS_STRICTATIME
        );
        assert!(o.clear.is_empty());
        let o = ok(&["rw", "suid", "dev", "exec", "atime"]);
        assert!(o.flags.is_empty());
        assert_eq!(
            o.clear,
            MsFlags::MS_RDONLY
                | MsFlags::MS_NOSUID
                | MsFlags::MS_NODEV
                | MsFlags::MS_NOEXEC
                | MsFlags::MS_NOATIME
        );
    }

    #[test]
    fn later_options_win() {
        let o = ok(&["ro", "rw"]);
        assert!(!o.flags.contains(MsFlags::MS_RDONLY));
        assert!(o.clear.contains(MsFlags::MS_RDONLY));
        let o = ok(&["rw", "ro"]);
        assert!(o.flags.contains(MsFlags::MS_RDONLY));
        assert!(!o.clear.contains(MsFlags::MS_RDONLY));
    }

    #[test]
    fn misc_flags() {
        assert_eq!(ok(&["sync"]).flags, MsFlags::MS_SYNCHRONOUS);
        assert_eq!(ok(&["async"]).clear, MsFlags::MS_SYNCHRONOUS);
        assert_eq!(ok(&["dirsync"]).flags, MsFlags::MS_DIRSYNC);
        assert_eq!(ok(&["remount"]).flags, MsFlags::MS_REMOUNT);
        assert_eq!(ok(&["mand"]).flags, MsFlags::MS_MANDLOCK);
        assert_eq!(ok(&["nodiratime"]).flags, MsFlags::MS_NODIRATIME);
        assert_eq!(ok(&["relatime"]).flags, MsFlags::MS_RELATIME);
        assert_eq!(ok(&["norelatime"]).clear, MsFlags::MS_RELATIME);
        assert_eq!(ok(&["lazytime"]).flags, MsFlags::MS_LAZYTIME);
        assert_eq!(ok(&["silent"]).flags, MsFlags::MS_SILENT);
        assert_eq!(ok(&["loud"]).clear, MsFlags::MS_SILENT);
        assert_eq!(ok(&["iversion"]).flags, MsFlags::MS_I_VERSION);
        assert_eq!(ok(&["nosymfollow"]).flags.bits(), libc::MS_NOSYMFOLLOW);
        assert_eq!(ok(&["symfollow"]).clear.bits(), libc::MS_NOSYMFOLLOW);
    }

    #[test]
    fn bind_and_rbind() {
        let o = ok(&["bind"]);
        assert!(o.bind && !o.recursive);
        assert_eq!(o.flags, MsFlags::MS_BIND);
        let o = ok(&["rbind", "ro"]);
        assert!(o.bind && o.recursive);
        assert_eq!(
            o.flags,
            MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_RDONLY
        );
    }

    #[test]
    fn propagation_in_order() {
        let o = ok(&["rbind", "rprivate", "shared", "slave", "runbindable"]);
        assert_eq!(
            o.propagation,
            vec![
                MsFlags::MS_PRIVATE | MsFlags::MS_REC,
                MsFlags::MS_SHARED,
                MsFlags::MS_SLAVE,
                MsFlags::MS_UNBINDABLE | MsFlags::MS_REC,
            ]
        );
        assert_eq!(o.flags, MsFlags::MS_BIND | MsFlags::MS_REC);
        assert_eq!(
            propagation_flags("rshared"),
            Some(MsFlags::MS_SHARED | MsFlags::MS_REC)
        );
        assert_eq!(propagation_flags("private"), Some(MsFlags::MS_PRIVATE));
        assert_eq!(
            propagation_flags("rslave"),
            Some(MsFlags::MS_SLAVE | MsFlags::MS_REC)
        );
        assert_eq!(
            propagation_flags("unbindable"),
            Some(MsFlags::MS_UNBINDABLE)
        );
        assert_eq!(propagation_flags("nope"), None);
    }

    #[test]
    fn data_options() {
        let o = ok(&[
            "nosuid",
            "noexec",
            "newinstance",
            "ptmxmode=0666",
            "mode=0620",
            "gid=5",
        ]);
        assert_eq!(
            o.data,
            vec!["newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]
        );
        assert_eq!(o.data_string(), "newinstance,ptmxmode=0666,mode=0620,gid=5");
        assert_eq!(o.flags, MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC);
        let o = ok(&[
            "lowerdir=/a:/b",
            "upperdir=/u",
            "workdir=/w",
            "size=65536k",
            "x=",
        ]);
        assert_eq!(o.data.len(), 5);
    }

    #[test]
    fn tmpcopyup() {
        assert!(ok(&["tmpcopyup"]).tmpcopyup);
        assert!(!ok(&["tmpcopyup", "notmpcopyup"]).tmpcopyup);
    }

    #[test]
    fn recursive_attrs() {
        let o = ok(&["rbind", "rro", "rnosuid", "rnodev", "rnoexec"]);
        assert_eq!(
            o.attr_set,
            attr::RDONLY | attr::NOSUID | attr::NODEV | attr::NOEXEC
        );
        assert_eq!(o.attr_clr, 0);
        assert!(o.has_recursive_attrs());
        let o = ok(&["rro", "rrw"]);
        assert_eq!((o.attr_set, o.attr_clr), (0, attr::RDONLY));
        let o = ok(&["rrw", "rro"]);
        assert_eq!((o.attr_set, o.attr_clr), (attr::RDONLY, 0));
        let o = ok(&["rnoatime"]);
        assert_eq!((o.attr_set, o.attr_clr), (attr::NOATIME, attr::ATIME_MASK));
        let o = ok(&["rnoatime", "rstrictatime"]);
        assert_eq!(
            (o.attr_set, o.attr_clr),
            (attr::STRICTATIME, attr::ATIME_MASK)
        );
        let o = ok(&["rnoatime", "ratime"]);
        assert_eq!((o.attr_set, o.attr_clr), (attr::RELATIME, attr::ATIME_MASK));
        // Turning a value off leaves relatime (0), or the value selected before.
        for (opts, set) in [
            (&["rnorelatime"][..], attr::RELATIME),
            (&["ratime"], attr::RELATIME),
            (&["rnostrictatime"], attr::RELATIME),
            (&["rnoatime", "rnorelatime"], attr::NOATIME),
            (&["rstrictatime", "rnorelatime"], attr::STRICTATIME),
            (&["rstrictatime", "ratime"], attr::STRICTATIME),
            (&["rnoatime", "rnostrictatime"], attr::NOATIME),
            (&["rstrictatime", "rnostrictatime"], attr::RELATIME),
        ] {
            let o = ok(opts);
            assert_eq!((o.attr_set, o.attr_clr), (set, attr::ATIME_MASK), "{opts:?}");
        }
        // diratime is a flag of its own, outside the access-time value.
        let o = ok(&["rnodiratime"]);
        assert_eq!((o.attr_set, o.attr_clr), (attr::NODIRATIME, 0));
        let o = ok(&["rnodiratime", "rdiratime"]);
        assert_eq!((o.attr_set, o.attr_clr), (0, attr::NODIRATIME));
        assert!(!ok(&["ro"]).has_recursive_attrs());
    }

    #[test]
    fn unknown_words_are_errors() {
        for bad in ["foo", "", "=x", "RO", " ro", "rbind "] {
            match p(&["rbind", bad]) {
                Err(RootfsError::UnknownOption { option, dest: None }) => assert_eq!(option, bad),
                other => panic!("{bad:?}: {other:?}"),
            }
        }
        let e = p(&["foo"]).unwrap_err();
        assert_eq!(e.to_string(), "unknown mount option \"foo\"");
        assert_eq!(
            e.with_dest("/data").to_string(),
            "unknown mount option \"foo\" for /data"
        );
    }

    #[test]
    fn idmap_and_ridmap() {
        assert_eq!(ok(&["rbind", "idmap"]).idmap, Some(Idmap::Flat));
        assert_eq!(ok(&["rbind", "ridmap"]).idmap, Some(Idmap::Recursive));
        assert_eq!(ok(&["ridmap", "idmap"]).idmap, Some(Idmap::Flat));
        assert_eq!(ok(&["bind"]).idmap, None);
        // Never mount data.
        assert!(ok(&["bind", "idmap"]).data.is_empty());
        assert!(KNOWN.contains(&"idmap") && KNOWN.contains(&"ridmap"));
    }
}
