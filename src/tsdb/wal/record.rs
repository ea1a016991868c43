//! WAL record codec: pure functions between records and payload bytes.
//!
//! Every payload starts with a one-byte record type; integers are varints
//! (Go's `binary.PutUvarint` / zig-zag `PutVarint`), values are 8 raw bytes,
//! big-endian. Framing and checksums are added by [`super::frame`].
//!
//! ```text
//! series  (1): repeated { ref uvarint | labels_len uvarint | packed labels }
//! samples (2): base_ref uvarint | base_t varint |
//!              repeated { ref - base_ref varint | t - base_t varint | value u64 BE }
//! min time(3): t varint   (written first in a checkpoint: samples older were dropped)
//! ```

use crate::model::Labels;
use crate::storage::SeriesRef;

/// Record type byte of a series record.
pub const TYPE_SERIES: u8 = 1;
/// Record type byte of a samples record.
pub const TYPE_SAMPLES: u8 = 2;
/// Record type byte of a min-time record.
pub const TYPE_MIN_TIME: u8 = 3;

/// One sample addressed by series reference.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RefSample {
    /// The series.
    pub r: SeriesRef,
    /// Timestamp in milliseconds.
    pub t: i64,
    /// Value (any bit pattern).
    pub v: f64,
}

impl RefSample {
    /// Equality with the value compared by bits.
    pub fn bit_eq(&self, o: &RefSample) -> bool {
        self.r == o.r && self.t == o.t && self.v.to_bits() == o.v.to_bits()
    }
}

/// A decoded record, borrowing the caller's reusable buffers.
#[derive(Debug, Clone, Copy)]
pub enum RecordRef<'a> {
    /// New series.
    Series(&'a [(SeriesRef, Labels)]),
    /// Samples.
    Samples(&'a [RefSample]),
    /// Samples older than this were dropped by a checkpoint.
    MinTime(i64),
}

/// A payload that does not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// Empty payload.
    #[error("empty record")]
    Empty,
    /// Unknown type byte (written by a newer version, or garbage).
    #[error("unknown record type {0}")]
    UnknownType(u8),
    /// A field runs past the end or does not decode.
    #[error("malformed {what} at byte {offset} of the record")]
    Malformed {
        /// Which field.
        what: &'static str,
        /// Byte offset inside the payload.
        offset: usize,
    },
}

/// Appends a uvarint.
pub(crate) fn put_uvarint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Appends a zig-zag varint.
pub(crate) fn put_varint(out: &mut Vec<u8>, v: i64) {
    put_uvarint(out, ((v << 1) ^ (v >> 63)) as u64);
}

/// Reads a uvarint at `*pos`.
pub(crate) fn get_uvarint(b: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v: u64 = 0;
    for i in 0..10u32 {
        let byte = *b.get(*pos)?;
        *pos += 1;
        if i == 9 && byte > 1 {
            return None;
        }
        v |= ((byte & 0x7f) as u64) << (7 * i);
        if byte < 0x80 {
            return Some(v);
        }
    }
    None
}

/// Reads a zig-zag varint at `*pos`.
pub(crate) fn get_varint(b: &[u8], pos: &mut usize) -> Option<i64> {
    let u = get_uvarint(b, pos)?;
    Some(((u >> 1) as i64) ^ -((u & 1) as i64))
}

/// Encodes a series record into `out` (appending).
pub fn encode_series(series: &[(SeriesRef, &Labels)], out: &mut Vec<u8>) {
    out.push(TYPE_SERIES);
    for (r, l) in series {
        put_uvarint(out, r.0);
        let b = l.as_bytes();
        put_uvarint(out, b.len() as u64);
        out.extend_from_slice(b);
    }
}

/// Encodes a samples record into `out` (appending). Empty input writes nothing.
pub fn encode_samples(samples: &[RefSample], out: &mut Vec<u8>) {
    let Some(first) = samples.first() else { return };
    out.reserve(samples.len() * 12 + 16);
    out.push(TYPE_SAMPLES);
    put_uvarint(out, first.r.0);
    put_varint(out, first.t);
    for s in samples {
        put_varint(out, s.r.0.wrapping_sub(first.r.0) as i64);
        put_varint(out, s.t.wrapping_sub(first.t));
        out.extend_from_slice(&s.v.to_bits().to_be_bytes());
    }
}

/// Encodes a min-time record into `out` (appending).
pub fn encode_min_time(t: i64, out: &mut Vec<u8>) {
    out.push(TYPE_MIN_TIME);
    put_varint(out, t);
}

