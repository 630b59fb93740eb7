#!/usr/bin/env bash
# Side-by-side benchmark, one run, same lab: how soon flowtest sees a probe after Dovecot saved it,
# and how exactly it times the delivery. The truth is Dovecot's own microsecond save line in
# $LAB_DIR/logs/dell-dovecot.log ("msgid=<probe-id@...>: stored mail into mailbox", same machine
# clock as flowtest's). Per probe:
#   detection = flowtest's detected_at - the save line's time
#   delivered_ms error = delivered_ms - (save time - submission.started_at)      (with log sources)
#   total_ms error     = total_ms - (save time - submission.started_at)          (without log sources)
# and imap_commands, the IMAP commands the watch issued for the probe. Probes of each side are
# interleaved so both meet the same lab and load.
#
# usage: flock -s /tmp/flowtest-lab.lock bench/detection.sh [N=20]     (the lab must be up)
#        flock -s /tmp/flowtest-lab.lock bench/detection.sh --smoke    (2 probes: CI's check that it runs)
# BEFORE_BIN=/path/to/flowtest adds the "before" side: a binary built from main (the script does
# not build it: `git worktree add /tmp/m main && cargo build --manifest-path /tmp/m/Cargo.toml`).
# Both sides are the debug build unless AFTER_BIN says otherwise.
set -euo pipefail
N=${1:-20}
if [ "$N" = --smoke ]; then N=2; fi
REPO=$(cd "$(dirname "$0")/.." && pwd)
LAB_DIR=${FLOWTEST_LAB_DIR:-/run/flowtest-lab}
[ -d "$LAB_DIR/secrets" ] || { echo "the lab is not up: run lab/up" >&2; exit 1; }
if [ -z "${AFTER_BIN:-}" ]; then
  (cd "$REPO" && cargo build --quiet --bin flowtest)
  AFTER_BIN=$REPO/target/debug/flowtest
fi
BEFORE_BIN=${BEFORE_BIN:-}
# KEEP=DIR keeps each probe's JSON result in DIR (for looking at outliers).
if [ -n "${KEEP:-}" ]; then
  OUT=$KEEP; mkdir -p "$OUT"
else
  OUT=$(mktemp -d /tmp/flowtest-bench-detection.XXXXXX)
  trap 'rm -rf "$OUT"' EXIT
fi

# The lab's configuration without its log sources, and lab-inbound without the stages' log roles.
mkdir -p "$OUT/scenarios"
python3 - "$REPO/lab" "$OUT" <<'PY'
import re, sys
lab, out = sys.argv[1], sys.argv[2]
text = open(f"{lab}/flowtest.toml").read()
text = re.sub(r'(?ms)^\[\[log_source\]\].*?(?=^\[|\Z)', '', text)
text = re.sub(r'(?m)^scenarios_dir = .*$', f'scenarios_dir = "{out}/scenarios"', text)
open(f"{out}/nologs.toml", "w").write(text)
scenario = open(f"{lab}/scenarios/lab-inbound.toml").read()
open(f"{out}/scenarios/lab-inbound.toml", "w").write(re.sub(r'(?m)^role = .*\n', '', scenario))
PY

run() { # run BIN CONFIG OUTFILE
  "$REPO/lab/run" "$1" --config "$2" run lab-inbound --format json --quiet > "$3" 2>/dev/null || true
}
for i in $(seq "$N"); do
  run "$AFTER_BIN" "$REPO/lab/flowtest.toml" "$OUT/after-$i.json"
  sleep 0.2
  if [ -n "$BEFORE_BIN" ]; then
    run "$BEFORE_BIN" "$REPO/lab/flowtest.toml" "$OUT/before-$i.json"
    sleep 0.2
  fi
  run "$AFTER_BIN" "$OUT/nologs.toml" "$OUT/nologs-$i.json"
  sleep 0.2
done
sleep 0.5

python3 - "$OUT" "$LAB_DIR/logs/dell-dovecot.log" <<'PY'
import json, os, re, statistics, sys
from datetime import datetime, timezone
out, log = sys.argv[1], sys.argv[2]
saved = {}
pat = re.compile(r'^(\S+) lmtp\(.*msgid=<([0-9a-f-]{36})@[^>]*>: (?:stored mail into mailbox|saved mail to)')
for line in open(log, errors="replace"):
    m = pat.match(line)
    if m:
        saved[m.group(2)] = datetime.fromisoformat(m.group(1)).astimezone(timezone.utc)
def ts(s):
    return datetime.fromisoformat(s.replace("Z", "+00:00")[:26] + "+00:00") if s else None
def rows(prefix):
    out_rows = []
    for name in sorted(os.listdir(out)):
        if not name.startswith(prefix + "-"):
            continue
        try:
            r = json.load(open(os.path.join(out, name)))["results"][0]
        except (ValueError, KeyError, IndexError):
            continue
        s = saved.get(r["probe_id"])
        det, start = ts(r.get("detected_at")), ts((r.get("submission") or {}).get("started_at"))
        if r["status"] not in ("delivered", "slow") or not (s and det and start):
            print(f"{prefix}: {r['probe_id']} {r['status']}: no save line or no detection; left out")
            continue
        truth = (s - start).total_seconds() * 1000
        out_rows.append({
            "detect": (det - s).total_seconds() * 1000,
            "delivered_err": None if r.get("delivered_ms") is None else r["delivered_ms"] - truth,
            "total_err": r["total_ms"] - truth,
            "cmds": r.get("imap_commands"),
            "by": r.get("detected_by"),
        })
    return out_rows
def q(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p * len(xs)))]
def fmt(xs):
    if not xs:
        return "-"
    return f"median {statistics.median(xs):.1f}, p95 {q(xs, 0.95):.1f}, max {max(xs):.1f}"
print("| side | probes | detection after Dovecot's save (ms) | delivered_ms error (ms) | total_ms error (ms) | IMAP commands per probe | detected by |")
print("|---|---|---|---|---|---|---|")
summary = {}
for side, prefix in (("before (main)", "before"), ("after, with log sources", "after"), ("after, without log sources", "nologs")):
    rs = rows(prefix)
    if not rs:
        continue
    det = [r["detect"] for r in rs]
    dl = [abs(r["delivered_err"]) for r in rs if r["delivered_err"] is not None]
    te = [r["total_err"] for r in rs]
    cm = [r["cmds"] for r in rs if r["cmds"] is not None]
    by = ", ".join(f"{k} {sum(1 for r in rs if r['by'] == k)}" for k in sorted({r["by"] for r in rs}))
    summary[prefix] = statistics.median(det)
    cmds = f"median {statistics.median(cm):.0f}, max {max(cm)}" if cm else "-"
    print(f"| {side} | {len(rs)} | {fmt(det)} | {fmt(dl)} | {fmt(te)} | {cmds} | {by} |")
if "before" in summary and "after" in summary and summary["after"] > 0:
    print(f"\nmedian detection before/after: {summary['before'] / summary['after']:.1f}x")
# A side that ran and measured no probe is a broken benchmark, not a result: fail (CI's smoke).
ran = {n.split("-")[0] for n in os.listdir(out) if n.endswith(".json")}
empty = sorted(p for p in ran if p in ("before", "after", "nologs") and p not in summary)
if empty or "after" not in summary:
    sys.exit(f"no probe measured for: {', '.join(empty) or 'after'}")
PY
