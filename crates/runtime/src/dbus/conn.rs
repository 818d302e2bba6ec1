//! A blocking D-Bus connection over a unix socket: the bus address, EXTERNAL authentication,
//! `Hello`, method calls matched to their replies, and waiting for a signal. Single-threaded:
//! nothing here starts a thread.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use super::message::{self, Message, ERROR, METHOD_RETURN, SIGNAL};
use super::wire::Value;
use super::DbusError;

const BUS_NAME: &str = "org.freedesktop.DBus";
const BUS_PATH: &str = "/org/freedesktop/DBus";

/// Which bus: the system bus (root) or the calling user's session bus (rootless).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BusKind {
    System,
    User,
}

/// Where a bus listens: `unix:path=...` and `unix:abstract=...` entries of a D-Bus address
/// (`;`-separated, values %-escaped), in order.
pub fn parse_address(addr: &str) -> Vec<(bool, String)> {
    let mut out = Vec::new();
    for entry in addr.split(';') {
        let Some(params) = entry.strip_prefix("unix:") else {
            continue;
        };
        for kv in params.split(',') {
            match kv.split_once('=') {
                Some(("path", v)) => out.push((false, unescape(v))),
                Some(("abstract", v)) => out.push((true, unescape(v))),
                _ => {}
            }
        }
    }
    out
}

fn unescape(v: &str) -> String {
    let bytes = v.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            if let Some(n) = v
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(n);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The address of `kind`'s bus, from the environment as sd-bus reads it.
pub fn bus_address(kind: BusKind) -> Result<String, DbusError> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    match kind {
        BusKind::System => Ok(env("DBUS_SYSTEM_BUS_ADDRESS")
            .unwrap_or_else(|| "unix:path=/run/dbus/system_bus_socket".into())),
        BusKind::User => env("DBUS_SESSION_BUS_ADDRESS")
            .or_else(|| env("XDG_RUNTIME_DIR").map(|d| format!("unix:path={d}/bus")))
            .ok_or_else(|| {
                DbusError::Connect(
                    "the user's bus: neither DBUS_SESSION_BUS_ADDRESS nor XDG_RUNTIME_DIR is set"
                        .into(),
                )
            }),
    }
}

/// The uid the bus sees for us: inside a user namespace, the outside uid that ours maps to
/// (the bus checks EXTERNAL against SO_PEERCRED, which reports it in the bus's namespace).
pub fn outside_uid(uid: u32, uid_map: &str) -> u32 {
    for line in uid_map.lines() {
        let f: Vec<u64> = line
            .split_whitespace()
            .filter_map(|n| n.parse().ok())
            .collect();
        if let [inside, outside, count] = f[..] {
            let uid = u64::from(uid);
            if uid >= inside && uid < inside + count {
                return u32::try_from(outside + (uid - inside)).unwrap_or(uid as u32);
            }
        }
    }
    uid
}

fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

/// An authenticated connection that has said `Hello`.
pub struct Connection {
    sock: UnixStream,
    serial: u32,
    rbuf: Vec<u8>,
    /// Signals read while waiting for a reply, for [`Connection::wait_signal`].
    signals: VecDeque<Message>,
    /// How long a reply or signal may take.
    pub timeout: Duration,
    address: String,
}

impl Connection {
    /// Connect to `kind`'s bus and authenticate.
    pub fn open(kind: BusKind) -> Result<Connection, DbusError> {
        let address = bus_address(kind)?;
        let uid = nix::unistd::geteuid().as_raw();
        let map = std::fs::read_to_string("/proc/self/uid_map").unwrap_or_default();
        Connection::connect(&address, outside_uid(uid, &map))
    }

    /// Connect to the first reachable socket of `address`, authenticate as `uid` and send
    /// `Hello` (its reply is read with the first call's).
    pub fn connect(address: &str, uid: u32) -> Result<Connection, DbusError> {
        let mut last = None;
        let mut sock = None;
        for (abstract_ns, path) in parse_address(address) {
            let r = if abstract_ns {
                use std::os::linux::net::SocketAddrExt;
                std::os::unix::net::SocketAddr::from_abstract_name(path.as_bytes())
                    .and_then(|a| UnixStream::connect_addr(&a))
            } else {
                UnixStream::connect(&path)
            };
            match r {
                Ok(s) => {
                    sock = Some(s);
                    break;
                }
                Err(e) => last = Some(format!("{path}: {}", crate::cgroups::io_errno(&e))),
            }
        }
        let sock = sock.ok_or_else(|| {
            DbusError::Connect(
                last.unwrap_or_else(|| format!("no unix socket in address {address:?}")),
            )
        })?;
        let mut c = Connection {
            sock,
            serial: 0,
            rbuf: Vec::new(),
            signals: VecDeque::new(),
            timeout: Duration::from_secs(30),
            address: address.to_string(),
        };
        c.authenticate(uid)?;
        c.send(BUS_NAME, BUS_PATH, BUS_NAME, "Hello", &[])?;
        Ok(c)
    }

    fn io(&self, what: &str, e: std::io::Error) -> DbusError {
        DbusError::Io(format!(
            "{what} on {}: {}",
            self.address,
            crate::cgroups::io_errno(&e)
        ))
    }

