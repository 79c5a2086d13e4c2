# shellcheck shell=bash
# bench/lib.sh: shared by the bench driver (run.sh) and its scenarios.
# Sourced by bash. Starts and stops kvstore nodes by PID, runs wrk pinned
# to its CPU, parses wrk's output, and collects each scenario's figures.
#
# Environment (all optional; run.sh sets them for the scenarios):
#   KVSTORE       the server binary (default ./kvstore)
#   BENCH_TMP     scratch dir: data dirs and logs (made and removed here
#                 when unset)
#   BENCH_OUT     where scenarios leave their results (default $BENCH_TMP/out)
#   BENCH_PORT    first port to try (default 18181); the next free ones are used
#   BENCH_WRK_THREADS, BENCH_WRK_CONNS, BENCH_WRK_SECS  wrk's -t -c -d
#   BENCH_SERVER_CPUS, BENCH_CLIENT_CPUS  taskset CPU lists of the servers
#                 (default 0) and of wrk and bench/lag (default 1), used
#                 when the machine has 2 CPUs or more
#   BENCH_REPLICA_CPUS  the replicas' CPU list (default: the servers')
#   BENCH_KEEP    set: keep $BENCH_OUT (raw wrk and lag output, server logs)
#
# A scenario NAME leaves in $BENCH_OUT:
#   NAME.env      key=value figures (bench_put), for later ones (bench_get)
#   NAME.md       its section of RESULTS.md (tables, commands)
#   NAME.txt      its lines of the summary printed at the end
# and anything odd it saw in $BENCH_OUT/notes.txt (one line each).

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export BENCH_DIR
KVSTORE=${KVSTORE:-./kvstore}
BENCH_WRK_THREADS=${BENCH_WRK_THREADS:-1}
BENCH_WRK_CONNS=${BENCH_WRK_CONNS:-64}
BENCH_WRK_SECS=${BENCH_WRK_SECS:-10}
BENCH_T0=${BENCH_T0:-$(date +%s)}
export BENCH_T0

# ---- progress and results ----

# One progress line on stderr, with the seconds since the run began.
bench_log() {
  printf 'bench [%3ss] %s\n' "$(($(date +%s) - BENCH_T0))" "$*" >&2
}

bench_die() {
  bench_log "FAILED: $*"
  exit 1
}

# bench_need COMMAND [PACKAGE]: install the Debian package when missing
# and root, or name it and fail.
bench_need() {
  local cmd=$1 pkg=${2:-$1}
  command -v "${cmd}" >/dev/null 2>&1 && return 0
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    bench_log "installing ${pkg} (for ${cmd})"
    if [ -z "${BENCH_APT_UPDATED:-}" ]; then
      apt-get update -qq >/dev/null 2>&1 && BENCH_APT_UPDATED=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${pkg}" \
      >/dev/null 2>&1 && command -v "${cmd}" >/dev/null 2>&1 && return 0
  fi
  echo "bench: ${cmd} not found; install the Debian package ${pkg} (apt-get install ${pkg})" >&2
  exit 1
}

# bench_scenario NAME: begin scenario NAME's results afresh.
bench_scenario() {
  BENCH_NAME=$1
  BENCH_CMDS=${BENCH_TMP}/$1.commands
  rm -f "${BENCH_OUT}/$1.env" "${BENCH_OUT}/$1.md" "${BENCH_OUT}/$1.txt" \
    "${BENCH_CMDS}"
  : >"${BENCH_CMDS}"
}

# bench_put KEY VALUE: record a figure of the current scenario.
bench_put() {
  printf '%s=%s\n' "$1" "$2" >>"${BENCH_OUT}/${BENCH_NAME}.env"
}

# bench_md LINE...: lines of the scenario's section of RESULTS.md.
bench_md() {
  printf '%s\n' "$@" >>"${BENCH_OUT}/${BENCH_NAME}.md"
}

# bench_summary LINE...: lines of the scenario's summary on stdout.
bench_summary() {
  printf '%s\n' "$@" >>"${BENCH_OUT}/${BENCH_NAME}.txt"
}

# bench_cmd LINE: add a command line to the scenario's commands.
bench_cmd() {
  printf '%s\n' "$*" | sed "s|${BENCH_TMP}|\$TMP|g" >>"${BENCH_CMDS}"
}

