//! Turning one scraped body into appends: label merging (`honor_labels`),
//! `metric_relabel_configs`, limits, timestamps, staleness and the
//! synthetic report series. No I/O: the caller fetches the body and owns
//! the appender (commit or rollback).
//!
//! Follows Prometheus's `scrape/scrape.go` (`mutateSampleLabels`,
//! `resolveConflictingExposedLabels`, `verifyLabelLimits`, `scrapeLoop.append`,
//! `scrapeLoop.report`).

use std::collections::{BTreeMap, HashMap};

use super::parse::{self, Event, MetricType, ParseError};
use super::protocol::Format;
use super::target::MetricMetadata;
use crate::config::ScrapeConfig;
use crate::model::{Labels, LabelsBuilder, METRIC_NAME, STALE_NAN};
use crate::relabel::{self, RelabelConfig};
use crate::storage::{AppendError, Appender};

/// The per-scrape settings of a scrape config.
#[derive(Debug, Clone, Default)]
pub struct ScrapeOptions {
    /// Scraped labels win over target labels.
    pub honor_labels: bool,
    /// Use exposed timestamps.
    pub honor_timestamps: bool,
    /// Relabeling of scraped series.
    pub metric_relabel: Vec<RelabelConfig>,
    /// Most samples after relabeling (0 = none).
    pub sample_limit: u64,
    /// Most labels per series (0 = none).
    pub label_limit: u64,
    /// Longest label name (0 = none).
    pub label_name_length_limit: u64,
    /// Longest label value (0 = none).
    pub label_value_length_limit: u64,
}

impl From<&ScrapeConfig> for ScrapeOptions {
    fn from(c: &ScrapeConfig) -> Self {
        ScrapeOptions {
            honor_labels: c.honor_labels,
            honor_timestamps: c.honor_timestamps,
            metric_relabel: c.metric_relabel_configs.clone(),
            sample_limit: c.sample_limit.unwrap_or(0),
            label_limit: c.label_limit.unwrap_or(0),
            label_name_length_limit: c.label_name_length_limit.unwrap_or(0),
            label_value_length_limit: c.label_value_length_limit.unwrap_or(0),
        }
    }
}

/// Series a target produced in its last scrape, for stale markers.
#[derive(Debug, Default)]
pub struct SeriesCache {
    prev: HashMap<u64, Labels>,
}

impl SeriesCache {
    /// Number of series remembered.
    pub fn len(&self) -> usize {
        self.prev.len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.prev.is_empty()
    }
}

/// Counts of one successful append.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AppendStats {
    /// Samples in the body (`scrape_samples_scraped`).
    pub scraped: usize,
    /// Samples left after metric relabeling (`scrape_samples_post_metric_relabeling`).
    pub post_relabel: usize,
    /// Series not present in the previous scrape (`scrape_series_added`).
    pub series_added: usize,
    /// Samples storage refused (out of order, duplicates); the scrape still counts.
    pub rejected: usize,
    /// Stale markers written for vanished series.
    pub stale_markers: usize,
}

/// Why a scrape's samples were not stored; the whole scrape fails (as in Prometheus).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AppendFailure {
    /// A line of the body does not parse.
    #[error("{0}")]
    Parse(#[from] ParseError),
    /// More samples than `sample_limit`.
    #[error("sample limit exceeded: {got} samples, limit {limit}")]
    SampleLimit {
        /// Samples after relabeling.
        got: usize,
        /// The limit.
        limit: u64,
    },
    /// A label limit tripped.
    #[error("{0}")]
    LabelLimit(String),
    /// A series with a repeated label name.
    #[error("line {line}: label name {name:?} is not unique: invalid sample")]
    DuplicateLabel {
        /// Line of the body.
        line: usize,
        /// The name.
        name: String,
    },
}

