//! `linux.netDevices`: moves host network interfaces into the container's network namespace
//! (optionally renamed, `%d` templates allowed), re-adds their permanent global addresses
//! (the kernel drops addresses on a move) and sets them up. Done by `create` after clone,
//! before init is let go. Nothing is moved back on delete: the spec forbids it (the kernel
//! returns physical devices to the initial namespace and destroys virtual ones).

use std::collections::{BTreeMap, HashSet};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;

use nix::sched::CloneFlags;
use nix::sys::socket::{
    self, AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType,
};
use oci_spec::runtime::{LinuxNamespaceType, LinuxNetDevice, Spec};

use super::netlink::{self as nl, Msg};
use super::ExtrasError;
use crate::namespaces::NsPlan;

fn invalid(msg: String) -> ExtrasError {
    ExtrasError::Invalid(format!("linux.netDevices: {msg}"))
}

/// A name the kernel accepts for an interface: 1 to 15 bytes, no `/`, `:` or whitespace,
/// not `.` or `..`.
pub fn valid_ifname(name: &str) -> bool {
    !name.is_empty()
        && name.len() < 16
        && name != "."
        && name != ".."
        && !name
            .bytes()
            .any(|b| b == b'/' || b == b':' || b.is_ascii_whitespace() || b == 0)
}

/// The devices in a stable order (the map's order is not).
fn devices(spec: &Spec) -> BTreeMap<&String, &LinuxNetDevice> {
    spec.linux()
        .as_ref()
        .and_then(|l| l.net_devices().as_ref())
        .map(|d| d.iter().collect())
        .unwrap_or_default()
}

/// Checks before any side effect: a network namespace of the container's own, valid names,
/// no two devices with the same name inside, each host device present.
pub fn validate(spec: &Spec) -> Result<(), ExtrasError> {
    let devs = devices(spec);
    if devs.is_empty() {
        return Ok(());
    }
    let netns = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .and_then(|ns| {
            ns.iter()
                .find(|n| n.typ() == LinuxNamespaceType::Network)
                .cloned()
        });
    match netns {
        None => {
            return Err(invalid(
                "moving devices needs a network namespace of the container's own, and the \
                 config has none (it would use the host's)"
                    .into(),
            ))
        }
        Some(n) => {
            if let Some(p) = n.path() {
                if same_ns(p, "/proc/self/ns/net") {
                    return Err(invalid(format!(
                        "the network namespace {} is the host's",
                        p.display()
                    )));
                }
            }
        }
    }
    let mut inside = HashSet::new();
    for (host, dev) in devs {
        if !valid_ifname(host) {
            return Err(invalid(format!("{host:?} is not a valid interface name")));
        }
        let name = dev
            .name()
            .as_deref()
            .filter(|n| !n.is_empty())
            .unwrap_or(host);
        if !valid_ifname(name) {
            return Err(invalid(format!(
                "{host}.name {name:?} is not a valid interface name"
            )));
        }
        if !name.contains("%d") && !inside.insert(name.to_string()) {
            return Err(invalid(format!(
                "two devices would be named {name:?} in the container"
            )));
        }
        let mut rtnl = Rtnl::open()?;
        if link_by_name(&mut rtnl, host).is_err() {
            return Err(invalid(format!("the host has no network device {host:?}")));
        }
    }
    Ok(())
}

fn same_ns(a: &std::path::Path, b: &str) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        _ => false,
    }
}

/// An rtnetlink socket with a sequence counter.
struct Rtnl {
    fd: OwnedFd,
    seq: u32,
}

impl Rtnl {
    fn open() -> Result<Rtnl, ExtrasError> {
        let fd = socket::socket(
            AddressFamily::Netlink,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC,
            SockProtocol::NetlinkRoute,
        )
        .map_err(ExtrasError::sys(
            "linux.netDevices: opening a netlink socket",
        ))?;
        Ok(Rtnl { fd, seq: 0 })
    }

    fn next_seq(&mut self) -> u32 {
        self.seq += 1;
        self.seq
    }

    fn send(&self, msg: &[u8], what: &str) -> Result<(), ExtrasError> {
        socket::sendto(
            self.fd.as_raw_fd(),
            msg,
            &NetlinkAddr::new(0, 0),
            MsgFlags::empty(),
        )
        .map(drop)
        .map_err(ExtrasError::sys(what.to_string()))
    }

