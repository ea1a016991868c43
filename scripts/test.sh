#!/usr/bin/env bash
# Runs every promlite test on a fresh machine: installs what the tests need
# (Debian's prometheus and prometheus-alertmanager, used as real peers), then
# runs the Rust test suite.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v prometheus >/dev/null 2>&1 || need+=(prometheus)
command -v prometheus-alertmanager >/dev/null 2>&1 || need+=(prometheus-alertmanager)
# jemalloc (promlite's allocator) is built from C sources with make.
command -v make >/dev/null 2>&1 || need+=(make)
command -v cc >/dev/null 2>&1 || need+=(gcc)
if [ "${#need[@]}" -gt 0 ]; then
    echo "installing ${need[*]} (real peers for the end-to-end tests, build tools)"
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
    # The packages start system services; the tests start their own instances.
    $SUDO systemctl stop prometheus prometheus-alertmanager prometheus-node-exporter 2>/dev/null || true
    $SUDO pkill -x prometheus 2>/dev/null || true
    $SUDO pkill -x prometheus-alertmanager 2>/dev/null || true
fi

# A clean CI checkout gains nothing from incremental state, which costs disk.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"

# Benches must keep compiling; they are run by hand (see docs/BENCHMARKS.md).
cargo build --locked --benches --profile test
# Doc-tests are left out (there are none); the summary line below adds up
# every test binary's result so the last line says what ran.
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
cargo test --locked --all-features --no-fail-fast --lib --bins --tests "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
passed=$(grep -E '^test result:' "$log" | sed -E 's/.* ([0-9]+) passed.*/\1/' | awk '{s+=$1} END {print s+0}')
failed=$(grep -E '^test result:' "$log" | sed -E 's/.* ([0-9]+) failed.*/\1/' | awk '{s+=$1} END {print s+0}')
echo
echo "tests: ${passed} passed, ${failed} failed"
exit "$status"
