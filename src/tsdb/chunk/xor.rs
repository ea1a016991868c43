//! Prometheus's XOR chunk: delta-of-delta timestamps and XOR-compressed values.
//!
//! Byte layout (see `docs/FORMAT.md`, "XOR chunk"):
//!
//! ```text
//! ┌──────────────────────┬──────────────────────────────────────────────┐
//! │ num samples: u16 BE  │ bit stream, MSB first, zero-padded to a byte │
//! └──────────────────────┴──────────────────────────────────────────────┘
//! sample 0: t as zig-zag varint, v as 64 raw bits
//! sample 1: t - t0 as uvarint, v XOR-encoded against v0
//! sample n: delta-of-delta of t in a prefix bucket, v XOR-encoded
//!   dod == 0            '0'
//!   dod in [-8191, 8192]      '10'   + 14 bits
//!   dod in [-65535, 65536]    '110'  + 17 bits
//!   dod in [-524287, 524288]  '1110' + 20 bits
//!   otherwise           '1111' + 64 bits
//! value: '0' when equal to the previous value; else '1' then
//!   '0' + the meaningful bits inside the previous leading/trailing-zero window, or
//!   '1' + 5 bits leading zeros + 6 bits meaningful bit count (0 means 64) + those bits.
//! ```
//!
//! This follows `tsdb/chunkenc/xor.go` in Prometheus bit for bit, so values
//! (every NaN payload, -0.0, the stale marker) round-trip exactly. Timestamp
//! arithmetic wraps like Go's, so any `i64` sequence round-trips too.

use super::bits::{BitReader, BitWriter};
use super::ChunkError;
use crate::model::Sample;

/// Bytes before the bit stream: the big-endian sample count.
pub const HEADER_LEN: usize = 2;

/// The largest number of samples one chunk can hold (the header is a `u16`).
pub const MAX_SAMPLES: u16 = u16::MAX;

/// "No leading-zero window yet": the first XOR must write a full window.
const NO_WINDOW: u8 = 0xff;

/// Encodes samples into one XOR chunk.
///
/// `bytes()` is a valid chunk after every append, so an open chunk can be read
/// (copied) while it is still being written.
#[derive(Debug, Clone)]
pub struct XorAppender {
    w: BitWriter,
    t: i64,
    v: f64,
    t_delta: u64,
    leading: u8,
    trailing: u8,
}

impl Default for XorAppender {
    fn default() -> Self {
        Self::new()
    }
}

impl XorAppender {
    /// An empty chunk.
    pub fn new() -> Self {
        Self::with_capacity(HEADER_LEN)
    }

    /// An empty chunk whose buffer can hold `bytes` bytes before growing.
    pub fn with_capacity(bytes: usize) -> Self {
        let mut buf = Vec::with_capacity(bytes.max(HEADER_LEN));
        buf.extend_from_slice(&[0, 0]);
        XorAppender { w: BitWriter::from_parts(buf, 0), t: 0, v: 0.0, t_delta: 0, leading: NO_WINDOW, trailing: 0 }
    }

    /// An empty chunk whose header is followed by the byte `extra` (a
    /// Decimal chunk's mode byte), so the bit stream starts one byte later.
    pub(crate) fn with_header(bytes: usize, extra: u8) -> Self {
        let mut buf = Vec::with_capacity(bytes.max(HEADER_LEN + 1));
        buf.extend_from_slice(&[0, 0, extra]);
        XorAppender { w: BitWriter::from_parts(buf, 0), t: 0, v: 0.0, t_delta: 0, leading: NO_WINDOW, trailing: 0 }
    }

    /// Continues appending to an existing chunk (decodes it once to recover the state).
    pub fn from_chunk(bytes: &[u8]) -> Result<Self, ChunkError> {
        let mut it = XorIter::new(bytes)?;
        for s in it.by_ref() {
            s?;
        }
        let bit_len = it.r.bit_pos();
        let used = bit_len.div_ceil(8);
        let free = (used * 8 - bit_len) as u8;
        let buf = bytes.get(..used).ok_or(ChunkError::TooShort { len: bytes.len() })?.to_vec();
        Ok(XorAppender {
            w: BitWriter::from_parts(buf, free),
            t: it.t,
            v: it.v,
            t_delta: it.t_delta,
            leading: it.leading,
            trailing: it.trailing,
        })
    }

