//! Reading the head: per-series sample iterators and the `Queryable` impl.

use std::cmp::Ordering;
use std::ops::ControlFlow;

use super::chunk_disk::{ChunkData, ChunkView};
use super::series::{ChunkSource, MemSeries, Snapshot};
use super::{Head, STRIPES};
use crate::model::{Labels, Matcher, Sample};
use crate::prefetch::prefetch;
use crate::storage::{series_only, Queryable, SampleIterator, Series, StorageError, WalkEvent, WalkPart};
use crate::tsdb::chunk::{decimal, ChunkIter, Encoding};

/// Iterates one head series over `[mint, maxt]`: its chunks in order, merged
/// with any out-of-order samples (an in-order sample wins on equal timestamps).
pub struct HeadSeriesIter {
    chunks: std::vec::IntoIter<(Encoding, ChunkData)>,
    cur: Option<ChunkIter<ChunkData>>,
    ooo: std::iter::Peekable<std::vec::IntoIter<Sample>>,
    peeked: Option<Sample>,
    mint: i64,
    maxt: i64,
    done: bool,
    /// The series, named in error logs (formatted only when one happens).
    what: Labels,
}

impl HeadSeriesIter {
    pub(crate) fn new(
        chunks: Vec<(Encoding, ChunkData)>,
        ooo: Vec<Sample>,
        mint: i64,
        maxt: i64,
        what: Labels,
    ) -> Self {
        HeadSeriesIter {
            chunks: chunks.into_iter(),
            cur: None,
            ooo: ooo.into_iter().peekable(),
            peeked: None,
            mint,
            maxt,
            done: false,
            what,
        }
    }

    /// The next in-order sample within range.
    fn next_in_order(&mut self) -> Option<Sample> {
        if self.done {
            return None;
        }
        loop {
            if self.cur.is_none() {
                let (enc, data) = self.chunks.next()?;
                match ChunkIter::new(enc, data) {
                    Ok(it) => self.cur = Some(it),
                    Err(e) => {
                        tracing::error!(series = %self.what, error = %e, "skipping unreadable head chunk");
                        continue;
                    }
                }
            }
            let it = self.cur.as_mut()?;
            match it.next() {
                None => self.cur = None,
                Some(Err(e)) => {
                    tracing::error!(series = %self.what, error = %e, "corrupt head chunk; rest of the chunk skipped");
                    self.cur = None;
                }
                Some(Ok(s)) if s.t < self.mint => {}
                Some(Ok(s)) if s.t > self.maxt => {
                    self.done = true;
                    return None;
                }
                Some(Ok(s)) => return Some(s),
            }
        }
    }
}

impl SampleIterator for HeadSeriesIter {
    /// Without out-of-order samples, decodes the chunks straight into `out`
    /// (the common case: no merge step and no virtual call per sample).
    fn collect_into(&mut self, out: &mut Vec<Sample>) {
        if self.ooo.peek().is_some() {
            while let Some(s) = self.next_sample() {
                out.push(s);
            }
            return;
        }
        if let Some(s) = self.peeked.take() {
            out.push(s);
        }
        while let Some(s) = self.next_in_order() {
            out.push(s);
        }
    }

    fn next_sample(&mut self) -> Option<Sample> {
        let a = match self.peeked.take() {
            Some(s) => Some(s),
            None => self.next_in_order(),
        };
        let Some(b) = self.ooo.peek().copied() else { return a };
        match a {
            None => self.ooo.next(),
            Some(a) => match a.t.cmp(&b.t) {
                Ordering::Less => Some(a),
                Ordering::Greater => {
                    self.peeked = Some(a);
                    self.ooo.next()
                }
                Ordering::Equal => {
                    self.ooo.next();
                    Some(a)
                }
            },
        }
    }
}

