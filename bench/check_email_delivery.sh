#!/usr/bin/env bash
# Side by side with what users run today: Debian's check_email_delivery (monitoring-plugins-contrib,
# Perl; check_smtp_send + check_imap_receive) and flowtest against the same lab MX and mailbox,
# the same number of probes, alternating. Truth: Dovecot's microsecond save line for each message
# (matched by Message-ID in $LAB_DIR/logs/dell-dovecot.log, same machine clock).
#   check_email_delivery's error = the delay it reports - (save - the moment it was started)
#   flowtest's error               = total_ms - (save - submission.started_at)
# check_imap_receive polls every --imap-check-interval seconds (an integer: 1 here, its smallest;
# 5 by default).
#
# usage: flock -s /tmp/flowtest-lab.lock bench/check_email_delivery.sh [N=10]
#        flock -s /tmp/flowtest-lab.lock bench/check_email_delivery.sh --smoke   (2 probes each)
# With --dell-down (run it under the EXCLUSIVE lock: it injects the fault, then heals):
#        flock -x /tmp/flowtest-lab.lock bench/check_email_delivery.sh --dell-down
# shows what each reports while the on-prem host is down: check_email_delivery with a fresh token
# (a timeout, no hop, no reason), with the fixed subject users often configure while an older
# message with it is still in the mailbox (a false OK), and flowtest (lost, the hop and the reason).
# Needs: apt-get install monitoring-plugins-contrib libmail-imapclient-perl libio-socket-ssl-perl
# (check_smtp_send's STARTTLS needs IO::Socket::SSL, which the plugins only recommend).
set -euo pipefail
N=${1:-10}
MODE=healthy
case "$N" in
  --smoke) N=2 ;;
  --dell-down) MODE=dell-down ;;
esac
REPO=$(cd "$(dirname "$0")/.." && pwd)
LAB_DIR=${FLOWTEST_LAB_DIR:-/run/flowtest-lab}
PLUGINS=${PLUGINS:-/usr/lib/nagios/plugins}
[ -d "$LAB_DIR/secrets" ] || { echo "the lab is not up: run lab/up" >&2; exit 1; }
[ -x "$PLUGINS/check_email_delivery" ] || {
  echo "check_email_delivery missing: apt-get install monitoring-plugins-contrib libmail-imapclient-perl libio-socket-ssl-perl" >&2; exit 1; }
if [ -z "${FLOWTEST_BIN:-}" ]; then
  (cd "$REPO" && cargo build --quiet --bin flowtest)
  FLOWTEST_BIN=$REPO/target/debug/flowtest
fi
OUT=$(mktemp -d /tmp/flowtest-bench-ced.XXXXXX)
trap 'rm -rf "$OUT"' EXIT
PW=$(cat "$LAB_DIR/secrets/alice@corp.test")
CA=$LAB_DIR/ca/ca.pem

# ced ID SUBJECT [DELETE=--delete] [RETRIES=15]: one check_email_delivery run whose message has
# Message-ID <ID@provider.test>; appends "ID start_epoch exit output" to $OUT/ced.txt.
ced() {
  local id=$1 subject=$2 delete=${3:---delete} retries=${4:-15} start out rc=0
  start=$(date +%s.%N)
  out=$("$REPO/lab/run" "$PLUGINS/check_email_delivery" --hires -w 30 -c 60 --wait 0 -t 30,40 \
    --plugin "$PLUGINS/check_smtp_send -H mx.corp.test -p 25 --mailfrom sender@provider.test \
--mailto alice@corp.test --header 'Subject: $subject' --header 'Message-ID: <$id@provider.test>' --hires" \
    --plugin "$PLUGINS/check_imap_receive -H imap.corp.test --ssl --ssl-ca-file $CA -U alice@corp.test \
-P '$PW' -s SUBJECT -s '$subject' $delete --imap-check-interval 1 --imap-retries $retries --hires" \
    2>&1) || rc=$?
  echo "$id $start $rc $out" | tr '\n' ' ' >> "$OUT/ced.txt"
  echo >> "$OUT/ced.txt"
}
flowtest_once() { # flowtest_once FILE [ARGS...]
  local f=$1; shift
  "$REPO/lab/run" "$FLOWTEST_BIN" run lab-inbound --format json --quiet "$@" > "$f" 2>/dev/null || true
}

if [ "$MODE" = dell-down ]; then
  fixed="flowtest bench fixed subject"
  # A healthy check with the fixed subject leaves its message (--nodelete), as a check that
  # never deletes does.
  ced "ced-old-$$" "$fixed" --nodelete 5
  "$REPO/lab/fault" dell-down > /dev/null
  trap '"$REPO/lab/heal" > /dev/null; rm -rf "$OUT"' EXIT
  ced "ced-fresh-$$" "flowtest bench $(date +%s%N)" --delete 10
  ced "ced-fixed-$$" "$fixed" --nodelete 10
  flowtest_once "$OUT/flowtest-down.json" --timeout 10s
  "$REPO/lab/heal" > /dev/null
  trap 'rm -rf "$OUT"' EXIT
  # Remove the fixed-subject messages (the one stuck behind the fault arrives after the heal).
  sleep 3
  ced "ced-clean-$$" "$fixed" --delete 5 > /dev/null || true
  python3 - "$OUT" <<'PY'
