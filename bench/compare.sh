#!/bin/bash
# bench/compare.sh BASE_BINARY: does a change cost GET or PUT throughput?
# `make bench-compare BASE=REV` builds REV's kvstore in a scratch worktree
# and runs this. The base binary and ./kvstore take turns, BENCH_CMP_PAIRS
# pairs (5 by default), each run on a fresh server pinned to the server CPU
# with wrk on the client CPU: GET of a 100-byte value (FSYNC=no), then PUT
# of 100-byte values to new keys (FSYNC=everysec, the default). Alternating
# makes a change in the machine's load hit both alike; the figure is the
# median of the pairs' ratios, new/base. Writes bench/COMPARE.md and prints
# it. Never fails on a figure.
set -u
cd "$(dirname "$0")/.." || exit 1
. bench/lib.sh

base=${1:?usage: bench/compare.sh BASE_KVSTORE_BINARY}
[ -x "${base}" ] || bench_die "${base}: not an executable"
bench_need wrk
bench_setup
pairs=${BENCH_CMP_PAIRS:-5}
secs=${BENCH_CMP_SECS:-5}
conns=${BENCH_WRK_CONNS}
value=$(value_file 100)
new=${KVSTORE}

# run_one NAME BINARY WHAT: one run on a fresh server, stopped after it
# (and by bench_cleanup, should anything fail); wrk's line in WRK.
run_one() {
  local name=$1 port url
  KVSTORE=$2
  port=$(next_port)
  url=http://127.0.0.1:${port}
  if [ "$3" = get ]; then
    node_start "${name}" "${port}" ROLE=primary RECOVER_WAIT_MS=0 FSYNC=no
    wait_ready "${url}" 20
    put_file "${url}" v100 "${value}"
    wrk_server "${BENCH_OUT}/${name}.wrk" "$(node_pid "${name}")" \
      -t"${BENCH_WRK_THREADS}" -c"${conns}" -d"${secs}s" --latency \
      "${url}/kv/v100"
  else
    node_start "${name}" "${port}" ROLE=primary RECOVER_WAIT_MS=0
    wait_ready "${url}" 20
    wrk_server "${BENCH_OUT}/${name}.wrk" "$(node_pid "${name}")" \
      -t"${BENCH_WRK_THREADS}" -c"${conns}" -d"${secs}s" --latency \
      -s bench/put.lua "${url}" -- 100
  fi
  node_stop "${name}"
  KVSTORE=${new}
  wrk_check "${WRK}" "$3 from ${name}"
}

rows=()
summary=()
for what in get put; do
  ratios=()
  for ((i = 1; i <= pairs; i++)); do
    bench_log "compare: ${what}: pair ${i}/${pairs}"
    run_one "cmp-base-${what}-${i}" "${base}" "${what}"
    b=${WRK}
    run_one "cmp-new-${what}-${i}" "${new}" "${what}"
    n=${WRK}
    brps=$(kv_field rps <<<"${b}")
    nrps=$(kv_field rps <<<"${n}")
    r=$(ratio "${nrps}" "${brps}")
    ratios+=("${r}")
    bench_log "compare: ${what}: base ${brps}/s, new ${nrps}/s: ${r}"
    rows+=("| ${what} | ${i} | ${brps} | $(kv_field p99_ms <<<"${b}") | ${nrps} | $(kv_field p99_ms <<<"${n}") | ${r} |")
  done
  summary+=("- ${what}: new/base, median of ${pairs} pairs: **$(median "${ratios[@]}")** (${ratios[*]})")
done

{
  echo "# kvstore against a base build"
  echo
  echo "Written by \`make bench-compare BASE=...\` (bench/compare.sh), $(date -u '+%Y-%m-%d %H:%M UTC'): base $(stat -c %s "${base}") bytes (${BENCH_CMP_BASE_NAME:-${base}}), new $(stat -c %s "${new}") bytes ($(git rev-parse --short HEAD 2>/dev/null)$(git diff --quiet 2>/dev/null || echo -dirty)). wrk \`-t${BENCH_WRK_THREADS} -c${conns} -d${secs}s --latency\`, each run on a fresh server pinned to the server CPU; GET: one 100-byte key, \`FSYNC=no\`; PUT: \`bench/put.lua\`, 100-byte values to new keys, \`FSYNC=everysec\`. Load average before: $(cut -d' ' -f1-3 /proc/loadavg)."
  echo
  echo "| load | pair | base req/s | base p99 ms | new req/s | new p99 ms | new/base |"
  echo "|---|---:|---:|---:|---:|---:|---:|"
  printf '%s\n' "${rows[@]}"
  echo
  printf '%s\n' "${summary[@]}"
} >bench/COMPARE.md
cat bench/COMPARE.md
