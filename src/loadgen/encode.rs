//! Pre-encoded remote_write requests whose sample values and timestamps can
//! be rewritten in place, without re-encoding or re-compressing.
//!
//! Each series carries exactly one sample, encoded with a fixed width: the
//! `Sample` message is `09 <f64 LE> 10 <6-byte varint timestamp>` (a 6-byte
//! varint covers every millisecond timestamp from 1971 to 2109), 18 bytes
//! with its field tag and length. The request is compressed with a small
//! snappy block-format encoder (below) that keeps these 18-byte regions as
//! literals and never copies from them, so a later cycle only overwrites
//! those bytes in the compressed buffer. The label bytes are compressed with
//! ordinary LZ77 back-references, as a real sender's snappy would.

/// Byte length of one patchable sample field.
const HOLE: usize = 18;

/// Timestamps must lie in `[2^35, 2^42)` ms to have a 6-byte varint.
const MIN_TS: i64 = 1 << 35;
const MAX_TS: i64 = (1 << 42) - 1;

/// A compressed request for a fixed set of series, one sample each.
#[derive(Debug, Clone)]
pub struct PatchableRequest {
    compressed: Vec<u8>,
    /// Offset in `compressed` of each series' 18 sample bytes.
    holes: Vec<usize>,
}

/// Why [`PatchableRequest::set`] refused a timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("timestamp {0} ms is outside the fixed-width range 2^35..2^42")]
pub struct TimestampOutOfRange(pub i64);

fn put_uvarint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn put_bytes_field(out: &mut Vec<u8>, tag: u8, b: &[u8]) {
    out.push(tag);
    put_uvarint(out, b.len() as u64);
    out.extend_from_slice(b);
}

fn write_sample(dst: &mut [u8], t: i64, v: f64) {
    dst[0] = 0x12; // TimeSeries.samples, length-delimited
    dst[1] = 16;
    dst[2] = 0x09; // Sample.value, fixed64
    dst[3..11].copy_from_slice(&v.to_bits().to_le_bytes());
    dst[11] = 0x10; // Sample.timestamp, varint
    let t = t as u64;
    for i in 0..5 {
        dst[12 + i] = ((t >> (7 * i)) as u8 & 0x7f) | 0x80;
    }
    dst[17] = (t >> 35) as u8 & 0x7f;
}

impl PatchableRequest {
    /// Encodes one `WriteRequest` with a sample at `(t, 0.0)` for each label
    /// set (pairs already sorted), and compresses it.
    pub fn new(series: &[Vec<(String, String)>], t: i64) -> Result<Self, TimestampOutOfRange> {
        if !(MIN_TS..=MAX_TS).contains(&t) {
            return Err(TimestampOutOfRange(t));
        }
        let mut raw = Vec::new();
        let mut hole_at = Vec::with_capacity(series.len());
        let mut ts = Vec::new();
        let mut lbl = Vec::new();
        for labels in series {
            ts.clear();
            for (n, v) in labels {
                lbl.clear();
                put_bytes_field(&mut lbl, 0x0a, n.as_bytes());
                put_bytes_field(&mut lbl, 0x12, v.as_bytes());
                put_bytes_field(&mut ts, 0x0a, &lbl);
            }
            let sample_at = ts.len();
            ts.resize(sample_at + HOLE, 0);
            write_sample(&mut ts[sample_at..], t, 0.0);
            raw.push(0x0a); // WriteRequest.timeseries
            put_uvarint(&mut raw, ts.len() as u64);
            hole_at.push(raw.len() + sample_at);
            raw.extend_from_slice(&ts);
        }
        let (compressed, holes) = compress_with_holes(&raw, &hole_at);
        Ok(PatchableRequest { compressed, holes })
    }

    /// Number of series (and samples).
    pub fn len(&self) -> usize {
        self.holes.len()
    }

    /// Whether it has no series.
    pub fn is_empty(&self) -> bool {
        self.holes.is_empty()
    }

    /// Sets series `i`'s sample. `i` must be below [`PatchableRequest::len`].
    pub fn set(&mut self, i: usize, t: i64, v: f64) -> Result<(), TimestampOutOfRange> {
        if !(MIN_TS..=MAX_TS).contains(&t) {
            return Err(TimestampOutOfRange(t));
        }
        if let Some(&at) = self.holes.get(i) {
            write_sample(&mut self.compressed[at..at + HOLE], t, v);
        }
        Ok(())
    }

    /// The body to send (snappy block format).
    pub fn body(&self) -> &[u8] {
        &self.compressed
    }
}

fn emit_literal(out: &mut Vec<u8>, lit: &[u8]) {
    let mut rest = lit;
    while !rest.is_empty() {
        let n = rest.len().min(1 << 24);
        let m = n - 1;
        if m < 60 {
            out.push((m as u8) << 2);
        } else if m < 1 << 8 {
            out.push(60 << 2);
            out.push(m as u8);
        } else if m < 1 << 16 {
            out.push(61 << 2);
            out.extend_from_slice(&(m as u16).to_le_bytes());
        } else {
            out.push(62 << 2);
            out.extend_from_slice(&(m as u32).to_le_bytes()[..3]);
        }
        out.extend_from_slice(&rest[..n]);
        rest = &rest[n..];
    }
}

