//! A read-only view of a TSDB with rule output layered on top in memory:
//! backtesting reads the stored data and its own recording results, but never
//! writes to the data directory.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::model::{Labels, Matcher, Sample};
use crate::storage::memory::MemStorage;
use crate::storage::{Appendable, Appender, Queryable, Series, StorageError, VecSampleIterator};

/// Reads `base` and `top` merged; writes go to `top` only.
pub struct Overlay {
    /// The stored data (read only).
    pub base: Arc<dyn Queryable>,
    /// What rules wrote during this run.
    pub top: Arc<MemStorage>,
}

fn merge(a: Vec<Sample>, b: Vec<Sample>) -> Vec<Sample> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        let take_a = j >= b.len() || (i < a.len() && a[i].t <= b[j].t);
        let s = if take_a {
            i += 1;
            a[i - 1]
        } else {
            j += 1;
            b[j - 1]
        };
        // Same timestamp in both: keep the first (stored data wins).
        if out.last().is_none_or(|l: &Sample| l.t != s.t) {
            out.push(s);
        }
    }
    out
}

fn collect(series: Vec<Series>, into: &mut BTreeMap<Labels, Vec<Sample>>) {
    for mut s in series {
        let mut v = Vec::new();
        s.samples.collect_into(&mut v);
        match into.remove(&s.labels) {
            Some(prev) => {
                into.insert(s.labels, merge(prev, v));
            }
            None => {
                into.insert(s.labels, v);
            }
        }
    }
}

fn union(mut a: Vec<String>, b: Vec<String>) -> Vec<String> {
    a.extend(b);
    a.sort();
    a.dedup();
    a
}

impl Queryable for Overlay {
    fn select(&self, mint: i64, maxt: i64, matchers: &[Matcher]) -> Result<Vec<Series>, StorageError> {
        let top = self.top.select(mint, maxt, matchers)?;
        if top.is_empty() {
            // The common case (stored metrics, not rule output): no copy.
            return self.base.select(mint, maxt, matchers);
        }
        let mut all = BTreeMap::new();
        collect(self.base.select(mint, maxt, matchers)?, &mut all);
        collect(top, &mut all);
        Ok(all
            .into_iter()
            .map(|(labels, samples)| Series { labels, samples: Box::new(VecSampleIterator::new(samples)) })
            .collect())
    }

    fn label_names(&self, mint: i64, maxt: i64, matchers: &[Matcher]) -> Result<Vec<String>, StorageError> {
        Ok(union(self.base.label_names(mint, maxt, matchers)?, self.top.label_names(mint, maxt, matchers)?))
    }

    fn label_values(
        &self,
        name: &str,
        mint: i64,
        maxt: i64,
        matchers: &[Matcher],
    ) -> Result<Vec<String>, StorageError> {
        Ok(union(
            self.base.label_values(name, mint, maxt, matchers)?,
            self.top.label_values(name, mint, maxt, matchers)?,
        ))
    }
}

impl Appendable for Overlay {
    fn appender(&self) -> Box<dyn Appender + '_> {
        self.top.appender()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::labels;

    #[test]
    fn reads_both_writes_top() {
        let base = Arc::new(MemStorage::new());
        let mut app = base.appender();
        app.append(&labels!("__name__" => "x"), 1000, 1.0).unwrap();
        app.append(&labels!("__name__" => "x"), 3000, 3.0).unwrap();
        app.commit().unwrap();
        let top = Arc::new(MemStorage::new());
        let o = Overlay { base: base.clone(), top };
        let mut app = o.appender();
        app.append(&labels!("__name__" => "x"), 2000, 2.0).unwrap();
        app.append(&labels!("__name__" => "y"), 2000, 9.0).unwrap();
        app.commit().unwrap();
        let got = o.select(0, 10_000, &[]).unwrap();
        assert_eq!(got.len(), 2);
        let mut s = Vec::new();
        let mut it = got.into_iter();
        it.next().unwrap().samples.collect_into(&mut s);
        assert_eq!(s.iter().map(|s| s.t).collect::<Vec<_>>(), vec![1000, 2000, 3000]);
        assert_eq!(base.select(0, 10_000, &[]).unwrap().len(), 1, "base untouched");
        assert_eq!(o.label_values("__name__", 0, 10_000, &[]).unwrap(), vec!["x", "y"]);
    }
}
