//! PromQL benchmarks: parsing, and evaluation over 100k series of the
//! queries promlite's users run most (rates summed, Triton-style ratios,
//! p95 from classic buckets), plus a 1h range query at a 15s step.
//!
//! Data lives in the real TSDB (`tsdb::Db`, head only, in a temporary
//! directory), as the server queries it. Each query's result is checked
//! before it is timed.
//!
//! Run: `cargo bench --bench promql`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use promlite::model::Labels;
use promlite::promql::{parse, Engine, EngineOptions, QueryValue};
use promlite::storage::Appendable;
use promlite::tsdb::db::{Db, DbOptions};

/// A database in a temporary directory, removed when dropped.
struct TempDb {
    db: Db,
    _dir: tempfile::TempDir,
}

impl TempDb {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
        let db = Db::open(dir.path(), DbOptions::default()).unwrap_or_else(|e| panic!("open db: {e}"));
        TempDb { db, _dir: dir }
    }
}

const SERIES: usize = 100_000;
/// Evaluation time of the instant queries: 10 minutes of data before it.
const T: i64 = 1_700_000_000_000;
const SCRAPE: i64 = 15_000;

fn append_counters(
    st: &TempDb,
    name: &str,
    labels: impl Fn(usize) -> Vec<(String, String)>,
    from: i64,
    to: i64,
    step: i64,
    inc: impl Fn(usize) -> f64,
) {
    let mut app = st.db.appender();
    for i in 0..SERIES {
        let mut pairs = labels(i);
        pairs.push(("__name__".into(), name.into()));
        let l = Labels::from_pairs(pairs.iter().map(|(a, b)| (a.as_str(), b.as_str())));
        let mut t = from + (i as i64 % 1000);
        let mut v = 0.0;
        let mut r = None;
        while t <= to {
            match r {
                None => r = app.append(&l, t, v).ok(),
                Some(sr) => {
                    let _ = app.append_ref(sr, t, v);
                }
            }
            v += inc(i);
            t += step;
        }
    }
    let _ = app.commit();
}

/// One storage per query's metrics, so each bench selects only what it reads.
fn instant_storages() -> (TempDb, TempDb, TempDb) {
    let (sx, sab, sh) = (TempDb::new(), TempDb::new(), TempDb::new());
    let from = T - 10 * 60_000;
    let st = &sx;
    append_counters(
        st,
        "x",
        |i| vec![("instance".into(), format!("i{i}")), ("job".into(), format!("j{}", i % 10))],
        from,
        T,
        SCRAPE,
        |_| 1.0,
    );
    let st = &sab;
    append_counters(
        st,
        "a",
        |i| vec![("instance".into(), format!("i{i}")), ("model".into(), format!("m{}", i % 50))],
        from,
        T,
        SCRAPE,
        |i| (i % 7) as f64 + 1.0,
    );
    append_counters(
        st,
        "b",
        |i| vec![("instance".into(), format!("i{i}")), ("model".into(), format!("m{}", i % 50))],
        from,
        T,
        SCRAPE,
        |_| 2.0,
    );
    // 10 buckets per (handler, instance): 10k histograms.
    let les = ["0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "+Inf"];
    let st = &sh;
    append_counters(
        st,
        "h_bucket",
        |i| {
            let h = i / les.len();
            vec![
                ("handler".into(), format!("/h{}", h % 100)),
                ("instance".into(), format!("i{}", h / 100)),
                ("le".into(), les[i % les.len()].into()),
            ]
        },
        from,
        T,
        SCRAPE,
        |i| (i % les.len()) as f64 + 1.0,
    );
    (sx, sab, sh)
}

fn range_storage() -> TempDb {
    let st = TempDb::new();
    // 1h range plus the 5m window, scraped every 30s.
    append_counters(
        &st,
        "x",
        |i| vec![("instance".into(), format!("i{i}")), ("job".into(), format!("j{}", i % 10))],
        T - 65 * 60_000,
        T,
        30_000,
        |_| 1.0,
    );
    st
}

/// CPU time used by this process so far (all threads).
fn process_cpu_time() -> std::time::Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec.
    if unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) } != 0 {
        return std::time::Duration::ZERO;
    }
    std::time::Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

fn scalar_sum(v: &QueryValue) -> f64 {
    match v {
        QueryValue::Vector(s) => s.iter().map(|x| x.v).sum(),
        QueryValue::Matrix(s) => s.iter().map(|x| x.points.len() as f64).sum(),
        _ => f64::NAN,
    }
}

