//! One appender and one iterator type over every chunk encoding, chosen by
//! the encoding byte stored next to each chunk.

use super::decimal::{self, DecimalAppender, DecimalIter, DECIMAL_HEADER_LEN, MODE_XOR};
use super::xor::{self, XorAppender, XorIter, HEADER_LEN};
use super::{ChunkError, Encoding};
use crate::model::Sample;

/// Appends to a chunk of any encoding.
#[derive(Debug, Clone)]
pub enum ChunkAppender {
    /// An XOR chunk.
    Xor(XorAppender),
    /// A Decimal chunk (which may hold an XOR stream itself).
    Decimal(DecimalAppender),
}

impl ChunkAppender {
    /// An empty chunk of encoding `enc` with room for `bytes` bytes.
    pub fn new(enc: Encoding, bytes: usize) -> Self {
        match enc {
            Encoding::Xor => ChunkAppender::Xor(XorAppender::with_capacity(bytes)),
            Encoding::Decimal => ChunkAppender::Decimal(DecimalAppender::with_capacity(bytes)),
        }
    }

    /// The encoding byte to store next to the chunk.
    #[inline]
    pub fn encoding(&self) -> Encoding {
        match self {
            ChunkAppender::Xor(_) => Encoding::Xor,
            ChunkAppender::Decimal(_) => Encoding::Decimal,
        }
    }

    /// Appends a sample; fails only when the chunk is full.
    #[inline]
    pub fn append(&mut self, t: i64, v: f64) -> Result<(), ChunkError> {
        match self {
            ChunkAppender::Xor(a) => a.append(t, v),
            ChunkAppender::Decimal(a) => a.append(t, v),
        }
    }

    /// Samples in the chunk.
    #[inline]
    pub fn num_samples(&self) -> u16 {
        xor::num_samples_of(self.bytes())
    }

    /// The encoded chunk so far (a valid chunk after every append).
    #[inline]
    pub fn bytes(&self) -> &[u8] {
        match self {
            ChunkAppender::Xor(a) => a.bytes(),
            ChunkAppender::Decimal(a) => a.bytes(),
        }
    }

    /// Timestamp of the last appended sample (meaningless when empty).
    #[inline]
    pub fn last_t(&self) -> i64 {
        match self {
            ChunkAppender::Xor(a) => a.last_t(),
            ChunkAppender::Decimal(a) => a.last_t(),
        }
    }

    /// Timestamp of the first sample, decoded from the chunk's start
    /// (`None` when empty): callers that need it rarely read it from the
    /// bytes rather than have every open chunk store it.
    pub fn first_t(&self) -> Option<i64> {
        let mut it = ChunkIter::new(self.encoding(), self.bytes()).ok()?;
        it.next()?.ok().map(|s| s.t)
    }

    /// Value of the last appended sample (meaningless when empty).
    #[inline]
    pub fn last_v(&self) -> f64 {
        match self {
            ChunkAppender::Xor(a) => a.last_v(),
            ChunkAppender::Decimal(a) => a.last_v(),
        }
    }

    /// The finished chunk bytes.
    pub fn finish(self) -> Vec<u8> {
        match self {
            ChunkAppender::Xor(a) => a.finish(),
            ChunkAppender::Decimal(a) => a.finish(),
        }
    }

    /// Heap bytes reserved by the buffer.
    pub fn capacity(&self) -> usize {
        match self {
            ChunkAppender::Xor(a) => a.capacity(),
            ChunkAppender::Decimal(a) => a.capacity(),
        }
    }

    /// Releases spare buffer capacity.
    pub fn shrink_to_fit(&mut self) {
        match self {
            ChunkAppender::Xor(a) => a.shrink_to_fit(),
            ChunkAppender::Decimal(a) => a.shrink_to_fit(),
        }
    }

    /// Grows the buffer's capacity to at least `bytes` in one step (it
    /// otherwise grows by an eighth, at least 32 bytes, whenever fewer than
    /// 20 bytes are left).
    pub fn reserve_total(&mut self, bytes: usize) {
        match self {
            ChunkAppender::Xor(a) => a.reserve_total(bytes),
            ChunkAppender::Decimal(a) => a.reserve_total(bytes),
        }
    }
}

