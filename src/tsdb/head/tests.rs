//! Head behaviour: order rules, chunk cutting and mapping, reopen, truncation.

use super::*;
use crate::labels;
use crate::model::{MatchOp, Matcher, Sample, STALE_NAN};
use crate::storage::Queryable;

fn opts() -> HeadOptions {
    HeadOptions { wal: WalOptions { fsync: false, ..Default::default() }, ..Default::default() }
}

fn read(h: &Head, mint: i64, maxt: i64, ms: &[Matcher]) -> Vec<(String, Vec<Sample>)> {
    h.select(mint, maxt, ms)
        .unwrap()
        .into_iter()
        .map(|mut s| {
            let mut v = Vec::new();
            s.samples.collect_into(&mut v);
            (s.labels.to_string(), v)
        })
        .collect()
}

fn bits(v: &[Sample]) -> Vec<(i64, u64)> {
    v.iter().map(|s| (s.t, s.v.to_bits())).collect()
}

#[test]
fn append_select_cut_map_and_reopen_bit_exact() {
    let dir = tempfile::tempdir().unwrap();
    let o = HeadOptions { chunk_file_size: 4096, ..opts() };
    let a = labels!("__name__" => "m", "job" => "a");
    let b = labels!("__name__" => "m", "job" => "b");
    let special = [f64::NAN, STALE_NAN, -0.0, f64::INFINITY, f64::from_bits(0x7ff8_0000_0000_1234)];
    let mut want_a = Vec::new();
    {
        let (h, _) = Head::open(dir.path(), o.clone()).unwrap();
        let mut app = h.appender();
        let ra = app.append(&a, 0, 0.0).unwrap();
        want_a.push(Sample::new(0, 0.0));
        app.commit().unwrap();
        for i in 1..1000i64 {
            let mut app = h.appender();
            let v = if i % 100 == 0 { special[(i / 100) as usize % special.len()] } else { i as f64 * 0.5 };
            app.append_ref(ra, i * 15_000, v).unwrap();
            want_a.push(Sample::new(i * 15_000, v));
            app.append(&b, i * 15_000, 1.0).unwrap();
            app.commit().unwrap();
        }
        // 1000 samples at 15s: several 120-sample chunks, most moved to files.
        let st = h.stats(5);
        assert_eq!((st.num_series, st.num_samples), (2, 1999));
        assert!(st.num_chunks >= 2 * 8, "{st:?}");
        assert!(h.num_chunk_files() >= 2, "files {}", h.num_chunk_files());
        let got = read(&h, i64::MIN, i64::MAX, &[Matcher::equal("job", "a")]);
        assert_eq!(bits(&got[0].1), bits(&want_a));
        assert_eq!(st.min_time, 0);
        assert_eq!(st.max_time, 999 * 15_000);
    }
    let (h, stats) = Head::open(dir.path(), o).unwrap();
    assert!(stats.records > 0);
    let got = read(&h, i64::MIN, i64::MAX, &[]);
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].0, "m{job=\"a\"}");
    assert_eq!(bits(&got[0].1), bits(&want_a));
    assert_eq!(got[1].1.len(), 999);
    // Sub-range queries are inclusive at both ends.
    let part = read(&h, 15_000 * 10, 15_000 * 20, &[Matcher::equal("job", "a")]);
    assert_eq!(part[0].1.len(), 11);
    assert_eq!(h.stats(5).num_samples, 1999);
    // Refs survive the restart.
    assert_eq!(h.series_ref(&a), Some(SeriesRef(1)));
}

