//! The database the rest of promlite uses: the head plus persisted blocks.
//!
//! [`Db`] appends through the head and answers queries from the head and
//! every block overlapping the query, merged transparently (same labels in
//! several places are joined in time order, duplicate timestamps kept once).
//! [`Db::maintain`], called periodically by the server, cuts the head's
//! oldest block range into a block, compacts adjacent small blocks into
//! larger ones and applies retention by time and size.
//!
//! ```text
//! <dir>/
//!   lock                 exclusive lock while a Db is open
//!   wal/, chunks_head/   the head (tsdb::head)
//!   <ULID>/              blocks (tsdb::block)
//!   <ULID>.tmp/          a block being written; removed at open
//! ```

mod guard;
mod merge;
mod options;
mod plan;

use std::collections::HashSet;
use std::fs::File;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

pub use options::{DbOptions, DAY_MS, HOUR_MS};

use crate::model::{Labels, Matcher, Sample};
use crate::storage::{
    series_only, visit_selected, walk_as_one_batch, Appendable, Appender, Queryable, Series, StorageError, WalkEvent,
    WalkPart,
};
use crate::tsdb::block::{write_block, Block, BlockError, BlockId, BlockMeta, TMP_SUFFIX};
use crate::tsdb::head::{Head, HeadStats};
use crate::tsdb::wal::ReplayStats;
use guard::AppendGuard;
use merge::{merge_series, merge_sorted, MergeQueryable};

/// Suffix of a block directory being deleted.
const DELETE_SUFFIX: &str = ".tmp-for-deletion";

/// A database that cannot be opened or maintained.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// Another process (or Db) holds the directory's lock file.
    #[error("data directory {path} is locked by another promlite")]
    Locked {
        /// The lock file.
        path: String,
    },
    /// An I/O error on a named path.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file or directory.
        path: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Writing or opening a block failed.
    #[error(transparent)]
    Block(#[from] BlockError),
    /// The head failed.
    #[error("head: {0}")]
    Head(#[from] StorageError),
}

impl DbError {
    fn io(op: &'static str, path: &Path, source: std::io::Error) -> Self {
        DbError::Io { op, path: path.display().to_string(), source }
    }
}

/// What the database needs from its head (implemented by `tsdb::head::Head`).
pub(crate) trait HeadBackend: Appendable + Queryable {
    /// Oldest sample time, `None` when empty.
    fn min_time(&self) -> Option<i64>;
    /// Newest sample time, `None` when empty.
    fn max_time(&self) -> Option<i64>;
    /// Drops every sample older than `mint` (now persisted in a block).
    fn truncate(&self, mint: i64) -> Result<(), StorageError>;
    /// Oldest time the head answers for: data below it lives in blocks
    /// (the head may keep a few older samples in partly truncated chunks).
    fn min_valid_time(&self) -> i64 {
        i64::MIN
    }
    /// Counts and top-10 lists for [`DbStats`].
    fn stats(&self) -> HeadStats;
}

impl HeadBackend for Head {
    fn min_time(&self) -> Option<i64> {
        // `truncate` keeps a chunk that merely might reach the truncation
        // time, so the head's own minimum can lag behind its valid minimum.
        Some(Head::min_time(self)).filter(|&t| t != i64::MAX).map(|t| t.max(Head::min_valid_time(self)))
    }
    fn min_valid_time(&self) -> i64 {
        Head::min_valid_time(self)
    }
    fn max_time(&self) -> Option<i64> {
        Some(Head::max_time(self)).filter(|&t| t != i64::MIN)
    }
    fn truncate(&self, mint: i64) -> Result<(), StorageError> {
        Head::truncate(self, mint)
    }
    fn stats(&self) -> HeadStats {
        Head::stats(self, 10)
    }
}

/// A shared head, so the Db can keep the concrete type too.
impl<H: HeadBackend + ?Sized> HeadBackend for Arc<H> {
    fn min_time(&self) -> Option<i64> {
        (**self).min_time()
    }
    fn max_time(&self) -> Option<i64> {
        (**self).max_time()
    }
    fn truncate(&self, mint: i64) -> Result<(), StorageError> {
        (**self).truncate(mint)
    }
    fn min_valid_time(&self) -> i64 {
        (**self).min_valid_time()
    }
    fn stats(&self) -> HeadStats {
        (**self).stats()
    }
}

/// A block directory that failed to open and is being ignored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedBlock {
    /// The directory.
    pub dir: PathBuf,
    /// Why (names file and offset).
    pub error: String,
}

