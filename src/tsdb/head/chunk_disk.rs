//! Head chunk files: full head chunks moved out of the heap.
//!
//! Chunks are appended to an *active* file with ordinary writes, buffered in
//! memory up to [`FLUSH_BYTES`]; reads of the active file take unflushed
//! chunks from that buffer and flushed ones from a read-only shared mapping
//! of the file, so the file's bytes are page cache, not process memory (an
//! in-memory mirror of the whole active file cost ~100 bytes per active
//! series on average). Once the active file is full (or old), it is flushed,
//! fsynced and memory-mapped read-only on its exact length. Mapped files are never truncated;
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

use memmap2::Mmap;
use parking_lot::{Mutex, RwLock};

use super::chunk_file::{self, EntryError, HeadChunkRef};
use crate::storage::StorageError;
use crate::tsdb::chunk::Encoding;

/// Unflushed mirror bytes that trigger a write to the active file.
const FLUSH_BYTES: usize = 256 << 10;

/// Chunk bytes handed to iterators: a copy, or a slice of a mapped file.
#[derive(Clone)]
pub enum ChunkData {
    /// Copied bytes (open chunks, active-file chunks not yet written).
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

/// The head chunk files' mappings taken at one moment, for a walk over
/// many series: reads through it take no lock (two walking threads would
/// otherwise contend on the active file's lock for every chunk), and its
/// addresses can be prefetched. A chunk it does not cover (written after
/// the view was taken, or not yet flushed) is read through
/// [`ChunkDisk::read`].
pub(crate) struct ChunkView<'d> {
    disk: &'d ChunkDisk,
    active_index: u32,
    active_map: Option<Arc<Mmap>>,
    /// Bytes of the active file readable through `active_map`.
    flushed: usize,
    /// Sealed files by index; few (each holds up to the maximum file size).
    sealed: Vec<(u32, Arc<Mmap>)>,
}

