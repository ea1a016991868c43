//! Running one test file: load its rule files through the rules loader, and
//! for each test group load the input series into an in-memory storage,
//! evaluate every group with the real rule engine, PromQL engine and
//! template engine at each `evaluation_interval` step from 0 to the largest
//! `eval_time`, and compare.
//!
//! Follows promtool's `testGroup.test` (cmd/promtool/unittest.go): input
//! samples become visible step by step (its lazy loader appends samples up to
//! each evaluation time), alerts are checked against the evaluation at the
//! last step not after their `eval_time`, expressions are queried after the
//! last step, and a rule evaluation error stops the test group.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use serde_saphyr::Spanned;

use crate::app::adapters::{CheckOnlyTemplates, EngineRuleQuerier, GoTemplates};
use crate::config::Duration;
use crate::model::Labels;
use crate::promql::series_notation::{self, SeqValue};
use crate::promql::{Engine, EngineOptions, QueryValue};
use crate::rules::group::{EvalDeps, Group, Health};
use crate::rules::seams::NoopSink;
use crate::rules::GroupSpec;
use crate::storage::memory::MemStorage;
use crate::storage::{Appendable, Queryable};

use super::compare::{diff_alerts, diff_samples, AlertItem};
use super::model::{self, TestFile, TestGroup};

/// Default `evaluation_interval` and test-group `interval`.
const DEFAULT_INTERVAL_MS: i64 = 60_000;

/// The most evaluation steps one test group may ask for (largest
/// `eval_time` / `evaluation_interval`), so a typo cannot run for days.
pub const MAX_STEPS: i64 = 1_000_000;

/// How long resolved alerts wait before being re-sent; irrelevant here (no
/// notifier), the server's default.
const RESEND_DELAY_MS: i64 = 60_000;

/// The outcome of one test file.
#[derive(Debug)]
pub enum FileOutcome {
    /// The file or a rule file it names could not be read or is invalid: one
    /// message per problem, each with file:line where known.
    Invalid(Vec<String>),
    /// The file ran: one result per test group, in file order.
    Ran(Vec<GroupResult>),
}

/// The result of one test group.
#[derive(Debug)]
pub struct GroupResult {
    /// The group's name, or `#N` (1-based) when it has none.
    pub name: String,
    /// Each failed check, rendered (what was checked and the diff); empty when it passed.
    pub failures: Vec<String>,
    /// Seconds the group took.
    pub seconds: f64,
}

/// An alert check, ready to run.
struct AlertCheck {
    line: u64,
    eval_ms: i64,
    eval_text: String,
    alertname: String,
    exp: Vec<AlertItem>,
}

/// An expression check, ready to run.
struct ExprCheck {
    line: u64,
    eval_ms: i64,
    eval_text: String,
    expr: String,
    exp: Vec<(Labels, f64)>,
}

/// A test group after validation.
struct Prepared {
    name: String,
    /// The largest `eval_time`, ms: evaluation runs from 0 up to it.
    max_t: i64,
    /// Input samples in time order: (t, labels, value).
    input: Vec<(i64, Labels, f64)>,
    alerts: Vec<AlertCheck>,
    exprs: Vec<ExprCheck>,
    external_labels: Labels,
    external_url: String,
}

