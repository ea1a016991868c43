//! The rule engine's own cost per evaluation cycle: 1,000 rules (the example
//! rules' shapes multiplied across label values), with the PromQL part replaced
//! by precomputed results so that only rules' work is measured: alert state,
//! label and annotation building, ALERTS/ALERTS_FOR_STATE and recording-rule
//! series, stale tracking and notification bookkeeping.
//!
//! Run: `cargo bench --bench rules_eval`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};

use promlite::model::{Labels, LabelsBuilder};
use promlite::rules::group::{EvalDeps, Group};
use promlite::rules::seams::{QuerySample, RuleExpr, RuleQuerier};
use promlite::rules::testing::SimpleTemplates;
use promlite::rules::validate::load_text;
use promlite::storage::{AppendError, Appendable, Appender, Queryable, SeriesRef, StorageError};

/// Accepts and discards appends, so the bench measures rules, not storage.
struct NullStorage;

struct NullAppender;

impl Appender for NullAppender {
    fn append(&mut self, _l: &Labels, _t: i64, _v: f64) -> Result<SeriesRef, AppendError> {
        Ok(SeriesRef(0))
    }
    fn append_ref(&mut self, _s: SeriesRef, _t: i64, _v: f64) -> Result<(), AppendError> {
        Ok(())
    }
    fn commit(self: Box<Self>) -> Result<(), StorageError> {
        Ok(())
    }
    fn rollback(self: Box<Self>) {}
}

impl Appendable for NullStorage {
    fn appender(&self) -> Box<dyn Appender + '_> {
        Box::new(NullAppender)
    }
}

impl Queryable for NullStorage {
    fn select(
        &self,
        _a: i64,
        _b: i64,
        _m: &[promlite::model::Matcher],
    ) -> Result<Vec<promlite::storage::Series>, StorageError> {
        Ok(Vec::new())
    }
    fn label_names(&self, _a: i64, _b: i64, _m: &[promlite::model::Matcher]) -> Result<Vec<String>, StorageError> {
        Ok(Vec::new())
    }
    fn label_values(
        &self,
        _n: &str,
        _a: i64,
        _b: i64,
        _m: &[promlite::model::Matcher],
    ) -> Result<Vec<String>, StorageError> {
        Ok(Vec::new())
    }
}

/// Every expression returns the same `n` series (one per instance).
struct Fixed(Vec<QuerySample>);

impl RuleQuerier for Fixed {
    fn instant(&self, _e: &RuleExpr, _ts: i64, _s: &dyn Queryable) -> Result<Vec<QuerySample>, String> {
        Ok(self.0.clone())
    }
}

fn rules_yaml(groups: usize, per_group: usize) -> String {
    let mut y = String::from("groups:\n");
    for g in 0..groups {
        y.push_str(&format!("- name: svc{g}\n  rules:\n"));
        for r in 0..per_group {
            if r % 2 == 0 {
                y.push_str(&format!(
                    "  - record: job:http_requests_5xx:ratio{r}\n    expr: sum by (job, instance) (rate(http_requests_total{{status=~\"5..\"}}[5m]))\n"
                ));
            } else {
                y.push_str(&format!(
                    "  - alert: APIHighErrorRate{r}\n    expr: ratio > 0.05\n    for: 5m\n    labels: {{severity: critical}}\n    annotations:\n      summary: \"{{{{ $labels.job }}}} 5xx ratio high\"\n      description: \"{{{{ $labels.instance }}}} answers {{{{ $value }}}} with 5xx\"\n"
                ));
            }
        }
    }
    y
}

fn bench(c: &mut Criterion) {
    let tmpl = SimpleTemplates::default();
    let (specs, problems) = load_text("bench.yml", &rules_yaml(50, 20), &tmpl);
    assert!(problems.is_empty(), "{problems:?}");
    let result: Vec<QuerySample> = (0..10)
        .map(|i| {
            let mut b = LabelsBuilder::new();
            b.set("job", "api").set("instance", &format!("10.0.0.{i}:8000"));
            (b.build(), 0.07)
        })
        .collect();
    let q = Fixed(result);
    let store = NullStorage;
    let ext = Labels::empty();
    let sink = promlite::rules::seams::NoopSink;
    let deps = EvalDeps {
        querier: &q,
        queryable: &store,
        appendable: &store,
        templates: &tmpl,
        sink: &sink,
        external_labels: &ext,
        external_url: "http://promlite:9090",
        resend_delay_ms: 60_000,
    };
    let mut groups: Vec<Group> =
        specs.into_iter().map(|s| Group::new(s, Duration::from_secs(15), Duration::ZERO)).collect();
    // Correctness before timing: after 6 minutes every alert fires.
    for t in 0..25 {
        for g in &mut groups {
            g.eval(t * 15_000, &deps);
        }
    }
    let firing: usize = groups.iter().flat_map(|g| g.alerting_rules()).map(|r| r.current().len()).sum();
    assert_eq!(firing, 500 * 10);
    let mut t = 25 * 15_000;
    c.bench_function("rules_cycle_1000_rules_10_series_each", |b| {
        b.iter(|| {
            t += 15_000;
            for g in &mut groups {
                g.eval(black_box(t), &deps);
            }
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
