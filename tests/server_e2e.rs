//! The whole server, as `cargo run --release` starts it: the real TSDB, the
//! embedded default config and its bundled rules, remote_write in, PromQL
//! out, reload, and a restart on the same data directory.

use std::path::Path;
use std::time::{Duration, Instant};

use clap::Parser;
use promlite::cli::Cli;
use promlite::ingest::proto::{Label, Sample, TimeSeries, WriteRequest};
use prost::Message;

mod common;

struct Running {
    base: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

async fn start(data: &Path, extra: &[&str]) -> Running {
    let mut args = vec!["promlite".to_string(), format!("--storage.tsdb.path={}", data.display())];
    args.extend(extra.iter().map(|s| s.to_string()));
    let flags = Cli::try_parse_from(args).expect("flags").server;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(promlite::app::run(flags, listener, async {
        let _ = rx.await;
    }));
    let client = common::http();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(r) = client.get(format!("{base}/-/ready")).send().await {
            if r.status() == 200 {
                break;
            }
        }
        assert!(!task.is_finished(), "server exited before becoming ready");
        assert!(Instant::now() < deadline, "server not ready within 20s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Running { base, stop: Some(tx), task }
}

impl Running {
    async fn shutdown(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        let r = tokio::time::timeout(Duration::from_secs(20), self.task).await.expect("shutdown in time");
        r.expect("join").expect("server result");
    }
}

fn write_body(series: &[(&str, &str, Vec<(i64, f64)>)]) -> Vec<u8> {
    let req = WriteRequest {
        timeseries: series
            .iter()
            .map(|(name, model, samples)| TimeSeries {
                labels: vec![
                    Label { name: "__name__".into(), value: name.to_string() },
                    Label { name: "model".into(), value: model.to_string() },
                ],
                samples: samples.iter().map(|&(t, v)| Sample { value: v, timestamp: t }).collect(),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    };
    snap::raw::Encoder::new().compress_vec(&req.encode_to_vec()).expect("snappy")
}

async fn post_write(base: &str, body: Vec<u8>) -> reqwest::StatusCode {
    common::http()
        .post(format!("{base}/api/v1/write"))
        .header("Content-Type", "application/x-protobuf")
        .header("Content-Encoding", "snappy")
        .header("X-Prometheus-Remote-Write-Version", "0.1.0")
        .body(body)
        .send()
        .await
        .expect("write")
        .status()
}

async fn get_json(url: &str) -> serde_json::Value {
    common::get(url).await.expect("get").json().await.expect("json")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_write_query_reload_and_restart_on_real_storage() {
    let dir = tempfile::tempdir().expect("tempdir");
    let now = chrono::Utc::now().timestamp_millis();
    let t0 = now - 60_000;
    let srv = start(dir.path(), &[]).await;

    // Two Triton-like counters, four samples each, 15 s apart.
    let succ: Vec<(i64, f64)> = (0..4).map(|i| (t0 + i * 15_000, 100.0 + 30.0 * i as f64)).collect();
    let fail: Vec<(i64, f64)> = (0..4).map(|i| (t0 + i * 15_000, 2.0 * i as f64)).collect();
    let body = write_body(&[
        ("nv_inference_request_success", "resnet", succ.clone()),
        ("nv_inference_request_failure", "resnet", fail),
    ]);
    assert_eq!(post_write(&srv.base, body).await, 204);

    let t_eval = (t0 + 45_000) as f64 / 1000.0;
    let q = format!(
        "{}/api/v1/query?time={t_eval}&query=nv_inference_request_failure%2F(nv_inference_request_success%2Bnv_inference_request_failure)",
        srv.base
    );
    let v = get_json(&q).await;
    assert_eq!(v["status"], "success", "{v}");
    let result = &v["data"]["result"];
    assert_eq!(result.as_array().map(Vec::len), Some(1), "{v}");
    assert_eq!(result[0]["metric"]["model"], "resnet");
    let got: f64 = result[0]["value"][1].as_str().expect("value string").parse().expect("float");
    assert!((got - 6.0 / 196.0).abs() < 1e-12, "ratio {got}");

    // An out-of-order sample is a 400 and the rest of the request is stored.
    let mixed = write_body(&[
        ("nv_inference_request_success", "resnet", vec![(t0 - 1_000, 1.0)]),
        ("nv_inference_count", "resnet", vec![(t0, 7.0)]),
    ]);
    assert_eq!(post_write(&srv.base, mixed).await, 400);
    let v = get_json(&format!("{}/api/v1/query?time={t_eval}&query=nv_inference_count", srv.base)).await;
    assert_eq!(v["data"]["result"][0]["value"][1], "7", "{v}");

    // The embedded default config loads the bundled self-monitoring rules.
    let rules = get_json(&format!("{}/api/v1/rules", srv.base)).await;
    let groups: Vec<&str> =
        rules["data"]["groups"].as_array().expect("groups").iter().filter_map(|g| g["name"].as_str()).collect();
    assert!(groups.contains(&"promlite.self"), "{rules}");

    // Self-metrics count what was stored and what was rejected.
    let metrics = common::get(format!("{}/metrics", srv.base)).await.expect("metrics").text().await.expect("text");
    assert!(metrics.contains("promlite_ingested_samples_total{source=\"remote_write\"} 9"), "{metrics}");
    assert!(
        metrics.contains("promlite_rejected_samples_total{source=\"remote_write\",reason=\"out_of_order\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("prometheus_tsdb_head_series 3"), "{metrics}");
    assert!(metrics.contains("promlite_tsdb_wal_no_space_total 0"), "{metrics}");
    assert!(metrics.contains("promlite_tsdb_rejected_samples_total{reason=\"out_of_order\"} 1"), "{metrics}");

    // Reloading the embedded config works and keeps the data.
    let r = common::http().post(format!("{}/-/reload", srv.base)).send().await.expect("reload");
    assert_eq!(r.status(), 200);
    srv.shutdown().await;

    // After a restart on the same directory, every acknowledged sample is back.
    let srv = start(dir.path(), &[]).await;
    let range = format!(
        "{}/api/v1/query_range?query=nv_inference_request_success&start={}&end={}&step=15",
        srv.base,
        t0 as f64 / 1000.0,
        (t0 + 45_000) as f64 / 1000.0
    );
    let v = get_json(&range).await;
    let values = v["data"]["result"][0]["values"].as_array().expect("values").clone();
    let got: Vec<f64> = values.iter().map(|p| p[1].as_str().expect("s").parse().expect("f")).collect();
    assert_eq!(got, succ.iter().map(|s| s.1).collect::<Vec<_>>(), "{v}");
    srv.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_config_on_reload_is_refused_and_the_old_one_keeps_running() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("promlite.yml");
    std::fs::write(&cfg, "global:\n  scrape_interval: 5s\nscrape_configs: []\n").expect("write config");
    let data = dir.path().join("data");
    let srv = start(&data, &[&format!("--config.file={}", cfg.display())]).await;

    std::fs::write(&cfg, "global:\n  scrape_intervall: 5s\n").expect("write bad config");
    let r = common::http().post(format!("{}/-/reload", srv.base)).send().await.expect("reload");
    assert_eq!(r.status(), 500);
    let text = r.text().await.expect("text");
    assert!(text.contains("scrape_intervall") && text.contains("promlite.yml:2"), "{text}");

    // Still serving, with no rules (the embedded ones load only without a config file).
    let rules = get_json(&format!("{}/api/v1/rules", srv.base)).await;
    assert_eq!(rules["data"]["groups"].as_array().map(Vec::len), Some(0), "{rules}");
    srv.shutdown().await;
}