# bench_md_commands: the scenario's exact commands, as a code block.
bench_md_commands() {
  bench_md '' "Commands (\`\$TMP\` is the run's scratch directory):" '' \
    '```sh'
  cat "${BENCH_CMDS}" >>"${BENCH_OUT}/${BENCH_NAME}.md"
  bench_md '```'
}

# bench_get NAME KEY: a figure recorded by scenario NAME, or nothing.
bench_get() {
  [ -f "${BENCH_OUT}/$1.env" ] || return 0
  sed -n "s/^$2=//p" "${BENCH_OUT}/$1.env" | tail -n 1
}

# bench_note TEXT: something odd, for the report's notes.
bench_note() {
  bench_log "note: $*"
  printf '%s: %s\n' "${BENCH_NAME:-bench}" "$*" >>"${BENCH_OUT}/notes.txt"
}

# kv_field KEY <<<"k=v k=v": the value of KEY in a line of key=value pairs.
kv_field() {
  tr ' ' '\n' | sed -n "s/^$1=//p" | head -n 1
}

# cpu_busy SECONDS: how busy the CPUs were (all of them, %, with steal)
# over SECONDS, from /proc/stat: other work on the machine skews figures.
cpu_busy() {
  local a b
  a=$(head -n 1 /proc/stat)
  sleep "$1"
  b=$(head -n 1 /proc/stat)
  printf '%s\n%s\n' "${a}" "${b}" | awk '
    { idle[NR] = $5 + $6; tot[NR] = 0; for (i = 2; i <= NF; i++) tot[NR] += $i }
    END { t = tot[2] - tot[1]; if (t <= 0) { print 0; exit }
          printf "%.0f\n", 100 * (t - (idle[2] - idle[1])) / t }'
}

# ---- scratch space, CPUs ----

bench_setup() {
  if [ -z "${BENCH_TMP:-}" ]; then
    BENCH_TMP=$(mktemp -d "${TMPDIR:-/tmp}/kvbench.XXXXXX")
    BENCH_OWN_TMP=1
  fi
  BENCH_OUT=${BENCH_OUT:-${BENCH_TMP}/out}
  export BENCH_TMP BENCH_OUT
  mkdir -p "${BENCH_OUT}"
  # The server(s) on CPU 0, the load generator on CPU 1, when there are two.
  SERVER_PIN=()
  CLIENT_PIN=()
  if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null 2>&1; then
    SERVER_PIN=(taskset -c "${BENCH_SERVER_CPUS:-0}")
    CLIENT_PIN=(taskset -c "${BENCH_CLIENT_CPUS:-1}")
  fi
  NODE_NAMES=()
  BENCH_CMDS=${BENCH_TMP}/commands.txt
  trap bench_cleanup EXIT
  trap 'exit 130' INT TERM
}

bench_cleanup() {
  local name
  monitor_stop
  for name in "${NODE_NAMES[@]}"; do
    node_stop "${name}"
  done
  if [ -n "${BENCH_OWN_TMP:-}" ]; then
    if [ -n "${BENCH_KEEP:-}" ]; then
      bench_log "kept the raw outputs and logs in ${BENCH_OUT}"
    else
      rm -rf "${BENCH_TMP}"
    fi
  fi
}

# ---- kvstore nodes ----

