//! Writing a block from any [`Queryable`]: every series with samples in
//! `[mint, maxt)` is re-encoded into chunks of at most 120 samples (in
//! [`DEFAULT_ENCODING`] unless the options say otherwise),
//! written into `<id>.tmp/`, fsynced, and renamed to `<id>/`.

use std::collections::HashSet;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::error::BlockError;
use super::index::IndexBuilder;
use super::meta::{BlockMeta, BlockStats, Compaction};
use super::segments::{SegmentWriter, SEGMENT_MAX_BYTES};
use super::ulid::BlockId;
use crate::model::Sample;
use crate::storage::Queryable;
use crate::tsdb::chunk::{encode_as, Encoding, DEFAULT_ENCODING};

/// Samples per chunk, as Prometheus cuts them: past ~120 samples the
/// compression gain is small and random access suffers.
pub const SAMPLES_PER_CHUNK: u16 = 120;

/// How blocks are written.
#[derive(Debug, Clone)]
pub struct WriteOptions {
    /// Maximum samples per chunk (1..=120 in practice; default 120).
    pub samples_per_chunk: u16,
    /// Size at which a new chunk segment file is started.
    pub segment_max_bytes: u64,
    /// Encoding of every chunk of the block (default [`DEFAULT_ENCODING`]).
    pub encoding: Encoding,
}

impl Default for WriteOptions {
    fn default() -> Self {
        WriteOptions {
            samples_per_chunk: SAMPLES_PER_CHUNK,
            segment_max_bytes: SEGMENT_MAX_BYTES,
            encoding: DEFAULT_ENCODING,
        }
    }
}

/// The suffix of a block directory that is still being written.
pub const TMP_SUFFIX: &str = ".tmp";

/// Writes the series of `source` with samples in `[mint, maxt)` as a new
/// block under `parent`. `parents` are the blocks being compacted (empty for
/// a block cut from the head). Returns the new block's directory and meta, or
/// `None` when the range holds no sample (then nothing is left on disk).
pub fn write_block(
    parent: &Path,
    source: &dyn Queryable,
    mint: i64,
    maxt: i64,
    parents: &[BlockMeta],
    opts: &WriteOptions,
) -> Result<Option<(PathBuf, BlockMeta)>, BlockError> {
    let mut id = BlockId::now();
    while parent.join(id.to_string()).exists() {
        id = BlockId::now();
    }
    let final_dir = parent.join(id.to_string());
    let tmp_dir = parent.join(format!("{id}{TMP_SUFFIX}"));
    if mint >= maxt {
        return Err(BlockError::Limit {
            path: final_dir.display().to_string(),
            reason: format!("empty time range [{mint}, {maxt})"),
        });
    }
    let result = write_into(&tmp_dir, id, source, mint, maxt, parents, opts);
    match result {
        Ok(Some(meta)) => {
            std::fs::rename(&tmp_dir, &final_dir).map_err(|e| BlockError::io("rename", &tmp_dir, e))?;
            sync_dir(parent)?;
            Ok(Some((final_dir, meta)))
        }
        Ok(None) => {
            let _ = std::fs::remove_dir_all(&tmp_dir);
            Ok(None)
        }
        Err(e) => {
            // Best effort: a leftover `.tmp` directory is removed on the next open anyway.
            let _ = std::fs::remove_dir_all(&tmp_dir);
            Err(e)
        }
    }
}

