//! The inverted index: label name → value → sorted series ids, and matcher
//! selection over it (Prometheus's `PostingsForMatchers`).

use std::collections::HashMap;

use crate::model::{Labels, MatchOp, Matcher};
use crate::tsdb::postings::{intersect, subtract, union};

type FoldMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// Postings of the head. Ids are the low 32 bits of series refs.
#[derive(Default)]
pub(crate) struct Index {
    names: FoldMap<Box<str>, FoldMap<Box<str>, Vec<u32>>>,
}

/// Inserts `id` keeping `list` sorted (ids mostly arrive in increasing order).
fn insert_sorted(list: &mut Vec<u32>, id: u32) {
    match list.last() {
        Some(&l) if l < id => list.push(id),
        None => list.push(id),
        _ => {
            if let Err(i) = list.binary_search(&id) {
                list.insert(i, id);
            }
        }
    }
}

impl Index {
    pub fn add(&mut self, id: u32, labels: &Labels) {
        for l in labels.iter() {
            let values = match self.names.get_mut(l.name) {
                Some(v) => v,
                None => self.names.entry(l.name.into()).or_default(),
            };
            match values.get_mut(l.value) {
                Some(list) => insert_sorted(list, id),
                None => {
                    values.insert(l.value.into(), vec![id]);
                }
            }
        }
    }

    /// Removes many ids at once.
    pub fn remove(&mut self, removed: &[(u32, Labels)]) {
        let mut ids: Vec<u32> = removed.iter().map(|(i, _)| *i).collect();
        ids.sort_unstable();
        for (_, labels) in removed {
            for l in labels.iter() {
                let Some(values) = self.names.get_mut(l.name) else { continue };
                if let Some(list) = values.get_mut(l.value) {
                    list.retain(|x| ids.binary_search(x).is_err());
                    if list.is_empty() {
                        values.remove(l.value);
                    } else if list.capacity() > list.len() * 2 {
                        list.shrink_to_fit();
                    }
                }
                if values.is_empty() {
                    self.names.remove(l.name);
                }
            }
        }
    }

    /// Sorted ids of the series that carry `name` with any value matching `pred`.
    fn ids_where(&self, name: &str, mut pred: impl FnMut(&str) -> bool) -> Vec<u32> {
        let Some(values) = self.names.get(name) else { return Vec::new() };
        union(values.iter().filter(|(v, _)| pred(v)).map(|(_, l)| l.as_slice()).collect())
    }

    /// Series ids matching one matcher that does not match the empty value.
    fn positive(&self, m: &Matcher) -> Vec<u32> {
        match m.op {
            MatchOp::Equal => {
                self.names.get(m.name.as_str()).and_then(|v| v.get(m.value.as_str())).cloned().unwrap_or_default()
            }
            MatchOp::RegexMatch => match m.set_matches() {
                Some(set) => {
                    let Some(values) = self.names.get(m.name.as_str()) else { return Vec::new() };
                    union(set.iter().filter_map(|v| values.get(v.as_str()).map(|l| l.as_slice())).collect())
                }
                None => self.ids_where(&m.name, |v| m.matches(v)),
            },
            _ => self.ids_where(&m.name, |v| m.matches(v)),
        }
    }

    /// Sorted ids of series satisfying every matcher; `all` lists every id.
    pub fn select(&self, matchers: &[Matcher], all: impl FnOnce() -> Vec<u32>) -> Vec<u32> {
        let mut acc: Option<Vec<u32>> = None;
        let mut negatives = Vec::new();
        for m in matchers {
            if m.matches_empty() {
                negatives.push(m);
                continue;
            }
            let ids = self.positive(m);
            acc = Some(match acc {
                None => ids,
                Some(a) => intersect(&a, &ids),
            });
            if acc.as_ref().is_some_and(|a| a.is_empty()) {
                return Vec::new();
            }
        }
        let mut acc = match acc {
            Some(a) => a,
            None => all(),
        };
        for m in negatives {
            // The matcher accepts series without the label; drop those whose
            // non-empty value it rejects.
            let reject = self.ids_where(&m.name, |v| !m.matches(v));
            acc = subtract(&acc, &reject);
        }
        acc
    }

