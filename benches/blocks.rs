//! Blocks: bytes per sample on scrape-like data, and select by matchers +
//! decode over 100k series.
//!
//! `cargo bench --bench blocks` prints the size report first, then times the
//! selections. `BLOCKS_SERIES=10000` shrinks the timed block;
//! `BLOCKS_SKIP_SIZE=1` skips the size report.
//!
//! The data imitates a Prometheus server scraping 1000 targets every 15 s:
//! per target ~100 series with ~10 labels each: classic histograms
//! (12 buckets + _sum + _count, 4 handlers), request counters by method and
//! code, float CPU-seconds counters, integer and one-decimal gauges and
//! constant gauges. All series of a target share its scrape timestamps.

use std::hint::black_box;
use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion};
use promlite::model::matcher::matches_all;
use promlite::model::{Labels, MatchOp, Matcher, Sample};
use promlite::storage::{Queryable, SampleIterator, Series, StorageError};
use promlite::tsdb::block::{write_block, Block, WriteOptions};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const INTERVAL: i64 = 15_000;
const START: i64 = 1_700_000_000_000;

#[derive(Clone, Copy, Debug)]
enum Jitter {
    /// What Prometheus stores: scrapes late by ≤ 2 ms are aligned to the
    /// interval (its default `scrape.timestamp-tolerance`); this share of
    /// scrapes (in percent) is 3..=30 ms late and keeps its jitter.
    Aligned(u8),
    /// Every scrape 0..=20 ms late, nothing aligned (worst case).
    Raw,
}

#[derive(Clone, Copy)]
enum Kind {
    /// Integer counter; increments are Poisson with mean `rate` × 15 s.
    Counter {
        rate: f64,
    },
    /// Float counter (a histogram `_sum`): arbitrary float increments.
    FloatCounter {
        util: f64,
    },
    /// CPU seconds from /proc/stat: 0.01 s resolution.
    CentiCounter {
        util: f64,
    },
    /// Byte gauge moving in pages with probability `moves` per scrape.
    GaugeInt {
        base: f64,
        step: f64,
        moves: f64,
    },
    /// Temperature in millidegrees, moving with probability 0.3 per scrape.
    GaugeMilli {
        base: f64,
    },
    Constant(f64),
}

/// A Poisson draw (Knuth's method below mean 30, a rounded normal above).
fn poisson(r: &mut StdRng, mean: f64) -> f64 {
    if mean <= 0.0 {
        return 0.0;
    }
    if mean > 30.0 {
        let (u1, u2): (f64, f64) = (r.random_range(f64::EPSILON..1.0), r.random());
        let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
        return (mean + z * mean.sqrt()).round().max(0.0);
    }
    let l = (-mean).exp();
    let (mut k, mut p) = (0.0, 1.0);
    loop {
        p *= r.random::<f64>();
        if p <= l {
            return k;
        }
        k += 1.0;
    }
}

struct Spec {
    labels: Labels,
    target: u32,
    kind: Kind,
    seed: u64,
}

/// A generated, scrape-like source: samples are computed when iterated.
struct Synth {
    series: Vec<Spec>,
    samples: usize,
    jitter: Jitter,
}

