//! One rule group's evaluation at one timestamp: rules in order, recording
//! results appended and visible to later rules, alert state advanced,
//! `ALERTS`/`ALERTS_FOR_STATE` written, stale markers for series that ended,
//! alerts handed to the notifier. Takes the evaluation time as an argument.
//!
//! Follows Prometheus's `Group.Eval` (rules/group.go).

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::model::{Labels, LabelsBuilder, METRIC_NAME, STALE_NAN};
use crate::storage::{Appendable, Queryable};

use super::alerting::{
    dur_ms, series_labels, AlertEvalError, AlertState, AlertingRule, TemplateEnv, ALERTS_FOR_STATE_METRIC,
    ALERTS_METRIC,
};
use super::cache::{CacheStats, GroupQueryable};
use super::restore::{self, RestoreOutcome, SavedGroup};
use super::seams::{AlertSink, RuleQuerier, TemplateExpander};
use super::validate::{GroupSpec, RuleKind, RuleSpec};

/// A rule's health as the API reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// Not evaluated yet.
    Unknown,
    /// Last evaluation succeeded.
    Ok,
    /// Last evaluation failed.
    Err,
}

impl Health {
    /// `unknown`, `ok` or `err`.
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Unknown => "unknown",
            Health::Ok => "ok",
            Health::Err => "err",
        }
    }
}

/// The last evaluation of one rule.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleStatus {
    /// Health.
    pub health: Health,
    /// The last error, when unhealthy.
    pub last_error: Option<String>,
    /// Evaluation timestamp of the last evaluation (ms), 0 before the first.
    pub last_eval_ms: i64,
    /// How long it took.
    pub eval_duration: Duration,
}

/// A rule inside a group.
#[derive(Debug)]
pub enum Rule {
    /// `record:`.
    Recording(RuleSpec),
    /// `alert:`.
    Alerting(AlertingRule),
}

impl Rule {
    /// The rule's definition.
    pub fn spec(&self) -> &RuleSpec {
        match self {
            Rule::Recording(s) => s,
            Rule::Alerting(a) => &a.spec,
        }
    }
}

/// A rule plus its bookkeeping.
#[derive(Debug)]
pub struct RuleSlot {
    /// The rule.
    pub rule: Rule,
    /// Its last evaluation.
    pub status: RuleStatus,
    /// Series it wrote at the previous evaluation (for stale markers).
    prev_series: HashSet<Labels>,
}

/// Per-group counters, shared with the metrics endpoint.
#[derive(Debug, Default)]
pub struct GroupMetrics {
    /// Seconds the last evaluation took (f64 bits).
    last_duration_bits: AtomicU64,
    /// Timestamp of the last evaluation, ms.
    last_eval_ms: AtomicU64,
    /// Evaluations done.
    pub evaluations: AtomicU64,
    /// Iterations skipped because an evaluation overran its interval.
    pub iterations_missed: AtomicU64,
    /// Rule evaluations that failed.
    pub rule_failures: AtomicU64,
    /// Samples a rule wrote that storage refused (out of order, duplicates).
    pub append_failures: AtomicU64,
}

impl GroupMetrics {
    /// Seconds the last evaluation took.
    pub fn last_duration_seconds(&self) -> f64 {
        f64::from_bits(self.last_duration_bits.load(Ordering::Relaxed))
    }

    /// Unix seconds of the last evaluation (0 before the first).
    pub fn last_evaluation_seconds(&self) -> f64 {
        self.last_eval_ms.load(Ordering::Relaxed) as f64 / 1000.0
    }
}

/// What evaluation needs from the rest of promlite.
#[derive(Clone, Copy)]
pub struct EvalDeps<'a> {
    /// Evaluates expressions.
    pub querier: &'a dyn RuleQuerier,
    /// Storage to read.
    pub queryable: &'a dyn Queryable,
    /// Storage to write recording results and `ALERTS` series to.
    pub appendable: &'a dyn Appendable,
    /// Template engine.
    pub templates: &'a dyn TemplateExpander,
    /// Notifier.
    pub sink: &'a dyn AlertSink,
    /// External labels (for templates).
    pub external_labels: &'a Labels,
    /// External URL (templates and generator URLs).
    pub external_url: &'a str,
    /// `--rules.alert.resend-delay` in ms.
    pub resend_delay_ms: i64,
}

