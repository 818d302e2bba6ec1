//! D-Bus messages: building a method call, and parsing whatever the bus sends (method
//! returns, errors, signals) out of a byte stream (pure, unit-tested).

use super::wire::{Decoder, Encoder, Value};
use super::DbusError;

pub const METHOD_CALL: u8 = 1;
pub const METHOD_RETURN: u8 = 2;
pub const ERROR: u8 = 3;
pub const SIGNAL: u8 = 4;

/// The largest message husk accepts (the spec allows 128 MiB; systemd's replies are small).
const MAX_MESSAGE: usize = 16 << 20;

/// A message as received.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Message {
    pub kind: u8,
    pub serial: u32,
    pub reply_serial: Option<u32>,
    pub path: Option<String>,
    pub interface: Option<String>,
    pub member: Option<String>,
    pub error_name: Option<String>,
    pub body: Vec<Value>,
}

impl Message {
    /// An error reply as an error: its name, and as text the name and, when the body starts
    /// with a string, that message.
    pub fn into_error(self) -> DbusError {
        let name = self.error_name.unwrap_or_default();
        let shown = if name.is_empty() {
            "unnamed D-Bus error"
        } else {
            &name
        };
        let text = match self.body.first().and_then(Value::as_str) {
            Some(m) => format!("{shown}: {m}"),
            None => shown.to_string(),
        };
        DbusError::Remote { name, text }
    }
}

/// A method call `member` of `interface` on `path` at `destination`, serial `serial`.
pub fn method_call(
    serial: u32,
    destination: &str,
    path: &str,
    interface: &str,
    member: &str,
    body: &[Value],
) -> Vec<u8> {
    let mut b = Encoder::default();
    for v in body {
        b.put(v);
    }
    let sig: String = body.iter().map(Value::signature).collect();
    let field = |code: u8, v: Value| Value::Struct(vec![Value::Byte(code), Value::variant(v)]);
    let mut fields = vec![
        field(1, Value::Path(path.into())),
        field(2, Value::str(interface)),
        field(3, Value::str(member)),
        field(6, Value::str(destination)),
    ];
    if !sig.is_empty() {
        fields.push(field(8, Value::Sig(sig)));
    }
    let mut m = Encoder::default();
    m.buf.extend_from_slice(&[b'l', METHOD_CALL, 0, 1]);
    m.buf
        .extend_from_slice(&u32::try_from(b.buf.len()).unwrap_or(u32::MAX).to_le_bytes());
    m.buf.extend_from_slice(&serial.to_le_bytes());
    m.put(&Value::Array("(yv)".into(), fields));
    m.pad(8);
    m.buf.extend_from_slice(&b.buf);
    m.buf
}

/// The length of the message at the start of `buf` once its fixed header is there
/// (`None`: fewer than 16 bytes yet).
pub fn frame_len(buf: &[u8]) -> Result<Option<usize>, DbusError> {
    let Some(head) = buf.get(..16) else {
        return Ok(None);
    };
    if head[0] != b'l' {
        return Err(DbusError::Malformed(format!(
            "byte order {:?}: only little-endian messages are supported",
            head[0] as char
        )));
    }
    let word =
        |i: usize| u32::from_le_bytes([head[i], head[i + 1], head[i + 2], head[i + 3]]) as usize;
    let (body, fields) = (word(4), word(12));
    let total = (16 + fields).div_ceil(8) * 8 + body;
    if total > MAX_MESSAGE {
        return Err(DbusError::Malformed(format!("a {total}-byte message")));
    }
    Ok(Some(total))
}

/// Parse one whole message (`buf` is exactly [`frame_len`] bytes).
pub fn parse(buf: &[u8]) -> Result<Message, DbusError> {
    let mut d = Decoder::new(buf);
    let head = d.get_all("yyyyuu")?;
    let byte = |i: usize| match head.get(i) {
        Some(Value::Byte(b)) => *b,
        _ => 0,
    };
    let mut m = Message {
        kind: byte(1),
        serial: head.get(5).and_then(Value::as_u32).unwrap_or(0),
        ..Default::default()
    };
    let mut signature = String::new();
    if let Value::Array(_, fields) = d.get("a(yv)")? {
        for f in fields {
            let Value::Struct(kv) = f else { continue };
            let (Some(Value::Byte(code)), Some(Value::Variant(v))) = (kv.first(), kv.get(1)) else {
                continue;
            };
            let s = v.as_str().map(str::to_string);
            match code {
                1 => m.path = s,
                2 => m.interface = s,
                3 => m.member = s,
                4 => m.error_name = s,
                5 => m.reply_serial = v.as_u32(),
                8 => signature = s.unwrap_or_default(),
                _ => {}
            }
        }
    }
    d.align(8)?;
    let start = d.pos();
    let body = buf.get(start..).unwrap_or_default();
    // The body's alignment counts from its own start, which is 8-aligned in the message.
    m.body = Decoder::new(body).get_all(&signature)?;
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_parses_back() {
        let body = [
            Value::str("x.scope"),
            Value::str("fail"),
            Value::Array("(sv)".into(), vec![]),
        ];
        let bytes = method_call(
            7,
            "org.freedesktop.systemd1",
            "/org/freedesktop/systemd1",
            "org.freedesktop.systemd1.Manager",
            "StartTransientUnit",
            &body,
        );
        assert_eq!(frame_len(&bytes).ok().flatten(), Some(bytes.len()));
        let m = parse(&bytes).unwrap_or_default();
        assert_eq!(m.kind, METHOD_CALL);
        assert_eq!(m.serial, 7);
        assert_eq!(m.member.as_deref(), Some("StartTransientUnit"));
        assert_eq!(m.path.as_deref(), Some("/org/freedesktop/systemd1"));
        assert_eq!(m.body, body);
    }

    #[test]
    fn frames_and_bad_headers() {
        assert_eq!(frame_len(&[b'l'; 10]).ok(), Some(None));
        assert!(frame_len(&[b'B'; 16]).is_err());
        let mut huge = vec![b'l', 2, 0, 1];
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        huge.extend_from_slice(&[0; 8]);
        assert!(frame_len(&huge).is_err());
        // A header whose fields claim more bytes than there are: an error, not a panic.
        let mut short = vec![b'l', 2, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 200, 0, 0, 0];
        short.extend_from_slice(&[1, 1, b'o', 0]);
        assert!(parse(&short).is_err());
    }
}
