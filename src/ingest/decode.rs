//! Pure decoding of a remote_write 1.0 body: snappy block format, then the
//! protobuf `WriteRequest` (see `proto/remote_write_v1.proto`).
//!
//! The protobuf decoder is hand-written and zero-copy: it records byte ranges
//! of label names and values inside the decompressed buffer instead of
//! allocating a `String` per label, and it keeps all series, labels and
//! samples of a request in three flat vectors that are reused from request to
//! request. `benches/remote_write.rs` compares it with the `prost` decoding of
//! [`super::proto::WriteRequest`] (which it is also tested against).
//!
//! Label bytes are not checked for UTF-8 here: a bad label rejects only its
//! series (see [`super::validate`]), as in Prometheus, whose protobuf decoder
//! does not check UTF-8 either.

use crate::model::Sample;

/// Why a body could not be decoded. Everything but
/// [`DecodeError::DecompressedTooLarge`] and [`DecodeError::TooManySeries`]
/// is a 400; those two are 413.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The body is not valid snappy block format.
    #[error("snappy decode: {0}")]
    Snappy(#[from] snap::Error),
    /// The snappy header announces more bytes than allowed.
    #[error("decompressed size {size} bytes exceeds the limit of {limit} bytes")]
    DecompressedTooLarge {
        /// Size from the snappy length header.
        size: usize,
        /// The configured limit.
        limit: usize,
    },
    /// The decompressed bytes are not a valid `WriteRequest`.
    #[error("protobuf decode: {kind} in {message} at byte {offset}")]
    Protobuf {
        /// What is wrong.
        kind: ProtoErrorKind,
        /// The message being decoded (`WriteRequest`, `TimeSeries`, ...).
        message: &'static str,
        /// Byte offset in the decompressed body.
        offset: usize,
    },
    /// More series than [`super::Limits::series_per_request`].
    #[error("request has more than {limit} series")]
    TooManySeries {
        /// The configured limit.
        limit: usize,
    },
}

/// The kinds of protobuf malformation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ProtoErrorKind {
    /// The input ends inside a field.
    #[error("unexpected end of input")]
    Truncated,
    /// A varint longer than 10 bytes or overflowing 64 bits.
    #[error("invalid varint")]
    BadVarint,
    /// Field number 0, or a wire type that is not 0, 1, 2 or 5.
    #[error("invalid tag")]
    BadTag,
    /// A known field with a wire type that does not fit its declaration.
    #[error("wrong wire type {wire_type} for field {field}")]
    WrongWireType {
        /// Field number.
        field: u32,
        /// Wire type found.
        wire_type: u8,
    },
}

/// Byte range `[start, end)` inside the decompressed buffer.
#[derive(Debug, Clone, Copy, Default)]
struct Span {
    start: u32,
    end: u32,
}

#[derive(Debug, Clone, Copy, Default)]
struct RawLabel {
    name: Span,
    value: Span,
}

#[derive(Debug, Clone, Copy, Default)]
struct RawSeries {
    labels: (u32, u32),
    /// Bytes from the first label field's tag to the end of the last one.
    label_bytes: Span,
    samples: (u32, u32),
    exemplars: u32,
    histograms: u32,
}

/// A decoded `WriteRequest`, owning its decompressed bytes. Reuse one value
/// for many requests: [`DecodedRequest::decode`] clears it and keeps the
/// allocations.
#[derive(Debug, Default)]
pub struct DecodedRequest {
    buf: Vec<u8>,
    series: Vec<RawSeries>,
    labels: Vec<RawLabel>,
    samples: Vec<Sample>,
    metadata: usize,
}

/// One series of a [`DecodedRequest`].
#[derive(Debug, Clone, Copy)]
pub struct SeriesView<'a> {
    buf: &'a [u8],
    labels: &'a [RawLabel],
    /// Its float samples in the order sent.
    pub samples: &'a [Sample],
    /// How many exemplars it carried (skipped).
    pub exemplars: u32,
    /// How many native histograms it carried (not stored).
    pub histograms: u32,
    label_bytes: &'a [u8],
}

