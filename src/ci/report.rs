//! Renderings of alert timelines: the backtest table and JSON, and the gate's
//! JSON report, JUnit XML and human summary.

use crate::promql::value::format_float;
use serde_json::{json, Map, Value};

use super::timeline::{Episode, RuleTimeline};
use super::{format_duration, format_time};
use crate::junit::{self, Outcome, TestCase, TestSuite};
use crate::model::{Labels, Matcher};

/// The default of `--fail-on`.
pub const DEFAULT_FAIL_ON: &str = r#"severity=~"critical|page""#;

/// Which alerts fail a gate: label matchers as in a series selector
/// (`severity="critical", team="api"`, braces optional; `or` between sets).
#[derive(Debug, Clone)]
pub struct FailOn {
    /// The text given.
    pub text: String,
    sets: Vec<Vec<Matcher>>,
}

impl FailOn {
    /// Parses `severity=~"critical|page"` or `{alertname="X"}`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let t = text.trim();
        let sel = if t.starts_with('{') { t.to_string() } else { format!("{{{t}}}") };
        let sets =
            crate::promql::convert::parse_selector(&sel).map_err(|e| format!("invalid --fail-on {text:?}: {}", e.0))?;
        Ok(FailOn { text: text.to_string(), sets })
    }

    /// Whether an alert with `labels` fails the gate.
    pub fn matches(&self, labels: &Labels) -> bool {
        self.sets.iter().any(|set| crate::model::matcher::matches_all(labels, set))
    }
}

/// What one alerting rule did over a run.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleSummary {
    /// Whether any of its alerts fired.
    pub fired: bool,
    /// Whether an alert that fired matches `--fail-on`.
    pub fails: bool,
    /// First time any of its alerts started firing, ms.
    pub first_firing: Option<i64>,
    /// Longest single firing stretch, ms (to the end of the run when still firing).
    pub longest_firing_ms: i64,
    /// The highest query value seen while any alert was active.
    pub peak: Option<f64>,
}

/// Summarises `t` for a run that ended at `end_ms`.
pub fn summarize(t: &RuleTimeline, end_ms: i64, fail_on: Option<&FailOn>) -> RuleSummary {
    let mut s = RuleSummary { fired: false, fails: false, first_firing: None, longest_firing_ms: 0, peak: None };
    for a in &t.alerts {
        for e in &a.episodes {
            if let Some(f) = e.firing_at {
                s.fired = true;
                s.first_firing = Some(s.first_firing.map_or(f, |x| x.min(f)));
                s.longest_firing_ms = s.longest_firing_ms.max(e.firing_ms(end_ms));
                if fail_on.is_some_and(|m| m.matches(&a.labels)) {
                    s.fails = true;
                }
            }
            s.peak = Some(match s.peak {
                Some(p) if p >= e.peak || e.peak.is_nan() => p,
                _ => e.peak,
            });
        }
    }
    s
}

fn opt_time(t: Option<i64>) -> String {
    t.map_or_else(|| "-".to_string(), format_time)
}

fn shown_labels(l: &Labels) -> String {
    let mut b = l.to_builder();
    b.del("alertname");
    b.build().to_string()
}

fn labels_json(l: &Labels) -> Value {
    Value::Object(l.iter().map(|p| (p.name.to_string(), Value::String(p.value.to_string()))).collect())
}

fn time_json(t: Option<i64>) -> Value {
    t.map_or(Value::Null, |t| Value::String(format_time(t)))
}

fn episode_json(e: &Episode) -> Value {
    json!({
        "pending_at": format_time(e.pending_at),
        "firing_at": time_json(e.firing_at),
        "resolved_at": time_json(e.resolved_at),
        "peak": e.peak,
    })
}

fn timeline_json(t: &RuleTimeline) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("file".into(), json!(t.file));
    m.insert("group".into(), json!(t.group));
    m.insert("rule".into(), json!(t.rule));
    let alerts: Vec<Value> = t
        .alerts
        .iter()
        .map(|a| {
            json!({
                "labels": labels_json(&a.labels),
                "episodes": a.episodes.iter().map(episode_json).collect::<Vec<_>>(),
            })
        })
        .collect();
    m.insert("alerts".into(), Value::Array(alerts));
    if t.dropped_alerts > 0 {
        m.insert("dropped_alerts".into(), json!(t.dropped_alerts));
    }
    m
}

