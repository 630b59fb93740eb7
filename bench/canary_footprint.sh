#!/usr/bin/env bash
# Footprint of `flowtest canary` (release build) with 20 scenarios probing the lab every minute
# (the four lab scenarios, five copies each, 55 s of jitter so they spread over the minute) for
# MINUTES: peak RSS (VmHWM from /proc/PID/status) and average CPU ((utime+stime) / wall time since
# the process started, from /proc/PID/stat) of the canary process, against the targets
# RSS <= 30 MB and CPU <= 1 % of one core. Also prints how many probes ran and were delivered
# (from its /metrics), so a canary that did nothing cannot pass.
#
# usage: bench/canary_footprint.sh [MINUTES=10]     (1 is the CI-safe short mode)
#        FLOWTEST_BIN=path/to/flowtest bench/canary_footprint.sh ...   (measure that build instead)
# The lab must be up (lab/up). It injects no fault: hold the SHARED lab lock, e.g.
#   flock -o -s /tmp/flowtest-lab.lock bench/canary_footprint.sh 10
# Exit 0 when both targets are met, 1 when one is missed, 2 when the run itself failed.
set -euo pipefail
MINUTES=${1:-10}
[[ $MINUTES =~ ^[1-9][0-9]*$ ]] || { echo "usage: $0 [MINUTES>=1]" >&2; exit 2; }
SCENARIOS=20
RSS_TARGET_KB=$((30 * 1024))
CPU_TARGET_PCT=1
REPO=$(cd "$(dirname "$0")/.." && pwd)
LAB_DIR=${FLOWTEST_LAB_DIR:-/run/flowtest-lab}
[ -f "$LAB_DIR/state/up" ] || { echo "the lab is not up: run lab/up" >&2; exit 2; }
# FLOWTEST_BIN: measure that binary instead of building the release one (e.g. a profiling build).
if [[ -n ${FLOWTEST_BIN:-} ]]; then
  BIN=$(realpath "$FLOWTEST_BIN")
else
  (cd "$REPO" && cargo build --release --quiet --bin flowtest)
  BIN=$REPO/target/release/flowtest
fi
OUT=$(mktemp -d /tmp/canary-footprint.XXXXXX)
PID=
cleanup() {
  if [[ -n $PID ]] && kill -0 "$PID" 2>/dev/null; then
    kill -KILL "$PID" 2>/dev/null || true
  fi
  rm -rf "$OUT"
}
trap cleanup EXIT

