//! Batched appends to the head: validated on `append`, made durable in the
//! WAL and applied on `commit`.

use parking_lot::Mutex;

use super::series::{Accept, MemSeries};
use super::Head;
use crate::model::Labels;
use crate::prefetch::prefetch;
use crate::storage::{AppendError, Appender, SeriesHandle as StorageHandle, SeriesRef, StorageError};
use crate::tsdb::wal::{RecordBatch, RefSample};

/// How many samples ahead the commit loop asks the CPU to fetch a series.
const PREFETCH_DISTANCE: usize = 8;

/// Hints the CPU to start loading a series' lock and state into cache.
#[inline]
fn prefetch_series(handle: &super::SeriesHandle) {
    prefetch(std::sync::Arc::as_ptr(handle));
}

/// Spare appender buffers kept by the head at most.
const MAX_SPARE_BUFFERS: usize = 16;

/// Buffers kept for reuse only up to this many samples.
const MAX_SPARE_SAMPLES: usize = 64 * 1024;

/// An appender's vectors, handed back to the head when it finishes.
#[derive(Default)]
pub(crate) struct Buffers {
    samples: Vec<RefSample>,
    handles: Vec<super::SeriesHandle>,
    unlogged: Vec<u32>,
}

/// A batch of appends to a [`Head`].
pub struct HeadAppender<'a> {
    head: &'a Head,
    samples: Vec<RefSample>,
    /// The series of each pending sample (same order as `samples`).
    handles: Vec<super::SeriesHandle>,
    /// Series seen by this batch whose record was not yet in the WAL when appended.
    unlogged: Vec<u32>,
    /// The previous sample's series and time, to reject in-batch disorder early.
    last: Option<(u32, i64, u64)>,
}

impl<'a> HeadAppender<'a> {
    pub(crate) fn new(head: &'a Head) -> Self {
        let b = head.spare_buffers.lock().pop().unwrap_or_default();
        HeadAppender { head, samples: b.samples, handles: b.handles, unlogged: b.unlogged, last: None }
    }

    /// Gives the (emptied) buffers back to the head for the next appender.
    fn recycle(&mut self) {
        let mut b = Buffers {
            samples: std::mem::take(&mut self.samples),
            handles: std::mem::take(&mut self.handles),
            unlogged: std::mem::take(&mut self.unlogged),
        };
        if b.samples.capacity() == 0 || b.samples.capacity() > MAX_SPARE_SAMPLES {
            return;
        }
        b.samples.clear();
        b.handles.clear();
        b.unlogged.clear();
        let mut spare = self.head.spare_buffers.lock();
        if spare.len() < MAX_SPARE_BUFFERS {
            spare.push(b);
        }
    }

    fn append_id(&mut self, id: u32, t: i64, v: f64) -> Result<(), AppendError> {
        let handle = self.head.stripe(id).read().series.get(&id).cloned();
        match handle {
            Some(h) => self.append_series(id, h, t, v),
            None => Err(AppendError::UnknownRef(SeriesRef(id as u64))),
        }
    }

    /// Appends to series `id` whose state is `handle`. A series the head has
    /// dropped (`removed`, set by truncation under the same lock) is refused
    /// as unknown, so a handle kept elsewhere never stores into it; a series
    /// with pending appends is never dropped.
    fn append_series(&mut self, id: u32, handle: super::SeriesHandle, t: i64, v: f64) -> Result<(), AppendError> {
        if let Some((lid, lt, lv)) = self.last {
            if lid == id && t <= lt {
                if t == lt {
                    return if lv == v.to_bits() { Ok(()) } else { Err(AppendError::DuplicateTimestamp { t }) };
                }
                if self.head.opts.out_of_order_window <= 0 {
                    self.head.counters.out_of_order.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    return Err(AppendError::OutOfOrder { t, latest: lt });
                }
            }
        }
        let rules = self.head.rules();
        let disk = &self.head.disk;
        let mut unlogged = false;
        let res = {
            let mut s = handle.lock();
            if s.removed {
                return Err(AppendError::UnknownRef(SeriesRef(id as u64)));
            }
            let acc = s.check(t, v, &rules, disk);
            if let Ok(a) = acc {
                if a != Accept::NoOp {
                    s.pending += 1;
                    unlogged = !s.logged;
                    // The commit appends to the open chunk: start fetching
                    // its header and tail now (a separate allocation, else
                    // a cache miss there).
                    let (first, last) = s.open_chunk_addrs();
                    if first != 0 {
                        prefetch(first as *const u8);
                        prefetch(last as *const u8);
                    }
                }
            }
            acc
        };
        if unlogged && self.unlogged.last() != Some(&id) {
            self.unlogged.push(id);
        }
        match res {
            Err(e) => {
                self.head.counters.count(&e);
                Err(e)
            }
            Ok(Accept::NoOp) => Ok(()),
            Ok(_) => {
                self.samples.push(RefSample { r: SeriesRef(id as u64), t, v });
                self.handles.push(handle);
                self.last = Some((id, t, v.to_bits()));
                Ok(())
            }
        }
    }

    fn release_pending(&mut self) {
        self.unlogged.clear();
        self.samples.clear();
        for h in self.handles.drain(..) {
            let mut ms = h.lock();
            ms.pending = ms.pending.saturating_sub(1);
        }
    }

