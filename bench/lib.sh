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
#   BENCH_REPLICA_CPUS  the replicas' CPU list (default: the servers';
#                 scenario resync's new replica: the clients')
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

# bench_install COMMAND [PACKAGE]: install the Debian package when
# COMMAND is missing and we are root; returns 1, having named the package,
# when it is still missing.
bench_install() {
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
  return 1
}

# bench_need COMMAND [PACKAGE]: bench_install, or fail.
bench_need() {
  bench_install "$@" || exit 1
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
  MONITOR_PIDS=()
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

# raise_nofile N: at least N descriptors for this shell and what it
# starts (wrk and the servers: one per connection), raising the hard
# limit too when root; notes it when that is not allowed.
raise_nofile() {
  local hard
  { [ "$(ulimit -n)" = unlimited ] || [ "$(ulimit -n)" -ge "$1" ]; } &&
    return 0
  hard=$(ulimit -Hn)
  [ "${hard}" = unlimited ] || [ "${hard}" -ge "$1" ] ||
    ulimit -Hn "$1" 2>/dev/null
  ulimit -n "$1" 2>/dev/null ||
    bench_note "could not raise the descriptor limit to $1 (it is $(ulimit -n)): runs with that many connections will show errors"
  bench_cmd "ulimit -n $(ulimit -n)"
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

# node_track NAME PID: a server started by this run, stopped by PID by
# node_stop (and at exit, whatever happens).
node_track() {
  printf -v "NODE_PID_${1//[^A-Za-z0-9_]/_}" '%s' "$2"
  case " ${NODE_NAMES[*]} " in
  *" $1 "*) ;;
  *) NODE_NAMES+=("$1") ;;
  esac
}

# node_pid NAME: the PID of a running server of this run, or nothing.
node_pid() {
  local var="NODE_PID_${1//[^A-Za-z0-9_]/_}"
  printf '%s' "${!var:-}"
}

# node_start NAME PORT [VAR=value...]: start kvstore on 127.0.0.1:PORT,
# pinned to the server CPU (NODE_CPUS, when set, instead), data in
# $BENCH_TMP/NAME, log in NAME.log. Its PID goes to NODE_PID_<NAME>, the
# time it was started ($EPOCHREALTIME) to what node_t0 prints; the exact
# command to the commands list. The data directory starts empty, or with the store
# file NODE_SEED moved in; NODE_KEEP=1 keeps it as it is (a restart).
node_start() {
  local name=$1 port=$2 pid pin=("${SERVER_PIN[@]}")
  shift 2
  local env=(PORT="${port}" DATA_DIR="${BENCH_TMP}/${name}" "$@")
  if [ -n "${NODE_CPUS:-}" ] && [ "${#pin[@]}" -gt 0 ]; then
    pin=(taskset -c "${NODE_CPUS}")
  fi
  if [ -z "${NODE_KEEP:-}" ]; then
    rm -rf "${BENCH_TMP:?}/${name}"
    : >"${BENCH_TMP}/${name}.log"
    if [ -n "${NODE_SEED:-}" ]; then
      mkdir -p "${BENCH_TMP}/${name}"
      mv "${NODE_SEED}" "${BENCH_TMP}/${name}/kvstore.db"
    fi
  fi
  # The subshell pins itself, takes the time and becomes the server (exec:
  # $! is the server's own PID), so a start figure is the server's, not
  # that of loading env and taskset (dynamically linked: 10 to 50 ms of a
  # 10M-key clean open on a busy machine).
  NODE_T0_FILE=${BENCH_TMP}/${name}.t0
  (
    if [ "${#pin[@]}" -gt 0 ]; then
      "${pin[0]}" -p "${pin[1]}" "${pin[2]}" "${BASHPID}" >/dev/null || exit 1
    fi
    export "${env[@]}"
    printf '%s\n' "${EPOCHREALTIME}" >"${NODE_T0_FILE}"
    exec "${KVSTORE}"
  ) 2>>"${BENCH_TMP}/${name}.log" &
  pid=$!
  node_track "${name}" "${pid}"
  bench_cmd "${env[*]} ${pin[*]} ${KVSTORE} &"
  bench_log "started ${name} (pid ${pid}) on 127.0.0.1:${port}"
}

