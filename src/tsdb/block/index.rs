//! The block `index` file: symbol table, series (label references and chunk
//! metadata), postings lists, the postings offset table and the list of chunk
//! segment files, each section followed by its CRC32C, located by a TOC at
//! the end of the file. `docs/FORMAT.md` (Blocks) has the byte layout.
//!
//! [`IndexBuilder`] encodes into memory (pure); [`IndexReader`] validates and
//! reads an index held in [`FileBytes`].

use std::cmp::Ordering;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::bytes::FileBytes;
use super::encoding::{put_uvarint, put_varint, u32_at, u64_at, DecodeError, Decoder};
use super::error::BlockError;
use crate::model::{Labels, MatchOp, Matcher};
use crate::tsdb::postings;

/// Magic bytes at the start of an index file.
pub const INDEX_MAGIC: [u8; 4] = *b"PLIX";
/// The index layout version this build writes and reads.
pub const INDEX_VERSION: u8 = 1;
/// Header: magic (4) + version (1) + reserved (3) + file length u64 LE (8).
pub const INDEX_HEADER_LEN: usize = 16;
/// Number of sections listed in the TOC.
const SECTIONS: usize = 6;
/// TOC: base time i64 LE + per section (offset u64 LE, length u64 LE) + CRC32C u32 LE.
pub const INDEX_TOC_LEN: usize = 8 + SECTIONS * 16 + 4;

const SECTION_NAMES: [&str; SECTIONS] =
    ["symbols", "series", "series offsets", "postings lists", "postings table", "chunk segments"];

/// Where one chunk lives and what it covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ChunkMeta {
    /// First sample's timestamp.
    pub mint: i64,
    /// Last sample's timestamp.
    pub maxt: i64,
    /// Segment file index (0 is `chunks/000001`).
    pub segment: u32,
    /// Byte offset of the chunk's data inside the segment file.
    pub offset: u32,
    /// Length of the chunk's data (its CRC32C follows it).
    pub len: u32,
}

/// One decoded series entry.
#[derive(Debug, Clone)]
pub(crate) struct SeriesRecord {
    pub labels: Labels,
    pub chunks: Vec<ChunkMeta>,
}

/// Builds an index in memory. Series must be added in label order.
pub(crate) struct IndexBuilder {
    symbols: Vec<String>,
    base_time: i64,
    series: Vec<u8>,
    series_offsets: Vec<u8>,
    num_series: u32,
    postings: HashMap<(u32, u32), Vec<u32>>,
    scratch: Vec<(u32, u32)>,
}

/// Why an index could not be built: the caller's data broke an invariant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum BuildError {
    #[error("label {0:?} is missing from the symbol table")]
    MissingSymbol(String),
    #[error("series section exceeds 4 GiB")]
    TooLarge,
    #[error("chunks of one series must be contiguous and ordered in time")]
    BadChunks,
}

impl IndexBuilder {
    /// A builder whose symbol table is `symbols` (sorted and deduplicated
    /// here) and whose chunk times are stored relative to `base_time`.
    pub(crate) fn new(mut symbols: Vec<String>, base_time: i64) -> Self {
        symbols.sort_unstable();
        symbols.dedup();
        IndexBuilder {
            symbols,
            base_time,
            series: Vec::new(),
            series_offsets: Vec::new(),
            num_series: 0,
            postings: HashMap::new(),
            scratch: Vec::new(),
        }
    }

    fn sym(&self, s: &str) -> Result<u32, BuildError> {
        self.symbols
            .binary_search_by(|x| x.as_str().cmp(s))
            .map(|i| i as u32)
            .map_err(|_| BuildError::MissingSymbol(s.to_string()))
    }