impl ChunkView<'_> {
    /// The mapped bytes of the file holding `r`'s entry (readable up to
    /// their end), when the view covers it.
    fn mapped(&self, r: HeadChunkRef) -> Option<&[u8]> {
        if r.file() == self.active_index {
            // Entries at or past `flushed` are still in the write buffer.
            let flushed = self.active_map.as_ref()?.get(..self.flushed)?;
            ((r.offset() as usize) < flushed.len()).then_some(flushed)
        } else {
            Some(&self.sealed.iter().find(|(i, _)| *i == r.file())?.1[..])
        }
    }

    /// Reads and checks the chunk at `r`, as [`ChunkDisk::read`] does, and
    /// hands its encoding and bytes to `f` (borrowed from the view's mapping:
    /// no reference count touched per chunk, which two walking threads would
    /// otherwise contend on).
    pub(crate) fn with_chunk<R>(
        &self,
        r: HeadChunkRef,
        f: impl FnOnce(Encoding, &[u8]) -> R,
    ) -> Result<R, StorageError> {
        match self.mapped_chunk(r) {
            Some(chunk) => chunk.map(|(enc, bytes)| f(enc, bytes)),
            None => {
                let (enc, data) = self.disk.read(r)?;
                Ok(f(enc, data.as_ref()))
            }
        }
    }

    /// The encoding and bytes of the chunk at `r`, checked, borrowed from
    /// the view's mapping; `None` when the view does not cover it (read it
    /// through [`ChunkView::with_chunk`]).
    pub(crate) fn mapped_chunk(&self, r: HeadChunkRef) -> Option<Result<(Encoding, &[u8]), StorageError>> {
        let bytes = self.mapped(r)?;
        Some(match chunk_file::decode_entry(bytes, r.offset() as usize) {
            Ok(e) => Ok((e.encoding, bytes.get(e.data_start..e.data_end).unwrap_or(&[]))),
            Err(e) => Err(self.disk.bad(r, e)),
        })
    }

    /// Starts loading the first 256 bytes of the entry at `r` into the
    /// cache (a full chunk of counters takes about 190 with its header and
    /// CRC), so a later read of it does not wait for memory.
    pub(crate) fn prefetch(&self, r: HeadChunkRef) {
        if let Some(bytes) = self.mapped(r) {
            let off = r.offset() as usize;
            for line in [0, 64, 128, 192] {
                if let Some(b) = bytes.get(off + line) {
                    crate::prefetch::prefetch(b);
                }
            }
        }
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

/// Maps the first `len` bytes of `f` read-only and shared, past its current
/// end: pages become readable as writes extend the file.
fn map_growing(f: &File, len: usize) -> std::io::Result<Mmap> {
    // SAFETY: only `[..flushed]` of this mapping is ever read (`ChunkDisk::read`),
    // bytes this process wrote to the file and never truncates (a failed
    // write is cut back to `flushed`, not below), so no read reaches past the
    // end of the file (SIGBUS) or sees bytes change.
    unsafe { memmap2::MmapOptions::new().len(len.max(1)).map(f) }
}

/// The file being written: its flushed bytes readable through a mapping,
/// the rest (whole entries) in `tail`.
struct Active {
    index: u32,
    file: Option<File>,
    /// Read-only view of the file; `None` if it could not be made (reads of
    /// flushed chunks then fail with an error until the file is sealed).
    map: Option<Arc<Mmap>>,
    /// Entries not yet written to the file; they start at offset `flushed`.
    tail: Vec<u8>,
    /// Bytes in the file (header included).
    flushed: usize,
    maxt: i64,
    created: Instant,
}

impl Active {
    /// Bytes of the file, unflushed ones included.
    fn len(&self) -> usize {
        self.flushed + self.tail.len()
    }
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
        let active = Self::new_active(dir, next, max_file_size)?;
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

    fn new_active(dir: &Path, index: u32, max_file_size: usize) -> Result<Active, StorageError> {
        let path = file_path(dir, index);
        let mut f =
            OpenOptions::new().create(true).read(true).append(true).open(&path).map_err(|e| io("create", &path, e))?;
        f.set_len(0).map_err(|e| io("truncate", &path, e))?;
        let header = chunk_file::header();
        f.write_all(&header).map_err(|e| io("write", &path, e))?;
        // Room for the largest file plus one entry; remapped larger only
        // when sealing keeps failing (see `flush`).
        let map = map_growing(&f, max_file_size + (1 << 20)).map_err(|e| io("mmap", &path, e))?;
        Ok(Active {
            index,
            file: Some(f),
            map: Some(Arc::new(map)),
            tail: Vec::with_capacity(FLUSH_BYTES + 4096),
            flushed: header.len(),
            maxt: i64::MIN,
            created: Instant::now(),
        })
    }

    fn flush(&self, a: &mut Active) -> Result<(), StorageError> {
        let path = file_path(&self.dir, a.index);
        let Some(f) = a.file.as_mut() else { return Err(io("write", &path, std::io::Error::other("file not open"))) };
        if let Err(e) = f.write_all(&a.tail) {
            // Cut a partial write back so the next flush (append mode) continues cleanly.
            let _ = f.set_len(a.flushed as u64);
            return Err(io("write", &path, e));
        }
        a.flushed += a.tail.len();
        a.tail.clear();
        if a.tail.capacity() > 2 * (FLUSH_BYTES + 4096) {
            // A failed flush let it grow; give the memory back.
            a.tail.shrink_to(FLUSH_BYTES + 4096);
        }
        if a.map.as_ref().is_none_or(|m| m.len() < a.flushed) {
            // Only when sealing failed and the file outgrew its size limit.
            a.map = match map_growing(f, a.flushed.saturating_mul(2)) {
                Ok(m) => Some(Arc::new(m)),
                Err(e) => {
                    tracing::error!(file = %path.display(), error = %e, "head chunks: cannot map the active file; its chunks are unreadable until it is sealed");
                    None
                }
            };
        }
        Ok(())
    }

    /// Flushes, fsyncs and maps the active file, then starts the next one.
    fn seal(&self, a: &mut Active) -> Result<(), StorageError> {
        let path = file_path(&self.dir, a.index);
        self.flush(a)?;
        if let Some(f) = a.file.as_ref() {
            f.sync_all().map_err(|e| io("fsync", &path, e))?;
        }
        let next = Self::new_active(&self.dir, a.index + 1, self.max_file_size)?;
        let map = map_file(&path)?;
        if map.len() != a.len() {
            return Err(StorageError::Corrupt {
                path: path.display().to_string(),
                offset: map.len() as u64,
                reason: format!("sealed file has {} bytes, wrote {}", map.len(), a.len()),
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
        let has_chunks = a.len() > chunk_file::HEADER_LEN;
        if has_chunks && (a.len() + entry_len > self.max_file_size || a.created.elapsed() > self.max_age) {
            if let Err(e) = self.seal(&mut a) {
                // Keep writing into the active file (buffered); retried on the next chunk.
                tracing::error!(error = %e, "head chunks: cannot seal the active file");
                if a.len() + entry_len > u32::MAX as usize {
                    return Err(e);
                }
            }
        }
        let offset = a.len() as u32;
        chunk_file::encode_entry(series_ref, mint, maxt, enc, data, &mut a.tail);
        self.written.fetch_add(data.len() as u64, std::sync::atomic::Ordering::Relaxed);
        a.maxt = a.maxt.max(maxt);
        if a.tail.len() >= FLUSH_BYTES {
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
                let off = r.offset() as usize;
                if off >= a.flushed {
                    // Not written yet: copied out of the buffer.
                    let e = chunk_file::decode_entry(&a.tail, off - a.flushed).map_err(|e| self.bad(r, e))?;
                    return Ok((e.encoding, ChunkData::Owned(Arc::from(&a.tail[e.data_start..e.data_end]))));
                }
                // Written entries are read through the file's mapping, like
                // sealed ones: no copy, and the lock is not held meanwhile.
                let map = a
                    .map
                    .as_ref()
                    .filter(|m| m.len() >= a.flushed)
                    .map(Arc::clone)
                    .ok_or_else(|| self.bad(r, EntryError::Corrupt("active file not mapped")))?;
                let flushed = a.flushed;
                drop(a);
                let e = chunk_file::decode_entry(&map[..flushed], off).map_err(|e| self.bad(r, e))?;
                return Ok((e.encoding, ChunkData::Mapped { map, start: e.data_start, end: e.data_end }));
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

    /// The files' mappings as they are now, for reading many chunks without
    /// taking a lock per chunk (see [`ChunkView`]).
    pub(crate) fn view(&self) -> ChunkView<'_> {
        let (active_index, active_map, flushed) = {
            let a = self.active.lock();
            (a.index, a.map.as_ref().filter(|m| m.len() >= a.flushed).map(Arc::clone), a.flushed)
        };
        let sealed = self.sealed.read().iter().map(|(&i, s)| (i, Arc::clone(&s.map))).collect();
        ChunkView { disk: self, active_index, active_map, flushed, sealed }
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
            if a.len() > chunk_file::HEADER_LEN && a.created.elapsed() > self.max_age {
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

    /// Heap bytes buffering the active file's unflushed chunks.
    pub(crate) fn buffered_bytes(&self) -> usize {
        self.active.lock().tail.capacity()
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
    fn active_file_chunks_read_back_from_the_buffer_the_mapping_and_after_sealing() {
        let dir = tempfile::tempdir().unwrap();
        let (disk, loaded) = ChunkDisk::open(dir.path(), 1 << 20, Duration::from_secs(3600)).unwrap();
        assert!(loaded.is_empty());
        // 1000 chunks of 1-1000 bytes: ~500 KB, so FLUSH_BYTES is crossed and
        // some chunks are read from the file mapping, the newest from the buffer.
        let chunk = |i: u64| -> Vec<u8> { (0..(i % 1000 + 1)).map(|j| (i * 31 + j) as u8).collect() };
        let mut refs = Vec::new();
        for i in 0..1000u64 {
            let r = disk.write_chunk(i, i as i64, i as i64 + 1, Encoding::Decimal, &chunk(i)).unwrap();
            refs.push(r);
            // Read the newest and an early one each time.
            for j in [i, i / 7] {
                let (enc, data) = disk.read(refs[j as usize]).unwrap();
                assert_eq!((enc, data.as_ref()), (Encoding::Decimal, &chunk(j)[..]), "chunk {j} after {i}");
            }
        }
        assert_eq!(disk.num_files(), 1);
        {
            let a = disk.active.lock();
            assert!(a.flushed > FLUSH_BYTES && !a.tail.is_empty(), "flushed {} tail {}", a.flushed, a.tail.len());
        }
        // Past the size limit: the file is sealed and the chunks come from its mapping.
        for i in 1000..2200u64 {
            refs.push(disk.write_chunk(i, i as i64, i as i64 + 1, Encoding::Xor, &chunk(i)).unwrap());
        }
        assert!(disk.num_files() >= 2, "{}", disk.num_files());
        for (i, r) in refs.iter().enumerate() {
            let (enc, data) = disk.read(*r).unwrap();
            let want_enc = if i < 1000 { Encoding::Decimal } else { Encoding::Xor };
            assert_eq!((enc, data.as_ref()), (want_enc, &chunk(i as u64)[..]), "chunk {i}");
        }
        assert!(disk.read(HeadChunkRef::new(refs[2199].file(), refs[2199].offset() + 1)).is_err());
        disk.flush_active().unwrap();
        drop(disk);
        // Reopen: every chunk is found again in the files.
        let (_disk, loaded) = ChunkDisk::open(dir.path(), 1 << 20, Duration::from_secs(3600)).unwrap();
        assert_eq!(loaded.len(), 2200);
        assert!(loaded.iter().enumerate().all(|(i, c)| c.series_ref == i as u64 && c.r == refs[i]));
    }
}
