#!/bin/bash
# Scenario "scale": the cost as the data grows (`make bench-scale`, not
# part of `make bench`: about 1.3 GB of store and 5 minutes). For each
# size in BENCH_SCALE_KEYS (1M and 10M keys of 100-byte values), on a
# store filled by bench/load (FSYNC=no, 1M keys a step, a progress line
# each):
#   - clean open: start (the server's exec) to the first 200 on /health,
#     median of 3;
#   - GET (random keys of the store, wrk -c64, bench/get_rand.lua) and
#     FSYNC=everysec PUT (new keys, bench/put.lua) throughput;
#   - /health latency (bench/load probe, a request every 10 ms) while
#     every key is overwritten (FSYNC=everysec), p99 and max, and the
#     same less the time the loop waited for a CPU;
#   - recovery: kill -9 right after that overwrite, start to /health;
#   - RssAnon with 1,000 busy connections (GET, random keys);
#   - full resync to a new replica: its start to its first 200 on
#     /ready, MB/s of live data, and the replica's /health meanwhile
#     (p99, max; how long its loop waited for a CPU).
# The scratch data lives under $BENCH_TMP (the local disk, removed at the
# end). The section goes to bench/SCALE.md, which bench/run.sh copies into
# RESULTS.md, and into RESULTS.md at once. Figures are judged against the
# issue's targets for the largest size; nothing fails on a slow figure.
set -u
cd "$(dirname "$0")/.." || exit 1
. bench/lib.sh
bench_setup
bench_scenario scale

read -r -a sizes <<<"${BENCH_SCALE_KEYS:-1000000 10000000}"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
secs=${BENCH_SCALE_SECS:-5}
step=${BENCH_SCALE_STEP:-500000}
# Bounds, so that the whole run stays under 10 minutes: the overwrite
# stops after this many seconds (at 10M keys it ran at 12,000 to 45,000
# PUT/s once, some 10 minutes for all), and a resync not done by then is
# reported as such.
over_secs=${BENCH_SCALE_OVERWRITE_SECS:-90}
sync_secs=${BENCH_SCALE_SYNC_SECS:-120}
lconns=${BENCH_LOAD_CONNS:-16}
depth=${BENCH_LOAD_DEPTH:-64}
rss_conns=1000
raise_nofile $((rss_conns + 1024))
rows_open=() rows_rec=() rows_rss=() rows_get=() rows_put=() rows_hp99=()
rows_hmax=() rows_sync=() rows_live=() rows_file=() rows_load=() rows_rh=()
rows_over=()

# fill ADDR N PREFIX [SECONDS]: PUT PREFIX0..PREFIX(N-1), step keys at a
# time, with a progress line each, starting no step after SECONDS; sets
# FILL_DONE (keys written) and FILL_RPS (the whole run's PUT/s).
fill() {
  local first=0 n t0 out=${BENCH_OUT}/scale-load.out end=$((SECONDS + ${4:-100000}))
  t0=${EPOCHREALTIME}
  while [ "${first}" -lt "$2" ] && [ "${SECONDS}" -lt "${end}" ]; do
    n=$(($2 - first < step ? $2 - first : step))
    run_tool "${out}" load put "$1" "${n}" "${lconns}" "${depth}" 100 "$3" "${first}" ||
      bench_die "loading failed: $(cat "${out}")"
    [ "$(kv_field non2xx <"${out}")" = 0 ] ||
      bench_note "$(kv_field non2xx <"${out}") PUTs were not answered 2xx"
    first=$((first + n))
    bench_log "scale: ${first}/$2 keys written ($(kv_field rps <"${out}") PUT/s)"
  done
  FILL_DONE=${first}
  FILL_RPS=$(awk -v n="${first}" -v a="${t0}" -v b="${EPOCHREALTIME}" 'BEGIN { printf "%.0f\n", n / (b - a) }')
}

# restart NAME PORT VAR=value...: stop NAME cleanly, keeping its data, and
# start it again with that environment; waits for /ready.
restart() {
  local name=$1 port=$2
  shift 2
  NODE_KEEP=1 node_stop "${name}"
  NODE_KEEP=1 node_start "${name}" "${port}" "$@"
  wait_ready "http://127.0.0.1:${port}" 120
}