impl<'a> SeriesView<'a> {
    /// Its labels as raw `(name, value)` bytes, in the order sent.
    pub fn labels(&self) -> impl ExactSizeIterator<Item = (&'a [u8], &'a [u8])> + 'a {
        let buf = self.buf;
        self.labels.iter().map(move |l| (span(buf, l.name), span(buf, l.value)))
    }

    /// Number of labels sent (including empty-valued ones).
    pub fn label_count(&self) -> usize {
        self.labels.len()
    }

    /// The raw protobuf bytes from the first label field to the end of the
    /// last one. Equal bytes decode to equal labels (whatever else a sender
    /// interleaved there), so they can key a cache of validated series.
    pub fn label_bytes(&self) -> &'a [u8] {
        self.label_bytes
    }
}

/// The bytes of `s`, or empty if out of range (cannot happen for spans the
/// decoder recorded in the same buffer; this keeps a bug from panicking).
#[inline]
fn span(buf: &[u8], s: Span) -> &[u8] {
    buf.get(s.start as usize..s.end as usize).unwrap_or(&[])
}

impl DecodedRequest {
    /// An empty value, ready for [`DecodedRequest::decode`].
    pub fn new() -> Self {
        DecodedRequest::default()
    }

    /// Decompresses `body` (snappy block format) and decodes the protobuf
    /// `WriteRequest` in it. The snappy length header is checked against
    /// `max_decompressed` before anything is allocated.
    pub fn decode(&mut self, body: &[u8], max_decompressed: usize, max_series: usize) -> Result<(), DecodeError> {
        decompress_into(body, max_decompressed, &mut self.buf)?;
        self.parse(max_series)
    }

    /// Decodes an uncompressed protobuf `WriteRequest` (for tests and benches).
    pub fn decode_uncompressed(&mut self, raw: &[u8], max_series: usize) -> Result<(), DecodeError> {
        self.buf.clear();
        self.buf.extend_from_slice(raw);
        self.parse(max_series)
    }

    /// Number of series.
    pub fn series_count(&self) -> usize {
        self.series.len()
    }

    /// Number of float samples over all series.
    pub fn sample_count(&self) -> usize {
        self.samples.len()
    }

    /// Number of metadata entries (skipped).
    pub fn metadata_count(&self) -> usize {
        self.metadata
    }

    /// Size of the decompressed body in bytes.
    pub fn decompressed_len(&self) -> usize {
        self.buf.len()
    }

    /// The series in the order sent.
    pub fn series(&self) -> impl ExactSizeIterator<Item = SeriesView<'_>> + '_ {
        self.series.iter().map(move |s| SeriesView {
            buf: &self.buf,
            labels: self.labels.get(s.labels.0 as usize..s.labels.1 as usize).unwrap_or(&[]),
            samples: self.samples.get(s.samples.0 as usize..s.samples.1 as usize).unwrap_or(&[]),
            exemplars: s.exemplars,
            histograms: s.histograms,
            label_bytes: span(&self.buf, s.label_bytes),
        })
    }

    fn parse(&mut self, max_series: usize) -> Result<(), DecodeError> {
        self.series.clear();
        self.labels.clear();
        self.samples.clear();
        self.metadata = 0;
        // Offsets are stored as u32; the decompressed limit is capped below
        // 4 GiB, and this check keeps a caller that skipped it safe.
        if self.buf.len() > u32::MAX as usize {
            return Err(DecodeError::DecompressedTooLarge { size: self.buf.len(), limit: u32::MAX as usize });
        }
        let mut r = Reader { buf: &self.buf, pos: 0, message: "WriteRequest" };
        while !r.at_end() {
            let (field, wt) = r.tag()?;
            match (field, wt) {
                (1, WT_LEN) => {
                    if self.series.len() >= max_series {
                        return Err(DecodeError::TooManySeries { limit: max_series });
                    }
                    let end = r.len_end()?;
                    let s = parse_series(&mut r, end, &mut self.labels, &mut self.samples)?;
                    self.series.push(s);
                }
                (3, WT_LEN) => {
                    let end = r.len_end()?;
                    r.pos = end;
                    self.metadata += 1;
                }
                (1 | 3, _) => return Err(r.wrong_type(field, wt)),
                _ => r.skip(wt)?,
            }
        }
        Ok(())
    }
}

