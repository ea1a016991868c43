#!/usr/bin/env bash
# Writes to stdout one rule group (interval 15s) of ~100 recording and alerting
# rules in the shapes of testdata/rules/*.yml, multiplied across the label
# values examples/loadgen generates (models, handlers, clusters).
# With COPIES=N the ~100 rules are repeated N times, each copy's rules carrying
# a `copy` label so their outputs stay distinct (COPIES=10: ~1,000 rules, the
# size issue 5 asks to measure).
# Usage: [COPIES=1] scripts/bench-query/rules.sh [WINDOW]   (default 5m)
set -euo pipefail
W=${1:-5m}
COPIES=${COPIES:-1}
models=(resnet50 bert_base yolov8 whisper_small llama3_8b t5_large clip_vit sdxl_unet ensemble_ocr mistral_7b)
handlers=(/api/v1/predict /api/v1/models /healthz /metrics "/api/v1/users/{id}" /api/v1/orders)
echo "groups:"
echo "  - name: bench"
echo "    interval: 15s"
echo "    rules:"
for k in $(seq 1 "$COPIES"); do
for m in "${models[@]}"; do
cat <<R
      - record: model:nv_inference_failure_ratio:rate$W
        expr: sum by (model) (rate(nv_inference_request_failure{job="triton",model="$m"}[$W])) / clamp_min(sum by (model) (rate(nv_inference_request_success{job="triton",model="$m"}[$W])), 1)
        labels: {copy: "$k"}
      - alert: TritonHighFailureRatio
        expr: sum by (model) (rate(nv_inference_request_failure{job="triton",model="$m"}[$W])) / clamp_min(sum by (model) (rate(nv_inference_request_success{job="triton",model="$m"}[$W])), 1) > 0.02
        for: 5m
        labels: {severity: critical, copy: "$k"}
        annotations: {summary: "{{ \$labels.model }} failure ratio {{ \$value | humanizePercentage }}"}
      - record: model:nv_inference_mean_latency_us:rate$W
        expr: sum by (model) (rate(nv_inference_request_duration_us{job="triton",model="$m"}[$W])) / clamp_min(sum by (model) (rate(nv_inference_count{job="triton",model="$m"}[$W])), 1)
        labels: {copy: "$k"}
      - alert: TritonHighQueueTime
        expr: sum by (model) (rate(nv_inference_queue_duration_us{job="triton",model="$m"}[$W])) / clamp_min(sum by (model) (rate(nv_inference_request_success{job="triton",model="$m"}[$W])), 1) > 50000
        for: 5m
        labels: {severity: warning, copy: "$k"}
      - alert: TritonPendingRequests
        expr: sum by (model) (nv_inference_pending_request_count{job="triton",model="$m"}) > 100
        for: 2m
        labels: {severity: warning, copy: "$k"}
R
done
for h in "${handlers[@]}"; do
cat <<R
      - record: handler:http_request_duration_seconds:p95_$W
        expr: histogram_quantile(0.95, sum by (le, handler) (rate(http_request_duration_seconds_bucket{job="fastapi",handler="$h"}[$W])))
        labels: {copy: "$k"}
      - alert: APIHighLatency
        expr: histogram_quantile(0.95, sum by (le, handler) (rate(http_request_duration_seconds_bucket{job="fastapi",handler="$h"}[$W]))) > 2
        for: 5m
        labels: {severity: warning, copy: "$k"}
        annotations: {summary: "{{ \$labels.handler }} p95 {{ \$value }}s"}
R
done
for c in 0 1 2 3 4 5 6; do
cat <<R
      - record: instance:node_cpu_utilisation:rate$W
        expr: 1 - avg by (instance) (rate(node_cpu_seconds_total{mode="idle",cluster="edge-$c"}[$W]))
        labels: {copy: "$k"}
      - alert: NodeHighCPU
        expr: 1 - avg by (instance) (rate(node_cpu_seconds_total{mode="idle",cluster="edge-$c"}[$W])) > 0.8
        for: 10m
        labels: {severity: warning, copy: "$k"}
      - alert: NodeLowMemory
        expr: node_memory_MemAvailable_bytes{cluster="edge-$c"} < 5
        for: 5m
        labels: {severity: warning, copy: "$k"}
      - alert: GPUHot
        expr: avg by (instance) (DCGM_FI_DEV_GPU_UTIL{cluster="edge-$c"}) > 99
        for: 5m
        labels: {severity: info, copy: "$k"}
      - alert: DiskLow
        expr: node_filesystem_avail_bytes{cluster="edge-$c"} < 1
        for: 5m
        labels: {severity: warning, copy: "$k"}
R
done
done
