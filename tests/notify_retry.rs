//! Notifier behaviour that a real Alertmanager cannot be made to show on
//! demand: 5xx answers (retried), 4xx answers (not retried), credentials,
//! path prefixes and batch sizes. A scripted loopback HTTP server stands in.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use parking_lot::Mutex;
use promlite::labels;
use promlite::notify::{Alert, AlertmanagerConfig, Auth, Notifier, NotifierOptions, Secret};

#[derive(Debug, Clone)]
struct Request {
    path: String,
    authorization: Option<String>,
    alerts: usize,
    body: String,
}

#[derive(Default)]
struct Script {
    /// Statuses to answer, in order; 200 once exhausted.
    statuses: Mutex<VecDeque<u16>>,
    seen: Mutex<Vec<Request>>,
}

async fn handler(State(s): State<Arc<Script>>, uri: Uri, headers: HeaderMap, body: Bytes) -> StatusCode {
    let alerts = serde_json::from_slice::<Vec<serde_json::Value>>(&body).map_or(0, |v| v.len());
    s.seen.lock().push(Request {
        path: uri.path().to_string(),
        authorization: headers.get("authorization").and_then(|v| v.to_str().ok()).map(str::to_string),
        alerts,
        body: String::from_utf8_lossy(&body).into_owned(),
    });
    let code = s.statuses.lock().pop_front().unwrap_or(200);
    StatusCode::from_u16(code).unwrap_or(StatusCode::OK)
}

