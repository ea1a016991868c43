//! The manager on a real clock with short intervals: aligned schedules,
//! restore after a killed runtime, reload, API views and metrics.

use std::sync::Arc;
use std::time::Duration;

use promlite::model::{is_stale_nan, Matcher, Sample};
use promlite::rules::alerting::AlertState;
use promlite::rules::api::{alerts_data, rules_data, RulesFilter};
use promlite::rules::schedule::{group_offset_ms, SystemClock};
use promlite::rules::testing::{RecordingSink, SelectorQuerier, SimpleTemplates};
use promlite::rules::validate::load_text;
use promlite::rules::{GroupSpec, Manager, ManagerDeps, ManagerOptions};
use promlite::storage::memory::MemStorage;
use promlite::storage::Queryable;

mod common;

fn specs(yaml: &str) -> Vec<GroupSpec> {
    let (gs, p) = load_text("m.yml", yaml, &SimpleTemplates::default());
    assert!(p.is_empty(), "{p:?}");
    gs
}

fn manager(store: &Arc<MemStorage>, state_dir: Option<std::path::PathBuf>) -> Arc<Manager> {
    let deps = ManagerDeps {
        querier: Arc::new(SelectorQuerier),
        queryable: store.clone(),
        appendable: store.clone(),
        templates: Arc::new(SimpleTemplates::default()),
        sink: Arc::new(RecordingSink::default()),
        clock: Arc::new(SystemClock),
    };
    Arc::new(Manager::new(ManagerOptions { state_dir, ..ManagerOptions::default() }, deps))
}

fn samples(store: &MemStorage, name: &str) -> Vec<Vec<Sample>> {
    store
        .select(i64::MIN, i64::MAX, &[Matcher::equal("__name__", name)])
        .unwrap()
        .into_iter()
        .map(|mut s| {
            let mut v = Vec::new();
            s.samples.collect_into(&mut v);
            v
        })
        .collect()
}

const GROUP: &str = "groups:\n- name: fast\n  interval: 100ms\n  rules:\n  - record: one\n    expr: vector(1)\n  - alert: Always\n    expr: vector(1)\n    for: 1h\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_run_on_aligned_timestamps_and_report_through_the_api() {
    let store = Arc::new(MemStorage::new());
    let m = manager(&store, None);
    m.update(specs(GROUP)).await;
    tokio::time::sleep(Duration::from_millis(750)).await;
    let views = m.group_views();
    let mut reg = prometheus_client::registry::Registry::default();
    reg.register_collector(Box::new(m.collector()));
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &reg).unwrap();
    assert!(text.contains("prometheus_rule_group_rules{rule_group=\"m.yml;fast\"} 2"), "{text}");
    assert!(text.contains("prometheus_rule_group_iterations_missed_total{rule_group=\"m.yml;fast\"} 0"), "{text}");
    m.stop().await;

    let one = samples(&store, "one");
    let ts: Vec<i64> = one[0].iter().map(|s| s.t).collect();
    assert!(ts.len() >= 4, "{ts:?}");
    let offset = group_offset_ms("m.yml", "fast", 100);
    assert!(ts.iter().all(|t| (t - offset).rem_euclid(100) == 0), "aligned to interval + offset: {ts:?}");
    assert!(ts.windows(2).all(|w| w[1] > w[0]), "{ts:?}");

    let v = &views[0];
    assert!(v.last_eval_ms > 0);
    assert_eq!(v.rules[1].state, AlertState::Pending);
    let data = rules_data(&views.iter().map(|v| (**v).clone()).collect::<Vec<_>>(), &RulesFilter::default());
    let g = &data["groups"][0];
    assert_eq!(g["name"], "fast");
    assert_eq!(g["file"], "m.yml");
    assert_eq!(g["interval"], 0.1);
    assert_eq!(g["rules"][0]["type"], "recording");
    assert_eq!(g["rules"][0]["health"], "ok");
    assert_eq!(g["rules"][1]["type"], "alerting");
    assert_eq!(g["rules"][1]["state"], "pending");
    assert_eq!(g["rules"][1]["duration"], 3600.0);
    assert_eq!(g["rules"][1]["alerts"][0]["value"], "1e+00");
    assert_eq!(g["rules"][1]["alerts"][0]["labels"]["alertname"], "Always");
    let only_alerts = rules_data(
        &views.iter().map(|v| (**v).clone()).collect::<Vec<_>>(),
        &RulesFilter::from_pairs([("type", "alert")]).unwrap(),
    );
    assert_eq!(only_alerts["groups"][0]["rules"].as_array().unwrap().len(), 1);
    let none = rules_data(
        &views.iter().map(|v| (**v).clone()).collect::<Vec<_>>(),
        &RulesFilter::from_pairs([("rule_group[]", "other")]).unwrap(),
    );
    assert!(none["groups"].as_array().unwrap().is_empty());
    let alerts = alerts_data(&views.iter().map(|v| (**v).clone()).collect::<Vec<_>>());
    assert_eq!(alerts["alerts"][0]["state"], "pending");
}

