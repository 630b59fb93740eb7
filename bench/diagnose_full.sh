#!/usr/bin/env bash
# The full-diagnose row of docs/BENCHMARKS.md, one command: ROUNDS alternating rounds on the same
# file, each `grep -F <absent needle>` (output to a file) then every binary's
# `flowtest diagnose --year 2025 --format FORMAT ec2=LOG` (every message of the log), timed with
# /usr/bin/time. Prints each side's median wall time, its range, median user CPU, peak RSS and
# its ratio to grep's median, and compares the binaries' reports byte for byte (and, when they
# differ, message by message, whatever their order). Alternating rounds, medians: a shared 2-core
# machine's speed drifts by 10-20 % within minutes, and by up to 5x between phases, so the
# machine's phase (bench/machine.sh) is printed, measured before and after the rounds.
#
# usage: bench/diagnose_full.sh [ROUNDS=11] [FORMAT=json] [BIN...]
#        bench/diagnose_full.sh --smoke        (4 MB, one round, the debug build)
# BIN defaults to this tree's release build (built here); name an earlier release build beside
# it to compare. NULL_TOO=1 also runs each binary with its report sent to /dev/null, in the
# same rounds: what writing the report into the page cache costs. LOG (default
# /tmp/flowtest-bench/mail-tenth.log: the first 200,000,000 bytes of
# `bench/gen_postfix_log.py LOG 2e9 1`, generated when missing).
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
SMOKE=0
if [ "${1:-}" = --smoke ]; then SMOKE=1; shift; fi
ROUNDS=${1:-11}
FORMAT=${2:-json}
shift $(( $# < 2 ? $# : 2 ))
if [ "$SMOKE" = 1 ]; then
    ROUNDS=1
    DIR=$(mktemp -d /tmp/flowtest-bench-full.XXXXXX)
    trap 'rm -rf "$DIR"' EXIT
    LOG=$DIR/mail.log
    python3 "$REPO/bench/gen_postfix_log.py" "$LOG" 4e6 1 2> /dev/null
    (cd "$REPO" && cargo build --quiet --bin flowtest)
    set -- "$REPO/target/debug/flowtest"
else
    DIR=${WORKDIR:-/tmp/flowtest-bench}
    LOG=${LOG:-$DIR/mail-tenth.log}
    mkdir -p "$DIR"
    if [ ! -s "$LOG" ]; then
        echo "generating $LOG ..." >&2
        python3 "$REPO/bench/gen_postfix_log.py" "$DIR/mail.log" 2e9 1 2> /dev/null
        head -c 200000000 "$DIR/mail.log" > "$LOG"
    fi
    if [ $# = 0 ]; then
        (cd "$REPO" && cargo build --release --quiet --bin flowtest)
        set -- "$REPO/target/release/flowtest"
    fi
fi
cat "$LOG" > /dev/null # page cache warm: the comparison is CPU, not disk
# The machine's phase before and after the rounds (bench/machine.sh): a series compares only
# with one taken in a like phase.
PHASE_ARG=$([ "$SMOKE" = 1 ] && echo --smoke || true)
PHASE_BEFORE=$("$REPO/bench/machine.sh" ${PHASE_ARG:+"$PHASE_ARG"})
TIMES=$DIR/full.times
: > "$TIMES"
# Each command starts with no dirty pages: a 2 GB log's JSON report is 1.6 GB, and the last
# round's reports, written back to disk by the kernel's flusher threads during the next command
# (past 30 s, or past a tenth of memory dirty), took the same two cores from it (untimed `sync`).
for _ in $(seq "$ROUNDS"); do
    sync
    /usr/bin/time -f "grep %e %U %M %S" -a -o "$TIMES" \
        grep -F '<absent-needle@nowhere.example>' "$LOG" > "$DIR/grep.out" || true
    i=0
    for b in "$@"; do
        i=$((i + 1))
        sync
        /usr/bin/time -f "$i %e %U %M %S" -a -o "$TIMES" \
            "$b" diagnose --year 2025 --format "$FORMAT" "ec2=$LOG" > "$DIR/full-$i.out" 2> /dev/null || true
        if [ "${NULL_TOO:-0}" = 1 ]; then
            # The same run with the report thrown away: what writing it to a file costs.
            sync
            /usr/bin/time -f "$i-null %e %U %M %S" -a -o "$TIMES" \
                "$b" diagnose --year 2025 --format "$FORMAT" "ec2=$LOG" > /dev/null 2> /dev/null || true
        fi
    done
done
echo "Input: $(stat -c %s "$LOG") bytes, $(wc -l < "$LOG") lines ($LOG), page cache warm, $ROUNDS rounds."
echo "Machine: $(nproc) cores, $(uname -r); load $(cut -d' ' -f1-3 /proc/loadavg)."
echo "Before: $PHASE_BEFORE"
echo "After:  $("$REPO/bench/machine.sh" ${PHASE_ARG:+"$PHASE_ARG"})"
echo
python3 - "$TIMES" "$FORMAT" "$@" <<'PY'
import statistics, sys
times, fmt, bins = sys.argv[1], sys.argv[2], sys.argv[3:]
rows = [l.split() for l in open(times) if len(l.split()) == 5]
def side(key):
    r = [x for x in rows if x[0] == key]
    if not r:
        sys.exit(f"no timing for {key}: see {times}")
    w = [float(x[1]) for x in r]
    return (statistics.median(w), min(w), max(w), statistics.median(float(x[2]) for x in r),
            max(int(x[3]) for x in r), statistics.median(float(x[4]) for x in r))
g = side("grep")
# System time: mostly the kernel's copies (the log out of the page cache, the report into it);
# a JSON report of a 2 GB log is 1.6 GB, whose new page-cache pages cost from 0.3 s to 4 s of
# it on this VM, by its phase.
print("| command | wall median (s) | range | user median (s) | system median (s) | peak RSS (MB) | x grep -F |")
print("|---|---:|---|---:|---:|---:|---:|")
print(f"| `grep -F` (absent needle) | {g[0]:.2f} | {g[1]:.2f}-{g[2]:.2f} | {g[3]:.2f} | {g[5]:.2f} | {g[4] // 1024} | 1.0x |")
for i, b in enumerate(bins, 1):
    for key, sink in [(str(i), ""), (f"{i}-null", " > /dev/null")]:
        if key.endswith("-null") and not any(x[0] == key for x in rows):
            continue
        s = side(key)
        print(f"| `{b} diagnose --format {fmt}`{sink} | {s[0]:.2f} | {s[1]:.2f}-{s[2]:.2f} | {s[3]:.2f} | {s[5]:.2f} | {s[4] // 1024} | {s[0] / max(g[0], 1e-3):.1f}x |")
PY
# A report's messages in a fixed order (JSON: one per line; human: the blocks between blank
# lines): the order a run emits them in depends on when each is done, which a change of
# waiting times moves. A JSON report's capped list of findings is left out: which ones it
# keeps depends on that order too.
sorted_messages() {
    python3 - "$1" "$FORMAT" <<'PY'
import hashlib, sys
text = open(sys.argv[1], encoding="utf-8", errors="replace").read()
if sys.argv[2] == "json":
    parts = [l.rstrip(",") for l in text.split("\n") if l.startswith('  {"message_id"')]
else:
    parts = text.split("\n\n")
print(hashlib.sha256("\n".join(sorted(parts)).encode()).hexdigest())
PY
}
for i in $(seq 2 $#); do
    if cmp -s "$DIR/full-1.out" "$DIR/full-$i.out"; then
        same=identical
    elif [ "$(sorted_messages "$DIR/full-1.out")" = "$(sorted_messages "$DIR/full-$i.out")" ]; then
        same="DIFFERENT bytes; the same messages in another order"
    else
        same=DIFFERENT
    fi
    echo
    echo "Report of binary $i against binary 1: $same"
done
# Binary 1 must have written a report (a JSON one names its messages).
[ -s "$DIR/full-1.out" ] || { echo "binary 1 wrote no report" >&2; exit 1; }
if [ "$FORMAT" = json ]; then grep -q '"messages"' "$DIR/full-1.out"; fi
