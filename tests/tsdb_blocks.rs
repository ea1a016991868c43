//! Blocks and the database: writing, reopening, compaction and retention
//! keep query results identical to the source's, bit for bit; damaged block
//! files give clear errors naming file and offset.

use std::path::{Path, PathBuf};

use promlite::model::{Labels, MatchOp, Matcher, Sample};
use promlite::storage::memory::MemStorage;
use promlite::storage::{Appendable, Queryable};
use promlite::tsdb::block::{write_block, Block, BlockError, WriteOptions};
use rand::{Rng, SeedableRng};

type Dump = Vec<(Labels, Vec<(i64, u64)>)>;

/// Everything `select` returns, with values as bits.
fn dump(q: &dyn Queryable, mint: i64, maxt: i64, ms: &[Matcher]) -> Dump {
    q.select(mint, maxt, ms)
        .unwrap()
        .into_iter()
        .map(|mut s| {
            let mut v: Vec<Sample> = Vec::new();
            s.samples.collect_into(&mut v);
            (s.labels, v.into_iter().map(|x| (x.t, x.v.to_bits())).collect())
        })
        .collect()
}

/// Scrape-like data: several jobs and instances, counters, gauges, odd values.
fn fill(store: &dyn Appendable, seed: u64, series: usize, start: i64, samples: usize) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let specials = [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -0.0, promlite::model::STALE_NAN];
    let mut app = store.appender();
    for i in 0..series {
        let l = Labels::from_pairs([
            ("__name__", format!("metric_{}", i % 7)),
            ("job", format!("job{}", i % 3)),
            ("instance", format!("host{}:9100", i / 3)),
            ("kind", if i % 2 == 0 { "counter".to_string() } else { "gauge".to_string() }),
        ]);
        let mut t = start + rng.random_range(0..15_000);
        let mut v = 0.0f64;
        for k in 0..samples {
            v = if i % 2 == 0 { v + rng.random_range(0..100) as f64 } else { rng.random::<f64>() * 1e3 };
            let val = if k % 97 == 13 { specials[k % specials.len()] } else { v };
            app.append(&l, t, val).unwrap();
            t += 15_000 + rng.random_range(-3..=3);
        }
    }
    app.commit().unwrap();
}

fn matcher_sets() -> Vec<Vec<Matcher>> {
    let re = |op, n: &str, v: &str| Matcher::new(op, n, v).unwrap();
    vec![
        vec![],
        vec![Matcher::equal("job", "job1")],
        vec![Matcher::equal("__name__", "metric_3"), re(MatchOp::NotEqual, "kind", "gauge")],
        vec![re(MatchOp::RegexMatch, "instance", "host1.*"), re(MatchOp::RegexNoMatch, "job", "job0|job2")],
        vec![Matcher::equal("missing", "")],
        vec![Matcher::equal("job", "nope")],
    ]
}

fn ranges(lo: i64, hi: i64) -> Vec<(i64, i64)> {
    let mid = (lo + hi) / 2;
    vec![(i64::MIN, i64::MAX), (lo, hi), (lo + 1, mid), (mid, mid + 20_000), (mid, mid), (hi + 1, hi + 10), (lo - 100, lo)]
}

fn only_block_dir(parent: &Path) -> PathBuf {
    let dirs: Vec<PathBuf> = std::fs::read_dir(parent).unwrap().map(|e| e.unwrap().path()).filter(|p| p.is_dir()).collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    dirs.into_iter().next().unwrap()
}

#[test]
fn block_answers_exactly_like_its_source() {
    let src = MemStorage::new();
    let start = 1_700_000_000_000;
    fill(&src, 1, 60, start, 500);
    let tmp = tempfile::tempdir().unwrap();
    let (lo, hi) = (start, start + 500 * 15_000 + 15_000);
    let (dir, meta) = write_block(tmp.path(), &src, lo, hi + 1, &[], &WriteOptions::default()).unwrap().unwrap();
    assert_eq!(meta.stats.num_series, 60);
    assert_eq!(meta.stats.num_samples, 60 * 500);
    assert!(meta.stats.num_chunks >= 60 * 5, "{:?}", meta.stats);
    let block = Block::open(&dir).unwrap();
    block.verify_chunks().unwrap();
    assert_eq!(block.meta(), &meta);
    for ms in matcher_sets() {
        for (a, b) in ranges(lo, hi) {
            let want = dump(&src, a, b, &ms);
            assert_eq!(dump(&block, a, b, &ms), want, "matchers {ms:?} range [{a}, {b}]");
            assert_eq!(block.label_names(a, b, &ms).unwrap(), src.label_names(a, b, &ms).unwrap());
            assert_eq!(block.label_values("instance", a, b, &ms).unwrap(), src.label_values("instance", a, b, &ms).unwrap());
        }
    }
    // Nothing of the temporary directory is left.
    assert_eq!(only_block_dir(tmp.path()), dir);
}

