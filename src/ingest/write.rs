//! Appending a decoded request to storage: one appender, one commit, the
//! valid part stored even when other parts are rejected.
//!
//! This follows Prometheus's remote_write 2.0 handling (`appendV2` in
//! `storage/remote/write_handler.go`) for 1.0 requests too, as DESIGN.md
//! asks: a rejected series or sample is reported (400) but does not stop the
//! rest, and only a storage failure (5xx) discards the batch.

use super::decode::DecodedRequest;
use super::limits::{LimitName, Limits};
use super::refcache::RefCache;
use super::validate::{display, series_labels, Scratch};
use crate::storage::{AppendError, Appender, SeriesHandle, SeriesRef, StorageError};

/// Samples more than this far ahead of the receiver's clock are out of
/// bounds (Prometheus's `maxAheadTime`).
pub const MAX_AHEAD_MS: i64 = 10 * 60 * 1000;

/// At most this many error lines are kept for the response body.
const MAX_ERROR_LINES: usize = 20;

/// Why samples were not stored; the `reason` label of
/// `promlite_rejected_samples_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RejectReason {
    /// Invalid series (labels or limits); the string is the detailed reason.
    Series(&'static str),
    /// Older than the series' newest sample.
    OutOfOrder,
    /// Older than the head accepts, or too far in the future.
    OutOfBounds,
    /// Same timestamp, different value.
    DuplicateTimestamp,
    /// Native histograms are not stored by promlite.
    NativeHistogram,
    /// Storage refused the sample for another caller-side reason.
    Other,
}

impl RejectReason {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::Series(r) => r,
            RejectReason::OutOfOrder => "out_of_order",
            RejectReason::OutOfBounds => "out_of_bounds",
            RejectReason::DuplicateTimestamp => "duplicate_timestamp",
            RejectReason::NativeHistogram => "native_histogram",
            RejectReason::Other => "other",
        }
    }

    fn of(e: &AppendError) -> Self {
        match e {
            AppendError::OutOfOrder { .. } => RejectReason::OutOfOrder,
            AppendError::OutOfBounds { .. } => RejectReason::OutOfBounds,
            AppendError::DuplicateTimestamp { .. } => RejectReason::DuplicateTimestamp,
            AppendError::InvalidLabels(_) => RejectReason::Series("invalid_labels"),
            AppendError::UnknownRef(_) | AppendError::LimitExceeded(_) => RejectReason::Other,
        }
    }
}

/// What happened to one request's samples.
#[derive(Debug, Default)]
pub struct WriteOutcome {
    /// Samples appended without error (durable once committed).
    pub samples_stored: u64,
    /// Series with at least one stored sample.
    pub series_stored: u64,
    /// Exemplars skipped (promlite does not store them).
    pub exemplars_skipped: u64,
    /// Rejected samples by reason, in first-seen order.
    pub rejected: Vec<(RejectReason, u64)>,
    /// Limits that tripped, with how many series each rejected.
    pub limit_hits: Vec<(LimitName, u64)>,
    /// The first error lines for the 400 body.
    pub errors: Vec<String>,
    /// Errors in total (beyond the kept lines).
    pub error_count: usize,
}

impl WriteOutcome {
    fn reject(&mut self, reason: RejectReason, samples: u64, line: impl FnOnce() -> String) {
        match self.rejected.iter_mut().find(|(r, _)| *r == reason) {
            Some((_, n)) => *n += samples,
            None => self.rejected.push((reason, samples)),
        }
        self.error_count += 1;
        if self.errors.len() < MAX_ERROR_LINES {
            self.errors.push(line());
        }
    }

    fn limit_hit(&mut self, l: LimitName) {
        match self.limit_hits.iter_mut().find(|(x, _)| *x == l) {
            Some((_, n)) => *n += 1,
            None => self.limit_hits.push((l, 1)),
        }
    }

    /// Whether anything was rejected (the answer is then 400).
    pub fn has_errors(&self) -> bool {
        self.error_count > 0
    }

    /// The plain-text 400 body: one line per error, capped, newline-terminated.
    pub fn error_text(&self) -> String {
        let mut s = self.errors.join("\n");
        if self.error_count > self.errors.len() {
            s.push_str(&format!("\n... and {} more errors", self.error_count - self.errors.len()));
        }
        s.push('\n');
        s
    }
}

