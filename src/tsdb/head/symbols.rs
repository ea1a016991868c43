//! The head's symbol table: every distinct label name and value of the live
//! series stored once, and each series' labels as a short list of symbol ids
//! ([`SeriesLabels`]) instead of its own copy of the strings (the idea of
//! Prometheus's `dedupelabels` build). With ~10 labels drawn from a few
//! thousand distinct strings a series keeps ~20–40 bytes instead of ~200.
//!
//! Symbols are reference counted, one reference per occurrence in a series:
//! when the head drops a series ([`SymbolTable::release`]) the strings no
//! other series uses are freed and their ids reused, so the table is bounded
//! by the live series.
//!
//! # Locking
//!
//! One `RwLock`: readers (queries turning ids back into strings, lookups
//! comparing a series with incoming labels) share it; series creation and
//! removal take it for writing, for a few hash lookups per label. It is
//! always the innermost lock: held only while copying strings in or out,
//! never while taking a stripe or series lock, so it cannot take part in a
//! lock-order cycle.

use std::collections::HashMap;

use parking_lot::{RwLock, RwLockReadGuard};

use crate::model::Labels;

/// Keys are already hashes (xxh3 of the string): the map only needs to spread them.
type HashKeyed<V> = HashMap<u64, V, foldhash::fast::RandomState>;

/// One series' labels as varint-encoded `(name id, value id)` pairs, in the
/// labels' (name) order. Meaningful only with the [`SymbolTable`] that made
/// it, and only while it holds its references (until released).
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct SeriesLabels(Box<[u8]>);

impl SeriesLabels {
    /// The encoded ids (for prefetching).
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Heap bytes held.
    pub fn heap_size(&self) -> usize {
        self.0.len()
    }

    /// The `(name id, value id)` pairs.
    fn pairs(&self) -> IdPairs<'_> {
        IdPairs { data: &self.0, pos: 0 }
    }
}

#[derive(Clone)]
struct IdPairs<'a> {
    data: &'a [u8],
    pos: usize,
}

impl IdPairs<'_> {
    fn id(&mut self) -> Option<u32> {
        let mut n: u32 = 0;
        for shift in (0..35).step_by(7) {
            let b = *self.data.get(self.pos)?;
            self.pos += 1;
            n |= ((b & 0x7f) as u32) << shift;
            if b < 0x80 {
                return Some(n);
            }
        }
        None
    }
}

impl Iterator for IdPairs<'_> {
    type Item = (u32, u32);

    fn next(&mut self) -> Option<(u32, u32)> {
        if self.pos >= self.data.len() {
            return None;
        }
        Some((self.id()?, self.id()?))
    }
}

fn put_id(out: &mut Vec<u8>, mut n: u32) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// One symbol: the string and how many series occurrences use it (0 = free slot).
#[derive(Debug, Default)]
struct Slot {
    s: Box<str>,
    refs: u32,
}

#[derive(Debug, Default)]
struct Inner {
    /// Id → symbol. Free slots hold an empty string and no references.
    slots: Vec<Slot>,
    /// String hash → the first id with that hash.
    by_hash: HashKeyed<u32>,
    /// String hash → further ids with the same hash (a 64-bit collision; practically never).
    more: HashKeyed<Vec<u32>>,
    /// Free slot ids, reused before the table grows.
    free: Vec<u32>,
    /// Bytes of the live strings.
    str_bytes: usize,
}

fn hash_str(s: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(s.as_bytes())
}

impl Inner {
    fn str(&self, id: u32) -> &str {
        self.slots.get(id as usize).map_or("", |s| &s.s)
    }

    fn find(&self, hash: u64, s: &str) -> Option<u32> {
        let first = self.by_hash.get(&hash).copied();
        let more = self.more.get(&hash).map_or(&[][..], |v| v.as_slice());
        first.into_iter().chain(more.iter().copied()).find(|&id| self.str(id) == s)
    }

    /// The id of `s` with one more reference, added when new.
    fn acquire(&mut self, hash: u64, s: &str) -> u32 {
        if let Some(id) = self.find(hash, s) {
            self.slots[id as usize].refs += 1;
            return id;
        }
        let slot = Slot { s: s.into(), refs: 1 };
        self.str_bytes += s.len();
        let id = match self.free.pop() {
            Some(id) => {
                self.slots[id as usize] = slot;
                id
            }
            None => {
                self.slots.push(slot);
                (self.slots.len() - 1) as u32
            }
        };
        match self.by_hash.get(&hash) {
            Some(_) => self.more.entry(hash).or_default().push(id),
            None => {
                self.by_hash.insert(hash, id);
            }
        }
        id
    }

