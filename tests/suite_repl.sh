# shellcheck shell=bash
# shellcheck disable=SC2154 # test.sh sets the fixtures' variables (port, body, ...)
# Replication, sourced by test.sh (its helpers in tests/lib.sh and its
# fixtures apply): clusters of a primary and replicas on loopback started
# with node, fed with load, and compared with assert_converged; versions,
# read-your-writes, synchronous writes and watches on replicas; catch-up,
# full syncs, stalls, restarts and the replication token.

# ---- Replicas serve what the primary wrote ----

testReplicaServesTheSameVersions() {
  node p "${rp}" primary
  node r1 "${rr1}" replica
  wait_ready "${rr1}"
  hdrs=$(curl -s -D - -o /dev/null -X PUT -d one "http://127.0.0.1:${rp}/kv/rv" |
    tr -d '\r')
  seq=$(printf '%s\n' "${hdrs}" | sed -n 's/^X-Kv-Seq: //p')
  wait_seq "${rr1}" "${seq}"
  # --head, not -X HEAD: with the latter curl waits for a body that never
  # comes, until the server's idle timeout (a minute) closes the connection.
  for m in --get --head; do
    hdrs=$(curl -s -D - -o /dev/null "${m}" "http://127.0.0.1:${rr1}/kv/rv" |
      tr -d '\r')
    assertContains "${m} on the replica: the primary's ETag" "${hdrs}" \
      "ETag: \"${seq}\""
  done
  out=$(curl -s -o /dev/null -w '%{http_code} %{size_download}' \
    -H "If-None-Match: \"${seq}\"" "http://127.0.0.1:${rr1}/kv/rv")
  assertEquals 'If-None-Match on the replica: 304, no body' '304 0' "${out}"
  seq=$(curl -s -D - -o /dev/null -X PUT -d two -H "If-Match: \"${seq}\"" \
    "http://127.0.0.1:${rp}/kv/rv" | tr -d '\r' | sed -n 's/^X-Kv-Seq: //p')
  wait_seq "${rr1}" "${seq}"
  code=$(curl -s -o "${body}" -w '%{http_code}' \
    -H "If-None-Match: \"$((seq - 1))\"" "http://127.0.0.1:${rr1}/kv/rv")
  assertEquals 'a stale If-None-Match on the replica: the new value' \
    '200 two' "${code} $(cat "${body}")"
  stop_nodes
}

testReadYourWritesOnAReplica() {
  node p "${rp}" primary
  node r1 "${rr1}" replica MIN_SEQ_WAIT_MS=2000
  wait_ready "${rr1}"
  seq=$(curl -s -D - -o /dev/null -X PUT -d mine "http://127.0.0.1:${rp}/kv/ryw" |
    tr -d '\r' | sed -n 's/^X-Kv-Seq: //p')
  assertEquals 'read own write on the replica' mine \
    "$(curl -s -H "X-Kv-Min-Seq: ${seq}" "http://127.0.0.1:${rr1}/kv/ryw")"
  # Reads that arrive before the write they ask for: they must wait for it,
  # and the node must go on answering others meanwhile. The write comes
  # once both reads are held (their connections open on the replica).
  c0=$(connections "${rr1}")
  curl -s -o "${SHUNIT_TMPDIR}/ryw.list" -H "X-Kv-Min-Seq: $((seq + 1))" \
    "http://127.0.0.1:${rr1}/kv/?prefix=ryw&values=true" &
  lpid=$!
  wait_for 10 parked "${rr1}" 1 "${c0}"
  out=$(curl -s -o /dev/null -w '%{http_code} %{time_total}' \
    "http://127.0.0.1:${rr1}/health")
  assertEquals 'the replica answers others while reads wait' 200 "${out%% *}"
  # Not held until MIN_SEQ_WAIT_MS (2 s) ends the wait.
  awk -v t="${out#* }" 'BEGIN { exit !(t < 1.5) }'
  assertTrue "and at once (${out#* } s)" $?
  (wait_for 10 parked "${rr1}" 2 "${c0}"; echo $? >"${SHUNIT_TMPDIR}/held"
    curl -s -o /dev/null -X PUT -d later "http://127.0.0.1:${rp}/kv/ryw") &
  out=$(curl -s -H "X-Kv-Min-Seq: $((seq + 1))" \
    "http://127.0.0.1:${rr1}/kv/ryw")
  assertEquals 'a read that came first waits for the write' later "${out}"
  assertEquals 'held until the write' 0 "$(cat "${SHUNIT_TMPDIR}/held")"
  wait "${lpid}"
  assertContains 'a listing waits the same way' \
    "$(cat "${SHUNIT_TMPDIR}/ryw.list")" '"value":"later"'
  code=$(curl -s -o "${body}" -w '%{http_code}' -H 'X-Kv-Min-Seq: 999999' \
    "http://127.0.0.1:${rr1}/kv/ryw")
  assertEquals 'a sequence never reached: 504' 504 "${code}"
  assertContains 'says how far it got' "$(cat "${body}")" \
    "applied $((seq + 1))"
  code=$(curl -s -o /dev/null -w '%{http_code}' -H 'X-Kv-Min-Seq: soon' \
    "http://127.0.0.1:${rr1}/kv/ryw")
  assertEquals 'not a number: 400' 400 "${code}"
  stop_nodes
}