impl Synth {
    fn new(targets: u32, samples: usize, jitter: Jitter) -> Synth {
        let mut rng = StdRng::seed_from_u64(42);
        let mut series = Vec::new();
        let les = ["0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf"];
        for t in 0..targets {
            let common = |name: &str, extra: &[(&str, String)]| {
                let mut pairs: Vec<(String, String)> = vec![
                    ("__name__".into(), name.into()),
                    ("job".into(), format!("job-{}", t % 20)),
                    ("instance".into(), format!("10.0.{}.{}:9100", t / 250, t % 250)),
                    ("env".into(), if t % 3 == 0 { "staging".into() } else { "prod".into() }),
                    ("region".into(), format!("region-{}", t % 4)),
                    ("cluster".into(), format!("cluster-{}", t % 8)),
                    ("namespace".into(), format!("ns-{}", t % 30)),
                    ("pod".into(), format!("app-{t}-7d9f8c6b5")),
                ];
                pairs.extend(extra.iter().map(|(n, v)| (n.to_string(), v.clone())));
                Labels::from_pairs(pairs)
            };
            let mut push = |labels: Labels, kind: Kind, rng: &mut StdRng| {
                series.push(Spec { labels, target: t, kind, seed: rng.random() });
            };
            // Request rates are log-uniform between 0.001/s and 100/s per handler:
            // a few busy endpoints, many quiet ones, as in real services.
            let log_rate = |rng: &mut StdRng| 10f64.powf(rng.random_range(-3.0..2.0));
            for h in ["/api", "/login", "/search", "/static"] {
                let rate = log_rate(&mut rng);
                let mut below = 0.0;
                for (i, le) in les.iter().enumerate() {
                    // Cumulative share of requests faster than `le`.
                    below = if i + 1 == les.len() { 1.0 } else { (below + (1.0 - below) * 0.35f64).min(1.0) };
                    push(
                        common(
                            "http_request_duration_seconds_bucket",
                            &[("handler", h.into()), ("le", le.to_string())],
                        ),
                        Kind::Counter { rate: rate * below },
                        &mut rng,
                    );
                }
                push(
                    common("http_request_duration_seconds_count", &[("handler", h.into())]),
                    Kind::Counter { rate },
                    &mut rng,
                );
                push(
                    common("http_request_duration_seconds_sum", &[("handler", h.into())]),
                    Kind::FloatCounter { util: rate * 0.08 },
                    &mut rng,
                );
            }
            for m in ["GET", "POST", "PUT", "DELETE"] {
                for c in ["200", "404", "500", "503"] {
                    let rate = log_rate(&mut rng) * if c == "200" { 1.0 } else { 0.01 };
                    push(
                        common("http_requests_total", &[("method", m.into()), ("code", c.into())]),
                        Kind::Counter { rate },
                        &mut rng,
                    );
                }
            }
            for cpu in 0..2 {
                for mode in ["idle", "iowait", "irq", "nice", "softirq", "steal", "system", "user"] {
                    let util = match mode {
                        "idle" => rng.random_range(0.3..0.9),
                        "user" | "system" => rng.random_range(0.02..0.3),
                        "steal" | "nice" => 0.0,
                        _ => rng.random_range(0.0..0.002),
                    };
                    push(
                        common("node_cpu_seconds_total", &[("cpu", cpu.to_string()), ("mode", mode.into())]),
                        Kind::CentiCounter { util },
                        &mut rng,
                    );
                }
            }
            for (m, moves) in [
                ("Active", 0.9),
                ("Buffers", 0.2),
                ("Cached", 0.5),
                ("MemFree", 0.9),
                ("MemAvailable", 0.9),
                ("Dirty", 0.6),
            ] {
                push(
                    common(&format!("node_memory_{m}_bytes"), &[]),
                    Kind::GaugeInt { base: rng.random_range(1e8..8e9), step: 4096.0, moves },
                    &mut rng,
                );
            }
            for z in 0..4 {
                push(
                    common("node_hwmon_temp_celsius", &[("sensor", format!("temp{z}"))]),
                    Kind::GaugeMilli { base: rng.random_range(35.0..70.0) },
                    &mut rng,
                );
            }
            push(common("up", &[]), Kind::Constant(1.0), &mut rng);
            push(common("node_filesystem_size_bytes", &[("mountpoint", "/".into())]), Kind::Constant(1.0e11), &mut rng);
        }
        series.sort_by(|a, b| a.labels.cmp(&b.labels));
        Synth { series, samples, jitter }
    }

    fn num_samples(&self) -> u64 {
        (self.series.len() * self.samples) as u64
    }
}

struct SynthIter {
    kind: Kind,
    ts: StdRng,
    vals: StdRng,
    jitter: Jitter,
    k: usize,
    n: usize,
    v: f64,
    mint: i64,
    maxt: i64,
}

