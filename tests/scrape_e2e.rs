//! Loopback end-to-end scraping: fixture exposition served by a tiny axum
//! server on 127.0.0.1, scraped by the manager into `MemStorage`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use parking_lot::Mutex;
use promlite::config::Config;
use promlite::model::{is_stale_nan, Labels, Matcher, Sample};
use promlite::scrape::parse::{parse, Event};
use promlite::scrape::protocol::Format;
use promlite::scrape::{api, Manager, ManagerOptions};
use promlite::storage::memory::MemStorage;
use promlite::storage::Queryable;

#[derive(Default)]
struct Served {
    content_type: String,
    body: String,
    /// Serve OpenMetrics when the scraper asks for it.
    om_body: Option<String>,
    requests: Vec<HeaderMap>,
    queries: Vec<String>,
}

type Shared = Arc<Mutex<Served>>;

async fn metrics(State(s): State<Shared>, uri: axum::http::Uri, headers: HeaderMap) -> impl IntoResponse {
    let mut s = s.lock();
    s.requests.push(headers.clone());
    s.queries.push(uri.query().unwrap_or("").to_string());
    let accept = headers.get("accept").and_then(|v| v.to_str().ok()).unwrap_or("");
    if let (Some(om), true) = (&s.om_body, accept.contains("application/openmetrics-text")) {
        return (
            StatusCode::OK,
            [("content-type", "application/openmetrics-text; version=1.0.0; charset=utf-8".to_string())],
            om.clone(),
        );
    }
    (StatusCode::OK, [("content-type", s.content_type.clone())], s.body.clone())
}

async fn serve(shared: Shared) -> String {
    let app = Router::new().route("/metrics", get(metrics)).route("/probe", get(metrics)).with_state(shared);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap_or_else(|e| panic!("bind: {e}"));
    let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    addr.to_string()
}

fn fixture(name: &str) -> String {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/exposition").join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn text(body: String) -> Shared {
    Arc::new(Mutex::new(Served {
        content_type: "text/plain; version=0.0.4; charset=utf-8".into(),
        body,
        ..Default::default()
    }))
}

fn config(yaml: &str) -> Config {
    Config::parse(yaml, "test.yml", std::path::Path::new(".")).unwrap_or_else(|e| panic!("{e:?}"))
}

fn fast_options() -> ManagerOptions {
    ManagerOptions { file_sd_poll: Duration::from_millis(50), offset_seed: 0 }
}

fn all_series(s: &MemStorage) -> Vec<(Labels, Vec<Sample>)> {
    let mut out = Vec::new();
    for mut series in s.select(i64::MIN, i64::MAX, &[] as &[Matcher]).unwrap_or_default() {
        let mut v = Vec::new();
        series.samples.collect_into(&mut v);
        out.push((series.labels, v));
    }
    out
}

fn samples_of(s: &MemStorage, name: &str) -> Vec<(Labels, Vec<Sample>)> {
    all_series(s).into_iter().filter(|(l, _)| l.metric_name() == Some(name)).collect()
}

