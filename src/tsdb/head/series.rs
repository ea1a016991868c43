//! One head series: its open chunk, its memory-mapped chunks and any
//! out-of-order samples, plus the order rules for appending.

use std::sync::Arc;

use super::chunk_disk::{ChunkData, ChunkDisk};
use super::chunk_file::HeadChunkRef;
use super::symbols::SeriesLabels;
use crate::model::Sample;
use crate::storage::{AppendError, StorageError};
use crate::tsdb::chunk::{ChunkAppender, ChunkIter, Encoding, DEFAULT_ENCODING};

/// A full chunk moved to a head chunk file. Its last sample is before the
/// next chunk's `mint` (or at the series' `mmapped_maxt` for the last one).
#[derive(Debug, Clone, Copy)]
pub(crate) struct MmapMeta {
    pub r: HeadChunkRef,
    pub mint: i64,
}

/// The chunk being appended to; it always holds at least one sample.
///
/// Its start time is read from the chunk bytes when needed rather than
/// stored: those 8 bytes keep the series (`Arc<Mutex<MemSeries>>`) in
/// jemalloc's 160-byte size class instead of the 192-byte one. The append
/// path needs only the chunk's range, which its last sample gives (every
/// sample of a chunk lies in the chunk range of its first).
#[derive(Debug)]
pub(crate) struct OpenChunk {
    pub app: ChunkAppender,
}

impl OpenChunk {
    /// Timestamp of the first sample.
    pub fn mint(&self) -> i64 {
        // Never empty (see `MemSeries::append_in_order`); MAX keeps an empty
        // one out of every time range.
        self.app.first_t().unwrap_or(i64::MAX)
    }

    /// At three quarters of the samples a chunk is cut at, grows its buffer
    /// once to what the whole chunk will take at the bytes per sample so far
    /// (plus the encoder's 20-byte headroom).
    ///
    /// The buffer otherwise grows in steps of an eighth, and every step moves
    /// it to the next allocator size class. Series growing in step (all of a
    /// target's, or all of a remote_write sender's) then leave the class
    /// they all just left partly empty: at 100k series, ~90 bytes per series
    /// stayed stranded in the 384-byte class's slabs just before the chunks
    /// were cut (docs/BENCHMARKS.md). One step to the final size leaves the
    /// smaller classes early in the chunk, while they hold less.
    pub fn presize(&mut self, samples_per_chunk: u16) {
        let n = usize::from(self.app.num_samples());
        let full = usize::from(samples_per_chunk);
        if n > 0 && n == full * 3 / 4 {
            let len = self.app.bytes().len();
            self.app.reserve_total(len * full / n + 20);
        }
    }

    /// Whether the chunk holds samples in `[mint, maxt]` (the start is only
    /// decoded when the end alone cannot tell).
    pub fn overlaps(&self, mint: i64, maxt: i64) -> bool {
        let last = self.app.last_t();
        last >= mint && (last <= maxt || self.mint() <= maxt)
    }
}

/// How a sample relates to the series' data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Accept {
    /// Newer than everything: goes into the open chunk.
    InOrder,
    /// Older than the newest sample but inside the out-of-order window.
    OutOfOrder,
    /// Same timestamp and identical value bits as a stored sample.
    NoOp,
}

/// Rules that do not depend on the series.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rules {
    pub min_valid: i64,
    pub ooo_window: i64,
    pub chunk_range: i64,
    pub samples_per_chunk: u16,
}

/// Per-series state. Kept small: see the memory notes in `head/mod.rs`.
#[derive(Debug)]
pub(crate) struct MemSeries {
    /// Symbol ids of the labels (strings in the head's symbol table).
    pub labels: SeriesLabels,
    /// A boxed slice, not a `Vec`: 8 bytes less, which keeps the series'
    /// allocation (`Arc<Mutex<MemSeries>>`, 160 bytes; a test checks it) in
    /// jemalloc's 160-byte size class. Grows by one entry per cut.
    pub mmapped: Box<[MmapMeta]>,
    /// Time of the last sample in `mmapped` (i64::MIN when none).
    pub mmapped_maxt: i64,
    pub head: Option<OpenChunk>,
    /// Out-of-order samples, sorted by time, unique timestamps. Boxed so the
    /// common case (none) costs 8 bytes per series instead of 24.
    #[allow(clippy::box_collection)]
    pub ooo: Option<Box<Vec<Sample>>>,
    /// Samples appended but not yet committed or rolled back.
    pub pending: u32,
    /// Whether the series record is in the WAL.
    pub logged: bool,
    /// Set (under the series lock) when the head drops the series: handles
    /// cached outside the head still reach it, and must not append to it.
    pub removed: bool,
}

