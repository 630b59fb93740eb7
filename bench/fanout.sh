#!/usr/bin/env bash
# Fan-out benchmark, one run, same lab: the wall time of `flowtest run --all` over 50 scenarios
# against that of `flowtest run` of one of them (target: <= 2x). The scenarios are copies of
# lab-inbound spread over the lab's mailboxes (alice, bob, postmaster: Dovecot allows 10 IMAP
# connections per user and address), run with max_concurrency = CONC (default 24, kept so that
# series stay comparable across stops; `CONC=4` is the lab's own flowtest.toml, what a user gets
# by default). A place bounds only the sending: the probes share one session per mailbox (3 in
# all) and 4 SMTP connections, whatever CONC. The one-scenario and the fan-out runs alternate,
# REPEAT times, after one untimed run of each.
#
# usage: flock -s /tmp/flowtest-lab.lock bench/fanout.sh [SCENARIOS=50] [REPEAT=3]
#        flock -s /tmp/flowtest-lab.lock bench/fanout.sh --smoke     (4 scenarios, once)
# FLOWTEST_BIN picks the binary (default: the debug build, built here).
set -euo pipefail
COUNT=${1:-50}
REPEAT=${2:-3}
if [ "$COUNT" = --smoke ]; then COUNT=4; REPEAT=1; fi
CONC=${CONC:-24}
REPO=$(cd "$(dirname "$0")/.." && pwd)
LAB_DIR=${FLOWTEST_LAB_DIR:-/run/flowtest-lab}
[ -d "$LAB_DIR/secrets" ] || { echo "the lab is not up: run lab/up" >&2; exit 1; }
if [ -z "${FLOWTEST_BIN:-}" ]; then
  (cd "$REPO" && cargo build --quiet --bin flowtest)
  FLOWTEST_BIN=$REPO/target/debug/flowtest
fi
# KEEP=DIR keeps the configuration and the last run's JSON in DIR.
if [ -n "${KEEP:-}" ]; then
  OUT=$KEEP; rm -rf "$OUT"; mkdir -p "$OUT"
else
  OUT=$(mktemp -d /tmp/flowtest-bench-fanout.XXXXXX)
  trap 'rm -rf "$OUT"' EXIT
fi
mkdir -p "$OUT/scenarios"
python3 - "$REPO" "$OUT" "$COUNT" "$CONC" <<'PY'
import re, sys
repo, out, count, conc = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
cfg = open(f"{repo}/lab/flowtest.toml").read()
cfg = re.sub(r'(?m)^scenarios_dir = .*$', f'scenarios_dir = "{out}/scenarios"', cfg)
cfg = re.sub(r'(?m)^max_concurrency = .*$', f'max_concurrency = {conc}', cfg)
open(f"{out}/flowtest.toml", "w").write(cfg)
base = open(f"{repo}/lab/scenarios/lab-inbound.toml").read()
users = ["alice@corp.test", "bob@corp.test", "postmaster@corp.test"]
for i in range(1, count + 1):
    u = users[(i - 1) % len(users)]
    s = re.sub(r'(?m)^name = .*$', f'name = "fanout-{i:02}"', base)
    s = s.replace("alice@corp.test", u)
    open(f"{out}/scenarios/fanout-{i:02}.toml", "w").write(s)
PY
timed() { # timed LABEL ARGS...: appends "LABEL seconds statuses" to $OUT/times
  local label=$1; shift
  local t0 t1
  t0=$(date +%s.%N)
  "$REPO/lab/run" "$FLOWTEST_BIN" --config "$OUT/flowtest.toml" run "$@" --format json --quiet \
    > "$OUT/last.json" 2>/dev/null || true
  t1=$(date +%s.%N)
  python3 - "$label" "$t0" "$t1" "$OUT/last.json" >> "$OUT/times" <<'PY'
import collections, json, sys
label, t0, t1, f = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
try:
    st = collections.Counter(r["status"] for r in json.load(open(f))["results"])
except (ValueError, KeyError):
    st = {"no_output": 1}
print(label, f"{t1 - t0:.3f}", ",".join(f"{k}={v}" for k, v in sorted(st.items())))
PY
  sleep 1
}
# One untimed run of each first: the first delivery after an idle spell waits for the lab's
# Postfix and Dovecot to start their processes (0.2-0.6 s more, whichever run comes first).
timed warm fanout-01
timed warm --all
for _ in $(seq "$REPEAT"); do
  timed one fanout-01
  timed all --all
done
python3 - "$OUT/times" "$COUNT" "$CONC" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
one = [float(r[1]) for r in rows if r[0] == "one"]
allr = [float(r[1]) for r in rows if r[0] == "all"]
print("| run | repeats | wall median s | each | statuses |")
print("|---|---|---|---|---|")
for label, xs in (("one scenario", one), (f"--all, {sys.argv[2]} scenarios, max_concurrency {sys.argv[3]}", allr)):
    st = " / ".join(r[2] for r in rows if r[0] == ("one" if label == "one scenario" else "all"))
    print(f"| {label} | {len(xs)} | {statistics.median(xs):.2f} | {', '.join(f'{x:.2f}' for x in xs)} | {st} |")
ratio = statistics.median(allr) / statistics.median(one)
print(f"\nratio --all / one: {ratio:.2f}x; target <= 2x: {'met' if ratio <= 2 else 'NOT met'}")
# A timed run whose probes were not all delivered times something else: fail (CI's smoke).
bad = [f"{r[0]}: {r[2]}" for r in rows if r[0] in ("one", "all")
       and any(not kv.startswith("delivered=") for kv in r[2].split(","))]
if bad:
    sys.exit("runs with probes not delivered: " + "; ".join(bad))
PY
# Where the last --all run's probes spent their time: the client-measured stages, median and max.
python3 - "$OUT/last.json" <<'PY'
import json, statistics, sys
try:
    results = json.load(open(sys.argv[1]))["results"]
except (ValueError, KeyError, OSError):
    sys.exit(0)
parts = []
for name in ("submission", "detect", "end_to_end"):
    ms = [s["ms"] for r in results for s in r.get("stages", []) if s["name"] == name and s.get("ms") is not None]
    if ms:
        parts.append(f"{name} median {statistics.median(ms):.0f} ms, max {max(ms)} ms")
if parts:
    print("last --all run, per probe: " + "; ".join(parts))
PY
