//! Head chunk files: full head chunks moved out of the heap.
//!
//! Chunks are appended to an *active* file with ordinary writes; its bytes are
//! also kept in an in-memory mirror (bounded by the file size limit), so reads
//! of the active file never touch a file that is still being written. Once
//! the active file is full (or old), it is flushed, fsynced and memory-mapped
//! read-only, and the mirror is dropped. Mapped files are never truncated;
//! truncation of the head only unlinks whole files, which is safe for live
//! mappings. At start-up every file is read and CRC-checked before it is
//! mapped; a damaged tail is cut off and later files are deleted (the WAL
//! still holds those samples, so nothing acknowledged is lost).

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use memmap2::{Mmap, MmapMut};
use parking_lot::{Mutex, RwLock};

use super::chunk_file::{self, EntryError, HeadChunkRef};
use crate::storage::StorageError;
use crate::tsdb::chunk::Encoding;

/// Unflushed mirror bytes that trigger a write to the active file.
const FLUSH_BYTES: usize = 256 << 10;

/// Chunk bytes handed to iterators: a copy, or a slice of a mapped file.
#[derive(Clone)]
pub enum ChunkData {
    /// Copied bytes (open chunks, chunks of the active file).
    Owned(Arc<[u8]>),
    /// A range of a read-only mapping, kept alive by the `Arc`.
    Mapped {
        /// The mapping.
        map: Arc<Mmap>,
        /// Start of the chunk bytes.
        start: usize,
        /// End (exclusive).
        end: usize,
    },
}

impl AsRef<[u8]> for ChunkData {
    fn as_ref(&self) -> &[u8] {
        match self {
            ChunkData::Owned(b) => b,
            // start..end was bounds-checked against this mapping by `decode_entry`.
            ChunkData::Mapped { map, start, end } => map.get(*start..*end).unwrap_or(&[]),
        }
    }
}

impl std::fmt::Debug for ChunkData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ChunkData({} bytes)", self.as_ref().len())
    }
}

/// A chunk found in the files at start-up.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LoadedChunk {
    pub series_ref: u64,
    pub r: HeadChunkRef,
    pub mint: i64,
    pub maxt: i64,
    pub samples: u16,
}

/// The active file's bytes in memory. An anonymous mapping of the file's
/// maximum size, not a heap buffer: untouched pages cost nothing, and the
/// pages go back to the system when the file is sealed. (A freed 16 MiB heap
/// buffer stayed resident as the allocator's free space, one per thread arena
/// that had sealed a file: hundreds of bytes per active series.)
struct Mirror {
    map: MmapMut,
    len: usize,
    /// One entry being encoded.
    scratch: Vec<u8>,
}

impl Mirror {
    fn with_capacity(cap: usize) -> std::io::Result<Self> {
        Ok(Mirror { map: MmapMut::map_anon(cap.max(1))?, len: 0, scratch: Vec::new() })
    }

    /// Appends `bytes`, moving to a mapping twice as large when full (only
    /// when sealing keeps failing: files are sealed at the size limit).
    fn extend_from_slice(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        let end = self.len + bytes.len();
        if end > self.map.len() {
            let mut bigger = MmapMut::map_anon(end.max(self.map.len().saturating_mul(2)))?;
            bigger[..self.len].copy_from_slice(&self.map[..self.len]);
            self.map = bigger;
        }
        self.map[self.len..end].copy_from_slice(bytes);
        self.len = end;
        Ok(())
    }

    /// Appends one chunk entry (see [`chunk_file::encode_entry`]).
    fn push_entry(&mut self, series_ref: u64, mint: i64, maxt: i64, enc: Encoding, data: &[u8]) -> std::io::Result<()> {
        let mut buf = std::mem::take(&mut self.scratch);
        buf.clear();
        chunk_file::encode_entry(series_ref, mint, maxt, enc, data, &mut buf);
        let r = self.extend_from_slice(&buf);
        self.scratch = buf;
        r
    }
}

impl std::ops::Deref for Mirror {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.map[..self.len]
    }
}

struct Active {
    index: u32,
    file: Option<File>,
    mirror: Mirror,
    flushed: usize,
    maxt: i64,
    created: Instant,
}

struct Sealed {
    map: Arc<Mmap>,
    maxt: i64,
}