testSynchronousWritesWaitForReplicas() {
  node p "${rp}" primary REPLICAS_WAIT_MS=500
  node r1 "${rr1}" replica
  wait_ready "${rr1}"
  code=$(curl -s -o /dev/null -w '%{http_code}' -X PUT -d sync \
    -H 'X-Kv-Replicas: 1' "http://127.0.0.1:${rp}/kv/sw")
  assertEquals 'acknowledged by one replica' 201 "${code}"
  assertEquals 'so the replica has it at once' sync \
    "$(curl -s "http://127.0.0.1:${rr1}/kv/sw")"
  KV_URL="http://127.0.0.1:${rp}" ./kvstore put --replicas 1 sw2 cli >/dev/null
  assertEquals 'kvstore put --replicas' 0 $?
  assertEquals 'the replica has that one too' cli \
    "$(curl -s "http://127.0.0.1:${rr1}/kv/sw2")"
  hdrs=$(curl -s -D - -o "${body}" -X PUT -d more -H 'X-Kv-Replicas: 2' \
    "http://127.0.0.1:${rp}/kv/sw" | tr -d '\r')
  assertEquals 'two asked, one replica: 504' 504 "$(status_code "${hdrs}")"
  seq=$(printf '%s\n' "${hdrs}" | sed -n 's/^X-Kv-Seq: //p')
  assertContains 'says the write is kept, and how many have it' \
    "$(cat "${body}")" "kept (seq ${seq}), but 1 of the 2"
  assertContains 'the 504 still names the version' "${hdrs}" "ETag: \"${seq}\""
  assertEquals 'and the write is kept' more \
    "$(curl -s "http://127.0.0.1:${rp}/kv/sw")"
  hdrs=$(curl -s -D - -o /dev/null -X DELETE -H 'X-Kv-Replicas: 1' \
    "http://127.0.0.1:${rp}/kv/sw" | tr -d '\r')
  assertEquals 'a DELETE acknowledged by one replica' 200 \
    "$(status_code "${hdrs}")"
  assertContains 'with its seq' "${hdrs}" 'X-Kv-Seq: '
  assertEquals 'so the replica has deleted it at once' 404 \
    "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:${rr1}/kv/sw")"
  out=$(KV_URL="http://127.0.0.1:${rp}" ./kvstore put --replicas 2 sw3 x 2>&1)
  assertEquals 'kvstore put --replicas beyond the replicas: exit 3' 3 $?
  assertContains 'and the server says why' "${out}" '1 of the 2'
  stop_nodes
}

testListingWatchesAndMetricsOnAReplica() {
  node p "${rp}" primary
  node r1 "${rr1}" replica
  wait_ready "${rr1}"
  purl="http://127.0.0.1:${rp}/kv"
  rurl="http://127.0.0.1:${rr1}/kv"
  for k in a b c; do curl -s -o /dev/null -X PUT -d "${k}" "${purl}/rl/${k}"; done
  printf '\377\000' | curl -s -o /dev/null -X PUT --data-binary @- \
    "${purl}/rl/bin"
  seq=$(curl -s -D - -o /dev/null -X PUT -d w0 "${purl}/rw" | tr -d '\r' |
    sed -n 's/^X-Kv-Seq: //p')
  wait_seq "${rr1}" "${seq}"
  page=$(curl -s "${rurl}/?prefix=rl/&limit=2")
  assertContains 'a page on the replica' "${page}" '"next":"'
  assertEquals 'prefix listing on the replica' 4 \
    "$(curl -s "${rurl}/?prefix=rl/" | tr ',' '\n' | grep -c 'rl/')"
  assertContains 'values listing on the replica, base64 for binary' \
    "$(curl -s "${rurl}/?prefix=rl/b&values=true")" '"value_base64":"/wA="'
  c0=$(connections "${rr1}")
  (wait_for 10 parked "${rr1}" 1 "${c0}"; echo $? >"${SHUNIT_TMPDIR}/held"
    curl -s -o /dev/null -X PUT -d w1 "${purl}/rw") &
  wpid=$!
  out=$(curl -s -D "${SHUNIT_TMPDIR}/watch.head" -w ' %{time_total}' \
    "${rurl}/rw?index=${seq}&wait=30s")
  assertEquals 'a watch on the replica sees the replicated write' w1 \
    "${out%% *}"
  wait "${wpid}"
  assertEquals 'held until the write' 0 "$(cat "${SHUNIT_TMPDIR}/held")"
  awk -v t="${out#* }" 'BEGIN { exit !(t < 20) }'
  assertTrue "as it arrives, not when the wait ends (${out#* } s of 30)" $?
  assertContains 'and answers with its version' \
    "$(tr -d '\r' <"${SHUNIT_TMPDIR}/watch.head")" "ETag: \"$((seq + 1))\""
  wait_seq "${rr1}" $((seq + 1))
  index=$(curl -s -D - -o /dev/null "${rurl}/?prefix=rl/" | tr -d '\r' |
    sed -n 's/^X-Kv-Index: //p')
  # Once the watch is held, a write elsewhere, then one under rl/ (each
  # replicated before the next).
  c0=$(connections "${rr1}")
  (wait_for 10 parked "${rr1}" 1 "${c0}"
    s=$(curl -s -D - -o /dev/null -X PUT -d x "${purl}/elsewhere" |
      tr -d '\r' | sed -n 's/^X-Kv-Seq: //p')
    wait_seq "${rr1}" "${s}"
    curl -s -o /dev/null -X PUT -d d "${purl}/rl/d") &
  # Woken by the write elsewhere, or not held at all, it would lack rl/d;
  # never woken, it would answer when its 30 s are up.
  out=$(curl -s -w ' %{time_total}' "${rurl}/?prefix=rl/&index=${index}&wait=30s")
  assertContains 'a listing watch on the replica answers a key under it' \
    "${out}" '"rl/d"'
  awk -v t="${out##* }" 'BEGIN { exit !(t < 20) }'
  assertTrue "as it is written (${out##* } s of 30)" $?
  seq=$(node_seq "${rp}")
  wait_seq "${rr1}" "${seq}"
  metrics=$(curl -s "http://127.0.0.1:${rr1}/metrics")
  assertContains 'replica metrics: the primary link' "${metrics}" \
    'kvstore_primary_up 1'
  assertContains 'replica metrics: the primary last heard' "${metrics}" \
    'kvstore_primary_last_heard_seconds '
  assertContains 'replica metrics: its sequence' "${metrics}" "
kvstore_seq ${seq}"
  assertEquals 'replica metrics: format and names' '' \
    "$(printf '%s\n' "${metrics}" | metric_problems)"
  metrics=$(curl -s "http://127.0.0.1:${rp}/metrics")
  r="{replica=\"http://127.0.0.1:${rr1}\"}"
  for m in "up${r} 1" "acked_seq${r} ${seq}" "lag_writes${r} 0" \
    "lag_seconds${r} 0.000" "full_syncs_total${r} 1" \
    "partial_syncs_total${r} 0" \
    "state{replica=\"http://127.0.0.1:${rr1}\",state=\"streaming\"} 1"; do
    assertContains "primary metrics: kvstore_replica_${m}" "${metrics}" \
      "kvstore_replica_${m}"
  done
  assertEquals 'primary metrics: format and names' '' \
    "$(printf '%s\n' "${metrics}" | metric_problems)"
  stop_nodes
}

