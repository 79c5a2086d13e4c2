#!/bin/bash
# Scenario "large": GET of one 64 KiB value, then of one 1 MiB value, over
# 64 keep-alive connections: the answer bytes per second (wrk's
# Transfer/sec) and the server's largest RssAnon meanwhile (a server that
# copies each value into a per-connection buffer shows it here). Run by
# bench/run.sh, or alone from the repository root.
set -u
cd "$(dirname "$0")/.." || exit 1
. bench/lib.sh
bench_setup
bench_scenario large

secs=${BENCH_LARGE_SECS:-5}
conns=${BENCH_WRK_CONNS}

port=$(next_port)
node_start large "${port}" ROLE=primary RECOVER_WAIT_MS=0 FSYNC=no \
  MAX_VALUE_BYTES=1048576
url=http://127.0.0.1:${port}
wait_ready "${url}" 20
rows=()
for size in 65536 1048576; do
  label=$((size / 1024))KiB
  [ "${size}" -lt 1048576 ] || label=1MiB
  put_file "${url}" "v${size}" "$(value_file "${size}")"
  bench_log "large: GET of ${label}, wrk -c${conns} for ${secs} s"
  rss_start "$(node_pid large)" "${BENCH_OUT}/large-${size}.rss"
  wrk_server "${BENCH_OUT}/large-${size}.wrk" "$(node_pid large)" \
    -t"${BENCH_WRK_THREADS}" -c"${conns}" -d"${secs}s" --latency \
    "${url}/kv/v${size}"
  monitor_stop
  r=${WRK}
  bench_log "large: ${label}: ${r}"
  wrk_check "${r}" "GET of ${label}"
  rss=$(rss_max "${BENCH_OUT}/large-${size}.rss")
  bench_put "mbs_${size}" "$(kv_field mbs <<<"${r}")"
  bench_put "rps_${size}" "$(kv_field rps <<<"${r}")"
  bench_put "rss_kib_${size}" "${rss}"
  rows+=("| ${label} | $(kv_field mbs <<<"${r}") | $(kv_field rps <<<"${r}") | $(kv_field p50_ms <<<"${r}") | $(kv_field p99_ms <<<"${r}") | $(kv_field cpu_pct <<<"${r}") | ${rss} |")
done
node_stop large

bench_md "## GET of large values" '' \
  "wrk \`-t${BENCH_WRK_THREADS} -c${conns} -d${secs}s --latency\`, one key each, \`FSYNC=no\`. MB/s is wrk's Transfer/sec (answer heads and bodies) in 10^6 bytes; RssAnon is the server's largest anonymous resident memory, sampled every 0.1 s during the run. The issue sets no target; values served straight from the mapping should approach the loopback's copy speed." '' \
  '| value | MB/s | requests/s | p50 ms | p99 ms | server CPU % | max RssAnon KiB |' \
  '|---|---:|---:|---:|---:|---:|---:|' \
  "${rows[@]}"
bench_md_commands
bench_summary \
  "GET 64 KiB: $(bench_get large mbs_65536) MB/s ($(bench_get large rps_65536) req/s), GET 1 MiB: $(bench_get large mbs_1048576) MB/s ($(bench_get large rps_1048576) req/s); max RssAnon $(bench_get large rss_kib_65536) / $(bench_get large rss_kib_1048576) KiB"
