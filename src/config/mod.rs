//! The Prometheus configuration file, parsed strictly.
//!
//! Every section a Prometheus user writes for the features promlite has is
//! accepted as Prometheus accepts it (`global`, `scrape_configs`,
//! `rule_files`, `alerting`, `storage.tsdb`); unknown or misspelt fields are
//! errors with `file:line:column` and the field name; defaults are
//! Prometheus's. promlite's own settings live under `promlite:`.
//!
//! Sections Prometheus has but promlite does not implement:
//! - `remote_write`, `remote_read`, `tracing`, `otlp`, `runtime`, and
//!   `global.query_log_file` are *accepted and ignored with a warning* (see
//!   [`Config::warnings`]), so an existing `prometheus.yml` loads unchanged;
//!   the warning says plainly that nothing is forwarded.
//! - Service discovery other than `static_configs` and `file_sd_configs`,
//!   `oauth2` and `scrape_config_files` are *rejected* with their position,
//!   because accepting them would silently scrape nothing.

mod alerting;
mod http;
mod promlite;
mod scrape;
mod units;

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use alerting::{AlertingConfig, AlertmanagerConfig};
pub use http::{AuthorizationConfig, BasicAuthConfig, ClientAuth, Secret, TlsConfig};
pub use promlite::{PromliteConfig, QueryLimits, RemoteWriteLimits, StorageConfig, TsdbConfig};
pub use scrape::{FileSdConfig, ScrapeConfig, StaticConfig};
pub use units::{ByteSize, Duration, UnitError};

use crate::model::Labels;

/// The configuration used when no `--config.file` is given: scrape promlite's
/// own `/metrics` every 15s as job `promlite`. (The listen address is a flag,
/// not config. Bundled example rules are added once the rules issue lands.)
pub const DEFAULT_CONFIG: &str = "\
# promlite's embedded default configuration.
global:
  scrape_interval: 15s
  evaluation_interval: 15s

scrape_configs:
  - job_name: promlite
    static_configs:
      - targets: ['localhost:9090']
";

/// One problem with a configuration file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// YAML syntax, an unknown field, a wrong type or a bad value, with its position.
    #[error("{file}:{line}:{column}: {message}")]
    Syntax {
        /// The file.
        file: String,
        /// 1-based line.
        line: u64,
        /// 1-based column.
        column: u64,
        /// What is wrong (names the field for unknown fields).
        message: String,
    },
    /// A semantic rule broken (duplicate job, timeout above interval, ...).
    #[error("{file}: {context}: {message}")]
    Invalid {
        /// The file.
        file: String,
        /// Where in the config, e.g. `scrape_configs[job="node"]`.
        context: String,
        /// What is wrong.
        message: String,
    },
}

fn default_scrape_interval() -> Duration {
    Duration::from_secs(60)
}
fn default_eval_interval() -> Duration {
    Duration::from_secs(60)
}

/// `global:`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GlobalConfig {
    /// Default scrape interval (1m).
    #[serde(default = "default_scrape_interval")]
    pub scrape_interval: Duration,
    /// Default scrape timeout (10s, or the interval if shorter); resolved at load.
    #[serde(default)]
    pub scrape_timeout: Option<Duration>,
    /// Default rule evaluation interval (1m).
    #[serde(default = "default_eval_interval")]
    pub evaluation_interval: Duration,
    /// Default rule query offset (0s).
    #[serde(default)]
    pub rule_query_offset: Option<Duration>,
    /// Labels added to alerts sent to Alertmanager (and remote writes).
    #[serde(default)]
    pub external_labels: BTreeMap<String, String>,
    /// Accepted and ignored with a warning.
    #[serde(default)]
    pub query_log_file: Option<String>,
    /// Accepted and ignored with a warning.
    #[serde(default)]
    pub scrape_failure_log_file: Option<String>,
    /// Default for scrape configs' `body_size_limit`.
    #[serde(default)]
    pub body_size_limit: Option<ByteSize>,
    /// Default for `sample_limit`.
    #[serde(default)]
    pub sample_limit: Option<u64>,
    /// Default for `label_limit`.
    #[serde(default)]
    pub label_limit: Option<u64>,
    /// Default for `label_name_length_limit`.
    #[serde(default)]
    pub label_name_length_limit: Option<u64>,
    /// Default for `label_value_length_limit`.
    #[serde(default)]
    pub label_value_length_limit: Option<u64>,
    /// Default for `target_limit`.
    #[serde(default)]
    pub target_limit: Option<u64>,
    /// Default for `keep_dropped_targets`.
    #[serde(default)]
    pub keep_dropped_targets: Option<u64>,
    /// Default for `scrape_protocols`.
    #[serde(default)]
    pub scrape_protocols: Option<Vec<String>>,
    /// Accepted for compatibility (`utf8` or `legacy`).
    #[serde(default)]
    pub metric_name_validation_scheme: Option<String>,
    /// Accepted for compatibility.
    #[serde(default)]
    pub metric_name_escaping_scheme: Option<String>,
}

