//! Storage benchmarks: appends (existing and new series), the XOR chunk
//! codec, and matcher selection + decoding over 100k series.
//!
//! `cargo bench --bench storage`

use std::hint::black_box;
use std::time::Duration;

use criterion::measurement::{Measurement, ValueFormatter, WallTime};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use promlite::model::{Labels, MatchOp, Matcher, Sample};
use promlite::storage::{Appendable, Queryable, SeriesRef};
use promlite::tsdb::chunk::decimal::{self, Predictor};
use promlite::tsdb::chunk::{self, ChunkIter, DecimalAppender, Encoding, XorIter};
use promlite::tsdb::head::{Head, HeadOptions};
use promlite::tsdb::wal::WalOptions;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Thread CPU time: on a shared 2-core machine wall time mostly measures the
/// neighbours; CPU time of the benchmarking thread measures our code.
/// (fsync-bound benches use wall time.)
struct ThreadCpu;

static WALL: WallTime = WallTime;

fn thread_cpu() -> Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid out-pointer for clock_gettime.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

impl Measurement for ThreadCpu {
    type Intermediate = Duration;
    type Value = Duration;
    fn start(&self) -> Duration {
        thread_cpu()
    }
    fn end(&self, i: Duration) -> Duration {
        thread_cpu().saturating_sub(i)
    }
    fn add(&self, a: &Duration, b: &Duration) -> Duration {
        *a + *b
    }
    fn zero(&self) -> Duration {
        Duration::ZERO
    }
    fn to_f64(&self, v: &Duration) -> f64 {
        v.as_nanos() as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        WALL.formatter()
    }
}

fn series_labels(i: usize) -> Labels {
    let job = format!("job-{}", i % 10);
    let inst = format!("10.0.{}.{}:9100", i / 256 % 256, i % 256);
    let pod = format!("pod-{}", i / 50);
    let id = i.to_string();
    Labels::from_pairs([
        ("__name__", format!("metric_{}", i % 100).as_str()),
        ("job", job.as_str()),
        ("instance", inst.as_str()),
        ("namespace", "default"),
        ("pod", pod.as_str()),
        ("container", "app"),
        ("cluster", "c1"),
        ("series", id.as_str()),
    ])
}

fn head(fsync: bool) -> (tempfile::TempDir, Head) {
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = HeadOptions { wal: WalOptions { fsync, ..Default::default() }, ..Default::default() };
    let (h, _) = Head::open(dir.path(), opts).expect("open head");
    (dir, h)
}

/// 15 s scrapes with a counter-like value.
fn realistic_samples(n: usize, rng: &mut StdRng) -> Vec<Sample> {
    let mut v = 1000.0f64;
    (0..n as i64)
        .map(|i| {
            v += (rng.random_range(0..40) as f64).floor();
            let jitter = if rng.random_bool(0.05) { rng.random_range(1..20) } else { 0 };
            Sample::new(1_700_000_000_000 + i * 15_000 + jitter, v)
        })
        .collect()
}

const N: usize = 10_000;

/// Series the append/existing bench cycles through: `N`, or `APPEND_SERIES`
/// to see how append speed holds up once series no longer fit in cache.
fn append_series() -> usize {
    std::env::var("APPEND_SERIES").ok().and_then(|v| v.parse().ok()).unwrap_or(N)
}

/// Appends one sample to each of `append_series()` existing series per
/// iteration, in batches of 10k as a remote_write burst would.
fn bench_append_existing<M: Measurement>(c: &mut Criterion<M>, fsync: bool) {
    let mut g = c.benchmark_group(if fsync { "append_wall" } else { "append" });
    g.measurement_time(Duration::from_secs(5)).sample_size(20);
    {
        let (_dir, h) = head(fsync);
        let mut app = h.appender();
        let n = append_series();
        let refs: Vec<SeriesRef> = (0..n).map(|i| app.append(&series_labels(i), 0, 0.0).expect("append")).collect();
        app.commit().expect("commit");
        let mut t = 0i64;
        g.throughput(Throughput::Elements(n as u64));
        let name = if fsync { "existing_series_10k_batch_fsync" } else { "existing_series_10k_batch" };
        g.bench_function(name, |b| {
            b.iter(|| {
                t += 15_000;
                for batch in refs.chunks(N) {
                    let mut app = h.appender();
                    for (i, r) in batch.iter().enumerate() {
                        app.append_ref(*r, t, (t as f64) + i as f64).expect("append");
                    }
                    app.commit().expect("commit");
                }
            })
        });
    }
    g.finish();
}

