#!/usr/bin/env bash
# `flowtest report --format json` over a year of 1-minute probes for 20 scenarios (about 10.5 M
# stored results, bench/gen_history.py), with wall time and peak RSS from /usr/bin/time -v, side
# by side with a bare full scan of the same table by the sqlite3 shell (reading every row's
# JSON, computing nothing) and with the report over the last 30 days only (memory must not grow
# with the history). The generated store is deleted at the end unless KEEP=1.
#
# usage: bench/report_10m.sh [SCENARIOS=20] [DAYS=365] [WORKDIR=/tmp/flowtest-report-bench]
# Results: a Markdown table on stdout (and WORKDIR/results.md); record it in docs/BENCHMARKS.md
# with this command line.
set -euo pipefail

SCENARIOS=${1:-20}
DAYS=${2:-365}
DIR=${3:-/tmp/flowtest-report-bench}
REPO=$(cd "$(dirname "$0")/.." && pwd)
STATE=$DIR/state
DB=$STATE/flowtest.db

mkdir -p "$STATE" "$DIR/scenarios"
if [ ! -s "$DB" ]; then
    echo "generating $SCENARIOS scenarios x $DAYS days of 1-minute probes in $DB ..." >&2
    python3 "$REPO/bench/gen_history.py" "$STATE" "$SCENARIOS" "$DAYS"
fi
cat > "$DIR/flowtest.toml" <<TOML
state_dir = "$STATE"
[probe]
domain = "probe.test"
key_env = "FT_BENCH_KEY"
TOML

# FLOWTEST_BIN: that build instead of the release one (CI's brief run uses the debug build).
if [ -n "${FLOWTEST_BIN:-}" ]; then
    BIN=$(realpath "$FLOWTEST_BIN")
else
    (cd "$REPO" && cargo build --release --quiet --bin flowtest)
    BIN=$REPO/target/release/flowtest
fi
rows=$(sqlite3 "$DB" "SELECT count(*) FROM results")
size_mb=$(( $(stat -c %s "$DB") / 1000000 ))
# Page cache warm where it fits: every run then reads from memory, the comparison is CPU.
cat "$DB" > /dev/null

timed() { # name, command...: one run under /usr/bin/time -v; prints "wall_s rss_kb"
    local name=$1; shift
    /usr/bin/time -v -o "$DIR/$name.time" "$@" > "$DIR/$name.out" 2> "$DIR/$name.err"
    python3 - "$DIR/$name.time" <<'PY'
import sys
f = dict(l.strip().split(": ", 1) for l in open(sys.argv[1]) if ": " in l)
clock = f["Elapsed (wall clock) time (h:mm:ss or m:ss)"].split(":")
print(sum(float(x) * 60 ** i for i, x in enumerate(reversed(clock))), f["Maximum resident set size (kbytes)"])
PY
}

FROM=$(date -u -d "2026-11-29 - $DAYS days" +%F)
read -r s_wall s_rss <<< "$(timed scan sqlite3 "$DB" "SELECT count(*), sum(length(result_json)) FROM results")"
read -r y_wall y_rss <<< "$(timed year "$BIN" --config "$DIR/flowtest.toml" report --format json --from "$FROM" --to 2026-11-28)"
read -r m_wall m_rss <<< "$(timed month "$BIN" --config "$DIR/flowtest.toml" report --format json --from 2026-10-30 --to 2026-11-28)"
# Sanity: the report saw every row and the planted outages.
python3 - "$DIR/year.out" "$rows" "$SCENARIOS" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
assert len(r["scenarios"]) == int(sys.argv[3]), len(r["scenarios"])
seen = sum(s["probes"] for s in r["scenarios"])
assert seen == int(sys.argv[2]), (seen, sys.argv[2])
assert all(s["incidents"] and s["incidents"][0]["findings"][0]["code"] == "next_hop_timeout" for s in r["scenarios"])
PY

{
echo "Input: $rows stored results ($SCENARIOS scenarios x $DAYS days, 1-minute probes), SQLite store of $size_mb MB ($DB), page cache warm, one run each."
echo "Machine: $(nproc) cores, $(uname -r), load average $(cut -d' ' -f1-3 /proc/loadavg) at the end."
echo
echo "| command | rows | wall (s) | rows/s | max RSS (MB) |"
echo "|---|---:|---:|---:|---:|"
echo "| \`sqlite3 flowtest.db 'SELECT count(*), sum(length(result_json)) FROM results'\` (bare scan) | $rows | $s_wall | $(python3 -c "print(round($rows/$s_wall))") | $((s_rss / 1024)) |"
echo "| \`flowtest report --format json --from $FROM --to 2026-11-28\` | $rows | $y_wall | $(python3 -c "print(round($rows/$y_wall))") | $((y_rss / 1024)) |"
echo "| \`flowtest report --format json --from 2026-10-30 --to 2026-11-28\` (last 30 days) | - | $m_wall | - | $((m_rss / 1024)) |"
} | tee "$DIR/results.md"

if [ "${KEEP:-0}" != 1 ]; then
    rm -rf "$STATE"
    echo "deleted $STATE (KEEP=1 keeps it)" >&2
fi
