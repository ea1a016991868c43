//! The narrow interfaces the rule engine is written against.
//!
//! `rules` evaluates expressions, expands templates and hands alerts on
//! through these traits, so the PromQL engine (`crate::promql`), the template
//! engine (`crate::template`) and the notifier (`crate::notify`) plug in at
//! wiring time, and tests can script them.
//!
//! # What the PromQL engine must do ([`RuleQuerier`])
//! * Evaluate [`RuleExpr`] at one instant against the `&dyn Queryable` passed in
//!   **for that call**, never against a storage handle of its own: during a
//!   group evaluation rules pass a [`super::cache::GroupQueryable`], which reads
//!   each selection (matchers, time range) from storage once per group
//!   evaluation and serves later rules from memory (work sharing). Recording
//!   rules' results appended earlier in the same evaluation are visible because
//!   the cache drops entries a recording rule could have changed.
//! * Keep its compiled plan in [`RuleExpr::plan`] (a type-erased slot filled on
//!   first use) so each expression is planned once, not per evaluation.
//! * Return a vector, or a scalar as one sample with empty labels. Anything
//!   else is an error (Prometheus: "rule result is not a vector or scalar").

use std::any::Any;
use std::fmt;
use std::sync::{Arc, OnceLock};

use crate::model::Labels;
use crate::storage::Queryable;

/// A rule's expression: its text, parsed once at load, plus a slot in which
/// the engine keeps its own compiled plan.
pub struct RuleExpr {
    /// The expression as written in the rule file.
    pub text: String,
    /// The parse tree from `promql-parser`.
    pub parsed: promql_parser::parser::Expr,
    /// The engine's compiled plan, filled on first evaluation.
    pub plan: OnceLock<Arc<dyn Any + Send + Sync>>,
}

impl RuleExpr {
    /// Parses `text`; the error is the parser's message.
    pub fn parse(text: &str) -> Result<Self, String> {
        let parsed = promql_parser::parser::parse(text)?;
        Ok(RuleExpr { text: text.to_string(), parsed, plan: OnceLock::new() })
    }
}

impl fmt::Debug for RuleExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("RuleExpr").field(&self.text).finish()
    }
}

/// One element of an instant query's result.
pub type QuerySample = (Labels, f64);

/// Evaluates rule expressions (implemented by the PromQL engine).
pub trait RuleQuerier: Send + Sync {
    /// The value of `expr` at `ts_ms`, read through `storage`: a vector, or a
    /// scalar as one sample with empty labels. The error text ends up in the
    /// rule's `lastError`.
    fn instant(&self, expr: &RuleExpr, ts_ms: i64, storage: &dyn Queryable) -> Result<Vec<QuerySample>, String>;
}

/// What a label or annotation template sees.
#[derive(Debug, Clone, Copy)]
pub struct TemplateData<'a> {
    /// The alert's labels (`$labels`, `.Labels`): the query result's labels,
    /// without `__name__`.
    pub labels: &'a Labels,
    /// `$externalLabels`, `.ExternalLabels`.
    pub external_labels: &'a Labels,
    /// `$externalURL`, `.ExternalURL`.
    pub external_url: &'a str,
    /// `$value`, `.Value`.
    pub value: f64,
    /// Evaluation time in milliseconds (for `query` inside templates).
    pub ts_ms: i64,
}

/// Expands Go text/template strings as Prometheus does for alert labels and
/// annotations (implemented by `crate::template`).
pub trait TemplateExpander: Send + Sync {
    /// Expands `text`; `name` identifies the template in error messages
    /// (Prometheus uses `__alert_<alertname>`).
    fn expand(&self, name: &str, text: &str, data: &TemplateData<'_>) -> Result<String, String>;

    /// Checks that `text` parses, without running it.
    fn check(&self, text: &str) -> Result<(), String>;
}

/// An alert as handed to the notifier.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    /// Labels, with `alertname` (external labels are the notifier's job).
    pub labels: Labels,
    /// Expanded annotations, sorted by name.
    pub annotations: Labels,
    /// When the alert became active, milliseconds.
    pub starts_at: i64,
    /// When it ended (resolved) or, while firing, a time in the future after
    /// which Alertmanager may consider it resolved, milliseconds.
    pub ends_at: i64,
    /// A link back to the rule's expression (may be empty).
    pub generator_url: String,
}

/// Receives alerts to deliver (implemented by `crate::notify`). Must not block:
/// the notifier queues and sends on its own task.
pub trait AlertSink: Send + Sync {
    /// Queues `alerts` for delivery.
    fn send(&self, alerts: Vec<Alert>);
}

/// An [`AlertSink`] that drops everything (no Alertmanager configured).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoopSink;

impl AlertSink for NoopSink {
    fn send(&self, _alerts: Vec<Alert>) {}
}
