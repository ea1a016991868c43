//! Head chunk file codec (pure): the file header and one chunk entry.
//!
//! ```text
//! file:  magic "PLHC" (4) | version u8 = 1 | 3 zero bytes | entry*
//! entry: series_ref u64 BE | mint i64 BE | maxt i64 BE | encoding u8 |
//!        data_len uvarint | data | crc32c u32 BE (over every entry byte before it)
//! ```
//!
//! A [`HeadChunkRef`] addresses an entry: file index in the upper 32 bits,
//! byte offset of the entry inside the file in the lower 32 bits.

use crate::tsdb::chunk::Encoding;
use crate::tsdb::wal::record::{get_uvarint, put_uvarint};

/// Magic bytes at the start of a head chunk file.
pub const MAGIC: [u8; 4] = *b"PLHC";
/// Current version.
pub const VERSION: u8 = 1;
/// File header length.
pub const HEADER_LEN: usize = 8;
/// Fixed bytes of an entry before the length varint.
const FIXED: usize = 8 + 8 + 8 + 1;
/// Largest chunk data accepted when reading (a head chunk holds at most 65535 samples).
pub const MAX_DATA: usize = 1 << 20;

/// Where a head chunk lives: `(file index << 32) | byte offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HeadChunkRef(pub u64);

impl HeadChunkRef {
    /// A reference from file index and offset.
    pub fn new(file: u32, offset: u32) -> Self {
        HeadChunkRef(((file as u64) << 32) | offset as u64)
    }
    /// The file index.
    pub fn file(self) -> u32 {
        (self.0 >> 32) as u32
    }
    /// The byte offset in the file.
    pub fn offset(self) -> u32 {
        self.0 as u32
    }
}

/// The file header bytes.
pub fn header() -> [u8; HEADER_LEN] {
    [MAGIC[0], MAGIC[1], MAGIC[2], MAGIC[3], VERSION, 0, 0, 0]
}

/// Whether `b` starts with a valid header.
pub fn check_header(b: &[u8]) -> Result<(), &'static str> {
    let h = b.get(..HEADER_LEN).ok_or("file shorter than its header")?;
    if h[..4] != MAGIC {
        return Err("bad magic");
    }
    if h[4] != VERSION {
        return Err("unknown version");
    }
    if h[5..] != [0, 0, 0] {
        return Err("non-zero reserved header bytes");
    }
    Ok(())
}

/// Appends one entry to `out`.
pub fn encode_entry(series_ref: u64, mint: i64, maxt: i64, enc: Encoding, data: &[u8], out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&series_ref.to_be_bytes());
    out.extend_from_slice(&mint.to_be_bytes());
    out.extend_from_slice(&maxt.to_be_bytes());
    out.push(enc as u8);
    put_uvarint(out, data.len() as u64);
    out.extend_from_slice(data);
    let crc = crc32c::crc32c(&out[start..]);
    out.extend_from_slice(&crc.to_be_bytes());
}

/// A decoded entry; `data` is a byte range of the buffer it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The series.
    pub series_ref: u64,
    /// First sample time.
    pub mint: i64,
    /// Last sample time.
    pub maxt: i64,
    /// Chunk encoding.
    pub encoding: Encoding,
    /// Start of the chunk data in the buffer.
    pub data_start: usize,
    /// End (exclusive) of the chunk data.
    pub data_end: usize,
    /// Offset just past the entry (its CRC included).
    pub end: usize,
}

/// Why an entry does not decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryError {
    /// The buffer ends inside the entry.
    Truncated,
    /// The entry is damaged.
    Corrupt(&'static str),
}

/// Decodes the entry at `offset` of `buf`, checking bounds and its CRC.
pub fn decode_entry(buf: &[u8], offset: usize) -> Result<Entry, EntryError> {
    let fixed =
        buf.get(offset..offset.checked_add(FIXED).ok_or(EntryError::Truncated)?).ok_or(EntryError::Truncated)?;
    let be = |i: usize| {
        let mut a = [0u8; 8];
        a.copy_from_slice(&fixed[i..i + 8]);
        u64::from_be_bytes(a)
    };
    let series_ref = be(0);
    let mint = be(8) as i64;
    let maxt = be(16) as i64;
    let enc = fixed[24];
    let mut pos = offset + FIXED;
    let len = get_uvarint(buf, &mut pos).ok_or(EntryError::Truncated)? as usize;
    if len > MAX_DATA {
        return Err(EntryError::Corrupt("chunk length too large"));
    }
    let data_end = pos + len;
    let crc_bytes = buf.get(data_end..data_end + 4).ok_or(EntryError::Truncated)?;
    let want = u32::from_be_bytes([crc_bytes[0], crc_bytes[1], crc_bytes[2], crc_bytes[3]]);
    if crc32c::crc32c(&buf[offset..data_end]) != want {
        return Err(EntryError::Corrupt("checksum mismatch"));
    }
    let encoding = Encoding::from_u8(enc).ok_or(EntryError::Corrupt("unknown chunk encoding"))?;
    if maxt < mint {
        return Err(EntryError::Corrupt("maxt before mint"));
    }
    Ok(Entry { series_ref, mint, maxt, encoding, data_start: pos, data_end, end: data_end + 4 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_round_trip_and_damage() {
        let mut buf = header().to_vec();
        encode_entry(7, 100, 200, Encoding::Xor, b"abcdef", &mut buf);
        let e = decode_entry(&buf, HEADER_LEN).unwrap();
        assert_eq!(
            (e.series_ref, e.mint, e.maxt, &buf[e.data_start..e.data_end], e.end),
            (7, 100, 200, &b"abcdef"[..], buf.len())
        );
        assert_eq!(decode_entry(&buf[..buf.len() - 1], HEADER_LEN), Err(EntryError::Truncated));
        let mut bad = buf.clone();
        bad[HEADER_LEN + 3] ^= 1;
        assert_eq!(decode_entry(&bad, HEADER_LEN), Err(EntryError::Corrupt("checksum mismatch")));
        assert_eq!(decode_entry(&buf, usize::MAX - 3), Err(EntryError::Truncated));
        let r = HeadChunkRef::new(3, 77);
        assert_eq!((r.file(), r.offset()), (3, 77));
    }
}
