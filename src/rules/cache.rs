//! Work sharing inside one group evaluation: a [`Queryable`] that reads each
//! selection from storage once and serves later rules from memory.
//!
//! Rules of a group are evaluated at one timestamp and often select the same
//! series (a 5xx ratio and a p95 alert both read `http_requests_total`, the
//! Triton rules read the same counters with the same `[5m]` range). The PromQL
//! engine evaluates every rule of a group against one [`GroupQueryable`]; a
//! selection is keyed by its matchers, and a request whose time range lies
//! inside a cached one is answered by slicing the cached samples. When a
//! recording rule appends, entries that could select its metric are dropped,
//! so later rules see its results. The cache lives for one group evaluation.

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::model::{Labels, Matcher, Sample, METRIC_NAME};
use crate::storage::{Queryable, SampleIterator, Series, StorageError};

struct Entry {
    mint: i64,
    maxt: i64,
    matchers: Vec<Matcher>,
    series: Arc<Vec<(Labels, Arc<[Sample]>)>>,
}

/// Counters showing how much storage work was shared.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CacheStats {
    /// Selections answered by storage.
    pub storage_selects: u64,
    /// Selections answered from the cache.
    pub hits: u64,
}

/// A caching view of storage for one group evaluation.
pub struct GroupQueryable<'a> {
    inner: &'a dyn Queryable,
    entries: Mutex<HashMap<String, Entry>>,
    stats: Mutex<CacheStats>,
}

fn key(matchers: &[Matcher]) -> String {
    let mut parts: Vec<String> = matchers.iter().map(|m| m.to_string()).collect();
    parts.sort();
    parts.join(",")
}

struct ArcSliceIter {
    data: Arc<[Sample]>,
    pos: usize,
    end: usize,
}

impl SampleIterator for ArcSliceIter {
    fn next_sample(&mut self) -> Option<Sample> {
        if self.pos >= self.end {
            return None;
        }
        let s = self.data.get(self.pos).copied();
        self.pos += 1;
        s
    }

    fn collect_into(&mut self, out: &mut Vec<Sample>) {
        if let Some(s) = self.data.get(self.pos..self.end) {
            out.extend_from_slice(s);
        }
        self.pos = self.end;
    }
}

impl<'a> GroupQueryable<'a> {
    /// A fresh cache over `inner`.
    pub fn new(inner: &'a dyn Queryable) -> Self {
        GroupQueryable { inner, entries: Mutex::new(HashMap::new()), stats: Mutex::new(CacheStats::default()) }
    }

    /// How many selections went to storage and how many were shared.
    pub fn stats(&self) -> CacheStats {
        *self.stats.lock()
    }

    /// Forgets every selection that could include series named `metric`
    /// (called after a rule appended such series).
    pub fn invalidate_metric(&self, metric: &str) {
        self.entries.lock().retain(|_, e| {
            let could_match = e.matchers.iter().filter(|m| m.name == METRIC_NAME).all(|m| m.matches(metric));
            !could_match
        });
    }

    fn serve(series: &[(Labels, Arc<[Sample]>)], mint: i64, maxt: i64) -> Vec<Series> {
        let mut out = Vec::with_capacity(series.len());
        for (labels, samples) in series {
            let start = samples.partition_point(|s| s.t < mint);
            let end = samples.partition_point(|s| s.t <= maxt);
            if start < end {
                out.push(Series {
                    labels: labels.clone(),
                    samples: Box::new(ArcSliceIter { data: samples.clone(), pos: start, end }),
                });
            }
        }
        out
    }
}

impl GroupQueryable<'_> {
    /// The cached entry under `k` covering `[mint, maxt]`, or the range to
    /// fetch (the union with a narrower cached one).
    fn lookup(&self, k: &str, mint: i64, maxt: i64) -> Result<Arc<Vec<(Labels, Arc<[Sample]>)>>, (i64, i64)> {
        let entries = self.entries.lock();
        match entries.get(k) {
            Some(e) if e.mint <= mint && maxt <= e.maxt => {
                self.stats.lock().hits += 1;
                Ok(e.series.clone())
            }
            Some(e) => Err((e.mint.min(mint), e.maxt.max(maxt))),
            None => Err((mint, maxt)),
        }
    }
}

