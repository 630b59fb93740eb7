#!/usr/bin/env bash
# The instruction rows of docs/BENCHMARKS.md, one command: each binary's full
# `flowtest diagnose --year 2025 --format json ec2=LOG` under valgrind's callgrind, one count per
# thread (the first thread reads, parses and merges the log; the second correlates, renders and
# writes the report), and its allocations on each thread. Counts do not
# drift with the machine's phase as wall time does (bench/machine.sh), so two builds compare on
# any day; a change's effect on time still has to be shown by bench/diagnose_full.sh. The reports
# are compared byte for byte: a speed change must not change what is reported.
#
# usage: bench/instructions.sh [BIN...]
#        bench/instructions.sh --smoke        (a 300 KB log, the debug build)
# BIN defaults to this tree's release build (built here). LOG (default
# /tmp/flowtest-bench/mail-5m.log: the first 5,000,000 bytes of `bench/gen_postfix_log.py LOG 2e9 1`,
# generated when missing). Needs valgrind (Debian's `valgrind`, which lab/test installs).
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
command -v valgrind > /dev/null || { echo "bench/instructions.sh: valgrind is not installed" >&2; exit 1; }
SMOKE=0
if [ "${1:-}" = --smoke ]; then SMOKE=1; shift; fi
if [ "$SMOKE" = 1 ]; then
    DIR=$(mktemp -d /tmp/flowtest-bench-ir.XXXXXX)
    trap 'rm -rf "$DIR"' EXIT
    LOG=$DIR/mail.log
    python3 "$REPO/bench/gen_postfix_log.py" "$LOG" 3e5 1 2> /dev/null
    (cd "$REPO" && cargo build --quiet --bin flowtest)
    set -- "$REPO/target/debug/flowtest"
else
    DIR=${WORKDIR:-/tmp/flowtest-bench}
    LOG=${LOG:-$DIR/mail-5m.log}
    mkdir -p "$DIR"
    if [ ! -s "$LOG" ]; then
        echo "generating $LOG ..." >&2
        [ -s "$DIR/mail.log" ] || python3 "$REPO/bench/gen_postfix_log.py" "$DIR/mail.log" 2e9 1 2> /dev/null
        head -c 5000000 "$DIR/mail.log" > "$LOG"
    fi
    if [ $# = 0 ]; then
        (cd "$REPO" && cargo build --release --quiet --bin flowtest)
        set -- "$REPO/target/release/flowtest"
    fi
fi

# Allocations, from callgrind's call counts: every allocation of a Rust program with mimalloc goes
# through `mi_malloc_aligned` (with the system allocator, `malloc`); the callers of it are listed
# above it in its block of the caller tree, each with its count of calls.
allocations() {
    callgrind_annotate --tree=caller "$1" 2> /dev/null | awk '
        function flush() { if (hit) { for (i = 1; i <= k; i++) n += calls[i] } hit = 0; k = 0 }
        /^ *$/ { flush(); next }
        /\* .*:(mi_malloc_aligned|malloc) \[/ { hit = 1; next }
        /</ {
            if (match($0, /\([0-9,]+x\)/)) {
                c = substr($0, RSTART + 1, RLENGTH - 3); gsub(",", "", c); calls[++k] = c
            }
        }
        END { flush(); print n + 0 }'
}

total() {
    callgrind_annotate "$1" 2> /dev/null | awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1; exit }'
}

echo "Input: $(stat -c %s "$LOG") bytes, $(wc -l < "$LOG") lines ($LOG)."
echo
echo "| binary | reading thread (instructions) | correlating thread (instructions) | allocations, reading / correlating | report (md5) |"
echo "|---|---:|---:|---:|---|"
FIRST=""
for BIN in "$@"; do
    OUT=$(mktemp -d "$DIR/ir.XXXXXX")
    valgrind --tool=callgrind --separate-threads=yes --callgrind-out-file="$OUT/cg.out" \
        "$BIN" diagnose --year 2025 --format json "ec2=$LOG" > "$OUT/report.json" 2> "$OUT/stderr" || true
    READING=$(ls "$OUT"/cg.out-01); CORRELATING=$(ls "$OUT"/cg.out-02 2> /dev/null || true)
    [ -s "$OUT/report.json" ] || { echo "$BIN wrote no report:" >&2; tail -5 "$OUT/stderr" >&2; exit 1; }
    [ -n "$CORRELATING" ] || { echo "$BIN ran on one thread: no correlating thread to count" >&2; exit 1; }
    # shellcheck disable=SC2016 # the backticks are Markdown's
    printf '| `%s` | %s | %s | %s / %s | %s |\n' "$BIN" "$(total "$READING")" "$(total "$CORRELATING")" \
        "$(allocations "$READING")" "$(allocations "$CORRELATING")" "$(md5sum < "$OUT/report.json" | cut -c1-12)"
    if [ -z "$FIRST" ]; then
        FIRST=$OUT/report.json
    elif ! cmp -s "$FIRST" "$OUT/report.json"; then
        echo "The report of $BIN differs from the first binary's." >&2
        exit 1
    fi
done
if [ $# -gt 1 ]; then echo; echo "Reports: identical"; fi