#[test]
fn pending_alert_keeps_active_at_across_a_killed_runtime() {
    let store = Arc::new(MemStorage::new());
    let dir = tempfile::tempdir().unwrap();
    let first_active_at;
    {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let m = manager(&store, Some(dir.path().to_path_buf()));
        first_active_at = rt.block_on(async {
            m.update(specs(GROUP)).await;
            tokio::time::sleep(Duration::from_millis(450)).await;
            m.group_views()[0].rules[1].alerts[0].active_at
        });
        // Kill: tasks are dropped mid-flight, nothing is flushed on the way out.
        rt.shutdown_background();
    }
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let m = manager(&store, Some(dir.path().to_path_buf()));
    let (after, first_eval) = rt.block_on(async {
        m.update(specs(GROUP)).await;
        tokio::time::sleep(Duration::from_millis(350)).await;
        let v = m.group_views();
        let r = v[0].rules[1].clone();
        m.stop().await;
        (r, v[0].last_eval_ms)
    });
    assert_eq!(after.state, AlertState::Pending);
    assert_eq!(after.alerts[0].active_at, first_active_at, "activeAt from before the restart");
    assert!(first_eval > first_active_at + 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_keeps_alert_state_and_removed_groups_go_stale() {
    let store = Arc::new(MemStorage::new());
    let m = manager(&store, None);
    m.update(specs(GROUP)).await;
    tokio::time::sleep(Duration::from_millis(350)).await;
    let before = m.group_views()[0].rules[1].alerts[0].active_at;
    // Reload with one more rule: the alert keeps its activeAt.
    let more = format!("{GROUP}  - record: two\n    expr: vector(2)\n");
    m.update(specs(&more)).await;
    tokio::time::sleep(Duration::from_millis(350)).await;
    let views = m.group_views();
    assert_eq!(views[0].rules.len(), 3);
    assert_eq!(views[0].rules[1].alerts[0].active_at, before);
    // Remove the group: its series end with stale markers.
    m.update(Vec::new()).await;
    assert!(m.group_views().is_empty());
    let alerts = samples(&store, "ALERTS");
    assert!(is_stale_nan(alerts[0].last().unwrap().v));
    let one = samples(&store, "one");
    assert!(is_stale_nan(one[0].last().unwrap().v));
    m.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_router_serves_filtered_rules_and_alerts() {
    let store = Arc::new(MemStorage::new());
    let m = manager(&store, None);
    m.update(specs(GROUP)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = promlite::rules::http::router(m.clone());
    let server = tokio::spawn(async move { axum::serve(listener, router).await });
    let client = common::http();
    let base = format!("http://{addr}");
    let r: serde_json::Value = client
        .get(format!("{base}/api/v1/rules?type=record&rule_name[]=one&rule_name[]=zzz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["status"], "success");
    let rules = r["data"]["groups"][0]["rules"].as_array().unwrap();
    assert_eq!(rules.len(), 1);
    assert_eq!(rules[0]["name"], "one");
    let bad = client.get(format!("{base}/api/v1/rules?type=bogus")).send().await.unwrap();
    assert_eq!(bad.status().as_u16(), 400);
    let body: serde_json::Value = bad.json().await.unwrap();
    assert_eq!(body["errorType"], "bad_data");
    let posted: serde_json::Value = client
        .post(format!("{base}/api/v1/rules"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("type=alert")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(posted["data"]["groups"][0]["rules"][0]["name"], "Always");
    let a: serde_json::Value = client.get(format!("{base}/api/v1/alerts")).send().await.unwrap().json().await.unwrap();
    assert_eq!(a["data"]["alerts"][0]["labels"]["alertname"], "Always");
    server.abort();
    m.stop().await;
}