    /// Appends a series with its chunks (contiguous in one segment, in time order).
    pub(crate) fn add_series(&mut self, labels: &Labels, chunks: &[ChunkMeta]) -> Result<(), BuildError> {
        let off = u32::try_from(self.series.len()).map_err(|_| BuildError::TooLarge)?;
        self.scratch.clear();
        for l in labels.iter() {
            let pair = (self.sym(l.name)?, self.sym(l.value)?);
            self.scratch.push(pair);
        }
        let ord = self.num_series;
        let out = &mut self.series;
        put_uvarint(out, self.scratch.len() as u64);
        for &(n, v) in &self.scratch {
            put_uvarint(out, u64::from(n));
            put_uvarint(out, u64::from(v));
            self.postings.entry((n, v)).or_default().push(ord);
        }
        put_uvarint(out, chunks.len() as u64);
        if let Some(first) = chunks.first() {
            put_uvarint(out, u64::from(first.segment));
            put_uvarint(out, u64::from(first.offset));
            let mut prev: Option<&ChunkMeta> = None;
            for c in chunks {
                if c.maxt < c.mint || c.segment != first.segment {
                    return Err(BuildError::BadChunks);
                }
                match prev {
                    None => put_varint(out, c.mint.wrapping_sub(self.base_time)),
                    Some(p) => {
                        let next_off = u64::from(p.offset) + u64::from(p.len) + 4;
                        if c.mint <= p.maxt || u64::from(c.offset) != next_off {
                            return Err(BuildError::BadChunks);
                        }
                        put_uvarint(out, (c.mint - p.maxt) as u64);
                    }
                }
                put_uvarint(out, (c.maxt - c.mint) as u64);
                put_uvarint(out, u64::from(c.len));
                prev = Some(c);
            }
        }
        self.series_offsets.extend_from_slice(&off.to_le_bytes());
        self.num_series += 1;
        Ok(())
    }

    /// The finished file: header, sections with CRCs, TOC.
    pub(crate) fn finish(self, segment_lens: &[u64]) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.series.len() * 2 + 1024);
        out.extend_from_slice(&INDEX_MAGIC);
        out.push(INDEX_VERSION);
        out.extend_from_slice(&[0, 0, 0]);
        out.extend_from_slice(&[0; 8]); // file length, patched below
        let mut toc: Vec<(u64, u64)> = Vec::with_capacity(SECTIONS);

        let mut sec = Vec::new();
        put_uvarint(&mut sec, self.symbols.len() as u64);
        for s in &self.symbols {
            put_uvarint(&mut sec, s.len() as u64);
            sec.extend_from_slice(s.as_bytes());
        }
        push_section(&mut out, &mut toc, &sec);
        push_section(&mut out, &mut toc, &self.series);
        push_section(&mut out, &mut toc, &self.series_offsets);

        // Postings in (name, value) symbol order, which is string order.
        let mut keys: Vec<(u32, u32)> = self.postings.keys().copied().collect();
        keys.sort_unstable();
        let mut lists = Vec::new();
        let mut list_offsets = Vec::with_capacity(keys.len());
        for k in &keys {
            list_offsets.push(lists.len() as u64);
            let refs = self.postings.get(k).map(Vec::as_slice).unwrap_or(&[]);
            put_uvarint(&mut lists, refs.len() as u64);
            let mut prev = 0u32;
            for (i, &r) in refs.iter().enumerate() {
                put_uvarint(&mut lists, u64::from(if i == 0 { r } else { r - prev }));
                prev = r;
            }
        }
        push_section(&mut out, &mut toc, &lists);

        let mut table = Vec::new();
        let names: Vec<u32> = {
            let mut n: Vec<u32> = keys.iter().map(|k| k.0).collect();
            n.dedup();
            n
        };
        put_uvarint(&mut table, names.len() as u64);
        let mut i = 0;
        let mut prev_off = 0u64;
        for name in names {
            let start = i;
            while i < keys.len() && keys[i].0 == name {
                i += 1;
            }
            put_uvarint(&mut table, u64::from(name));
            put_uvarint(&mut table, (i - start) as u64);
            let mut prev_val = 0u32;
            for (j, k) in keys[start..i].iter().enumerate() {
                put_uvarint(&mut table, u64::from(if j == 0 { k.1 } else { k.1 - prev_val }));
                prev_val = k.1;
                let off = list_offsets[start + j];
                put_uvarint(&mut table, off - prev_off);
                prev_off = off;
            }
        }
        push_section(&mut out, &mut toc, &table);

        let mut segs = Vec::new();
        put_uvarint(&mut segs, segment_lens.len() as u64);
        for &l in segment_lens {
            put_uvarint(&mut segs, l);
        }
        push_section(&mut out, &mut toc, &segs);

        let toc_start = out.len();
        out.extend_from_slice(&self.base_time.to_le_bytes());
        for (o, l) in toc {
            out.extend_from_slice(&o.to_le_bytes());
            out.extend_from_slice(&l.to_le_bytes());
        }
        let crc = crc32c::crc32c(&out[toc_start..]);
        out.extend_from_slice(&crc.to_le_bytes());
        let total = out.len() as u64;
        out[8..16].copy_from_slice(&total.to_le_bytes());
        out
    }
}