# node_stop NAME: SIGTERM by PID, SIGKILL after 10 s; notes an exit status
# other than 0. Then, unless NODE_KEEP=1 (to restart it on its data), the
# log's warn and error lines (those matching NODE_EXPECTED_WARN aside)
# are noted, the log kept in $BENCH_OUT and the data removed; NODE_SAVE,
# when set, is where the store file is moved first (for NODE_SEED).
node_stop() {
  local name=$1 var="NODE_PID_${1//[^A-Za-z0-9_]/_}" pid i status n
  pid=${!var:-}
  [ -n "${pid}" ] || return 0
  printf -v "${var}" '%s' ''
  [ -z "${NODE_KEEP:-}" ] || bench_cmd "kill -TERM ${pid}  # ${name}, to restart it"
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
  [ -z "${NODE_KEEP:-}" ] || return 0
  # Warnings other than the expected ones of a brand-new primary; nginx
  # writes its levels in brackets.
  grep -E '^[^ ]+ (warn|error) |\[(warn|error|crit|alert|emerg)\]' \
    "${BENCH_TMP}/${name}.log" |
    grep -vE "starts EMPTY|STARTING EMPTY${NODE_EXPECTED_WARN:+|${NODE_EXPECTED_WARN}}" \
      >"${BENCH_TMP}/${name}.warn"
  n=$(wc -l <"${BENCH_TMP}/${name}.warn")
  if [ "${n}" -gt 0 ]; then
    bench_note "${name} logged ${n} warn/error lines, most frequent: $(
      cut -c 26- "${BENCH_TMP}/${name}.warn" | sed 's/[0-9][0-9]*/N/g' |
        sort | uniq -c | sort -rn | head -n 3 | sed 's/^ *//' |
        paste -sd ';' -)"
  fi
  cp "${BENCH_TMP}/${name}.log" "${BENCH_OUT}/${name}.log" 2>/dev/null
  [ -z "${NODE_SAVE:-}" ] ||
    mv "${BENCH_TMP}/${name}/kvstore.db" "${NODE_SAVE}" 2>/dev/null
  rm -rf "${BENCH_TMP:?}/${name}"
}

# node_kill NAME: kill -9 by PID (a crash), keeping the data.
node_kill() {
  local pid
  pid=$(node_pid "$1")
  [ -n "${pid}" ] || return 0
  node_track "$1" ''
  bench_cmd "kill -9 ${pid}  # ${1}"
  kill -KILL "${pid}" 2>/dev/null
  wait "${pid}" 2>/dev/null
}

# health_watch ADDR [PATH [SECONDS]]: start polling PATH (/health) on ADDR
# for a 200, 60 s at most, with bench/load in the background, before the
# server starts (node_start next): started after it, the poller's own
# fork and exec (some 10 ms from this shell) would count as the server's.
# health_wait then waits for it.
health_watch() {
  bench_cmd "${CLIENT_PIN[*]} bench/load health $1 ${3:-60} ${2:-/health} &"
  HEALTH_WHAT="$1 ${2:-/health}"
  timeout $((${3:-60} + 5)) "${CLIENT_PIN[@]}" "${BENCH_DIR}/load" \
    health "$1" "${3:-60}" "${2:-/health}" >"${BENCH_TMP}/health.out" &
  HEALTH_PID=$!
  # Long enough for it to be polling, short enough that its back-off
  # (1/200 of the time it has waited) is still its 0.1 ms floor.
  sleep 0.02
}

# health_wait: wait for the poller health_watch started; HEALTH_MS is the
# milliseconds from the last node_start's start to the first 200.
# node_t0: when the last node_start's server began ($EPOCHREALTIME).
node_t0() {
  cat "${NODE_T0_FILE}"
}

