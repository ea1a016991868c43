//! Alert timelines: for every alerting rule and every label set it raised,
//! the episodes in which the alert was active — when it went pending, when it
//! started firing, when it resolved, and the highest query value seen.
//!
//! Built from the rule engine's own state after each group evaluation, so
//! `for`, `keep_firing_for` and resolve semantics are exactly the server's.

use std::collections::BTreeMap;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::model::Labels;
use crate::rules::alerting::AlertState;
use crate::rules::group::{Group, Rule};
use crate::rules::{EvalObserver, EvalObserverHandle, GroupSpec, RuleKind};

/// Label sets tracked per rule; more are counted in [`RuleTimeline::dropped_alerts`].
pub const MAX_ALERTS_PER_RULE: usize = 1000;
/// Episodes kept per label set; older ones are dropped first.
pub const MAX_EPISODES_PER_ALERT: usize = 1000;

/// One stretch of time in which an alert was active.
#[derive(Debug, Clone, PartialEq)]
pub struct Episode {
    /// When it became active (pending), ms.
    pub pending_at: i64,
    /// When it started firing, ms (`None`: it never left pending).
    pub firing_at: Option<i64>,
    /// When it stopped being active, ms (`None`: still active at the end).
    pub resolved_at: Option<i64>,
    /// The highest query value seen while it was active.
    pub peak: f64,
}

impl Episode {
    /// How long it fired, up to `end_ms` when still firing; 0 if it never fired.
    pub fn firing_ms(&self, end_ms: i64) -> i64 {
        match self.firing_at {
            Some(f) => self.resolved_at.unwrap_or(end_ms).max(f) - f,
            None => 0,
        }
    }
}

/// One label set of a rule and its episodes, oldest first.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertTimeline {
    /// The alert's labels (with `alertname`).
    pub labels: Labels,
    /// Its episodes, oldest first.
    pub episodes: Vec<Episode>,
}

/// Everything one alerting rule did.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleTimeline {
    /// The rule file.
    pub file: String,
    /// The group.
    pub group: String,
    /// The alert name.
    pub rule: String,
    /// The rule's labels (with the group's), as written (may hold templates).
    pub rule_labels: Vec<(String, String)>,
    /// Alerts, by labels.
    pub alerts: Vec<AlertTimeline>,
    /// Label sets not tracked because of [`MAX_ALERTS_PER_RULE`].
    pub dropped_alerts: u64,
}

#[derive(Debug, Default)]
struct RuleState {
    rule_labels: Vec<(String, String)>,
    alerts: BTreeMap<Labels, Vec<Episode>>,
    dropped: u64,
}

type RuleKey = (String, String, String);

/// Collects timelines while groups are evaluated.
#[derive(Debug, Default)]
pub struct Recorder {
    /// Rule keys in the order they were first seen (configuration order).
    order: Vec<RuleKey>,
    rules: BTreeMap<RuleKey, RuleState>,
}

fn raise(peak: &mut f64, v: f64) {
    if v > *peak || peak.is_nan() {
        *peak = v;
    }
}

impl Recorder {
    /// An empty recorder.
    pub fn new() -> Self {
        Recorder::default()
    }

    fn entry(&mut self, file: &str, group: &str, rule: &str, labels: &[(String, String)]) -> &mut RuleState {
        let key = (file.to_string(), group.to_string(), rule.to_string());
        if !self.rules.contains_key(&key) {
            self.order.push(key.clone());
        }
        let st = self.rules.entry(key).or_default();
        if st.rule_labels.is_empty() {
            st.rule_labels = labels.to_vec();
        }
        st
    }

    /// Lists every alerting rule of `groups` up front, so rules that never
    /// became active (or never got evaluated) still appear in reports.
    pub fn register(&mut self, groups: &[GroupSpec]) {
        for g in groups {
            for r in g.rules.iter().filter(|r| r.kind == RuleKind::Alerting) {
                self.entry(&g.file, &g.name, &r.name, &r.labels);
            }
        }
    }

    /// Records the alert state of `group` right after its evaluation at `ts`.
    pub fn observe(&mut self, group: &Group, ts: i64) {
        for slot in &group.rules {
            let Rule::Alerting(ar) = &slot.rule else { continue };
            let st = self.entry(&group.file, &group.name, &ar.spec.name, &ar.spec.labels);
            for a in ar.active.values() {
                let active = a.state != AlertState::Inactive;
                if !st.alerts.contains_key(&a.labels) {
                    if !active {
                        continue;
                    }
                    if st.alerts.len() >= MAX_ALERTS_PER_RULE {
                        st.dropped += 1;
                        continue;
                    }
                    st.alerts.insert(a.labels.clone(), Vec::new());
                }
                let Some(eps) = st.alerts.get_mut(&a.labels) else { continue };
                // An earlier episode with another start that is still open ended unseen.
                for e in eps.iter_mut().filter(|e| e.resolved_at.is_none() && e.pending_at != a.active_at) {
                    e.resolved_at = Some(ts);
                }
                let open = eps.iter_mut().rev().find(|e| e.pending_at == a.active_at);
                match (open, active) {
                    (Some(e), true) => {
                        raise(&mut e.peak, a.value);
                        if e.firing_at.is_none() {
                            e.firing_at = a.fired_at;
                        }
                    }
                    (Some(e), false) => {
                        if e.resolved_at.is_none() {
                            e.resolved_at = Some(a.resolved_at.unwrap_or(ts));
                        }
                        if e.firing_at.is_none() {
                            e.firing_at = a.fired_at;
                        }
                    }
                    (None, true) => {
                        if eps.len() >= MAX_EPISODES_PER_ALERT {
                            eps.remove(0);
                        }
                        eps.push(Episode {
                            pending_at: a.active_at,
                            firing_at: a.fired_at,
                            resolved_at: None,
                            peak: a.value,
                        });
                    }
                    (None, false) => {}
                }
            }
            // Pending alerts that ended are dropped by the rule at once: close them here.
            for (labels, eps) in st.alerts.iter_mut() {
                if ar.active.contains_key(labels) {
                    continue;
                }
                for e in eps.iter_mut().filter(|e| e.resolved_at.is_none()) {
                    e.resolved_at = Some(ts);
                }
            }
        }
    }

