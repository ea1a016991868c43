//! The head: the in-memory, WAL-backed part of the TSDB that takes appends.
//!
//! - Series live in striped maps: label hash → id, and id → series.
//! - [`index`] maps label name → value → sorted ids for matcher selection.
//! - Each series appends to one open XOR chunk; a chunk is cut at
//!   `samples_per_chunk` samples or at a `chunk_range` boundary and moved to a
//!   head chunk file ([`chunk_disk`]), which is memory-mapped once complete.
//! - Every committed batch is written to the WAL first ([`crate::tsdb::wal`]).
//!
//! # References
//!
//! A head [`SeriesRef`] is the series id: a `u64` whose upper 32 bits are
//! zero and whose lower 32 bits are a number assigned in creation order,
//! never reused while the WAL remembers it (ids survive restarts through the
//! WAL's series records). A head chunk reference ([`HeadChunkRef`]) is
//! `file index << 32 | byte offset` into `chunks_head/<file index>`.
//!
//! # Memory
//!
//! Per series the heap holds its labels as symbol ids (a few bytes per label;
//! the strings live once in the head's [`symbols`] table), a small struct
//! (open chunk state, the list of mapped chunks as 16-byte `(ref, mint)`
//! pairs; 160 bytes with its reference counts and lock), the open chunk's
//! bytes (at most ~120 samples, grown once to their predicted size at three
//! quarters, see `OpenChunk::presize`), one `u32` per label in the index and
//! two 8- or 16-byte map entries (label hash → id → series).

pub mod appender;
pub mod chunk_disk;
pub mod chunk_file;
pub mod index;
pub mod query;
mod series;
mod stripe_hash;
mod symbols;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use parking_lot::{Mutex, RwLock};

pub use appender::HeadAppender;
pub use chunk_disk::ChunkData;
pub use chunk_file::HeadChunkRef;
pub use query::HeadSeriesIter;

use chunk_disk::ChunkDisk;
use index::Index;
use series::{Accept, MemSeries, MmapMeta, Rules};
use symbols::{SeriesLabels, SymbolTable};

use crate::model::Labels;
use crate::storage::{AppendError, Appendable, Appender, SeriesRef, StorageError};
use crate::tsdb::wal::{RecordRef, ReplayStats, Wal, WalOptions};

const STRIPES: usize = 128;
// A walk batch notes the stripes it needs in a `u128`.
const _: () = assert!(STRIPES <= 128);

/// A series as stored in the map; appenders keep a clone per pending sample
/// so commits need no second lookup.
type SeriesHandle = Arc<Mutex<MemSeries>>;

type FoldMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// Head settings.
#[derive(Debug, Clone)]
pub struct HeadOptions {
    /// Chunks never span a multiple of this (milliseconds); the block range. Default 2h.
    pub chunk_range: i64,
    /// Samples after which a chunk is cut. Default 120.
    pub samples_per_chunk: u16,
    /// Accept samples up to this much older than a series' newest (ms). 0 rejects them.
    pub out_of_order_window: i64,
    /// Samples older than this are out of bounds (the database sets it to the
    /// newest block's end). Default: no bound.
    pub min_valid_time: i64,
    /// WAL settings.
    pub wal: WalOptions,
    /// Size at which a head chunk file is sealed and mapped. Default 16 MiB.
    pub chunk_file_size: u64,
    /// Age at which a non-empty head chunk file is sealed anyway. Default 5 minutes.
    pub chunk_file_max_age: Duration,
    /// Most series the head holds; creating more fails with `LimitExceeded`.
    pub max_series: u64,
}

impl Default for HeadOptions {
    fn default() -> Self {
        HeadOptions {
            chunk_range: 2 * 3600 * 1000,
            samples_per_chunk: 120,
            out_of_order_window: 0,
            min_valid_time: i64::MIN,
            wal: WalOptions::default(),
            chunk_file_size: 16 << 20,
            chunk_file_max_age: Duration::from_secs(300),
            max_series: u32::MAX as u64,
        }
    }
}