health_wait() {
  wait "${HEALTH_PID}" || bench_die "${HEALTH_WHAT}: no 200"
  # shellcheck disable=SC2034  # the scenarios read it
  HEALTH_MS=$(awk -v t0="$(node_t0)" \
    -v t="$(kv_field t <"${BENCH_TMP}/health.out")" \
    'BEGIN { printf "%.1f\n", (t - t0) * 1000 }')
}

# ---- nginx, the HTTP ceiling ----

# nginx_need: nginx, installed from Debian's package when missing and
# root, without ever leaving Debian's nginx service running: package
# scripts may start it, so a policy-rc.d that refuses starts is put in
# place for the install (unless one is there already), and a service
# running afterwards is stopped through its init script (or its pid
# file). Returns 1 when nginx is not available.
nginx_need() {
  local policy=/usr/sbin/policy-rc.d ours='' pid rc
  PATH=${PATH}:/usr/sbin
  command -v nginx >/dev/null 2>&1 && return 0
  if [ "$(id -u)" -eq 0 ] && [ ! -e "${policy}" ]; then
    printf '#!/bin/sh\n# bench/lib.sh: no service starts while nginx installs\nexit 101\n' \
      >"${policy}" && chmod 755 "${policy}" && ours=1
  fi
  bench_install nginx
  rc=$?
  [ -z "${ours}" ] || rm -f "${policy}"
  if [ "${rc}" -eq 0 ] && [ -s /run/nginx.pid ]; then
    pid=$(cat /run/nginx.pid)
    if kill -0 "${pid}" 2>/dev/null; then
      bench_log "Debian's nginx service was started by its package; stopping it"
      service nginx stop >/dev/null 2>&1 || kill -QUIT "${pid}"
    fi
  fi
  return "${rc}"
}

# nginx_start NAME PORT BODY: one nginx process (master_process off: the
# process started is the one that serves) on 127.0.0.1:PORT, pinned like
# kvstore, answering every request 200 with BODY; its own prefix, config
# and temp dirs under $BENCH_TMP/NAME, access log off, error log in
# NAME.log. Stopped by node_stop NAME, like a kvstore node.
nginx_start() {
  local name=$1 port=$2 dir=${BENCH_TMP}/$1 pid
  rm -rf "${dir}"
  mkdir -p "${dir}"
  cat >"${dir}/nginx.conf" <<EOF
daemon off;
master_process off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${BENCH_TMP}/${name}.log warn;
events { worker_connections 8192; }
http {
  access_log off;
  # nginx closes a connection after 1000 requests by default; kvstore
  # never does, and wrk would count the reconnections against nginx.
  keepalive_requests 1000000000;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  server {
    listen 127.0.0.1:${port};
    location / { return 200 "$3"; }
  }
}
EOF
  : >"${BENCH_TMP}/${name}.log"
  "${SERVER_PIN[@]}" nginx -p "${dir}/" -c "${dir}/nginx.conf" \
    -e "${BENCH_TMP}/${name}.log" &
  pid=$!
  node_track "${name}" "${pid}"
  bench_cmd "${SERVER_PIN[*]} nginx -p ${dir}/ -c ${dir}/nginx.conf -e ${BENCH_TMP}/${name}.log &"
  bench_log "started nginx ${name} (pid ${pid}) on 127.0.0.1:${port}"
  timeout 15 "${BENCH_DIR}/load" health "127.0.0.1:${port}" 10 >/dev/null ||
    bench_die "nginx did not start: $(tail -n 3 "${BENCH_TMP}/${name}.log")"
}

# value_file BYTES: the path of a file of BYTES bytes ("vvv..."), made
# once per run.
value_file() {
  local f=${BENCH_TMP}/value-$1
  [ -f "${f}" ] || head -c "$1" /dev/zero | tr '\0' v >"${f}"
  printf '%s\n' "${f}"
}

# put_file URL KEY FILE: PUT the file's bytes as KEY's value, or fail.
put_file() {
  local code
  bench_cmd "curl -X PUT --data-binary @${3} ${1}/kv/${2}"
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 30 -X PUT \
    --data-binary "@$3" "$1/kv/$2")
  case "${code}" in
  200 | 201) ;;
  *) bench_die "PUT $1/kv/$2 answered ${code}" ;;
  esac
}

