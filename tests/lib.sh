# shellcheck shell=bash disable=SC2034,SC2154
# (test.sh sets the fixtures' variables, port, body and the rest; helpers
# leave their results in variables for their callers: code, stopped, ...)
# Helpers for test.sh and every tests/suite_*.sh, sourced by test.sh before
# them: requests, servers of their own (start, stop), clusters (node,
# stop_nodes), bounded waits, the write loads, and assert_converged.
# call METHOD PATH: the status in ${code}, the body in ${body}.
call() {
  code=$(curl -s -o "${body}" -w '%{http_code}' -X "$1" "${url}$2")
}
put() {
  code=$(curl -s -o "${body}" -w '%{http_code}' -X PUT --data-binary "$2" \
    "${url}/kv/$1")
}
get() { code=$(curl -s -o "${body}" -w '%{http_code}' "${url}/kv/$1"); }
del() { code=$(curl -s -o "${body}" -w '%{http_code}' -X DELETE "${url}/kv/$1"); }
list() { code=$(curl -s -o "${body}" -w '%{http_code}' "${url}/kv/"); }

# raw PORT BYTES: send BYTES (printf %b escapes) on a fresh connection and
# print what comes back until the server closes or 3 seconds pass.
raw() {
  timeout 3 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
    printf "%b" "$2" >&3; cat <&3' _ "$1" "$2"
}
status_line() { printf '%s\n' "$1" | head -n 1 | tr -d '\r'; }
status_code() { status_line "$1" | cut -d' ' -f2; }
# count_status TEXT CODE: how many responses with CODE are in TEXT.
count_status() { printf '%s' "$1" | grep -ao "HTTP/1.1 $2 " | wc -l; }

# check_raw NAME STATUS BYTES: BYTES get STATUS.
check_raw() {
  out=$(raw "${port}" "$3")
  assertEquals "$1" "$2" "$(status_code "${out}")"
}

# check_closes NAME STATUS BYTES: BYTES, with a valid request pipelined
# behind them, get one answer, STATUS with a Date and a length, and the
# server closes the connection.
check_closes() {
  out=$(raw "${port}" "$3GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
  assertEquals "$1: closed" 0 $?
  assertEquals "$1" "$2" "$(status_code "${out}")"
  assertEquals "$1: one answer" 1 "$(printf '%s' "${out}" | grep -ac '^HTTP/')"
  assertContains "$1: Date" "${out}" 'Date: '
  assertContains "$1: length" "${out}" 'Content-Length: '
}

# check_bad_env NAME VAR=VALUE...: the server exits 1 with one log line,
# and the store in ${SHUNIT_TMPDIR}/badenv is left as it was.
check_bad_env() {
  db="${SHUNIT_TMPDIR}/badenv/kvstore.db"
  before=$(cksum <"${db}")
  out=$(env PORT=$((port + 43)) DATA_DIR="${SHUNIT_TMPDIR}/badenv" "${@:2}" \
    timeout 5 ./kvstore 2>&1)
  assertEquals "$1: exit status" 1 $?
  assertEquals "$1: one line" 1 "$(printf '%s\n' "${out}" | wc -l)"
  assertContains "$1: an error line" "${out}" 'error'
  assertEquals "$1: store untouched" "${before}" "$(cksum <"${db}")"
}

# metric_problems: read the text format on stdin and print each breach of
# its rules and of Prometheus' naming conventions, one per line: a family's
# lines not in one group, a sample without a TYPE, a second TYPE, a counter
# not named _total, a name outside kvstore_ or in a unit that is not a base
# unit.
metric_problems() {
  awk '
    function family(f) {
      if (f == cur) return
      if (f in closed) print "not in one group: " f
      if (cur != "") closed[cur] = 1
      cur = f
    }
    /^# (HELP|TYPE) / {
      family($3)
      if ($2 == "TYPE") {
        if ($3 in type) print "second TYPE: " $3
        type[$3] = $4
      }
      next
    }
    /^#/ || /^$/ { next }
    {
      f = $0
      sub(/[{ ].*/, "", f)
      base = f
      sub(/_(bucket|sum|count)$/, "", base)
      if (!(f in type) && (base in type) && type[base] == "histogram")
        f = base
      if (!(f in type)) print "no TYPE: " f
      family(f)
    }
    END {
      for (f in type) {
        if (type[f] == "counter" && f !~ /_total$/)
          print "counter not named _total: " f
        if (f !~ /^kvstore_/) print "outside kvstore_: " f
        if (f ~ /_(ms|us|ns|milliseconds|minutes|hours|kb|mb|kib|mib)(_|$)/)
          print "not in a base unit: " f
      }
    }'
}

json_num() { printf '%s' "$1" | sed -n "s/.*\"$2\":\([0-9]*\).*/\1/p"; }

# writer PORT ROUND: PUT keys until the server dies; print each key whose
# write was acknowledged.
writer() {
  i=0
  while [ "${i}" -lt 100000 ]; do
    i=$((i + 1))
    key="r$2-${i}"
    c=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 -X PUT \
      -d "value-${key}" "http://127.0.0.1:$1/kv/${key}") || break
    case "${c}" in 20[01]) echo "${key}" ;; *) break ;; esac
  done
}