/// Rejection and fault counters (for `/metrics`).
#[derive(Debug, Default)]
pub struct HeadCounters {
    /// Samples rejected as out of order.
    pub out_of_order: AtomicU64,
    /// Samples rejected as older than the head's minimum.
    pub out_of_bounds: AtomicU64,
    /// Samples rejected as duplicates with another value.
    pub duplicates: AtomicU64,
    /// Series not created because of `max_series`.
    pub series_limit: AtomicU64,
    /// Commits that failed because the disk was full.
    pub wal_no_space: AtomicU64,
}

impl HeadCounters {
    fn count(&self, e: &AppendError) {
        let c = match e {
            AppendError::OutOfOrder { .. } => &self.out_of_order,
            AppendError::OutOfBounds { .. } => &self.out_of_bounds,
            AppendError::DuplicateTimestamp { .. } => &self.duplicates,
            AppendError::LimitExceeded(_) => &self.series_limit,
            _ => return,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }
}

/// Figures for `/api/v1/status/tsdb`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeadStats {
    /// Series in the head.
    pub num_series: u64,
    /// Samples in the head.
    pub num_samples: u64,
    /// Chunks (mapped + open).
    pub num_chunks: u64,
    /// Oldest sample time (i64::MAX when empty).
    pub min_time: i64,
    /// Newest sample time (i64::MIN when empty).
    pub max_time: i64,
    /// Top metric names by series count.
    pub series_count_by_metric_name: Vec<(String, u64)>,
    /// Top label names by number of distinct values.
    pub label_value_count_by_label_name: Vec<(String, u64)>,
    /// Top label names by bytes of values over all series.
    pub memory_in_bytes_by_label_name: Vec<(String, u64)>,
    /// Top `name=value` pairs by series count.
    pub series_count_by_label_value_pair: Vec<(String, u64)>,
}

#[derive(Default)]
struct Stripe {
    /// Keyed with [`stripe_hash::StripeIdHash`] so creation-ordered ids sit in neighbouring buckets.
    series: HashMap<u32, SeriesHandle, stripe_hash::StripeIdHash>,
}

/// Series ids by label hash, for the hashes whose low bits pick this stripe.
///
/// Keyed by the hash's high 32 bits ([`hash_key`]): 8-byte entries instead
/// of 16 put a stripe's map of ~1k series in jemalloc's 10 KiB class instead
/// of 20 KiB (~13 bytes per series). Lookups compare labels anyway, so two
/// label sets whose keys meet (about one pair among a million series) only
/// cost a comparison: the second id goes to `extra`.
#[derive(Default)]
struct HashStripe {
    ids: FoldMap<u32, u32>,
    /// Further ids whose labels share a key.
    extra: FoldMap<u32, Vec<u32>>,
}

/// The key of a label hash in its [`HashStripe`] (the low bits chose the stripe).
#[inline]
fn hash_key(hash: u64) -> u32 {
    (hash >> 32) as u32
}

/// The head block.
pub struct Head {
    dir: PathBuf,
    opts: HeadOptions,
    min_valid: AtomicI64,
    stripes: Box<[RwLock<Stripe>]>,
    hashes: Box<[RwLock<HashStripe>]>,
    index: RwLock<Index>,
    /// The label strings of all series; each series holds ids into it.
    symbols: SymbolTable,
    next_id: AtomicU64,
    num_series: AtomicU64,
    num_samples: AtomicU64,
    min_time: AtomicI64,
    max_time: AtomicI64,
    disk: ChunkDisk,
    wal: OnceLock<Wal>,
    /// Rejection counters.
    pub counters: HeadCounters,
    truncate_lock: Mutex<()>,
    /// Emptied buffers of finished appenders, reused by the next ones so a
    /// batch of thousands of samples does not grow fresh vectors every time.
    spare_buffers: Mutex<Vec<appender::Buffers>>,
}

