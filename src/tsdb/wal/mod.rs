//! The write-ahead log: every accepted sample is here before it is acknowledged.
//!
//! - [`record`]: pure record codec (series, samples, min time).
//! - [`frame`]: pure segment framing (header, length + CRC32C per record).
//! - [`segment`]: segment file I/O.
//! - [`checkpoint`]: compaction of old segments when the head is truncated.
//!
//! A WAL directory holds segments `00000000`, `00000001`, ... and at most one
//! `checkpoint.NNNNNNNN` directory (itself made of segments) that replaces
//! every segment up to index `NNNNNNNN`. Replay reads the checkpoint, then the
//! later segments in order. Only the last segment may end in a torn or corrupt
//! record (a crash mid-write); replay cuts it there and logs file and offset.
//! Damage anywhere else is an error naming the file and offset.
//!
//! Durability: [`WalWrite::write`] puts a batch's records in the current
//! segment with one `write` call; [`Wal::sync`] then `fdatasync`s it (calls
//! from concurrent committers coalesce). A commit that got `Ok` from both is
//! on disk.

pub mod checkpoint;
pub mod frame;
pub mod record;
pub mod segment;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::{Mutex, MutexGuard};

use crate::model::Labels;
use crate::storage::{SeriesRef, StorageError};
pub use record::{RecordRef, RefSample};
use segment::{ScanEnd, SegmentWriter};

/// Samples per samples record; keeps records far below the frame size limit.
const SAMPLES_PER_RECORD: usize = 8192;

/// WAL settings.
#[derive(Debug, Clone)]
pub struct WalOptions {
    /// A new segment is started once the current one would exceed this many bytes.
    pub segment_size: u64,
    /// `fdatasync` on every [`Wal::sync`]. Turn off only for benchmarks and tests
    /// that measure something else; an `Ok` commit is then not crash-safe.
    pub fsync: bool,
}

impl Default for WalOptions {
    fn default() -> Self {
        WalOptions { segment_size: 128 << 20, fsync: true }
    }
}

/// WAL failures, with the file and offset involved.
#[derive(Debug, thiserror::Error)]
pub enum WalError {
    /// An I/O call failed.
    #[error("WAL {op} {}: {source}", path.display())]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Damaged data that cannot be repaired without losing acknowledged records.
    #[error("WAL corrupt: {} at offset {offset}: {reason}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Byte offset of the damage.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
}

impl WalError {
    pub(crate) fn io(op: &'static str, path: &Path, source: std::io::Error) -> Self {
        WalError::Io { op, path: path.to_path_buf(), source }
    }

    /// Whether this error is a full disk.
    pub fn is_no_space(&self) -> bool {
        matches!(self, WalError::Io { source, .. } if segment::is_no_space(source))
    }
}

impl From<WalError> for StorageError {
    fn from(e: WalError) -> Self {
        match e {
            WalError::Io { op, path, source } => StorageError::Io { op, path: path.display().to_string(), source },
            WalError::Corrupt { path, offset, reason } => {
                StorageError::Corrupt { path: path.display().to_string(), offset, reason }
            }
        }
    }
}

/// Records encoded and framed, ready for one write.
#[derive(Debug, Default)]
pub struct RecordBatch {
    frames: Vec<u8>,
    scratch: Vec<u8>,
}

impl RecordBatch {
    /// An empty batch.
    pub fn new() -> Self {
        RecordBatch::default()
    }

    /// Adds a series record.
    pub fn add_series(&mut self, series: &[(SeriesRef, &Labels)]) {
        if series.is_empty() {
            return;
        }
        self.scratch.clear();
        record::encode_series(series, &mut self.scratch);
        frame::encode_frame(&self.scratch, &mut self.frames);
    }

    /// Adds samples (split into several records when many).
    pub fn add_samples(&mut self, samples: &[RefSample]) {
        for part in samples.chunks(SAMPLES_PER_RECORD) {
            self.scratch.clear();
            record::encode_samples(part, &mut self.scratch);
            frame::encode_frame(&self.scratch, &mut self.frames);
        }
    }

    /// Adds a min-time record.
    pub fn add_min_time(&mut self, t: i64) {
        self.scratch.clear();
        record::encode_min_time(t, &mut self.scratch);
        frame::encode_frame(&self.scratch, &mut self.frames);
    }

    /// Adds an already encoded payload.
    pub fn add_payload(&mut self, payload: &[u8]) {
        frame::encode_frame(payload, &mut self.frames);
    }

    /// Whether nothing was added.
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// Framed bytes.
    pub fn len(&self) -> usize {
        self.frames.len()
    }

    /// Empties the batch, keeping its buffers.
    pub fn clear(&mut self) {
        self.frames.clear();
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        &self.frames
    }
}

