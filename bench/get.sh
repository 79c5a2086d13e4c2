#!/bin/bash
# Scenario "get": GET of a 100-byte value over 64 keep-alive connections,
# and the same load against nginx answering `return 200` with 100 bytes
# (one process, access log off): this machine's HTTP ceiling. The two run
# alternately in the same invocation, kvstore first, BENCH_GET_PAIRS times
# (5 by default: this machine's noise moves one pair by 20%), both servers
# pinned to the server CPU, so a change in the machine's load hits both
# alike; each pair gives a ratio
# kvstore/nginx, and the median ratio is the figure. kvstore's GET figure
# is the median of its runs. Without nginx (not installed and not root),
# the kvstore runs alone. Run by bench/run.sh, or alone from the
# repository root.
set -u
cd "$(dirname "$0")/.." || exit 1
. bench/lib.sh
bench_setup
bench_scenario get

pairs=${BENCH_GET_PAIRS:-5}
secs=${BENCH_GET_SECS:-5}
conns=${BENCH_WRK_CONNS}
value=$(value_file 100)

port=$(next_port)
node_start get-kv "${port}" ROLE=primary RECOVER_WAIT_MS=0 FSYNC=no
kv_url=http://127.0.0.1:${port}
wait_ready "${kv_url}" 20
put_file "${kv_url}" v100 "${value}"
servers=(kvstore)
if nginx_need; then
  port=$(next_port)
  nginx_start get-nginx "${port}" "$(cat "${value}")"
  ng_url=http://127.0.0.1:${port}
  ng_conf=$(sed "s|${BENCH_TMP}|\$TMP|g" "${BENCH_TMP}/get-nginx/nginx.conf")
  servers+=(nginx)
else
  bench_note "nginx is not installed (and this is not root): no HTTP ceiling to compare with"
fi
kv_head=$(curl -s -D - -o /dev/null "${kv_url}/kv/v100" | wc -c)
ng_head=$([ -n "${ng_url:-}" ] && curl -s -D - -o /dev/null "${ng_url}/" | wc -c)

rows=()
kv_rps=()
kv_p50=()
kv_p99=()
ratios=()
for ((i = 1; i <= pairs; i++)); do
  for s in "${servers[@]}"; do
    if [ "${s}" = kvstore ]; then
      url=${kv_url}/kv/v100
      name=get-kv
    else
      url=${ng_url}/
      name=get-nginx
    fi
    bench_log "get: pair ${i}/${pairs}: ${s}, wrk -c${conns} for ${secs} s"
    wrk_server "${BENCH_OUT}/get-${s}-${i}.wrk" "$(node_pid "${name}")" \
      -t"${BENCH_WRK_THREADS}" -c"${conns}" -d"${secs}s" --latency "${url}"
    r=${WRK}
    bench_log "get: ${s}: ${r}"
    wrk_check "${r}" "GET from ${s}, run ${i}"
    rps=$(kv_field rps <<<"${r}")
    if [ "${s}" = kvstore ]; then
      kv_rps+=("${rps}")
      kv_p50+=("$(kv_field p50_ms <<<"${r}")")
      kv_p99+=("$(kv_field p99_ms <<<"${r}")")
      pair=-
    else
      pair=$(ratio "${kv_rps[i - 1]}" "${rps}")
      ratios+=("${pair}")
    fi
    rows+=("| ${i} | ${s} | ${rps} | $(kv_field p50_ms <<<"${r}") | $(kv_field p99_ms <<<"${r}") | $(kv_field max_ms <<<"${r}") | $(kv_field cpu_pct <<<"${r}") | ${pair} |")
  done
done
node_stop get-kv
node_stop get-nginx

rps=$(median "${kv_rps[@]}")
p50=$(median "${kv_p50[@]}")
p99=$(median "${kv_p99[@]}")
med=$(median "${ratios[@]}")
bench_put rps "${rps}"
bench_put p50_ms "${p50}"
bench_put p99_ms "${p99}"
bench_put nginx_ratio "${med}"
verdict=$(bench_target "GET (100 B, ${conns} conns) / nginx, median of ${pairs} pairs" "${med:-}" '>=' 1.0)

bench_md "## GET of a 100-byte value, and the nginx ceiling" '' \
  "wrk \`-t${BENCH_WRK_THREADS} -c${conns} -d${secs}s --latency\`, one key of 100 bytes, alternately against kvstore (\`GET /kv/v100\`, \`FSYNC=no\`) and against nginx $(nginx -v 2>&1 | sed 's/.*\///') (one process, \`master_process off\`, access log off, \`location / { return 200 \"<100 bytes>\"; }\`), both pinned to the server CPU, both running throughout. Answer heads: kvstore ${kv_head} bytes, nginx ${ng_head:-no} bytes. server CPU is the server's CPU time over the run, in % of one core: below ~95% the server was waiting for wrk rather than saturated." '' \
  '| pair | server | requests/s | p50 ms | p99 ms | max ms | server CPU % | kvstore/nginx |' \
  '|---:|---|---:|---:|---:|---:|---:|---:|' \
  "${rows[@]}" '' \
  "- kvstore GET, median of ${#kv_rps[@]} runs: **${rps} req/s**, p50 ${p50} ms, p99 ${p99} ms." \
  "- kvstore/nginx, median of ${#ratios[@]} pairs: **${med:--}** (target: at least 1.0): **${verdict}**."
bench_md_commands
[ -z "${ng_conf:-}" ] ||
  bench_md '' "nginx's \`\$TMP/get-nginx/nginx.conf\`:" '' '```nginx' \
    "${ng_conf}" '```'
bench_summary \
  "GET 100 B, ${conns} conns: ${rps} req/s, p50 ${p50} ms, p99 ${p99} ms (median of ${#kv_rps[@]} runs)" \
  "GET / nginx ceiling: ${med:--} median of pairs (${ratios[*]}); target >= 1.0: ${verdict}"
