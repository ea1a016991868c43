//! Bit-level writer and reader over byte buffers (most significant bit first).
//!
//! The writer appends to a `Vec<u8>`; the reader walks any `AsRef<[u8]>`
//! (a borrowed slice, an `Arc<[u8]>`, a mapped file slice). Neither does I/O.

/// Appends bits to a byte vector, most significant bit first.
///
/// `E` holds a few bytes of the owning encoder's state. A `Vec` and the `u8`
/// of free bits take 32 bytes, 7 of them padding; fields of `E` (alignment 1)
/// fill that padding at no cost, which an encoder's own fields beside the
/// writer cannot. Every head series embeds one writer in its open chunk, so
/// those bytes decide the series' allocation size class (docs/BENCHMARKS.md).
#[derive(Debug, Clone, Default)]
pub(crate) struct BitWriter<E = ()> {
    /// The bytes written so far; the last byte may be partly filled.
    pub(crate) buf: Vec<u8>,
    /// Free (not yet written) low bits in the last byte of `buf`; 0 means a new byte is needed.
    pub(crate) free: u8,
    /// The owner's small fields, kept in the padding (see above).
    pub(crate) owner: E,
}

impl BitWriter<()> {
    /// A writer continuing after `buf`, whose last byte has `free` unwritten low bits.
    pub(crate) fn from_parts(buf: Vec<u8>, free: u8) -> Self {
        BitWriter::with_owner(buf, free, ())
    }
}

impl<E> BitWriter<E> {
    /// Like [`BitWriter::from_parts`], carrying the owner's fields `owner`.
    pub(crate) fn with_owner(buf: Vec<u8>, free: u8, owner: E) -> Self {
        BitWriter { buf, free: free.min(7), owner }
    }

    /// Writes one bit.
    #[inline]
    pub(crate) fn write_bit(&mut self, bit: bool) {
        if self.free == 0 {
            self.buf.push(0);
            self.free = 8;
        }
        self.free -= 1;
        if bit {
            if let Some(last) = self.buf.last_mut() {
                *last |= 1 << self.free;
            }
        }
    }

    /// Writes the low `n` bits of `v` (n ≤ 64), most significant first.
    #[inline]
    pub(crate) fn write_bits(&mut self, v: u64, mut n: u8) {
        debug_assert!(n <= 64);
        while n > 0 {
            if self.free == 0 {
                self.buf.push(0);
                self.free = 8;
            }
            let take = n.min(self.free);
            // take ∈ 1..=8, so the mask and shifts stay in range.
            let bits = ((v >> (n - take)) & ((1u64 << take) - 1)) as u8;
            if let Some(last) = self.buf.last_mut() {
                *last |= bits << (self.free - take);
            }
            self.free -= take;
            n -= take;
        }
    }

    /// Writes a whole byte at the current (possibly unaligned) bit position.
    #[inline]
    pub(crate) fn write_byte(&mut self, b: u8) {
        self.write_bits(b as u64, 8);
    }
}

/// Whether `x` fits the signed `nbits` delta-of-delta bucket of the XOR
/// timestamp coding: [-(2^(n-1) - 1), 2^(n-1)].
#[inline]
fn dod_fits(x: i64, nbits: u32) -> bool {
    let half = 1i64 << (nbits - 1);
    -(half - 1) <= x && x <= half
}

impl<E> BitWriter<E> {
    /// Go's uvarint written as whole bytes into the bit stream.
    #[inline]
    pub(crate) fn write_uvarint(&mut self, mut v: u64) {
        let mut i = 0;
        while v >= 0x80 && i < 9 {
            self.write_byte((v as u8) | 0x80);
            v >>= 7;
            i += 1;
        }
        self.write_byte(v as u8);
    }

    /// Go's varint (zig-zag, then uvarint) written as whole bytes.
    #[inline]
    pub(crate) fn write_varint(&mut self, v: i64) {
        self.write_uvarint(((v << 1) ^ (v >> 63)) as u64);
    }

    /// Writes the timestamp of sample `num` as Prometheus's XOR chunk does
    /// (varint, then uvarint delta, then delta-of-delta buckets of 0, 14, 17,
    /// 20 or 64 bits, each value's low bits); returns the new delta.
    #[inline]
    pub(crate) fn write_timestamp(&mut self, num: u16, t: i64, prev_t: i64, prev_delta: u64) -> u64 {
        match num {
            0 => {
                self.write_varint(t);
                0
            }
            1 => {
                let delta = t.wrapping_sub(prev_t) as u64;
                self.write_uvarint(delta);
                delta
            }
            _ => {
                let delta = t.wrapping_sub(prev_t) as u64;
                let dod = delta.wrapping_sub(prev_delta) as i64;
                if dod == 0 {
                    self.write_bit(false);
                } else if dod_fits(dod, 14) {
                    self.write_bits(0b10, 2);
                    self.write_bits(dod as u64, 14);
                } else if dod_fits(dod, 17) {
                    self.write_bits(0b110, 3);
                    self.write_bits(dod as u64, 17);
                } else if dod_fits(dod, 20) {
                    self.write_bits(0b1110, 4);
                    self.write_bits(dod as u64, 20);
                } else {
                    self.write_bits(0b1111, 4);
                    self.write_bits(dod as u64, 64);
                }
                delta
            }
        }
    }
}