    fn do_commit(&mut self) -> Result<(), StorageError> {
        if self.samples.is_empty() {
            return Ok(());
        }
        let head = self.head;
        let Some(wal) = head.wal.get() else {
            self.release_pending();
            return Err(StorageError::Unavailable("head is not open for writing".into()));
        };
        let mut w = wal.lock();
        // Series the WAL has not seen yet get their record in the same write.
        // (`logged` is re-checked under the series lock: another commit may have logged it.)
        let mut new_series: Vec<(SeriesRef, Labels)> = Vec::new();
        for &id in &self.unlogged {
            head.with_series(id, |ms| {
                if !ms.logged {
                    ms.logged = true;
                    new_series.push((SeriesRef(id as u64), head.series_labels(ms)));
                }
            });
        }
        self.unlogged.clear();
        let mut batch = RecordBatch::new();
        let refs: Vec<(SeriesRef, &Labels)> = new_series.iter().map(|(r, l)| (*r, l)).collect();
        batch.add_series(&refs);
        batch.add_samples(&self.samples);
        let point = match w.write(&batch) {
            Ok(p) => p,
            Err(e) => {
                for (r, _) in &new_series {
                    head.with_series(r.0 as u32, |ms| ms.logged = false);
                }
                drop(w);
                self.release_pending();
                if e.is_no_space() {
                    head.counters.wal_no_space.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                return Err(e.into());
            }
        };
        // Apply while holding the WAL tail, so replay order equals apply order.
        let rules = head.rules();
        let mut stored = 0u64;
        let (mut lo, mut hi) = (i64::MAX, i64::MIN);
        // Series are scattered over the heap, so each sample's lock and chunk
        // state is a cache miss; asking for the series a few samples ahead
        // overlaps those misses instead of paying them one after another.
        let samples = std::mem::take(&mut self.samples);
        let handles = std::mem::take(&mut self.handles);
        for (i, (s, h)) in samples.iter().zip(&handles).enumerate() {
            if let Some(ahead) = handles.get(i + PREFETCH_DISTANCE) {
                prefetch_series(ahead);
            }
            let id = s.r.0 as u32;
            {
                let ms = &mut *h.lock();
                ms.pending = ms.pending.saturating_sub(1);
                match ms.check(s.t, s.v, &rules, &head.disk) {
                    Ok(Accept::NoOp) => {}
                    Ok(how) => match ms.store(s.r.0, s.t, s.v, how, &rules, &head.disk) {
                        Ok(()) => {
                            stored += 1;
                            lo = lo.min(s.t);
                            hi = hi.max(s.t);
                        }
                        Err(e) => tracing::error!(series = id, error = %e, "sample not stored"),
                    },
                    Err(e) => head.counters.count(&e),
                }
            }
        }
        drop(w);
        // The series references are released outside the WAL lock; the
        // emptied vectors go back for reuse.
        let (mut samples, mut handles) = (samples, handles);
        samples.clear();
        handles.clear();
        self.samples = samples;
        self.handles = handles;
        head.note_stored(stored, lo, hi);
        wal.sync(&point).map_err(StorageError::from)
    }
}

impl Appender for HeadAppender<'_> {
    /// A series is created empty, and head GC drops empty series without
    /// pending samples: a truncation between the creation and the sample
    /// can drop it again. The lookup is then repeated (creating it anew).
    fn append(&mut self, labels: &Labels, t: i64, v: f64) -> Result<SeriesRef, AppendError> {
        let mut tries = 0;
        loop {
            let id = self.head.get_or_create(labels)?;
            match self.append_id(id, t, v) {
                Err(AppendError::UnknownRef(_)) if tries < 3 => tries += 1,
                r => return r.map(|()| SeriesRef(id as u64)),
            }
        }
    }

    fn append_ref(&mut self, series: SeriesRef, t: i64, v: f64) -> Result<(), AppendError> {
        let id = u32::try_from(series.0).map_err(|_| AppendError::UnknownRef(series))?;
        self.append_id(id, t, v)
    }

    fn series_handle(&mut self, series: SeriesRef) -> StorageHandle {
        let obj = u32::try_from(series.0).ok().and_then(|id| self.head.stripe(id).read().series.get(&id).cloned());
        match obj {
            Some(h) => StorageHandle::with_object(series, h),
            None => StorageHandle::from_ref(series),
        }
    }

    fn append_handle(&mut self, series: &StorageHandle, t: i64, v: f64) -> Result<(), AppendError> {
        let r = series.series_ref();
        let id = u32::try_from(r.0).map_err(|_| AppendError::UnknownRef(r))?;
        // A handle of another storage (or one without the series) takes the
        // lookup by reference.
        match series.object().cloned().map(|o| o.downcast::<Mutex<MemSeries>>()) {
            Some(Ok(h)) => self.append_series(id, h, t, v),
            _ => self.append_id(id, t, v),
        }
    }

    fn commit(mut self: Box<Self>) -> Result<(), StorageError> {
        self.do_commit()
    }

    fn rollback(mut self: Box<Self>) {
        self.release_pending();
    }
}

impl Drop for HeadAppender<'_> {
    fn drop(&mut self) {
        // An appender dropped without commit or rollback must not pin its series.
        self.release_pending();
        self.recycle();
    }
}
