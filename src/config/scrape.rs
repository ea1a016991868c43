//! `scrape_configs` entries and their service discovery configs.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::http::{AuthorizationConfig, BasicAuthConfig, ClientAuth, RawHttpClient, Secret, TlsConfig};
use super::units::{ByteSize, Duration};
use crate::relabel::RelabelConfig;

fn default_true() -> bool {
    true
}
fn default_scheme() -> String {
    "http".into()
}
fn default_metrics_path() -> String {
    "/metrics".into()
}
fn default_refresh() -> Duration {
    Duration::from_secs(300)
}

/// Defines `reject::<field>`: a deserializer that fails with the field's name
/// and the error position, for Prometheus settings promlite does not implement
/// (accepting them would silently scrape nothing).
macro_rules! rejecters {
    ($($name:ident),*) => {
        pub(super) mod reject {
            use serde::Deserialize;
            $(
                pub(in crate::config) fn $name<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<()>, D::Error> {
                    let _ = serde::de::IgnoredAny::deserialize(d)?;
                    Err(serde::de::Error::custom(concat!(
                        stringify!($name),
                        " is not supported by promlite (supported discovery: static_configs, file_sd_configs)"
                    )))
                }
            )*
        }
    };
}
rejecters!(
    oauth2,
    kubernetes_sd_configs,
    consul_sd_configs,
    dns_sd_configs,
    ec2_sd_configs,
    gce_sd_configs,
    azure_sd_configs,
    http_sd_configs,
    docker_sd_configs,
    dockerswarm_sd_configs,
    openstack_sd_configs,
    nomad_sd_configs,
    ionos_sd_configs,
    scrape_config_files
);

/// One scrape job.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScrapeConfig {
    /// The job name (the `job` label's default value).
    pub job_name: String,
    /// Keep the scraped labels when they clash with target labels.
    #[serde(default)]
    pub honor_labels: bool,
    /// Use timestamps exposed by the target.
    #[serde(default = "default_true")]
    pub honor_timestamps: bool,
    /// Accepted for compatibility; promlite does not track staleness of explicit timestamps.
    #[serde(default)]
    pub track_timestamps_staleness: bool,
    /// `http` or `https`.
    #[serde(default = "default_scheme")]
    pub scheme: String,
    /// Path of the metrics endpoint.
    #[serde(default = "default_metrics_path")]
    pub metrics_path: String,
    /// URL query parameters.
    #[serde(default)]
    pub params: BTreeMap<String, Vec<String>>,
    /// Scrape interval; the global one when unset (filled in at load).
    #[serde(default)]
    pub scrape_interval: Option<Duration>,
    /// Scrape timeout; filled in at load as Prometheus does.
    #[serde(default)]
    pub scrape_timeout: Option<Duration>,
    /// Accepted exposition protocols in preference order (names as Prometheus).
    #[serde(default)]
    pub scrape_protocols: Option<Vec<String>>,
    /// Protocol to assume when the Content-Type is missing or unknown.
    #[serde(default)]
    pub fallback_scrape_protocol: Option<String>,
    /// Ask for gzip.
    #[serde(default = "default_true")]
    pub enable_compression: bool,
    /// Largest uncompressed body accepted (0 = no limit).
    #[serde(default)]
    pub body_size_limit: Option<ByteSize>,
    /// Most samples per scrape after metric relabeling (0 = no limit).
    #[serde(default)]
    pub sample_limit: Option<u64>,
    /// Most labels per series (0 = no limit).
    #[serde(default)]
    pub label_limit: Option<u64>,
    /// Longest label name (0 = no limit).
    #[serde(default)]
    pub label_name_length_limit: Option<u64>,
    /// Longest label value (0 = no limit).
    #[serde(default)]
    pub label_value_length_limit: Option<u64>,
    /// Most targets after relabeling (0 = no limit).
    #[serde(default)]
    pub target_limit: Option<u64>,
    /// How many dropped targets to keep for the API (0 = all).
    #[serde(default)]
    pub keep_dropped_targets: Option<u64>,
    /// Relabeling of targets before scraping.
    #[serde(default)]
    pub relabel_configs: Vec<RelabelConfig>,
    /// Relabeling of scraped series before storing.
    #[serde(default)]
    pub metric_relabel_configs: Vec<RelabelConfig>,
    /// Fixed targets.
    #[serde(default)]
    pub static_configs: Vec<StaticConfig>,
    /// Targets from JSON/YAML files.
    #[serde(default)]
    pub file_sd_configs: Vec<FileSdConfig>,
    /// Basic auth.
    #[serde(default)]
    pub basic_auth: Option<BasicAuthConfig>,
    /// Authorization header.
    #[serde(default)]
    pub authorization: Option<AuthorizationConfig>,
    /// Bearer token (Prometheus 2 form).
    #[serde(default)]
    pub bearer_token: Option<Secret>,
    /// Bearer token file (Prometheus 2 form).
    #[serde(default)]
    pub bearer_token_file: Option<String>,
    /// TLS settings.
    #[serde(default)]
    pub tls_config: Option<TlsConfig>,
    /// HTTP proxy.
    #[serde(default)]
    pub proxy_url: Option<String>,
    /// Follow redirects.
    #[serde(default = "default_true")]
    pub follow_redirects: bool,
    /// Accepted for compatibility (HTTP/1.1 is used).
    #[serde(default = "default_true")]
    pub enable_http2: bool,
    /// Resolved authentication (secret files read at load).
    #[serde(skip)]
    pub auth: ClientAuth,
    /// Resolved `tls_config` (certificate files read at load); `None` without one.
    #[serde(skip)]
    pub tls: Option<crate::http_client::TlsOptions>,

    #[serde(default, deserialize_with = "reject::oauth2")]
    #[allow(dead_code)]
    oauth2: Option<()>,
    #[serde(default, deserialize_with = "reject::kubernetes_sd_configs")]
    #[allow(dead_code)]
    kubernetes_sd_configs: Option<()>,
    #[serde(default, deserialize_with = "reject::consul_sd_configs")]
    #[allow(dead_code)]
    consul_sd_configs: Option<()>,
    #[serde(default, deserialize_with = "reject::dns_sd_configs")]
    #[allow(dead_code)]
    dns_sd_configs: Option<()>,
    #[serde(default, deserialize_with = "reject::ec2_sd_configs")]
    #[allow(dead_code)]
    ec2_sd_configs: Option<()>,
    #[serde(default, deserialize_with = "reject::gce_sd_configs")]
    #[allow(dead_code)]
    gce_sd_configs: Option<()>,
    #[serde(default, deserialize_with = "reject::azure_sd_configs")]
    #[allow(dead_code)]
    azure_sd_configs: Option<()>,
    #[serde(default, deserialize_with = "reject::http_sd_configs")]
    #[allow(dead_code)]
    http_sd_configs: Option<()>,
    #[serde(default, deserialize_with = "reject::docker_sd_configs")]
    #[allow(dead_code)]
    docker_sd_configs: Option<()>,
    #[serde(default, deserialize_with = "reject::dockerswarm_sd_configs")]
    #[allow(dead_code)]
    dockerswarm_sd_configs: Option<()>,
    #[serde(default, deserialize_with = "reject::openstack_sd_configs")]
    #[allow(dead_code)]
    openstack_sd_configs: Option<()>,
    #[serde(default, deserialize_with = "reject::nomad_sd_configs")]
    #[allow(dead_code)]
    nomad_sd_configs: Option<()>,
    #[serde(default, deserialize_with = "reject::ionos_sd_configs")]
    #[allow(dead_code)]
    ionos_sd_configs: Option<()>,
}

