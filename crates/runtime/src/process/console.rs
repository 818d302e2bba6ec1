//! The container's terminal: the pty made inside the container, its master passed over the
//! console socket (`--console-socket`, or a socketpair when husk itself is the receiver), the
//! slave as the process's controlling terminal and stdio, and the proxy between husk's own
//! terminal and the master for `run -t` / `exec -t` in the foreground.
//!
//! The console socket protocol, as runc, crun, conmon and containerd-shim practice it: the
//! runtime connects to the unix socket (SOCK_STREAM, or SOCK_SEQPACKET) and sends one message
//! whose ancillary data is a single SCM_RIGHTS fd, the pty master. Its normal data is the
//! request the runtime-spec describes, `{"type":"terminal","container":"<id>"}` (receivers
//! that follow runc treat it as an opaque name). No response is awaited: conmon and
//! containerd-shim never send one.

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::sys::socket::{
    connect, recvmsg, sendmsg, socket, AddressFamily, ControlMessage, ControlMessageOwned,
    MsgFlags, SockFlag, SockType, UnixAddr,
};
use nix::sys::termios::{self, SetArg, Termios};
use nix::unistd::Uid;

use super::ProcessError;
use crate::sys::term::{self, Winsize};

fn sys(what: impl Into<String>) -> impl FnOnce(Errno) -> ProcessError {
    ProcessError::sys(what)
}

/// Connects to the console socket at `path` (a stream socket, else a seqpacket one). A path
/// longer than `sun_path` is reached through `/proc/self/fd` of an O_PATH fd.
pub fn connect_socket(path: &Path) -> Result<OwnedFd, ProcessError> {
    let what = || format!("connecting to the console socket {}", path.display());
    let mut _holder = None;
    let addr = match UnixAddr::new(path) {
        Ok(a) => a,
        Err(Errno::ENAMETOOLONG) => {
            let fd = nix::fcntl::open(
                path,
                OFlag::O_PATH | OFlag::O_CLOEXEC,
                nix::sys::stat::Mode::empty(),
            )
            .map_err(sys(what()))?;
            let a = UnixAddr::new(format!("/proc/self/fd/{}", fd.as_raw_fd()).as_str())
                .map_err(sys(what()))?;
            _holder = Some(fd);
            a
        }
        Err(e) => return Err(sys(what())(e)),
    };
    let mut last = Errno::EPROTOTYPE;
    for typ in [SockType::Stream, SockType::SeqPacket] {
        let sock =
            socket(AddressFamily::Unix, typ, SockFlag::SOCK_CLOEXEC, None).map_err(sys(what()))?;
        match connect(sock.as_raw_fd(), &addr) {
            Ok(()) => return Ok(sock),
            Err(Errno::EPROTOTYPE) => last = Errno::EPROTOTYPE,
            Err(e) => return Err(sys(what())(e)),
        }
    }
    Err(sys(what())(last))
}

/// The request sent with the master fd, as the runtime-spec's console socket section gives it.
pub fn terminal_request(container_id: &str) -> String {
    serde_json::json!({ "type": "terminal", "container": container_id }).to_string()
}

/// Sends `master` over the connected unix socket `sock` (one message, SCM_RIGHTS).
pub fn send_master(
    sock: BorrowedFd,
    master: BorrowedFd,
    container_id: &str,
) -> Result<(), ProcessError> {
    let req = terminal_request(container_id);
    let iov = [IoSlice::new(req.as_bytes())];
    let fds = [master.as_raw_fd()];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    loop {
        match sendmsg::<()>(sock.as_raw_fd(), &iov, &cmsg, MsgFlags::MSG_NOSIGNAL, None) {
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(sys("sending the pty master over the console socket")(e)),
            Ok(_) => return Ok(()),
        }
    }
}

