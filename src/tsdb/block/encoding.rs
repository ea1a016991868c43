//! Little helpers shared by the block codecs: varints and a bounds-checked
//! decoder that remembers where in its file it is, so every error can name
//! the byte offset of the damage.

/// Appends `v` as an unsigned LEB128 varint (at most 10 bytes).
pub(crate) fn put_uvarint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Appends `v` zigzag-encoded as an unsigned varint, so small negative
/// numbers stay short.
pub(crate) fn put_varint(out: &mut Vec<u8>, v: i64) {
    put_uvarint(out, ((v << 1) ^ (v >> 63)) as u64);
}

/// Why a decode stopped: the absolute file offset and a short reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DecodeError {
    /// Absolute offset in the file of the first byte that did not decode.
    pub offset: u64,
    /// What was expected there.
    pub reason: String,
}

/// A cursor over a byte slice that is part of a file starting at `base`.
#[derive(Debug, Clone)]
pub(crate) struct Decoder<'a> {
    buf: &'a [u8],
    pos: usize,
    base: u64,
}

impl<'a> Decoder<'a> {
    /// A decoder over `buf`, whose first byte sits at file offset `base`.
    pub(crate) fn new(buf: &'a [u8], base: u64) -> Self {
        Decoder { buf, pos: 0, base }
    }

    /// Absolute file offset of the next byte.
    pub(crate) fn offset(&self) -> u64 {
        self.base + self.pos as u64
    }

    /// Bytes not yet consumed.
    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// An error at the current position.
    pub(crate) fn err(&self, reason: impl Into<String>) -> DecodeError {
        DecodeError { offset: self.offset(), reason: reason.into() }
    }

    /// Reads an unsigned varint of at most 10 bytes.
    pub(crate) fn uvarint(&mut self) -> Result<u64, DecodeError> {
        let start = self.pos;
        let mut v: u64 = 0;
        let mut shift = 0u32;
        loop {
            let Some(&b) = self.buf.get(self.pos) else {
                self.pos = start;
                return Err(self.err("varint runs past the end of its section"));
            };
            self.pos += 1;
            if shift == 63 && b > 1 {
                self.pos = start;
                return Err(self.err("varint overflows 64 bits"));
            }
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Ok(v);
            }
            shift += 7;
            if shift > 63 {
                self.pos = start;
                return Err(self.err("varint longer than 10 bytes"));
            }
        }
    }

    /// Reads an unsigned varint that must fit in `u32`.
    pub(crate) fn uvarint32(&mut self) -> Result<u32, DecodeError> {
        let at = self.clone();
        let v = self.uvarint()?;
        u32::try_from(v).map_err(|_| at.err(format!("value {v} does not fit in 32 bits")))
    }

    /// Reads a zigzag-encoded signed varint.
    pub(crate) fn varint(&mut self) -> Result<i64, DecodeError> {
        let u = self.uvarint()?;
        Ok(((u >> 1) as i64) ^ -((u & 1) as i64))
    }

    /// Reads `n` raw bytes.
    pub(crate) fn bytes(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len());
        match end {
            Some(end) => {
                let s = &self.buf[self.pos..end];
                self.pos = end;
                Ok(s)
            }
            None => Err(self.err(format!("{n} bytes run past the end of their section"))),
        }
    }

    /// Reads a varint length followed by that many bytes of UTF-8.
    pub(crate) fn str(&mut self) -> Result<&'a str, DecodeError> {
        let at = self.clone();
        let n = self.uvarint()?;
        let n = usize::try_from(n).map_err(|_| at.err("string length overflows"))?;
        let b = self.bytes(n)?;
        std::str::from_utf8(b).map_err(|_| at.err("string is not valid UTF-8"))
    }
}

/// Reads a little-endian `u32` at `off` of `buf`, if it fits.
pub(crate) fn u32_at(buf: &[u8], off: usize) -> Option<u32> {
    let b = buf.get(off..off.checked_add(4)?)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// Reads a little-endian `u64` at `off` of `buf`, if it fits.
pub(crate) fn u64_at(buf: &[u8], off: usize) -> Option<u64> {
    let b = buf.get(off..off.checked_add(8)?)?;
    let mut a = [0u8; 8];
    a.copy_from_slice(b);
    Some(u64::from_le_bytes(a))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_at_the_edges() {
        let us = [0u64, 1, 127, 128, 300, u32::MAX as u64, u64::MAX];
        let is = [0i64, -1, 1, -64, 64, i64::MIN, i64::MAX];
        let mut buf = Vec::new();
        for &u in &us {
            put_uvarint(&mut buf, u);
        }
        for &i in &is {
            put_varint(&mut buf, i);
        }
        let mut d = Decoder::new(&buf, 100);
        for &u in &us {
            assert_eq!(d.uvarint().unwrap(), u);
        }
        for &i in &is {
            assert_eq!(d.varint().unwrap(), i);
        }
        assert_eq!(d.remaining(), 0);
        let e = d.uvarint().unwrap_err();
        assert_eq!(e.offset, 100 + buf.len() as u64);
    }

    #[test]
    fn overlong_and_truncated_varints_are_errors() {
        let mut d = Decoder::new(&[0xff; 11], 0);
        assert!(d.uvarint().is_err());
        let mut d = Decoder::new(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02], 0);
        assert!(d.uvarint().is_err());
        let mut d = Decoder::new(&[0x80], 7);
        assert_eq!(d.uvarint().unwrap_err().offset, 7);
        let mut d = Decoder::new(&[5, b'a'], 0);
        assert!(d.str().is_err());
        let mut d = Decoder::new(&[0x80, 0x80, 0x80, 0x80, 0x10], 0);
        assert!(d.uvarint32().is_err());
    }
}
