//! husk's own small D-Bus client, for the systemd cgroup driver: the wire format, messages,
//! and a blocking single-threaded connection (EXTERNAL authentication, calls, signals). Why
//! not zbus or the dbus crate: docs/cgroups.md ("The D-Bus client") has the figures.

mod conn;
mod message;
pub mod wire;

pub use conn::{bus_address, outside_uid, BusKind, Connection};
pub use message::Message;
pub use wire::Value;

/// Errors of the D-Bus client; each says which bus or call.
#[derive(Debug, thiserror::Error)]
pub enum DbusError {
    #[error("connecting to the D-Bus {0}")]
    Connect(String),
    #[error("D-Bus authentication: {0}")]
    Auth(String),
    #[error("D-Bus: {0}")]
    Io(String),
    #[error("D-Bus: malformed message: {0}")]
    Malformed(String),
    #[error("D-Bus: no answer within {}s", .0.as_secs())]
    Timeout(std::time::Duration),
    #[error("{text}")]
    Remote { name: String, text: String },
}