/// Receives one fd sent with SCM_RIGHTS on `sock` (husk as its own console-socket receiver).
pub fn recv_master(sock: BorrowedFd) -> Result<OwnedFd, ProcessError> {
    let mut buf = [0u8; 4096];
    let mut iov = [IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let msg = loop {
        match recvmsg::<()>(
            sock.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        ) {
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(sys("receiving the pty master")(e)),
            Ok(m) => break m,
        }
    };
    let cmsgs = msg
        .cmsgs()
        .map_err(sys("reading the pty master's control message"))?;
    for c in cmsgs {
        if let ControlMessageOwned::ScmRights(fds) = c {
            let mut owned: Vec<OwnedFd> = fds
                .into_iter()
                .map(crate::sys::seccomp::adopt_received_fd)
                .collect();
            if let Some(first) = (!owned.is_empty()).then(|| owned.remove(0)) {
                return Ok(first);
            }
        }
    }
    Err(ProcessError::Protocol(
        "the container's process exited before sending its pty master".into(),
    ))
}

/// A pty opened in the current mount namespace's `/dev/ptmx` (the container's devpts once
/// init has pivoted, or exec has joined the container's mount namespace).
pub struct Pty {
    pub master: OwnedFd,
    pub slave: OwnedFd,
    /// `/dev/pts/N`, as the process inside sees it.
    pub path: PathBuf,
}

impl Pty {
    /// Opens `/dev/ptmx`, unlocks the slave and opens it through TIOCGPTPEER; applies
    /// `size` (`consoleSize`) when given.
    pub fn open(size: Option<(u16, u16)>) -> Result<Pty, ProcessError> {
        let master = nix::pty::posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)
            .map_err(sys("opening /dev/ptmx"))?;
        nix::pty::unlockpt(&master).map_err(sys("unlocking the pty slave"))?;
        let slave =
            term::open_pty_peer(&master).map_err(sys("opening the pty slave (TIOCGPTPEER)"))?;
        let n = term::pty_number(&master).map_err(sys("reading the pty number (TIOCGPTN)"))?;
        let master = OwnedFd::from(master);
        if let Some((height, width)) = size {
            let ws = Winsize {
                ws_row: height,
                ws_col: width,
                ws_xpixel: 0,
                ws_ypixel: 0,
            };
            term::set_winsize(&master, &ws)
                .map_err(sys(format!("setting process.consoleSize {height}x{width}")))?;
        }
        Ok(Pty {
            master,
            slave,
            path: PathBuf::from(format!("/dev/pts/{n}")),
        })
    }
}

/// `process.consoleSize` as (height, width); None when absent or when either is 0 (runc
/// leaves the pty's size alone then).
pub fn console_size(p: &oci_spec::runtime::Process) -> Option<(u16, u16)> {
    let b = p.console_size()?;
    let clamp = |v: u64| u16::try_from(v).unwrap_or(u16::MAX);
    (b.height() != 0 && b.width() != 0).then(|| (clamp(b.height()), clamp(b.width())))
}

/// Makes `slave` the caller's stdin, stdout, stderr and controlling terminal (the caller is a
/// session leader). The slave is given to `uid` first (keeping its group, as runc does), so a
/// non-root process can reopen its own terminal.
pub fn become_stdio(slave: OwnedFd, uid: Uid) -> Result<(), ProcessError> {
    if uid != Uid::from_raw(0) {
        match nix::unistd::fchown(&slave, Some(uid), None) {
            // Not mapped in this user namespace, or a read-only /dev: leave it as it is.
            Ok(()) | Err(Errno::EINVAL | Errno::EPERM | Errno::EROFS) => {}
            Err(e) => return Err(sys(format!("giving the pty to uid {uid}"))(e)),
        }
    }
    nix::unistd::dup2_stdin(&slave).map_err(sys("dup2 of the pty onto stdin"))?;
    nix::unistd::dup2_stdout(&slave).map_err(sys("dup2 of the pty onto stdout"))?;
    nix::unistd::dup2_stderr(&slave).map_err(sys("dup2 of the pty onto stderr"))?;
    drop(slave);
    term::set_controlling_terminal(std::io::stdin())
        .map_err(sys("making the pty the controlling terminal (TIOCSCTTY)"))
}

