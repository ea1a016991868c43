//! Set operations on postings: sorted, duplicate-free lists of series ids
//! (head) or ordinals (blocks). Pure functions over slices, shared by both indexes.

/// Series in both `a` and `b`.
pub(crate) fn intersect(a: &[u32], b: &[u32]) -> Vec<u32> {
    let (small, large) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    let mut out = Vec::with_capacity(small.len());
    // Galloping is unnecessary at our sizes when one side is much smaller:
    // a binary search per element of the small list does the same job.
    if small.len() * 16 < large.len() {
        let mut lo = 0;
        for &x in small {
            match large[lo..].binary_search(&x) {
                Ok(i) => {
                    out.push(x);
                    lo += i + 1;
                }
                Err(i) => lo += i,
            }
        }
        return out;
    }
    let (mut i, mut j) = (0, 0);
    while i < small.len() && j < large.len() {
        match small[i].cmp(&large[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                out.push(small[i]);
                i += 1;
                j += 1;
            }
        }
    }
    out
}

/// Series in `a` but not in `b`.
pub(crate) fn subtract(a: &[u32], b: &[u32]) -> Vec<u32> {
    let mut out = Vec::with_capacity(a.len());
    let mut j = 0;
    for &x in a {
        while j < b.len() && b[j] < x {
            j += 1;
        }
        if j >= b.len() || b[j] != x {
            out.push(x);
        }
    }
    out
}

/// Series in any of `lists`.
pub(crate) fn union<L: AsRef<[u32]>>(lists: Vec<L>) -> Vec<u32> {
    match lists.as_slice() {
        [] => Vec::new(),
        [one] => one.as_ref().to_vec(),
        _ => {
            let mut all: Vec<u32> = lists.iter().flat_map(|l| l.as_ref().iter().copied()).collect();
            all.sort_unstable();
            all.dedup();
            all
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    fn set() -> impl Strategy<Value = Vec<u32>> {
        proptest::collection::btree_set(0u32..300, 0..120).prop_map(|s| s.into_iter().collect())
    }

    proptest! {
        #[test]
        fn ops_match_btreeset(a in set(), b in set(), c in set()) {
            let (sa, sb, sc): (BTreeSet<u32>, BTreeSet<u32>, BTreeSet<u32>) =
                (a.iter().copied().collect(), b.iter().copied().collect(), c.iter().copied().collect());
            prop_assert_eq!(intersect(&a, &b), sa.intersection(&sb).copied().collect::<Vec<_>>());
            prop_assert_eq!(subtract(&a, &b), sa.difference(&sb).copied().collect::<Vec<_>>());
            let u: BTreeSet<u32> = sa.union(&sb).copied().collect::<BTreeSet<_>>().union(&sc).copied().collect();
            prop_assert_eq!(union(vec![a.clone(), b.clone(), c.clone()]), u.into_iter().collect::<Vec<_>>());
        }
    }

    #[test]
    fn galloping_path_is_exact() {
        let large: Vec<u32> = (0..10_000).map(|x| x * 3).collect();
        let small = vec![0, 1, 3, 2999, 3000, 29_997, 40_000];
        assert_eq!(intersect(&small, &large), vec![0, 3, 3000, 29_997]);
        assert_eq!(intersect(&large, &small), vec![0, 3, 3000, 29_997]);
    }
}