/// A loaded group with its rules' state.
#[derive(Debug)]
pub struct Group {
    /// The file it came from.
    pub file: String,
    /// Its name.
    pub name: String,
    /// Evaluation interval, ms.
    pub interval_ms: i64,
    /// Query offset, ms.
    pub query_offset_ms: i64,
    /// `limit` (0 = none).
    pub limit: usize,
    /// The rules in order.
    pub rules: Vec<RuleSlot>,
    /// Counters.
    pub metrics: Arc<GroupMetrics>,
    /// Timestamp of the last evaluation, ms (0 before the first).
    pub last_eval_ms: i64,
    /// Duration of the last evaluation.
    pub last_duration: Duration,
    /// Work shared by the last evaluation.
    pub last_cache_stats: CacheStats,
    /// State saved before a restart, applied at the first evaluation.
    pending_restore: Option<(SavedGroup, i64)>,
}

impl Group {
    /// A group from its spec, with the global defaults for what it leaves out.
    pub fn new(spec: GroupSpec, default_interval: Duration, default_query_offset: Duration) -> Self {
        let rules = spec
            .rules
            .into_iter()
            .map(|r| RuleSlot {
                rule: match r.kind {
                    RuleKind::Recording => Rule::Recording(r),
                    RuleKind::Alerting => Rule::Alerting(AlertingRule::new(r)),
                },
                status: RuleStatus {
                    health: Health::Unknown,
                    last_error: None,
                    last_eval_ms: 0,
                    eval_duration: Duration::ZERO,
                },
                prev_series: HashSet::new(),
            })
            .collect();
        Group {
            file: spec.file,
            name: spec.name,
            interval_ms: dur_ms(spec.interval.unwrap_or(default_interval)).max(1),
            query_offset_ms: dur_ms(spec.query_offset.unwrap_or(default_query_offset)),
            limit: spec.limit,
            rules,
            metrics: Arc::new(GroupMetrics::default()),
            last_eval_ms: 0,
            last_duration: Duration::ZERO,
            last_cache_stats: CacheStats::default(),
            pending_restore: None,
        }
    }

    /// Arms restore: the first evaluation adopts `saved` alert state unless
    /// the gap since it was saved exceeds `max_gap_ms` (see [`super::restore`]).
    pub fn set_restore(&mut self, saved: SavedGroup, max_gap_ms: i64) {
        self.pending_restore = Some((saved, max_gap_ms));
    }

    /// Takes over alert state and series bookkeeping from the same group
    /// before a reload, for rules with the same name, kind and expression.
    pub fn inherit(&mut self, old: Group) {
        let mut old_rules: Vec<Option<RuleSlot>> = old.rules.into_iter().map(Some).collect();
        for slot in &mut self.rules {
            let found = old_rules.iter_mut().find(|o| {
                o.as_ref().is_some_and(|o| {
                    let (a, b) = (o.rule.spec(), slot.rule.spec());
                    a.name == b.name && a.kind == b.kind && a.expr.text == b.expr.text
                })
            });
            if let Some(o) = found.and_then(Option::take) {
                slot.prev_series = o.prev_series;
                slot.status = o.status;
                if let (Rule::Alerting(new), Rule::Alerting(old)) = (&mut slot.rule, o.rule) {
                    new.active = old.active;
                }
            }
        }
        self.metrics = old.metrics;
        self.last_eval_ms = old.last_eval_ms;
        self.last_duration = old.last_duration;
    }

