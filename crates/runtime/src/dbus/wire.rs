//! The D-Bus wire format (little-endian), for the values husk sends to and reads from systemd:
//! a [`Value`] model, its signature, marshalling and bounds-checked unmarshalling (pure,
//! unit-tested). Only what systemd's Manager API needs; unix fds and doubles are left out.

use super::DbusError;

/// One D-Bus value. Arrays carry their element signature so that an empty array still has
/// a type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Byte(u8),
    Bool(bool),
    I32(i32),
    U32(u32),
    I64(i64),
    U64(u64),
    Str(String),
    Path(String),
    Sig(String),
    Array(String, Vec<Value>),
    Struct(Vec<Value>),
    Variant(Box<Value>),
}

impl Value {
    pub fn str(s: impl Into<String>) -> Value {
        Value::Str(s.into())
    }

    /// `v` holding `inner`.
    pub fn variant(inner: Value) -> Value {
        Value::Variant(Box::new(inner))
    }

    /// This value's type signature.
    pub fn signature(&self) -> String {
        match self {
            Value::Byte(_) => "y".into(),
            Value::Bool(_) => "b".into(),
            Value::I32(_) => "i".into(),
            Value::U32(_) => "u".into(),
            Value::I64(_) => "x".into(),
            Value::U64(_) => "t".into(),
            Value::Str(_) => "s".into(),
            Value::Path(_) => "o".into(),
            Value::Sig(_) => "g".into(),
            Value::Array(elem, _) => format!("a{elem}"),
            Value::Struct(fields) => {
                let inner: String = fields.iter().map(Value::signature).collect();
                format!("({inner})")
            }
            Value::Variant(_) => "v".into(),
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) | Value::Path(s) | Value::Sig(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_u32(&self) -> Option<u32> {
        match self {
            Value::U32(n) => Some(*n),
            _ => None,
        }
    }
}

/// The alignment of a type by its first signature character.
fn alignment(code: u8) -> usize {
    match code {
        b'y' | b'g' | b'v' => 1,
        b'n' | b'q' => 2,
        b'x' | b't' | b'd' | b'(' | b'{' => 8,
        _ => 4,
    }
}

/// Appends marshalled values to a message buffer; offsets count from the message start.
#[derive(Default)]
pub struct Encoder {
    pub buf: Vec<u8>,
}

impl Encoder {
    pub fn pad(&mut self, align: usize) {
        while !self.buf.len().is_multiple_of(align) {
            self.buf.push(0);
        }
    }

    fn u32(&mut self, n: u32) {
        self.pad(4);
        self.buf.extend_from_slice(&n.to_le_bytes());
    }

    fn string(&mut self, s: &str) {
        // D-Bus strings are at most 2^32-1 bytes; ours are names and small values.
        self.u32(u32::try_from(s.len()).unwrap_or(u32::MAX));
        self.buf.extend_from_slice(s.as_bytes());
        self.buf.push(0);
    }

    fn signature(&mut self, s: &str) {
        self.buf.push(u8::try_from(s.len()).unwrap_or(u8::MAX));
        self.buf.extend_from_slice(s.as_bytes());
        self.buf.push(0);
    }

    pub fn put(&mut self, v: &Value) {
        match v {
            Value::Byte(b) => self.buf.push(*b),
            Value::Bool(b) => self.u32(u32::from(*b)),
            Value::I32(n) => {
                self.pad(4);
                self.buf.extend_from_slice(&n.to_le_bytes());
            }
            Value::U32(n) => self.u32(*n),
            Value::I64(n) => {
                self.pad(8);
                self.buf.extend_from_slice(&n.to_le_bytes());
            }
            Value::U64(n) => {
                self.pad(8);
                self.buf.extend_from_slice(&n.to_le_bytes());
            }
            Value::Str(s) | Value::Path(s) => self.string(s),
            Value::Sig(s) => self.signature(s),
            Value::Array(elem, items) => {
                self.u32(0);
                let len_at = self.buf.len() - 4;
                self.pad(alignment(elem.as_bytes().first().copied().unwrap_or(b'y')));
                let start = self.buf.len();
                for item in items {
                    self.put(item);
                }
                let len = u32::try_from(self.buf.len() - start).unwrap_or(u32::MAX);
                self.buf[len_at..len_at + 4].copy_from_slice(&len.to_le_bytes());
            }
            Value::Struct(fields) => {
                self.pad(8);
                for f in fields {
                    self.put(f);
                }
            }
            Value::Variant(inner) => {
                self.signature(&inner.signature());
                self.put(inner);
            }
        }
    }
}

/// The first complete type of `sig` and the rest.
pub fn split_type(sig: &str) -> Result<(&str, &str), DbusError> {
    let bytes = sig.as_bytes();
    let bad = || DbusError::Malformed(format!("bad signature {sig:?}"));
    let mut i = 0;
    // Array prefixes.
    while bytes.get(i) == Some(&b'a') {
        i += 1;
    }
    match bytes.get(i) {
        None => return Err(bad()),
        Some(b'(') | Some(b'{') => {
            let mut depth = 0usize;
            loop {
                match bytes.get(i) {
                    Some(b'(') | Some(b'{') => depth += 1,
                    Some(b')') | Some(b'}') => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    Some(_) => {}
                    None => return Err(bad()),
                }
                i += 1;
            }
        }
        Some(c) if b"ybnqiuxtdsogvh".contains(c) => {}
        Some(_) => return Err(bad()),
    }
    Ok((&sig[..=i], &sig[i + 1..]))
}

/// Reads values out of a message buffer. `base` is the buffer's offset in the message, for
/// alignment.
pub struct Decoder<'a> {
    buf: &'a [u8],
    pos: usize,
    depth: usize,
}

impl<'a> Decoder<'a> {
    pub fn new(buf: &'a [u8]) -> Decoder<'a> {
        Decoder {
            buf,
            pos: 0,
            depth: 0,
        }
    }

    pub fn pos(&self) -> usize {
        self.pos
    }

    fn short(&self) -> DbusError {
        DbusError::Malformed(format!("message truncated at byte {}", self.pos))
    }

    pub fn align(&mut self, a: usize) -> Result<(), DbusError> {
        let next = self.pos.div_ceil(a) * a;
        if next > self.buf.len() {
            return Err(self.short());
        }
        self.pos = next;
        Ok(())
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DbusError> {
        let end = self.pos.checked_add(n).ok_or_else(|| self.short())?;
        let s = self.buf.get(self.pos..end).ok_or_else(|| self.short())?;
        self.pos = end;
        Ok(s)
    }

    fn fixed<const N: usize>(&mut self) -> Result<[u8; N], DbusError> {
        self.align(N)?;
        let s = self.take(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    pub fn u32(&mut self) -> Result<u32, DbusError> {
        Ok(u32::from_le_bytes(self.fixed::<4>()?))
    }

    fn text(&mut self, len: usize) -> Result<String, DbusError> {
        let s = self.take(len)?;
        let nul = self.take(1)?;
        if nul != [0] {
            return Err(DbusError::Malformed("string without its NUL".into()));
        }
        String::from_utf8(s.to_vec())
            .map_err(|_| DbusError::Malformed("string is not UTF-8".into()))
    }

    /// One value of the single complete type `sig`.
    pub fn get(&mut self, sig: &str) -> Result<Value, DbusError> {
        self.depth += 1;
        if self.depth > 32 {
            return Err(DbusError::Malformed("values nested too deeply".into()));
        }
        let v = self.get_inner(sig);
        self.depth -= 1;
        v
    }

    fn get_inner(&mut self, sig: &str) -> Result<Value, DbusError> {
        let code = sig.as_bytes().first().copied().unwrap_or(0);
        Ok(match code {
            b'y' => Value::Byte(self.take(1)?[0]),
            b'b' => Value::Bool(self.u32()? != 0),
            b'n' => Value::I32(i16::from_le_bytes(self.fixed::<2>()?).into()),
            b'q' => Value::U32(u16::from_le_bytes(self.fixed::<2>()?).into()),
            b'i' => Value::I32(i32::from_le_bytes(self.fixed::<4>()?)),
            b'u' | b'h' => Value::U32(self.u32()?),
            b'x' => Value::I64(i64::from_le_bytes(self.fixed::<8>()?)),
            b't' | b'd' => Value::U64(u64::from_le_bytes(self.fixed::<8>()?)),
            b's' | b'o' => {
                let len = self.u32()? as usize;
                let s = self.text(len)?;
                if code == b's' {
                    Value::Str(s)
                } else {
                    Value::Path(s)
                }
            }
            b'g' => {
                let len = usize::from(self.take(1)?[0]);
                Value::Sig(self.text(len)?)
            }
            b'v' => {
                let len = usize::from(self.take(1)?[0]);
                let inner = self.text(len)?;
                let (one, rest) = split_type(&inner)?;
                if !rest.is_empty() {
                    return Err(DbusError::Malformed(format!("variant signature {inner:?}")));
                }
                Value::variant(self.get(one)?)
            }
            b'a' => {
                let len = self.u32()? as usize;
                let elem = &sig[1..];
                self.align(alignment(elem.as_bytes().first().copied().unwrap_or(b'y')))?;
                let end = self.pos.checked_add(len).ok_or_else(|| self.short())?;
                if end > self.buf.len() {
                    return Err(self.short());
                }
                let mut items = Vec::new();
                while self.pos < end {
                    items.push(self.get(elem)?);
                }
                if self.pos != end {
                    return Err(DbusError::Malformed("array length mismatch".into()));
                }
                Value::Array(elem.to_string(), items)
            }
            b'(' | b'{' => {
                self.align(8)?;
                let mut inner = &sig[1..sig.len().saturating_sub(1)];
                let mut fields = Vec::new();
                while !inner.is_empty() {
                    let (one, rest) = split_type(inner)?;
                    fields.push(self.get(one)?);
                    inner = rest;
                }
                Value::Struct(fields)
            }
            _ => return Err(DbusError::Malformed(format!("unsupported type {sig:?}"))),
        })
    }

    /// Every value of the signature `sig`, in order.
    pub fn get_all(&mut self, sig: &str) -> Result<Vec<Value>, DbusError> {
        let mut out = Vec::new();
        let mut rest = sig;
        while !rest.is_empty() {
            let (one, r) = split_type(rest)?;
            out.push(self.get(one)?);
            rest = r;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(v: Value) {
        let mut e = Encoder::default();
        e.put(&v);
        let sig = v.signature();
        let back = Decoder::new(&e.buf).get(&sig).unwrap_or(Value::Byte(0));
        assert_eq!(back, v, "{sig}");
    }

    #[test]
    fn values_round_trip() {
        round_trip(Value::str("hello"));
        round_trip(Value::U64(u64::MAX));
        round_trip(Value::Array(
            "y".into(),
            vec![Value::Byte(3), Value::Byte(1)],
        ));
        round_trip(Value::Array("(sv)".into(), vec![]));
        round_trip(Value::Array(
            "(sv)".into(),
            vec![
                Value::Struct(vec![
                    Value::str("MemoryMax"),
                    Value::variant(Value::U64(1 << 30)),
                ]),
                Value::Struct(vec![
                    Value::str("Delegate"),
                    Value::variant(Value::Bool(true)),
                ]),
                Value::Struct(vec![
                    Value::str("PIDs"),
                    Value::variant(Value::Array("u".into(), vec![Value::U32(42)])),
                ]),
            ],
        ));
    }

    #[test]
    fn known_bytes() {
        // "s" "ab" then a u64: length 2, 'a' 'b' NUL, padding to 8, the number.
        let mut e = Encoder::default();
        e.put(&Value::str("ab"));
        e.put(&Value::U64(1));
        assert_eq!(
            e.buf,
            [2, 0, 0, 0, b'a', b'b', 0, 0, 1, 0, 0, 0, 0, 0, 0, 0]
        );
        // An empty array of structs: the length, then padding to 8 that it does not count.
        let mut e = Encoder::default();
        e.put(&Value::Array("(sv)".into(), vec![]));
        assert_eq!(e.buf, [0, 0, 0, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn signatures() {
        assert_eq!(split_type("a(sv)s").ok(), Some(("a(sv)", "s")));
        assert_eq!(split_type("a{sv}").ok(), Some(("a{sv}", "")));
        assert_eq!(split_type("uoss").ok(), Some(("u", "oss")));
        assert!(split_type("a").is_err());
        assert!(split_type("(s").is_err());
        assert!(split_type("z").is_err());
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        // Truncated string, huge array length, deep nesting, bad UTF-8.
        assert!(Decoder::new(&[9, 0, 0, 0, b'a']).get("s").is_err());
        assert!(Decoder::new(&[255, 255, 255, 255]).get("ay").is_err());
        assert!(Decoder::new(&[2, 0, 0, 0, 0xff, 0xfe, 0]).get("s").is_err());
        let mut deep = Vec::new();
        for _ in 0..40 {
            deep.extend_from_slice(&[1, b'v', 0]);
        }
        assert!(Decoder::new(&deep).get("v").is_err());
        assert_eq!(
            Decoder::new(&[1, 0, 0, 0, 5, 0, 0, 0]).get_all("uu").ok(),
            Some(vec![Value::U32(1), Value::U32(5)])
        );
    }
}
