//! The Decimal chunk: delta-of-delta timestamps and values stored as scaled
//! integers when every value of the chunk is an exact short decimal.
//!
//! Byte layout (see `docs/FORMAT.md`, "Decimal chunk"):
//!
//! ```text
//! ┌──────────────────────┬─────────┬──────────────────────────────────────────────┐
//! │ num samples: u16 BE  │ mode u8 │ bit stream, MSB first, zero-padded to a byte │
//! └──────────────────────┴─────────┴──────────────────────────────────────────────┘
//! mode 0xFF: the bit stream is an XOR chunk's (see xor.rs), for chunks holding
//!   a value that is not a short decimal (NaN, ±Inf, -0.0, many digits).
//! otherwise: mode = s << 6 | predictor << 4 | k, k ∈ 0..=15, predictor
//!   0 = delta, 1 = delta of delta, 2 = adaptive, 3 = blocked; every value v is m / 10^k
//!   for an integer m with |m| ≤ 2^53, bit for bit. With s = 1 a shift byte
//!   (1..=62) follows the mode: every delta mn - mn-1 is a multiple of
//!   2^shift and stored divided by it (byte gauges moving in pages).
//! timestamps as in the XOR chunk (zig-zag varint, uvarint delta, dod buckets);
//! sample 0: m0 as zig-zag varint (8-bit groups, like the first timestamp)
//! sample 1: d1 = m1 - m0 as zig-zag varint (8-bit groups)
//! sample n ≥ 2: with dn = mn - mn-1, the residual r = dn (delta) or
//!   dn - dn-1 (delta of delta), zig-zagged (z) and Golomb-Rice coded:
//!   q = z >> k as q '1's and a '0', then the low k bits of z; when q ≥ 20:
//!   twenty '1's, (bit width of z) - 1 in 6 bits, then z in that width.
//!   k adapts as in JPEG-LS: both sides keep, per predictor, the sum S of
//!   its zig-zagged residuals and the count Z of zero ones over N samples
//!   (N starts at 1, S and Z at 0; all halved when N reaches 16); k is the
//!   smallest with N·2^k ≥ S. When Z·k > N - Z, a zero flag comes first:
//!   '0' for z = 0, else '1' and z - 1 Rice coded with the smallest k where
//!   (N - Z)·2^k ≥ S.
//! adaptive: delta of delta is used while its S is ≤ the delta's S.
//! blocked: the same choices made once per block (samples 2, 3, 4..5,
//!   6..9, 10..17, then 16 at a time) from statistics updated per block
//!   (see `BlockStats`), so decoding a sample is only reading it.
//! ```
//!
//! Decoding computes `m as f64 / 10^k` (`m as f64` for k = 0); the encoder
//! accepts a value only if that expression gives back its exact bits, so
//! every chunk round-trips bit for bit whatever its values.

use super::bits::{BitReader, BitWriter};
use super::xor::{self, XorAppender, XorIter, HEADER_LEN, MAX_SAMPLES};
use super::ChunkError;
use crate::model::Sample;

/// Bytes before the bit stream: sample count (2) and mode (1).
pub const DECIMAL_HEADER_LEN: usize = HEADER_LEN + 1;

/// Mode byte of a Decimal chunk that holds an XOR bit stream.
pub const MODE_XOR: u8 = 0xff;

/// Mode bit: a shift byte follows the mode byte.
const MODE_SHIFT: u8 = 0x40;

/// Largest decimal scale (digits after the point).
pub const MAX_SCALE: u8 = 15;

/// Largest |m| stored: every integer up to 2^53 is exact as an `f64`.
const MAX_MANTISSA: f64 = 9_007_199_254_740_992.0;

/// Powers of ten 10^0..=10^15, all exact in `f64`.
const POW10: [f64; 16] = [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15];

/// How the integer residual of a sample is predicted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Predictor {
    /// r = mn - mn-1 (gauges, rarely moving counters).
    Delta = 0,
    /// r = (mn - mn-1) - (mn-1 - mn-2) (steadily growing counters).
    DeltaOfDelta = 1,
    /// Per sample, whichever of the two has cost less so far in the chunk.
    Adaptive = 2,
    /// Per block of samples, whichever of the two cost less lately (the
    /// previous block, plus half of what counted before it), with the Rice
    /// code those residuals give (see [`BlockStats`]): the decoder's
    /// per-sample work is only the read.
    Blocked = 3,
}

impl Predictor {
    fn from_bits(b: u8) -> Option<Predictor> {
        match b {
            0 => Some(Predictor::Delta),
            1 => Some(Predictor::DeltaOfDelta),
            2 => Some(Predictor::Adaptive),
            3 => Some(Predictor::Blocked),
            _ => None,
        }
    }
}

/// The value as `m / 10^k`, if that gives back its exact bits.
#[inline]
pub fn scaled(v: f64, k: u8) -> Option<i64> {
    let p = POW10[(k & 15) as usize];
    let m = (v * p).round();
    // NaN fails the comparison; ±Inf and huge values fail the bound.
    if !(m.abs() <= MAX_MANTISSA) {
        return None;
    }
    let m = m as i64;
    // Back from the integer, as the decoder does (so -0.0 does not pass as 0).
    (unscale(m, k).to_bits() == v.to_bits()).then_some(m)
}

/// The smallest scale ≥ `from` at which `v` is exact, with its integer.
#[inline]
pub fn min_scale(v: f64, from: u8) -> Option<(u8, i64)> {
    (from..=MAX_SCALE).find_map(|k| scaled(v, k).map(|m| (k, m)))
}

#[inline]
fn unscale(m: i64, k: u8) -> f64 {
    if k == 0 {
        m as f64
    } else {
        m as f64 / POW10[(k & 15) as usize]
    }
}

/// Unary prefixes longer than this escape to an explicit bit width.
const RICE_LIMIT: u64 = 20;

/// Samples after which the running sums are halved, so the coder follows
/// changes within a chunk.
const RESCALE_AT: u32 = 16;

#[inline]
fn zigzag(r: i64) -> u64 {
    ((r << 1) ^ (r >> 63)) as u64
}

#[inline]
fn unzigzag(z: u64) -> i64 {
    ((z >> 1) as i64) ^ -((z & 1) as i64)
}

/// The smallest k with n·2^k ≥ sum.
#[inline]
fn rice_k(sum: u64, n: u32) -> u8 {
    let n = u64::from(n.max(1));
    if sum <= n {
        return 0;
    }
    // With a = ⌊log2 sum⌋ and b = ⌊log2 n⌋, k is a - b or a - b + 1
    // (no division on the per-sample path); n << (a - b) < 2^(a+1) fits.
    let k = n.leading_zeros() - sum.leading_zeros();
    let k = if (n << k) < sum { k + 1 } else { k };
    k.min(63) as u8
}

/// Adaptive Golomb-Rice statistics (as in JPEG-LS) of one predictor's
/// zig-zagged residuals: their `sum` and the number of `zeros` over `n`
/// samples (`n` counts one phantom sample so it is never 0).
#[derive(Debug, Clone, Copy)]
struct Rice {
    sum: u64,
    n: u32,
    zeros: u32,
}

impl Rice {
    const START: Rice = Rice { sum: 0, n: 1, zeros: 0 };

    /// How the next residual is coded: with a zero flag (when zeros are
    /// frequent enough that a flag bit is cheaper than k bits on each) and
    /// the Rice parameter.
    #[inline]
    fn code(&self) -> (bool, u8) {
        let k = rice_k(self.sum, self.n);
        let nonzero = self.n - self.zeros;
        if u64::from(self.zeros) * u64::from(k) > u64::from(nonzero) {
            (true, rice_k(self.sum, nonzero))
        } else {
            (false, k)
        }
    }

    #[inline]
    fn update(&mut self, z: u64) {
        self.sum = self.sum.saturating_add(z);
        self.n += 1;
        self.zeros += u32::from(z == 0);
        if self.n >= RESCALE_AT {
            self.sum >>= 1;
            self.n >>= 1;
            self.zeros >>= 1;
        }
    }
}

/// Writes zig-zagged residual `z` as `st` says: with the zero flag, '0' for
/// z == 0 or '1' + Rice(z - 1); without it, Rice(z).
#[inline]
fn write_residual<E>(w: &mut BitWriter<E>, st: &Rice, z: u64) {
    let (flag, k) = st.code();
    write_coded(w, flag, k, z);
}