/// End (exclusive) of the chunk range holding `t`.
fn range_end(t: i64, range: i64) -> i64 {
    t.div_euclid(range).saturating_add(1).saturating_mul(range)
}

impl MemSeries {
    pub fn new(labels: SeriesLabels) -> Self {
        MemSeries {
            labels,
            mmapped: Box::default(),
            mmapped_maxt: i64::MIN,
            head: None,
            ooo: None,
            pending: 0,
            logged: false,
            removed: false,
        }
    }

    /// Newest in-order timestamp (i64::MIN without data).
    pub fn max_t(&self) -> i64 {
        match &self.head {
            Some(h) => h.app.last_t(),
            None => self.mmapped_maxt,
        }
    }

    /// Appends a chunk to the mapped list, growing it by exactly one entry.
    pub fn push_mmapped(&mut self, m: MmapMeta) {
        let mut v = std::mem::take(&mut self.mmapped).into_vec();
        v.reserve_exact(1);
        v.push(m);
        self.mmapped = v.into_boxed_slice();
    }

    /// Oldest and newest timestamps, including out-of-order samples.
    pub fn time_range(&self) -> Option<(i64, i64)> {
        let mut lo = self.mmapped.first().map(|m| m.mint).or_else(|| self.head.as_ref().map(OpenChunk::mint));
        let mut hi = if self.head.is_some() || !self.mmapped.is_empty() { Some(self.max_t()) } else { None };
        if let Some(o) = self.ooo.as_deref() {
            if let (Some(f), Some(l)) = (o.first(), o.last()) {
                lo = Some(lo.map_or(f.t, |x| x.min(f.t)));
                hi = Some(hi.map_or(l.t, |x| x.max(l.t)));
            }
        }
        lo.zip(hi)
    }

    /// Whether the series holds no samples.
    pub fn is_empty(&self) -> bool {
        self.head.is_none() && self.mmapped.is_empty() && self.ooo.as_deref().is_none_or(|o| o.is_empty())
    }

    /// The value bits of the in-order sample at `t`, if there is one.
    fn in_order_value_at(&self, t: i64, disk: &ChunkDisk) -> Option<u64> {
        if let Some(h) = &self.head {
            if t >= h.mint() {
                return find_in(h.app.encoding(), h.app.bytes(), t);
            }
        }
        let i = self.mmapped.partition_point(|m| m.mint <= t).checked_sub(1)?;
        let (enc, data) = disk.read(self.mmapped[i].r).ok()?;
        find_in(enc, data.as_ref(), t)
    }

    /// Decides whether `(t, v)` may be appended, following Prometheus's rules
    /// (`memSeries.appendable`): newer is fine, same time and bits is a no-op,
    /// same time with other bits is a duplicate, older is out of order unless
    /// inside the window.
    pub fn check(&self, t: i64, v: f64, rules: &Rules, disk: &ChunkDisk) -> Result<Accept, AppendError> {
        if t < rules.min_valid {
            return Err(AppendError::OutOfBounds { t, min_valid: rules.min_valid });
        }
        let max_t = self.max_t();
        if t > max_t || (self.head.is_none() && self.mmapped.is_empty()) {
            return Ok(Accept::InOrder);
        }
        if t == max_t {
            let last = match &self.head {
                Some(h) => Some(h.app.last_v().to_bits()),
                None => self.in_order_value_at(t, disk),
            };
            return match last {
                Some(bits) if bits == v.to_bits() => Ok(Accept::NoOp),
                _ => Err(AppendError::DuplicateTimestamp { t }),
            };
        }
        if rules.ooo_window <= 0 || t < max_t.saturating_sub(rules.ooo_window) {
            return Err(AppendError::OutOfOrder { t, latest: max_t });
        }
        if let Some(o) = self.ooo.as_deref() {
            if let Ok(i) = o.binary_search_by_key(&t, |s| s.t) {
                return if o[i].v.to_bits() == v.to_bits() {
                    Ok(Accept::NoOp)
                } else {
                    Err(AppendError::DuplicateTimestamp { t })
                };
            }
        }
        match self.in_order_value_at(t, disk) {
            Some(bits) if bits == v.to_bits() => Ok(Accept::NoOp),
            Some(_) => Err(AppendError::DuplicateTimestamp { t }),
            None => Ok(Accept::OutOfOrder),
        }
    }