/// The set of head chunk files of one head.
pub(crate) struct ChunkDisk {
    dir: PathBuf,
    max_file_size: usize,
    max_age: Duration,
    active: Mutex<Active>,
    sealed: RwLock<BTreeMap<u32, Sealed>>,
    /// Chunk data bytes written since open (for size reports).
    written: std::sync::atomic::AtomicU64,
}

fn io(op: &'static str, path: &Path, source: std::io::Error) -> StorageError {
    StorageError::Io { op, path: path.display().to_string(), source }
}

fn file_path(dir: &Path, index: u32) -> PathBuf {
    dir.join(format!("{index:08}"))
}

fn list(dir: &Path) -> Result<Vec<u32>, StorageError> {
    let mut out = Vec::new();
    for ent in fs::read_dir(dir).map_err(|e| io("list", dir, e))? {
        let ent = ent.map_err(|e| io("list", dir, e))?;
        if let Some(n) = ent.file_name().to_str() {
            if n.len() == 8 && n.bytes().all(|b| b.is_ascii_digit()) {
                if let Ok(i) = n.parse() {
                    out.push(i);
                }
            }
        }
    }
    out.sort_unstable();
    Ok(out)
}

/// Maps a complete file read-only.
fn map_file(path: &Path) -> Result<Mmap, StorageError> {
    let f = File::open(path).map_err(|e| io("open", path, e))?;
    // SAFETY: the file is complete and fsynced; this process never writes to or
    // truncates a file after mapping it (head truncation only unlinks files), so
    // the mapping cannot shrink under us and cause SIGBUS.
    unsafe { Mmap::map(&f) }.map_err(|e| io("mmap", path, e))
}

impl ChunkDisk {
    /// Opens `dir`, checking every file, and starts a new active file.
    pub(crate) fn open(
        dir: &Path,
        max_file_size: u64,
        max_age: Duration,
    ) -> Result<(ChunkDisk, Vec<LoadedChunk>), StorageError> {
        fs::create_dir_all(dir).map_err(|e| io("create dir", dir, e))?;
        let mut loaded = Vec::new();
        let mut sealed = BTreeMap::new();
        let mut damaged = false;
        let files = list(dir)?;
        for &idx in &files {
            let path = file_path(dir, idx);
            if damaged {
                tracing::warn!(file = %path.display(), "head chunks: deleting file after a damaged one (the WAL replays its samples)");
                fs::remove_file(&path).map_err(|e| io("remove", &path, e))?;
                continue;
            }
            let bytes = fs::read(&path).map_err(|e| io("read", &path, e))?;
            if let Err(why) = chunk_file::check_header(&bytes) {
                tracing::warn!(file = %path.display(), offset = 0, reason = why, "head chunks: bad file header, deleting it");
                fs::remove_file(&path).map_err(|e| io("remove", &path, e))?;
                damaged = true;
                continue;
            }
            let mut pos = chunk_file::HEADER_LEN;
            let mut maxt = i64::MIN;
            while pos < bytes.len() {
                match chunk_file::decode_entry(&bytes, pos) {
                    Ok(e) => {
                        let data = &bytes[e.data_start..e.data_end];
                        let samples = crate::tsdb::chunk::num_samples_of(data);
                        loaded.push(LoadedChunk {
                            series_ref: e.series_ref,
                            r: HeadChunkRef::new(idx, pos as u32),
                            mint: e.mint,
                            maxt: e.maxt,
                            samples,
                        });
                        maxt = maxt.max(e.maxt);
                        pos = e.end;
                    }
                    Err(err) => {
                        let reason = match err {
                            EntryError::Truncated => "chunk cut short (torn write)",
                            EntryError::Corrupt(r) => r,
                        };
                        tracing::warn!(file = %path.display(), offset = pos, reason, "head chunks: cutting damaged tail");
                        let f = OpenOptions::new().write(true).open(&path).map_err(|e| io("open", &path, e))?;
                        f.set_len(pos as u64).map_err(|e| io("truncate", &path, e))?;
                        damaged = true;
                        break;
                    }
                }
            }
            File::open(&path).and_then(|f| f.sync_all()).map_err(|e| io("fsync", &path, e))?;
            let map = map_file(&path)?;
            if map.len() != pos {
                return Err(StorageError::Corrupt {
                    path: path.display().to_string(),
                    offset: map.len() as u64,
                    reason: format!("mapped {} bytes, expected {pos}", map.len()),
                });
            }
            sealed.insert(idx, Sealed { map: Arc::new(map), maxt });
        }
        let next = files.last().map(|&i| i + 1).unwrap_or(0);
        let max_file_size = (max_file_size as usize).clamp(4096, u32::MAX as usize);
        let active = Self::new_active(dir, next, max_file_size + 4096)?;
        let disk = ChunkDisk {
            dir: dir.to_path_buf(),
            max_file_size,
            max_age,
            active: Mutex::new(active),
            sealed: RwLock::new(sealed),
            written: std::sync::atomic::AtomicU64::new(0),
        };
        Ok((disk, loaded))
    }