impl Default for GlobalConfig {
    fn default() -> Self {
        GlobalConfig {
            scrape_interval: default_scrape_interval(),
            scrape_timeout: Some(Duration::from_secs(10)),
            evaluation_interval: default_eval_interval(),
            rule_query_offset: None,
            external_labels: BTreeMap::new(),
            query_log_file: None,
            scrape_failure_log_file: None,
            body_size_limit: None,
            sample_limit: None,
            label_limit: None,
            label_name_length_limit: None,
            label_value_length_limit: None,
            target_limit: None,
            keep_dropped_targets: None,
            scrape_protocols: None,
            metric_name_validation_scheme: None,
            metric_name_escaping_scheme: None,
        }
    }
}

impl GlobalConfig {
    /// The resolved global scrape timeout.
    pub fn scrape_timeout(&self) -> Duration {
        self.scrape_timeout.unwrap_or(Duration::from_secs(10))
    }

    /// External labels as a label set.
    pub fn external_labels(&self) -> Labels {
        Labels::from_pairs(self.external_labels.iter())
    }
}

/// A whole configuration file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `global:`.
    #[serde(default)]
    pub global: GlobalConfig,
    /// Rule file globs as written (see [`Config::rule_file_paths`]).
    #[serde(default)]
    pub rule_files: Vec<String>,
    /// Scrape jobs.
    #[serde(default)]
    pub scrape_configs: Vec<ScrapeConfig>,
    /// `alerting:`.
    #[serde(default)]
    pub alerting: AlertingConfig,
    /// `storage:`.
    #[serde(default)]
    pub storage: StorageConfig,
    /// promlite's own settings.
    #[serde(default)]
    pub promlite: PromliteConfig,

    #[serde(default)]
    remote_write: Option<Vec<serde::de::IgnoredAny>>,
    #[serde(default)]
    remote_read: Option<Vec<serde::de::IgnoredAny>>,
    #[serde(default)]
    tracing: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    otlp: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    runtime: Option<serde::de::IgnoredAny>,
    #[serde(default, deserialize_with = "scrape::reject::scrape_config_files")]
    #[allow(dead_code)]
    scrape_config_files: Option<()>,

    /// The file this was loaded from (`None` for the embedded default).
    #[serde(skip)]
    pub source: Option<PathBuf>,
    /// The directory relative paths are resolved against.
    #[serde(skip)]
    pub base_dir: PathBuf,
    /// Things accepted but ignored, for the log and `check config`.
    #[serde(skip)]
    pub warnings: Vec<String>,
}

/// Whether a label name is valid in the legacy (pre-UTF-8) charset.
fn is_legacy_label_name(s: &str) -> bool {
    let mut b = s.bytes();
    matches!(b.next(), Some(c) if c == b'_' || c.is_ascii_alphabetic())
        && b.all(|c| c == b'_' || c.is_ascii_alphanumeric())
}

