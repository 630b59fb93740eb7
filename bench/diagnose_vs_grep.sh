#!/usr/bin/env bash
# Side-by-side benchmark, in one run on one file: `grep -F <message-id>` and `pflogsumm` vs
# `flowtest diagnose --message-id` (release) vs a full `flowtest diagnose` of every message, with
# wall time, max RSS from /usr/bin/time -v and the ratio to `grep -F`. Also runs the full
# analysis on the first tenth of the file to show that memory does not grow with input size.
# With OLD_BIN=path/to/an/earlier/flowtest, that binary runs the same two diagnoses in the same
# run, and the JSON outputs of both are compared byte for byte (sha256).
#
# usage: bench/diagnose_vs_grep.sh [--smoke] [SIZE_BYTES=2e9] [WORKDIR=/tmp/flowtest-bench] [RUNS=3]
# FOCUS_ONLY=1: only `grep -F` (both forms) and the `--message-id` diagnose (with OLD_BIN, both
# binaries): short enough for one hold of `flock -x /tmp/flowtest-cpu.lock`.
# grep writes its output to a file, as flowtest does: with stdout on /dev/null GNU grep stops at
# the first match and reads only part of the file.
# --smoke: 4 MB, one run, a debug build, no pflogsumm (seconds; CI keeps the script alive).
# Results: a Markdown table on stdout (and WORKDIR/results.md). Record them in
# docs/BENCHMARKS.md and docs/benchmarks/diagnose.md together with this command line.
set -euo pipefail

SMOKE=0
if [ "${1:-}" = "--smoke" ]; then SMOKE=1; shift; fi
SIZE=${1:-2e9}
DIR=${2:-/tmp/flowtest-bench}
RUNS=${3:-3}
if [ "$SMOKE" = 1 ]; then SIZE=${1:-4e6}; DIR=${2:-/tmp/flowtest-bench-smoke}; RUNS=1; fi
REPO=$(cd "$(dirname "$0")/.." && pwd)
LOG=$DIR/mail.log
SMALL=$DIR/mail-tenth.log
BYTES=$(python3 -c "print(int(float('$SIZE')))")

mkdir -p "$DIR"
have=$( [ -f "$LOG" ] && stat -c %s "$LOG" || echo 0)
if [ "$have" -lt "$BYTES" ] || [ "$have" -gt $((BYTES + (8 << 20))) ] || [ ! -s "$DIR/needle.txt" ]; then
    echo "generating $BYTES bytes of Postfix log in $LOG ..." >&2
    python3 "$REPO/bench/gen_postfix_log.py" "$LOG" "$BYTES" 1 2> "$DIR/needle.txt"
fi
head -c $((BYTES / 10)) "$LOG" > "$SMALL"
NEEDLE=$(sed -n 's/^needle message-id \(<[^ ]*>\).*/\1/p' "$DIR/needle.txt")
[ -n "$NEEDLE" ] || { echo "no needle recorded in $DIR/needle.txt" >&2; exit 1; }

if [ "$SMOKE" = 1 ]; then
    (cd "$REPO" && cargo build --quiet --bin flowtest)
    BIN=$REPO/target/debug/flowtest
else
    (cd "$REPO" && cargo build --release --quiet --bin flowtest)
    BIN=$REPO/target/release/flowtest
fi
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
if [ -n "${OLD_BIN:-}" ]; then
    read -r fo_wall fo_rss <<< "$(measure focus-old "$OLD_BIN" diagnose --year 2025 --format json --message-id "$NEEDLE" "ec2=$LOG")"
fi
# Sanity: both found the message, and flowtest says what happened to it.
grep -qF "$NEEDLE" "$DIR/grep.out"
python3 - "$DIR/focus.out" "$NEEDLE" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
m = d["messages"]
assert len(m) == 1 and m[0]["message_id"] == sys.argv[2], m
assert m[0]["status"] == "delivered" and m[0]["findings"][0]["code"] == "next_hop_timeout", m[0]
PY
if [ "${FOCUS_ONLY:-0}" = 1 ]; then
    sum() { sha256sum < "$1" | cut -c1-16; }
    x() { python3 -c "print('%.2fx' % ($1/max($g_wall, 1e-3)))"; }
    {
    echo "Input: $(python3 -c "print(round($BYTES/1e6))") MB ($LOG), page cache warm, best of $RUNS runs."
    echo
    echo "| command | wall (s) | x grep -F | max RSS (MB) |"
    echo "|---|---:|---:|---:|"
    echo "| \`grep -F '$NEEDLE'\` | $g_wall | 1.00x | $((g_rss / 1024)) |"
    echo "| \`grep -F '<message-id>'\` then \`grep -F '$QID: '\` | $g2_wall | $(x "$g2_wall") | $((g2_rss / 1024)) |"
    echo "| \`flowtest diagnose --message-id '$NEEDLE' --format json\` | $f_wall | $(x "$f_wall") | $((f_rss / 1024)) |"
    if [ -n "${OLD_BIN:-}" ]; then
        echo "| same, earlier binary | $fo_wall | $(x "$fo_wall") | $((fo_rss / 1024)) |"
        echo
        echo "Focused JSON: $(cmp -s "$DIR/focus.out" "$DIR/focus-old.out" && echo identical || echo DIFFERENT) (sha256 $(sum "$DIR/focus.out"))"
    fi
    } | tee "$DIR/results.md"
    exit 0
