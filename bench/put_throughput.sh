#!/bin/bash
# Scenario "put": PUT throughput on the primary, 100-byte values to
# distinct keys, FSYNC=no, first with no replica, then with two attached
# (same wrk parameters); then how long the replicas take to reach the
# primary's seq once the load stops. Records rps0, rps2 (and more) for
# later scenarios. Run by bench/run.sh, or alone from the repository root.
set -u
cd "$(dirname "$0")/.." || exit 1
. bench/lib.sh
bench_setup
bench_scenario put

wrk_args=(-t"${BENCH_WRK_THREADS}" -c"${BENCH_WRK_CONNS}"
  -d"${BENCH_WRK_SECS}s" --latency -s bench/put.lua)
rows=()

for reps in 0 2; do
  bench_log "put: primary with ${reps} replicas, FSYNC=no"
  cluster_start "put${reps}" "${reps}" FSYNC=no
  out=${BENCH_OUT}/put${reps}.wrk
  monitor_start "${PRIMARY_URL}" "${BENCH_OUT}/put${reps}.ready"
  bench_log "put: wrk ${wrk_args[*]} for ${BENCH_WRK_SECS} s"
  run_wrk "${out}" "${wrk_args[@]}" "${PRIMARY_URL}" -- 100
  conv=
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
  r=$(wrk_parse "${out}")
  ready=$(http_get "${PRIMARY_URL}/ready")
  seq=$(json_num "${ready}" seq)
  keys=$(json_num "${ready}" keys)
  rps=$(kv_field rps <<<"${r}")
  bench_put "rps${reps}" "${rps}"
  bench_put "p50_ms${reps}" "$(kv_field p50_ms <<<"${r}")"
  bench_put "p99_ms${reps}" "$(kv_field p99_ms <<<"${r}")"
  bench_log "put: ${reps} replicas: ${r}"
  non2xx=$(kv_field non2xx <<<"${r}")
  sockerr=$(kv_field sock_errors <<<"${r}")
  [ "${non2xx}" -eq 0 ] ||
    bench_note "${non2xx} non-2xx answers to PUT with ${reps} replicas"
  [ "${sockerr}" -eq 0 ] ||
    bench_note "wrk counted ${sockerr} socket errors with ${reps} replicas: $(grep 'Socket errors' "${out}" | sed 's/^ *//')"
  # wrk does not count the answers still in flight when it stops: up to
  # one per connection more keys than answers is expected.
  answers=$(kv_field requests <<<"${r}")
  if [ "${keys}" -lt "${answers}" ] ||
    [ "${keys}" -gt $((answers + BENCH_WRK_CONNS)) ]; then
    bench_note "with ${reps} replicas wrk counted ${answers} answers; the primary holds ${keys} keys (seq ${seq})"
  fi
  lagw=-
  lagms=-
  if [ "${reps}" -gt 0 ]; then
    lagw=$(monitor_max "${BENCH_OUT}/put${reps}.ready" lag_writes)
    lagms=$(monitor_max "${BENCH_OUT}/put${reps}.ready" lag_ms)
    bench_put converge_ms "${conv}"
    bench_put max_lag_writes "${lagw}"
    bench_put max_lag_ms "${lagms}"
    for a in "${REPLICA_ADDRS[@]}"; do
      rk=$(json_num "$(http_get "http://${a}/ready")" keys)
      [ "${rk}" = "${keys}" ] ||
        bench_note "replica ${a} holds ${rk} keys after converging, the primary ${keys}"
    done
    full=$(monitor_max "${BENCH_OUT}/put${reps}.ready" full_syncs)
    [ "${full:-0}" -le 1 ] ||
      bench_note "a replica needed ${full} full syncs during the run"
  fi
  rows+=("| ${reps} | ${rps} | $(kv_field p50_ms <<<"${r}") | $(kv_field p99_ms <<<"${r}") | $(kv_field max_ms <<<"${r}") | $(kv_field requests <<<"${r}") | ${non2xx} | ${sockerr} | ${lagw} | ${lagms} |")
  cluster_stop
done

rps0=$(bench_get put rps0)
rps2=$(bench_get put rps2)
ratio=$(awk -v a="${rps2}" -v b="${rps0}" \
  'BEGIN { if (b > 0) printf "%.0f", 100 * a / b; else print "-" }')
bench_put ratio_pct "${ratio}"

bench_md "## PUT throughput on the primary" '' \
  "100-byte values, every key new, \`FSYNC=no\`; wrk \`-t${BENCH_WRK_THREADS} -c${BENCH_WRK_CONNS} -d${BENCH_WRK_SECS}s\` against a fresh primary, first alone, then with 2 replicas attached and streaming." '' \
  '| replicas | requests/s | p50 ms | p99 ms | max ms | requests | non-2xx | socket errors | max lag_writes | max lag_ms |' \
  '|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|' \
  "${rows[@]}" '' \
  "- With 2 replicas: **${ratio}%** of the throughput without (aim: at least 80%)." \
  "- Convergence: the replicas reached the primary's seq **$(bench_get put converge_ms) ms** after wrk stopped (polled every 1 ms)." \
  "- max lag_writes / lag_ms: the largest \`lag_writes\` and \`lag_ms\` of any replica in the primary's \`/ready\`, sampled every 0.5 s during the run."
bench_md_commands
bench_summary \
  "PUT, 0 replicas: ${rps0} req/s, p50 $(bench_get put p50_ms0) ms, p99 $(bench_get put p99_ms0) ms" \
  "PUT, 2 replicas: ${rps2} req/s, p50 $(bench_get put p50_ms2) ms, p99 $(bench_get put p99_ms2) ms (${ratio}% of 0 replicas; aim >= 80%)" \
  "convergence after the load: $(bench_get put converge_ms) ms"
