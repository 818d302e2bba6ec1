//! The driver interface (one implementation per cgroup version; a systemd driver would be a
//! third), the planned file writes both drivers produce, and the executor that performs them.

use std::fs::{self, OpenOptions};
use std::io::{self, Write as _};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use super::resources::Resources;
use super::stats::Stats;
use super::CgroupError;

/// What a driver does with a container's cgroup once it exists.
pub trait Manager {
    /// `"v1"` or `"v2"`.
    fn version(&self) -> &'static str;
    /// Apply `res`: every set field, validated first (an unsupported field is an error unless
    /// its value is the default). `devices`: also (re)apply the device rules (plus runc's
    /// default rules). `update`: this is `update` of a live container (checkBeforeUpdate).
    fn apply(&self, res: &Resources, devices: bool, update: bool) -> Result<(), CgroupError>;
    /// Freeze (`true`) or thaw every process, waiting until the kernel reports it done.
    fn set_frozen(&self, frozen: bool) -> Result<(), CgroupError>;
    /// Whether the cgroup is frozen (or freezing). False when there is no freezer.
    fn frozen(&self) -> bool;
    /// Read the statistics once.
    fn stats(&self) -> Result<Stats, CgroupError>;
    /// SIGKILL every process through the kernel (`cgroup.kill`) if it can; `Ok(false)` when the
    /// caller must signal the processes one by one.
    fn kill_all(&self) -> Result<bool, CgroupError>;
    /// A source of OOM notifications, if the memory controller is there.
    fn oom_watch(&self) -> Result<Option<OomWatch>, CgroupError>;
}

/// One planned write of a cgroup file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Write {
    /// The spec field it comes from (`memory.limit`), for error messages.
    pub field: String,
    /// The controller the file belongs to (v1 subsystem, v2 controller name); `""` for the
    /// v2 core files.
    pub controller: String,
    pub file: String,
    pub value: String,
    /// The value is the kernel's default: if the controller is missing, skip instead of failing.
    pub default: bool,
    /// On EINVAL, retry once after the other writes (cfs period/quota/burst ordering).
    pub retry_einval: bool,
    /// Read the value back and fail if the kernel changed it (cpu.shares clamping).
    pub verify: bool,
}

impl Write {
    pub fn new(field: &str, controller: &str, file: &str, value: impl ToString) -> Write {
        Write {
            field: field.to_string(),
            controller: controller.to_string(),
            file: file.to_string(),
            value: value.to_string(),
            default: false,
            retry_einval: false,
            verify: false,
        }
    }

    pub fn default_value(mut self, yes: bool) -> Write {
        self.default = yes;
        self
    }

    pub fn retry_einval(mut self) -> Write {
        self.retry_einval = true;
        self
    }

    pub fn verify(mut self) -> Write {
        self.verify = true;
        self
    }
}

/// Write `value` to an existing cgroup file (never creating it).
pub fn write_file(path: &Path, value: &str) -> io::Result<()> {
    let mut f = OpenOptions::new().write(true).open(path)?;
    f.write_all(value.as_bytes())
}

