#!/usr/bin/env bash
# Live verdict latency, side by side in one run: a busy Postfix log grows while the probe waits,
# then the probe's bounce line is appended; how long until the log watch's timeline says
# `bounced` (polled on the runner's cadence, 100 ms; a followed file is read at each poll), and the
# process CPU time spent while the busy lines came in. Runs examples/live_verdict.rs built from
# this tree and, when OLD_SRC names a checkout of an earlier commit (the same example is copied
# into it), from that one: the earlier watch re-parsed and re-correlated every buffered line on
# every tick.
#
# usage: bench/live_verdict.sh [--smoke] [BUSY_LINES=200000] [WORKDIR=/tmp/flowtest-bench]
#        OLD_SRC=/path/to/old/checkout bench/live_verdict.sh ...
# The earlier build looks at its own runner's pace: OLD_TICK_MS, 250 by default (the pace before
# 100 ms).
# --smoke: a debug build, 2,000 busy lines, 50 ms ticks (seconds; CI keeps the script alive).
set -euo pipefail

SMOKE=0
if [ "${1:-}" = "--smoke" ]; then SMOKE=1; shift; fi
BUSY=${1:-200000}
DIR=${2:-/tmp/flowtest-bench}
REPO=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$DIR"

if [ "$SMOKE" = 1 ]; then
    (cd "$REPO" && cargo build --quiet --example live_verdict)
    out=$("$REPO/target/debug/examples/live_verdict" "$DIR/live-smoke.log" 2000 50)
    rm -f "$DIR/live-smoke.log"
    echo "$out"
    case "$out" in *verdict_ms=none*) echo "no verdict" >&2; exit 1 ;; esac
    exit 0
fi

(cd "$REPO" && cargo build --release --quiet --example live_verdict)
NEW=$REPO/target/release/examples/live_verdict
OLD=
if [ -n "${OLD_SRC:-}" ]; then
    mkdir -p "$OLD_SRC/examples"
    cp "$REPO/examples/live_verdict.rs" "$OLD_SRC/examples/"
    (cd "$OLD_SRC" && CARGO_TARGET_DIR=${OLD_TARGET:-$REPO/target} cargo build --release --quiet --example live_verdict)
    cp "${OLD_TARGET:-$REPO/target}/release/examples/live_verdict" "$DIR/live_verdict-old"
    OLD=$DIR/live_verdict-old
    # The shared target dir now holds the old example: rebuild this tree's.
    (cd "$REPO" && cargo build --release --quiet --example live_verdict)
fi

echo "Live verdict: $BUSY busy lines arriving over 8 ticks, then the bounce line; each build looks"
echo "at its runner's pace: this tree every 100 ms (runner::logs::WATCH_EVERY), the earlier one ${OLD_TICK_MS:-250} ms."
echo "Machine: $(nproc) cores, $(uname -r); load $(cut -d' ' -f1-3 /proc/loadavg)."
echo
echo "| build | append -> verdict (ms) | ticks | CPU while busy lines arrived (s) | CPU from append to verdict (s) |"
echo "|---|---:|---:|---:|---:|"
row() {
    local name=$1 bin=$2 tick=$3 out
    out=$("$bin" "$DIR/live.log" "$BUSY" "$tick")
    rm -f "$DIR/live.log"
    eval "$(echo "$out" | tr ' ' '\n' | grep '=')"
    echo "| $name | $verdict_ms | ${ticks:-} | ${cpu_busy_s:-} | ${cpu_verdict_s:-} |"
}
row "this tree" "$NEW" 100
if [ -n "$OLD" ]; then row "earlier (OLD_SRC)" "$OLD" "${OLD_TICK_MS:-250}"; fi
