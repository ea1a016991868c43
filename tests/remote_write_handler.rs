//! The remote_write receiver over real HTTP on 127.0.0.1: every status code
//! a sender can get, partial writes, and the limit counters in `/metrics`.

use std::sync::Arc;

use promlite::http::{router, serve, Readiness, ServerParts};
use promlite::ingest::proto::{Histogram, Label, Sample as PSample, TimeSeries, WriteRequest};
use promlite::ingest::{Limits, RemoteWrite};
use promlite::metrics::{IngestMetrics, Registry};
use promlite::model::{Labels, Matcher, Sample};
use promlite::storage::memory::MemStorage;
use promlite::storage::{AppendError, Appendable, Appender, Queryable, SeriesRef, StorageError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

mod common;

struct Server {
    base: String,
    addr: std::net::SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Server {
    async fn start(storage: Arc<dyn Appendable>, limits: Limits) -> Server {
        let reg = Arc::new(Registry::new());
        let rw = RemoteWrite::new(storage, limits, IngestMetrics::register(&reg));
        let app = router(ServerParts {
            metrics: reg,
            ready: Readiness::new(),
            reload: None,
            routers: vec![promlite::ingest::router(rw)],
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            serve(listener, app, async {
                let _ = rx.await;
            })
            .await
            .unwrap();
        });
        Server { base: format!("http://{addr}"), addr, stop: Some(tx), task: Some(task) }
    }

    async fn post(&self, body: Vec<u8>) -> (u16, String) {
        self.post_with(body, "application/x-protobuf", "snappy").await
    }

    async fn post_with(&self, body: Vec<u8>, ct: &str, enc: &str) -> (u16, String) {
        let r = common::http()
            .post(format!("{}/api/v1/write", self.base))
            .header("Content-Type", ct)
            .header("Content-Encoding", enc)
            .header("X-Prometheus-Remote-Write-Version", "0.1.0")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.text().await.unwrap())
    }

    async fn metrics(&self) -> String {
        common::get(format!("{}/metrics", self.base)).await.unwrap().text().await.unwrap()
    }

    async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            t.await.unwrap();
        }
    }
}

fn series(pairs: &[(&str, &str)], samples: &[(i64, f64)]) -> TimeSeries {
    TimeSeries {
        labels: pairs.iter().map(|(n, v)| Label { name: n.to_string(), value: v.to_string() }).collect(),
        samples: samples.iter().map(|&(t, v)| PSample { value: v, timestamp: t }).collect(),
        ..Default::default()
    }
}

fn body(ts: Vec<TimeSeries>) -> Vec<u8> {
    WriteRequest { timeseries: ts, metadata: vec![] }.encode_snappy().unwrap()
}

