//! The adapters that plug one stage into another's seam: the PromQL engine
//! into rules and templates, the template engine into rules, the notifier into
//! rules, and config sections into the stages' own option types.

use std::any::Any;
use std::sync::Arc;

use crate::config::{self, Config};
use crate::model::Labels;
use crate::notify::{self, AlertRelabel, Notifier};
use crate::promql::{self, Engine, QueryValue};
use crate::rules::{self, QuerySample, RuleExpr};
use crate::storage::Queryable;
use crate::template::{self, Template, TemplateQuerier};

/// Runs rule expressions on the PromQL engine, planning each once.
pub struct EngineRuleQuerier {
    engine: Engine,
}

impl EngineRuleQuerier {
    /// Wraps `engine`.
    pub fn new(engine: Engine) -> Self {
        EngineRuleQuerier { engine }
    }
}

type CachedPlan = Result<promql::Plan, String>;

/// Turns an instant query's value into the rule engine's vector; Prometheus
/// accepts only vectors and scalars as rule results.
fn to_samples(v: QueryValue) -> Result<Vec<QuerySample>, String> {
    match v {
        QueryValue::Vector(samples) => Ok(samples.into_iter().map(|s| (s.labels, s.v)).collect()),
        QueryValue::Scalar { v, .. } => Ok(vec![(Labels::empty(), v)]),
        other => Err(format!("rule result is not a vector or scalar but {}", other.type_name())),
    }
}

impl rules::RuleQuerier for EngineRuleQuerier {
    fn instant(&self, expr: &RuleExpr, ts_ms: i64, storage: &dyn Queryable) -> Result<Vec<QuerySample>, String> {
        let slot = expr.plan.get_or_init(|| {
            let plan: CachedPlan = promql::parse(&expr.text).map_err(|e| e.0);
            Arc::new(plan) as Arc<dyn Any + Send + Sync>
        });
        let plan = slot.downcast_ref::<CachedPlan>().ok_or("internal: foreign plan in rule slot")?;
        let plan = plan.as_ref().map_err(Clone::clone)?;
        let value = self.engine.instant(storage, plan, ts_ms).map_err(|e| e.to_string())?;
        to_samples(value)
    }
}

/// The `query` template function, run on the engine against one storage.
struct TemplateQueries<'a> {
    engine: &'a Engine,
    storage: &'a dyn Queryable,
}

impl TemplateQuerier for TemplateQueries<'_> {
    fn query(&self, q: &str, ts_ms: i64) -> Result<Vec<(Labels, f64)>, String> {
        let v = self.engine.instant_query(self.storage, q, ts_ms).map_err(|e| e.to_string())?;
        to_samples(v)
    }
}

/// Go text/template expansion for alert labels and annotations, with `query`.
pub struct GoTemplates {
    engine: Engine,
    storage: Arc<dyn Queryable>,
}

impl GoTemplates {
    /// Templates whose `query` function reads `storage` through `engine`.
    pub fn new(engine: Engine, storage: Arc<dyn Queryable>) -> Self {
        GoTemplates { engine, storage }
    }
}

impl rules::TemplateExpander for GoTemplates {
    fn expand(&self, name: &str, text: &str, data: &rules::TemplateData<'_>) -> Result<String, String> {
        let t = Template::parse(name, text).map_err(|e| e.annotation_text())?;
        let tdata = template::TemplateData {
            labels: data.labels,
            external_labels: data.external_labels,
            external_url: data.external_url,
            value: data.value,
        };
        let q = TemplateQueries { engine: &self.engine, storage: self.storage.as_ref() };
        t.execute(&tdata, Some(&q), data.ts_ms).map_err(|e| e.annotation_text())
    }

    fn check(&self, text: &str) -> Result<(), String> {
        template::check(text).map_err(|e| e.go_error())
    }
}

/// Template checking without a storage, for `promlite check rules`.
pub struct CheckOnlyTemplates;