/// The samples of `it` with `mint <= t <= maxt`, appended to `out` in one
/// loop specialised for the iterator (XOR chunks; scaled Decimal chunks have
/// their own, `DecimalIter::decode_range_into`); `Ok(false)` once a sample
/// is past `maxt`.
#[inline]
fn collect_range<I: Iterator<Item = Result<Sample, ChunkError>>>(
    it: &mut I,
    mint: i64,
    maxt: i64,
    out: &mut Vec<Sample>,
) -> Result<bool, ChunkError> {
    out.reserve(it.size_hint().1.unwrap_or(0));
    for s in it {
        let s = s?;
        if s.t > maxt {
            return Ok(false);
        }
        if s.t >= mint {
            out.push(s);
        }
    }
    Ok(true)
}

/// Decodes a chunk of any encoding from any byte container (`&[u8]`, an
/// `Arc<[u8]>`, a mapped-file slice). Yields `Err` once, then ends, when the
/// bytes are corrupt or truncated.
#[derive(Debug, Clone)]
pub enum ChunkIter<B> {
    /// An XOR bit stream (an XOR chunk, or a Decimal chunk in XOR mode).
    Xor(XorIter<B>),
    /// A Decimal chunk in scaled-integer mode.
    Decimal(DecimalIter<B>),
}

impl<B: AsRef<[u8]>> ChunkIter<B> {
    /// Iterates the chunk in `data` (header included) stored with encoding `enc`.
    pub fn new(enc: Encoding, data: B) -> Result<Self, ChunkError> {
        match enc {
            Encoding::Xor => Ok(ChunkIter::Xor(XorIter::new(data)?)),
            Encoding::Decimal => match data.as_ref().get(HEADER_LEN) {
                None => Err(ChunkError::TooShort { len: data.as_ref().len() }),
                Some(&MODE_XOR) => Ok(ChunkIter::Xor(XorIter::new_at(data, DECIMAL_HEADER_LEN)?)),
                Some(_) => Ok(ChunkIter::Decimal(DecimalIter::new(data)?)),
            },
        }
    }

    /// Samples the header announces.
    pub fn num_samples(&self) -> u16 {
        match self {
            ChunkIter::Xor(it) => it.num_samples(),
            ChunkIter::Decimal(it) => it.num_samples(),
        }
    }

