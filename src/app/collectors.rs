//! `/metrics` collectors for stages that keep their own counters: the TSDB
//! and the notifier. Values are read at scrape time, never copied.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use arc_swap::ArcSwap;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;

use crate::notify::{MetricKind, Notifier};
use crate::tsdb::db::Db;

/// Head, block and rejection figures of the TSDB.
#[derive(Debug)]
pub struct TsdbCollector(pub Arc<Db>);

fn gauge(enc: &mut DescriptorEncoder, name: &str, help: &str, v: f64) -> Result<(), std::fmt::Error> {
    enc.encode_descriptor(name, help, None, MetricType::Gauge)?.encode_gauge(&v)
}

fn counter(enc: &mut DescriptorEncoder, name: &str, help: &str, v: u64) -> Result<(), std::fmt::Error> {
    enc.encode_descriptor(name, help, None, MetricType::Counter)?.encode_counter::<NoLabelSet, _, u64>(&v, None)
}

impl Collector for TsdbCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        if let Ok(s) = self.0.stats() {
            let h = &s.head;
            gauge(&mut enc, "prometheus_tsdb_head_series", "Series in the head", h.num_series as f64)?;
            gauge(&mut enc, "prometheus_tsdb_head_chunks", "Chunks in the head", h.num_chunks as f64)?;
            gauge(&mut enc, "promlite_tsdb_head_samples", "Samples in the head", h.num_samples as f64)?;
            gauge(&mut enc, "prometheus_tsdb_head_min_time", "Oldest head timestamp (ms)", h.min_time as f64)?;
            gauge(&mut enc, "prometheus_tsdb_head_max_time", "Newest head timestamp (ms)", h.max_time as f64)?;
            gauge(&mut enc, "prometheus_tsdb_blocks_loaded", "Persisted blocks loaded", s.num_blocks as f64)?;
            gauge(&mut enc, "prometheus_tsdb_storage_blocks_bytes", "Bytes of persisted blocks", s.block_bytes as f64)?;
            gauge(
                &mut enc,
                "promlite_tsdb_blocks_skipped",
                "Block directories skipped as damaged at open",
                s.skipped_blocks.len() as f64,
            )?;
        }
        if let Some(head) = self.0.head() {
            let c = &head.counters;
            let mut me = enc.encode_descriptor(
                "promlite_tsdb_rejected_samples",
                "Samples the head refused, by reason",
                None,
                MetricType::Counter,
            )?;
            for (reason, v) in [
                ("out_of_order", &c.out_of_order),
                ("out_of_bounds", &c.out_of_bounds),
                ("duplicate", &c.duplicates),
                ("series_limit", &c.series_limit),
            ] {
                me.encode_family(&[("reason", reason)])?
                    .encode_counter::<NoLabelSet, _, u64>(&v.load(Ordering::Relaxed), None)?;
            }
            counter(
                &mut enc,
                "promlite_tsdb_wal_no_space",
                "WAL commits that failed because the disk was full",
                c.wal_no_space.load(Ordering::Relaxed),
            )?;
        }
        Ok(())
    }
}

/// Per-Alertmanager notifier figures, from whichever notifier is current.
pub struct NotifierCollector(pub Arc<ArcSwap<Notifier>>);

impl std::fmt::Debug for NotifierCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NotifierCollector")
    }
}

impl Collector for NotifierCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let samples = self.0.load().metrics();
        let mut by_name: BTreeMap<&str, Vec<&crate::notify::MetricSample>> = BTreeMap::new();
        for s in &samples {
            by_name.entry(s.name).or_default().push(s);
        }
        for (name, rows) in by_name {
            let Some(first) = rows.first() else { continue };
            let kind = match first.kind {
                MetricKind::Counter => MetricType::Counter,
                MetricKind::Gauge => MetricType::Gauge,
            };
            let mut me = enc.encode_descriptor(name, first.help.trim_end_matches('.'), None, kind)?;
            for r in rows {
                let labels: Vec<(&str, &str)> = r.labels.iter().map(|(k, v)| (*k, v.as_str())).collect();
                let mut fam = me.encode_family(&labels)?;
                match kind {
                    MetricType::Counter => fam.encode_counter::<NoLabelSet, _, f64>(&r.value, None)?,
                    _ => fam.encode_gauge(&r.value)?,
                }
            }
        }
        Ok(())
    }
}