/// Writes zig-zagged residual `z` with the zero flag (when `flag`) and Rice
/// parameter `k`.
#[inline]
fn write_coded<E>(w: &mut BitWriter<E>, flag: bool, k: u8, z: u64) {
    if !flag {
        write_rice(w, k, z);
    } else if z == 0 {
        w.write_bit(false);
    } else {
        w.write_bit(true);
        write_rice(w, k, z - 1);
    }
}

/// Whether the residual of the next sample is its delta of delta.
#[inline]
fn use_dod(pred: Predictor, delta: &Rice, dod: &Rice) -> bool {
    match pred {
        Predictor::Delta => false,
        Predictor::DeltaOfDelta => true,
        // Ties go to delta of delta: a counter's first residuals then cost nothing.
        Predictor::Adaptive | Predictor::Blocked => dod.sum <= delta.sum,
    }
}

/// Where the block after the one starting at sample `start` starts, in a
/// [`Predictor::Blocked`] chunk: blocks start at samples 2, 3, 4, 6, 10,
/// 18, 34, 50, ... (lengths 1, 1, 2, 4, 8, then 16), so the code follows
/// the first samples closely and then changes every 16.
#[inline]
fn next_block_start(start: u16) -> u16 {
    // Saturating: a corrupt header may announce up to 65535 samples.
    if start < 4 {
        start + 1
    } else {
        start.saturating_add((start - 2).min(BLOCK))
    }
}

/// Whether sample `n` starts a block (see [`next_block_start`]).
#[inline]
fn is_block_start(n: u16) -> bool {
    matches!(n, 2 | 3 | 4 | 6 | 10) || (n >= 18 && (n - 18).is_multiple_of(BLOCK))
}

/// Length of a full block of a [`Predictor::Blocked`] chunk.
const BLOCK: u16 = 16;

/// The residual statistics from which a [`Predictor::Blocked`] chunk
/// chooses each block's code: the previous block's residuals plus half of
/// what the block before it carried (like [`Rice`], but updated per block).
#[derive(Debug, Clone, Copy)]
struct BlockStats {
    /// Sums of the zig-zagged deltas and deltas of delta.
    sum_delta: u64,
    sum_dod: u64,
    /// How many of each were zero.
    zeros_delta: u32,
    zeros_dod: u32,
    /// Samples counted (the block's, plus half the carried count).
    n: u32,
}

impl BlockStats {
    const EMPTY: BlockStats = BlockStats { sum_delta: 0, sum_dod: 0, zeros_delta: 0, zeros_dod: 0, n: 0 };

    /// The pseudo-block before sample 2: sample 1's delta, and no delta of
    /// delta (so the first block codes deltas).
    fn after_first_delta(delta: i64) -> Self {
        let z = zigzag(delta);
        BlockStats { sum_delta: z, sum_dod: z.saturating_add(1), zeros_delta: u32::from(z == 0), zeros_dod: 0, n: 1 }
    }

    /// The statistics carried into the next block: halved, so that the
    /// code follows changes but one quiet block does not forget a spike.
    #[inline(always)]
    fn halved(self) -> Self {
        BlockStats {
            sum_delta: self.sum_delta >> 1,
            sum_dod: self.sum_dod >> 1,
            zeros_delta: self.zeros_delta >> 1,
            zeros_dod: self.zeros_dod >> 1,
            n: self.n >> 1,
        }
    }

    #[inline(always)]
    fn add(&mut self, zd: u64, zdd: u64) {
        self.sum_delta = self.sum_delta.saturating_add(zd);
        self.sum_dod = self.sum_dod.saturating_add(zdd);
        self.zeros_delta += u32::from(zd == 0);
        self.zeros_dod += u32::from(zdd == 0);
        self.n += 1;
    }

    /// The code of the next block: the predictor whose residuals summed
    /// less (ties to delta of delta, as [`Predictor::Adaptive`]), with the
    /// zero flag and Rice parameter its statistics give.
    #[inline]
    fn code(&self) -> BlockCode {
        let by_dod = self.sum_dod <= self.sum_delta;
        let (sum, zeros) = if by_dod { (self.sum_dod, self.zeros_dod) } else { (self.sum_delta, self.zeros_delta) };
        let (flag, k) = Rice { sum, n: self.n.max(1), zeros }.code();
        BlockCode { by_dod, flag, k }
    }
}

/// How the residuals of one block are coded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct BlockCode {
    by_dod: bool,
    flag: bool,
    k: u8,
}

impl BlockCode {
    const START: BlockCode = BlockCode { by_dod: false, flag: false, k: 0 };

    /// Packed into a byte: by_dod, flag, then k (< 64).
    fn to_byte(self) -> u8 {
        u8::from(self.by_dod) << 7 | u8::from(self.flag) << 6 | (self.k & 63)
    }

    fn from_byte(b: u8) -> Self {
        BlockCode { by_dod: b & 0x80 != 0, flag: b & 0x40 != 0, k: b & 63 }
    }
}

/// Writes zig-zagged `z` with Rice parameter k: q = z >> k as q
/// ones and a zero, then the low k bits; when q ≥ 20, twenty ones, the bit
/// width w of z less one (6 bits) and z in w bits.
#[inline]
fn write_rice<E>(w: &mut BitWriter<E>, k: u8, z: u64) {
    let q = z >> k;
    if q < RICE_LIMIT {
        // q + 1 ≤ 20 bits: q ones then a zero.
        w.write_bits(((1u64 << q) - 1) << 1, q as u8 + 1);
        if k > 0 {
            w.write_bits(z & ((1u64 << k) - 1), k);
        }
    } else {
        w.write_bits((1u64 << RICE_LIMIT) - 1, RICE_LIMIT as u8);
        // q ≥ 1 so z ≥ 1 and the width is 1..=64.
        let width = 64 - z.leading_zeros() as u8;
        w.write_bits(u64::from(width - 1), 6);
        w.write_bits(z, width);
    }
}

/// The encoder state of a chunk in scaled-integer mode.
///
/// 80 bytes: the one-byte fields ride in the writer's padding and the two
/// Rice statistics are kept as their sums plus one-byte counts (both count
/// the same samples and rescale at 16), so that an open head chunk keeps
/// its series in jemalloc's 160-byte size class (see `head/series.rs`).
#[derive(Debug, Clone)]
struct Scaled {
    w: BitWriter<ScaledBytes>,
    t: i64,
    t_delta: u64,
    m: i64,
    m_delta: i64,
    /// `Rice::sum` of the zig-zagged deltas and of the deltas of delta.
    sum_delta: u64,
    sum_dod: u64,
}

/// The one-byte fields of [`Scaled`], stored in its writer's padding.
#[derive(Debug, Clone, Copy)]
struct ScaledBytes {
    shift: u8,
    k: u8,
    pred: Predictor,
    /// `Rice::n` of both statistics (< `RESCALE_AT`; with the blocked
    /// predictor, `BlockStats::n`, < 32).
    n: u8,
    /// `Rice::zeros` of the deltas and of the deltas of delta (≤ `n`).
    zeros_delta: u8,
    zeros_dod: u8,
    /// With [`Predictor::Blocked`], the current block's [`BlockCode`]
    /// (and the fields above hold its [`BlockStats`] so far).
    code: u8,
}

impl Scaled {
    fn new(bytes: usize, k: u8, pred: Predictor) -> Self {
        Self::with_shift(bytes, k, pred, 0)
    }

    /// A chunk whose integer deltas are all multiples of 2^shift (stored
    /// divided by it; shift 1..=62 adds the shift byte to the header).
    fn with_shift(bytes: usize, k: u8, pred: Predictor, shift: u8) -> Self {
        let mut buf = Vec::with_capacity(bytes.max(DECIMAL_HEADER_LEN + 1));
        if shift == 0 {
            buf.extend_from_slice(&[0, 0, (pred as u8) << 4 | k]);
        } else {
            buf.extend_from_slice(&[0, 0, MODE_SHIFT | (pred as u8) << 4 | k, shift]);
        }
        let start = Rice::START;
        let small = ScaledBytes {
            shift,
            k,
            pred,
            n: start.n as u8,
            zeros_delta: start.zeros as u8,
            zeros_dod: start.zeros as u8,
            code: BlockCode::START.to_byte(),
        };
        Scaled {
            w: BitWriter::with_owner(buf, 0, small),
            t: 0,
            t_delta: 0,
            m: 0,
            m_delta: 0,
            sum_delta: start.sum,
            sum_dod: start.sum,
        }
    }

    fn k(&self) -> u8 {
        self.w.owner.k
    }

    fn pred(&self) -> Predictor {
        self.w.owner.pred
    }

