//! Alerting and recording rules: rule files, validation, group scheduling,
//! the alert state machine, restore after restart and the rules/alerts API.
//!
//! `rules` sees the PromQL engine, the template engine and the notifier only
//! through the traits in [`seams`]; `app` plugs the real ones in.

pub mod alerting;
pub mod api;
pub mod cache;
pub mod file;
pub mod group;
pub mod http;
pub mod manager;
pub mod restore;
pub mod schedule;
pub mod seams;
pub mod testing;
pub mod validate;

pub use manager::{EvalObserver, EvalObserverHandle, Manager, ManagerDeps, ManagerOptions};
pub use seams::{Alert, AlertSink, QuerySample, RuleExpr, RuleQuerier, TemplateData, TemplateExpander};
pub use validate::{check, expand_rule_files, CheckReport, GroupSpec, Problem, RuleKind, RuleSpec};

/// The bundled self-monitoring rules (`testdata/rules/self.yml`), for the
/// embedded default configuration.
pub const SELF_MONITORING_RULES: &str = include_str!("../../testdata/rules/self.yml");