testPagesMayComeFromAnyNodeOfTheDataSet() {
  # Through the read Service each page may come from another pod: a
  # replica hashes keys with its primary's seed, so cursors hold on both.
  node p "${rp}" primary FSYNC=no
  writes put_many "${rp}" stable- 1000
  node r1 "${rr1}" replica
  wait_ready "${rr1}"
  load "${rp}" 4000 churn >"${SHUNIT_TMPDIR}/churn.out" &
  lpid=$!
  cursor=
  : >"${SHUNIT_TMPDIR}/paged"
  for pages in $(seq 1 1000); do
    [ $((pages % 2)) = 0 ] && n="${rr1}" || n="${rp}"
    page=$(curl -s "http://127.0.0.1:${n}/kv/?limit=37${cursor:+&cursor=${cursor}}")
    printf '%s' "${page}" | sed 's/.*"keys":\[\(.*\)\],"next".*/\1/' |
      tr ',' '\n' | tr -d '"' | grep '^stable-' >>"${SHUNIT_TMPDIR}/paged"
    cursor=$(printf '%s' "${page}" | sed -n 's/.*"next":"\([0-9a-f]*\)".*/\1/p')
    [ -n "${cursor}" ] || break
  done
  wait "${lpid}"
  assertTrue "the writes meanwhile: $(cat "${SHUNIT_TMPDIR}/churn.out")" $?
  assertEquals "every stable key, pages from both nodes (${pages} pages)" \
    1000 "$(sort -u "${SHUNIT_TMPDIR}/paged" | wc -l)"
  assertEquals 'none twice' 1000 "$(wc -l <"${SHUNIT_TMPDIR}/paged")"
  stop_nodes
}

testMinReplicasToWriteRefusesWritesWithoutThem() {
  # REPL_TIMEOUT_MS far above the lag allowed: a frozen replica must stop
  # counting by its silence, long before its pusher gives up on it.
  node p "${rp}" primary MIN_REPLICAS_TO_WRITE=1 MAX_REPLICA_LAG_MS=1000 \
    REPL_TIMEOUT_MS=30000
  code=$(curl -s -o "${body}" -w '%{http_code}' -X PUT -d v \
    "http://127.0.0.1:${rp}/kv/mr")
  assertEquals 'no replica: 503' 503 "${code}"
  assertContains 'says why' "$(cat "${body}")" 'MIN_REPLICAS_TO_WRITE'
  code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:${rp}/kv/mr")
  assertEquals 'nothing was written' 404 "${code}"
  node r1 "${rr1}" replica
  wait_ready "${rr1}"
  code=$(curl -s -o /dev/null -w '%{http_code}' -X PUT -d v \
    "http://127.0.0.1:${rp}/kv/mr")
  assertEquals 'with a replica: 201' 201 "${code}"
  kill -STOP "$(pid_of r1)"
  # Idle: the probe, a DELETE of a key never written, writes nothing (the
  # check comes first: 503 without enough replicas, else 404).
  wait_for 10 '[ "$(delete_status "${rp}" mr-never)" = 503 ]'
  code=$(curl -s -o "${body}" -w '%{http_code}' -X DELETE \
    "http://127.0.0.1:${rp}/kv/mr")
  assertEquals 'its replica frozen while idle: 503' 503 "${code}"
  assertContains 'none within the lag' "$(cat "${body}")" '0 connected and within'
  kill -CONT "$(pid_of r1)"
  wait_for 10 '[ "$(delete_status "${rp}" mr-never)" = 404 ]'
  code=$(curl -s -o /dev/null -w '%{http_code}' -X DELETE \
    "http://127.0.0.1:${rp}/kv/mr")
  assertEquals 'the replica back: writes go through again' 200 "${code}"
  stop_nodes
}

# ---- Catch-up, full syncs and failures ----