    fn new_active(dir: &Path, index: u32, cap: usize) -> Result<Active, StorageError> {
        let path = file_path(dir, index);
        let mut f = OpenOptions::new().create(true).append(true).open(&path).map_err(|e| io("create", &path, e))?;
        f.set_len(0).map_err(|e| io("truncate", &path, e))?;
        let header = chunk_file::header();
        f.write_all(&header).map_err(|e| io("write", &path, e))?;
        // One mapping for the whole file: untouched capacity is not resident.
        let mut mirror = Mirror::with_capacity(cap).map_err(|e| io("map memory for", &path, e))?;
        mirror.extend_from_slice(&header).map_err(|e| io("map memory for", &path, e))?;
        Ok(Active { index, file: Some(f), mirror, flushed: header.len(), maxt: i64::MIN, created: Instant::now() })
    }

    fn flush(&self, a: &mut Active) -> Result<(), StorageError> {
        let path = file_path(&self.dir, a.index);
        let Some(f) = a.file.as_mut() else { return Err(io("write", &path, std::io::Error::other("file not open"))) };
        if let Err(e) = f.write_all(&a.mirror[a.flushed..]) {
            // Cut a partial write back so the next flush (append mode) continues cleanly.
            let _ = f.set_len(a.flushed as u64);
            return Err(io("write", &path, e));
        }
        a.flushed = a.mirror.len();
        Ok(())
    }

    /// Flushes, fsyncs and maps the active file, then starts the next one.
    fn seal(&self, a: &mut Active) -> Result<(), StorageError> {
        let path = file_path(&self.dir, a.index);
        self.flush(a)?;
        if let Some(f) = a.file.as_ref() {
            f.sync_all().map_err(|e| io("fsync", &path, e))?;
        }
        let next = Self::new_active(&self.dir, a.index + 1, self.max_file_size + 4096)?;
        let map = map_file(&path)?;
        if map.len() != a.mirror.len() {
            return Err(StorageError::Corrupt {
                path: path.display().to_string(),
                offset: map.len() as u64,
                reason: format!("sealed file has {} bytes, wrote {}", map.len(), a.mirror.len()),
            });
        }
        self.sealed.write().insert(a.index, Sealed { map: Arc::new(map), maxt: a.maxt });
        *a = next;
        Ok(())
    }

    /// Stores a full chunk and returns where it is.
    pub(crate) fn write_chunk(
        &self,
        series_ref: u64,
        mint: i64,
        maxt: i64,
        enc: Encoding,
        data: &[u8],
    ) -> Result<HeadChunkRef, StorageError> {
        let mut a = self.active.lock();
        let entry_len = 8 + 8 + 8 + 1 + 10 + data.len() + 4;
        let has_chunks = a.mirror.len() > chunk_file::HEADER_LEN;
        if has_chunks && (a.mirror.len() + entry_len > self.max_file_size || a.created.elapsed() > self.max_age) {
            if let Err(e) = self.seal(&mut a) {
                // Keep writing into the (in-memory) active file; retried on the next chunk.
                tracing::error!(error = %e, "head chunks: cannot seal the active file");
                if a.mirror.len() + entry_len > u32::MAX as usize {
                    return Err(e);
                }
            }
        }
        let offset = a.mirror.len() as u32;
        let index = a.index;
        a.mirror
            .push_entry(series_ref, mint, maxt, enc, data)
            .map_err(|e| io("map memory for", &file_path(&self.dir, index), e))?;
        self.written.fetch_add(data.len() as u64, std::sync::atomic::Ordering::Relaxed);
        a.maxt = a.maxt.max(maxt);
        if a.mirror.len() - a.flushed >= FLUSH_BYTES {
            if let Err(e) = self.flush(&mut a) {
                tracing::error!(error = %e, "head chunks: flush failed; chunks stay in memory until it works");
            }
        }
        Ok(HeadChunkRef::new(a.index, offset))
    }