#[test]
fn order_rules_match_prometheus() {
    let dir = tempfile::tempdir().unwrap();
    let (h, _) = Head::open(dir.path(), opts()).unwrap();
    let l = labels!("__name__" => "x");
    let mut app = h.appender();
    let r = app.append(&l, 100, 1.0).unwrap();
    app.commit().unwrap();
    let mut app = h.appender();
    assert_eq!(app.append_ref(r, 50, 1.0), Err(AppendError::OutOfOrder { t: 50, latest: 100 }));
    assert_eq!(app.append_ref(r, 100, 2.0), Err(AppendError::DuplicateTimestamp { t: 100 }));
    assert_eq!(app.append_ref(r, 100, 1.0), Ok(()));
    app.append_ref(r, 200, STALE_NAN).unwrap();
    assert_eq!(app.append_ref(r, 150, 1.0), Err(AppendError::OutOfOrder { t: 150, latest: 200 }));
    assert_eq!(app.append_ref(SeriesRef(999), 1, 1.0), Err(AppendError::UnknownRef(SeriesRef(999))));
    assert!(matches!(app.append(&Labels::empty(), 1, 1.0), Err(AppendError::InvalidLabels(_))));
    app.commit().unwrap();
    let got = read(&h, 0, 1000, &[]);
    assert_eq!(bits(&got[0].1), vec![(100, 1f64.to_bits()), (200, STALE_NAN.to_bits())]);
    assert_eq!(h.counters.out_of_order.load(Ordering::Relaxed), 2);
    // Rolled-back samples vanish.
    let mut app = h.appender();
    app.append_ref(r, 300, 3.0).unwrap();
    app.rollback();
    assert_eq!(read(&h, 0, 1000, &[])[0].1.len(), 2);
}

#[test]
fn out_of_order_window_accepts_and_queries_merge() {
    let dir = tempfile::tempdir().unwrap();
    let o = HeadOptions { out_of_order_window: 1000, ..opts() };
    let l = labels!("__name__" => "x");
    {
        let (h, _) = Head::open(dir.path(), o.clone()).unwrap();
        let mut app = h.appender();
        let r = app.append(&l, 1000, 1.0).unwrap();
        app.append_ref(r, 2000, 2.0).unwrap();
        app.commit().unwrap();
        let mut app = h.appender();
        app.append_ref(r, 1500, 1.5).unwrap();
        app.append_ref(r, 1200, 1.2).unwrap();
        assert_eq!(app.append_ref(r, 500, 0.5), Err(AppendError::OutOfOrder { t: 500, latest: 2000 }));
        app.commit().unwrap();
        let mut app = h.appender();
        assert_eq!(app.append_ref(r, 1500, 9.0), Err(AppendError::DuplicateTimestamp { t: 1500 }));
        assert_eq!(app.append_ref(r, 1000, 9.0), Err(AppendError::DuplicateTimestamp { t: 1000 }));
        assert_eq!(app.append_ref(r, 1000, 1.0), Ok(()));
        app.commit().unwrap();
        let got = read(&h, 0, 5000, &[]);
        assert_eq!(got[0].1.iter().map(|s| s.t).collect::<Vec<_>>(), vec![1000, 1200, 1500, 2000]);
        let got = read(&h, 1100, 1600, &[]);
        assert_eq!(got[0].1.iter().map(|s| s.t).collect::<Vec<_>>(), vec![1200, 1500]);
    }
    let (h, _) = Head::open(dir.path(), o).unwrap();
    let got = read(&h, 0, 5000, &[]);
    assert_eq!(got[0].1.iter().map(|s| s.t).collect::<Vec<_>>(), vec![1000, 1200, 1500, 2000]);
}