    /// Samples in the chunk.
    #[inline]
    pub fn num_samples(&self) -> u16 {
        num_samples_of(&self.w.buf)
    }

    /// The encoded chunk so far (header included).
    #[inline]
    pub fn bytes(&self) -> &[u8] {
        &self.w.buf
    }

    /// Timestamp of the last appended sample (meaningless when empty).
    #[inline]
    pub fn last_t(&self) -> i64 {
        self.t
    }

    /// Value of the last appended sample (meaningless when empty).
    #[inline]
    pub fn last_v(&self) -> f64 {
        self.v
    }

    /// The finished chunk bytes.
    pub fn finish(self) -> Vec<u8> {
        self.w.buf
    }

    /// Heap bytes reserved by the buffer.
    pub fn capacity(&self) -> usize {
        self.w.buf.capacity()
    }

    /// Releases spare buffer capacity.
    pub fn shrink_to_fit(&mut self) {
        self.w.buf.shrink_to_fit();
    }

    /// Grows the buffer's capacity to at least `bytes` in one step.
    pub fn reserve_total(&mut self, bytes: usize) {
        let buf = &mut self.w.buf;
        buf.reserve_exact(bytes.saturating_sub(buf.len()));
    }

    /// Appends a sample. The codec does not check order (the head does);
    /// fails only when the chunk already holds [`MAX_SAMPLES`].
    #[inline]
    pub fn append(&mut self, t: i64, v: f64) -> Result<(), ChunkError> {
        let num = self.num_samples();
        // Grow in small exact steps instead of doubling: an open head chunk
        // lives in memory per series, so spare capacity is paid a million times.
        // One sample needs at most 4 + 64 + 2 + 11 + 64 bits (< 20 bytes).
        let buf = &mut self.w.buf;
        if buf.capacity() - buf.len() < 20 {
            buf.reserve_exact((buf.len() / 8).max(32));
        }
        if num == MAX_SAMPLES {
            return Err(ChunkError::Full);
        }
        self.t_delta = self.w.write_timestamp(num, t, self.t, self.t_delta);
        if num == 0 {
            self.w.write_bits(v.to_bits(), 64);
        } else {
            self.write_value(v);
        }
        self.t = t;
        self.v = v;
        let n = (num + 1).to_be_bytes();
        // The buffer always starts with the two header bytes (see `with_capacity`).
        self.w.buf[0] = n[0];
        self.w.buf[1] = n[1];
        Ok(())
    }

    #[inline]
    fn write_value(&mut self, v: f64) {
        let delta = v.to_bits() ^ self.v.to_bits();
        if delta == 0 {
            self.w.write_bit(false);
            return;
        }
        self.w.write_bit(true);
        // Five bits hold at most 31 leading zeros; clamping only widens the window.
        let leading = (delta.leading_zeros() as u8).min(31);
        let trailing = delta.trailing_zeros() as u8;
        if self.leading != NO_WINDOW && leading >= self.leading && trailing >= self.trailing {
            self.w.write_bit(false);
            let sig = 64 - self.leading - self.trailing;
            self.w.write_bits(delta >> self.trailing, sig);
            return;
        }
        self.leading = leading;
        self.trailing = trailing;
        self.w.write_bit(true);
        self.w.write_bits(leading as u64, 5);
        let sig = 64 - leading - trailing;
        // 64 meaningful bits are written as 0 in the 6-bit field; the reader maps 0 back to 64.
        self.w.write_bits(sig as u64, 6);
        self.w.write_bits(delta >> trailing, sig);
    }
}

/// The sample count stored in a chunk's header (0 when the header is missing).
#[inline]
pub fn num_samples_of(chunk: &[u8]) -> u16 {
    match chunk {
        [a, b, ..] => u16::from_be_bytes([*a, *b]),
        _ => 0,
    }
}

