# shellcheck shell=bash disable=SC2154
# Abuse and load, sourced by test.sh (which sets the ports and helpers used
# here): tests/abuse against real servers. KV_LONG=1 (make test-long) runs
# them at the issue's full 30 seconds.

testAbuseLeavesTheServerServingWithNothingLeaked() {
  start abuse HEADER_TIMEOUT_MS=3000 MIN_SEQ_WAIT_MS=1000
  abuse_run attack -t "$(long_or 30 10)" -H 3000 -W 1000 \
    -m "$(sanitized_or 0 1024)" "${sport}" "${spid}"
  assertEquals "abuse: $(grep '^FAIL' "${abuse_out}")" 0 "${abuse_rc}"
  kill "${spid}"
  wait "${spid}"
  assertEquals 'clean exit after the attack (no leak under ASan)' 0 $?
}

testLoadOf2000ConnectionsWithTwoReplicasAttached() {
  conns=2000
  ulimit -Sn $((conns + 1000)) 2>/dev/null || ulimit -Sn "$(ulimit -Hn)"
  assertTrue "ulimit -n is $(ulimit -n); the load needs $((conns + 100))" \
    "[ $(ulimit -n) -ge $((conns + 100)) ]"
  node p "${rp}" primary
  node r1 "${rr1}" replica
  node r2 "${rr2}" replica
  wait_ready "${rr1}" && wait_ready "${rr2}"
  assertTrue 'replicas ready' $?
  # Each connection: its state (2.5 KiB), a 4 KiB input buffer and an
  # output buffer sized to its answers; 16 KiB leaves room for the
  # allocator. Plus the replication backlog, 16 MiB at most.
  abuse_run load -t "$(long_or 30 5)" -c "${conns}" \
    -m "$(sanitized_or 0 $((conns * 16 + 16384)))" "${rp}" "$(pid_of p)"
  assertEquals "load: $(grep '^FAIL' "${abuse_out}")" 0 "${abuse_rc}"
  assert_converged "${rp}" "${rr1}" 'replica 1 after the load'
  assert_converged "${rp}" "${rr2}" 'replica 2 after the load'
  stop_nodes
}

# abuse_run ARGS...: tests/abuse ARGS, its lines shown as they come and
# kept in ${abuse_out}; its exit status in ${abuse_rc}.
abuse_run() {
  abuse_out="${SHUNIT_TMPDIR}/abuse.out"
  tests/abuse "$@" 2>&1 | tee "${abuse_out}" | sed 's/^/  /'
  abuse_rc=${PIPESTATUS[0]}
}

# long_or LONG SHORT: LONG under KV_LONG=1, else SHORT.
long_or() { if [ "${KV_LONG:-0}" = 1 ]; then echo "$1"; else echo "$2"; fi; }

# sanitized_or SANITIZED PLAIN: SANITIZED if ./kvstore is built with
# AddressSanitizer or ThreadSanitizer, whose shadow memory (and ASan's
# quarantine) make RssAnon say nothing of leaks.
sanitized_or() {
  if grep -qa -e __asan_init -e __tsan_init ./kvstore; then
    echo "$1"
  else
    echo "$2"
  fi
}
