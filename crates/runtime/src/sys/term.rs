//! Terminal ioctls nix does not wrap safely (owner: process/console): the pty's peer and
//! number, window size, and the controlling terminal.
//!
//! Opening `/dev/ptmx`, unlocking the slave, termios and SCM_RIGHTS are safe in nix already.

use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};

use nix::errno::Errno;

/// `struct winsize`: rows, columns (and the unused pixel sizes).
pub type Winsize = libc::winsize;

/// `ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC)`: opens the slave of the pty
/// `master` without going through a path (Linux 4.13), so nothing in the container's /dev can
/// redirect the open.
pub fn open_pty_peer<Fd: AsFd>(master: Fd) -> Result<OwnedFd, Errno> {
    let flags = libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC;
    // SAFETY: TIOCGPTPEER takes its flags by value and touches no memory of ours; the fd is
    // borrowed and valid for the call.
    let fd = unsafe { libc::ioctl(master.as_fd().as_raw_fd(), libc::TIOCGPTPEER, flags) };
    let fd = Errno::result(fd)?;
    // SAFETY: on success the kernel returned a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `ioctl(master, TIOCGPTN)`: the number N of the slave `/dev/pts/N` in the master's devpts.
pub fn pty_number<Fd: AsFd>(master: Fd) -> Result<u32, Errno> {
    let mut n: libc::c_uint = 0;
    // SAFETY: TIOCGPTN writes one unsigned int to the pointer, which points to `n` and is
    // valid for the call.
    let ret = unsafe {
        libc::ioctl(
            master.as_fd().as_raw_fd(),
            libc::TIOCGPTN,
            &mut n as *mut libc::c_uint,
        )
    };
    Errno::result(ret).map(|_| n)
}

/// `ioctl(fd, TIOCGWINSZ)`: the terminal's window size.
pub fn get_winsize<Fd: AsFd>(fd: Fd) -> Result<Winsize, Errno> {
    let mut ws = Winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one `struct winsize` to the pointer, which points to `ws` and
    // is valid for the call.
    let ret = unsafe {
        libc::ioctl(
            fd.as_fd().as_raw_fd(),
            libc::TIOCGWINSZ,
            &mut ws as *mut Winsize,
        )
    };
    Errno::result(ret).map(|_| ws)
}

/// `ioctl(fd, TIOCSWINSZ)`: sets the terminal's window size (the kernel sends SIGWINCH to its
/// foreground process group when it changes).
pub fn set_winsize<Fd: AsFd>(fd: Fd, ws: &Winsize) -> Result<(), Errno> {
    // SAFETY: TIOCSWINSZ reads one `struct winsize` from the pointer, which points to `ws` and
    // is valid for the call.
    let ret = unsafe {
        libc::ioctl(
            fd.as_fd().as_raw_fd(),
            libc::TIOCSWINSZ,
            ws as *const Winsize,
        )
    };
    Errno::result(ret).map(drop)
}

/// `ioctl(fd, TIOCSCTTY, 0)`: makes the terminal the caller's controlling terminal (the caller
/// must be a session leader without one).
pub fn set_controlling_terminal<Fd: AsFd>(fd: Fd) -> Result<(), Errno> {
    // SAFETY: TIOCSCTTY takes an integer argument (0: do not steal it from another session)
    // and touches no memory of ours.
    let ret = unsafe { libc::ioctl(fd.as_fd().as_raw_fd(), libc::TIOCSCTTY, 0 as libc::c_int) };
    Errno::result(ret).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::fcntl::OFlag;

    #[test]
    fn pty_peer_number_and_window_size() {
        let master = nix::pty::posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)
            .expect("posix_openpt");
        nix::pty::unlockpt(&master).expect("unlockpt");
        let slave = open_pty_peer(&master).expect("TIOCGPTPEER");
        let n = pty_number(&master).expect("TIOCGPTN");
        let name = nix::pty::ptsname_r(&master).expect("ptsname_r");
        assert_eq!(name, format!("/dev/pts/{n}"));
        let ws = Winsize {
            ws_row: 33,
            ws_col: 111,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        set_winsize(&master, &ws).expect("TIOCSWINSZ");
        let got = get_winsize(&slave).expect("TIOCGWINSZ");
        assert_eq!((got.ws_row, got.ws_col), (33, 111));
        assert!(nix::unistd::isatty(&slave).unwrap_or(false));
    }
}