fn bench_parse(c: &mut Criterion) {
    let queries = [
        "sum(rate(x[5m]))",
        "sum by (model) (rate(a[5m])) / clamp_min(sum by (model) (rate(b[5m])), 1)",
        "histogram_quantile(0.95, sum by (le, handler) (rate(h_bucket[5m])))",
        "(node_memory_MemTotal_bytes - node_memory_MemAvailable_bytes) / node_memory_MemTotal_bytes > 0.9",
        "sum(rate(nv_inference_request_failure{job=\"triton\"}[5m])) / clamp_min(sum(rate(nv_inference_request_success{job=\"triton\"}[5m])) + sum(rate(nv_inference_request_failure{job=\"triton\"}[5m])), 1)",
        "max_over_time(rate(http_requests_total{status=~\"5..\"}[5m])[30m:1m]) > 0.05",
    ];
    c.bench_function("parse/6_rule_queries", |b| {
        b.iter(|| {
            for q in &queries {
                let _ = black_box(parse(black_box(q)));
            }
        })
    });
}

fn bench_eval(c: &mut Criterion) {
    let (sx, sab, sh) = instant_storages();
    let engine = Engine::new(EngineOptions::default());
    let cases = [
        ("sum_rate_100k", "sum(rate(x[5m]))", SERIES as f64 / 15.0, &sx),
        (
            "ratio_by_model_100k",
            "sum by (model) (rate(a[5m])) / clamp_min(sum by (model) (rate(b[5m])), 1)",
            f64::NAN,
            &sab,
        ),
        (
            "histogram_quantile_100k",
            "histogram_quantile(0.95, sum by (le, handler) (rate(h_bucket[5m])))",
            f64::NAN,
            &sh,
        ),
    ];
    let mut g = c.benchmark_group("eval_instant");
    g.sample_size(10);
    // What the storage alone costs: select and decode.
    let x = [promlite::model::Matcher::equal("__name__", "x")];
    g.bench_function("select_only_x_100k", |b| {
        b.iter(|| {
            let mut n = 0;
            let mut buf = Vec::new();
            for mut s in promlite::storage::Queryable::select(&sx.db, T - 300_000, T, &x).unwrap_or_default() {
                buf.clear();
                s.samples.collect_into(&mut buf);
                n += buf.len();
            }
            black_box(n)
        })
    });
    // The same through the allocation-free walk the streamed aggregations use.
    g.bench_function("walk_only_x_100k", |b| {
        b.iter(|| {
            let mut n = 0;
            let _ = promlite::storage::Queryable::for_each_series(&sx.db, T - 300_000, T, &x, &mut |_, s| {
                n += s.len();
                std::ops::ControlFlow::Continue(())
            });
            black_box(n)
        })
    });
    for (name, q, want, st) in cases {
        let plan = match parse(q) {
            Ok(p) => p,
            Err(e) => panic!("{q}: {e}"),
        };
        let got = engine.instant(&st.db, &plan, T).map(|v| scalar_sum(&v));
        let got = got.unwrap_or_else(|e| panic!("{q}: {e}"));
        if want.is_nan() {
            assert!(got.is_finite() && got > 0.0, "{q}: {got}");
        } else {
            assert!((got - want).abs() < 1e-6 * want, "{q}: {got} != {want}");
        }
        g.bench_function(name, |b| b.iter(|| black_box(engine.instant(&st.db, &plan, T))));
    }
    g.finish();
}

fn bench_range(c: &mut Criterion) {
    let st = range_storage();
    let engine = Engine::new(EngineOptions::default());
    let plan = match parse("sum(rate(x[5m]))") {
        Ok(p) => p,
        Err(e) => panic!("{e}"),
    };
    let got = engine.range(&st.db, &plan, T - 3_600_000, T, 15_000).map(|v| scalar_sum(&v));
    assert_eq!(got.ok(), Some(241.0), "1h at 15s is 241 points");
    let mut g = c.benchmark_group("eval_range");
    g.sample_size(10);
    g.bench_function("sum_rate_100k_1h_step15s", |b| {
        b.iter(|| black_box(engine.range(&st.db, &plan, T - 3_600_000, T, 15_000)))
    });
    g.finish();
}