impl SampleIterator for SynthIter {
    fn next_sample(&mut self) -> Option<Sample> {
        loop {
            if self.k >= self.n {
                return None;
            }
            let k = self.k as i64;
            self.k += 1;
            let late = match self.jitter {
                Jitter::Aligned(pct) => {
                    if !self.ts.random_bool(f64::from(pct) / 100.0) {
                        0
                    } else {
                        self.ts.random_range(3..=30)
                    }
                }
                Jitter::Raw => self.ts.random_range(0..=20),
            };
            let t = START + k * INTERVAL + late;
            let r = &mut self.vals;
            self.v = match self.kind {
                Kind::Counter { rate } => self.v + poisson(r, rate * 15.0),
                Kind::FloatCounter { util } => {
                    let n = poisson(r, util * 15.0 / 0.08);
                    self.v + n * 0.08 * r.random_range(0.5..1.5)
                }
                Kind::CentiCounter { util } => {
                    let centis = self.v * 100.0 + poisson(r, util * 1500.0);
                    (centis.round()) / 100.0
                }
                Kind::GaugeInt { base, step, moves } => {
                    if k == 0 {
                        (base / step).round() * step
                    } else if r.random_bool(moves) {
                        (self.v + step * r.random_range(-256i64..=256) as f64).max(0.0)
                    } else {
                        self.v
                    }
                }
                Kind::GaugeMilli { base } => {
                    if k == 0 {
                        (base * 1000.0).round() / 1000.0
                    } else if r.random_bool(0.3) {
                        ((self.v * 1000.0).round() + r.random_range(-500i64..=500) as f64) / 1000.0
                    } else {
                        self.v
                    }
                }
                Kind::Constant(c) => c,
            };
            if t >= self.mint && t <= self.maxt {
                return Some(Sample::new(t, self.v));
            }
        }
    }
}

impl Queryable for Synth {
    fn select(&self, mint: i64, maxt: i64, ms: &[Matcher]) -> Result<Vec<Series>, StorageError> {
        Ok(self
            .series
            .iter()
            .filter(|s| matches_all(&s.labels, ms))
            .map(|s| Series {
                labels: s.labels.clone(),
                samples: Box::new(SynthIter {
                    kind: s.kind,
                    ts: StdRng::seed_from_u64(u64::from(s.target)),
                    vals: StdRng::seed_from_u64(s.seed),
                    jitter: self.jitter,
                    k: 0,
                    n: self.samples,
                    v: 0.0,
                    mint,
                    maxt,
                }) as Box<dyn SampleIterator>,
            })
            .collect())
    }
    fn label_names(&self, _: i64, _: i64, _: &[Matcher]) -> Result<Vec<String>, StorageError> {
        Ok(Vec::new())
    }
    fn label_values(&self, _: &str, _: i64, _: i64, _: &[Matcher]) -> Result<Vec<String>, StorageError> {
        Ok(Vec::new())
    }
}

fn file_size(p: &Path) -> u64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

fn build(dir: &Path, src: &Synth) -> Block {
    let end = START + src.samples as i64 * INTERVAL;
    let (d, _) = write_block(dir, src, START, end, &[], &WriteOptions::default())
        .expect("write block")
        .expect("non-empty block");
    Block::open(&d).expect("open block")
}

/// Prints bytes per sample for each jitter model and block length.
fn size_report() {
    let runs = [
        (2usize, Jitter::Aligned(0)),
        (2, Jitter::Aligned(1)),
        (2, Jitter::Aligned(10)),
        (2, Jitter::Raw),
        (24, Jitter::Aligned(1)),
    ];
    let targets = 100u32;
    for (hours, jitter) in runs {
        {
            let src = Synth::new(targets, hours * 240, jitter);
            let tmp = tempfile::tempdir().expect("tempdir");
            let b = build(tmp.path(), &src);
            let idx = file_size(&b.dir().join("index"));
            let total = b.size_bytes();
            let n = src.num_samples() as f64;
            assert_eq!(b.meta().stats.num_samples, src.num_samples());
            let meta_len = file_size(&b.dir().join("meta.json"));
            let chunk_files = total - idx - meta_len;
            let segs = std::fs::read_dir(b.dir().join("chunks")).map(|d| d.count() as u64).unwrap_or(0);
            let xor = chunk_files - 16 * segs - 4 * b.meta().stats.num_chunks;
            eprintln!(
                "size: {} series x {}h ({} samples, {} chunks, jitter {:?}): {:.3} bytes/sample = {:.3} chunk data + {:.3} chunk framing + {:.3} index (meta {} B)",
                src.series.len(),
                hours,
                src.num_samples(),
                b.meta().stats.num_chunks,
                jitter,
                total as f64 / n,
                xor as f64 / n,
                (chunk_files - xor) as f64 / n,
                idx as f64 / n,
                meta_len,
            );
            if hours == 2 && matches!(jitter, Jitter::Aligned(1)) {
                breakdown(&src);
            }
        }
    }
}