struct Writer {
    seg: SegmentWriter,
    /// A write or sync failed on `seg`: start a fresh segment before writing again.
    broken: bool,
}

#[derive(Default)]
struct SyncState {
    /// (segment, offset) known durable.
    synced: (u32, u64),
    /// A segment whose fsync failed: nothing in it may be reported durable.
    failed_segment: Option<u32>,
}

/// Where a write ended; pass it to [`Wal::sync`].
#[derive(Debug, Clone)]
pub struct SyncPoint {
    segment: u32,
    end: u64,
    file: Arc<File>,
    path: PathBuf,
}

/// An open write-ahead log.
pub struct Wal {
    dir: PathBuf,
    opts: WalOptions,
    writer: Mutex<Writer>,
    sync: Mutex<SyncState>,
    checkpoint_lock: Mutex<()>,
}

/// Exclusive access to the WAL's tail. Holding it orders writes; the head
/// applies a batch while holding it so replay order equals apply order.
pub struct WalWrite<'a> {
    wal: &'a Wal,
    w: MutexGuard<'a, Writer>,
}

/// What replay found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplayStats {
    /// Records replayed.
    pub records: u64,
    /// Segments read (checkpoint segments included).
    pub segments: u32,
    /// Where a torn tail was cut, if one was.
    pub repaired: Option<(PathBuf, u64)>,
    /// The checkpoint replayed first, if any.
    pub checkpoint: Option<u32>,
}

impl Wal {
    /// Opens (creating if needed) the WAL in `dir`, replaying every record
    /// into `on_record` first, then starting a fresh segment for new writes.
    pub fn open(
        dir: &Path,
        opts: WalOptions,
        on_record: &mut dyn FnMut(RecordRef<'_>),
    ) -> Result<(Wal, ReplayStats), WalError> {
        std::fs::create_dir_all(dir).map_err(|e| WalError::io("create dir", dir, e))?;
        let mut stats = ReplayStats::default();
        let mut buf = record::DecodeBuf::default();
        let cp = checkpoint::prepare(dir)?;
        if let Some((n, cp_dir)) = &cp {
            stats.checkpoint = Some(*n);
            for idx in segment::list_segments(cp_dir)? {
                let path = segment::segment_path(cp_dir, idx);
                replay_segment(&path, false, &mut buf, on_record, &mut stats)?;
            }
        }
        let after = cp.as_ref().map(|(n, _)| *n);
        let mut segs = segment::list_segments(dir)?;
        // Segments a finished checkpoint covers may survive a crash before their deletion.
        if let Some(n) = after {
            for &i in segs.iter().filter(|&&i| i <= n) {
                let p = segment::segment_path(dir, i);
                std::fs::remove_file(&p).map_err(|e| WalError::io("remove", &p, e))?;
            }
            segs.retain(|&i| i > n);
        }
        for w in segs.windows(2) {
            if w[1] != w[0] + 1 {
                return Err(WalError::Corrupt {
                    path: segment::segment_path(dir, w[0] + 1),
                    offset: 0,
                    reason: format!("segment missing between {:08} and {:08}", w[0], w[1]),
                });
            }
        }
        if let (Some(n), Some(&first)) = (after, segs.first()) {
            if first != n + 1 {
                return Err(WalError::Corrupt {
                    path: segment::segment_path(dir, n + 1),
                    offset: 0,
                    reason: format!("segment missing after checkpoint {n:08}"),
                });
            }
        }
        for (i, &idx) in segs.iter().enumerate() {
            let last = i + 1 == segs.len();
            let path = segment::segment_path(dir, idx);
            replay_segment(&path, last, &mut buf, on_record, &mut stats)?;
        }
        let next = segs.last().map(|&i| i + 1).or(after.map(|n| n + 1)).unwrap_or(0);
        let seg = SegmentWriter::create(dir, next)?;
        let wal = Wal {
            dir: dir.to_path_buf(),
            opts,
            writer: Mutex::new(Writer { seg, broken: false }),
            sync: Mutex::new(SyncState::default()),
            checkpoint_lock: Mutex::new(()),
        };
        Ok((wal, stats))
    }

    /// The WAL directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Takes the tail for writing.
    pub fn lock(&self) -> WalWrite<'_> {
        WalWrite { wal: self, w: self.writer.lock() }
    }