impl Head {
    /// Ids matching `matchers` whose data overlaps `[mint, maxt]`, with
    /// labels, in id order (its callers sort what they collect).
    fn matching(&self, mint: i64, maxt: i64, matchers: &[Matcher]) -> Vec<(u32, Labels)> {
        let ids = self.index.read().select(matchers, || self.all_ids());
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            self.with_series(id, |s| {
                if let Some((lo, hi)) = s.time_range() {
                    if hi >= mint && lo <= maxt {
                        out.push((id, self.series_labels(s)));
                    }
                }
            });
        }
        out
    }

    fn resolve(&self, snap: Snapshot, what: &Labels) -> (Vec<(Encoding, ChunkData)>, Vec<Sample>) {
        let mut chunks = Vec::with_capacity(snap.chunks.len());
        for c in snap.chunks {
            match c {
                ChunkSource::Mem(enc, d) => chunks.push((enc, d)),
                ChunkSource::Disk(r) => match self.disk.read(r) {
                    Ok(d) => chunks.push(d),
                    // Truncation may delete a file between snapshot and read; its data is
                    // older than the head's minimum and no longer wanted.
                    Err(e) => tracing::warn!(series = %what, error = %e, "head chunk unavailable"),
                },
            }
        }
        (chunks, snap.ooo)
    }
}

/// Series looked up together by a walk (see `Head::for_each_series`).
const WALK_BATCH: usize = 256;

/// Batches of a walk split between threads are smaller, so that the
/// threads finish close together.
const SPLIT_WALK_BATCH: usize = 64;

/// Appends the samples of one chunk that fall in `[mint, maxt]` to `out`.
/// Returns false once a sample is past `maxt` (later chunks need not be read).
/// `what` names the series in error logs (built only when one happens).
fn decode_chunk_into(
    enc: Encoding,
    bytes: &[u8],
    mint: i64,
    maxt: i64,
    out: &mut Vec<Sample>,
    what: &dyn Fn() -> Labels,
) -> bool {
    let mut it = match ChunkIter::new(enc, bytes) {
        Ok(it) => it,
        Err(e) => {
            tracing::error!(series = %what(), error = %e, "skipping unreadable head chunk");
            return true;
        }
    };
    match it.decode_range_into(mint, maxt, out) {
        Ok(more) => more,
        Err(e) => {
            tracing::error!(series = %what(), error = %e, "corrupt head chunk; rest of the chunk skipped");
            true
        }
    }
}

/// Decodes one series' chunks in time order into one buffer, two Decimal
/// chunks side by side where it can ([`decimal::decode_blocked_pair`]): a
/// chunk waits in `held` for the next one.
struct ChunkPairs<'c, 'w> {
    /// A Decimal chunk waiting for the next one.
    held: Option<&'c [u8]>,
    /// The samples wanted.
    mint: i64,
    maxt: i64,
    /// The second chunk of a pair decodes here first.
    scratch: &'w mut Vec<Sample>,
    /// The series, named in error logs.
    what: &'w dyn Fn() -> Labels,
}

impl<'c> ChunkPairs<'c, '_> {
    /// Decodes `bytes` (now or with the next chunk) into `out`; false once
    /// a sample is past `maxt` (later chunks need not be read).
    fn add(&mut self, enc: Encoding, bytes: &'c [u8], out: &mut Vec<Sample>) -> bool {
        if enc != Encoding::Decimal {
            return self.flush(out) && decode_chunk_into(enc, bytes, self.mint, self.maxt, out, self.what);
        }
        let Some(first) = self.held.take() else {
            self.held = Some(bytes);
            return true;
        };
        let start = out.len();
        self.scratch.clear();
        match decimal::decode_blocked_pair(first, bytes, self.mint, self.maxt, out, self.scratch) {
            Some(Ok(())) => {
                out.extend_from_slice(self.scratch);
                // Chunks are in time order: once one reaches `maxt`, later
                // ones need not be read (one wholly past it costs a sample).
                self.scratch.last().is_none_or(|s| s.t < self.maxt)
            }
            // Not both blocked (chunks written before the blocked predictor):
            // the first alone, and the second may pair with the next.
            None => {
                self.held = Some(bytes);
                decode_chunk_into(enc, first, self.mint, self.maxt, out, self.what)
            }
            // A corrupt one: one by one, which says which and keeps what decodes.
            Some(Err(_)) => {
                out.truncate(start);
                decode_chunk_into(enc, first, self.mint, self.maxt, out, self.what)
                    && decode_chunk_into(enc, bytes, self.mint, self.maxt, out, self.what)
            }
        }
    }

    /// Decodes the chunk waiting for a partner, if any.
    fn flush(&mut self, out: &mut Vec<Sample>) -> bool {
        match self.held.take() {
            Some(bytes) => decode_chunk_into(Encoding::Decimal, bytes, self.mint, self.maxt, out, self.what),
            None => true,
        }
    }
}