    /// Stores an accepted sample. Returns the number of chunks moved to disk.
    pub fn store(
        &mut self,
        id: u64,
        t: i64,
        v: f64,
        how: Accept,
        rules: &Rules,
        disk: &ChunkDisk,
    ) -> Result<(), StorageError> {
        match how {
            Accept::NoOp => Ok(()),
            Accept::OutOfOrder => {
                let o = self.ooo.get_or_insert_with(Default::default);
                match o.binary_search_by_key(&t, |s| s.t) {
                    Ok(_) => {}
                    Err(i) => o.insert(i, Sample::new(t, v)),
                }
                Ok(())
            }
            Accept::InOrder => self.append_in_order(id, t, v, rules, disk),
        }
    }

    fn append_in_order(
        &mut self,
        id: u64,
        t: i64,
        v: f64,
        rules: &Rules,
        disk: &ChunkDisk,
    ) -> Result<(), StorageError> {
        let cut = match &self.head {
            None => false,
            Some(h) => {
                h.app.num_samples() >= rules.samples_per_chunk || t >= range_end(h.app.last_t(), rules.chunk_range)
            }
        };
        if cut {
            self.cut(id, disk);
        }
        let full = |e| StorageError::Unavailable(format!("series {id}: {e}"));
        match &mut self.head {
            Some(h) => {
                h.app.append(t, v).map_err(full)?;
                h.presize(rules.samples_per_chunk);
                Ok(())
            }
            None => {
                // Stored only once it holds the sample: an open chunk is never empty.
                let mut app = ChunkAppender::new(DEFAULT_ENCODING, 32);
                app.append(t, v).map_err(full)?;
                self.head = Some(OpenChunk { app });
                Ok(())
            }
        }
    }

    /// Moves the open chunk to a head chunk file. On failure the chunk stays
    /// open (and keeps growing) so no sample is lost.
    ///
    /// The next open chunk starts with a new 32-byte buffer rather than this
    /// one's: reusing it (sized like the last chunk) saved reallocations but
    /// kept every series at a full chunk's bytes; with jemalloc (src/main.rs)
    /// growing from small is ~150 bytes per series smaller (docs/BENCHMARKS.md).
    fn cut(&mut self, id: u64, disk: &ChunkDisk) {
        let Some(h) = &self.head else { return };
        let (mint, maxt) = (h.mint(), h.app.last_t());
        match disk.write_chunk(id, mint, maxt, h.app.encoding(), h.app.bytes()) {
            Ok(r) => {
                self.push_mmapped(MmapMeta { r, mint });
                self.mmapped_maxt = maxt;
                self.head = None;
            }
            Err(e) => {
                tracing::error!(series = id, error = %e, "cannot move a full chunk to disk; keeping it in memory")
            }
        }
    }

    /// Each mapped chunk with the end of its time span: the next one's
    /// start less one, for the last one `mmapped_maxt`.
    fn mmapped_spans(&self) -> impl Iterator<Item = (&MmapMeta, i64)> {
        let ends = self.mmapped.iter().skip(1).map(|m| m.mint - 1).chain(std::iter::once(self.mmapped_maxt));
        self.mmapped.iter().zip(ends)
    }