/// Decodes the samples of a XOR chunk from any byte container.
///
/// Use `XorIter<&[u8]>` to borrow and [`OwnedXorIter`] (or any
/// `AsRef<[u8]>` holder such as a mapped-file slice) for a `'static` iterator.
/// Yields `Err` once, then ends, when the bytes are corrupt or truncated.
#[derive(Debug, Clone)]
pub struct XorIter<B> {
    r: BitReader<B>,
    total: u16,
    read: u16,
    t: i64,
    v: f64,
    t_delta: u64,
    leading: u8,
    trailing: u8,
    failed: bool,
}

/// An iterator owning its chunk bytes.
pub type OwnedXorIter = XorIter<std::sync::Arc<[u8]>>;

impl<B: AsRef<[u8]>> XorIter<B> {
    /// Iterates the chunk in `data` (header included).
    pub fn new(data: B) -> Result<Self, ChunkError> {
        Self::new_at(data, HEADER_LEN)
    }

    /// Iterates a chunk whose bit stream starts at byte `start` (after the
    /// sample count and, in a Decimal chunk, the mode byte).
    pub(crate) fn new_at(data: B, start: usize) -> Result<Self, ChunkError> {
        let bytes = data.as_ref();
        if bytes.len() < start.max(HEADER_LEN) {
            return Err(ChunkError::TooShort { len: bytes.len() });
        }
        let total = num_samples_of(bytes);
        Ok(XorIter {
            r: BitReader::new(data, start),
            total,
            read: 0,
            t: 0,
            v: 0.0,
            t_delta: 0,
            leading: NO_WINDOW,
            trailing: 0,
            failed: false,
        })
    }

    /// Samples the header announces.
    pub fn num_samples(&self) -> u16 {
        self.total
    }

    /// The chunk bytes being iterated.
    pub fn bytes(&self) -> &[u8] {
        self.r.data()
    }

    /// Gives back the byte container.
    pub fn into_inner(self) -> B {
        self.r.into_inner()
    }

    /// Skips samples older than `t` and returns the first with a timestamp ≥ `t`.
    pub fn seek(&mut self, t: i64) -> Option<Result<Sample, ChunkError>> {
        loop {
            match self.next()? {
                Ok(s) if s.t < t => continue,
                other => return Some(other),
            }
        }
    }

    fn corrupt(&mut self, what: &'static str) -> ChunkError {
        self.failed = true;
        ChunkError::Corrupt { sample: self.read, bit_offset: self.r.bit_pos() as u64, what }
    }

    fn decode_next(&mut self) -> Result<Sample, ChunkError> {
        match self.read {
            0 => {
                let raw = self.read_uvarint()?;
                self.t = ((raw >> 1) as i64) ^ -((raw & 1) as i64);
                let bits = self.r.read_bits(64).ok_or_else(|| self.corrupt("value"))?;
                self.v = f64::from_bits(bits);
            }
            1 => {
                let delta = self.read_uvarint()?;
                self.t_delta = delta;
                self.t = self.t.wrapping_add(delta as i64);
                self.read_value()?;
            }
            _ => {
                let dod = self.r.read_timestamp_dod().ok_or_else(|| self.corrupt("timestamp"))?;
                self.t_delta = self.t_delta.wrapping_add(dod as u64);
                self.t = self.t.wrapping_add(self.t_delta as i64);
                self.read_value()?;
            }
        }
        self.read += 1;
        Ok(Sample::new(self.t, self.v))
    }