#[test]
fn matchers_and_label_queries() {
    let dir = tempfile::tempdir().unwrap();
    let (h, _) = Head::open(dir.path(), opts()).unwrap();
    let mut app = h.appender();
    for (i, (job, env)) in [("a", "prod"), ("b", ""), ("c", "dev")].iter().enumerate() {
        app.append(&labels!("__name__" => "up", "job" => *job, "env" => *env), 10 + i as i64, 1.0).unwrap();
    }
    app.commit().unwrap();
    let names = |ms: &[Matcher]| read(&h, 0, 100, ms).into_iter().map(|(l, _)| l).collect::<Vec<_>>();
    let m = |op, n: &str, v: &str| Matcher::new(op, n, v).unwrap();
    assert_eq!(names(&[m(MatchOp::Equal, "env", "")]), vec!["up{job=\"b\"}"]);
    assert_eq!(names(&[m(MatchOp::RegexMatch, "job", "a|c")]).len(), 2);
    assert_eq!(names(&[m(MatchOp::RegexNoMatch, "env", "prod|dev")]), vec!["up{job=\"b\"}"]);
    assert_eq!(names(&[m(MatchOp::NotEqual, "job", "a"), m(MatchOp::Equal, "__name__", "up")]).len(), 2);
    // Time range filters whole series.
    assert_eq!(read(&h, 11, 11, &[]).len(), 1);
    assert_eq!(h.label_names(0, 100, &[]).unwrap(), vec!["__name__", "env", "job"]);
    assert_eq!(h.label_values("env", 0, 100, &[]).unwrap(), vec!["dev", "prod"]);
    assert_eq!(h.label_values("job", 0, 11, &[]).unwrap(), vec!["a", "b"]);
    assert_eq!(h.label_names(0, 100, &[Matcher::equal("job", "b")]).unwrap(), vec!["__name__", "job"]);
    let st = h.stats(2);
    assert_eq!(st.series_count_by_metric_name, vec![("up".to_string(), 3)]);
    assert_eq!(st.label_value_count_by_label_name[0], ("job".to_string(), 3));
}

#[test]
fn chunks_cut_at_range_boundary() {
    let dir = tempfile::tempdir().unwrap();
    let o = HeadOptions { chunk_range: 1000, ..opts() };
    let (h, _) = Head::open(dir.path(), o).unwrap();
    let mut app = h.appender();
    let r = app.append(&labels!("a" => "b"), 900, 1.0).unwrap();
    app.append_ref(r, 999, 1.0).unwrap();
    app.append_ref(r, 1000, 1.0).unwrap();
    app.append_ref(r, 2500, 1.0).unwrap();
    app.commit().unwrap();
    assert_eq!(h.stats(1).num_chunks, 3);
}

#[test]
fn truncate_drops_old_data_gcs_series_and_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let o = HeadOptions { chunk_file_size: 4096, chunk_range: 100_000, ..opts() };
    let old = labels!("__name__" => "old");
    let live = labels!("__name__" => "live");
    {
        let (h, _) = Head::open(dir.path(), o.clone()).unwrap();
        for t in 0..600i64 {
            let mut app = h.appender();
            if t < 300 {
                app.append(&old, t * 1000, t as f64).unwrap();
            }
            app.append(&live, t * 1000, t as f64).unwrap();
            app.commit().unwrap();
        }
        h.truncate(400_000).unwrap();
        assert_eq!(h.stats(1).num_series, 1);
        let mut app = h.appender();
        assert!(matches!(app.append(&live, 399_000, 1.0), Err(AppendError::OutOfBounds { .. })));
        app.append(&live, 600_000, 600.0).unwrap();
        app.commit().unwrap();
        let got = read(&h, 0, i64::MAX, &[]);
        assert_eq!(got.len(), 1);
        // Whole chunks are kept: the first kept sample is at most one chunk before the cut.
        assert!(got[0].1.first().unwrap().t <= 400_000 && got[0].1.first().unwrap().t > 400_000 - 120_000);
        assert!(h.min_time() <= 400_000);
    }
    let (h, stats) = Head::open(dir.path(), o).unwrap();
    assert!(stats.checkpoint.is_some());
    assert_eq!(h.min_valid_time(), 400_000);
    let got = read(&h, 400_000, i64::MAX, &[]);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].1.len(), 201);
    assert_eq!(got[0].1.last().unwrap().t, 600_000);
    assert_eq!(h.series_ref(&old), None);
}