fn push_section(out: &mut Vec<u8>, toc: &mut Vec<(u64, u64)>, payload: &[u8]) {
    toc.push((out.len() as u64, payload.len() as u64));
    out.extend_from_slice(payload);
    out.extend_from_slice(&crc32c::crc32c(payload).to_le_bytes());
}

/// A label name's slice of the postings table.
#[derive(Debug, Clone, Copy)]
struct NameEntry {
    sym: u32,
    first: u32,
    end: u32,
}

/// A validated index.
pub(crate) struct IndexReader {
    path: PathBuf,
    data: Arc<FileBytes>,
    base_time: i64,
    /// File offset of each symbol's length varint.
    symbols: Vec<u32>,
    series: (usize, usize),
    series_offsets: (usize, usize),
    postings: (usize, usize),
    names: Vec<NameEntry>,
    /// (value symbol, file offset of its postings list) per name, in order.
    values: Vec<(u32, u32)>,
    segment_lens: Vec<u64>,
}

impl IndexReader {
    /// Validates header, TOC, the CRC of every section and the symbol and
    /// postings tables, which it loads.
    pub(crate) fn open(path: &Path, data: Arc<FileBytes>) -> Result<IndexReader, BlockError> {
        let buf: &[u8] = &data;
        let p = path.display().to_string();
        let len = buf.len() as u64;
        if buf.len() < INDEX_HEADER_LEN {
            return Err(BlockError::Length {
                path: p,
                actual: len,
                expected: INDEX_HEADER_LEN as u64,
                claimed_by: "the fixed-size index header",
                offset: len,
            });
        }
        if buf[0..4] != INDEX_MAGIC {
            return Err(BlockError::corrupt(path, 0, "bad magic: not a promlite index file"));
        }
        if buf[4] != INDEX_VERSION {
            return Err(BlockError::Version {
                path: p,
                what: "index",
                version: u32::from(buf[4]),
                supported: u32::from(INDEX_VERSION),
            });
        }
        let claimed = u64_at(buf, 8).unwrap_or(0);
        if claimed != len {
            return Err(BlockError::Length {
                path: p,
                actual: len,
                expected: claimed,
                claimed_by: "the index header",
                offset: len.min(claimed),
            });
        }
        if buf.len() < INDEX_HEADER_LEN + INDEX_TOC_LEN {
            return Err(BlockError::corrupt(path, len, "file too short to hold the TOC"));
        }
        let toc_at = buf.len() - INDEX_TOC_LEN;
        let toc = &buf[toc_at..buf.len() - 4];
        let stored = u32_at(buf, buf.len() - 4).unwrap_or(0);
        let got = crc32c::crc32c(toc);
        if stored != got {
            return Err(BlockError::Checksum {
                path: p,
                what: "index TOC".into(),
                offset: toc_at as u64,
                expected: stored,
                got,
            });
        }
        let base_time = u64_at(toc, 0).unwrap_or(0) as i64;
        let mut sections = [(0usize, 0usize); SECTIONS];
        let mut min_start = INDEX_HEADER_LEN as u64;
        for (i, s) in sections.iter_mut().enumerate() {
            let off = u64_at(toc, 8 + i * 16).unwrap_or(u64::MAX);
            let slen = u64_at(toc, 16 + i * 16).unwrap_or(u64::MAX);
            let end = off.checked_add(slen).and_then(|e| e.checked_add(4));
            match end {
                Some(end) if off >= min_start && end <= toc_at as u64 => {
                    min_start = end;
                    *s = (off as usize, (off + slen) as usize);
                }
                _ => {
                    return Err(BlockError::corrupt(
                        path,
                        (toc_at + 8 + i * 16) as u64,
                        format!(
                            "TOC entry for section {} (offset {off}, length {slen}) lies outside the file's sections",
                            SECTION_NAMES[i]
                        ),
                    ))
                }
            }
            let stored = u32_at(buf, s.1).unwrap_or(0);
            let got = crc32c::crc32c(&buf[s.0..s.1]);
            if stored != got {
                return Err(BlockError::Checksum {
                    path: p.clone(),
                    what: format!("index section {}", SECTION_NAMES[i]),
                    offset: s.0 as u64,
                    expected: stored,
                    got,
                });
            }
        }
        let de = |e: DecodeError| BlockError::corrupt(path, e.offset, e.reason);

        // Symbols: strictly increasing strings.
        let (s0, s1) = sections[0];
        let mut d = Decoder::new(&buf[s0..s1], s0 as u64);
        let n = d.uvarint().map_err(de)?;
        if n > d.remaining() as u64 {
            return Err(de(d.err(format!("symbol count {n} exceeds the section"))));
        }
        let mut symbols = Vec::with_capacity(n as usize);
        let mut prev: Option<&str> = None;
        for _ in 0..n {
            let at = d.offset();
            let s = d.str().map_err(de)?;
            if prev.is_some_and(|p| p >= s) {
                return Err(BlockError::corrupt(path, at, "symbols are not strictly sorted"));
            }
            prev = Some(s);
            symbols.push(at as u32);
        }
        if at_u32_limit(s1) {
            return Err(BlockError::corrupt(path, s1 as u64, "symbol table beyond 4 GiB"));
        }

        // Series offsets: one u32 per series, increasing, inside the series section.
        let (o0, o1) = sections[2];
        if (o1 - o0) % 4 != 0 {
            return Err(BlockError::corrupt(path, o0 as u64, "series offsets section is not a multiple of 4 bytes"));
        }
        let series_len = sections[1].1 - sections[1].0;
        let mut prev_off: Option<u32> = None;
        for at in (o0..o1).step_by(4) {
            let v = u32_at(buf, at).unwrap_or(u32::MAX);
            if v as usize >= series_len || prev_off.is_some_and(|p| p >= v) {
                return Err(BlockError::corrupt(
                    path,
                    at as u64,
                    format!("series offset {v} out of order or outside the series section"),
                ));
            }
            prev_off = Some(v);
        }

        // Postings table.
        let (t0, t1) = sections[4];
        let (l0, l1) = sections[3];
        let mut d = Decoder::new(&buf[t0..t1], t0 as u64);
        let nnames = d.uvarint().map_err(de)?;
        if nnames > d.remaining() as u64 {
            return Err(de(d.err("name count exceeds the section")));
        }
        let mut names = Vec::with_capacity(nnames as usize);
        let mut values: Vec<(u32, u32)> = Vec::new();
        let mut list_off = 0u64;
        let mut prev_name: Option<u32> = None;
        for _ in 0..nnames {
            let at = d.offset();
            let name = d.uvarint32().map_err(de)?;
            if name as usize >= symbols.len() || prev_name.is_some_and(|p| p >= name) {
                return Err(BlockError::corrupt(path, at, format!("label name symbol {name} out of range or order")));
            }
            prev_name = Some(name);
            let nvals = d.uvarint().map_err(de)?;
            if nvals > d.remaining() as u64 {
                return Err(de(d.err("value count exceeds the section")));
            }
            let first = values.len() as u32;
            let mut val = 0u64;
            for j in 0..nvals {
                let at = d.offset();
                let dv = d.uvarint().map_err(de)?;
                let doff = d.uvarint().map_err(de)?;
                if j > 0 && dv == 0 || (j > 0 || !values.is_empty()) && doff == 0 {
                    return Err(BlockError::corrupt(path, at, "postings table entries out of order"));
                }
                val = if j == 0 { dv } else { val.saturating_add(dv) };
                list_off = list_off.saturating_add(doff);
                if val >= symbols.len() as u64 || list_off >= (l1 - l0) as u64 {
                    return Err(BlockError::corrupt(path, at, "postings table entry points outside the index"));
                }
                values.push((val as u32, (l0 as u64 + list_off) as u32));
            }
            names.push(NameEntry { sym: name, first, end: values.len() as u32 });
        }
        if at_u32_limit(l1) {
            return Err(BlockError::corrupt(path, l1 as u64, "postings beyond 4 GiB"));
        }

        // Chunk segments.
        let (g0, g1) = sections[5];
        let mut d = Decoder::new(&buf[g0..g1], g0 as u64);
        let nseg = d.uvarint().map_err(de)?;
        if nseg > d.remaining() as u64 {
            return Err(de(d.err("segment count exceeds the section")));
        }
        let mut segment_lens = Vec::with_capacity(nseg as usize);
        for _ in 0..nseg {
            segment_lens.push(d.uvarint().map_err(de)?);
        }

        Ok(IndexReader {
            path: path.to_path_buf(),
            base_time,
            symbols,
            series: sections[1],
            series_offsets: sections[2],
            postings: sections[3],
            names,
            values,
            segment_lens,
            data,
        })
    }