impl Head {
    /// Opens the head stored in `dir` (`wal/` and `chunks_head/`), loading
    /// head chunk files and replaying the WAL.
    pub fn open(dir: &Path, opts: HeadOptions) -> Result<(Head, ReplayStats), StorageError> {
        std::fs::create_dir_all(dir).map_err(|e| StorageError::Io {
            op: "create dir",
            path: dir.display().to_string(),
            source: e,
        })?;
        let (disk, loaded) = ChunkDisk::open(&dir.join("chunks_head"), opts.chunk_file_size, opts.chunk_file_max_age)?;
        let head = Head {
            dir: dir.to_path_buf(),
            min_valid: AtomicI64::new(opts.min_valid_time),
            stripes: (0..STRIPES).map(|_| RwLock::new(Stripe::default())).collect(),
            hashes: (0..STRIPES).map(|_| RwLock::new(HashStripe::default())).collect(),
            index: RwLock::new(Index::default()),
            symbols: SymbolTable::default(),
            next_id: AtomicU64::new(1),
            num_series: AtomicU64::new(0),
            num_samples: AtomicU64::new(0),
            min_time: AtomicI64::new(i64::MAX),
            max_time: AtomicI64::new(i64::MIN),
            disk,
            wal: OnceLock::new(),
            counters: HeadCounters::default(),
            truncate_lock: Mutex::new(()),
            spare_buffers: Mutex::new(Vec::new()),
            opts,
        };
        let mut by_series: FoldMap<u64, Vec<chunk_disk::LoadedChunk>> = FoldMap::default();
        let mut max_ref = 0u64;
        for c in loaded {
            max_ref = max_ref.max(c.series_ref);
            by_series.entry(c.series_ref).or_default().push(c);
        }
        let mut replay =
            Replay { head: &head, chunks: by_series, alias: FoldMap::default(), max: FoldMap::default(), err: None };
        let (wal, stats) = Wal::open(&dir.join("wal"), head.opts.wal.clone(), &mut |r| replay.record(r))?;
        if let Some(e) = replay.err {
            return Err(e);
        }
        drop(replay);
        head.next_id.fetch_max(max_ref + 1, Ordering::Relaxed);
        // Wal was just created; the cell is empty.
        let _ = head.wal.set(wal);
        let mint = head.min_valid.load(Ordering::Relaxed);
        head.gc(mint);
        head.recompute_time_range();
        Ok((head, stats))
    }

    /// The directory the head lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The options in force.
    pub fn options(&self) -> &HeadOptions {
        &self.opts
    }

    fn rules(&self) -> Rules {
        Rules {
            min_valid: self.min_valid.load(Ordering::Relaxed),
            ooo_window: self.opts.out_of_order_window,
            chunk_range: self.opts.chunk_range.max(1),
            samples_per_chunk: self.opts.samples_per_chunk.max(1),
        }
    }

    fn stripe(&self, id: u32) -> &RwLock<Stripe> {
        &self.stripes[id as usize % STRIPES]
    }

    /// Runs `f` on series `id` under its lock.
    fn with_series<R>(&self, id: u32, f: impl FnOnce(&mut MemSeries) -> R) -> Option<R> {
        let st = self.stripe(id).read();
        let s = st.series.get(&id)?;
        let mut g = s.lock();
        Some(f(&mut g))
    }

    fn all_ids(&self) -> Vec<u32> {
        let mut ids = Vec::with_capacity(self.num_series.load(Ordering::Relaxed) as usize);
        for st in self.stripes.iter() {
            ids.extend(st.read().series.keys().copied());
        }
        ids.sort_unstable();
        ids
    }

    /// The labels of `s`, built from its symbol ids.
    fn series_labels(&self, s: &MemSeries) -> Labels {
        self.symbols.read().labels(&s.labels)
    }

    fn find(&self, hash: u64, hs: &HashStripe, labels: &Labels) -> Option<u32> {
        let key = hash_key(hash);
        let first = hs.ids.get(&key).copied();
        let extra = hs.extra.get(&key).map(|v| v.as_slice()).unwrap_or(&[]);
        first
            .into_iter()
            .chain(extra.iter().copied())
            .find(|&id| self.with_series(id, |s| self.symbols.read().equals(&s.labels, labels)) == Some(true))
    }

