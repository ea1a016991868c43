//! Chunk segment files (`chunks/000001`, ...): a 16-byte header, then chunks
//! back to back, each followed by the CRC32C of its bytes. Chunk lengths and
//! offsets live in the index; a series' chunks are contiguous in one segment.
//!
//! [`SegmentWriter`] streams chunks to files; [`Segments`] validates mapped
//! files against the index's claims and hands out checked chunk bytes.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::bytes::FileBytes;
use super::encoding::{u32_at, u64_at};
use super::error::BlockError;
use super::index::ChunkMeta;
use crate::tsdb::chunk::Encoding;

/// Magic bytes at the start of a segment file.
pub const SEGMENT_MAGIC: [u8; 4] = *b"PLCK";
/// The segment layout version this build writes and reads.
pub const SEGMENT_VERSION: u8 = 1;
/// Header: magic (4) + version (1) + chunk encoding (1) + reserved (2) + file length u64 LE (8).
pub const SEGMENT_HEADER_LEN: usize = 16;
/// Size at which a new segment file is started (Prometheus uses 512 MiB too).
pub const SEGMENT_MAX_BYTES: u64 = 512 << 20;

/// The file name of segment `index` (0-based) inside `chunks/`.
pub(crate) fn segment_name(index: usize) -> String {
    format!("{:06}", index + 1)
}

struct OpenSegment {
    file: BufWriter<File>,
    path: PathBuf,
    len: u64,
}

/// Writes chunk segment files into a `chunks/` directory.
pub(crate) struct SegmentWriter {
    dir: PathBuf,
    max_bytes: u64,
    encoding: u8,
    cur: Option<OpenSegment>,
    done: Vec<(PathBuf, u64)>,
}

impl SegmentWriter {
    /// Creates `dir` and writes segments there, cutting at `max_bytes`.
    pub(crate) fn new(dir: &Path, max_bytes: u64, encoding: u8) -> Result<Self, BlockError> {
        std::fs::create_dir_all(dir).map_err(|e| BlockError::io("create directory", dir, e))?;
        Ok(SegmentWriter {
            dir: dir.to_path_buf(),
            max_bytes: max_bytes.min(u64::from(u32::MAX)),
            encoding,
            cur: None,
            done: Vec::new(),
        })
    }

    fn start_segment(&mut self) -> Result<(), BlockError> {
        self.close_current()?;
        let index = self.done.len();
        let path = self.dir.join(segment_name(index));
        let f = File::create(&path).map_err(|e| BlockError::io("create", &path, e))?;
        let mut file = BufWriter::with_capacity(1 << 20, f);
        let mut hdr = [0u8; SEGMENT_HEADER_LEN];
        hdr[0..4].copy_from_slice(&SEGMENT_MAGIC);
        hdr[4] = SEGMENT_VERSION;
        hdr[5] = self.encoding;
        file.write_all(&hdr).map_err(|e| BlockError::io("write", &path, e))?;
        self.cur = Some(OpenSegment { file, path, len: SEGMENT_HEADER_LEN as u64 });
        Ok(())
    }

    /// Writes one series' chunks (data, first and last timestamp) contiguously
    /// and returns where each landed.
    pub(crate) fn write_series(&mut self, chunks: &[(Vec<u8>, i64, i64)]) -> Result<Vec<ChunkMeta>, BlockError> {
        let total: u64 = chunks.iter().map(|c| c.0.len() as u64 + 4).sum();
        let needs_new = match &self.cur {
            None => true,
            Some(s) => s.len > SEGMENT_HEADER_LEN as u64 && s.len + total > self.max_bytes,
        };
        if needs_new {
            self.start_segment()?;
        }
        let segment = self.done.len() as u32;
        let Some(seg) = self.cur.as_mut() else {
            return Err(BlockError::Limit { path: self.dir.display().to_string(), reason: "no open segment".into() });
        };
        if seg.len + total > u64::from(u32::MAX) {
            return Err(BlockError::Limit {
                path: self.dir.display().to_string(),
                reason: format!("one series needs {total} bytes of chunks, beyond a 4 GiB segment"),
            });
        }
        let mut out = Vec::with_capacity(chunks.len());
        for (data, mint, maxt) in chunks {
            let len = u32::try_from(data.len()).map_err(|_| BlockError::Limit {
                path: seg.path.display().to_string(),
                reason: "chunk above 4 GiB".into(),
            })?;
            out.push(ChunkMeta { mint: *mint, maxt: *maxt, segment, offset: seg.len as u32, len });
            seg.file.write_all(data).map_err(|e| BlockError::io("write", &seg.path, e))?;
            seg.file
                .write_all(&crc32c::crc32c(data).to_le_bytes())
                .map_err(|e| BlockError::io("write", &seg.path, e))?;
            seg.len += u64::from(len) + 4;
        }
        Ok(out)
    }

