//! A plain in-memory storage: a sorted map from labels to sample vectors.
//!
//! No WAL, no compression. It implements the storage seam exactly (order
//! checks included) so stages above storage can be unit-tested without a
//! data directory. Production paths use `crate::tsdb`.

use std::collections::BTreeMap;

use parking_lot::RwLock;

use super::{AppendError, Appendable, Appender, Queryable, Sample, Series, SeriesRef, StorageError, VecSampleIterator};
use crate::model::matcher::matches_all;
use crate::model::{Labels, Matcher};

/// In-memory series storage for tests.
#[derive(Default)]
pub struct MemStorage {
    inner: RwLock<Inner>,
}

#[derive(Default)]
struct Inner {
    by_labels: BTreeMap<Labels, usize>,
    series: Vec<(Labels, Vec<Sample>)>,
}

impl MemStorage {
    /// An empty store.
    pub fn new() -> Self {
        MemStorage::default()
    }

    /// Removes every series.
    pub fn clear(&self) {
        *self.inner.write() = Inner::default();
    }
}

enum Pending {
    ByRef(SeriesRef, Sample),
}

struct MemAppender<'a> {
    store: &'a MemStorage,
    pending: Vec<Pending>,
}

fn check_order(existing: &[Sample], s: Sample) -> Result<bool, AppendError> {
    match existing.last() {
        Some(last) if s.t < last.t => Err(AppendError::OutOfOrder { t: s.t, latest: last.t }),
        Some(last) if s.t == last.t => {
            if last.v.to_bits() == s.v.to_bits() {
                Ok(false)
            } else {
                Err(AppendError::DuplicateTimestamp { t: s.t })
            }
        }
        _ => Ok(true),
    }
}

impl Appender for MemAppender<'_> {
    fn append(&mut self, labels: &Labels, t: i64, v: f64) -> Result<SeriesRef, AppendError> {
        if labels.is_empty() {
            return Err(AppendError::InvalidLabels("empty label set".into()));
        }
        let mut inner = self.store.inner.write();
        let next = inner.series.len();
        let idx = *inner.by_labels.entry(labels.clone()).or_insert(next);
        if idx == next {
            inner.series.push((labels.clone(), Vec::new()));
        }
        check_order(&inner.series[idx].1, Sample::new(t, v))?;
        self.pending.push(Pending::ByRef(SeriesRef(idx as u64), Sample::new(t, v)));
        Ok(SeriesRef(idx as u64))
    }

    fn append_ref(&mut self, series: SeriesRef, t: i64, v: f64) -> Result<(), AppendError> {
        let inner = self.store.inner.read();
        let s = inner.series.get(series.0 as usize).ok_or(AppendError::UnknownRef(series))?;
        check_order(&s.1, Sample::new(t, v))?;
        self.pending.push(Pending::ByRef(series, Sample::new(t, v)));
        Ok(())
    }

    fn commit(self: Box<Self>) -> Result<(), StorageError> {
        let mut inner = self.store.inner.write();
        for p in self.pending {
            let Pending::ByRef(r, s) = p;
            let idx = r.0 as usize;
            let samples = &mut inner.series[idx].1;
            if let Ok(true) = check_order(samples, s) {
                samples.push(s);
            }
        }
        Ok(())
    }

    fn rollback(self: Box<Self>) {}
}

impl Appendable for MemStorage {
    fn appender(&self) -> Box<dyn Appender + '_> {
        Box::new(MemAppender { store: self, pending: Vec::new() })
    }
}

impl MemStorage {
    fn matching(&self, mint: i64, maxt: i64, matchers: &[Matcher]) -> Vec<(Labels, Vec<Sample>)> {
        let inner = self.inner.read();
        inner
            .by_labels
            .iter()
            .filter(|(l, _)| matches_all(l, matchers))
            .filter_map(|(l, &i)| {
                let s: Vec<Sample> = inner.series[i].1.iter().copied().filter(|s| s.t >= mint && s.t <= maxt).collect();
                (!s.is_empty()).then(|| (l.clone(), s))
            })
            .collect()
    }
}

impl Queryable for MemStorage {
    fn select(&self, mint: i64, maxt: i64, matchers: &[Matcher]) -> Result<Vec<Series>, StorageError> {
        Ok(self
            .matching(mint, maxt, matchers)
            .into_iter()
            .map(|(labels, s)| Series { labels, samples: Box::new(VecSampleIterator::new(s)) })
            .collect())
    }

    fn label_names(&self, mint: i64, maxt: i64, matchers: &[Matcher]) -> Result<Vec<String>, StorageError> {
        let mut names: Vec<String> = self
            .matching(mint, maxt, matchers)
            .iter()
            .flat_map(|(l, _)| l.iter().map(|p| p.name.to_string()).collect::<Vec<_>>())
            .collect();
        names.sort();
        names.dedup();
        Ok(names)
    }

    fn label_values(
        &self,
        name: &str,
        mint: i64,
        maxt: i64,
        matchers: &[Matcher],
    ) -> Result<Vec<String>, StorageError> {
        let mut values: Vec<String> =
            self.matching(mint, maxt, matchers).iter().filter_map(|(l, _)| l.get(name).map(str::to_string)).collect();
        values.sort();
        values.dedup();
        Ok(values)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::labels;

    #[test]
    fn append_select_and_order_checks() {
        let st = MemStorage::new();
        let l = labels!("__name__" => "up", "job" => "a");
        let mut app = st.appender();
        let r = app.append(&l, 10, 1.0).unwrap();
        app.commit().unwrap();
        let mut app = st.appender();
        app.append_ref(r, 20, 2.0).unwrap();
        assert!(matches!(app.append_ref(r, 5, 2.0), Err(AppendError::OutOfOrder { .. })));
        app.commit().unwrap();
        let mut got = st.select(0, 100, &[Matcher::equal("job", "a")]).unwrap();
        assert_eq!(got.len(), 1);
        let mut v = Vec::new();
        got[0].samples.collect_into(&mut v);
        assert_eq!(v, vec![Sample::new(10, 1.0), Sample::new(20, 2.0)]);
        assert_eq!(st.label_values("job", 0, 100, &[]).unwrap(), vec!["a"]);
    }
}
