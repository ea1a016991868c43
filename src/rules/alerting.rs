//! The alerting-rule state machine: inactive → pending → firing, with `for`,
//! `keep_firing_for`, resolved-alert retention and resend bookkeeping.
//!
//! It never reads the clock: every step takes the evaluation time, so tests
//! are plain tables. Semantics follow Prometheus's `AlertingRule.Eval` and
//! `sendAlerts` (rules/alerting.go), except restore after restart, which is
//! in [`super::restore`].

use std::collections::HashMap;
use std::time::Duration;

use crate::model::{Labels, LabelsBuilder, METRIC_NAME};

use super::seams::{Alert, QuerySample, TemplateData, TemplateExpander};
use super::validate::RuleSpec;

/// How long a resolved alert is kept and re-sent (Prometheus's `resolvedRetention`).
pub const RESOLVED_RETENTION_MS: i64 = 15 * 60 * 1000;

/// Name of the series that mirrors active alerts.
pub const ALERTS_METRIC: &str = "ALERTS";
/// Name of the series that records when each active alert became active.
pub const ALERTS_FOR_STATE_METRIC: &str = "ALERTS_FOR_STATE";

/// An alert's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AlertState {
    /// Not active (resolved alerts are kept in this state for a while).
    Inactive,
    /// Active, but not yet for the rule's `for` duration.
    Pending,
    /// Active for at least `for`.
    Firing,
}

impl AlertState {
    /// The name Prometheus uses (`inactive`, `pending`, `firing`).
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Inactive => "inactive",
            AlertState::Pending => "pending",
            AlertState::Firing => "firing",
        }
    }
}

/// One alert of a rule (one label set).
#[derive(Debug, Clone, PartialEq)]
pub struct ActiveAlert {
    /// Labels: result labels without `__name__`, rule labels, `alertname`.
    pub labels: Labels,
    /// Expanded annotations.
    pub annotations: Labels,
    /// Current state.
    pub state: AlertState,
    /// The last query value for this alert.
    pub value: f64,
    /// When it became active (ms).
    pub active_at: i64,
    /// When it started firing (ms).
    pub fired_at: Option<i64>,
    /// When it resolved (ms).
    pub resolved_at: Option<i64>,
    /// When it was last handed to the notifier (ms).
    pub last_sent_at: Option<i64>,
    /// `endsAt` sent with the last notification (ms).
    pub valid_until: i64,
    /// Since when it is kept firing by `keep_firing_for` (ms).
    pub keep_firing_since: Option<i64>,
}

impl ActiveAlert {
    /// Prometheus's `needsSending`: pending alerts are never sent; resolved
    /// ones once after resolving; active ones every `resend_delay`.
    pub fn needs_sending(&self, ts: i64, resend_delay_ms: i64) -> bool {
        if self.state == AlertState::Pending {
            return false;
        }
        let Some(last) = self.last_sent_at else { return true };
        if let Some(r) = self.resolved_at {
            if last < r {
                return true;
            }
        }
        last + resend_delay_ms <= ts
    }
}

/// Why an alerting rule's evaluation failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AlertEvalError {
    /// The query failed.
    #[error("{0}")]
    Query(String),
    /// Two results collapsed to one label set.
    #[error("vector contains metrics with the same labelset after applying alert labels")]
    DuplicateLabels,
    /// More active alerts than the group's `limit`.
    #[error("exceeded limit of {limit} with {count} alerts")]
    Limit {
        /// The limit.
        limit: usize,
        /// Active and pending alerts found.
        count: usize,
    },
}

/// Everything template expansion needs besides the sample.
#[derive(Clone, Copy)]
pub struct TemplateEnv<'a> {
    /// The template engine.
    pub expander: &'a dyn TemplateExpander,
    /// Configured external labels.
    pub external_labels: &'a Labels,
    /// Configured external URL.
    pub external_url: &'a str,
}

/// An alerting rule and its alerts.
#[derive(Debug)]
pub struct AlertingRule {
    /// The rule as loaded.
    pub spec: RuleSpec,
    /// Alerts by label set (active, pending, or resolved and retained).
    pub active: HashMap<Labels, ActiveAlert>,
}

fn expand_or_error(env: &TemplateEnv<'_>, name: &str, text: &str, data: &TemplateData<'_>) -> String {
    if !text.contains("{{") {
        return text.to_string();
    }
    match env.expander.expand(name, text, data) {
        Ok(s) => s,
        // Prometheus puts the error text in place of the value and carries on.
        Err(e) => format!("<error expanding template: {e}>"),
    }
}

