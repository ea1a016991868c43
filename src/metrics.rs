//! promlite's own metrics, served at `/metrics`.
//!
//! [`Registry`] wraps a `prometheus-client` registry behind a lock so every
//! module (ingest, WAL, blocks, scrape, rules) can register its metrics at
//! start-up through a shared `Arc<Registry>`. Process figures (memory, CPU,
//! file descriptors) are read from `/proc/self` at each scrape by
//! [`ProcessCollector`]. [`IngestMetrics`] holds the counters shared by the
//! ingest paths (remote_write and, by `source`, scrape).

use std::fmt;

use parking_lot::Mutex;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Metric;

/// The content type of [`Registry::encode`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A shared metrics registry.
#[derive(Debug, Default)]
pub struct Registry {
    inner: Mutex<prometheus_client::registry::Registry>,
}

impl Registry {
    /// An empty registry without process metrics.
    pub fn new() -> Self {
        Registry::default()
    }

    /// A registry with the `process_*` metrics already registered.
    pub fn with_process_metrics() -> Self {
        let r = Registry::new();
        r.register_collector(Box::new(ProcessCollector::new()));
        r
    }

    /// Registers `metric` under `name` (without a `_total` suffix for
    /// counters: the encoder adds it).
    /// prometheus-client ends every HELP text with a period itself, so one at
    /// the end of `help` is dropped here rather than printed twice.
    pub fn register(&self, name: &str, help: &str, metric: impl Metric) {
        self.inner.lock().register(name, help.strip_suffix('.').unwrap_or(help), metric);
    }

    /// Registers a collector that produces metrics at each scrape.
    pub fn register_collector(&self, collector: Box<dyn Collector>) {
        self.inner.lock().register_collector(collector);
    }

    /// Runs `f` on the underlying registry (for sub-registries, units, ...).
    pub fn with<R>(&self, f: impl FnOnce(&mut prometheus_client::registry::Registry) -> R) -> R {
        f(&mut self.inner.lock())
    }

    /// Every metric in the OpenMetrics text format ([`CONTENT_TYPE`]).
    pub fn encode(&self) -> Result<String, fmt::Error> {
        let mut out = String::with_capacity(8192);
        prometheus_client::encoding::text::encode(&mut out, &self.inner.lock())?;
        Ok(out)
    }
}

/// Label set `[(name, value)]` of a family with one label.
pub type OneLabel = [(&'static str, &'static str); 1];
/// Label set of a family with two labels.
pub type TwoLabels = [(&'static str, &'static str); 2];

/// Counters and histograms of the ingest paths.
#[derive(Debug, Clone)]
pub struct IngestMetrics {
    /// `promlite_ingested_samples_total{source}`: samples stored.
    pub samples: Family<OneLabel, Counter>,
    /// `promlite_ingested_series_total{source}`: series records with at least one stored sample.
    pub series: Family<OneLabel, Counter>,
    /// `promlite_rejected_samples_total{source,reason}`.
    pub rejected: Family<TwoLabels, Counter>,
    /// `promlite_ingest_limit_hits_total{limit}`: a configured limit tripped.
    pub limit_hits: Family<OneLabel, Counter>,
    /// `promlite_ingest_exemplars_skipped_total`: exemplars received and not stored.
    pub exemplars_skipped: Counter,
    /// `promlite_remote_write_requests_total{code}`.
    pub requests: Family<OneLabel, Counter>,
    /// `promlite_remote_write_request_duration_seconds`.
    pub duration: Histogram,
    /// `promlite_remote_write_request_body_bytes` (compressed).
    pub body_bytes: Histogram,
    /// `promlite_remote_write_request_decompressed_bytes`.
    pub decompressed_bytes: Histogram,
}