testSpecTwoNodeSession() {
  # The README's two terminals as written: localhost URLs, and no
  # ADVERTISE_URL, so the replica announces http://$(hostname):PORT.
  node p "${rp}" primary REPLICA_URLS="http://localhost:${rr1}" \
    ADVERTISE_URL= PRIMARY_URL=
  node r1 "${rr1}" replica PRIMARY_URL="http://localhost:${rp}" ADVERTISE_URL=
  wait_ready "${rr1}" || fail "replica not ready: $(cat "${SHUNIT_TMPDIR}/r1.log")"
  code=$(curl -s -o /dev/null -w '%{http_code}' -X PUT -d alice \
    "http://localhost:${rp}/kv/name")
  assertEquals 'PUT on the primary' 201 "${code}"
  assertEquals 'read from the primary' alice \
    "$(curl -s "http://localhost:${rp}/kv/name")"
  wait_seq "${rr1}" "$(node_seq "${rp}")"
  assertEquals 'read from the replica' alice \
    "$(curl -s "http://localhost:${rr1}/kv/name")"
  assertEquals 'the same version on both' \
    "$(curl -s -D - -o /dev/null "http://127.0.0.1:${rp}/kv/name" | grep ETag)" \
    "$(curl -s -D - -o /dev/null "http://127.0.0.1:${rr1}/kv/name" | grep ETag)"
  code=$(curl -s -o "${body}" -w '%{http_code}' -X PUT -d bob \
    "http://localhost:${rr1}/kv/name")
  assertEquals 'PUT on the replica' 403 "${code}"
  assertEquals 'listing' '["name"]' "$(curl -s "http://localhost:${rp}/kv/")"
  code=$(curl -s -o /dev/null -w '%{http_code}' -X DELETE \
    "http://localhost:${rp}/kv/name")
  assertEquals 'DELETE on the primary' 200 "${code}"
  assertEquals 'roles' 'primary replica' \
    "$(curl -s "http://localhost:${rp}/role") $(curl -s "http://localhost:${rr1}/role")"
  assertEquals 'health and ready' '200 200' \
    "$(curl -s -o /dev/null -w '%{http_code}' "http://localhost:${rp}/health") $(
      curl -s -o /dev/null -w '%{http_code}' "http://localhost:${rp}/ready")"
  assert_converged "${rp}" "${rr1}" 'the spec session'
  ready=$(curl -s "http://127.0.0.1:${rp}/ready")
  # One node under two URLs (REPLICA_URLS and the one it announced, from
  # its hostname and PORT) is one replica: fed once, listed once, under
  # the URL that answered first, with the other as its alias.
  assertContains 'primary lists the replica, streaming' "${ready}" \
    '"state":"streaming"'
  assertEquals 'once' 1 "$(printf '%s' "${ready}" | grep -o '"url":' | wc -l)"
  assertEquals 'under both URLs' \
    "$(printf 'http://%s\n' "$(hostname):${rr1}" "localhost:${rr1}" | sort |
      tr '\n' ' ' | sed 's/ $//')" \
    "$(printf '%s' "${ready}" | grep -o '"\(url\|alias\)":"[^"]*"' |
      cut -d'"' -f4 | sort | tr '\n' ' ' | sed 's/ $//')"
  assertContains 'one of them registered' "${ready}" '"registered":true'
  # Finished, not started: the first begin can come before the replica
  # has looked its primary up, and is refused and sent again.
  assertEquals 'and one full sync sent to it' 1 \
    "$(grep -c 'full sync finished' "${SHUNIT_TMPDIR}/p.log")"
  ready=$(curl -s "http://127.0.0.1:${rr1}/ready")
  assertContains 'replica shows its primary link' "${ready}" '"link":"up"'
  stop_nodes
}

testReplicaAppliesEachWriteOnceAndRefusesAGap() {
  node p "${rp}" primary
  node r1 "${rr1}" replica
  wait_ready "${rr1}"
  curl -s -o /dev/null -X PUT -d one "http://127.0.0.1:${rp}/kv/once"
  wait_seq "${rr1}" "$(node_seq "${rp}")"
  stop_node p  # from here on, the only pushes are ours
  id=$(curl -s "http://127.0.0.1:${rr1}/ready" |
    sed -n 's/.*"repl_id":"\([0-9a-f]*\)".*/\1/p')
  s=$(node_seq "${rr1}")
  record P $((s + 1)) once two >"${SHUNIT_TMPDIR}/batch"
  apply "${id}" $((s + 1))
  assertEquals 'a batch is applied' "200 $((s + 1))" "${code} $(cat "${body}")"
  apply "${id}" $((s + 1))
  assertEquals 'the same batch again is harmless' "200 $((s + 1))" \
    "${code} $(cat "${body}")"
  record P $((s + 1)) once three >"${SHUNIT_TMPDIR}/batch"
  apply "${id}" $((s + 1))
  assertEquals 'a seq already applied is skipped' "200 two" \
    "${code} $(curl -s "http://127.0.0.1:${rr1}/kv/once")"
  record P $((s + 3)) gap x >"${SHUNIT_TMPDIR}/batch"
  apply "${id}" $((s + 3))
  assertEquals 'a batch past applied + 1 is refused' 409 "${code}"
  assertContains 'for a resync' "$(cat "${body}")" 'resync: gap'
  { record P $((s + 2)) next y; record P $((s + 4)) gap x; } \
    >"${SHUNIT_TMPDIR}/batch"
  apply "${id}" $((s + 2))
  assertEquals 'a gap inside a batch is refused' 409 "${code}"
  assertEquals 'nothing past the gap applied' "$((s + 2)) 404" \
    "$(node_seq "${rr1}") $(curl -s -o /dev/null -w '%{http_code}' \
      "http://127.0.0.1:${rr1}/kv/gap")"
  record P $((s + 3)) other z >"${SHUNIT_TMPDIR}/batch"
  apply "$(printf '%s' "${id}" | tr 0-9a-f 1-9a-f0)" $((s + 3))
  assertEquals 'another repl id is refused' 409 "${code}"
  assertEquals 'and applied nothing' "$((s + 2))" "$(node_seq "${rr1}")"
  # Only the open session's pushes are taken: not one without a session,
  # nor one of an older session, nor a guessed one.
  record P $((s + 3)) forged f >"${SHUNIT_TMPDIR}/batch"
  old=$(curl -s -X POST -H 'X-Kv-Repl-Token: x' \
    "http://127.0.0.1:${rr1}/repl/session?id=${id}")
  apply "${id}" $((s + 3))	# opens a newer session, and applies
  record P $((s + 4)) forged f >"${SHUNIT_TMPDIR}/batch"
  for sess in '' 0 1 "${old}"; do
    apply "${id}" $((s + 4)) "${sess:-none}"
    assertEquals "session '${sess}' is refused" 403 "${code}"
  done
  code=$(curl -s -o /dev/null -w '%{http_code}' --data-binary \
    @"${SHUNIT_TMPDIR}/batch" \
    "http://127.0.0.1:${rr1}/repl/apply?id=${id}&from=$((s + 4))")
  assertEquals 'a push without X-Kv-Repl-Token: 401' 401 "${code}"
  assertEquals 'nothing forged applied' "$((s + 3))" "$(node_seq "${rr1}")"
  stop_nodes
}