fn stored(st: &MemStorage, name: &str) -> Vec<Sample> {
    let mut v = Vec::new();
    for mut s in st.select(i64::MIN, i64::MAX, &[Matcher::equal("__name__", name)]).unwrap() {
        s.samples.collect_into(&mut v);
    }
    v
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

#[tokio::test]
async fn accepts_valid_requests_with_204() {
    let st = Arc::new(MemStorage::new());
    let srv = Server::start(st.clone(), Limits::default()).await;
    let t = now();
    let (code, text) = srv
        .post(body(vec![
            series(
                &[("__name__", "nv_inference_count"), ("model", "resnet50"), ("gpu_uuid", "GPU-1")],
                &[(t, 10.0), (t + 1000, 12.0)],
            ),
            series(&[("__name__", "up"), ("job", "triton")], &[(t, 1.0)]),
        ]))
        .await;
    assert_eq!((code, text.as_str()), (204, ""));
    assert_eq!(stored(&st, "nv_inference_count"), vec![Sample::new(t, 10.0), Sample::new(t + 1000, 12.0)]);
    assert_eq!(stored(&st, "up"), vec![Sample::new(t, 1.0)]);
    // Missing Content-Type / Content-Encoding default to 1.0 and snappy, as in Prometheus.
    let r = common::http()
        .post(format!("{}/api/v1/write", srv.base))
        .body(body(vec![series(&[("__name__", "up"), ("job", "triton")], &[(t + 1, 0.0)])]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 204);
    let m = srv.metrics().await;
    assert!(m.contains("promlite_ingested_samples_total{source=\"remote_write\"} 4"), "{m}");
    assert!(m.contains("promlite_remote_write_requests_total{code=\"204\"} 2"), "{m}");
    srv.stop().await;
}

#[tokio::test]
async fn bad_encoding_is_400() {
    let st = Arc::new(MemStorage::new());
    let srv = Server::start(st.clone(), Limits::default()).await;
    let (code, text) = srv.post(b"\x10this is not snappy".to_vec()).await;
    assert_eq!(code, 400);
    assert!(text.starts_with("snappy decode:"), "{text}");
    // Valid snappy around invalid protobuf (field 1 claims 100 bytes).
    let bad = snap::raw::Encoder::new().compress_vec(&[0x0a, 100, 1, 2, 3]).unwrap();
    let (code, text) = srv.post(bad).await;
    assert_eq!(code, 400);
    assert!(text.contains("protobuf decode: unexpected end of input in WriteRequest"), "{text}");
    srv.stop().await;
}

#[tokio::test]
async fn invalid_series_are_400_and_the_rest_is_stored() {
    let st = Arc::new(MemStorage::new());
    let srv = Server::start(st.clone(), Limits::default()).await;
    let t = now();
    let mut hist = series(&[("__name__", "h")], &[]);
    hist.histograms.push(Histogram { timestamp: t });
    let (code, text) = srv
        .post(body(vec![
            series(&[("__name__", "good")], &[(t, 1.0)]),
            series(&[("job", "noname")], &[(t, 1.0)]),
            series(&[("__name__", "dup"), ("a", "1"), ("a", "2")], &[(t, 1.0)]),
            series(&[("__name__", "emptyname"), ("", "x")], &[(t, 1.0)]),
            hist,
        ]))
        .await;
    assert_eq!(code, 400);
    assert!(text.contains("invalid metric name or labels, got {job=\"noname\"}"), "{text}");
    assert!(text.contains("duplicated label a"), "{text}");
    assert!(text.contains("invalid label name"), "{text}");
    assert!(text.contains("native histogram"), "{text}");
    assert_eq!(stored(&st, "good"), vec![Sample::new(t, 1.0)]);
    assert!(stored(&st, "dup").is_empty());
    let m = srv.metrics().await;
    for reason in ["missing_metric_name", "duplicate_label_name", "invalid_label_name", "native_histogram"] {
        assert!(
            m.contains(&format!("promlite_rejected_samples_total{{source=\"remote_write\",reason=\"{reason}\"}} 1")),
            "{reason}: {m}"
        );
    }
    srv.stop().await;
}

#[tokio::test]
async fn invalid_utf8_value_is_400() {
    let st = Arc::new(MemStorage::new());
    let srv = Server::start(st.clone(), Limits::default()).await;
    // Encode by hand: prost's String fields cannot hold invalid UTF-8.
    let mut ts = Vec::new();
    for (n, v) in [(&b"__name__"[..], &b"bad"[..]), (b"x", b"\xff\xfe")] {
        let mut l = Vec::new();
        prost::encoding::bytes::encode(1, &n.to_vec(), &mut l);
        prost::encoding::bytes::encode(2, &v.to_vec(), &mut l);
        prost::encoding::bytes::encode(1, &l, &mut ts);
    }
    let mut s = Vec::new();
    prost::encoding::double::encode(1, &1.0, &mut s);
    prost::encoding::int64::encode(2, &now(), &mut s);
    prost::encoding::bytes::encode(2, &s, &mut ts);
    let mut raw = Vec::new();
    prost::encoding::bytes::encode(1, &ts, &mut raw);
    let (code, text) = srv.post(snap::raw::Encoder::new().compress_vec(&raw).unwrap()).await;
    assert_eq!(code, 400);
    assert!(text.contains("invalid UTF-8 value"), "{text}");
    assert!(stored(&st, "bad").is_empty());
    srv.stop().await;
}

#[tokio::test]
async fn out_of_order_is_400_and_the_rest_is_stored() {
    let st = Arc::new(MemStorage::new());
    let srv = Server::start(st.clone(), Limits::default()).await;
    let t = now();
    let (code, _) = srv.post(body(vec![series(&[("__name__", "a")], &[(t, 1.0)])])).await;
    assert_eq!(code, 204);
    let (code, text) = srv
        .post(body(vec![
            series(&[("__name__", "a")], &[(t - 1000, 0.5), (t, 2.0), (t + 1000, 3.0)]),
            series(&[("__name__", "b")], &[(t, 7.0)]),
            series(&[("__name__", "c")], &[(t + 3_600_000, 7.0)]),
        ]))
        .await;
    assert_eq!(code, 400);
    assert!(text.contains("out of order sample"), "{text}");
    assert!(text.contains("duplicate sample for timestamp"), "{text}");
    assert!(text.contains("too far in the future"), "{text}");
    assert_eq!(stored(&st, "a"), vec![Sample::new(t, 1.0), Sample::new(t + 1000, 3.0)]);
    assert_eq!(stored(&st, "b"), vec![Sample::new(t, 7.0)]);
    assert!(stored(&st, "c").is_empty());
    srv.stop().await;
}

#[tokio::test]
async fn size_limits_are_413_and_counted() {
    let st = Arc::new(MemStorage::new());
    let limits = Limits { body_bytes: 2000, decompressed_bytes: 4000, series_per_request: 3, ..Limits::default() };
    let srv = Server::start(st.clone(), limits).await;
    let t = now();
    // Body over the limit (Content-Length known).
    let (code, text) = srv.post(vec![0u8; 5000]).await;
    assert_eq!(code, 413, "{text}");
    // A small body whose snappy header claims 1 GiB.
    let (code, text) = srv.post(vec![0x80, 0x80, 0x80, 0x80, 0x04, 0x00]).await;
    assert_eq!(code, 413, "{text}");
    assert!(text.contains("exceeds the limit of 4000 bytes"), "{text}");
    // Compressible data: small body, decompressed over the limit.
    let zeros = snap::raw::Encoder::new().compress_vec(&vec![0u8; 30_000]).unwrap();
    assert!(zeros.len() < 2000);
    assert_eq!(srv.post(zeros).await.0, 413);
    // Too many series.
    let many: Vec<_> = (0..4).map(|i| series(&[("__name__", "s"), ("i", &i.to_string())], &[(t, 1.0)])).collect();
    let (code, text) = srv.post(body(many)).await;
    assert_eq!(code, 413);
    assert!(text.contains("more than 3 series"), "{text}");
    assert!(stored(&st, "s").is_empty());
    // A chunked body (no Content-Length) over the limit is cut off while read.
    let mut s = tokio::net::TcpStream::connect(srv.addr).await.unwrap();
    let head = "POST /api/v1/write HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n\
                Content-Encoding: snappy\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
    s.write_all(head.as_bytes()).await.unwrap();
    for _ in 0..3 {
        s.write_all(format!("{:x}\r\n", 1000).as_bytes()).await.unwrap();
        s.write_all(&[1u8; 1000]).await.unwrap();
        s.write_all(b"\r\n").await.unwrap();
    }
    s.write_all(b"0\r\n\r\n").await.unwrap();
    let mut resp = Vec::new();
    let _ = s.read_to_end(&mut resp).await;
    let resp = String::from_utf8_lossy(&resp);
    assert!(resp.starts_with("HTTP/1.1 413"), "{resp}");
    let m = srv.metrics().await;
    assert!(m.contains("promlite_ingest_limit_hits_total{limit=\"body_bytes\"} 2"), "{m}");
    assert!(m.contains("promlite_ingest_limit_hits_total{limit=\"decompressed_bytes\"} 2"), "{m}");
    assert!(m.contains("promlite_ingest_limit_hits_total{limit=\"series_per_request\"} 1"), "{m}");
    assert!(m.contains("promlite_remote_write_requests_total{code=\"413\"} 5"), "{m}");
    srv.stop().await;
}

#[tokio::test]
async fn label_limits_reject_the_series_with_400() {
    let st = Arc::new(MemStorage::new());
    let limits = Limits { labels_per_series: 3, label_name_bytes: 16, label_value_bytes: 8, ..Limits::default() };
    let srv = Server::start(st.clone(), limits).await;
    let t = now();
    let (code, text) = srv
        .post(body(vec![
            series(&[("__name__", "ok"), ("a", "1")], &[(t, 1.0)]),
            series(&[("__name__", "many"), ("a", "1"), ("b", "1"), ("c", "1")], &[(t, 1.0)]),
            series(&[("__name__", "longname"), ("abcdefghijklmnopq", "1")], &[(t, 1.0)]),
            series(&[("__name__", "longvalue"), ("a", "123456789")], &[(t, 1.0)]),
        ]))
        .await;
    assert_eq!(code, 400, "{text}");
    assert_eq!(stored(&st, "ok"), vec![Sample::new(t, 1.0)]);
    let m = srv.metrics().await;
    for l in ["labels_per_series", "label_name_bytes", "label_value_bytes"] {
        assert!(m.contains(&format!("promlite_ingest_limit_hits_total{{limit=\"{l}\"}} 1")), "{l}: {m}");
    }
    srv.stop().await;
}

#[tokio::test]
async fn unsupported_media_is_415() {
    let st = Arc::new(MemStorage::new());
    let srv = Server::start(st.clone(), Limits::default()).await;
    let b = body(vec![series(&[("__name__", "x")], &[(now(), 1.0)])]);
    let (code, _) = srv.post_with(b.clone(), "application/json", "snappy").await;
    assert_eq!(code, 415);
    let (code, text) =
        srv.post_with(b.clone(), "application/x-protobuf;proto=io.prometheus.write.v2.Request", "snappy").await;
    assert_eq!(code, 415);
    assert!(text.contains("not accepted"), "{text}");
    let (code, text) = srv.post_with(b.clone(), "application/x-protobuf", "gzip").await;
    assert_eq!(code, 415);
    assert!(text.contains("only snappy"), "{text}");
    assert!(stored(&st, "x").is_empty());
    let (code, _) = srv.post_with(b, "application/x-protobuf;proto=prometheus.WriteRequest", "snappy").await;
    assert_eq!(code, 204);
    srv.stop().await;
}

/// Storage whose commit always fails, as a full disk would.
struct FailingStorage;

struct FailingAppender;

impl Appender for FailingAppender {
    fn append(&mut self, _: &Labels, _: i64, _: f64) -> Result<SeriesRef, AppendError> {
        Ok(SeriesRef(1))
    }
    fn append_ref(&mut self, _: SeriesRef, _: i64, _: f64) -> Result<(), AppendError> {
        Ok(())
    }
    fn commit(self: Box<Self>) -> Result<(), StorageError> {
        Err(StorageError::Io {
            op: "write",
            path: "wal/00000001".into(),
            source: std::io::Error::other("no space left on device"),
        })
    }
    fn rollback(self: Box<Self>) {}
}

impl Appendable for FailingStorage {
    fn appender(&self) -> Box<dyn Appender + '_> {
        Box::new(FailingAppender)
    }
}

#[tokio::test]
async fn storage_failure_is_500() {
    let srv = Server::start(Arc::new(FailingStorage), Limits::default()).await;
    let (code, text) = srv.post(body(vec![series(&[("__name__", "x")], &[(now(), 1.0)])])).await;
    assert_eq!(code, 500);
    assert!(text.contains("no space left on device"), "{text}");
    srv.stop().await;
}