async fn serve(statuses: &[u16]) -> (String, Arc<Script>) {
    let script = Arc::new(Script { statuses: Mutex::new(statuses.iter().copied().collect()), ..Default::default() });
    let app = axum::Router::new().fallback(handler).with_state(script.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (addr.to_string(), script)
}

fn alert(name: &str) -> Alert {
    Alert {
        labels: labels!("alertname" => name),
        annotations: promlite::model::Labels::empty(),
        starts_at_ms: Some(1_700_000_000_000),
        ends_at_ms: Some(1_700_000_300_000),
        generator_url: String::new(),
    }
}

fn opts() -> NotifierOptions {
    NotifierOptions {
        retry_initial_backoff: Duration::from_millis(20),
        retry_max_backoff: Duration::from_millis(50),
        max_retry_duration: Duration::from_secs(10),
        ..NotifierOptions::default()
    }
}

fn metric(n: &Notifier, name: &str) -> f64 {
    n.metrics().iter().filter(|m| m.name == name).map(|m| m.value).sum()
}

async fn wait_until(what: &str, f: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_are_retried_until_delivered() {
    let (host, script) = serve(&[503, 500]).await;
    let n = Notifier::new(opts(), vec![AlertmanagerConfig::new(&host)]).expect("notifier");
    n.send(vec![alert("A"), alert("B")]);
    wait_until("delivery", || metric(&n, "prometheus_notifications_sent") == 2.0).await;
    assert_eq!(script.seen.lock().len(), 3);
    assert_eq!(metric(&n, "prometheus_notifications_errors"), 4.0, "two failed attempts of two alerts");
    assert_eq!(metric(&n, "promlite_notifications_retries"), 2.0);
    assert_eq!(metric(&n, "prometheus_notifications_dropped"), 0.0);
    assert_eq!(metric(&n, "prometheus_notifications_latency_seconds_count"), 3.0);
    n.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_errors_are_not_retried() {
    let (host, script) = serve(&[400]).await;
    let n = Notifier::new(opts(), vec![AlertmanagerConfig::new(&host)]).expect("notifier");
    n.send(vec![alert("Bad")]);
    wait_until("the rejection", || metric(&n, "prometheus_notifications_dropped") == 1.0).await;
    // Several backoff periods later there is still exactly one request.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(script.seen.lock().len(), 1);
    assert_eq!(metric(&n, "prometheus_notifications_errors"), 1.0);
    assert_eq!(metric(&n, "promlite_notifications_retries"), 0.0);
    assert_eq!(metric(&n, "prometheus_notifications_sent"), 0.0);
    n.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_stop_after_the_retry_budget() {
    let (host, script) = serve(&[500; 1000]).await;
    let o = NotifierOptions { max_retry_duration: Duration::from_secs(1), ..opts() };
    let n = Notifier::new(o, vec![AlertmanagerConfig::new(&host)]).expect("notifier");
    n.send(vec![alert("Flaky")]);
    wait_until("giving up", || metric(&n, "prometheus_notifications_dropped") == 1.0).await;
    let attempts = script.seen.lock().len();
    // About 1s / 50ms max backoff; bounded either way.
    assert!((2..=40).contains(&attempts), "{attempts} attempts");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(script.seen.lock().len(), attempts, "no attempts after giving up");
    n.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_of_at_most_64_and_path_prefix() {
    let (host, script) = serve(&[]).await;
    let am = AlertmanagerConfig { path_prefix: "/am/".to_string(), ..AlertmanagerConfig::new(&host) };
    let n = Notifier::new(opts(), vec![am]).expect("notifier");
    n.send((0..150).map(|i| alert(&format!("a{i}"))).collect());
    wait_until("delivery", || metric(&n, "prometheus_notifications_sent") == 150.0).await;
    let seen = script.seen.lock().clone();
    assert_eq!(seen.iter().map(|r| r.alerts).collect::<Vec<_>>(), [64, 64, 22]);
    assert!(seen.iter().all(|r| r.path == "/am/api/v2/alerts"), "{seen:?}");
    n.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_inline_and_from_files() {
    let (host, script) = serve(&[]).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let token = dir.path().join("token");
    std::fs::write(&token, "s3cret-token\n").expect("write token");
    let basic = AlertmanagerConfig {
        auth: Auth::Basic { username: "alice".to_string(), password: Secret::Inline("pw".to_string()) },
        path_prefix: "/basic".to_string(),
        ..AlertmanagerConfig::new(&host)
    };
    let bearer = AlertmanagerConfig {
        auth: Auth::Authorization { scheme: "Bearer".to_string(), credentials: Secret::File(token) },
        path_prefix: "/bearer".to_string(),
        ..AlertmanagerConfig::new(&host)
    };
    let n = Notifier::new(opts(), vec![basic, bearer]).expect("notifier");
    n.send(vec![alert("Auth")]);
    wait_until("both deliveries", || metric(&n, "prometheus_notifications_sent") == 2.0).await;
    let mut seen: Vec<(String, Option<String>)> =
        script.seen.lock().iter().map(|r| (r.path.clone(), r.authorization.clone())).collect();
    seen.sort();
    assert_eq!(
        seen,
        [
            ("/basic/api/v2/alerts".to_string(), Some("Basic YWxpY2U6cHc=".to_string())),
            ("/bearer/api/v2/alerts".to_string(), Some("Bearer s3cret-token".to_string())),
        ]
    );
    n.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relabel_seams_and_https_rejection() {
    let (host, script) = serve(&[]).await;
    // Global relabel drops severity=info; the per-Alertmanager one adds a label.
    let global: promlite::notify::AlertRelabel =
        Arc::new(|l: &promlite::model::Labels| if l.get("severity") == Some("info") { None } else { Some(l.clone()) });
    let per_am: promlite::notify::AlertRelabel =
        Arc::new(|l: &promlite::model::Labels| Some(l.to_builder().set("routed", "yes").build()));
    let o = NotifierOptions { relabel: Some(global), ..opts() };
    let am = AlertmanagerConfig { relabel: Some(per_am), ..AlertmanagerConfig::new(&host) };
    let n = Notifier::new(o, vec![am]).expect("notifier");
    let info = Alert { labels: labels!("alertname" => "Quiet", "severity" => "info"), ..alert("x") };
    n.send(vec![info, alert("Loud")]);
    wait_until("delivery", || metric(&n, "prometheus_notifications_sent") == 1.0).await;
    let seen = script.seen.lock().clone();
    assert_eq!(seen.iter().map(|r| r.alerts).sum::<usize>(), 1);
    let sent: Vec<serde_json::Value> = serde_json::from_str(&seen[0].body).expect("json");
    assert_eq!(sent[0]["labels"], serde_json::json!({"alertname": "Loud", "routed": "yes"}));
    n.shutdown(Duration::from_secs(1)).await;

    let https = AlertmanagerConfig { scheme: "https".to_string(), ..AlertmanagerConfig::new(&host) };
    if cfg!(feature = "tls") {
        Notifier::new(opts(), vec![https]).expect("https is supported with the tls feature");
    } else {
        let e = Notifier::new(opts(), vec![https]).unwrap_err();
        assert!(e.to_string().contains("not supported"), "{e}");
    }
    let ftp = AlertmanagerConfig { scheme: "ftp".to_string(), ..AlertmanagerConfig::new(&host) };
    let e = Notifier::new(opts(), vec![ftp]).unwrap_err();
    assert!(e.to_string().contains("not supported"), "{e}");
}
