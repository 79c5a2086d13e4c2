# shellcheck shell=bash
# shellcheck disable=SC2154 # test.sh sets the fixtures' variables (port, body, ...)
# Expiring keys and locks, sourced by test.sh: PUT ?ttl=, X-Kv-Expires-In,
# the primary's expiry as an ordinary delete (same seq on replicas, watches
# fire), TTLs through kill -9 and full syncs, hostile ttl= values, and
# kvstore put --ttl and kvstore lock. TTLs are a few hundred ms, and the
# tests poll for what follows rather than sleep.

# ---- On one primary ----

testTtlKeyExpiresAndSaysWhen() {
  code=$(curl -s -o "${body}" -D "${SHUNIT_TMPDIR}/ttl.hdr" -w '%{http_code}' \
    -X PUT -d v "${url}/kv/ttl1?ttl=2s")
  seq=$(tr -d '\r' <"${SHUNIT_TMPDIR}/ttl.hdr" | sed -n 's/^X-Kv-Seq: //p')
  assertEquals 'PUT ?ttl=2s' 201 "${code}"
  for m in GET HEAD; do
    left=$(ttl_expires_in "${url}" ttl1 "${m}")
    awk -v l="${left}" 'BEGIN { exit !(l > 0 && l <= 2) }'
    assertTrue "${m}: X-Kv-Expires-In in (0, 2]: '${left}'" $?
  done
  wait_for 5 ttl_gone "${url}" ttl1
  assertTrue 'the key is gone after its ttl' $?
  wait_for 2 seq_is "${port}" "$((seq + 1))"
  assertTrue "its delete took a seq of its own (${seq} + 1)" $?
  assertEquals 'a permanent key says nothing of expiry' '' \
    "$(put ttlp v; ttl_expires_in "${url}" ttlp GET)"
}

testTtlPutWithoutTtlMakesTheKeyPermanent() {
  curl -s -o /dev/null -X PUT -d v "${url}/kv/ttl2?ttl=1s"
  put ttl2 w
  assertEquals 'PUT without ttl replaces' 200 "${code}"
  assertEquals 'and no expiry is left' '' "$(ttl_expires_in "${url}" ttl2 GET)"
  sleep 1.2
  get ttl2
  assertEquals 'still there after the old ttl' '200 w' "${code} $(cat "${body}")"
  curl -s -o /dev/null -X PUT -d v "${url}/kv/ttl2?ttl=1h"
  left=$(ttl_expires_in "${url}" ttl2 GET)
  awk -v l="${left}" 'BEGIN { exit !(l > 3590 && l <= 3600) }'
  assertTrue "a new ttl is a new expiry: '${left}'" $?
}

testTtlListingShowsExpiresIn() {
  curl -s -o /dev/null -X PUT -d v "${url}/kv/ttl3a?ttl=1m"
  put ttl3b w
  out=$(curl -s "${url}/kv/?prefix=ttl3&values=true")
  assertContains 'the expiring key' "${out}" '"key":"ttl3a","value":"v","version":'
  assertContains 'with expires_in' "${out}" ',"expires_in":59.'
  assertEquals 'only it' 1 "$(grep -o expires_in <<<"${out}" | wc -l)"
}

# A lock: take it with If-None-Match: *, renew it with If-Match, and take
# it again once its holder let it lapse.
testTtlLockTakeContendRenewLapse() {
  take() {
    code=$(curl -s -D "${SHUNIT_TMPDIR}/ttl.hdr" -o "${body}" -w '%{http_code}' \
      -X PUT -d "$1" -H "$2" "${url}/kv/ttllock?ttl=$3")
    seq=$(tr -d '\r' <"${SHUNIT_TMPDIR}/ttl.hdr" | sed -n 's/^X-Kv-Seq: //p')
  }
  take a 'If-None-Match: *' 2s
  assertEquals 'taken' 201 "${code}"
  held=${seq}
  take b 'If-None-Match: *' 2s
  assertEquals 'held: another cannot take it' 412 "${code}"
  take a "If-Match: \"${held}\"" 2s
  assertEquals 'renewed by its holder' 200 "${code}"
  take b "If-Match: \"${held}\"" 2s
  assertEquals 'not with an old version' 412 "${code}"
  wait_for 5 ttl_gone "${url}" ttllock
  assertTrue 'a lock not renewed lapses' $?
  take b 'If-None-Match: *' 10s
  assertEquals 'then another takes it' 201 "${code}"
}