    /// Makes everything up to `p` durable (no-op when fsync is off or another
    /// caller already synced past it).
    pub fn sync(&self, p: &SyncPoint) -> Result<(), WalError> {
        if !self.opts.fsync {
            return Ok(());
        }
        let mut st = self.sync.lock();
        if st.failed_segment == Some(p.segment) {
            return Err(WalError::io(
                "fsync",
                &p.path,
                std::io::Error::other("an earlier fsync of this segment failed"),
            ));
        }
        if st.synced >= (p.segment, p.end) {
            return Ok(());
        }
        match p.file.sync_data() {
            Ok(()) => {
                st.synced = st.synced.max((p.segment, p.end));
                Ok(())
            }
            Err(e) => {
                // After a failed fsync the kernel may have dropped the dirty pages;
                // never report anything in this segment durable again.
                st.failed_segment = Some(p.segment);
                drop(st);
                self.writer.lock().broken = true;
                Err(WalError::io("fsync", &p.path, e))
            }
        }
    }

    /// Writes and syncs `batch` in one go (for callers with nothing to apply in between).
    pub fn log(&self, batch: &RecordBatch) -> Result<(), WalError> {
        let p = self.lock().write(batch)?;
        self.sync(&p)
    }

    /// The index of the segment being written.
    pub fn current_segment(&self) -> u32 {
        self.writer.lock().seg.index()
    }

    /// Closes the current segment (fsynced) and starts the next; returns the
    /// index of the last closed segment.
    pub fn cut_segment(&self) -> Result<u32, WalError> {
        let mut w = self.writer.lock();
        let closed = w.seg.index();
        self.rotate(&mut w)?;
        Ok(closed)
    }

    fn rotate(&self, w: &mut Writer) -> Result<(), WalError> {
        let next = w.seg.index() + 1;
        if !w.broken && self.opts.fsync {
            w.seg.sync()?;
        }
        let seg = SegmentWriter::create(&self.dir, next)?;
        let mut st = self.sync.lock();
        if !w.broken {
            st.synced = st.synced.max((w.seg.index(), w.seg.size()));
        }
        drop(st);
        w.seg = seg;
        w.broken = false;
        Ok(())
    }

    /// Writes a checkpoint of every segment before the current one, keeping
    /// series for which `keep` is true and their samples at or after `mint`,
    /// then deletes what it replaces. See [`checkpoint`].
    pub fn checkpoint(
        &self,
        mint: i64,
        keep: &(dyn Fn(SeriesRef) -> bool + Sync),
    ) -> Result<checkpoint::CheckpointStats, WalError> {
        let _one = self.checkpoint_lock.lock();
        let last = self.cut_segment()?;
        checkpoint::create(&self.dir, &self.opts, last, mint, keep)
    }
}

impl WalWrite<'_> {
    /// Writes the batch's records to the current segment (rotating first when
    /// it is full). Nothing is durable until [`Wal::sync`] with the returned point.
    pub fn write(&mut self, batch: &RecordBatch) -> Result<SyncPoint, WalError> {
        let bytes = batch.bytes();
        if self.w.broken
            || (self.w.seg.size() > frame::HEADER_LEN as u64
                && self.w.seg.size() + bytes.len() as u64 > self.wal.opts.segment_size)
        {
            self.wal.rotate(&mut self.w)?;
        }
        if !bytes.is_empty() {
            self.w.seg.write(bytes)?;
        }
        Ok(SyncPoint {
            segment: self.w.seg.index(),
            end: self.w.seg.size(),
            file: self.w.seg.file(),
            path: self.w.seg.path().to_path_buf(),
        })
    }
}

fn replay_segment(
    path: &Path,
    is_last: bool,
    buf: &mut record::DecodeBuf,
    on_record: &mut dyn FnMut(RecordRef<'_>),
    stats: &mut ReplayStats,
) -> Result<(), WalError> {
    let bytes = segment::read_segment(path)?;
    stats.segments += 1;
    let end = segment::scan(&bytes, |offset, payload| {
        let rec = record::decode(payload, buf).map_err(|e| WalError::Corrupt {
            path: path.to_path_buf(),
            offset,
            reason: e.to_string(),
        })?;
        stats.records += 1;
        on_record(rec);
        Ok::<(), WalError>(())
    })?;
    match end {
        ScanEnd::Clean => Ok(()),
        ScanEnd::Damaged { offset, reason } if is_last => {
            // A crash mid-write leaves a torn tail in the last segment only; every
            // record before it was complete and is kept.
            tracing::warn!(file = %path.display(), offset, %reason, "WAL: cutting torn or corrupt tail of last segment");
            if offset < frame::HEADER_LEN as u64 {
                segment::rewrite_empty(path)?;
            } else {
                segment::truncate_file(path, offset)?;
            }
            stats.repaired = Some((path.to_path_buf(), offset));
            Ok(())
        }
        ScanEnd::Damaged { offset, reason } => Err(WalError::Corrupt { path: path.to_path_buf(), offset, reason }),
    }
}