testReplicaKilledAndRestartedCatchesUpPartially() {
  node p "${rp}" primary
  node r1 "${rr1}" replica
  wait_ready "${rr1}"
  # shellcheck disable=SC2034 # read by the wait_for below
  s0=$(node_seq "${rr1}")
  load "${rp}" 2000 k >"${SHUNIT_TMPDIR}/k.out" &
  lpid=$!
  # Killed once the writes reach it.
  wait_for 10 '[ "$(node_seq "${rr1}")" -gt "${s0}" ]'
  kill -9 "$(pid_of r1)"
  # 8 MB it misses while down: the default 16 MiB backlog holds them.
  writes put_4k "${rp}" missed 2000
  node r1 "${rr1}" replica
  wait "${lpid}"
  assertTrue "the writes meanwhile: $(cat "${SHUNIT_TMPDIR}/k.out")" $?
  assert_converged "${rp}" "${rr1}" 'after kill -9 and restart'
  ready=$(curl -s "http://127.0.0.1:${rp}/ready")
  assertEquals "resumed without another full sync: ${ready}" 1 \
    "$(json_num "${ready}" full_syncs)"
  stop_nodes
}

testWipedReplicaFullSyncsWhileWritesContinue() {
  node p "${rp}" primary
  node r1 "${rr1}" replica
  wait_ready "${rr1}"
  writes load "${rp}" 3000 w
  stop_node r1
  rm -rf "${SHUNIT_TMPDIR}/r1"
  before=$(node_seq "${rp}")
  rm -f "${SHUNIT_TMPDIR}/load.stop"
  while [ ! -f "${SHUNIT_TMPDIR}/load.stop" ]; do
    load "${rp}" 500 x || exit 1
  done >"${SHUNIT_TMPDIR}/x.out" &
  lpid=$!
  # The copy must begin under writes: wait for the first (a slow machine
  # or a sanitizer can take longer to start them than r1 to come back).
  wait_for 10 '[ "$(node_seq "${rp}")" -gt "${before}" ]'
  node r1 "${rr1}" replica
  wait_for 30 log_has "${SHUNIT_TMPDIR}/r1.log" 'full sync done'
  # Writes go on after the copy too.
  s=$(node_seq "${rp}")
  wait_for 10 '[ "$(node_seq "${rp}")" -gt $((s + 100)) ]'
  touch "${SHUNIT_TMPDIR}/load.stop"
  wait "${lpid}"
  assertTrue "the writes during the copy: $(cat "${SHUNIT_TMPDIR}/x.out")" $?
  assert_converged "${rp}" "${rr1}" 'after wiping the replica'
  begun=$(sed -n 's/.*full sync from [0-9a-f]* begins at seq \([0-9]*\).*/\1/p' \
    "${SHUNIT_TMPDIR}/r1.log" | tail -n 1)
  echo "  the copy began at seq ${begun}; writes went from ${before} to $(node_seq "${rp}")"
  assertTrue "writes were going on when the copy began (${before} < ${begun:-none})" \
    "[ ${begun:-0} -gt ${before} ]"
  assertTrue "and went on after it, streamed from the backlog" \
    "[ $(node_seq "${rp}") -gt ${begun:-0} ]"
  stop_nodes
}

