#!/usr/bin/env bash
# `flowtest report --format json` over a year of 1-minute probes for 20 scenarios (about 10.5 M
# stored results, bench/gen_history.py), with wall time and peak RSS from /usr/bin/time -v, side
# by side with a bare full scan of the same table by the sqlite3 shell (reading every row's
# JSON, computing nothing) and with the report over the last 30 days only (memory must not grow
# with the history). The generated store is deleted at the end unless KEEP=1.
#
# usage: bench/report_10m.sh [SCENARIOS=20] [DAYS=365] [WORKDIR=/tmp/flowtest-report-bench] [RUNS=1]
# Results: a Markdown table on stdout (and WORKDIR/results.md); record it in docs/BENCHMARKS.md
# with this command line.
set -euo pipefail

SCENARIOS=${1:-20}
DAYS=${2:-365}
DIR=${3:-/tmp/flowtest-report-bench}
RUNS=${4:-1}
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

(cd "$REPO" && cargo build --release --quiet --bin flowtest)
BIN=$REPO/target/release/flowtest
rows=$(sqlite3 "$DB" "SELECT count(*) FROM results")
size_mb=$(( $(stat -c %s "$DB") / 1000000 ))
# Page cache warm where it fits: every run then reads from memory, the comparison is CPU.
cat "$DB" > /dev/null

measure() { # name, command...: prints "wall_s rss_kb" of the fastest of $RUNS runs
    local name=$1; shift
    local best_wall="" best_rss=""
    for _ in $(seq "$RUNS"); do
        /usr/bin/time -v -o "$DIR/$name.time" "$@" > "$DIR/$name.out" 2> "$DIR/$name.err"
        local wall rss
        wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,a,":"); s=0; for(i=1;i<=n;i++) s=s*60+a[i]; print s}' "$DIR/$name.time")
        rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$DIR/$name.time")
        if [ -z "$best_wall" ] || awk "BEGIN{exit !($wall < $best_wall)}"; then
            best_wall=$wall; best_rss=$rss
        fi
    done
    echo "$best_wall $best_rss"
}

FROM=$(date -u -d "2026-11-29 - $DAYS days" +%F)
read -r s_wall s_rss <<< "$(measure scan sqlite3 "$DB" "SELECT count(*), sum(length(result_json)) FROM results")"
read -r y_wall y_rss <<< "$(measure year "$BIN" --config "$DIR/flowtest.toml" report --format json --from "$FROM" --to 2026-11-28)"
read -r m_wall m_rss <<< "$(measure month "$BIN" --config "$DIR/flowtest.toml" report --format json --from 2026-10-30 --to 2026-11-28)"
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
echo "Input: $rows stored results ($SCENARIOS scenarios x $DAYS days, 1-minute probes), SQLite store of $size_mb MB ($DB), page cache warm, best of $RUNS run(s)."
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