    fn read_uvarint(&mut self) -> Result<u64, ChunkError> {
        let mut v: u64 = 0;
        for i in 0..10u32 {
            let b = self.r.read_bits(8).ok_or_else(|| self.corrupt("varint timestamp"))?;
            if i == 9 && b > 1 {
                return Err(self.corrupt("varint overflows 64 bits"));
            }
            v |= (b & 0x7f) << (7 * i);
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err(self.corrupt("varint longer than 10 bytes"))
    }

    #[inline]
    fn read_value(&mut self) -> Result<(), ChunkError> {
        let changed = self.r.read_bit().ok_or_else(|| self.corrupt("value"))?;
        if !changed {
            return Ok(());
        }
        let new_window = self.r.read_bit().ok_or_else(|| self.corrupt("value"))?;
        let (sig, trailing) = if new_window {
            let leading = self.r.read_bits(5).ok_or_else(|| self.corrupt("value"))? as u8;
            let mut sig = self.r.read_bits(6).ok_or_else(|| self.corrupt("value"))? as u8;
            if sig == 0 {
                sig = 64;
            }
            if leading + sig > 64 {
                return Err(self.corrupt("value window wider than 64 bits"));
            }
            self.leading = leading;
            self.trailing = 64 - leading - sig;
            (sig, self.trailing)
        } else {
            if self.leading == NO_WINDOW {
                return Err(self.corrupt("value reuses a window that was never set"));
            }
            (64 - self.leading - self.trailing, self.trailing)
        };
        let bits = self.r.read_bits(sig).ok_or_else(|| self.corrupt("value"))?;
        // sig ≥ 1 here, so trailing ≤ 63 and the shift is in range.
        self.v = f64::from_bits(self.v.to_bits() ^ (bits << trailing));
        Ok(())
    }
}

impl<B: AsRef<[u8]>> Iterator for XorIter<B> {
    type Item = Result<Sample, ChunkError>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.read >= self.total {
            return None;
        }
        Some(self.decode_next())
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = if self.failed { 0 } else { (self.total - self.read) as usize };
        (0, Some(left))
    }
}

/// Encodes `samples` into one chunk (at most [`MAX_SAMPLES`]).
pub fn encode(samples: &[Sample]) -> Result<Vec<u8>, ChunkError> {
    let mut a = XorAppender::with_capacity(HEADER_LEN + samples.len() * 2 + 16);
    for s in samples {
        a.append(s.t, s.v)?;
    }
    Ok(a.finish())
}