    /// The Rice statistics of the deltas and of the deltas of delta.
    #[inline]
    fn rice(&self) -> (Rice, Rice) {
        let b = self.block();
        (Rice { sum: b.sum_delta, n: b.n, zeros: b.zeros_delta }, Rice { sum: b.sum_dod, n: b.n, zeros: b.zeros_dod })
    }

    /// Stores statistics updated by the same samples (`Rice::update` keeps
    /// `n` below `RESCALE_AT` and `zeros` ≤ `n`).
    #[inline]
    fn set_rice(&mut self, delta: Rice, dod: Rice) {
        debug_assert!(delta.n == dod.n && delta.n < RESCALE_AT);
        self.set_block(BlockStats {
            sum_delta: delta.sum,
            sum_dod: dod.sum,
            zeros_delta: delta.zeros,
            zeros_dod: dod.zeros,
            n: delta.n,
        });
    }

    fn num_samples(&self) -> u16 {
        xor::num_samples_of(&self.w.buf)
    }

    /// The statistics the fields hold: the current block's with
    /// [`Predictor::Blocked`], else both predictors' [`Rice`] ones (see
    /// [`Scaled::rice`]).
    #[inline]
    fn block(&self) -> BlockStats {
        let o = &self.w.owner;
        BlockStats {
            sum_delta: self.sum_delta,
            sum_dod: self.sum_dod,
            zeros_delta: u32::from(o.zeros_delta),
            zeros_dod: u32::from(o.zeros_dod),
            n: u32::from(o.n),
        }
    }

    /// Stores statistics (a block's 16 samples and the half carried over
    /// count under 32, and `Rice` ones stay under `RESCALE_AT`, so the
    /// casts are exact).
    #[inline]
    fn set_block(&mut self, b: BlockStats) {
        debug_assert!(b.n < 2 * u32::from(BLOCK));
        self.sum_delta = b.sum_delta;
        self.sum_dod = b.sum_dod;
        let o = &mut self.w.owner;
        o.n = b.n as u8;
        o.zeros_delta = b.zeros_delta as u8;
        o.zeros_dod = b.zeros_dod as u8;
    }

    /// Writes sample n ≥ 2 of a [`Predictor::Blocked`] chunk.
    #[inline]
    fn push_blocked(&mut self, num: u16, zd: u64, zdd: u64) {
        let mut b = self.block();
        if is_block_start(num) {
            self.w.owner.code = b.code().to_byte();
            b = b.halved();
        }
        let code = BlockCode::from_byte(self.w.owner.code);
        write_coded(&mut self.w, code.flag, code.k, if code.by_dod { zdd } else { zd });
        b.add(zd, zdd);
        self.set_block(b);
    }

    /// Appends a sample whose value is `m / 10^k`.
    #[inline]
    fn push(&mut self, t: i64, m: i64) {
        let num = self.num_samples();
        let buf = &mut self.w.buf;
        // At most 4 + 64 timestamp bits and 8 + 64 value bits (< 20 bytes).
        if buf.capacity() - buf.len() < 20 {
            buf.reserve_exact((buf.len() / 8).max(32));
        }
        self.t_delta = self.w.write_timestamp(num, t, self.t, self.t_delta);
        let shift = self.w.owner.shift;
        if num == 0 {
            self.w.write_varint(m);
            self.m_delta = 0;
        } else if num == 1 {
            self.m_delta = m.wrapping_sub(self.m) >> shift;
            self.w.write_varint(self.m_delta);
            if self.pred() == Predictor::Blocked {
                self.set_block(BlockStats::after_first_delta(self.m_delta));
            }
        } else if self.pred() == Predictor::Blocked {
            let delta = m.wrapping_sub(self.m) >> shift;
            let dod = delta.wrapping_sub(self.m_delta);
            self.push_blocked(num, zigzag(delta), zigzag(dod));
            self.m_delta = delta;
        } else {
            let delta = m.wrapping_sub(self.m) >> shift;
            let dod = delta.wrapping_sub(self.m_delta);
            let (zd, zdd) = (zigzag(delta), zigzag(dod));
            let (mut rice_delta, mut rice_dod) = self.rice();
            if use_dod(self.pred(), &rice_delta, &rice_dod) {
                write_residual(&mut self.w, &rice_dod, zdd);
            } else {
                write_residual(&mut self.w, &rice_delta, zd);
            }
            rice_delta.update(zd);
            rice_dod.update(zdd);
            self.set_rice(rice_delta, rice_dod);
            self.m_delta = delta;
        }
        self.t = t;
        self.m = m;
        let n = (num + 1).to_be_bytes();
        self.w.buf[0] = n[0];
        self.w.buf[1] = n[1];
    }
}

#[derive(Debug, Clone)]
enum Inner {
    Scaled(Scaled),
    Xor(XorAppender),
}

/// Encodes samples into one Decimal chunk, online: it starts in scaled mode
/// with the smallest scale that fits, raises the scale (re-encoding the
/// chunk) when a value needs more digits, and re-encodes the chunk as XOR on
/// the first value that is no short decimal. `bytes()` is a valid chunk after
/// every append.
#[derive(Debug, Clone)]
pub struct DecimalAppender {
    inner: Inner,
}

impl Default for DecimalAppender {
    fn default() -> Self {
        Self::new()
    }
}

impl DecimalAppender {
    /// An empty chunk with the blocked predictor.
    pub fn new() -> Self {
        Self::with_capacity(DECIMAL_HEADER_LEN)
    }

    /// An empty chunk whose buffer can hold `bytes` bytes before growing.
    pub fn with_capacity(bytes: usize) -> Self {
        Self::with_predictor(bytes, Predictor::Blocked)
    }

    /// An empty chunk using `pred` for its integers.
    pub fn with_predictor(bytes: usize, pred: Predictor) -> Self {
        DecimalAppender { inner: Inner::Scaled(Scaled::new(bytes, 0, pred)) }
    }

    /// An empty chunk that stores XOR from the start (mode 0xFF).
    pub fn xor_mode(bytes: usize) -> Self {
        DecimalAppender { inner: Inner::Xor(XorAppender::with_header(bytes, MODE_XOR)) }
    }

    /// Samples in the chunk.
    #[inline]
    pub fn num_samples(&self) -> u16 {
        xor::num_samples_of(self.bytes())
    }

    /// The encoded chunk so far (header included).
    #[inline]
    pub fn bytes(&self) -> &[u8] {
        match &self.inner {
            Inner::Scaled(s) => &s.w.buf,
            Inner::Xor(x) => x.bytes(),
        }
    }

    /// Timestamp of the last appended sample (meaningless when empty).
    #[inline]
    pub fn last_t(&self) -> i64 {
        match &self.inner {
            Inner::Scaled(s) => s.t,
            Inner::Xor(x) => x.last_t(),
        }
    }

    /// Value of the last appended sample (meaningless when empty).
    #[inline]
    pub fn last_v(&self) -> f64 {
        match &self.inner {
            Inner::Scaled(s) => unscale(s.m, s.k()),
            Inner::Xor(x) => x.last_v(),
        }
    }

    /// Whether the chunk fell back to the XOR bit stream.
    pub fn is_xor(&self) -> bool {
        matches!(self.inner, Inner::Xor(_))
    }

    /// The finished chunk bytes.
    pub fn finish(self) -> Vec<u8> {
        match self.inner {
            Inner::Scaled(s) => s.w.buf,
            Inner::Xor(x) => x.finish(),
        }
    }

    /// Heap bytes reserved by the buffer.
    pub fn capacity(&self) -> usize {
        match &self.inner {
            Inner::Scaled(s) => s.w.buf.capacity(),
            Inner::Xor(x) => x.capacity(),
        }
    }

    /// Releases spare buffer capacity.
    pub fn shrink_to_fit(&mut self) {
        match &mut self.inner {
            Inner::Scaled(s) => s.w.buf.shrink_to_fit(),
            Inner::Xor(x) => x.shrink_to_fit(),
        }
    }

    /// Grows the buffer's capacity to at least `bytes` in one step.
    pub fn reserve_total(&mut self, bytes: usize) {
        match &mut self.inner {
            Inner::Scaled(s) => s.w.buf.reserve_exact(bytes.saturating_sub(s.w.buf.len())),
            Inner::Xor(x) => x.reserve_total(bytes),
        }
    }

    /// Appends a sample. The codec does not check order (the head does);
    /// fails only when the chunk already holds [`MAX_SAMPLES`].
    #[inline]
    pub fn append(&mut self, t: i64, v: f64) -> Result<(), ChunkError> {
        match &mut self.inner {
            Inner::Xor(x) => x.append(t, v),
            Inner::Scaled(s) => {
                if s.num_samples() == MAX_SAMPLES {
                    return Err(ChunkError::Full);
                }
                match scaled(v, s.k()) {
                    Some(m) => {
                        s.push(t, m);
                        Ok(())
                    }
                    None => self.append_slow(t, v),
                }
            }
        }
    }

