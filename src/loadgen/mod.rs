//! A remote_write load generator: realistic series, pre-encoded requests,
//! configurable concurrency, and a report of accepted samples/s, request
//! latency percentiles and errors by status. It speaks plain remote_write 1.0,
//! so the same run can target promlite, Prometheus
//! (`--web.enable-remote-write-receiver`, `/api/v1/write`) or VictoriaMetrics
//! (`/api/v1/write`).
//!
//! Series are split into batches (2000 by default, what Prometheus sends per
//! request). Each batch is owned by one worker, which sends it again and
//! again, each time with one new sample per series at a newer timestamp, so
//! every series gets samples in order. See [`encode`] for how requests are
//! rewritten without re-encoding.

pub mod encode;
pub mod series;

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use encode::PatchableRequest;
use series::Kind;

/// Load generator options (also usable as a clap subcommand).
#[derive(Debug, Clone, clap::Args)]
pub struct Options {
    /// remote_write URL, e.g. http://127.0.0.1:9090/api/v1/write
    #[arg(long, default_value = "http://127.0.0.1:9090/api/v1/write")]
    pub url: String,
    /// Active series (each gets one sample per cycle).
    #[arg(long, default_value_t = 100_000)]
    pub series: usize,
    /// Series (= samples) per request.
    #[arg(long, default_value_t = 2000)]
    pub batch: usize,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
    /// How long to send after the warm-up, e.g. 30s, 2m.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Cycles over all series sent before timing starts (creates the series).
    #[arg(long, default_value_t = 1)]
    pub warmup_cycles: usize,
    /// Per-request timeout.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Print the report as one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
    /// Backfill instead of sending live samples: stamp cycle k at (start of
    /// the run - BACKFILL + k * INTERVAL), sending as fast as the target
    /// accepts, and stop when the stamps catch up with the clock (or at
    /// `--duration`). Gives a server hours of history in minutes.
    #[arg(long, value_parser = parse_duration)]
    pub backfill: Option<Duration>,
    /// Time between a series' samples when backfilling.
    #[arg(long, default_value = "15s", value_parser = parse_duration)]
    pub interval: Duration,
}

/// Parses `30s`, `2m`, `1h`, `500ms`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num.parse().map_err(|_| format!("bad duration {s:?}"))?;
    Ok(match unit {
        "ms" => Duration::from_millis(n),
        "s" | "" => Duration::from_secs(n),
        "m" => Duration::from_secs(n * 60),
        "h" => Duration::from_secs(n * 3600),
        _ => return Err(format!("bad duration unit in {s:?} (use ms, s, m, h)")),
    })
}

/// Errors that stop a run before it starts.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// Bad options.
    #[error("invalid options: {0}")]
    Options(String),
    /// The HTTP client could not be built.
    #[error("building HTTP client: {0}")]
    Client(#[from] reqwest::Error),
    /// The clock is outside the range the encoder supports.
    #[error(transparent)]
    Clock(#[from] encode::TimestampOutOfRange),
}

/// The outcome of a run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    /// Target URL.
    pub url: String,
    /// Active series.
    pub series: usize,
    /// Samples per request.
    pub batch: usize,
    /// Concurrency.
    pub concurrency: usize,
    /// Timed seconds (after warm-up).
    pub seconds: f64,
    /// Samples in 2xx answers during the timed part.
    pub samples_accepted: u64,
    /// `samples_accepted / seconds`.
    pub samples_per_second: f64,
    /// Requests sent during the timed part.
    pub requests: u64,
    /// Latency percentiles in milliseconds.
    pub latency_ms_p50: f64,
    /// 90th percentile.
    pub latency_ms_p90: f64,
    /// 99th percentile.
    pub latency_ms_p99: f64,
    /// Non-2xx answers by status code ("transport" for connection errors).
    pub errors: BTreeMap<String, u64>,
    /// Seconds the warm-up (series creation) took.
    pub warmup_seconds: f64,
    /// Samples in 2xx answers during the warm-up.
    pub warmup_samples_accepted: u64,
    /// Average compressed request size in bytes.
    pub request_bytes: usize,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "target          {}", self.url)?;
        writeln!(f, "series          {} ({} per request, {} in flight)", self.series, self.batch, self.concurrency)?;
        writeln!(f, "warm-up         {:.2} s, {} samples accepted", self.warmup_seconds, self.warmup_samples_accepted)?;
        writeln!(
            f,
            "timed           {:.2} s, {} requests of ~{} bytes",
            self.seconds, self.requests, self.request_bytes
        )?;
        writeln!(f, "accepted        {} samples = {:.0} samples/s", self.samples_accepted, self.samples_per_second)?;
        writeln!(
            f,
            "latency         p50 {:.2} ms  p90 {:.2} ms  p99 {:.2} ms",
            self.latency_ms_p50, self.latency_ms_p90, self.latency_ms_p99
        )?;
        if self.errors.is_empty() {
            writeln!(f, "errors          none")
        } else {
            writeln!(f, "errors          {:?}", self.errors)
        }
    }
}

