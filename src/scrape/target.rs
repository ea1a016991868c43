//! Targets: from discovered groups to the label set, URL and schedule of one
//! scrape target, following Prometheus's `scrape/target.go`
//! (`PopulateLabels`, `Target.URL`, `Target.offset`).

use std::collections::BTreeMap;
use std::time::{Duration as StdDuration, SystemTime};

use parking_lot::Mutex;

use super::parse::MetricType;
use crate::config::{Duration, ScrapeConfig, StaticConfig};
use crate::model::{Labels, LabelsBuilder};
use crate::relabel;

/// The label holding a target's `host:port`.
pub const ADDRESS_LABEL: &str = "__address__";
/// The label holding a target's scheme.
pub const SCHEME_LABEL: &str = "__scheme__";
/// The label holding a target's metrics path.
pub const METRICS_PATH_LABEL: &str = "__metrics_path__";
/// The label holding a target's scrape interval.
pub const SCRAPE_INTERVAL_LABEL: &str = "__scrape_interval__";
/// The label holding a target's scrape timeout.
pub const SCRAPE_TIMEOUT_LABEL: &str = "__scrape_timeout__";
/// Prefix of labels that set URL parameters.
pub const PARAM_PREFIX: &str = "__param_";
/// Prefix of discovery meta labels (removed after relabeling).
pub const META_PREFIX: &str = "__meta_";

/// A group of targets as discovery produces it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TargetGroup {
    /// Where the group came from (`static/0`, a file path with index).
    pub source: String,
    /// One label set per target, each with at least `__address__`.
    pub targets: Vec<Labels>,
    /// Labels common to the group (target labels win on clashes).
    pub labels: Labels,
}

impl TargetGroup {
    /// A group from a `static_configs` entry.
    pub fn from_static(source: String, sc: &StaticConfig) -> Self {
        TargetGroup {
            source,
            targets: sc.targets.iter().map(|t| Labels::from_pairs([(ADDRESS_LABEL, t.as_str())])).collect(),
            labels: Labels::from_pairs(sc.labels.iter()),
        }
    }
}

/// Why a discovered target cannot be scraped (logged; the target is skipped).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    /// No `__address__` after relabeling.
    #[error("no address")]
    NoAddress,
    /// `__address__` is not a host:port.
    #[error("{0:?} is not a valid hostname")]
    BadAddress(String),
    /// `__scrape_interval__` / `__scrape_timeout__` do not parse or contradict.
    #[error("{0}")]
    BadSchedule(String),
}

/// The outcome of relabeling one discovered target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Populated {
    /// Scrape it: final labels (with the remaining `__` labels) and the discovered ones.
    Active {
        /// Labels after relabeling, meta labels removed, `instance` defaulted.
        labels: Labels,
        /// Labels before relabeling.
        discovered: Labels,
    },
    /// Dropped by relabeling; its discovered labels.
    Dropped(Labels),
}

/// Prometheus's `PopulateLabels`: adds the job defaults, applies
/// `relabel_configs`, validates address and schedule, removes `__meta_*`
/// and defaults `instance` to the address.
pub fn populate_labels(cfg: &ScrapeConfig, target: &Labels, group: &Labels) -> Result<Populated, TargetError> {
    let mut lb = group.to_builder();
    for l in target.iter() {
        lb.set(l.name, l.value);
    }
    let defaults = [
        ("job", cfg.job_name.clone()),
        (SCRAPE_INTERVAL_LABEL, cfg.interval().to_string()),
        (SCRAPE_TIMEOUT_LABEL, cfg.timeout().to_string()),
        (METRICS_PATH_LABEL, cfg.metrics_path.clone()),
        (SCHEME_LABEL, cfg.scheme.clone()),
    ];
    for (n, v) in &defaults {
        if lb.get(n).is_none() {
            lb.set(n, v);
        }
    }
    for (k, v) in &cfg.params {
        let name = format!("{PARAM_PREFIX}{k}");
        if let Some(first) = v.first() {
            if lb.get(&name).is_none() {
                lb.set(&name, first);
            }
        }
    }
    let discovered = lb.build();
    if !relabel::process_builder(&mut lb, &cfg.relabel_configs) {
        return Ok(Populated::Dropped(discovered));
    }
    let addr = lb.get(ADDRESS_LABEL).ok_or(TargetError::NoAddress)?.to_string();
    if addr.contains('/') {
        return Err(TargetError::BadAddress(addr));
    }
    let interval = schedule_label(&lb, SCRAPE_INTERVAL_LABEL, "interval")?;
    let timeout = schedule_label(&lb, SCRAPE_TIMEOUT_LABEL, "timeout")?;
    if timeout > interval {
        return Err(TargetError::BadSchedule(format!(
            "scrape timeout cannot be greater than scrape interval ({:?} > {:?})",
            timeout.to_string(),
            interval.to_string()
        )));
    }
    lb.retain(|n, _| !n.starts_with(META_PREFIX));
    if lb.get("instance").is_none() {
        lb.set("instance", &addr);
    }
    Ok(Populated::Active { labels: lb.build(), discovered })
}