fn bench_append(c: &mut Criterion<ThreadCpu>) {
    bench_append_existing(c, false);
    let mut g = c.benchmark_group("append_new");
    g.measurement_time(Duration::from_secs(5)).sample_size(20);
    {
        let (_dir, h) = head(false);
        let mut next = 0usize;
        const M: usize = 1000;
        g.throughput(Throughput::Elements(M as u64));
        g.bench_function("new_series_1k_batch", |b| {
            b.iter_batched(
                || {
                    let l: Vec<Labels> = (next..next + M).map(series_labels).collect();
                    next += M;
                    l
                },
                |labels| {
                    let mut app = h.appender();
                    for l in &labels {
                        app.append(l, 1000, 1.0).expect("append");
                    }
                    app.commit().expect("commit");
                },
                BatchSize::LargeInput,
            )
        });
    }
    g.finish();
}

fn bench_chunk(c: &mut Criterion<ThreadCpu>) {
    let mut rng = StdRng::seed_from_u64(7);
    let samples = realistic_samples(120, &mut rng);
    let bytes = chunk::encode(&samples).expect("encode");
    assert_eq!(chunk::decode(&bytes).expect("decode").len(), 120);
    let mut g = c.benchmark_group("chunk");
    g.throughput(Throughput::Elements(120));
    g.bench_function("encode_120", |b| b.iter(|| chunk::encode(black_box(&samples))));
    g.bench_function("decode_120", |b| {
        b.iter(|| {
            let mut n = 0.0;
            for s in XorIter::new(black_box(&bytes[..])).expect("iter") {
                n += s.map(|s| s.v).unwrap_or(0.0);
            }
            n
        })
    });
    // The Decimal encoding: online (as the head appends) and best-of (as
    // blocks are written), and decoding through the encoding dispatch.
    let dec = chunk::encode_as(Encoding::Decimal, &samples).expect("encode");
    assert_eq!(chunk::decode_as(Encoding::Decimal, &dec).expect("decode").len(), 120);
    g.bench_function("decimal_append_120", |b| {
        b.iter(|| {
            let mut a = DecimalAppender::with_capacity(64);
            for s in black_box(&samples) {
                a.append(s.t, s.v).expect("append");
            }
            a.finish()
        })
    });
    g.bench_function("decimal_encode_best_120", |b| {
        b.iter(|| chunk::encode_as(Encoding::Decimal, black_box(&samples)))
    });
    // The query walk's path: the whole chunk into a reused buffer.
    let mut buf = Vec::with_capacity(120);
    g.bench_function("decimal_decode_range_120", |b| {
        b.iter(|| {
            buf.clear();
            let mut it = ChunkIter::new(Encoding::Decimal, black_box(&dec[..])).expect("iter");
            it.decode_range_into(i64::MIN, i64::MAX, &mut buf).expect("decode");
            buf.len()
        })
    });
    // The head's online encodings: the per-sample adaptive predictor and
    // the per-block one (which new chunks use), each decoded alone, and two
    // blocked chunks decoded one after the other and side by side.
    let online = |pred: Predictor, part: &[Sample]| {
        let mut a = DecimalAppender::with_predictor(64, pred);
        for s in part {
            a.append(s.t, s.v).expect("append");
        }
        a.finish()
    };
    for pred in [Predictor::Adaptive, Predictor::Blocked] {
        let bytes = online(pred, &samples);
        assert_eq!(chunk::decode_as(Encoding::Decimal, &bytes).expect("decode"), samples);
        let name = format!("decimal_decode_{}_120", if pred == Predictor::Blocked { "blocked" } else { "adaptive" });
        g.bench_function(name, |b| {
            b.iter(|| {
                buf.clear();
                let mut it = ChunkIter::new(Encoding::Decimal, black_box(&bytes[..])).expect("iter");
                it.decode_range_into(i64::MIN, i64::MAX, &mut buf).expect("decode");
                buf.len()
            })
        });
    }
    let later = realistic_samples(120, &mut rng);
    let (x, y) = (online(Predictor::Blocked, &samples), online(Predictor::Blocked, &later));
    let mut buf2 = Vec::with_capacity(120);
    g.throughput(Throughput::Elements(240));
    g.bench_function("decimal_decode_pair_one_by_one_240", |b| {
        b.iter(|| {
            buf.clear();
            buf2.clear();
            for (c, out) in [(&x, &mut buf), (&y, &mut buf2)] {
                let mut it = ChunkIter::new(Encoding::Decimal, black_box(&c[..])).expect("iter");
                it.decode_range_into(i64::MIN, i64::MAX, out).expect("decode");
            }
            buf.len() + buf2.len()
        })
    });
    g.bench_function("decimal_decode_pair_240", |b| {
        b.iter(|| {
            buf.clear();
            buf2.clear();
            let r = decimal::decode_blocked_pair(black_box(&x), black_box(&y), i64::MIN, i64::MAX, &mut buf, &mut buf2);
            assert!(matches!(r, Some(Ok(()))));
            buf.len() + buf2.len()
        })
    });
    assert_eq!((&buf, &buf2), (&samples, &later));
    g.throughput(Throughput::Elements(120));
    g.bench_function("decimal_decode_120", |b| {
        b.iter(|| {
            let mut n = 0.0;
            for s in ChunkIter::new(Encoding::Decimal, black_box(&dec[..])).expect("iter") {
                n += s.map(|s| s.v).unwrap_or(0.0);
            }
            n
        })
    });
    g.finish();
}