port_free() {
  ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# next_port: print a free port at or after BENCH_PORT, never one given
# before in this run.
next_port() {
  local f="${BENCH_TMP}/next_port" p
  p=$(cat "${f}" 2>/dev/null || echo "${BENCH_PORT:-18181}")
  while ! port_free "${p}"; do
    p=$((p + 1))
  done
  echo $((p + 1)) >"${f}"
  echo "${p}"
}

# node_start NAME PORT [VAR=value...]: start kvstore on 127.0.0.1:PORT,
# pinned to the server CPU (NODE_CPUS, when set, instead), data in
# $BENCH_TMP/NAME, log in NAME.log. Its PID goes to NODE_PID_<NAME>; the
# exact command to the commands list.
node_start() {
  local name=$1 port=$2 pid pin=("${SERVER_PIN[@]}")
  shift 2
  local env=(PORT="${port}" DATA_DIR="${BENCH_TMP}/${name}" "$@")
  if [ -n "${NODE_CPUS:-}" ] && [ "${#pin[@]}" -gt 0 ]; then
    pin=(taskset -c "${NODE_CPUS}")
  fi
  rm -rf "${BENCH_TMP:?}/${name}"
  # env and taskset exec the server: $! is the server's own PID.
  env "${env[@]}" "${pin[@]}" "${KVSTORE}" 2>"${BENCH_TMP}/${name}.log" &
  pid=$!
  printf -v "NODE_PID_${name//[^A-Za-z0-9_]/_}" '%s' "${pid}"
  NODE_NAMES+=("${name}")
  bench_cmd "${env[*]} ${pin[*]} ${KVSTORE} &"
  bench_log "started ${name} (pid ${pid}) on 127.0.0.1:${port}"
}

# node_stop NAME: SIGTERM by PID, SIGKILL after 10 s; notes an exit status
# other than 0 and the log's warn and error lines.
node_stop() {
  local name=$1 var="NODE_PID_${1//[^A-Za-z0-9_]/_}" pid i status n
  pid=${!var:-}
  [ -n "${pid}" ] || return 0
  printf -v "${var}" '%s' ''
  if kill -TERM "${pid}" 2>/dev/null; then
    for ((i = 0; i < 100; i++)); do
      kill -0 "${pid}" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "${pid}" 2>/dev/null; then
      bench_note "${name} did not stop 10 s after SIGTERM; killed"
      kill -KILL "${pid}" 2>/dev/null
    fi
  fi
  wait "${pid}" 2>/dev/null
  status=$?
  [ "${status}" -eq 0 ] || bench_note "${name} exited with status ${status}"
  # Warnings other than the expected ones of a brand-new primary.
  grep -E '^[^ ]+ (warn|error) ' "${BENCH_TMP}/${name}.log" |
    grep -vE 'starts EMPTY|STARTING EMPTY' >"${BENCH_TMP}/${name}.warn"
  n=$(wc -l <"${BENCH_TMP}/${name}.warn")
  if [ "${n}" -gt 0 ]; then
    bench_note "${name} logged ${n} warn/error lines, most frequent: $(
      cut -c 26- "${BENCH_TMP}/${name}.warn" | sed 's/[0-9][0-9]*/N/g' |
        sort | uniq -c | sort -rn | head -n 3 | sed 's/^ *//' |
        paste -sd ';' -)"
  fi
  cp "${BENCH_TMP}/${name}.log" "${BENCH_OUT}/${name}.log" 2>/dev/null
  rm -rf "${BENCH_TMP:?}/${name}"
}

# http_get URL: the body, whatever the status ("" when unreachable).
http_get() {
  curl -s --max-time 2 "$1" 2>/dev/null
}

# json_num JSON KEY: the first number after "KEY": (top level comes first).
json_num() {
  printf '%s' "$1" | grep -o "\"$2\":[0-9]*" | head -n 1 | cut -d: -f2
}

# wait_ready URL SECONDS: until URL/ready answers 200.
wait_ready() {
  local i
  for ((i = 0; i < $2 * 10; i++)); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 \
      "$1/ready")" = 200 ] && return 0
    sleep 0.1
  done
  bench_die "$1 not ready after $2 s"
}

# wait_replicas PRIMARY_URL N SECONDS: until the primary lists N replicas
# streaming, each having acked the primary's seq.
wait_replicas() {
  local i j seq n acked
  for ((i = 0; i < $3 * 10; i++)); do
    j=$(http_get "$1/ready")
    seq=$(json_num "${j}" seq)
    n=$(printf '%s' "${j}" | grep -o '"state":"streaming"' | wc -l)
    acked=$(printf '%s' "${j}" | grep -o "\"acked_seq\":${seq}," | wc -l)
    if [ -n "${seq}" ] && [ "${n}" -ge "$2" ] && [ "${acked}" -ge "$2" ]; then
      return 0
    fi
    sleep 0.1
  done
  bench_die "$1 has not $2 streaming replicas after $3 s: ${j}"
}

