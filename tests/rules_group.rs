//! One group's evaluation at a timestamp: recording results, work sharing,
//! ALERTS series and stale markers, limits, template errors, notifications.

use std::time::Duration;

use promlite::labels;
use promlite::model::{is_stale_nan, Labels, Matcher, Sample};
use promlite::rules::group::{EvalDeps, Group, Health};
use promlite::rules::testing::{RecordingSink, ScriptedQuerier, SelectorQuerier, SimpleTemplates};
use promlite::rules::validate::load_text;
use promlite::rules::{GroupSpec, RuleQuerier};
use promlite::storage::memory::MemStorage;
use promlite::storage::{Appendable, Queryable};

fn spec(yaml: &str) -> GroupSpec {
    let (mut groups, problems) = load_text("t.yml", yaml, &SimpleTemplates::default());
    assert!(problems.is_empty(), "{problems:?}");
    groups.remove(0)
}

struct Env {
    store: MemStorage,
    tmpl: SimpleTemplates,
    sink: RecordingSink,
    external: Labels,
}

impl Env {
    fn new() -> Self {
        Env {
            store: MemStorage::new(),
            tmpl: SimpleTemplates::default(),
            sink: RecordingSink::default(),
            external: Labels::empty(),
        }
    }
    fn deps<'a>(&'a self, q: &'a dyn RuleQuerier) -> EvalDeps<'a> {
        EvalDeps {
            querier: q,
            queryable: &self.store,
            appendable: &self.store,
            templates: &self.tmpl,
            sink: &self.sink,
            external_labels: &self.external,
            external_url: "http://promlite:9090",
            resend_delay_ms: 60_000,
        }
    }
    fn samples(&self, matchers: &[Matcher]) -> Vec<(Labels, Vec<Sample>)> {
        self.store
            .select(i64::MIN, i64::MAX, matchers)
            .unwrap()
            .into_iter()
            .map(|mut s| {
                let mut v = Vec::new();
                s.samples.collect_into(&mut v);
                (s.labels, v)
            })
            .collect()
    }
}

fn name(n: &str) -> Vec<Matcher> {
    vec![Matcher::equal("__name__", n)]
}

#[test]
fn recording_results_are_visible_to_later_rules_and_reads_are_shared() {
    let env = Env::new();
    let mut app = env.store.appender();
    app.append(&labels!("__name__" => "src", "job" => "api"), 50_000, 7.0).unwrap();
    app.commit().unwrap();
    let mut g = Group::new(
        spec(
            "groups:\n- name: g\n  labels: {team: infra}\n  rules:\n  - record: a:copy\n    expr: src\n    labels: {team: web, kind: copy}\n  - record: b:copy\n    expr: a:copy\n  - record: c:copy\n    expr: src\n",
        ),
        Duration::from_secs(15),
        Duration::ZERO,
    );
    let q = SelectorQuerier;
    g.eval(60_000, &env.deps(&q));
    assert!(
        g.rules.iter().all(|r| r.status.health == Health::Ok),
        "{:?}",
        g.rules.iter().map(|r| &r.status).collect::<Vec<_>>()
    );
    let a = env.samples(&name("a:copy"));
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].0, labels!("__name__" => "a:copy", "job" => "api", "team" => "web", "kind" => "copy"));
    assert_eq!(a[0].1, vec![Sample::new(60_000, 7.0)]);
    let b = env.samples(&name("b:copy"));
    assert_eq!(b[0].1, vec![Sample::new(60_000, 7.0)], "the second rule read the first one's result");
    assert_eq!(b[0].0.get("team"), Some("infra"), "group labels apply where the rule sets none");
    // src read once for rules 1 and 3; a:copy read once.
    assert_eq!(g.last_cache_stats.storage_selects, 2);
    assert_eq!(g.last_cache_stats.hits, 1);
}

#[test]
fn query_offset_shifts_query_and_sample_times() {
    let env = Env::new();
    let q = ScriptedQuerier::new();
    q.set("vector(1)", 45_000, vec![(Labels::empty(), 3.0)]);
    let mut g = Group::new(
        spec("groups:\n- name: g\n  query_offset: 15s\n  rules:\n  - record: one\n    expr: vector(1)\n"),
        Duration::from_secs(15),
        Duration::ZERO,
    );
    g.eval(60_000, &env.deps(&q));
    assert_eq!(q.calls(), vec![("vector(1)".to_string(), 45_000)]);
    assert_eq!(env.samples(&name("one"))[0].1, vec![Sample::new(45_000, 3.0)]);
}

const ALERT_GROUP: &str = r#"groups:
- name: triton
  rules:
  - alert: TritonHighErrorRate
    expr: ratio > 0.02
    for: 30s
    labels: {severity: warning, model: "{{ $labels.model }}-x"}
    annotations:
      description: "ratio {{ $value }} on {{ $labels.model }}"
  - record: after
    expr: vector(1)
"#;