testStoppedReplicaBeyondTheBacklogFullSyncs() {
  node p "${rp}" primary REPL_BACKLOG_BYTES=65536 REPL_TIMEOUT_MS=500
  node r1 "${rr1}" replica
  wait_ready "${rr1}"
  kill -STOP "$(pid_of r1)"
  writes load "${rp}" 3000 s
  # Its pusher gives up on an answer after REPL_TIMEOUT_MS.
  wait_for 10 log_has "${SHUNIT_TMPDIR}/p.log" \
    "replica http://127.0.0.1:${rr1}: down: .*timed out"
  assertContains 'the stopped replica times out' "$(curl -s \
    "http://127.0.0.1:${rp}/ready")" '"state":"down"'
  kill -CONT "$(pid_of r1)"
  assert_converged "${rp}" "${rr1}" 'after SIGSTOP past the backlog'
  full=$(json_num "$(curl -s "http://127.0.0.1:${rp}/ready")" full_syncs)
  assertTrue "needed a second full sync (${full})" "[ ${full:-0} -ge 2 ]"
  stop_nodes
}

testStalledReplicaSlowsNeitherThePrimaryNorTheOthers() {
  # r2 stops answering for longer than the test; its pusher waits in a
  # read with a 60 s timeout, while 8 MB of writes pass a 1 MiB backlog.
  node p "${rp}" primary REPL_TIMEOUT_MS=60000 REPL_BACKLOG_BYTES=1048576
  node r1 "${rr1}" replica
  node r2 "${rr2}" replica
  for r in "${rr1}" "${rr2}"; do wait_ready "${r}"; done
  rss0=$(rss_anon "$(pid_of p)")
  kill -STOP "$(pid_of r2)"
  begin=$(date +%s%N)
  slow=$(put_4k "${rp}" stall 2000)
  answered=$?
  echo "  2000 writes of 4 KiB with a replica stalled:" \
    "$((($(date +%s%N) - begin) / 1000000)) ms"
  assertTrue "every write answered within a second: ${slow}" "${answered}"
  assert_converged "${rp}" "${rr1}" 'the other replica, beside a stalled one'
  rss=$(rss_anon "$(pid_of p)")
  echo "  primary RssAnon ${rss0} kB before, ${rss} kB after"
  # 1 MiB of backlog and a batch buffer per pusher; an unbounded backlog
  # would hold all 8 MB. (sanitized_or: tests/suite_abuse.sh.)
  assertTrue "the backlog bounds the primary's memory (${rss0} -> ${rss} kB)" \
    "[ $((rss - rss0)) -lt $(sanitized_or 1000000 4096) ]"
  ready=$(curl -s "http://127.0.0.1:${rp}/ready")
  stalled=$(printf '%s' "${ready}" |
    grep -o "{\"url\":\"http://127.0.0.1:${rr2}\"[^}]*}")
  assertTrue "the stalled replica shows its lag: ${stalled}" \
    "[ $(json_num "${stalled}" lag_writes) -gt 0 ] && [ $(json_num "${stalled}" lag_ms) -gt 0 ]"
  kill -CONT "$(pid_of r2)"
  assert_converged "${rp}" "${rr2}" 'the stalled replica, once resumed'
  stop_nodes
}

testPrimaryRestartKeepsReplicationGoing() {
  node p "${rp}" primary
  node r1 "${rr1}" replica
  wait_ready "${rr1}"
  writes load "${rp}" 1000 a
  stop_node p
  node p "${rp}" primary
  writes load "${rp}" 1000 b
  assert_converged "${rp}" "${rr1}" 'after a primary restart'
  stop_nodes
}

testOneReplicaUnderTwoNamesStillConverges() {
  # REPLICA_URLS says localhost, the replica announces 127.0.0.1: two
  # pushers feed one replica, and their full syncs must not mix.
  node p "${rp}" primary REPLICA_URLS="http://localhost:${rr1}"
  writes load "${rp}" 3000 two
  node r1 "${rr1}" replica
  writes load "${rp}" 3000 names
  assert_converged "${rp}" "${rr1}" 'one replica fed under two names'
  stop_nodes
}

testPrimaryKill9TakesANewIdAndReplicasConverge() {
  node p "${rp}" primary
  node r1 "${rr1}" replica
  wait_ready "${rr1}"
  writes load "${rp}" 1000 k9
  kill -9 "$(pid_of p)"
  wait "$(pid_of p)" 2>/dev/null
  node p "${rp}" primary
  assertContains 'a new replication id' "$(cat "${SHUNIT_TMPDIR}/p.log")" \
    'new replication id'
  writes load "${rp}" 500 after
  assert_converged "${rp}" "${rr1}" 'after a primary kill -9'
  assertContains 'the replica resumed under it, without a full sync' \
    "$(curl -s "http://127.0.0.1:${rp}/ready")" \
    '"full_syncs":0,"partial_syncs":1'
  stop_nodes
}

testReplicaStartedLaterAnnouncesItself() {
  node p "${rp}" primary
  writes load "${rp}" 500 l
  node r2 "${rr2}" replica
  assert_converged "${rp}" "${rr2}" 'a replica that registered itself'
  ready=$(curl -s "http://127.0.0.1:${rp}/ready")
  assertContains 'listed as registered' "${ready}" '"registered":true'
  stop_nodes
}

testThreeReplicasConvergeUnderConcurrentLoad() {
  node p "${rp}" primary
  for r in r1:"${rr1}" r2:"${rr2}" r3:"${rr3}"; do
    node "${r%%:*}" "${r##*:}" replica
  done
  for r in "${rr1}" "${rr2}" "${rr3}"; do wait_ready "${r}"; done
  lpids=
  for part in 1 2 3 4; do
    load "${rp}" 5000 "c${part}" >"${SHUNIT_TMPDIR}/c${part}.out" &
    lpids="${lpids} $!"
  done
  for l in ${lpids}; do
    wait "${l}"
    assertTrue "the writes of load ${l}: $(cat "${SHUNIT_TMPDIR}"/c?.out)" $?
  done
  for r in "${rr1}" "${rr2}" "${rr3}"; do
    assert_converged "${rp}" "${r}" "replica ${r} after 20,000 writes"
  done
  stop_nodes
}

testFullSyncOfDataFarLargerThanTheBacklog() {
  node p "${rp}" primary REPL_BACKLOG_BYTES=65536
  writes put_4k "${rp}" big 2000
  touch "${SHUNIT_TMPDIR}/r1.log"
  seen=$(wc -l <"${SHUNIT_TMPDIR}/r1.log")
  node r1 "${rr1}" replica
  assert_converged "${rp}" "${rr1}" '8 MB through a 64 KiB backlog' 2000
  # The snapshot says how many keys come: the copy gets buckets for all
  # 2,000 at once (a new store has 1,024) and never rehashes on the way.
  assertEquals 'compactions during the full sync' 0 \
    "$(tail -n +$((seen + 1)) "${SHUNIT_TMPDIR}/r1.log" | grep -c 'compacted to')"
  stop_nodes
}

testEmptyPrimaryRecoversFromItsReplicas() {
  pair_with_data 1000 e
  dump "${rp}" >"${SHUNIT_TMPDIR}/dump.before"
  stop_node p
  rm -rf "${SHUNIT_TMPDIR}/p"
  # Its replicas are found as the chart finds them: PEERS_DNS (without it
  # or REPLICA_URLS only announcements would find r1).
  node p "${rp}" primary RECOVER_WAIT_MS=8000 PEERS_DNS="localhost:${rr1}"
  wait_ready "${rp}" 12
  assertContains 'logged' "$(cat "${SHUNIT_TMPDIR}/p.log")" \
    'recovery: recovered'
  assertEquals 'sequence kept' "${before}" "$(node_seq "${rp}")"
  assert_converged "${rp}" "${rr1}" 'after the primary lost its volume'
  assertTrue 'nothing was wiped' "[ $(key_count "${rp}") -gt 0 ]"
  dump "${rp}" >"${SHUNIT_TMPDIR}/dump.after"
  assertTrue 'every key and value written before is back' \
    "cmp -s '${SHUNIT_TMPDIR}/dump.before' '${SHUNIT_TMPDIR}/dump.after'"
  stop_nodes
}

testFreshPrimaryThatFindsNoReplicaStartsEmptyLoudly() {
  # A new store and a REPLICA_URLS replica that never answers.
  begin=$(date +%s%N)
  env PORT="${rp}" ROLE=primary DATA_DIR="${SHUNIT_TMPDIR}/p" \
    REPLICA_URLS="http://127.0.0.1:${rr1}" RECOVER_WAIT_MS=3000 ./kvstore \
    >>"${SHUNIT_TMPDIR}/p.log" 2>&1 &
  echo "p $!" >>"${SHUNIT_TMPDIR}/nodes"
  echo "$!" >>"${SHUNIT_TMPDIR}/pids"
  wait_up "${rp}" || fail "the primary did not start"
  assertEquals 'alive while it looks for its data' 200 \
    "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:${rp}/health")"
  code=$(curl -s -o "${body}" -w '%{http_code}' "http://127.0.0.1:${rp}/ready")
  assertEquals 'not ready meanwhile' 503 "${code}"
  assertContains 'says why' "$(cat "${body}")" '"status":"recovering"'
  # A write meanwhile waits, and is made once the primary has decided.
  curl -s -o "${SHUNIT_TMPDIR}/early.out" -w '%{http_code}' -X PUT -d v \
    "http://127.0.0.1:${rp}/kv/early" >"${SHUNIT_TMPDIR}/early.code" &
  early=$!
  wait_ready "${rp}" 10
  ms=$((($(date +%s%N) - begin) / 1000000))
  wait "${early}"
  assertEquals 'a write sent while it looked waited, then was made' 201 \
    "$(cat "${SHUNIT_TMPDIR}/early.code")"
  echo "  ready after ${ms} ms (RECOVER_WAIT_MS=3000)"
  assertTrue "it waited RECOVER_WAIT_MS, and no more (${ms} ms)" \
    "[ ${ms} -ge 2900 ] && [ ${ms} -lt 8000 ]"
  assertContains 'it says so in its log' "$(cat "${SHUNIT_TMPDIR}/p.log")" \
    'STARTING EMPTY'
  assertContains 'and in /ready' "$(curl -s "http://127.0.0.1:${rp}/ready")" \
    '"warning":"this primary started with an empty store'
  code=$(curl -s -o /dev/null -w '%{http_code}' -X PUT -d v \
    "http://127.0.0.1:${rp}/kv/late")
  assertEquals 'then takes writes' 201 "${code}"
  stop_nodes
}

