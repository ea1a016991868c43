//! Template rendering, the per-alert cost of every alerting rule evaluation:
//! each active alert renders its labels and annotations once per evaluation.
//! Shapes are the seeds' annotations (Triton failure ratio, API latency).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use promlite::labels;
use promlite::model::Labels;
use promlite::template::{Template, TemplateData};

const SUMMARY: &str =
    "Triton failure ratio {{ $value | humanizePercentage }} on {{ $labels.model }} ({{ $labels.instance }})";
const DESCRIPTION: &str = "{{ if gt $value 0.05 }}critical{{ else }}warning{{ end }}: {{ printf \"%.2f\" $value }} \
of requests to {{ $labels.model | toUpper }} failed over 5m. {{ range $k, $v := $labels }}{{ $k }}={{ $v }} {{ end }}";

fn bench(c: &mut Criterion) {
    let labels = labels!(
        "alertname" => "TritonHighFailureRatio",
        "instance" => "gpu-node-1:8002",
        "job" => "triton",
        "model" => "resnet50",
        "severity" => "critical",
    );
    let ext = labels!("cluster" => "edge-1");
    let data =
        TemplateData { labels: &labels, external_labels: &ext, external_url: "http://promlite:9090", value: 0.0345 };
    let summary = Template::parse("__alert_TritonHighFailureRatio", SUMMARY).expect("parse summary");
    let description = Template::parse("__alert_TritonHighFailureRatio", DESCRIPTION).expect("parse description");
    let fixed =
        Template::parse("__alert_TritonHighFailureRatio", "Triton failure ratio is high").expect("parse static");
    // Correctness before timing.
    assert_eq!(
        summary.execute(&data, None, 0).expect("render"),
        "Triton failure ratio 3.45% on resnet50 (gpu-node-1:8002)"
    );

    let mut g = c.benchmark_group("template");
    g.bench_function("parse_description", |b| b.iter(|| Template::parse("__alert_X", black_box(DESCRIPTION))));
    g.bench_function("render_summary", |b| b.iter(|| summary.execute(black_box(&data), None, 0)));
    g.bench_function("render_description", |b| b.iter(|| description.execute(black_box(&data), None, 0)));
    g.bench_function("render_static", |b| b.iter(|| fixed.execute(black_box(&data), None, 0)));
    let empty = Labels::empty();
    let small = TemplateData { labels: &empty, ..data };
    g.bench_function("render_value_only", |b| {
        let t = Template::parse("x", "{{ $value | humanize }}").expect("parse");
        b.iter(|| t.execute(black_box(&small), None, 0))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
