//! Db logic against an in-memory head (the WAL-backed head has its own tests;
//! tests/tsdb_blocks.rs runs the same checks on the real one).

use std::sync::Arc;

use super::*;
use crate::model::{Labels, MatchOp, Sample};
use crate::storage::memory::MemStorage;

/// A head made of a shared MemStorage; `truncate` rebuilds it.
struct MemHead(Arc<MemStorage>);

impl Appendable for MemHead {
    fn appender(&self) -> Box<dyn Appender + '_> {
        self.0.appender()
    }
}

impl Queryable for MemHead {
    fn select(&self, mint: i64, maxt: i64, m: &[Matcher]) -> Result<Vec<Series>, StorageError> {
        self.0.select(mint, maxt, m)
    }
    fn label_names(&self, mint: i64, maxt: i64, m: &[Matcher]) -> Result<Vec<String>, StorageError> {
        self.0.label_names(mint, maxt, m)
    }
    fn label_values(&self, n: &str, mint: i64, maxt: i64, m: &[Matcher]) -> Result<Vec<String>, StorageError> {
        self.0.label_values(n, mint, maxt, m)
    }
}

fn all_samples(q: &dyn Queryable) -> Vec<(Labels, Vec<Sample>)> {
    q.select(i64::MIN, i64::MAX, &[])
        .unwrap()
        .into_iter()
        .map(|mut s| {
            let mut v = Vec::new();
            s.samples.collect_into(&mut v);
            (s.labels, v)
        })
        .collect()
}

impl HeadBackend for MemHead {
    fn min_time(&self) -> Option<i64> {
        all_samples(&*self.0).iter().filter_map(|(_, v)| v.first().map(|s| s.t)).min()
    }
    fn max_time(&self) -> Option<i64> {
        all_samples(&*self.0).iter().filter_map(|(_, v)| v.last().map(|s| s.t)).max()
    }
    fn truncate(&self, mint: i64) -> Result<(), StorageError> {
        let keep = all_samples(&*self.0);
        self.0.clear();
        let mut app = self.0.appender();
        for (l, v) in keep {
            for s in v.into_iter().filter(|s| s.t >= mint) {
                let _ = app.append(&l, s.t, s.v);
            }
        }
        app.commit()
    }
    fn stats(&self) -> HeadStats {
        let all = all_samples(&*self.0);
        HeadStats {
            num_series: all.len() as u64,
            num_samples: all.iter().map(|(_, v)| v.len() as u64).sum(),
            min_time: HeadBackend::min_time(self).unwrap_or(i64::MAX),
            max_time: HeadBackend::max_time(self).unwrap_or(i64::MIN),
            ..Default::default()
        }
    }
}

type Dump = Vec<(Labels, Vec<(i64, u64)>)>;

fn dump(q: &dyn Queryable, mint: i64, maxt: i64, ms: &[Matcher]) -> Dump {
    q.select(mint, maxt, ms)
        .unwrap()
        .into_iter()
        .map(|mut s| {
            let mut v = Vec::new();
            s.samples.collect_into(&mut v);
            (s.labels, v.into_iter().map(|x| (x.t, x.v.to_bits())).collect())
        })
        .collect()
}

fn fill(stores: &[&dyn Appendable], series: usize, from: i64, to: i64) {
    for st in stores {
        let mut app = st.appender();
        for i in 0..series {
            let l = Labels::from_pairs([
                ("__name__", "m"),
                ("i", &i.to_string()),
                ("job", if i % 2 == 0 { "a" } else { "b" }),
            ]);
            let mut t = from + i as i64 * 7;
            while t < to {
                app.append(&l, t, (t / 1000) as f64 + i as f64).unwrap();
                t += 15_000;
            }
        }
        app.commit().unwrap();
    }
}

fn open(dir: &std::path::Path, opts: DbOptions, head: Arc<MemStorage>) -> Db {
    Db::open_with(dir, opts, move |_, _, _| Ok(Box::new(MemHead(head)) as Box<dyn HeadBackend>)).unwrap()
}

fn check_same(db: &Db, reference: &MemStorage) {
    let ms = [vec![], vec![Matcher::equal("job", "a")], vec![Matcher::new(MatchOp::RegexMatch, "i", "1.*").unwrap()]];
    for m in &ms {
        for (a, b) in [
            (i64::MIN, i64::MAX),
            (0, 3 * HOUR_MS),
            (HOUR_MS + 1, 7 * HOUR_MS + 5),
            (5 * HOUR_MS, 5 * HOUR_MS + 60_000),
        ] {
            assert_eq!(dump(db, a, b, m), dump(reference, a, b, m), "matchers {m:?} range [{a}, {b}]");
        }
        assert_eq!(
            db.label_values("i", i64::MIN, i64::MAX, m).unwrap(),
            reference.label_values("i", i64::MIN, i64::MAX, m).unwrap()
        );
    }
}