    /// Drops one reference to `id`, freeing the symbol at zero.
    fn release(&mut self, id: u32) {
        let Some(slot) = self.slots.get_mut(id as usize) else { return };
        if slot.refs == 0 {
            return;
        }
        slot.refs -= 1;
        if slot.refs > 0 {
            return;
        }
        let s = std::mem::take(&mut slot.s);
        self.str_bytes -= s.len();
        let hash = hash_str(&s);
        if self.by_hash.get(&hash) == Some(&id) {
            match self.more.get_mut(&hash).and_then(|v| v.pop()) {
                Some(next) => {
                    self.by_hash.insert(hash, next);
                }
                None => {
                    self.by_hash.remove(&hash);
                }
            }
        } else if let Some(v) = self.more.get_mut(&hash) {
            v.retain(|&x| x != id);
        }
        if self.more.get(&hash).is_some_and(|v| v.is_empty()) {
            self.more.remove(&hash);
        }
        self.free.push(id);
    }
}

/// Label names and values of the head's series, each stored once.
#[derive(Debug, Default)]
pub(crate) struct SymbolTable {
    inner: RwLock<Inner>,
}

impl SymbolTable {
    /// Encodes `labels` as symbol ids, taking one reference per label name
    /// and value (creating the symbols that are new).
    pub fn intern(&self, labels: &Labels) -> SeriesLabels {
        // Hash outside the lock; the write lock then costs a lookup per string.
        let hashes: Vec<(u64, u64)> = labels.iter().map(|l| (hash_str(l.name), hash_str(l.value))).collect();
        let mut out = Vec::with_capacity(hashes.len() * 4);
        let mut inner = self.inner.write();
        for (l, (hn, hv)) in labels.iter().zip(hashes) {
            put_id(&mut out, inner.acquire(hn, l.name));
            put_id(&mut out, inner.acquire(hv, l.value));
        }
        drop(inner);
        SeriesLabels(out.into_boxed_slice())
    }

    /// Gives back the references of series that left the head, returning
    /// each one's labels (wanted by the caller to unindex it). Symbols no
    /// series uses any more are freed.
    pub fn release<K>(&self, series: Vec<(K, SeriesLabels)>) -> Vec<(K, Labels)> {
        let mut inner = self.inner.write();
        let mut out = Vec::with_capacity(series.len());
        for (k, sl) in series {
            let labels = materialise(&inner, &sl);
            for (n, v) in sl.pairs() {
                inner.release(n);
                inner.release(v);
            }
            out.push((k, labels));
        }
        out
    }

    /// Shared access for turning ids back into strings.
    pub fn read(&self) -> SymbolsRead<'_> {
        SymbolsRead(self.inner.read())
    }

    /// Number of live symbols.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        let inner = self.inner.read();
        inner.slots.len() - inner.free.len()
    }

    /// Number of symbol slots, free ones included.
    #[cfg(test)]
    pub fn slots_len(&self) -> usize {
        self.inner.read().slots.len()
    }

    /// Approximate heap bytes (strings, slots and maps).
    pub fn heap_size(&self) -> usize {
        let inner = self.inner.read();
        inner.str_bytes
            + inner.slots.capacity() * std::mem::size_of::<Slot>()
            + inner.by_hash.capacity() * 16
            + inner.free.capacity() * 4
    }
}

/// A read lock on the symbol table. Hold it briefly: series creation waits for it.
pub(crate) struct SymbolsRead<'a>(RwLockReadGuard<'a, Inner>);

impl SymbolsRead<'_> {
    /// The label set `s` encodes, built in one allocation.
    pub fn labels(&self, s: &SeriesLabels) -> Labels {
        materialise(&self.0, s)
    }

    /// Whether `s` encodes exactly `labels` (no allocation).
    pub fn equals(&self, s: &SeriesLabels, labels: &Labels) -> bool {
        let mut ids = s.pairs();
        let mut ls = labels.iter();
        loop {
            match (ids.next(), ls.next()) {
                (None, None) => return true,
                (Some((n, v)), Some(l)) => {
                    if self.0.str(n) != l.name || self.0.str(v) != l.value {
                        return false;
                    }
                }
                _ => return false,
            }
        }
    }
}