    /// Every label name, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.names.keys().map(|k| k.to_string()).collect();
        v.sort_unstable();
        v
    }

    /// Every value of `name`, sorted.
    pub fn values(&self, name: &str) -> Vec<String> {
        let mut v: Vec<String> =
            self.names.get(name).map(|m| m.keys().map(|k| k.to_string()).collect()).unwrap_or_default();
        v.sort_unstable();
        v
    }

    /// (name, number of values, series carrying it, bytes of values) for every name.
    pub fn name_stats(&self) -> Vec<(String, u64, u64, u64)> {
        self.names
            .iter()
            .map(|(n, vals)| {
                let series: usize = vals.values().map(Vec::len).sum();
                let bytes: usize = vals.iter().map(|(v, l)| v.len() * l.len()).sum();
                (n.to_string(), vals.len() as u64, series as u64, bytes as u64)
            })
            .collect()
    }

    /// (name=value, series count) for every pair.
    pub fn pair_counts(&self) -> Vec<(String, u64)> {
        let mut out = Vec::new();
        for (n, vals) in &self.names {
            for (v, l) in vals {
                out.push((format!("{n}={v}"), l.len() as u64));
            }
        }
        out
    }

    /// Series per metric name.
    pub fn metric_counts(&self) -> Vec<(String, u64)> {
        self.names
            .get(crate::model::METRIC_NAME)
            .map(|vals| vals.iter().map(|(v, l)| (v.to_string(), l.len() as u64)).collect())
            .unwrap_or_default()
    }

    /// Heap bytes of postings lists (capacity).
    pub fn heap_size(&self) -> usize {
        self.names
            .iter()
            .map(|(n, vals)| n.len() + 64 + vals.iter().map(|(v, l)| v.len() + 48 + l.capacity() * 4).sum::<usize>())
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::labels;

    fn idx() -> Index {
        let mut i = Index::default();
        i.add(1, &labels!("__name__" => "up", "job" => "a"));
        i.add(2, &labels!("__name__" => "up", "job" => "b", "env" => "prod"));
        i.add(3, &labels!("__name__" => "down", "job" => "a", "env" => "dev"));
        i
    }

    fn sel(i: &Index, ms: &[Matcher]) -> Vec<u32> {
        i.select(ms, || vec![1, 2, 3])
    }

    #[test]
    fn matchers_select_like_prometheus() {
        let i = idx();
        let m = |op, n: &str, v: &str| Matcher::new(op, n, v).unwrap();
        assert_eq!(sel(&i, &[m(MatchOp::Equal, "__name__", "up")]), vec![1, 2]);
        assert_eq!(sel(&i, &[m(MatchOp::NotEqual, "job", "a")]), vec![2]);
        assert_eq!(sel(&i, &[m(MatchOp::Equal, "env", "")]), vec![1]);
        assert_eq!(sel(&i, &[m(MatchOp::NotEqual, "env", "")]), vec![2, 3]);
        assert_eq!(sel(&i, &[m(MatchOp::RegexMatch, "env", "prod|")]), vec![1, 2]);
        assert_eq!(sel(&i, &[m(MatchOp::RegexMatch, "env", "p.*|d.*")]), vec![2, 3]);
        assert_eq!(sel(&i, &[m(MatchOp::RegexNoMatch, "env", "prod")]), vec![1, 3]);
        assert_eq!(sel(&i, &[m(MatchOp::RegexMatch, "job", ".*"), m(MatchOp::Equal, "__name__", "up")]), vec![1, 2]);
        assert_eq!(sel(&i, &[m(MatchOp::Equal, "__name__", "up"), m(MatchOp::Equal, "job", "c")]), Vec::<u32>::new());
        assert_eq!(sel(&i, &[]), vec![1, 2, 3]);
        let mut i = i;
        i.remove(&[(2, labels!("__name__" => "up", "job" => "b", "env" => "prod"))]);
        assert_eq!(sel(&i, &[m(MatchOp::Equal, "__name__", "up")]), vec![1]);
        assert_eq!(i.values("env"), vec!["dev"]);
    }
}