impl AlertingRule {
    /// A rule with no alerts.
    pub fn new(spec: RuleSpec) -> Self {
        AlertingRule { spec, active: HashMap::new() }
    }

    /// The rule's `for` in milliseconds.
    pub fn hold_ms(&self) -> i64 {
        dur_ms(self.spec.for_)
    }

    /// Advances the state machine with the query result at `ts` (ms).
    ///
    /// Returns the `ALERTS`/`ALERTS_FOR_STATE` samples to write (at the query
    /// time, `ts - query_offset`; the caller stamps them). On a limit error
    /// every alert is dropped, as Prometheus does.
    pub fn eval(
        &mut self,
        result: Vec<QuerySample>,
        ts: i64,
        limit: usize,
        env: &TemplateEnv<'_>,
    ) -> Result<Vec<(Labels, f64)>, AlertEvalError> {
        let tmpl_name = format!("__alert_{}", self.spec.name);
        let mut fresh: HashMap<Labels, ActiveAlert> = HashMap::with_capacity(result.len());
        for (metric, value) in result {
            let data = TemplateData {
                labels: &metric,
                external_labels: env.external_labels,
                external_url: env.external_url,
                value,
                ts_ms: ts,
            };
            let mut lb = LabelsBuilder::from_labels(&metric);
            lb.del(METRIC_NAME);
            for (k, v) in &self.spec.labels {
                lb.set(k, &expand_or_error(env, &tmpl_name, v, &data));
            }
            lb.set("alertname", &self.spec.name);
            let labels = lb.build();
            let annotations = Labels::from_pairs(
                self.spec.annotations.iter().map(|(k, v)| (k.as_str(), expand_or_error(env, &tmpl_name, v, &data))),
            );
            if fresh.contains_key(&labels) {
                return Err(AlertEvalError::DuplicateLabels);
            }
            fresh.insert(
                labels.clone(),
                ActiveAlert {
                    labels,
                    annotations,
                    state: AlertState::Pending,
                    value,
                    active_at: ts,
                    fired_at: None,
                    resolved_at: None,
                    last_sent_at: None,
                    valid_until: 0,
                    keep_firing_since: None,
                },
            );
        }
        let present: std::collections::HashSet<Labels> = fresh.keys().cloned().collect();
        for (k, a) in fresh {
            match self.active.get_mut(&k) {
                Some(old) if old.state != AlertState::Inactive => {
                    old.value = a.value;
                    old.annotations = a.annotations;
                }
                _ => {
                    self.active.insert(k, a);
                }
            }
        }

        let hold = self.hold_ms();
        let keep_for = dur_ms(self.spec.keep_firing_for);
        let mut out = Vec::new();
        let mut count = 0usize;
        let mut remove = Vec::new();
        for (k, a) in self.active.iter_mut() {
            if !present.contains(k) {
                let mut keep_firing = false;
                if a.state == AlertState::Firing && keep_for > 0 {
                    let since = *a.keep_firing_since.get_or_insert(ts);
                    keep_firing = ts - since < keep_for;
                }
                if a.state == AlertState::Pending || a.resolved_at.is_some_and(|r| ts - r > RESOLVED_RETENTION_MS) {
                    remove.push(k.clone());
                }
                if a.state != AlertState::Inactive && !keep_firing {
                    a.state = AlertState::Inactive;
                    a.resolved_at = Some(ts);
                }
                if !keep_firing {
                    continue;
                }
            } else {
                a.keep_firing_since = None;
            }
            count += 1;
            if a.state == AlertState::Pending && ts - a.active_at >= hold {
                a.state = AlertState::Firing;
                a.fired_at = Some(ts);
            }
            out.push((series_labels(&a.labels, ALERTS_METRIC, Some(a.state)), 1.0));
            out.push((series_labels(&a.labels, ALERTS_FOR_STATE_METRIC, None), (a.active_at / 1000) as f64));
        }
        for k in remove {
            self.active.remove(&k);
        }
        if limit > 0 && count > limit {
            self.active.clear();
            return Err(AlertEvalError::Limit { limit, count });
        }
        Ok(out)
    }

