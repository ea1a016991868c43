#!/usr/bin/env bash
# remote_write comparison: promlite vs Debian's prometheus vs Debian's
# victoria-metrics, with the same load tool (examples/loadgen.rs), the same
# series (SERIES active, one sample each per request cycle, BATCH per
# request) and the same concurrency, one server at a time on this machine.
#
# For each server it reports accepted samples/s, latency percentiles, server
# CPU per sample (utime+stime from /proc/<pid>/stat over the whole run,
# warm-up included, divided by every accepted sample) and resident memory
# per active series (VmRSS at the end / SERIES).
#
# Usage: scripts/bench-remote-write.sh [promlite|prometheus|victoria-metrics ...]
# Env:   SERIES=100000 BATCH=2000 CONCURRENCY=4 DURATION=30s CLIENT_THREADS=1
#        PROMLITE_CMD='...'  command line that starts promlite's receiver on
#                           $PROMLITE_ADDR (default: the rw_server example on
#                           the TSDB head in a temp dir; PROMLITE_STORAGE=null
#                           measures the receiver alone, PROMLITE_FLAGS=--no-fsync
#                           drops the per-commit WAL fsync, as Prometheus does)
#        WARMUP_CYCLES=1    untimed cycles before the timed run (each sends one
#                           sample per series); e.g. WARMUP_CYCLES=300
#                           DURATION=1s compares memory per series at ~300
#                           samples per series whatever the throughput
#        PROMLITE_BIN=1     runs the real promlite binary instead of the example
#                           (target/release/promlite with a config that has no
#                           scrape_configs or rules, on its TSDB in a temp dir)
#        SMAPS=1            also prints the server's largest resident mappings
#                           at the end (from /proc/<pid>/smaps), to see what
#                           the resident memory is made of
set -euo pipefail
cd "$(dirname "$0")/.."

SERIES=${SERIES:-100000}
BATCH=${BATCH:-2000}
CONCURRENCY=${CONCURRENCY:-4}
DURATION=${DURATION:-30s}
CLIENT_THREADS=${CLIENT_THREADS:-1}
WARMUP_CYCLES=${WARMUP_CYCLES:-1}
PROMLITE_ADDR=${PROMLITE_ADDR:-127.0.0.1:19201}
PROM_ADDR=${PROM_ADDR:-127.0.0.1:19202}
VM_ADDR=${VM_ADDR:-127.0.0.1:19203}
PROMLITE_STORAGE=${PROMLITE_STORAGE:-tsdb}
PROMLITE_FLAGS=${PROMLITE_FLAGS:-}
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(promlite prometheus victoria-metrics)

PROMLITE_BIN=${PROMLITE_BIN:-}
if [ -n "$PROMLITE_BIN" ]; then
    cargo build --release --example loadgen --bin promlite >&2
else
    cargo build --release --example loadgen --example rw_server >&2
fi
LOADGEN=target/release/examples/loadgen
CLK_TCK=$(getconf CLK_TCK)
WORK=$(mktemp -d)
if [ -n "$PROMLITE_BIN" ]; then
    printf 'global:\n  scrape_interval: 1m\n' > "$WORK/promlite.yml"
    PROMLITE_CMD=${PROMLITE_CMD:-"target/release/promlite --config.file $WORK/promlite.yml --storage.tsdb.path $WORK/promlite --web.listen-address $PROMLITE_ADDR"}
fi
PROMLITE_CMD=${PROMLITE_CMD:-"target/release/examples/rw_server --listen $PROMLITE_ADDR --storage $PROMLITE_STORAGE --data $WORK/promlite $PROMLITE_FLAGS"}
PID=""
cleanup() { if [ -n "$PID" ]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi; rm -rf "$WORK"; }
trap cleanup EXIT

cpu_ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"; }
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

smaps_top() { # pid: the 12 mappings with the most resident KiB, anonymous and file
    awk '/^[0-9a-f]+-[0-9a-f]+ / { name = ($6 == "" ? "[anon]" : $6) }
         /^Rss:/ { rss[name] += $2 } /^Anonymous:/ { anon[name] += $2 }
         END { for (n in rss) if (rss[n] > 0) printf "%10d KiB rss %10d KiB anon  %s\n", rss[n], anon[n], n }' \
        "/proc/$1/smaps" | sort -rn | head -12 >&2
}

