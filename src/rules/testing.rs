//! Test doubles for the seams: a scripted querier, a minimal template
//! expander and a recording alert sink. For tests only; production wiring
//! uses `crate::promql`, `crate::template` and `crate::notify`.

use crate::promql::value::format_float;
use std::collections::BTreeMap;

use parking_lot::Mutex;

use crate::model::Labels;
use crate::storage::Queryable;

use super::seams::{Alert, AlertSink, QuerySample, RuleExpr, RuleQuerier, TemplateData, TemplateExpander};

/// A template expander that knows only `{{ $value }}`, `{{ .Value }}`,
/// `{{ $labels.NAME }}`, `{{ .Labels.NAME }}` and `{{ $externalLabels.NAME }}`.
/// Anything else inside `{{ }}` is an expansion error; an unclosed `{{` does
/// not parse.
#[derive(Debug, Default, Clone)]
pub struct SimpleTemplates {
    /// External labels handed to tests that need a `&Labels` to borrow.
    pub external: Labels,
}

impl TemplateExpander for SimpleTemplates {
    fn expand(&self, _name: &str, text: &str, data: &TemplateData<'_>) -> Result<String, String> {
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("{{") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after.find("}}").ok_or("unclosed action")?;
            let action = after[..end].trim();
            let get = |l: &Labels, n: &str| l.get(n).unwrap_or("").to_string();
            let v = if action == "$value" || action == ".Value" {
                format_float(data.value)
            } else if let Some(n) = action.strip_prefix("$labels.").or(action.strip_prefix(".Labels.")) {
                get(data.labels, n)
            } else if let Some(n) = action.strip_prefix("$externalLabels.") {
                get(data.external_labels, n)
            } else {
                return Err(format!("undefined variable or function in {action:?}"));
            };
            out.push_str(&v);
            rest = &after[end + 2..];
        }
        out.push_str(rest);
        Ok(out)
    }

    fn check(&self, text: &str) -> Result<(), String> {
        let mut rest = text;
        while let Some(start) = rest.find("{{") {
            let after = &rest[start + 2..];
            let end = after.find("}}").ok_or_else(|| "unclosed action".to_string())?;
            rest = &after[end + 2..];
        }
        Ok(())
    }
}

/// A querier that returns scripted results: per expression text, a map from
/// evaluation time (ms) to the vector at that time. Times without an entry
/// give an empty vector; expressions without a script are an error.
#[derive(Debug, Default)]
pub struct ScriptedQuerier {
    scripts: Mutex<BTreeMap<String, BTreeMap<i64, Vec<QuerySample>>>>,
    calls: Mutex<Vec<(String, i64)>>,
}

impl ScriptedQuerier {
    /// An empty script.
    pub fn new() -> Self {
        ScriptedQuerier::default()
    }

    /// Sets what `expr` returns at `ts_ms`.
    pub fn set(&self, expr: &str, ts_ms: i64, result: Vec<QuerySample>) {
        self.scripts.lock().entry(expr.to_string()).or_default().insert(ts_ms, result);
    }

    /// Declares `expr` (returning nothing until `set`).
    pub fn declare(&self, expr: &str) {
        self.scripts.lock().entry(expr.to_string()).or_default();
    }

    /// Every (expression, time) evaluated so far.
    pub fn calls(&self) -> Vec<(String, i64)> {
        self.calls.lock().clone()
    }
}

impl RuleQuerier for ScriptedQuerier {
    fn instant(&self, expr: &RuleExpr, ts_ms: i64, _storage: &dyn Queryable) -> Result<Vec<QuerySample>, String> {
        self.calls.lock().push((expr.text.clone(), ts_ms));
        let scripts = self.scripts.lock();
        let s = scripts.get(&expr.text).ok_or_else(|| format!("no script for {:?}", expr.text))?;
        Ok(s.get(&ts_ms).cloned().unwrap_or_default())
    }
}

/// An alert sink that keeps every batch it receives.
#[derive(Debug, Default)]
pub struct RecordingSink {
    batches: Mutex<Vec<Vec<Alert>>>,
}

impl RecordingSink {
    /// Every batch received so far, oldest first.
    pub fn batches(&self) -> Vec<Vec<Alert>> {
        self.batches.lock().clone()
    }

    /// Removes and returns the batches received so far.
    pub fn take(&self) -> Vec<Vec<Alert>> {
        std::mem::take(&mut *self.batches.lock())
    }
}

impl AlertSink for RecordingSink {
    fn send(&self, alerts: Vec<Alert>) {
        if !alerts.is_empty() {
            self.batches.lock().push(alerts);
        }
    }
}

/// A querier that understands only plain vector selectors (`name{l="v"}`)
/// and `vector(N)`: the newest sample of each matching series within a 5-minute
/// lookback, series whose newest sample is a stale marker left out. Enough to
/// test storage round trips (recording results read by later rules, stale
/// series) without the PromQL engine.
#[derive(Debug, Default, Clone, Copy)]
pub struct SelectorQuerier;

/// The lookback window of [`SelectorQuerier`], ms.
pub const LOOKBACK_MS: i64 = 5 * 60 * 1000;

fn to_matchers(vs: &promql_parser::parser::VectorSelector) -> Result<Vec<crate::model::Matcher>, String> {
    use crate::model::{MatchOp, Matcher};
    use promql_parser::label::MatchOp as P;
    let mut out = Vec::new();
    if let Some(n) = &vs.name {
        out.push(Matcher::equal(crate::model::METRIC_NAME, n.clone()));
    }
    for m in &vs.matchers.matchers {
        let op = match m.op {
            P::Equal => MatchOp::Equal,
            P::NotEqual => MatchOp::NotEqual,
            P::Re(_) => MatchOp::RegexMatch,
            P::NotRe(_) => MatchOp::RegexNoMatch,
        };
        out.push(Matcher::new(op, m.name.clone(), m.value.clone()).map_err(|e| e.to_string())?);
    }
    Ok(out)
}

impl RuleQuerier for SelectorQuerier {
    fn instant(&self, expr: &RuleExpr, ts_ms: i64, storage: &dyn Queryable) -> Result<Vec<QuerySample>, String> {
        use promql_parser::parser::Expr;
        match &expr.parsed {
            Expr::VectorSelector(vs) => {
                let matchers = to_matchers(vs)?;
                let series = storage.select(ts_ms - LOOKBACK_MS + 1, ts_ms, &matchers).map_err(|e| e.to_string())?;
                let mut out = Vec::new();
                let mut buf = Vec::new();
                for mut s in series {
                    buf.clear();
                    s.samples.collect_into(&mut buf);
                    if let Some(last) = buf.last() {
                        if !crate::model::is_stale_nan(last.v) {
                            out.push((s.labels, last.v));
                        }
                    }
                }
                Ok(out)
            }
            Expr::Call(c) if c.func.name == "vector" => match c.args.args.first().map(|a| a.as_ref()) {
                Some(Expr::NumberLiteral(n)) => Ok(vec![(Labels::empty(), n.val)]),
                _ => Err("SelectorQuerier: vector() needs a number".into()),
            },
            other => Err(format!("SelectorQuerier cannot evaluate {other}")),
        }
    }
}
