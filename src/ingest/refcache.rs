//! A bounded cache from a series' raw label bytes to the storage's
//! [`SeriesHandle`] for it, so a series seen in an earlier request skips
//! validation, label building and the storage's own lookups, and goes straight
//! to [`Appender::append_handle`] (what Prometheus's scrape cache does for
//! scrapes). On the TSDB head a handle holds the series itself, so a cached
//! sample costs one probe here plus the series' lock.
//!
//! Keys are a 128-bit xxh3 hash, seeded randomly per process, of the raw
//! protobuf bytes of the series' labels ([`SeriesView::label_bytes`]). Equal
//! bytes mean equal labels, so a hit is always the right series unless two
//! label sets collide in 128 bits, which the random seed makes impractical to
//! provoke. An entry costs 40 bytes plus the map's spare room.
//!
//! A handle whose series the storage dropped (head truncation) is refused by
//! the storage with `UnknownRef`; the caller then drops the entry and the
//! series takes the full path again. Until then an entry keeps the dropped
//! series' emptied state alive (~200 bytes; the head releases its labels and
//! chunks), bounded by the cache's capacity: a stripe that fills is emptied.
//!
//! [`Appender::append_handle`]: crate::storage::Appender::append_handle
//! [`SeriesView::label_bytes`]: super::decode::SeriesView::label_bytes

use std::collections::HashMap;

use parking_lot::Mutex;

use crate::storage::SeriesHandle;

const STRIPES: usize = 64;

/// The key as two words: a `u128` is 16-byte aligned, which pads an entry
/// (key and 24-byte handle) to 48 bytes; as `[u64; 2]` it takes 40, and
/// the 64 maps of 2048 buckets fit jemalloc's 96 KiB class instead of the
/// 112 KiB one (~10 bytes per cached series, docs/BENCHMARKS.md).
type MapKey = [u64; 2];

type Map = HashMap<MapKey, SeriesHandle, foldhash::fast::FixedState>;

#[inline]
fn map_key(key: u128) -> MapKey {
    [key as u64, (key >> 64) as u64]
}

/// The cache; see the module docs.
#[derive(Debug)]
pub struct RefCache {
    stripes: Box<[Mutex<Map>]>,
    per_stripe: usize,
    seed: u64,
}

/// The stripe of `key`: low bits of a hash are as good as any; always in range.
#[inline]
fn stripe_of(key: u128) -> usize {
    (key as usize) % STRIPES
}

impl RefCache {
    /// A cache holding up to about `capacity` series (0 disables it). A full
    /// stripe is emptied before it takes a new entry, which bounds memory and
    /// costs the evicted series one full lookup each.
    pub fn new(capacity: usize) -> Self {
        RefCache {
            stripes: (0..STRIPES).map(|_| Mutex::new(Map::default())).collect(),
            per_stripe: capacity.div_ceil(STRIPES),
            seed: rand::random(),
        }
    }

    /// The key of `raw_label_bytes`.
    #[inline]
    pub fn key(&self, raw_label_bytes: &[u8]) -> u128 {
        xxhash_rust::xxh3::xxh3_128_with_seed(raw_label_bytes, self.seed)
    }

    #[inline]
    fn stripe(&self, key: u128) -> &Mutex<Map> {
        &self.stripes[stripe_of(key)]
    }

    /// The cached handle for `key`.
    #[inline]
    pub fn get(&self, key: u128) -> Option<SeriesHandle> {
        if self.per_stripe == 0 {
            return None;
        }
        self.stripe(key).lock().get(&map_key(key)).cloned()
    }

