//! Compares promlite's query API with Debian's `prometheus` (2.42) over the
//! same data, value for value after parsing the JSON.
//!
//! The data is written once as OpenMetrics, backfilled into Prometheus with
//! `promtool tsdb create-blocks-from openmetrics`, and appended to promlite
//! through its `Appendable`. Samples sit at `…x.234`-style millisecond
//! offsets and queries run at whole minutes plus 30s, so no sample lies on a
//! range-window boundary, where Prometheus 3 (promlite) and 2.42 differ.
//!
//! `prometheus` and `promtool` must be installed (`scripts/test.sh` installs
//! them); without them this test fails with a message saying so.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use promlite::http::query_api::{router, QueryApiState};
use promlite::model::Labels;
use promlite::storage::memory::MemStorage;
use promlite::storage::Appendable;

mod common;

type Dataset = Vec<(Vec<(String, String)>, Vec<(i64, f64)>)>;

/// A deterministic pseudo-random sequence (xorshift).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % 1_000_000) as f64 / 1_000_000.0
    }
}

const STEP_MS: i64 = 15_000;
const SAMPLES: i64 = 480; // 2 hours

fn ts(base: i64, i: i64, series: usize) -> i64 {
    let mut t = base + i * STEP_MS + 1_234 + (series as i64 * 97) % 700;
    if t % 1_000 == 0 {
        t += 1;
    }
    t
}

fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
}

fn dataset(base: i64) -> Dataset {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut out: Dataset = Vec::new();
    let mut idx = 0usize;
    let mut push = |labels: Vec<(String, String)>, values: Vec<f64>, out: &mut Dataset| {
        let samples = values.into_iter().enumerate().map(|(i, v)| (ts(base, i as i64, idx), v)).collect();
        out.push((labels, samples));
        idx += 1;
    };
    // Counters, one with a reset.
    for inst in ["i1:9100", "i2:9100"] {
        for code in ["200", "500"] {
            for handler in ["/a", "/b"] {
                let mut v = 0.0;
                let mut vals = Vec::new();
                for i in 0..SAMPLES {
                    v += (rng.next() * 20.0).floor();
                    if inst == "i2:9100" && code == "200" && handler == "/a" && i == 200 {
                        v = 3.0;
                    }
                    vals.push(v);
                }
                let l = pairs(&[
                    ("__name__", "http_requests_total"),
                    ("job", "api"),
                    ("instance", inst),
                    ("code", code),
                    ("handler", handler),
                ]);
                push(l, vals, &mut out);
            }
        }
    }
    // Classic histogram buckets.
    let bounds = ["0.05", "0.1", "0.25", "0.5", "1", "2.5", "+Inf"];
    for handler in ["/a", "/b"] {
        let mut counts = vec![0.0; bounds.len()];
        let mut series_vals: Vec<Vec<f64>> = vec![Vec::new(); bounds.len()];
        for _ in 0..SAMPLES {
            let n = (rng.next() * 30.0).floor() as usize;
            for _ in 0..n {
                let x = rng.next() * rng.next() * 3.0;
                for (b, bound) in bounds.iter().enumerate() {
                    let ub: f64 = if *bound == "+Inf" { f64::INFINITY } else { bound.parse().unwrap_or(0.0) };
                    if x <= ub {
                        counts[b] += 1.0;
                    }
                }
            }
            for b in 0..bounds.len() {
                series_vals[b].push(counts[b]);
            }
        }
        for (b, bound) in bounds.iter().enumerate() {
            let l = pairs(&[
                ("__name__", "http_request_duration_seconds_bucket"),
                ("job", "api"),
                ("handler", handler),
                ("le", bound),
            ]);
            push(l, series_vals[b].clone(), &mut out);
        }
    }
    // Triton counters.
    for model in ["resnet", "bert"] {
        let (mut dur, mut count, mut fail, mut ok) = (0.0, 0.0, 0.0, 0.0);
        let mut v = [Vec::new(), Vec::new(), Vec::new(), Vec::new()];
        for _ in 0..SAMPLES {
            let n = (rng.next() * 50.0).floor();
            count += n;
            dur += n * (1_000.0 + rng.next() * 5_000.0);
            let f = (rng.next() * 3.0).floor();
            fail += f;
            ok += n - f.min(n);
            v[0].push(dur);
            v[1].push(count);
            v[2].push(fail);
            v[3].push(ok);
        }
        for (i, name) in [
            "nv_inference_request_duration_us",
            "nv_inference_count",
            "nv_inference_request_failure",
            "nv_inference_request_success",
        ]
        .iter()
        .enumerate()
        {
            let l = pairs(&[("__name__", name), ("job", "triton"), ("model", model)]);
            push(l, v[i].clone(), &mut out);
        }
    }
    // Gauges.
    for inst in ["i1:9100", "i2:9100"] {
        let total = 16e9;
        let mut avail = 8e9;
        let mut a = Vec::new();
        for _ in 0..SAMPLES {
            avail = (avail + (rng.next() - 0.5) * 1e9).clamp(1e9, 15e9);
            a.push(avail);
        }
        push(
            pairs(&[("__name__", "node_memory_MemTotal_bytes"), ("instance", inst)]),
            vec![total; SAMPLES as usize],
            &mut out,
        );
        push(pairs(&[("__name__", "node_memory_MemAvailable_bytes"), ("instance", inst)]), a, &mut out);
        push(pairs(&[("__name__", "up"), ("job", "api"), ("instance", inst)]), vec![1.0; SAMPLES as usize], &mut out);
    }
    for gpu in ["0", "1"] {
        let mut t = 60.0;
        let mut vals = Vec::new();
        for _ in 0..SAMPLES {
            t = (t + (rng.next() - 0.5) * 4.0).clamp(30.0, 95.0);
            vals.push((t * 10.0_f64).round() / 10.0);
        }
        push(pairs(&[("__name__", "gpu_temperature_celsius"), ("gpu", gpu)]), vals, &mut out);
    }
    let mut q = 50.0;
    let mut vals = Vec::new();
    for _ in 0..SAMPLES {
        q = (q + (rng.next() - 0.45) * 10.0).max(0.0);
        vals.push(q.floor());
    }
    push(pairs(&[("__name__", "inference_queue_size"), ("service", "llm")]), vals, &mut out);
    // A target that stops reporting halfway: lookback and absent().
    let half: Vec<f64> = vec![1.0; (SAMPLES / 2) as usize];
    push(pairs(&[("__name__", "up"), ("job", "node"), ("instance", "i3:9100")]), half, &mut out);
    out
}