fn schedule_label(lb: &LabelsBuilder, name: &str, what: &str) -> Result<Duration, TargetError> {
    let v = lb.get(name).unwrap_or("");
    let d = Duration::parse(v).map_err(|e| TargetError::BadSchedule(format!("error parsing scrape {what}: {e}")))?;
    if d.as_millis() == 0 {
        return Err(TargetError::BadSchedule(format!("scrape {what} cannot be 0")));
    }
    Ok(d)
}

/// Health of a target as the API shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// Not scraped yet.
    Unknown,
    /// Last scrape succeeded.
    Up,
    /// Last scrape failed.
    Down,
}

impl Health {
    /// `"up"`, `"down"` or `"unknown"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Unknown => "unknown",
            Health::Up => "up",
            Health::Down => "down",
        }
    }
}

/// The result of the latest scrape.
#[derive(Debug, Clone)]
pub struct ScrapeStatus {
    /// Health.
    pub health: Health,
    /// Error of the last scrape, empty when it succeeded.
    pub last_error: String,
    /// When the last scrape started.
    pub last_scrape: Option<SystemTime>,
    /// How long it took.
    pub last_duration: StdDuration,
    /// Samples scraped last time (before metric relabeling).
    pub last_samples: usize,
}

/// Metadata of one metric family as a target exposes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricMetadata {
    /// The type from `# TYPE` (unknown when absent).
    pub kind: MetricType,
    /// The help text.
    pub help: String,
    /// The unit (OpenMetrics).
    pub unit: String,
}

/// One scrape target: identity, schedule, and the state the API shows.
#[derive(Debug)]
pub struct Target {
    /// Scrape pool (job name).
    pub pool: String,
    /// Labels after relabeling, including the remaining `__` labels.
    pub labels: Labels,
    /// Labels before relabeling.
    pub discovered: Labels,
    /// The URL scraped.
    pub url: String,
    /// Scrape interval.
    pub interval: Duration,
    /// Scrape timeout.
    pub timeout: Duration,
    status: Mutex<ScrapeStatus>,
    metadata: Mutex<BTreeMap<String, MetricMetadata>>,
}

impl Target {
    /// A target from its final labels (see [`populate_labels`]) and config params.
    pub fn new(pool: &str, labels: Labels, discovered: Labels, cfg: &ScrapeConfig) -> Self {
        let url = target_url(&labels, &cfg.params);
        let interval =
            labels.get(SCRAPE_INTERVAL_LABEL).and_then(|v| Duration::parse(v).ok()).unwrap_or(cfg.interval());
        let timeout = labels.get(SCRAPE_TIMEOUT_LABEL).and_then(|v| Duration::parse(v).ok()).unwrap_or(cfg.timeout());
        Target {
            pool: pool.to_string(),
            labels,
            discovered,
            url,
            interval,
            timeout,
            status: Mutex::new(ScrapeStatus {
                health: Health::Unknown,
                last_error: String::new(),
                last_scrape: None,
                last_duration: StdDuration::ZERO,
                last_samples: 0,
            }),
            metadata: Mutex::new(BTreeMap::new()),
        }
    }

