#!/bin/bash
# Scenario "resync": a full resync of a million keys to a new replica. The
# primary starts on the store that scenario store left (or, run alone,
# on BENCH_STORE_KEYS keys loaded here); a replica with an empty data
# directory then starts (on the CPU wrk has in the other scenarios, as
# another pod would have its own), announces itself, receives the whole
# data set and turns ready. Measured from the replica's start to its first 200 on
# /ready (bench/load polls it, every 1/200 of the time waited), and as the
# primary logs the copy itself. MB/s counts the live key and value bytes.
# Meanwhile bench/load probe asks the replica's /health every 10 ms, as
# its liveness probe would: no request may hold its loop, a full sync's
# neither.
# Run by bench/run.sh, or alone from the repository root.
set -u
cd "$(dirname "$0")/.." || exit 1
. bench/lib.sh
bench_setup
bench_scenario resync

keys=${BENCH_STORE_KEYS:-1000000}
seed=${BENCH_TMP}/store-1m.db
port=$(next_port)
url=http://127.0.0.1:${port}
if [ -f "${seed}" ]; then
  bench_log "resync: the primary starts on scenario store's file"
  NODE_SEED=${seed} node_start resync-primary "${port}" ROLE=primary \
    FSYNC=no
  wait_ready "${url}" 60
  from="the store that scenario store left (every key written $(bench_get store passes) times)"
else
  node_start resync-primary "${port}" ROLE=primary RECOVER_WAIT_MS=0 FSYNC=no
  wait_ready "${url}" 20
  bench_log "resync: loading ${keys} keys"
  run_tool "${BENCH_OUT}/resync-load.out" load put "127.0.0.1:${port}" \
    "${keys}" "${BENCH_LOAD_CONNS:-16}" "${BENCH_LOAD_DEPTH:-64}" 100 k ||
    bench_die "loading failed: $(cat "${BENCH_OUT}/resync-load.out")"
  from="${keys} keys of 100-byte values loaded with bench/load"
fi
j=$(http_get "${url}/ready")
live=$(json_num "${j}" data_bytes)
nkeys=$(json_num "${j}" keys)

rport=$(next_port)
# The copy ends with a sync of the replica's file: writeback left over from
# the scenarios before (a million keys written three times) would queue
# ahead of it, and time the disk's backlog rather than the copy.
bench_log "resync: flushing what earlier scenarios left dirty"
sync
bench_log "resync: a new replica on ${rport}"
health_watch "127.0.0.1:${rport}" /ready 120
# The new replica is another pod, on another node: it gets the CPU wrk
# uses in the other scenarios, idle in this one.
rcpus=${BENCH_REPLICA_CPUS:-}
[ "${#CLIENT_PIN[@]}" -gt 0 ] && rcpus=${BENCH_REPLICA_CPUS:-${CLIENT_PIN[2]}}
NODE_CPUS=${rcpus} node_start resync-replica "${rport}" \
  ROLE=replica PRIMARY_URL="${url}" ADVERTISE_URL="http://127.0.0.1:${rport}" \
  FSYNC=no
probe_start "127.0.0.1:${rport}" "$(node_pid resync-replica)" \
  "${BENCH_OUT}/resync-health.out"
health_wait
probe_stop
secs=$(awk -v ms="${HEALTH_MS}" 'BEGIN { printf "%.2f\n", ms / 1000 }')
rkeys=$(json_num "$(http_get "http://127.0.0.1:${rport}/ready")" keys)
[ "${rkeys}" = "${nkeys}" ] ||
  bench_note "the replica holds ${rkeys} keys once ready, the primary ${nkeys}"
# The primary's own account: "full sync finished: N keys, X MB in S s (R MB/s)"
logged=$(grep -o 'full sync finished: .*MB/s)' "${BENCH_TMP}/resync-primary.log" |
  tail -n 1 | sed 's/full sync finished: //')
node_stop resync-replica
node_stop resync-primary

mbs=$(awk -v b="${live}" -v s="${secs}" 'BEGIN { if (s > 0) printf "%.0f\n", b / 1e6 / s }')
bench_put secs "${secs}"
bench_put mbs "${mbs}"
verdict=$(bench_target "full resync of ${nkeys} keys (MB/s of live data, start to ready)" "${mbs}" '>=' 200)
hp99=$(kv_field p99_ms <<<"${PROBE}")
hmax=$(kv_field max_ms <<<"${PROBE}")
v_hp99=$(bench_target "the new replica's /health p99 during its resync (ms)" "${hp99}" '<=' 10)
v_hmax=$(bench_target "the new replica's /health max during its resync (ms)" "${hmax}" '<=' 50)

bench_md "## Full resync to a new replica" '' \
  "The primary holds ${from}: ${nkeys} keys, $(awk -v b="${live}" 'BEGIN { printf "%.1f", b / 1e6 }') MB of keys and values. After a \`sync\` (so that what earlier scenarios left dirty is not written back during the copy), a replica with an empty data directory starts ($( [ -n "${rcpus}" ] && printf 'on CPU %s, as a pod on another node would have its own, the primary on the server CPU' "${rcpus}" || printf 'unpinned')), announces itself and is sent the whole data set; timed from its start to its first 200 on \`/ready\`. Meanwhile bench/load probe asks the replica's \`/health\` every 10 ms on one connection (on the replica's CPU), as its liveness probe would (the chart's: every 10 s, 1 s timeout, a restart after 3 failures), and takes out of each answer's time how long the replica's loop (and the probe) waited for a CPU while runnable (schedstat), as tests/abuse.c's prober does." '' \
  '| figure | value | target |' \
  '|---|---:|---|' \
  "| start to ready | ${secs} s | |" \
  "| live data / that time | **${mbs} MB/s** | at least 200 MB/s: **${verdict}** |" \
  "| the primary's log | ${logged:-no line} | |" \
  "| the replica's /health meanwhile, p99 | **${hp99} ms** ($(kv_field requests <<<"${PROBE}") requests, every 10 ms) | at most 10 ms: **${v_hp99}** |" \
  "| the replica's /health meanwhile, max | **${hmax} ms** | at most 50 ms: **${v_hmax}** |" \
  "| the same without the waits for a CPU, p99 / max | $(kv_field adj_p99_ms <<<"${PROBE}") / $(kv_field adj_max_ms <<<"${PROBE}") ms (the loop waited $(kv_field waited_ms <<<"${PROBE}") ms in all) | |"
bench_md_commands
bench_summary \
  "full resync of ${nkeys} keys: ${secs} s from the replica's start to ready, ${mbs} MB/s (target >= 200: ${verdict}); primary: ${logged:-no line}" \
  "  the replica's /health meanwhile: p99 ${hp99} ms (${v_hp99}), max ${hmax} ms (${v_hmax}); without the waits for a CPU $(kv_field adj_p99_ms <<<"${PROBE}") / $(kv_field adj_max_ms <<<"${PROBE}") ms"
