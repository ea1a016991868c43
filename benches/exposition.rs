//! Exposition parsing speed over the seed-shaped fixtures, in bytes/s and
//! samples/s, for the Prometheus text format and OpenMetrics.
//!
//! Run: `cargo bench --bench exposition`

use std::hint::black_box;
use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use promlite::scrape::parse::{parse, Event};
use promlite::scrape::protocol::Format;

fn fixture(name: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/exposition").join(name);
    match std::fs::read_to_string(&p) {
        Ok(s) => s,
        Err(e) => panic!("{}: {e}", p.display()),
    }
}

/// A large body like a busy GPU node's: every text fixture, repeated with a
/// `shard` label so series differ.
fn big_body(copies: usize) -> String {
    let parts: Vec<String> =
        ["triton.prom", "fastapi.prom", "node_exporter.prom", "dcgm.prom"].iter().map(|f| fixture(f)).collect();
    let mut out = String::new();
    for i in 0..copies {
        for p in &parts {
            for line in p.lines() {
                if line.starts_with('#') || !line.contains('{') {
                    if i == 0 {
                        out.push_str(line);
                        out.push('\n');
                    }
                    continue;
                }
                out.push_str(&line.replacen('{', &format!("{{shard=\"{i}\","), 1));
                out.push('\n');
            }
        }
    }
    out
}

fn count_samples(body: &[u8], format: Format) -> u64 {
    let mut n = 0u64;
    let mut sum = 0.0f64;
    let r = parse(body, format, |e| {
        if let Event::Sample(s) = e {
            n += 1;
            sum += s.labels.len() as f64;
        }
    });
    if let Err(e) = r {
        panic!("fixture does not parse: {e}");
    }
    black_box(sum);
    n
}

fn bench(c: &mut Criterion) {
    let om = fixture("fastapi.om.txt");
    let cases: Vec<(&str, String, Format)> = vec![
        ("triton", fixture("triton.prom"), Format::PromText),
        ("fastapi", fixture("fastapi.prom"), Format::PromText),
        ("node_exporter", fixture("node_exporter.prom"), Format::PromText),
        ("dcgm", fixture("dcgm.prom"), Format::PromText),
        ("openmetrics_fastapi", om, Format::OpenMetrics),
        ("mixed_x50", big_body(50), Format::PromText),
    ];
    for (name, body, format) in &cases {
        // Correctness before timing: every sample line is parsed.
        let want = body.lines().filter(|l| !l.is_empty() && !l.starts_with('#')).count() as u64;
        let samples = count_samples(body.as_bytes(), *format);
        assert_eq!(samples, want, "{name}");
        let mut g = c.benchmark_group("exposition_bytes");
        g.throughput(Throughput::Bytes(body.len() as u64));
        g.bench_function(*name, |b| b.iter(|| count_samples(black_box(body.as_bytes()), *format)));
        g.finish();
        let mut g = c.benchmark_group("exposition_samples");
        g.throughput(Throughput::Elements(samples));
        g.bench_function(*name, |b| b.iter(|| count_samples(black_box(body.as_bytes()), *format)));
        g.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).measurement_time(std::time::Duration::from_secs(2)).warm_up_time(std::time::Duration::from_millis(500));
    targets = bench
}
criterion_main!(benches);
