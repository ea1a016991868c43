//! Segment framing: a file header, then length- and CRC-prefixed records.
//!
//! Pure codec; the file I/O is in [`super::segment`].
//!
//! ```text
//! segment file: magic "PLWL" (4) | version u8 = 1 | 3 zero bytes | frame*
//! frame:        payload_len u32 BE | crc32c(payload) u32 BE | payload
//! ```

/// Magic bytes at the start of every segment file.
pub const MAGIC: [u8; 4] = *b"PLWL";
/// The current segment format version.
pub const VERSION: u8 = 1;
/// Bytes of the segment header.
pub const HEADER_LEN: usize = 8;
/// Bytes of a frame header.
pub const FRAME_HEADER_LEN: usize = 8;
/// The largest payload accepted; bigger lengths are treated as corruption.
pub const MAX_PAYLOAD: usize = 64 << 20;

/// The segment header bytes.
pub fn header() -> [u8; HEADER_LEN] {
    [MAGIC[0], MAGIC[1], MAGIC[2], MAGIC[3], VERSION, 0, 0, 0]
}

/// Why a segment header is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderError {
    /// Fewer than [`HEADER_LEN`] bytes.
    Short,
    /// Wrong magic, or non-zero reserved bytes.
    BadMagic,
    /// A version this build does not read.
    UnknownVersion(u8),
}

/// Checks a segment header.
pub fn check_header(b: &[u8]) -> Result<(), HeaderError> {
    let h = b.get(..HEADER_LEN).ok_or(HeaderError::Short)?;
    if h[..4] != MAGIC {
        return Err(HeaderError::BadMagic);
    }
    if h[4] != VERSION {
        return Err(HeaderError::UnknownVersion(h[4]));
    }
    if h[5..] != [0, 0, 0] {
        return Err(HeaderError::BadMagic);
    }
    Ok(())
}

/// Appends one frame holding `payload` to `out`.
pub fn encode_frame(payload: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(&crc32c::crc32c(payload).to_be_bytes());
    out.extend_from_slice(payload);
}

/// The result of decoding the frame at the start of a buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    /// A good frame and the bytes it occupies.
    Ok {
        /// The payload.
        payload: &'a [u8],
        /// Header plus payload length.
        len: usize,
    },
    /// The buffer ends inside the frame (a torn write).
    Truncated,
    /// The frame is damaged.
    Corrupt(&'static str),
}

/// Decodes the frame at the start of `b`.
pub fn decode_frame(b: &[u8]) -> Frame<'_> {
    let Some(h) = b.get(..FRAME_HEADER_LEN) else { return Frame::Truncated };
    let len = u32::from_be_bytes([h[0], h[1], h[2], h[3]]) as usize;
    let crc = u32::from_be_bytes([h[4], h[5], h[6], h[7]]);
    if len == 0 || len > MAX_PAYLOAD {
        return Frame::Corrupt("bad record length");
    }
    let Some(payload) = b.get(FRAME_HEADER_LEN..FRAME_HEADER_LEN + len) else { return Frame::Truncated };
    if crc32c::crc32c(payload) != crc {
        return Frame::Corrupt("checksum mismatch");
    }
    Frame::Ok { payload, len: FRAME_HEADER_LEN + len }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_detect_damage() {
        let mut out = Vec::new();
        encode_frame(b"hello", &mut out);
        encode_frame(b"world!", &mut out);
        let Frame::Ok { payload, len } = decode_frame(&out) else { panic!() };
        assert_eq!((payload, len), (&b"hello"[..], 13));
        assert_eq!(decode_frame(&out[13..]), Frame::Ok { payload: b"world!", len: 14 });
        assert_eq!(decode_frame(&out[..12]), Frame::Truncated);
        let mut bad = out.clone();
        bad[10] ^= 1;
        assert_eq!(decode_frame(&bad), Frame::Corrupt("checksum mismatch"));
        assert_eq!(decode_frame(&[0; 8]), Frame::Corrupt("bad record length"));
        assert_eq!(check_header(&header()), Ok(()));
        assert_eq!(check_header(b"PLWL\x09\0\0\0"), Err(HeaderError::UnknownVersion(9)));
        // crc32c check value from the crate docs / RFC 3720.
        assert_eq!(crc32c::crc32c(b"123456789"), 0xe306_9283);
    }
}
