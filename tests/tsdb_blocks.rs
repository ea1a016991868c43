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
    vec![
        (i64::MIN, i64::MAX),
        (lo, hi),
        (lo + 1, mid),
        (mid, mid + 20_000),
        (mid, mid),
        (hi + 1, hi + 10),
        (lo - 100, lo),
    ]
}

fn only_block_dir(parent: &Path) -> PathBuf {
    let dirs: Vec<PathBuf> =
        std::fs::read_dir(parent).unwrap().map(|e| e.unwrap().path()).filter(|p| p.is_dir()).collect();
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
    // 500 samples per series: chunks of 120, 120, 120, 120, 20.
    assert_eq!(meta.stats.num_chunks, 60 * 5, "{:?}", meta.stats);
    let block = Block::open(&dir).unwrap();
    block.verify_chunks().unwrap();
    assert_eq!(block.meta(), &meta);
    for ms in matcher_sets() {
        for (a, b) in ranges(lo, hi) {
            let want = dump(&src, a, b, &ms);
            assert_eq!(dump(&block, a, b, &ms), want, "matchers {ms:?} range [{a}, {b}]");
            assert_eq!(block.label_names(a, b, &ms).unwrap(), src.label_names(a, b, &ms).unwrap());
            assert_eq!(
                block.label_values("instance", a, b, &ms).unwrap(),
                src.label_values("instance", a, b, &ms).unwrap()
            );
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
                Ok(d) => {
                    assert!(f == "meta.json" && d == dump(&src, 0, i64::MAX, &[]), "{f} flip at {at} not detected")
                }
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

// ---- The database over the real head ----

use promlite::tsdb::db::{Db, DbOptions, HOUR_MS};

fn db_fill(db: &Db, series: usize, from: i64, to: i64, seed: u64) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut app = db.appender();
    let mut t = from;
    let labels: Vec<Labels> = (0..series)
        .map(|i| {
            Labels::from_pairs([
                ("__name__", format!("metric_{}", i % 4)),
                ("job", format!("job{}", i % 3)),
                ("instance", format!("host{i}:9100")),
            ])
        })
        .collect();
    let mut vals = vec![0.0f64; series];
    while t < to {
        for (i, l) in labels.iter().enumerate() {
            vals[i] += rng.random_range(0..50) as f64;
            let v = if rng.random_ratio(1, 200) { promlite::model::STALE_NAN } else { vals[i] };
            app.append(l, t + i as i64, v).unwrap();
        }
        t += 15_000 + rng.random_range(0..3);
    }
    app.commit().unwrap();
}

fn all_dumps(q: &dyn Queryable) -> Vec<Dump> {
    let mut out = Vec::new();
    for ms in matcher_sets() {
        for (a, b) in [
            (i64::MIN, i64::MAX),
            (0, 3 * HOUR_MS),
            (HOUR_MS + 7, 7 * HOUR_MS + 5),
            (5 * HOUR_MS, 5 * HOUR_MS + 60_000),
            (9 * HOUR_MS, 20 * HOUR_MS),
        ] {
            out.push(dump(q, a, b, &ms));
        }
    }
    out
}

#[test]
fn db_cut_compaction_reopen_and_retention_keep_the_heads_answers() {
    let tmp = tempfile::tempdir().unwrap();
    let opts = DbOptions::default();
    let db = Db::open(tmp.path(), opts.clone()).unwrap();
    db_fill(&db, 30, 0, 10 * HOUR_MS, 7);
    // Everything is in the head: these are the answers to keep.
    let want = all_dumps(&db);
    let names = db.label_names(i64::MIN, i64::MAX, &[]).unwrap();
    let before_stats = db.stats().unwrap();
    assert_eq!(before_stats.num_blocks, 0);

    let r = db.maintain().unwrap();
    assert_eq!((r.head_blocks, r.compactions, r.deleted), (4, 1, 0));
    let spans: Vec<(i64, i64)> = db.blocks().iter().map(|b| (b.meta().min_time, b.meta().max_time)).collect();
    assert_eq!(spans, vec![(0, 6 * HOUR_MS), (6 * HOUR_MS, 8 * HOUR_MS)]);
    let head = db.head().unwrap();
    assert_eq!(head.min_valid_time(), 8 * HOUR_MS);
    assert_eq!(all_dumps(&db), want);
    assert_eq!(db.label_names(i64::MIN, i64::MAX, &[]).unwrap(), names);
    let st = db.stats().unwrap();
    // The head may keep a few already persisted samples in partly truncated
    // chunks (queries skip them), never fewer.
    assert!(st.block_samples + st.head.num_samples >= before_stats.head.num_samples);
    assert_eq!(
        st.block_samples,
        db.select(i64::MIN, 8 * HOUR_MS - 1, &[])
            .unwrap()
            .into_iter()
            .map(|mut s| {
                let mut v = Vec::new();
                s.samples.collect_into(&mut v);
                v.len() as u64
            })
            .sum::<u64>()
    );
    assert_eq!(st.min_time, before_stats.min_time);
    assert_eq!(st.max_time, before_stats.max_time);
    assert_eq!(st.label_value_count_by_name[0], ("instance".to_string(), 30));

    // Appends older than the persisted range are refused.
    let mut app = db.appender();
    let l = Labels::from_pairs([("__name__", "metric_0"), ("job", "job0"), ("instance", "host0:9100")]);
    assert!(app.append(&l, HOUR_MS, 1.0).is_err());
    app.rollback();

    // A second Db on the same directory is refused.
    assert!(matches!(Db::open(tmp.path(), opts.clone()), Err(promlite::tsdb::db::DbError::Locked { .. })));
    drop(db);

    // Reopen: blocks mapped again, the head replayed from its WAL.
    let db = Db::open(tmp.path(), opts.clone()).unwrap();
    assert_eq!(db.blocks().len(), 2);
    assert_eq!(all_dumps(&db), want);
    // More data, another cut, and a further compaction once 6h..12h fills.
    db_fill(&db, 30, 10 * HOUR_MS, 16 * HOUR_MS, 8);
    let want2 = all_dumps(&db);
    let r = db.maintain().unwrap();
    assert!(r.head_blocks >= 2, "{r:?}");
    assert_eq!(all_dumps(&db), want2);
    drop(db);

    // Retention by time: only blocks ending within 6h of the newest block's end stay.
    let db = Db::open(tmp.path(), DbOptions { retention_time: 6 * HOUR_MS, ..opts }).unwrap();
    let newest_end = db.blocks().iter().map(|b| b.meta().max_time).max().unwrap();
    let r = db.maintain().unwrap();
    assert!(r.deleted >= 1, "{r:?}");
    for b in db.blocks().iter() {
        assert!(newest_end - b.meta().max_time < 6 * HOUR_MS, "{:?} kept", b.meta());
    }
    let oldest_kept = db.blocks().iter().map(|b| b.meta().min_time).min().unwrap();
    assert!(oldest_kept > 0);
    // What is kept answers exactly as before; what was dropped is gone.
    assert_eq!(dump(&db, oldest_kept, i64::MAX, &[]), dump_from(&want2[0], oldest_kept));
    assert!(dump(&db, 0, oldest_kept - 1, &[]).is_empty());
}

/// The samples of a full dump from `mint` on.
fn dump_from(d: &Dump, mint: i64) -> Dump {
    d.iter()
        .map(|(l, v)| (l.clone(), v.iter().copied().filter(|x| x.0 >= mint).collect::<Vec<_>>()))
        .filter(|(_, v)| !v.is_empty())
        .collect()
}

#[test]
fn db_skips_a_block_shorter_than_its_index_claims() {
    let tmp = tempfile::tempdir().unwrap();
    let opts = DbOptions { max_block_duration: Some(2 * HOUR_MS), ..Default::default() };
    let db = Db::open(tmp.path(), opts.clone()).unwrap();
    db_fill(&db, 5, 0, 8 * HOUR_MS, 3);
    db.maintain().unwrap();
    let dirs: Vec<PathBuf> = db.blocks().iter().map(|b| b.dir().to_path_buf()).collect();
    assert_eq!(dirs.len(), 3);
    drop(db);
    let seg = dirs[0].join("chunks/000001");
    let len = std::fs::metadata(&seg).unwrap().len();
    std::fs::OpenOptions::new().write(true).open(&seg).unwrap().set_len(len / 2).unwrap();
    let db = Db::open(tmp.path(), opts).unwrap();
    assert_eq!(db.blocks().len(), 2);
    let skipped = db.skipped_blocks();
    assert_eq!(skipped.len(), 1);
    let msg = &skipped[0].error;
    assert!(
        msg.contains("chunks/000001") && msg.contains(&format!("offset {}", len / 2)) && msg.contains("claims"),
        "{msg}"
    );
    // The rest still answers.
    assert!(!dump(&db, 2 * HOUR_MS, i64::MAX, &[]).is_empty());
}

/// A series lagging far behind the others keeps appending while the head is
/// cut: every acknowledged sample is found afterwards, bit for bit.
#[test]
fn appends_racing_a_head_cut_are_never_lost() {
    let tmp = tempfile::tempdir().unwrap();
    let db = Db::open(tmp.path(), DbOptions::default()).unwrap();
    db_fill(&db, 5, 0, 10 * HOUR_MS, 11);
    let lagging = Labels::from_pairs([("__name__", "lagging"), ("job", "late")]);
    let acked: Vec<(i64, u64)> = std::thread::scope(|s| {
        let writer = s.spawn(|| {
            let mut acked = Vec::new();
            let mut t = HOUR_MS;
            for batch in 0..400 {
                let mut app = db.appender();
                let mut pending = Vec::new();
                for _ in 0..20 {
                    let v = (t as f64).sqrt() + batch as f64;
                    if app.append(&lagging, t, v).is_ok() {
                        pending.push((t, v.to_bits()));
                    }
                    t += 15_000;
                }
                app.commit().unwrap();
                acked.extend(pending);
            }
            acked
        });
        for _ in 0..20 {
            db.maintain().unwrap();
        }
        writer.join().unwrap()
    });
    db.maintain().unwrap();
    assert!(!db.blocks().is_empty());
    assert!(!acked.is_empty());
    let got = dump(&db, i64::MIN, i64::MAX, &[Matcher::equal("job", "late")]);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].1, acked);
}