    /// Alerts to hand to the notifier at `ts`, marking them sent (Prometheus's
    /// `sendAlerts`): `endsAt` is the resolve time, or for active alerts
    /// `ts + 4 × max(resend_delay, interval)`.
    pub fn alerts_to_send(&mut self, ts: i64, resend_delay_ms: i64, interval_ms: i64) -> Vec<Alert> {
        let mut out = Vec::new();
        for a in self.active.values_mut() {
            if !a.needs_sending(ts, resend_delay_ms) {
                continue;
            }
            let ends_at = match a.resolved_at {
                Some(r) if a.state == AlertState::Inactive => r,
                _ => ts + 4 * resend_delay_ms.max(interval_ms),
            };
            a.valid_until = ends_at;
            a.last_sent_at = Some(ts);
            out.push(Alert {
                labels: a.labels.clone(),
                annotations: a.annotations.clone(),
                starts_at: a.active_at,
                ends_at,
                generator_url: String::new(),
            });
        }
        out.sort_by(|x, y| x.labels.cmp(&y.labels));
        out
    }

    /// Active (pending or firing) alerts, sorted by labels.
    pub fn current(&self) -> Vec<&ActiveAlert> {
        let mut v: Vec<&ActiveAlert> = self.active.values().filter(|a| a.state != AlertState::Inactive).collect();
        v.sort_by(|a, b| a.labels.cmp(&b.labels));
        v
    }

    /// The rule's overall state: the highest of its alerts'.
    pub fn state(&self) -> AlertState {
        let mut s = AlertState::Inactive;
        for a in self.active.values() {
            match a.state {
                AlertState::Firing => return AlertState::Firing,
                AlertState::Pending => s = AlertState::Pending,
                AlertState::Inactive => {}
            }
        }
        s
    }
}

/// `ALERTS{alertstate=...}` or `ALERTS_FOR_STATE` labels for an alert.
pub fn series_labels(alert_labels: &Labels, metric: &str, state: Option<AlertState>) -> Labels {
    let mut b = LabelsBuilder::from_labels(alert_labels);
    b.set(METRIC_NAME, metric);
    if let Some(s) = state {
        b.set("alertstate", s.as_str());
    }
    b.build()
}