/// Decompresses snappy block-format `body` into `out` (cleared first),
/// refusing before allocation when the length header exceeds `limit`.
pub fn decompress_into(body: &[u8], limit: usize, out: &mut Vec<u8>) -> Result<(), DecodeError> {
    let limit = limit.min(u32::MAX as usize);
    let size = snap::raw::decompress_len(body)?;
    if size > limit {
        return Err(DecodeError::DecompressedTooLarge { size, limit });
    }
    // Only grow (zero-filling the new part); the decoder overwrites the
    // first `size` bytes, so stale bytes from an earlier request never show.
    if out.len() < size {
        out.resize(size, 0);
    } else {
        out.truncate(size);
    }
    let n = snap::raw::Decoder::new().decompress(body, out)?;
    out.truncate(n);
    Ok(())
}

const WT_VARINT: u8 = 0;
const WT_I64: u8 = 1;
const WT_LEN: u8 = 2;
const WT_I32: u8 = 5;

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    message: &'static str,
}

impl Reader<'_> {
    #[inline]
    fn at_end(&self) -> bool {
        self.pos >= self.buf.len()
    }

    #[inline]
    fn err(&self, kind: ProtoErrorKind) -> DecodeError {
        DecodeError::Protobuf { kind, message: self.message, offset: self.pos }
    }

    fn wrong_type(&self, field: u32, wire_type: u8) -> DecodeError {
        self.err(ProtoErrorKind::WrongWireType { field, wire_type })
    }

    #[inline]
    fn varint(&mut self) -> Result<u64, DecodeError> {
        // Fast path: one byte (tags and short lengths).
        if let Some(&b) = self.buf.get(self.pos) {
            if b < 0x80 {
                self.pos += 1;
                return Ok(u64::from(b));
            }
        }
        let mut v: u64 = 0;
        for i in 0..10 {
            let b = *self.buf.get(self.pos).ok_or_else(|| self.err(ProtoErrorKind::Truncated))?;
            self.pos += 1;
            if i == 9 && b > 1 {
                return Err(self.err(ProtoErrorKind::BadVarint));
            }
            v |= u64::from(b & 0x7f) << (7 * i);
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err(self.err(ProtoErrorKind::BadVarint))
    }

    #[inline]
    fn tag(&mut self) -> Result<(u32, u8), DecodeError> {
        let start = self.pos;
        let t = self.varint()?;
        let field = t >> 3;
        let wt = (t & 7) as u8;
        if field == 0 || field > u64::from(u32::MAX >> 3) || !matches!(wt, WT_VARINT | WT_I64 | WT_LEN | WT_I32) {
            self.pos = start;
            return Err(self.err(ProtoErrorKind::BadTag));
        }
        Ok((field as u32, wt))
    }

    /// Reads a length prefix and returns the end offset of the field, checked
    /// against the buffer.
    #[inline]
    fn len_end(&mut self) -> Result<usize, DecodeError> {
        let len = self.varint()?;
        let end = usize::try_from(len)
            .ok()
            .and_then(|l| self.pos.checked_add(l))
            .filter(|&e| e <= self.buf.len())
            .ok_or_else(|| self.err(ProtoErrorKind::Truncated))?;
        Ok(end)
    }

    #[inline]
    fn fixed64(&mut self) -> Result<u64, DecodeError> {
        let end = self.pos + 8;
        let b = self.buf.get(self.pos..end).ok_or_else(|| self.err(ProtoErrorKind::Truncated))?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        self.pos = end;
        Ok(u64::from_le_bytes(a))
    }

    fn skip(&mut self, wt: u8) -> Result<(), DecodeError> {
        let n = match wt {
            WT_VARINT => {
                self.varint()?;
                return Ok(());
            }
            WT_I64 => 8,
            WT_I32 => 4,
            // WT_LEN; `tag` admits no other wire type.
            _ => {
                self.pos = self.len_end()?;
                return Ok(());
            }
        };
        if self.pos + n > self.buf.len() {
            return Err(self.err(ProtoErrorKind::Truncated));
        }
        self.pos += n;
        Ok(())
    }

    /// Checks that a sub-message ended exactly at its declared end.
    #[inline]
    fn check_end(&self, end: usize) -> Result<(), DecodeError> {
        if self.pos == end {
            Ok(())
        } else {
            Err(self.err(ProtoErrorKind::Truncated))
        }
    }
}