# http_get URL: the body, whatever the status ("" when unreachable).
http_get() {
  curl -s --max-time 2 "$1" 2>/dev/null
}

# metric URL NAME: the value of the unlabelled Prometheus sample NAME in
# URL/metrics ("" when absent).
metric() {
  http_get "$1/metrics" | awk -v n="$2" '$1 == n { print $2; exit }'
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

# settle URL: until the file size in URL's /ready has held still for 2 s,
# 30 s at most; prints the last /ready body. Compaction goes on in slices
# after a load, and while it copies, the size (which counts the copy)
# drops when it ends.
settle() {
  local i same=0 last='' j cur
  for ((i = 0; i < 60 && same < 4; i++)); do
    sleep 0.5
    j=$(http_get "$1/ready")
    cur=$(json_num "${j}" file_bytes)
    if [ -n "${cur}" ] && [ "${cur}" = "${last}" ]; then
      same=$((same + 1))
    else
      same=0
    fi
    last=${cur}
  done
  printf '%s\n' "${j}"
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

# run_tool OUT_FILE TOOL ARGS...: bench/TOOL (lag or load) on the client
# CPU, bounded in time; its result line goes to OUT_FILE (stderr too), its
# status is returned.
run_tool() {
  local out=$1 tool=$2
  shift 2
  bench_cmd "${CLIENT_PIN[*]} bench/${tool} $*"
  timeout 120 "${CLIENT_PIN[@]}" "${BENCH_DIR}/${tool}" "$@" >"${out}" 2>&1
}

run_lag() {
  run_tool "$1" lag "${@:2}"
}

# wrk_server OUT_FILE PID WRK_ARGS...: run_wrk, then set WRK to its
# wrk_parse line plus cpu_pct, the CPU time server PID used during the
# run (see cpu_pct).
wrk_server() {
  local out=$1 pid=$2 c0 t0
  shift 2
  c0=$(cpu_ticks "${pid}")
  t0=${EPOCHREALTIME}
  run_wrk "${out}" "$@"
  # shellcheck disable=SC2034  # the scenarios read it
  WRK="$(wrk_parse "${out}") cpu_pct=$(cpu_pct $(($(cpu_ticks "${pid}") - c0)) \
    "$(awk -v a="${t0}" -v b="${EPOCHREALTIME}" 'BEGIN { print b - a }')")"
}

# wrk_check WRK_LINE WHAT: note error answers and socket errors of a run.
wrk_check() {
  local non2xx sockerr
  non2xx=$(kv_field non2xx <<<"$1")
  sockerr=$(kv_field sock_errors <<<"$1")
  [ "${non2xx:-0}" -eq 0 ] || bench_note "${non2xx} non-2xx answers: $2"
  [ "${sockerr:-0}" -eq 0 ] || bench_note "wrk counted ${sockerr} socket errors: $2"
}

# wrk_parse FILE: wrk --latency output as one line of key=value pairs:
# rps, requests, p50_ms, p90_ms, p99_ms (from the latency distribution),
# max_ms, mbs (Transfer/sec: answer bytes, in 10^6 bytes a second; wrk's
# own units are powers of 1024), non2xx (status >= 400), sock_errors
# (connect+read+write+timeout).
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
    function bytes(s,   v) {
      v = s + 0
      if (s ~ /KB$/) return v * 1024
      if (s ~ /MB$/) return v * 1048576
      if (s ~ /GB$/) return v * 1073741824
      if (s ~ /TB$/) return v * 1099511627776
      return v
    }
    /^Requests\/sec:/ { rps = $2 }
    /^Transfer\/sec:/ { mbs = bytes($2) / 1e6 }
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
      printf "rps=%.0f requests=%d p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f mbs=%.1f non2xx=%d sock_errors=%d\n",
        rps, requests, p50, p90, p99, max, mbs, non2xx, sock
    }' "$1"
}

