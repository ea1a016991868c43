//! `/api/v1/rules` and `/api/v1/alerts` in Prometheus's JSON shapes, built
//! from immutable snapshots that each group publishes after evaluating (the
//! API never waits for a running evaluation).
//!
//! The functions return the `data` member; the HTTP layer wraps it in
//! `{"status":"success","data":...}`.

use serde_json::{json, Map, Value};

use crate::model::Labels;

use super::alerting::{ActiveAlert, AlertState};
use super::group::{Group, Health, Rule};
use super::validate::RuleKind;

/// One alert as the API shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertView {
    /// Labels.
    pub labels: Labels,
    /// Annotations.
    pub annotations: Labels,
    /// State.
    pub state: AlertState,
    /// activeAt, ms.
    pub active_at: i64,
    /// keepFiringSince, ms.
    pub keep_firing_since: Option<i64>,
    /// Value.
    pub value: f64,
}

/// One rule as the API shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleView {
    /// Recording or alerting.
    pub kind: RuleKind,
    /// Name.
    pub name: String,
    /// Expression.
    pub query: String,
    /// `for`, seconds.
    pub for_s: f64,
    /// `keep_firing_for`, seconds.
    pub keep_firing_for_s: f64,
    /// Labels (unexpanded).
    pub labels: Vec<(String, String)>,
    /// Annotations (unexpanded).
    pub annotations: Vec<(String, String)>,
    /// Health.
    pub health: Health,
    /// Last error.
    pub last_error: Option<String>,
    /// Last evaluation, ms (0 = never).
    pub last_eval_ms: i64,
    /// Evaluation time, seconds.
    pub eval_seconds: f64,
    /// Rule state (alerting rules).
    pub state: AlertState,
    /// Active alerts (pending and firing).
    pub alerts: Vec<AlertView>,
}

/// One group as the API shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupView {
    /// File.
    pub file: String,
    /// Name.
    pub name: String,
    /// Interval, seconds.
    pub interval_s: f64,
    /// Query offset, seconds.
    pub query_offset_s: f64,
    /// Limit.
    pub limit: usize,
    /// Last evaluation, ms (0 = never).
    pub last_eval_ms: i64,
    /// Evaluation time, seconds.
    pub eval_seconds: f64,
    /// Rules in order.
    pub rules: Vec<RuleView>,
}

fn alert_view(a: &ActiveAlert) -> AlertView {
    AlertView {
        labels: a.labels.clone(),
        annotations: a.annotations.clone(),
        state: a.state,
        active_at: a.active_at,
        keep_firing_since: a.keep_firing_since,
        value: a.value,
    }
}

impl GroupView {
    /// A snapshot of `g`.
    pub fn of(g: &Group) -> Self {
        let rules = g
            .rules
            .iter()
            .map(|slot| {
                let spec = slot.rule.spec();
                let (state, alerts) = match &slot.rule {
                    Rule::Alerting(ar) => (ar.state(), ar.current().into_iter().map(alert_view).collect()),
                    Rule::Recording(_) => (AlertState::Inactive, Vec::new()),
                };
                RuleView {
                    kind: spec.kind,
                    name: spec.name.clone(),
                    query: spec.expr.text.clone(),
                    for_s: spec.for_.as_secs_f64(),
                    keep_firing_for_s: spec.keep_firing_for.as_secs_f64(),
                    labels: spec.labels.clone(),
                    annotations: spec.annotations.clone(),
                    health: slot.status.health,
                    last_error: slot.status.last_error.clone(),
                    last_eval_ms: slot.status.last_eval_ms,
                    eval_seconds: slot.status.eval_duration.as_secs_f64(),
                    state,
                    alerts,
                }
            })
            .collect();
        GroupView {
            file: g.file.clone(),
            name: g.name.clone(),
            interval_s: g.interval_ms as f64 / 1000.0,
            query_offset_s: g.query_offset_ms as f64 / 1000.0,
            limit: g.limit,
            last_eval_ms: g.last_eval_ms,
            eval_seconds: g.last_duration.as_secs_f64(),
            rules,
        }
    }
}