testReplicationNeedsTheToken() {
  node p "${rp}" primary REPL_TOKEN=s3cret
  node r1 "${rr1}" replica REPL_TOKEN=s3cret
  wait_ready "${rr1}"
  curl -s -o /dev/null -X PUT -d v "http://127.0.0.1:${rp}/kv/tok"
  wait_seq "${rr1}" "$(node_seq "${rp}")"
  assertEquals 'replicated with the token' v \
    "$(curl -s "http://127.0.0.1:${rr1}/kv/tok")"
  seqs="$(node_seq "${rp}") $(node_seq "${rr1}")"
  zero=00000000000000000000000000000000
  # Every endpoint on both nodes; a token that is a prefix of the right
  # one, or the right one and more, is as wrong as any other.
  for n in "${rp}" "${rr1}"; do
    for req in "GET state" "GET snapshot" "POST register" \
      "POST session?id=${zero}" \
      "POST apply?id=${zero}&from=1" "POST sync/begin?id=${zero}&seq=1" \
      "POST sync/data?id=${zero}&token=1" \
      "POST sync/end?id=${zero}&seq=1&token=1"; do
      for tok in '' wrong s3cre s3crett; do
        args=(-s -o /dev/null -w '%{http_code}' -X "${req%% *}")
        [ -n "${tok}" ] && args+=(-H "X-Kv-Repl-Token: ${tok}")
        [ "${req%% *}" = POST ] && args+=(-d http://127.0.0.1:1)
        code=$(curl "${args[@]}" "http://127.0.0.1:${n}/repl/${req#* }")
        assertEquals "${n} ${req%%\?*} with token '${tok}'" 401 "${code}"
      done
    done
  done
  assertEquals 'nothing was written anywhere' "${seqs}" \
    "$(node_seq "${rp}") $(node_seq "${rr1}")"
  assertEquals 'and nothing registered' 1 \
    "$(curl -s "http://127.0.0.1:${rp}/ready" | grep -o '"url":"http' | wc -l)"
  assertNotContains 'token never logged' \
    "$(cat "${SHUNIT_TMPDIR}/p.log" "${SHUNIT_TMPDIR}/r1.log")" s3cret
  stop_nodes
}

testReplicaReadinessFollowsItsFirstSync() {
  node r1 "${rr1}" replica
  code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:${rr1}/ready")
  assertEquals 'not ready before any sync' 503 "${code}"
  KV_URL="http://127.0.0.1:${rr1}" ./kvstore status >/dev/null 2>&1
  assertEquals 'kvstore status: exit 3 while not ready' 3 $?
  code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:${rr1}/health")
  assertEquals 'but alive' 200 "${code}"
  node p "${rp}" primary
  wait_ready "${rr1}"
  assertTrue 'ready after the first sync' $?
  KV_URL="http://127.0.0.1:${rr1}" ./kvstore status >/dev/null
  assertEquals 'kvstore status: exit 0 once ready' 0 $?
  curl -s -o /dev/null -X PUT -d kept "http://127.0.0.1:${rp}/kv/last"
  seq=$(node_seq "${rp}")
  wait_seq "${rr1}" "${seq}"
  # What /ready shows on each side, once idle: only heartbeats flow.
  wait_for 10 'ready_has "${rp}" "\"acked_seq\":${seq}," &&
    ready_has "${rp}" "\"lag_writes\":0," && ready_has "${rp}" "\"lag_ms\":0,"'
  ready=$(curl -s "http://127.0.0.1:${rp}/ready")
  for field in '"state":"streaming"' "\"acked_seq\":${seq}," \
    '"lag_writes":0,' '"lag_ms":0,'; do
    assertContains "primary's /ready: ${field}" "${ready}" "${field}"
  done
  id=$(printf '%s' "${ready}" | sed -n 's/.*"repl_id":"\([0-9a-f]*\)".*/\1/p')
  ready=$(curl -s "http://127.0.0.1:${rr1}/ready")
  for field in '"link":"up"' "\"applied_seq\":${seq}," \
    "\"repl_id\":\"${id}\"" '"last_heard_ms":'; do
    assertContains "replica's /ready: ${field}" "${ready}" "${field}"
  done
  heard=0
  # The test itself: 12 looks over 2.4 s, each must find the primary
  # heard from within the last second and a half.
  for _ in $(seq 1 12); do
    h=$(json_num "$(curl -s "http://127.0.0.1:${rr1}/ready")" last_heard_ms)
    [ "${h:-99999}" -gt "${heard}" ] && heard=${h:-99999}
    sleep 0.2
  done
  assertTrue "heard from the primary at least every second (at most ${heard} ms ago)" \
    "[ ${heard} -le 1500 ]"
  stop_node p
  wait_for 10 '[ "$(json_num "$(curl -s "http://127.0.0.1:${rr1}/ready")" \
    last_heard_ms)" -ge 3000 ]'
  ready=$(curl -s -w '%{http_code}' "http://127.0.0.1:${rr1}/ready")
  assertContains 'still ready with the primary down' "${ready}" '}
200'
  assertContains 'says the link is down' "${ready}" '"link":"down"'
  assertTrue 'and how long ago it last heard from it' \
    "[ $(json_num "${ready}" last_heard_ms) -ge 3000 ]"
  assertEquals 'and serves its last data' kept \
    "$(curl -s "http://127.0.0.1:${rr1}/kv/last")"
  assertEquals '/health is still 200' 200 \
    "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:${rr1}/health")"
  stop_nodes
}

testSigtermOnThePrimaryDeliversPendingWrites() {
  node p "${rp}" primary
  node r1 "${rr1}" replica
  wait_ready "${rr1}"
  wait_streaming "${rp}" "${rr1}"
  # The replica is behind when SIGTERM comes, and answers again 1 s
  # later, inside the primary's 3 s for delivering.
  kill -STOP "$(pid_of r1)"
  writes load "${rp}" 2000 t
  seq=$(node_seq "${rp}")
  kill "$(pid_of p)"
  # The test itself: the replica still frozen a second into the shutdown.
  sleep 1
  kill -CONT "$(pid_of r1)"
  wait "$(pid_of p)"
  assertEquals 'exit status' 0 $?
  assertEquals 'replica has every write' "${seq}" "$(node_seq "${rr1}")"
  # One that never answers again: the primary gives up on it in time.
  node p "${rp}" primary
  wait_streaming "${rp}" "${rr1}" || fail 'the replica did not come back'
  kill -STOP "$(pid_of r1)"
  writes load "${rp}" 500 u
  begin=$(date +%s%N)
  stop_node p
  ms=$((($(date +%s%N) - begin) / 1000000))
  echo "  SIGTERM with a replica that never answers: exited in ${ms} ms"
  assertEquals 'exit status, a replica unreachable' 0 "${stopped}"
  assertTrue "it tried for its 3 s, and stopped then (${ms} ms)" \
    "[ ${ms} -ge 2900 ] && [ ${ms} -lt 6000 ]"
  kill -CONT "$(pid_of r1)"
  stop_nodes
}

# ---- Helpers ----

# le N BYTES: N as BYTES little-endian bytes, as printf escapes.
le() {
  for i in $(seq 0 $(($2 - 1))); do printf '\\x%02x' $((($1 >> (8 * i)) & 255)); done
}
# record OP SEQ KEY [VALUE]: one replication record (the format at the top
# of repl.c).
record() {
  # shellcheck disable=SC2059
  printf "%s$(le "$2" 8)$(le "${#3}" 2)$(le "${#4}" 4)%s%s" "$1" "$3" "${4:-}"
}
# apply ID FROM [SESSION]: POST ${SHUNIT_TMPDIR}/batch to the replica on
# ${rr1} as its primary does, in a session of its own (or SESSION).
apply() {
  sess=${3:-$(curl -s -X POST -H 'X-Kv-Repl-Token: x' \
    "http://127.0.0.1:${rr1}/repl/session?id=$1")}
  code=$(curl -s -o "${body}" -w '%{http_code}' --data-binary \
    @"${SHUNIT_TMPDIR}/batch" -H 'X-Kv-Repl-Token: x' \
    "http://127.0.0.1:${rr1}/repl/apply?id=$1&from=$2&session=${sess}")
}
# rss_anon PID: the process's anonymous resident memory in kB.
rss_anon() { awk '/^RssAnon:/ { print $2 }' "/proc/$1/status"; }
