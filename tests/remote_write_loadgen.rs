//! The load tool against promlite's receiver on loopback: every sample it
//! reports as accepted is stored, with the labels and values it generated.

use std::sync::Arc;
use std::time::Duration;

use promlite::http::{router, serve, Readiness, ServerParts};
use promlite::ingest::{Limits, RemoteWrite};
use promlite::loadgen::{run, series, Options};
use promlite::metrics::{IngestMetrics, Registry};
use promlite::model::{Labels, Matcher};
use promlite::storage::memory::MemStorage;
use promlite::storage::Queryable;

/// promlite's receiver over `st` on a free loopback port; its write URL.
async fn receiver(st: Arc<MemStorage>) -> String {
    let reg = Arc::new(Registry::new());
    let rw = RemoteWrite::new(st, Limits::default(), IngestMetrics::register(&reg));
    let app = router(ServerParts {
        metrics: reg,
        ready: Readiness::new(),
        reload: None,
        routers: vec![promlite::ingest::router(rw)],
    });
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { serve(l, app, std::future::pending()).await });
    format!("http://{addr}/api/v1/write")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loadgen_samples_arrive() {
    let st = Arc::new(MemStorage::new());
    let url = receiver(st.clone()).await;
    let opts = Options {
        url,
        series: 900,
        batch: 200,
        concurrency: 2,
        duration: Duration::from_millis(300),
        warmup_cycles: 1,
        timeout: Duration::from_secs(10),
        json: false,
        backfill: None,
        interval: Duration::from_secs(15),
    };
    let report = run(&opts).await.unwrap();
    assert!(report.errors.is_empty(), "{report}");
    assert!(report.samples_accepted > 0, "{report}");
    assert!(report.latency_ms_p50 <= report.latency_ms_p99);

    // Every generated series exists, and the sample count matches what was
    // reported accepted plus the warm-up cycle.
    let all = st.select(i64::MIN, i64::MAX, &[]).unwrap();
    assert_eq!(all.len(), 900);
    let mut total = 0u64;
    for mut s in all {
        let mut v = Vec::new();
        s.samples.collect_into(&mut v);
        assert!(v.windows(2).all(|w| w[0].t < w[1].t));
        total += v.len() as u64;
    }
    assert_eq!(report.warmup_samples_accepted, 900);
    assert_eq!(total, report.samples_accepted + report.warmup_samples_accepted);
    let want = Labels::from_pairs(series::series(4).labels);
    let got = st
        .select(i64::MIN, i64::MAX, &want.iter().map(|l| Matcher::equal(l.name, l.value)).collect::<Vec<_>>())
        .unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].labels, want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backfill_stamps_history_one_interval_apart() {
    let st = Arc::new(MemStorage::new());
    let url = receiver(st.clone()).await;
    let before = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    let opts = Options {
        url,
        series: 50,
        batch: 20,
        concurrency: 2,
        duration: Duration::from_secs(60),
        warmup_cycles: 1,
        timeout: Duration::from_secs(10),
        json: false,
        backfill: Some(Duration::from_secs(600)),
        interval: Duration::from_secs(60),
    };
    let report = run(&opts).await.unwrap();
    assert!(report.errors.is_empty(), "{report}");
    // Ten minutes at one sample a minute: 11 stamps per series (both ends),
    // the first ten minutes before the run started, then it stops by itself.
    assert_eq!(report.warmup_samples_accepted + report.samples_accepted, 50 * 11, "{report}");
    assert!(report.seconds < 30.0, "{report}");
    for mut s in st.select(i64::MIN, i64::MAX, &[]).unwrap() {
        let mut v = Vec::new();
        s.samples.collect_into(&mut v);
        assert_eq!(v.len(), 11, "{}", s.labels);
        assert!(v.windows(2).all(|w| w[1].t - w[0].t == 60_000), "{}", s.labels);
        assert!((v[0].t - (before - 600_000)).abs() < 5_000, "first stamp {} vs run start {before}", v[0].t);
    }
}