    fn buf(&self) -> &[u8] {
        &self.data
    }

    fn corrupt(&self, e: DecodeError) -> BlockError {
        BlockError::corrupt(&self.path, e.offset, e.reason)
    }

    /// The claimed length of each chunk segment file.
    pub(crate) fn segment_lens(&self) -> &[u64] {
        &self.segment_lens
    }

    /// Number of series.
    pub(crate) fn num_series(&self) -> u32 {
        ((self.series_offsets.1 - self.series_offsets.0) / 4) as u32
    }

    /// Symbol `i` (validated at open).
    pub(crate) fn symbol(&self, i: u32) -> Result<&str, BlockError> {
        let at = *self
            .symbols
            .get(i as usize)
            .ok_or_else(|| BlockError::corrupt(&self.path, 0, format!("symbol reference {i} out of range")))?;
        let mut d = Decoder::new(&self.buf()[at as usize..], u64::from(at));
        d.str().map_err(|e| self.corrupt(e))
    }

    fn find_symbol(&self, s: &str) -> Result<Option<u32>, BlockError> {
        let (mut lo, mut hi) = (0usize, self.symbols.len());
        while lo < hi {
            let mid = (lo + hi) / 2;
            match self.symbol(mid as u32)?.cmp(s) {
                Ordering::Less => lo = mid + 1,
                Ordering::Greater => hi = mid,
                Ordering::Equal => return Ok(Some(mid as u32)),
            }
        }
        Ok(None)
    }