/// Reads bits from a byte buffer, most significant bit first.
#[derive(Debug, Clone)]
pub(crate) struct BitReader<B> {
    data: B,
    /// Next bit to read, counted from the start of `data`.
    pos: usize,
}

impl<B: AsRef<[u8]>> BitReader<B> {
    /// A reader starting at byte `start_byte` of `data`.
    pub(crate) fn new(data: B, start_byte: usize) -> Self {
        BitReader { data, pos: start_byte.saturating_mul(8) }
    }

    /// The bit offset of the next read.
    pub(crate) fn bit_pos(&self) -> usize {
        self.pos
    }

    /// Moves to bit offset `pos` (counted from the start of the data).
    pub(crate) fn seek_bit(&mut self, pos: usize) {
        self.pos = pos;
    }

    /// The underlying bytes.
    pub(crate) fn data(&self) -> &[u8] {
        self.data.as_ref()
    }

    /// Gives back the underlying buffer.
    pub(crate) fn into_inner(self) -> B {
        self.data
    }

    /// Reads one bit; `None` past the end.
    #[inline(always)]
    pub(crate) fn read_bit(&mut self) -> Option<bool> {
        let b = *self.data.as_ref().get(self.pos >> 3)?;
        let bit = (b >> (7 - (self.pos & 7))) & 1 == 1;
        self.pos += 1;
        Some(bit)
    }