fn parse_series(
    r: &mut Reader<'_>,
    end: usize,
    labels: &mut Vec<RawLabel>,
    samples: &mut Vec<Sample>,
) -> Result<RawSeries, DecodeError> {
    let outer = r.message;
    r.message = "TimeSeries";
    // Lengths fit in u32 because the buffer does (checked in `parse`).
    let mut s = RawSeries {
        labels: (labels.len() as u32, 0),
        label_bytes: Span::default(),
        samples: (samples.len() as u32, 0),
        exemplars: 0,
        histograms: 0,
    };
    // A sub-reader bounded by the series' end, so a bad inner length cannot
    // read into the next series.
    let mut sub = Reader { buf: &r.buf[..end], pos: r.pos, message: "TimeSeries" };
    let mut first_label: Option<u32> = None;
    while !sub.at_end() {
        let tag_at = sub.pos as u32;
        let (field, wt) = sub.tag()?;
        match (field, wt) {
            (1, WT_LEN) => {
                let e = sub.len_end()?;
                labels.push(parse_label(&mut sub, e)?);
                let start = *first_label.get_or_insert(tag_at);
                s.label_bytes = Span { start, end: e as u32 };
            }
            (2, WT_LEN) => {
                let e = sub.len_end()?;
                samples.push(parse_sample(&mut sub, e)?);
            }
            (3, WT_LEN) => {
                sub.pos = sub.len_end()?;
                s.exemplars += 1;
            }
            (4, WT_LEN) => {
                sub.pos = sub.len_end()?;
                s.histograms += 1;
            }
            (1..=4, _) => return Err(sub.wrong_type(field, wt)),
            _ => sub.skip(wt)?,
        }
    }
    r.pos = sub.pos;
    r.message = outer;
    s.labels.1 = labels.len() as u32;
    s.samples.1 = samples.len() as u32;
    Ok(s)
}

#[inline]
fn parse_label(r: &mut Reader<'_>, end: usize) -> Result<RawLabel, DecodeError> {
    let mut l = RawLabel::default();
    let outer = r.message;
    r.message = "Label";
    while r.pos < end {
        let (field, wt) = r.tag()?;
        match (field, wt) {
            (1, WT_LEN) => {
                let e = r.len_end()?;
                l.name = Span { start: r.pos as u32, end: e as u32 };
                r.pos = e;
            }
            (2, WT_LEN) => {
                let e = r.len_end()?;
                l.value = Span { start: r.pos as u32, end: e as u32 };
                r.pos = e;
            }
            (1 | 2, _) => return Err(r.wrong_type(field, wt)),
            _ => r.skip(wt)?,
        }
    }
    r.check_end(end)?;
    r.message = outer;
    Ok(l)
}