    /// The encoding and bytes of a stored chunk (bounds and CRC checked).
    pub(crate) fn read(&self, r: HeadChunkRef) -> Result<(Encoding, ChunkData), StorageError> {
        {
            let a = self.active.lock();
            if a.index == r.file() {
                let e = chunk_file::decode_entry(&a.mirror, r.offset() as usize).map_err(|e| self.bad(r, e))?;
                return Ok((e.encoding, ChunkData::Owned(Arc::from(&a.mirror[e.data_start..e.data_end]))));
            }
        }
        let s = self.sealed.read();
        let f = s.get(&r.file()).ok_or_else(|| StorageError::Corrupt {
            path: file_path(&self.dir, r.file()).display().to_string(),
            offset: r.offset() as u64,
            reason: "head chunk file is gone".into(),
        })?;
        let e = chunk_file::decode_entry(&f.map, r.offset() as usize).map_err(|e| self.bad(r, e))?;
        Ok((e.encoding, ChunkData::Mapped { map: Arc::clone(&f.map), start: e.data_start, end: e.data_end }))
    }

    /// Sample count of a stored chunk (0 when unreadable); no CRC check.
    pub(crate) fn num_samples(&self, r: HeadChunkRef) -> u16 {
        self.read(r).map(|(_, d)| crate::tsdb::chunk::num_samples_of(d.as_ref())).unwrap_or(0)
    }

    fn bad(&self, r: HeadChunkRef, e: EntryError) -> StorageError {
        StorageError::Corrupt {
            path: file_path(&self.dir, r.file()).display().to_string(),
            offset: r.offset() as u64,
            reason: match e {
                EntryError::Truncated => "chunk entry runs past the end of the file".into(),
                EntryError::Corrupt(w) => w.into(),
            },
        }
    }

    /// Deletes sealed files whose chunks all end before `mint`.
    pub(crate) fn truncate(&self, mint: i64) -> Result<usize, StorageError> {
        {
            let mut a = self.active.lock();
            if a.mirror.len() > chunk_file::HEADER_LEN && a.created.elapsed() > self.max_age {
                if let Err(e) = self.seal(&mut a) {
                    tracing::error!(error = %e, "head chunks: cannot seal the active file");
                }
            }
        }
        let old: Vec<u32> = self.sealed.read().iter().filter(|(_, s)| s.maxt < mint).map(|(&i, _)| i).collect();
        for &i in &old {
            // Readers holding the Arc<Mmap> keep their mapping; unlinking is safe.
            self.sealed.write().remove(&i);
            let p = file_path(&self.dir, i);
            fs::remove_file(&p).map_err(|e| io("remove", &p, e))?;
        }
        Ok(old.len())
    }

    /// Writes the active file's unflushed bytes (best effort durability is not
    /// needed: the WAL holds every sample).
    pub(crate) fn flush_active(&self) -> Result<(), StorageError> {
        let mut a = self.active.lock();
        self.flush(&mut a)
    }

    /// Bytes in the in-memory mirror of the active file.
    pub(crate) fn mirror_bytes(&self) -> usize {
        self.active.lock().mirror.len()
    }

    /// Chunk data bytes written since open.
    pub(crate) fn written_bytes(&self) -> u64 {
        self.written.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Number of files (sealed + active).
    pub(crate) fn num_files(&self) -> usize {
        self.sealed.read().len() + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirror_keeps_bytes_and_grows_past_its_capacity() {
        let mut m = Mirror::with_capacity(8).unwrap();
        m.extend_from_slice(b"hello").unwrap();
        assert_eq!(&*m, b"hello");
        let big: Vec<u8> = (0..10_000u32).map(|i| i as u8).collect();
        m.extend_from_slice(&big).unwrap();
        assert_eq!(m.len(), 5 + big.len());
        assert_eq!(&m[..5], b"hello");
        assert_eq!(&m[5..], &big[..]);
        m.push_entry(7, 1, 2, Encoding::Xor, b"chunk").unwrap();
        let e = chunk_file::decode_entry(&m, 5 + big.len()).unwrap();
        assert_eq!(&m[e.data_start..e.data_end], b"chunk");
    }
}