impl ScrapeConfig {
    /// The scrape interval (resolved at load).
    pub fn interval(&self) -> Duration {
        self.scrape_interval.unwrap_or(Duration::from_secs(60))
    }

    /// The scrape timeout (resolved at load).
    pub fn timeout(&self) -> Duration {
        self.scrape_timeout.unwrap_or(Duration::from_secs(10))
    }

    pub(super) fn raw_http(&self) -> RawHttpClient<'_> {
        RawHttpClient {
            basic_auth: self.basic_auth.as_ref(),
            authorization: self.authorization.as_ref(),
            bearer_token: self.bearer_token.as_ref(),
            bearer_token_file: self.bearer_token_file.as_deref(),
            tls_config: self.tls_config.as_ref(),
        }
    }
}

/// A group of fixed targets with common labels.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct StaticConfig {
    /// `host:port` addresses.
    #[serde(default)]
    pub targets: Vec<String>,
    /// Labels added to every target of the group.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// File-based discovery: JSON or YAML files holding lists of [`StaticConfig`].
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSdConfig {
    /// File paths or globs (relative paths are resolved against the config
    /// file's directory at load).
    pub files: Vec<String>,
    /// Re-read interval (default 5m); files are also watched for changes.
    #[serde(default = "default_refresh")]
    pub refresh_interval: Duration,
}

/// Whether `p` is a path file_sd accepts: a `.json`, `.yml` or `.yaml` file,
/// with an optional `*` only in the last path component (Prometheus's pattern
/// `^[^*]*(\*[^/]*)?\.(json|yml|yaml|JSON|YML|YAML)$`).
pub(super) fn valid_file_sd_path(p: &str) -> bool {
    let ext_ok = [".json", ".yml", ".yaml", ".JSON", ".YML", ".YAML"].iter().any(|e| p.ends_with(e));
    if !ext_ok {
        return false;
    }
    match p.find('*') {
        None => true,
        Some(i) => !p[i + 1..].contains('*') && !p[i..].contains('/'),
    }
}