# node NAME PORT ROLE [VAR=VALUE...]: a cluster member on PORT with its
# data in ${SHUNIT_TMPDIR}/NAME; replicas follow the primary on ${rp}.
node() {
  env PORT="$2" ROLE="$3" DATA_DIR="${SHUNIT_TMPDIR}/$1" \
    PRIMARY_URL="http://127.0.0.1:${rp}" ADVERTISE_URL="http://127.0.0.1:$2" \
    RECOVER_WAIT_MS=1000 LOG_LEVEL=debug "${@:4}" ./kvstore \
    >>"${SHUNIT_TMPDIR}/$1.log" 2>&1 &
  echo "$1 $!" >>"${SHUNIT_TMPDIR}/nodes"
  echo "$!" >>"${SHUNIT_TMPDIR}/pids"
  wait_up "$2" || fail "$1 did not start: $(tail -n 5 "${SHUNIT_TMPDIR}/$1.log")"
  [ "$3" = replica ] || wait_ready "$2" 12
}
pid_of() { awk -v n="$1" '$1 == n { p = $2 } END { print p }' "${SHUNIT_TMPDIR}/nodes"; }
# stop_node NAME: SIGTERM, wait; its exit status in ${stopped}.
stop_node() {
  p=$(pid_of "$1")
  kill "${p}" 2>/dev/null
  wait "${p}" 2>/dev/null
  stopped=$?
}
stop_nodes() {
  sort -u -k1,1 "${SHUNIT_TMPDIR}/nodes" >"${SHUNIT_TMPDIR}/nodes.u"
  while read -r n _; do
    stop_node "${n}"
  done <"${SHUNIT_TMPDIR}/nodes.u"
  : >"${SHUNIT_TMPDIR}/nodes"
  rm -rf "${SHUNIT_TMPDIR:?}/p" "${SHUNIT_TMPDIR:?}"/r[0-9]
  for f in "${SHUNIT_TMPDIR}"/p.log "${SHUNIT_TMPDIR}"/r[0-9].log; do
    if [ -f "${f}" ]; then mv "${f}" "${f}.$(current_test)"; fi
  done
}

# current_test: the name of the test function running (bash's call stack).
current_test() {
  printf '%s\n' "${FUNCNAME[@]}" | grep -m 1 '^test' || echo old
}