    fn name_entry(&self, name: &str) -> Result<Option<NameEntry>, BlockError> {
        let Some(sym) = self.find_symbol(name)? else { return Ok(None) };
        Ok(self.names.binary_search_by_key(&sym, |n| n.sym).ok().map(|i| self.names[i]))
    }

    /// Every label name, sorted.
    pub(crate) fn label_names(&self) -> Result<Vec<String>, BlockError> {
        self.names.iter().map(|n| self.symbol(n.sym).map(str::to_string)).collect()
    }

    /// Every value of label `name` with its postings list offset, sorted.
    fn values_of(&self, name: &str) -> Result<Vec<(&str, u32)>, BlockError> {
        let Some(e) = self.name_entry(name)? else { return Ok(Vec::new()) };
        let vals = self.values.get(e.first as usize..e.end as usize).unwrap_or(&[]);
        vals.iter().map(|&(v, off)| Ok((self.symbol(v)?, off))).collect()
    }

    /// Every value of label `name`, sorted.
    pub(crate) fn label_values(&self, name: &str) -> Result<Vec<String>, BlockError> {
        Ok(self.values_of(name)?.into_iter().map(|(v, _)| v.to_string()).collect())
    }

    /// Number of distinct values per label name.
    pub(crate) fn value_counts(&self) -> Result<Vec<(String, u64)>, BlockError> {
        self.names.iter().map(|n| Ok((self.symbol(n.sym)?.to_string(), u64::from(n.end - n.first)))).collect()
    }