/// Decodes every sample of a chunk.
pub fn decode(chunk: &[u8]) -> Result<Vec<Sample>, ChunkError> {
    let it = XorIter::new(chunk)?;
    let mut out = Vec::with_capacity(it.num_samples() as usize);
    for s in it {
        out.push(s?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::STALE_NAN;
    use proptest::prelude::*;

    fn same(a: &[Sample], b: &[Sample]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.bit_eq(y))
    }

    #[test]
    fn regular_series_is_compact() {
        let samples: Vec<Sample> = (0..120).map(|i| Sample::new(1_700_000_000_000 + i * 15_000, 42.0)).collect();
        let c = encode(&samples).unwrap();
        assert!(same(&decode(&c).unwrap(), &samples));
        // Header + first t varint + 64-bit value + delta varint, then 2 bits a sample.
        assert!(c.len() < 2 + 7 + 8 + 3 + 30 + 2, "{} bytes", c.len());
    }

    #[test]
    fn golden_bytes_match_prometheus_layout() {
        // t=1000 v=1, t=2000 v=1, t=3000 v=2 encoded by hand:
        // header 00 03; varint(1000)=d0 0f; 3ff0000000000000; uvarint(1000)=e8 07;
        // value unchanged '0'; dod 0 '0'; value 1→2: xor=0x7ff0..0? (1.0^2.0 = 0x7ff0000000000000)
        let c = encode(&[Sample::new(1000, 1.0), Sample::new(2000, 1.0), Sample::new(3000, 2.0)]).unwrap();
        assert_eq!(&c[..14], &[0x00, 0x03, 0xd0, 0x0f, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0, 0xe8, 0x07]);
        // bits: 0 (v same) | 0 (dod 0) | 1 1 (new window) 00001 (1 leading) 001011 (11 sig) 11111111111
        let rest = &c[14..];
        let mut r = BitReader::new(rest, 0);
        let expect: &[(u64, u8)] = &[(0, 1), (0, 1), (1, 1), (1, 1), (1, 5), (11, 6), (0x7ff, 11)];
        for &(v, n) in expect {
            assert_eq!(r.read_bits(n), Some(v));
        }
    }

    #[test]
    fn special_values_kept_bit_for_bit() {
        let vals = [
            f64::NAN,
            STALE_NAN,
            -0.0,
            0.0,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::from_bits(0x7ff8_dead_beef_0001),
            f64::MIN_POSITIVE,
            -1.5,
        ];
        let samples: Vec<Sample> = vals.iter().enumerate().map(|(i, &v)| Sample::new(i as i64 * 1000, v)).collect();
        assert!(same(&decode(&encode(&samples).unwrap()).unwrap(), &samples));
    }

    #[test]
    fn extreme_timestamps_wrap_like_go() {
        let samples =
            [Sample::new(i64::MIN, 1.0), Sample::new(0, 2.0), Sample::new(i64::MAX, 3.0), Sample::new(i64::MAX, 4.0)];
        assert!(same(&decode(&encode(&samples).unwrap()).unwrap(), &samples));
    }

    #[test]
    fn truncated_and_garbage_input_is_an_error() {
        assert_eq!(XorIter::new(&[0u8][..]).unwrap_err(), ChunkError::TooShort { len: 1 });
        let samples: Vec<Sample> = (0..50).map(|i| Sample::new(i * 1000 + (i * i) % 7, i as f64 * 1.1)).collect();
        let c = encode(&samples).unwrap();
        for cut in 2..c.len() {
            let r = decode(&c[..cut]);
            assert!(matches!(r, Err(ChunkError::Corrupt { .. })), "cut at {cut}: {r:?}");
        }
        // Claims more samples than the stream holds.
        let mut more = c.clone();
        more[0] = 0xff;
        assert!(decode(&more).is_err());
        // Random garbage never panics.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..2000 {
            let mut buf = vec![0u8; 40];
            for b in buf.iter_mut() {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *b = x as u8;
            }
            let _ = decode(&buf);
        }
    }

    #[test]
    fn appender_resumes_from_bytes() {
        let samples: Vec<Sample> = (0..30).map(|i| Sample::new(i * 997, (i as f64).sin())).collect();
        let mut a = XorAppender::new();
        for s in &samples[..17] {
            a.append(s.t, s.v).unwrap();
        }
        let mut b = XorAppender::from_chunk(a.bytes()).unwrap();
        for s in &samples[17..] {
            a.append(s.t, s.v).unwrap();
            b.append(s.t, s.v).unwrap();
        }
        assert_eq!(a.bytes(), b.bytes());
    }

    #[test]
    fn owned_iterator_and_seek() {
        let samples: Vec<Sample> = (0..10).map(|i| Sample::new(i * 10, i as f64)).collect();
        let bytes: std::sync::Arc<[u8]> = encode(&samples).unwrap().into();
        let mut it: OwnedXorIter = XorIter::new(bytes).unwrap();
        assert_eq!(it.seek(35).unwrap().unwrap(), Sample::new(40, 4.0));
        assert_eq!(it.count(), 5);
    }

    fn any_value() -> impl Strategy<Value = f64> {
        prop_oneof![
            any::<u64>().prop_map(f64::from_bits),
            Just(STALE_NAN),
            Just(f64::NAN),
            Just(-0.0),
            Just(f64::INFINITY),
            Just(f64::NEG_INFINITY),
            (0u32..1000).prop_map(|x| x as f64),
            (-1e6f64..1e6),
        ]
    }

    fn any_gap() -> impl Strategy<Value = i64> {
        prop_oneof![
            Just(0i64),
            Just(15_000),
            (14_990i64..15_010),
            0i64..1_000_000,
            0i64..(1 << 40),
            0i64..i64::MAX / 512,
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn round_trip_bit_exact(
            start in prop_oneof![any::<i64>().prop_map(|t| t / 4), Just(0i64), 1_600_000_000_000i64..1_800_000_000_000],
            gaps in proptest::collection::vec(any_gap(), 0..300),
            vals in proptest::collection::vec(any_value(), 300),
        ) {
            let mut t = start;
            let mut samples = Vec::new();
            for (g, v) in std::iter::once(0).chain(gaps).zip(vals) {
                t = t.saturating_add(g);
                samples.push(Sample::new(t, v));
            }
            let chunk = encode(&samples).unwrap();
            prop_assert_eq!(num_samples_of(&chunk) as usize, samples.len());
            let got = decode(&chunk).unwrap();
            prop_assert!(same(&got, &samples), "got {:?} want {:?}", got, samples);
        }
    }
}