import json, sys
out = sys.argv[1]
labels = {"ced-old": "check_email_delivery, healthy, fixed subject (left in the mailbox)",
          "ced-fresh": "check_email_delivery during dell-down, fresh token",
          "ced-fixed": "check_email_delivery during dell-down, fixed subject"}
print("| during dell-down | exit | what it reports |")
print("|---|---|---|")
for line in open(f"{out}/ced.txt"):
    parts = line.split(" ", 3)
    key = parts[0].rsplit("-", 1)[0]
    if key in labels:
        print(f"| {labels[key]} | {parts[2]} | {parts[3].strip()[:160]} |")
try:
    r = json.load(open(f"{out}/flowtest-down.json"))["results"][0]
    f = (r.get("findings") or [{}])[0]
    print(f"| flowtest lab-inbound --timeout 10s | - | {r['status']}, last hop {r.get('last_hop')}: "
          f"{(f.get('message') or '')[:100]}; hint: {(f.get('hint') or '')[:80]} |")
except (ValueError, KeyError, IndexError):
    print("| flowtest | - | no result |")
PY
  exit 0
fi

for i in $(seq "$N"); do
  ced "ced-$i-$$-$(date +%s%N)" "flowtest bench $i $(date +%s%N)"
  sleep 0.5
  flowtest_once "$OUT/flowtest-$i.json"
  sleep 0.5
done
sleep 0.5
python3 - "$OUT" "$LAB_DIR/logs/dell-dovecot.log" <<'PY'
import json, os, re, statistics, sys
from datetime import datetime, timezone
out, log = sys.argv[1], sys.argv[2]
saved = {}
pat = re.compile(r'^(\S+) lmtp\(.*msgid=<([^>]+)>: (?:stored mail into mailbox|saved mail to)')
for line in open(log, errors="replace"):
    m = pat.match(line)
    if m:
        saved[m.group(2)] = datetime.fromisoformat(m.group(1)).astimezone(timezone.utc).timestamp()
ced, ft, notes = [], [], []
for line in open(f"{out}/ced.txt"):
    ident, start, rc, text = line.split(" ", 3)
    m = re.search(r"([0-9.]+) seconds", text)
    s = saved.get(f"{ident}@provider.test")
    if rc != "0" or not m or s is None:
        notes.append(f"check_email_delivery {ident}: exit {rc}: {text.strip()[:120]}")
        continue
    truth = s - float(start)
    ced.append({"reported": float(m.group(1)) * 1000, "truth": truth * 1000})
for name in sorted(os.listdir(out)):
    if not name.startswith("flowtest-"):
        continue
    try:
        r = json.load(open(os.path.join(out, name)))["results"][0]
    except (ValueError, KeyError, IndexError):
        continue
    s = saved.get(f"{r['probe_id']}@probe.corp.test")
    start = (r.get("submission") or {}).get("started_at")
    if r["status"] not in ("delivered", "slow") or s is None or not start:
        notes.append(f"flowtest {r['probe_id']}: {r['status']}")
        continue
    st = datetime.fromisoformat(start.replace("Z", "+00:00")[:26] + "+00:00").timestamp()
    ft.append({"reported": r["total_ms"], "truth": (s - st) * 1000})
def q(xs, p):
    xs = sorted(xs); return xs[min(len(xs) - 1, int(p * len(xs)))]
print("| tool | probes | reported delay median ms | true delay (Dovecot save) median ms | error median ms | error p95 ms |")
print("|---|---|---|---|---|---|")
errs = {}
for label, rows in (("check_email_delivery (interval 1 s)", ced), ("flowtest run lab-inbound", ft)):
    if not rows:
        print(f"| {label} | 0 | - | - | - | - |"); continue
    e = [r["reported"] - r["truth"] for r in rows]
    errs[label] = statistics.median([abs(x) for x in e])
    print(f"| {label} | {len(rows)} | {statistics.median([r['reported'] for r in rows]):.0f} | "
          f"{statistics.median([r['truth'] for r in rows]):.0f} | {statistics.median(e):.1f} | {q([abs(x) for x in e], 0.95):.1f} |")
if len(errs) == 2:
    a, b = list(errs.values())
    print(f"\nmedian absolute error check_email_delivery / flowtest: {a / max(b, 0.1):.0f}x")
for n in notes:
    print(n)
# A side that measured nothing is a broken benchmark (a missing Perl module, a lab fault), not a
# result: fail, so that CI's smoke run catches it.
missing = [label for label, rows in (("check_email_delivery", ced), ("flowtest", ft)) if not rows]
if missing:
    sys.exit(f"no probe measured for: {', '.join(missing)} (see the notes above)")
PY