    /// `v` does not fit the current scale: raise the scale or turn to XOR,
    /// re-encoding the samples so far.
    #[cold]
    fn append_slow(&mut self, t: i64, v: f64) -> Result<(), ChunkError> {
        let Inner::Scaled(s) = &self.inner else { return Ok(()) };
        let (k, pred, cap) = (s.k(), s.pred(), s.w.buf.capacity());
        if s.num_samples() == 0 {
            self.inner = match min_scale(v, k) {
                Some((k, m)) => {
                    let mut n = Scaled::new(cap, k, pred);
                    n.push(t, m);
                    Inner::Scaled(n)
                }
                None => {
                    let mut x = XorAppender::with_header(cap, MODE_XOR);
                    x.append(t, v)?;
                    Inner::Xor(x)
                }
            };
            return Ok(());
        }
        let mut samples = decode(&s.w.buf)?;
        samples.push(Sample::new(t, v));
        let need = min_scale(v, k + 1).map(|(k, _)| k);
        let re = need.and_then(|k| encode_scaled(&samples, k, pred, cap));
        self.inner = match re {
            Some(s) => Inner::Scaled(s),
            None => {
                let mut x = XorAppender::with_header(cap + samples.len() * 4, MODE_XOR);
                for s in &samples {
                    x.append(s.t, s.v)?;
                }
                Inner::Xor(x)
            }
        };
        Ok(())
    }
}

/// The samples in scaled mode with scale `k`, or `None` when one does not fit.
fn encode_scaled(samples: &[Sample], k: u8, pred: Predictor, cap: usize) -> Option<Scaled> {
    encode_shifted(samples, k, pred, cap, 0)
}

/// Like [`encode_scaled`] with every integer delta a multiple of 2^shift.
fn encode_shifted(samples: &[Sample], k: u8, pred: Predictor, cap: usize, shift: u8) -> Option<Scaled> {
    let mut s = Scaled::with_shift(cap, k, pred, shift);
    for x in samples {
        s.push(x.t, scaled(x.v, k)?);
    }
    Some(s)
}

/// Encodes `samples` into the smallest Decimal chunk this module can make:
/// the smallest common scale with each predictor, or XOR mode, whichever is
/// shortest (for block writing, where the samples are known up front).
pub fn encode(samples: &[Sample]) -> Result<Vec<u8>, ChunkError> {
    if samples.len() > MAX_SAMPLES as usize {
        return Err(ChunkError::Full);
    }
    let mut k = 0u8;
    let mut fits = true;
    for s in samples {
        match scaled(s.v, k) {
            Some(_) => {}
            None => match min_scale(s.v, k + 1) {
                Some((k2, _)) => k = k2,
                None => {
                    fits = false;
                    break;
                }
            },
        }
    }
    let cap = DECIMAL_HEADER_LEN + samples.len() * 2 + 16;
    // The chosen encoding's cost (see `blocked_discount`) and bytes.
    let mut best: Option<(usize, Vec<u8>)> = None;
    if fits {
        // The largest power of two dividing every delta (byte gauges move in pages).
        let mut shift = 0u8;
        let ms: Option<Vec<i64>> = samples.iter().map(|s| scaled(s.v, k)).collect();
        if let Some(ms) = ms {
            let tz = ms.windows(2).map(|w| w[1].wrapping_sub(w[0])).filter(|&d| d != 0).map(i64::trailing_zeros).min();
            shift = tz.unwrap_or(0).min(62) as u8;
        }
        // The shift byte does not pay off on short chunks: try without it too.
        let shifts: &[u8] = if shift > 0 { &[0, shift] } else { &[0] };
        for &sh in shifts {
            // Blocked first: it decodes fastest, and wins ties.
            for pred in [Predictor::Blocked, Predictor::Adaptive, Predictor::Delta, Predictor::DeltaOfDelta] {
                // A scale can still fail for a value whose smaller scale fit but whose
                // integer grows past 2^53 at this one; XOR mode below covers it.
                if let Some(s) = encode_shifted(samples, k, pred, cap, sh) {
                    let cost = blocked_discount(pred, s.w.buf.len());
                    if best.as_ref().is_none_or(|&(c, _)| cost < c) {
                        best = Some((cost, s.w.buf));
                    }
                }
            }
        }
    }
    let best = best.map(|(_, b)| b);
    let mut x = XorAppender::with_header(cap, MODE_XOR);
    // Skip XOR when a scaled encoding already averages under 2 bytes a sample:
    // XOR never gets below ~2 bits a sample, but the bound keeps encoding cheap.
    let try_xor = best.as_ref().is_none_or(|b| b.len() > DECIMAL_HEADER_LEN + 8 + samples.len() / 4);
    if try_xor {
        for s in samples {
            x.append(s.t, s.v)?;
        }
        if best.as_ref().is_none_or(|b| x.bytes().len() < b.len()) {
            return Ok(x.finish());
        }
    }
    best.map_or_else(|| Ok(x.finish()), Ok)
}

/// What a chunk of `len` bytes with predictor `pred` costs when the block
/// writer picks the smallest: [`Predictor::Blocked`] counts 1/32 less, as
/// it decodes faster (`chunk/decimal_decode_*` in `benches/storage.rs`)
/// and another predictor seldom saves more.
fn blocked_discount(pred: Predictor, len: usize) -> usize {
    if pred == Predictor::Blocked {
        len - len / 32
    } else {
        len
    }
}

/// Decodes every sample of a Decimal chunk.
pub fn decode(chunk: &[u8]) -> Result<Vec<Sample>, ChunkError> {
    let mut out = Vec::with_capacity(xor::num_samples_of(chunk) as usize);
    match chunk.get(HEADER_LEN) {
        None => return Err(ChunkError::TooShort { len: chunk.len() }),
        Some(&MODE_XOR) => {
            for s in XorIter::new_at(chunk, DECIMAL_HEADER_LEN)? {
                out.push(s?);
            }
        }
        Some(_) => {
            for s in DecimalIter::new(chunk)? {
                out.push(s?);
            }
        }
    }
    Ok(out)
}

/// Decodes a Decimal chunk in scaled mode (mode ≠ 0xFF; use
/// [`super::ChunkIter`] for any chunk). Yields `Err` once, then ends, when
/// the bytes are corrupt or truncated.
#[derive(Debug, Clone)]
pub struct DecimalIter<B> {
    shift: u8,
    r: BitReader<B>,
    total: u16,
    read: u16,
    st: ScaledState,
    k: u8,
    pred: Predictor,
    failed: bool,
}