    /// Stale markers for every series this group wrote at its last evaluation
    /// (when the group is removed), at `ts`.
    pub fn mark_all_stale(&mut self, appendable: &dyn Appendable, ts: i64) {
        let mut app = appendable.appender();
        for slot in &mut self.rules {
            for l in slot.prev_series.drain() {
                let _ = app.append(&l, ts, STALE_NAN);
            }
        }
        if let Err(e) = app.commit() {
            tracing::warn!(group = %self.name, error = %e, "writing stale markers failed");
        }
    }

    /// Evaluates every rule at `ts` (ms), in order.
    pub fn eval(&mut self, ts: i64, deps: &EvalDeps<'_>) {
        let started = Instant::now();
        let cache = GroupQueryable::new(deps.queryable);
        let query_ts = ts - self.query_offset_ms;
        let env = TemplateEnv {
            expander: deps.templates,
            external_labels: deps.external_labels,
            external_url: deps.external_url,
        };
        let restore = self.pending_restore.take();
        for slot in &mut self.rules {
            let rule_started = Instant::now();
            let spec = slot.rule.spec();
            let result = deps.querier.instant(&spec.expr, query_ts, &cache);
            let written: Result<Vec<(Labels, f64)>, String> = match (&mut slot.rule, result) {
                (_, Err(e)) => Err(e),
                (Rule::Recording(spec), Ok(res)) => record(spec, res, self.limit),
                (Rule::Alerting(ar), Ok(res)) => {
                    let outcomes = match &restore {
                        Some((saved, max_gap)) => restore::apply(ar, saved, ts, *max_gap),
                        None => Vec::new(),
                    };
                    // Series the restored alerts had before the restart: if this
                    // evaluation does not write them again they get stale markers.
                    for (labels, o) in &outcomes {
                        if let (RestoreOutcome::Restored(st), Some(a)) = (o, ar.active.get(labels)) {
                            if *st != AlertState::Inactive {
                                slot.prev_series.insert(series_labels(&a.labels, ALERTS_METRIC, Some(*st)));
                                slot.prev_series.insert(series_labels(&a.labels, ALERTS_FOR_STATE_METRIC, None));
                            }
                        }
                    }
                    let r = ar.eval(res, ts, self.limit, &env).map_err(|e: AlertEvalError| e.to_string());
                    log_restore(&self.file, &self.name, ar, &outcomes, ts);
                    r
                }
            };
            match written {
                Ok(series) => {
                    let mut app = deps.appendable.appender();
                    let mut now_series = HashSet::with_capacity(series.len());
                    let mut names: Vec<&str> = Vec::new();
                    for (l, v) in &series {
                        if app.append(l, query_ts, *v).is_err() {
                            self.metrics.append_failures.fetch_add(1, Ordering::Relaxed);
                        }
                        if let Some(n) = l.metric_name() {
                            if !names.contains(&n) {
                                names.push(n);
                            }
                        }
                        now_series.insert(l.clone());
                    }
                    for gone in slot.prev_series.difference(&now_series) {
                        let _ = app.append(gone, query_ts, STALE_NAN);
                    }
                    match app.commit() {
                        Ok(()) => {
                            for n in names {
                                cache.invalidate_metric(n);
                            }
                            slot.prev_series = now_series;
                            slot.status.health = Health::Ok;
                            slot.status.last_error = None;
                        }
                        Err(e) => {
                            self.metrics.rule_failures.fetch_add(1, Ordering::Relaxed);
                            slot.status.health = Health::Err;
                            slot.status.last_error = Some(format!("storage: {e}"));
                        }
                    }
                }
                Err(e) => {
                    self.metrics.rule_failures.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(group = %self.name, rule = %slot.rule.spec().name, error = %e, "rule evaluation failed");
                    slot.status.health = Health::Err;
                    slot.status.last_error = Some(e);
                }
            }
            if let Rule::Alerting(ar) = &mut slot.rule {
                let mut alerts = ar.alerts_to_send(ts, deps.resend_delay_ms, self.interval_ms);
                if !alerts.is_empty() {
                    let url = generator_url(deps.external_url, &ar.spec.expr.text);
                    for a in &mut alerts {
                        a.generator_url.clone_from(&url);
                    }
                    deps.sink.send(alerts);
                }
            }
            slot.status.last_eval_ms = ts;
            slot.status.eval_duration = rule_started.elapsed();
        }
        self.last_cache_stats = cache.stats();
        self.last_eval_ms = ts;
        self.last_duration = started.elapsed();
        self.metrics.evaluations.fetch_add(1, Ordering::Relaxed);
        self.metrics.last_duration_bits.store(self.last_duration.as_secs_f64().to_bits(), Ordering::Relaxed);
        self.metrics.last_eval_ms.store(u64::try_from(ts).unwrap_or(0), Ordering::Relaxed);
    }

