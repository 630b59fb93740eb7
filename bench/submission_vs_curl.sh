#!/usr/bin/env bash
# Side-by-side benchmark, one run, same lab: SMTP submission of one probe (STARTTLS to the lab MX,
# verified against the lab CA) by flowtest's own SMTP client vs by curl. flowtest's figure is the
# `submission` stage of `flowtest run lab-inbound` (connect to 250 after DATA, its own monotonic
# clock); curl's is its --write-out time_total for the same transaction (QUIT included).
#
# usage: bench/submission_vs_curl.sh [RUNS=20]      (the lab must be up: lab/up)
#        bench/submission_vs_curl.sh --smoke        (2 runs: CI's check that it runs)
# FLOWTEST_BIN: the binary to measure (default: a release build made here). OLD_BIN: an earlier
# binary, measured in the same run right after each FLOWTEST_BIN submission, as its own row.
# Prints a Markdown table (median, p90, max for each side, and the ratio of medians).
set -euo pipefail
RUNS=${1:-20}
if [ "$RUNS" = --smoke ]; then RUNS=2; fi
REPO=$(cd "$(dirname "$0")/.." && pwd)
LAB_DIR=${FLOWTEST_LAB_DIR:-/run/flowtest-lab}
[ -d "$LAB_DIR/secrets" ] || { echo "the lab is not up: run lab/up" >&2; exit 1; }
BIN=${FLOWTEST_BIN:-}
if [ -z "$BIN" ]; then
  (cd "$REPO" && cargo build --release --quiet)
  BIN=$REPO/target/release/flowtest
fi
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
MSG=$OUT/msg.eml
printf 'From: sender@provider.test\r\nTo: alice@corp.test\r\nSubject: curl benchmark\r\nMessage-ID: <bench-%s@provider.test>\r\n\r\nbody\r\n' "$$" > "$MSG"

# Postfix serves each connection with an idle smtpd process when it has one and spawns a new one
# when not: right after a session ends its process is briefly busy. So each submission waits a
# moment after the previous one, and the order alternates, to give both sides the same server
# state. (A ~40 ms tail once blamed on the spawning was a delayed-ACK stall after the TLS 1.3
# session tickets: see src/edge/tcp.rs.)
curl_once() {
  "$REPO/lab/run" curl -s --url smtp://mx.corp.test:25 --ssl-reqd --cacert "$LAB_DIR/ca/ca.pem" \
    --mail-from sender@provider.test --mail-rcpt alice@corp.test --upload-file "$MSG" \
    -w '%{time_total}\n' -o /dev/null >> "$OUT/curl.txt"
}
flowtest_once() {
  "$REPO/lab/run" "$BIN" \
    --config "$REPO/lab/flowtest.toml" run lab-inbound --format json --quiet > "$OUT/flowtest-$1.json" || true
  if [ -n "${OLD_BIN:-}" ]; then
    sleep 0.5
    "$REPO/lab/run" "$OLD_BIN" \
      --config "$REPO/lab/flowtest.toml" run lab-inbound --format json --quiet > "$OUT/old-$1.json" || true
  fi
}
for i in $(seq "$RUNS"); do
  if ((i % 2)); then
    curl_once; sleep 0.5; flowtest_once "$i"
  else
    flowtest_once "$i"; sleep 0.5; curl_once
  fi
  sleep 0.5
done

python3 - "$OUT" <<'PY'
import json, statistics, sys, os
out = sys.argv[1]
curl = [float(l) * 1000 for l in open(os.path.join(out, "curl.txt")) if l.strip()]
def stages(prefix):
    xs = []
    for name in sorted(os.listdir(out)):
        if not name.startswith(prefix):
            continue
        try:
            doc = json.load(open(os.path.join(out, name)))
        except ValueError:
            continue
        for r in doc.get("results", []):
            for st in r.get("stages", []):
                if st.get("name") == "submission":
                    xs.append(float(st["ms"]))
    return xs
ft = stages("flowtest-")
old = stages("old-")
def row(name, xs):
    xs = sorted(xs)
    p90 = xs[min(len(xs) - 1, int(0.9 * len(xs)))]
    return f"| {name} | {len(xs)} | {statistics.median(xs):.1f} | {p90:.1f} | {xs[-1]:.1f} |"
print("| submitter | runs | median ms | p90 ms | max ms |")
print("|---|---|---|---|---|")
print(row("curl (STARTTLS, QUIT)", curl))
print(row("flowtest submission stage", ft))
if old:
    print(row("OLD_BIN submission stage", old))
print(f"\nratio of medians flowtest/curl: {statistics.median(ft) / statistics.median(curl):.2f}; "
      f"difference: {statistics.median(ft) - statistics.median(curl):.1f} ms")
PY