for keys in "${sizes[@]}"; do
  name=scale-${keys}
  port=$(next_port)
  addr=127.0.0.1:${port}
  url=http://${addr}
  env=(ROLE=primary RECOVER_WAIT_MS=0)
  bench_log "scale: ${keys} keys: filling a new store"
  node_start "${name}" "${port}" "${env[@]}" FSYNC=no
  wait_ready "${url}" 20
  fill "${addr}" "${keys}" k
  fill_rps=${FILL_RPS}
  # As scenario store does: until compaction's slices are over.
  j=$(settle "${url}")
  live=$(json_num "${j}" data_bytes)
  nkeys=$(json_num "${j}" keys)
  [ "${nkeys}" = "${keys}" ] || bench_note "the ${keys}-key store holds ${nkeys} keys"
  # What the fill left dirty would be written back during the figures.
  bench_log "scale: sync"
  sync

  opens=()
  for i in 1 2 3; do
    NODE_KEEP=1 node_stop "${name}"
    health_watch "${addr}"
    NODE_KEEP=1 node_start "${name}" "${port}" "${env[@]}" FSYNC=everysec
    health_wait
    opens+=("${HEALTH_MS}")
  done
  open_ms=$(median "${opens[@]}")
  bench_log "scale: ${keys} keys: clean open ${open_ms} ms to /health (${opens[*]})"
  wait_ready "${url}" 60
  file=$(json_num "$(http_get "${url}/ready")" file_bytes)

  bench_log "scale: ${keys} keys: GET, random keys, wrk -c${BENCH_WRK_CONNS} for ${secs} s"
  wrk_server "${BENCH_OUT}/${name}-get.wrk" "$(node_pid "${name}")" \
    -t"${BENCH_WRK_THREADS}" -c"${BENCH_WRK_CONNS}" -d"${secs}s" --latency \
    -s bench/get_rand.lua "${url}" -- "${keys}"
  g=${WRK}
  wrk_check "${g}" "GET of random keys, ${keys}-key store"
  bench_log "scale: ${g}"
  bench_log "scale: ${keys} keys: PUT FSYNC=everysec, new keys, wrk -c${BENCH_WRK_CONNS} for ${secs} s"
  wrk_server "${BENCH_OUT}/${name}-put.wrk" "$(node_pid "${name}")" \
    -t"${BENCH_WRK_THREADS}" -c"${BENCH_WRK_CONNS}" -d"${secs}s" --latency \
    -s bench/put.lua "${url}" -- 100
  p=${WRK}
  wrk_check "${p}" "PUT FSYNC=everysec, ${keys}-key store"
  bench_log "scale: ${p}"

  # /health while every key is overwritten: wrk runs until SIGINT.
  bench_log "scale: ${keys} keys: overwriting every key (FSYNC=everysec), /health every 10 ms"
  probe_start "${addr}" "$(node_pid "${name}")" "${BENCH_OUT}/${name}-health.out"
  fill "${addr}" "${keys}" k "${over_secs}"
  over_rps=${FILL_RPS}
  over_done=${FILL_DONE}
  probe_stop
  h=${PROBE}
  bench_log "scale: /health during the overwrite: ${h}"

  node_kill "${name}"
  health_watch "${addr}" /health 120
  NODE_KEEP=1 node_start "${name}" "${port}" "${env[@]}" FSYNC=everysec
  health_wait
  rec_ms=${HEALTH_MS}
  replayed=$(grep -o 'replayed [0-9]* records' "${BENCH_TMP}/${name}.log" | tail -n 1)
  bench_log "scale: ${keys} keys: after kill -9, /health ${rec_ms} ms after start (${replayed:-no replay logged})"
  wait_ready "${url}" 120

  bench_log "scale: ${keys} keys: RssAnon with ${rss_conns} connections, wrk for 3 s"
  rss_start "$(node_pid "${name}")" "${BENCH_OUT}/${name}.rss"
  wrk_server "${BENCH_OUT}/${name}-rss.wrk" "$(node_pid "${name}")" \
    -t"${BENCH_WRK_THREADS}" -c"${rss_conns}" -d3s -s bench/get_rand.lua "${url}" -- "${keys}"
  monitor_stop
  wrk_check "${WRK}" "GET over ${rss_conns} connections, ${keys}-key store"
  rss=$(rss_max "${BENCH_OUT}/${name}.rss")

  j=$(http_get "${url}/ready")
  live=$(json_num "${j}" data_bytes)
  bench_log "scale: sync, then a new replica"
  sync
  rport=$(next_port)
  health_watch "127.0.0.1:${rport}" /ready "${sync_secs}"
  rcpus=${BENCH_REPLICA_CPUS:-}
  [ "${#CLIENT_PIN[@]}" -gt 0 ] && rcpus=${BENCH_REPLICA_CPUS:-${CLIENT_PIN[2]}}
  NODE_CPUS=${rcpus} node_start "${name}-replica" "${rport}" ROLE=replica \
    PRIMARY_URL="${url}" ADVERTISE_URL="http://127.0.0.1:${rport}" FSYNC=no
  # The replica's own /health during the copy, as its liveness probe sees it.
  probe_start "127.0.0.1:${rport}" "$(node_pid "${name}-replica")" \
    "${BENCH_OUT}/${name}-rhealth.out"
  if wait "${HEALTH_PID}"; then
    HEALTH_MS=$(awk -v t0="$(node_t0)" -v t="$(kv_field t <"${BENCH_TMP}/health.out")" \
      'BEGIN { printf "%.1f\n", (t - t0) * 1000 }')
    sync_s=$(awk -v ms="${HEALTH_MS}" 'BEGIN { printf "%.2f\n", ms / 1000 }')
    sync_mbs=$(awk -v b="${live}" -v s="${sync_s}" 'BEGIN { if (s > 0) printf "%.0f\n", b / 1e6 / s }')
  else
    copied=$(stat -c %s "${BENCH_TMP}/${name}-replica/kvstore.db.sync" 2>/dev/null || echo 0)
    sync_s=">${sync_secs}"
    sync_mbs="not ready in ${sync_secs} s ($(awk -v b="${copied}" -v s="${sync_secs}" 'BEGIN { printf "%.0f MB of file written, %.1f MB/s", b / 1e6, b / 1e6 / s }'))"
    bench_note "the ${keys}-key full resync was not done ${sync_secs} s after the replica started"
  fi
  probe_stop
  rh=${PROBE}
  bench_log "scale: the replica's /health during the resync: ${rh}"
  rkeys=$(json_num "$(http_get "http://127.0.0.1:${rport}/ready")" keys)
  bench_log "scale: ${keys} keys: full resync ${sync_s} s, ${sync_mbs} MB/s (the replica holds ${rkeys} keys)"
  node_stop "${name}-replica"
  NODE_EXPECTED_WARN='not closed cleanly; replayed|unclean shutdown: new replication id' \
    node_stop "${name}"

  bench_put "open_ms_${keys}" "${open_ms}"
  bench_put "get_rps_${keys}" "$(kv_field rps <<<"${g}")"
  bench_put "put_rps_${keys}" "$(kv_field rps <<<"${p}")"
  rows_live+=("$(awk -v b="${live}" 'BEGIN { printf "%.0f MB", b / 1e6 }')")
  rows_file+=("$(awk -v b="${file}" 'BEGIN { printf "%.0f MB", b / 1e6 }')")
  rows_load+=("${fill_rps} / ${over_rps}")
  rows_open+=("${open_ms} (${opens[*]})")
  rows_rec+=("${rec_ms} (${replayed:-no replay logged})")
  rows_rss+=("${rss} KiB")
  rows_get+=("$(kv_field rps <<<"${g}") (p99 $(kv_field p99_ms <<<"${g}") ms, CPU $(kv_field cpu_pct <<<"${g}")%)")
  rows_put+=("$(kv_field rps <<<"${p}") (p99 $(kv_field p99_ms <<<"${p}") ms, CPU $(kv_field cpu_pct <<<"${p}")%)")
  rows_hp99+=("$(kv_field p99_ms <<<"${h}") ($(kv_field requests <<<"${h}") requests; without the waits for a CPU $(kv_field adj_p99_ms <<<"${h}"))")
  rows_hmax+=("$(kv_field max_ms <<<"${h}") (without the waits for a CPU $(kv_field adj_max_ms <<<"${h}"); the loop waited $(kv_field waited_ms <<<"${h}") ms)")
  case "${sync_mbs}" in
  not*) rows_sync+=("${sync_mbs}") ;;
  *) rows_sync+=("${sync_mbs} MB/s (${sync_s} s, ${rkeys} keys)") ;;
  esac
  rows_rh+=("p99 $(kv_field p99_ms <<<"${rh}"), max $(kv_field max_ms <<<"${rh}") ($(kv_field requests <<<"${rh}") requests); without the waits for a CPU p99 $(kv_field adj_p99_ms <<<"${rh}"), max $(kv_field adj_max_ms <<<"${rh}") (the loop waited $(kv_field waited_ms <<<"${rh}") ms)")
  rows_over+=("${over_done} of ${keys}")
  last=${keys}
  last_h=${h}
  last_rss=${rss}
  last_rec=${rec_ms}
  last_open=${open_ms}
  last_sync=${sync_mbs}
  last_rh=${rh}
