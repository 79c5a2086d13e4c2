#!/bin/bash
# Scenario "lag": replication lag at half of the maximum load. A primary
# with 2 replicas (FSYNC=no) takes PUTs from wrk throttled to about half
# the rate that scenario "put" measured with 2 replicas, while bench/lag
# PUTs its own unique keys and times how long each takes, from the
# primary's 201, to be readable on replica 1. Also the same probe with no
# load, as a baseline. Run by bench/run.sh, or alone from the repository
# root (then it measures the maximum rate itself, briefly). BENCH_LAG_RATE
# sets the throttled rate instead of half the maximum.
set -u
cd "$(dirname "$0")/.." || exit 1
. bench/lib.sh
bench_setup
bench_scenario lag

conns=${BENCH_WRK_CONNS}
secs=${BENCH_LAG_SECS:-16}      # the throttled run
samples=${BENCH_LAG_SAMPLES:-1000}
interval_ms=${BENCH_LAG_INTERVAL_MS:-10}

cluster_start lag 2 FSYNC=no

max=$(bench_get put rps_no_2)
if [ -z "${max}" ]; then
  bench_log "lag: no rate from scenario put; measuring it for 3 s"
  run_wrk "${BENCH_OUT}/lag-max.wrk" -t"${BENCH_WRK_THREADS}" -c"${conns}" \
    -d3s --latency -s bench/put.lua "${PRIMARY_URL}" -- 100
  max=$(kv_field rps <<<"$(wrk_parse "${BENCH_OUT}/lag-max.wrk")")
fi
target=${BENCH_LAG_RATE:-$((max / 2))}
bench_put max_rps "${max}"
bench_put target_rps "${target}"

# Baseline: the probe alone, no other load.
bench_log "lag: probe with no load"
run_lag "${BENCH_OUT}/lag-idle.out" sample "${PRIMARY_ADDR}" \
  "${REPLICA_ADDRS[0]}" 200 2 10 || bench_note "idle probe: $(cat "${BENCH_OUT}/lag-idle.out")"
idle=$(cat "${BENCH_OUT}/lag-idle.out")

# The real run: wrk throttled in the background, the probe meanwhile
# (starting 2 s in, ending before wrk does).
wrk_args=(-t"${BENCH_WRK_THREADS}" -c"${conns}" -d"${secs}s" --latency
  -s bench/put.lua "${PRIMARY_URL}" -- 100 "${target}" "${BENCH_WRK_THREADS}")
monitor_start "${PRIMARY_URL}" "${BENCH_OUT}/lag.ready"
bench_log "lag: wrk throttled to ${target} req/s for ${secs} s, probing replica 1"
run_wrk "${BENCH_OUT}/lag.wrk" "${wrk_args[@]}" &
wrk_job=$!
sleep 2
run_lag "${BENCH_OUT}/lag.out" sample "${PRIMARY_ADDR}" "${REPLICA_ADDRS[0]}" \
  "${samples}" "${interval_ms}" $((secs - 3)) "${BENCH_OUT}/lag-samples.txt" ||
  bench_note "probe under load: $(cat "${BENCH_OUT}/lag.out")"
kill -0 "${wrk_job}" 2>/dev/null ||
  bench_note "wrk had stopped before the probe finished: some samples had no load"
wait "${wrk_job}" || bench_die "throttled wrk failed"
monitor_stop
r=$(wrk_parse "${BENCH_OUT}/lag.wrk")
l=$(cat "${BENCH_OUT}/lag.out")
bench_log "lag: wrk: ${r}"
bench_log "lag: probe: ${l}"
cluster_stop

rate=$(kv_field rps <<<"${r}")
for k in p50_ms p90_ms p99_ms max_ms samples timeouts; do
  bench_put "${k}" "$(kv_field "${k}" <<<"${l}")"
done
bench_put rps "${rate}"
[ "$(kv_field non2xx <<<"${r}")" -eq 0 ] ||
  bench_note "$(kv_field non2xx <<<"${r}") non-2xx answers to the throttled PUTs"
[ "$(kv_field sock_errors <<<"${r}")" -eq 0 ] ||
  bench_note "wrk counted $(kv_field sock_errors <<<"${r}") socket errors in the throttled run"
for k in timeouts errors non201; do
  [ "$(kv_field "${k}" <<<"${l}")" = 0 ] ||
    bench_note "probe: ${k}=$(kv_field "${k}" <<<"${l}")"
done

row() { # row LABEL RATE PROBE_LINE
  printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |' "$1" "$2" \
    "$(kv_field samples <<<"$3")" "$(kv_field p50_ms <<<"$3")" \
    "$(kv_field p90_ms <<<"$3")" "$(kv_field p99_ms <<<"$3")" \
    "$(kv_field max_ms <<<"$3")" "$(kv_field timeouts <<<"$3")" \
    "$(kv_field put_p50_ms <<<"$3")" "$(kv_field get_rtt_ms <<<"$3")"
}
bench_md "## Replication lag at half load" '' \
  "A primary with 2 replicas, \`FSYNC=no\`. wrk PUTs 100-byte values to new keys, throttled by the Lua \`delay()\` (a fixed schedule per thread) to half of the 2-replica maximum (${max} req/s), so ${target} req/s; it did **${rate} req/s** (p50 $(kv_field p50_ms <<<"${r}") ms, p99 $(kv_field p99_ms <<<"${r}") ms). Meanwhile \`bench/lag\` PUTs a unique key to the primary every ${interval_ms} ms and, from the moment the 201 arrives, GETs it from replica 1 on its own keep-alive connection until the value is there. Lag in ms:" '' \
  '| load | wrk req/s | samples | p50 | p90 | p99 | max | timeouts | probe PUT p50 | GET round trip |' \
  '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|' \
  "$(row 'none' 0 "${idle}")" \
  "$(row 'half' "${rate}" "${l}")" '' \
  "- At half load: lag p50 **$(kv_field p50_ms <<<"${l}") ms**, p99 **$(kv_field p99_ms <<<"${l}") ms** (aim: p99 at most 10 ms)." \
  "- Largest \`lag_writes\` / \`lag_ms\` in the primary's \`/ready\` during the run (every 0.5 s): $(monitor_max "${BENCH_OUT}/lag.ready" lag_writes) / $(monitor_max "${BENCH_OUT}/lag.ready" lag_ms)." \
  "- A lag includes up to one GET round trip (last column, mean) of polling granularity."
bench_md_commands
bench_summary \
  "lag at half load (${rate} of ${max} req/s): p50 $(kv_field p50_ms <<<"${l}") ms, p90 $(kv_field p90_ms <<<"${l}") ms, p99 $(kv_field p99_ms <<<"${l}") ms, max $(kv_field max_ms <<<"${l}") ms over $(kv_field samples <<<"${l}") samples (aim p99 <= 10 ms)" \
  "lag with no load: p50 $(kv_field p50_ms <<<"${idle}") ms, p99 $(kv_field p99_ms <<<"${idle}") ms"
