#!/bin/bash
# Scenario "put": PUT throughput on the primary, 100-byte values to
# distinct keys, with FSYNC=no, everysec and always, each first with no
# replica, then with two attached (same wrk parameters), and how long the
# replicas take to reach the primary's seq once the load stops; then
# FSYNC=always with one client, against the 64 of the run before: group
# commit, with the writes each fdatasync made durable (from /metrics).
# The PUT/GET target compares figures this machine's noise moves by a
# fifth from one minute to the next, so FSYNC=no with 2 replicas runs
# BENCH_PUT_PAIRS times (3), each right after a GET run like scenario
# get's (a 100-byte value, 64 connections, on its own server started here),
# and the figure is the median of the pairs' ratios, as GET/nginx is.
# Records rps_FSYNC_REPLICAS (rps_no_2, the pairs' median, for scenario
# lag) and rps_always_1c for later scenarios. Run by bench/run.sh, or
# alone from the repository root.
set -u
cd "$(dirname "$0")/.." || exit 1
. bench/lib.sh
bench_setup
bench_scenario put

secs=${BENCH_PUT_SECS:-5}
pairs=${BENCH_PUT_PAIRS:-3}
rows=()
pair_rows=()
pair_ratios=()
pair_puts=()

# put_run FSYNC REPLICAS CONNS KEY: one wrk run against a fresh cluster;
# its figures go to KEY (rps_KEY, p50_ms_KEY, ...) and a row to rows.
put_run() {
  local fsync=$1 reps=$2 conns=$3 key=$4 out=${BENCH_OUT}/put-$4 r conv=-
  local keys answers lagw=- lagms=- a rk full f0 f1 per=-
  bench_log "put: FSYNC=${fsync}, ${reps} replicas, ${conns} clients"
  cluster_start "put-${key}" "${reps}" FSYNC="${fsync}"
  monitor_start "${PRIMARY_URL}" "${out}.ready"
  bench_log "put: wrk -c${conns} for ${secs} s"
  f0=$(metric "${PRIMARY_URL}" kvstore_fsyncs_total)
  wrk_server "${out}.wrk" "$(node_pid "put-${key}-primary")" \
    -t"${BENCH_WRK_THREADS}" -c"${conns}" -d"${secs}s" --latency \
    -s bench/put.lua "${PRIMARY_URL}" -- 100
  r=${WRK}
  f1=$(metric "${PRIMARY_URL}" kvstore_fsyncs_total)
  if [ "${reps}" -gt 0 ]; then
    # Right after the load: time until every replica's seq is the primary's.
    bench_log "put: waiting for the replicas to converge"
    run_lag "${BENCH_OUT}/converge.out" converge 60 "${PRIMARY_ADDR}" \
      "${REPLICA_ADDRS[@]}"
    conv=$(kv_field converge_ms <"${BENCH_OUT}/converge.out")
    [ -n "${conv}" ] ||
      bench_note "convergence failed: $(cat "${BENCH_OUT}/converge.out")"
  fi
  monitor_stop
  bench_log "put: ${r}"
  wrk_check "${r}" "PUT with FSYNC=${fsync}, ${reps} replicas, ${conns} clients"
  keys=$(json_num "$(http_get "${PRIMARY_URL}/ready")" keys)
  # wrk does not count the answers still in flight when it stops: up to
  # one per connection more keys than answers is expected.
  answers=$(kv_field requests <<<"${r}")
  # Group commit at work: the writes each fdatasync made durable (with
  # the other policies the count is mostly compaction's syncs).
  [ "${fsync}" = always ] && [ "${f1:-0}" -gt "${f0:-0}" ] &&
    per=$(ratio "${answers}" $((f1 - f0)) 1)
  if [ "${keys}" -lt "${answers}" ] ||
    [ "${keys}" -gt $((answers + conns)) ]; then
    bench_note "FSYNC=${fsync} with ${reps} replicas: wrk counted ${answers} answers; the primary holds ${keys} keys"
  fi
  if [ "${reps}" -gt 0 ]; then
    lagw=$(monitor_max "${out}.ready" lag_writes)
    lagms=$(monitor_max "${out}.ready" lag_ms)
    for a in "${REPLICA_ADDRS[@]}"; do
      rk=$(json_num "$(http_get "http://${a}/ready")" keys)
      [ "${rk}" = "${keys}" ] ||
        bench_note "replica ${a} holds ${rk} keys after converging, the primary ${keys}"
    done
    full=$(monitor_max "${out}.ready" full_syncs)
    [ "${full:-0}" -le 1 ] ||
      bench_note "a replica needed ${full} full syncs during the run"
  fi
  cluster_stop
  bench_put "rps_${key}" "$(kv_field rps <<<"${r}")"
  bench_put "p50_ms_${key}" "$(kv_field p50_ms <<<"${r}")"
  bench_put "p99_ms_${key}" "$(kv_field p99_ms <<<"${r}")"
  bench_put "converge_ms_${key}" "${conv}"
  bench_put "per_fsync_${key}" "${per}"
  rows+=("| ${fsync} | ${reps} | ${conns} | $(kv_field rps <<<"${r}") | $(kv_field p50_ms <<<"${r}") | $(kv_field p99_ms <<<"${r}") | $(kv_field max_ms <<<"${r}") | $(kv_field cpu_pct <<<"${r}") | ${per} | ${lagw:--} | ${lagms:--} | ${conv} |")
}

# get_run PAIR: scenario get's load against the put-get server; sets g.
get_run() {
  bench_log "put: pair $1/${pairs}: GET, wrk -c${BENCH_WRK_CONNS} for ${secs} s"
  wrk_server "${BENCH_OUT}/put-get-$1.wrk" "$(node_pid put-get)" \
    -t"${BENCH_WRK_THREADS}" -c"${BENCH_WRK_CONNS}" -d"${secs}s" --latency \
    "${get_url}/kv/v100"
  wrk_check "${WRK}" "GET, pair $1"
  g=$(kv_field rps <<<"${WRK}")
}

get_port=$(next_port)
node_start put-get "${get_port}" ROLE=primary RECOVER_WAIT_MS=0 FSYNC=no
get_url=http://127.0.0.1:${get_port}
wait_ready "${get_url}" 20
put_file "${get_url}" v100 "$(value_file 100)"
for fsync in no everysec always; do
  for reps in 0 2; do
    if [ "${fsync}" != no ] || [ "${reps}" = 0 ]; then
      put_run "${fsync}" "${reps}" "${BENCH_WRK_CONNS}" "${fsync}_${reps}"
      continue
    fi
    for ((i = 1; i <= pairs; i++)); do
      get_run "${i}"
      put_run no 2 "${BENCH_WRK_CONNS}" "no_2_${i}"
      p=$(bench_get put "rps_no_2_${i}")
      pair_puts+=("${p}")
      pair_ratios+=("$(ratio "${p}" "${g}")")
      pair_rows+=("| ${i} | ${g} | ${p} | ${pair_ratios[i - 1]} |")
    done
  done
done
node_stop put-get
put_run always 0 1 always_1c

no2=$(median "${pair_puts[@]}")
bench_put rps_no_2 "${no2}"
no0=$(bench_get put rps_no_0)
rep_pct=$(ratio "${no2}" "${no0}" 2)
vs_get=$(median "${pair_ratios[@]}")
group=$(ratio "$(bench_get put rps_always_0)" "$(bench_get put rps_always_1c)" 1)
v_get=$(bench_target "PUT (FSYNC=no, 2 replicas) / GET, median of ${pairs} pairs" "${vs_get}" '>=' 0.7)
one_ms=$(awk -v r="$(bench_get put rps_always_1c)" 'BEGIN { printf "%.3f", 1000 / r }')
v_group=$(bench_target "FSYNC=always: ${BENCH_WRK_CONNS} clients / 1 client" "${group}" '>=' 30)
v_rep=$(bench_target "PUT (FSYNC=no): 2 replicas / none" "${rep_pct}" '>=' 0.8)
bench_put vs_get "${vs_get}"
bench_put group_commit "${group}"

bench_md "## PUT throughput on the primary" '' \
  "100-byte values, every key new; wrk \`-t${BENCH_WRK_THREADS} -c<clients> -d${secs}s --latency -s bench/put.lua\` against a fresh primary for each row, alone or with 2 replicas attached and streaming (all on the server CPU). server CPU is the primary's alone. Lag columns: the largest \`lag_writes\` and \`lag_ms\` of any replica in the primary's \`/ready\`, sampled every 0.5 s; converge: ms from the end of the load until the replicas reached the primary's seq (polled every 1 ms)." '' \
  '| FSYNC | replicas | clients | requests/s | p50 ms | p99 ms | max ms | server CPU % | writes per fdatasync | max lag_writes | max lag_ms | converge ms |' \
  '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|' \
  "${rows[@]}" '' \
  "The rows \`no\` with 2 replicas are the PUT halves of these pairs, each run right after a GET of a 100-byte value over ${BENCH_WRK_CONNS} connections (scenario get's load, on a server of its own that idles meanwhile):" '' \
  '| pair | GET requests/s | PUT (`no`, 2 replicas) requests/s | PUT / GET |' \
  '|---:|---:|---:|---:|' \
  "${pair_rows[@]}" '' \
  "- PUT (\`FSYNC=no\`, 2 replicas) / GET, median of ${pairs} pairs: **${vs_get}** (target: at least 0.7): **${v_get}**. PUT with 2 replicas, median of the pairs: ${no2} requests/s." \
  "- Group commit, \`FSYNC=always\`: ${BENCH_WRK_CONNS} clients do **${group}×** the requests/s of one (target: at least 30×): **${v_group}**. Each fdatasync made $(bench_get put per_fsync_always_0) writes durable for ${BENCH_WRK_CONNS} clients, 1 for one. One client's rate is bounded by this disk's flush (${one_ms} ms a write, flush included), ${BENCH_WRK_CONNS} clients' by the CPU: 30× one client would be $(awk -v r="$(bench_get put rps_always_1c)" 'BEGIN { printf "%d", r * 30 }') requests/s, $(ratio "$(awk -v r="$(bench_get put rps_always_1c)" 'BEGIN { printf "%d", r * 30 }')" "${no0}") times what the server does with no flush at all (\`FSYNC=no\`, ${no0})." \
  "- \`FSYNC=no\` with 2 replicas: **${rep_pct}** of the rate without (aim of the replication work: at least 0.8): **${v_rep}**."
bench_md_commands
bench_summary \
  "PUT 100 B, ${BENCH_WRK_CONNS} clients, req/s by FSYNC no/everysec/always: 0 replicas ${no0} / $(bench_get put rps_everysec_0) / $(bench_get put rps_always_0); 2 replicas ${no2} / $(bench_get put rps_everysec_2) / $(bench_get put rps_always_2)" \
  "PUT (no, 2 replicas) / GET: ${vs_get} median of pairs (${pair_ratios[*]}); target >= 0.7: ${v_get}" \
  "FSYNC=always, ${BENCH_WRK_CONNS} clients / 1 client ($(bench_get put rps_always_1c) req/s): ${group}x; target >= 30: ${v_group}" \
  "FSYNC=no, 2 replicas / none: ${rep_pct}; aim >= 0.8: ${v_rep}"