impl Head {
    /// Decodes the samples of `s` in `[mint, maxt]` into `out` (cleared
    /// first), straight from its chunks (`scratch` is working room); series
    /// with out-of-order samples take the merging iterator.
    fn decode_series_into(
        &self,
        s: &MemSeries,
        chunks: &ChunkView<'_>,
        mint: i64,
        maxt: i64,
        out: &mut Vec<Sample>,
        scratch: &mut Vec<Sample>,
    ) {
        out.clear();
        if s.ooo.as_deref().is_some_and(|o| !o.is_empty()) {
            let what = self.series_labels(s);
            let (chunks, ooo) = self.resolve(s.snapshot(mint, maxt), &what);
            HeadSeriesIter::new(chunks, ooo, mint, maxt, what).collect_into(out);
            return;
        }
        let what = || self.series_labels(s);
        let mut pairs = ChunkPairs { held: None, mint, maxt, scratch, what: &what };
        for m in s.mmapped_between(mint, maxt) {
            let more = match chunks.mapped_chunk(m.r) {
                Some(Ok((enc, data))) => pairs.add(enc, data, out),
                Some(Err(e)) => {
                    tracing::warn!(series = %what(), error = %e, "head chunk unavailable");
                    true
                }
                // Not in the view (written since): read on its own.
                None => {
                    pairs.flush(out)
                        && match chunks
                            .with_chunk(m.r, |enc, data| decode_chunk_into(enc, data, mint, maxt, out, &what))
                        {
                            Ok(more) => more,
                            Err(e) => {
                                tracing::warn!(series = %what(), error = %e, "head chunk unavailable");
                                true
                            }
                        }
                }
            };
            if !more {
                return;
            }
        }
        if let Some(h) = &s.head {
            if h.overlaps(mint, maxt) && !pairs.add(h.app.encoding(), h.app.bytes(), out) {
                return;
            }
        }
        pairs.flush(out);
    }
}

impl Queryable for Head {
    /// Series in id (creation) order; each series is decoded and handed to
    /// `f` under its own lock, without copying its chunks. Its labels are
    /// built from the head's symbol table (one allocation per series; the
    /// series itself keeps only symbol ids).
    ///
    /// Series are visited in batches whose stripes stay read-locked (the
    /// order every head path takes: stripe, then series), so the batch can be
    /// looked up first with prefetches for each series' state, then its
    /// chunk bytes and label ids, and only then walked: a walk over 100k series
    /// spends most of its time waiting for memory, and this lets those
    /// misses overlap instead of paying them one after another.
    fn for_each_series(
        &self,
        mint: i64,
        maxt: i64,
        matchers: &[Matcher],
        f: &mut dyn FnMut(&Labels, &[Sample]) -> ControlFlow<()>,
    ) -> Result<(), StorageError> {
        self.for_each_series_part(mint, maxt, matchers, WalkPart::WHOLE, &mut series_only(f))
    }