/// Reusable buffers for [`decode`].
#[derive(Debug, Default)]
pub struct DecodeBuf {
    series: Vec<(SeriesRef, Labels)>,
    samples: Vec<RefSample>,
}

/// Decodes a payload into `buf`, returning a view of it.
pub fn decode<'a>(payload: &[u8], buf: &'a mut DecodeBuf) -> Result<RecordRef<'a>, RecordError> {
    let (&ty, body) = payload.split_first().ok_or(RecordError::Empty)?;
    let bad = |what, pos: usize| RecordError::Malformed { what, offset: pos + 1 };
    let mut pos = 0;
    match ty {
        TYPE_SERIES => {
            buf.series.clear();
            while pos < body.len() {
                let r = get_uvarint(body, &mut pos).ok_or(bad("series ref", pos))?;
                let start = pos;
                let len = get_uvarint(body, &mut pos).ok_or(bad("labels length", start))? as usize;
                let end = pos.checked_add(len).filter(|&e| e <= body.len()).ok_or(bad("labels length", start))?;
                let labels = Labels::from_bytes(&body[pos..end]).map_err(|_| bad("labels", pos))?;
                pos = end;
                buf.series.push((SeriesRef(r), labels));
            }
            Ok(RecordRef::Series(&buf.series))
        }
        TYPE_SAMPLES => {
            buf.samples.clear();
            let base_r = get_uvarint(body, &mut pos).ok_or(bad("base ref", pos))?;
            let base_t = get_varint(body, &mut pos).ok_or(bad("base timestamp", pos))?;
            while pos < body.len() {
                let start = pos;
                let dr = get_varint(body, &mut pos).ok_or(bad("ref delta", start))?;
                let dt = get_varint(body, &mut pos).ok_or(bad("timestamp delta", start))?;
                let v = body.get(pos..pos + 8).ok_or(bad("value", pos))?;
                let mut a = [0u8; 8];
                a.copy_from_slice(v);
                pos += 8;
                buf.samples.push(RefSample {
                    r: SeriesRef(base_r.wrapping_add(dr as u64)),
                    t: base_t.wrapping_add(dt),
                    v: f64::from_bits(u64::from_be_bytes(a)),
                });
            }
            Ok(RecordRef::Samples(&buf.samples))
        }
        TYPE_MIN_TIME => {
            let t = get_varint(body, &mut pos).ok_or(bad("min time", pos))?;
            Ok(RecordRef::MinTime(t))
        }
        other => Err(RecordError::UnknownType(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::labels;

    #[test]
    fn series_and_samples_round_trip() {
        let a = labels!("__name__" => "up", "job" => "x");
        let b = labels!("__name__" => "up", "job" => "y");
        let mut out = Vec::new();
        encode_series(&[(SeriesRef(7), &a), (SeriesRef(1 << 40), &b)], &mut out);
        let mut buf = DecodeBuf::default();
        match decode(&out, &mut buf).unwrap() {
            RecordRef::Series(s) => assert_eq!(s, &[(SeriesRef(7), a), (SeriesRef(1 << 40), b)]),
            other => panic!("{other:?}"),
        }
        let samples = vec![
            RefSample { r: SeriesRef(9), t: 1000, v: 1.0 },
            RefSample { r: SeriesRef(2), t: -5, v: crate::model::STALE_NAN },
            RefSample { r: SeriesRef(u64::MAX), t: i64::MAX, v: -0.0 },
        ];
        out.clear();
        encode_samples(&samples, &mut out);
        match decode(&out, &mut buf).unwrap() {
            RecordRef::Samples(s) => assert!(s.len() == 3 && s.iter().zip(&samples).all(|(x, y)| x.bit_eq(y))),
            other => panic!("{other:?}"),
        }
        out.clear();
        encode_min_time(-42, &mut out);
        assert!(matches!(decode(&out, &mut buf).unwrap(), RecordRef::MinTime(-42)));
    }

    #[test]
    fn malformed_payloads_are_errors() {
        let mut buf = DecodeBuf::default();
        assert_eq!(decode(&[], &mut buf).unwrap_err(), RecordError::Empty);
        assert_eq!(decode(&[99], &mut buf).unwrap_err(), RecordError::UnknownType(99));
        assert!(decode(&[TYPE_SERIES, 1, 50, b'a'], &mut buf).is_err());
        assert!(decode(&[TYPE_SAMPLES, 1, 2, 0, 0, 1, 2], &mut buf).is_err());
        assert!(decode(&[TYPE_MIN_TIME], &mut buf).is_err());
    }
}