# The lab's configuration with a private state directory and 20 scenarios every minute.
sed "s|^state_dir = .*|state_dir = \"$OUT/state\"|" "$REPO/lab/flowtest.toml" > "$OUT/flowtest.toml"
grep -q "^state_dir = \"$OUT/state\"" "$OUT/flowtest.toml" || { echo "lab/flowtest.toml changed shape" >&2; exit 2; }
printf '\n[canary]\nlocation = "footprint"\njitter = "55s"\ngrace = "30s"\n' >> "$OUT/flowtest.toml"
mkdir "$OUT/scenarios"
bases=(lab-inbound lab-outbound lab-provider-inbound lab-sendgrid-inbound)
for i in $(seq 1 $SCENARIOS); do
  base=${bases[$(((i - 1) % ${#bases[@]}))]}
  name=$(printf 'footprint-%02d-%s' "$i" "$base")
  sed -e "s|^name = \"$base\"|name = \"$name\"\nevery = \"1m\"|" "$REPO/lab/scenarios/$base.toml" \
    > "$OUT/scenarios/$name.toml"
  grep -q "^every = \"1m\"" "$OUT/scenarios/$name.toml" || { echo "$base.toml: no name line" >&2; exit 2; }
done

PORT=$((20000 + $$ % 40000))
# lab/run execs (ip netns exec, unshare, bash -c exec): the background PID becomes the canary's.
"$REPO/lab/run" "$BIN" --config "$OUT/flowtest.toml" --log-format json canary \
  --listen "127.0.0.1:$PORT" > "$OUT/canary.log" 2>&1 &
PID=$!
for _ in $(seq 50); do
  [[ $(readlink "/proc/$PID/exe" 2>/dev/null) == "$BIN" ]] && break
  sleep 0.1
done
[[ $(readlink "/proc/$PID/exe" 2>/dev/null) == "$BIN" ]] || { echo "the canary did not start:" >&2; cat "$OUT/canary.log" >&2; exit 2; }

TICK=$(getconf CLK_TCK)
BOOT_TIME=$(awk '/^btime/ {print $2}' /proc/stat)
# Fields after the command name (which may contain spaces): utime is 14, stime 15, starttime 22.
cpu_ticks() { sed 's/^.*) //' "/proc/$PID/stat" | awk '{print $12 + $13}'; }
start_secs() { sed 's/^.*) //' "/proc/$PID/stat" | awk -v t="$TICK" -v b="$BOOT_TIME" '{printf "%.2f", b + $20 / t}'; }
hwm_kb() { awk '/^VmHWM/ {print $2}' "/proc/$PID/status"; }
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$PID/status"; }
# The peak: Linux's VmHWM can read lower than an RSS seen before it (its high-water mark is not
# raised when pages go back through madvise, as the allocator returns them), so every sample's
# RSS counts too.
PEAK_KB=0
note_peak() { local k; for k in "$@"; do ((k > PEAK_KB)) && PEAK_KB=$k; done; return 0; }

echo "canary pid $PID, $SCENARIOS scenarios every 1 m, running $MINUTES min (samples every 60 s)"
printf '%6s %10s %10s %12s\n' minute "RSS KB" "HWM KB" "CPU % (avg)"
for m in $(seq 1 "$MINUTES"); do
  sleep 60
  kill -0 "$PID" 2>/dev/null || { echo "the canary exited early:" >&2; tail -20 "$OUT/canary.log" >&2; exit 2; }
  now=$(date +%s.%N)
  pct=$(awk -v c="$(cpu_ticks)" -v t="$TICK" -v s="$(start_secs)" -v n="$now" 'BEGIN {printf "%.3f", 100 * c / t / (n - s)}')
  rss=$(rss_kb); hwm=$(hwm_kb)
  note_peak "$rss" "$hwm"
  printf '%6s %10s %10s %12s\n' "$m" "$rss" "$hwm" "$pct"
done

# Final figures before stopping it.
now=$(date +%s.%N)
ticks=$(cpu_ticks)
started=$(start_secs)
note_peak "$(hwm_kb)" "$(rss_kb)"
hwm=$PEAK_KB
metrics=$("$REPO/lab/run" curl -s "http://127.0.0.1:$PORT/metrics" || true)
kill -TERM "$PID"
for _ in $(seq 60); do kill -0 "$PID" 2>/dev/null || break; sleep 1; done
probes=$(awk '/^flowtest_probes_total\{/ {s += $NF} END {print s + 0}' <<< "$metrics")
delivered=$(awk '/^flowtest_probes_total\{/ && /status="delivered"/ {s += $NF} END {print s + 0}' <<< "$metrics")
wall=$(awk -v n="$now" -v s="$started" 'BEGIN {printf "%.1f", n - s}')
cpu_s=$(awk -v c="$ticks" -v t="$TICK" 'BEGIN {printf "%.2f", c / t}')
cpu_pct=$(awk -v c="$cpu_s" -v w="$wall" 'BEGIN {printf "%.3f", 100 * c / w}')
hwm_mb=$(awk -v k="$hwm" 'BEGIN {printf "%.1f", k / 1024}')
rss_ok=$([[ $hwm -le $RSS_TARGET_KB ]] && echo yes || echo NO)
cpu_ok=$(awk -v p="$cpu_pct" -v t="$CPU_TARGET_PCT" 'BEGIN {print (p <= t) ? "yes" : "NO"}')

echo
echo "| measure | flowtest canary, $SCENARIOS scenarios every 1 m, $MINUTES min | target | met? |"
echo "|---|---|---|---|"
echo "| peak RSS (VmHWM, or a higher RSS sample) | $hwm_mb MB | <= 30 MB | $rss_ok |"
echo "| CPU, (utime+stime) / wall | $cpu_pct % of a core ($cpu_s s over $wall s) | <= $CPU_TARGET_PCT % | $cpu_ok |"
echo "| probes judged (delivered) | $probes ($delivered) | $((SCENARIOS * MINUTES)) scheduled | - |"
# Verdicts other than delivered, by scenario and status, so a failing path is seen at once.
awk '/^flowtest_probes_total\{/ && !/status="delivered"/ {
  match($0, /scenario="[^"]*"/); sc = substr($0, RSTART + 10, RLENGTH - 11)
  match($0, /status="[^"]*"/); st = substr($0, RSTART + 8, RLENGTH - 9)
  print "  not delivered: " sc " " st " x" $NF }' <<< "$metrics"
if ((probes == 0)); then
  echo "no probe was judged: the run says nothing" >&2
  tail -20 "$OUT/canary.log" >&2
  exit 2
fi
[[ $rss_ok == yes && $cpu_ok == yes ]]