#[test]
fn alerts_series_written_each_evaluation_and_staled_when_they_end() {
    let env = Env::new();
    let q = ScriptedQuerier::new();
    q.declare("vector(1)");
    let hit = vec![(labels!("model" => "resnet"), 0.05)];
    for t in [0, 15_000, 30_000, 45_000] {
        q.set("ratio > 0.02", t, hit.clone());
        q.set("vector(1)", t, vec![(Labels::empty(), 1.0)]);
    }
    q.declare("ratio > 0.02");
    let mut g = Group::new(spec(ALERT_GROUP), Duration::from_secs(15), Duration::ZERO);
    for t in [0, 15_000, 30_000, 45_000, 60_000] {
        g.eval(t, &env.deps(&q));
    }
    let pending = labels!("__name__" => "ALERTS", "alertname" => "TritonHighErrorRate", "alertstate" => "pending", "model" => "resnet-x", "severity" => "warning");
    let firing = labels!("__name__" => "ALERTS", "alertname" => "TritonHighErrorRate", "alertstate" => "firing", "model" => "resnet-x", "severity" => "warning");
    let all = env.samples(&name("ALERTS"));
    let get = |l: &Labels| all.iter().find(|(x, _)| x == l).map(|(_, s)| s.clone()).unwrap();
    let p = get(&pending);
    assert_eq!(p.iter().map(|s| s.t).collect::<Vec<_>>(), [0, 15_000, 30_000]);
    assert!(is_stale_nan(p[2].v), "pending series ends with a stale marker when it turns firing");
    let f = get(&firing);
    assert_eq!(f.iter().map(|s| s.t).collect::<Vec<_>>(), [30_000, 45_000, 60_000]);
    assert_eq!(f[1].v, 1.0);
    assert!(is_stale_nan(f[2].v), "firing series staled when the alert resolves");
    let fs = env.samples(&name("ALERTS_FOR_STATE"));
    assert_eq!(fs[0].1[0], Sample::new(0, 0.0), "value = activeAt in seconds");
    // The later rule ran every time; its series staled when its result emptied.
    let after = &env.samples(&name("after"))[0].1;
    assert_eq!(after.len(), 5);
    assert!(is_stale_nan(after[4].v) && after[4].t == 60_000);
}

#[test]
fn notifications_resent_and_resolved() {
    let env = Env::new();
    let q = ScriptedQuerier::new();
    q.declare("vector(1)");
    q.declare("ratio > 0.02");
    let hit = vec![(labels!("model" => "resnet"), 0.05)];
    for t in (0..=90_000).step_by(15_000) {
        q.set("ratio > 0.02", t, hit.clone());
    }
    let mut g = Group::new(spec(ALERT_GROUP), Duration::from_secs(15), Duration::ZERO);
    for t in (0..=105_000).step_by(15_000) {
        g.eval(t, &env.deps(&q));
    }
    let batches = env.sink.batches();
    // Fires at 30s, resent at 90s (1m resend delay), resolved at 105s.
    assert_eq!(batches.len(), 3, "{batches:?}");
    let first = &batches[0][0];
    assert_eq!(first.starts_at, 0);
    assert_eq!(first.ends_at, 30_000 + 4 * 60_000);
    assert_eq!(first.annotations.get("description"), Some("ratio 0.05 on resnet"));
    assert!(
        first.generator_url.starts_with("http://promlite:9090/graph?g0.expr=ratio+%3E+0.02"),
        "{}",
        first.generator_url
    );
    assert_eq!(batches[1][0].ends_at, 90_000 + 240_000);
    assert_eq!(batches[2][0].ends_at, 105_000, "resolved alert carries its resolve time");
}

#[test]
fn limit_error_and_template_error_do_not_stop_the_group() {
    let env = Env::new();
    let q = ScriptedQuerier::new();
    q.set("two", 0, vec![(labels!("a" => "1"), 1.0), (labels!("a" => "2"), 2.0)]);
    q.set("one", 0, vec![(labels!("a" => "1"), 1.0)]);
    let mut g = Group::new(
        spec(
            "groups:\n- name: g\n  limit: 1\n  rules:\n  - record: r:two\n    expr: two\n  - alert: T\n    expr: one\n    annotations: {summary: '{{ $unknown }}'}\n  - record: r:one\n    expr: one\n  - record: r:missing\n    expr: missing\n",
        ),
        Duration::from_secs(15),
        Duration::ZERO,
    );
    g.eval(0, &env.deps(&q));
    let st: Vec<_> = g.rules.iter().map(|r| (r.status.health, r.status.last_error.clone())).collect();
    assert_eq!(st[0], (Health::Err, Some("exceeded limit of 1 with 2 series".into())));
    assert_eq!(st[1].0, Health::Ok);
    assert_eq!(st[2].0, Health::Ok);
    assert_eq!(st[3], (Health::Err, Some("no script for \"missing\"".into())));
    assert!(env.samples(&name("r:two")).is_empty(), "nothing written over the limit");
    assert_eq!(env.samples(&name("r:one")).len(), 1);
    let sent = env.sink.batches();
    assert!(sent[0][0].annotations.get("summary").unwrap().starts_with("<error expanding template:"));
    assert_eq!(g.metrics.rule_failures.load(std::sync::atomic::Ordering::Relaxed), 2);
}
