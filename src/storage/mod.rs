//! The seam between the stages: appending samples and selecting series.
//!
//! Ingest, scrape and rules write through [`Appendable`]; PromQL, the HTTP API
//! and rules read through [`Queryable`]. The TSDB (`crate::tsdb`) implements
//! both; [`memory::MemStorage`] is a small in-memory implementation for unit
//! tests of the stages above storage.

pub mod memory;

use std::borrow::Cow;
use std::fmt;
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use crate::model::{Labels, Matcher, Sample};

/// Identifies a series inside one storage instance, valid while it runs.
///
/// Returned by [`Appender::append`] so later appends can skip the label lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct SeriesRef(pub u64);

impl fmt::Display for SeriesRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A storage's handle on one series, for callers that cache series between
/// batches (the remote_write receiver's series cache): besides the
/// [`SeriesRef`] it may carry the storage's own series object, so appending
/// through [`Appender::append_handle`] skips the storage's reference lookup.
///
/// A handle stays valid as long as its series does. Once the storage drops
/// the series (head truncation), `append_handle` fails with
/// [`AppendError::UnknownRef`] instead of storing into the dropped series;
/// the caller then forgets the handle and appends by labels again.
#[derive(Clone)]
pub struct SeriesHandle {
    r: SeriesRef,
    obj: Option<std::sync::Arc<dyn std::any::Any + Send + Sync>>,
}

impl SeriesHandle {
    /// A handle that only holds the reference (what storages without a
    /// faster path hand out).
    pub fn from_ref(r: SeriesRef) -> Self {
        SeriesHandle { r, obj: None }
    }

    /// A handle carrying the storage's own series object `obj`.
    pub fn with_object(r: SeriesRef, obj: std::sync::Arc<dyn std::any::Any + Send + Sync>) -> Self {
        SeriesHandle { r, obj: Some(obj) }
    }

    /// The series reference.
    pub fn series_ref(&self) -> SeriesRef {
        self.r
    }

    /// The storage's series object, if it gave one.
    pub fn object(&self) -> Option<&std::sync::Arc<dyn std::any::Any + Send + Sync>> {
        self.obj.as_ref()
    }

    /// Asks the CPU to start loading the storage's series object into cache
    /// (a hint; nothing without an object).
    #[inline]
    pub fn prefetch(&self) {
        if let Some(o) = &self.obj {
            crate::prefetch::prefetch(std::sync::Arc::as_ptr(o));
        }
    }
}

impl fmt::Debug for SeriesHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SeriesHandle").field("r", &self.r).field("has_object", &self.obj.is_some()).finish()
    }
}

/// Why one sample was not accepted. These are the caller's fault: a
/// remote_write sender gets a 400 and must not retry.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AppendError {
    /// Older than the newest sample of its series, and outside any out-of-order window.
    #[error("out of order sample: timestamp {t} is before the series' latest {latest}")]
    OutOfOrder {
        /// The rejected timestamp.
        t: i64,
        /// The series' newest timestamp.
        latest: i64,
    },
    /// Older than the oldest time the head still accepts.
    #[error("out of bounds: timestamp {t} is before the head's minimum {min_valid}")]
    OutOfBounds {
        /// The rejected timestamp.
        t: i64,
        /// The oldest accepted timestamp.
        min_valid: i64,
    },
    /// Same timestamp as an existing sample with a different value.
    #[error("duplicate sample for timestamp {t} with a different value")]
    DuplicateTimestamp {
        /// The timestamp.
        t: i64,
    },
    /// The label set is not acceptable (empty, bad names, duplicates).
    #[error("invalid labels: {0}")]
    InvalidLabels(String),
    /// The series reference is not known.
    #[error("unknown series reference {0}")]
    UnknownRef(SeriesRef),
    /// A configured limit on series or samples was hit.
    #[error("limit exceeded: {0}")]
    LimitExceeded(String),
}