/// Appends the samples of `body`, scraped at `ts` (ms), for a target whose
/// series labels are `target`. On success it also writes stale markers for
/// series that vanished since the previous scrape and updates `cache`;
/// `metadata` receives the body's HELP/TYPE/UNIT. On failure nothing in
/// `cache` changes and the caller must roll back.
pub fn append_scrape(
    app: &mut dyn Appender,
    body: &[u8],
    format: Format,
    target: &Labels,
    opts: &ScrapeOptions,
    cache: &mut SeriesCache,
    ts: i64,
    metadata: &mut BTreeMap<String, MetricMetadata>,
) -> Result<AppendStats, AppendFailure> {
    let mut stats = AppendStats::default();
    let mut current: HashMap<u64, Labels> = HashMap::with_capacity(cache.prev.len());
    let mut failure: Option<AppendFailure> = None;
    let mut lb = LabelsBuilder::new();

    parse::parse(body, format, |ev| {
        if failure.is_some() {
            return;
        }
        let s = match ev {
            Event::Sample(s) => s,
            Event::Help { family, text } => {
                meta_entry(metadata, &family).help = text.into_owned();
                return;
            }
            Event::Type { family, kind } => {
                meta_entry(metadata, &family).kind = kind;
                return;
            }
            Event::Unit { family, unit } => {
                meta_entry(metadata, &family).unit = unit.to_string();
                return;
            }
        };
        stats.scraped += 1;
        lb = LabelsBuilder::new();
        lb.set(METRIC_NAME, &s.name);
        for (n, v) in s.labels {
            if n == METRIC_NAME || lb.get(n).is_some() {
                failure = Some(AppendFailure::DuplicateLabel { line: s.line, name: n.to_string() });
                return;
            }
            lb.set(n, v);
        }
        merge_target_labels(&mut lb, target, opts.honor_labels);
        if !relabel::process_builder(&mut lb, &opts.metric_relabel) {
            return;
        }
        let labels = lb.build();
        if labels.is_empty() {
            return;
        }
        if let Err(m) = verify_label_limits(&labels, opts) {
            failure = Some(AppendFailure::LabelLimit(m));
            return;
        }
        stats.post_relabel += 1;
        if opts.sample_limit > 0 && stats.post_relabel as u64 > opts.sample_limit {
            failure = Some(AppendFailure::SampleLimit { got: stats.post_relabel, limit: opts.sample_limit });
            return;
        }
        let explicit = opts.honor_timestamps && s.timestamp.is_some();
        let t = if explicit { s.timestamp.unwrap_or(ts) } else { ts };
        match app.append(&labels, t, s.value) {
            Ok(_) | Err(AppendError::OutOfOrder { .. }) | Err(AppendError::DuplicateTimestamp { .. }) => {}
            Err(_) => stats.rejected += 1,
        }
        // Only series without explicit timestamps get stale markers (as Prometheus).
        if !explicit {
            let h = labels.stable_hash();
            if !cache.prev.contains_key(&h) && !current.contains_key(&h) {
                stats.series_added += 1;
            }
            current.insert(h, labels);
        }
    })?;
    if let Some(f) = failure {
        // Keep counting for the report: Prometheus reports post-relabel counts even on limit errors.
        return Err(f);
    }
    for (h, l) in &cache.prev {
        if !current.contains_key(h) {
            let _ = app.append(l, ts, STALE_NAN);
            stats.stale_markers += 1;
        }
    }
    cache.prev = current;
    Ok(stats)
}

fn meta_entry<'m>(m: &'m mut BTreeMap<String, MetricMetadata>, family: &str) -> &'m mut MetricMetadata {
    m.entry(family.to_string()).or_insert_with(|| MetricMetadata {
        kind: MetricType::Unknown,
        help: String::new(),
        unit: String::new(),
    })
}

/// Writes stale markers at `ts` for every series of the previous scrape and
/// forgets them (a failed scrape, or a target that went away).
pub fn append_stale_all(app: &mut dyn Appender, cache: &mut SeriesCache, ts: i64) -> usize {
    let n = cache.prev.len();
    for l in cache.prev.values() {
        let _ = app.append(l, ts, STALE_NAN);
    }
    cache.prev.clear();
    n
}

/// Prometheus's `mutateSampleLabels` before relabeling: with `honor_labels`
/// the scraped labels win; otherwise target labels win and clashing scraped
/// labels are kept as `exported_<name>` (more prefixes until free).
fn merge_target_labels(lb: &mut LabelsBuilder, target: &Labels, honor: bool) {
    if honor {
        for l in target.iter() {
            if lb.get(l.name).is_none() {
                lb.set(l.name, l.value);
            }
        }
        return;
    }
    let mut conflicts: Vec<(String, String)> = Vec::new();
    for l in target.iter() {
        if let Some(existing) = lb.get(l.name) {
            conflicts.push((l.name.to_string(), existing.to_string()));
        }
        lb.set(l.name, l.value);
    }
    conflicts.sort_by_key(|(n, _)| n.len());
    for (name, value) in conflicts {
        let mut new = name;
        loop {
            new = format!("exported_{new}");
            if lb.get(&new).is_none() {
                lb.set(&new, &value);
                break;
            }
        }
    }
}