/// Appends every valid series and sample of `req` through `app` (which the
/// caller commits). `now_ms` is the receiver's clock, for the future bound.
/// With a `cache`, series seen before go straight to `append_ref`.
pub fn append_request(
    app: &mut dyn Appender,
    req: &DecodedRequest,
    limits: &Limits,
    now_ms: i64,
    cache: Option<&RefCache>,
) -> WriteOutcome {
    let max_t = now_ms.saturating_add(MAX_AHEAD_MS);
    let mut out = WriteOutcome::default();
    let mut scratch = Scratch::new();
    // Every series' cache entry, looked up in one batch (see `get_many`).
    let mut keys: Vec<u128> = Vec::new();
    let mut handles: Vec<Option<SeriesHandle>> = Vec::new();
    if let Some(c) = cache {
        keys.reserve_exact(req.series().len());
        keys.extend(req.series().map(|view| c.key(view.label_bytes())));
        c.get_many(&keys, &mut handles);
    }
    for (i, view) in req.series().enumerate() {
        out.exemplars_skipped += u64::from(view.exemplars);
        if view.histograms > 0 {
            let n = u64::from(view.histograms);
            out.reject(RejectReason::NativeHistogram, n, || {
                format!("{n} native histogram samples dropped: promlite stores float samples only")
            });
        }
        if view.samples.is_empty() {
            continue;
        }
        let cached = match (cache, keys.get(i)) {
            (Some(c), Some(&key)) => Some((c, key, handles.get_mut(i).and_then(Option::take))),
            _ => None,
        };
        let mut stored_any = false;
        let mut rest = view.samples;
        // A sample the fast path saw refused: reported below with the series'
        // labels, never appended twice (that would count it twice in storage).
        let mut refused: Option<(AppendError, SeriesRef)> = None;
        // Fast path: a known series. Anything unusual (an error to report
        // with the series' labels, a ref the storage forgot) hands the
        // remaining samples to the full path below.
        if let Some((c, key, Some(h))) = &cached {
            let (c, key, r) = (*c, *key, h.series_ref());
            let mut done = 0;
            for s in rest {
                if s.t > max_t {
                    break;
                }
                match app.append_handle(h, s.t, s.v) {
                    Ok(()) => {
                        out.samples_stored += 1;
                        stored_any = true;
                        done += 1;
                    }
                    Err(AppendError::UnknownRef(_)) => {
                        c.remove(key);
                        break;
                    }
                    Err(e) => {
                        refused = Some((e, r));
                        break;
                    }
                }
            }
            rest = &rest[done..];
            if refused.is_some() {
                rest = rest.get(1..).unwrap_or_default();
            }
            if rest.is_empty() && refused.is_none() {
                out.series_stored += 1;
                continue;
            }
        }
        let labels = match series_labels(&view, limits, &mut scratch) {
            Ok(l) => l,
            Err(e) => {
                if let Some(l) = e.limit() {
                    out.limit_hit(l);
                }
                out.reject(RejectReason::Series(e.reason()), rest.len() as u64, || e.to_string());
                continue;
            }
        };
        let mut series_ref = None;
        if let Some((e, r)) = refused {
            out.reject(RejectReason::of(&e), 1, || format!("{e} for series {}", display(&labels)));
            series_ref = Some(r);
        }
        for s in rest {
            if s.t > max_t {
                out.reject(RejectReason::OutOfBounds, 1, || {
                    format!("out of bounds: timestamp {} is too far in the future for series {}", s.t, display(&labels))
                });
                continue;
            }
            // The first sample looks the series up by labels; the rest of
            // its samples reuse the reference.
            let r = match series_ref {
                Some(r) => app.append_ref(r, s.t, s.v),
                None => app.append(&labels, s.t, s.v).map(|r| {
                    series_ref = Some(r);
                    if let Some((c, key, _)) = &cached {
                        c.insert(*key, app.series_handle(r));
                    }
                }),
            };
            match r {
                Ok(()) => {
                    out.samples_stored += 1;
                    stored_any = true;
                }
                Err(e) => {
                    out.reject(RejectReason::of(&e), 1, || format!("{e} for series {}", display(&labels)));
                }
            }
        }
        if stored_any {
            out.series_stored += 1;
        }
    }
    out
}