/// XOR and Decimal bytes per sample by metric name, and of timestamps alone
/// (all values equal), to show where the bytes go.
fn breakdown(src: &Synth) {
    use promlite::tsdb::chunk::{encode, encode_as, Encoding};
    let mut by: std::collections::BTreeMap<String, (u64, u64, u64)> = Default::default();
    let (mut ts_bytes, mut n_all) = (0u64, 0u64);
    for mut s in src.select(i64::MIN, i64::MAX, &[]).expect("select") {
        let mut v = Vec::new();
        s.samples.collect_into(&mut v);
        let name = s.labels.metric_name().unwrap_or("").to_string();
        let e = by.entry(name).or_default();
        for c in v.chunks(120) {
            e.0 += encode(c).expect("encode").len() as u64;
            e.1 += c.len() as u64;
            e.2 += encode_as(Encoding::Decimal, c).expect("encode").len() as u64;
            let flat: Vec<Sample> = c.iter().map(|x| Sample::new(x.t, 0.0)).collect();
            ts_bytes += encode(&flat).expect("encode").len() as u64;
            n_all += c.len() as u64;
        }
    }
    eprintln!("  timestamps alone: {:.3} bytes/sample", ts_bytes as f64 / n_all as f64);
    for (name, (b, n, d)) in by {
        eprintln!(
            "  {name:45} XOR {:6.3}, Decimal {:6.3} bytes/sample ({:4.1}% of samples)",
            b as f64 / n as f64,
            d as f64 / n as f64,
            100.0 * n as f64 / n_all as f64
        );
    }
}

fn collect_all(series: Vec<Series>) -> usize {
    let mut buf = Vec::with_capacity(512);
    let mut n = 0;
    for mut s in series {
        buf.clear();
        s.samples.collect_into(&mut buf);
        n += buf.len();
    }
    n
}

fn bench(c: &mut Criterion) {
    if std::env::var_os("BLOCKS_SKIP_SIZE").is_none() {
        size_report();
    }
    let targets: u32 =
        std::env::var("BLOCKS_SERIES").ok().and_then(|v| v.parse::<u32>().ok()).map_or(1000, |s| (s / 100).max(1));
    let src = Synth::new(targets, 480, Jitter::Aligned(1));
    let tmp = tempfile::tempdir().expect("tempdir");
    let block = build(tmp.path(), &src);
    eprintln!("timed block: {} series, {} samples, {} bytes", src.series.len(), src.num_samples(), block.size_bytes());
    let (lo, hi) = (START, START + 480 * INTERVAL);
    let re = |op, n: &str, v: &str| Matcher::new(op, n, v).expect("regex");
    let cases: Vec<(&str, Vec<Matcher>)> = vec![
        ("one_series", vec![Matcher::equal("__name__", "up"), Matcher::equal("instance", "10.0.1.17:9100")]),
        (
            "job_cpu",
            vec![
                Matcher::equal("__name__", "node_cpu_seconds_total"),
                Matcher::equal("job", "job-3"),
                re(MatchOp::NotEqual, "mode", "idle"),
            ],
        ),
        (
            "histogram_regex",
            vec![
                Matcher::equal("__name__", "http_request_duration_seconds_bucket"),
                re(MatchOp::RegexMatch, "le", "0.1|0.5|\\+Inf"),
                re(MatchOp::RegexMatch, "handler", "/(api|login)"),
            ],
        ),
        ("all_requests", vec![Matcher::equal("__name__", "http_requests_total")]),
    ];
    let mut g = c.benchmark_group("block_select_decode");
    g.sample_size(10);
    g.measurement_time(std::time::Duration::from_secs(5));
    for (name, ms) in &cases {
        // Correctness before timing: the block returns what the source holds.
        let want = src.select(lo, hi, ms).expect("select").len();
        assert_eq!(block.select(lo, hi, ms).expect("select").len(), want);
        g.bench_function(*name, |b| b.iter(|| black_box(collect_all(block.select(lo, hi, ms).expect("select")))));
    }
    g.bench_function("all_series_last_hour", |b| {
        b.iter(|| black_box(collect_all(block.select(hi - 3_600_000, hi, &[]).expect("select"))))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