impl IngestMetrics {
    /// Creates the metrics and registers them in `reg`.
    pub fn register(reg: &Registry) -> Self {
        let m = IngestMetrics {
            samples: Family::default(),
            series: Family::default(),
            rejected: Family::default(),
            limit_hits: Family::default(),
            exemplars_skipped: Counter::default(),
            requests: Family::default(),
            duration: Histogram::new(exponential_buckets(0.0005, 2.0, 14)),
            body_bytes: Histogram::new(exponential_buckets(1024.0, 4.0, 10)),
            decompressed_bytes: Histogram::new(exponential_buckets(1024.0, 4.0, 10)),
        };
        reg.register("promlite_ingested_samples", "Samples stored, by ingest source.", m.samples.clone());
        reg.register(
            "promlite_ingested_series",
            "Series records with at least one stored sample, by ingest source.",
            m.series.clone(),
        );
        reg.register(
            "promlite_rejected_samples",
            "Samples not stored, by ingest source and reason.",
            m.rejected.clone(),
        );
        reg.register(
            "promlite_ingest_limit_hits",
            "Times a configured ingest limit tripped, by limit.",
            m.limit_hits.clone(),
        );
        reg.register(
            "promlite_ingest_exemplars_skipped",
            "Exemplars received and not stored.",
            m.exemplars_skipped.clone(),
        );
        reg.register(
            "promlite_remote_write_requests",
            "remote_write requests answered, by HTTP status code.",
            m.requests.clone(),
        );
        reg.register(
            "promlite_remote_write_request_duration_seconds",
            "Time to answer a remote_write request.",
            m.duration.clone(),
        );
        reg.register(
            "promlite_remote_write_request_body_bytes",
            "Compressed size of remote_write request bodies.",
            m.body_bytes.clone(),
        );
        reg.register(
            "promlite_remote_write_request_decompressed_bytes",
            "Decompressed size of remote_write request bodies.",
            m.decompressed_bytes.clone(),
        );
        m
    }
}

/// Process figures from `/proc/self`, collected at each scrape with the
/// names Prometheus's client libraries use (`process_*`).
#[derive(Debug)]
pub struct ProcessCollector {
    page_size: u64,
    ticks_per_second: u64,
    boot_time: Option<u64>,
}

impl Default for ProcessCollector {
    fn default() -> Self {
        ProcessCollector::new()
    }
}

impl ProcessCollector {
    /// Reads the constants (page size, clock ticks, boot time) once.
    pub fn new() -> Self {
        // SAFETY: sysconf only reads configuration values.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        // SAFETY: as above.
        let tck = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        let boot_time = std::fs::read_to_string("/proc/stat").ok().and_then(|s| parse_boot_time(&s));
        ProcessCollector {
            page_size: if page > 0 { page as u64 } else { 4096 },
            ticks_per_second: if tck > 0 { tck as u64 } else { 100 },
            boot_time,
        }
    }
}

/// The fields of `/proc/<pid>/stat` promlite reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStat {
    /// User CPU time in clock ticks (field 14).
    pub utime: u64,
    /// System CPU time in clock ticks (field 15).
    pub stime: u64,
    /// Start time in clock ticks after boot (field 22).
    pub starttime: u64,
    /// Virtual memory size in bytes (field 23).
    pub vsize: u64,
    /// Resident set size in pages (field 24).
    pub rss_pages: u64,
}

/// Parses `/proc/<pid>/stat`. The command name (field 2) may contain spaces
/// and parentheses, so fields are counted from the last `)`.
pub fn parse_proc_stat(s: &str) -> Option<ProcStat> {
    let rest = &s[s.rfind(')')? + 1..];
    // `rest` starts at field 3 (state).
    let f: Vec<&str> = rest.split_ascii_whitespace().collect();
    let field = |n: usize| -> Option<u64> { f.get(n - 3)?.parse().ok() };
    Some(ProcStat {
        utime: field(14)?,
        stime: field(15)?,
        starttime: field(22)?,
        vsize: field(23)?,
        rss_pages: field(24)?,
    })
}