/// Statistics for `/api/v1/status/tsdb`.
#[derive(Debug, Clone, Default)]
pub struct DbStats {
    /// The head's counts and top-10 lists (`min_time` is `i64::MAX` and
    /// `max_time` `i64::MIN` when the head is empty).
    pub head: HeadStats,
    /// Number of open blocks.
    pub num_blocks: usize,
    /// Series summed over blocks (a series in two blocks counts twice).
    pub block_series: u64,
    /// Samples in blocks.
    pub block_samples: u64,
    /// Chunks in blocks.
    pub block_chunks: u64,
    /// Bytes of block files on disk.
    pub block_bytes: u64,
    /// Oldest time covered by blocks or head.
    pub min_time: Option<i64>,
    /// Newest sample time (head) or block end.
    pub max_time: Option<i64>,
    /// Distinct values per label name over head and blocks, most first (at most 10).
    pub label_value_count_by_name: Vec<(String, u64)>,
    /// Metadata of every open block, oldest first.
    pub blocks: Vec<BlockMeta>,
    /// Blocks ignored because they failed to open.
    pub skipped_blocks: Vec<SkippedBlock>,
}

/// What one [`Db::maintain`] call did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MaintainReport {
    /// Blocks cut from the head.
    pub head_blocks: usize,
    /// Compactions performed.
    pub compactions: usize,
    /// Blocks deleted by retention.
    pub deleted: usize,
}

/// The time-series database: head + blocks.
pub struct Db {
    dir: PathBuf,
    opts: DbOptions,
    head: Box<dyn HeadBackend>,
    /// The same head with its concrete type (absent only in unit tests that
    /// use an in-memory head).
    real_head: Option<(Arc<Head>, ReplayStats)>,
    /// Open blocks sorted by `min_time`; replaced as a whole so queries take
    /// a cheap snapshot.
    blocks: RwLock<Arc<Vec<Arc<Block>>>>,
    skipped: Mutex<Vec<SkippedBlock>>,
    /// One maintenance pass at a time.
    maintenance: Mutex<()>,
    /// Refuses appends into a range being cut and waits for open batches.
    appends: AppendGuard,
    /// Held (and locked) for the Db's lifetime.
    _lock: File,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db").field("dir", &self.dir).field("blocks", &self.blocks.read().len()).finish_non_exhaustive()
    }
}

/// How long [`take_lock`] keeps trying a lock that is held.
///
/// A lock is tied to an open file, and a child process forked by any thread
/// of this process shares that file until it execs. So a Db just dropped can
/// leave its lock held for the moment a concurrent spawn takes; a promlite
/// that really holds the directory holds it far longer than this.
const LOCK_GRACE: std::time::Duration = std::time::Duration::from_millis(500);

/// Takes the exclusive lock on `<dir>/lock`, waiting up to [`LOCK_GRACE`]
/// while it is held.
fn take_lock(dir: &Path) -> Result<File, DbError> {
    let path = dir.join("lock");
    let f = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| DbError::io("open", &path, e))?;
    let give_up = std::time::Instant::now() + LOCK_GRACE;
    loop {
        match f.try_lock() {
            Ok(()) => return Ok(f),
            Err(std::fs::TryLockError::WouldBlock) if std::time::Instant::now() < give_up => {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Err(std::fs::TryLockError::WouldBlock) => return Err(DbError::Locked { path: path.display().to_string() }),
            Err(std::fs::TryLockError::Error(e)) => return Err(DbError::io("lock", &path, e)),
        }
    }
}

