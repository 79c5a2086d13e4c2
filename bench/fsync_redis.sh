#!/bin/bash
# Scenario "fsync_redis": durable writes against Redis. Each of
# BENCH_REDIS_PAIRS rounds (3) runs, back to back on fresh servers pinned
# alike, BENCH_REDIS_WRITES (120,000) writes of 100-byte values to new keys
# from 64 clients, one write in flight on each, all sent by one client
# program, bench/load: kvstore FSYNC=always PUT, Redis `appendonly yes`
# `appendfsync always` SET (Debian's redis-server; bench/load set speaks
# RESP), Redis again with redis-benchmark (-c 64 -d 100 on random keys of
# a space of 10^8, as many requests) as a check on the client, then
# kvstore FSYNC=always with 2 replicas attached. Each run counts the
# server's fdatasync and fsync
# calls (perf stat on the syscall tracepoints; kvstore's own
# kvstore_fsyncs_total beside it) and the bytes it caused to be written
# (/proc/PID/io write_bytes). Then one more kvstore run is traced (perf
# record of the main thread's socket reads and the flusher's fdatasync,
# and a CPU profile): the time from a write's arrival to the start of the
# flush that makes it durable, how long a flush takes, and where the CPU
# goes. Redis is installed with apt-get when missing (as root) and listens
# on 127.0.0.1 only, in the run's temp dir, started and stopped by PID.
# Run by bench/run.sh, or alone from the repository root.
set -u
cd "$(dirname "$0")/.." || exit 1
. bench/lib.sh
bench_setup
bench_scenario fsync_redis

rounds=${BENCH_REDIS_PAIRS:-3}
writes=${BENCH_REDIS_WRITES:-120000}
trace_secs=${BENCH_REDIS_TRACE_SECS:-3}
conns=${BENCH_WRK_CONNS}
rows=()
k0=() k2=() rd=() rb=() k0p99=() rdp99=() vs_redis=() vs_rep=() kper=()
kbytes=() rper=() rbytes=() kpages=() us0=() us2=() usr=()

have_redis=1
redis_need || {
  have_redis=0
  bench_note "redis-server or redis-benchmark is missing (and this is not root): no Redis to compare with"
}
have_perf=1
if ! command -v perf >/dev/null 2>&1 ||
  ! perf stat -e syscalls:sys_enter_fdatasync -- true >/dev/null 2>&1; then
  have_perf=0
  bench_note "perf or its syscall tracepoints are not available: Redis's flushes are not counted and nothing is traced"
fi

# count_start PID: count PID's fdatasync and fsync calls until count_stop.
# No workload command: with one, perf would wait for it, and a background
# command of a script ignores the SIGINT that stops perf.
count_start() {
  COUNT_PID=
  [ "${have_perf}" = 1 ] || return 0
  rm -f "${BENCH_TMP}/perf-stat.out"
  perf stat -x, -o "${BENCH_TMP}/perf-stat.out" \
    -e syscalls:sys_enter_fdatasync,syscalls:sys_enter_fsync -p "$1" \
    >/dev/null 2>&1 &
  COUNT_PID=$!
  sleep 0.2	# attached before the load starts
}

# count_stop: FLUSHES, the calls counted since count_start (- without
# perf). Not in a $(...): perf is this shell's child, to wait for.
count_stop() {
  FLUSHES=-
  [ -n "${COUNT_PID}" ] || return 0
  kill -INT "${COUNT_PID}" 2>/dev/null
  wait "${COUNT_PID}" 2>/dev/null
  FLUSHES=$(awk -F, '/sys_enter_f(data)?sync/ { n += $1 } END { print n + 0 }' \
    "${BENCH_TMP}/perf-stat.out")
}

# per_flush WRITES FLUSHES BYTES: sets PER (writes per flush), BPW (bytes
# written per acknowledged write) and PAGES (4 KiB pages dirtied per flush).
per_flush() {
  PER=$(ratio "$1" "$2" 1)
  BPW=$(ratio "$3" "$1" 0)
  PAGES=$(awk -v b="$3" -v f="$2" 'BEGIN { if (f + 0 > 0) printf "%.1f\n", b / 4096 / f; else print "-" }')
}