wait_http() { # url
    for _ in $(seq 1 100); do
        curl -fs -o /dev/null "$1" && return 0
        sleep 0.2
    done
    echo "server at $1 did not come up" >&2
    return 1
}

run_one() { # name addr path readiness-url
    local name=$1 addr=$2 path=$3 ready=$4
    wait_http "$ready"
    local rss0 cpu0 cpu1 rss1 json
    rss0=$(rss_kib "$PID"); cpu0=$(cpu_ticks "$PID")
    json=$("$LOADGEN" --url "http://$addr$path" --series "$SERIES" --batch "$BATCH" \
        --concurrency "$CONCURRENCY" --duration "$DURATION" --threads "$CLIENT_THREADS" \
        --warmup-cycles "$WARMUP_CYCLES" --json)
    cpu1=$(cpu_ticks "$PID"); rss1=$(rss_kib "$PID")
    echo "$json" > "$WORK/$name.json"
    python3 - "$name" "$json" "$cpu0" "$cpu1" "$rss0" "$rss1" "$CLK_TCK" "$SERIES" <<'PY'
import json, sys
name, js, cpu0, cpu1, rss0, rss1, tck, series = sys.argv[1:]
r = json.loads(js)
samples = r["samples_accepted"] + r["warmup_samples_accepted"]
cpu_s = (int(cpu1) - int(cpu0)) / int(tck)
us_per_sample = cpu_s / samples * 1e6 if samples else float("nan")
print(f"{name:18} {r['samples_per_second']:>12.0f} {r['latency_ms_p50']:>8.2f} {r['latency_ms_p90']:>8.2f} "
      f"{r['latency_ms_p99']:>8.2f} {us_per_sample:>10.3f} {int(rss1)/int(series)*1024:>10.0f} "
      f"{(int(rss1)-int(rss0))/int(series)*1024:>10.0f}  {r['errors'] or '-'}")
PY
    [ -n "${SMAPS:-}" ] && smaps_top "$PID"
    kill "$PID"; wait "$PID" 2>/dev/null || true; PID=""
}

echo "# $SERIES active series, $BATCH samples/request, concurrency $CONCURRENCY, $DURATION timed after $WARMUP_CYCLES warm-up cycle(s), $(nproc) cores"
printf "%-18s %12s %8s %8s %8s %10s %10s %10s  %s\n" server samples/s p50_ms p90_ms p99_ms cpu_us/smp rss_B/ser Δrss_B/ser errors
for t in "${targets[@]}"; do
    case "$t" in
    promlite)
        $PROMLITE_CMD 2>"$WORK/promlite.log" & PID=$!
        run_one promlite "$PROMLITE_ADDR" /api/v1/write "http://$PROMLITE_ADDR/-/healthy" ;;
    prometheus)
        command -v prometheus >/dev/null || { echo "prometheus not installed (apt-get install -y prometheus)" >&2; exit 1; }
        printf 'global:\n  scrape_interval: 1m\n' > "$WORK/prom.yml"
        prometheus --config.file="$WORK/prom.yml" --storage.tsdb.path="$WORK/prom" \
            --web.listen-address="$PROM_ADDR" --web.enable-remote-write-receiver 2>"$WORK/prometheus.log" & PID=$!
        run_one prometheus "$PROM_ADDR" /api/v1/write "http://$PROM_ADDR/-/ready" ;;
    victoria-metrics)
        command -v victoria-metrics >/dev/null || { echo "victoria-metrics not installed (apt-get install -y victoria-metrics)" >&2; exit 1; }
        victoria-metrics -storageDataPath="$WORK/vm" -httpListenAddr="$VM_ADDR" -retentionPeriod=1d \
            >"$WORK/vm.log" 2>&1 & PID=$!
        run_one victoria-metrics "$VM_ADDR" /api/v1/write "http://$VM_ADDR/health" ;;
    *) echo "unknown target $t" >&2; exit 2 ;;
    esac
done
