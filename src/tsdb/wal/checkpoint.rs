//! Checkpoints: old segments rewritten down to what the head still needs.
//!
//! When the head drops data older than `mint`, every closed segment (and the
//! previous checkpoint) is filtered into `checkpoint.NNNNNNNN/` (NNNNNNNN =
//! the last segment it covers): a min-time record, the series records of
//! series still alive, and their samples at or after `mint`. It is written
//! under `checkpoint.NNNNNNNN.tmp`, fsynced, and renamed into place; only then
//! are the covered segments and the older checkpoint deleted. A crash at any
//! point leaves either the old or the new state complete.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

use super::record::{self, RecordRef, RefSample};
use super::segment::{self, ScanEnd, SegmentWriter};
use super::{RecordBatch, WalError, WalOptions};
use crate::model::Labels;
use crate::storage::SeriesRef;

const PREFIX: &str = "checkpoint.";
const TMP_SUFFIX: &str = ".tmp";

/// What a checkpoint kept and dropped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckpointStats {
    /// Index of the last segment covered.
    pub last_segment: u32,
    /// Series records kept.
    pub series_kept: u64,
    /// Series dropped (no longer in the head).
    pub series_dropped: u64,
    /// Samples kept.
    pub samples_kept: u64,
    /// Samples dropped (older than mint or of dropped series).
    pub samples_dropped: u64,
}

/// Path of checkpoint `n` in `dir`.
pub fn checkpoint_path(dir: &Path, n: u32) -> PathBuf {
    dir.join(format!("{PREFIX}{n:08}"))
}

fn parse_name(name: &str) -> Option<(u32, bool)> {
    let rest = name.strip_prefix(PREFIX)?;
    let (num, tmp) = match rest.strip_suffix(TMP_SUFFIX) {
        Some(n) => (n, true),
        None => (rest, false),
    };
    if num.len() != 8 || !num.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((num.parse().ok()?, tmp))
}

/// Finds the newest checkpoint in `dir`, removing unfinished (`.tmp`) and older ones.
pub fn prepare(dir: &Path) -> Result<Option<(u32, PathBuf)>, WalError> {
    let mut found = Vec::new();
    let rd = fs::read_dir(dir).map_err(|e| WalError::io("list", dir, e))?;
    for ent in rd {
        let ent = ent.map_err(|e| WalError::io("list", dir, e))?;
        let Some(name) = ent.file_name().to_str().map(str::to_string) else { continue };
        if let Some((n, tmp)) = parse_name(&name) {
            found.push((n, tmp, ent.path()));
        }
    }
    let newest = found.iter().filter(|(_, tmp, _)| !tmp).map(|(n, _, _)| *n).max();
    for (n, tmp, path) in &found {
        if *tmp || Some(*n) != newest {
            fs::remove_dir_all(path).map_err(|e| WalError::io("remove", path, e))?;
        }
    }
    Ok(newest.map(|n| (n, checkpoint_path(dir, n))))
}