fn write_into(
    dir: &Path,
    id: BlockId,
    source: &dyn Queryable,
    mint: i64,
    maxt: i64,
    parents: &[BlockMeta],
    opts: &WriteOptions,
) -> Result<Option<BlockMeta>, BlockError> {
    std::fs::create_dir_all(dir).map_err(|e| BlockError::io("create directory", dir, e))?;
    let series = source
        .select(mint, maxt - 1, &[])
        .map_err(|source| BlockError::Source { path: dir.display().to_string(), source })?;

    let mut symbols: HashSet<&str> = HashSet::new();
    for s in &series {
        for l in s.labels.iter() {
            symbols.insert(l.name);
            symbols.insert(l.value);
        }
    }
    let symbols: Vec<String> = symbols.into_iter().map(str::to_string).collect();
    let mut index = IndexBuilder::new(symbols, mint);
    let chunks_dir = dir.join("chunks");
    let mut segs = SegmentWriter::new(&chunks_dir, opts.segment_max_bytes, opts.encoding as u8)?;
    let per_chunk = usize::from(opts.samples_per_chunk.max(1));
    // The samples of one chunk, encoded together once complete so the
    // encoder can pick its most compact form.
    let mut pending: Vec<Sample> = Vec::with_capacity(per_chunk);
    let encode = |samples: &[Sample]| encode_as(opts.encoding, samples);

    let mut stats = BlockStats::default();
    let (mut lo, mut hi) = (i64::MAX, i64::MIN);
    let mut chunks: Vec<(Vec<u8>, i64, i64)> = Vec::new();
    let limit = |reason: String| BlockError::Limit { path: dir.display().to_string(), reason };
    for mut s in series {
        chunks.clear();
        pending.clear();
        let mut last = i64::MIN;
        while let Some(x) = s.samples.next_sample() {
            // Keep the block's invariants even if a source misbehaves: inside
            // the range and strictly increasing in time.
            if x.t < mint || x.t >= maxt || x.t <= last {
                continue;
            }
            if pending.len() >= per_chunk {
                let bytes = encode(&pending).map_err(|e| limit(e.to_string()))?;
                chunks.push((bytes, pending[0].t, last));
                pending.clear();
            }
            pending.push(x);
            last = x.t;
            stats.num_samples += 1;
        }
        if let Some(p0) = pending.first() {
            let bytes = encode(&pending).map_err(|e| limit(e.to_string()))?;
            chunks.push((bytes, p0.t, last));
        }
        let (Some(c0), Some(cn)) = (chunks.first(), chunks.last()) else { continue };
        lo = lo.min(c0.1);
        hi = hi.max(cn.2);
        let metas = segs.write_series(&chunks)?;
        index.add_series(&s.labels, &metas).map_err(|e| limit(e.to_string()))?;
        stats.num_series += 1;
        stats.num_chunks += metas.len() as u64;
    }
    if stats.num_samples == 0 {
        return Ok(None);
    }
    let seg_lens = segs.finish()?;
    sync_dir(&chunks_dir)?;
    let index_bytes = index.finish(&seg_lens);
    write_file(&dir.join("index"), &index_bytes)?;

    let mut meta = BlockMeta::new_level1(id, mint, maxt);
    meta.stats = stats;
    if !parents.is_empty() {
        let mut sources: Vec<BlockId> = parents.iter().flat_map(|p| p.compaction.sources.iter().copied()).collect();
        sources.sort_unstable();
        sources.dedup();
        meta.compaction = Compaction {
            level: parents.iter().map(|p| p.compaction.level).max().unwrap_or(0) + 1,
            sources,
            parents: parents.iter().map(BlockMeta::desc).collect(),
        };
    }
    tracing::debug!(block = %id, mint = lo, maxt = hi, series = stats.num_series, samples = stats.num_samples, "block written");
    write_file(&dir.join("meta.json"), &meta.to_json())?;
    sync_dir(dir)?;
    Ok(Some(meta))
}

/// Creates `path` with `data` and fsyncs it.
pub(crate) fn write_file(path: &Path, data: &[u8]) -> Result<(), BlockError> {
    let mut f = File::create(path).map_err(|e| BlockError::io("create", path, e))?;
    f.write_all(data).map_err(|e| BlockError::io("write", path, e))?;
    f.sync_all().map_err(|e| BlockError::io("fsync", path, e))
}

/// Fsyncs a directory so renames and new entries in it are durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), BlockError> {
    let f = File::open(dir).map_err(|e| BlockError::io("open directory", dir, e))?;
    f.sync_all().map_err(|e| BlockError::io("fsync directory", dir, e))
}