#[inline]
fn parse_sample(r: &mut Reader<'_>, end: usize) -> Result<Sample, DecodeError> {
    let mut s = Sample::new(0, 0.0);
    let outer = r.message;
    r.message = "Sample";
    while r.pos < end {
        let (field, wt) = r.tag()?;
        match (field, wt) {
            (1, WT_I64) => s.v = f64::from_bits(r.fixed64()?),
            // int64 is a two's-complement varint: the cast keeps the bits.
            (2, WT_VARINT) => s.t = r.varint()? as i64,
            (1 | 2, _) => return Err(r.wrong_type(field, wt)),
            _ => r.skip(wt)?,
        }
    }
    r.check_end(end)?;
    r.message = outer;
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::proto;
    use prost::Message;

    fn label(n: &str, v: &str) -> proto::Label {
        proto::Label { name: n.into(), value: v.into() }
    }

    fn sample_request() -> proto::WriteRequest {
        proto::WriteRequest {
            timeseries: vec![
                proto::TimeSeries {
                    labels: vec![label("__name__", "nv_inference_count"), label("model", "resnet50")],
                    samples: vec![
                        proto::Sample { value: 12.5, timestamp: 1_700_000_000_000 },
                        proto::Sample { value: f64::from_bits(crate::model::STALE_NAN_BITS), timestamp: -5 },
                    ],
                    exemplars: vec![proto::Exemplar {
                        labels: vec![label("trace_id", "abc")],
                        value: 1.0,
                        timestamp: 3,
                    }],
                    histograms: vec![proto::Histogram { timestamp: 9 }],
                },
                proto::TimeSeries { labels: vec![label("__name__", "up")], samples: vec![], ..Default::default() },
            ],
            metadata: vec![proto::MetricMetadata {
                r#type: 1,
                metric_family_name: "x".into(),
                help: "h".into(),
                unit: "".into(),
            }],
        }
    }

    #[test]
    fn decodes_what_prost_encodes() {
        let req = sample_request();
        let body = req.encode_snappy().unwrap();
        let mut d = DecodedRequest::new();
        d.decode(&body, 1 << 20, 10).unwrap();
        assert_eq!(d.series_count(), 2);
        assert_eq!(d.sample_count(), 2);
        assert_eq!(d.metadata_count(), 1);
        let s: Vec<_> = d.series().collect();
        let l: Vec<_> = s[0].labels().collect();
        assert_eq!(l, vec![(&b"__name__"[..], &b"nv_inference_count"[..]), (&b"model"[..], &b"resnet50"[..])]);
        assert_eq!(s[0].samples[0], Sample::new(1_700_000_000_000, 12.5));
        assert_eq!(s[0].samples[1].t, -5);
        assert_eq!(s[0].samples[1].v.to_bits(), crate::model::STALE_NAN_BITS);
        assert_eq!((s[0].exemplars, s[0].histograms), (1, 1));
        assert!(s[1].samples.is_empty());
        assert_eq!(s[1].labels().count(), 1);
    }

    #[test]
    fn oversized_length_header_refused_before_allocation() {
        // A 6-byte body whose header claims 4 GiB - 1.
        let body = [0xff, 0xff, 0xff, 0xff, 0x0f, 0x00];
        let mut d = DecodedRequest::new();
        let e = d.decode(&body, 1 << 20, 10).unwrap_err();
        assert!(matches!(e, DecodeError::DecompressedTooLarge { size: 0xffff_ffff, limit: 1_048_576 }), "{e}");
        assert_eq!(d.buf.capacity(), 0);
    }

    #[test]
    fn bad_snappy_and_bad_protobuf_are_errors() {
        let mut d = DecodedRequest::new();
        assert!(matches!(d.decode(b"\x05not snappy", 1 << 20, 10), Err(DecodeError::Snappy(_))));
        // Field 1 (len) claiming 100 bytes with 2 present.
        let raw = [0x0a, 100, 1, 2];
        let e = d.decode_uncompressed(&raw, 10).unwrap_err();
        assert!(matches!(e, DecodeError::Protobuf { kind: ProtoErrorKind::Truncated, .. }), "{e}");
        // Timeseries as a varint.
        let e = d.decode_uncompressed(&[0x08, 1], 10).unwrap_err();
        assert!(matches!(
            e,
            DecodeError::Protobuf { kind: ProtoErrorKind::WrongWireType { field: 1, wire_type: 0 }, .. }
        ));
        // Wire type 3 (group start).
        let e = d.decode_uncompressed(&[0x0b], 10).unwrap_err();
        assert!(matches!(e, DecodeError::Protobuf { kind: ProtoErrorKind::BadTag, .. }));
        // An inner label length running past its series.
        let raw = [0x0a, 4, 0x0a, 10, 0x0a, 0];
        assert!(d.decode_uncompressed(&raw, 10).is_err());
    }

    #[test]
    fn unknown_fields_skipped() {
        let mut raw = Vec::new();
        // Unknown field 7 varint, field 9 fixed32, field 10 len, then a series.
        raw.extend_from_slice(&[0x38, 0x96, 0x01, 0x4d, 1, 2, 3, 4, 0x52, 2, 9, 9]);
        let ts = proto::TimeSeries { labels: vec![label("__name__", "a")], ..Default::default() };
        let mut inner = Vec::new();
        ts.encode(&mut inner).unwrap();
        raw.push(0x0a);
        raw.push(inner.len() as u8);
        raw.extend_from_slice(&inner);
        let mut d = DecodedRequest::new();
        d.decode_uncompressed(&raw, 10).unwrap();
        assert_eq!(d.series_count(), 1);
    }

    #[test]
    fn series_limit_trips() {
        let req = sample_request();
        let raw = req.encode_to_vec();
        let mut d = DecodedRequest::new();
        assert!(matches!(d.decode_uncompressed(&raw, 1), Err(DecodeError::TooManySeries { limit: 1 })));
        d.decode_uncompressed(&raw, 2).unwrap();
    }

    proptest::proptest! {
        #[test]
        fn matches_prost_on_random_requests(
            series in proptest::collection::vec(
                (proptest::collection::vec(("[a-z_]{0,12}", "\\PC{0,20}"), 0..6),
                 proptest::collection::vec((proptest::prelude::any::<i64>(), proptest::prelude::any::<f64>()), 0..4)),
                0..8)
        ) {
            let req = proto::WriteRequest {
                timeseries: series.iter().map(|(ls, ss)| proto::TimeSeries {
                    labels: ls.iter().map(|(n, v)| label(n, v)).collect(),
                    samples: ss.iter().map(|&(t, v)| proto::Sample { value: v, timestamp: t }).collect(),
                    ..Default::default()
                }).collect(),
                metadata: vec![],
            };
            let body = req.encode_snappy().unwrap();
            let mut d = DecodedRequest::new();
            d.decode(&body, 1 << 24, 100).unwrap();
            // Compare with what prost decodes (proto3 drops -0.0 on encode).
            let raw = snap::raw::Decoder::new().decompress_vec(&body).unwrap();
            let req = proto::WriteRequest::decode(&raw[..]).unwrap();
            proptest::prop_assert_eq!(d.series_count(), req.timeseries.len());
            for (got, want) in d.series().zip(&req.timeseries) {
                let gl: Vec<(Vec<u8>, Vec<u8>)> = got.labels().map(|(n, v)| (n.to_vec(), v.to_vec())).collect();
                let wl: Vec<(Vec<u8>, Vec<u8>)> = want.labels.iter().map(|l| (l.name.clone().into_bytes(), l.value.clone().into_bytes())).collect();
                proptest::prop_assert_eq!(gl, wl);
                proptest::prop_assert_eq!(got.samples.len(), want.samples.len());
                for (g, w) in got.samples.iter().zip(&want.samples) {
                    proptest::prop_assert_eq!(g.t, w.timestamp);
                    proptest::prop_assert_eq!(g.v.to_bits(), w.value.to_bits());
                }
            }
        }

        #[test]
        fn never_panics_on_garbage(raw in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
            let mut d = DecodedRequest::new();
            let _ = d.decode_uncompressed(&raw, 100);
            let _ = d.decode(&raw, 1 << 16, 100);
        }
    }
}