fn bench_select(c: &mut Criterion<ThreadCpu>) {
    const SERIES: usize = 100_000;
    const PER: i64 = 120;
    let (_dir, h) = head(false);
    let mut refs = Vec::with_capacity(SERIES);
    let mut app = h.appender();
    for i in 0..SERIES {
        refs.push(app.append(&series_labels(i), 0, i as f64).expect("append"));
    }
    app.commit().expect("commit");
    for k in 1..PER {
        let mut app = h.appender();
        for (i, r) in refs.iter().enumerate() {
            app.append_ref(*r, k * 15_000, (k as f64) * 3.0 + i as f64).expect("append");
        }
        app.commit().expect("commit");
    }
    let decode_all = |ms: &[Matcher]| {
        let mut n = 0usize;
        let mut buf = Vec::new();
        for mut s in h.select(0, i64::MAX, ms).expect("select") {
            buf.clear();
            s.samples.collect_into(&mut buf);
            n += buf.len();
        }
        n
    };
    let one_job = [Matcher::equal("job", "job-3")];
    let regex = [
        Matcher::new(MatchOp::RegexMatch, "__name__", "metric_1.*").expect("regex"),
        Matcher::new(MatchOp::NotEqual, "job", "job-1").expect("m"),
    ];
    assert_eq!(decode_all(&one_job), SERIES / 10 * PER as usize);
    let mut g = c.benchmark_group("select_100k_series");
    g.measurement_time(Duration::from_secs(5)).sample_size(10);
    g.throughput(Throughput::Elements((SERIES / 10) as u64 * PER as u64));
    g.bench_function("eq_10k_series_decode", |b| b.iter(|| decode_all(black_box(&one_job))));
    let n = decode_all(&regex);
    g.throughput(Throughput::Elements(n as u64));
    g.bench_function("regex_neq_decode", |b| b.iter(|| decode_all(black_box(&regex))));
    g.throughput(Throughput::Elements((SERIES as u64) * PER as u64));
    g.bench_function("all_100k_series_decode", |b| b.iter(|| decode_all(&[])));
    g.finish();
}

fn bench_append_fsync(c: &mut Criterion) {
    bench_append_existing(c, true);
}

criterion_group! {
    name = cpu;
    config = Criterion::default().with_measurement(ThreadCpu);
    targets = bench_append, bench_chunk, bench_select
}
criterion_group!(wall, bench_append_fsync);
criterion_main!(cpu, wall);
