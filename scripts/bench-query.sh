#!/usr/bin/env bash
# PromQL query speed: promlite vs Debian's prometheus and victoria-metrics,
# side by side, on the same data, through the HTTP API.
#
# All servers get byte-identical remote_write data: examples/loadgen sends
# SERIES realistic Triton / FastAPI / node series (~100k) through a small tee
# (scripts/bench-query/tee.py) that forwards each request to both and paces
# the stream to one sample per series every INTERVAL seconds (loadgen itself
# only stamps "now" and sends as fast as it can). After DURATION of load, the
# script waits SETTLE seconds, then times each query REPS times per server
# with curl (%{time_total}; the servers take turns, one query each per round,
# all at the same evaluation time) and
# prints the medians, the ratio of the faster other server's median to
# promlite's, and whether promlite and Prometheus answered the same values
# (relative tolerance 1e-9; VictoriaMetrics' rate() has other semantics, so
# its values are not compared). VictoriaMetrics runs with its response cache
# off (-search.disableCache) and no latency offset, so each run computes the
# query afresh over all the data, as the others do. VM=0 leaves it out. With RULES=1 it then loads one group of ~100
# alerting/recording rules (scripts/bench-query/rules.sh, interval 15s) into
# both by SIGHUP and reads prometheus_rule_group_last_duration_seconds.
#
# Expected value differences: where a rate window reaches back before a
# series' first sample (the early steps of the range query), prometheus 2.42
# clamps extrapolation to the counter's zero point before applying the 1.1x
# average-interval threshold; Prometheus >= 2.51 (prometheus/prometheus#13725)
# and promlite apply the threshold first. Windows fully covered by data agree.
#
# Usage: scripts/bench-query.sh
# Env:   SERIES=100000 BATCH=2000 INTERVAL=15 DURATION=6m WINDOW=5m STEP=15s
#        RANGE_START=<unix s> (default: 60s after load start; with BACKFILL, 1h before the end)
#        BACKFILL=65m: instead of DURATION of live load, send that much history
#                   as fast as the servers take it (loadgen --backfill, one sample
#                   per series every INTERVAL s, unpaced), so the range query
#                   covers a full hour
#        REPS=7 SETTLE=30 RULES=1 RULE_WAIT=50 KEEP=0 (KEEP=1 keeps the temp dir)
#        COPIES=1 (COPIES=10 evaluates ~1,000 rules: the ~100 repeated, see rules.sh)
#        PROMLITE_PORT=19211 PROM_PORT=19212 TEE_PORT=19213 VM_PORT=19214
#        PROMETHEUS=/usr/bin/prometheus VM=1 VICTORIA=/usr/bin/victoria-metrics
# Needs: cargo, curl, python3, prometheus and victoria-metrics
#        (apt-get install -y prometheus victoria-metrics).
set -euo pipefail
cd "$(dirname "$0")/.."

SERIES=${SERIES:-100000}
BATCH=${BATCH:-2000}
INTERVAL=${INTERVAL:-15}
DURATION=${DURATION:-6m}
BACKFILL=${BACKFILL:-}
WINDOW=${WINDOW:-5m}
STEP=${STEP:-15s}
REPS=${REPS:-7}
SETTLE=${SETTLE:-30}
RULES=${RULES:-1}
RULE_WAIT=${RULE_WAIT:-50}
KEEP=${KEEP:-0}
PROMLITE_PORT=${PROMLITE_PORT:-19211}
PROM_PORT=${PROM_PORT:-19212}
TEE_PORT=${TEE_PORT:-19213}
VM_PORT=${VM_PORT:-19214}
PROMETHEUS=${PROMETHEUS:-/usr/bin/prometheus}
VICTORIA=${VICTORIA:-/usr/bin/victoria-metrics}
VM=${VM:-1}
HERE=scripts/bench-query

cargo build --release --bin promlite --example loadgen >&2
PROMLITE=target/release/promlite
LOADGEN=target/release/examples/loadgen
WORK=$(mktemp -d)
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    if [ "$KEEP" = 1 ]; then echo "kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

wait_http() { # url
    for _ in $(seq 1 150); do
        curl -fs -o /dev/null "$1" && return 0
        sleep 0.2
    done
    echo "server at $1 did not come up" >&2
    return 1
}

write_config() { # with-rules(0|1)
    {
        echo "global:"
        echo "  scrape_interval: 15s"
        echo "  evaluation_interval: 15s"
        if [ "$1" = 1 ]; then echo "rule_files: ['$WORK/rules.yml']"; fi
    } > "$WORK/config.yml.tmp"
    mv "$WORK/config.yml.tmp" "$WORK/config.yml"
}