/// The `btime` line of `/proc/stat`: boot time in seconds since the epoch.
pub fn parse_boot_time(s: &str) -> Option<u64> {
    s.lines().find_map(|l| l.strip_prefix("btime ")).and_then(|v| v.trim().parse().ok())
}

fn open_fds() -> Option<u64> {
    Some(std::fs::read_dir("/proc/self/fd").ok()?.count() as u64)
}

fn max_fds() -> Option<u64> {
    let mut rl = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes into the struct we pass and nothing else.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) };
    (rc == 0).then_some(rl.rlim_cur)
}

fn gauge(enc: &mut DescriptorEncoder, name: &str, help: &str, v: f64) -> Result<(), fmt::Error> {
    let g = ConstGauge::new(v);
    let m = enc.encode_descriptor(name, help, None, g.metric_type())?;
    g.encode(m)
}

impl Collector for ProcessCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), fmt::Error> {
        // A missing /proc (not Linux) leaves the figures out rather than failing the scrape.
        if let Some(st) = std::fs::read_to_string("/proc/self/stat").ok().and_then(|s| parse_proc_stat(&s)) {
            let cpu = (st.utime + st.stime) as f64 / self.ticks_per_second as f64;
            let c = ConstCounter::new(cpu);
            let m = enc.encode_descriptor(
                "process_cpu_seconds",
                "Total user and system CPU time spent in seconds.",
                None,
                c.metric_type(),
            )?;
            c.encode(m)?;
            gauge(
                &mut enc,
                "process_resident_memory_bytes",
                "Resident memory size in bytes.",
                (st.rss_pages * self.page_size) as f64,
            )?;
            gauge(&mut enc, "process_virtual_memory_bytes", "Virtual memory size in bytes.", st.vsize as f64)?;
            if let Some(bt) = self.boot_time {
                let start = bt as f64 + st.starttime as f64 / self.ticks_per_second as f64;
                gauge(
                    &mut enc,
                    "process_start_time_seconds",
                    "Start time of the process since unix epoch in seconds.",
                    start,
                )?;
            }
        }
        if let Some(n) = open_fds() {
            gauge(&mut enc, "process_open_fds", "Number of open file descriptors.", n as f64)?;
        }
        if let Some(n) = max_fds() {
            gauge(&mut enc, "process_max_fds", "Maximum number of open file descriptors.", n as f64)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_stat_with_odd_command_names() {
        let line =
            "1234 (my (odd) cmd) S 1 2 3 4 5 6 7 8 9 10 150 25 0 0 20 0 8 0 5000 104857600 2560 18446744073709551615";
        let st = parse_proc_stat(line).unwrap();
        assert_eq!(st, ProcStat { utime: 150, stime: 25, starttime: 5000, vsize: 104_857_600, rss_pages: 2560 });
        assert_eq!(parse_proc_stat("garbage"), None);
        assert_eq!(parse_boot_time("cpu 1 2\nbtime 1700000000\n"), Some(1_700_000_000));
    }

    #[test]
    fn encodes_ingest_and_process_metrics() {
        let reg = Registry::with_process_metrics();
        let m = IngestMetrics::register(&reg);
        m.samples.get_or_create(&[("source", "remote_write")]).inc_by(42);
        m.limit_hits.get_or_create(&[("limit", "body_bytes")]).inc();
        let text = reg.encode().unwrap();
        assert!(text.contains("promlite_ingested_samples_total{source=\"remote_write\"} 42"), "{text}");
        assert!(text.contains("promlite_ingest_limit_hits_total{limit=\"body_bytes\"} 1"), "{text}");
        let rss = text
            .lines()
            .find_map(|l| l.strip_prefix("process_resident_memory_bytes "))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap();
        assert!(rss > 1e6, "rss {rss}");
        assert!(text.contains("process_cpu_seconds_total "), "{text}");
        assert!(text.contains("process_open_fds "), "{text}");
        assert!(text.ends_with("# EOF\n"));
    }
}