#[test]
fn block_holds_only_its_range_and_empty_ranges_write_nothing() {
    let src = MemStorage::new();
    fill(&src, 2, 10, 0, 100);
    let tmp = tempfile::tempdir().unwrap();
    let (dir, meta) = write_block(tmp.path(), &src, 300_000, 600_000, &[], &WriteOptions::default()).unwrap().unwrap();
    let block = Block::open(&dir).unwrap();
    assert_eq!(dump(&block, i64::MIN, i64::MAX, &[]), dump(&src, 300_000, 599_999, &[]));
    assert_eq!((meta.min_time, meta.max_time), (300_000, 600_000));
    assert!(write_block(tmp.path(), &src, 10_000_000, 20_000_000, &[], &WriteOptions::default()).unwrap().is_none());
    assert_eq!(only_block_dir(tmp.path()), dir);
}

#[test]
fn iterators_outlive_the_block_and_its_files() {
    let src = MemStorage::new();
    fill(&src, 3, 5, 0, 300);
    let tmp = tempfile::tempdir().unwrap();
    let (dir, _) = write_block(tmp.path(), &src, 0, 10_000_000, &[], &WriteOptions::default()).unwrap().unwrap();
    let block = Block::open(&dir).unwrap();
    let series = block.select(0, i64::MAX, &[]).unwrap();
    drop(block);
    std::fs::remove_dir_all(&dir).unwrap();
    let got: Dump = series
        .into_iter()
        .map(|mut s| {
            let mut v = Vec::new();
            s.samples.collect_into(&mut v);
            (s.labels, v.into_iter().map(|x: Sample| (x.t, x.v.to_bits())).collect())
        })
        .collect();
    assert_eq!(got, dump(&src, 0, i64::MAX, &[]));
}

/// Every file of a block: truncating it or flipping a byte gives an error
/// naming the file, at open or (for chunk data) when the chunk is selected.
#[test]
fn damaged_block_files_give_clear_errors() {
    let src = MemStorage::new();
    fill(&src, 4, 8, 0, 400);
    let tmp = tempfile::tempdir().unwrap();
    let (dir, _) = write_block(tmp.path(), &src, 0, 10_000_000, &[], &WriteOptions::default()).unwrap().unwrap();
    let files = ["meta.json", "index", "chunks/000001"];
    let mut rng = rand::rngs::StdRng::seed_from_u64(9);
    for f in files {
        let path = dir.join(f);
        let good = std::fs::read(&path).unwrap();
        // Truncations, including "shorter than the index claims".
        for cut in [0, 1, good.len() / 2, good.len() - 1] {
            std::fs::write(&path, &good[..cut]).unwrap();
            let e = open_and_read(&dir).expect_err(&format!("{f} cut at {cut} not detected"));
            let msg = e.to_string();
            assert!(msg.contains(f), "{f} cut at {cut}: {msg}");
            if f != "meta.json" {
                assert!(msg.contains("offset") || msg.contains("bytes"), "{msg}");
            }
        }
        // Byte flips at random offsets past the reserved header bytes.
        for _ in 0..40 {
            let mut bad = good.clone();
            let at = rng.random_range(0..bad.len());
            if f != "meta.json" && (5..8).contains(&at) || f == "chunks/000001" && at == 5 {
                continue;
            }
            bad[at] ^= 1 << rng.random_range(0..8);
            std::fs::write(&path, &bad).unwrap();
            match open_and_read(&dir) {
                Err(e) => assert!(e.to_string().contains(f), "{f} flip at {at}: {e}"),
                // A flip inside meta.json's whitespace or a number it tolerates is harmless
                // only if the data read back is still exactly right.
                Ok(d) => assert!(f == "meta.json" && d == dump(&src, 0, i64::MAX, &[]), "{f} flip at {at} not detected"),
            }
        }
        std::fs::write(&path, &good).unwrap();
        assert_eq!(open_and_read(&dir).unwrap(), dump(&src, 0, i64::MAX, &[]));
    }
}

fn open_and_read(dir: &Path) -> Result<Dump, String> {
    let b = Block::open(dir).map_err(|e: BlockError| e.to_string())?;
    let series = b.select(i64::MIN, i64::MAX, &[]).map_err(|e| e.to_string())?;
    Ok(series
        .into_iter()
        .map(|mut s| {
            let mut v = Vec::new();
            s.samples.collect_into(&mut v);
            (s.labels, v.into_iter().map(|x: Sample| (x.t, x.v.to_bits())).collect())
        })
        .collect())
}