    fn read_postings(&self, off: u32) -> Result<Vec<u32>, BlockError> {
        let (l0, l1) = self.postings;
        let start = off as usize;
        if start < l0 || start >= l1 {
            return Err(BlockError::corrupt(&self.path, u64::from(off), "postings offset outside its section"));
        }
        let mut d = Decoder::new(&self.buf()[start..l1], u64::from(off));
        let n = d.uvarint().map_err(|e| self.corrupt(e))?;
        if n > d.remaining() as u64 {
            return Err(self.corrupt(d.err("postings count exceeds the section")));
        }
        let total = self.num_series();
        let mut out = Vec::with_capacity(n as usize);
        let mut cur = 0u64;
        for i in 0..n {
            let dv = d.uvarint().map_err(|e| self.corrupt(e))?;
            if i > 0 && dv == 0 {
                return Err(self.corrupt(d.err("postings not strictly increasing")));
            }
            cur = cur.saturating_add(dv);
            if cur >= u64::from(total) {
                return Err(self.corrupt(d.err(format!("series ordinal {cur} beyond the {total} series"))));
            }
            out.push(cur as u32);
        }
        Ok(out)
    }

    /// Series ordinals of `name="value"`.
    pub(crate) fn postings(&self, name: &str, value: &str) -> Result<Vec<u32>, BlockError> {
        for (v, off) in self.values_of(name)? {
            if v == value {
                return self.read_postings(off);
            }
        }
        Ok(Vec::new())
    }

    /// Union of the postings of every value of `name` accepted by `keep`.
    fn postings_where(&self, name: &str, keep: impl Fn(&str) -> bool) -> Result<Vec<u32>, BlockError> {
        let mut lists = Vec::new();
        for (v, off) in self.values_of(name)? {
            if keep(v) {
                lists.push(self.read_postings(off)?);
            }
        }
        Ok(postings::union(lists))
    }

    /// Postings for one matcher that does not match the empty string.
    fn postings_for(&self, m: &Matcher) -> Result<Vec<u32>, BlockError> {
        match m.op {
            MatchOp::Equal => self.postings(&m.name, &m.value),
            MatchOp::RegexMatch => match m.set_matches() {
                Some(set) => {
                    let lists = set.iter().map(|v| self.postings(&m.name, v)).collect::<Result<Vec<_>, _>>()?;
                    Ok(postings::union(lists))
                }
                None => self.postings_where(&m.name, |v| m.matches(v)),
            },
            MatchOp::NotEqual | MatchOp::RegexNoMatch => self.postings_where(&m.name, |v| m.matches(v)),
        }
    }

