//! Alerting end to end through the whole server: Triton counters arrive by
//! remote_write, a rule file with a failure-ratio alert is evaluated every
//! second, and real Alertmanagers (Debian's `prometheus-alertmanager`, started
//! on free loopback ports and stopped by PID) receive what fires.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use parking_lot::Mutex;
use promlite::cli::Cli;
use promlite::ingest::proto::{Label, Sample, TimeSeries, WriteRequest};
use prost::Message;
use serde_json::Value;

mod common;

const ALERT: &str = "TritonHighFailureRatio";
const GROUP: &str = "triton.e2e";
/// 10 failures per 100 successes: 10/110 of the requests fail.
const SUMMARY_FIRING: &str = "Failure ratio 9.091% on resnet50";

const RULES: &str = r#"groups:
  - name: triton.e2e
    rules:
      - alert: TritonHighFailureRatio
        expr: |
          sum by (model) (rate(nv_inference_request_failure{job="triton"}[10s]))
          /
          clamp_min(
              sum by (model) (rate(nv_inference_request_success{job="triton"}[10s]))
            + sum by (model) (rate(nv_inference_request_failure{job="triton"}[10s])),
            1
          ) > 0.02
        for: 3s
        labels:
          severity: page
          service: triton
        annotations:
          summary: "Failure ratio {{ $value | humanizePercentage }} on {{ $labels.model }}"
          runbook: "https://runbooks.example/triton/{{ $labels.model }}"
"#;

// ---------------------------------------------------------------- Alertmanager

/// A real Alertmanager (tests/common), seen through the one alert these tests raise.
struct Am(common::alertmanager::Alertmanager);

impl Am {
    async fn start() -> Am {
        Am(common::alertmanager::Alertmanager::start().await)
    }

    /// Starts on `port` with fresh storage (nothing survives from an earlier run).
    async fn start_on(port: u16) -> Am {
        Am(common::alertmanager::Alertmanager::start_on(port).await)
    }

    fn stop(&mut self) {
        self.0.stop();
    }

    fn port(&self) -> u16 {
        self.0.port()
    }

    fn url(&self) -> String {
        self.0.url()
    }

    fn host(&self) -> String {
        self.0.host()
    }

    /// Active alerts named [`ALERT`] (resolved ones are not listed by Alertmanager).
    async fn alerts(&self) -> Vec<Value> {
        self.0.alerts().await.into_iter().filter(|a| a["labels"]["alertname"] == ALERT).collect()
    }

