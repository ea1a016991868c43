//! A bounded cache from a series' raw label bytes to its [`SeriesRef`], so a
//! series seen in an earlier request skips validation, label building and the
//! storage's label lookup, and goes straight to [`Appender::append_ref`]
//! (what Prometheus's scrape cache does for scrapes).
//!
//! Keys are a 128-bit xxh3 hash, seeded randomly per process, of the raw
//! protobuf bytes of the series' labels ([`SeriesView::label_bytes`]): about
//! 40 bytes of memory per cached series instead of the label text. Equal
//! bytes mean equal labels, so a hit is always the right series unless two
//! label sets collide in 128 bits, which the random seed makes impractical to
//! provoke.
//!
//! Refs are valid for the life of a storage instance (the seam's contract);
//! a ref the storage no longer knows (`UnknownRef`, after head truncation)
//! drops the entry and the series takes the full path again.
//!
//! [`Appender::append_ref`]: crate::storage::Appender::append_ref
//! [`SeriesView::label_bytes`]: super::decode::SeriesView::label_bytes

use std::collections::HashMap;

use parking_lot::Mutex;

use crate::storage::SeriesRef;

const STRIPES: usize = 64;

type Map = HashMap<u128, SeriesRef, foldhash::fast::FixedState>;

/// The cache; see the module docs.
#[derive(Debug)]
pub struct RefCache {
    stripes: Box<[Mutex<Map>]>,
    per_stripe: usize,
    seed: u64,
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
        // Low bits of a hash are as good as any; the index is in range.
        &self.stripes[(key as usize) % STRIPES]
    }

    /// The cached ref for `key`.
    #[inline]
    pub fn get(&self, key: u128) -> Option<SeriesRef> {
        if self.per_stripe == 0 {
            return None;
        }
        self.stripe(key).lock().get(&key).copied()
    }

    /// Remembers `r` for `key`.
    pub fn insert(&self, key: u128, r: SeriesRef) {
        if self.per_stripe == 0 {
            return;
        }
        let mut m = self.stripe(key).lock();
        if m.len() >= self.per_stripe && !m.contains_key(&key) {
            m.clear();
        }
        m.insert(key, r);
    }

    /// Forgets `key`.
    pub fn remove(&self, key: u128) {
        self.stripe(key).lock().remove(&key);
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

    #[test]
    fn bounded_and_keyed_by_bytes() {
        let c = RefCache::new(128);
        let k1 = c.key(b"\x0a\x03abc");
        assert_ne!(k1, c.key(b"\x0a\x03abd"));
        assert_eq!(c.get(k1), None);
        c.insert(k1, SeriesRef(7));
        assert_eq!(c.get(k1), Some(SeriesRef(7)));
        c.remove(k1);
        assert_eq!(c.get(k1), None);
        for i in 0..10_000u32 {
            c.insert(c.key(&i.to_le_bytes()), SeriesRef(u64::from(i)));
        }
        assert!(c.len() <= 128, "{}", c.len());
        c.clear();
        assert!(c.is_empty());
        let off = RefCache::new(0);
        off.insert(k1, SeriesRef(1));
        assert_eq!(off.get(k1), None);
    }
}