# Past its expiry a key is gone on the primary at once, even for a write
# made before the sweep has run.
testTtlWatchFiresOnExpiry() {
  curl -s -o /dev/null -X PUT -d v "${url}/kv/ttlw?ttl=300ms"
  idx=$(node_seq "${port}")
  out=$(curl -s -o /dev/null -w '%{http_code} %{time_total}' --max-time 10 \
    "${url}/kv/ttlw?index=${idx}&wait=5s")
  assertEquals 'the watch answers the delete' 404 "${out%% *}"
  awk -v t="${out#* }" 'BEGIN { exit !(t < 2) }'
  assertTrue "when the key expires, not at the wait's end: ${out#* } s" $?
}

testTtlHostileValuesAreRefused() {
  for t in -1 abc 999999999999h 0 0ms 1.5s 1d 87601h 315360000001ms '' \
    '%00' '10s%20' 's' 18446744073709551617; do
    code=$(curl -s -o "${body}" -w '%{http_code}' -X PUT -d v \
      "${url}/kv/ttlbad?ttl=${t}")
    assertEquals "ttl=${t}" '400 bad ttl' "${code} $(cut -c1-7 "${body}")"
  done
  get ttlbad
  assertEquals 'nothing was written' 404 "${code}"
  put ttlbad v
  code=$(curl -s -o "${body}" -w '%{http_code}' -X DELETE \
    "${url}/kv/ttlbad?ttl=1s")
  assertEquals 'ttl with DELETE' '400 ttl= goes with PUT only' \
    "${code} $(cat "${body}")"
  get ttlbad
  assertEquals 'and nothing was deleted' 200 "${code}"
  code=$(curl -s -o /dev/null -w '%{http_code}' -X PUT -d v \
    "${url}/kv/ttlbad?ttl=87600h")
  assertEquals 'ten years is the most' 200 "${code}"
}

# ---- The CLI ----

testTtlCliPutTtl() {
  out=$(KV_URL="${url}" ./kvstore put --ttl 1m ttlc v 2>&1)
  assertEquals 'put --ttl' 'created' "${out}"
  left=$(ttl_expires_in "${url}" ttlc GET)
  awk -v l="${left}" 'BEGIN { exit !(l > 50 && l <= 60) }'
  assertTrue "the key expires in a minute: '${left}'" $?
  out=$(KV_URL="${url}" ./kvstore put --ttl 5x ttlc v 2>&1)
  assertEquals "a bad --ttl is a usage error: ${out}" 2 $?
}

# Two kvstore locks on one name: the second waits for the first, each
# command's exit status comes through, and the lock is gone at the end.
testTtlCliLockContendsAndPassesTheStatus() {
  KV_URL="${url}" ./kvstore lock ttlcl --ttl 1500ms -- \
    sh -c 'echo one >>"$1"; sleep 2; echo one >>"$1"; exit 5' _ \
    "${SHUNIT_TMPDIR}/ttl.order" &
  first=$!
  wait_for 5 ttl_present "${url}" ttlcl
  out=$(KV_URL="${url}" ./kvstore lock ttlcl --wait 0 -- true 2>&1)
  assertEquals "held, no waiting: 1 (${out})" 1 $?
  KV_URL="${url}" ./kvstore lock ttlcl --wait 10 -- \
    sh -c 'echo two >>"$1"; exit 7' _ "${SHUNIT_TMPDIR}/ttl.order"
  assertEquals "the second command's status" 7 $?
  wait "${first}"
  assertEquals "the first command's status" 5 $?
  assertEquals 'one after the other, the first renewing past its ttl' \
    'one one two' "$(tr '\n' ' ' <"${SHUNIT_TMPDIR}/ttl.order" | sed 's/ $//')"
  get ttlcl
  assertEquals 'released' 404 "${code}"
}