impl Config {
    /// Reads and validates a config file. Every error found is returned.
    pub fn load(path: &Path) -> Result<Config, Vec<ConfigError>> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| vec![ConfigError::Read { path: path.display().to_string(), source }])?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let mut cfg = Config::parse(&text, &path.display().to_string(), &base)?;
        cfg.source = Some(path.to_path_buf());
        Ok(cfg)
    }

    /// The embedded default configuration ([`DEFAULT_CONFIG`]).
    pub fn embedded_default() -> Result<Config, Vec<ConfigError>> {
        Config::parse(DEFAULT_CONFIG, "<embedded default config>", Path::new("."))
    }

    /// Parses and validates config text; `file` names it in errors and
    /// relative paths are resolved against `base_dir`.
    pub fn parse(text: &str, file: &str, base_dir: &Path) -> Result<Config, Vec<ConfigError>> {
        let only_comments = text.lines().all(|l| {
            let t = l.trim();
            t.is_empty() || t.starts_with('#') || t == "---"
        });
        let mut cfg: Config = if only_comments {
            Config::default()
        } else {
            serde_saphyr::from_str(text).map_err(|e| vec![syntax_error(file, &e)])?
        };
        cfg.base_dir = base_dir.to_path_buf();
        let errs = cfg.finish(file);
        if errs.is_empty() {
            Ok(cfg)
        } else {
            Err(errs)
        }
    }

    /// Fills in inherited defaults, reads secret files, resolves relative
    /// paths and checks every semantic rule, collecting all errors.
    fn finish(&mut self, file: &str) -> Vec<ConfigError> {
        let mut errs = Vec::new();
        let mut err = |context: String, message: String| {
            errs.push(ConfigError::Invalid { file: file.to_string(), context, message })
        };
        let base = self.base_dir.clone();

        // global (Prometheus's GlobalConfig.UnmarshalYAML)
        let g = &mut self.global;
        match g.scrape_timeout {
            Some(t) if t > g.scrape_interval => {
                err("global".into(), "global scrape timeout greater than scrape interval".into())
            }
            Some(_) => {}
            None => g.scrape_timeout = Some(Duration::from_secs(10).min(g.scrape_interval)),
        }
        for (n, v) in &g.external_labels {
            if !is_legacy_label_name(n) && n.is_empty() {
                err("global.external_labels".into(), format!("{n:?} is not a valid label name"));
            }
            if n == "__name__" {
                err("global.external_labels".into(), "\"__name__\" is not allowed as an external label".into());
            }
            if v.is_empty() {
                err("global.external_labels".into(), format!("label {n:?} has an empty value"));
            }
        }
        let global = g.clone();
        if global.query_log_file.is_some() {
            self.warnings.push("global.query_log_file is accepted but ignored: promlite has no query log".into());
        }
        if global.scrape_failure_log_file.is_some() {
            self.warnings.push("global.scrape_failure_log_file is accepted but ignored".into());
        }

        // rule_files: patterns must be valid globs.
        for p in &self.rule_files {
            if let Err(e) = glob::Pattern::new(p) {
                err("rule_files".into(), format!("invalid rule file path {p:?}: {e}"));
            }
        }

        // scrape_configs (Prometheus's ScrapeConfig.Validate)
        let mut jobs = HashSet::new();
        for (i, sc) in self.scrape_configs.iter_mut().enumerate() {
            let ctx = format!("scrape_configs[{i}] (job {:?})", sc.job_name);
            if sc.job_name.is_empty() {
                err(ctx.clone(), "job_name is empty".into());
            } else if !jobs.insert(sc.job_name.clone()) {
                err(ctx.clone(), format!("found multiple scrape configs with job name {:?}", sc.job_name));
            }
            if sc.scheme != "http" && sc.scheme != "https" {
                err(ctx.clone(), format!("invalid scheme {:?}: must be http or https", sc.scheme));
            }
            let interval = *sc.scrape_interval.get_or_insert(global.scrape_interval);
            match sc.scrape_timeout {
                Some(t) if t > interval => err(
                    ctx.clone(),
                    format!(
                        "scrape timeout greater than scrape interval for scrape config with job name {:?} ({t} > {interval})",
                        sc.job_name
                    ),
                ),
                Some(_) => {}
                None => sc.scrape_timeout = Some(global.scrape_timeout().min(interval)),
            }
            if interval.as_millis() == 0 {
                err(ctx.clone(), "scrape_interval must be greater than 0".into());
            }
            sc.body_size_limit = sc.body_size_limit.or(global.body_size_limit);
            sc.sample_limit = sc.sample_limit.or(global.sample_limit);
            sc.label_limit = sc.label_limit.or(global.label_limit);
            sc.label_name_length_limit = sc.label_name_length_limit.or(global.label_name_length_limit);
            sc.label_value_length_limit = sc.label_value_length_limit.or(global.label_value_length_limit);
            sc.target_limit = sc.target_limit.or(global.target_limit);
            sc.keep_dropped_targets = sc.keep_dropped_targets.or(global.keep_dropped_targets);
            if sc.scrape_protocols.is_none() {
                sc.scrape_protocols.clone_from(&global.scrape_protocols);
            }
            for p in sc.scrape_protocols.iter().flatten().chain(sc.fallback_scrape_protocol.iter()) {
                if !crate::scrape::protocol::is_known(p) {
                    err(
                        ctx.clone(),
                        format!(
                            "unknown scrape protocol {p:?}, supported: {}",
                            crate::scrape::protocol::NAMES.join(", ")
                        ),
                    );
                }
            }
            check_static(&sc.static_configs, &ctx, &mut err);
            resolve_file_sd(&mut sc.file_sd_configs, &base, &ctx, &mut err);
            match sc.raw_http().resolve(&base) {
                Ok(a) => sc.auth = a,
                Err(es) => es.into_iter().for_each(|m| err(ctx.clone(), m)),
            }
            match sc.raw_http().resolve_tls(&base, &sc.scheme) {
                Ok((tls, warnings)) => {
                    sc.tls = tls;
                    self.warnings.extend(warnings.into_iter().map(|w| format!("{ctx}: {w}")));
                }
                Err(es) => es.into_iter().for_each(|m| err(ctx.clone(), m)),
            }
        }

        // alerting
        for (i, am) in self.alerting.alertmanagers.iter_mut().enumerate() {
            let ctx = format!("alerting.alertmanagers[{i}]");
            if am.api_version != "v2" {
                err(
                    ctx.clone(),
                    format!("expected Alertmanager api version to be one of [v2] but got {:?}", am.api_version),
                );
            }
            if am.scheme != "http" && am.scheme != "https" {
                err(ctx.clone(), format!("invalid scheme {:?}: must be http or https", am.scheme));
            }
            check_static(&am.static_configs, &ctx, &mut err);
            resolve_file_sd(&mut am.file_sd_configs, &base, &ctx, &mut err);
            match am.raw_http().resolve(&base) {
                Ok(a) => am.auth = a,
                Err(es) => es.into_iter().for_each(|m| err(ctx.clone(), m)),
            }
            match am.raw_http().resolve_tls(&base, &am.scheme) {
                Ok((tls, warnings)) => {
                    am.tls = tls;
                    self.warnings.extend(warnings.into_iter().map(|w| format!("{ctx}: {w}")));
                }
                Err(es) => es.into_iter().for_each(|m| err(ctx.clone(), m)),
            }
        }

        if let Some(rw) = &self.remote_write {
            self.warnings.push(format!(
                "remote_write: {} endpoint(s) configured, but promlite does not forward samples yet; they are NOT sent anywhere",
                rw.len()
            ));
        }
        if self.remote_read.is_some() {
            self.warnings.push("remote_read is accepted but ignored".into());
        }
        for (name, set) in
            [("tracing", self.tracing.is_some()), ("otlp", self.otlp.is_some()), ("runtime", self.runtime.is_some())]
        {
            if set {
                self.warnings.push(format!("{name} is accepted but ignored"));
            }
        }
        errs.extend(self.promlite.validate(file));
        errs
    }

    /// Warnings about settings accepted but not acted on.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// The rule files: each glob resolved against the config's directory,
    /// expanded, sorted and deduplicated (a pattern that matches nothing adds nothing, as in Prometheus).
    pub fn rule_file_paths(&self) -> Result<Vec<PathBuf>, ConfigError> {
        let mut out = Vec::new();
        for p in &self.rule_files {
            out.extend(self.expand_rule_glob(p)?);
        }
        out.sort();
        out.dedup();
        Ok(out)
    }

    fn expand_rule_glob(&self, p: &str) -> Result<Vec<PathBuf>, ConfigError> {
        let full = self.base_dir.join(p);
        let file = self.source.as_ref().map_or_else(|| "<config>".to_string(), |s| s.display().to_string());
        let bad = |m: String| ConfigError::Invalid { file: file.clone(), context: "rule_files".into(), message: m };
        let pattern = full.to_str().ok_or_else(|| bad(format!("rule file path {p:?} is not UTF-8")))?;
        let paths = glob::glob(pattern).map_err(|e| bad(format!("invalid rule file path {p:?}: {e}")))?;
        let mut out = Vec::new();
        for entry in paths {
            let path = entry.map_err(|e| bad(format!("reading {p:?}: {e}")))?;
            if path.is_file() {
                out.push(path);
            }
        }
        Ok(out)
    }

    /// A scrape config by job name.
    pub fn scrape_config(&self, job: &str) -> Option<&ScrapeConfig> {
        self.scrape_configs.iter().find(|s| s.job_name == job)
    }

    /// A human summary of what was found, for `promlite check config`.
    pub fn summary(&self) -> String {
        let mut s = String::new();
        let g = &self.global;
        let name =
            self.source.as_ref().map_or_else(|| "<embedded default config>".to_string(), |p| p.display().to_string());
        let _ = writeln!(s, "{name}: SUCCESS");
        let _ = writeln!(
            s,
            "  global: scrape_interval {}, scrape_timeout {}, evaluation_interval {}, external_labels {}",
            g.scrape_interval,
            g.scrape_timeout(),
            g.evaluation_interval,
            g.external_labels()
        );
        let _ = writeln!(s, "  scrape_configs: {} job(s)", self.scrape_configs.len());
        for sc in &self.scrape_configs {
            let targets: usize = sc.static_configs.iter().map(|c| c.targets.len()).sum();
            let files: usize = sc.file_sd_configs.iter().map(|c| c.files.len()).sum();
            let _ = writeln!(
                s,
                "    - job {:?}: every {} (timeout {}), {}://<target>{}, {} static target(s), {} file_sd path(s), {} relabel / {} metric_relabel rule(s), auth {}",
                sc.job_name,
                sc.interval(),
                sc.timeout(),
                sc.scheme,
                sc.metrics_path,
                targets,
                files,
                sc.relabel_configs.len(),
                sc.metric_relabel_configs.len(),
                match sc.auth {
                    ClientAuth::None => "none",
                    ClientAuth::Basic { .. } => "basic",
                    ClientAuth::Header { .. } => "authorization header",
                }
            );
        }
        let _ = writeln!(s, "  rule_files: {} pattern(s)", self.rule_files.len());
        for p in &self.rule_files {
            match self.expand_rule_glob(p) {
                Ok(files) if files.is_empty() => {
                    let _ = writeln!(s, "    - {p}: matches no file");
                }
                Ok(files) => {
                    let list: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
                    let _ = writeln!(s, "    - {p}: {}", list.join(", "));
                }
                Err(e) => {
                    let _ = writeln!(s, "    - {p}: {e}");
                }
            }
        }
        let ams: usize =
            self.alerting.alertmanagers.iter().flat_map(|a| &a.static_configs).map(|c| c.targets.len()).sum();
        let _ = writeln!(
            s,
            "  alerting: {} alertmanager group(s), {} static alertmanager(s), {} alert_relabel_configs",
            self.alerting.alertmanagers.len(),
            ams,
            self.alerting.alert_relabel_configs.len()
        );
        let _ = writeln!(s, "  storage.tsdb.out_of_order_time_window: {}", self.storage.out_of_order_time_window());
        if !self.warnings.is_empty() {
            let _ = writeln!(s, "  warnings:");
            for w in &self.warnings {
                let _ = writeln!(s, "    - {w}");
            }
        }
        s
    }
}