# ---- watching servers during a run ----

# sample_start SECONDS FILE COMMAND...: COMMAND's output, as one line of
# FILE, every SECONDS in the background until monitor_stop.
sample_start() {
  local every=$1 file=$2
  shift 2
  (
    while :; do
      "$@" | tr -d '\n'
      echo
      sleep "${every}"
    done
  ) >"${file}" 2>/dev/null &
  MONITOR_PIDS+=("$!")
}

# monitor_start PRIMARY_URL FILE: every 0.5 s, the primary's /ready into
# FILE (one line each) until monitor_stop.
monitor_start() {
  sample_start 0.5 "$2" http_get "$1/ready"
}

# rss_start PID FILE: every 0.1 s, PID's RssAnon (anonymous resident
# memory: heap, stacks, buffers; not the mapped store file) in KiB into
# FILE until monitor_stop; rss_max FILE is the largest.
rss_start() {
  sample_start 0.1 "$2" rss_kib "$1"
}

rss_kib() {
  sed -n 's/^RssAnon:[[:space:]]*\([0-9]*\) kB$/\1/p' "/proc/$1/status"
}

rss_max() {
  grep -E '^[0-9]+$' "$1" | sort -n | tail -n 1
}

monitor_stop() {
  local pid
  for pid in "${MONITOR_PIDS[@]}"; do
    kill "${pid}" 2>/dev/null
    wait "${pid}" 2>/dev/null
  done
  MONITOR_PIDS=()
}

# probe_start ADDR PID FILE: bench/load probe asks ADDR's /health every
# 10 ms on one connection, as a liveness probe does but often enough for a
# p99 and a max, and takes out of each answer's time the waits of PID's
# event loop (and its own) for a CPU, into FILE until probe_stop; at most
# 10 minutes.
probe_start() {
  bench_cmd "${CLIENT_PIN[*]} bench/load probe $1 $2 600 &  # stopped by SIGINT"
  "${CLIENT_PIN[@]}" "${BENCH_DIR}/load" probe "$1" "$2" 600 >"$3" 2>&1 &
  PROBE_PID=$!
  PROBE_OUT=$3
}

# probe_stop: stop the probe; PROBE gets its line (requests, p50_ms,
# p99_ms, max_ms, adj_p99_ms, adj_max_ms, waited_ms, late).
probe_stop() {
  kill -INT "${PROBE_PID}" 2>/dev/null
  wait "${PROBE_PID}"
  # shellcheck disable=SC2034  # the scenarios read it
  PROBE=$(tail -n 1 "${PROBE_OUT}")
}

# monitor_max FILE KEY: the largest KEY value (any replica) in FILE.
monitor_max() {
  grep -o "\"$2\":[0-9]*" "$1" | cut -d: -f2 | sort -n | tail -n 1
}

# cpu_ticks PID: the CPU time PID has used, user and system, in clock
# ticks (getconf CLK_TCK a second). The comm field has no spaces here.
cpu_ticks() {
  awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null
}

# cpu_pct TICKS SECONDS: TICKS of CPU time over SECONDS, as % of one core:
# below about 95 a server was waiting for its client, not saturated.
cpu_pct() {
  awk -v t="$1" -v s="$2" -v hz="$(getconf CLK_TCK)" \
    'BEGIN { if (s > 0) printf "%.0f\n", 100 * t / hz / s; else print "-" }'
}

# ---- figures ----