    /// Sends a request and collects the payloads of the replies of type `want` until the ACK
    /// (or NLMSG_DONE of a dump). An NLMSG_ERROR with an errno is that errno.
    fn request(&mut self, msg: Msg, want: u16, what: &str) -> Result<Vec<Vec<u8>>, ExtrasError> {
        let seq = self.seq;
        self.send(&msg.finish(), what)?;
        let mut out = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = socket::recv(self.fd.as_raw_fd(), &mut buf, MsgFlags::empty())
                .map_err(ExtrasError::sys(what.to_string()))?;
            let replies = nl::parse(&buf[..n]).ok_or_else(|| ExtrasError::Sys {
                what: format!("{what}: malformed netlink reply"),
                source: nix::Error::EPROTO,
            })?;
            for r in replies {
                if r.seq != seq {
                    continue;
                }
                match r.typ {
                    nl::NLMSG_ERROR => {
                        let code = nl::error_code(r.payload).unwrap_or(-libc::EPROTO);
                        if code == 0 {
                            return Ok(out);
                        }
                        return Err(ExtrasError::Sys {
                            what: what.to_string(),
                            source: nix::Error::from_raw(-code),
                        });
                    }
                    nl::NLMSG_DONE => return Ok(out),
                    t if t == want => out.push(r.payload.to_vec()),
                    _ => {}
                }
            }
        }
    }
}

/// Opens a netlink socket inside the network namespace `ns` (the calling process enters it
/// and comes back; it is single-threaded).
fn rtnl_in(ns: BorrowedFd) -> Result<Rtnl, ExtrasError> {
    let home = std::fs::File::open("/proc/self/ns/net").map_err(|e| ExtrasError::Sys {
        what: "linux.netDevices: opening /proc/self/ns/net".into(),
        source: crate::namespaces::io_errno(&e),
    })?;
    nix::sched::setns(ns, CloneFlags::CLONE_NEWNET).map_err(ExtrasError::sys(
        "linux.netDevices: entering the container's network namespace",
    ))?;
    let sock = Rtnl::open();
    nix::sched::setns(home.as_fd(), CloneFlags::CLONE_NEWNET).map_err(ExtrasError::sys(
        "linux.netDevices: returning to the runtime's network namespace",
    ))?;
    sock
}

/// The container's network namespace as `create` sees it after clone.
fn netns_path(plan: &NsPlan, child: i32) -> Result<PathBuf, ExtrasError> {
    if plan.clone_flags.contains(CloneFlags::CLONE_NEWNET) {
        return Ok(PathBuf::from(format!("/proc/{child}/ns/net")));
    }
    if let Some((_, p)) = plan
        .joins
        .iter()
        .find(|(t, _)| *t == LinuxNamespaceType::Network)
    {
        return Ok(p.clone());
    }
    Err(invalid(
        "moving devices into a network namespace that init creates after joining a user \
         namespace by path is not supported"
            .into(),
    ))
}

