//! A minimal rtnetlink message builder and parser (pure, no I/O): just what moving a network
//! device into a container needs (RTM_GETLINK, RTM_NEWLINK with IFLA_NET_NS_FD/IFLA_IFNAME,
//! RTM_GETADDR dumps, RTM_NEWADDR). Native endianness, 4-byte alignment, as netlink(7) says.

pub const NLMSG_ERROR: u16 = 2;
pub const NLMSG_DONE: u16 = 3;
pub const RTM_NEWLINK: u16 = 16;
pub const RTM_GETLINK: u16 = 18;
pub const RTM_NEWADDR: u16 = 20;
pub const RTM_GETADDR: u16 = 22;

pub const NLM_F_REQUEST: u16 = 0x1;
pub const NLM_F_MULTI: u16 = 0x2;
pub const NLM_F_ACK: u16 = 0x4;
pub const NLM_F_EXCL: u16 = 0x200;
pub const NLM_F_DUMP: u16 = 0x300;
pub const NLM_F_CREATE: u16 = 0x400;

pub const IFLA_IFNAME: u16 = 3;
pub const IFLA_NET_NS_FD: u16 = 28;
pub const IFF_UP: u32 = 0x1;

pub const IFA_ADDRESS: u16 = 1;
pub const IFA_LOCAL: u16 = 2;
pub const IFA_BROADCAST: u16 = 4;
pub const IFA_FLAGS: u16 = 8;
pub const IFA_F_PERMANENT: u32 = 0x80;
pub const RT_SCOPE_UNIVERSE: u8 = 0;

const NLMSG_HDRLEN: usize = 16;

fn align(n: usize) -> usize {
    (n + 3) & !3
}

/// One request: header, fixed part, attributes. `finish` fills in the length.
#[derive(Debug, Clone)]
pub struct Msg {
    buf: Vec<u8>,
}

impl Msg {
    pub fn new(typ: u16, flags: u16, seq: u32) -> Msg {
        let mut buf = Vec::with_capacity(64);
        buf.extend_from_slice(&0u32.to_ne_bytes());
        buf.extend_from_slice(&typ.to_ne_bytes());
        buf.extend_from_slice(&flags.to_ne_bytes());
        buf.extend_from_slice(&seq.to_ne_bytes());
        buf.extend_from_slice(&0u32.to_ne_bytes());
        Msg { buf }
    }

    /// `struct ifinfomsg`: family, type, index, flags, change.
    pub fn ifinfo(mut self, index: i32, flags: u32, change: u32) -> Msg {
        self.buf.extend_from_slice(&[0u8, 0]); // AF_UNSPEC, pad
        self.buf.extend_from_slice(&0u16.to_ne_bytes());
        self.buf.extend_from_slice(&index.to_ne_bytes());
        self.buf.extend_from_slice(&flags.to_ne_bytes());
        self.buf.extend_from_slice(&change.to_ne_bytes());
        self
    }

    /// `struct ifaddrmsg`.
    pub fn ifaddr(mut self, family: u8, prefixlen: u8, flags: u8, scope: u8, index: u32) -> Msg {
        self.buf
            .extend_from_slice(&[family, prefixlen, flags, scope]);
        self.buf.extend_from_slice(&index.to_ne_bytes());
        self
    }

    pub fn attr(mut self, typ: u16, data: &[u8]) -> Msg {
        let len = 4 + data.len();
        self.buf.extend_from_slice(&(len as u16).to_ne_bytes());
        self.buf.extend_from_slice(&typ.to_ne_bytes());
        self.buf.extend_from_slice(data);
        self.buf.resize(align(self.buf.len()), 0);
        self
    }

    /// A NUL-terminated string attribute.
    pub fn attr_str(self, typ: u16, s: &str) -> Msg {
        let mut d = s.as_bytes().to_vec();
        d.push(0);
        self.attr(typ, &d)
    }

    pub fn finish(mut self) -> Vec<u8> {
        let len = self.buf.len() as u32;
        self.buf[..4].copy_from_slice(&len.to_ne_bytes());
        self.buf
    }
}

/// One message of a reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply<'a> {
    pub typ: u16,
    pub flags: u16,
    pub seq: u32,
    /// Everything after the header.
    pub payload: &'a [u8],
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Splits a datagram into messages; None if it is malformed.
pub fn parse(buf: &[u8]) -> Option<Vec<Reply<'_>>> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + NLMSG_HDRLEN <= buf.len() {
        let len = u32_at(buf, at)? as usize;
        if len < NLMSG_HDRLEN || at + len > buf.len() {
            return None;
        }
        out.push(Reply {
            typ: u16_at(buf, at + 4)?,
            flags: u16_at(buf, at + 6)?,
            seq: u32_at(buf, at + 8)?,
            payload: &buf[at + NLMSG_HDRLEN..at + len],
        });
        at += align(len);
    }
    Some(out)
}

