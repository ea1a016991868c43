//! Size report: loads scrape-like data into a head and prints bytes per
//! sample in chunks, resident memory per active series and append speed.
//!
//! ```text
//! cargo run --release --example size_report -- [--series N] [--scrapes N] [--dir PATH] [--raw-jitter]
//! ```
//!
//! Data: targets of 200 series each, scraped every 15 s with a per-target
//! offset. Scrape times jitter like a real scraper: most scrapes start within
//! ±2 ms of schedule and are aligned to it (Prometheus's
//! `scrape.timestamp-tolerance`), 3 % are late by 3–40 ms and keep their real
//! time (`--raw-jitter` disables the alignment). Series have ~10 labels and
//! are 45 % classic histogram buckets, 30 % counters (integer and float
//! seconds), 25 % gauges (half of them constant). The sample values are a
//! fixed-seed random walk of the kind each metric type shows.

use promlite::model::{Labels, LabelsBuilder};
use promlite::storage::{Appendable, SeriesRef};
use promlite::tsdb::head::{Head, HeadOptions};
use promlite::tsdb::wal::WalOptions;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const PER_TARGET: usize = 200;
const INTERVAL: i64 = 15_000;
const BUCKETS: [&str; 12] = ["0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf"];

#[derive(Clone, Copy)]
enum Kind {
    /// Cumulative bucket count: rate shared by the histogram, scaled by the bucket's share.
    Bucket { rate: f64, share: f64 },
    /// Integer counter with a Poisson-ish rate.
    Counter { rate: f64 },
    /// Float seconds counter (CPU time in 1/100 s steps).
    Seconds { util: f64 },
    /// Gauge walking in steps of 4096 (memory bytes).
    Bytes,
    /// Constant gauge (up, info, limits).
    Constant,
}

struct Series {
    labels: Labels,
    kind: Kind,
    value: f64,
    r: Option<SeriesRef>,
}

fn target_series(t: usize, rng: &mut StdRng) -> Vec<Series> {
    let ns = format!("team-{}", t % 37);
    let pod = format!("api-{:x}-{:05x}", t / 7, t * 7919 % 1_048_576);
    let node = format!("node-{:03}", t % 211);
    let instance = format!("10.{}.{}.{}:8080", (t >> 16) & 255, (t >> 8) & 255, t & 255);
    let common = |name: &str| {
        let mut b = LabelsBuilder::new();
        b.set("__name__", name)
            .set("job", "kubernetes-pods")
            .set("instance", &instance)
            .set("namespace", &ns)
            .set("pod", &pod)
            .set("container", "api")
            .set("node", &node)
            .set("cluster", "prod-eu-1");
        b
    };
    let mut out = Vec::with_capacity(PER_TARGET);
    let handlers = ["/api/v1/users", "/api/v1/orders", "/healthz"];
    // 3 handlers × 2 codes × (12 buckets + sum + count) = 84 histogram series.
    for h in handlers {
        for code in ["200", "500"] {
            let rate = if code == "500" { rng.random_range(0.0..0.01) } else { request_rate(rng) };
            let mut share = 0.0;
            for le in BUCKETS {
                share = (share + rng.random_range(0.0..0.35f64)).min(1.0);
                if le == "+Inf" {
                    share = 1.0;
                }
                let mut b = common("http_request_duration_seconds_bucket");
                b.set("handler", h).set("code", code).set("le", le);
                out.push(Series { labels: b.build(), kind: Kind::Bucket { rate, share }, value: 0.0, r: None });
            }
            let mut b = common("http_request_duration_seconds_count");
            b.set("handler", h).set("code", code);
            out.push(Series { labels: b.build(), kind: Kind::Counter { rate }, value: 0.0, r: None });
            let mut b = common("http_request_duration_seconds_sum");
            b.set("handler", h).set("code", code);
            out.push(Series { labels: b.build(), kind: Kind::Seconds { util: rate * 0.05 }, value: 0.0, r: None });
        }
    }
    // Counters: requests by method/handler/code and CPU seconds by mode.
    let mut i = 0;
    while out.len() < PER_TARGET * 75 / 100 {
        i += 1;
        if i % 4 == 0 {
            let mut b = common("process_cpu_seconds_total");
            b.set("mode", ["user", "system", "iowait", "idle"][i / 4 % 4]).set("cpu", &(i / 16).to_string());
            out.push(Series {
                labels: b.build(),
                kind: Kind::Seconds {
                    util: if rng.random_bool(0.5) { rng.random_range(0.0..0.02) } else { rng.random_range(0.02..1.0) },
                },
                value: 1000.0,
                r: None,
            });
        } else {
            let mut b = common("app_events_total");
            b.set("event", &format!("e{i}")).set("result", if i % 3 == 0 { "error" } else { "ok" });
            let rate = if rng.random_bool(0.4) { 0.0 } else { request_rate(rng) };
            out.push(Series { labels: b.build(), kind: Kind::Counter { rate }, value: 0.0, r: None });
        }
    }
    // Gauges: half walking memory bytes, half constant.
    while out.len() < PER_TARGET {
        i += 1;
        if i % 2 == 0 {
            let mut b = common("process_resident_memory_bytes");
            b.set("area", &format!("a{i}"));
            out.push(Series { labels: b.build(), kind: Kind::Bytes, value: 200.0 * 1048576.0, r: None });
        } else {
            let mut b = common("app_config_limit");
            b.set("limit", &format!("l{i}"));
            out.push(Series {
                labels: b.build(),
                kind: Kind::Constant,
                value: rng.random_range(1..1000) as f64,
                r: None,
            });
        }
    }
    out
}