/// Read a cgroup file, `None` when it does not exist.
pub fn read_opt(path: &Path) -> Result<Option<String>, CgroupError> {
    match fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(CgroupError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Perform `writes` in order, each in the directory `dir_of(controller)`. EINVAL on a write
/// marked `retry_einval` is retried once after the others.
pub fn execute(
    writes: &[Write],
    dir_of: impl Fn(&str) -> Option<PathBuf>,
) -> Result<(), CgroupError> {
    // Check every controller first, so that nothing is half applied.
    let mut planned = Vec::with_capacity(writes.len());
    for w in writes {
        match dir_of(&w.controller) {
            Some(dir) => planned.push((dir, w)),
            None if w.default => {}
            None => {
                return Err(CgroupError::Unsupported {
                    field: w.field.clone(),
                    reason: format!("the {} controller is not available", w.controller),
                })
            }
        }
    }
    let mut deferred = Vec::new();
    for (dir, w) in planned {
        match write_one(&dir, w) {
            Err(CgroupError::Apply { source, .. })
                if w.retry_einval && source.raw_os_error() == Some(libc::EINVAL) =>
            {
                deferred.push((dir, w));
            }
            r => r?,
        }
    }
    for (dir, w) in deferred {
        write_one(&dir, w)?;
    }
    Ok(())
}

fn write_one(dir: &Path, w: &Write) -> Result<(), CgroupError> {
    let path = dir.join(&w.file);
    if let Err(source) = write_file(&path, &w.value) {
        let note = match source.raw_os_error() {
            Some(libc::ENOENT) => format!(
                " ({} does not exist: this kernel or its configuration lacks the feature)",
                w.file
            ),
            Some(libc::EBUSY) if w.file == "memory.limit_in_bytes" => {
                let read = |f: &str| {
                    fs::read_to_string(dir.join(f))
                        .map(|s| s.trim().to_string())
                        .unwrap_or_default()
                };
                format!(
                    " (the limit is below the current usage: {}, peak usage: {})",
                    read("memory.usage_in_bytes"),
                    read("memory.max_usage_in_bytes")
                )
            }
            _ => String::new(),
        };
        return Err(CgroupError::Apply {
            field: w.field.clone(),
            value: w.value.clone(),
            path,
            note,
            source,
        });
    }
    if w.verify {
        let got = fs::read_to_string(&path).map_err(|source| CgroupError::Read {
            path: path.clone(),
            source,
        })?;
        let got = got.trim();
        if got != w.value {
            let bound = match (got.parse::<u64>(), w.value.parse::<u64>()) {
                (Ok(g), Ok(v)) if g < v => format!("the maximum allowed is {g}"),
                (Ok(g), Ok(_)) => format!("the minimum allowed is {g}"),
                _ => format!("the kernel set {got:?}"),
            };
            return Err(CgroupError::Invalid {
                field: format!("linux.resources.{}", w.field),
                reason: format!("{} not accepted as is: {bound}", w.value),
            });
        }
    }
    Ok(())
}

/// OOM notifications: v1 an eventfd registered on memory.oom_control, v2 memory.events
/// (pollable: POLLPRI on change) and its `oom_kill` counter.
pub enum OomWatch {
    V1 {
        efd: nix::sys::eventfd::EventFd,
        _control: fs::File,
    },
    V2 {
        events: fs::File,
        path: PathBuf,
        last: u64,
    },
}

impl OomWatch {
    /// The fd to poll and the events to poll it for.
    pub fn poll_fd(&self) -> (BorrowedFd<'_>, nix::poll::PollFlags) {
        use nix::poll::PollFlags;
        match self {
            OomWatch::V1 { efd, .. } => (efd.as_fd(), PollFlags::POLLIN),
            OomWatch::V2 { events, .. } => (events.as_fd(), PollFlags::POLLPRI),
        }
    }

    /// After the fd became ready: how many OOM events happened. `None`: the cgroup is gone.
    pub fn consume(&mut self) -> Option<u64> {
        match self {
            OomWatch::V1 { efd, .. } => efd.read().ok(),
            OomWatch::V2 { path, last, .. } => {
                let text = fs::read_to_string(&*path).ok()?;
                let n = super::stats::parse_flat_keyed(&text)
                    .get("oom_kill")
                    .copied()
                    .unwrap_or(0);
                let new = n.saturating_sub(*last);
                *last = n;
                Some(new)
            }
        }
    }
}

/// v1: register an eventfd for OOM notifications on `memory_dir`.
pub fn oom_watch_v1(memory_dir: &Path) -> Result<OomWatch, CgroupError> {
    use nix::sys::eventfd::{EfdFlags, EventFd};
    use std::os::fd::AsRawFd;
    let control_path = memory_dir.join("memory.oom_control");
    let control = fs::File::open(&control_path).map_err(|source| CgroupError::Read {
        path: control_path.clone(),
        source,
    })?;
    let efd =
        EventFd::from_value_and_flags(0, EfdFlags::EFD_CLOEXEC).map_err(|e| CgroupError::Read {
            path: control_path.clone(),
            source: io::Error::from(e),
        })?;
    let reg = memory_dir.join("cgroup.event_control");
    let line = format!("{} {}", efd.as_fd().as_raw_fd(), control.as_raw_fd());
    write_file(&reg, &line).map_err(|source| CgroupError::Write {
        what: format!("{line:?}"),
        path: reg.clone(),
        source,
    })?;
    Ok(OomWatch::V1 {
        efd,
        _control: control,
    })
}

/// v2: watch `dir/memory.events`.
pub fn oom_watch_v2(dir: &Path) -> Result<Option<OomWatch>, CgroupError> {
    let path = dir.join("memory.events");
    let events = match fs::File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(CgroupError::Read { path, source }),
    };
    let mut w = OomWatch::V2 {
        events,
        path,
        last: 0,
    };
    w.consume();
    Ok(Some(w))
}

/// An fd on a directory, for `bpf` attach targets.
pub fn open_dir(path: &Path) -> Result<OwnedFd, CgroupError> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(path)
        .map(OwnedFd::from)
        .map_err(|source| CgroupError::Read {
            path: path.to_path_buf(),
            source,
        })
}