fn emit_copy(out: &mut Vec<u8>, offset: usize, mut len: usize) {
    while len > 0 {
        // Keep a tail of at least 4 so the short form stays usable.
        let n = if len > 64 && len - 64 < 4 { 60 } else { len.min(64) };
        if (4..=11).contains(&n) && offset < 2048 {
            out.push(0b01 | (((n - 4) as u8) << 2) | (((offset >> 8) as u8) << 5));
            out.push(offset as u8);
        } else if offset < 1 << 16 {
            out.push(0b10 | (((n - 1) as u8) << 2));
            out.extend_from_slice(&(offset as u16).to_le_bytes());
        } else {
            out.push(0b11 | (((n - 1) as u8) << 2));
            out.extend_from_slice(&(offset as u32).to_le_bytes());
        }
        len -= n;
    }
}

/// Snappy block-format compression of `raw` where each `HOLE`-byte region
/// starting at `holes[i]` (sorted, disjoint) is emitted as its own literal and
/// never used as a copy source. Returns the output and, per hole, where its
/// bytes sit in the output.
fn compress_with_holes(raw: &[u8], holes: &[usize]) -> (Vec<u8>, Vec<usize>) {
    const HASH_BITS: u32 = 16;
    let mut out = Vec::with_capacity(raw.len() / 2);
    put_uvarint(&mut out, raw.len() as u64);
    let mut out_holes = Vec::with_capacity(holes.len());
    // table[h] = position + 1 of the last 4-byte sequence with hash h (0 = none).
    let mut table = vec![0usize; 1 << HASH_BITS];
    let hash = |b: &[u8]| -> usize {
        let v = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        (v.wrapping_mul(0x1e35_a7bd) >> (32 - HASH_BITS)) as usize
    };
    // Segments of fixed bytes: [seg_start, seg_end), between holes.
    let mut seg_start = 0;
    for hi in 0..=holes.len() {
        let seg_end = holes.get(hi).copied().unwrap_or(raw.len());
        // Compress raw[seg_start..seg_end]; sources must lie in earlier
        // fixed bytes: a candidate at p is valid if p + len stays before
        // the first hole after p. `next_hole` finds it.
        let mut lit_start = seg_start;
        let mut p = seg_start;
        while p + 4 <= seg_end {
            let h = hash(&raw[p..p + 4]);
            let cand = table[h];
            table[h] = p + 1;
            if cand > 0 {
                let c = cand - 1;
                let src_limit = next_hole(holes, c).unwrap_or(raw.len()).min(p);
                if raw[c..c + 4] == raw[p..p + 4] && c + 4 <= src_limit {
                    let mut len = 4;
                    while p + len < seg_end && c + len < src_limit && raw[c + len] == raw[p + len] {
                        len += 1;
                    }
                    emit_literal(&mut out, &raw[lit_start..p]);
                    emit_copy(&mut out, p - c, len);
                    // Index a few positions inside the match for later matches.
                    let mut q = p + 1;
                    while q + 4 <= p + len && q + 4 <= seg_end {
                        table[hash(&raw[q..q + 4])] = q + 1;
                        q += 2;
                    }
                    p += len;
                    lit_start = p;
                    continue;
                }
            }
            p += 1;
        }
        emit_literal(&mut out, &raw[lit_start..seg_end]);
        if hi < holes.len() {
            let at = holes[hi];
            out.push(((HOLE - 1) as u8) << 2);
            out_holes.push(out.len());
            out.extend_from_slice(&raw[at..at + HOLE]);
            seg_start = at + HOLE;
        }
    }
    (out, out_holes)
}

/// The start of the first hole that ends after `p`, i.e. the limit a copy
/// source starting at `p` must stay below.
fn next_hole(holes: &[usize], p: usize) -> Option<usize> {
    let i = holes.partition_point(|&h| h + HOLE <= p);
    holes.get(i).copied()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::proto::WriteRequest;
    use crate::loadgen::series::series;
    use prost::Message;

    #[test]
    fn patched_request_decodes_to_the_patched_values() {
        let labels: Vec<_> = (0..500).map(|i| series(i).labels).collect();
        let t0 = 1_763_000_000_000;
        let mut req = PatchableRequest::new(&labels, t0).unwrap();
        // Compresses label text well, like a real sender.
        let raw_len: usize =
            labels.iter().map(|l| l.iter().map(|(n, v)| n.len() + v.len() + 6).sum::<usize>() + 20).sum();
        assert!(req.body().len() < raw_len / 3, "{} vs {raw_len}", req.body().len());
        for cycle in 0..3 {
            let t = t0 + cycle * 15_000;
            for i in 0..req.len() {
                req.set(i, t, i as f64 * 1.5 + cycle as f64).unwrap();
            }
            let raw = snap::raw::Decoder::new().decompress_vec(req.body()).unwrap();
            let w = WriteRequest::decode(&raw[..]).unwrap();
            assert_eq!(w.timeseries.len(), 500);
            for (i, ts) in w.timeseries.iter().enumerate() {
                let want: Vec<(String, String)> = ts.labels.iter().map(|l| (l.name.clone(), l.value.clone())).collect();
                assert_eq!(want, labels[i]);
                assert_eq!(ts.samples.len(), 1);
                assert_eq!(ts.samples[0].timestamp, t);
                assert_eq!(ts.samples[0].value, i as f64 * 1.5 + cycle as f64);
            }
        }
        assert!(req.set(0, 5, 1.0).is_err());
    }
}