    /// The walk's batches are the lookup batches above (256 series in
    /// creation order, 64 when split); each part walks the batches it
    /// claims. A batch read-locks only the stripes its series live in, and
    /// builds its series' labels under one read of the symbol table: the
    /// threads of a split walk would otherwise pass those locks' cache lines
    /// back and forth at every series.
    fn for_each_series_part(
        &self,
        mint: i64,
        maxt: i64,
        matchers: &[Matcher],
        part: WalkPart<'_>,
        f: &mut dyn FnMut(usize, WalkEvent<'_>) -> ControlFlow<()>,
    ) -> Result<(), StorageError> {
        let ids = part.selection(|| self.index.read().select(matchers, || self.all_ids()));
        let batch_len = if part.is_split() { SPLIT_WALK_BATCH } else { WALK_BATCH };
        let count = ids.len().div_ceil(batch_len);
        let mut buf: Vec<Sample> = Vec::new();
        let mut scratch: Vec<Sample> = Vec::new();
        let mut labels: Vec<Option<Labels>> = Vec::with_capacity(batch_len);
        let mut taken = 0;
        while let Some(batch_no) = part.claim(&mut taken, count) {
            let part_ids = &ids[batch_no * batch_len..ids.len().min((batch_no + 1) * batch_len)];
            let chunks = self.disk.view();
            // Stripes are locked in index order, as the other walks lock them.
            let needed = part_ids.iter().fold(0u128, |m, &id| m | 1 << (id as usize % STRIPES));
            let stripes: Vec<_> =
                (0..STRIPES).map(|i| (needed >> i & 1 == 1).then(|| self.stripes[i].read())).collect();
            let mut batch: Vec<&parking_lot::Mutex<MemSeries>> = Vec::with_capacity(part_ids.len());
            for &id in part_ids {
                if let Some(h) = stripes[id as usize % STRIPES].as_ref().and_then(|st| st.series.get(&id)) {
                    prefetch(std::sync::Arc::as_ptr(h));
                    batch.push(h);
                }
            }
            for s in &batch {
                let s = s.lock();
                prefetch(s.labels.as_bytes().as_ptr());
                if let Some(h) = &s.head {
                    prefetch(h.app.bytes().as_ptr());
                }
                for m in s.mmapped_between(mint, maxt) {
                    chunks.prefetch(m.r);
                }
            }
            labels.clear();
            {
                let symbols = self.symbols.read();
                for s in &batch {
                    let s = s.lock();
                    let wanted = matches!(s.time_range(), Some((lo, hi)) if hi >= mint && lo <= maxt);
                    labels.push(wanted.then(|| symbols.labels(&s.labels)));
                }
            }
            for (s, l) in batch.iter().zip(&labels) {
                let Some(l) = l else { continue };
                let s = s.lock();
                self.decode_series_into(&s, &chunks, mint, maxt, &mut buf, &mut scratch);
                if buf.is_empty() {
                    continue;
                }
                if f(batch_no, WalkEvent::Series(l, &buf)).is_break() {
                    return Ok(());
                }
            }
            if f(batch_no, WalkEvent::BatchEnd).is_break() {
                return Ok(());
            }
        }
        Ok(())
    }

    fn select(&self, mint: i64, maxt: i64, matchers: &[Matcher]) -> Result<Vec<Series>, StorageError> {
        // One lock per series: the time check, labels and snapshot together.
        let ids = self.index.read().select(matchers, || self.all_ids());
        let mut found: Vec<(Labels, Snapshot)> = Vec::with_capacity(ids.len());
        for id in ids {
            self.with_series(id, |s| {
                if let Some((lo, hi)) = s.time_range() {
                    if hi >= mint && lo <= maxt {
                        found.push((self.series_labels(s), s.snapshot(mint, maxt)));
                    }
                }
            });
        }
        let found = sort_by_labels(found);
        let mut out = Vec::with_capacity(found.len());
        for (labels, snap) in found {
            let (chunks, ooo) = self.resolve(snap, &labels);
            let what = labels.clone();
            out.push(Series { labels, samples: Box::new(HeadSeriesIter::new(chunks, ooo, mint, maxt, what)) });
        }
        Ok(out)
    }

    fn label_names(&self, mint: i64, maxt: i64, matchers: &[Matcher]) -> Result<Vec<String>, StorageError> {
        if matchers.is_empty() && mint <= self.min_time() && maxt >= self.max_time() {
            return Ok(self.index.read().names());
        }
        let mut names: Vec<String> = Vec::new();
        for (_, l) in self.matching(mint, maxt, matchers) {
            for p in l.iter() {
                if let Err(i) = names.binary_search_by(|n| n.as_str().cmp(p.name)) {
                    names.insert(i, p.name.to_string());
                }
            }
        }
        Ok(names)
    }

    fn label_values(
        &self,
        name: &str,
        mint: i64,
        maxt: i64,
        matchers: &[Matcher],
    ) -> Result<Vec<String>, StorageError> {
        if matchers.is_empty() && mint <= self.min_time() && maxt >= self.max_time() {
            return Ok(self.index.read().values(name));
        }
        let mut values: Vec<String> =
            self.matching(mint, maxt, matchers).iter().filter_map(|(_, l)| l.get(name).map(str::to_string)).collect();
        values.sort_unstable();
        values.dedup();
        Ok(values)
    }
}

/// Sorts by labels (`Labels`' order) without a full label comparison per
/// step of the sort: each set is written as `name\0value\0...`, whose byte
/// order is the label order when no string holds a NUL; the 16 bytes after
/// the prefix all sets share become an inline key, and only equal keys fall
/// back to comparing labels. With a NUL anywhere, a plain sort is used.
fn sort_by_labels<T>(mut items: Vec<(Labels, T)>) -> Vec<(Labels, T)> {
    if items.len() < 64 {
        items.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        return items;
    }
    let mut enc: Vec<u8> = Vec::with_capacity(items.iter().map(|(l, _)| l.as_bytes().len()).sum());
    let mut ends: Vec<usize> = Vec::with_capacity(items.len());
    let mut nul_inside = false;
    for (l, _) in &items {
        for p in l.iter() {
            nul_inside |= p.name.as_bytes().contains(&0) || p.value.as_bytes().contains(&0);
            enc.extend_from_slice(p.name.as_bytes());
            enc.push(0);
            enc.extend_from_slice(p.value.as_bytes());
            enc.push(0);
        }
        ends.push(enc.len());
    }
    if nul_inside {
        items.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        return items;
    }
    let strs: Vec<&[u8]> = (0..ends.len()).map(|i| &enc[if i == 0 { 0 } else { ends[i - 1] }..ends[i]]).collect();
    let first = strs[0];
    let lcp = strs.iter().map(|s| first.iter().zip(s.iter()).take_while(|(a, b)| a == b).count()).min().unwrap_or(0);
    let mut keyed: Vec<(u128, u32)> = strs
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let mut k = [0u8; 16];
            let tail = s.get(lcp..).unwrap_or(&[]);
            let n = tail.len().min(16);
            k[..n].copy_from_slice(&tail[..n]);
            (u128::from_be_bytes(k), i as u32)
        })
        .collect();
    drop(strs);
    // Label sets are unique, so an unstable sort gives the one order.
    keyed.sort_unstable_by(|a, b| a.0.cmp(&b.0).then_with(|| items[a.1 as usize].0.cmp(&items[b.1 as usize].0)));
    let mut slots: Vec<Option<(Labels, T)>> = items.into_iter().map(Some).collect();
    keyed.iter().filter_map(|&(_, i)| slots[i as usize].take()).collect()
}

#[cfg(test)]
mod sort_tests {
    use super::*;

    #[test]
    fn keyed_sort_matches_label_order() {
        // Shared prefixes, names that are prefixes of others, sets that are
        // prefixes of others, values past the 16 key bytes.
        let mut items = Vec::new();
        for i in 0..300 {
            let inst = format!("host-{:03}-{}", i % 37, "x".repeat(i % 5));
            let mut pairs = vec![("__name__", "m".to_string()), ("instance", inst)];
            if i % 3 == 0 {
                pairs.push(("job", format!("j{}", i % 4)));
            }
            if i % 7 == 0 {
                pairs.push(("jobs", "a".into()));
            }
            pairs.push(("zz", format!("{}long-value-past-sixteen-bytes-{i}", "v".repeat(i % 3))));
            items.push((Labels::from_pairs(pairs.iter().map(|(a, b)| (*a, b.as_str()))), i));
        }
        let mut want: Vec<Labels> = items.iter().map(|x| x.0.clone()).collect();
        want.sort();
        let got: Vec<Labels> = sort_by_labels(items).into_iter().map(|x| x.0).collect();
        assert_eq!(got, want);
    }
}