impl<B: AsRef<[u8]>> DecimalIter<B> {
    /// Iterates the scaled-mode chunk in `data` (header included).
    pub fn new(data: B) -> Result<Self, ChunkError> {
        let bytes = data.as_ref();
        let Some(&mode) = bytes.get(HEADER_LEN) else { return Err(ChunkError::TooShort { len: bytes.len() }) };
        let bad = |what| ChunkError::Corrupt { sample: 0, bit_offset: (HEADER_LEN * 8) as u64, what };
        let pred =
            Predictor::from_bits((mode >> 4) & 3).filter(|_| mode & 0x80 == 0).ok_or(bad("decimal chunk mode"))?;
        let (shift, start) = if mode & MODE_SHIFT != 0 {
            match bytes.get(DECIMAL_HEADER_LEN) {
                Some(&s) if (1..=62).contains(&s) => (s, DECIMAL_HEADER_LEN + 1),
                Some(_) => return Err(bad("decimal chunk shift")),
                None => return Err(ChunkError::TooShort { len: bytes.len() }),
            }
        } else {
            (0, DECIMAL_HEADER_LEN)
        };
        let total = xor::num_samples_of(bytes);
        Ok(DecimalIter {
            shift,
            r: BitReader::new(data, start),
            total,
            read: 0,
            st: ScaledState {
                t: 0,
                t_delta: 0,
                m: 0,
                m_delta: 0,
                rice_delta: Rice::START,
                rice_dod: Rice::START,
                block: BlockStats::EMPTY,
                code: BlockCode::START,
                next_block: 2,
            },
            k: mode & 15,
            pred,
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

    fn corrupt(&mut self, what: &'static str) -> ChunkError {
        self.failed = true;
        ChunkError::Corrupt { sample: self.read, bit_offset: self.r.bit_pos() as u64, what }
    }

    fn read_uvarint(&mut self, what: &'static str) -> Result<u64, ChunkError> {
        let mut v: u64 = 0;
        for i in 0..10u32 {
            let b = self.r.read_bits(8).ok_or_else(|| self.corrupt(what))?;
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

    fn decode_next(&mut self) -> Result<Sample, ChunkError> {
        match self.read {
            0 => {
                self.st.t = unzigzag(self.read_uvarint("varint timestamp")?);
                self.st.m = unzigzag(self.read_uvarint("varint value")?);
                self.st.m_delta = 0;
            }
            1 => {
                self.st.t_delta = self.read_uvarint("varint timestamp")?;
                self.st.t = self.st.t.wrapping_add(self.st.t_delta as i64);
                let delta = unzigzag(self.read_uvarint("varint value")?);
                self.st.m = self.st.m.wrapping_add(delta.wrapping_shl(u32::from(self.shift)));
                self.st.m_delta = delta;
                self.st.block = BlockStats::after_first_delta(delta);
            }
            n if self.pred == Predictor::Blocked => self.next_blocked(n).map_err(|what| self.corrupt(what))?,
            _ => decode_later(&mut self.r, &mut self.st, self.pred, self.shift).map_err(|what| self.corrupt(what))?,
        }
        self.read += 1;
        Ok(Sample::new(self.st.t, unscale(self.st.m, self.k)))
    }

    /// Decodes sample `n` ≥ 2 of a [`Predictor::Blocked`] chunk.
    fn next_blocked(&mut self, n: u16) -> Result<(), &'static str> {
        let mut c = BlockedCursor::new(&self.st, self.r.bit_pos());
        if n == self.st.next_block {
            self.st.code = c.start_block();
            self.st.next_block = next_block_start(n);
        }
        c.step(self.r.data(), self.st.code, self.shift)?;
        c.store(&mut self.st);
        self.r.seek_bit(c.pos);
        Ok(())
    }

    /// Appends the remaining samples with `mint <= t <= maxt` to `out`;
    /// `Ok(false)` once a sample is past `maxt` (that sample is consumed).
    /// The same samples and errors as iterating, in one loop that keeps the
    /// decoder's state in registers instead of reloading it per sample.
    pub fn decode_range_into(&mut self, mint: i64, maxt: i64, out: &mut Vec<Sample>) -> Result<bool, ChunkError> {
        if self.failed {
            return Ok(true);
        }
        out.reserve(usize::from(self.total.saturating_sub(self.read)));
        // The first two samples are varints.
        while self.read < self.total.min(2) {
            let s = self.decode_next()?;
            if s.t > maxt {
                return Ok(false);
            }
            if s.t >= mint {
                out.push(s);
            }
        }
        if self.pred == Predictor::Blocked {
            return self.decode_blocked_range(mint, maxt, out).map_err(|what| self.corrupt(what));
        }
        let (mut st, mut read, pred, shift, k) = (self.st, self.read, self.pred, self.shift, self.k);
        let mut r = BitReader::new(self.r.data(), 0);
        r.seek_bit(self.r.bit_pos());
        let mut outcome = Ok(true);
        while read < self.total {
            if let Err(what) = decode_later(&mut r, &mut st, pred, shift) {
                outcome = Err(what);
                break;
            }
            read += 1;
            if st.t > maxt {
                outcome = Ok(false);
                break;
            }
            if st.t >= mint {
                out.push(Sample::new(st.t, unscale(st.m, k)));
            }
        }
        let pos = r.bit_pos();
        self.r.seek_bit(pos);
        (self.st, self.read) = (st, read);
        outcome.map_err(|what| self.corrupt(what))
    }
}

/// What a scaled-mode decoder carries from one sample to the next.
#[derive(Debug, Clone, Copy)]
struct ScaledState {
    t: i64,
    t_delta: u64,
    m: i64,
    m_delta: i64,
    /// Rice statistics of the zig-zagged deltas and deltas of delta.
    rice_delta: Rice,
    rice_dod: Rice,
    /// With [`Predictor::Blocked`]: the current block's statistics so far,
    /// its code, and the sample that starts the next block.
    block: BlockStats,
    code: BlockCode,
    next_block: u16,
}

/// Where a [`Predictor::Blocked`] chunk's decoding stands past sample 1:
/// what [`ScaledState`] holds for it, as locals the decoding loops keep in
/// registers.
#[derive(Debug, Clone, Copy)]
struct BlockedCursor {
    /// Bit offset of the next sample.
    pos: usize,
    t: i64,
    t_delta: u64,
    m: i64,
    m_delta: i64,
    /// Statistics of the current block so far.
    block: BlockStats,
}

impl BlockedCursor {
    fn new(st: &ScaledState, pos: usize) -> Self {
        BlockedCursor { pos, t: st.t, t_delta: st.t_delta, m: st.m, m_delta: st.m_delta, block: st.block }
    }

    fn store(&self, st: &mut ScaledState) {
        (st.t, st.t_delta, st.m, st.m_delta, st.block) = (self.t, self.t_delta, self.m, self.m_delta, self.block);
    }

    /// Starts the block at the current sample: its code, from the block
    /// before.
    #[inline(always)]
    fn start_block(&mut self) -> BlockCode {
        let code = self.block.code();
        self.block = self.block.halved();
        code
    }

    /// Decodes the next sample of the block coded `code`.
    #[inline(always)]
    fn step(&mut self, data: &[u8], code: BlockCode, shift: u8) -> Result<(), &'static str> {
        let mut r = BitReader::new(data, 0);
        r.seek_bit(self.pos);
        let z = match regular_coded(&mut r, code.flag, code.k) {
            Some(z) => z,
            None => {
                let (dod, z) = irregular_sample(&mut r, code.flag, code.k)?;
                self.t_delta = self.t_delta.wrapping_add(dod as u64);
                z
            }
        };
        self.pos = r.bit_pos();
        self.t = self.t.wrapping_add(self.t_delta as i64);
        let (delta, zd, zdd) = if code.by_dod {
            let delta = unzigzag(z).wrapping_add(self.m_delta);
            (delta, zigzag(delta), z)
        } else {
            let delta = unzigzag(z);
            (delta, z, zigzag(delta.wrapping_sub(self.m_delta)))
        };
        self.block.add(zd, zdd);
        self.m = self.m.wrapping_add(delta.wrapping_shl(u32::from(shift)));
        self.m_delta = delta;
        Ok(())
    }
}

/// Reads a sample's timestamp delta of delta and its residual the general
/// way (kept out of the decoding loops: few samples need it, and inlined it
/// would crowd the loops' registers).
#[cold]
#[inline(never)]
fn irregular_sample(r: &mut BitReader<&[u8]>, flag: bool, k: u8) -> Result<(i64, u64), &'static str> {
    let dod = r.read_timestamp_dod().ok_or("timestamp")?;
    let z = read_coded(r, flag, k).ok_or("value")?;
    Ok((dod, z))
}

/// Whether `t` lies in `[mint, maxt]` (one comparison; `mint <= maxt`).
#[inline(always)]
fn within(t: i64, mint: i64, maxt: i64) -> bool {
    (t.wrapping_sub(mint) as u64) <= (maxt.wrapping_sub(mint) as u64)
}

impl<B: AsRef<[u8]>> DecimalIter<B> {
    /// [`DecimalIter::decode_range_into`] for a [`Predictor::Blocked`]
    /// chunk past sample 1. Its own function, so that its loop keeps the
    /// state in registers.
    #[inline(never)]
    fn decode_blocked_range(&mut self, mint: i64, maxt: i64, out: &mut Vec<Sample>) -> Result<bool, &'static str> {
        let (data, shift, k, total) = (self.r.data(), self.shift, self.k, self.total);
        let mut c = BlockedCursor::new(&self.st, self.r.bit_pos());
        let (mut n, mut code, mut next_block) = (self.read, self.st.code, self.st.next_block);
        let outcome = 'chunk: loop {
            if n >= total {
                break Ok(true);
            }
            if n == next_block {
                code = c.start_block();
                next_block = next_block_start(n);
            }
            let end = next_block.min(total);
            while n < end {
                if let Err(what) = c.step(data, code, shift) {
                    break 'chunk Err(what);
                }
                n += 1;
                if c.t > maxt {
                    break 'chunk Ok(false);
                }
                if c.t >= mint {
                    out.push(Sample::new(c.t, unscale(c.m, k)));
                }
            }
        };
        c.store(&mut self.st);
        (self.st.code, self.st.next_block, self.read) = (code, next_block, n);
        self.r.seek_bit(c.pos);
        outcome
    }
}