impl Db {
    /// Opens (creating if needed) the database in `dir`: takes the lock
    /// file, opens every block (damaged ones are skipped and reported in
    /// [`Db::skipped_blocks`]), then opens the head and replays its WAL.
    /// `head` options are taken from `opts.head`, with the chunk range, the
    /// out-of-order window and the oldest valid time set from `opts` and the
    /// blocks.
    pub fn open(dir: &Path, opts: DbOptions) -> Result<Db, DbError> {
        let mut real = None;
        let mut db = Db::open_with(dir, opts, |dir, opts, blocks_end| {
            let mut ho = opts.head.clone();
            ho.chunk_range = opts.block_range;
            ho.out_of_order_window = opts.out_of_order_window;
            if let Some(end) = blocks_end {
                ho.min_valid_time = ho.min_valid_time.max(end);
            }
            let (head, replay) = Head::open(dir, ho)?;
            let head = Arc::new(head);
            real = Some((head.clone(), replay));
            Ok(Box::new(head) as Box<dyn HeadBackend>)
        })?;
        db.real_head = real;
        Ok(db)
    }

    /// Opens the database in `dir` with the head made by `open_head`
    /// (called after the lock is taken and blocks are loaded, with the end
    /// of the newest block).
    pub(crate) fn open_with(
        dir: &Path,
        opts: DbOptions,
        open_head: impl FnOnce(&Path, &DbOptions, Option<i64>) -> Result<Box<dyn HeadBackend>, DbError>,
    ) -> Result<Db, DbError> {
        std::fs::create_dir_all(dir).map_err(|e| DbError::io("create directory", dir, e))?;
        let lock = take_lock(dir)?;
        let (blocks, skipped) = load_blocks(dir)?;
        let blocks_end = blocks.iter().map(|b| b.meta().max_time).max();
        let head = open_head(dir, &opts, blocks_end)?;
        // Data already persisted in a block (a crash between writing it and
        // truncating the head) is dropped from the head.
        if let Some(end) = blocks.iter().map(|b| b.meta().max_time).max() {
            if head.min_time().is_some_and(|m| m < end) {
                head.truncate(end)?;
            }
        }
        Ok(Db {
            dir: dir.to_path_buf(),
            opts,
            head,
            real_head: None,
            blocks: RwLock::new(Arc::new(blocks)),
            skipped: Mutex::new(skipped),
            maintenance: Mutex::new(()),
            appends: AppendGuard::new(),
            _lock: lock,
        })
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The options in force.
    pub fn options(&self) -> &DbOptions {
        &self.opts
    }

    /// The head (for its counters and flush); `None` only for the in-memory
    /// heads of unit tests.
    pub fn head(&self) -> Option<&Head> {
        self.real_head.as_ref().map(|(h, _)| &**h)
    }

    /// What the WAL replay at open found.
    pub fn replay_stats(&self) -> Option<&ReplayStats> {
        self.real_head.as_ref().map(|(_, r)| r)
    }

    /// A snapshot of the open blocks, oldest first.
    pub fn blocks(&self) -> Arc<Vec<Arc<Block>>> {
        self.blocks.read().clone()
    }

    /// Blocks ignored at open because they are damaged.
    pub fn skipped_blocks(&self) -> Vec<SkippedBlock> {
        self.skipped.lock().clone()
    }

    /// One maintenance pass: cut blocks from the head while it spans more
    /// than 1.5 block ranges, compact blocks as planned, apply retention.
    pub fn maintain(&self) -> Result<MaintainReport, DbError> {
        let _one = self.maintenance.lock();
        let mut report = MaintainReport { head_blocks: self.cut_head()?, ..Default::default() };
        // Each compaction removes at least one block, so this ends; the cap
        // only bounds one pass.
        while report.compactions < 64 && self.compact_once()? {
            report.compactions += 1;
        }
        report.deleted = self.apply_retention()?;
        Ok(report)
    }

    fn cut_head(&self) -> Result<usize, DbError> {
        let range = self.opts.block_range.max(1);
        let mut cut = 0;
        while let (Some(hmin), Some(hmax)) = (self.head.min_time(), self.head.max_time()) {
            if hmax.saturating_sub(hmin) <= range / 2 * 3 {
                break;
            }
            // Like Prometheus's compactHead: from the head's oldest sample to
            // the end of that sample's aligned block range.
            let maxt = hmin.div_euclid(range) * range + range;
            // Nothing may enter [hmin, maxt) once it is being persisted.
            if !self.appends.raise_and_wait(maxt, std::time::Duration::from_secs(10)) {
                tracing::warn!(maxt, "an append batch holding older samples stayed open; cutting later");
                break;
            }
            if let Some((dir, _)) = write_block(&self.dir, &*self.head, hmin, maxt, &[], &self.opts.write)? {
                let block = Arc::new(Block::open(&dir)?);
                self.replace_blocks(&[], Some(block));
                cut += 1;
            }
            self.head.truncate(maxt)?;
            if self.head.min_time().is_some_and(|m| m <= hmin) {
                tracing::warn!(maxt, "head did not advance after truncation; stopping this cut");
                break;
            }
        }
        Ok(cut)
    }

    fn compact_once(&self) -> Result<bool, DbError> {
        let blocks = self.blocks();
        let metas: Vec<BlockMeta> = blocks.iter().map(|b| b.meta().clone()).collect();
        let ranges = plan::block_ranges(self.opts.block_range, self.opts.effective_max_block_duration());
        let plan = plan::plan_compaction(&metas, &ranges);
        if plan.len() < 2 {
            return Ok(false);
        }
        let parents: Vec<&Arc<Block>> = blocks.iter().filter(|b| plan.contains(&b.meta().ulid)).collect();
        let mint = parents.iter().map(|b| b.meta().min_time).min().unwrap_or(0);
        let maxt = parents.iter().map(|b| b.meta().max_time).max().unwrap_or(0);
        let parent_metas: Vec<BlockMeta> = parents.iter().map(|b| b.meta().clone()).collect();
        let src = MergeQueryable { sources: parents.iter().map(|b| &***b as &dyn Queryable).collect() };
        let new = match write_block(&self.dir, &src, mint, maxt, &parent_metas, &self.opts.write)? {
            Some((dir, _)) => Some(Arc::new(Block::open(&dir)?)),
            None => None,
        };
        tracing::info!(parents = ?plan, mint, maxt, "compacted blocks");
        self.replace_blocks(&plan, new);
        for b in parents {
            delete_block_dir(b.dir());
        }
        Ok(true)
    }

    fn apply_retention(&self) -> Result<usize, DbError> {
        let blocks = self.blocks();
        let mut newest_first: Vec<&Arc<Block>> = blocks.iter().collect();
        newest_first.sort_by_key(|b| std::cmp::Reverse(b.meta().max_time));
        let metas: Vec<&BlockMeta> = newest_first.iter().map(|b| b.meta()).collect();
        let mut doomed: HashSet<BlockId> =
            plan::beyond_time_retention(&metas, self.opts.retention_time).into_iter().collect();
        if self.opts.retention_size > 0 {
            let sized: Vec<(BlockId, u64)> = newest_first.iter().map(|b| (b.meta().ulid, b.size_bytes())).collect();
            doomed.extend(plan::beyond_size_retention(&sized, self.head_disk_bytes(), self.opts.retention_size));
        }
        if doomed.is_empty() {
            return Ok(0);
        }
        let ids: Vec<BlockId> = doomed.into_iter().collect();
        self.replace_blocks(&ids, None);
        for b in blocks.iter().filter(|b| ids.contains(&b.meta().ulid)) {
            tracing::info!(block = %b.meta().ulid, "deleting block beyond retention");
            delete_block_dir(b.dir());
        }
        Ok(ids.len())
    }

    /// Swaps in a new block list without `remove` and with `add`.
    fn replace_blocks(&self, remove: &[BlockId], add: Option<Arc<Block>>) {
        let mut w = self.blocks.write();
        let mut v: Vec<Arc<Block>> = w.iter().filter(|b| !remove.contains(&b.meta().ulid)).cloned().collect();
        v.extend(add);
        v.sort_by_key(|b| (b.meta().min_time, b.meta().ulid));
        *w = Arc::new(v);
    }

    /// Bytes of everything in the directory that is not a block (WAL, head chunks).
    fn head_disk_bytes(&self) -> u64 {
        let Ok(rd) = std::fs::read_dir(&self.dir) else { return 0 };
        rd.flatten()
            .filter(|e| e.file_name().to_str().is_none_or(|n| n.parse::<BlockId>().is_err() && !n.contains(TMP_SUFFIX)))
            .map(|e| disk_usage(&e.path()))
            .sum()
    }

    /// Statistics over head and blocks.
    pub fn stats(&self) -> Result<DbStats, StorageError> {
        let blocks = self.blocks();
        let head = self.head.stats();
        let mut s = DbStats { num_blocks: blocks.len(), skipped_blocks: self.skipped_blocks(), ..Default::default() };
        for b in blocks.iter() {
            let m = b.meta();
            s.block_series += m.stats.num_series;
            s.block_samples += m.stats.num_samples;
            s.block_chunks += m.stats.num_chunks;
            s.block_bytes += b.size_bytes();
            s.blocks.push(m.clone());
        }
        let head_range = self.head.min_time().zip(self.head.max_time());
        s.min_time = blocks.iter().map(|b| b.meta().min_time).chain(head_range.map(|r| r.0)).min();
        s.max_time = head_range.map(|r| r.1).or_else(|| blocks.iter().map(|b| b.meta().max_time - 1).max());
        let mut counts: Vec<(String, u64)> = Vec::new();
        for name in self.label_names(i64::MIN, i64::MAX, &[])? {
            let n = self.label_values(&name, i64::MIN, i64::MAX, &[])?.len() as u64;
            counts.push((name, n));
        }
        counts.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        counts.truncate(10);
        s.label_value_count_by_name = counts;
        s.head = head;
        Ok(s)
    }

    /// The start of the part of `[mint, maxt]` the head answers for, if any:
    /// older data is in blocks.
    fn head_range(&self, mint: i64, maxt: i64) -> Option<i64> {
        let hmint = mint.max(self.head.min_valid_time());
        (hmint <= maxt).then_some(hmint)
    }

    fn overlapping_blocks(&self, mint: i64, maxt: i64) -> Vec<Arc<Block>> {
        self.blocks().iter().filter(|b| b.meta().overlaps(mint, maxt)).cloned().collect()
    }
}

impl Appendable for Db {
    fn appender(&self) -> Box<dyn Appender + '_> {
        Box::new(self.appends.wrap(self.head.appender()))
    }
}