    /// The next 64 bits at the read position, of which at least the top 57
    /// are stream bits, when 8 bytes remain from the current byte.
    #[inline(always)]
    pub(crate) fn peek57(&self) -> Option<u64> {
        let byte = self.pos >> 3;
        let w = self.data.as_ref().get(byte..byte + 8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(w);
        Some(u64::from_be_bytes(a) << (self.pos & 7))
    }

    /// Like [`BitReader::peek57`], at any position: the word is padded with
    /// zero bits past the end of the data, and the second value says how
    /// many of its top bits are stream bits (at most 57; 0 at the end).
    #[inline(always)]
    pub(crate) fn peek57_padded(&self) -> (u64, u32) {
        let data = self.data.as_ref();
        let byte = self.pos >> 3;
        let mut a = [0u8; 8];
        let avail = match data.get(byte..byte + 8) {
            Some(w) => {
                a.copy_from_slice(w);
                57
            }
            None => {
                let rest = data.get(byte..).unwrap_or(&[]);
                a[..rest.len()].copy_from_slice(rest);
                (rest.len() * 8).saturating_sub(self.pos & 7) as u32
            }
        };
        (u64::from_be_bytes(a) << (self.pos & 7), avail)
    }

    /// Skips `n` bits already seen through [`BitReader::peek57`].
    #[inline(always)]
    pub(crate) fn consume(&mut self, n: u32) {
        self.pos += n as usize;
    }

    /// Reads a unary count: one bits up to a zero bit (consumed) or until
    /// `max` ones (≤ 56) were read (no zero consumed). `None` past the end.
    #[inline(always)]
    pub(crate) fn read_unary(&mut self, max: u32) -> Option<u32> {
        debug_assert!(max <= 56);
        let data = self.data.as_ref();
        let byte = self.pos >> 3;
        if let Some(w) = data.get(byte..byte + 8) {
            let mut a = [0u8; 8];
            a.copy_from_slice(w);
            // The 8 bytes hold at least 57 bits from the current position.
            let w = u64::from_be_bytes(a) << (self.pos & 7);
            let ones = (!w).leading_zeros().min(max);
            self.pos += ones as usize + usize::from(ones < max);
            return Some(ones);
        }
        let mut q = 0;
        while q < max {
            if !self.read_bit()? {
                break;
            }
            q += 1;
        }
        Some(q)
    }

    /// Reads one delta-of-delta timestamp bucket as written by
    /// [`BitWriter::write_timestamp`] for the third sample on; `None` when
    /// the stream ends first.
    #[inline(always)]
    pub(crate) fn read_timestamp_dod(&mut self) -> Option<i64> {
        // Fast path: bucket prefix and value (≤ 4 + 20 bits) from one load.
        if let Some(w) = self.peek57() {
            let prefix = (!w).leading_zeros().min(4);
            let width = match prefix {
                0 => {
                    self.pos += 1;
                    return Some(0);
                }
                1 => 14,
                2 => 17,
                3 => 20,
                _ => {
                    self.pos += 4;
                    return self.read_bits(64).map(|b| b as i64);
                }
            };
            let raw = (w << (prefix + 1)) >> (64 - width);
            self.pos += (prefix + 1 + width) as usize;
            return Some(if raw > 1u64 << (width - 1) { (raw as i64) - (1i64 << width) } else { raw as i64 });
        }
        let mut prefix = 0u8;
        for _ in 0..4 {
            if !self.read_bit()? {
                break;
            }
            prefix += 1;
        }
        let w = match prefix {
            0 => return Some(0),
            1 => 14,
            2 => 17,
            3 => 20,
            _ => return Some(self.read_bits(64)? as i64),
        };
        let raw = self.read_bits(w)?;
        // Values above 2^(w-1) are negative in w-bit two's complement.
        Some(if raw > 1u64 << (w - 1) { (raw as i64) - (1i64 << w) } else { raw as i64 })
    }

    /// Reads `n` bits (n ≤ 64) as the low bits of a `u64`; `None` past the end.
    #[inline(always)]
    pub(crate) fn read_bits(&mut self, n: u8) -> Option<u64> {
        if n == 0 {
            return Some(0);
        }
        let data = self.data.as_ref();
        let byte = self.pos >> 3;
        let off = (self.pos & 7) as u32;
        // Fast path: one unaligned 8-byte load covers off + n ≤ 7 + 56 bits.
        if n <= 56 {
            if let Some(w) = data.get(byte..byte + 8) {
                let mut a = [0u8; 8];
                a.copy_from_slice(w);
                let w = u64::from_be_bytes(a);
                self.pos += n as usize;
                return Some((w << off) >> (64 - n as u32));
            }
        }
        self.read_bits_slow(n)
    }

    fn read_bits_slow(&mut self, n: u8) -> Option<u64> {
        let data = self.data.as_ref();
        let end = self.pos.checked_add(n as usize)?;
        if end > data.len().saturating_mul(8) {
            return None;
        }
        let mut v: u64 = 0;
        let mut need = n as u32;
        while need > 0 {
            let b = *data.get(self.pos >> 3)? as u32;
            let off = (self.pos & 7) as u32;
            let avail = 8 - off;
            let take = avail.min(need);
            let bits = ((b << off) & 0xff) >> (8 - take);
            v = (v << take) | bits as u64;
            need -= take;
            self.pos += take as usize;
        }
        Some(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padded_peek_gives_the_stream_bits_then_zeros() {
        let data: Vec<u8> = (0..13u8).map(|i| i.wrapping_mul(0x9d) ^ 0x5a).collect();
        let total = data.len() * 8;
        for pos in 0..=total + 9 {
            let mut r = BitReader::new(&data[..], 0);
            r.seek_bit(pos);
            let (w, avail) = r.peek57_padded();
            let want = total.saturating_sub(pos).min(57) as u32;
            assert_eq!(avail, want, "pos {pos}");
            for i in 0..64u32 {
                let bit = w >> (63 - i) & 1 == 1;
                let stream = (i < avail).then(|| data[(pos + i as usize) / 8] >> (7 - (pos + i as usize) % 8) & 1 == 1);
                match stream {
                    Some(b) => assert_eq!(bit, b, "pos {pos} bit {i}"),
                    None if pos + (i as usize) < total => {} // stream, beyond the 57 promised
                    None => assert!(!bit, "pos {pos} bit {i}: padding is zero"),
                }
            }
        }
    }

    #[test]
    fn writes_and_reads_back_mixed_widths() {
        let mut w = BitWriter::from_parts(Vec::new(), 0);
        let items: Vec<(u64, u8)> =
            vec![(1, 1), (0b101, 3), (0xABCD, 16), (u64::MAX, 64), (0, 7), (0x1F, 5), (42, 57), (3, 2)];
        for &(v, n) in &items {
            w.write_bits(v, n);
        }
        w.write_bit(true);
        w.write_byte(0x5A);
        let mut r = BitReader::new(&w.buf[..], 0);
        for &(v, n) in &items {
            let mask = if n == 64 { u64::MAX } else { (1u64 << n) - 1 };
            assert_eq!(r.read_bits(n), Some(v & mask), "width {n}");
        }
        assert_eq!(r.read_bit(), Some(true));
        assert_eq!(r.read_bits(8), Some(0x5A));
        // Padding bits of the last byte read as zero, then the stream ends.
        while r.bit_pos() < w.buf.len() * 8 {
            assert_eq!(r.read_bit(), Some(false));
        }
        assert_eq!(r.read_bit(), None);
        assert_eq!(r.read_bits(3), None);
    }
}

#[cfg(test)]
mod unary_tests {
    use super::*;

    #[test]
    fn unary_counts_ones_fast_and_near_the_end() {
        let mut w = BitWriter::from_parts(Vec::new(), 0);
        let counts = [0u32, 3, 19, 20, 25, 1, 7];
        for &q in &counts {
            for _ in 0..q.min(20) {
                w.write_bit(true);
            }
            if q < 20 {
                w.write_bit(false);
            }
            w.write_bits(0b101, 3);
        }
        let mut r = BitReader::new(&w.buf[..], 0);
        for &q in &counts {
            assert_eq!(r.read_unary(20), Some(q.min(20)));
            assert_eq!(r.read_bits(3), Some(0b101));
        }
        // Past the end: padding zeros read as zero-length counts, then nothing.
        while r.bit_pos() < w.buf.len() * 8 {
            assert_eq!(r.read_unary(20), Some(0));
        }
        assert_eq!(r.read_unary(20), None);
    }
}
