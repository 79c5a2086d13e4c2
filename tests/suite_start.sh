# shellcheck shell=bash
# shellcheck disable=SC2154 # test.sh sets the fixtures' variables (port, body, ...)
# The first seconds, sourced by test.sh: a new node takes a write sent the
# moment /health answers, as a script would send it. A new primary that
# still asks its replicas for their data makes the write wait rather than
# refuse it.

testALonePrimaryTakesAWriteSentRightAfterHealth() {
  env PORT="${rp}" ROLE=primary DATA_DIR="${SHUNIT_TMPDIR}/p" ./kvstore \
    >>"${SHUNIT_TMPDIR}/p.log" 2>&1 &
  echo "p $!" >>"${SHUNIT_TMPDIR}/nodes"
  echo "$!" >>"${SHUNIT_TMPDIR}/pids"
  out=$(put_after_health "${rp}" first)
  echo "  a lone primary, default RECOVER_WAIT_MS: ${out#* } ms"
  assertEquals "the write is made: $(cat "${body}")" 201 "${out%% *}"
  stop_nodes
}

testTheSpecsSessionAtScriptSpeed() {
  env PORT="${rp}" ROLE=primary DATA_DIR="${SHUNIT_TMPDIR}/p" \
    REPLICA_URLS="http://localhost:${rr1}" ./kvstore \
    >>"${SHUNIT_TMPDIR}/p.log" 2>&1 &
  echo "p $!" >>"${SHUNIT_TMPDIR}/nodes"
  echo "$!" >>"${SHUNIT_TMPDIR}/pids"
  env PORT="${rr1}" ROLE=replica DATA_DIR="${SHUNIT_TMPDIR}/r1" \
    PRIMARY_URL="http://localhost:${rp}" ./kvstore \
    >>"${SHUNIT_TMPDIR}/r1.log" 2>&1 &
  echo "r1 $!" >>"${SHUNIT_TMPDIR}/nodes"
  echo "$!" >>"${SHUNIT_TMPDIR}/pids"
  wait_up "${rr1}"
  out=$(put_after_health "${rp}" name)
  echo "  the spec's two terminals: the first PUT took ${out#* } ms"
  assertEquals "curl -X PUT .../kv/name -d alice: $(cat "${body}")" 201 \
    "${out%% *}"
  wait_seq "${rr1}" 1
  assertEquals 'and the replica has it' v \
    "$(curl -s "http://127.0.0.1:${rr1}/kv/name")"
  stop_nodes
}
