//! A real sender: Debian's `prometheus` scrapes a fixture target (Triton-like
//! exposition text served by this test) and remote_writes to promlite's
//! receiver; the same series and values must arrive.
//!
//! Needs `/usr/bin/prometheus` (`apt-get install -y prometheus`; scripts/test.sh
//! installs it). Without it the test fails and says so; it never skips.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::routing::get;
use axum::Router;
use promlite::http::{router, serve, Readiness, ServerParts};
use promlite::ingest::{Limits, RemoteWrite};
use promlite::metrics::{IngestMetrics, Registry};
use promlite::model::Matcher;
use promlite::storage::memory::MemStorage;
use promlite::storage::Queryable;

/// What the fixture target serves: Triton's counters and gauges, one FastAPI
/// counter with an escaped label value, and special float values.
const EXPOSITION: &str = r#"# HELP nv_inference_request_success Number of successful inference requests, all batch sizes
# TYPE nv_inference_request_success counter
nv_inference_request_success{model="resnet50",version="1"} 1234
nv_inference_request_success{model="bert",version="2"} 77
# HELP nv_inference_request_failure Number of failed inference requests, all batch sizes
# TYPE nv_inference_request_failure counter
nv_inference_request_failure{model="resnet50",version="1"} 3
# HELP nv_inference_count Number of inferences performed
# TYPE nv_inference_count counter
nv_inference_count{model="resnet50",version="1"} 2468
# HELP nv_inference_request_duration_us Cumulative inference request duration in microseconds
# TYPE nv_inference_request_duration_us counter
nv_inference_request_duration_us{model="resnet50",version="1"} 9.8765e+06
# HELP nv_inference_pending_request_count Instantaneous number of pending requests awaiting execution per-model.
# TYPE nv_inference_pending_request_count gauge
nv_inference_pending_request_count{model="resnet50",version="1"} 0
# HELP nv_gpu_utilization GPU utilization rate [0.0 - 1.0)
# TYPE nv_gpu_utilization gauge
nv_gpu_utilization{gpu_uuid="GPU-8a1f2c3d-0000-1111-2222-333344445555"} 0.42
# HELP http_requests_total Total HTTP requests
# TYPE http_requests_total counter
http_requests_total{handler="/v1/models/\"x\"",method="POST",status="2xx"} 15
# HELP fixture_special Special values
# TYPE fixture_special gauge
fixture_special{kind="inf"} +Inf
fixture_special{kind="neg"} -1.5e-3
"#;

/// (metric name, one distinguishing label, expected value).
const EXPECTED: &[(&str, (&str, &str), f64)] = &[
    ("nv_inference_request_success", ("model", "resnet50"), 1234.0),
    ("nv_inference_request_success", ("model", "bert"), 77.0),
    ("nv_inference_request_failure", ("model", "resnet50"), 3.0),
    ("nv_inference_count", ("model", "resnet50"), 2468.0),
    ("nv_inference_request_duration_us", ("model", "resnet50"), 9_876_500.0),
    ("nv_inference_pending_request_count", ("model", "resnet50"), 0.0),
    ("nv_gpu_utilization", ("gpu_uuid", "GPU-8a1f2c3d-0000-1111-2222-333344445555"), 0.42),
    ("http_requests_total", ("handler", "/v1/models/\"x\""), 15.0),
    ("fixture_special", ("kind", "inf"), f64::INFINITY),
    ("fixture_special", ("kind", "neg"), -0.0015),
    ("up", ("job", "triton"), 1.0),
];

/// Kills the child on drop, so a failing assertion does not leak a process.
struct Killer(Child);

impl Drop for Killer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_remote_write_arrives_intact() {
    let prom_bin = std::env::var("PROMETHEUS_BIN").unwrap_or_else(|_| "/usr/bin/prometheus".into());
    assert!(
        std::path::Path::new(&prom_bin).exists(),
        "Debian's prometheus binary is missing at {prom_bin}: install it with `apt-get install -y prometheus` \
         (scripts/test.sh does) or set PROMETHEUS_BIN"
    );

    // The fixture target.
    let target = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target_addr = target.local_addr().unwrap();
    let fixture = Router::new().route(
        "/metrics",
        get(|| async { ([("content-type", "text/plain; version=0.0.4; charset=utf-8")], EXPOSITION) }),
    );
    tokio::spawn(async move { serve(target, fixture, std::future::pending()).await });

    // promlite's receiver.
    let st = Arc::new(MemStorage::new());
    let reg = Arc::new(Registry::new());
    let rw = RemoteWrite::new(st.clone(), Limits::default(), IngestMetrics::register(&reg));
    let app = router(ServerParts {
        metrics: reg.clone(),
        ready: Readiness::new(),
        reload: None,
        routers: vec![promlite::ingest::router(rw)],
    });
    let rx = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let rx_addr = rx.local_addr().unwrap();
    tokio::spawn(async move { serve(rx, app, std::future::pending()).await });

    let dir = tempfile::tempdir().unwrap();
    let cfg = format!(
        r#"global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: triton
    static_configs:
      - targets: ["{target_addr}"]
remote_write:
  - url: http://{rx_addr}/api/v1/write
    queue_config:
      batch_send_deadline: 1s
      min_backoff: 100ms
      max_backoff: 1s
"#
    );
    let cfg_path = dir.path().join("prometheus.yml");
    std::fs::write(&cfg_path, cfg).unwrap();
    let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
    let child = Command::new(&prom_bin)
        .arg(format!("--config.file={}", cfg_path.display()))
        .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{}", free_port()))
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("starting {prom_bin}: {e}"));
    let _guard = Killer(child);

    let deadline = Instant::now() + Duration::from_secs(30);
    let mut missing: Vec<String>;
    loop {
        missing = Vec::new();
        for &(name, (ln, lv), want) in EXPECTED {
            let sel =
                st.select(i64::MIN, i64::MAX, &[Matcher::equal("__name__", name), Matcher::equal(ln, lv)]).unwrap();
            let mut ok = false;
            for mut s in sel {
                assert_eq!(s.labels.get("job"), Some("triton"), "{}", s.labels);
                assert_eq!(s.labels.get("instance"), Some(target_addr.to_string().as_str()), "{}", s.labels);
                let mut v = Vec::new();
                s.samples.collect_into(&mut v);
                // Every sample sent must be the fixture's value (bit-exact for Inf).
                for smp in &v {
                    assert!(
                        smp.v.to_bits() == want.to_bits() || smp.v == want,
                        "{}: got {} want {want}",
                        s.labels,
                        smp.v
                    );
                }
                ok |= !v.is_empty();
            }
            if !ok {
                missing.push(format!("{name}{{{ln}={lv:?}}}"));
            }
        }
        if missing.is_empty() || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let plog = std::fs::read_to_string(dir.path().join("prometheus.log")).unwrap_or_default();
    assert!(missing.is_empty(), "not received within 30 s: {missing:?}\nprometheus log tail:\n{}", tail(&plog, 30));
    // Prometheus's own scrape series arrive too, and nothing was rejected.
    let m = reg.encode().unwrap();
    assert!(!m.contains("promlite_rejected_samples_total{"), "{m}");
    assert!(!m.contains("code=\"400\""), "{m}");
    let durations = st.select(i64::MIN, i64::MAX, &[Matcher::equal("__name__", "scrape_duration_seconds")]).unwrap();
    assert_eq!(durations.len(), 1);
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
