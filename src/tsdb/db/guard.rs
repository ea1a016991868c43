//! Keeps a head cut from losing samples that are appended while the block
//! is written: before the cut, the database raises a watermark below which
//! appends are refused, and waits for open batches that already hold older
//! samples to commit or roll back (Prometheus's `WaitForAppendersOverlapping`).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::model::Labels;
use crate::storage::{AppendError, Appender, SeriesHandle, SeriesRef, StorageError};

#[derive(Default)]
struct State {
    /// Appends below this are refused as out of bounds.
    watermark: i64,
    next_id: u64,
    /// Oldest timestamp held by each open batch.
    open: HashMap<u64, i64>,
}

/// The watermark and the registry of open batches.
pub(crate) struct AppendGuard {
    state: Mutex<State>,
    done: Condvar,
}

impl AppendGuard {
    pub(crate) fn new() -> Self {
        AppendGuard { state: Mutex::new(State { watermark: i64::MIN, ..Default::default() }), done: Condvar::new() }
    }

    /// Raises the watermark to `t` and waits up to `timeout` until no open
    /// batch holds a sample older than `t`. `false` on timeout.
    pub(crate) fn raise_and_wait(&self, t: i64, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut st = self.state.lock();
        st.watermark = st.watermark.max(t);
        while st.open.values().any(|&m| m < t) {
            if self.done.wait_until(&mut st, deadline).timed_out() {
                return !st.open.values().any(|&m| m < t);
            }
        }
        true
    }

    /// Wraps a head appender.
    pub(crate) fn wrap<'a>(&'a self, inner: Box<dyn Appender + 'a>) -> GuardedAppender<'a> {
        GuardedAppender { guard: self, inner: Some(inner), id: None, min_t: i64::MAX }
    }
}

/// An appender that registers its oldest sample with the [`AppendGuard`].
pub(crate) struct GuardedAppender<'a> {
    guard: &'a AppendGuard,
    inner: Option<Box<dyn Appender + 'a>>,
    id: Option<u64>,
    min_t: i64,
}

impl GuardedAppender<'_> {
    /// Registers `t` if it is older than anything this batch holds, and
    /// checks it against the watermark (under the same lock, so a cut either
    /// sees this batch or this batch sees the cut's watermark).
    fn admit(&mut self, t: i64) -> Result<(), AppendError> {
        if t >= self.min_t {
            // Already registered at or below t; the watermark only rises to
            // times the registry was checked against.
            return Ok(());
        }
        let mut st = self.guard.state.lock();
        if t < st.watermark {
            return Err(AppendError::OutOfBounds { t, min_valid: st.watermark });
        }
        let id = *self.id.get_or_insert_with(|| {
            st.next_id += 1;
            st.next_id
        });
        st.open.insert(id, t);
        self.min_t = t;
        Ok(())
    }

    fn release(&mut self) {
        if let Some(id) = self.id.take() {
            self.guard.state.lock().open.remove(&id);
            self.guard.done.notify_all();
        }
    }
}

impl Appender for GuardedAppender<'_> {
    fn append(&mut self, labels: &Labels, t: i64, v: f64) -> Result<SeriesRef, AppendError> {
        self.admit(t)?;
        match self.inner.as_mut() {
            Some(a) => a.append(labels, t, v),
            None => Err(AppendError::LimitExceeded("appender already finished".into())),
        }
    }

    fn append_ref(&mut self, series: SeriesRef, t: i64, v: f64) -> Result<(), AppendError> {
        self.admit(t)?;
        match self.inner.as_mut() {
            Some(a) => a.append_ref(series, t, v),
            None => Err(AppendError::LimitExceeded("appender already finished".into())),
        }
    }

    fn series_handle(&mut self, series: SeriesRef) -> SeriesHandle {
        match self.inner.as_mut() {
            Some(a) => a.series_handle(series),
            None => SeriesHandle::from_ref(series),
        }
    }

    fn append_handle(&mut self, series: &SeriesHandle, t: i64, v: f64) -> Result<(), AppendError> {
        self.admit(t)?;
        match self.inner.as_mut() {
            Some(a) => a.append_handle(series, t, v),
            None => Err(AppendError::LimitExceeded("appender already finished".into())),
        }
    }

    fn commit(mut self: Box<Self>) -> Result<(), StorageError> {
        let r = match self.inner.take() {
            Some(a) => a.commit(),
            None => Ok(()),
        };
        self.release();
        r
    }

    fn rollback(mut self: Box<Self>) {
        if let Some(a) = self.inner.take() {
            a.rollback();
        }
        self.release();
    }
}

impl Drop for GuardedAppender<'_> {
    fn drop(&mut self) {
        // A batch dropped without commit or rollback must not block cuts.
        self.release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::labels;
    use crate::storage::memory::MemStorage;
    use crate::storage::Appendable;

    #[test]
    fn watermark_refuses_old_samples_and_waits_for_open_batches() {
        let st = MemStorage::new();
        let g = AppendGuard::new();
        let l = labels!("a" => "b");
        let mut a = Box::new(g.wrap(st.appender()));
        a.append(&l, 100, 1.0).unwrap();
        // An open batch holds t=100: a cut at 200 cannot proceed yet.
        assert!(!g.raise_and_wait(200, Duration::from_millis(20)));
        // New old samples are refused now.
        let mut b = Box::new(g.wrap(st.appender()));
        assert!(matches!(b.append(&l, 150, 1.0), Err(AppendError::OutOfBounds { t: 150, min_valid: 200 })));
        b.rollback();
        a.commit().unwrap();
        assert!(g.raise_and_wait(200, Duration::from_millis(20)));
        let mut c = Box::new(g.wrap(st.appender()));
        c.append(&l, 250, 1.0).unwrap();
        // A batch holding only newer samples does not block the cut.
        assert!(g.raise_and_wait(240, Duration::from_millis(20)));
        drop(c);
        assert!(g.state.lock().open.is_empty());
    }
}
