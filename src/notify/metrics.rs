//! Per-Alertmanager counters and gauges, as atomics the lead can export.
//!
//! Names follow Prometheus's notifier metrics (`prometheus_notifications_*`),
//! with `alertmanager="<url>"` on each. Counter names are given without
//! `_total`; exporters such as prometheus-client add the suffix themselves.

use std::sync::atomic::{AtomicU64, Ordering};

/// Whether a sample is a counter or a gauge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    /// Monotonic; exported with a `_total` suffix.
    Counter,
    /// Current value.
    Gauge,
}

/// One metric value with its labels.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricSample {
    /// Metric name (counters without `_total`).
    pub name: &'static str,
    /// Help text.
    pub help: &'static str,
    /// Counter or gauge.
    pub kind: MetricKind,
    /// Label pairs.
    pub labels: Vec<(&'static str, String)>,
    /// Value.
    pub value: f64,
}

/// Counters for one Alertmanager.
#[derive(Debug, Default)]
pub struct AmMetrics {
    /// Alerts delivered (2xx).
    pub sent: AtomicU64,
    /// Alerts in failed send attempts (each retry counts again).
    pub errors: AtomicU64,
    /// Alerts dropped: queue overflow, a 4xx answer, or retries given up.
    pub dropped: AtomicU64,
    /// Send attempts that were retried.
    pub retries: AtomicU64,
    /// Sum of request latencies in microseconds.
    pub latency_us_sum: AtomicU64,
    /// Number of requests measured.
    pub latency_count: AtomicU64,
}

impl AmMetrics {
    pub(crate) fn add(counter: &AtomicU64, n: usize) {
        counter.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// Samples for this Alertmanager, labelled with its URL.
    pub fn samples(&self, url: &str, queue_len: usize, queue_capacity: usize) -> Vec<MetricSample> {
        let l = || vec![("alertmanager", url.to_string())];
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed) as f64;
        let s = |name, help, kind, value| MetricSample { name, help, kind, labels: l(), value };
        vec![
            s("prometheus_notifications_sent", "Total number of alerts sent.", MetricKind::Counter, get(&self.sent)),
            s(
                "prometheus_notifications_errors",
                "Total number of alerts affected by errors when sending them (per attempt).",
                MetricKind::Counter,
                get(&self.errors),
            ),
            s(
                "prometheus_notifications_dropped",
                "Total number of alerts dropped: queue overflow, rejected by the Alertmanager, or retries exhausted.",
                MetricKind::Counter,
                get(&self.dropped),
            ),
            s(
                "promlite_notifications_retries",
                "Total number of retried send attempts.",
                MetricKind::Counter,
                get(&self.retries),
            ),
            s(
                "prometheus_notifications_queue_length",
                "The number of alert notifications in the queue.",
                MetricKind::Gauge,
                queue_len as f64,
            ),
            s(
                "prometheus_notifications_queue_capacity",
                "The capacity of the alert notifications queue.",
                MetricKind::Gauge,
                queue_capacity as f64,
            ),
            s(
                "prometheus_notifications_latency_seconds_sum",
                "Total latency of sending alerts to this Alertmanager.",
                MetricKind::Counter,
                get(&self.latency_us_sum) / 1e6,
            ),
            s(
                "prometheus_notifications_latency_seconds_count",
                "Number of requests measured in the latency sum.",
                MetricKind::Counter,
                get(&self.latency_count),
            ),
        ]
    }
}