done

first=${sizes[0]}
n=${#sizes[@]}
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
lk=$(awk -v k="${last}" 'BEGIN { printf (k >= 1e6 ? "%gM" : "%g"), (k >= 1e6 ? k / 1e6 : k) }')
fk=$(awk -v k="${first}" 'BEGIN { printf (k >= 1e6 ? "%gM" : "%g"), (k >= 1e6 ? k / 1e6 : k) }')
get_x=$(ratio "$(bench_get scale "get_rps_${last}")" "$(bench_get scale "get_rps_${first}")")
put_x=$(ratio "$(bench_get scale "put_rps_${last}")" "$(bench_get scale "put_rps_${first}")")
rss_mib=$(awk -v k="${last_rss}" 'BEGIN { printf "%.1f\n", k / 1024 }')
rec_s=$(awk -v ms="${last_rec}" 'BEGIN { printf "%.2f\n", ms / 1000 }')
v_open=$(bench_target "clean open, ${lk} keys (ms to /health)" "${last_open}" '<=' 10)
v_rec=$(bench_target "recovery after kill -9, ${lk} keys (s to /health)" "${rec_s}" '<=' 5)
v_rss=$(bench_target "RssAnon, ${lk} keys, ${rss_conns} connections (MiB)" "${rss_mib}" '<=' 8)
v_get=$(bench_target "GET (random keys) at ${lk} / at ${fk}" "${get_x}" '>=' 0.8)
v_put=$(bench_target "PUT FSYNC=everysec at ${lk} / at ${fk}" "${put_x}" '>=' 0.8)
v_hp99=$(bench_target "/health p99 while ${lk} keys are overwritten (ms)" "$(kv_field p99_ms <<<"${last_h}")" '<=' 10)
v_hmax=$(bench_target "/health max while ${lk} keys are overwritten (ms)" "$(kv_field max_ms <<<"${last_h}")" '<=' 50)
v_sync=$(bench_target "full resync of ${lk} keys to a new replica (MB/s)" "${last_sync}" '>=' 200)
v_rhp99=$(bench_target "the new replica's /health p99 during its ${lk}-key resync (ms)" "$(kv_field p99_ms <<<"${last_rh}")" '<=' 10)
v_rhmax=$(bench_target "the new replica's /health max during its ${lk}-key resync (ms)" "$(kv_field max_ms <<<"${last_rh}")" '<=' 50)

hdr='| figure |' sep='|---|'
for k in "${sizes[@]}"; do
  hdr="${hdr} $(printf "%'d" "${k}") keys |"
  sep="${sep}---:|"
done
hdr="${hdr} target (at ${lk}) |"
sep="${sep}---|"
row() {
  local label=$1 target=$2 arr=("${@:3}") out i
  out="| ${label} |"
  for ((i = 0; i < n; i++)); do out="${out} ${arr[i]} |"; done
  printf '%s %s |\n' "${out}" "${target}"
}
bench_md "## Cost as the data grows (make bench-scale)" '' \
  "Written by \`make bench-scale\` (bench/scale.sh) on $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git describe --always --dirty 2>/dev/null), $(nproc) cores (load average ${load_before} at the start, ${load_after} at the end: other work on the machine slows every figure), pinned as above; \`make bench\` copies this section from bench/SCALE.md. For each size, a new store is filled by bench/load (keys \`k0\`.., 100-byte values, ${lconns} connections × ${depth} pipelined, \`FSYNC=no\`), then restarted with \`FSYNC=everysec\`; a start is timed from the server's own exec (bench/lib.sh's node_start pins its shell first), not from loading env and taskset. GET reads random keys of the whole store (bench/get_rand.lua; wrk builds each request, so it costs the client more than scenario get's one key: compare the sizes with each other); PUT writes new keys. /health is asked every 10 ms on one connection by bench/load probe while bench/load overwrites every key; it also gives the figures with the time the server's loop (or the probe) waited for a CPU taken out of each answer (schedstat, as tests/abuse.c does); the targets judge the figures as they are. The server is then killed with SIGKILL and restarted. The new replica starts after a \`sync\`, on the client CPU, with an empty directory; bench/load probe asks its /health every 10 ms meanwhile, the same way." '' \
  "${hdr}" "${sep}" \
  "$(row 'live data (keys + values)' '' "${rows_live[@]}")" \
  "$(row 'store file after the fill' '' "${rows_file[@]}")" \
  "$(row 'bench/load PUT/s: fill / overwrite' '' "${rows_load[@]}")" \
  "$(row 'clean open: start to /health, ms, median of 3' "at most 10 ms: **${v_open}**" "${rows_open[@]}")" \
  "$(row 'after kill -9: start to /health, ms' "at most 5 s: **${v_rec}**" "${rows_rec[@]}")" \
  "$(row "RssAnon, ${rss_conns} connections busy, largest" "at most 8 MiB: **${v_rss}**" "${rows_rss[@]}")" \
  "$(row "GET requests/s, random keys, ${BENCH_WRK_CONNS} connections" "at least 0.8× the ${fk} figure: **${get_x}**, ${v_get}" "${rows_get[@]}")" \
  "$(row "PUT requests/s, FSYNC=everysec, new keys" "at least 0.8× the ${fk} figure: **${put_x}**, ${v_put}" "${rows_put[@]}")" \
  "$(row '/health p99 during the overwrite, ms' "at most 10 ms: **${v_hp99}**" "${rows_hp99[@]}")" \
  "$(row '/health max during the overwrite, ms' "at most 50 ms: **${v_hmax}**" "${rows_hmax[@]}")" \
  "$(row "keys overwritten meanwhile (stopped after ${over_secs} s)" '' "${rows_over[@]}")" \
  "$(row 'full resync to a new replica' "at least 200 MB/s: **${v_sync}**" "${rows_sync[@]}")" \
  "$(row "the new replica's /health during its resync, ms" "p99 at most 10 ms: **${v_rhp99}**; max at most 50 ms: **${v_rhmax}**" "${rows_rh[@]}")"
bench_md_commands
bench_summary \
  "scale, ${sizes[*]} keys: at ${lk}: clean open ${last_open} ms (${v_open}), recovery ${rec_s} s (${v_rec}), RssAnon ${rss_mib} MiB (${v_rss}), GET ${get_x}x (${v_get}), PUT everysec ${put_x}x (${v_put})" \
  "  /health during the overwrite p99 $(kv_field p99_ms <<<"${last_h}") ms (${v_hp99}), max $(kv_field max_ms <<<"${last_h}") ms (${v_hmax}); full resync ${last_sync} MB/s (${v_sync})" \
  "  the new replica's /health during its resync p99 $(kv_field p99_ms <<<"${last_rh}") ms (${v_rhp99}), max $(kv_field max_ms <<<"${last_rh}") ms (${v_rhmax})"

# bench/SCALE.md: this section and its targets, kept between runs; then
# the same text in RESULTS.md, in place of the last one (bench/run.sh
# copies SCALE.md whenever it rewrites RESULTS.md).
{
  echo '<!-- scale -->'
  cat "${BENCH_OUT}/scale.md"
  echo
  echo "Targets of this section, at ${lk} keys (not in the table at the top, which \`make bench\` writes):"
  echo
  echo '| target | figure | aim | verdict | scenario |'
  echo '|---|---:|---|---|---|'
  cat "${BENCH_OUT}/targets.md"
  echo '<!-- end scale -->'
} >bench/SCALE.md
if [ -f bench/RESULTS.md ]; then
  awk -v f=bench/SCALE.md '
    function put() { while ((getline l < f) > 0) print l; done = 1 }
    /^<!-- scale -->$/ { skip = 1; put(); next }
    /^<!-- end scale -->$/ { skip = 0; next }
    /^## Notes from this run$/ && !done { put(); print "" }
    !skip { print }' bench/RESULTS.md >"${BENCH_TMP}/RESULTS.md" &&
    cp "${BENCH_TMP}/RESULTS.md" bench/RESULTS.md
fi
bench_log "scale: written bench/SCALE.md and its section of bench/RESULTS.md"
sed 's/^/  /' "${BENCH_OUT}/scale.txt" >&2