/// The errno of an NLMSG_ERROR payload (0 is an ACK).
pub fn error_code(payload: &[u8]) -> Option<i32> {
    Some(i32::from_ne_bytes(payload.get(..4)?.try_into().ok()?))
}

/// The attributes (type, data) of a payload after its fixed part of `fixed` bytes.
pub fn attrs(payload: &[u8], fixed: usize) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    let mut at = fixed;
    while at + 4 <= payload.len() {
        let (Some(len), Some(typ)) = (u16_at(payload, at), u16_at(payload, at + 2)) else {
            break;
        };
        let len = len as usize;
        if len < 4 || at + len > payload.len() {
            break;
        }
        out.push((typ & 0x3fff, &payload[at + 4..at + len]));
        at += align(len);
    }
    out
}

/// An address of an RTM_NEWADDR reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Addr {
    pub family: u8,
    pub prefixlen: u8,
    pub flags: u32,
    pub scope: u8,
    pub index: u32,
    /// IFA_ADDRESS, IFA_LOCAL and IFA_BROADCAST, as they came.
    pub attrs: Vec<(u16, Vec<u8>)>,
}

/// Parses an RTM_NEWADDR payload (ifaddrmsg + attributes).
pub fn parse_addr(payload: &[u8]) -> Option<Addr> {
    let head = payload.get(..8)?;
    let mut a = Addr {
        family: head[0],
        prefixlen: head[1],
        flags: head[2] as u32,
        scope: head[3],
        index: u32_at(payload, 4)?,
        attrs: Vec::new(),
    };
    for (typ, data) in attrs(payload, 8) {
        match typ {
            IFA_FLAGS => a.flags = u32_at(data, 0).unwrap_or(a.flags),
            IFA_ADDRESS | IFA_LOCAL | IFA_BROADCAST => a.attrs.push((typ, data.to_vec())),
            _ => {}
        }
    }
    Some(a)
}

/// The ifindex of an RTM_NEWLINK payload (ifinfomsg.ifi_index).
pub fn link_index(payload: &[u8]) -> Option<i32> {
    Some(u32_at(payload, 4)? as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_a_move_request() {
        let m = Msg::new(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK, 7)
            .ifinfo(5, 0, 0)
            .attr(IFLA_NET_NS_FD, &9u32.to_ne_bytes())
            .attr_str(IFLA_IFNAME, "eth1")
            .finish();
        // 16 header + 16 ifinfomsg + 8 fd attr + 4+5 name attr padded to 12.
        assert_eq!(m.len(), 52);
        assert_eq!(u32_at(&m, 0), Some(52));
        assert_eq!(u16_at(&m, 4), Some(RTM_NEWLINK));
        assert_eq!(u16_at(&m, 6), Some(NLM_F_REQUEST | NLM_F_ACK));
        assert_eq!(u32_at(&m, 8), Some(7));
        assert_eq!(u32_at(&m, 20), Some(5)); // ifi_index
        let a = attrs(&m[16..], 16);
        assert_eq!(
            a,
            vec![
                (IFLA_NET_NS_FD, &9u32.to_ne_bytes()[..]),
                (IFLA_IFNAME, &b"eth1\0"[..])
            ]
        );
    }

    #[test]
    fn parses_replies_and_addresses() {
        let addr = Msg::new(RTM_NEWADDR, NLM_F_MULTI, 1)
            .ifaddr(2, 24, 0x80, 0, 3)
            .attr(IFA_ADDRESS, &[10, 0, 0, 1])
            .attr(IFA_LOCAL, &[10, 0, 0, 1])
            .attr(IFA_FLAGS, &0x80u32.to_ne_bytes())
            .attr(6, &[0; 16]) // IFA_CACHEINFO, ignored
            .finish();
        let done = Msg::new(NLMSG_DONE, NLM_F_MULTI, 1).attr(0, &[]).finish();
        let mut buf = addr.clone();
        buf.extend_from_slice(&done);
        let r = parse(&buf).unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!((r[0].typ, r[1].typ), (RTM_NEWADDR, NLMSG_DONE));
        let a = parse_addr(r[0].payload).unwrap();
        assert_eq!(
            (a.family, a.prefixlen, a.flags, a.scope, a.index),
            (2, 24, 0x80, 0, 3)
        );
        assert_eq!(
            a.attrs,
            vec![
                (IFA_ADDRESS, vec![10, 0, 0, 1]),
                (IFA_LOCAL, vec![10, 0, 0, 1])
            ]
        );
        // A truncated datagram is refused.
        assert!(parse(&buf[..buf.len() - 1]).is_none());
        assert_eq!(error_code(&(-17i32).to_ne_bytes()), Some(-17));
        assert_eq!(error_code(&[0, 0]), None);
    }
}