    /// The id of the series with `labels`, created when new. `want` forces the
    /// id of a new series (WAL replay).
    fn get_or_create_with(&self, labels: &Labels, want: Option<u32>) -> Result<u32, AppendError> {
        let hash = labels.stable_hash();
        let hs_lock = &self.hashes[hash as usize % STRIPES];
        if let Some(id) = self.find(hash, &hs_lock.read(), labels) {
            return Ok(id);
        }
        let mut hs = hs_lock.write();
        if let Some(id) = self.find(hash, &hs, labels) {
            return Ok(id);
        }
        let id = match want {
            Some(id) => {
                self.next_id.fetch_max(id as u64 + 1, Ordering::Relaxed);
                id
            }
            None => {
                if self.num_series.load(Ordering::Relaxed) >= self.opts.max_series {
                    let e = AppendError::LimitExceeded(format!(
                        "head holds the maximum of {} series",
                        self.opts.max_series
                    ));
                    self.counters.count(&e);
                    return Err(e);
                }
                let id = self.next_id.fetch_add(1, Ordering::Relaxed);
                u32::try_from(id)
                    .map_err(|_| AppendError::LimitExceeded("series ids exhausted; restart after truncation".into()))?
            }
        };
        self.stripe(id).write().series.insert(id, Arc::new(Mutex::new(MemSeries::new(self.symbols.intern(labels)))));
        // Drop ids of series removed by truncation, then record this one.
        let key = hash_key(hash);
        let live = |i: &u32| self.with_series(*i, |_| ()).is_some();
        if let Some(old) = hs.ids.get(&key).copied() {
            if live(&old) {
                hs.extra.entry(key).or_default().push(id);
            } else {
                hs.ids.insert(key, id);
            }
        } else {
            hs.ids.insert(key, id);
        }
        if let Some(v) = hs.extra.get_mut(&key) {
            v.retain(live);
        }
        drop(hs);
        self.index.write().add(id, labels);
        self.num_series.fetch_add(1, Ordering::Relaxed);
        Ok(id)
    }

    fn get_or_create(&self, labels: &Labels) -> Result<u32, AppendError> {
        if labels.is_empty() {
            return Err(AppendError::InvalidLabels("empty label set".into()));
        }
        self.get_or_create_with(labels, None)
    }

    /// Looks up the reference of an existing series.
    pub fn series_ref(&self, labels: &Labels) -> Option<SeriesRef> {
        let hash = labels.stable_hash();
        let hs = self.hashes[hash as usize % STRIPES].read();
        self.find(hash, &hs, labels).map(|id| SeriesRef(id as u64))
    }

    fn note_stored(&self, n: u64, lo: i64, hi: i64) {
        if n > 0 {
            self.num_samples.fetch_add(n, Ordering::Relaxed);
            self.min_time.fetch_min(lo, Ordering::Relaxed);
            self.max_time.fetch_max(hi, Ordering::Relaxed);
        }
    }

    /// Oldest sample time in the head (`i64::MAX` when empty).
    pub fn min_time(&self) -> i64 {
        self.min_time.load(Ordering::Relaxed)
    }

    /// Newest sample time in the head (`i64::MIN` when empty).
    pub fn max_time(&self) -> i64 {
        self.max_time.load(Ordering::Relaxed)
    }

    /// Samples older than this are rejected as out of bounds.
    pub fn min_valid_time(&self) -> i64 {
        self.min_valid.load(Ordering::Relaxed)
    }