    /// The mapped chunks holding samples in `[mint, maxt]`.
    pub fn mmapped_between(&self, mint: i64, maxt: i64) -> impl Iterator<Item = &MmapMeta> {
        self.mmapped_spans().filter(move |&(m, end)| end >= mint && m.mint <= maxt).map(|(m, _)| m)
    }

    /// Drops data entirely before `mint`; returns (chunks, samples) removed.
    pub fn truncate(&mut self, mint: i64, disk: &ChunkDisk) -> (u64, u64) {
        let mut chunks = 0;
        let mut samples = 0;
        let drop_n = self.mmapped_spans().take_while(|&(_, end)| end < mint).count();
        for m in &self.mmapped[..drop_n] {
            samples += disk.num_samples(m.r) as u64;
        }
        chunks += drop_n as u64;
        if drop_n > 0 {
            let mut v = std::mem::take(&mut self.mmapped).into_vec();
            v.drain(..drop_n);
            self.mmapped = v.into_boxed_slice();
        }
        if self.mmapped.is_empty() && self.head.is_none() {
            self.mmapped_maxt = i64::MIN;
        }
        if self.mmapped.is_empty() {
            if let Some(h) = &self.head {
                if h.app.last_t() < mint {
                    samples += h.app.num_samples() as u64;
                    chunks += 1;
                    self.head = None;
                    self.mmapped_maxt = i64::MIN;
                }
            }
        }
        if let Some(o) = self.ooo.as_deref_mut() {
            let before = o.len();
            o.retain(|s| s.t >= mint);
            samples += (before - o.len()) as u64;
        }
        if self.ooo.as_deref().is_some_and(|o| o.is_empty()) {
            self.ooo = None;
        }
        (chunks, samples)
    }

    /// What a query of `[mint, maxt]` needs, copied so the lock can be released.
    pub fn snapshot(&self, mint: i64, maxt: i64) -> Snapshot {
        let mut chunks: Vec<ChunkSource> = self.mmapped_between(mint, maxt).map(|m| ChunkSource::Disk(m.r)).collect();
        if let Some(h) = &self.head {
            if h.overlaps(mint, maxt) {
                chunks.push(ChunkSource::Mem(h.app.encoding(), ChunkData::Owned(Arc::from(h.app.bytes()))));
            }
        }
        let ooo = self
            .ooo
            .as_deref()
            .map(|o| o.iter().copied().filter(|s| s.t >= mint && s.t <= maxt).collect())
            .unwrap_or_default();
        Snapshot { chunks, ooo }
    }

    /// Addresses of the first and last byte of the open chunk, for
    /// prefetching before the commit appends to it (`(0, 0)` without one).
    pub fn open_chunk_addrs(&self) -> (usize, usize) {
        match &self.head {
            Some(h) => {
                let b = h.app.bytes();
                let start = b.as_ptr() as usize;
                (start, start + b.len().saturating_sub(1))
            }
            None => (0, 0),
        }
    }

    /// Number of chunks (mapped + open).
    pub fn num_chunks(&self) -> usize {
        self.mmapped.len() + self.head.is_some() as usize
    }

    /// Approximate heap bytes owned by this series (label ids, chunk list, open chunk).
    pub fn heap_size(&self) -> usize {
        self.labels.heap_size()
            + std::mem::size_of_val(&*self.mmapped)
            + self.head.as_ref().map_or(0, |h| h.app.capacity())
            + self.ooo.as_deref().map_or(0, |o| o.capacity() * 16 + 24)
    }
}

/// A chunk needed by a query.
pub(crate) enum ChunkSource {
    Disk(HeadChunkRef),
    Mem(Encoding, ChunkData),
}

/// A series' data for one query.
pub(crate) struct Snapshot {
    pub chunks: Vec<ChunkSource>,
    pub ooo: Vec<Sample>,
}

