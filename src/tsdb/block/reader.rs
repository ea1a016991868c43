//! Opening a block read-only and querying it.
//!
//! [`Block::open`] reads `meta.json`, maps `index` and every chunk segment,
//! and validates lengths and checksums before anything else touches the
//! maps. Selected series carry `'static` sample iterators that hold an `Arc`
//! of the block's maps, so a block dropped from the database (or deleted
//! from disk: unlinking keeps mapped pages valid) stays readable until the
//! last iterator is gone.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::bytes::FileBytes;
use super::error::BlockError;
use super::index::{ChunkMeta, IndexReader};
use super::meta::BlockMeta;
use super::segments::{checked_chunk, open_segments, Segment};
use crate::model::{Matcher, Sample};
use crate::storage::{Queryable, SampleIterator, Series, StorageError};
use crate::tsdb::chunk::ChunkIter;

/// The mapped files of a block, shared with its iterators.
struct BlockData {
    index_path: PathBuf,
    index: IndexReader,
    segments: Vec<Segment>,
}

/// An open, immutable, memory-mapped block.
pub struct Block {
    dir: PathBuf,
    meta: BlockMeta,
    data: Arc<BlockData>,
    size_bytes: u64,
}

impl std::fmt::Debug for Block {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Block").field("dir", &self.dir).field("meta", &self.meta).finish_non_exhaustive()
    }
}

impl Block {
    /// Opens the block in `dir`, validating meta.json, the index (header,
    /// TOC, every section's CRC32C, symbol and postings tables) and every
    /// chunk segment's length against the index and its own header.
    pub fn open(dir: &Path) -> Result<Block, BlockError> {
        let meta_path = dir.join("meta.json");
        let raw = std::fs::read(&meta_path).map_err(|e| BlockError::io("read", &meta_path, e))?;
        let meta = BlockMeta::from_json(&meta_path, &raw)?;
        let index_path = dir.join("index");
        let index = IndexReader::open(&index_path, Arc::new(FileBytes::map(&index_path)?))?;
        if u64::from(index.num_series()) != meta.stats.num_series {
            return Err(BlockError::corrupt(
                &index_path,
                0,
                format!("index holds {} series but meta.json says {}", index.num_series(), meta.stats.num_series),
            ));
        }
        let segments = open_segments(&dir.join("chunks"), index.segment_lens())?;
        let size_bytes = raw.len() as u64
            + segments.iter().map(|s| s.data().len() as u64).sum::<u64>()
            + std::fs::metadata(&index_path).map(|m| m.len()).unwrap_or(0);
        Ok(Block {
            dir: dir.to_path_buf(),
            meta,
            data: Arc::new(BlockData { index_path, index, segments }),
            size_bytes,
        })
    }

    /// The block's meta.json.
    pub fn meta(&self) -> &BlockMeta {
        &self.meta
    }

    /// The block's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Bytes on disk (meta, index, chunk segments).
    pub fn size_bytes(&self) -> u64 {
        self.size_bytes
    }

    /// Number of distinct values per label name, from the postings table.
    pub fn label_value_counts(&self) -> Result<Vec<(String, u64)>, BlockError> {
        self.data.index.value_counts()
    }

    /// Checks the CRC32C of every chunk and that it decodes: a full scan,
    /// for tools and tests (opening checks lengths and index checksums only).
    pub fn verify_chunks(&self) -> Result<(), BlockError> {
        let d = &self.data;
        for ord in 0..d.index.num_series() {
            let rec = d.index.series(ord)?;
            for c in &rec.chunks {
                let (s, e) = checked_chunk(&d.segments, &d.index_path, c)?;
                let seg = &d.segments[c.segment as usize];
                let it = ChunkIter::new(seg.encoding(), &seg.data()[s..e])
                    .map_err(|err| BlockError::corrupt(seg.path(), s as u64, err.to_string()))?;
                for x in it {
                    x.map_err(|err| BlockError::corrupt(seg.path(), s as u64, err.to_string()))?;
                }
            }
        }
        Ok(())
    }

    /// Whether the block lies entirely inside `[mint, maxt]`, so every one
    /// of its series has a sample there.
    fn covered_by(&self, mint: i64, maxt: i64) -> bool {
        mint <= self.meta.min_time && self.meta.max_time - 1 <= maxt
    }

    /// Ordinals and chunk lists of the series matching `matchers` with a
    /// sample in `[mint, maxt]`; every returned chunk's CRC was checked.
    fn matching(
        &self,
        mint: i64,
        maxt: i64,
        matchers: &[Matcher],
    ) -> Result<Vec<(crate::model::Labels, Vec<ChunkMeta>)>, BlockError> {
        if !self.meta.overlaps(mint, maxt) {
            return Ok(Vec::new());
        }
        let d = &self.data;
        let ords = d.index.select(matchers)?;
        let mut out = Vec::with_capacity(ords.len());
        for ord in ords {
            let rec = d.index.series(ord)?;
            let chunks: Vec<ChunkMeta> = rec.chunks.into_iter().filter(|c| c.maxt >= mint && c.mint <= maxt).collect();
            if chunks.is_empty() {
                continue;
            }
            let mut any_inside = false;
            for c in &chunks {
                checked_chunk(&d.segments, &d.index_path, c)?;
                any_inside |= c.mint >= mint && c.maxt <= maxt;
            }
            // Chunks that only straddle the range may have no sample inside it.
            if !any_inside && !chunks.iter().any(|c| self.chunk_has_sample_in(c, mint, maxt)) {
                continue;
            }
            out.push((rec.labels, chunks));
        }
        Ok(out)
    }