# cluster_start PREFIX REPLICAS [VAR=value...]: a primary and REPLICAS
# replicas that announce themselves, every node with the extra env; waits
# until all are ready and streaming. Sets PRIMARY_URL, PRIMARY_ADDR,
# REPLICA_ADDRS (host:port each), NODES (names).
cluster_start() {
  local prefix=$1 count=$2 port i rport
  shift 2
  port=$(next_port)
  PRIMARY_ADDR=127.0.0.1:${port}
  PRIMARY_URL=http://${PRIMARY_ADDR}
  REPLICA_ADDRS=()
  NODES=("${prefix}-primary")
  # RECOVER_WAIT_MS=0: a brand-new primary starts at once instead of
  # asking (absent) replicas for a data set for 5 s.
  node_start "${prefix}-primary" "${port}" ROLE=primary RECOVER_WAIT_MS=0 "$@"
  wait_ready "${PRIMARY_URL}" 20
  for ((i = 1; i <= count; i++)); do
    rport=$(next_port)
    NODE_CPUS=${BENCH_REPLICA_CPUS:-} \
      node_start "${prefix}-replica${i}" "${rport}" ROLE=replica \
      PRIMARY_URL="${PRIMARY_URL}" \
      ADVERTISE_URL="http://127.0.0.1:${rport}" "$@"
    REPLICA_ADDRS+=("127.0.0.1:${rport}")
    NODES+=("${prefix}-replica${i}")
  done
  for ((i = 0; i < count; i++)); do
    wait_ready "http://${REPLICA_ADDRS[i]}" 30
  done
  if [ "${count}" -gt 0 ]; then
    wait_replicas "${PRIMARY_URL}" "${count}" 30
    bench_log "${count} replicas registered and streaming"
  fi
}

# cluster_stop: the replicas first, so that none is left without its
# primary (and logs about it).
cluster_stop() {
  local i
  for ((i = ${#NODES[@]} - 1; i >= 0; i--)); do
    node_stop "${NODES[i]}"
  done
}

# ---- wrk ----

# run_wrk OUT_FILE WRK_ARGS...: wrk on the client CPU, bounded in time;
# the command goes to the commands list, the output to OUT_FILE.
run_wrk() {
  local out=$1
  shift
  bench_cmd "${CLIENT_PIN[*]} wrk $*"
  timeout 120 "${CLIENT_PIN[@]}" wrk "$@" >"${out}" 2>&1 ||
    bench_die "wrk failed: $(cat "${out}")"
}

# run_lag OUT_FILE ARGS...: bench/lag on the client CPU, bounded in time;
# its result line goes to OUT_FILE (stderr too), its status is returned.
run_lag() {
  local out=$1
  shift
  bench_cmd "${CLIENT_PIN[*]} bench/lag $*"
  timeout 120 "${CLIENT_PIN[@]}" "${BENCH_DIR}/lag" "$@" >"${out}" 2>&1
}

# wrk_parse FILE: wrk --latency output as one line of key=value pairs:
# rps, requests, p50_ms, p90_ms, p99_ms (from the latency distribution),
# max_ms,
# non2xx (status >= 400), sock_errors (connect+read+write+timeout).
wrk_parse() {
  awk '
    function ms(s,   v) {
      v = s + 0
      if (s ~ /us$/) return v / 1000
      if (s ~ /ms$/) return v
      if (s ~ /m$/) return v * 60000
      if (s ~ /h$/) return v * 3600000
      if (s ~ /s$/) return v * 1000
      return v
    }
    /^Requests\/sec:/ { rps = $2 }
    /^ +Latency +[0-9]/ { max = ms($4) }
    / requests in / { requests = $1 }
    /^ +50%/ { p50 = ms($2) }
    /^ +90%/ { p90 = ms($2) }
    /^ +99%/ { p99 = ms($2) }
    /Non-2xx or 3xx responses:/ { non2xx = $NF }
    /Socket errors:/ {
      gsub(",", "")
      sock = $4 + $6 + $8 + $10
    }
    END {
      printf "rps=%.0f requests=%d p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f non2xx=%d sock_errors=%d\n",
        rps, requests, p50, p90, p99, max, non2xx, sock
    }' "$1"
}

# ---- watching the primary during a run ----

# monitor_start PRIMARY_URL FILE: every 0.5 s, the primary's /ready into
# FILE (one line each) until monitor_stop.
monitor_start() {
  (
    while :; do
      http_get "$1/ready" | tr -d '\n'
      echo
      sleep 0.5
    done
  ) >"$2" 2>/dev/null &
  MONITOR_PID=$!
}

monitor_stop() {
  [ -n "${MONITOR_PID:-}" ] || return 0
  kill "${MONITOR_PID}" 2>/dev/null
  wait "${MONITOR_PID}" 2>/dev/null
  MONITOR_PID=
}

# monitor_max FILE KEY: the largest KEY value (any replica) in FILE.
monitor_max() {
  grep -o "\"$2\":[0-9]*" "$1" | cut -d: -f2 | sort -n | tail -n 1
}