# nodes_ticks: TICKS, the CPU ticks each of the cluster's NODES used so far.
nodes_ticks() {
  local n
  TICKS=
  for n in "${NODES[@]}"; do
    TICKS="${TICKS} $(cpu_ticks "$(node_pid "${n}")")"
  done
}

# cpu_per_write WRITES "TICKS before" "TICKS after": US_PRIMARY, the
# primary's CPU time per write in microseconds, and US_REPLICAS, the
# replicas' (each, "/"-separated; empty without replicas). On this
# machine they share the server CPU; on machines of their own the
# primary's figure alone bounds the throughput.
cpu_per_write() {
  local us
  us=$(awk -v n="$1" -v a="$2" -v b="$3" -v hz="$(getconf CLK_TCK)" 'BEGIN {
    k = split(a, x, " "); split(b, y, " ")
    for (i = 1; i <= k; i++)
      printf "%s%.1f", (i > 1 ? " " : ""), (n > 0 ? (y[i] - x[i]) * 1e6 / hz / n : 0)
  }')
  US_PRIMARY=${us%% *}
  US_REPLICAS=
  [ "${us}" = "${US_PRIMARY}" ] || US_REPLICAS=$(tr ' ' / <<<"${us#* }")
}

# load_server OUT_FILE PID ARGS...: bench/load ARGS against server PID;
# sets LOAD to its result line plus cpu_pct (the server's CPU time, as
# wrk_server's).
load_server() {
  local out=$1 pid=$2 c0 t0
  shift 2
  c0=$(cpu_ticks "${pid}")
  t0=${EPOCHREALTIME}
  run_tool "${out}" load "$@" ||
    bench_die "bench/load $1 failed: $(tail -n 3 "${out}")"
  LOAD="$(tail -n 1 "${out}") cpu_pct=$(cpu_pct $(($(cpu_ticks "${pid}") - c0)) \
    "$(awk -v a="${t0}" -v b="${EPOCHREALTIME}" 'BEGIN { print b - a }')")"
}

# kv_run ROUND REPLICAS: kvstore FSYNC=always; sets R (bench/load's
# figures) and a row.
kv_run() {
  local key=al-$2r-$1 pid f0 f1 w0 w1 n fl
  bench_log "fsync_redis: round $1/${rounds}: kvstore FSYNC=always, $2 replicas, bench/load put: ${writes} writes, ${conns} clients"
  cluster_start "${key}" "$2" FSYNC=always
  pid=$(node_pid "${key}-primary")
  count_start "${pid}"
  f0=$(metric "${PRIMARY_URL}" kvstore_fsyncs_total)
  w0=$(io_write_bytes "${pid}")
  nodes_ticks; t0=${TICKS}
  load_server "${BENCH_OUT}/${key}.load" "${pid}" put \
    "${PRIMARY_URL#http://}" "${writes}" "${conns}" 1 100 b
  R=${LOAD}
  nodes_ticks; t1=${TICKS}
  w1=$(io_write_bytes "${pid}")
  f1=$(metric "${PRIMARY_URL}" kvstore_fsyncs_total)
  count_stop
  fl=${FLUSHES}
  cluster_stop
  wrk_check "${R}" "PUT FSYNC=always, $2 replicas, round $1"
  n=$(kv_field requests <<<"${R}")
  per_flush "${n}" $((f1 - f0)) $((w1 - w0))
  cpu_per_write "${n}" "${t0}" "${t1}"
  rows+=("| $1 | kvstore PUT, FSYNC=always, $2 replicas | $(kv_field rps <<<"${R}") | $(kv_field p50_ms <<<"${R}") | $(kv_field p99_ms <<<"${R}") | $(kv_field max_ms <<<"${R}") | $(kv_field cpu_pct <<<"${R}") | ${US_PRIMARY}${US_REPLICAS:+ + ${US_REPLICAS}} | $((f1 - f0)) (perf: ${fl}) | ${PER} | ${PAGES} | ${BPW} |")
  bench_log "fsync_redis: kvstore, $2 replicas: ${R}; $((f1 - f0)) fdatasync, ${PER} writes each, ${BPW} bytes written per write; CPU per write ${US_PRIMARY} us${US_REPLICAS:+, replicas ${US_REPLICAS} us}"
}