/// Failures of storage itself (I/O, corruption): not the caller's fault; a
/// remote_write sender gets a 5xx and may retry.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// An I/O error on a named file.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done ("write", "fsync", ...).
        op: &'static str,
        /// The file.
        path: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Data on disk that does not decode, with where it is.
    #[error("corrupt {path} at offset {offset}: {reason}")]
    Corrupt {
        /// The file.
        path: String,
        /// Byte offset of the damage.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// The storage is closed or otherwise unusable.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
}

/// A batch of appends, made durable and visible together by [`Appender::commit`].
pub trait Appender: Send {
    /// Adds a sample for the series with these labels, creating the series if needed.
    fn append(&mut self, labels: &Labels, t: i64, v: f64) -> Result<SeriesRef, AppendError>;

    /// Adds a sample to a series returned earlier by [`Appender::append`].
    fn append_ref(&mut self, series: SeriesRef, t: i64, v: f64) -> Result<(), AppendError>;

    /// A handle on series `series` (returned earlier by [`Appender::append`])
    /// for a caller's cache; see [`SeriesHandle`]. The default carries only the
    /// reference.
    fn series_handle(&mut self, series: SeriesRef) -> SeriesHandle {
        SeriesHandle::from_ref(series)
    }

    /// Adds a sample to the series of a handle from [`Appender::series_handle`]
    /// (of this storage). Fails with [`AppendError::UnknownRef`] when the
    /// storage no longer holds the series. The default appends by reference.
    fn append_handle(&mut self, series: &SeriesHandle, t: i64, v: f64) -> Result<(), AppendError> {
        self.append_ref(series.series_ref(), t, v)
    }

    /// Writes the batch to the write-ahead log and makes it queryable. When this
    /// returns `Ok`, every sample appended without error is durable.
    fn commit(self: Box<Self>) -> Result<(), StorageError>;

    /// Discards the batch.
    fn rollback(self: Box<Self>);
}

/// Something that hands out appenders.
pub trait Appendable: Send + Sync {
    /// A new batch.
    fn appender(&self) -> Box<dyn Appender + '_>;
}

/// Iterates one series' samples in time order.
pub trait SampleIterator: Send {
    /// The next sample, or `None` at the end.
    fn next_sample(&mut self) -> Option<Sample>;

    /// Appends every remaining sample to `out` (override for speed).
    fn collect_into(&mut self, out: &mut Vec<Sample>) {
        while let Some(s) = self.next_sample() {
            out.push(s);
        }
    }
}

/// A selected series: its labels and its samples within the selected range.
pub struct Series {
    /// The series' labels.
    pub labels: Labels,
    /// Its samples with `mint <= t <= maxt`, in time order.
    pub samples: Box<dyn SampleIterator>,
}

impl fmt::Debug for Series {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Series").field("labels", &self.labels).finish_non_exhaustive()
    }
}

/// Read access to stored series.
pub trait Queryable: Send + Sync {
    /// Series matching every matcher that have samples in `[mint, maxt]`
    /// (inclusive, milliseconds), sorted by labels. An empty matcher list
    /// selects every series (block writing and compaction rely on this).
    fn select(&self, mint: i64, maxt: i64, matchers: &[Matcher]) -> Result<Vec<Series>, StorageError>;

    /// Calls `f` with the labels and the samples in `[mint, maxt]` of every
    /// series matching `matchers`, stopping early when `f` breaks. Unlike
    /// [`Queryable::select`], the order of series is the storage's own (the
    /// head's: series creation order, as Prometheus's head returns unsorted
    /// selections), and nothing is allocated per series: the slice is only
    /// valid during the call. `f` must not call back into this storage (an
    /// implementation may hold a series' lock while it runs).
    ///
    /// The default selects and decodes, in label order.
    fn for_each_series(
        &self,
        mint: i64,
        maxt: i64,
        matchers: &[Matcher],
        f: &mut dyn FnMut(&Labels, &[Sample]) -> ControlFlow<()>,
    ) -> Result<(), StorageError> {
        visit_selected(self.select(mint, maxt, matchers)?, f);
        Ok(())
    }