    /// The labels added to every scraped series: the final labels without `__` ones.
    pub fn series_labels(&self) -> Labels {
        let mut b = self.labels.to_builder();
        b.retain(|n, _| !n.starts_with("__"));
        b.build()
    }

    /// Identity of the target within its pool: its labels and URL.
    pub fn hash(&self) -> u64 {
        target_hash(&self.labels, &self.url)
    }

    /// The delay from `now` until this target's first scrape, so that scrapes
    /// land at `k * interval + offset` with `offset = (hash ^ seed) % interval`
    /// (Prometheus's `Target.offset`): spread out, yet stable across restarts.
    pub fn offset(&self, now: SystemTime, seed: u64) -> StdDuration {
        let interval = self.interval.as_millis().max(1) as u128 * 1_000_000;
        let now_ns = now.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let base = interval - now_ns % interval;
        let offset = u128::from(self.hash() ^ seed) % interval;
        let mut next = base + offset;
        if next > interval {
            next -= interval;
        }
        StdDuration::from_nanos(next as u64)
    }

    /// A copy of the latest scrape status.
    pub fn status(&self) -> ScrapeStatus {
        self.status.lock().clone()
    }

    /// Records the outcome of a scrape.
    pub fn set_status(&self, s: ScrapeStatus) {
        *self.status.lock() = s;
    }

    /// The metric metadata this target exposed in its last successful scrape.
    pub fn metadata(&self) -> BTreeMap<String, MetricMetadata> {
        self.metadata.lock().clone()
    }

    /// Replaces the metadata.
    pub fn set_metadata(&self, m: BTreeMap<String, MetricMetadata>) {
        *self.metadata.lock() = m;
    }
}

/// The identity hash of a target (labels and URL).
pub fn target_hash(labels: &Labels, url: &str) -> u64 {
    let mut buf = labels.as_bytes().to_vec();
    buf.push(0xff);
    buf.extend_from_slice(url.as_bytes());
    xxhash_rust::xxh3::xxh3_64(&buf)
}