fi
read -r a_wall a_rss <<< "$(measure full "$BIN" diagnose --year 2025 --format json "ec2=$LOG")"
sum() { sha256sum < "$1" | cut -c1-16; }
same=""
if [ -n "${OLD_BIN:-}" ]; then
    full_sum=$(sum "$DIR/full.out")
    read -r ao_wall ao_rss <<< "$(measure full-old "$OLD_BIN" diagnose --year 2025 --format json "ec2=$LOG")"
    same="focused JSON: $(cmp -s "$DIR/focus.out" "$DIR/focus-old.out" && echo identical || echo DIFFERENT); full JSON: $( [ "$full_sum" = "$(sum "$DIR/full-old.out")" ] && echo identical || echo DIFFERENT) (sha256 $full_sum)"
    rm -f "$DIR/full-old.out"
fi
if [ "$SMOKE" = 0 ] && command -v pflogsumm > /dev/null; then
    read -r p_wall p_rss <<< "$(RUNS=1 measure pflogsumm pflogsumm "$LOG")"
fi
read -r s_wall s_rss <<< "$(measure full-tenth "$BIN" diagnose --year 2025 --format json "ec2=$SMALL")"
# The summary is the report's last object (one line); the report itself can be gigabytes.
msgs=$(tail -n 3 "$DIR/full.out" | sed -n 's/.*"messages":\([0-9]*\)}.*/\1/p')
rm -f "$DIR/full.out"

mb=$(python3 -c "print(round($BYTES/1e6))")
# A time under the timer's resolution (the smoke's tiny file) counts as 1 ms, not as a division by 0.
rate() { python3 -c "print(round($BYTES/1e6/max($1, 1e-3)))"; }
x() { python3 -c "print('%.2fx' % ($1/max($g_wall, 1e-3)))"; }
{
echo "Input: $mb MB, $lines lines of generated EC2-MX Postfix log ($LOG), page cache warm, best of $RUNS runs."
echo "Machine: $(nproc) cores, $(uname -r); $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')."
echo
echo "| command | wall (s) | MB/s | x grep -F | max RSS (MB) |"
echo "|---|---:|---:|---:|---:|"
echo "| \`grep -F '$NEEDLE'\` | $g_wall | $(rate "$g_wall") | 1.00x | $((g_rss / 1024)) |"
echo "| \`grep -F '<message-id>'\` then \`grep -F '$QID: '\` (two passes) | $g2_wall | $(rate "$g2_wall") | $(x "$g2_wall") | $((g2_rss / 1024)) |"
if [ -n "${p_wall:-}" ]; then
echo "| \`pflogsumm\` (one run) | $p_wall | $(rate "$p_wall") | $(x "$p_wall") | $((p_rss / 1024)) |"
fi
echo "| \`flowtest diagnose --message-id '$NEEDLE' --format json\` | $f_wall | $(rate "$f_wall") | $(x "$f_wall") | $((f_rss / 1024)) |"
if [ -n "${OLD_BIN:-}" ]; then
echo "| same, earlier binary | $fo_wall | $(rate "$fo_wall") | $(x "$fo_wall") | $((fo_rss / 1024)) |"
fi
echo "| \`flowtest diagnose --format json\` (every message: $msgs) | $a_wall | $(rate "$a_wall") | $(x "$a_wall") | $((a_rss / 1024)) |"
if [ -n "${OLD_BIN:-}" ]; then
echo "| same, earlier binary | $ao_wall | $(rate "$ao_wall") | $(x "$ao_wall") | $((ao_rss / 1024)) |"
fi
echo "| same, first tenth of the file | $s_wall | $(python3 -c "print(round($BYTES/1e7/max($s_wall, 1e-3)))") | | $((s_rss / 1024)) |"
if [ -n "$same" ]; then echo; echo "Outputs, this build vs the earlier binary: $same"; fi
} | tee "$DIR/results.md"
if [ "$SMOKE" = 1 ]; then rm -rf "$DIR"; fi