    /// A new appender (same as [`Appendable::appender`], with the concrete type).
    pub fn head_appender(&self) -> HeadAppender<'_> {
        HeadAppender::new(self)
    }

    /// Drops every sample older than `mint` (after a block covering it was
    /// persisted), removes series left empty, deletes head chunk files that
    /// only hold older data, and checkpoints the WAL.
    pub fn truncate(&self, mint: i64) -> Result<(), StorageError> {
        let _one = self.truncate_lock.lock();
        self.min_valid.fetch_max(mint, Ordering::Relaxed);
        self.gc(mint);
        self.disk.truncate(mint)?;
        self.recompute_time_range();
        if let Some(wal) = self.wal.get() {
            let keep = |r: SeriesRef| u32::try_from(r.0).ok().and_then(|id| self.with_series(id, |_| ())).is_some();
            let st = wal.checkpoint(mint, &keep)?;
            tracing::info!(mint, ?st, "head truncated, WAL checkpointed");
        }
        Ok(())
    }

    /// Drops data before `mint` and removes empty series without pending appends.
    fn gc(&self, mint: i64) {
        let mut removed: Vec<(u32, SeriesLabels)> = Vec::new();
        let (mut chunks, mut samples) = (0u64, 0u64);
        for st in self.stripes.iter() {
            let mut st = st.write();
            st.series.retain(|&id, s| {
                // Appenders hold handles only while `pending > 0`, which keeps the series here.
                let mut s = s.lock();
                let (c, n) = s.truncate(mint, &self.disk);
                chunks += c;
                samples += n;
                if s.is_empty() && s.pending == 0 {
                    // Handles cached outside the head (remote_write's series
                    // cache) see this and fail instead of appending here;
                    // they keep only the emptied struct alive, not the labels
                    // (whose symbols are released below).
                    s.removed = true;
                    removed.push((id, std::mem::take(&mut s.labels)));
                    false
                } else {
                    true
                }
            });
        }
        let _ = chunks;
        self.num_samples.fetch_sub(samples.min(self.num_samples.load(Ordering::Relaxed)), Ordering::Relaxed);
        if removed.is_empty() {
            return;
        }
        let removed = self.symbols.release(removed);
        for (id, l) in &removed {
            let hash = l.stable_hash();
            let mut hs = self.hashes[hash as usize % STRIPES].write();
            let key = hash_key(hash);
            if hs.ids.get(&key) == Some(id) {
                hs.ids.remove(&key);
                if let Some(mut more) = hs.extra.remove(&key) {
                    if let Some(next) = more.pop() {
                        hs.ids.insert(key, next);
                    }
                    if !more.is_empty() {
                        hs.extra.insert(key, more);
                    }
                }
            } else if let Some(v) = hs.extra.get_mut(&key) {
                v.retain(|x| x != id);
                if v.is_empty() {
                    hs.extra.remove(&key);
                }
            }
        }
        self.index.write().remove(&removed);
        self.num_series.fetch_sub(removed.len() as u64, Ordering::Relaxed);
    }

    fn recompute_time_range(&self) {
        let (mut lo, mut hi) = (i64::MAX, i64::MIN);
        for st in self.stripes.iter() {
            for s in st.read().series.values() {
                if let Some((a, b)) = s.lock().time_range() {
                    lo = lo.min(a);
                    hi = hi.max(b);
                }
            }
        }
        self.min_time.store(lo, Ordering::Relaxed);
        self.max_time.store(hi, Ordering::Relaxed);
    }

    /// Statistics for `/api/v1/status/tsdb`, each top list limited to `top` entries.
    pub fn stats(&self, top: usize) -> HeadStats {
        let mut chunks = 0u64;
        for st in self.stripes.iter() {
            for s in st.read().series.values() {
                chunks += s.lock().num_chunks() as u64;
            }
        }
        let idx = self.index.read();
        let top_n = |mut v: Vec<(String, u64)>| {
            v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            v.truncate(top);
            v
        };
        let names = idx.name_stats();
        HeadStats {
            num_series: self.num_series.load(Ordering::Relaxed),
            num_samples: self.num_samples.load(Ordering::Relaxed),
            num_chunks: chunks,
            min_time: self.min_time(),
            max_time: self.max_time(),
            series_count_by_metric_name: top_n(idx.metric_counts()),
            label_value_count_by_label_name: top_n(names.iter().map(|(n, v, _, _)| (n.clone(), *v)).collect()),
            memory_in_bytes_by_label_name: top_n(names.iter().map(|(n, _, _, b)| (n.clone(), *b)).collect()),
            series_count_by_label_value_pair: top_n(idx.pair_counts()),
        }
    }

    /// Approximate heap bytes of series data and index (for size reports).
    pub fn heap_estimate(&self) -> usize {
        let mut n = 0;
        for st in self.stripes.iter() {
            for s in st.read().series.values() {
                n += s.lock().heap_size() + std::mem::size_of::<Mutex<MemSeries>>() + 32;
            }
        }
        n + self.index.read().heap_size() + self.symbols.heap_size() + self.disk.buffered_bytes()
    }

    /// Chunk data bytes: (written to head chunk files since open, in open chunks now).
    pub fn chunk_bytes(&self) -> (u64, u64) {
        let mut open = 0u64;
        for st in self.stripes.iter() {
            for s in st.read().series.values() {
                open += s.lock().head.as_ref().map_or(0, |h| h.app.bytes().len() as u64);
            }
        }
        (self.disk.written_bytes(), open)
    }

    /// Writes buffered head chunk bytes to their file (not needed for
    /// durability, the WAL has everything; shortens the next start-up).
    pub fn flush(&self) -> Result<(), StorageError> {
        self.disk.flush_active()
    }

    /// Number of head chunk files.
    pub fn num_chunk_files(&self) -> usize {
        self.disk.num_files()
    }
}