/// `scheme://address/path?params` with `__param_*` labels overriding the
/// first value of config params, query keys sorted (Prometheus's `Target.URL`).
pub fn target_url(labels: &Labels, params: &BTreeMap<String, Vec<String>>) -> String {
    let mut p = params.clone();
    for l in labels.iter() {
        if let Some(k) = l.name.strip_prefix(PARAM_PREFIX) {
            let e = p.entry(k.to_string()).or_default();
            if e.is_empty() {
                e.push(l.value.to_string());
            } else {
                e[0] = l.value.to_string();
            }
        }
    }
    let scheme = labels.get(SCHEME_LABEL).unwrap_or("http");
    let addr = labels.get(ADDRESS_LABEL).unwrap_or("");
    let path = labels.get(METRICS_PATH_LABEL).unwrap_or("/metrics");
    let mut url = format!("{scheme}://{addr}{path}");
    if !p.is_empty() {
        let mut q = form_urlencoded::Serializer::new(String::new());
        for (k, vs) in &p {
            for v in vs {
                q.append_pair(k, v);
            }
        }
        url.push('?');
        url.push_str(&q.finish());
    }
    url
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::labels;

    fn scrape_cfg(yaml: &str) -> ScrapeConfig {
        let text = format!("scrape_configs:\n{yaml}");
        let c =
            crate::config::Config::parse(&text, "t.yml", std::path::Path::new(".")).unwrap_or_else(|e| panic!("{e:?}"));
        c.scrape_configs[0].clone()
    }

    #[test]
    fn populate_adds_defaults_and_instance() {
        let cfg = scrape_cfg("  - job_name: node\n    scrape_interval: 15s\n    params:\n      module: [http_2xx]\n");
        let got = populate_labels(&cfg, &labels!("__address__" => "h:9100"), &labels!("zone" => "eu"))
            .unwrap_or_else(|e| panic!("{e}"));
        let Populated::Active { labels, discovered } = got else { panic!("dropped") };
        assert_eq!(
            labels,
            labels!(
                "__address__" => "h:9100", "__metrics_path__" => "/metrics", "__param_module" => "http_2xx",
                "__scheme__" => "http", "__scrape_interval__" => "15s", "__scrape_timeout__" => "10s",
                "instance" => "h:9100", "job" => "node", "zone" => "eu"
            )
        );
        assert_eq!(discovered.get("instance"), None);
        let t = Target::new("node", labels, discovered, &cfg);
        assert_eq!(t.url, "http://h:9100/metrics?module=http_2xx");
        assert_eq!(t.series_labels(), labels!("instance" => "h:9100", "job" => "node", "zone" => "eu"));
    }

    #[test]
    fn relabel_can_rewrite_address_path_and_drop() {
        let cfg = scrape_cfg(
            "  - job_name: j\n    relabel_configs:\n      - source_labels: [__meta_port]\n        regex: '(.+)'\n        target_label: __address__\n        replacement: 'host:$1'\n\
             \x20     - target_label: __metrics_path__\n        replacement: /probe\n\
             \x20     - source_labels: [__meta_skip]\n        regex: 'yes'\n        action: drop\n",
        );
        let got = populate_labels(&cfg, &labels!("__address__" => "x", "__meta_port" => "8002"), &Labels::empty())
            .unwrap_or_else(|e| panic!("{e}"));
        let Populated::Active { labels, .. } = got else { panic!("dropped") };
        assert_eq!(labels.get("__address__"), Some("host:8002"));
        assert_eq!(labels.get("__meta_port"), None);
        assert_eq!(labels.get("instance"), Some("host:8002"));
        assert_eq!(target_url(&labels, &BTreeMap::new()), "http://host:8002/probe");
        let dropped = populate_labels(&cfg, &labels!("__address__" => "x", "__meta_skip" => "yes"), &Labels::empty());
        assert!(matches!(dropped, Ok(Populated::Dropped(_))));
    }

    #[test]
    fn bad_targets_are_errors() {
        let cfg = scrape_cfg(
            "  - job_name: j\n    relabel_configs:\n      - source_labels: [t]\n        regex: '(.+)'\n        target_label: __scrape_timeout__\n",
        );
        let e = populate_labels(&cfg, &labels!("__address__" => "a:1", "t" => "2m"), &Labels::empty());
        assert!(
            matches!(e, Err(TargetError::BadSchedule(ref m)) if m.contains("greater than scrape interval")),
            "{e:?}"
        );
        let e = populate_labels(&cfg, &labels!("t" => "1s"), &Labels::empty());
        assert_eq!(e, Err(TargetError::NoAddress));
    }

    #[test]
    fn offset_is_stable_and_within_interval() {
        let cfg = scrape_cfg("  - job_name: j\n    scrape_interval: 10s\n");
        let mk = |a: &str| {
            let Ok(Populated::Active { labels, discovered }) =
                populate_labels(&cfg, &labels!("__address__" => a), &Labels::empty())
            else {
                panic!("no target")
            };
            Target::new("j", labels, discovered, &cfg)
        };
        let (a, b) = (mk("a:1"), mk("b:1"));
        let now = SystemTime::UNIX_EPOCH + StdDuration::from_millis(1_700_000_000_123);
        let oa = a.offset(now, 0);
        assert!(oa <= StdDuration::from_secs(10));
        assert_eq!(oa, a.offset(now, 0));
        // Scrapes land at the same phase of the interval whatever the start time.
        let phase = |t: SystemTime, o: StdDuration| {
            ((t + o).duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_millis())) % 10_000
        };
        let later = now + StdDuration::from_millis(3_456);
        assert_eq!(phase(now, oa), phase(later, a.offset(later, 0)));
        assert_ne!(phase(now, oa), phase(now, b.offset(now, 0)));
    }
}