node_seq() { json_num "$(curl -s "http://127.0.0.1:$1/ready")" seq; }
key_count() { json_num "$(curl -s "http://127.0.0.1:$1/ready")" keys; }

# skip WHY: skip the rest of this test, saying why; the caller then
# returns. shunit2 counts one skipped assertion ("OK (skipped=N)") and the
# count line lists the test as skipped, never as a plain pass.
skip() {
  echo "  skipped: $1"
  startSkipping
  fail "skipped: $1"
}

# ---- Waiting ----

# wait_for SECONDS CONDITION | wait_for SECONDS COMMAND ARGS...: until the
# condition holds (one argument: a shell condition, evaluated) or the
# command succeeds, polled every 50 ms; 1 if it still has not after
# SECONDS. The one place the suite sleeps while it waits for something.
wait_for() {
  local end=$(($(date +%s%N) + $1 * 1000000000))
  shift
  while :; do
    if [ $# -eq 1 ]; then eval "$1"; else "$@"; fi && return 0
    [ "$(date +%s%N)" -lt "${end}" ] || return 1
    sleep 0.05
  done
}

# http_is PORT PATH STATUS: GET PATH answers STATUS.
http_is() {
  [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$1$2")" = "$3" ]
}
# ready_has PORT TEXT: the node's /ready holds TEXT.
ready_has() { curl -s "http://127.0.0.1:$1/ready" | grep -qF -- "$2"; }
# seq_is PORT SEQ: the node has applied SEQ.
seq_is() { [ "$(node_seq "$1")" = "$2" ]; }
# log_has FILE TEXT: FILE holds a line matching TEXT (grep's basic regex).
log_has() { grep -q -- "$2" "$1" 2>/dev/null; }
# gone PID: the process has ended.
gone() { ! kill -0 "$1" 2>/dev/null; }
# connections PORT: the server's open connections, this request's own
# among them.
connections() {
  curl -s "http://127.0.0.1:$1/metrics" |
    sed -n 's/^kvstore_http_connections //p'
}
# delete_status PORT KEY: the status a DELETE of KEY gets.
delete_status() {
  curl -s -o /dev/null -w '%{http_code}' -X DELETE "http://127.0.0.1:$1/kv/$2"
}
# parked PORT N BEFORE: N more connections are open than when connections
# PORT said BEFORE (a request held by a watch or a wait holds its own; a
# replica also holds its primary's).
parked() { [ "$(connections "$1")" -ge $(($3 + $2)) ]; }
# sockets PID: how many sockets the process holds.
sockets() { find "/proc/$1/fd" -lname 'socket:*' 2>/dev/null | wc -l; }
# requests PORT METHOD STATUS: how many METHOD requests the server has
# answered STATUS (its metrics).
requests() {
  n=$(curl -s "http://127.0.0.1:$1/metrics" |
    sed -n "s/^kvstore_http_requests_total{method=\"$2\",code=\"$3\"} //p")
  echo "${n:-0}"
}
# queued PORT: bytes waiting in the kernel on TCP connections to or from
# PORT, sent or unread (/proc/net/tcp*: tx_queue and rx_queue, in hex).
queued() {
  local p n=0 l r q
  p=$(printf ':%04X' "$1")
  while read -r _ l r _ q _; do
    case " ${l} ${r} " in
      *"${p} "*) n=$((n + 16#${q%:*} + 16#${q#*:})) ;;
    esac
  done < <(cat /proc/net/tcp /proc/net/tcp6 2>/dev/null)
  echo "${n}"
}

# wait_ready PORT [SECONDS]: until /ready answers 200, at most SECONDS (10).
wait_ready() { wait_for "${2:-10}" http_is "$1" /ready 200; }

# wait_streaming PRIMARY REPLICA: until the primary streams to the replica
# on port REPLICA, at most 10 seconds.
wait_streaming() {
  wait_for 10 ready_has "$1" \
    "\"url\":\"http://127.0.0.1:$2\",\"state\":\"streaming\""
}

# wait_seq PORT SEQ: until the node has applied SEQ, at most 30 seconds.
wait_seq() { wait_for 30 seq_is "$1" "$2"; }

# pair_with_data N TAG: a primary p on ${rp} and a replica r1 on ${rr1}
# that holds the primary's N writes (load ... TAG); their seq in ${before}.
pair_with_data() {
  node p "${rp}" primary
  node r1 "${rr1}" replica
  wait_ready "${rr1}"
  writes load "${rp}" "$1" "$2"
  wait_seq "${rr1}" "$(node_seq "${rp}")"
  before=$(node_seq "${rp}")
}

# ---- Writes in bulk ----
# Each helper below checks the status of every write it sends: it prints
# nothing and returns 0 if each got the answer it expects, else prints
# what came instead and returns 1. Call them through writes (below), or,
# when they run in the background, assert on their exit status after wait.

# writes HELPER ARGS...: run a helper that writes; the test fails unless
# every write got the answer it expects.
writes() {
  wr_out=$("$@")
  assertTrue "${wr_out:-$*: failed}" $?
}

# answered WHAT N EXPECTED: read "METHOD STATUS" lines (curl's write-out)
# on stdin; 0 if there are N and each matches the regular expression
# EXPECTED, else say how many did not and what they got.
answered() {
  awk -v what="$1" -v n="$2" -v ok="^($3)\$" '
    { total++ }
    $0 !~ ok { bad++; got[$0]++ }
    END {
      if (total == n && bad == 0) exit 0
      printf "%s: %d of %d writes not answered %s; got", what,
        bad + n - total, n, ok
      for (g in got) printf " \"%s\" x%d", g, got[g]
      if (total < n) printf " and %d no answer", n - total
      print ""
      exit 1
    }'
}

# load PORT N PREFIX: N writes on one keep-alive connection: puts over a
# pool of N/4 keys (so many are overwrites) and every fifth a delete; each
# PUT must answer 200 or 201, each DELETE 200 or 404.
load() {
  cfg="${SHUNIT_TMPDIR}/load.$3"
  pool=$(($2 / 4 + 1))
  for i in $(seq 1 "$2"); do
    k=$((i * 7919 % pool))
    [ "${i}" -gt 1 ] && echo next
    if [ $((i % 5)) -eq 0 ]; then
      printf 'url = "http://127.0.0.1:%s/kv/%s-%s"\nrequest = "DELETE"\n' \
        "$1" "$3" "${k}"
    else
      printf 'url = "http://127.0.0.1:%s/kv/%s-%s"\nrequest = "PUT"\ndata-binary = "%s.%s"\n' \
        "$1" "$3" "${k}" "$3" "${i}"
    fi
    # Options end at each "next": every request says where its status goes.
    echo 'output = "/dev/null"'
    printf '%s\n' 'write-out = "%{method} %{http_code}\n"'
  done >"${cfg}"
  curl -s -K "${cfg}" | answered "load $3" "$2" 'PUT 20[01]|DELETE (200|404)'
}

# put_4k PORT PREFIX N: keys PREFIX1..PREFIXN = 4 KiB each, on one
# connection; each must be answered 200 or 201 within a second.
put_4k() {
  head -c 4096 /dev/zero | tr '\0' v >"${SHUNIT_TMPDIR}/4k"
  for i in $(seq 1 "$3"); do
    printf 'url = "http://127.0.0.1:%s/kv/%s%s"\nupload-file = "%s"\noutput = "/dev/null"\n' \
      "$1" "$2" "${i}" "${SHUNIT_TMPDIR}/4k"
  done >"${SHUNIT_TMPDIR}/put_4k.cfg"
  curl -s --max-time 1 -w '%{method} %{http_code}\n' \
    -K "${SHUNIT_TMPDIR}/put_4k.cfg" |
    answered "put_4k $2 (within a second each)" "$3" 'PUT 20[01]'
}

# put_many PORT PREFIX N: keys PREFIX1..PREFIXN = v, on one connection;
# each must be answered 200 or 201.
put_many() {
  for i in $(seq 1 "$3"); do
    echo "url = \"http://127.0.0.1:$1/kv/$2${i}\""
    echo 'output = "/dev/null"'
  done >"${SHUNIT_TMPDIR}/put_many.cfg"
  curl -s -X PUT --data-binary v -w '%{method} %{http_code}\n' \
    -K "${SHUNIT_TMPDIR}/put_many.cfg" |
    answered "put_many $2" "$3" 'PUT 20[01]'
}

# dump PORT: the node's keys, sorted, each followed by its value.
dump() {
  curl -s "http://127.0.0.1:$1/kv/" | tr -d '[]"' | tr ',' '\n' | sort |
    sed '/^$/d' >"${SHUNIT_TMPDIR}/keys.$1"
  cat "${SHUNIT_TMPDIR}/keys.$1"
  [ -s "${SHUNIT_TMPDIR}/keys.$1" ] || return 0
  sed "s|.*|url = \"http://127.0.0.1:$1/kv/&\"|" "${SHUNIT_TMPDIR}/keys.$1" |
    curl -s -K - -w '\n'
}

# assert_converged PRIMARY REPLICA NAME [KEYS]: the primary has taken
# writes (its sequence is past 0) and holds KEYS keys if given, and within
# 30 seconds the replica has the primary's sequence and exactly its keys
# and values; prints the time. Two empty nodes are not "converged": a
# primary that refused every write fails here.
assert_converged() {
  begin=$(date +%s%N)
  wait_for 30 converged "$1" "$2"
  ok=$?
  echo "  $3: converged in $((($(date +%s%N) - begin) / 1000000)) ms" \
    "($(wc -l <"${SHUNIT_TMPDIR}/keys.$1") keys, seq ${seq})"
  assertTrue "$3: the primary took writes (seq ${seq:-none})" \
    "[ ${seq:-0} -gt 0 ]"
  [ -z "${4:-}" ] ||
    assertEquals "$3: keys on the primary" "$4" "$(key_count "$1")"
  assertTrue "$3: replica identical to the primary" "${ok}"
}
# converged PRIMARY REPLICA: the two have one sequence (left in ${seq})
# and the same keys and values.
converged() {
  seq=$(node_seq "$1")
  [ -n "${seq}" ] && [ "$(node_seq "$2")" = "${seq}" ] &&
    dump "$1" >"${SHUNIT_TMPDIR}/dump.p" &&
    dump "$2" >"${SHUNIT_TMPDIR}/dump.r" &&
    cmp -s "${SHUNIT_TMPDIR}/dump.p" "${SHUNIT_TMPDIR}/dump.r"
}

# wait_up PORT: until /health answers, at most 5 seconds.
wait_up() { wait_for 5 curl -s -o /dev/null "http://127.0.0.1:$1/health"; }

# put_after_health PORT KEY: once /health answers, PUT KEY at once, as a
# script would; prints the status and how long the PUT took in ms.
put_after_health() {
  wait_up "$1" || { echo "down 0"; return; }
  t0=$(date +%s%N)
  c=$(curl -s -o "${body}" -w '%{http_code}' --max-time 30 -X PUT -d v \
    "http://127.0.0.1:$1/kv/$2")
  echo "${c} $((($(date +%s%N) - t0) / 1000000))"
}

# start NAME [VAR=VALUE...]: a server of its own on a new port; sets
# ${spid}, ${sport} and ${slog}.
start() {
  new_port
  slog="${SHUNIT_TMPDIR}/$1.log"
  env PORT="${sport}" ROLE=primary DATA_DIR="${SHUNIT_TMPDIR}/$1" \
    RECOVER_WAIT_MS=0 "${@:2}" ./kvstore >"${slog}" 2>&1 &
  spid=$!
  echo "${spid}" >>"${SHUNIT_TMPDIR}/pids"
  wait_up "${sport}" || fail "$1 did not start: $(cat "${slog}")"
  case " ${*:2} " in
    *' ROLE=replica '*) ;;
    *) wait_ready "${sport}" ;;
  esac
}

# new_port: the next of 30 ports above the fixture's into ${sport}. Call
# it as is, never in $(...): a subshell's count would never advance.
new_port() {
  nports=$(((${nports:-0} + 1) % 30))
  sport=$((port + 1 + nports))
}

stop() {
  kill "$1" 2>/dev/null
  wait "$1" 2>/dev/null
}

# wait_exit PID SECONDS: its exit status in ${exited}, or 124 and kill -9
# if it is still running after SECONDS.
wait_exit() {
  wait_for "$2" gone "$1" || kill -9 "$1"
  wait "$1" 2>/dev/null
  exited=$?
  [ "${exited}" -eq 137 ] && exited=124
}