# median N...: the median of the numbers (the mean of the middle two
# when their count is even); nothing when there are none.
median() {
  printf '%s\n' "$@" | grep -E '^[0-9.]+$' | sort -g | awk '
    { v[NR] = $1 }
    END { if (NR == 0) exit
          if (NR % 2) print v[(NR + 1) / 2]
          else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# ratio A B [DECIMALS]: A / B (2 decimals by default), or - when either
# is missing or B is 0.
ratio() {
  awk -v a="$1" -v b="$2" -v d="${3:-2}" 'BEGIN {
    if (a == "" || b == "" || b + 0 == 0) print "-"
    else printf "%.*f\n", d, a / b }'
}

# bench_target WHAT FIGURE OP LIMIT: judge FIGURE against the issue's
# target (OP is >= or <=): prints "met", "not met" or "no figure", and
# adds a row to the targets table at the top of RESULTS.md. Nothing
# fails on a "not met": a benchmark reports, it does not assert.
bench_target() {
  local v
  v=$(awk -v f="$2" -v op="$3" -v l="$4" 'BEGIN {
    if (f !~ /^[0-9.]+$/) print "no figure"
    else if (op == ">=") print (f + 0 >= l + 0) ? "met" : "not met"
    else print (f + 0 <= l + 0) ? "met" : "not met" }')
  printf '| %s | %s | %s %s | %s | %s |\n' "$1" "$2" "$3" "$4" "${v}" \
    "${BENCH_NAME}" >>"${BENCH_OUT}/targets.md"
  printf '%s\n' "${v}"
}

# ---- Redis, the durable-write reference ----

# redis_need: redis-server and redis-benchmark (Debian's redis-server and
# redis-tools), installed when missing and root, never leaving Debian's
# redis service running (as nginx_need). Returns 1 when either is missing.
redis_need() {
  local policy=/usr/sbin/policy-rc.d ours='' pid rc=0
  PATH=${PATH}:/usr/sbin
  command -v redis-server >/dev/null 2>&1 &&
    command -v redis-benchmark >/dev/null 2>&1 && return 0
  if [ "$(id -u)" -eq 0 ] && [ ! -e "${policy}" ]; then
    printf '#!/bin/sh\n# bench/lib.sh: no service starts while redis installs\nexit 101\n' \
      >"${policy}" && chmod 755 "${policy}" && ours=1
  fi
  bench_install redis-server || rc=1
  bench_install redis-benchmark redis-tools || rc=1
  [ -z "${ours}" ] || rm -f "${policy}"
  if [ -s /run/redis/redis-server.pid ]; then
    pid=$(cat /run/redis/redis-server.pid)
    if kill -0 "${pid}" 2>/dev/null; then
      bench_log "Debian's redis service was started by its package; stopping it"
      service redis-server stop >/dev/null 2>&1 || kill -TERM "${pid}"
    fi
  fi
  return "${rc}"
}

# redis_start NAME PORT: redis-server on 127.0.0.1:PORT only, pinned like
# kvstore, `appendonly yes`, `appendfsync always`, no RDB snapshots, data
# in $BENCH_TMP/NAME, log in NAME.log. Stopped by node_stop NAME (SIGTERM
# by PID), like a kvstore node.
redis_start() {
  local name=$1 port=$2 dir=${BENCH_TMP}/$1 pid i
  rm -rf "${dir}"
  mkdir -p "${dir}"
  : >"${BENCH_TMP}/${name}.log"
  local args=(--bind 127.0.0.1 --port "${port}" --protected-mode yes
    --dir "${dir}" --appendonly yes --appendfsync always --save ''
    --daemonize no --logfile "${BENCH_TMP}/${name}.log")
  "${SERVER_PIN[@]}" redis-server "${args[@]}" &
  pid=$!
  node_track "${name}" "${pid}"
  bench_cmd "${SERVER_PIN[*]} redis-server $(printf '%q ' "${args[@]}")&"
  bench_log "started redis ${name} (pid ${pid}) on 127.0.0.1:${port}"
  for ((i = 0; i < 100; i++)); do
    [ "$(redis-cli -h 127.0.0.1 -p "${port}" ping 2>/dev/null)" = PONG ] &&
      return 0
    sleep 0.1
  done
  bench_die "redis did not start: $(tail -n 3 "${BENCH_TMP}/${name}.log")"
}

# io_write_bytes PID: write_bytes of /proc/PID/io (bytes the process
# caused to be written to storage: each page it dirtied, once per
# dirtying), all its threads.
io_write_bytes() {
  awk '$1 == "write_bytes:" { print $2 }' "/proc/$1/io" 2>/dev/null
}
