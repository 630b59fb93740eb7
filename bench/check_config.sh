#!/usr/bin/env bash
# Start-up benchmark: `flowtest check-config` on a configuration with 100 scenarios (generated:
# each a copy of the production-shaped inbound scenario with its own name, secrets in files).
# Target: <= 50 ms. Uses hyperfine (Debian package) when installed, else a timed loop; the
# release build unless FLOWTEST_BIN names another binary. No lab needed.
#
# usage: bench/check_config.sh [SCENARIOS=100] [RUNS=30]
#        bench/check_config.sh --smoke          (10 scenarios, 3 runs: CI's check that it runs)
set -euo pipefail
COUNT=${1:-100}
RUNS=${2:-30}
if [ "$COUNT" = --smoke ]; then COUNT=10; RUNS=3; fi
REPO=$(cd "$(dirname "$0")/.." && pwd)
if [ -z "${FLOWTEST_BIN:-}" ]; then
  (cd "$REPO" && cargo build --release --quiet --bin flowtest)
  FLOWTEST_BIN=$REPO/target/release/flowtest
fi
OUT=$(mktemp -d /tmp/flowtest-bench-check-config.XXXXXX)
trap 'rm -rf "$OUT"' EXIT
mkdir -p "$OUT/scenarios" "$OUT/state"
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$OUT/probe.key"
printf 'imap-secret' > "$OUT/imap.pw"
printf 'smtp-secret' > "$OUT/smtp.pw"
cat > "$OUT/flowtest.toml" <<TOML
state_dir = "$OUT/state"
scenarios_dir = "scenarios"
max_concurrency = 4
[probe]
domain = "probe.example.com"
key_file = "$OUT/probe.key"
[defaults]
timeout = "5m"
poll_interval = "5s"
TOML
for i in $(seq "$COUNT"); do
  cat > "$OUT/scenarios/inbound-$i.toml" <<TOML
name = "inbound-$i"
description = "generated scenario $i"
[sender]
kind = "smtp"
host = "smtp.example.com"
port = 587
tls = "starttls"
mail_from = "probe$i@example.org"
rcpt_to = "flowtest$i@example.com"
[sender.auth]
username = "probe$i@example.org"
password_file = "$OUT/smtp.pw"
[receiver]
host = "mail.example.com"
tls = "tls"
username = "flowtest$i@example.com"
password_file = "$OUT/imap.pw"
folders = ["INBOX", "Junk"]
[slo]
target = "60s"
max = "5m"
[[path]]
stage = "ec2-mx"
by = "mx.example.com"
[[path]]
stage = "tailscale-relay"
from_ip = "100.64.0.0/10"
[[path]]
stage = "dovecot-lmtp"
protocol = "LMTP*"
TOML
done
CMD="$FLOWTEST_BIN --config $OUT/flowtest.toml check-config"
$CMD > /dev/null   # must pass before it is timed
echo "check-config with $COUNT scenarios ($FLOWTEST_BIN):"
if command -v hyperfine > /dev/null; then
  hyperfine --warmup 2 --runs "$RUNS" --style basic --export-json "$OUT/h.json" "$CMD" > /dev/null
  python3 - "$OUT/h.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["results"][0]
ms = sorted(t * 1000 for t in r["times"])
print(f"hyperfine, {len(ms)} runs: median {r['median']*1000:.1f} ms, mean {r['mean']*1000:.1f} ms, "
      f"max {ms[-1]:.1f} ms; target <= 50 ms: {'met' if r['median'] * 1000 <= 50 else 'NOT met'}")
PY
else
  python3 - "$RUNS" $CMD <<'PY'
import statistics, subprocess, sys, time
runs, cmd = int(sys.argv[1]), sys.argv[2:]
ms = []
for _ in range(runs):
    t = time.perf_counter(); subprocess.run(cmd, stdout=subprocess.DEVNULL, check=True)
    ms.append((time.perf_counter() - t) * 1000)
med = statistics.median(ms)
print(f"loop, {runs} runs: median {med:.1f} ms, max {max(ms):.1f} ms; target <= 50 ms: {'met' if med <= 50 else 'NOT met'}")
PY
fi