# redis_run ROUND CLIENT: Redis SET with appendfsync always, ${writes}
# writes from CLIENT (load: bench/load set; redis-benchmark: the check on
# it); sets RR.
redis_run() {
  local name=redis-$1-$2 port pid w0 w1 fl cpu0 t0 out
  port=$(next_port)
  redis_start "${name}" "${port}"
  pid=$(node_pid "${name}")
  bench_log "fsync_redis: round $1/${rounds}: Redis SET, appendfsync always, $2: ${writes} writes, ${conns} clients"
  count_start "${pid}"
  w0=$(io_write_bytes "${pid}")
  cpu0=$(cpu_ticks "${pid}")
  if [ "$2" = load ]; then
    load_server "${BENCH_OUT}/${name}.load" "${pid}" set \
      "127.0.0.1:${port}" "${writes}" "${conns}" 1 100 b
    RR=${LOAD}
  else
    out=${BENCH_OUT}/${name}.csv
    t0=${EPOCHREALTIME}
    bench_cmd "${CLIENT_PIN[*]} redis-benchmark -h 127.0.0.1 -p ${port} -c ${conns} -n ${writes} -t set -d 100 -r 100000000 --csv"
    timeout 120 "${CLIENT_PIN[@]}" redis-benchmark -h 127.0.0.1 -p "${port}" \
      -c "${conns}" -n "${writes}" -t set -d 100 -r 100000000 --csv \
      >"${out}" 2>&1 ||
      bench_die "redis-benchmark failed: $(tail -n 3 "${out}")"
    RR="$(awk -F, '/^"SET"/ { gsub("\"", "")
        printf "rps=%.0f p50_ms=%.3f p99_ms=%.3f max_ms=%.3f", $2, $5, $7, $8 }' \
      "${out}") cpu_pct=$(cpu_pct $(($(cpu_ticks "${pid}") - cpu0)) \
      "$(awk -v a="${t0}" -v b="${EPOCHREALTIME}" 'BEGIN { print b - a }')")"
    [ -n "$(kv_field rps <<<"${RR}")" ] ||
      bench_die "no SET line in redis-benchmark's output: $(cat "${out}")"
  fi
  w1=$(io_write_bytes "${pid}")
  cpu_per_write "${writes}" "${cpu0}" "$(cpu_ticks "${pid}")"
  count_stop
  fl=${FLUSHES}
  node_stop "${name}"
  wrk_check "${RR}" "Redis SET, round $1"
  per_flush "${writes}" "${fl}" $((w1 - w0))
  rows+=("| $1 | Redis SET, appendfsync always ($2) | $(kv_field rps <<<"${RR}") | $(kv_field p50_ms <<<"${RR}") | $(kv_field p99_ms <<<"${RR}") | $(kv_field max_ms <<<"${RR}") | $(kv_field cpu_pct <<<"${RR}") | ${US_PRIMARY} | ${fl} | ${PER} | ${PAGES} | ${BPW} |")
  bench_log "fsync_redis: Redis ($2): ${RR}; ${fl} flushes, ${PER} writes each, ${BPW} bytes written per write"
}

for ((i = 1; i <= rounds; i++)); do
  kv_run "${i}" 0
  k0+=("$(kv_field rps <<<"${R}")")
  us0+=("${US_PRIMARY}")
  k0p99+=("$(kv_field p99_ms <<<"${R}")")
  kper+=("${PER}")
  kbytes+=("${BPW}")
  kpages+=("${PAGES}")
  if [ "${have_redis}" = 1 ]; then
    redis_run "${i}" load
    rd+=("$(kv_field rps <<<"${RR}")")
    rdp99+=("$(kv_field p99_ms <<<"${RR}")")
    rper+=("${PER}")
    rbytes+=("${BPW}")
    vs_redis+=("$(ratio "${k0[i - 1]}" "${rd[i - 1]}")")
    redis_run "${i}" redis-benchmark
    rb+=("$(kv_field rps <<<"${RR}")")
  fi
  kv_run "${i}" 2
  k2+=("$(kv_field rps <<<"${R}")")
  us2+=("${US_PRIMARY}")
  usr+=("${US_REPLICAS}")
  vs_rep+=("$(ratio "${k2[i - 1]}" "${k0[i - 1]}")")