#[test]
fn damaged_head_chunk_files_are_repaired_from_the_wal() {
    let dir = tempfile::tempdir().unwrap();
    let o = HeadOptions { chunk_file_size: 4096, ..opts() };
    let l = labels!("__name__" => "m");
    let mut want = Vec::new();
    {
        let (h, _) = Head::open(dir.path(), o.clone()).unwrap();
        for i in 0..3000i64 {
            let mut app = h.appender();
            let v = (i as f64).sqrt();
            app.append(&l, i * 1000, v).unwrap();
            app.commit().unwrap();
            want.push(Sample::new(i * 1000, v));
        }
        h.flush().unwrap();
        assert!(h.num_chunk_files() >= 4);
    }
    let files_dir = dir.path().join("chunks_head");
    let mut files: Vec<_> = std::fs::read_dir(&files_dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    // Flip a byte in the middle of the second file and cut the third short.
    let mut b = std::fs::read(&files[1]).unwrap();
    let mid = b.len() / 2;
    b[mid] ^= 0x55;
    std::fs::write(&files[1], &b).unwrap();
    let c = std::fs::read(&files[2]).unwrap();
    std::fs::write(&files[2], &c[..c.len() / 3]).unwrap();
    let (h, _) = Head::open(dir.path(), o.clone()).unwrap();
    let got = read(&h, i64::MIN, i64::MAX, &[]);
    assert_eq!(bits(&got[0].1), bits(&want));
    drop(h);
    // And again after the repair.
    let (h, _) = Head::open(dir.path(), o).unwrap();
    assert_eq!(bits(&read(&h, i64::MIN, i64::MAX, &[])[0].1), bits(&want));
}

#[test]
fn xor_head_chunks_of_older_versions_stay_readable() {
    use crate::tsdb::chunk::{ChunkAppender, ChunkIter, Encoding};
    let dir = tempfile::tempdir().unwrap();
    let samples: Vec<Sample> = (0..120)
        .map(|i| Sample::new(1_000 + i * 15_000, if i == 60 { STALE_NAN } else { (i * i) as f64 * 0.5 }))
        .collect();
    // The second chunk continues the series 30 minutes later.
    let later: Vec<Sample> = samples.iter().map(|s| Sample::new(s.t + 1_800_000, s.v)).collect();
    let chunk_of = |enc, samples: &[Sample]| {
        let mut a = ChunkAppender::new(enc, 64);
        for s in samples {
            a.append(s.t, s.v).unwrap();
        }
        a.finish()
    };
    let (xor, dec) = (chunk_of(Encoding::Xor, &samples), chunk_of(Encoding::Decimal, &later));
    let refs = {
        let (disk, loaded) = ChunkDisk::open(dir.path(), 1 << 20, Duration::from_secs(3600)).unwrap();
        assert!(loaded.is_empty());
        let a = disk.write_chunk(1, samples[0].t, samples[119].t, Encoding::Xor, &xor).unwrap();
        let b = disk.write_chunk(1, later[0].t, later[119].t, Encoding::Decimal, &dec).unwrap();
        disk.flush_active().unwrap();
        [a, b]
    };
    // Reopened, the files are mapped; each chunk keeps its own encoding.
    let (disk, loaded) = ChunkDisk::open(dir.path(), 1 << 20, Duration::from_secs(3600)).unwrap();
    assert_eq!(loaded.iter().map(|c| (c.series_ref, c.samples)).collect::<Vec<_>>(), vec![(1, 120), (1, 120)]);
    let mut all = Vec::new();
    for (r, (want, samples)) in refs.into_iter().zip([(Encoding::Xor, &samples), (Encoding::Decimal, &later)]) {
        let (enc, data) = disk.read(r).unwrap();
        assert_eq!(enc, want);
        let got: Vec<Sample> = ChunkIter::new(enc, data.clone()).unwrap().map(|s| s.unwrap()).collect();
        assert_eq!(bits(&got), bits(samples));
        all.push((enc, data));
    }
    // The head's series iterator reads both in one series.
    use crate::storage::SampleIterator;
    let mut it = query::HeadSeriesIter::new(all, Vec::new(), i64::MIN, i64::MAX, crate::model::Labels::empty());
    let mut got = Vec::new();
    it.collect_into(&mut got);
    let both: Vec<Sample> = samples.iter().chain(&later).copied().collect();
    assert_eq!(bits(&got), bits(&both));
}

#[test]
fn cached_handles_append_and_refuse_series_the_head_dropped() {
    use crate::storage::SeriesHandle;
    let dir = tempfile::tempdir().unwrap();
    let (h, _) = Head::open(dir.path(), opts()).unwrap();
    let a = labels!("__name__" => "a", "job" => "x");
    let mut app = h.appender();
    let r = app.append(&a, 1000, 1.0).unwrap();
    let handle = app.series_handle(r);
    assert_eq!(handle.series_ref(), r);
    assert!(handle.object().is_some(), "the head hands out its series");
    app.append_handle(&handle, 2000, 2.0).unwrap();
    // The order rules apply as for append_ref.
    assert_eq!(app.append_handle(&handle, 1500, 9.0), Err(AppendError::OutOfOrder { t: 1500, latest: 2000 }));
    app.commit().unwrap();
    assert_eq!(read(&h, 0, i64::MAX, &[]), vec![(a.to_string(), vec![Sample::new(1000, 1.0), Sample::new(2000, 2.0)])]);

    // Truncation drops the series: the old handle must not store into it.
    h.truncate(10_000).unwrap();
    assert_eq!(h.stats(1).num_series, 0);
    let mut app = h.appender();
    assert_eq!(app.append_handle(&handle, 20_000, 3.0), Err(AppendError::UnknownRef(r)));
    let r2 = app.append(&a, 20_000, 3.0).unwrap();
    assert_ne!(r2, r);
    // A handle without the head's object (another storage's kind) goes by reference.
    app.append_handle(&SeriesHandle::from_ref(r2), 21_000, 4.0).unwrap();
    app.commit().unwrap();
    assert_eq!(
        read(&h, 0, i64::MAX, &[]),
        vec![(a.to_string(), vec![Sample::new(20_000, 3.0), Sample::new(21_000, 4.0)])]
    );
    assert_eq!(h.stats(1).num_series, 1);
}

#[test]
fn appender_buffers_are_reused_and_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let (h, _) = Head::open(dir.path(), opts()).unwrap();
    let a = labels!("__name__" => "a");
    let mut apps: Vec<_> = (0..40).map(|_| h.head_appender()).collect();
    for (i, app) in apps.iter_mut().enumerate() {
        app.append(&a, i as i64 * 10, 1.0).unwrap();
    }
    for app in apps {
        Box::new(app).rollback();
    }
    let spare = h.spare_buffers.lock().len();
    assert!((1..=16).contains(&spare), "{spare} spare buffers");
    // A reused appender starts empty: committing it stores only its own samples.
    let mut app = h.appender();
    app.append(&a, 1000, 2.0).unwrap();
    app.commit().unwrap();
    assert_eq!(read(&h, 0, i64::MAX, &[]), vec![(a.to_string(), vec![Sample::new(1000, 2.0)])]);
}

