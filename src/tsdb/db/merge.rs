//! Merging the answers of several queryables (blocks and the head) into one:
//! series with equal labels are joined in time order and samples with the
//! same timestamp are kept once (the first source's, in the order given).

use crate::model::{Labels, Matcher, Sample};
use crate::storage::{Queryable, SampleIterator, Series, StorageError};

/// Merges per-source `select` results, each sorted by labels, into one list
/// sorted by labels with one entry per label set.
pub(crate) fn merge_series(sources: Vec<Vec<Series>>) -> Vec<Series> {
    let nonempty = sources.iter().filter(|s| !s.is_empty()).count();
    if nonempty <= 1 {
        return sources.into_iter().find(|s| !s.is_empty()).unwrap_or_default();
    }
    let mut all: Vec<(usize, Series)> =
        sources.into_iter().enumerate().flat_map(|(i, list)| list.into_iter().map(move |s| (i, s))).collect();
    // Stable: equal labels stay in source order, which decides duplicates.
    all.sort_by(|a, b| a.1.labels.cmp(&b.1.labels).then(a.0.cmp(&b.0)));
    let mut out: Vec<Series> = Vec::with_capacity(all.len());
    let mut group: Vec<Box<dyn SampleIterator>> = Vec::new();
    let mut labels: Option<Labels> = None;
    for (_, s) in all {
        if labels.as_ref() != Some(&s.labels) {
            if let Some(l) = labels.take() {
                out.push(finish_group(l, std::mem::take(&mut group)));
            }
            labels = Some(s.labels);
        }
        group.push(s.samples);
    }
    if let Some(l) = labels {
        out.push(finish_group(l, group));
    }
    out
}

fn finish_group(labels: Labels, mut its: Vec<Box<dyn SampleIterator>>) -> Series {
    if its.len() == 1 {
        if let Some(it) = its.pop() {
            return Series { labels, samples: it };
        }
    }
    Series { labels, samples: Box::new(MergedSamples::new(its)) }
}

/// Time-ordered union of several iterators, duplicates by timestamp removed.
pub(crate) struct MergedSamples {
    heads: Vec<(Option<Sample>, Box<dyn SampleIterator>)>,
}

impl MergedSamples {
    pub(crate) fn new(its: Vec<Box<dyn SampleIterator>>) -> Self {
        let heads = its.into_iter().map(|mut it| (it.next_sample(), it)).filter(|(s, _)| s.is_some()).collect();
        MergedSamples { heads }
    }
}

impl SampleIterator for MergedSamples {
    fn next_sample(&mut self) -> Option<Sample> {
        // Few sources (blocks overlapping a query plus the head): a linear scan
        // beats a heap here.
        let mut best: Option<(usize, Sample)> = None;
        for (i, (s, _)) in self.heads.iter().enumerate() {
            if let Some(s) = s {
                if best.is_none_or(|(_, b)| s.t < b.t) {
                    best = Some((i, *s));
                }
            }
        }
        let (_, out) = best?;
        for (s, it) in self.heads.iter_mut() {
            if s.is_some_and(|x| x.t == out.t) {
                *s = it.next_sample();
            }
        }
        self.heads.retain(|(s, _)| s.is_some());
        Some(out)
    }
}

/// A [`Queryable`] over several others, merged as above.
pub(crate) struct MergeQueryable<'a> {
    pub(crate) sources: Vec<&'a dyn Queryable>,
}

impl Queryable for MergeQueryable<'_> {
    fn select(&self, mint: i64, maxt: i64, matchers: &[Matcher]) -> Result<Vec<Series>, StorageError> {
        let lists = self.sources.iter().map(|q| q.select(mint, maxt, matchers)).collect::<Result<Vec<_>, _>>()?;
        Ok(merge_series(lists))
    }

    fn label_names(&self, mint: i64, maxt: i64, matchers: &[Matcher]) -> Result<Vec<String>, StorageError> {
        merge_sorted(self.sources.iter().map(|q| q.label_names(mint, maxt, matchers)))
    }

    fn label_values(
        &self,
        name: &str,
        mint: i64,
        maxt: i64,
        matchers: &[Matcher],
    ) -> Result<Vec<String>, StorageError> {
        merge_sorted(self.sources.iter().map(|q| q.label_values(name, mint, maxt, matchers)))
    }
}

/// Sorted, deduplicated union of sorted string lists.
pub(crate) fn merge_sorted(
    lists: impl Iterator<Item = Result<Vec<String>, StorageError>>,
) -> Result<Vec<String>, StorageError> {
    let mut all = Vec::new();
    for l in lists {
        all.extend(l?);
    }
    all.sort_unstable();
    all.dedup();
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::labels;
    use crate::storage::VecSampleIterator;

    fn series(l: Labels, ts: &[(i64, f64)]) -> Series {
        Series {
            labels: l,
            samples: Box::new(VecSampleIterator::new(ts.iter().map(|&(t, v)| Sample::new(t, v)).collect())),
        }
    }

    #[test]
    fn joins_equal_labels_in_time_order_without_duplicates() {
        let a = labels!("x" => "a");
        let b = labels!("x" => "b");
        let c = labels!("x" => "c");
        let s1 = vec![series(a.clone(), &[(1, 1.0), (5, 5.0)]), series(c.clone(), &[(1, 9.0)])];
        let s2 = vec![series(a.clone(), &[(3, 3.0), (5, 50.0), (7, 7.0)]), series(b.clone(), &[(2, 2.0)])];
        let out = merge_series(vec![s1, vec![], s2]);
        let got: Vec<(Labels, Vec<(i64, f64)>)> = out
            .into_iter()
            .map(|mut s| {
                let mut v = Vec::new();
                s.samples.collect_into(&mut v);
                (s.labels, v.into_iter().map(|x| (x.t, x.v)).collect())
            })
            .collect();
        assert_eq!(
            got,
            vec![(a, vec![(1, 1.0), (3, 3.0), (5, 5.0), (7, 7.0)]), (b, vec![(2, 2.0)]), (c, vec![(1, 9.0)]),]
        );
    }
}