fn materialise(inner: &Inner, s: &SeriesLabels) -> Labels {
    Labels::from_sorted_trusted(s.pairs().map(|(n, v)| (inner.str(n), inner.str(v))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::labels;

    #[test]
    fn round_trips_and_shares_strings() {
        let t = SymbolTable::default();
        let a = labels!("__name__" => "up", "job" => "api", "instance" => "10.0.0.1:80");
        let b = labels!("__name__" => "up", "job" => "db", "instance" => "10.0.0.1:80");
        let sa = t.intern(&a);
        let sb = t.intern(&b);
        let r = t.read();
        assert_eq!(r.labels(&sa), a);
        assert_eq!(r.labels(&sb), b);
        assert!(r.equals(&sa, &a) && !r.equals(&sa, &b) && !r.equals(&sb, &a));
        assert!(!r.equals(&sa, &labels!("__name__" => "up", "job" => "api")));
        drop(r);
        // __name__ up job api db instance 10.0.0.1:80
        assert_eq!(t.len(), 7);
        // 3 labels, ids below 128: 6 bytes.
        assert_eq!(sa.heap_size(), 6);
    }

    #[test]
    fn release_frees_unused_symbols_and_reuses_ids() {
        let t = SymbolTable::default();
        let a = labels!("__name__" => "up", "job" => "api");
        let b = labels!("__name__" => "up", "job" => "db");
        let sa = t.intern(&a);
        let sb = t.intern(&b);
        assert_eq!(t.len(), 5);
        let back = t.release(vec![(1u32, sa)]);
        assert_eq!(back, vec![(1, a.clone())]);
        // "api" is gone, the shared ones stay.
        assert_eq!(t.len(), 4);
        assert_eq!(t.read().labels(&sb), b);
        // The freed id is taken by the next new string; the set stays the same size.
        let c = labels!("__name__" => "up", "job" => "web");
        let sc = t.intern(&c);
        assert_eq!(t.len(), 5);
        assert_eq!(t.slots_len(), 5);
        assert_eq!(t.read().labels(&sc), c);
        // The same labels again share every symbol.
        let sb2 = t.intern(&b);
        assert_eq!(sb2, sb);
        t.release(vec![(2u32, sb), (3, sc), (4, sb2)]);
        assert_eq!(t.len(), 0);
        let inner = t.inner.read();
        assert!(inner.by_hash.is_empty() && inner.more.is_empty());
        assert_eq!(inner.str_bytes, 0);
    }

    #[test]
    fn colliding_hashes_stay_distinct() {
        // Force a collision by inserting two strings under the same hash.
        let mut inner = Inner::default();
        let a = inner.acquire(7, "a");
        let b = inner.acquire(7, "b");
        assert_ne!(a, b);
        assert_eq!(inner.find(7, "a"), Some(a));
        assert_eq!(inner.find(7, "b"), Some(b));
        assert_eq!(inner.acquire(7, "b"), b);
        assert_eq!(inner.slots[b as usize].refs, 2);
    }

    #[test]
    fn many_ids_use_multi_byte_varints() {
        let t = SymbolTable::default();
        let mut held = Vec::new();
        for i in 0..20_000 {
            let l = labels!("__name__" => "m", "i" => format!("v{i}").as_str());
            held.push((i, t.intern(&l)));
        }
        let r = t.read();
        for (i, s) in &held {
            assert_eq!(r.labels(s), labels!("__name__" => "m", "i" => format!("v{i}").as_str()));
        }
        drop(r);
        assert_eq!(t.len(), 3 + 20_000);
        let back = t.release(held);
        assert_eq!(back.len(), 20_000);
        assert_eq!(back[19_999].1.get("i"), Some("v19999"));
        assert_eq!(t.len(), 0);
    }

    #[test]
    fn concurrent_interning_and_reading() {
        let t = SymbolTable::default();
        std::thread::scope(|sc| {
            for w in 0..4 {
                let t = &t;
                sc.spawn(move || {
                    let mut kept = Vec::new();
                    for i in 0..2_000 {
                        let l = labels!("__name__" => "m", "w" => format!("{w}").as_str(), "i" => format!("{}", i % 100).as_str());
                        let s = t.intern(&l);
                        assert_eq!(t.read().labels(&s), l);
                        if i % 2 == 0 {
                            t.release(vec![((), s)]);
                        } else {
                            kept.push(s);
                        }
                    }
                    kept
                });
            }
        });
        // Kept: "__name__" "m" "w" "i", the odd values "1".."99" (50) of "i",
        // and of the workers' "0".."3" the even two not among them.
        assert_eq!(t.len(), 4 + 50 + 2);
    }
}
