#!/usr/bin/env bash
# Issue 18's targets for edge sites, measured on this machine (docs/benchmarks.md "Edge sites to central"):
#  1. edge-to-central latency in steady state: two sites of CARS cars each at 1 s (each site its own
#     mosquitto, an `up --mqtt ADDR --no-sim --uplink ...` edge and a `sim --mqtt` car process), central Kafka
#     with twin and sink roles (--sites). For STEADY seconds after WARMUP, kcat reads both sites' telemetry on
#     central as it arrives; a record's latency is the moment kcat prints it minus its Kafka timestamp, which
#     the uplink keeps from the edge's log (the moment the edge's process stage wrote it). So it covers spool,
#     sender, WAN (loopback here) and central Kafka; the edge's own car-to-store latency is its summary's.
#  2. catch-up after an outage: central's broker is stopped (SIGSTOP) for OUTAGE seconds and continued; the
#     catch-up rate is what the edges' senders moved to central a second (fleettwin_uplink_sent_total) from
#     the end of the outage until both spools were empty, over the live rate (the same counter during the
#     steady phase). Live traffic goes on meanwhile, so the drain rate is the catch-up rate minus the live one.
#
#   bench/edge.sh [BIN]   env: CARS (2000) WARMUP (60) STEADY (120) OUTAGE (600) OUT (a temp dir)
# Prints the figures and leaves the logs in OUT. Stops everything it started (trap).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
bin=${1:-$repo/build/release/src/app/fleettwin}
cars=${CARS:-2000}
warmup=${WARMUP:-60}
steady=${STEADY:-120}
outage=${OUTAGE:-600}
out=${OUT:-$(mktemp -d /tmp/fleettwin-bench-edge.XXXXXX)}
svc=$repo/scripts/services
mkdir -p "$out"
pids=()
brokers=()
kafka=""
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  for b in "${brokers[@]}"; do "$svc/mosquitto" stop "$b" >/dev/null 2>&1 || true; done
  [ -n "$kafka" ] && { kill -CONT "$(kafka_pid)" 2>/dev/null || true; "$svc/kafka" stop "$kafka" >/dev/null 2>&1 || true; }
}
trap cleanup EXIT
kafka_pid() {
  cat "${FLEETTWIN_SERVICES_STATE:-${TMPDIR:-/tmp}/fleettwin-services-$(id -u)}/kafka/${kafka##*:}/pid"
}
now_ms() { date +%s%3N; }
# The edges' /metrics counter or gauge NAME, summed over both sites.
metric_sum() {
  local total=0 v s
  for s in depot-a depot-b; do
    v=$(curl -sf -H "Authorization: Bearer $(cat "$out/$s/api-token")" "$(api_of "$s")/metrics" |
      awk -v n="$1" '$1 == n { printf "%.0f", $2 }')
    total=$((total + ${v:-0}))
  done
  echo "$total"
}
api_of() { grep -o 'api: serving http://[0-9.:]*' "$out/$1.log" | head -1 | sed 's/api: serving //'; }

kafka=$("$svc/kafka" start | tail -1)
"$bin" registry --listen 127.0.0.1:0 --data-dir "$out/registry" >"$out/registry.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do grep -q 'http://' "$out/registry.log" && break; sleep 0.2; done
registry=$(grep -o 'http://[0-9.:]*' "$out/registry.log" | head -1)
for role in twin sink; do
  "$bin" "$role" --kafka "$kafka" --schema-registry "$registry" --sites --data-dir "$out/central" \
    >"$out/$role.log" 2>&1 &
  pids+=($!)
done
# No first model during the run (ml.warmup): a training at each edge would take the machine's two cores.
printf 'ml:\n  warmup: 24h\n' >"$out/edge.yaml"
for site in depot-a depot-b; do
  mq=$(FLEETTWIN_MOSQUITTO_EXTRA_CONFIG="max_queued_messages 1000000" "$svc/mosquitto" start | tail -1)
  brokers+=("$mq")
  "$bin" --config "$out/edge.yaml" up --mqtt "$mq" --no-sim --data-dir "$out/$site" --http 127.0.0.1:0 \
    --registry-listen 127.0.0.1:0 --uplink "$kafka" --site "$site" --uplink-registry "$registry" \
    >"$out/$site.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 300); do grep -q 'msg/s' "$out/$site.log" && break; sleep 0.2; done
  printf 'sim:\n  id_prefix: %s-\n' "$site" >"$out/$site-cars.yaml"
  "$bin" --config "$out/$site-cars.yaml" sim --mqtt "$mq" --cars "$cars" --interval 1s --qos 1 \
    --failure-rate 0 >"$out/$site-cars.log" 2>&1 &
  pids+=($!)
done
echo "warm-up ${warmup} s: $((2 * cars)) cars at 1 s, kafka $kafka, logs in $out" >&2
sleep "$warmup"

# 1. Steady state.
sent0=$(metric_sum fleettwin_uplink_sent_total)
t0=$(now_ms)
kpids=()
for site in depot-a depot-b; do
  (timeout "$steady" kcat -u -C -b "$kafka" -t "$site.fleet.telemetry" -o end -X fetch.wait.max.ms=5 \
    -f '%T\n' 2>/dev/null | perl -MTime::HiRes=time -ne 'chomp; printf "%d\n", time() * 1000 - $_' \
    >"$out/latency-$site.txt") &
  kpids+=($!)
done
wait "${kpids[@]}" || true
sent1=$(metric_sum fleettwin_uplink_sent_total)
t1=$(now_ms)
live=$(((sent1 - sent0) * 1000 / (t1 - t0)))
sort -n "$out"/latency-*.txt >"$out/latency.txt"
n=$(wc -l <"$out/latency.txt")
pick() { sed -n "$(awk -v n="$n" -v q="$1" 'BEGIN { i = int(n * q); if (i < 1) i = 1; print i }')p" "$out/latency.txt"; }
echo "steady: $n telemetry records on central in ${steady} s; latency edge->central p50 $(pick 0.50) ms, p99 $(pick 0.99) ms, max $(tail -1 "$out/latency.txt") ms"
echo "live uplink rate: $live records/s (telemetry, twins, scores of both sites)"

# 2. Outage and catch-up.
kill -STOP "$(kafka_pid)"
echo "outage: central broker stopped for ${outage} s" >&2
sleep "$outage"
spooled=$(metric_sum fleettwin_uplink_spool_bytes)
kill -CONT "$(kafka_pid)"
c0=$(metric_sum fleettwin_uplink_sent_total)
t2=$(now_ms)
echo "outage over: $((spooled / 1000000)) MB spooled at both edges" >&2
while :; do
  sleep 2
  bytes=$(metric_sum fleettwin_uplink_spool_bytes)
  # Empty but for what the live traffic puts in between two sends.
  [ "$bytes" -lt 5000000 ] && break
done
c1=$(metric_sum fleettwin_uplink_sent_total)
t3=$(now_ms)
rate=$(((c1 - c0) * 1000 / (t3 - t2)))
echo "catch-up: $((c1 - c0)) records in $(((t3 - t2) / 1000)) s = $rate records/s, $(awk -v a="$rate" -v b="$live" 'BEGIN { printf "%.1f", a / b }')x the live rate (drain $(awk -v a="$rate" -v b="$live" 'BEGIN { printf "%.1f", (a - b) / b }')x)"
for site in depot-a depot-b; do grep -o 'acks pending [0-9]*' "$out/$site-cars.log" | tail -1 | sed "s/^/$site cars: /"; done