testTtlCliLockLostStopsTheCommand() {
  KV_URL="${url}" ./kvstore lock ttlll --ttl 600ms -- sleep 20 \
    2>"${SHUNIT_TMPDIR}/ttl.err" &
  holder=$!
  wait_for 5 ttl_present "${url}" ttlll
  del ttlll
  wait_exit "${holder}" 5
  assertEquals 'a lost lock ends the command; exit 3' 3 "${exited}"
  assertContains 'and says so' "$(cat "${SHUNIT_TMPDIR}/ttl.err")" \
    'lock ttlll lost'
}

# ---- Restarts, replicas, full syncs ----

testTtlSurvivesKill9OfThePrimary() {
  start ttlk
  u="http://127.0.0.1:${sport}"
  curl -s -o /dev/null -X PUT -d v "${u}/kv/short?ttl=1500ms"
  curl -s -o /dev/null -X PUT -d v "${u}/kv/long?ttl=1h"
  kill -9 "${spid}"
  wait "${spid}" 2>/dev/null
  start ttlk
  u="http://127.0.0.1:${sport}"
  left=$(ttl_expires_in "${u}" long GET)
  awk -v l="${left}" 'BEGIN { exit !(l > 3500 && l <= 3600) }'
  assertTrue "the expiry survived: '${left}'" $?
  wait_for 5 ttl_gone "${u}" short
  assertTrue 'and the short one still expires' $?
  stop "${spid}"
}

# A replica full-syncs the primary's expiries, streams new ones, shows a
# key until the primary's delete arrives, and has that delete at the
# primary's seq. Writes with ttl= to a replica are refused like others.
testTtlReplicaFollowsThePrimarysExpiry() {
  node p "${rp}" primary RECOVER_WAIT_MS=0
  p="http://127.0.0.1:${rp}" r="http://127.0.0.1:${rr1}"
  curl -s -o /dev/null -X PUT -d v "${p}/kv/synced?ttl=1h"
  node r1 "${rr1}" replica
  wait_ready "${rr1}"
  wait_seq "${rr1}" "$(node_seq "${rp}")"
  left=$(ttl_expires_in "${r}" synced GET)
  awk -v l="${left}" 'BEGIN { exit !(l > 3500 && l <= 3600) }'
  assertTrue "the full sync carried the expiry: '${left}'" $?
  curl -s -o /dev/null -X PUT -d v "${p}/kv/streamed?ttl=700ms"
  seq=$(node_seq "${rp}")
  wait_for 5 ttl_gone "${p}" streamed
  wait_seq "${rr1}" "$((seq + 1))"
  assertEquals 'the delete has the same seq on both' "$(node_seq "${rp}")" \
    "$(node_seq "${rr1}")"
  code=$(curl -s -o /dev/null -w '%{http_code}' "${r}/kv/streamed")
  assertEquals 'gone on the replica too' 404 "${code}"
  code=$(curl -s -o "${body}" -w '%{http_code}' -X PUT -d v \
    "${r}/kv/x?ttl=1s")
  assertEquals 'ttl= on a replica: read-only' 403 "${code}"
  stop_nodes
}

# ---- Helpers ----

# ttl_expires_in URL KEY METHOD: the X-Kv-Expires-In of KEY, or nothing.
ttl_expires_in() {
  if [ "$3" = HEAD ]; then
    curl -s -I "$1/kv/$2"
  else
    curl -s -o /dev/null -D - "$1/kv/$2"
  fi | tr -d '\r' | sed -n 's/^X-Kv-Expires-In: //p'
}
ttl_gone() { [ "$(curl -s -o /dev/null -w '%{http_code}' "$1/kv/$2")" = 404 ]; }
ttl_present() { [ "$(curl -s -o /dev/null -w '%{http_code}' "$1/kv/$2")" = 200 ]; }