/// Where a batch's timestamps come from.
#[derive(Debug, Clone, Copy)]
enum Clock {
    /// The wall clock (live load).
    Wall,
    /// Backfill: `next`, then every `step` ms, until it passes the wall clock.
    Virtual { next: i64, step: i64 },
}

struct Batch {
    req: PatchableRequest,
    kinds: Vec<Kind>,
    values: Vec<f64>,
    last_t: i64,
    rng: u64,
    clock: Clock,
}

impl Batch {
    /// Advances every series one step and writes the new samples; `false`
    /// when a backfill has reached the present (nothing written).
    fn next_cycle(&mut self) -> Result<bool, encode::TimestampOutOfRange> {
        let t = match &mut self.clock {
            Clock::Wall => now_ms().max(self.last_t + 1),
            Clock::Virtual { next, step } => {
                if *next > now_ms() {
                    return Ok(false);
                }
                let t = *next;
                *next += *step;
                t
            }
        };
        self.last_t = t;
        for i in 0..self.values.len() {
            // xorshift64: cheap, deterministic per batch.
            self.rng ^= self.rng << 13;
            self.rng ^= self.rng >> 7;
            self.rng ^= self.rng << 17;
            let r = (self.rng >> 11) as f64 / (1u64 << 53) as f64;
            self.values[i] = match self.kinds[i] {
                Kind::Counter => self.values[i] + (r * 100.0).floor(),
                Kind::Gauge => (r * 1000.0).round() / 10.0,
            };
            self.req.set(i, t, self.values[i])?;
        }
        Ok(true)
    }
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

#[derive(Default)]
struct WorkerStats {
    samples: u64,
    requests: u64,
    latencies_us: Vec<u32>,
    errors: BTreeMap<String, u64>,
}

async fn send(client: &reqwest::Client, url: &str, b: &Batch, stats: &mut WorkerStats, record: bool) {
    let body = bytes::Bytes::copy_from_slice(b.req.body());
    let start = Instant::now();
    let r = client
        .post(url)
        .header("Content-Type", "application/x-protobuf")
        .header("Content-Encoding", "snappy")
        .header("X-Prometheus-Remote-Write-Version", "0.1.0")
        .body(body)
        .send()
        .await;
    let key = match r {
        Ok(resp) => {
            let status = resp.status();
            // Drain the body so the connection is reused.
            let _ = resp.bytes().await;
            if status.is_success() {
                if record {
                    stats.samples += b.req.len() as u64;
                }
                None
            } else {
                Some(status.as_u16().to_string())
            }
        }
        Err(_) => Some("transport".to_string()),
    };
    if record {
        stats.requests += 1;
        stats.latencies_us.push(start.elapsed().as_micros().min(u32::MAX as u128) as u32);
        if let Some(k) = key {
            *stats.errors.entry(k).or_default() += 1;
        }
    }
}

fn percentile_ms(sorted_us: &[u32], q: f64) -> f64 {
    if sorted_us.is_empty() {
        return 0.0;
    }
    let i = ((sorted_us.len() as f64 * q).ceil() as usize).clamp(1, sorted_us.len()) - 1;
    f64::from(sorted_us[i]) / 1000.0
}

/// Builds the batches, warms up, sends for `opts.duration`, and reports.
pub async fn run(opts: &Options) -> Result<Report, LoadError> {
    if opts.series == 0 || opts.batch == 0 || opts.concurrency == 0 {
        return Err(LoadError::Options("series, batch and concurrency must be positive".into()));
    }
    let t0 = now_ms();
    let clock = match opts.backfill {
        None => Clock::Wall,
        Some(back) => {
            let step = opts.interval.as_millis().max(1) as i64;
            Clock::Virtual { next: t0 - back.as_millis() as i64, step }
        }
    };
    let mut batches: Vec<Batch> = Vec::new();
    let mut start = 0;
    while start < opts.series {
        let end = (start + opts.batch).min(opts.series);
        let gen: Vec<_> = (start..end).map(series::series).collect();
        let labels: Vec<_> = gen.iter().map(|s| s.labels.clone()).collect();
        batches.push(Batch {
            req: PatchableRequest::new(&labels, t0)?,
            kinds: gen.iter().map(|s| s.kind).collect(),
            values: vec![0.0; gen.len()],
            last_t: 0,
            rng: 0x9e37_79b9_7f4a_7c15 ^ (start as u64 + 1),
            clock,
        });
        start = end;
    }
    let request_bytes = batches.iter().map(|b| b.req.body().len()).sum::<usize>() / batches.len();
    let client = crate::http_client::builder(None)
        .map_err(|e| LoadError::Options(e.to_string()))?
        .timeout(opts.timeout)
        .pool_max_idle_per_host(opts.concurrency)
        .tcp_nodelay(true)
        .build()?;
    // Deal batches to workers round-robin; a worker sends its batches in turn.
    let workers = opts.concurrency.min(batches.len());
    let mut owned: Vec<Vec<Batch>> = (0..workers).map(|_| Vec::new()).collect();
    for (i, b) in batches.into_iter().enumerate() {
        owned[i % workers].push(b);
    }

    // Warm-up: every batch `warmup_cycles` times, not timed.
    let warm_start = Instant::now();
    let warmups = owned.iter_mut().map(|mine| {
        let client = client.clone();
        let url = opts.url.clone();
        let cycles = opts.warmup_cycles;
        async move {
            let mut stats = WorkerStats::default();
            for _ in 0..cycles {
                for b in mine.iter_mut() {
                    if b.next_cycle()? {
                        send(&client, &url, b, &mut stats, true).await;
                    }
                }
            }
            Ok::<WorkerStats, LoadError>(stats)
        }
    });
    let mut warmup_samples_accepted = 0;
    let mut warmup_errors: BTreeMap<String, u64> = BTreeMap::new();
    for r in futures_join_all(warmups).await {
        let s = r?;
        warmup_samples_accepted += s.samples;
        for (k, v) in s.errors {
            *warmup_errors.entry(format!("warmup_{k}")).or_default() += v;
        }
    }
    let warmup_seconds = warm_start.elapsed().as_secs_f64();

    let timed_start = Instant::now();
    let deadline = timed_start + opts.duration;
    let tasks = owned.into_iter().map(|mut mine| {
        let client = client.clone();
        let url = opts.url.clone();
        tokio::spawn(async move {
            let mut stats = WorkerStats::default();
            'outer: loop {
                for b in mine.iter_mut() {
                    if Instant::now() >= deadline {
                        break 'outer;
                    }
                    if !matches!(b.next_cycle(), Ok(true)) {
                        break 'outer;
                    }
                    send(&client, &url, b, &mut stats, true).await;
                }
            }
            stats
        })
    });
    let handles: Vec<_> = tasks.collect();
    let mut total = WorkerStats { errors: warmup_errors, ..WorkerStats::default() };
    for h in handles {
        // A worker task only ends by returning; a join error means it panicked,
        // which its code cannot do; count it rather than abort the report.
        match h.await {
            Ok(s) => {
                total.samples += s.samples;
                total.requests += s.requests;
                total.latencies_us.extend(s.latencies_us);
                for (k, v) in s.errors {
                    *total.errors.entry(k).or_default() += v;
                }
            }
            Err(_) => *total.errors.entry("worker_failed".into()).or_default() += 1,
        }
    }
    let seconds = timed_start.elapsed().as_secs_f64();
    total.latencies_us.sort_unstable();
    Ok(Report {
        url: opts.url.clone(),
        series: opts.series,
        batch: opts.batch,
        concurrency: opts.concurrency,
        seconds,
        samples_accepted: total.samples,
        samples_per_second: total.samples as f64 / seconds.max(1e-9),
        requests: total.requests,
        latency_ms_p50: percentile_ms(&total.latencies_us, 0.50),
        latency_ms_p90: percentile_ms(&total.latencies_us, 0.90),
        latency_ms_p99: percentile_ms(&total.latencies_us, 0.99),
        errors: total.errors,
        warmup_seconds,
        warmup_samples_accepted,
        request_bytes,
    })
}

/// Runs futures concurrently on the current task and collects their outputs
/// in order (a tiny `join_all`, to avoid a dependency).
async fn futures_join_all<F: std::future::Future>(futs: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    let mut set = Vec::new();
    for f in futs {
        set.push(Box::pin(f));
    }
    let mut out: Vec<Option<F::Output>> = set.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in set.iter_mut().enumerate() {
            if out[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => out[i] = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter().flatten().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert!(parse_duration("3x").is_err());
        assert!(parse_duration("s").is_err());
    }

    #[test]
    fn percentiles() {
        let v: Vec<u32> = (1..=100).map(|i| i * 1000).collect();
        assert_eq!(percentile_ms(&v, 0.5), 50.0);
        assert_eq!(percentile_ms(&v, 0.99), 99.0);
        assert_eq!(percentile_ms(&[], 0.5), 0.0);
    }
}