/// Go's `strconv.FormatFloat(v, 'e', -1, 64)`, which Prometheus uses for alert values.
pub fn format_value(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf".into() } else { "-Inf".into() };
    }
    let s = format!("{v:e}");
    let (mant, exp) = s.split_once('e').unwrap_or((s.as_str(), "0"));
    let (sign, digits) = match exp.strip_prefix('-') {
        Some(d) => ('-', d),
        None => ('+', exp),
    };
    format!("{mant}e{sign}{digits:0>2}")
}

/// Go's RFC3339Nano for a millisecond timestamp (trailing zeros trimmed);
/// Go's zero time for 0 (never).
pub fn format_time(ms: i64) -> String {
    if ms == 0 {
        return "0001-01-01T00:00:00Z".into();
    }
    let secs = ms.div_euclid(1000);
    let frac = ms.rem_euclid(1000);
    let base = chrono::DateTime::from_timestamp(secs, 0)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%S").to_string())
        .unwrap_or_else(|| "0001-01-01T00:00:00".into());
    if frac == 0 {
        format!("{base}Z")
    } else {
        let f = format!("{frac:03}");
        format!("{base}.{}Z", f.trim_end_matches('0'))
    }
}

fn label_map(l: &Labels) -> Value {
    let mut m = Map::new();
    for p in l.iter() {
        m.insert(p.name.to_string(), Value::String(p.value.to_string()));
    }
    Value::Object(m)
}

fn pairs_map(p: &[(String, String)]) -> Value {
    Value::Object(p.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect())
}

fn alert_json(a: &AlertView) -> Value {
    let mut m = Map::new();
    m.insert("labels".into(), label_map(&a.labels));
    m.insert("annotations".into(), label_map(&a.annotations));
    m.insert("state".into(), json!(a.state.as_str()));
    m.insert("activeAt".into(), json!(format_time(a.active_at)));
    if let Some(k) = a.keep_firing_since {
        m.insert("keepFiringSince".into(), json!(format_time(k)));
    }
    m.insert("value".into(), json!(format_value(a.value)));
    Value::Object(m)
}

/// Filters of `/api/v1/rules`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RulesFilter {
    /// `type=alert|record`.
    pub kind: Option<RuleKind>,
    /// `rule_name[]`.
    pub rule_names: Vec<String>,
    /// `rule_group[]`.
    pub rule_groups: Vec<String>,
    /// `file[]`.
    pub files: Vec<String>,
    /// `exclude_alerts=true`.
    pub exclude_alerts: bool,
}

impl RulesFilter {
    /// Reads the filters from query/form pairs (GET and POST alike). An
    /// unknown `type` is a client error, with Prometheus's message.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<Self, String> {
        let mut f = RulesFilter::default();
        for (k, v) in pairs {
            match k {
                "type" => {
                    f.kind = match v.to_ascii_lowercase().as_str() {
                        "" => None,
                        "alert" => Some(RuleKind::Alerting),
                        "record" => Some(RuleKind::Recording),
                        _ => return Err(format!("unsupported type {v:?}: expected \"alert\" or \"record\"")),
                    }
                }
                "rule_name[]" => f.rule_names.push(v.to_string()),
                "rule_group[]" => f.rule_groups.push(v.to_string()),
                "file[]" => f.files.push(v.to_string()),
                "exclude_alerts" => {
                    f.exclude_alerts = match v {
                        "true" | "1" => true,
                        "false" | "0" | "" => false,
                        _ => return Err(format!("invalid exclude_alerts {v:?}")),
                    }
                }
                _ => {}
            }
        }
        Ok(f)
    }

    fn filtering(&self) -> bool {
        self.kind.is_some() || !self.rule_names.is_empty() || !self.rule_groups.is_empty() || !self.files.is_empty()
    }
}