/// A duration in milliseconds, saturating.
pub fn dur_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::labels;
    use crate::rules::testing::SimpleTemplates;
    use crate::rules::validate::RuleKind;
    use std::sync::Arc;

    fn rule(for_s: u64, keep_s: u64) -> AlertingRule {
        AlertingRule::new(RuleSpec {
            kind: RuleKind::Alerting,
            name: "HighErr".into(),
            expr: Arc::new(crate::rules::seams::RuleExpr::parse("err > 0.02").unwrap()),
            for_: Duration::from_secs(for_s),
            keep_firing_for: Duration::from_secs(keep_s),
            labels: vec![("severity".into(), "warning".into())],
            annotations: vec![("description".into(), "value={{ $value }} job={{ $labels.job }}".into())],
            line: 1,
        })
    }

    fn sample(v: f64) -> Vec<QuerySample> {
        vec![(labels!("__name__" => "err", "job" => "triton"), v)]
    }

    fn env(t: &SimpleTemplates) -> TemplateEnv<'_> {
        TemplateEnv { expander: t, external_labels: &t.external, external_url: "" }
    }

    /// (time s, query returns a value?, expected rule state, expected ALERTS alertstate or none)
    #[test]
    fn pending_then_firing_then_resolved_table() {
        let t = SimpleTemplates::default();
        let mut r = rule(120, 0);
        let steps: &[(i64, Option<f64>, AlertState)] = &[
            (0, None, AlertState::Inactive),
            (30, Some(0.05), AlertState::Pending),
            (90, Some(0.06), AlertState::Pending),
            (149, Some(0.07), AlertState::Pending),
            (150, Some(0.08), AlertState::Firing),
            (180, Some(0.09), AlertState::Firing),
            (210, None, AlertState::Inactive),
        ];
        for &(s, v, want) in steps {
            let res = v.map(sample).unwrap_or_default();
            let out = r.eval(res, s * 1000, 0, &env(&t)).unwrap();
            assert_eq!(r.state(), want, "at {s}s");
            match want {
                AlertState::Inactive => assert!(out.is_empty()),
                st => {
                    let alerts = out.iter().find(|(l, _)| l.metric_name() == Some("ALERTS")).unwrap();
                    assert_eq!(alerts.0.get("alertstate"), Some(st.as_str()));
                    assert_eq!(alerts.0.get("alertname"), Some("HighErr"));
                    assert_eq!(alerts.0.get("severity"), Some("warning"));
                    let fs = out.iter().find(|(l, _)| l.metric_name() == Some("ALERTS_FOR_STATE")).unwrap();
                    assert_eq!(fs.1, 30.0, "activeAt in seconds");
                    assert_eq!(fs.0.get("alertstate"), None);
                }
            }
        }
        let a = r.active.values().next().unwrap();
        assert_eq!(a.resolved_at, Some(210_000));
        assert_eq!(a.fired_at, Some(150_000));
        assert_eq!(a.annotations.get("description"), Some("value=0.09 job=triton"));
    }

    #[test]
    fn zero_for_fires_at_once_and_pending_drop_forgets() {
        let t = SimpleTemplates::default();
        let mut r = rule(0, 0);
        r.eval(sample(1.0), 0, 0, &env(&t)).unwrap();
        assert_eq!(r.state(), AlertState::Firing);
        let mut p = rule(60, 0);
        p.eval(sample(1.0), 0, 0, &env(&t)).unwrap();
        p.eval(vec![], 15_000, 0, &env(&t)).unwrap();
        assert!(p.active.is_empty(), "a pending alert that ends is forgotten");
        p.eval(sample(1.0), 30_000, 0, &env(&t)).unwrap();
        assert_eq!(p.active.values().next().unwrap().active_at, 30_000);
    }

    #[test]
    fn keep_firing_for_holds_then_resolves() {
        let t = SimpleTemplates::default();
        let mut r = rule(0, 60);
        r.eval(sample(1.0), 0, 0, &env(&t)).unwrap();
        for s in [15, 30, 45, 74] {
            r.eval(vec![], s * 1000, 0, &env(&t)).unwrap();
            assert_eq!(r.state(), AlertState::Firing, "kept firing at {s}s");
        }
        r.eval(vec![], 75_000, 0, &env(&t)).unwrap();
        assert_eq!(r.state(), AlertState::Inactive);
        // It comes back: the keep-firing clock restarts.
        r.eval(sample(1.0), 90_000, 0, &env(&t)).unwrap();
        assert_eq!(r.state(), AlertState::Firing);
        assert_eq!(r.active.values().next().unwrap().keep_firing_since, None);
    }

    #[test]
    fn resolved_kept_fifteen_minutes_and_sent() {
        let t = SimpleTemplates::default();
        let mut r = rule(0, 0);
        r.eval(sample(1.0), 0, 0, &env(&t)).unwrap();
        let sent = r.alerts_to_send(0, 60_000, 15_000);
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].ends_at, 240_000, "4 × max(resend 1m, interval 15s)");
        assert!(r.alerts_to_send(30_000, 60_000, 15_000).is_empty(), "not resent before resend delay");
        assert_eq!(r.alerts_to_send(60_000, 60_000, 15_000).len(), 1);
        r.eval(vec![], 70_000, 0, &env(&t)).unwrap();
        let sent = r.alerts_to_send(70_000, 60_000, 15_000);
        assert_eq!(sent[0].ends_at, 70_000, "resolved alerts carry their resolve time");
        r.eval(vec![], 70_000 + RESOLVED_RETENTION_MS, 0, &env(&t)).unwrap();
        assert_eq!(r.active.len(), 1, "kept up to 15m");
        r.eval(vec![], 70_001 + RESOLVED_RETENTION_MS, 0, &env(&t)).unwrap();
        assert!(r.active.is_empty(), "dropped after 15m");
    }

    #[test]
    fn limit_and_duplicates_error() {
        let t = SimpleTemplates::default();
        let mut r = rule(0, 0);
        let two = vec![(labels!("job" => "a"), 1.0), (labels!("job" => "b"), 1.0)];
        let e = r.eval(two.clone(), 0, 1, &env(&t)).unwrap_err();
        assert_eq!(e.to_string(), "exceeded limit of 1 with 2 alerts");
        assert!(r.active.is_empty());
        assert!(r.eval(two, 0, 2, &env(&t)).is_ok());
        let dup =
            vec![(labels!("__name__" => "x", "job" => "a"), 1.0), (labels!("__name__" => "y", "job" => "a"), 1.0)];
        assert_eq!(r.eval(dup, 0, 0, &env(&t)).unwrap_err(), AlertEvalError::DuplicateLabels);
    }

    #[test]
    fn template_error_goes_into_annotation() {
        let t = SimpleTemplates::default();
        let mut r = rule(0, 0);
        r.spec.annotations = vec![("summary".into(), "{{ $nope }}".into())];
        r.eval(sample(1.0), 0, 0, &env(&t)).unwrap();
        let a = r.active.values().next().unwrap();
        assert!(a.annotations.get("summary").unwrap().starts_with("<error expanding template: "));
    }
}