fn openmetrics(data: &Dataset) -> String {
    let mut s = String::new();
    for (labels, samples) in data {
        let name = &labels.iter().find(|(n, _)| n == "__name__").map(|(_, v)| v.clone()).unwrap_or_default();
        let rest: Vec<String> = labels
            .iter()
            .filter(|(n, _)| n != "__name__")
            .map(|(n, v)| format!("{n}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\"")))
            .collect();
        for (t, v) in samples {
            let _ = writeln!(s, "{name}{{{}}} {v} {}.{:03}", rest.join(","), t / 1000, t % 1000);
        }
    }
    // Families must be contiguous: the dataset lists each name's series together.
    s.push_str("# EOF\n");
    s
}

/// Stops Prometheus (by its PID) however the test ends.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).unwrap_or(0)
}

fn require(bin: &str) {
    let found =
        std::env::var_os("PATH").map(|p| std::env::split_paths(&p).any(|d| d.join(bin).is_file())).unwrap_or(false);
    assert!(
        found,
        "`{bin}` is not installed: this test compares promlite with Debian's Prometheus 2.42; \
         install it with `apt-get install -y prometheus` (scripts/test.sh does)"
    );
}

fn start_prometheus(dir: &Path, data: &Dataset) -> (ChildGuard, String) {
    let om = dir.join("data.om");
    std::fs::write(&om, openmetrics(data)).expect("write openmetrics");
    let tsdb = dir.join("tsdb");
    let out = Command::new("promtool")
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(&om)
        .arg(&tsdb)
        .output()
        .expect("run promtool");
    assert!(out.status.success(), "promtool failed: {}", String::from_utf8_lossy(&out.stderr));
    let cfg = dir.join("prometheus.yml");
    std::fs::write(&cfg, "global:\n  scrape_interval: 1h\n").expect("write config");
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let child = Command::new("prometheus")
        .arg(format!("--config.file={}", cfg.display()))
        .arg(format!("--storage.tsdb.path={}", tsdb.display()))
        .arg(format!("--web.listen-address={addr}"))
        .arg("--storage.tsdb.retention.time=10y")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start prometheus");
    (ChildGuard(child), format!("http://{addr}"))
}