/// The `data` of `/api/v1/rules`: `{"groups":[...]}`. Groups left without
/// rules by a filter are omitted, as Prometheus does.
pub fn rules_data(groups: &[GroupView], f: &RulesFilter) -> Value {
    let mut out = Vec::new();
    for g in groups {
        if !f.rule_groups.is_empty() && !f.rule_groups.contains(&g.name) {
            continue;
        }
        if !f.files.is_empty() && !f.files.contains(&g.file) {
            continue;
        }
        let mut rules = Vec::new();
        for r in &g.rules {
            if f.kind.is_some_and(|k| k != r.kind) {
                continue;
            }
            if !f.rule_names.is_empty() && !f.rule_names.contains(&r.name) {
                continue;
            }
            let mut m = Map::new();
            if r.kind == RuleKind::Alerting {
                m.insert("state".into(), json!(r.state.as_str()));
            }
            m.insert("name".into(), json!(r.name));
            m.insert("query".into(), json!(r.query));
            if r.kind == RuleKind::Alerting {
                m.insert("duration".into(), json!(r.for_s));
                m.insert("keepFiringFor".into(), json!(r.keep_firing_for_s));
            }
            m.insert("labels".into(), pairs_map(&r.labels));
            if r.kind == RuleKind::Alerting {
                m.insert("annotations".into(), pairs_map(&r.annotations));
                if !f.exclude_alerts {
                    m.insert("alerts".into(), Value::Array(r.alerts.iter().map(alert_json).collect()));
                }
            }
            m.insert("health".into(), json!(r.health.as_str()));
            if let Some(e) = &r.last_error {
                m.insert("lastError".into(), json!(e));
            }
            m.insert("evaluationTime".into(), json!(r.eval_seconds));
            m.insert("lastEvaluation".into(), json!(format_time(r.last_eval_ms)));
            m.insert("type".into(), json!(if r.kind == RuleKind::Alerting { "alerting" } else { "recording" }));
            rules.push(Value::Object(m));
        }
        if f.filtering() && rules.is_empty() {
            continue;
        }
        out.push(json!({
            "name": g.name,
            "file": g.file,
            "rules": rules,
            "interval": g.interval_s,
            "limit": g.limit,
            "evaluationTime": g.eval_seconds,
            "lastEvaluation": format_time(g.last_eval_ms),
        }));
    }
    json!({ "groups": out })
}

/// The `data` of `/api/v1/alerts`: every pending and firing alert.
pub fn alerts_data(groups: &[GroupView]) -> Value {
    let alerts: Vec<Value> =
        groups.iter().flat_map(|g| g.rules.iter()).flat_map(|r| r.alerts.iter()).map(alert_json).collect();
    json!({ "alerts": alerts })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_float_and_time_formats() {
        assert_eq!(format_value(1.0), "1e+00");
        assert_eq!(format_value(0.05), "5e-02");
        assert_eq!(format_value(123.456), "1.23456e+02");
        assert_eq!(format_value(1e300), "1e+300");
        assert_eq!(format_value(f64::INFINITY), "+Inf");
        assert_eq!(format_value(f64::NAN), "NaN");
        assert_eq!(format_time(1_700_000_000_500), "2023-11-14T22:13:20.5Z");
        assert_eq!(format_time(1_700_000_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(format_time(1_700_000_000_012), "2023-11-14T22:13:20.012Z");
        assert_eq!(format_time(0), "0001-01-01T00:00:00Z");
    }

    #[test]
    fn filter_parsing() {
        let f = RulesFilter::from_pairs([("type", "alert"), ("rule_name[]", "A"), ("rule_name[]", "B")]).unwrap();
        assert_eq!(f.kind, Some(RuleKind::Alerting));
        assert_eq!(f.rule_names, ["A", "B"]);
        assert!(RulesFilter::from_pairs([("type", "bogus")]).is_err());
    }
}