    /// Sorted ordinals of series satisfying every matcher (all series for
    /// none), following Prometheus's `PostingsForMatchers`: matchers that
    /// accept the empty string also select series lacking the label, so they
    /// subtract the postings of the values they reject instead.
    pub(crate) fn select(&self, matchers: &[Matcher]) -> Result<Vec<u32>, BlockError> {
        let (pos, neg): (Vec<&Matcher>, Vec<&Matcher>) = matchers.iter().partition(|m| !m.matches_empty());
        let mut acc: Option<Vec<u32>> = None;
        for m in pos {
            let p = self.postings_for(m)?;
            acc = Some(match acc {
                None => p,
                Some(a) => postings::intersect(&a, &p),
            });
            if acc.as_ref().is_some_and(Vec::is_empty) {
                return Ok(Vec::new());
            }
        }
        let mut acc = match acc {
            Some(a) => a,
            None => (0..self.num_series()).collect(),
        };
        for m in neg {
            // Series whose value for this label is rejected by the matcher.
            let rejected = self.postings_where(&m.name, |v| !m.matches(v))?;
            acc = postings::subtract(&acc, &rejected);
        }
        Ok(acc)
    }

    /// The series with ordinal `ord`.
    pub(crate) fn series(&self, ord: u32) -> Result<SeriesRecord, BlockError> {
        let (o0, _) = self.series_offsets;
        let at = o0 + ord as usize * 4;
        let off = u32_at(self.buf(), at)
            .filter(|_| ord < self.num_series())
            .ok_or_else(|| BlockError::corrupt(&self.path, at as u64, format!("series ordinal {ord} out of range")))?;
        let (s0, s1) = self.series;
        let start = s0 + off as usize;
        let mut d = Decoder::new(&self.buf()[start.min(s1)..s1], start as u64);
        self.decode_series(&mut d).map_err(|e| self.corrupt(e))
    }

    fn decode_series(&self, d: &mut Decoder<'_>) -> Result<SeriesRecord, DecodeError> {
        let n = d.uvarint()?;
        if n > d.remaining() as u64 {
            return Err(d.err("label count exceeds the section"));
        }
        let mut packed = Vec::with_capacity(n as usize * 16);
        let start = d.offset();
        for _ in 0..n {
            for _ in 0..2 {
                let at = d.clone();
                let sym = d.uvarint32()?;
                let s = self.symbol(sym).map_err(|_| at.err(format!("symbol reference {sym} out of range")))?;
                put_uvarint(&mut packed, s.len() as u64);
                packed.extend_from_slice(s.as_bytes());
            }
        }
        let labels = Labels::from_bytes(&packed).map_err(|_| DecodeError {
            offset: start,
            reason: "series labels are unsorted, duplicated or empty".into(),
        })?;
        let nchunks = d.uvarint()?;
        if nchunks > d.remaining() as u64 {
            return Err(d.err("chunk count exceeds the section"));
        }
        let mut chunks = Vec::with_capacity(nchunks as usize);
        if nchunks > 0 {
            let segment = d.uvarint32()?;
            let mut offset = d.uvarint32()?;
            let mut prev_maxt = 0i64;
            for i in 0..nchunks {
                let mint = if i == 0 {
                    self.base_time.wrapping_add(d.varint()?)
                } else {
                    let delta = d.uvarint()?;
                    if delta == 0 || delta > i64::MAX as u64 {
                        return Err(d.err("chunk does not start after the previous one"));
                    }
                    prev_maxt.checked_add(delta as i64).ok_or_else(|| d.err("chunk time overflows"))?
                };
                let span = d.uvarint()?;
                let maxt = i64::try_from(span)
                    .ok()
                    .and_then(|s| mint.checked_add(s))
                    .ok_or_else(|| d.err("chunk time overflows"))?;
                let len = d.uvarint32()?;
                chunks.push(ChunkMeta { mint, maxt, segment, offset, len });
                offset = offset
                    .checked_add(len)
                    .and_then(|o| o.checked_add(4))
                    .ok_or_else(|| d.err("chunk offsets overflow 32 bits"))?;
                prev_maxt = maxt;
            }
        }
        Ok(SeriesRecord { labels, chunks })
    }
}