write_config 0
mkdir -p "$WORK/promlite" "$WORK/prometheus"
"$PROMLITE" --config.file="$WORK/config.yml" --storage.tsdb.path="$WORK/promlite" \
    --web.listen-address="127.0.0.1:$PROMLITE_PORT" > "$WORK/promlite.log" 2>&1 &
PROMLITE_PID=$!; PIDS+=("$PROMLITE_PID")
"$PROMETHEUS" --config.file="$WORK/config.yml" --storage.tsdb.path="$WORK/prometheus" \
    --web.listen-address="127.0.0.1:$PROM_PORT" --web.enable-remote-write-receiver \
    > "$WORK/prometheus.log" 2>&1 &
PROM_PID=$!; PIDS+=("$PROM_PID")
wait_http "http://127.0.0.1:$PROMLITE_PORT/-/ready"
wait_http "http://127.0.0.1:$PROM_PORT/-/ready"
WRITE_URLS=("http://127.0.0.1:$PROMLITE_PORT/api/v1/write" "http://127.0.0.1:$PROM_PORT/api/v1/write")
QUERY_PORTS=("$PROMLITE_PORT" "$PROM_PORT")
if [ "$VM" = 1 ]; then
    mkdir -p "$WORK/victoria-metrics"
    "$VICTORIA" -storageDataPath="$WORK/victoria-metrics" -httpListenAddr="127.0.0.1:$VM_PORT" \
        -retentionPeriod=1 -search.disableCache -search.latencyOffset=0s \
        > "$WORK/victoria-metrics.log" 2>&1 &
    VM_PID=$!; PIDS+=("$VM_PID")
    wait_http "http://127.0.0.1:$VM_PORT/health"
    WRITE_URLS+=("http://127.0.0.1:$VM_PORT/api/v1/write")
    QUERY_PORTS+=("$VM_PORT")
fi

rate=$(python3 -c "print($SERIES / $INTERVAL)")
LOAD_ARGS=(--duration "$DURATION")
if [ -n "$BACKFILL" ]; then
    rate=0
    LOAD_ARGS=(--backfill "$BACKFILL" --interval "${INTERVAL}s" --duration 3h)
fi
python3 "$HERE/tee.py" "$TEE_PORT" "$rate" "$BATCH" "${WRITE_URLS[@]}" 2> "$WORK/tee.log" &
TEE_PID=$!; PIDS+=("$TEE_PID")
sleep 1

echo "# loading $SERIES series (one sample per series every ${INTERVAL}s, ${BACKFILL:+backfilling }${BACKFILL:-$DURATION}) ..." >&2
load_start=$(date +%s)
"$LOADGEN" --url "http://127.0.0.1:$TEE_PORT/api/v1/write" --series "$SERIES" --batch "$BATCH" \
    --concurrency 2 "${LOAD_ARGS[@]}" --timeout 120s --json > "$WORK/loadgen.json"
load_end=$(date +%s)
kill "$TEE_PID"; wait "$TEE_PID" 2>/dev/null || true
python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print('# loadgen: %d samples accepted (+%d warm-up), errors %s' % (r['samples_accepted'], r['warmup_samples_accepted'], r['errors'] or 'none'))" "$WORK/loadgen.json"
if [ -s "$WORK/tee.log" ]; then echo "# tee errors:"; sort "$WORK/tee.log" | uniq -c | head; fi

T=$load_end
if [ -n "$BACKFILL" ]; then START=${RANGE_START:-$((T - 3600))}; else START=${RANGE_START:-$((load_start + 60))}; fi
[ "$START" -lt "$T" ] || START=$load_start
echo "# evaluation time $T, range $START..$T step $STEP, window $WINDOW, $REPS runs each, $(nproc) cores"
if [ "$VM" = 1 ]; then curl -fsS "http://127.0.0.1:$VM_PORT/internal/force_flush" > /dev/null || true; fi
# Background work the load left (VictoriaMetrics' part merges, Prometheus'
# head upkeep) settles before anything is timed.
sleep "$SETTLE"
for port in "${QUERY_PORTS[@]}"; do
    n=$(curl -fsS "http://127.0.0.1:$port/api/v1/query" --data-urlencode "query=count({__name__=~\".+\"})" \
        --data-urlencode "time=$T" | python3 -c "import json,sys; r=json.load(sys.stdin)['data']['result']; print(r[0]['value'][1] if r else 0)")
    echo "# series at $T on :$port: $n"
done

W=$WINDOW
names=(sum_rate ratio_by_model hist_p95 range_ratio)
exprs=(
    "sum(rate(nv_inference_count[$W]))"
    "sum by (model) (rate(nv_inference_request_duration_us[$W])) / clamp_min(sum by (model) (rate(nv_inference_count[$W])), 1)"
    "histogram_quantile(0.95, sum by (le, handler) (rate(http_request_duration_seconds_bucket[$W])))"
    "sum by (model) (rate(nv_inference_request_duration_us[$W])) / clamp_min(sum by (model) (rate(nv_inference_count[$W])), 1)"
)