impl Queryable for Db {
    fn select(&self, mint: i64, maxt: i64, matchers: &[Matcher]) -> Result<Vec<Series>, StorageError> {
        let mut lists = Vec::new();
        for b in self.overlapping_blocks(mint, maxt) {
            lists.push(b.select(mint, maxt, matchers)?);
        }
        if let Some(hmint) = self.head_range(mint, maxt) {
            lists.push(self.head.select(hmint, maxt, matchers)?);
        }
        Ok(merge_series(lists))
    }

    /// Head-only ranges (the usual case for rules and recent queries) go
    /// straight to the head's unsorted, allocation-free walk; ranges reaching
    /// blocks take the merged, label-sorted selection.
    fn for_each_series(
        &self,
        mint: i64,
        maxt: i64,
        matchers: &[Matcher],
        f: &mut dyn FnMut(&Labels, &[Sample]) -> ControlFlow<()>,
    ) -> Result<(), StorageError> {
        self.for_each_series_part(mint, maxt, matchers, WalkPart::WHOLE, &mut series_only(f))
    }

    /// Head-only ranges split as the head splits them; ranges reaching
    /// blocks are not split (the part that claims batch 0 takes the merged
    /// selection).
    fn for_each_series_part(
        &self,
        mint: i64,
        maxt: i64,
        matchers: &[Matcher],
        part: WalkPart<'_>,
        f: &mut dyn FnMut(usize, WalkEvent<'_>) -> ControlFlow<()>,
    ) -> Result<(), StorageError> {
        if self.overlapping_blocks(mint, maxt).is_empty() {
            return match self.head_range(mint, maxt) {
                Some(hmint) => self.head.for_each_series_part(hmint, maxt, matchers, part, f),
                None => walk_as_one_batch(part, f, |_| Ok(())),
            };
        }
        walk_as_one_batch(part, f, |f| {
            visit_selected(self.select(mint, maxt, matchers)?, f);
            Ok(())
        })
    }

    fn label_names(&self, mint: i64, maxt: i64, matchers: &[Matcher]) -> Result<Vec<String>, StorageError> {
        let blocks = self.overlapping_blocks(mint, maxt);
        let head = self.head_range(mint, maxt).map(|hmint| self.head.label_names(hmint, maxt, matchers));
        merge_sorted(blocks.iter().map(|b| b.label_names(mint, maxt, matchers)).chain(head))
    }

    fn label_values(
        &self,
        name: &str,
        mint: i64,
        maxt: i64,
        matchers: &[Matcher],
    ) -> Result<Vec<String>, StorageError> {
        let blocks = self.overlapping_blocks(mint, maxt);
        let head = self.head_range(mint, maxt).map(|hmint| self.head.label_values(name, hmint, maxt, matchers));
        merge_sorted(blocks.iter().map(|b| b.label_values(name, mint, maxt, matchers)).chain(head))
    }
}

/// Opens every block directory under `dir`: removes leftovers of
/// interrupted writes and deletions, skips (and reports) damaged blocks, and
/// deletes blocks already merged into a compacted child.
fn load_blocks(dir: &Path) -> Result<(Vec<Arc<Block>>, Vec<SkippedBlock>), DbError> {
    let rd = std::fs::read_dir(dir).map_err(|e| DbError::io("read directory", dir, e))?;
    let mut blocks = Vec::new();
    let mut skipped = Vec::new();
    for e in rd {
        let e = e.map_err(|e| DbError::io("read directory", dir, e))?;
        let path = e.path();
        let Some(name) = e.file_name().to_str().map(str::to_string) else { continue };
        if !path.is_dir() {
            continue;
        }
        if name.ends_with(TMP_SUFFIX) || name.ends_with(DELETE_SUFFIX) {
            tracing::info!(dir = %path.display(), "removing leftover of an interrupted block write or delete");
            let _ = std::fs::remove_dir_all(&path);
            continue;
        }
        if name.parse::<BlockId>().is_err() {
            continue;
        }
        match Block::open(&path) {
            Ok(b) => blocks.push(Arc::new(b)),
            Err(err) => {
                tracing::error!(dir = %path.display(), error = %err, "skipping damaged block");
                skipped.push(SkippedBlock { dir: path, error: err.to_string() });
            }
        }
    }
    let merged: HashSet<BlockId> =
        blocks.iter().flat_map(|b| b.meta().compaction.parents.iter().map(|p| p.ulid)).collect();
    blocks.retain(|b| {
        if merged.contains(&b.meta().ulid) {
            tracing::info!(block = %b.meta().ulid, "deleting block already compacted into another");
            delete_block_dir(b.dir());
            false
        } else {
            true
        }
    });
    blocks.sort_by_key(|b| (b.meta().min_time, b.meta().ulid));
    Ok((blocks, skipped))
}

/// Deletes a block directory: renamed first so a crash midway leaves a
/// `.tmp-for-deletion` directory (removed at open), never a half block.
/// Open maps of its files stay valid: unlinking does not truncate.
fn delete_block_dir(dir: &Path) {
    let mut doomed = dir.as_os_str().to_owned();
    doomed.push(DELETE_SUFFIX);
    let doomed = PathBuf::from(doomed);
    let target = match std::fs::rename(dir, &doomed) {
        Ok(()) => doomed,
        Err(_) => dir.to_path_buf(),
    };
    if let Err(e) = std::fs::remove_dir_all(&target) {
        tracing::warn!(dir = %target.display(), error = %e, "could not delete block directory");
    }
}

fn disk_usage(p: &Path) -> u64 {
    match std::fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => {
            std::fs::read_dir(p).map(|rd| rd.flatten().map(|e| disk_usage(&e.path())).sum()).unwrap_or(0)
        }
        Ok(m) => m.len(),
        Err(_) => 0,
    }
}

#[cfg(test)]
mod tests;