impl rules::TemplateExpander for CheckOnlyTemplates {
    fn expand(&self, name: &str, text: &str, data: &rules::TemplateData<'_>) -> Result<String, String> {
        let tdata = template::TemplateData {
            labels: data.labels,
            external_labels: data.external_labels,
            external_url: data.external_url,
            value: data.value,
        };
        template::expand(name, text, &tdata)
    }

    fn check(&self, text: &str) -> Result<(), String> {
        template::check(text).map_err(|e| e.go_error())
    }
}

/// Hands the rule engine's alerts to the notifier.
pub struct NotifierSink(pub Arc<Notifier>);

impl rules::AlertSink for NotifierSink {
    fn send(&self, alerts: Vec<rules::Alert>) {
        self.0.send(
            alerts
                .into_iter()
                .map(|a| notify::Alert {
                    labels: a.labels,
                    annotations: a.annotations,
                    starts_at_ms: Some(a.starts_at),
                    ends_at_ms: Some(a.ends_at),
                    generator_url: a.generator_url,
                })
                .collect(),
        );
    }
}

fn relabel_fn(cfgs: &[crate::relabel::RelabelConfig]) -> Option<AlertRelabel> {
    if cfgs.is_empty() {
        return None;
    }
    let cfgs = cfgs.to_vec();
    Some(Arc::new(move |l: &Labels| crate::relabel::process(l, &cfgs)))
}

fn auth(a: &config::ClientAuth) -> notify::Auth {
    match a {
        config::ClientAuth::None => notify::Auth::None,
        config::ClientAuth::Basic { username, password } => notify::Auth::Basic {
            username: username.clone(),
            password: notify::Secret::Inline(password.expose().to_string()),
        },
        config::ClientAuth::Header { scheme, credentials } => notify::Auth::Authorization {
            scheme: scheme.clone(),
            credentials: notify::Secret::Inline(credentials.expose().to_string()),
        },
    }
}

/// The Alertmanagers of `alerting.alertmanagers` (static targets).
pub fn alertmanagers(cfg: &Config) -> Vec<notify::AlertmanagerConfig> {
    let mut out = Vec::new();
    for am in &cfg.alerting.alertmanagers {
        for sc in &am.static_configs {
            for host in &sc.targets {
                out.push(notify::AlertmanagerConfig {
                    scheme: am.scheme.clone(),
                    host: host.clone(),
                    path_prefix: am.path_prefix.clone(),
                    timeout: am.timeout.to_std(),
                    auth: auth(&am.auth),
                    relabel: relabel_fn(&am.alert_relabel_configs),
                    tls: am.tls.clone(),
                });
            }
        }
    }
    out
}

/// The notifier's options from the config and flags.
///
/// A failed batch blocks its Alertmanager's queue while it is retried, so the
/// retry backoff is capped at the resend delay: once an Alertmanager is back,
/// a firing alert reaches it within one resend delay, as with Prometheus
/// (which does not retry and relies on the resend alone).
pub fn notifier_options(
    cfg: &Config,
    queue_capacity: usize,
    resend_delay: std::time::Duration,
) -> notify::NotifierOptions {
    let d = notify::NotifierOptions::default();
    notify::NotifierOptions {
        queue_capacity,
        external_labels: cfg.global.external_labels(),
        relabel: relabel_fn(&cfg.alerting.alert_relabel_configs),
        retry_max_backoff: d.retry_max_backoff.min(resend_delay.max(d.retry_initial_backoff)),
        ..d
    }
}

/// The remote_write receiver's limits from `promlite.remote_write`.
pub fn ingest_limits(cfg: &Config) -> crate::ingest::Limits {
    let l = &cfg.promlite.remote_write;
    crate::ingest::Limits {
        body_bytes: l.max_body_bytes.0 as usize,
        decompressed_bytes: l.max_decompressed_bytes.0 as usize,
        series_per_request: l.max_series_per_request as usize,
        labels_per_series: l.max_labels_per_series as usize,
        label_name_bytes: l.max_label_name_length as usize,
        label_value_bytes: l.max_label_value_length as usize,
        ..crate::ingest::Limits::default()
    }
}