done

# ---- the traced run: arrival to flush, flush time, CPU ----

trace_md=()
if [ "${have_perf}" = 1 ]; then
  bench_log "fsync_redis: traced run: kvstore FSYNC=always, wrk -c${conns} for ${trace_secs} s under perf record"
  cluster_start al-trace 0 FSYNC=always
  pid=$(node_pid al-trace-primary)
  bench_cmd "perf record -e syscalls:sys_exit_read,syscalls:sys_enter_fdatasync,syscalls:sys_exit_fdatasync -p ${pid} &"
  perf record -q -o "${BENCH_TMP}/trace.data" -e syscalls:sys_exit_read \
    -e syscalls:sys_enter_fdatasync -e syscalls:sys_exit_fdatasync \
    -p "${pid}" -- sleep $((trace_secs + 2)) >/dev/null 2>&1 &
  tpid=$!
  sleep 0.5
  wrk_server "${BENCH_OUT}/al-trace.wrk" "${pid}" -t"${BENCH_WRK_THREADS}" \
    -c"${conns}" -d"${trace_secs}s" --latency -s bench/put.lua "${PRIMARY_URL}" -- 100
  traced=${WRK}
  wait "${tpid}"
  bench_cmd "perf record -F 999 -p ${pid}  # a second run, for the profile"
  perf record -q -F 999 -o "${BENCH_TMP}/prof.data" -p "${pid}" \
    -- sleep "${trace_secs}" >/dev/null 2>&1 &
  tpid=$!
  sleep 0.2
  run_wrk "${BENCH_OUT}/al-prof.wrk" -t"${BENCH_WRK_THREADS}" -c"${conns}" \
    -d"${trace_secs}s" -s bench/put.lua "${PRIMARY_URL}" -- 100
  wait "${tpid}"
  cluster_stop
  # A read on the main thread (tid = pid) that returned bytes is a
  # request arriving (wrk sends one per read without pipelining); the
  # next fdatasync to begin is the one that makes it durable, unless one
  # was running then (then its end is what it waits for, and the next
  # one's start). Figures in ms; the reads of a run's first and last
  # flush are left out.
  perf script -i "${BENCH_TMP}/trace.data" -F tid,time,event,trace 2>/dev/null |
    awk -v main="${pid}" '
      { t = $2 + 0 }
      /sys_exit_read:/ && $1 == main && $NF !~ /^0x0$|^0xfffffff/ { arr[++na] = t; next }
      /sys_enter_fdatasync:/ { st[++ns] = t; next }
      /sys_exit_fdatasync:/ && ns > 0 { printf "flush %.3f\n", (t - st[ns]) * 1000 }
      END {
        j = 1
        for (i = 1; i <= na; i++) {
          while (j <= ns && st[j] < arr[i]) j++
          if (j > ns) break
          if (j > 1) { printf "arrive %.3f\n", (st[j] - arr[i]) * 1000; w[j]++ }
        }
        for (k = 2; k < ns; k++) printf "writes %d\n", w[k]
        printf "reads %d\nflushes %d\n", na, ns
      }' >"${BENCH_TMP}/trace.samples"
  # quant KIND P: the P-quantile (0..1) of the samples of KIND.
  quant() {
    awk -v k="$1" '$1 == k { print $2 }' "${BENCH_TMP}/trace.samples" | sort -g |
      awk -v p="$2" '{ v[NR] = $1 } END { if (NR == 0) { print "-"; exit }
        i = int(p * NR + 0.5); if (i < 1) i = 1; if (i > NR) i = NR; print v[i] }'
  }
  {
    printf 'reads=%s flushes=%s' "$(quant reads 1)" "$(quant flushes 1)"
    for kind in arrive flush; do
      printf ' %s_p50=%s %s_p99=%s %s_max=%s' "${kind}" "$(quant "${kind}" 0.5)" \
        "${kind}" "$(quant "${kind}" 0.99)" "${kind}" "$(quant "${kind}" 1)"
    done
    printf ' writes_p50=%s writes_max=%s\n' "$(quant writes 0.5)" "$(quant writes 1)"
  } >"${BENCH_OUT}/trace.txt"
  tr=$(cat "${BENCH_OUT}/trace.txt")
  bench_log "fsync_redis: traced: ${tr}"
  perf report -i "${BENCH_TMP}/prof.data" --no-children --sort dso,sym \
    --stdio 2>/dev/null | grep -E '^ +[0-9.]+%' | head -n 12 >"${BENCH_OUT}/prof.txt"
  perf report -i "${BENCH_TMP}/prof.data" --no-children --sort comm,dso \
    --stdio 2>/dev/null | grep -E '^ +[0-9.]+%' | head -n 6 >"${BENCH_OUT}/prof-dso.txt"
  trace_md=("### Where a durable write's time goes (one traced run)" ''
    "One more kvstore run, \`FSYNC=always\`, no replica, wrk -c${conns} for ${trace_secs} s (${traced%% requests=*}, p99 $(kv_field p99_ms <<<"${traced}") ms: the tracing costs some throughput), under \`perf record\` of the main thread's \`read\` returns and the flusher's \`fdatasync\` entries and exits. A request's arrival is a read that returned bytes; the flush that makes it durable is the next fdatasync to start after it (one running when it arrived did not cover it)." ''
    '| figure | p50 | p99 | max |' '|---|---:|---:|---:|'
    "| arrival of a write to the start of its flush, ms | $(kv_field arrive_p50 <<<"${tr}") | $(kv_field arrive_p99 <<<"${tr}") | $(kv_field arrive_max <<<"${tr}") |"
    "| one fdatasync, ms | $(kv_field flush_p50 <<<"${tr}") | $(kv_field flush_p99 <<<"${tr}") | $(kv_field flush_max <<<"${tr}") |"
    "| writes arriving before a flush starts (the writes it covers) | $(kv_field writes_p50 <<<"${tr}") | | $(kv_field writes_max <<<"${tr}") |"
    '' "$(kv_field reads <<<"${tr}") request reads, $(kv_field flushes <<<"${tr}") flushes. CPU profile of a second ${trace_secs}-second run (\`perf record -F 999\`; the binary is stripped, so kvstore's own functions show as addresses), by thread and object, then the top symbols:" ''
    '```' "$(cat "${BENCH_OUT}/prof-dso.txt")" '' "$(cat "${BENCH_OUT}/prof.txt")" '```')