/// The backtest's JSON document.
pub fn backtest_json(timelines: &[RuleTimeline], start_ms: i64, end_ms: i64, evaluations: u64) -> Value {
    json!({
        "start": format_time(start_ms),
        "end": format_time(end_ms),
        "evaluations": evaluations,
        "rules": timelines.iter().map(|t| Value::Object(timeline_json(t))).collect::<Vec<_>>(),
    })
}

/// The backtest table: one row per episode, and one row for each rule that
/// never became active.
pub fn backtest_table(timelines: &[RuleTimeline]) -> String {
    let mut rows: Vec<[String; 6]> =
        vec![["RULE", "ALERT", "PENDING AT", "FIRING AT", "RESOLVED AT", "PEAK"].map(String::from)];
    for t in timelines {
        let mut any = false;
        for a in &t.alerts {
            for e in &a.episodes {
                any = true;
                rows.push([
                    t.rule.clone(),
                    shown_labels(&a.labels),
                    format_time(e.pending_at),
                    opt_time(e.firing_at),
                    opt_time(e.resolved_at),
                    format_float(e.peak),
                ]);
            }
        }
        if !any {
            rows.push([t.rule.clone(), "(never active)".into(), "-".into(), "-".into(), "-".into(), "-".into()]);
        }
    }
    let mut widths = [0usize; 6];
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    for r in &rows {
        let mut line = String::new();
        for (i, (c, w)) in r.iter().zip(widths).enumerate() {
            if i + 1 == r.len() {
                line.push_str(c);
            } else {
                line.push_str(&format!("{c:<w$}  "));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// One alert timeline as text lines (for JUnit failure text and summaries).
pub fn timeline_text(t: &RuleTimeline, end_ms: i64) -> String {
    let mut out = String::new();
    for a in &t.alerts {
        for e in &a.episodes {
            let fired = match e.firing_at {
                Some(f) => format!("firing at {} for {}", format_time(f), format_duration(e.firing_ms(end_ms))),
                None => "never fired".to_string(),
            };
            out.push_str(&format!(
                "{}: pending at {}, {fired}, resolved at {}, peak {}\n",
                shown_labels(&a.labels),
                format_time(e.pending_at),
                e.resolved_at.map_or_else(|| "- (still active at the end)".to_string(), format_time),
                format_float(e.peak),
            ));
        }
    }
    if t.dropped_alerts > 0 {
        out.push_str(&format!("({} more label sets not tracked)\n", t.dropped_alerts));
    }
    out
}

/// The gate's outcome over all rules.
#[derive(Debug, Clone)]
pub struct GateResult<'a> {
    /// Timelines of every alerting rule.
    pub timelines: &'a [RuleTimeline],
    /// When the run started, ms.
    pub start_ms: i64,
    /// When it ended, ms.
    pub end_ms: i64,
    /// The `--fail-on` matchers.
    pub fail_on: &'a FailOn,
}

impl GateResult<'_> {
    /// Summaries, in the timelines' order.
    pub fn summaries(&self) -> Vec<RuleSummary> {
        self.timelines.iter().map(|t| summarize(t, self.end_ms, Some(self.fail_on))).collect()
    }

    /// Whether the gate fails (an alert matching `--fail-on` fired).
    pub fn failed(&self) -> bool {
        self.summaries().iter().any(|s| s.fails)
    }

    /// The `--report-json` document.
    pub fn json(&self) -> Value {
        let rules: Vec<Value> = self
            .timelines
            .iter()
            .zip(self.summaries())
            .map(|(t, s)| {
                let mut m = timeline_json(t);
                m.insert("fired".into(), json!(s.fired));
                m.insert("fails_gate".into(), json!(s.fails));
                m.insert("first_firing".into(), time_json(s.first_firing));
                m.insert("longest_firing_seconds".into(), json!(s.longest_firing_ms as f64 / 1000.0));
                m.insert("peak".into(), s.peak.map_or(Value::Null, |p| json!(p)));
                Value::Object(m)
            })
            .collect();
        json!({
            "result": if self.failed() { "failed" } else { "passed" },
            "fail_on": self.fail_on.text,
            "start": format_time(self.start_ms),
            "end": format_time(self.end_ms),
            "rules": rules,
        })
    }

    /// The `--report-junit` document: one test case per alerting rule.
    pub fn junit(&self) -> String {
        let mut suite = TestSuite::new("promlite gate");
        for (t, s) in self.timelines.iter().zip(self.summaries()) {
            let outcome = if s.fails {
                Outcome::Failed {
                    message: format!(
                        "alert {} fired (first at {}, longest {}, peak {}); matches --fail-on {}",
                        t.rule,
                        opt_time(s.first_firing),
                        format_duration(s.longest_firing_ms),
                        s.peak.map_or_else(|| "-".to_string(), format_float),
                        self.fail_on.text
                    ),
                    details: timeline_text(t, self.end_ms),
                }
            } else {
                Outcome::Passed
            };
            suite.cases.push(TestCase {
                name: t.rule.clone(),
                classname: format!("{};{}", t.file, t.group),
                time_seconds: 0.0,
                outcome,
            });
        }
        junit::render(&[suite])
    }

    /// The human summary printed on stdout.
    pub fn summary(&self) -> String {
        let sums = self.summaries();
        let failing = sums.iter().filter(|s| s.fails).count();
        let fired = sums.iter().filter(|s| s.fired).count();
        let mut out = format!(
            "promlite gate: {} to {} ({}), {} alerting rules, {fired} fired, {failing} matching --fail-on {}: {}\n",
            format_time(self.start_ms),
            format_time(self.end_ms),
            format_duration(self.end_ms - self.start_ms),
            self.timelines.len(),
            self.fail_on.text,
            if failing > 0 { "FAILED" } else { "PASSED" }
        );
        for (t, s) in self.timelines.iter().zip(&sums) {
            let status = if s.fails {
                "FAIL "
            } else if s.fired {
                "fired"
            } else {
                "ok   "
            };
            let peak = s.peak.map_or_else(|| "-".to_string(), format_float);
            let what = if s.fired {
                format!(
                    "first firing {}, longest firing {}, peak {peak}",
                    opt_time(s.first_firing),
                    format_duration(s.longest_firing_ms)
                )
            } else {
                format!("never fired, peak {peak}")
            };
            out.push_str(&format!("  {status}  {} ({};{}): {what}\n", t.rule, t.file, t.group));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ci::timeline::AlertTimeline;
    use crate::labels;

    fn timeline() -> RuleTimeline {
        RuleTimeline {
            file: "r.yml".into(),
            group: "g".into(),
            rule: "HighErr".into(),
            rule_labels: vec![],
            alerts: vec![AlertTimeline {
                labels: labels!("alertname" => "HighErr", "severity" => "critical"),
                episodes: vec![
                    Episode { pending_at: 0, firing_at: Some(60_000), resolved_at: Some(120_000), peak: 0.5 },
                    Episode { pending_at: 180_000, firing_at: Some(240_000), resolved_at: None, peak: 0.7 },
                ],
            }],
            dropped_alerts: 0,
        }
    }

    #[test]
    fn summary_and_fail_on() {
        let f = FailOn::parse(DEFAULT_FAIL_ON).unwrap();
        let s = summarize(&timeline(), 400_000, Some(&f));
        assert!(s.fired && s.fails);
        assert_eq!(s.first_firing, Some(60_000));
        assert_eq!(s.longest_firing_ms, 160_000, "the open episode runs to the end");
        assert_eq!(s.peak, Some(0.7));
        let w = FailOn::parse(r#"{severity="warning"}"#).unwrap();
        assert!(!summarize(&timeline(), 400_000, Some(&w)).fails);
        assert!(FailOn::parse("severity=~\"(\"").unwrap_err().contains("--fail-on"));
    }

    #[test]
    fn junit_fails_the_rule_with_its_timeline() {
        let t = vec![timeline()];
        let f = FailOn::parse(DEFAULT_FAIL_ON).unwrap();
        let g = GateResult { timelines: &t, start_ms: 0, end_ms: 400_000, fail_on: &f };
        assert!(g.failed());
        let x = g.junit();
        assert!(x.contains("<testcase name=\"HighErr\" classname=\"r.yml;g\""), "{x}");
        assert!(x.contains("pending at 1970-01-01T00:03:00Z, firing at 1970-01-01T00:04:00Z for 2m40s"), "{x}");
        assert_eq!(g.json()["result"], "failed");
        assert!(g
            .summary()
            .contains("FAIL   HighErr (r.yml;g): first firing 1970-01-01T00:01:00Z, longest firing 2m40s, peak 0.7"));
    }
}
