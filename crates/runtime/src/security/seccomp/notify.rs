//! Handing the seccomp notification listener to the agent at `listenerPath` (runtime-spec
//! "The Container Process State"): one connection, one message, the fd in SCM_RIGHTS.

use std::io::IoSlice;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

use nix::sys::socket::{
    connect, sendmsg, socket, AddressFamily, ControlMessage, MsgFlags, SockFlag, SockType, UnixAddr,
};
use serde_json::{json, Value};

use super::SeccompError;

/// The container process state sent with the listener.
pub fn process_state(pid: i32, metadata: Option<&str>, state_json: &[u8]) -> Value {
    let state: Value = serde_json::from_slice(state_json).unwrap_or(Value::Null);
    let mut v = json!({
        "ociVersion": crate::OCI_VERSION,
        "fds": ["seccompFd"],
        "pid": pid,
        "state": state,
    });
    if let Some(m) = metadata {
        v["metadata"] = Value::String(m.to_string());
    }
    v
}

/// Connect to `path` (a SOCK_STREAM unix socket), send the state with `listener` attached, and
/// close the connection. `state_json` is the container's state (status `creating`).
pub fn send_listener(
    path: &Path,
    metadata: Option<&str>,
    pid: i32,
    state_json: &[u8],
    listener: OwnedFd,
) -> Result<(), SeccompError> {
    let err = |what: &str, reason: String| SeccompError::Listener {
        path: path.to_path_buf(),
        what: what.to_string(),
        reason,
    };
    let body = serde_json::to_vec(&process_state(pid, metadata, state_json))
        .map_err(|e| err("encoding the container process state", e.to_string()))?;
    let addr = UnixAddr::new(path).map_err(|e| err("socket address", e.to_string()))?;
    let sock = socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(|e| err("creating a socket", e.to_string()))?;
    connect(sock.as_raw_fd(), &addr).map_err(|e| err("connecting", e.to_string()))?;
    let fds = [listener.as_raw_fd()];
    let mut sent = 0;
    // The fd goes with the first part only, as the spec requires of several sendmsg calls.
    while sent < body.len() {
        let iov = [IoSlice::new(&body[sent..])];
        let cmsg = [ControlMessage::ScmRights(&fds)];
        let cmsgs: &[ControlMessage] = if sent == 0 { &cmsg } else { &[] };
        match sendmsg::<UnixAddr>(sock.as_raw_fd(), &iov, cmsgs, MsgFlags::MSG_NOSIGNAL, None) {
            Ok(n) => sent += n,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(err("sending the state and the fd", e.to_string())),
        }
    }
    tracing::debug!(path = %path.display(), "seccomp listener sent to the agent");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::IoSliceMut;
    use std::os::unix::net::UnixListener;

    use nix::sys::socket::{recvmsg, ControlMessageOwned};

    #[test]
    fn state_has_the_spec_shape() {
        let v = process_state(42, Some("m"), br#"{"id":"c","status":"creating","pid":42}"#);
        assert_eq!(v["fds"], json!(["seccompFd"]));
        assert_eq!(v["pid"], 42);
        assert_eq!(v["metadata"], "m");
        assert_eq!(v["state"]["status"], "creating");
        assert!(process_state(1, None, b"{}").get("metadata").is_none());
    }

    #[test]
    fn sends_state_and_fd() {
        let dir = std::env::temp_dir().join(format!("husk-notify-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("tmp dir");
        let path = dir.join("agent.sock");
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path).expect("bind");
        let (r, w) = nix::unistd::pipe().expect("pipe");
        drop(r);
        send_listener(&path, Some("meta"), 7, br#"{"status":"creating"}"#, w).expect("send");
        let (conn, _) = listener.accept().expect("accept");
        let mut buf = vec![0u8; 4096];
        let mut iov = [IoSliceMut::new(&mut buf)];
        let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
        let msg = recvmsg::<()>(
            conn.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::empty(),
        )
        .expect("recvmsg");
        let mut got_fd = None;
        for c in msg.cmsgs().expect("cmsgs") {
            if let ControlMessageOwned::ScmRights(fds) = c {
                got_fd = fds.first().copied();
            }
        }
        let n = msg.bytes;
        let fd = got_fd.expect("an fd came along");
        let _ = nix::unistd::close(fd);
        let v: Value = serde_json::from_slice(&buf[..n]).expect("json");
        assert_eq!(v["metadata"], "meta");
        assert_eq!(v["pid"], 7);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