/// Decodes two whole [`Predictor::Blocked`] chunks side by side, appending
/// the samples of `a` in `[mint, maxt]` to `out_a` and those of `b` to
/// `out_b`. Each sample's decoding waits on the one before it (its bit
/// position and code); two chunks' chains interleaved keep the core busy
/// while either waits, which takes about a sixth less time than one chunk
/// after the other (`chunk/decimal_decode_pair_*` in `benches/storage.rs`).
///
/// `None`, having appended nothing, unless both chunks are Blocked ones of
/// at least 3 samples; `Some(Err)` when either is corrupt (what was
/// appended is then unspecified: callers decode again one by one to learn
/// which).
pub fn decode_blocked_pair(
    a: &[u8],
    b: &[u8],
    mint: i64,
    maxt: i64,
    out_a: &mut Vec<Sample>,
    out_b: &mut Vec<Sample>,
) -> Option<Result<(), ChunkError>> {
    let open =
        |bytes| DecimalIter::new(bytes).ok().filter(|it| it.pred == Predictor::Blocked && it.total > 2 && mint <= maxt);
    let (mut ia, mut ib) = (open(a)?, open(b)?);
    Some(decode_pair_from(&mut ia, &mut ib, mint, maxt, out_a, out_b))
}

/// [`decode_blocked_pair`] once both chunks are open: their first two
/// samples one by one, the samples both have in lockstep, then the longer
/// chunk's rest on its own.
fn decode_pair_from<'d>(
    a: &mut DecimalIter<&'d [u8]>,
    b: &mut DecimalIter<&'d [u8]>,
    mint: i64,
    maxt: i64,
    out_a: &mut Vec<Sample>,
    out_b: &mut Vec<Sample>,
) -> Result<(), ChunkError> {
    out_a.reserve(usize::from(a.total));
    out_b.reserve(usize::from(b.total));
    for (it, out) in [(&mut *a, &mut *out_a), (&mut *b, &mut *out_b)] {
        while it.read < 2 {
            let s = it.decode_next()?;
            if within(s.t, mint, maxt) {
                out.push(s);
            }
        }
    }
    let both = a.total.min(b.total);
    let (da, db) = (a.r.data(), b.r.data());
    let (mut ca, mut cb) = (BlockedCursor::new(&a.st, a.r.bit_pos()), BlockedCursor::new(&b.st, b.r.bit_pos()));
    let (mut n, mut next_block) = (2, 2);
    let (mut code_a, mut code_b) = (BlockCode::START, BlockCode::START);
    let mut failed = None;
    'pair: while n < both {
        if n == next_block {
            (code_a, code_b) = (ca.start_block(), cb.start_block());
            next_block = next_block_start(n);
        }
        let end = next_block.min(both);
        while n < end {
            if let Err(what) = ca.step(da, code_a, a.shift) {
                failed = Some((ca.pos, what));
                break 'pair;
            }
            if let Err(what) = cb.step(db, code_b, b.shift) {
                failed = Some((cb.pos, what));
                break 'pair;
            }
            if within(ca.t, mint, maxt) {
                out_a.push(Sample::new(ca.t, unscale(ca.m, a.k)));
            }
            if within(cb.t, mint, maxt) {
                out_b.push(Sample::new(cb.t, unscale(cb.m, b.k)));
            }
            n += 1;
        }
    }
    if let Some((pos, what)) = failed {
        return Err(ChunkError::Corrupt { sample: n, bit_offset: pos as u64, what });
    }
    // The longer chunk's rest, on its own.
    for (it, c, code, out) in [(&mut *a, ca, code_a, &mut *out_a), (&mut *b, cb, code_b, &mut *out_b)] {
        c.store(&mut it.st);
        it.r.seek_bit(c.pos);
        (it.read, it.st.code, it.st.next_block) = (n, code, next_block);
        it.decode_range_into(mint, maxt, out)?;
    }
    Ok(())
}

/// Decodes sample n ≥ 2 into `st`: the timestamp's delta of delta, then
/// the value's residual under the predictor the statistics choose. The
/// error names the field that did not decode.
#[inline(always)]
fn decode_later<B: AsRef<[u8]>>(
    r: &mut BitReader<B>,
    st: &mut ScaledState,
    pred: Predictor,
    shift: u8,
) -> Result<(), &'static str> {
    // The statistics choose the predictor before the sample is read.
    let by_dod = use_dod(pred, &st.rice_delta, &st.rice_dod);
    let rice = if by_dod { st.rice_dod } else { st.rice_delta };
    let z = match regular_sample(r, rice) {
        // A regular interval: the delta stays.
        Some(z) => z,
        None => {
            let dod = r.read_timestamp_dod().ok_or("timestamp")?;
            st.t_delta = st.t_delta.wrapping_add(dod as u64);
            read_residual(r, rice).ok_or("value")?
        }
    };
    st.t = st.t.wrapping_add(st.t_delta as i64);
    let delta = if by_dod {
        let delta = unzigzag(z).wrapping_add(st.m_delta);
        st.rice_delta.update(zigzag(delta));
        st.rice_dod.update(z);
        delta
    } else {
        let delta = unzigzag(z);
        st.rice_delta.update(z);
        st.rice_dod.update(zigzag(delta.wrapping_sub(st.m_delta)));
        delta
    };
    st.m = st.m.wrapping_add(delta.wrapping_shl(u32::from(shift)));
    st.m_delta = delta;
    Ok(())
}

/// The common sample from one load: a zero delta of delta (one bit) and a
/// residual whose code fits the rest of the same 57-bit window. Consumes
/// both and returns the residual; `None` (nothing consumed) otherwise.
#[inline(always)]
fn regular_sample<B: AsRef<[u8]>>(r: &mut BitReader<B>, rice: Rice) -> Option<u64> {
    let (flag, k) = rice.code();
    regular_coded(r, flag, k)
}

/// [`regular_sample`] with the residual's code given.
#[inline(always)]
fn regular_coded<B: AsRef<[u8]>>(r: &mut BitReader<B>, flag: bool, k: u8) -> Option<u64> {
    // Near the end of the chunk the word is zero-padded and `avail` says
    // how much of it is stream: the last samples need no slower path.
    let (w, avail) = r.peek57_padded();
    if w >> 63 != 0 {
        return None;
    }
    let mut used = 1;
    let mut w = w << 1;
    if flag {
        used += 1;
        let nonzero = w >> 63 != 0;
        w <<= 1;
        if !nonzero {
            if used > avail {
                return None;
            }
            r.consume(used);
            return Some(0);
        }
    }
    let q = (!w).leading_zeros();
    if u64::from(q) >= RICE_LIMIT || used + q + 1 + u32::from(k) > avail {
        return None;
    }
    let low = if k == 0 { 0 } else { (w << (q + 1)) >> (64 - u32::from(k)) };
    r.consume(used + q + 1 + u32::from(k));
    let z = (u64::from(q) << k) | low;
    Some(if flag { z.wrapping_add(1) } else { z })
}

/// Reads a zig-zagged residual coded as `st` says (see [`write_residual`]).
#[inline(always)]
fn read_residual<B: AsRef<[u8]>>(r: &mut BitReader<B>, st: Rice) -> Option<u64> {
    let (flag, k) = st.code();
    read_coded(r, flag, k)
}

/// Reads a zig-zagged residual with the zero flag (when `flag`) and Rice
/// parameter `k`.
#[inline(always)]
fn read_coded<B: AsRef<[u8]>>(r: &mut BitReader<B>, flag: bool, k: u8) -> Option<u64> {
    if !flag {
        return read_rice(r, k);
    }
    if !r.read_bit()? {
        return Some(0);
    }
    Some(read_rice(r, k)?.wrapping_add(1))
}

/// Reads a Rice-coded value with parameter `k` (see [`write_rice`]).
#[inline(always)]
fn read_rice<B: AsRef<[u8]>>(r: &mut BitReader<B>, k: u8) -> Option<u64> {
    // Fast path: unary part, stop bit and k low bits from one load.
    if let Some(w) = r.peek57() {
        let q = (!w).leading_zeros();
        if u64::from(q) < RICE_LIMIT && q + 1 + u32::from(k) <= 57 {
            let low = if k == 0 { 0 } else { (w << (q + 1)) >> (64 - u32::from(k)) };
            r.consume(q + 1 + u32::from(k));
            return Some((u64::from(q) << k) | low);
        }
    }
    let q = u64::from(r.read_unary(RICE_LIMIT as u32)?);
    if q < RICE_LIMIT {
        Some((q << k) | r.read_bits(k)?)
    } else {
        let width = r.read_bits(6)? as u8 + 1;
        r.read_bits(width)
    }
}

