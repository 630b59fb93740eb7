#!/usr/bin/env bash
# Side-by-side benchmark, in one run on one file: `grep -F <message-id>` vs `flowtest diagnose
# --message-id` (release) vs a full `flowtest diagnose` of every message, with wall time and
# max RSS from /usr/bin/time -v. Also runs the full analysis on the first tenth of the file to
# show that memory does not grow with input size.
#
# usage: bench/diagnose_vs_grep.sh [SIZE_BYTES=2e9] [WORKDIR=/tmp/flowtest-bench] [RUNS=3]
# Results: a Markdown table on stdout (and WORKDIR/results.md). Record them in
# docs/benchmarks/diagnose.md together with this command line.
set -euo pipefail

SIZE=${1:-2e9}
DIR=${2:-/tmp/flowtest-bench}
RUNS=${3:-3}
REPO=$(cd "$(dirname "$0")/.." && pwd)
LOG=$DIR/mail.log
SMALL=$DIR/mail-tenth.log
BYTES=$(python3 -c "print(int(float('$SIZE')))")

mkdir -p "$DIR"
if [ ! -f "$LOG" ] || [ "$(stat -c %s "$LOG")" -lt "$BYTES" ] || [ ! -s "$DIR/needle.txt" ]; then
    echo "generating $BYTES bytes of Postfix log in $LOG ..." >&2
    python3 "$REPO/bench/gen_postfix_log.py" "$LOG" "$BYTES" 1 2> "$DIR/needle.txt"
fi
head -c $((BYTES / 10)) "$LOG" > "$SMALL"
NEEDLE=$(sed -n 's/^needle message-id \(<[^ ]*>\).*/\1/p' "$DIR/needle.txt")
[ -n "$NEEDLE" ] || { echo "no needle recorded in $DIR/needle.txt" >&2; exit 1; }

(cd "$REPO" && cargo build --release --quiet)
BIN=$REPO/target/release/flowtest
# Page cache warm: every run reads from memory, so the comparison is CPU, not disk.
cat "$LOG" "$SMALL" > /dev/null

measure() { # name, command...: prints "wall_s rss_kb" of the fastest of $RUNS runs
    local name=$1; shift
    local best_wall="" best_rss=""
    for _ in $(seq "$RUNS"); do
        /usr/bin/time -v -o "$DIR/$name.time" "$@" > "$DIR/$name.out" 2> "$DIR/$name.err" || true
        local wall rss
        wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,a,":"); s=0; for(i=1;i<=n;i++) s=s*60+a[i]; print s}' "$DIR/$name.time")
        rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$DIR/$name.time")
        if [ -z "$best_wall" ] || awk "BEGIN{exit !($wall < $best_wall)}"; then
            best_wall=$wall; best_rss=$rss
        fi
    done
    echo "$best_wall $best_rss"
}

lines=$(wc -l < "$LOG")
read -r g_wall g_rss <<< "$(measure grep grep -F "$NEEDLE" "$LOG")"
# What a person runs to see one message's lines on one host: the Message-ID gives the queue
# id, the queue id gives the lines (two passes over the file; still no next hop, no verdict).
QID=$(grep -F "$NEEDLE" "$LOG" | sed -n 's/.*: \([0-9A-F]\{10\}\): message-id=.*/\1/p' | head -1)
read -r g2_wall g2_rss <<< "$(measure grep2 sh -c 'grep -F "$1" "$3" > /dev/null; grep -F "$2: " "$3"' sh "$NEEDLE" "$QID" "$LOG")"
read -r f_wall f_rss <<< "$(measure focus "$BIN" diagnose --year 2025 --format json --message-id "$NEEDLE" "ec2=$LOG")"
# Sanity: both found the message, and flowtest says what happened to it.
grep -qF "$NEEDLE" "$DIR/grep.out"
python3 - "$DIR/focus.out" "$NEEDLE" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
m = d["messages"]
assert len(m) == 1 and m[0]["message_id"] == sys.argv[2], m
assert m[0]["status"] == "delivered" and m[0]["findings"][0]["code"] == "next_hop_timeout", m[0]
PY
read -r a_wall a_rss <<< "$(measure full "$BIN" diagnose --year 2025 --format json "ec2=$LOG")"
read -r s_wall s_rss <<< "$(measure full-tenth "$BIN" diagnose --year 2025 --format json "ec2=$SMALL")"
# The summary is the report's last object (one line); the report itself can be gigabytes.
msgs=$(tail -n 3 "$DIR/full.out" | sed -n 's/.*"messages":\([0-9]*\)}.*/\1/p')

mb=$(python3 -c "print(round($BYTES/1e6))")
rate() { python3 -c "print(round($BYTES/1e6/$1))"; }
{
echo "Input: $mb MB, $lines lines of generated EC2-MX Postfix log ($LOG), page cache warm, best of $RUNS runs."
echo "Machine: $(nproc) cores, $(uname -r); $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')."
echo
echo "| command | wall (s) | MB/s | max RSS (MB) |"
echo "|---|---:|---:|---:|"
echo "| \`grep -F '$NEEDLE'\` | $g_wall | $(rate "$g_wall") | $((g_rss / 1024)) |"
echo "| \`grep -F '<message-id>'\` then \`grep -F '$QID: '\` (two passes) | $g2_wall | $(rate "$g2_wall") | $((g2_rss / 1024)) |"
echo "| \`flowtest diagnose --message-id '$NEEDLE' --format json\` | $f_wall | $(rate "$f_wall") | $((f_rss / 1024)) |"
echo "| \`flowtest diagnose --format json\` (every message: $msgs) | $a_wall | $(rate "$a_wall") | $((a_rss / 1024)) |"
echo "| same, first tenth of the file | $s_wall | $(python3 -c "print(round($BYTES/1e7/$s_wall))") | $((s_rss / 1024)) |"
} | tee "$DIR/results.md"