/// Polls `cond` until it holds or 10s pass.
async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn up_values(s: &MemStorage) -> Vec<f64> {
    samples_of(s, "up").into_iter().flat_map(|(_, v)| v.into_iter().map(|x| x.v)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scrapes_triton_fixture_exactly() {
    let body = fixture("triton.prom");
    let addr = serve(text(body.clone())).await;
    let store = Arc::new(MemStorage::new());
    let m = Manager::new(store.clone(), fast_options());
    m.apply_config(&config(&format!(
        "scrape_configs:\n  - job_name: triton\n    scrape_interval: 200ms\n    scrape_timeout: 200ms\n    static_configs:\n      - targets: ['{addr}']\n        labels:\n          node: gpu-1\n"
    )))
    .await;
    wait_for("first scrape", || !up_values(&store).is_empty()).await;
    m.stop().await;

    // Every sample line of the fixture is stored with the target labels and its value.
    let mut want = Vec::new();
    parse(body.as_bytes(), Format::PromText, |e| {
        if let Event::Sample(s) = e {
            let mut b = Labels::empty().to_builder();
            b.set("__name__", &s.name);
            for (n, v) in s.labels {
                b.set(n, v);
            }
            b.set("instance", &addr);
            b.set("job", "triton");
            b.set("node", "gpu-1");
            want.push((b.build(), s.value));
        }
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let got = all_series(&store);
    for (labels, v) in &want {
        let series = got.iter().find(|(l, _)| l == labels).unwrap_or_else(|| panic!("missing {labels}"));
        assert_eq!(series.1[0].v, *v, "{labels}");
    }
    let pending = labels_of(
        "nv_inference_pending_request_count",
        &[("model", "resnet50"), ("version", "1"), ("instance", &addr), ("job", "triton"), ("node", "gpu-1")],
    );
    assert!(got.iter().any(|(l, _)| *l == pending), "{pending}");

    // Synthetic series of the first scrape.
    let first = |name: &str| samples_of(&store, name).first().map(|(l, v)| (l.clone(), v[0].v));
    let target = [("instance", addr.as_str()), ("job", "triton"), ("node", "gpu-1")];
    assert_eq!(first("up"), Some((labels_of("up", &target), 1.0)));
    assert_eq!(first("scrape_samples_scraped").map(|x| x.1), Some(want.len() as f64));
    assert_eq!(first("scrape_samples_post_metric_relabeling").map(|x| x.1), Some(want.len() as f64));
    assert_eq!(first("scrape_series_added").map(|x| x.1), Some(want.len() as f64));
    let dur = first("scrape_duration_seconds").map(|x| x.1).unwrap_or(-1.0);
    assert!(dur > 0.0 && dur < 1.0, "{dur}");
    // Stopping the manager ends every series with a stale marker.
    for (l, v) in got.iter() {
        assert!(v.last().is_some_and(|s| is_stale_nan(s.v)), "{l} not stale at the end");
    }
}

fn labels_of(name: &str, pairs: &[(&str, &str)]) -> Labels {
    let mut b = Labels::empty().to_builder();
    b.set("__name__", name);
    for (n, v) in pairs {
        b.set(n, v);
    }
    b.build()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_line_sets_up_zero_and_names_the_line() {
    let shared = text(fixture("bad_missing_value.prom"));
    let addr = serve(shared).await;
    let store = Arc::new(MemStorage::new());
    let m = Arc::new(Manager::new(store.clone(), fast_options()));
    m.apply_config(&config(&format!(
        "scrape_configs:\n  - job_name: bad\n    scrape_interval: 200ms\n    scrape_timeout: 200ms\n    static_configs:\n      - targets: ['{addr}']\n"
    )))
    .await;
    wait_for("first scrape", || !up_values(&store).is_empty()).await;
    assert_eq!(up_values(&store)[0], 0.0);
    assert!(samples_of(&store, "nv_inference_count").is_empty(), "a failed scrape stores nothing");
    let data = api::targets_data(&m, None, None);
    let t = &data["activeTargets"][0];
    assert_eq!(t["health"], "down");
    let err = t["lastError"].as_str().unwrap_or("");
    assert!(err.contains("line 4") && err.contains("missing value"), "{err}");
    assert_eq!(t["scrapePool"], "bad");
    assert_eq!(t["scrapeUrl"], format!("http://{addr}/metrics"));
    assert_eq!(t["scrapeInterval"], "200ms");
    assert_eq!(t["labels"]["job"], "bad");
    assert_eq!(t["discoveredLabels"]["__address__"], addr.as_str());
    assert_eq!(data["droppedTargets"].as_array().map(|a| a.len()), Some(0));
    m.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vanished_series_and_recovery() {
    let shared = text("a 1\nb 2\n".into());
    let addr = serve(shared.clone()).await;
    let store = Arc::new(MemStorage::new());
    let m = Manager::new(store.clone(), fast_options());
    m.apply_config(&config(&format!(
        "scrape_configs:\n  - job_name: j\n    scrape_interval: 100ms\n    scrape_timeout: 100ms\n    static_configs:\n      - targets: ['{addr}']\n"
    )))
    .await;
    wait_for("first scrape", || !samples_of(&store, "b").is_empty()).await;
    shared.lock().body = "a 3\n".into();
    wait_for("stale marker for b", || {
        samples_of(&store, "b").first().is_some_and(|(_, v)| v.last().is_some_and(|s| is_stale_nan(s.v)))
    })
    .await;
    let a = samples_of(&store, "a");
    assert!(a[0].1.iter().all(|s| !is_stale_nan(s.v)), "a is still scraped");
    // The target fails: all its series go stale, up drops to 0.
    shared.lock().content_type = "application/json".into();
    wait_for("a goes stale", || samples_of(&store, "a")[0].1.last().is_some_and(|s| is_stale_nan(s.v))).await;
    assert_eq!(up_values(&store).last().copied(), Some(0.0));
    m.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openmetrics_negotiation_auth_path_params_and_relabel() {
    let shared = text("wrong 1\n".into());
    shared.lock().om_body = Some(fixture("fastapi.om.txt"));
    let addr = serve(shared.clone()).await;
    let store = Arc::new(MemStorage::new());
    let m = Manager::new(store.clone(), fast_options());
    m.apply_config(&config(&format!(
        "scrape_configs:\n  - job_name: fastapi\n    scrape_interval: 200ms\n    scrape_timeout: 200ms\n    metrics_path: /probe\n\
         \x20   params:\n      module: [http_2xx]\n    basic_auth:\n      username: u\n      password: p\n\
         \x20   static_configs:\n      - targets: ['{addr}']\n\
         \x20   metric_relabel_configs:\n      - source_labels: [__name__]\n        regex: 'http_requests_created'\n        action: drop\n"
    )))
    .await;
    wait_for("first scrape", || !up_values(&store).is_empty()).await;
    let meta = m.metadata();
    m.stop().await;
    assert_eq!(up_values(&store)[0], 1.0);
    let hist = meta.get("http_request_duration_seconds").cloned().unwrap_or_default();
    assert_eq!(hist.len(), 1);
    assert_eq!((hist[0].kind.as_str(), hist[0].unit.as_str()), ("histogram", "seconds"));
    assert_eq!(hist[0].help, "Latency with many buckets but no API specific labels.");
    let req = shared.lock().requests[0].clone();
    let accept = req.get("accept").and_then(|v| v.to_str().ok()).unwrap_or("");
    assert!(accept.starts_with("application/openmetrics-text;version=1.0.0;q=0.6"), "{accept}");
    // base64("u:p") = dT1w
    assert_eq!(req.get("authorization").and_then(|v| v.to_str().ok()), Some("Basic dTpw"));
    assert!(req.get("x-prometheus-scrape-timeout-seconds").is_some());
    assert_eq!(shared.lock().queries[0], "module=http_2xx");
    let buckets = samples_of(&store, "http_request_duration_seconds_bucket");
    let les: Vec<&str> = buckets.iter().filter_map(|(l, _)| l.get("le")).collect();
    assert_eq!(les, ["+Inf", "0.1", "0.5", "1.0"]);
    assert!(samples_of(&store, "http_requests_created").is_empty(), "dropped by metric_relabel_configs");
    let ts = samples_of(&store, "model_load_timestamp");
    assert_eq!(ts[0].1[0].t, 1_731_600_000_500, "honor_timestamps uses the exposed timestamp");
    let scraped = samples_of(&store, "scrape_samples_scraped")[0].1[0].v;
    let post = samples_of(&store, "scrape_samples_post_metric_relabeling")[0].1[0].v;
    assert_eq!(scraped - post, 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_sd_changes_targets_and_reload_keeps_series() {
    let a = serve(text("from_a 1\n".into())).await;
    let b = serve(text("from_b 2\n".into())).await;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let sd = dir.path().join("targets.json");
    std::fs::write(&sd, format!(r#"[{{"targets":["{a}"],"labels":{{"env":"prod"}}}}]"#))
        .unwrap_or_else(|e| panic!("{e}"));
    let cfg_path = dir.path().join("prometheus.yml");
    let write_cfg = |extra: &str| {
        std::fs::write(
            &cfg_path,
            format!(
                "scrape_configs:\n  - job_name: sd\n    scrape_interval: 100ms\n    scrape_timeout: 100ms\n    file_sd_configs:\n      - files: ['*.json']\n{extra}"
            ),
        )
        .unwrap_or_else(|e| panic!("{e}"))
    };
    write_cfg("");
    let store = Arc::new(MemStorage::new());
    let m = Arc::new(Manager::new(store.clone(), fast_options()));
    let load = || Config::load(&cfg_path).unwrap_or_else(|e| panic!("{e:?}"));
    m.apply_config(&load()).await;
    wait_for("target a scraped", || !samples_of(&store, "from_a").is_empty()).await;
    let got = samples_of(&store, "from_a");
    assert_eq!(got[0].0.get("env"), Some("prod"));
    assert_eq!(got[0].0.get("__meta_filepath"), None, "meta labels are removed");
    let data = api::targets_data(&m, Some("active"), Some("sd"));
    assert_eq!(data["activeTargets"][0]["discoveredLabels"]["__meta_filepath"], sd.display().to_string());

    // A changed config for the same targets hands the loop over: no stale marker in between.
    write_cfg("    metric_relabel_configs:\n      - target_label: relabeled\n        replacement: 'yes'\n");
    m.apply_config(&load()).await;
    wait_for("relabeled series", || {
        samples_of(&store, "from_a").iter().any(|(l, _)| l.get("relabeled") == Some("yes"))
    })
    .await;
    let old = samples_of(&store, "from_a").into_iter().find(|(l, _)| l.get("relabeled").is_none());
    // The old series vanished from the new scrape's output, so it ends with one stale marker
    // written by the new loop; the target's `up` series never went stale.
    wait_for("old series stale", || {
        samples_of(&store, "from_a")
            .iter()
            .any(|(l, v)| l.get("relabeled").is_none() && v.last().is_some_and(|s| is_stale_nan(s.v)))
    })
    .await;
    assert!(old.is_some());
    let ups = samples_of(&store, "up");
    assert!(ups.iter().all(|(_, v)| v.iter().all(|s| !is_stale_nan(s.v))), "up went stale across the reload");

    // The file now names b instead of a: a's series go stale, b is scraped.
    std::fs::write(&sd, format!(r#"[{{"targets":["{b}"]}}]"#)).unwrap_or_else(|e| panic!("{e}"));
    wait_for("target b scraped", || !samples_of(&store, "from_b").is_empty()).await;
    wait_for("target a stale", || {
        samples_of(&store, "up")
            .iter()
            .any(|(l, v)| l.get("instance") == Some(a.as_str()) && v.last().is_some_and(|s| is_stale_nan(s.v)))
    })
    .await;
    let data = api::targets_data(&m, None, None);
    let act = data["activeTargets"].as_array().cloned().unwrap_or_default();
    assert_eq!(act.len(), 1);
    assert_eq!(act[0]["labels"]["instance"], b.as_str());
    m.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relabel_drops_targets_into_dropped_list() {
    let a = serve(text("x 1\n".into())).await;
    let store = Arc::new(MemStorage::new());
    let m = Arc::new(Manager::new(store.clone(), fast_options()));
    m.apply_config(&config(&format!(
        "scrape_configs:\n  - job_name: j\n    scrape_interval: 100ms\n    scrape_timeout: 100ms\n    static_configs:\n      - targets: ['{a}', 'skip-me:1']\n\
         \x20   relabel_configs:\n      - source_labels: [__address__]\n        regex: 'skip-.*'\n        action: drop\n"
    )))
    .await;
    wait_for("scrape", || !up_values(&store).is_empty()).await;
    let data = api::targets_data(&m, None, None);
    assert_eq!(data["activeTargets"].as_array().map(|v| v.len()), Some(1));
    assert_eq!(data["droppedTargets"][0]["discoveredLabels"]["__address__"], "skip-me:1");
    assert_eq!(data["droppedTargetCounts"]["j"], 1);
    // Removing the job ends its series.
    m.apply_config(&config("scrape_configs: []\n")).await;
    assert!(samples_of(&store, "x")[0].1.last().is_some_and(|s| is_stale_nan(s.v)));
    assert!(m.pool_names().is_empty());
}