/// Reads every record of a closed segment; any damage is an error.
fn read_closed(
    path: &Path,
    buf: &mut record::DecodeBuf,
    f: &mut dyn FnMut(RecordRef<'_>) -> Result<(), WalError>,
) -> Result<(), WalError> {
    let bytes = segment::read_segment(path)?;
    let end = segment::scan(&bytes, |offset, payload| {
        let rec = record::decode(payload, buf).map_err(|e| WalError::Corrupt {
            path: path.to_path_buf(),
            offset,
            reason: e.to_string(),
        })?;
        f(rec)
    })?;
    match end {
        ScanEnd::Clean => Ok(()),
        ScanEnd::Damaged { offset, reason } => Err(WalError::Corrupt { path: path.to_path_buf(), offset, reason }),
    }
}

/// Writes the checkpoint covering segments up to `last`, then deletes what it replaces.
pub(crate) fn create(
    dir: &Path,
    opts: &WalOptions,
    last: u32,
    mint: i64,
    keep: &(dyn Fn(SeriesRef) -> bool + Sync),
) -> Result<CheckpointStats, WalError> {
    let prev = prepare(dir)?;
    let mut sources: Vec<PathBuf> = Vec::new();
    if let Some((_, cp)) = &prev {
        sources.extend(segment::list_segments(cp)?.into_iter().map(|i| segment::segment_path(cp, i)));
    }
    let from = prev.as_ref().map(|(n, _)| n + 1).unwrap_or(0);
    sources.extend(
        segment::list_segments(dir)?
            .into_iter()
            .filter(|&i| i >= from && i <= last)
            .map(|i| segment::segment_path(dir, i)),
    );

    let tmp = dir.join(format!("{PREFIX}{last:08}{TMP_SUFFIX}"));
    if tmp.exists() {
        fs::remove_dir_all(&tmp).map_err(|e| WalError::io("remove", &tmp, e))?;
    }
    fs::create_dir(&tmp).map_err(|e| WalError::io("create dir", &tmp, e))?;
    let res = write_filtered(&tmp, opts, &sources, mint, keep, last);
    let stats = match res {
        Ok(s) => s,
        Err(e) => {
            let _ = fs::remove_dir_all(&tmp);
            return Err(e);
        }
    };
    let final_path = checkpoint_path(dir, last);
    fs::rename(&tmp, &final_path).map_err(|e| WalError::io("rename", &tmp, e))?;
    segment::sync_dir(dir)?;
    // The new checkpoint is durable: the old one and the covered segments can go.
    if let Some((_, old)) = prev {
        fs::remove_dir_all(&old).map_err(|e| WalError::io("remove", &old, e))?;
    }
    for i in segment::list_segments(dir)?.into_iter().filter(|&i| i <= last) {
        let p = segment::segment_path(dir, i);
        fs::remove_file(&p).map_err(|e| WalError::io("remove", &p, e))?;
    }
    segment::sync_dir(dir)?;
    Ok(stats)
}

fn write_filtered(
    out_dir: &Path,
    opts: &WalOptions,
    sources: &[PathBuf],
    mint: i64,
    keep: &(dyn Fn(SeriesRef) -> bool + Sync),
    last: u32,
) -> Result<CheckpointStats, WalError> {
    let mut stats = CheckpointStats { last_segment: last, ..Default::default() };
    let mut out = SegmentWriter::create(out_dir, 0)?;
    let mut batch = RecordBatch::new();
    let mut seen: HashSet<SeriesRef> = HashSet::new();
    let mut decode_buf = record::DecodeBuf::default();
    let mut kept_series: Vec<(SeriesRef, Labels)> = Vec::new();
    let mut kept_samples: Vec<RefSample> = Vec::new();
    // The head never truncates backwards, so `mint` is the newest min time.
    batch.add_min_time(mint);
    for src in sources {
        read_closed(src, &mut decode_buf, &mut |rec| {
            match rec {
                RecordRef::Series(s) => {
                    kept_series.clear();
                    for (r, l) in s {
                        if keep(*r) && seen.insert(*r) {
                            kept_series.push((*r, l.clone()));
                            stats.series_kept += 1;
                        } else if !keep(*r) {
                            stats.series_dropped += 1;
                        }
                    }
                    let refs: Vec<(SeriesRef, &Labels)> = kept_series.iter().map(|(r, l)| (*r, l)).collect();
                    batch.add_series(&refs);
                }
                RecordRef::Samples(s) => {
                    kept_samples.clear();
                    for x in s {
                        if x.t >= mint && keep(x.r) {
                            kept_samples.push(*x);
                        }
                    }
                    stats.samples_kept += kept_samples.len() as u64;
                    stats.samples_dropped += (s.len() - kept_samples.len()) as u64;
                    batch.add_samples(&kept_samples);
                }
                RecordRef::MinTime(_) => {}
            }
            if batch.len() >= 1 << 20 {
                flush(&mut out, &mut batch, out_dir, opts)?;
            }
            Ok(())
        })?;
    }
    flush(&mut out, &mut batch, out_dir, opts)?;
    out.sync()?;
    segment::sync_dir(out_dir)?;
    Ok(stats)
}

fn flush(out: &mut SegmentWriter, batch: &mut RecordBatch, dir: &Path, opts: &WalOptions) -> Result<(), WalError> {
    if batch.is_empty() {
        return Ok(());
    }
    if out.size() > super::frame::HEADER_LEN as u64 && out.size() + batch.len() as u64 > opts.segment_size {
        out.sync()?;
        *out = SegmentWriter::create(dir, out.index() + 1)?;
    }
    out.write(batch.bytes())?;
    batch.clear();
    Ok(())
}