/// Everything `for_each_series` hands out, as (labels, samples) in walk order.
fn walk(h: &Head, mint: i64, maxt: i64, ms: &[Matcher]) -> Vec<(String, Vec<Sample>)> {
    let mut out = Vec::new();
    h.for_each_series(mint, maxt, ms, &mut |l, s| {
        out.push((l.to_string(), s.to_vec()));
        std::ops::ControlFlow::Continue(())
    })
    .unwrap();
    out
}

#[test]
fn walk_gives_what_select_gives_in_creation_order() {
    let dir = tempfile::tempdir().unwrap();
    let o = HeadOptions { chunk_file_size: 4096, out_of_order_window: 3_600_000, ..opts() };
    let (h, _) = Head::open(dir.path(), o).unwrap();
    // Created in reverse label order, more series than one walk batch, some
    // with mapped chunks (long), one with out-of-order samples, one outside
    // the queried range.
    let n = 300usize;
    for i in (0..n).rev() {
        let id = format!("{i:04}");
        let l = labels!("__name__" => "m", "i" => id.as_str());
        let mut app = h.appender();
        let samples = if i % 50 == 0 { 400 } else { 3 };
        let start = if i == 7 { 10_000_000 } else { 0 };
        for k in 0..samples {
            app.append(&l, start + k as i64 * 15_000, (i * 1000 + k) as f64).unwrap();
        }
        app.commit().unwrap();
    }
    let mut app = h.appender();
    app.append(&labels!("__name__" => "m", "i" => "0001"), 7_500, -1.0).unwrap();
    app.commit().unwrap();
    let ms = [Matcher::equal("__name__", "m")];
    // The long series' chunks decode in pairs once in the files' mapping:
    // windows cut either chunk of a pair.
    h.flush().unwrap();
    for (mint, maxt) in [(i64::MIN, i64::MAX), (7_500, 30_000), (20_000, 5_000_000), (1_000_000, 3_000_000)] {
        let walked = walk(&h, mint, maxt, &ms);
        let mut sorted = walked.clone();
        sorted.sort_by(|a, b| a.0.cmp(&b.0));
        let selected = read(&h, mint, maxt, &ms);
        let got: Vec<_> = sorted.iter().map(|(l, s)| (l.clone(), bits(s))).collect();
        let want: Vec<_> = selected.iter().map(|(l, s)| (l.clone(), bits(s))).collect();
        assert_eq!(got, want, "range {mint}..{maxt}");
        // Creation order: the reverse of label order here.
        let names: Vec<&String> = walked.iter().map(|(l, _)| l).collect();
        assert!(names.windows(2).all(|w| w[0] > w[1]), "walk order {:?}", &names[..3]);
    }
    let merged = walk(&h, 0, 30_000, &[Matcher::equal("i", "0001")]);
    assert_eq!(
        bits(&merged[0].1),
        bits(&[
            Sample::new(0, 1000.0),
            Sample::new(7_500, -1.0),
            Sample::new(15_000, 1001.0),
            Sample::new(30_000, 1002.0)
        ])
    );
    // A break stops the walk.
    let mut seen = 0;
    h.for_each_series(i64::MIN, i64::MAX, &ms, &mut |_, _| {
        seen += 1;
        if seen == 5 {
            std::ops::ControlFlow::Break(())
        } else {
            std::ops::ControlFlow::Continue(())
        }
    })
    .unwrap();
    assert_eq!(seen, 5);
}