fn at(file: &str, line: u64, msg: impl std::fmt::Display) -> String {
    format!("{file}:{line}: {msg}")
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn labels_of(map: &BTreeMap<String, model::Scalar>) -> Labels {
    Labels::from_pairs(map.iter().map(|(k, v)| (k.clone(), v.text())))
}

/// Validates one test group: series notation, expected labels, alertnames.
fn prepare(file: &str, index: usize, g: &Spanned<TestGroup>, eval_interval: i64) -> Result<Prepared, Vec<String>> {
    let tg = &g.value;
    let mut errs = Vec::new();
    let interval = tg.interval.map(ms).filter(|&i| i > 0).unwrap_or(DEFAULT_INTERVAL_MS);
    // A later line for the same series overrides earlier samples, as in Prometheus's loader.
    let mut series: BTreeMap<Labels, BTreeMap<i64, f64>> = BTreeMap::new();
    for s in &tg.input_series {
        let labels = match series_notation::parse_labels(&s.value.series.value) {
            Ok(l) if l.is_empty() => {
                errs.push(at(file, s.value.series.referenced.line(), "input series without labels"));
                continue;
            }
            Ok(l) => l,
            Err(e) => {
                errs.push(at(file, s.value.series.referenced.line(), e));
                continue;
            }
        };
        let values = match series_notation::expand_values(&s.value.values.value.text()) {
            Ok(v) => v,
            Err(e) => {
                errs.push(at(file, s.value.values.referenced.line(), format!("values: {e}")));
                continue;
            }
        };
        let entry = series.entry(labels).or_default();
        for (i, v) in values.iter().enumerate() {
            match v {
                SeqValue::Num(x) => {
                    entry.insert(i as i64 * interval, *x);
                }
                SeqValue::Omitted => {}
                SeqValue::Histogram => {
                    errs.push(at(file, s.value.values.referenced.line(), "native histograms are not supported"));
                    break;
                }
            }
        }
    }
    let mut input: Vec<(i64, Labels, f64)> =
        series.into_iter().flat_map(|(l, s)| s.into_iter().map(move |(t, v)| (t, l.clone(), v))).collect();
    input.sort_by_key(|(t, _, _)| *t);

    let mut alerts = Vec::new();
    for a in &tg.alert_rule_test {
        let line = a.referenced.line();
        let a = &a.value;
        if a.alertname.is_empty() {
            errs.push(at(file, line, "an item under alert_rule_test misses required attribute alertname"));
            continue;
        }
        let exp = a
            .exp_alerts
            .iter()
            .map(|e| {
                let mut l = e.exp_labels.clone();
                // The rule engine adds alertname; tests leave it out.
                l.insert("alertname".into(), model::Scalar::Text(a.alertname.clone()));
                AlertItem { labels: labels_of(&l), annotations: labels_of(&e.exp_annotations) }
            })
            .collect();
        alerts.push(AlertCheck {
            line,
            eval_ms: ms(a.eval_time),
            eval_text: a.eval_time.to_string(),
            alertname: a.alertname.clone(),
            exp,
        });
    }

    let mut exprs = Vec::new();
    for p in &tg.promql_expr_test {
        let line = p.referenced.line();
        let mut exp = Vec::new();
        for s in &p.value.exp_samples {
            match series_notation::parse_labels(&s.value.labels) {
                Ok(l) => exp.push((l, s.value.value)),
                Err(e) => errs.push(at(file, s.referenced.line(), format!("exp_samples labels: {e}"))),
            }
        }
        exprs.push(ExprCheck {
            line,
            eval_ms: ms(p.value.eval_time),
            eval_text: p.value.eval_time.to_string(),
            expr: p.value.expr.text(),
            exp,
        });
    }
    let max_t = alerts.iter().map(|a| a.eval_ms).chain(exprs.iter().map(|e| e.eval_ms)).max().unwrap_or(0);
    if max_t / eval_interval > MAX_STEPS {
        errs.push(at(
            file,
            g.referenced.line(),
            format!("eval_time {} needs more than {MAX_STEPS} evaluation steps", dur_text(max_t)),
        ));
    }
    if !errs.is_empty() {
        return Err(errs);
    }
    Ok(Prepared {
        name: tg.name.clone().filter(|n| !n.is_empty()).unwrap_or_else(|| format!("#{}", index + 1)),
        max_t,
        input,
        alerts,
        exprs,
        external_labels: labels_of(&tg.external_labels),
        external_url: tg.external_url.clone().unwrap_or_default(),
    })
}

/// Resolves `rule_files` against the test file's directory and expands globs.
fn rule_paths(file: &str, dir: &Path, tf: &TestFile) -> Result<Vec<PathBuf>, Vec<String>> {
    let mut out = Vec::new();
    let mut errs = Vec::new();
    for rf in &tf.rule_files {
        let p = Path::new(&rf.value);
        let full = if p.is_absolute() { p.to_path_buf() } else { dir.join(p) };
        match glob::glob(&full.to_string_lossy()) {
            Ok(paths) => {
                let found: Vec<PathBuf> = paths.filter_map(Result::ok).collect();
                if found.is_empty() {
                    errs.push(at(file, rf.referenced.line(), format!("rule_files: no file matches {:?}", rf.value)));
                }
                out.extend(found);
            }
            Err(e) => errs.push(at(file, rf.referenced.line(), format!("rule_files: bad pattern {:?}: {e}", rf.value))),
        }
    }
    if errs.is_empty() {
        Ok(out)
    } else {
        Err(errs)
    }
}

/// Orders groups as `group_eval_order` says: listed groups by their index,
/// unlisted ones as if listed first, file order among equals (promtool's
/// `orderedGroups` sorts the same way).
fn order_groups(file: &str, tf: &TestFile, mut groups: Vec<GroupSpec>) -> Result<Vec<GroupSpec>, Vec<String>> {
    let mut order: HashMap<&str, usize> = HashMap::new();
    let mut errs = Vec::new();
    for (i, g) in tf.group_eval_order.iter().enumerate() {
        if order.insert(g.value.as_str(), i).is_some() {
            errs.push(at(file, g.referenced.line(), format!("group name repeated in evaluation order: {}", g.value)));
        } else if !groups.iter().any(|s| s.name == g.value) {
            errs.push(at(file, g.referenced.line(), format!("group_eval_order: no rule group named {:?}", g.value)));
        }
    }
    if !errs.is_empty() {
        return Err(errs);
    }
    groups.sort_by_key(|g| order.get(g.name.as_str()).copied().unwrap_or(0));
    Ok(groups)
}

/// Runs the test file at `path`.
pub fn run_file(path: &Path) -> FileOutcome {
    let file = path.display().to_string();
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => return FileOutcome::Invalid(vec![format!("{file}: read: {e}")]),
    };
    let tf = match model::decode(&text) {
        Ok(tf) => tf,
        Err(e) => return FileOutcome::Invalid(vec![format!("{file}:{e}")]),
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    let paths = match rule_paths(&file, dir, &tf) {
        Ok(p) => p,
        Err(e) => return FileOutcome::Invalid(e),
    };
    let mut specs = Vec::new();
    let mut problems = Vec::new();
    for p in &paths {
        let (g, pr) = crate::rules::validate::load_file(p, &CheckOnlyTemplates);
        specs.extend(g);
        problems.extend(pr.iter().map(ToString::to_string));
    }
    if !problems.is_empty() {
        return FileOutcome::Invalid(problems);
    }
    let specs = match order_groups(&file, &tf, specs) {
        Ok(s) => s,
        Err(e) => return FileOutcome::Invalid(e),
    };
    let eval_interval = tf.evaluation_interval.map(ms).filter(|&i| i > 0).unwrap_or(DEFAULT_INTERVAL_MS);
    let mut prepared = Vec::new();
    let mut errs = Vec::new();
    for (i, g) in tf.tests.iter().enumerate() {
        match prepare(&file, i, g, eval_interval) {
            Ok(p) => prepared.push(p),
            Err(e) => errs.extend(e),
        }
    }
    if !errs.is_empty() {
        return FileOutcome::Invalid(errs);
    }
    FileOutcome::Ran(prepared.into_iter().map(|p| run_group(&file, p, &specs, eval_interval)).collect())
}

/// Formats a timestamp (ms since 0) as a Prometheus duration.
fn dur_text(t: i64) -> String {
    Duration(u64::try_from(t).unwrap_or(0)).to_string()
}

fn run_group(file: &str, p: Prepared, specs: &[GroupSpec], eval_interval: i64) -> GroupResult {
    let started = Instant::now();
    let failures = evaluate(file, &p, specs, eval_interval);
    GroupResult { name: p.name, failures, seconds: started.elapsed().as_secs_f64() }
}

fn evaluate(file: &str, p: &Prepared, specs: &[GroupSpec], eval_interval: i64) -> Vec<String> {
    let engine = Engine::new(EngineOptions {
        // Subqueries without a step use the evaluation interval, as promtool sets it.
        default_subquery_step: std::time::Duration::from_millis(eval_interval as u64),
        ..EngineOptions::default()
    });
    let storage = Arc::new(MemStorage::new());
    let templates = GoTemplates::new(engine.clone(), storage.clone() as Arc<dyn Queryable>);
    let querier = EngineRuleQuerier::new(engine.clone());
    let deps = EvalDeps {
        querier: &querier,
        queryable: storage.as_ref(),
        appendable: storage.as_ref(),
        templates: &templates,
        sink: &NoopSink,
        external_labels: &p.external_labels,
        external_url: &p.external_url,
        resend_delay_ms: RESEND_DELAY_MS,
    };
    let mut groups: Vec<Group> = specs
        .iter()
        .map(|s| {
            Group::new(s.clone(), std::time::Duration::from_millis(eval_interval as u64), std::time::Duration::ZERO)
        })
        .collect();

    let mut alert_checks: Vec<&AlertCheck> = p.alerts.iter().collect();
    alert_checks.sort_by_key(|a| a.eval_ms);
    let mut next_check = 0;
    let mut next_input = 0;
    let mut failures = Vec::new();

    let mut ts = 0i64;
    while ts <= p.max_t {
        // Input samples up to this step become visible (promtool's WithSamplesTill).
        let mut app = storage.appender();
        while let Some((t, l, v)) = p.input.get(next_input).filter(|(t, _, _)| *t <= ts) {
            if let Err(e) = app.append(l, *t, *v) {
                failures.push(format!("input series {l} at {}: {e}", dur_text(*t)));
            }
            next_input += 1;
        }
        if let Err(e) = app.commit() {
            failures.push(format!("loading input series: {e}"));
            return failures;
        }
        let mut eval_errs = Vec::new();
        for g in &mut groups {
            g.eval(ts, &deps);
            for slot in &g.rules {
                if slot.status.health == Health::Err {
                    let err = slot.status.last_error.as_deref().unwrap_or("");
                    eval_errs.push(format!("rule: {}, time: {}, err: {err}", slot.rule.spec().name, dur_text(ts)));
                }
            }
        }
        if !eval_errs.is_empty() {
            // promtool stops the group here: later checks would only repeat the error.
            failures.extend(eval_errs);
            return failures;
        }
        while let Some(c) = alert_checks.get(next_check).filter(|c| c.eval_ms < ts + eval_interval) {
            let got = firing(&groups, &c.alertname);
            if let Some(diff) = diff_alerts(c.exp.clone(), got) {
                failures.push(format!(
                    "alert_rule_test at {file}:{}: alertname: {}, time: {}\n{}",
                    c.line,
                    c.alertname,
                    c.eval_text,
                    diff.trim_end()
                ));
            }
            next_check += 1;
        }
        ts += eval_interval;
    }

    failures.extend(check_exprs(file, p, &engine, storage.as_ref()));
    failures
}

/// Runs the expression checks after the last evaluation step (as promtool does).
fn check_exprs(file: &str, p: &Prepared, engine: &Engine, storage: &dyn Queryable) -> Vec<String> {
    let mut failures = Vec::new();
    for e in &p.exprs {
        let got = match engine.instant_query(storage, &e.expr, e.eval_ms) {
            Ok(QueryValue::Vector(v)) => v.into_iter().map(|s| (s.labels, s.v)).collect(),
            Ok(QueryValue::Scalar { v, .. }) => vec![(Labels::empty(), v)],
            Ok(other) => {
                failures.push(format!(
                    "promql_expr_test at {file}:{}: expr: {:?}, time: {}, err: result is not a vector or scalar but {}",
                    e.line,
                    e.expr,
                    e.eval_text,
                    other.type_name()
                ));
                continue;
            }
            Err(err) => {
                failures.push(format!(
                    "promql_expr_test at {file}:{}: expr: {:?}, time: {}, err: {err}",
                    e.line, e.expr, e.eval_text
                ));
                continue;
            }
        };
        if let Some(diff) = diff_samples(e.exp.clone(), got) {
            failures.push(format!(
                "promql_expr_test at {file}:{}: expr: {:?}, time: {}\n{}",
                e.line,
                e.expr,
                e.eval_text,
                diff.trim_end()
            ));
        }
    }
    failures
}

/// The firing alerts of every alerting rule named `alertname`, in every group.
fn firing(groups: &[Group], alertname: &str) -> Vec<AlertItem> {
    groups
        .iter()
        .flat_map(|g| g.alerting_rules())
        .filter(|r| r.spec.name == alertname)
        .flat_map(|r| r.active.values())
        .filter(|a| a.state == crate::rules::alerting::AlertState::Firing)
        .map(|a| AlertItem { labels: a.labels.clone(), annotations: a.annotations.clone() })
        .collect()
}