    fn chunk_has_sample_in(&self, c: &ChunkMeta, mint: i64, maxt: i64) -> bool {
        let mut it = SeriesSamples::new(self.data.clone(), vec![*c], mint, maxt);
        it.next_sample().is_some()
    }
}

impl Queryable for Block {
    fn select(&self, mint: i64, maxt: i64, matchers: &[Matcher]) -> Result<Vec<Series>, StorageError> {
        Ok(self
            .matching(mint, maxt, matchers)?
            .into_iter()
            .map(|(labels, chunks)| Series {
                labels,
                samples: Box::new(SeriesSamples::new(self.data.clone(), chunks, mint, maxt)) as Box<dyn SampleIterator>,
            })
            .collect())
    }

    fn label_names(&self, mint: i64, maxt: i64, matchers: &[Matcher]) -> Result<Vec<String>, StorageError> {
        if !self.meta.overlaps(mint, maxt) {
            return Ok(Vec::new());
        }
        if matchers.is_empty() && self.covered_by(mint, maxt) {
            return Ok(self.data.index.label_names()?);
        }
        let mut names: Vec<String> = Vec::new();
        let mut seen: std::collections::HashSet<String> = std::collections::HashSet::new();
        for (l, _) in self.matching(mint, maxt, matchers)? {
            for p in l.iter() {
                if !seen.contains(p.name) {
                    seen.insert(p.name.to_string());
                }
            }
        }
        names.extend(seen);
        names.sort_unstable();
        Ok(names)
    }

    fn label_values(
        &self,
        name: &str,
        mint: i64,
        maxt: i64,
        matchers: &[Matcher],
    ) -> Result<Vec<String>, StorageError> {
        if !self.meta.overlaps(mint, maxt) {
            return Ok(Vec::new());
        }
        if matchers.is_empty() && self.covered_by(mint, maxt) {
            return Ok(self.data.index.label_values(name)?);
        }
        let mut values: Vec<String> =
            self.matching(mint, maxt, matchers)?.iter().filter_map(|(l, _)| l.get(name).map(str::to_string)).collect();
        values.sort_unstable();
        values.dedup();
        Ok(values)
    }
}

/// The samples of one block series within `[mint, maxt]`, decoded a chunk
/// at a time into a small buffer (decoding from a plain slice is faster than
/// through a shared-map handle on every bit read).
struct SeriesSamples {
    data: Arc<BlockData>,
    chunks: std::vec::IntoIter<ChunkMeta>,
    buf: Vec<Sample>,
    pos: usize,
    mint: i64,
    maxt: i64,
}

impl SeriesSamples {
    fn new(data: Arc<BlockData>, chunks: Vec<ChunkMeta>, mint: i64, maxt: i64) -> Self {
        SeriesSamples { data, chunks: chunks.into_iter(), buf: Vec::new(), pos: 0, mint, maxt }
    }

    /// Decodes the samples of the next chunk inside the range into `out`;
    /// `false` when no chunk is left.
    fn decode_next(&mut self, out: &mut Vec<Sample>) -> bool {
        let Some(c) = self.chunks.next() else { return false };
        if c.mint > self.maxt {
            self.chunks = Vec::new().into_iter();
            return false;
        }
        let Some(seg) = self.data.segments.get(c.segment as usize) else { return true };
        let Some(bytes) = seg.data().get(c.offset as usize..c.offset as usize + c.len as usize) else { return true };
        let it = match ChunkIter::new(seg.encoding(), bytes) {
            Ok(it) => it,
            Err(e) => {
                tracing::error!(file = %seg.path().display(), offset = c.offset, error = %e, "skipping undecodable chunk");
                return true;
            }
        };
        let (mint, maxt) = (self.mint, self.maxt);
        for x in it {
            match x {
                Ok(s) if s.t < mint => {}
                Ok(s) if s.t > maxt => break,
                Ok(s) => out.push(s),
                Err(e) => {
                    // The CRC matched, so this is a writer bug; report and skip the rest of the chunk.
                    tracing::error!(file = %seg.path().display(), offset = c.offset, error = %e, "chunk does not decode despite a valid checksum");
                    break;
                }
            }
        }
        true
    }
}

impl SampleIterator for SeriesSamples {
    fn next_sample(&mut self) -> Option<Sample> {
        loop {
            if let Some(&s) = self.buf.get(self.pos) {
                self.pos += 1;
                return Some(s);
            }
            let mut buf = std::mem::take(&mut self.buf);
            buf.clear();
            self.pos = 0;
            let more = self.decode_next(&mut buf);
            self.buf = buf;
            if !more {
                return None;
            }
        }
    }

    fn collect_into(&mut self, out: &mut Vec<Sample>) {
        out.extend_from_slice(self.buf.get(self.pos..).unwrap_or(&[]));
        self.pos = self.buf.len();
        while self.decode_next(out) {}
    }
}