fn at_u32_limit(end: usize) -> bool {
    end > u32::MAX as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::labels;

    fn build(series: &[(Labels, Vec<ChunkMeta>)]) -> Vec<u8> {
        let mut syms = Vec::new();
        for (l, _) in series {
            for p in l.iter() {
                syms.push(p.name.to_string());
                syms.push(p.value.to_string());
            }
        }
        let mut b = IndexBuilder::new(syms, 1000);
        for (l, c) in series {
            b.add_series(l, c).unwrap();
        }
        b.finish(&[123])
    }

    fn sample_series() -> Vec<(Labels, Vec<ChunkMeta>)> {
        let mut v = vec![
            (labels!("__name__" => "up", "job" => "a", "instance" => "1"), vec![]),
            (labels!("__name__" => "up", "job" => "b", "instance" => "1"), vec![]),
            (labels!("__name__" => "up", "job" => "b", "instance" => "2", "zone" => "eu"), vec![]),
            (labels!("__name__" => "x", "job" => "a"), vec![]),
        ];
        v.sort_by(|a, b| a.0.cmp(&b.0));
        let mut off = 16;
        for (i, s) in v.iter_mut().enumerate() {
            for k in 0..=i as i64 {
                s.1.push(ChunkMeta { mint: 900 + k * 100, maxt: 950 + k * 100, segment: 0, offset: off, len: 7 });
                off += 11;
            }
        }
        v
    }

    fn open(bytes: Vec<u8>) -> Result<IndexReader, BlockError> {
        IndexReader::open(Path::new("b/index"), Arc::new(FileBytes::Owned(bytes)))
    }

    #[test]
    fn series_and_postings_round_trip() {
        let series = sample_series();
        let r = open(build(&series)).unwrap();
        assert_eq!(r.num_series(), 4);
        assert_eq!(r.segment_lens(), &[123]);
        for (i, (l, c)) in series.iter().enumerate() {
            let rec = r.series(i as u32).unwrap();
            assert_eq!(&rec.labels, l);
            assert_eq!(&rec.chunks, c);
        }
        assert_eq!(r.label_names().unwrap(), vec!["__name__", "instance", "job", "zone"]);
        assert_eq!(r.label_values("job").unwrap(), vec!["a", "b"]);
        assert!(r.label_values("nope").unwrap().is_empty());
        let sel = |ms: &[Matcher]| -> Vec<Labels> {
            r.select(ms).unwrap().into_iter().map(|o| r.series(o).unwrap().labels).collect()
        };
        let re = |op, n: &str, v: &str| Matcher::new(op, n, v).unwrap();
        // Check every selection against a brute-force filter.
        let cases: Vec<Vec<Matcher>> = vec![
            vec![],
            vec![Matcher::equal("job", "b")],
            vec![Matcher::equal("__name__", "up"), re(MatchOp::NotEqual, "instance", "1")],
            vec![re(MatchOp::RegexMatch, "job", "a|b"), re(MatchOp::RegexNoMatch, "zone", "e.")],
            vec![Matcher::equal("zone", "")],
            vec![re(MatchOp::RegexMatch, "zone", ".*")],
            vec![re(MatchOp::RegexMatch, "zone", ".+")],
            vec![Matcher::equal("job", "zzz")],
            vec![re(MatchOp::NotEqual, "job", "")],
        ];
        for ms in cases {
            let want: Vec<Labels> =
                series.iter().map(|s| s.0.clone()).filter(|l| crate::model::matcher::matches_all(l, &ms)).collect();
            assert_eq!(sel(&ms), want, "matchers {ms:?}");
        }
    }

    #[test]
    fn every_flipped_byte_or_truncation_is_an_error_never_a_panic() {
        let good = build(&sample_series());
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0x40;
            let r = open(bad);
            // Reserved header bytes are not checked; everything else is.
            if (5..8).contains(&i) {
                continue;
            }
            let e = r.err().unwrap_or_else(|| panic!("flip at {i} not detected"));
            assert!(e.to_string().contains("b/index"), "{e}");
        }
        for cut in [0, 1, 15, 16, 40, good.len() - 1] {
            let e = open(good[..cut].to_vec()).err().unwrap().to_string();
            assert!(e.contains("b/index") && e.contains("bytes"), "{e}");
        }
    }
}
