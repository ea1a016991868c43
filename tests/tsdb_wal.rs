//! WAL property tests: replay returns exactly what was logged, and damage to
//! the last segment (truncation or flipped bytes) loses only the damaged
//! record and what follows it.

use std::path::Path;

use promlite::model::{Labels, STALE_NAN};
use promlite::storage::SeriesRef;
use promlite::tsdb::wal::frame::{self, Frame};
use promlite::tsdb::wal::segment;
use promlite::tsdb::wal::{RecordBatch, RecordRef, RefSample, Wal, WalOptions};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Rec {
    Series(Vec<(u64, Labels)>),
    Samples(Vec<RefSample>),
}

impl Rec {
    fn same(&self, o: &Rec) -> bool {
        match (self, o) {
            (Rec::Series(a), Rec::Series(b)) => a == b,
            (Rec::Samples(a), Rec::Samples(b)) => a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.bit_eq(y)),
            _ => false,
        }
    }
}

fn replay(dir: &Path, opts: WalOptions) -> (Vec<Rec>, promlite::tsdb::wal::ReplayStats) {
    let mut got = Vec::new();
    let (_wal, stats) = Wal::open(dir, opts, &mut |r| match r {
        RecordRef::Series(s) => got.push(Rec::Series(s.iter().map(|(r, l)| (r.0, l.clone())).collect())),
        RecordRef::Samples(s) => got.push(Rec::Samples(s.to_vec())),
        RecordRef::MinTime(_) => {}
    })
    .expect("replay");
    (got, stats)
}

fn write_all(dir: &Path, opts: &WalOptions, batches: &[Vec<Rec>]) {
    let (wal, _) = Wal::open(dir, opts.clone(), &mut |_| {}).expect("open");
    let mut b = RecordBatch::new();
    for batch in batches {
        b.clear();
        for r in batch {
            match r {
                Rec::Series(s) => {
                    let v: Vec<(SeriesRef, &Labels)> = s.iter().map(|(r, l)| (SeriesRef(*r), l)).collect();
                    b.add_series(&v);
                }
                Rec::Samples(s) => b.add_samples(s),
            }
        }
        wal.log(&b).expect("log");
    }
}

/// End offsets of the frames in a segment file.
fn frame_ends(bytes: &[u8]) -> Vec<usize> {
    let mut pos = frame::HEADER_LEN;
    let mut ends = Vec::new();
    while pos < bytes.len() {
        match frame::decode_frame(&bytes[pos..]) {
            Frame::Ok { len, .. } => {
                pos += len;
                ends.push(pos);
            }
            _ => break,
        }
    }
    ends
}

fn value() -> impl Strategy<Value = f64> {
    prop_oneof![any::<u64>().prop_map(f64::from_bits), Just(STALE_NAN), Just(-0.0), Just(f64::NAN), -1e9f64..1e9]
}

fn rec() -> impl Strategy<Value = Rec> {
    prop_oneof![
        proptest::collection::vec((0u64..1000, "[a-z]{1,8}", "[a-z0-9]{1,12}"), 1..4).prop_map(|v| Rec::Series(
            v.into_iter()
                .map(|(r, n, val)| (r, Labels::from_pairs([("__name__", n.as_str()), ("v", val.as_str())])))
                .collect()
        )),
        proptest::collection::vec((0u64..1000, any::<i64>(), value()), 1..40)
            .prop_map(|v| Rec::Samples(v.into_iter().map(|(r, t, v)| RefSample { r: SeriesRef(r), t, v }).collect())),
    ]
}