    fn close_current(&mut self) -> Result<(), BlockError> {
        let Some(seg) = self.cur.take() else { return Ok(()) };
        let f = seg.file.into_inner().map_err(|e| BlockError::io("write", &seg.path, e.into_error()))?;
        f.write_all_at(&seg.len.to_le_bytes(), 8).map_err(|e| BlockError::io("write", &seg.path, e))?;
        f.sync_all().map_err(|e| BlockError::io("fsync", &seg.path, e))?;
        self.done.push((seg.path, seg.len));
        Ok(())
    }

    /// Closes and fsyncs every segment; returns their lengths.
    pub(crate) fn finish(mut self) -> Result<Vec<u64>, BlockError> {
        self.close_current()?;
        Ok(self.done.into_iter().map(|(_, l)| l).collect())
    }
}

/// One mapped segment file.
pub(crate) struct Segment {
    path: PathBuf,
    data: Arc<FileBytes>,
    encoding: Encoding,
}

impl Segment {
    /// The encoding of every chunk in this segment (header byte 5).
    pub(crate) fn encoding(&self) -> Encoding {
        self.encoding
    }

    /// The mapped bytes (header included).
    pub(crate) fn data(&self) -> &Arc<FileBytes> {
        &self.data
    }

    /// The file.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

/// Maps the segments the index lists, checking each file's length against the
/// index's claim and the segment header before any chunk is read. Segments
/// of any known chunk encoding are accepted (blocks written before the
/// Decimal encoding hold XOR segments).
pub(crate) fn open_segments(chunks_dir: &Path, claimed: &[u64]) -> Result<Vec<Segment>, BlockError> {
    let mut out = Vec::with_capacity(claimed.len());
    for (i, &want) in claimed.iter().enumerate() {
        let path = chunks_dir.join(segment_name(i));
        let data = FileBytes::map(&path)?;
        let p = path.display().to_string();
        let len = data.len() as u64;
        if len != want {
            return Err(BlockError::Length {
                path: p,
                actual: len,
                expected: want,
                claimed_by: "the block index",
                offset: len.min(want),
            });
        }
        if data.len() < SEGMENT_HEADER_LEN {
            return Err(BlockError::Length {
                path: p,
                actual: len,
                expected: SEGMENT_HEADER_LEN as u64,
                claimed_by: "the fixed-size segment header",
                offset: len,
            });
        }
        if data[0..4] != SEGMENT_MAGIC {
            return Err(BlockError::corrupt(&path, 0, "bad magic: not a promlite chunk segment"));
        }
        if data[4] != SEGMENT_VERSION {
            return Err(BlockError::Version {
                path: p,
                what: "chunk segment",
                version: u32::from(data[4]),
                supported: u32::from(SEGMENT_VERSION),
            });
        }
        let Some(encoding) = Encoding::from_u8(data[5]) else {
            return Err(BlockError::corrupt(&path, 5, format!("unknown chunk encoding {}", data[5])));
        };
        let hdr_len = u64_at(&data, 8).unwrap_or(0);
        if hdr_len != len {
            return Err(BlockError::Length {
                path: p,
                actual: len,
                expected: hdr_len,
                claimed_by: "the segment header",
                offset: len.min(hdr_len),
            });
        }
        out.push(Segment { path, data: Arc::new(data), encoding });
    }
    Ok(out)
}

/// The byte range of chunk `m`'s data after checking bounds and its CRC32C.
/// `index_path` names the index in the error when the segment does not exist.
pub(crate) fn checked_chunk(
    segments: &[Segment],
    index_path: &Path,
    m: &ChunkMeta,
) -> Result<(usize, usize), BlockError> {
    let seg = segments.get(m.segment as usize).ok_or_else(|| BlockError::Corrupt {
        path: index_path.display().to_string(),
        offset: 0,
        reason: format!(
            "chunk refers to segment {} but the block has {}",
            segment_name(m.segment as usize),
            segments.len()
        ),
    })?;
    let buf: &[u8] = &seg.data;
    let start = m.offset as usize;
    let end = start + m.len as usize;
    if start < SEGMENT_HEADER_LEN || end + 4 > buf.len() {
        return Err(BlockError::Length {
            path: seg.path.display().to_string(),
            actual: buf.len() as u64,
            expected: end as u64 + 4,
            claimed_by: "a chunk reference in the index",
            offset: start as u64,
        });
    }
    let stored = u32_at(buf, end).unwrap_or(0);
    let got = crc32c::crc32c(&buf[start..end]);
    if stored != got {
        return Err(BlockError::Checksum {
            path: seg.path.display().to_string(),
            what: format!("chunk of {} bytes", m.len),
            offset: start as u64,
            expected: stored,
            got,
        });
    }
    Ok((start, end))
}