/// Appends `req` in one batch and commits it. A commit failure is returned
/// as the error (nothing from this request is then guaranteed stored).
pub fn write_request(
    app: Box<dyn Appender + '_>,
    req: &DecodedRequest,
    limits: &Limits,
    now_ms: i64,
    cache: Option<&RefCache>,
) -> Result<WriteOutcome, StorageError> {
    let mut app = app;
    let out = append_request(app.as_mut(), req, limits, now_ms, cache);
    if out.samples_stored == 0 {
        app.rollback();
    } else {
        app.commit()?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::proto;
    use crate::labels;
    use crate::model::{Matcher, Sample};
    use crate::storage::memory::MemStorage;
    use crate::storage::{Appendable, Queryable};
    use prost::Message;

    fn ts(pairs: &[(&str, &str)], samples: &[(i64, f64)]) -> proto::TimeSeries {
        proto::TimeSeries {
            labels: pairs.iter().map(|(n, v)| proto::Label { name: n.to_string(), value: v.to_string() }).collect(),
            samples: samples.iter().map(|&(t, v)| proto::Sample { value: v, timestamp: t }).collect(),
            ..Default::default()
        }
    }

    fn decoded(series: Vec<proto::TimeSeries>) -> DecodedRequest {
        let raw = proto::WriteRequest { timeseries: series, metadata: vec![] }.encode_to_vec();
        let mut d = DecodedRequest::new();
        d.decode_uncompressed(&raw, 100).unwrap();
        d
    }

    fn stored(st: &MemStorage, name: &str) -> Vec<Sample> {
        let mut got = st.select(i64::MIN, i64::MAX, &[Matcher::equal("__name__", name)]).unwrap();
        let mut v = Vec::new();
        for s in &mut got {
            s.samples.collect_into(&mut v);
        }
        v
    }

    #[test]
    fn stores_valid_part_and_reports_the_rest() {
        let st = MemStorage::new();
        let mut app = st.appender();
        app.append(&labels!("__name__" => "old"), 100, 1.0).unwrap();
        app.commit().unwrap();
        let req = decoded(vec![
            ts(&[("__name__", "good"), ("job", "a")], &[(10, 1.0), (20, 2.0)]),
            ts(&[("job", "noname")], &[(10, 1.0)]),
            ts(&[("__name__", "old")], &[(50, 5.0), (150, 6.0)]),
            ts(&[("__name__", "future")], &[(1_000_000_000, 1.0)]),
        ]);
        let out = write_request(st.appender(), &req, &Limits::default(), 0, None).unwrap();
        assert_eq!(out.samples_stored, 3);
        assert_eq!(out.series_stored, 2);
        assert_eq!(out.error_count, 3);
        assert_eq!(
            out.rejected,
            vec![
                (RejectReason::Series("missing_metric_name"), 1),
                (RejectReason::OutOfOrder, 1),
                (RejectReason::OutOfBounds, 1)
            ]
        );
        let text = out.error_text();
        assert!(text.contains("out of order sample"), "{text}");
        assert!(text.contains("for series old"), "{text}");
        assert_eq!(stored(&st, "good"), vec![Sample::new(10, 1.0), Sample::new(20, 2.0)]);
        assert_eq!(stored(&st, "old"), vec![Sample::new(100, 1.0), Sample::new(150, 6.0)]);
        assert!(stored(&st, "future").is_empty());
    }

    #[test]
    fn histograms_and_limits_counted() {
        let st = MemStorage::new();
        let mut series = ts(&[("__name__", "h")], &[(1, 1.0)]);
        series.histograms.push(proto::Histogram { timestamp: 1 });
        let req = decoded(vec![series, ts(&[("__name__", "x"), ("a", "1"), ("b", "2")], &[(1, 1.0)])]);
        let lim = Limits { labels_per_series: 2, ..Limits::default() };
        let out = write_request(st.appender(), &req, &lim, 0, None).unwrap();
        assert_eq!(out.samples_stored, 1);
        assert_eq!(out.limit_hits, vec![(LimitName::LabelsPerSeries, 1)]);
        assert!(out.rejected.contains(&(RejectReason::NativeHistogram, 1)));
        assert_eq!(stored(&st, "h"), vec![Sample::new(1, 1.0)]);
    }

    #[test]
    fn cached_series_skip_lookup_but_errors_still_name_the_series() {
        let st = MemStorage::new();
        let cache = RefCache::new(1000);
        let lim = Limits::default();
        let out = write_request(
            st.appender(),
            &decoded(vec![ts(&[("__name__", "a"), ("j", "x")], &[(10, 1.0)])]),
            &lim,
            0,
            Some(&cache),
        )
        .unwrap();
        assert_eq!((out.samples_stored, cache.len()), (1, 1));
        // Same labels again: served from the cache; an out-of-order sample
        // in the middle is still reported with its labels.
        let req = decoded(vec![ts(&[("__name__", "a"), ("j", "x")], &[(20, 2.0), (5, 9.0), (30, 3.0)])]);
        let out = write_request(st.appender(), &req, &lim, 0, Some(&cache)).unwrap();
        assert_eq!(out.samples_stored, 2);
        assert_eq!(out.series_stored, 1);
        assert!(
            out.error_text()
                .contains("out of order sample: timestamp 5 is before the series' latest 10 for series a{j=\"x\"}"),
            "{}",
            out.error_text()
        );
        assert_eq!(stored(&st, "a"), vec![Sample::new(10, 1.0), Sample::new(20, 2.0), Sample::new(30, 3.0)]);
        // A ref the storage no longer knows falls back to the labels.
        st.clear();
        cache.insert(
            cache.key(req.series().next().unwrap().label_bytes()),
            SeriesHandle::from_ref(crate::storage::SeriesRef(99)),
        );
        let out = write_request(
            st.appender(),
            &decoded(vec![ts(&[("__name__", "a"), ("j", "x")], &[(40, 4.0)])]),
            &lim,
            0,
            Some(&cache),
        )
        .unwrap();
        assert_eq!(out.samples_stored, 1);
        assert_eq!(stored(&st, "a"), vec![Sample::new(40, 4.0)]);
    }

    #[test]
    fn cached_head_series_dropped_by_truncation_take_the_full_path() {
        use crate::tsdb::head::{Head, HeadOptions};
        use crate::tsdb::wal::WalOptions;
        let dir = tempfile::tempdir().unwrap();
        let opts = HeadOptions { wal: WalOptions { fsync: false, ..Default::default() }, ..Default::default() };
        let (head, _) = Head::open(dir.path(), opts).unwrap();
        let cache = RefCache::new(1000);
        let lim = Limits::default();
        let series = |t, v| decoded(vec![ts(&[("__name__", "a"), ("j", "x")], &[(t, v)])]);
        let out = write_request(head.appender(), &series(10, 1.0), &lim, 0, Some(&cache)).unwrap();
        assert_eq!((out.samples_stored, cache.len()), (1, 1));
        let key = cache.key(series(0, 0.0).series().next().unwrap().label_bytes());
        let old = cache.get(key).unwrap();
        assert!(old.object().is_some());
        let out = write_request(head.appender(), &series(20, 2.0), &lim, 0, Some(&cache)).unwrap();
        assert_eq!(out.samples_stored, 1);
        head.truncate(1000).unwrap();
        // The cached handle names a dropped series: the sample goes to a new
        // series found by labels, and the cache learns the new handle.
        let out = write_request(head.appender(), &series(2000, 3.0), &lim, 0, Some(&cache)).unwrap();
        assert_eq!((out.samples_stored, out.error_count), (1, 0));
        let new = cache.get(key).unwrap();
        assert_ne!(new.series_ref(), old.series_ref());
        let got = head.select(0, i64::MAX, &[Matcher::equal("__name__", "a")]).unwrap();
        assert_eq!(got.len(), 1);
        let mut v = Vec::new();
        for mut s in got {
            s.samples.collect_into(&mut v);
        }
        assert_eq!(v, vec![Sample::new(2000, 3.0)]);
    }

    #[test]
    fn error_lines_are_capped() {
        let st = MemStorage::new();
        let req = decoded((0..50).map(|_| ts(&[("job", "x")], &[(1, 1.0)])).collect());
        let out = write_request(st.appender(), &req, &Limits::default(), 0, None).unwrap();
        assert_eq!(out.error_count, 50);
        let text = out.error_text();
        assert_eq!(text.lines().count(), MAX_ERROR_LINES + 1);
        assert!(text.ends_with("... and 30 more errors\n"), "{text}");
    }
}