#[test]
fn xor_blocks_of_older_versions_stay_readable() {
    use promlite::tsdb::chunk::Encoding;
    let src = MemStorage::new();
    let start = 1_700_000_000_000;
    fill(&src, 11, 40, start, 400);
    let (lo, hi) = (start, start + 402 * 15_000);
    let tmp = tempfile::tempdir().unwrap();
    // What versions before the Decimal encoding wrote: XOR segments.
    let xor_opts = WriteOptions { encoding: Encoding::Xor, ..WriteOptions::default() };
    let (xdir, _) = write_block(&tmp.path().join("x"), &src, lo, hi, &[], &xor_opts).unwrap().unwrap();
    let (ddir, _) = write_block(&tmp.path().join("d"), &src, lo, hi, &[], &WriteOptions::default()).unwrap().unwrap();
    let seg = |d: &Path| std::fs::read(d.join("chunks/000001")).unwrap();
    assert_eq!(seg(&xdir)[5], 1, "XOR segment header");
    assert_eq!(seg(&ddir)[5], 16, "Decimal segment header");
    let xb = Block::open(&xdir).unwrap();
    // Every chunk here holds a special value or random floats, so Decimal
    // chunks are XOR inside: at most their mode byte longer.
    let (dl, xl) = (seg(&ddir).len() as u64, seg(&xdir).len() as u64);
    assert!(dl <= xl + xb.meta().stats.num_chunks, "{dl} vs {xl}");
    let db = Block::open(&ddir).unwrap();
    xb.verify_chunks().unwrap();
    db.verify_chunks().unwrap();
    for ms in matcher_sets() {
        for (a, b) in ranges(lo, hi) {
            let want = dump(&src, a, b, &ms);
            assert_eq!(dump(&xb, a, b, &ms), want, "XOR block, matchers {ms:?} range [{a}, {b}]");
            assert_eq!(dump(&db, a, b, &ms), want, "Decimal block, matchers {ms:?} range [{a}, {b}]");
        }
    }
    // Compacting an old XOR block writes Decimal chunks with the same answers.
    let (cdir, _) = write_block(&tmp.path().join("c"), &xb, lo, hi, &[xb.meta().clone()], &WriteOptions::default())
        .unwrap()
        .unwrap();
    assert_eq!(seg(&cdir)[5], 16);
    assert_eq!(dump(&Block::open(&cdir).unwrap(), i64::MIN, i64::MAX, &[]), dump(&src, i64::MIN, i64::MAX, &[]));
}