    /// The cached handles for all `keys` at once, into `out` (same order).
    ///
    /// Faster than one [`RefCache::get`] per key: each stripe is locked once,
    /// and within a stripe every key is probed first, asking the CPU to fetch
    /// each hit's series, before the handles are cloned, so the cache misses
    /// of a request's series overlap instead of coming one after another.
    pub fn get_many(&self, keys: &[u128], out: &mut Vec<Option<SeriesHandle>>) {
        out.clear();
        out.resize(keys.len(), None);
        if self.per_stripe == 0 || keys.is_empty() {
            return;
        }
        // Key indexes grouped by stripe (counting sort).
        let mut starts = [0u32; STRIPES + 1];
        for &k in keys {
            starts[stripe_of(k) + 1] += 1;
        }
        for i in 0..STRIPES {
            starts[i + 1] += starts[i];
        }
        let mut fill = starts;
        let mut order = vec![0u32; keys.len()];
        for (i, &k) in keys.iter().enumerate() {
            let s = stripe_of(k);
            order[fill[s] as usize] = i as u32;
            fill[s] += 1;
        }
        for st in 0..STRIPES {
            let group = &order[starts[st] as usize..starts[st + 1] as usize];
            if group.is_empty() {
                continue;
            }
            let m = self.stripes[st].lock();
            for &i in group {
                if let Some(h) = m.get(&map_key(keys[i as usize])) {
                    h.prefetch();
                }
            }
            for &i in group {
                out[i as usize] = m.get(&map_key(keys[i as usize])).cloned();
            }
        }
    }

    /// Remembers `h` for `key`.
    pub fn insert(&self, key: u128, h: SeriesHandle) {
        if self.per_stripe == 0 {
            return;
        }
        let mut m = self.stripe(key).lock();
        let k = map_key(key);
        if m.len() >= self.per_stripe && !m.contains_key(&k) {
            m.clear();
        }
        m.insert(k, h);
    }

    /// Forgets `key`.
    pub fn remove(&self, key: u128) {
        self.stripe(key).lock().remove(&map_key(key));
    }

    /// Forgets everything (e.g. when limits change, since a cached series
    /// skips validation).
    pub fn clear(&self) {
        for s in self.stripes.iter() {
            s.lock().clear();
        }
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.stripes.iter().map(|s| s.lock().len()).sum()
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::SeriesRef;

    #[test]
    fn bounded_and_keyed_by_bytes() {
        let c = RefCache::new(128);
        let h = |i: u64| SeriesHandle::from_ref(SeriesRef(i));
        let r = |h: Option<SeriesHandle>| h.map(|h| h.series_ref());
        let k1 = c.key(b"\x0a\x03abc");
        assert_ne!(k1, c.key(b"\x0a\x03abd"));
        assert_eq!(r(c.get(k1)), None);
        c.insert(k1, h(7));
        assert_eq!(r(c.get(k1)), Some(SeriesRef(7)));
        c.remove(k1);
        assert_eq!(r(c.get(k1)), None);
        for i in 0..10_000u32 {
            c.insert(c.key(&i.to_le_bytes()), h(u64::from(i)));
        }
        assert!(c.len() <= 128, "{}", c.len());
        c.clear();
        assert!(c.is_empty());
        let off = RefCache::new(0);
        off.insert(k1, h(1));
        assert_eq!(r(off.get(k1)), None);
        let mut out = Vec::new();
        off.get_many(&[k1], &mut out);
        assert_eq!(out.len(), 1);
        assert!(out[0].is_none());
    }

    #[test]
    fn get_many_answers_like_get_in_key_order() {
        let c = RefCache::new(100_000);
        let keys: Vec<u128> = (0..5000u32).map(|i| c.key(&i.to_le_bytes())).collect();
        for (i, &k) in keys.iter().enumerate() {
            if i % 3 != 0 {
                c.insert(k, SeriesHandle::from_ref(SeriesRef(i as u64)));
            }
        }
        // Repeated keys and misses mixed in.
        let mut ask = keys.clone();
        ask.extend_from_slice(&keys[..100]);
        let mut out = Vec::new();
        c.get_many(&ask, &mut out);
        assert_eq!(out.len(), ask.len());
        for (i, (k, got)) in ask.iter().zip(&out).enumerate() {
            let want = c.get(*k).map(|h| h.series_ref());
            assert_eq!(got.as_ref().map(|h| h.series_ref()), want, "key {i}");
            assert_eq!(want.is_some(), (i % 5000) % 3 != 0, "key {i}");
        }
    }
}
