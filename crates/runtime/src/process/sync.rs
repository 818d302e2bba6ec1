//! The parent <-> init sync channel: a SOCK_SEQPACKET socketpair carrying one typed message
//! per packet (JSON-encoded). The protocol is documented as a table in docs/architecture.md.

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};

use nix::sys::socket::{
    recv, recvmsg, send, sendmsg, socketpair, AddressFamily, ControlMessage, ControlMessageOwned,
    MsgFlags, SockFlag, SockType,
};
use serde::{Deserialize, Serialize};

use super::ProcessError;

/// Every message either side sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Msg {
    /// parent -> init: id maps are written and init is in its cgroup; go on.
    Go,
    /// intermediate -> parent: the pid (in the parent's pid namespace) of the process that
    /// will exec, when init had to fork to enter a pid or time namespace.
    Pid(i32),
    /// init -> parent: the environment exists; run prestart and createRuntime hooks.
    RunHooks,
    /// parent -> init: those hooks succeeded.
    HooksDone,
    /// init -> parent: setup is complete; init now blocks on exec.fifo.
    Ready,
    /// init -> parent: the seccomp filter is installed; its notification listener comes with
    /// this message (SCM_RIGHTS) for the parent to hand to `linux.seccomp.listenerPath`.
    SeccompListener,
    /// either side: this failed; the message carries the whole cause.
    Error(String),
}

const MAX_MSG: usize = 64 * 1024;

#[derive(Debug)]
pub struct Channel(OwnedFd);

impl Channel {
    /// A connected pair (parent end, init end), both close-on-exec.
    pub fn pair() -> Result<(Channel, Channel), ProcessError> {
        let (a, b) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .map_err(|source| ProcessError::Sync {
            what: "creating socketpair".into(),
            source,
        })?;
        Ok((Channel(a), Channel(b)))
    }

    pub fn raw_fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }

    pub fn send(&self, msg: &Msg) -> Result<(), ProcessError> {
        let buf = serde_json::to_vec(msg)
            .map_err(|e| ProcessError::Protocol(format!("encoding {msg:?}: {e}")))?;
        loop {
            match send(self.0.as_raw_fd(), &buf, MsgFlags::MSG_NOSIGNAL) {
                Err(nix::Error::EINTR) => continue,
                Err(source) => {
                    return Err(ProcessError::Sync {
                        what: format!("sending {}", msg.name()),
                        source,
                    })
                }
                Ok(_) => return Ok(()),
            }
        }
    }

    /// The next message, or None when the other side closed its end (exited).
    pub fn recv(&self) -> Result<Option<Msg>, ProcessError> {
        let mut buf = vec![0u8; MAX_MSG];
        let n = loop {
            match recv(self.0.as_raw_fd(), &mut buf, MsgFlags::empty()) {
                Err(nix::Error::EINTR) => continue,
                Err(source) => {
                    return Err(ProcessError::Sync {
                        what: "receiving".into(),
                        source,
                    })
                }
                Ok(n) => break n,
            }
        };
        if n == 0 {
            return Ok(None);
        }
        serde_json::from_slice(&buf[..n])
            .map(Some)
            .map_err(|e| ProcessError::Protocol(format!("decoding a message: {e}")))
    }

    /// Send `msg` with `fd` attached (SCM_RIGHTS), in one packet.
    pub fn send_with_fd(&self, msg: &Msg, fd: BorrowedFd) -> Result<(), ProcessError> {
        let buf = serde_json::to_vec(msg)
            .map_err(|e| ProcessError::Protocol(format!("encoding {msg:?}: {e}")))?;
        let iov = [IoSlice::new(&buf)];
        let fds = [fd.as_raw_fd()];
        let cmsg = [ControlMessage::ScmRights(&fds)];
        loop {
            match sendmsg::<()>(self.0.as_raw_fd(), &iov, &cmsg, MsgFlags::MSG_NOSIGNAL, None) {
                Err(nix::Error::EINTR) => continue,
                Err(source) => {
                    return Err(ProcessError::Sync { what: format!("sending {}", msg.name()), source })
                }
                Ok(_) => return Ok(()),
            }
        }
    }

    /// Like [`Channel::recv`], also returning the fd that came with the message, if any.
    pub fn recv_with_fd(&self) -> Result<(Option<Msg>, Option<OwnedFd>), ProcessError> {
        let mut buf = vec![0u8; MAX_MSG];
        let mut space = nix::cmsg_space!([RawFd; 1]);
        let (n, fds) = {
            let mut iov = [IoSliceMut::new(&mut buf)];
            let msg = loop {
                match recvmsg::<()>(self.0.as_raw_fd(), &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC) {
                    Err(nix::Error::EINTR) => continue,
                    Err(source) => return Err(ProcessError::Sync { what: "receiving".into(), source }),
                    Ok(m) => break m,
                }
            };
            let mut fds = Vec::new();
            if let Ok(cmsgs) = msg.cmsgs() {
                for c in cmsgs {
                    if let ControlMessageOwned::ScmRights(v) = c {
                        fds.extend(v);
                    }
                }
            }
            (msg.bytes, fds)
        };
        let mut fds = fds.into_iter().map(crate::sys::seccomp::adopt_received_fd);
        let fd = fds.next();
        if n == 0 {
            return Ok((None, fd));
        }
        let msg = serde_json::from_slice(&buf[..n])
            .map_err(|e| ProcessError::Protocol(format!("decoding a message: {e}")))?;
        Ok((Some(msg), fd))
    }

    /// Waits for exactly `want`; an Error message becomes ProcessError::Init.
    pub fn expect(&self, want: &Msg) -> Result<(), ProcessError> {
        match self.recv()? {
            Some(m) if &m == want => Ok(()),
            Some(Msg::Error(e)) => Err(ProcessError::Init(e)),
            Some(other) => Err(ProcessError::Protocol(format!(
                "expected {}, got {}",
                want.name(),
                other.name()
            ))),
            None => Err(ProcessError::PeerGone(want.name())),
        }
    }
}

