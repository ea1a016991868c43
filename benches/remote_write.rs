//! remote_write receive path: snappy, protobuf decoding (promlite's zero-copy
//! decoder vs prost), label validation, and appending, in samples/s.
//!
//! Data: 2000 series (one request, as Prometheus sends) of the load tool's
//! realistic shapes (Triton, FastAPI, node_exporter; ~10 labels each), one
//! sample each, compressed with the reference snappy encoder.
//!
//! `cargo bench --bench remote_write`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use promlite::ingest::proto::{Label, Sample, TimeSeries, WriteRequest};
use promlite::ingest::validate::{series_labels, Scratch};
use promlite::ingest::{write_request, DecodedRequest, Limits, RefCache};
use promlite::loadgen::encode::PatchableRequest;
use promlite::loadgen::series::series;
use promlite::storage::memory::MemStorage;
use promlite::tsdb::head::{Head, HeadOptions};
use prost::Message;

const SERIES: usize = 2000;
const T: i64 = 1_763_000_000_000;

fn request() -> WriteRequest {
    WriteRequest {
        timeseries: (0..SERIES)
            .map(|i| TimeSeries {
                labels: series(i).labels.into_iter().map(|(name, value)| Label { name, value }).collect(),
                samples: vec![Sample { value: i as f64 * 3.5, timestamp: T }],
                ..Default::default()
            })
            .collect(),
        metadata: vec![],
    }
}

fn bench(c: &mut Criterion) {
    let req = request();
    let raw = req.encode_to_vec();
    let body = req.encode_snappy().expect("encoding a valid request cannot fail");
    let limits = Limits::default();

    // Correctness before timing: both decoders see the same request.
    let mut d = DecodedRequest::new();
    d.decode(&body, limits.decompressed_bytes, limits.series_per_request).expect("valid body");
    assert_eq!(d.series_count(), SERIES);
    assert_eq!(d.sample_count(), SERIES);
    assert_eq!(WriteRequest::decode(&raw[..]).expect("valid").timeseries.len(), SERIES);
    eprintln!(
        "request: {SERIES} series, {} bytes raw, {} bytes snappy ({:.1} bytes/sample on the wire)",
        raw.len(),
        body.len(),
        body.len() as f64 / SERIES as f64
    );

    let mut g = c.benchmark_group("remote_write");
    g.throughput(Throughput::Elements(SERIES as u64));
    g.bench_function("snappy_decompress", |b| {
        let mut out = Vec::new();
        b.iter(|| {
            promlite::ingest::decode::decompress_into(black_box(&body), usize::MAX, &mut out).expect("valid");
            black_box(out.len())
        })
    });
    g.bench_function("decode_promlite", |b| {
        let mut d = DecodedRequest::new();
        b.iter(|| {
            d.decode(black_box(&body), limits.decompressed_bytes, limits.series_per_request).expect("valid");
            black_box(d.sample_count())
        })
    });
    g.bench_function("decode_prost", |b| {
        let mut out = Vec::new();
        b.iter(|| {
            promlite::ingest::decode::decompress_into(black_box(&body), usize::MAX, &mut out).expect("valid");
            let w = WriteRequest::decode(&out[..]).expect("valid");
            black_box(w.timeseries.len())
        })
    });
    g.bench_function("decode_validate", |b| {
        let mut d = DecodedRequest::new();
        b.iter(|| {
            d.decode(black_box(&body), limits.decompressed_bytes, limits.series_per_request).expect("valid");
            let mut scratch = Scratch::new();
            let mut n = 0;
            for s in d.series() {
                n += series_labels(&s, &limits, &mut scratch).expect("valid").heap_size();
            }
            black_box(n)
        })
    });
    // Steady state: the series exist; the same sample again is a no-op in
    // MemStorage, so memory does not grow across iterations.
    let st = MemStorage::new();
    write_request(promlite::storage::Appendable::appender(&st), &d, &limits, T, None).expect("commit");
    g.bench_function("decode_append_memstorage", |b| {
        let mut d = DecodedRequest::new();
        b.iter(|| {
            d.decode(black_box(&body), limits.decompressed_bytes, limits.series_per_request).expect("valid");
            let out =
                write_request(promlite::storage::Appendable::appender(&st), &d, &limits, T, None).expect("commit");
            black_box(out.samples_stored)
        })
    });
    // The real head (WAL without fsync, compressed chunks): new timestamps
    // every iteration, as a sender's next request would carry.
    let dir = tempfile::tempdir().expect("temp dir");
    let mut opts = HeadOptions::default();
    opts.wal.fsync = false;
    let (head, _) = Head::open(dir.path(), opts).expect("open head");
    write_request(promlite::storage::Appendable::appender(&head), &d, &limits, T, None).expect("commit");
    // Each iteration carries new timestamps, as a sender's next request
    // would; the load tool's in-place patching keeps encoding out of the timing.
    let labels: Vec<_> = (0..SERIES).map(|i| series(i).labels).collect();
    let mut preq = PatchableRequest::new(&labels, T).expect("timestamp in range");
    let mut t = T;
    let cache = RefCache::new(1 << 20);
    for (name, cache) in [("decode_append_head", None), ("decode_append_head_refcache", Some(&cache))] {
        g.bench_function(name, |b| {
            let mut d = DecodedRequest::new();
            b.iter(|| {
                t += 1000;
                for i in 0..SERIES {
                    preq.set(i, t, i as f64).expect("timestamp in range");
                }
                d.decode(black_box(preq.body()), limits.decompressed_bytes, limits.series_per_request).expect("valid");
                let app = promlite::storage::Appendable::appender(&head);
                let out = write_request(app, &d, &limits, t, cache).expect("commit");
                assert_eq!(out.samples_stored, SERIES as u64);
                black_box(out.samples_stored)
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