#[derive(Debug, Clone)]
enum Damage {
    None,
    Truncate(prop::sample::Index),
    Flip(prop::sample::Index, u8),
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        Just(Damage::None),
        any::<prop::sample::Index>().prop_map(Damage::Truncate),
        (any::<prop::sample::Index>(), 1u8..=255).prop_map(|(i, x)| Damage::Flip(i, x)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn replay_equals_appended_and_survives_tail_damage(
        batches in proptest::collection::vec(proptest::collection::vec(rec(), 1..4), 1..12),
        dmg in damage(),
        seg_size in prop_oneof![Just(400u64), Just(2000), Just(1 << 20)],
    ) {
        let dir = tempfile::tempdir().unwrap();
        let opts = WalOptions { segment_size: seg_size, fsync: false };
        write_all(dir.path(), &opts, &batches);
        let appended: Vec<Rec> = batches.iter().flatten().cloned().collect();

        let segs = segment::list_segments(dir.path()).unwrap();
        // Records in segments before the last one, and frame ends in the last.
        let last = *segs.last().unwrap();
        let last_path = segment::segment_path(dir.path(), last);
        let mut bytes = std::fs::read(&last_path).unwrap();
        let ends = frame_ends(&bytes);
        let before_last = appended.len() - ends.len();
        let survive_in_last = match &dmg {
            Damage::None => ends.len(),
            Damage::Truncate(i) => {
                let at = i.index(bytes.len() + 1);
                bytes.truncate(at);
                ends.iter().filter(|&&e| e <= at).count()
            }
            Damage::Flip(i, x) => {
                if bytes.is_empty() { ends.len() } else {
                    let at = i.index(bytes.len());
                    bytes[at] ^= x;
                    if at < frame::HEADER_LEN { 0 } else { ends.iter().filter(|&&e| e <= at).count() }
                }
            }
        };
        std::fs::write(&last_path, &bytes).unwrap();

        let (got, stats) = replay(dir.path(), opts.clone());
        let want = &appended[..before_last + survive_in_last];
        prop_assert_eq!(got.len(), want.len(), "stats {:?}", stats);
        for (g, w) in got.iter().zip(want) {
            prop_assert!(g.same(w), "got {:?} want {:?}", g, w);
        }
        // The repair is durable: a second replay sees the same records and no damage.
        let (again, stats2) = replay(dir.path(), opts);
        prop_assert_eq!(again.len(), want.len());
        prop_assert!(stats2.repaired.is_none());
    }
}

#[test]
fn damage_before_the_last_segment_is_an_error_naming_file_and_offset() {
    let dir = tempfile::tempdir().unwrap();
    let opts = WalOptions { segment_size: 200, fsync: false };
    let s: Vec<RefSample> = (0..10).map(|i| RefSample { r: SeriesRef(1), t: i, v: i as f64 }).collect();
    write_all(dir.path(), &opts, &vec![vec![Rec::Samples(s)]; 5]);
    let segs = segment::list_segments(dir.path()).unwrap();
    assert!(segs.len() >= 3, "{segs:?}");
    let p = segment::segment_path(dir.path(), segs[0]);
    let mut b = std::fs::read(&p).unwrap();
    b[20] ^= 0xff;
    std::fs::write(&p, &b).unwrap();
    let err = Wal::open(dir.path(), opts, &mut |_| {}).err().expect("must fail");
    let msg = err.to_string();
    assert!(msg.contains(&p.display().to_string()) && msg.contains("offset 8"), "{msg}");
}

#[test]
fn checkpoint_keeps_live_series_and_recent_samples() {
    let dir = tempfile::tempdir().unwrap();
    let opts = WalOptions { segment_size: 300, fsync: false };
    let la = Labels::from_pairs([("__name__", "a")]);
    let lb = Labels::from_pairs([("__name__", "b")]);
    let (wal, _) = Wal::open(dir.path(), opts.clone(), &mut |_| {}).unwrap();
    let mut b = RecordBatch::new();
    b.add_series(&[(SeriesRef(1), &la), (SeriesRef(2), &lb)]);
    wal.log(&b).unwrap();
    for t in 0..100 {
        b.clear();
        b.add_samples(&[
            RefSample { r: SeriesRef(1), t, v: t as f64 },
            RefSample { r: SeriesRef(2), t, v: -(t as f64) },
        ]);
        wal.log(&b).unwrap();
    }
    let st = wal.checkpoint(50, &|r| r == SeriesRef(1)).unwrap();
    assert_eq!((st.series_kept, st.samples_kept), (1, 50));
    // Appends after the checkpoint land in later segments.
    b.clear();
    b.add_samples(&[RefSample { r: SeriesRef(1), t: 100, v: 100.0 }]);
    wal.log(&b).unwrap();
    // A second checkpoint folds the first one in.
    wal.checkpoint(60, &|r| r == SeriesRef(1)).unwrap();
    drop(wal);
    let mut series = Vec::new();
    let mut samples = Vec::new();
    let mut min_time = None;
    let (_w, stats) = Wal::open(dir.path(), opts, &mut |r| match r {
        RecordRef::Series(s) => series.extend(s.iter().map(|(r, _)| r.0)),
        RecordRef::Samples(s) => samples.extend(s.iter().map(|x| (x.r.0, x.t))),
        RecordRef::MinTime(t) => min_time = Some(t),
    })
    .unwrap();
    assert!(stats.checkpoint.is_some());
    assert_eq!(series, vec![1]);
    assert_eq!(min_time, Some(60));
    let want: Vec<(u64, i64)> = (60..=100).map(|t| (1, t)).collect();
    assert_eq!(samples, want);
    // Only the checkpoint and segments after it remain.
    let names: Vec<String> =
        std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    assert_eq!(names.iter().filter(|n| n.starts_with("checkpoint.")).count(), 1, "{names:?}");
}