#[test]
fn cut_chunks_keep_every_sample_across_mode_changes() {
    let dir = tempfile::tempdir().unwrap();
    let (h, _) = Head::open(dir.path(), opts()).unwrap();
    let l = labels!("__name__" => "m", "job" => "cut");
    let mut want = Vec::new();
    for i in 0..600i64 {
        let mut app = h.appender();
        // Short decimals, a stale marker and a non-decimal to switch modes.
        let v = match i {
            250 => STALE_NAN,
            400 => std::f64::consts::PI,
            _ => 100.0 + (i % 13) as f64 * 0.5,
        };
        app.append(&l, i * 15_000, v).unwrap();
        app.commit().unwrap();
        want.push(Sample::new(i * 15_000, v));
    }
    let id = h.series_ref(&l).unwrap().0 as u32;
    let (mapped, open) =
        h.with_series(id, |s| (s.mmapped.len(), s.head.as_ref().map(|o| o.app.num_samples()))).unwrap();
    assert_eq!((mapped, open), (4, Some(120)));
    let got = read(&h, i64::MIN, i64::MAX, &[Matcher::equal("job", "cut")]);
    assert_eq!(bits(&got[0].1), bits(&want));
}

#[test]
fn series_removed_by_gc_free_their_symbols() {
    let dir = tempfile::tempdir().unwrap();
    let (h, _) = Head::open(dir.path(), opts()).unwrap();
    let old: Vec<Labels> = (0..50)
        .map(|i| labels!("__name__" => "old_metric", "job" => "gone", "pod" => format!("p{i}").as_str()))
        .collect();
    let live = labels!("__name__" => "live", "job" => "kept", "pod" => "p0");
    let mut app = h.appender();
    for l in &old {
        app.append(l, 1000, 1.0).unwrap();
    }
    app.append(&live, 1000, 1.0).unwrap();
    app.append(&live, 20_000, 2.0).unwrap();
    app.commit().unwrap();
    // __name__ job pod, old_metric gone p0..p49, live kept.
    assert_eq!(h.symbols.len(), 3 + 2 + 50 + 2);
    // One byte per id: 3 labels, 6 bytes per series.
    assert_eq!(h.with_series(1, |s| s.labels.heap_size()), Some(6));

    h.truncate(10_000).unwrap();
    assert_eq!(h.stats(1).num_series, 1);
    // Only the live series' strings are left; "p0" is shared and stays.
    assert_eq!(h.symbols.len(), 3 + 3);
    assert_eq!(h.label_values("pod", i64::MIN, i64::MAX, &[]).unwrap(), ["p0"]);
    // (Whole chunks are kept: the live series still has its sample at 1000.)
    assert_eq!(
        read(&h, 0, i64::MAX, &[]),
        vec![(live.to_string(), vec![Sample::new(1000, 1.0), Sample::new(20_000, 2.0)])]
    );

    // New series take the freed ids instead of growing the table.
    let slots = h.symbols.slots_len();
    let mut app = h.appender();
    for i in 0..40 {
        app.append(
            &labels!("__name__" => "new_metric", "job" => "kept", "pod" => format!("q{i}").as_str()),
            30_000,
            1.0,
        )
        .unwrap();
    }
    app.commit().unwrap();
    assert_eq!(h.symbols.len(), 3 + 3 + 1 + 40);
    assert_eq!(h.symbols.slots_len(), slots);
    let got = read(&h, 0, i64::MAX, &[Matcher::new(MatchOp::Equal, "pod", "q7").unwrap()]);
    assert_eq!(got, vec![(r#"new_metric{job="kept", pod="q7"}"#.to_string(), vec![Sample::new(30_000, 1.0)])]);
    // The old series is gone for lookups too; its labels can be created anew.
    assert_eq!(h.series_ref(&old[3]), None);
    assert!(h.series_ref(&live).is_some());
}

#[test]
fn concurrent_creation_queries_and_gc_keep_labels_consistent() {
    use std::ops::ControlFlow;
    use std::sync::atomic::{AtomicBool, AtomicI64};
    const ROUNDS: i64 = 80;
    const PER_ROUND: i64 = 20;
    let dir = tempfile::tempdir().unwrap();
    let (h, _) = Head::open(dir.path(), opts()).unwrap();
    // A series' labels say which value it holds, so a reader can check that
    // the labels it gets back belong to the samples next to them.
    let expected = |l: &Labels| -> (i64, f64) {
        let n = |k: &str| l.get(k).and_then(|v| v.parse::<i64>().ok()).unwrap_or(-1);
        assert_eq!((l.len(), l.metric_name()), (4, Some("m")), "{l}");
        (n("r") * 1000, (n("w") * 1_000_000 + n("r") * 1000 + n("i")) as f64)
    };
    let progress = [AtomicI64::new(0), AtomicI64::new(0)];
    let done = AtomicBool::new(false);
    std::thread::scope(|sc| {
        let writers: Vec<_> = (0..2i64)
            .map(|w| {
                let (h, progress) = (&h, &progress);
                sc.spawn(move || {
                    for r in 1..=ROUNDS {
                        let mut app = h.appender();
                        for i in 0..PER_ROUND {
                            let (ws, rs, is) = (w.to_string(), r.to_string(), i.to_string());
                            let l =
                                labels!("__name__" => "m", "w" => ws.as_str(), "r" => rs.as_str(), "i" => is.as_str());
                            app.append(&l, r * 1000, (w * 1_000_000 + r * 1000 + i) as f64).unwrap();
                        }
                        app.commit().unwrap();
                        progress[w as usize].store(r, Ordering::Release);
                    }
                })
            })
            .collect();
        let reader = sc.spawn(|| {
            let mut checked = 0usize;
            while !done.load(Ordering::Acquire) {
                for s in h.select(i64::MIN, i64::MAX, &[]).unwrap() {
                    let mut v = Vec::new();
                    let mut it = s.samples;
                    it.collect_into(&mut v);
                    let (t, val) = expected(&s.labels);
                    assert!(v.iter().all(|x| x.t == t && x.v == val), "{} {v:?}", s.labels);
                    checked += 1;
                }
                h.for_each_series(i64::MIN, i64::MAX, &[], &mut |l, v| {
                    let (t, val) = expected(l);
                    assert!(v.iter().all(|x| x.t == t && x.v == val), "{l} {v:?}");
                    ControlFlow::Continue(())
                })
                .unwrap();
            }
            checked
        });
        // Truncate a few rounds behind the slower writer, dropping (and
        // releasing the symbols of) series while others are created and read.
        while !writers.iter().all(|w| w.is_finished()) {
            let slow = progress.iter().map(|p| p.load(Ordering::Acquire)).min().unwrap_or(0);
            if slow > 5 {
                h.truncate((slow - 5) * 1000).unwrap();
            }
            std::thread::yield_now();
        }
        for w in writers {
            w.join().unwrap();
        }
        done.store(true, Ordering::Release);
        assert!(reader.join().unwrap() > 0);
    });
    let left = read(&h, i64::MIN, i64::MAX, &[]);
    assert!(!left.is_empty());
    h.truncate((ROUNDS + 1) * 1000).unwrap();
    assert_eq!(h.stats(1).num_series, 0);
    assert_eq!(h.symbols.len(), 0, "every symbol released with its series");
}

#[test]
fn label_sets_whose_hash_keys_collide_stay_apart() {
    // Found by search: these two label sets hash to the same stripe and the
    // same 32-bit key (`hash_key`), so the second series goes to `extra`.
    let a = labels!("__name__" => "collide", "n" => "762857");
    let b = labels!("__name__" => "collide", "n" => "2555609");
    let (ha, hb) = (a.stable_hash(), b.stable_hash());
    assert_ne!(ha, hb);
    assert_eq!((ha as usize % STRIPES, hash_key(ha)), (hb as usize % STRIPES, hash_key(hb)), "{ha:x} {hb:x}");

    let dir = tempfile::tempdir().unwrap();
    let (h, _) = Head::open(dir.path(), opts()).unwrap();
    let mut app = h.appender();
    let ra = app.append(&a, 1000, 1.0).unwrap();
    let rb = app.append(&b, 1000, 2.0).unwrap();
    app.commit().unwrap();
    assert_ne!(ra, rb);
    // Lookups by labels find each one's own series.
    let mut app = h.appender();
    assert_eq!(app.append(&a, 20_000, 3.0).unwrap(), ra);
    assert_eq!(app.append(&b, 2000, 4.0).unwrap(), rb);
    app.commit().unwrap();
    let by_n = |n: &str| read(&h, 0, i64::MAX, &[Matcher::equal("n", n)]);
    assert_eq!(by_n("762857")[0].1, vec![Sample::new(1000, 1.0), Sample::new(20_000, 3.0)]);
    assert_eq!(by_n("2555609")[0].1, vec![Sample::new(1000, 2.0), Sample::new(2000, 4.0)]);

    // Truncation drops b (older data only) and keeps a, still found by its labels.
    h.truncate(10_000).unwrap();
    assert_eq!(h.stats(5).num_series, 1);
    let mut app = h.appender();
    assert_eq!(app.append(&a, 30_000, 5.0).unwrap(), ra);
    // b comes back as a new series under the same key.
    let rb2 = app.append(&b, 40_000, 6.0).unwrap();
    app.commit().unwrap();
    assert!(rb2 != ra && rb2 != rb);
    assert_eq!(by_n("2555609")[0].1, vec![Sample::new(40_000, 6.0)]);
    // (Truncation drops whole chunks; a's one chunk reaches past 10 s.)
    let a_all = [(1000, 1.0), (20_000, 3.0), (30_000, 5.0)].map(|(t, v)| Sample::new(t, v));
    assert_eq!(by_n("762857")[0].1, a_all);
}