async fn wait_ready(client: &reqwest::Client, base: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Ok(r) = client.get(format!("{base}/-/ready")).send().await {
            if r.status().is_success() {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("prometheus at {base} did not become ready");
}

fn parse_value(v: &serde_json::Value) -> f64 {
    match v.as_str().unwrap_or("") {
        "NaN" => f64::NAN,
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        s => s.parse().unwrap_or(f64::NAN),
    }
}

fn close(a: f64, b: f64) -> bool {
    (a.is_nan() && b.is_nan()) || a == b || (a - b).abs() <= 1e-9 * a.abs().max(b.abs())
}

/// Result rows keyed by their label set: (timestamp, value) points.
fn rows(v: &serde_json::Value) -> (String, BTreeMap<String, Vec<(f64, f64)>>) {
    let data = &v["data"];
    let kind = data["resultType"].as_str().unwrap_or("").to_string();
    let mut out = BTreeMap::new();
    match kind.as_str() {
        "scalar" | "string" => {
            let r = &data["result"];
            out.insert(String::new(), vec![(r[0].as_f64().unwrap_or(f64::NAN), parse_value(&r[1]))]);
        }
        _ => {
            for s in data["result"].as_array().cloned().unwrap_or_default() {
                let key = s["metric"].to_string();
                let pts: Vec<(f64, f64)> = if let Some(vs) = s["values"].as_array() {
                    vs.iter().map(|p| (p[0].as_f64().unwrap_or(f64::NAN), parse_value(&p[1]))).collect()
                } else {
                    vec![(s["value"][0].as_f64().unwrap_or(f64::NAN), parse_value(&s["value"][1]))]
                };
                out.insert(key, pts);
            }
        }
    }
    (kind, out)
}

fn compare(query: &str, ours: &serde_json::Value, theirs: &serde_json::Value) -> Result<(), String> {
    if ours["status"] != theirs["status"] {
        return Err(format!("{query}: status {} vs prometheus {}", ours, theirs));
    }
    if theirs["status"] == "error" {
        return if ours["errorType"] == theirs["errorType"] {
            Ok(())
        } else {
            Err(format!("{query}: errorType {} vs prometheus {}", ours["errorType"], theirs["errorType"]))
        };
    }
    let (ka, a) = rows(ours);
    let (kb, b) = rows(theirs);
    if ka != kb {
        return Err(format!("{query}: resultType {ka} vs prometheus {kb}"));
    }
    if a.len() != b.len() || a.keys().ne(b.keys()) {
        return Err(format!(
            "{query}: series {:?} vs prometheus {:?}",
            a.keys().collect::<Vec<_>>(),
            b.keys().collect::<Vec<_>>()
        ));
    }
    for (k, pa) in &a {
        let pb = &b[k];
        let same = pa.len() == pb.len() && pa.iter().zip(pb).all(|(x, y)| close(x.0, y.0) && close(x.1, y.1));
        if !same {
            return Err(format!("{query}: {k}: {pa:?} vs prometheus {pb:?}"));
        }
    }
    Ok(())
}

const INSTANT_QUERIES: &[&str] = &[
    "up",
    "up{job=~\"ap.\"}",
    "rate(http_requests_total[5m])",
    "irate(http_requests_total[5m])",
    "increase(http_requests_total[10m])",
    "resets(http_requests_total[1h])",
    "sum by (code) (rate(http_requests_total[5m]))",
    "sum without (instance) (rate(http_requests_total[5m]))",
    "sum(rate(http_requests_total{code=\"500\"}[5m])) / sum(rate(http_requests_total[5m]))",
    "histogram_quantile(0.95, sum by (le, handler) (rate(http_request_duration_seconds_bucket[5m])))",
    "histogram_quantile(0.5, rate(http_request_duration_seconds_bucket[5m]))",
    "histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket[10m])))",
    "sum(rate(nv_inference_request_duration_us{job=\"triton\"}[5m])) / clamp_min(sum(rate(nv_inference_count{job=\"triton\"}[5m])), 1)",
    "sum by (model) (rate(nv_inference_request_failure{job=\"triton\"}[5m])) / clamp_min(sum by (model) (rate(nv_inference_request_success{job=\"triton\"}[5m])) + sum by (model) (rate(nv_inference_request_failure{job=\"triton\"}[5m])), 1)",
    "(node_memory_MemTotal_bytes - node_memory_MemAvailable_bytes) / node_memory_MemTotal_bytes > 0.3",
    "(node_memory_MemTotal_bytes - node_memory_MemAvailable_bytes) / node_memory_MemTotal_bytes > bool 0.5",
    "avg(gpu_temperature_celsius)",
    "max by (gpu) (gpu_temperature_celsius)",
    "max_over_time(gpu_temperature_celsius[10m])",
    "min_over_time(gpu_temperature_celsius[10m])",
    "avg_over_time(gpu_temperature_celsius[10m])",
    "sum_over_time(gpu_temperature_celsius[10m])",
    "count_over_time(up[10m])",
    "quantile_over_time(0.9, gpu_temperature_celsius[30m])",
    "stddev_over_time(gpu_temperature_celsius[30m])",
    "stdvar_over_time(gpu_temperature_celsius[30m])",
    "last_over_time(gpu_temperature_celsius[10m])",
    "present_over_time(up[10m])",
    "changes(gpu_temperature_celsius[10m])",
    "delta(gpu_temperature_celsius[5m])",
    "idelta(gpu_temperature_celsius[5m])",
    "deriv(gpu_temperature_celsius[10m])",
    "predict_linear(inference_queue_size[10m], 600)",
    "inference_queue_size > 100",
    "topk(3, rate(http_requests_total[5m]))",
    "bottomk(2, rate(http_requests_total[5m]))",
    "topk by (code) (1, rate(http_requests_total[5m]))",
    "quantile(0.9, rate(http_requests_total[5m]))",
    "stddev(rate(http_requests_total[5m]))",
    "stdvar by (code) (rate(http_requests_total[5m]))",
    "count by (job) (up)",
    "count_values(\"value\", gpu_temperature_celsius > 0) ",
    "group by (job) (up)",
    "min(up)",
    "absent(nonexistent_metric{job=\"x\"})",
    "absent(up)",
    "absent_over_time(nonexistent_metric[5m])",
    "label_replace(up, \"host\", \"$1\", \"instance\", \"(.*):.*\")",
    "label_join(up, \"jobinst\", \"/\", \"job\", \"instance\")",
    "http_requests_total offset 10m",
    "rate(http_requests_total[5m] offset 5m)",
    "max_over_time(rate(http_requests_total[5m])[30m:1m])",
    "avg_over_time(sum by (code) (rate(http_requests_total[5m]))[20m:2m])",
    "sum by (instance) (rate(http_requests_total[5m])) * on (instance) group_left (job) up",
    "rate(http_requests_total[5m]) > on (instance) group_left () (0 * up + 5)",
    "up unless on (instance) (rate(http_requests_total{code=\"500\"}[5m]) > 100)",
    "up or on () vector(0)",
    "rate(http_requests_total[5m]) and on (instance) up",
    "time()",
    "vector(1)",
    "scalar(sum(up))",
    "1 + 2 * 3",
    "timestamp(up)",
    "sort_desc(sum by (handler) (rate(http_requests_total[5m])))",
    "sort(gpu_temperature_celsius)",
    "round(gpu_temperature_celsius, 0.5)",
    "clamp(gpu_temperature_celsius, 60, 70)",
    "clamp_max(gpu_temperature_celsius, 60)",
    "abs(delta(gpu_temperature_celsius[5m]))",
    "sgn(delta(gpu_temperature_celsius[5m]))",
    "ceil(gpu_temperature_celsius) - floor(gpu_temperature_celsius)",
    "sqrt(gpu_temperature_celsius) + ln(gpu_temperature_celsius) + log2(gpu_temperature_celsius) + log10(gpu_temperature_celsius)",
    "exp(gpu_temperature_celsius / 100)",
    "gpu_temperature_celsius % 7",
    "gpu_temperature_celsius ^ 2",
    "-gpu_temperature_celsius",
    "day_of_week()",
    "hour(gpu_temperature_celsius * 0 + 1700000000)",
    "days_in_month(vector(time()))",
    "http_requests_total @ end()",
    "rate(http_requests_total[5m] @ start())",
    "sum(",
    "rate(up)",
    "http_requests_total + on (job) http_requests_total",
];

const RANGE_QUERIES: &[&str] = &[
    "up",
    "sum by (code) (rate(http_requests_total[5m]))",
    "histogram_quantile(0.95, sum by (le, handler) (rate(http_request_duration_seconds_bucket[5m])))",
    "sum(rate(nv_inference_request_duration_us{job=\"triton\"}[5m])) / clamp_min(sum(rate(nv_inference_count{job=\"triton\"}[5m])), 1)",
    "topk(2, gpu_temperature_celsius)",
    "max_over_time(rate(http_requests_total[5m])[30m:1m])",
    "absent(up{job=\"node\"})",
    "time() - timestamp(up)",
    "predict_linear(inference_queue_size[10m], 600)",
    "scalar(sum(up))",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_api_matches_prometheus() {
    require("prometheus");
    require("promtool");
    let now = chrono::Utc::now().timestamp_millis();
    // Two hours of data ending about an hour ago, starting on a whole hour.
    let base = (now - 3 * 3_600_000) / 3_600_000 * 3_600_000;
    let data = dataset(base);

    let dir = tempfile::tempdir().expect("tempdir");
    let (_prom, prom_url) = start_prometheus(dir.path(), &data);

    let storage = MemStorage::new();
    {
        let mut app = storage.appender();
        for (labels, samples) in &data {
            let l = Labels::from_pairs(labels.iter().map(|(a, b)| (a.as_str(), b.as_str())));
            for &(t, v) in samples {
                app.append(&l, t, v).expect("append");
            }
        }
        app.commit().expect("commit");
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let ours_url = format!("http://{}", listener.local_addr().expect("addr"));
    let app = router(QueryApiState::new(Arc::new(storage)));
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });

    let client = common::http();
    wait_ready(&client, &prom_url).await;

    // Whole minutes plus 30s: never on a sample, window or subquery boundary.
    let t_eval = base + 100 * 60_000 + 30_000;
    let mut failures = Vec::new();
    let mut checked = 0;
    let mut non_empty = 0;
    let fetch = |url: String, params: Vec<(&'static str, String)>| {
        let client = client.clone();
        async move {
            let mut qs = form_urlencoded::Serializer::new(String::new());
            for (k, v) in &params {
                qs.append_pair(k, v);
            }
            let r = client.get(format!("{url}?{}", qs.finish())).send().await.expect("request");
            let status = r.status().as_u16();
            let v: serde_json::Value = r.json().await.expect("json");
            (status, v)
        }
    };
    for q in INSTANT_QUERIES {
        let params = vec![("query", q.to_string()), ("time", format!("{}", t_eval as f64 / 1000.0))];
        let (sa, a) = fetch(format!("{ours_url}/api/v1/query"), params.clone()).await;
        let (sb, b) = fetch(format!("{prom_url}/api/v1/query"), params).await;
        checked += 1;
        if !rows(&b).1.is_empty() {
            non_empty += 1;
        }
        if sa != sb {
            failures.push(format!("{q}: HTTP {sa} vs prometheus {sb}"));
            continue;
        }
        if let Err(e) = compare(q, &a, &b) {
            failures.push(e);
        }
    }
    for q in RANGE_QUERIES {
        let params = vec![
            ("query", q.to_string()),
            ("start", format!("{}", (t_eval - 3_600_000) as f64 / 1000.0)),
            ("end", format!("{}", t_eval as f64 / 1000.0)),
            ("step", "60".to_string()),
        ];
        let (sa, a) = fetch(format!("{ours_url}/api/v1/query_range"), params.clone()).await;
        let (sb, b) = fetch(format!("{prom_url}/api/v1/query_range"), params).await;
        checked += 1;
        if sa != sb {
            failures.push(format!("range {q}: HTTP {sa} vs prometheus {sb}"));
            continue;
        }
        if let Err(e) = compare(q, &a, &b) {
            failures.push(format!("range {e}"));
        }
    }
    // The same label API answers.
    for path in ["/api/v1/labels", "/api/v1/label/job/values", "/api/v1/label/__name__/values"] {
        let params =
            vec![("start", format!("{}", base as f64 / 1000.0)), ("end", format!("{}", t_eval as f64 / 1000.0))];
        let (_, a) = fetch(format!("{ours_url}{path}"), params.clone()).await;
        let (_, b) = fetch(format!("{prom_url}{path}"), params).await;
        checked += 1;
        if a["data"] != b["data"] {
            failures.push(format!("{path}: {} vs prometheus {}", a["data"], b["data"]));
        }
    }
    let params = vec![("match[]", "up".to_string()), ("match[]", "gpu_temperature_celsius".to_string())];
    let (_, a) = fetch(format!("{ours_url}/api/v1/series"), params.clone()).await;
    let (_, b) = fetch(format!("{prom_url}/api/v1/series"), params).await;
    checked += 1;
    let sorted = |v: &serde_json::Value| {
        let mut s: Vec<String> =
            v["data"].as_array().cloned().unwrap_or_default().iter().map(|x| x.to_string()).collect();
        s.sort();
        s
    };
    if sorted(&a) != sorted(&b) {
        failures.push(format!("/api/v1/series: {} vs prometheus {}", a["data"], b["data"]));
    }
    server.abort();
    println!(
        "api_vs_prometheus: {checked} requests compared, {} differ, {non_empty} non-empty instant results",
        failures.len()
    );
    // Guard against comparing two empty databases.
    assert!(non_empty >= INSTANT_QUERIES.len() * 3 / 4, "only {non_empty} instant queries returned data");
    assert!(failures.is_empty(), "differences from Prometheus:\n{}", failures.join("\n"));
}