/// Hands the part of each cached series inside `[mint, maxt]` to `f`.
fn walk_cached(
    series: &[(Labels, Arc<[Sample]>)],
    mint: i64,
    maxt: i64,
    f: &mut dyn FnMut(&Labels, &[Sample]) -> ControlFlow<()>,
) {
    /// Series ahead whose samples and labels are asked for early.
    const AHEAD: usize = 4;
    for (i, (labels, samples)) in series.iter().enumerate() {
        if let Some((l, s)) = series.get(i + AHEAD) {
            crate::prefetch::prefetch(s.as_ptr());
            crate::prefetch::prefetch(l.as_bytes().as_ptr());
        }
        let start = samples.partition_point(|s| s.t < mint);
        let end = samples.partition_point(|s| s.t <= maxt);
        if start < end && f(labels, &samples[start..end]).is_break() {
            return;
        }
    }
}

impl Queryable for GroupQueryable<'_> {
    /// Walks are cached apart from selections (their order is the
    /// storage's, not label order), under the same matchers and ranges.
    fn for_each_series(
        &self,
        mint: i64,
        maxt: i64,
        matchers: &[Matcher],
        f: &mut dyn FnMut(&Labels, &[Sample]) -> ControlFlow<()>,
    ) -> Result<(), StorageError> {
        let k = format!("walk:{}", key(matchers));
        let (fetch_min, fetch_max) = match self.lookup(&k, mint, maxt) {
            Ok(series) => {
                walk_cached(&series, mint, maxt, f);
                return Ok(());
            }
            Err(range) => range,
        };
        let mut series: Vec<(Labels, Arc<[Sample]>)> = Vec::new();
        self.inner.for_each_series(fetch_min, fetch_max, matchers, &mut |l, samples| {
            series.push((l.clone(), Arc::from(samples)));
            ControlFlow::Continue(())
        })?;
        self.stats.lock().storage_selects += 1;
        walk_cached(&series, mint, maxt, f);
        let entry = Entry { mint: fetch_min, maxt: fetch_max, matchers: matchers.to_vec(), series: Arc::new(series) };
        self.entries.lock().insert(k, entry);
        Ok(())
    }

    fn select(&self, mint: i64, maxt: i64, matchers: &[Matcher]) -> Result<Vec<Series>, StorageError> {
        let k = key(matchers);
        let (fetch_min, fetch_max) = match self.lookup(&k, mint, maxt) {
            Ok(series) => return Ok(Self::serve(&series, mint, maxt)),
            Err(range) => range,
        };
        // Storage is read without holding the cache lock.
        let fetched = self.inner.select(fetch_min, fetch_max, matchers)?;
        self.stats.lock().storage_selects += 1;
        let mut series = Vec::with_capacity(fetched.len());
        let mut buf = Vec::new();
        for mut s in fetched {
            buf.clear();
            s.samples.collect_into(&mut buf);
            series.push((s.labels, Arc::<[Sample]>::from(buf.as_slice())));
        }
        let out = Self::serve(&series, mint, maxt);
        let entry = Entry { mint: fetch_min, maxt: fetch_max, matchers: matchers.to_vec(), series: Arc::new(series) };
        self.entries.lock().insert(k, entry);
        Ok(out)
    }

    fn label_names(&self, mint: i64, maxt: i64, matchers: &[Matcher]) -> Result<Vec<String>, StorageError> {
        self.inner.label_names(mint, maxt, matchers)
    }

    fn label_values(
        &self,
        name: &str,
        mint: i64,
        maxt: i64,
        matchers: &[Matcher],
    ) -> Result<Vec<String>, StorageError> {
        self.inner.label_values(name, mint, maxt, matchers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::labels;
    use crate::storage::memory::MemStorage;
    use crate::storage::Appendable;

    fn store() -> MemStorage {
        let s = MemStorage::new();
        let mut app = s.appender();
        for t in 0..10 {
            app.append(&labels!("__name__" => "a", "job" => "x"), t * 1000, t as f64).unwrap();
            app.append(&labels!("__name__" => "b", "job" => "x"), t * 1000, 1.0).unwrap();
        }
        app.commit().unwrap();
        s
    }

    fn values(series: Vec<Series>) -> Vec<Vec<f64>> {
        series
            .into_iter()
            .map(|mut s| {
                let mut v = Vec::new();
                s.samples.collect_into(&mut v);
                v.into_iter().map(|x| x.v).collect()
            })
            .collect()
    }

    #[test]
    fn same_selection_read_once_and_subranges_sliced() {
        let s = store();
        let q = GroupQueryable::new(&s);
        let m = [Matcher::equal("__name__", "a")];
        assert_eq!(values(q.select(0, 9000, &m).unwrap()), vec![(0..10).map(|x| x as f64).collect::<Vec<_>>()]);
        assert_eq!(values(q.select(5000, 9000, &m).unwrap()), vec![vec![5.0, 6.0, 7.0, 8.0, 9.0]]);
        assert_eq!(values(q.select(8500, 9000, &m).unwrap()), vec![vec![9.0]]);
        assert!(q.select(8600, 8900, &m).unwrap().is_empty(), "series without samples in range are left out");
        assert_eq!(q.stats(), CacheStats { storage_selects: 1, hits: 3 });
        // A wider range goes to storage once more, for the union.
        q.select(0, 20_000, &m).unwrap();
        assert_eq!(q.stats().storage_selects, 2);
    }

    fn walked(q: &GroupQueryable<'_>, mint: i64, maxt: i64, m: &[Matcher]) -> Vec<(String, Vec<f64>)> {
        let mut out = Vec::new();
        q.for_each_series(mint, maxt, m, &mut |l, s| {
            out.push((l.to_string(), s.iter().map(|x| x.v).collect()));
            ControlFlow::Continue(())
        })
        .unwrap();
        out
    }

    #[test]
    fn walks_are_cached_and_sliced_apart_from_selections() {
        let s = store();
        let q = GroupQueryable::new(&s);
        let m = [Matcher::equal("job", "x")];
        let all = walked(&q, 0, 9000, &m);
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].1, (0..10).map(|x| x as f64).collect::<Vec<_>>());
        assert_eq!(
            walked(&q, 7000, 8000, &m),
            vec![(all[0].0.clone(), vec![7.0, 8.0]), (all[1].0.clone(), vec![1.0, 1.0])]
        );
        assert!(walked(&q, 8500, 8900, &m).is_empty(), "series without samples in range are left out");
        assert_eq!(q.stats(), CacheStats { storage_selects: 1, hits: 2 });
        // A selection with the same matchers is its own entry (label order).
        assert_eq!(q.select(0, 9000, &m).unwrap().len(), 2);
        assert_eq!(q.stats().storage_selects, 2);
        // Invalidation drops walks too.
        q.invalidate_metric("a");
        walked(&q, 0, 9000, &m);
        assert_eq!(q.stats().storage_selects, 3);
    }

    #[test]
    fn recording_results_become_visible_after_invalidation() {
        let s = store();
        let q = GroupQueryable::new(&s);
        let ma = [Matcher::equal("__name__", "a")];
        let mr = [Matcher::equal("__name__", "rec")];
        assert!(q.select(0, 20_000, &mr).unwrap().is_empty());
        q.select(0, 20_000, &ma).unwrap();
        let mut app = s.appender();
        app.append(&labels!("__name__" => "rec"), 10_000, 5.0).unwrap();
        app.commit().unwrap();
        q.invalidate_metric("rec");
        assert_eq!(values(q.select(0, 20_000, &mr).unwrap()), vec![vec![5.0]]);
        q.select(0, 20_000, &ma).unwrap();
        assert_eq!(q.stats(), CacheStats { storage_selects: 3, hits: 1 }, "'a' stayed cached");
    }
}