/// Requests per second of an endpoint: most are idle, a few are busy.
fn request_rate(rng: &mut StdRng) -> f64 {
    match rng.random_range(0..10) {
        0..=4 => rng.random_range(0.0..0.02),
        5..=7 => rng.random_range(0.02..1.0),
        _ => rng.random_range(1.0..20.0),
    }
}

fn step(s: &mut Series, rng: &mut StdRng) {
    match s.kind {
        Kind::Bucket { rate, share } => {
            s.value += (rate * share * 15.0 * rng.random_range(0.7..1.3f64)).floor();
        }
        Kind::Counter { rate } => {
            if rate > 0.0 {
                s.value += (rate * 15.0 * rng.random_range(0.7..1.3f64)).floor();
            }
        }
        Kind::Seconds { util } => {
            // Kernel CPU time ticks in 1/100 s.
            let ticks = (util * 1500.0 * rng.random_range(0.8..1.2f64)).round();
            s.value = ((s.value * 100.0).round() + ticks) / 100.0;
        }
        Kind::Bytes => {
            if rng.random_bool(0.3) {
                s.value += rng.random_range(-64i64..64) as f64 * 4096.0;
            }
        }
        Kind::Constant => {}
    }
}

fn thread_cpu_secs() -> f64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid out-pointer for clock_gettime.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9
}

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm.split_whitespace().nth(1).and_then(|p| p.parse().ok()).unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(1) as u64;
    pages * page
}

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let series: usize = arg(&args, "--series").map(|s| s.parse()).transpose()?.unwrap_or(100_000);
    let scrapes: i64 = arg(&args, "--scrapes").map(|s| s.parse()).transpose()?.unwrap_or(240);
    let raw_jitter = args.iter().any(|a| a == "--raw-jitter");
    let tmp = tempfile::tempdir()?;
    let dir = arg(&args, "--dir").map(std::path::PathBuf::from).unwrap_or_else(|| tmp.path().to_path_buf());

    let baseline = rss_bytes();
    let targets = series.div_ceil(PER_TARGET);
    let mut rng = StdRng::seed_from_u64(42);
    let opts = HeadOptions { wal: WalOptions { fsync: false, ..Default::default() }, ..Default::default() };
    let (head, _) = Head::open(&dir, opts)?;
    let start_t: i64 = 1_700_000_000_000 / INTERVAL * INTERVAL;
    let mut data: Vec<Vec<Series>> = Vec::new();
    let offsets: Vec<i64> = (0..targets).map(|_| rng.random_range(0..INTERVAL)).collect();
    let (mut samples, mut existing_samples) = (0u64, 0u64);
    let mut append_secs = 0.0f64;
    let mut gen_series_bytes = 0usize;
    for scrape in 0..scrapes {
        for tg in 0..targets {
            if scrape == 0 {
                let s = target_series(tg, &mut rng);
                gen_series_bytes += s.iter().map(|x| x.labels.heap_size()).sum::<usize>();
                data.push(s);
            }
            let sched = start_t + scrape * INTERVAL + offsets[tg];
            let late = rng.random_bool(0.03);
            let jitter = if late { rng.random_range(3..40) } else { rng.random_range(-2..=2) };
            let t = if raw_jitter || late { sched + jitter } else { sched };
            let ser = &mut data[tg];
            for s in ser.iter_mut() {
                step(s, &mut rng);
            }
            let began = thread_cpu_secs();
            let mut app = head.appender();
            for s in ser.iter_mut() {
                match s.r {
                    Some(r) => app.append_ref(r, t, s.value)?,
                    None => s.r = Some(app.append(&s.labels, t, s.value)?),
                }
            }
            app.commit()?;
            if scrape > 0 {
                append_secs += thread_cpu_secs() - began;
                existing_samples += ser.len() as u64;
            }
            samples += ser.len() as u64;
        }
    }
    head.flush()?;
    let st = head.stats(3);
    let rss = rss_bytes();
    let (mapped_bytes, open_bytes) = head.chunk_bytes();
    let chunk_bytes = mapped_bytes + open_bytes;
    let mapped_chunks = st.num_chunks.saturating_sub(st.num_series);
    // The generator's own label copies are not storage; subtract them.
    let gen_bytes = (data.len() * PER_TARGET * std::mem::size_of::<Series>() + gen_series_bytes) as u64;
    let head_rss = rss.saturating_sub(baseline).saturating_sub(gen_bytes);
    println!("series                     {}", st.num_series);
    println!(
        "samples                    {samples} ({scrapes} scrapes, 15s interval, {} jitter)",
        if raw_jitter { "raw" } else { "aligned" }
    );
    println!(
        "chunks                     {} ({} mapped, {} files)",
        st.num_chunks,
        mapped_chunks,
        head.num_chunk_files()
    );
    println!("bytes/sample in chunks     {:.3}", chunk_bytes as f64 / samples as f64);
    println!("  in head chunk files      {mapped_bytes} (chunk data only)");
    println!("  in open chunks           {open_bytes}");
    println!(
        "RSS                        {} MiB (baseline {} MiB, generator {} MiB)",
        rss >> 20,
        baseline >> 20,
        gen_bytes >> 20
    );
    println!("resident bytes/series      {:.0}", head_rss as f64 / st.num_series as f64);
    println!("heap estimate/series       {:.0}", head.heap_estimate() as f64 / st.num_series as f64);
    println!(
        "append (existing series)   {:.2} M samples/s per core ({} samples in {:.2} s thread CPU time, one commit per 200-sample scrape, no fsync)",
        existing_samples as f64 / append_secs / 1e6,
        existing_samples,
        append_secs
    );
    Ok(())
}