/// Moves every device of `linux.netDevices` into the network namespace of the container
/// whose init is `child`, renamed as asked, with its permanent global addresses, and up.
pub fn move_into(spec: &Spec, plan: &NsPlan, child: i32) -> Result<(), ExtrasError> {
    let devs = devices(spec);
    if devs.is_empty() {
        return Ok(());
    }
    let path = netns_path(plan, child)?;
    let ns = std::fs::File::open(&path).map_err(|e| ExtrasError::Sys {
        what: format!("linux.netDevices: opening {}", path.display()),
        source: crate::namespaces::io_errno(&e),
    })?;
    let mut host = Rtnl::open()?;
    let mut inside = rtnl_in(ns.as_fd())?;
    let all_addrs = dump_addrs(&mut host)?;
    for (host_name, dev) in devs {
        let name = dev
            .name()
            .as_deref()
            .filter(|n| !n.is_empty())
            .unwrap_or(host_name);
        let what = |step: &str| format!("linux.netDevices: {host_name} (as {name}): {step}");
        let index = link_by_name(&mut host, host_name).map_err(|e| {
            ExtrasError::Invalid(format!("{}: {e}", what("looking up the host device")))
        })?;
        let addrs: Vec<&nl::Addr> = all_addrs
            .iter()
            .filter(|a| {
                a.index == index as u32
                    && a.flags & nl::IFA_F_PERMANENT != 0
                    && a.scope == nl::RT_SCOPE_UNIVERSE
            })
            .collect();
        // The spec's error for a name taken inside, before anything moves (the kernel would
        // move the device first and fail the rename after).
        if !name.contains("%d") && link_by_name(&mut inside, name).is_ok() {
            return Err(invalid(format!(
                "{host_name}: a device named {name:?} already exists in the container's network namespace"
            )));
        }
        let seq = host.next_seq();
        let mut msg = Msg::new(nl::RTM_NEWLINK, nl::NLM_F_REQUEST | nl::NLM_F_ACK, seq)
            .ifinfo(index, 0, 0)
            .attr(nl::IFLA_NET_NS_FD, &(ns.as_raw_fd() as u32).to_ne_bytes());
        if name != host_name {
            msg = msg.attr_str(nl::IFLA_IFNAME, name);
        }
        host.request(
            msg,
            0,
            &what("moving it into the container's network namespace"),
        )?;
        // The kernel keeps the index unless the namespace already uses it.
        let new_index = find_link(&mut inside, index, name).map_err(|e| {
            ExtrasError::Invalid(format!("{}: {e}", what("finding it after the move")))
        })?;
        for a in addrs {
            let seq = inside.next_seq();
            let flags = nl::NLM_F_REQUEST | nl::NLM_F_ACK | nl::NLM_F_CREATE | nl::NLM_F_EXCL;
            let mut msg = Msg::new(nl::RTM_NEWADDR, flags, seq).ifaddr(
                a.family,
                a.prefixlen,
                (a.flags & 0xff) as u8,
                a.scope,
                new_index as u32,
            );
            for (t, d) in &a.attrs {
                msg = msg.attr(*t, d);
            }
            msg = msg.attr(nl::IFA_FLAGS, &a.flags.to_ne_bytes());
            inside.request(msg, 0, &what("restoring an address"))?;
        }
        let seq = inside.next_seq();
        let msg = Msg::new(nl::RTM_NEWLINK, nl::NLM_F_REQUEST | nl::NLM_F_ACK, seq).ifinfo(
            new_index,
            nl::IFF_UP,
            nl::IFF_UP,
        );
        inside.request(msg, 0, &what("setting it up"))?;
        tracing::debug!("moved network device {host_name} into the container as {name}");
    }
    Ok(())
}

fn dump_addrs(s: &mut Rtnl) -> Result<Vec<nl::Addr>, ExtrasError> {
    let seq = s.next_seq();
    let msg =
        Msg::new(nl::RTM_GETADDR, nl::NLM_F_REQUEST | nl::NLM_F_DUMP, seq).ifaddr(0, 0, 0, 0, 0);
    let replies = s.request(
        msg,
        nl::RTM_NEWADDR,
        "linux.netDevices: listing the host's addresses",
    )?;
    Ok(replies.iter().filter_map(|p| nl::parse_addr(p)).collect())
}

/// The index of the moved device inside: by its old index, else by name.
fn find_link(s: &mut Rtnl, index: i32, name: &str) -> Result<i32, String> {
    let seq = s.next_seq();
    let msg = Msg::new(nl::RTM_GETLINK, nl::NLM_F_REQUEST | nl::NLM_F_ACK, seq).ifinfo(index, 0, 0);
    if let Ok(r) = s.request(msg, nl::RTM_NEWLINK, "getlink") {
        if let Some(i) = r.first().and_then(|p| nl::link_index(p)) {
            return Ok(i);
        }
    }
    if name.contains("%d") {
        return Err("the device is not at its old index and its name is a template".into());
    }
    link_by_name(s, name)
}

/// The index of the device named `name` in the socket's network namespace.
fn link_by_name(s: &mut Rtnl, name: &str) -> Result<i32, String> {
    let seq = s.next_seq();
    let msg = Msg::new(nl::RTM_GETLINK, nl::NLM_F_REQUEST | nl::NLM_F_ACK, seq)
        .ifinfo(0, 0, 0)
        .attr_str(nl::IFLA_IFNAME, name);
    let r = s
        .request(msg, nl::RTM_NEWLINK, "getlink")
        .map_err(|e| e.to_string())?;
    r.first()
        .and_then(|p| nl::link_index(p))
        .ok_or_else(|| format!("no device {name:?} in the container's network namespace"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interface_names() {
        for ok in [
            "eth0",
            "veth-a.1",
            "container_eth0",
            "net%d",
            "a23456789012345",
        ] {
            assert!(valid_ifname(ok), "{ok}");
        }
        for bad in ["", ".", "..", "a/b", "a:b", "a b", "a234567890123456"] {
            assert!(!valid_ifname(bad), "{bad}");
        }
    }
}