    async fn wait_alerts(&self, secs: u64, what: &str, pred: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let a = self.alerts().await;
            if pred(&a) {
                return a;
            }
            assert!(Instant::now() < deadline, "timed out ({secs}s) waiting for {what}; alertmanager has {a:#?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `alertmanager_alerts_received_total{status=...}` summed over versions.
    async fn received(&self, status: &str) -> f64 {
        self.0.received(status).await
    }
}

// ---------------------------------------------------------------- promlite

struct Server {
    base: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

/// Writes the config and rule file into `dir` and returns the config path.
fn write_config(dir: &Path, ams: &[&Am]) -> PathBuf {
    let rules = dir.join("triton.rules.yml");
    std::fs::write(&rules, RULES).expect("write rules");
    let targets: Vec<String> = ams.iter().map(|a| format!("\"{}\"", a.host())).collect();
    let cfg = format!(
        "global:\n  evaluation_interval: 1s\n  external_labels:\n    cluster: e2e\n\
         rule_files:\n  - {}\n\
         alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: [{}]\n",
        rules.display(),
        targets.join(", ")
    );
    let path = dir.join("promlite.yml");
    std::fs::write(&path, cfg).expect("write config");
    path
}

async fn start_server(dir: &Path, config: &Path, extra: &[&str]) -> Server {
    let mut args = vec![
        "promlite".to_string(),
        format!("--storage.tsdb.path={}", dir.join("data").display()),
        format!("--config.file={}", config.display()),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let flags = Cli::try_parse_from(args).expect("flags").server;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(promlite::app::run(flags, listener, async {
        let _ = rx.await;
    }));
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(r) = common::get(format!("{base}/-/ready")).await {
            if r.status() == 200 {
                break;
            }
        }
        assert!(!task.is_finished(), "server exited before becoming ready");
        assert!(Instant::now() < deadline, "server not ready within 20s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Server { base, stop: Some(tx), task: Some(task) }
}

impl Server {
    async fn shutdown(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let r = tokio::time::timeout(Duration::from_secs(20), task).await.expect("shutdown within 20s");
            r.expect("join").expect("server result");
        }
    }

    /// The [`ALERT`] entries of `/api/v1/alerts`.
    async fn alerts(&self) -> Vec<Value> {
        let v = get_json(&format!("{}/api/v1/alerts", self.base)).await;
        v["data"]["alerts"]
            .as_array()
            .map(|a| a.iter().filter(|x| x["labels"]["alertname"] == ALERT).cloned().collect())
            .unwrap_or_default()
    }

    /// The alerting rule's entry and its group's `lastEvaluation` from `/api/v1/rules`.
    async fn rule(&self) -> (Value, String) {
        let v = get_json(&format!("{}/api/v1/rules", self.base)).await;
        let groups = v["data"]["groups"].as_array().cloned().unwrap_or_default();
        let g = groups.iter().find(|g| g["name"] == GROUP).unwrap_or_else(|| panic!("group {GROUP} missing: {v}"));
        let r = g["rules"].as_array().and_then(|r| r.iter().find(|r| r["name"] == ALERT)).cloned();
        (
            r.unwrap_or_else(|| panic!("rule {ALERT} missing: {v}")),
            g["lastEvaluation"].as_str().unwrap_or("").to_string(),
        )
    }

    async fn wait_state(&self, secs: u64, state: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let a = self.alerts().await;
            if a.len() == 1 && a[0]["state"] == state {
                return a[0].clone();
            }
            assert!(Instant::now() < deadline, "timed out ({secs}s) waiting for a {state} alert; have {a:#?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

async fn get_json(url: &str) -> Value {
    let r = common::get(url).await.unwrap_or_else(|e| panic!("GET {url}: {e}"));
    r.json().await.unwrap_or_else(|e| panic!("GET {url}: not JSON: {e}"))
}

fn rfc3339_ms(v: &Value) -> i64 {
    let s = v.as_str().unwrap_or_else(|| panic!("not a time string: {v}"));
    chrono::DateTime::parse_from_rfc3339(s).unwrap_or_else(|e| panic!("{s}: {e}")).timestamp_millis()
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

// ---------------------------------------------------------------- traffic

/// Sends Triton's success and failure counters for model resnet50 every
/// second, stamped with the current time, to whichever server `base` names.
/// The per-second increments are adjustable; the counters never go down.
struct Feeder {
    base: Arc<Mutex<String>>,
    success_step: Arc<AtomicU64>,
    failure_step: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

fn write_body(ts: i64, success: f64, failure: f64) -> Vec<u8> {
    let series = |name: &str, v: f64| TimeSeries {
        labels: vec![
            Label { name: "__name__".into(), value: name.into() },
            Label { name: "instance".into(), value: "triton-0:8002".into() },
            Label { name: "job".into(), value: "triton".into() },
            Label { name: "model".into(), value: "resnet50".into() },
        ],
        samples: vec![Sample { value: v, timestamp: ts }],
        ..Default::default()
    };
    let req = WriteRequest {
        timeseries: vec![
            series("nv_inference_request_success", success),
            series("nv_inference_request_failure", failure),
        ],
        ..Default::default()
    };
    snap::raw::Encoder::new().compress_vec(&req.encode_to_vec()).expect("snappy of an in-memory buffer")
}

async fn post(client: &reqwest::Client, base: &str, body: Vec<u8>) -> bool {
    let r = client
        .post(format!("{base}/api/v1/write"))
        .header("Content-Type", "application/x-protobuf")
        .header("Content-Encoding", "snappy")
        .header("X-Prometheus-Remote-Write-Version", "0.1.0")
        .timeout(Duration::from_secs(2))
        .body(body)
        .send()
        .await;
    matches!(r, Ok(r) if r.status() == 204)
}

impl Feeder {
    /// Backfills five seconds of failing traffic so the 10s rates exist at
    /// once, then keeps sending every second.
    async fn start(base: &str) -> Feeder {
        let client = common::http();
        let (mut succ, mut fail) = (0.0, 0.0);
        let now = now_ms();
        for i in (1..=5).rev() {
            assert!(post(&client, base, write_body(now - i * 1000, succ, fail)).await, "backfill write");
            succ += 100.0;
            fail += 10.0;
        }
        let base = Arc::new(Mutex::new(base.to_string()));
        let success_step = Arc::new(AtomicU64::new(100));
        let failure_step = Arc::new(AtomicU64::new(10));
        let (b, s, f) = (base.clone(), success_step.clone(), failure_step.clone());
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                let url = b.lock().clone();
                // A write that fails (server restarting) is lost, as it would
                // be for a real sender; the counters keep counting.
                let _ = post(&client, &url, write_body(now_ms(), succ, fail)).await;
                succ += s.load(Ordering::Relaxed) as f64;
                fail += f.load(Ordering::Relaxed) as f64;
            }
        });
        Feeder { base, success_step, failure_step, task }
    }

    /// Makes the failure ratio drop to zero: failures stop, successes surge.
    fn recover(&self) {
        self.failure_step.store(0, Ordering::Relaxed);
        self.success_step.store(100_000, Ordering::Relaxed);
    }

    fn retarget(&self, base: &str) {
        *self.base.lock() = base.to_string();
    }
}

impl Drop for Feeder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Checks the labels and annotations Alertmanager got against the rule's.
fn assert_am_alert(a: &Value, active_at_ms: i64) {
    let want = serde_json::json!({
        "alertname": ALERT,
        "cluster": "e2e",
        "model": "resnet50",
        "service": "triton",
        "severity": "page",
    });
    assert_eq!(a["labels"], want, "labels at alertmanager: {a:#}");
    assert_eq!(a["annotations"]["summary"], SUMMARY_FIRING, "{a:#}");
    assert_eq!(a["annotations"]["runbook"], "https://runbooks.example/triton/resnet50", "{a:#}");
    assert_eq!(a["status"]["state"], "active", "{a:#}");
    assert_eq!(rfc3339_ms(&a["startsAt"]), active_at_ms, "startsAt is the alert's activeAt: {a:#}");
    assert!(rfc3339_ms(&a["endsAt"]) > now_ms(), "a firing alert's endsAt is in the future: {a:#}");
}

/// Waits until the alert fires, checking the pending phase on the way.
/// Returns its activeAt (ms).
async fn pending_then_firing(srv: &Server, ams: &[&Am]) -> i64 {
    let pending = srv.wait_state(15, "pending").await;
    let active_at = rfc3339_ms(&pending["activeAt"]);
    assert_eq!(pending["annotations"]["summary"], SUMMARY_FIRING, "{pending:#}");
    for am in ams {
        // Pending alerts are not sent.
        assert!(am.alerts().await.is_empty(), "alertmanager got a pending alert");
    }
    let firing = srv.wait_state(15, "firing").await;
    let fired_seen = now_ms();
    assert_eq!(rfc3339_ms(&firing["activeAt"]), active_at, "activeAt kept from pending to firing");
    assert!(
        fired_seen >= active_at + 3_000,
        "fired before `for: 3s` elapsed: active {active_at}, firing seen {fired_seen}"
    );
    let (rule, _) = srv.rule().await;
    assert_eq!(rule["state"], "firing", "{rule:#}");
    active_at
}

// ---------------------------------------------------------------- tests

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failure_ratio_alert_pends_fires_reaches_alertmanager_and_resolves_there() {
    let dir = tempfile::tempdir().expect("tempdir");
    let am = Am::start().await;
    let cfg = write_config(dir.path(), &[&am]);
    let srv = start_server(dir.path(), &cfg, &[]).await;
    let feeder = Feeder::start(&srv.base).await;

    let active_at = pending_then_firing(&srv, &[&am]).await;
    let got = am.wait_alerts(10, "the firing alert", |a| a.len() == 1).await;
    assert_am_alert(&got[0], active_at);

    // The ratio drops: the alert resolves in promlite and the resolve reaches
    // Alertmanager long before the firing alert's endsAt (4 resend delays of
    // 1m) would have expired it there.
    feeder.recover();
    let deadline = Instant::now() + Duration::from_secs(15);
    while !srv.alerts().await.is_empty() {
        assert!(Instant::now() < deadline, "alert did not resolve in promlite: {:#?}", srv.alerts().await);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    am.wait_alerts(10, "the resolved alert to leave the active list", |a| a.is_empty()).await;
    assert!(am.received("resolved").await >= 1.0, "alertmanager got no resolved alert");
    let (rule, _) = srv.rule().await;
    assert_eq!(rule["state"], "inactive", "{rule:#}");
    srv.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_alertmanagers_both_receive_the_alert_and_its_resolve() {
    let dir = tempfile::tempdir().expect("tempdir");
    let am1 = Am::start().await;
    let am2 = Am::start().await;
    let cfg = write_config(dir.path(), &[&am1, &am2]);
    let srv = start_server(dir.path(), &cfg, &[]).await;
    let feeder = Feeder::start(&srv.base).await;

    let active_at = pending_then_firing(&srv, &[&am1, &am2]).await;
    for am in [&am1, &am2] {
        let got = am.wait_alerts(10, "the firing alert", |a| a.len() == 1).await;
        assert_am_alert(&got[0], active_at);
    }
    feeder.recover();
    for am in [&am1, &am2] {
        am.wait_alerts(15, "the resolve", |a| a.is_empty()).await;
        assert!(am.received("resolved").await >= 1.0, "alertmanager on port {} got no resolved alert", am.port());
    }
    srv.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alertmanager_restarted_while_firing_gets_the_alert_within_one_resend_delay() {
    const RESEND_MS: i64 = 2_000;
    const DOWN_MS: u64 = 20_000;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut am = Am::start().await;
    let port = am.port();
    let cfg = write_config(dir.path(), &[&am]);
    let srv = start_server(dir.path(), &cfg, &["--rules.alert.resend-delay=2s"]).await;
    let _feeder = Feeder::start(&srv.base).await;

    let active_at = pending_then_firing(&srv, &[&am]).await;
    am.wait_alerts(10, "the firing alert", |a| a.len() == 1).await;

    // Alertmanager goes away (its storage with it) while the alert fires.
    am.stop();
    let (_, first_eval) = srv.rule().await;
    let mut evals = vec![first_eval];
    let down_until = Instant::now() + Duration::from_millis(DOWN_MS);
    while Instant::now() < down_until {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let (rule, last) = srv.rule().await;
        assert_eq!(rule["state"], "firing", "{rule:#}");
        if evals.last() != Some(&last) {
            evals.push(last);
        }
    }
    // Evaluation is not blocked by the unreachable Alertmanager: about one per second.
    assert!(evals.len() >= 4, "rule evaluations while alertmanager was down: {evals:?}");

    drop(am);
    let am = Am::start_on(port).await;
    let back = Instant::now();
    let got = am.wait_alerts(10, "the alert after the restart", |a| a.len() == 1).await;
    let took = back.elapsed();
    eprintln!("alert reached the restarted alertmanager {took:?} after it was ready");
    assert_am_alert(&got[0], active_at);
    // One resend delay, plus one evaluation interval for the resend to be due
    // at an evaluation, plus slack for a loaded machine. The long outage
    // catches a notifier whose retry backoff outgrows the resend delay: its
    // retried batch would hold the queue for up to 10 s after the return.
    let bound = Duration::from_millis(RESEND_MS as u64 + 1_000 + 1_000);
    assert!(took <= bound, "alert reached the restarted alertmanager after {took:?} (bound {bound:?})");
    srv.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_while_firing_keeps_active_at_and_alertmanager_never_sees_a_resolve() {
    let dir = tempfile::tempdir().expect("tempdir");
    let am = Am::start().await;
    let cfg = write_config(dir.path(), &[&am]);
    let srv = start_server(dir.path(), &cfg, &[]).await;
    let feeder = Feeder::start(&srv.base).await;

    let active_at = pending_then_firing(&srv, &[&am]).await;
    am.wait_alerts(10, "the firing alert", |a| a.len() == 1).await;

    // Watch Alertmanager throughout: the alert must stay active there.
    let watch_url = format!("{}/api/v2/alerts", am.url());
    let stop_watch = Arc::new(AtomicU64::new(0));
    let sw = stop_watch.clone();
    let watcher = tokio::spawn(async move {
        let mut bad = Vec::new();
        while sw.load(Ordering::Relaxed) == 0 {
            if let Ok(r) = common::get(&watch_url).await {
                let all: Vec<Value> = r.json().await.unwrap_or_default();
                let n = all.iter().filter(|a| a["labels"]["alertname"] == ALERT).count();
                if n != 1 {
                    bad.push(format!("{} active alerts at {}", n, now_ms()));
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bad
    });

    srv.shutdown().await;
    let srv = start_server(dir.path(), &cfg, &[]).await;
    feeder.retarget(&srv.base);

    // The first evaluation after the start already shows the alert firing,
    // with the activeAt it had before.
    let deadline = Instant::now() + Duration::from_secs(10);
    let rule = loop {
        let (rule, last) = srv.rule().await;
        if last != "0001-01-01T00:00:00Z" {
            break rule;
        }
        assert!(Instant::now() < deadline, "no evaluation within 10s of the restart");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(rule["state"], "firing", "first evaluation after restart: {rule:#}");
    let alerts = rule["alerts"].as_array().cloned().unwrap_or_default();
    assert_eq!(alerts.len(), 1, "{rule:#}");
    assert_eq!(alerts[0]["state"], "firing", "{rule:#}");
    assert_eq!(rfc3339_ms(&alerts[0]["activeAt"]), active_at, "activeAt survives the restart: {rule:#}");
    let api = srv.wait_state(5, "firing").await;
    assert_eq!(rfc3339_ms(&api["activeAt"]), active_at, "{api:#}");

    // Let the new process evaluate and send a few times, then check Alertmanager's view.
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop_watch.store(1, Ordering::Relaxed);
    let bad = watcher.await.expect("watcher");
    assert!(bad.is_empty(), "alertmanager lost the alert across the restart: {bad:?}");
    let got = am.alerts().await;
    assert_eq!(got.len(), 1, "{got:#?}");
    assert_am_alert(&got[0], active_at);
    assert_eq!(am.received("resolved").await, 0.0, "alertmanager received a resolve");
    srv.shutdown().await;
}

// ---------------------------------------------------------------- the binary, SIGKILLed

/// The `promlite` binary as a child process; SIGKILLed on drop.
struct Proc {
    child: Option<Child>,
    api: Server,
}

impl Proc {
    async fn start(dir: &Path, config: &Path) -> Proc {
        let port = common::free_port();
        let log =
            std::fs::OpenOptions::new().create(true).append(true).open(dir.join("promlite.log")).expect("log file");
        let log2 = log.try_clone().expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_promlite"))
            .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn()
            .expect("start promlite");
        let mut p = Proc {
            child: Some(child),
            api: Server { base: format!("http://127.0.0.1:{port}"), stop: None, task: None },
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(r) = common::get(format!("{}/-/ready", p.api.base)).await {
                if r.status() == 200 {
                    return p;
                }
            }
            let exited = p.child.as_mut().and_then(|c| c.try_wait().ok().flatten());
            if exited.is_some() || Instant::now() > deadline {
                let log = std::fs::read_to_string(dir.join("promlite.log")).unwrap_or_default();
                panic!("promlite not ready (exit: {exited:?}); log:\n{log}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGKILL: no shutdown path runs.
    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Polls `/api/v1/rules` until the group has been evaluated once and returns the rule.
async fn first_evaluation(srv: &Server) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (rule, last) = srv.rule().await;
        if last != "0001-01-01T00:00:00Z" {
            return rule;
        }
        assert!(Instant::now() < deadline, "no evaluation within 10s of the start");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_while_pending_and_while_firing_keeps_the_alert_timeline() {
    let dir = tempfile::tempdir().expect("tempdir");
    let am = Am::start().await;
    let cfg = write_config(dir.path(), &[&am]);
    let mut p = Proc::start(dir.path(), &cfg).await;
    let feeder = Feeder::start(&p.api.base).await;

    // Killed while pending: after the restart it fires when it would have,
    // `for` after its original activeAt.
    let pending = p.api.wait_state(15, "pending").await;
    let active_at = rfc3339_ms(&pending["activeAt"]);
    p.kill();
    let mut p = Proc::start(dir.path(), &cfg).await;
    feeder.retarget(&p.api.base);
    let rule = first_evaluation(&p.api).await;
    let first = rule["alerts"].as_array().cloned().unwrap_or_default();
    assert_eq!(first.len(), 1, "{rule:#}");
    assert_eq!(rfc3339_ms(&first[0]["activeAt"]), active_at, "pending activeAt survives SIGKILL: {rule:#}");
    let firing = p.api.wait_state(10, "firing").await;
    let fired_seen = now_ms();
    assert_eq!(rfc3339_ms(&firing["activeAt"]), active_at, "{firing:#}");
    assert!(fired_seen >= active_at + 3_000, "fired early: active {active_at}, seen {fired_seen}");
    // One evaluation interval after `for` ran out, plus slack for polling and load.
    assert!(fired_seen <= active_at + 3_000 + 1_000 + 1_500, "fired late: active {active_at}, seen {fired_seen}");
    let got = am.wait_alerts(10, "the firing alert", |a| a.len() == 1).await;
    assert_am_alert(&got[0], active_at);

    // Killed while firing: firing at the first evaluation after the start,
    // same activeAt, and Alertmanager never sees a resolve.
    p.kill();
    let p = Proc::start(dir.path(), &cfg).await;
    feeder.retarget(&p.api.base);
    let rule = first_evaluation(&p.api).await;
    assert_eq!(rule["state"], "firing", "first evaluation after SIGKILL: {rule:#}");
    let alerts = rule["alerts"].as_array().cloned().unwrap_or_default();
    assert_eq!(alerts.len(), 1, "{rule:#}");
    assert_eq!(rfc3339_ms(&alerts[0]["activeAt"]), active_at, "{rule:#}");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let got = am.alerts().await;
    assert_eq!(got.len(), 1, "{got:#?}");
    assert_am_alert(&got[0], active_at);
    assert_eq!(am.received("resolved").await, 0.0, "alertmanager received a resolve");
}