/// The Triton series of `scripts/bench-query.sh`'s load (`loadgen::series`)
/// that the ratio reads, 65 minutes at 15 s with the load tool's integer
/// increments, so the range ratio here is the one the HTTP comparison times.
fn triton_range_storage() -> TempDb {
    let st = TempDb::new();
    let mut app = st.db.appender();
    let mut rng: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in 0..SERIES {
        let g = promlite::loadgen::series::series(i);
        let name = g.labels.iter().find(|(n, _)| n == "__name__").map(|(_, v)| v.as_str());
        if !matches!(name, Some("nv_inference_count" | "nv_inference_request_duration_us")) {
            continue;
        }
        let l = Labels::from_pairs(g.labels.iter().map(|(a, b)| (a.as_str(), b.as_str())));
        let (mut t, mut v, mut r) = (T - 65 * 60_000, 0.0, None);
        while t <= T {
            match r {
                None => r = app.append(&l, t, v).ok(),
                Some(sr) => {
                    let _ = app.append_ref(sr, t, v);
                }
            }
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            v += (rng % 100) as f64;
            t += SCRAPE;
        }
    }
    let _ = app.commit();
    st
}

/// All 100k series of the load tool, 65 minutes at 15 s appended time by
/// time as the server receives them, so the chunks and series the ratio
/// reads lie scattered among the others' as in the HTTP comparison.
fn interleaved_range_storage() -> TempDb {
    let st = TempDb::new();
    let labels: Vec<Labels> = (0..SERIES)
        .map(|i| {
            let g = promlite::loadgen::series::series(i);
            Labels::from_pairs(g.labels.iter().map(|(a, b)| (a.as_str(), b.as_str())))
        })
        .collect();
    let mut refs = vec![None; SERIES];
    let mut values = vec![0.0f64; SERIES];
    let mut rng: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut t = T - 65 * 60_000;
    while t <= T {
        let mut app = st.db.appender();
        for i in 0..SERIES {
            match refs[i] {
                None => refs[i] = app.append(&labels[i], t, values[i]).ok(),
                Some(r) => {
                    let _ = app.append_ref(r, t, values[i]);
                }
            }
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            values[i] += (rng % 100) as f64;
        }
        let _ = app.commit();
        t += SCRAPE;
    }
    st
}

/// The HTTP comparison's range ratio over `st`, as `eval_range/<name>`:
/// wall time on the default threads and on the calling thread only (what
/// splitting the walk gains), and the same as process CPU time (all
/// threads: steadier than wall time on a shared machine, and shows what the
/// split costs).
fn bench_ratio_on(c: &mut Criterion, st: &TempDb, name: &str) {
    let engine = Engine::new(EngineOptions::default());
    let one = Engine::new(EngineOptions { walk_threads: 1, ..EngineOptions::default() });
    let q = "sum by (model) (rate(nv_inference_request_duration_us[5m])) / clamp_min(sum by (model) (rate(nv_inference_count[5m])), 1)";
    let plan = parse(q).unwrap_or_else(|e| panic!("{e}"));
    let got = engine.range(&st.db, &plan, T - 3_600_000, T, 15_000).map(|v| scalar_sum(&v));
    assert_eq!(got.ok(), Some(2410.0), "10 models, 241 points each");
    let mut g = c.benchmark_group("eval_range");
    g.sample_size(20);
    for (suffix, e) in [("", &engine), ("_1thread", &one)] {
        g.bench_function(format!("{name}{suffix}"), |b| {
            b.iter(|| black_box(e.range(&st.db, &plan, T - 3_600_000, T, 15_000)))
        });
        g.bench_function(format!("{name}{suffix}_cpu"), |b| {
            b.iter_custom(|iters| {
                let t0 = process_cpu_time();
                for _ in 0..iters {
                    black_box(e.range(&st.db, &plan, T - 3_600_000, T, 15_000).is_ok());
                }
                process_cpu_time().saturating_sub(t0)
            })
        });
    }
    g.finish();
}

fn bench_range_ratio(c: &mut Criterion) {
    bench_ratio_on(c, &triton_range_storage(), "triton_ratio_1h_step15s");
}

fn bench_range_ratio_interleaved(c: &mut Criterion) {
    bench_ratio_on(c, &interleaved_range_storage(), "triton_ratio_1h_step15s_among_100k");
}

criterion_group!(benches, bench_parse, bench_eval, bench_range, bench_range_ratio, bench_range_ratio_interleaved);
criterion_main!(benches);