/// Poll `file` until `done(contents)` or `timeout`, sleeping a little between reads.
pub fn wait_for(
    file: &Path,
    timeout: std::time::Duration,
    mut done: impl FnMut(&str) -> bool,
) -> Result<bool, CgroupError> {
    let deadline = std::time::Instant::now() + timeout;
    let mut nap = std::time::Duration::from_micros(100);
    loop {
        let text = fs::read_to_string(file).map_err(|source| CgroupError::Read {
            path: file.to_path_buf(),
            source,
        })?;
        if done(&text) {
            return Ok(true);
        }
        if std::time::Instant::now() >= deadline {
            return Ok(false);
        }
        std::thread::sleep(nap);
        nap = (nap * 2).min(std::time::Duration::from_millis(10));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn executor_writes_in_order_retries_and_reports() {
        let dir = std::env::temp_dir().join(format!("husk-cg-exec-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("a"), "").unwrap();
        fs::write(dir.join("b"), "").unwrap();
        let writes = vec![
            Write::new("x.a", "ctl", "a", 1),
            Write::new("x.b", "ctl", "b", "two"),
            Write::new("x.missing-ctl", "nope", "c", 3).default_value(true),
        ];
        let d = dir.clone();
        execute(&writes, |c| (c == "ctl").then(|| d.clone())).unwrap();
        assert_eq!(fs::read_to_string(dir.join("a")).unwrap(), "1");
        assert_eq!(fs::read_to_string(dir.join("b")).unwrap(), "two");

        // A missing controller for a non-default value names the field.
        let e = execute(&[Write::new("hugepageLimits", "hugetlb", "h", 1)], |_| None)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("linux.resources.hugepageLimits") && e.contains("hugetlb"),
            "{e}"
        );

        // A missing file: ENOENT with a note, and the file is not created.
        let e = execute(&[Write::new("memory.swap", "ctl", "nofile", 1)], |_| {
            Some(d.clone())
        })
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("memory.swap") && e.contains("ENOENT") && e.contains("does not exist"),
            "{e}"
        );
        assert!(!dir.join("nofile").exists());

        // Read-back verification.
        fs::write(dir.join("v"), "").unwrap();
        execute(&[Write::new("cpu.shares", "ctl", "v", 5).verify()], |_| {
            Some(d.clone())
        })
        .unwrap();
        let _ = fs::remove_dir_all(&dir);
    }
}