#[test]
fn cut_compact_reopen_keep_answers_identical() {
    let tmp = tempfile::tempdir().unwrap();
    let reference = MemStorage::new();
    let head = Arc::new(MemStorage::new());
    let db = open(tmp.path(), DbOptions::default(), head.clone());
    fill(&[&db, &reference], 20, 0, 10 * HOUR_MS);
    check_same(&db, &reference);

    let r = db.maintain().unwrap();
    assert_eq!(r, MaintainReport { head_blocks: 4, compactions: 1, deleted: 0 });
    let spans: Vec<(i64, i64, u32)> =
        db.blocks().iter().map(|b| (b.meta().min_time, b.meta().max_time, b.meta().compaction.level)).collect();
    assert_eq!(spans, vec![(0, 6 * HOUR_MS, 2), (6 * HOUR_MS, 8 * HOUR_MS, 1)]);
    assert!(HeadBackend::min_time(&MemHead(head.clone())).unwrap() >= 8 * HOUR_MS);
    check_same(&db, &reference);
    // Compacted parents are gone from disk; only blocks, no temporaries.
    let names: Vec<String> =
        std::fs::read_dir(tmp.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    assert_eq!(names.iter().filter(|n| n.parse::<BlockId>().is_ok()).count(), 2, "{names:?}");
    assert!(!names.iter().any(|n| n.contains(".tmp")), "{names:?}");

    let stats = db.stats().unwrap();
    assert_eq!(stats.num_blocks, 2);
    assert_eq!(stats.block_samples + stats.head.num_samples, reference_samples(&reference));
    assert_eq!(stats.min_time, Some(0));
    assert_eq!(stats.label_value_count_by_name[0], ("i".to_string(), 20));

    // A second Db on the same directory is refused while the first is open.
    let again = Db::open_with(tmp.path(), DbOptions::default(), |_, _, _| {
        Ok(Box::new(MemHead(Arc::new(MemStorage::new()))) as Box<dyn HeadBackend>)
    });
    assert!(matches!(again, Err(DbError::Locked { .. })));
    drop(db);
    let db = open(tmp.path(), DbOptions::default(), head);
    assert_eq!(db.blocks().len(), 2);
    check_same(&db, &reference);
}

fn reference_samples(r: &MemStorage) -> u64 {
    all_samples(r).iter().map(|(_, v)| v.len() as u64).sum()
}

#[test]
fn retention_by_time_and_size_drops_the_oldest_blocks() {
    let tmp = tempfile::tempdir().unwrap();
    let head = Arc::new(MemStorage::new());
    // No compaction (max block = block range) so blocks stay 2h each.
    let opts = DbOptions { retention_time: 0, max_block_duration: Some(2 * HOUR_MS), ..Default::default() };
    let db = open(tmp.path(), opts.clone(), head.clone());
    fill(&[&db], 5, 0, 12 * HOUR_MS);
    db.maintain().unwrap();
    let ends = |db: &Db| db.blocks().iter().map(|b| b.meta().max_time / HOUR_MS).collect::<Vec<_>>();
    assert_eq!(ends(&db), vec![2, 4, 6, 8, 10]);
    drop(db);

    // Time: blocks ending 6h or more before the newest block's end go.
    let db = open(tmp.path(), DbOptions { retention_time: 6 * HOUR_MS, ..opts.clone() }, head.clone());
    let before = dump(&db, 4 * HOUR_MS, i64::MAX, &[]);
    assert_eq!(db.maintain().unwrap().deleted, 2);
    assert_eq!(ends(&db), vec![6, 8, 10]);
    assert_eq!(dump(&db, 4 * HOUR_MS, i64::MAX, &[]), before);
    assert!(dump(&db, 0, 4 * HOUR_MS - 1, &[]).is_empty());
    drop(db);

    // Size: keep the newest blocks that fit.
    let one = Block::open(&tmp.path().join(db_block_names(tmp.path())[0].clone())).unwrap().size_bytes();
    let db = open(tmp.path(), DbOptions { retention_size: one * 2 + one / 2, ..opts }, head);
    assert_eq!(db.maintain().unwrap().deleted, 1);
    assert_eq!(ends(&db), vec![8, 10]);
    assert_eq!(db_block_names(tmp.path()).len(), 2);
}

fn db_block_names(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.parse::<BlockId>().is_ok())
        .collect();
    v.sort();
    v
}

#[test]
fn damaged_block_is_skipped_and_reported_at_open() {
    let tmp = tempfile::tempdir().unwrap();
    let head = Arc::new(MemStorage::new());
    let opts = DbOptions { max_block_duration: Some(2 * HOUR_MS), ..Default::default() };
    let db = open(tmp.path(), opts.clone(), head.clone());
    fill(&[&db], 3, 0, 8 * HOUR_MS);
    db.maintain().unwrap();
    let blocks: Vec<PathBuf> = db.blocks().iter().map(|b| b.dir().to_path_buf()).collect();
    assert_eq!(blocks.len(), 3);
    drop(db);
    let idx = blocks[1].join("index");
    let len = std::fs::metadata(&idx).unwrap().len();
    std::fs::OpenOptions::new().write(true).open(&idx).unwrap().set_len(len - 10).unwrap();
    std::fs::create_dir(tmp.path().join("01ARZ3NDEKTSV4RRFFQ69G5FAV.tmp")).unwrap();
    let db = open(tmp.path(), opts, head);
    assert_eq!(db.blocks().len(), 2);
    let skipped = db.skipped_blocks();
    assert_eq!(skipped.len(), 1);
    assert_eq!(skipped[0].dir, blocks[1]);
    assert!(
        skipped[0].error.contains("index") && skipped[0].error.contains(&format!("offset {}", len - 10)),
        "{}",
        skipped[0].error
    );
    assert!(!tmp.path().join("01ARZ3NDEKTSV4RRFFQ69G5FAV.tmp").exists());
    assert_eq!(db.stats().unwrap().skipped_blocks.len(), 1);
}
