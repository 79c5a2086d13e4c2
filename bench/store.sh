#!/bin/bash
# Scenario "store": a store of a million keys (BENCH_STORE_KEYS). bench/load
# PUTs them (100-byte values, pipelined), then overwrites every one
# BENCH_STORE_PASSES - 1 more times (2 by default). Then: the file's size
# against the live key and value bytes; the time from starting the server
# to its first answer on /health, on an empty store (the process alone)
# and on the 1M-key store after a clean shutdown (3 times) and after
# kill -9 (recovery: the log is replayed); and RssAnon, idle and with
# 1,000 connections open and busy. The server logs no open time, so the
# time to /health is the measure, polled by bench/load every 0.1 ms from
# before the server starts (health_watch). The
# store file is left in $BENCH_TMP/store-1m.db for scenario resync. Run by
# bench/run.sh, or alone from the repository root.
set -u
cd "$(dirname "$0")/.." || exit 1
. bench/lib.sh
bench_setup
bench_scenario store

keys=${BENCH_STORE_KEYS:-1000000}
passes=${BENCH_STORE_PASSES:-3}
lconns=${BENCH_LOAD_CONNS:-16}
depth=${BENCH_LOAD_DEPTH:-64}
rss_conns=1000
rss_secs=${BENCH_STORE_RSS_SECS:-3}
env=(ROLE=primary RECOVER_WAIT_MS=0 FSYNC=no)
port=$(next_port)
addr=127.0.0.1:${port}
url=http://${addr}
db=${BENCH_TMP}/store/kvstore.db

# opens WHAT: restart the server on its data 3 times; OPENS gets each time
# from its start to /health, OPEN_MS their median.
opens() {
  local i
  OPENS=()
  for i in 1 2 3; do
    NODE_KEEP=1 node_stop store
    health_watch "${addr}"
    NODE_KEEP=1 node_start store "${port}" "${env[@]}"
    health_wait
    OPENS+=("${HEALTH_MS}")
    bench_log "store: ${1} answered /health ${HEALTH_MS} ms after start"
  done
  OPEN_MS=$(median "${OPENS[@]}")
}

node_start store "${port}" "${env[@]}"
wait_ready "${url}" 20
opens "empty store"
empty_ms=${OPEN_MS}
empties=${OPENS[*]}

load_rows=()
monitor_start "${url}" "${BENCH_OUT}/store.ready"
for ((p = 1; p <= passes; p++)); do
  bench_log "store: pass ${p}/${passes}: PUT ${keys} keys"
  run_tool "${BENCH_OUT}/store-load.out" load put "${addr}" "${keys}" \
    "${lconns}" "${depth}" 100 k ||
    bench_die "loading failed: $(cat "${BENCH_OUT}/store-load.out")"
  r=$(cat "${BENCH_OUT}/store-load.out")
  bench_log "store: ${r}"
  [ "$(kv_field non2xx <<<"${r}")" = 0 ] ||
    bench_note "$(kv_field non2xx <<<"${r}") PUTs of pass ${p} were not answered 2xx"
  load_rows+=("pass ${p}: $(kv_field rps <<<"${r}")")
done
j=$(settle "${url}")
monitor_stop
live=$(json_num "${j}" data_bytes)
nkeys=$(json_num "${j}" keys)
peak=$(monitor_max "${BENCH_OUT}/store.ready" file_bytes)
[ "${nkeys}" = "${keys}" ] || bench_note "the store holds ${nkeys} keys, not ${keys}"

NODE_KEEP=1 node_stop store
# The store file and its index (format version 3; before, one file).
size=$(($(stat -c %s "${db}") + $(stat -c %s "${db}.idx")))
alloc=$(($(stat -c %b "${db}") * $(stat -c %B "${db}") +
  $(stat -c %b "${db}.idx") * $(stat -c %B "${db}.idx")))
opens "clean ${keys}-key store"
open_ms=${OPEN_MS}

