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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loadgen_samples_arrive() {
    let st = Arc::new(MemStorage::new());
    let reg = Arc::new(Registry::new());
    let rw = RemoteWrite::new(st.clone(), Limits::default(), IngestMetrics::register(&reg));
    let app = router(ServerParts {
        metrics: reg,
        ready: Readiness::new(),
        reload: None,
        routers: vec![promlite::ingest::router(rw)],
    });
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { serve(l, app, std::future::pending()).await });

    let opts = Options {
        url: format!("http://{addr}/api/v1/write"),
        series: 900,
        batch: 200,
        concurrency: 2,
        duration: Duration::from_millis(300),
        warmup_cycles: 1,
        timeout: Duration::from_secs(10),
        json: false,
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