    /// One part of [`Queryable::for_each_series`], for walks split between
    /// threads. The walk's series fall into batches numbered in walk order;
    /// each thread walking a [`WalkShare`] takes the next batch no thread
    /// has taken ([`WalkPart::claim`]), and `f` gets each series of the
    /// batches this part took with its batch number, then
    /// [`WalkEvent::BatchEnd`] for the batch (also when it held no series).
    /// Merging the parts' calls by batch number gives the whole walk in its
    /// order, so results folded that way do not depend on how many threads
    /// walked.
    ///
    /// The default does not split: the part that claims batch 0 walks
    /// everything as that batch.
    fn for_each_series_part(
        &self,
        mint: i64,
        maxt: i64,
        matchers: &[Matcher],
        part: WalkPart<'_>,
        f: &mut dyn FnMut(usize, WalkEvent<'_>) -> ControlFlow<()>,
    ) -> Result<(), StorageError> {
        walk_as_one_batch(part, f, |f| self.for_each_series(mint, maxt, matchers, f))
    }

    /// Label names of series matching `matchers` (all series when empty) with
    /// samples in `[mint, maxt]`, sorted.
    fn label_names(&self, mint: i64, maxt: i64, matchers: &[Matcher]) -> Result<Vec<String>, StorageError>;

    /// Values of label `name` over matching series in `[mint, maxt]`, sorted.
    fn label_values(&self, name: &str, mint: i64, maxt: i64, matchers: &[Matcher])
        -> Result<Vec<String>, StorageError>;
}

/// What a split walk ([`Queryable::for_each_series_part`]) reports.
#[derive(Debug, Clone, Copy)]
pub enum WalkEvent<'a> {
    /// One series: its labels and its samples in the walk's time range
    /// (valid only during the call).
    Series(&'a Labels, &'a [Sample]),
    /// The batch has no more series.
    BatchEnd,
}

/// What the threads of one split walk share: the storage's selection,
/// made once so that every thread cuts the same list into the same
/// batches, and the next batch no thread has taken.
#[derive(Debug, Default)]
pub struct WalkShare {
    next: AtomicUsize,
    selection: OnceLock<Vec<u32>>,
}

/// The batches one thread walks: all of them, or those it claims from a
/// [`WalkShare`].
#[derive(Debug, Clone, Copy)]
pub struct WalkPart<'a> {
    share: Option<&'a WalkShare>,
}

impl<'a> WalkPart<'a> {
    /// The whole walk, on one thread.
    pub const WHOLE: WalkPart<'static> = WalkPart { share: None };

    /// A part of the walk that `share`'s threads split between them.
    pub fn shared(share: &'a WalkShare) -> Self {
        WalkPart { share: Some(share) }
    }

    /// Whether other threads may take part of this walk.
    pub fn is_split(&self) -> bool {
        self.share.is_some()
    }

    /// The next batch of `count` for this part: after `*taken` in order for
    /// the whole walk, the next one no thread has taken for a shared one.
    /// `None` once all are taken.
    pub fn claim(&self, taken: &mut usize, count: usize) -> Option<usize> {
        let b = match self.share {
            Some(s) => s.next.fetch_add(1, Ordering::Relaxed),
            None => {
                *taken += 1;
                *taken - 1
            }
        };
        (b < count).then_some(b)
    }

    /// The series ids a storage walks: `select`'s, made by the first thread
    /// of a shared walk to ask and then the same for all.
    pub fn selection(&self, select: impl FnOnce() -> Vec<u32>) -> Cow<'a, [u32]> {
        match self.share {
            Some(s) => Cow::Borrowed(s.selection.get_or_init(select).as_slice()),
            None => Cow::Owned(select()),
        }
    }
}