impl<B: AsRef<[u8]>> Iterator for DecimalIter<B> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::STALE_NAN;
    use proptest::prelude::*;

    fn same(a: &[Sample], b: &[Sample]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.bit_eq(y))
    }

    fn online(samples: &[Sample]) -> DecimalAppender {
        let mut a = DecimalAppender::new();
        for s in samples {
            a.append(s.t, s.v).unwrap();
            // Valid after every append.
            let got = decode(a.bytes()).unwrap();
            assert_eq!(got.len(), a.num_samples() as usize);
        }
        a
    }

    #[test]
    fn rice_parameter_is_the_smallest_k_with_n_2k_at_least_sum() {
        for n in 1..=16u32 {
            for sum in (0..5000u64).chain([u64::MAX / 3, u64::MAX - 1, u64::MAX]) {
                let want = (0..=63u8).find(|&k| (u128::from(n) << k) >= u128::from(sum)).unwrap_or(63);
                assert_eq!(rice_k(sum, n), want, "sum {sum} n {n}");
            }
        }
    }

    #[test]
    fn deltas_in_pages_are_stored_divided() {
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut v = 8_000_000_000.0f64;
        let samples: Vec<Sample> = (0..120)
            .map(|i| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                if x.is_multiple_of(3) {
                    v += 4096.0 * ((x >> 8) % 513) as f64 - 4096.0 * 256.0;
                }
                Sample::new(i * 15_000, v)
            })
            .collect();
        let c = encode(&samples).unwrap();
        assert_eq!(c[2] & MODE_SHIFT, MODE_SHIFT);
        assert_eq!(c[3], 12);
        assert!(same(&decode(&c).unwrap(), &samples));
        let plain = encode_scaled(&samples, 0, Predictor::Adaptive, 64).unwrap().w.buf;
        assert!(c.len() + 40 < plain.len(), "{} vs {}", c.len(), plain.len());
        let mut bad = c.clone();
        bad[3] = 0;
        assert!(decode(&bad).is_err());
        assert!(decode(&c[..3]).is_err());
    }

    #[test]
    fn scale_detection() {
        assert_eq!(min_scale(42.0, 0), Some((0, 42)));
        assert_eq!(min_scale(0.3, 0), Some((1, 3)));
        assert_eq!(min_scale(-12.25, 0), Some((2, -1225)));
        assert_eq!(min_scale(1234.567891, 0), Some((6, 1_234_567_891)));
        assert_eq!(min_scale(0.0, 0), Some((0, 0)));
        assert_eq!(min_scale(-0.0, 0), None);
        assert_eq!(min_scale(f64::NAN, 0), None);
        assert_eq!(min_scale(STALE_NAN, 0), None);
        assert_eq!(min_scale(f64::INFINITY, 0), None);
        assert_eq!(min_scale(std::f64::consts::PI, 0), Some((15, 3_141_592_653_589_793)));
        assert_eq!(min_scale(0.1 + 0.2, 0), None);
        assert_eq!(min_scale(9_007_199_254_740_992.0, 0), Some((0, 1 << 53)));
        assert_eq!(min_scale(1e300, 0), None);
    }

    #[test]
    fn integer_counter_is_compact() {
        let samples: Vec<Sample> =
            (0..120).map(|i| Sample::new(1_700_000_000_000 + i * 15_000, 1e9 + (i * 37) as f64)).collect();
        let a = online(&samples);
        assert!(!a.is_xor());
        let c = a.finish();
        assert!(same(&decode(&c).unwrap(), &samples));
        // Constant rate: after the first two samples, 1 bit of time and 1 bit of value.
        assert!(c.len() < 3 + 7 + 5 + 3 + 2 + 32, "{} bytes", c.len());
        assert!(c.len() < crate::tsdb::chunk::xor::encode(&samples).unwrap().len() / 2);
    }

    #[test]
    fn scale_rises_then_falls_back_to_xor() {
        let vals = [1.0, 2.5, 3.25, 3.125, 7.0, f64::NAN, 8.0];
        let samples: Vec<Sample> = vals.iter().enumerate().map(|(i, &v)| Sample::new(i as i64 * 1000, v)).collect();
        let a = online(&samples[..4]);
        assert_eq!(a.bytes()[2], (Predictor::Blocked as u8) << 4 | 3);
        let a = online(&samples);
        assert!(a.is_xor());
        assert_eq!(a.bytes()[2], MODE_XOR);
        assert!(same(&decode(a.bytes()).unwrap(), &samples));
    }

    #[test]
    fn special_values_kept_bit_for_bit() {
        let vals = [
            0.1,
            STALE_NAN,
            -0.0,
            0.0,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::from_bits(0x7ff8_dead_beef_0001),
            f64::MIN_POSITIVE,
            -1.5,
        ];
        for first in 0..vals.len() {
            let samples: Vec<Sample> =
                vals[first..].iter().enumerate().map(|(i, &v)| Sample::new(i as i64 * 1000, v)).collect();
            assert!(same(&decode(online(&samples).bytes()).unwrap(), &samples));
            assert!(same(&decode(&encode(&samples).unwrap()).unwrap(), &samples));
        }
    }

    #[test]
    fn damaged_pairs_are_errors_not_panics() {
        let samples: Vec<Sample> = (0..120).map(|i| Sample::new(i * 15_000 + (i * i) % 5, (i * i) as f64)).collect();
        let good = online(&samples).finish();
        assert_eq!((good[2] >> 4) & 3, Predictor::Blocked as u8);
        let (mut a, mut b) = (Vec::new(), Vec::new());
        // Cut anywhere past the header: an error saying so.
        for cut in 3..good.len() {
            a.clear();
            b.clear();
            let r = decode_blocked_pair(&good, &good[..cut], i64::MIN, i64::MAX, &mut a, &mut b);
            assert!(matches!(r, Some(Err(ChunkError::Corrupt { .. }))), "cut at {cut}: {r:?}");
        }
        // Garbage after a valid header: never a panic.
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        for round in 0..3000 {
            let mut bad = good.clone();
            let from = 3 + round % 40;
            for byte in bad[from..].iter_mut() {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *byte = x as u8;
            }
            if round % 2 == 0 {
                bad[0] = 0xff; // announces 65535+ samples
            }
            let _ = decode_blocked_pair(&bad, &good, i64::MIN, i64::MAX, &mut a, &mut b);
            let _ = decode_blocked_pair(&good, &bad, 0, 1_000_000, &mut a, &mut b);
            let _ = decode(&bad);
        }
    }

    #[test]
    fn truncated_and_garbage_input_is_an_error() {
        assert!(matches!(decode(&[0u8, 1][..]), Err(ChunkError::TooShort { .. })));
        let samples: Vec<Sample> = (0..50).map(|i| Sample::new(i * 1000 + (i * i) % 7, i as f64 * 1.5)).collect();
        let c = online(&samples).finish();
        assert_ne!(c[2], MODE_XOR);
        for cut in 3..c.len() {
            let r = decode(&c[..cut]);
            assert!(matches!(r, Err(ChunkError::Corrupt { .. })), "cut at {cut}: {r:?}");
        }
        let mut bad_mode = c.clone();
        bad_mode[2] = 0xb1;
        assert!(decode(&bad_mode).is_err());
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..2000 {
            let mut buf = vec![0u8; 40];
            for b in buf.iter_mut() {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *b = x as u8;
            }
            buf[2] &= 0x2f;
            let _ = decode(&buf);
        }
    }

    fn any_value() -> impl Strategy<Value = f64> {
        prop_oneof![
            any::<u64>().prop_map(f64::from_bits),
            Just(STALE_NAN),
            Just(f64::NAN),
            Just(-0.0),
            Just(f64::INFINITY),
            Just(f64::NEG_INFINITY),
            (0u64..1000).prop_map(|x| x as f64),
            (-(1i64 << 53)..=(1i64 << 53)).prop_map(|x| x as f64),
            (-1e6f64..1e6),
        ]
    }

    /// Decimals with 0..=6 digits after the point, as a parser would produce them.
    fn decimal_value() -> impl Strategy<Value = f64> {
        (-10_000_000_000i64..10_000_000_000, 0u32..=6)
            .prop_map(|(m, k)| format!("{}e-{}", m, k).parse::<f64>().unwrap_or(0.0))
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

    fn samples_of(start: i64, gaps: Vec<i64>, vals: Vec<f64>) -> Vec<Sample> {
        let mut t = start;
        let mut samples = Vec::new();
        for (g, v) in std::iter::once(0).chain(gaps).zip(vals) {
            t = t.saturating_add(g);
            samples.push(Sample::new(t, v));
        }
        samples
    }

    fn check(samples: &[Sample]) -> Result<(), TestCaseError> {
        let mut a = DecimalAppender::new();
        for s in samples {
            a.append(s.t, s.v).unwrap();
        }
        prop_assert_eq!(xor::num_samples_of(a.bytes()) as usize, samples.len());
        let got = decode(a.bytes()).unwrap();
        prop_assert!(same(&got, samples), "online: got {:?} want {:?}", got, samples);
        let best = encode(samples).unwrap();
        prop_assert!(best.len() <= a.bytes().len(), "best {} > online {}", best.len(), a.bytes().len());
        let got = decode(&best).unwrap();
        prop_assert!(same(&got, samples), "best: got {:?} want {:?}", got, samples);
        for pred in [Predictor::Delta, Predictor::DeltaOfDelta, Predictor::Adaptive] {
            let mut a = DecimalAppender::with_predictor(8, pred);
            for s in samples {
                a.append(s.t, s.v).unwrap();
            }
            let got = decode(a.bytes()).unwrap();
            prop_assert!(same(&got, samples), "{:?}: got {:?} want {:?}", pred, got, samples);
        }
        check_pairs(samples)?;
        // The range loop gives what iterating gives, for a window inside.
        if let (Some(first), Some(last)) = (samples.first(), samples.last()) {
            let (mint, maxt) = (first.t + (last.t - first.t) / 3, last.t - (last.t - first.t) / 3);
            let mut got = Vec::new();
            let more = super::super::ChunkIter::new(super::super::Encoding::Decimal, &best[..])
                .unwrap()
                .decode_range_into(mint, maxt, &mut got)
                .unwrap();
            let want: Vec<Sample> = samples.iter().copied().filter(|s| s.t >= mint && s.t <= maxt).collect();
            prop_assert!(same(&got, &want), "range {}..{}: got {:?} want {:?}", mint, maxt, got, want);
            prop_assert_eq!(more, maxt >= last.t);
        }
        Ok(())
    }

    /// Splits `samples` in two Blocked chunks at every eighth place and
    /// decodes them side by side, over the whole range and over windows
    /// cutting either chunk, against the samples themselves.
    fn check_pairs(samples: &[Sample]) -> Result<(), TestCaseError> {
        let blocked = |part: &[Sample]| {
            let mut a = DecimalAppender::with_predictor(8, Predictor::Blocked);
            for s in part {
                a.append(s.t, s.v).unwrap();
            }
            a.finish()
        };
        let step = (samples.len() / 8).max(1);
        for cut in (0..=samples.len()).step_by(step) {
            let (a, b) = (blocked(&samples[..cut]), blocked(&samples[cut..]));
            let (lo, hi) = (samples.first().map_or(0, |s| s.t), samples.last().map_or(0, |s| s.t));
            for (mint, maxt) in [(i64::MIN, i64::MAX), (lo + (hi - lo) / 5, hi - (hi - lo) / 7), (hi / 2 + lo / 2, hi)]
            {
                let (mut got_a, mut got_b) = (Vec::new(), Vec::new());
                let pair = decode_blocked_pair(&a, &b, mint, maxt, &mut got_a, &mut got_b);
                let is_blocked = |c: &[u8]| c[2] != MODE_XOR && (c[2] >> 4) & 3 == Predictor::Blocked as u8;
                let blocked_both = cut > 2 && samples.len() - cut > 2 && is_blocked(&a) && is_blocked(&b);
                prop_assert_eq!(pair.is_some(), blocked_both && mint <= maxt, "cut {}", cut);
                if pair.is_none() {
                    continue;
                }
                prop_assert!(matches!(pair, Some(Ok(()))), "{:?}", pair);
                let want = |p: &[Sample]| -> Vec<Sample> {
                    p.iter().copied().filter(|s| s.t >= mint && s.t <= maxt).collect()
                };
                prop_assert!(same(&got_a, &want(&samples[..cut])), "cut {} {}..{}: a {:?}", cut, mint, maxt, got_a);
                prop_assert!(same(&got_b, &want(&samples[cut..])), "cut {} {}..{}: b {:?}", cut, mint, maxt, got_b);
            }
        }
        Ok(())
    }

    /// 120 samples, 15 s apart, of a few kinds of series.
    fn shaped(kind: usize, seed: u64) -> Vec<Sample> {
        let mut x = seed | 1;
        let mut v = 1000.0f64;
        (0..120)
            .map(|i| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let r = x >> 20;
                v = match kind {
                    0 => v + (r % 100) as f64,                                                    // busy counter
                    1 => v + 37.0,                                                                // constant rate
                    2 => v + if r.is_multiple_of(10) { (r >> 8) as f64 % 5.0 } else { 0.0 },      // rare counter
                    3 => v + (r % 21) as f64 - 10.0,                                              // gauge walk
                    4 => ((v * 100.0).round() + (r % 1500) as f64) / 100.0,                       // CPU seconds
                    5 => v + 4096.0 * ((r % 200) as f64 - 100.0),                                 // bytes in pages
                    _ => v + if r.is_multiple_of(4) { (r >> 8) as f64 % 100_000.0 } else { 0.0 }, // spiky
                };
                Sample::new(1_700_000_000_000 + i * 15_000, v)
            })
            .collect()
    }

    #[test]
    fn blocked_costs_about_what_adaptive_costs() {
        for kind in 0..7 {
            for seed in [1u64, 0x9e37_79b9_7f4a_7c15, 42] {
                let samples = shaped(kind, seed);
                let size = |pred| {
                    let mut a = DecimalAppender::with_predictor(8, pred);
                    for s in &samples {
                        a.append(s.t, s.v).unwrap();
                    }
                    assert!(same(&decode(a.bytes()).unwrap(), &samples));
                    a.bytes().len()
                };
                let (adaptive, blocked) = (size(Predictor::Adaptive), size(Predictor::Blocked));
                assert!(blocked <= adaptive + adaptive / 16, "kind {kind} seed {seed}: {blocked} vs {adaptive} bytes");
            }
        }
    }

    #[test]
    fn blocks_start_where_the_schedule_says() {
        let mut starts = vec![2u16];
        while let Some(&last) = starts.last().filter(|&&s| s < 300) {
            starts.push(next_block_start(last));
        }
        assert_eq!(&starts[..8], &[2, 3, 4, 6, 10, 18, 34, 50]);
        for n in 0..320u16 {
            assert_eq!(is_block_start(n), starts.contains(&n), "sample {n}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn round_trip_bit_exact_any(
            start in prop_oneof![any::<i64>().prop_map(|t| t / 4), Just(0i64), 1_600_000_000_000i64..1_800_000_000_000],
            gaps in proptest::collection::vec(any_gap(), 0..300),
            vals in proptest::collection::vec(any_value(), 300),
        ) {
            check(&samples_of(start, gaps, vals))?;
        }

        #[test]
        fn round_trip_bit_exact_decimals(
            start in prop_oneof![Just(0i64), 1_600_000_000_000i64..1_800_000_000_000],
            gaps in proptest::collection::vec(any_gap(), 0..200),
            vals in proptest::collection::vec(decimal_value(), 200),
            special in proptest::option::of((0usize..200, prop_oneof![
                Just(STALE_NAN), Just(f64::NAN), Just(-0.0), Just(f64::INFINITY), Just(f64::NEG_INFINITY),
                Just(f64::from_bits(0x7ff0_0000_0000_0001)), Just(1e300), Just(9_007_199_254_740_993.0),
            ])),
        ) {
            let mut vals = vals;
            if let Some((i, v)) = special {
                let n = vals.len();
                vals[i % n] = v;
            }
            check(&samples_of(start, gaps, vals))?;
        }

        #[test]
        fn round_trip_counters(
            start in 1_600_000_000_000i64..1_800_000_000_000,
            base in 0u64..(1 << 50),
            incs in proptest::collection::vec(0u64..5000, 1..150),
            k in 0u32..=6,
        ) {
            let mut m = base;
            let vals: Vec<f64> = incs
                .iter()
                .map(|i| {
                    m += i;
                    format!("{}e-{}", m, k).parse::<f64>().unwrap_or(0.0)
                })
                .collect();
            let gaps = vec![15_000; vals.len()];
            check(&samples_of(start, gaps, vals))?;
        }
    }
}