one_query() { # port index out-file -> seconds on stdout
    local port=$1 i=$2 out=$3 path args
    if [ "${names[$i]}" = range_ratio ]; then
        path=/api/v1/query_range; args=(--data-urlencode "start=$START" --data-urlencode "end=$T" --data-urlencode "step=$STEP")
    else
        path=/api/v1/query; args=(--data-urlencode "time=$T")
    fi
    curl -sS -o "$out" -w '%{time_total}\n' "http://127.0.0.1:$port$path" --data-urlencode "query=${exprs[$i]}" "${args[@]}"
}
median() { sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

printf "%-15s %12s %12s %12s %8s  %s\n" query promlite_ms prom_ms vm_ms best/pl same_values
for i in "${!names[@]}"; do
    # The servers take turns, one query each per round, so that a slow
    # moment of the machine (or another server's background work) falls on
    # all of them alike.
    : > "$WORK/t.promlite"; : > "$WORK/t.prometheus"; : > "$WORK/t.vm"
    for _ in $(seq 1 "$REPS"); do
        one_query "$PROMLITE_PORT" "$i" "$WORK/${names[$i]}.promlite.json" >> "$WORK/t.promlite"
        one_query "$PROM_PORT" "$i" "$WORK/${names[$i]}.prometheus.json" >> "$WORK/t.prometheus"
        if [ "$VM" = 1 ]; then one_query "$VM_PORT" "$i" "$WORK/${names[$i]}.victoria-metrics.json" >> "$WORK/t.vm"; fi
    done
    a=$(median < "$WORK/t.promlite")
    b=$(median < "$WORK/t.prometheus")
    c=nan
    if [ "$VM" = 1 ]; then c=$(median < "$WORK/t.vm"); fi
    cmp=$(python3 "$HERE/compare.py" "$WORK/${names[$i]}.promlite.json" "$WORK/${names[$i]}.prometheus.json" || true)
    awk -v n="${names[$i]}" -v a="$a" -v b="$b" -v c="$c" -v m="$cmp" 'BEGIN {
        best = b; if (c != "nan" && c + 0 < best + 0) best = c
        printf "%-15s %12.1f %12.1f %12s %7.2fx  %s\n", n, a * 1000, b * 1000,
            (c == "nan" ? "-" : sprintf("%.1f", c * 1000)), (a > 0 ? best / a : 0), m }'
done
for i in "${!names[@]}"; do echo "#   ${names[$i]}: ${exprs[$i]}"; done

if [ "$RULES" = 1 ]; then
    COPIES=${COPIES:-1} bash "$HERE/rules.sh" "$WINDOW" > "$WORK/rules.yml"
    nrules=$(grep -c -E '^ +- (alert|record):' "$WORK/rules.yml")
    write_config 1
    cpu_ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"; }
    cpu0_promlite=$(cpu_ticks "$PROMLITE_PID"); cpu0_prometheus=$(cpu_ticks "$PROM_PID")
    kill -HUP "$PROMLITE_PID" "$PROM_PID"
    echo "# rules: one group of $nrules rules, interval 15s; waiting ${RULE_WAIT}s for evaluations ..."
    sleep "$RULE_WAIT"
    # CPU per evaluation: the server's whole CPU time over the wait (nothing
    # else runs: the load has ended) over the group's evaluations.
    for s in "promlite $PROMLITE_PORT $PROMLITE_PID $cpu0_promlite" "prometheus $PROM_PORT $PROM_PID $cpu0_prometheus"; do
        set -- $s
        cpu1=$(cpu_ticks "$3")
        curl -fsS "http://127.0.0.1:$2/metrics" > "$WORK/$1.metrics"
        d=$(awk '/^prometheus_rule_group_last_duration_seconds[{ ]/ && /bench/ { print $NF }' "$WORK/$1.metrics")
        n=$(awk '/^prometheus_rule_group_rules[{ ]/ && /bench/ { print $NF }' "$WORK/$1.metrics")
        # Evaluations run: scheduled ones minus those missed.
        it=$(awk '/^prometheus_rule_group_iterations_total[{ ]/ && /bench/ { n += $NF }
            /^prometheus_rule_group_iterations_missed_total[{ ]/ && /bench/ { n -= $NF } END { print n + 0 }' "$WORK/$1.metrics")
        cpu=$(awk -v a="$4" -v b="$cpu1" -v t="$(getconf CLK_TCK)" -v i="${it:-0}" \
            'BEGIN { if (i > 0) printf "%.3f", (b - a) / t / i; else print "n/a" }')
        echo "rule_group_last_duration $1: ${d:-missing} s (rules in group: ${n:-missing}); CPU per evaluation: $cpu s over ${it:-0} evaluations"
    done
fi