/// Sets up the terminal of a process that is about to exec, inside the container (the caller
/// is a session leader): a new pty in the current `/dev/ptmx`, sized to `size`;
/// `mount_console` gets its slave's path (`/dev/console` for a container's init); the master
/// goes over `socket` (the caller closes the socket); the slave becomes stdin, stdout, stderr
/// and the controlling terminal. runc's order.
pub fn setup(
    socket: BorrowedFd,
    container_id: &str,
    size: Option<(u16, u16)>,
    uid: Uid,
    mount_console: impl FnOnce(&Path) -> Result<(), ProcessError>,
) -> Result<(), ProcessError> {
    let pty = Pty::open(size)?;
    mount_console(&pty.path)?;
    send_master(socket, pty.master.as_fd(), container_id)?;
    drop(pty.master);
    become_stdio(pty.slave, uid)
}

/// husk's own terminal in raw mode for as long as this lives; restored on drop.
pub struct RawMode {
    saved: Termios,
}

impl RawMode {
    /// Puts stdin in raw mode if it is a terminal (None otherwise).
    pub fn enter() -> Option<RawMode> {
        let stdin = std::io::stdin();
        if !nix::unistd::isatty(&stdin).unwrap_or(false) {
            return None;
        }
        let saved = termios::tcgetattr(&stdin).ok()?;
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        match termios::tcsetattr(&stdin, SetArg::TCSANOW, &raw) {
            Ok(()) => Some(RawMode { saved }),
            Err(e) => {
                tracing::warn!("putting the terminal in raw mode: {e}");
                None
            }
        }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(std::io::stdin(), SetArg::TCSADRAIN, &self.saved);
    }
}

/// Copies between husk's stdin/stdout and a pty master, without threads: the caller polls
/// [`TtyProxy::poll_fds`] and calls [`TtyProxy::on_ready`].
pub struct TtyProxy {
    master: OwnedFd,
    _raw: Option<RawMode>,
    /// Input read from stdin that the master did not take yet.
    pending: Vec<u8>,
    stdin_open: bool,
}

impl TtyProxy {
    /// Proxies `master`: stdin in raw mode if it is a terminal, the pty sized like it.
    pub fn new(master: OwnedFd) -> Result<TtyProxy, ProcessError> {
        let fl =
            fcntl(&master, FcntlArg::F_GETFL).map_err(sys("fcntl(F_GETFL) on the pty master"))?;
        let fl = OFlag::from_bits_retain(fl) | OFlag::O_NONBLOCK;
        fcntl(&master, FcntlArg::F_SETFL(fl)).map_err(sys("making the pty master non-blocking"))?;
        let proxy = TtyProxy {
            master,
            _raw: RawMode::enter(),
            pending: Vec::new(),
            stdin_open: true,
        };
        proxy.resize();
        Ok(proxy)
    }

    /// Gives the container's pty the size of husk's terminal (on start and on SIGWINCH).
    pub fn resize(&self) {
        let ws =
            term::get_winsize(std::io::stdin()).or_else(|_| term::get_winsize(std::io::stdout()));
        if let Ok(ws) = ws {
            if let Err(e) = term::set_winsize(&self.master, &ws) {
                tracing::debug!("resizing the container's pty: {e}");
            }
        }
    }

    /// Whether stdin should be polled for input (open, and nothing is pending).
    pub fn wants_stdin(&self) -> bool {
        self.stdin_open && self.pending.is_empty()
    }

    /// Whether the master should be polled for writability (input is pending).
    pub fn wants_master_out(&self) -> bool {
        !self.pending.is_empty()
    }