fi

# ---- figures ----

med_k0=$(median "${k0[@]}")
med_k2=$(median "${k2[@]}")
rep=$(median "${vs_rep[@]}")
per=$(median "${kper[@]}")
# What 2 replicas cost the primary itself: its CPU per write alone over
# with them, the ratio it would reach were the replicas on other machines.
own=$(ratio "$(median "${us0[@]}")" "$(median "${us2[@]}")")
v_rep=$(bench_target "PUT FSYNC=always: 2 replicas / none, median of ${rounds} rounds" "${rep}" '>=' 0.8)
v_per=$(bench_target "FSYNC=always, ${conns} clients: writes per fdatasync (median of ${rounds} runs)" "${per}" '>=' 40)
bench_put rps_always_0 "${med_k0}"
bench_put rps_always_2 "${med_k2}"
bench_put writes_per_fsync "${per}"
if [ "${have_redis}" = 1 ]; then
  med_rd=$(median "${rd[@]}")
  vs=$(median "${vs_redis[@]}")
  kp99=$(median "${k0p99[@]}")
  rp99=$(median "${rdp99[@]}")
  v_vs=$(bench_target "PUT FSYNC=always / Redis SET appendfsync always, median of ${rounds} pairs" "${vs}" '>=' 1.0)
  # The p99 target: kvstore's median p99 at most Redis's (ratio <= 1).
  p99x=$(ratio "${kp99}" "${rp99}")
  v_p99=$(bench_target "p99: kvstore FSYNC=always / Redis appendfsync always (medians, ${kp99} / ${rp99} ms)" "${p99x}" '<=' 1.0)
  bench_put vs_redis "${vs}"
  redis_v=$(redis-server --version | sed -n 's/.*v=\([^ ]*\).*/\1/p')
fi

