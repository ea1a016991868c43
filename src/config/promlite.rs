//! `storage:` and promlite's own `promlite:` section.

use serde::Deserialize;

use super::units::{ByteSize, Duration};
use super::ConfigError;

/// `storage:`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    /// `storage.tsdb`.
    #[serde(default)]
    pub tsdb: TsdbConfig,
    /// Accepted for compatibility; exemplars are not stored.
    #[serde(default)]
    pub exemplars: Option<serde::de::IgnoredAny>,
}

impl StorageConfig {
    /// The out-of-order window (0 = out-of-order samples rejected).
    pub fn out_of_order_time_window(&self) -> Duration {
        self.tsdb.out_of_order_time_window
    }
}

/// `storage.tsdb`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TsdbConfig {
    /// How far behind the newest sample an older one is still accepted.
    #[serde(default)]
    pub out_of_order_time_window: Duration,
}

/// `promlite:`: settings Prometheus has no place for.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromliteConfig {
    /// Limits of the remote_write receiver.
    #[serde(default)]
    pub remote_write: RemoteWriteLimits,
    /// Query limits.
    #[serde(default)]
    pub query: QueryLimits,
}

fn d_body() -> ByteSize {
    ByteSize(32 << 20)
}
fn d_decompressed() -> ByteSize {
    ByteSize(128 << 20)
}
fn d_series() -> u64 {
    100_000
}
fn d_labels() -> u64 {
    128
}
fn d_name_len() -> u64 {
    1024
}
fn d_value_len() -> u64 {
    16 * 1024
}

/// `promlite.remote_write`: every limit is counted in `/metrics` when it trips.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RemoteWriteLimits {
    /// Largest compressed request body (413 above it). Default 32MiB.
    #[serde(default = "d_body")]
    pub max_body_bytes: ByteSize,
    /// Largest decompressed size, checked from the snappy header before
    /// decompressing (413 above it). Default 128MiB.
    #[serde(default = "d_decompressed")]
    pub max_decompressed_bytes: ByteSize,
    /// Most series in one request (400 above it). Default 100000.
    #[serde(default = "d_series")]
    pub max_series_per_request: u64,
    /// Most labels on one series. Default 128.
    #[serde(default = "d_labels")]
    pub max_labels_per_series: u64,
    /// Longest label name in bytes. Default 1024.
    #[serde(default = "d_name_len")]
    pub max_label_name_length: u64,
    /// Longest label value in bytes. Default 16KiB.
    #[serde(default = "d_value_len")]
    pub max_label_value_length: u64,
}

impl Default for RemoteWriteLimits {
    fn default() -> Self {
        RemoteWriteLimits {
            max_body_bytes: d_body(),
            max_decompressed_bytes: d_decompressed(),
            max_series_per_request: d_series(),
            max_labels_per_series: d_labels(),
            max_label_name_length: d_name_len(),
            max_label_value_length: d_value_len(),
        }
    }
}

fn d_max_samples() -> u64 {
    50_000_000
}
fn d_timeout() -> Duration {
    Duration::from_secs(120)
}
fn d_lookback() -> Duration {
    Duration::from_secs(300)
}
fn d_concurrency() -> u64 {
    20
}

/// `promlite.query`: the limits Prometheus sets with `--query.*` flags.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct QueryLimits {
    /// Most samples one query may load (Prometheus `--query.max-samples`, 50000000).
    #[serde(default = "d_max_samples")]
    pub max_samples: u64,
    /// Query timeout (`--query.timeout`, 2m).
    #[serde(default = "d_timeout")]
    pub timeout: Duration,
    /// Lookback delta (`--query.lookback-delta`, 5m).
    #[serde(default = "d_lookback")]
    pub lookback_delta: Duration,
    /// Queries run at once (`--query.max-concurrency`, 20).
    #[serde(default = "d_concurrency")]
    pub max_concurrency: u64,
}

impl Default for QueryLimits {
    fn default() -> Self {
        QueryLimits {
            max_samples: d_max_samples(),
            timeout: d_timeout(),
            lookback_delta: d_lookback(),
            max_concurrency: d_concurrency(),
        }
    }
}

impl PromliteConfig {
    pub(super) fn validate(&self, file: &str) -> Vec<ConfigError> {
        let mut errs = Vec::new();
        let mut bad = |context: &str, message: &str| {
            errs.push(ConfigError::Invalid { file: file.into(), context: context.into(), message: message.into() })
        };
        let rw = &self.remote_write;
        if rw.max_body_bytes.0 == 0 || rw.max_decompressed_bytes.0 == 0 {
            bad("promlite.remote_write", "body size limits must be greater than 0");
        }
        if rw.max_series_per_request == 0 || rw.max_labels_per_series == 0 {
            bad("promlite.remote_write", "series and label limits must be greater than 0");
        }
        if self.query.max_concurrency == 0 {
            bad("promlite.query", "max_concurrency must be greater than 0");
        }
        if self.query.lookback_delta.as_millis() == 0 {
            bad("promlite.query", "lookback_delta must be greater than 0");
        }
        errs
    }
}