    pub fn master(&self) -> BorrowedFd<'_> {
        self.master.as_fd()
    }

    /// stdin is readable: move what it has to the master.
    pub fn on_stdin(&mut self) {
        let mut buf = [0u8; 8192];
        match nix::unistd::read(std::io::stdin(), &mut buf) {
            Ok(0) => self.stdin_open = false,
            Ok(n) => {
                self.pending.extend_from_slice(&buf[..n]);
                self.flush_input();
            }
            Err(Errno::EINTR | Errno::EAGAIN) => {}
            Err(e) => {
                tracing::debug!("reading stdin: {e}");
                self.stdin_open = false;
            }
        }
    }

    /// The master is writable: write pending input.
    pub fn flush_input(&mut self) {
        while !self.pending.is_empty() {
            match nix::unistd::write(&self.master, &self.pending) {
                Ok(n) => {
                    self.pending.drain(..n);
                }
                Err(Errno::EINTR) => continue,
                Err(Errno::EAGAIN) => return,
                Err(e) => {
                    tracing::debug!("writing to the pty: {e}");
                    self.pending.clear();
                    self.stdin_open = false;
                    return;
                }
            }
        }
    }

    /// The master is readable (or hung up): copy its output to stdout. Returns false once
    /// the slave side is gone (EIO) or nothing is left (EAGAIN).
    pub fn on_master(&mut self) -> bool {
        let mut buf = [0u8; 16384];
        loop {
            match nix::unistd::read(&self.master, &mut buf) {
                Ok(0) => return false,
                Ok(n) => write_all_stdout(&buf[..n]),
                Err(Errno::EINTR) => continue,
                Err(Errno::EAGAIN) => return true,
                // EIO: every slave fd is closed.
                Err(_) => return false,
            }
        }
    }

    /// After the process exited: copy what is still buffered in the pty.
    pub fn drain(&mut self) {
        let _ = self.on_master();
    }
}

fn write_all_stdout(mut data: &[u8]) {
    let out = std::io::stdout();
    while !data.is_empty() {
        match nix::unistd::write(&out, data) {
            Ok(0) => return,
            Ok(n) => data = &data[n..],
            Err(Errno::EINTR) => continue,
            Err(Errno::EAGAIN) => {
                let mut fds = [nix::poll::PollFd::new(
                    out.as_fd(),
                    nix::poll::PollFlags::POLLOUT,
                )];
                let _ = nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(100u16));
            }
            Err(e) => {
                tracing::debug!("writing the container's output to stdout: {e}");
                return;
            }
        }
    }
}

/// A connected socketpair for husk to receive its own container's pty master (`run -t` and
/// `exec -t` in the foreground): (husk's end, the end given to the container's process).
pub fn socketpair() -> Result<(OwnedFd, OwnedFd), ProcessError> {
    nix::sys::socket::socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(sys("creating the console socketpair"))
}

/// Checks the combination of terminal, console socket and detach as runc does.
pub fn check_terminal(terminal: bool, console_socket: bool, detach: bool) -> Result<(), String> {
    if detach && terminal && !console_socket {
        return Err(
            "process.terminal is true but no --console-socket was given (cannot allocate a \
                    tty when husk does not stay in the foreground)"
                .into(),
        );
    }
    if console_socket && !terminal {
        return Err(
            "--console-socket was given but the process has no terminal \
                    (process.terminal is false)"
                .into(),
        );
    }
    if console_socket && !detach {
        return Err(
            "--console-socket cannot be used in the foreground: husk is the terminal's \
                    receiver there (use --detach)"
                .into(),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_is_the_spec_json() {
        let v: serde_json::Value = serde_json::from_str(&terminal_request("c1")).expect("json");
        assert_eq!(
            v,
            serde_json::json!({"type": "terminal", "container": "c1"})
        );
    }

    #[test]
    fn master_travels_over_a_socketpair() {
        let (a, b) = socketpair().expect("socketpair");
        let pty = Pty::open(Some((24, 80))).expect("pty");
        send_master(b.as_fd(), pty.master.as_fd(), "x").expect("send");
        let got = recv_master(a.as_fd()).expect("recv");
        let ws = term::get_winsize(&got).expect("winsize");
        assert_eq!((ws.ws_row, ws.ws_col), (24, 80));
        assert!(pty.path.starts_with("/dev/pts/"));
        drop(b);
        assert!(recv_master(a.as_fd()).is_err());
    }

    #[test]
    fn terminal_flag_combinations() {
        assert!(check_terminal(true, true, true).is_ok());
        assert!(check_terminal(false, false, false).is_ok());
        assert!(check_terminal(true, false, false).is_ok());
        assert!(check_terminal(true, false, true).is_err());
        assert!(check_terminal(false, true, true).is_err());
        assert!(check_terminal(true, true, false).is_err());
    }
}