    /// Appends the remaining samples with `mint <= t <= maxt` to `out`
    /// (one dispatch per chunk instead of per sample); `Ok(false)` once a
    /// sample is past `maxt`. An error leaves the samples decoded before it.
    pub fn decode_range_into(&mut self, mint: i64, maxt: i64, out: &mut Vec<Sample>) -> Result<bool, ChunkError> {
        match self {
            ChunkIter::Xor(it) => collect_range(it, mint, maxt, out),
            ChunkIter::Decimal(it) => it.decode_range_into(mint, maxt, out),
        }
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
}

impl<B: AsRef<[u8]>> Iterator for ChunkIter<B> {
    type Item = Result<Sample, ChunkError>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        match self {
            ChunkIter::Xor(it) => it.next(),
            ChunkIter::Decimal(it) => it.next(),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match self {
            ChunkIter::Xor(it) => it.size_hint(),
            ChunkIter::Decimal(it) => it.size_hint(),
        }
    }
}

/// Encodes `samples` (at most 65535) into one chunk of encoding `enc`,
/// choosing the smallest form the encoding offers.
pub fn encode_as(enc: Encoding, samples: &[Sample]) -> Result<Vec<u8>, ChunkError> {
    match enc {
        Encoding::Xor => xor::encode(samples),
        Encoding::Decimal => decimal::encode(samples),
    }
}

/// Decodes every sample of a chunk stored with encoding `enc`.
pub fn decode_as(enc: Encoding, chunk: &[u8]) -> Result<Vec<Sample>, ChunkError> {
    let it = ChunkIter::new(enc, chunk)?;
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

    #[test]
    fn range_decoding_matches_filtered_iteration() {
        // Decimal in scaled mode, Decimal falling back to XOR (a NaN), XOR.
        let plain: Vec<Sample> = (0..120).map(|i| Sample::new(i * 15_000 + i % 3, (i * 7 % 50) as f64 * 0.5)).collect();
        let mut with_nan = plain.clone();
        with_nan[60].v = f64::NAN;
        for (enc, samples) in [(Encoding::Decimal, &plain), (Encoding::Decimal, &with_nan), (Encoding::Xor, &plain)] {
            let bytes = encode_as(enc, samples).unwrap();
            for (mint, maxt) in
                [(i64::MIN, i64::MAX), (0, 0), (14_999, 600_000), (400_000, 401_000), (2_000_000, 3_000_000)]
            {
                let want: Vec<(i64, u64)> =
                    samples.iter().filter(|s| s.t >= mint && s.t <= maxt).map(|s| (s.t, s.v.to_bits())).collect();
                let mut out = vec![Sample::new(-1, 0.0)];
                let more = ChunkIter::new(enc, &bytes[..]).unwrap().decode_range_into(mint, maxt, &mut out).unwrap();
                let got: Vec<(i64, u64)> = out[1..].iter().map(|s| (s.t, s.v.to_bits())).collect();
                assert_eq!(got, want, "{enc:?} {mint}..{maxt}");
                assert_eq!(more, maxt >= samples[samples.len() - 1].t, "{enc:?} {mint}..{maxt}");
            }
            // Truncated bytes: an error, with the samples before the damage kept.
            let mut out = Vec::new();
            let cut = &bytes[..bytes.len() / 2];
            let r = ChunkIter::new(enc, cut).unwrap().decode_range_into(i64::MIN, i64::MAX, &mut out);
            assert!(r.is_err(), "{enc:?}");
            assert!(!out.is_empty() && out.len() < samples.len(), "{enc:?} kept {}", out.len());
            assert!(out.iter().zip(samples.iter()).all(|(a, b)| a.bit_eq(b)));
        }
    }

    #[test]
    fn both_encodings_through_one_interface() {
        let samples: Vec<Sample> = (0..200)
            .map(|i| Sample::new(1_000 + i * 15_000, if i == 150 { STALE_NAN } else { i as f64 * 0.25 }))
            .collect();
        for enc in [Encoding::Xor, Encoding::Decimal] {
            let mut a = ChunkAppender::new(enc, 16);
            assert_eq!(a.encoding(), enc);
            for s in &samples[..100] {
                a.append(s.t, s.v).unwrap();
            }
            assert_eq!(a.last_v(), 24.75);
            assert_eq!(a.last_t(), 1_000 + 99 * 15_000);
            let got = decode_as(enc, a.bytes()).unwrap();
            assert_eq!(got, samples[..100]);
            for s in &samples[100..] {
                a.append(s.t, s.v).unwrap();
            }
            assert_eq!(a.num_samples(), 200);
            assert!(a.last_v() == 49.75);
            let bytes = a.finish();
            let got = decode_as(enc, &bytes).unwrap();
            assert!(got.iter().zip(&samples).all(|(x, y)| x.bit_eq(y)));
            let mut it = ChunkIter::new(enc, &bytes[..]).unwrap();
            assert_eq!(it.seek(1_000 + 10 * 15_000 - 1).unwrap().unwrap(), samples[10]);
            let best = encode_as(enc, &samples).unwrap();
            assert!(decode_as(enc, &best).unwrap().iter().zip(&samples).all(|(x, y)| x.bit_eq(y)));
        }
    }

    #[test]
    fn decimal_is_smaller_on_short_decimals() {
        let samples: Vec<Sample> = (0..120).map(|i| Sample::new(i * 15_000, 100.0 + (i % 7) as f64 * 0.1)).collect();
        let x = encode_as(Encoding::Xor, &samples).unwrap();
        let d = encode_as(Encoding::Decimal, &samples).unwrap();
        assert!(d.len() * 2 < x.len(), "decimal {} bytes, xor {}", d.len(), x.len());
    }

    #[test]
    fn open_chunk_state_stays_small() {
        // One lives in every active head series (see head/series.rs).
        let n = std::mem::size_of::<ChunkAppender>();
        println!("ChunkAppender: {n} bytes, XorAppender: {}", std::mem::size_of::<XorAppender>());
        assert!(n <= 80, "{n} bytes");
    }

    #[test]
    fn short_decimal_chunk_is_an_error() {
        assert!(matches!(ChunkIter::new(Encoding::Decimal, &[0u8, 0][..]), Err(ChunkError::TooShort { len: 2 })));
    }
}