fn check_static(groups: &[StaticConfig], ctx: &str, err: &mut impl FnMut(String, String)) {
    for g in groups {
        for t in &g.targets {
            if t.contains('/') {
                err(ctx.to_string(), format!("{t:?} is not a valid hostname"));
            } else if t.is_empty() {
                err(ctx.to_string(), "empty target address".into());
            }
        }
        for n in g.labels.keys() {
            if n.is_empty() {
                err(ctx.to_string(), format!("{n:?} is not a valid label name"));
            }
        }
    }
}

fn resolve_file_sd(sds: &mut [FileSdConfig], base: &Path, ctx: &str, err: &mut impl FnMut(String, String)) {
    for sd in sds {
        for f in &mut sd.files {
            if !scrape::valid_file_sd_path(f) {
                err(ctx.to_string(), format!("path name {f:?} is not valid for file discovery"));
            }
            let p = base.join(&*f);
            *f = p.display().to_string();
        }
    }
}

/// A YAML decoding error as `(line, column, message)`: 1-based position (0
/// when unknown) and the message without the position the crate appends.
pub(crate) fn yaml_error_parts(e: &serde_saphyr::Error) -> (u64, u64, String) {
    let (line, column) = e.location().map_or((0, 0), |l| (l.line(), l.column()));
    let message = e.without_snippet().to_string();
    // The rendered message repeats the position; keep only the first line
    // without its " at line N, column M" tail, since ours leads the line.
    let first = message.lines().next().unwrap_or("");
    let message = match first.rfind(" at line ") {
        Some(i) => first[..i].to_string(),
        None => first.to_string(),
    };
    (line, column, message)
}

fn syntax_error(file: &str, e: &serde_saphyr::Error) -> ConfigError {
    let (line, column, message) = yaml_error_parts(e);
    ConfigError::Syntax { file: file.to_string(), line, column, message }
}

/// Validates the config file at `path` for `promlite check config`: the
/// summary of what it holds, or every error found.
pub fn check(path: &Path) -> Result<String, Vec<ConfigError>> {
    let cfg = Config::load(path)?;
    let mut errs = Vec::new();
    if let Err(e) = cfg.rule_file_paths() {
        errs.push(e);
    }
    if errs.is_empty() {
        Ok(cfg.summary())
    } else {
        Err(errs)
    }
}

#[cfg(test)]
mod tests;