fn find_in(enc: Encoding, chunk: &[u8], t: i64) -> Option<u64> {
    let mut it = ChunkIter::new(enc, chunk).ok()?;
    match it.seek(t)? {
        Ok(s) if s.t == t => Some(s.v.to_bits()),
        _ => None,
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_allocation_fits_a_160_byte_size_class() {
        // One `Arc<Mutex<MemSeries>>` per active series: two counters + the mutex.
        let n = 2 * std::mem::size_of::<usize>() + std::mem::size_of::<parking_lot::Mutex<MemSeries>>();
        assert!(n <= 160, "{n} bytes");
    }

    /// Head chunk files in a temporary directory (kept while the guard lives).
    fn chunk_disk() -> (tempfile::TempDir, ChunkDisk) {
        let dir = tempfile::tempdir().unwrap();
        let (disk, _) = ChunkDisk::open(dir.path(), 1 << 20, std::time::Duration::from_secs(3600)).unwrap();
        (dir, disk)
    }

    #[test]
    fn open_chunk_grows_once_to_its_predicted_size_at_three_quarters() {
        let rules = Rules { min_valid: i64::MIN, ooo_window: 0, chunk_range: i64::MAX / 4, samples_per_chunk: 120 };
        let (_dir, disk) = chunk_disk();
        let mut s = MemSeries::new(SeriesLabels::default());
        let mut caps = Vec::new();
        for i in 0..120i64 {
            // A counter with some jitter in its increments, so each sample costs a few bytes.
            s.store(1, i * 15_000, (i * i % 7 + 10 * i) as f64, Accept::InOrder, &rules, &disk).unwrap();
            let h = s.head.as_ref().unwrap();
            caps.push((h.app.bytes().len(), h.app.capacity()));
        }
        let (len89, cap89) = caps[89];
        let want = len89 * 120 / 90 + 20;
        assert!(cap89 >= want, "at 90 samples: {len89} bytes, capacity {cap89} < {want}");
        // The prediction held: no further growth until the chunk is full.
        assert!(caps[89..].iter().all(|&(_, c)| c == cap89), "{:?}", &caps[89..]);
        assert!(caps[119].0 <= cap89);
        // Before three quarters it grew in small steps.
        assert!(caps[88].1 < want, "{:?}", caps[88]);
    }

    #[test]
    fn open_chunk_start_comes_from_its_bytes() {
        let rules = Rules { min_valid: i64::MIN, ooo_window: 0, chunk_range: 1000, samples_per_chunk: 120 };
        let (_dir, disk) = chunk_disk();
        let mut s = MemSeries::new(SeriesLabels::default());
        // 2500 falls in the chunk range [2000, 3000); 3000 starts the next.
        for (t, v) in [(2500, 1.5), (2600, 2.0), (2999, 0.25)] {
            s.store(1, t, v, Accept::InOrder, &rules, &disk).unwrap();
        }
        let h = s.head.as_ref().unwrap();
        assert_eq!((h.mint(), h.app.last_t()), (2500, 2999));
        assert!(h.overlaps(2999, 5000) && h.overlaps(0, 2500) && !h.overlaps(0, 2499) && !h.overlaps(3000, 5000));
        assert_eq!(s.time_range(), Some((2500, 2999)));
        s.store(1, 3000, 7.0, Accept::InOrder, &rules, &disk).unwrap();
        assert_eq!(s.mmapped.iter().map(|m| m.mint).collect::<Vec<_>>(), [2500]);
        assert_eq!((s.mmapped_maxt, s.head.as_ref().unwrap().mint()), (2999, 3000));
        assert_eq!(s.time_range(), Some((2500, 3000)));
    }

    #[test]
    fn mapped_chunk_list_grows_and_truncates_exactly() {
        let mut s = MemSeries::new(SeriesLabels::default());
        for i in 0..5u32 {
            s.push_mmapped(MmapMeta { r: HeadChunkRef::new(0, i * 100), mint: i as i64 * 1000 });
        }
        s.mmapped_maxt = 4999;
        assert_eq!(s.mmapped.iter().map(|m| m.mint).collect::<Vec<_>>(), [0, 1000, 2000, 3000, 4000]);
        assert_eq!(s.heap_size(), 5 * std::mem::size_of::<MmapMeta>());
    }
}
