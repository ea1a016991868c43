//! End-to-end tests of the notifier against a real Alertmanager (Debian's
//! `prometheus-alertmanager`, installed by scripts/test.sh), started on a free
//! loopback port with a temporary storage path and stopped by PID.

use std::time::{Duration, Instant};

use promlite::labels;
use promlite::model::Labels;
use promlite::notify::{valid_until_ms, Alert, AlertmanagerConfig, Notifier, NotifierOptions};
use promlite::template::{Template, TemplateData};

mod common;

use common::alertmanager::Alertmanager as Am;
use common::free_port;

fn names(alerts: &[serde_json::Value]) -> Vec<String> {
    let mut v: Vec<String> =
        alerts.iter().filter_map(|a| a["labels"]["alertname"].as_str().map(str::to_string)).collect();
    v.sort();
    v
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn alert(name: &str, ends_in_ms: i64) -> Alert {
    let now = now_ms();
    Alert {
        labels: labels!("alertname" => name, "severity" => "page"),
        annotations: labels!("summary" => format!("{name} summary")),
        starts_at_ms: Some(now - 60_000),
        ends_at_ms: Some(now + ends_in_ms),
        generator_url: "http://promlite:9090/graph?g0.expr=up&g0.tab=1".to_string(),
    }
}

fn fast_retry_opts() -> NotifierOptions {
    NotifierOptions {
        retry_initial_backoff: Duration::from_millis(100),
        retry_max_backoff: Duration::from_millis(300),
        max_retry_duration: Duration::from_secs(60),
        ..NotifierOptions::default()
    }
}

fn metric(n: &Notifier, name: &str) -> f64 {
    n.metrics().iter().filter(|m| m.name == name).map(|m| m.value).sum()
}

fn timed_send(n: &Notifier, alerts: Vec<Alert>) {
    let t = Instant::now();
    n.send(alerts);
    let took = t.elapsed();
    // Generous for a loaded CI machine; a send that waited on the network
    // would take at least the retry backoff (100ms) times several attempts.
    assert!(took < Duration::from_millis(250), "send blocked for {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn firing_alert_arrives_with_labels_and_annotations_then_resolves() {
    let am = Am::start().await;
    let opts = NotifierOptions {
        external_labels: labels!("cluster" => "edge-1", "severity" => "ignored"),
        ..fast_retry_opts()
    };
    let n = Notifier::new(opts, vec![AlertmanagerConfig::new(&am.host())]).expect("notifier");

    // Annotations rendered by the template engine, as the rule engine will do.
    let alert_labels = labels!("alertname" => "TritonFailureRatio", "model" => "resnet50", "severity" => "page");
    let ext = Labels::empty();
    let data = TemplateData {
        labels: &alert_labels,
        external_labels: &ext,
        external_url: "http://promlite:9090",
        value: 0.0345,
    };
    let summary = Template::parse(
        "__alert_TritonFailureRatio",
        "Failure ratio {{ $value | humanizePercentage }} on {{ $labels.model }}",
    )
    .expect("parse")
    .execute(&data, None, 0)
    .expect("render");
    assert_eq!(summary, "Failure ratio 3.45% on resnet50");

    let now = now_ms();
    let ends = valid_until_ms(now, Duration::from_secs(60), Duration::from_secs(15));
    let firing = Alert {
        labels: alert_labels.clone(),
        annotations: labels!("summary" => summary.as_str()),
        starts_at_ms: Some(now - 30_000),
        ends_at_ms: Some(ends),
        generator_url: promlite::notify::generator_url("http://promlite:9090", "triton_failure_ratio > 0.02"),
    };
    timed_send(&n, vec![firing.clone()]);

    let got = am.wait_for(10, "the firing alert", |a| names(a) == ["TritonFailureRatio"]).await;
    let a = &got[0];
    assert_eq!(a["labels"]["model"], "resnet50");
    assert_eq!(a["labels"]["cluster"], "edge-1", "external label added");
    assert_eq!(a["labels"]["severity"], "page", "alert label wins over external label");
    assert_eq!(a["annotations"]["summary"], "Failure ratio 3.45% on resnet50");
    assert_eq!(a["status"]["state"], "active");
    assert_eq!(a["generatorURL"], "http://promlite:9090/graph?g0.expr=triton_failure_ratio+%3E+0.02&g0.tab=1");
    let am_ends = chrono::DateTime::parse_from_rfc3339(a["endsAt"].as_str().expect("endsAt")).expect("rfc3339");
    assert_eq!(am_ends.timestamp_millis(), ends, "endsAt kept as sent");

    // Resolved: endsAt in the past; Alertmanager stops listing it as active.
    let resolved = Alert { ends_at_ms: Some(now_ms() - 1_000), ..firing };
    timed_send(&n, vec![resolved]);
    am.wait_for(10, "the alert to resolve", |a| a.is_empty()).await;
    assert_eq!(metric(&n, "prometheus_notifications_sent"), 2.0);
    assert_eq!(metric(&n, "prometheus_notifications_dropped"), 0.0);
    n.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alertmanager_down_then_up_receives_the_retried_alert() {
    let port = free_port();
    let n = Notifier::new(fast_retry_opts(), vec![AlertmanagerConfig::new(&format!("127.0.0.1:{port}"))])
        .expect("notifier");
    timed_send(&n, vec![alert("DownThenUp", 300_000)]);

    // Failing attempts are counted and retried while nothing listens.
    let deadline = Instant::now() + Duration::from_secs(10);
    while metric(&n, "promlite_notifications_retries") < 2.0 {
        assert!(Instant::now() < deadline, "no retries seen: {:?}", n.metrics());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(metric(&n, "prometheus_notifications_errors") >= 2.0);
    assert_eq!(metric(&n, "prometheus_notifications_sent"), 0.0);
    // Sending more meanwhile never blocks.
    timed_send(&n, vec![alert("WhileDown", 300_000)]);

    let am = Am::start_on(port).await;
    am.wait_for(10, "both alerts after the restart", |a| names(a) == ["DownThenUp", "WhileDown"]).await;
    assert_eq!(metric(&n, "prometheus_notifications_sent"), 2.0);
    assert_eq!(metric(&n, "prometheus_notifications_dropped"), 0.0);
    n.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_alertmanagers_both_receive_every_alert() {
    let am1 = Am::start().await;
    let am2 = Am::start().await;
    let n = Notifier::new(
        fast_retry_opts(),
        vec![AlertmanagerConfig::new(&am1.host()), AlertmanagerConfig::new(&am2.host())],
    )
    .expect("notifier");
    timed_send(&n, vec![alert("A1", 300_000), alert("A2", 300_000)]);
    timed_send(&n, vec![alert("A3", 300_000)]);
    // Shutdown flushes what is queued before returning.
    n.shutdown(Duration::from_secs(5)).await;
    // A second shutdown is a no-op.
    let t = Instant::now();
    n.shutdown(Duration::from_secs(5)).await;
    assert!(t.elapsed() < Duration::from_millis(100));

    let want = ["A1", "A2", "A3"];
    am1.wait_for(10, "all alerts on the first", |a| names(a) == want).await;
    am2.wait_for(10, "all alerts on the second", |a| names(a) == want).await;
    let per_am: Vec<f64> =
        n.metrics().iter().filter(|m| m.name == "prometheus_notifications_sent").map(|m| m.value).collect();
    assert_eq!(per_am, [3.0, 3.0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_overflow_drops_the_oldest_and_counts_them() {
    let port = free_port();
    let opts = NotifierOptions { queue_capacity: 5, ..fast_retry_opts() };
    let n = Notifier::new(opts, vec![AlertmanagerConfig::new(&format!("127.0.0.1:{port}"))]).expect("notifier");
    let batch: Vec<Alert> = (0..20).map(|i| alert(&format!("Q{i:02}"), 300_000)).collect();
    timed_send(&n, batch);
    assert_eq!(metric(&n, "prometheus_notifications_dropped"), 15.0);

    let am = Am::start_on(port).await;
    let want: Vec<String> = (15..20).map(|i| format!("Q{i:02}")).collect();
    am.wait_for(10, "the five newest alerts", |a| names(a) == want).await;
    assert_eq!(metric(&n, "prometheus_notifications_sent"), 5.0);
    assert_eq!(metric(&n, "prometheus_notifications_queue_length"), 0.0);
    n.shutdown(Duration::from_secs(2)).await;
}