    /// The alert state to persist (see [`super::restore`]).
    pub fn saved_state(&self) -> SavedGroup {
        restore::save(self)
    }

    /// Whether any alerting rule holds alerts (state worth persisting).
    pub fn has_alerts(&self) -> bool {
        self.rules.iter().any(|s| matches!(&s.rule, Rule::Alerting(a) if !a.active.is_empty()))
    }

    /// Iterates the alerting rules.
    pub fn alerting_rules(&self) -> impl Iterator<Item = &AlertingRule> {
        self.rules.iter().filter_map(|s| match &s.rule {
            Rule::Alerting(a) => Some(a),
            Rule::Recording(_) => None,
        })
    }
}

fn log_restore(file: &str, group: &str, ar: &AlertingRule, outcomes: &[(Labels, RestoreOutcome)], ts: i64) {
    let rule = ar.spec.name.as_str();
    for (labels, o) in outcomes {
        match o {
            RestoreOutcome::Restored(saved) => {
                let now = ar.active.get(labels);
                let resolved_now = now.is_some_and(|a| a.state == AlertState::Inactive && a.resolved_at == Some(ts));
                if resolved_now && *saved != AlertState::Inactive {
                    tracing::info!(
                        file, group, rule, alert = %labels, saved = saved.as_str(),
                        "alert not restored: its condition no longer holds at the first evaluation after start; resolved"
                    );
                } else if *saved != AlertState::Inactive {
                    tracing::info!(
                        file, group, rule, alert = %labels, saved = saved.as_str(),
                        state = now.map(|a| a.state.as_str()).unwrap_or("inactive"),
                        "alert state restored from before the restart"
                    );
                }
            }
            RestoreOutcome::GapTooLong { gap_ms } => tracing::info!(
                file, group, rule, alert = %labels, gap_seconds = gap_ms / 1000,
                "alert not restored: the outage was longer than its series stay fresh; re-evaluated from scratch"
            ),
        }
    }
}

/// Prometheus's generator URL: `<external_url>/graph?g0.expr=<expr>&g0.tab=1`.
pub fn generator_url(external_url: &str, expr: &str) -> String {
    let enc: String = form_urlencoded::byte_serialize(expr.as_bytes()).collect();
    format!("{}/graph?g0.expr={}&g0.tab=1", external_url.trim_end_matches('/'), enc)
}

/// A recording rule's output series: `__name__` set to the record name, rule
/// labels applied, duplicates and `limit` checked (Prometheus's
/// `RecordingRule.Eval`).
fn record(spec: &RuleSpec, res: Vec<(Labels, f64)>, limit: usize) -> Result<Vec<(Labels, f64)>, String> {
    let mut out = Vec::with_capacity(res.len());
    let mut seen = HashSet::with_capacity(res.len());
    for (l, v) in res {
        let mut b = LabelsBuilder::from_labels(&l);
        b.set(METRIC_NAME, &spec.name);
        for (k, val) in &spec.labels {
            b.set(k, val);
        }
        let l = b.build();
        if !seen.insert(l.clone()) {
            return Err("vector contains metrics with the same labelset after applying rule labels".into());
        }
        out.push((l, v));
    }
    if limit > 0 && out.len() > limit {
        return Err(format!("exceeded limit of {limit} with {} series", out.len()));
    }
    Ok(out)
}