    fn authenticate(&mut self, uid: u32) -> Result<(), DbusError> {
        let hello = format!("\0AUTH EXTERNAL {}\r\n", hex(&uid.to_string()));
        self.sock
            .write_all(hello.as_bytes())
            .map_err(|e| self.io("authenticating", e))?;
        let deadline = Instant::now() + self.timeout;
        let line = loop {
            if let Some(end) = self.rbuf.windows(2).position(|w| w == b"\r\n") {
                let line = String::from_utf8_lossy(&self.rbuf[..end]).into_owned();
                self.rbuf.drain(..end + 2);
                break line;
            }
            if self.rbuf.len() > 4096 {
                return Err(DbusError::Auth("the bus sent an overlong line".into()));
            }
            self.fill(deadline)?;
        };
        if !line.starts_with("OK ") {
            return Err(DbusError::Auth(format!(
                "EXTERNAL as uid {uid} refused: {line:?}"
            )));
        }
        self.sock
            .write_all(b"BEGIN\r\n")
            .map_err(|e| self.io("authenticating", e))
    }

    /// Read more bytes, failing at `deadline`.
    fn fill(&mut self, deadline: Instant) -> Result<(), DbusError> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(DbusError::Timeout(self.timeout));
        }
        self.sock
            .set_read_timeout(Some(left))
            .map_err(|e| self.io("setting a timeout", e))?;
        let mut chunk = [0u8; 8192];
        match self.sock.read(&mut chunk) {
            Ok(0) => Err(DbusError::Io(format!(
                "{} closed the connection",
                self.address
            ))),
            Ok(n) => {
                self.rbuf.extend_from_slice(&chunk[..n]);
                Ok(())
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                Err(DbusError::Timeout(self.timeout))
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => Ok(()),
            Err(e) => Err(self.io("reading", e)),
        }
    }

    fn next_message(&mut self, deadline: Instant) -> Result<Message, DbusError> {
        loop {
            if let Some(len) = message::frame_len(&self.rbuf)? {
                if self.rbuf.len() >= len {
                    let m = message::parse(&self.rbuf[..len]);
                    self.rbuf.drain(..len);
                    return m;
                }
            }
            self.fill(deadline)?;
        }
    }

    /// Send a method call without waiting; returns its serial.
    pub fn send(
        &mut self,
        destination: &str,
        path: &str,
        interface: &str,
        member: &str,
        body: &[Value],
    ) -> Result<u32, DbusError> {
        self.serial = self.serial.wrapping_add(1).max(1);
        let bytes = message::method_call(self.serial, destination, path, interface, member, body);
        self.sock
            .write_all(&bytes)
            .map_err(|e| self.io(&format!("sending {member}"), e))?;
        Ok(self.serial)
    }

    /// Wait for the reply to `serial`: its body, or the error it carries.
    pub fn reply(&mut self, serial: u32) -> Result<Vec<Value>, DbusError> {
        let deadline = Instant::now() + self.timeout;
        loop {
            let m = self.next_message(deadline)?;
            match m.kind {
                SIGNAL => self.signals.push_back(m),
                METHOD_RETURN if m.reply_serial == Some(serial) => return Ok(m.body),
                ERROR if m.reply_serial == Some(serial) => return Err(m.into_error()),
                _ => {}
            }
        }
    }

    /// Call and wait for the reply.
    pub fn call(
        &mut self,
        destination: &str,
        path: &str,
        interface: &str,
        member: &str,
        body: &[Value],
    ) -> Result<Vec<Value>, DbusError> {
        let serial = self.send(destination, path, interface, member, body)?;
        self.reply(serial)
    }

    /// Ask the bus to route the signals `rule` matches to us (the reply is not awaited; it
    /// arrives before any signal it lets through).
    pub fn add_match(&mut self, rule: &str) -> Result<u32, DbusError> {
        self.send(
            BUS_NAME,
            BUS_PATH,
            BUS_NAME,
            "AddMatch",
            &[Value::str(rule)],
        )
    }

    /// The first signal (already received or to come) for which `want` returns `Some`.
    pub fn wait_signal<T>(
        &mut self,
        mut want: impl FnMut(&Message) -> Option<T>,
    ) -> Result<T, DbusError> {
        while let Some(m) = self.signals.pop_front() {
            if let Some(t) = want(&m) {
                return Ok(t);
            }
        }
        let deadline = Instant::now() + self.timeout;
        loop {
            let m = self.next_message(deadline)?;
            if m.kind == SIGNAL {
                if let Some(t) = want(&m) {
                    return Ok(t);
                }
            } else if m.kind == ERROR {
                // A failed AddMatch (or another unawaited call) must not leave us waiting.
                return Err(m.into_error());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        assert_eq!(
            parse_address("unix:path=/run/dbus/system_bus_socket"),
            vec![(false, "/run/dbus/system_bus_socket".to_string())]
        );
        assert_eq!(
            parse_address("tcp:host=x;unix:abstract=/tmp/dbus-X,guid=ab;unix:path=/a%20b"),
            vec![
                (true, "/tmp/dbus-X".to_string()),
                (false, "/a b".to_string())
            ]
        );
        assert!(parse_address("tcp:host=localhost,port=1").is_empty());
    }

    #[test]
    fn uid_outside_a_user_namespace() {
        assert_eq!(outside_uid(0, "         0          0 4294967295\n"), 0);
        assert_eq!(outside_uid(0, "0 1000 1\n1 100000 65536\n"), 1000);
        assert_eq!(outside_uid(5, "0 1000 1\n1 100000 65536\n"), 100004);
        assert_eq!(outside_uid(7, ""), 7);
        assert_eq!(hex("1000"), "31303030");
    }
}
