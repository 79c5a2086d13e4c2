#!/bin/bash
# Scenario "conns": GET of a 100-byte value over 1,000 and then 5,000 open
# keep-alive connections (all busy), against the 64-connection figure of
# scenario get (measured here, once, when get did not run): the cost of
# many connections in one poll() loop. Also the server's largest RssAnon
# meanwhile. Both wrk and the server need more descriptors than the usual
# 1024: the soft limit is raised here (and the hard one too, as root).
# Run by bench/run.sh, or alone from the repository root.
set -u
cd "$(dirname "$0")/.." || exit 1
. bench/lib.sh
bench_setup
bench_scenario conns

secs=${BENCH_CONNS_SECS:-5}
counts=(1000 5000)
raise_nofile $((counts[-1] + 1024))

port=$(next_port)
node_start conns "${port}" ROLE=primary RECOVER_WAIT_MS=0 FSYNC=no \
  MAX_CONNS=$((counts[-1] + 100))
url=http://127.0.0.1:${port}
wait_ready "${url}" 20
put_file "${url}" v100 "$(value_file 100)"

base=$(bench_get get rps)
base_from="scenario get (median)"
if [ -z "${base}" ]; then
  bench_log "conns: no figure from scenario get; measuring ${BENCH_WRK_CONNS} connections for ${secs} s"
  wrk_server "${BENCH_OUT}/conns-base.wrk" "$(node_pid conns)" \
    -t"${BENCH_WRK_THREADS}" -c"${BENCH_WRK_CONNS}" -d"${secs}s" --latency \
    "${url}/kv/v100"
  base=$(kv_field rps <<<"${WRK}")
  base_from="measured here"
fi

rows=()
for n in "${counts[@]}"; do
  bench_log "conns: wrk -c${n} for ${secs} s"
  rss_start "$(node_pid conns)" "${BENCH_OUT}/conns-${n}.rss"
  wrk_server "${BENCH_OUT}/conns-${n}.wrk" "$(node_pid conns)" \
    -t"${BENCH_WRK_THREADS}" -c"${n}" -d"${secs}s" --latency "${url}/kv/v100"
  monitor_stop
  r=${WRK}
  bench_log "conns: ${n}: ${r}"
  wrk_check "${r}" "GET over ${n} connections"
  rps=$(kv_field rps <<<"${r}")
  bench_put "rps_${n}" "${rps}"
  bench_put "ratio_${n}" "$(ratio "${rps}" "${base}")"
  rows+=("| ${n} | ${rps} | $(ratio "${rps}" "${base}") | $(kv_field p50_ms <<<"${r}") | $(kv_field p99_ms <<<"${r}") | $(kv_field max_ms <<<"${r}") | $(kv_field sock_errors <<<"${r}") | $(kv_field cpu_pct <<<"${r}") | $(rss_max "${BENCH_OUT}/conns-${n}.rss") |")
done
node_stop conns

r5=$(bench_get conns ratio_5000)
verdict=$(bench_target "GET over 5,000 connections / over ${BENCH_WRK_CONNS}" "${r5}" '>=' 0.5)
bench_md "## Many connections" '' \
  "GET of one 100-byte value, wrk \`-t${BENCH_WRK_THREADS} -c<connections> -d${secs}s --latency\`, every connection busy, \`MAX_CONNS=$((counts[-1] + 100))\`. The ${BENCH_WRK_CONNS}-connection figure, ${base} req/s, is from ${base_from}. RssAnon: the server's largest, sampled every 0.1 s." '' \
  "| connections | requests/s | / ${BENCH_WRK_CONNS} connections | p50 ms | p99 ms | max ms | socket errors | server CPU % | max RssAnon KiB |" \
  '|---:|---:|---:|---:|---:|---:|---:|---:|---:|' \
  "${rows[@]}" '' \
  "- 5,000 connections: **${r5}** of the ${BENCH_WRK_CONNS}-connection rate (target: at least 0.5): **${verdict}**."
bench_md_commands
bench_summary \
  "GET over 1,000 / 5,000 connections: $(bench_get conns rps_1000) / $(bench_get conns rps_5000) req/s, $(bench_get conns ratio_1000) / ${r5} of ${base}" \
  "5,000 connections / ${BENCH_WRK_CONNS}: ${r5}; target >= 0.5: ${verdict}"
