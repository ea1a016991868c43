//! Alert state across a restart: table tests over the group, the state file
//! and the first evaluation after start.

use std::time::Duration;

use promlite::labels;
use promlite::model::{is_stale_nan, Labels, Matcher};
use promlite::rules::alerting::AlertState;
use promlite::rules::group::{EvalDeps, Group};
use promlite::rules::restore::StateStore;
use promlite::rules::testing::{RecordingSink, ScriptedQuerier, SimpleTemplates};
use promlite::rules::validate::load_text;
use promlite::storage::memory::MemStorage;
use promlite::storage::Queryable;

const EXPR: &str = "failure_ratio > 0.02";

struct Case {
    name: &'static str,
    for_s: u64,
    keep_firing_s: u64,
    /// Evaluation times (s) before the crash; the condition holds at each.
    before: &'static [i64],
    /// Evaluation times (s) after the restart, and whether the condition holds.
    after: &'static [(i64, bool)],
    /// Expected (state, activeAt s) after each evaluation after the restart.
    want: &'static [(AlertState, Option<i64>)],
    /// Whether the first evaluation after the restart sends a resolve.
    resolve_sent_at_start: bool,
}

const CASES: &[Case] = &[
    Case {
        name: "firing alert with a short for comes back firing with its activeAt",
        for_s: 30,
        keep_firing_s: 0,
        before: &[0, 15, 30, 45],
        after: &[(60, true), (75, true)],
        want: &[(AlertState::Firing, Some(0)), (AlertState::Firing, Some(0))],
        resolve_sent_at_start: false,
    },
    Case {
        name: "pending alert keeps activeAt and fires when it would have",
        for_s: 120,
        keep_firing_s: 0,
        before: &[0, 15, 30],
        after: &[(90, true), (105, true), (120, true)],
        want: &[(AlertState::Pending, Some(0)), (AlertState::Pending, Some(0)), (AlertState::Firing, Some(0))],
        resolve_sent_at_start: false,
    },
    Case {
        name: "firing alert whose condition ended during the outage resolves at once",
        for_s: 30,
        keep_firing_s: 0,
        before: &[0, 15, 30, 45],
        after: &[(60, false)],
        want: &[(AlertState::Inactive, None)],
        resolve_sent_at_start: true,
    },
    Case {
        name: "firing alert with keep_firing_for keeps firing over an empty first result",
        for_s: 0,
        keep_firing_s: 60,
        before: &[0, 15],
        after: &[(30, false), (60, false), (90, false)],
        want: &[(AlertState::Firing, Some(0)), (AlertState::Firing, Some(0)), (AlertState::Inactive, None)],
        resolve_sent_at_start: false,
    },
    Case {
        name: "outage longer than the lookback: re-evaluated from scratch",
        for_s: 120,
        keep_firing_s: 0,
        before: &[0, 15, 30],
        after: &[(30 + 400, true), (30 + 415, true)],
        want: &[(AlertState::Pending, Some(430)), (AlertState::Pending, Some(430))],
        resolve_sent_at_start: false,
    },
];

fn group(c: &Case) -> Group {
    let yaml = format!(
        "groups:\n- name: triton\n  rules:\n  - alert: TritonHighErrorRate\n    expr: {EXPR}\n    for: {}s\n    keep_firing_for: {}s\n    labels: {{severity: warning}}\n",
        c.for_s, c.keep_firing_s
    );
    let (mut gs, p) = load_text("triton.yml", &yaml, &SimpleTemplates::default());
    assert!(p.is_empty(), "{p:?}");
    Group::new(gs.remove(0), Duration::from_secs(15), Duration::ZERO)
}

fn state_of(g: &Group) -> (AlertState, Option<i64>) {
    let ar = g.alerting_rules().next().unwrap();
    match ar.current().first() {
        Some(a) => (a.state, Some(a.active_at / 1000)),
        None => (AlertState::Inactive, None),
    }
}

#[test]
fn restore_table() {
    for c in CASES {
        let store = MemStorage::new();
        let tmpl = SimpleTemplates::default();
        let sink = RecordingSink::default();
        let ext = Labels::empty();
        let q = ScriptedQuerier::new();
        q.declare(EXPR);
        let hit = vec![(labels!("__name__" => "failure_ratio", "model" => "resnet"), 0.05)];
        let deps = EvalDeps {
            querier: &q,
            queryable: &store,
            appendable: &store,
            templates: &tmpl,
            sink: &sink,
            external_labels: &ext,
            external_url: "",
            resend_delay_ms: 60_000,
        };
        let dir = tempfile::tempdir().unwrap();
        let states = StateStore::new(dir.path());

        let mut g1 = group(c);
        for &t in c.before {
            q.set(EXPR, t * 1000, hit.clone());
            g1.eval(t * 1000, &deps);
            states.store(&g1.saved_state(), true).unwrap();
        }
        drop(g1); // the crash: only the state file survives
        sink.take();

        let mut g2 = group(c);
        let saved = states.load("triton.yml", "triton").unwrap().expect("state file");
        g2.set_restore(saved, 5 * 60 * 1000);
        for (i, (&(t, holds), want)) in c.after.iter().zip(c.want).enumerate() {
            if holds {
                q.set(EXPR, t * 1000, hit.clone());
            }
            g2.eval(t * 1000, &deps);
            assert_eq!(state_of(&g2), *want, "{}: after-restart evaluation {i} at {t}s", c.name);
            if i == 0 && want.0 == AlertState::Inactive {
                // The series the alert had before the crash end with a stale marker.
                let series = store
                    .select(
                        i64::MIN,
                        i64::MAX,
                        &[Matcher::equal("__name__", "ALERTS"), Matcher::equal("alertstate", "firing")],
                    )
                    .unwrap();
                assert!(!series.is_empty(), "{}", c.name);
                for mut s in series {
                    let mut v = Vec::new();
                    s.samples.collect_into(&mut v);
                    let last = v.last().unwrap();
                    assert!(is_stale_nan(last.v) && last.t == t * 1000, "{}: {} {v:?}", c.name, s.labels);
                }
            }
            if i == 0 {
                let sent = sink.take();
                let resolved = sent.iter().flatten().any(|a| a.ends_at == t * 1000);
                assert_eq!(resolved, c.resolve_sent_at_start, "{}: resolve at start ({sent:?})", c.name);
                let refired = sent.iter().flatten().any(|a| a.starts_at == t * 1000);
                if want.1 == Some(0) {
                    assert!(!refired, "{}: Alertmanager must see no new alert start", c.name);
                }
            }
        }
    }
}

#[test]
fn damaged_state_file_is_ignored_not_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let states = StateStore::new(dir.path());
    std::fs::write(states.path_for("triton.yml", "triton"), b"promlite-rules-state 1 00000000\n{}").unwrap();
    assert!(states.load("triton.yml", "triton").is_err());
}