/// `f` as the visitor of a whole split walk that wants only its series
/// (batch ends are skipped), for [`Queryable::for_each_series`] built on
/// [`Queryable::for_each_series_part`].
pub fn series_only<'f>(
    f: &'f mut dyn FnMut(&Labels, &[Sample]) -> ControlFlow<()>,
) -> impl FnMut(usize, WalkEvent<'_>) -> ControlFlow<()> + 'f {
    move |_, e| match e {
        WalkEvent::Series(l, s) => f(l, s),
        WalkEvent::BatchEnd => ControlFlow::Continue(()),
    }
}

/// A walk that cannot be split ([`Queryable::for_each_series_part`]'s
/// default): whichever part claims batch 0 runs `walk` as that batch.
pub fn walk_as_one_batch(
    part: WalkPart<'_>,
    f: &mut dyn FnMut(usize, WalkEvent<'_>) -> ControlFlow<()>,
    walk: impl FnOnce(&mut dyn FnMut(&Labels, &[Sample]) -> ControlFlow<()>) -> Result<(), StorageError>,
) -> Result<(), StorageError> {
    if part.claim(&mut 0, 1).is_none() {
        return Ok(());
    }
    let mut stopped = false;
    walk(&mut |l, s| {
        let flow = f(0, WalkEvent::Series(l, s));
        stopped = flow.is_break();
        flow
    })?;
    if !stopped {
        let _ = f(0, WalkEvent::BatchEnd);
    }
    Ok(())
}

/// Decodes each selected series into one reused buffer and hands it to `f`
/// (the [`Queryable::for_each_series`] walk over a materialised selection).
pub fn visit_selected(series: Vec<Series>, f: &mut dyn FnMut(&Labels, &[Sample]) -> ControlFlow<()>) {
    let mut buf = Vec::new();
    for mut s in series {
        buf.clear();
        s.samples.collect_into(&mut buf);
        if f(&s.labels, &buf).is_break() {
            break;
        }
    }
}

/// A shared storage appends like the storage it points to.
impl<T: Appendable + ?Sized> Appendable for std::sync::Arc<T> {
    fn appender(&self) -> Box<dyn Appender + '_> {
        (**self).appender()
    }
}

/// A shared storage answers like the storage it points to.
impl<T: Queryable + ?Sized> Queryable for std::sync::Arc<T> {
    fn select(&self, mint: i64, maxt: i64, matchers: &[Matcher]) -> Result<Vec<Series>, StorageError> {
        (**self).select(mint, maxt, matchers)
    }

    fn for_each_series(
        &self,
        mint: i64,
        maxt: i64,
        matchers: &[Matcher],
        f: &mut dyn FnMut(&Labels, &[Sample]) -> ControlFlow<()>,
    ) -> Result<(), StorageError> {
        (**self).for_each_series(mint, maxt, matchers, f)
    }

    fn for_each_series_part(
        &self,
        mint: i64,
        maxt: i64,
        matchers: &[Matcher],
        part: WalkPart<'_>,
        f: &mut dyn FnMut(usize, WalkEvent<'_>) -> ControlFlow<()>,
    ) -> Result<(), StorageError> {
        (**self).for_each_series_part(mint, maxt, matchers, part, f)
    }

    fn label_names(&self, mint: i64, maxt: i64, matchers: &[Matcher]) -> Result<Vec<String>, StorageError> {
        (**self).label_names(mint, maxt, matchers)
    }

    fn label_values(
        &self,
        name: &str,
        mint: i64,
        maxt: i64,
        matchers: &[Matcher],
    ) -> Result<Vec<String>, StorageError> {
        (**self).label_values(name, mint, maxt, matchers)
    }
}

/// A [`SampleIterator`] over an owned vector.
pub struct VecSampleIterator {
    samples: std::vec::IntoIter<Sample>,
}

impl VecSampleIterator {
    /// Iterates `samples` (already in time order).
    pub fn new(samples: Vec<Sample>) -> Self {
        VecSampleIterator { samples: samples.into_iter() }
    }
}

impl SampleIterator for VecSampleIterator {
    fn next_sample(&mut self) -> Option<Sample> {
        self.samples.next()
    }

    fn collect_into(&mut self, out: &mut Vec<Sample>) {
        out.extend(self.samples.by_ref());
    }
}