node_kill store
health_watch "${addr}"
NODE_KEEP=1 node_start store "${port}" "${env[@]}"
health_wait
rec_ms=${HEALTH_MS}
replayed=$(grep -o 'replayed [0-9]* records' "${BENCH_TMP}/store.log" | tail -n 1)
bench_log "store: after kill -9, /health answered ${rec_ms} ms after start (${replayed:-no recovery logged})"
[ -n "${replayed}" ] || bench_note "no recovery was logged after kill -9"

rss_idle=$(rss_kib "$(node_pid store)")
raise_nofile $((rss_conns + 1024))
bench_log "store: RssAnon with ${rss_conns} connections, wrk for ${rss_secs} s"
rss_start "$(node_pid store)" "${BENCH_OUT}/store.rss"
wrk_server "${BENCH_OUT}/store-rss.wrk" "$(node_pid store)" \
  -t"${BENCH_WRK_THREADS}" -c"${rss_conns}" -d"${rss_secs}s" "${url}/kv/k1"
monitor_stop
wrk_check "${WRK}" "GET over ${rss_conns} connections to the ${keys}-key store"
rss=$(rss_max "${BENCH_OUT}/store.rss")
NODE_SAVE=${BENCH_TMP}/store-1m.db \
  NODE_EXPECTED_WARN='not closed cleanly; replayed|unclean shutdown: new replication id' \
  node_stop store

bench_put passes "${passes}"
bench_put live_bytes "${live}"
bench_put file_bytes "${size}"
bench_put open_ms "${open_ms}"
bench_put recover_ms "${rec_ms}"
bench_put rss_kib "${rss}"
file_x=$(ratio "${size}" "${live}")
rss_mib=$(awk -v k="${rss}" 'BEGIN { printf "%.1f\n", k / 1024 }')
v_open=$(bench_target "open a clean ${keys}-key store (ms to /health)" "${open_ms}" '<=' 10)
v_file=$(bench_target "store file / live data after overwriting" "${file_x}" '<=' 2)
v_rss=$(bench_target "RssAnon, ${keys} keys, ${rss_conns} connections (MiB)" "${rss_mib}" '<=' 8)
mb() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1e6 }'; }

bench_md "## A store of $(printf "%'d" "${keys}") keys" '' \
  "bench/load PUTs keys \`k0\`..\`k$((keys - 1))\` with 100-byte values over ${lconns} connections, ${depth} requests pipelined on each, \`FSYNC=no\`; then overwrites every key again, ${passes} writes per key in all (PUT/s by pass: $(printf '%s, ' "${load_rows[@]}" | sed 's/, $//')). Times are from starting the server to its first 200 on \`/health\`, polled every 0.1 ms by bench/load started before the server (the server logs no open time); they include starting the process, which the empty store shows alone." '' \
  '| figure | value | target |' \
  '|---|---:|---|' \
  "| live data (keys + values), ${nkeys} keys | $(mb "${live}") MB | |" \
  "| store file after a clean shutdown | $(mb "${size}") MB ($(mb "${alloc}") MB allocated) | |" \
  "| file / live data | **${file_x}** | at most 2: **${v_file}** |" \
  "| largest file size seen during the overwriting (with a compaction copy) | $(mb "${peak}") MB | |" \
  "| empty store: start to /health, median of 3 (${empties}) | ${empty_ms} ms | |" \
  "| clean ${keys}-key store: start to /health, median of 3 (${OPENS[*]}) | **${open_ms} ms** | at most 10 ms: **${v_open}** |" \
  "| after kill -9: start to /health (${replayed:-no recovery logged}) | ${rec_ms} ms | |" \
  "| RssAnon, idle, after recovery | ${rss_idle} KiB | |" \
  "| RssAnon, ${rss_conns} connections busy (wrk -c${rss_conns}), largest | **${rss} KiB** (${rss_mib} MiB) | at most 8 MiB: **${v_rss}** |"
bench_md_commands
bench_summary \
  "${keys}-key store: file ${file_x}x the live data (target <= 2: ${v_file}); clean open ${open_ms} ms to /health (target <= 10: ${v_open}; empty store ${empty_ms} ms); after kill -9 ${rec_ms} ms" \
  "RssAnon with ${rss_conns} connections: ${rss_mib} MiB (target <= 8: ${v_rss})"