impl Msg {
    pub fn name(&self) -> &'static str {
        match self {
            Msg::Go => "Go",
            Msg::Pid(_) => "Pid",
            Msg::RunHooks => "RunHooks",
            Msg::HooksDone => "HooksDone",
            Msg::Ready => "Ready",
            Msg::SeccompListener => "SeccompListener",
            Msg::Error(_) => "Error",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_one_per_packet() {
        let (a, b) = Channel::pair().expect("socketpair");
        for m in [
            Msg::Go,
            Msg::Pid(42),
            Msg::RunHooks,
            Msg::HooksDone,
            Msg::Ready,
            Msg::Error("mounting proc: EPERM".into()),
        ] {
            a.send(&m).expect("send");
            assert_eq!(b.recv().expect("recv"), Some(m));
        }
        drop(a);
        assert_eq!(b.recv().expect("recv"), None);
    }

    #[test]
    fn an_fd_travels_with_a_message() {
        let (a, b) = Channel::pair().expect("socketpair");
        let (r, w) = nix::unistd::pipe().expect("pipe");
        a.send_with_fd(&Msg::SeccompListener, std::os::fd::AsFd::as_fd(&w)).expect("send");
        drop(w);
        let (msg, fd) = b.recv_with_fd().expect("recv");
        assert_eq!(msg, Some(Msg::SeccompListener));
        let fd = fd.expect("fd");
        nix::unistd::write(&fd, b"x").expect("write through the received fd");
        let mut buf = [0u8; 1];
        assert_eq!(nix::unistd::read(&r, &mut buf).expect("read"), 1);
        a.send(&Msg::Ready).expect("send");
        assert_eq!(b.recv_with_fd().expect("recv").0, Some(Msg::Ready));
    }

    #[test]
    fn expect_reports_the_peer_error() {
        let (a, b) = Channel::pair().expect("socketpair");
        a.send(&Msg::Error("boom".into())).expect("send");
        match b.expect(&Msg::Ready) {
            Err(ProcessError::Init(m)) => assert_eq!(m, "boom"),
            other => panic!("unexpected {other:?}"),
        }
    }
}