impl Appendable for Head {
    fn appender(&self) -> Box<dyn Appender + '_> {
        Box::new(HeadAppender::new(self))
    }
}

/// State of a WAL replay into the head.
struct Replay<'a> {
    head: &'a Head,
    /// Chunks found in head chunk files, by series ref, waiting for their series.
    chunks: FoldMap<u64, Vec<chunk_disk::LoadedChunk>>,
    /// WAL refs that name a series already created under another id.
    alias: FoldMap<u32, u32>,
    /// Newest timestamp seen per series in WAL order: decides in-order vs
    /// out-of-order exactly as the original appends did.
    max: FoldMap<u32, i64>,
    err: Option<StorageError>,
}

impl Replay<'_> {
    fn record(&mut self, r: RecordRef<'_>) {
        let head = self.head;
        match r {
            RecordRef::Series(list) => {
                for (r, labels) in list {
                    let Ok(want) = u32::try_from(r.0) else {
                        tracing::warn!(series = r.0, "WAL series ref out of range; skipped");
                        continue;
                    };
                    match head.get_or_create_with(labels, Some(want)) {
                        Ok(id) if id == want => {
                            let chunks = self.chunks.remove(&(want as u64)).unwrap_or_default();
                            head.with_series(id, |s| {
                                s.logged = true;
                                for c in &chunks {
                                    if c.mint > s.mmapped_maxt || s.mmapped.is_empty() {
                                        s.push_mmapped(MmapMeta { r: c.r, mint: c.mint });
                                        s.mmapped_maxt = c.maxt;
                                    }
                                }
                            });
                            let n: u64 = chunks.iter().map(|c| c.samples as u64).sum();
                            head.num_samples.fetch_add(n, Ordering::Relaxed);
                        }
                        Ok(id) => {
                            self.alias.insert(want, id);
                        }
                        Err(e) => tracing::warn!(series = %labels, error = %e, "WAL series not restored"),
                    }
                }
            }
            RecordRef::Samples(list) => {
                let rules = head.rules();
                let mut stored = 0;
                let (mut lo, mut hi) = (i64::MAX, i64::MIN);
                for s in list {
                    let Ok(id) = u32::try_from(s.r.0) else { continue };
                    let id = self.alias.get(&id).copied().unwrap_or(id);
                    let prev = self.max.entry(id).or_insert(i64::MIN);
                    let in_order = s.t > *prev;
                    if in_order {
                        *prev = s.t;
                    }
                    if s.t < rules.min_valid {
                        continue;
                    }
                    let res = head.with_series(id, |ms| {
                        if in_order {
                            if s.t <= ms.mmapped_maxt {
                                // Already in a mapped chunk.
                                return Ok(false);
                            }
                            ms.store(id as u64, s.t, s.v, Accept::InOrder, &rules, &head.disk).map(|_| true)
                        } else {
                            match ms.check(s.t, s.v, &rules, &head.disk) {
                                Ok(Accept::OutOfOrder) => {
                                    ms.store(id as u64, s.t, s.v, Accept::OutOfOrder, &rules, &head.disk).map(|_| true)
                                }
                                _ => Ok(false),
                            }
                        }
                    });
                    match res {
                        Some(Ok(true)) => {
                            stored += 1;
                            lo = lo.min(s.t);
                            hi = hi.max(s.t);
                        }
                        Some(Ok(false)) | None => {}
                        Some(Err(e)) => {
                            if self.err.is_none() {
                                self.err = Some(e);
                            }
                        }
                    }
                }
                head.note_stored(stored, lo, hi);
            }
            RecordRef::MinTime(t) => {
                head.min_valid.fetch_max(t, Ordering::Relaxed);
            }
        }
    }
}

#[cfg(test)]
mod tests;