/// Prometheus's `verifyLabelLimits`, with its messages.
fn verify_label_limits(l: &Labels, o: &ScrapeOptions) -> Result<(), String> {
    let metric = l.metric_name().unwrap_or("");
    let short = |s: &str| s.chars().take(50).collect::<String>();
    let n = l.len() as u64;
    if o.label_limit > 0 && n > o.label_limit {
        return Err(format!(
            "label_limit exceeded (metric: {}, number of labels: {n}, limit: {})",
            short(metric),
            o.label_limit
        ));
    }
    for p in l.iter() {
        if o.label_name_length_limit > 0 && p.name.len() as u64 > o.label_name_length_limit {
            return Err(format!(
                "label_name_length_limit exceeded (metric: {}, label name: {}, length: {}, limit: {})",
                short(metric),
                short(p.name),
                p.name.len(),
                o.label_name_length_limit
            ));
        }
        if o.label_value_length_limit > 0 && p.value.len() as u64 > o.label_value_length_limit {
            return Err(format!(
                "label_value_length_limit exceeded (metric: {}, label name: {}, value: {}, length: {}, limit: {})",
                short(metric),
                short(p.name),
                short(p.value),
                p.value.len(),
                o.label_value_length_limit
            ));
        }
    }
    Ok(())
}

/// The synthetic per-scrape series.
pub const REPORT_SERIES: [&str; 5] = [
    "up",
    "scrape_duration_seconds",
    "scrape_samples_scraped",
    "scrape_samples_post_metric_relabeling",
    "scrape_series_added",
];

/// Values of the synthetic series for one scrape.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Report {
    /// 1 for success, 0 for failure.
    pub up: f64,
    /// Seconds the scrape took.
    pub duration_seconds: f64,
    /// Samples in the body.
    pub scraped: f64,
    /// Samples after metric relabeling.
    pub post_relabel: f64,
    /// New series.
    pub series_added: f64,
}

/// Appends `up`, `scrape_duration_seconds`, `scrape_samples_scraped`,
/// `scrape_samples_post_metric_relabeling` and `scrape_series_added` with the
/// target's labels at `ts`.
pub fn append_report(app: &mut dyn Appender, target: &Labels, ts: i64, r: &Report) {
    let values = [r.up, r.duration_seconds, r.scraped, r.post_relabel, r.series_added];
    for (name, v) in REPORT_SERIES.iter().zip(values) {
        let _ = app.append(&report_labels(target, name), ts, v);
    }
}

/// Stale markers for the synthetic series (the target went away).
pub fn append_report_stale(app: &mut dyn Appender, target: &Labels, ts: i64) {
    for name in REPORT_SERIES {
        let _ = app.append(&report_labels(target, name), ts, STALE_NAN);
    }
}

