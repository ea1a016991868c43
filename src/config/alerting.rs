//! The `alerting` section: Alertmanager endpoints and alert relabeling.

use serde::Deserialize;

use super::http::{AuthorizationConfig, BasicAuthConfig, ClientAuth, RawHttpClient, Secret, TlsConfig};
use super::scrape::{reject, FileSdConfig, StaticConfig};
use super::units::Duration;
use crate::relabel::RelabelConfig;

fn default_true() -> bool {
    true
}
fn default_scheme() -> String {
    "http".into()
}
fn default_path_prefix() -> String {
    "/".into()
}
fn default_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_api_version() -> String {
    "v2".into()
}

/// `alerting:`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertingConfig {
    /// Relabeling applied to every alert before it is sent.
    #[serde(default)]
    pub alert_relabel_configs: Vec<RelabelConfig>,
    /// Alertmanager groups.
    #[serde(default)]
    pub alertmanagers: Vec<AlertmanagerConfig>,
}

/// One group of Alertmanagers sharing settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertmanagerConfig {
    /// `http` or `https`.
    #[serde(default = "default_scheme")]
    pub scheme: String,
    /// Prefix before `/api/v2/alerts`.
    #[serde(default = "default_path_prefix")]
    pub path_prefix: String,
    /// Per-request timeout.
    #[serde(default = "default_timeout")]
    pub timeout: Duration,
    /// Alertmanager API version; only `v2` exists in Prometheus 3.
    #[serde(default = "default_api_version")]
    pub api_version: String,
    /// Fixed Alertmanager addresses.
    #[serde(default)]
    pub static_configs: Vec<StaticConfig>,
    /// Alertmanager addresses from files.
    #[serde(default)]
    pub file_sd_configs: Vec<FileSdConfig>,
    /// Relabeling of discovered Alertmanagers.
    #[serde(default)]
    pub relabel_configs: Vec<RelabelConfig>,
    /// Relabeling of alerts for this group only.
    #[serde(default)]
    pub alert_relabel_configs: Vec<RelabelConfig>,
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
    /// Accepted for compatibility.
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
    #[serde(default, deserialize_with = "reject::http_sd_configs")]
    #[allow(dead_code)]
    http_sd_configs: Option<()>,
}

impl AlertmanagerConfig {
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