    /// The timelines, rules in the order first registered or seen.
    pub fn timelines(&self) -> Vec<RuleTimeline> {
        self.order
            .iter()
            .filter_map(|k| {
                let st = self.rules.get(k)?;
                Some(RuleTimeline {
                    file: k.0.clone(),
                    group: k.1.clone(),
                    rule: k.2.clone(),
                    rule_labels: st.rule_labels.clone(),
                    alerts: st
                        .alerts
                        .iter()
                        .map(|(l, e)| AlertTimeline { labels: l.clone(), episodes: e.clone() })
                        .collect(),
                    dropped_alerts: st.dropped,
                })
            })
            .collect()
    }
}

/// A [`Recorder`] shared with the rule manager as its evaluation observer.
#[derive(Debug, Default, Clone)]
pub struct SharedRecorder(pub Arc<Mutex<Recorder>>);

impl EvalObserver for SharedRecorder {
    fn evaluated(&self, group: &Group, ts_ms: i64) {
        self.0.lock().observe(group, ts_ms);
    }
}

impl SharedRecorder {
    /// The handle to put in `rules::ManagerOptions::observer`.
    pub fn handle(&self) -> EvalObserverHandle {
        EvalObserverHandle(Arc::new(self.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::labels;
    use crate::rules::group::EvalDeps;
    use crate::rules::testing::{RecordingSink, ScriptedQuerier, SimpleTemplates};
    use crate::storage::memory::MemStorage;
    use std::time::Duration;

    const RULES: &str = "groups:\n  - name: g\n    rules:\n      - alert: HighErr\n        expr: err > 0.1\n        for: 1m\n        labels:\n          severity: critical\n      - alert: Quiet\n        expr: quiet > 1\n";

    #[test]
    fn episodes_follow_the_rule_state_machine() {
        let t = SimpleTemplates::default();
        let (specs, problems) = crate::rules::validate::load_text("r.yml", RULES, &t);
        assert!(problems.is_empty(), "{problems:?}");
        let mut rec = Recorder::new();
        rec.register(&specs);
        let q = ScriptedQuerier::new();
        q.declare("quiet > 1");
        let a = labels!("__name__" => "err", "job" => "a");
        let b = labels!("__name__" => "err", "job" => "b");
        // (seconds, value for job a, value for job b)
        let script: &[(i64, Option<f64>, Option<f64>)] = &[
            (0, None, None),
            (30, Some(0.2), None),
            (60, Some(0.4), Some(0.3)),
            (90, Some(0.25), None),
            (120, None, None),
            (150, Some(0.5), None),
            (180, None, None),
        ];
        for &(s, va, vb) in script {
            let mut v = Vec::new();
            if let Some(x) = va {
                v.push((a.clone(), x));
            }
            if let Some(x) = vb {
                v.push((b.clone(), x));
            }
            q.set("err > 0.1", s * 1000, v);
        }
        let store = MemStorage::new();
        let sink = RecordingSink::default();
        let deps = EvalDeps {
            querier: &q,
            queryable: &store,
            appendable: &store,
            templates: &t,
            sink: &sink,
            external_labels: &t.external,
            external_url: "",
            resend_delay_ms: 60_000,
        };
        let mut g = Group::new(specs[0].clone(), Duration::from_secs(30), Duration::ZERO);
        for &(s, _, _) in script {
            g.eval(s * 1000, &deps);
            rec.observe(&g, s * 1000);
        }
        let tl = rec.timelines();
        assert_eq!(tl.len(), 2);
        assert_eq!((tl[1].rule.as_str(), tl[1].alerts.len()), ("Quiet", 0));
        let high = &tl[0];
        assert_eq!(high.alerts.len(), 2);
        let ja = &high.alerts[0];
        assert_eq!(ja.labels, labels!("alertname" => "HighErr", "job" => "a", "severity" => "critical"));
        assert_eq!(
            ja.episodes,
            vec![
                Episode { pending_at: 30_000, firing_at: Some(90_000), resolved_at: Some(120_000), peak: 0.4 },
                Episode { pending_at: 150_000, firing_at: None, resolved_at: Some(180_000), peak: 0.5 },
            ]
        );
        assert_eq!(
            high.alerts[1].episodes,
            vec![Episode { pending_at: 60_000, firing_at: None, resolved_at: Some(90_000), peak: 0.3 }]
        );
    }
}