fn report_labels(target: &Labels, name: &str) -> Labels {
    let mut b = target.to_builder();
    b.set(METRIC_NAME, name);
    b.build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::labels;
    use crate::model::{is_stale_nan, Matcher};
    use crate::storage::memory::MemStorage;
    use crate::storage::{Appendable, Queryable};

    fn dump(s: &MemStorage) -> Vec<(String, Vec<(i64, u64)>)> {
        let mut out = Vec::new();
        for mut series in s.select(i64::MIN, i64::MAX, &[] as &[Matcher]).unwrap_or_default() {
            let mut v = Vec::new();
            series.samples.collect_into(&mut v);
            out.push((series.labels.to_string(), v.iter().map(|x| (x.t, x.v.to_bits())).collect()));
        }
        out
    }

    fn run(
        store: &MemStorage,
        body: &str,
        opts: &ScrapeOptions,
        cache: &mut SeriesCache,
        ts: i64,
    ) -> Result<AppendStats, AppendFailure> {
        let mut app = store.appender();
        let mut meta = BTreeMap::new();
        let r = append_scrape(
            app.as_mut(),
            body.as_bytes(),
            Format::PromText,
            &labels!("instance" => "i", "job" => "j"),
            opts,
            cache,
            ts,
            &mut meta,
        );
        match r {
            Ok(_) => app.commit().unwrap_or_else(|e| panic!("{e}")),
            Err(_) => app.rollback(),
        }
        r
    }

    #[test]
    fn appends_with_target_labels_and_exported_conflicts() {
        let store = MemStorage::new();
        let mut cache = SeriesCache::default();
        let opts = ScrapeOptions { honor_timestamps: true, ..Default::default() };
        let st = run(&store, "a{job=\"x\"} 1\nb 2 500\n", &opts, &mut cache, 1000).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(st, AppendStats { scraped: 2, post_relabel: 2, series_added: 1, rejected: 0, stale_markers: 0 });
        assert_eq!(
            dump(&store),
            vec![
                ("a{exported_job=\"x\", instance=\"i\", job=\"j\"}".to_string(), vec![(1000, 1f64.to_bits())]),
                ("b{instance=\"i\", job=\"j\"}".to_string(), vec![(500, 2f64.to_bits())]),
            ]
        );
        let honor = ScrapeOptions { honor_labels: true, ..Default::default() };
        let store2 = MemStorage::new();
        run(&store2, "a{job=\"x\"} 1\n", &honor, &mut SeriesCache::default(), 1000).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(dump(&store2)[0].0, "a{instance=\"i\", job=\"x\"}");
    }

    #[test]
    fn vanished_series_get_stale_markers() {
        let store = MemStorage::new();
        let mut cache = SeriesCache::default();
        let opts = ScrapeOptions::default();
        run(&store, "a 1\nb 2\n", &opts, &mut cache, 1000).unwrap_or_else(|e| panic!("{e}"));
        let st = run(&store, "a 3\nc 4\n", &opts, &mut cache, 2000).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((st.series_added, st.stale_markers), (1, 1));
        let d = dump(&store);
        let b = d.iter().find(|(n, _)| n.starts_with("b{")).unwrap_or_else(|| panic!("{d:?}"));
        assert_eq!(b.1.len(), 2);
        assert!(is_stale_nan(f64::from_bits(b.1[1].1)) && b.1[1].0 == 2000);
    }

    #[test]
    fn limits_fail_the_whole_scrape() {
        let store = MemStorage::new();
        let mut cache = SeriesCache::default();
        let opts = ScrapeOptions { sample_limit: 2, ..Default::default() };
        let e = run(&store, "a 1\nb 2\nc 3\n", &opts, &mut cache, 1000);
        assert_eq!(e, Err(AppendFailure::SampleLimit { got: 3, limit: 2 }));
        assert!(dump(&store).is_empty(), "rolled back");
        let opts = ScrapeOptions { label_limit: 3, ..Default::default() };
        let e = run(&store, "a{x=\"1\",y=\"2\"} 1\n", &opts, &mut cache, 1000).err().map(|e| e.to_string());
        assert_eq!(e.as_deref(), Some("label_limit exceeded (metric: a, number of labels: 5, limit: 3)"));
        let e = run(&store, "a 1\na{x=\"1\",x=\"2\"} 1\n", &ScrapeOptions::default(), &mut cache, 1000);
        assert_eq!(e, Err(AppendFailure::DuplicateLabel { line: 2, name: "x".into() }));
    }

    #[test]
    fn metric_relabel_drops_and_counts() {
        let store = MemStorage::new();
        let drop: RelabelConfig = serde_saphyr::from_str("source_labels: [__name__]\nregex: 'go_.*'\naction: drop")
            .unwrap_or_else(|e| panic!("{e}"));
        let opts = ScrapeOptions { metric_relabel: vec![drop], ..Default::default() };
        let st =
            run(&store, "go_x 1\nnode_y 2\n", &opts, &mut SeriesCache::default(), 1).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((st.scraped, st.post_relabel), (2, 1));
        assert_eq!(dump(&store).len(), 1);
    }

    #[test]
    fn report_series_carry_target_labels() {
        let store = MemStorage::new();
        let mut app = store.appender();
        let r = Report { up: 1.0, duration_seconds: 0.5, scraped: 3.0, post_relabel: 2.0, series_added: 1.0 };
        append_report(app.as_mut(), &labels!("instance" => "i", "job" => "j"), 10, &r);
        app.commit().unwrap_or_else(|e| panic!("{e}"));
        let names: Vec<String> = dump(&store).into_iter().map(|(n, _)| n).collect();
        assert!(names.contains(&"up{instance=\"i\", job=\"j\"}".to_string()), "{names:?}");
        assert_eq!(names.len(), 5);
    }
}