bench_md "## Durable writes: FSYNC=always against Redis appendfsync always" '' \
  "Rounds of four runs, back to back, each on fresh servers pinned to the server CPU, the client to the client CPU, each of ${writes} writes of 100-byte values to new keys from ${conns} connections with one write in flight on each, sent by one client program for both servers, bench/load (latency from the write that sends a request to its whole answer, as wrk and redis-benchmark measure it): kvstore \`FSYNC=always\` PUT (\`bench/load put\`); Redis ${redis_v:-(not run)} \`appendonly yes\`, \`appendfsync always\`, no RDB, SET (\`bench/load set\`, RESP); Redis again, fresh, with redis-benchmark (\`-c ${conns} -t set -d 100 -r 100000000\`, one thread, no pipelining: random keys, nearly all new) as a check that bench/load does not slow Redis down; kvstore \`FSYNC=always\` with 2 replicas attached. Flushes: kvstore's \`kvstore_fsyncs_total\` (and perf's count of fdatasync+fsync calls), Redis's from perf alone. Bytes written: the server's \`/proc/PID/io\` \`write_bytes\` over the run (each page dirtied counts 4 KiB each time it is dirtied after a flush), per acknowledged write; pages per flush is that over 4 KiB, per flush." '' \
  '| round | server | requests/s | p50 ms | p99 ms | max ms | server CPU % | CPU µs per write (+ each replica) | flushes | writes per flush | 4 KiB pages per flush | bytes written per write |' \
  '|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|' \
  "${rows[@]}" ''
if [ "${have_redis}" = 1 ]; then
  bench_md "- kvstore \`FSYNC=always\` / Redis \`appendfsync always\`, median of ${rounds} pairs (${vs_redis[*]}): **${vs}** (target: at least 1.0): **${v_vs}**. kvstore ${med_k0} requests/s, Redis ${med_rd} (medians)." \
    "- p99, medians of the runs: kvstore **${kp99} ms**, Redis **${rp99} ms** (target: kvstore's at most Redis's): **${v_p99}**." \
    "- The check on the client: Redis under redis-benchmark, median $(median "${rb[@]}") requests/s, against $(median "${rd[@]}") under bench/load (${rb[*]} against ${rd[*]})." \
    "- Bytes written per acknowledged write, medians: kvstore $(median "${kbytes[@]}"), Redis $(median "${rbytes[@]}"); Redis's writes per flush $(median "${rper[@]}")."
fi
bench_md "- Writes per fdatasync at ${conns} clients, median: **${per}** (target: at least 40): **${v_per}**; 4 KiB pages dirtied per flush, median $(median "${kpages[@]}")." \
  "- \`FSYNC=always\` with 2 replicas / without, median of ${rounds} rounds (${vs_rep[*]}): **${rep}** (target: at least 0.8): **${v_rep}**. Here the replicas run on the primary's CPU (their CPU per write: ${usr[*]} µs): what the replicas cost the primary itself is its CPU per write, $(median "${us0[@]}") µs alone and $(median "${us2[@]}") µs with them (medians), so with the replicas on machines of their own the primary would reach about **${own}** × (its CPU alone over with them)." ''
[ "${#trace_md[@]}" -eq 0 ] || bench_md "${trace_md[@]}"
bench_md_commands
bench_summary \
  "FSYNC=always PUT, ${conns} clients: ${med_k0} req/s, ${med_k2} with 2 replicas (ratio ${rep}, target >= 0.8: ${v_rep}; the primary's CPU per write bounds it at ${own} with the replicas elsewhere); ${per} writes per fdatasync (target >= 40: ${v_per})"
[ "${have_redis}" = 1 ] && bench_summary \
  "vs Redis appendfsync always SET (${med_rd} req/s): ${vs} median of pairs (target >= 1.0: ${v_vs}); p99 ${kp99} ms vs ${rp99} ms (${v_p99}); bytes written per write $(median "${kbytes[@]}") vs $(median "${rbytes[@]}")"
[ -n "${tr:-}" ] && bench_summary \
  "traced: write arrival to flush start p50 $(kv_field arrive_p50 <<<"${tr}") ms, p99 $(kv_field arrive_p99 <<<"${tr}") ms; fdatasync p50 $(kv_field flush_p50 <<<"${tr}") ms, p99 $(kv_field flush_p99 <<<"${tr}") ms"
exit 0
