# shellcheck shell=bash
# shellcheck disable=SC2154 # test.sh sets the fixtures' variables (port, body, ...)
# A hostile peer and a hostile client, sourced by test.sh: numbers from the
# wire are bounded, a full sync is fed only by the peer that began it, and
# only the primary's address opens a replica's session or sync.

# hpost PORT PATH [CURL ARGS...]: POST as a peer would; sets code and body.
hpost() {
  code=$(curl -s -o "${body}" -w '%{http_code}' -X POST \
    -H 'X-Kv-Repl-Token: x' "${@:3}" "http://127.0.0.1:$1$2")
}

testAPeersSequenceNumbersAreBounded() {
  # The test plays the primary: PRIMARY_URL is this address.
  start hostile ROLE=replica PRIMARY_URL="http://127.0.0.1:${rr3}"
  wait_for 5 log_has "${slog}" 'cannot register with the primary'
  id=0123456789abcdef0123456789abcdef
  hpost "${sport}" "/repl/sync/begin?id=${id}&seq=18446744073709551609"
  assertEquals 'a seq that would wrap: not a number we take' 400 "${code}"
  hpost "${sport}" "/repl/sync/begin?id=${id}&seq=$(((1 << 53) + 1))"
  assertEquals 'a seq past 2^53' 400 "${code}"
  assertContains 'says why' "$(cat "${body}")" '2^53'
  # A keys hint is bounded by what the data set can hold: a data set at
  # seq 5 holds at most 5 keys, so no 514 MiB file for 16,777,216.
  hpost "${sport}" "/repl/sync/begin?id=${id}&seq=5&keys=16777216"
  assertEquals 'a sync begins' 200 "${code}"
  size=$(du -k "${SHUNIT_TMPDIR}/hostile/kvstore.db.sync" | cut -f1)
  assertTrue "the copy's file is small (${size} KiB)" "[ ${size} -lt 4096 ]"
  # The token that names the sync cannot be guessed from a counter.
  token=$(cat "${body}")
  assertTrue "a random token (${token})" "[ ${#token} -ge 10 ]"
  record P 1 k v >"${SHUNIT_TMPDIR}/batch"
  for guess in 1 2 3 $((token + 1)); do
    hpost "${sport}" "/repl/sync/data?id=${id}&token=${guess}" \
      --data-binary "@${SHUNIT_TMPDIR}/batch"
    assertEquals "token ${guess} feeds nothing" 409 "${code}"
  done
  # A record whose seq is out of range is refused, not stored.
  record P $(((1 << 53) + 1)) k v >"${SHUNIT_TMPDIR}/batch"
  hpost "${sport}" "/repl/sync/data?id=${id}&token=${token}" \
    --data-binary "@${SHUNIT_TMPDIR}/batch"
  assertEquals 'a record past 2^53: refused' 409 "${code}"
  assertContains 'says why' "$(cat "${body}")" 'out of range'
  stop "${spid}"
}

# Another host on the network (127.0.0.2 stands in for it) cannot open a
# replica's session, whose token lets it push records, nor begin a full
# sync, which would replace its data set: only PRIMARY_URL's address can.
testOnlyThePrimaryOpensAReplicasSessionOrSync() {
  node p "${rp}" primary
  node r1 "${rr1}" replica
  wait_ready "${rr1}" || fail "not ready: $(tail -n 5 "${SHUNIT_TMPDIR}/r1.log")"
  curl -s -o /dev/null -X PUT -d real "http://127.0.0.1:${rp}/kv/k"
  wait_seq "${rr1}" "$(node_seq "${rp}")"
  id=$(curl -s "http://127.0.0.1:${rr1}/ready" |
    sed -n 's/.*"repl_id":"\([0-9a-f]*\)".*/\1/p')
  for req in "session?id=${id}" "sync/begin?id=${id}&seq=1"; do
    hpost "${rr1}" "/repl/${req}" --interface 127.0.0.2
    assertEquals "${req%%\?*} from another address" 403 "${code}"
    assertContains 'says why' "$(cat "${body}")" 'PRIMARY_URL'
  done
  curl -s -o /dev/null -X PUT -d later "http://127.0.0.1:${rp}/kv/k"
  wait_seq "${rr1}" "$(node_seq "${rp}")"
  assertEquals 'the primary still feeds it' later \
    "$(curl -s "http://127.0.0.1:${rr1}/kv/k")"
  hpost "${rr1}" "/repl/session?id=${id}"
  assertEquals "from PRIMARY_URL's address: $(cat "${body}")" 200 "${code}"
  stop_nodes
  # No PRIMARY_URL: no address is the primary's.
  start lonely ROLE=replica
  hpost "${sport}" "/repl/session?id=${id}"
  assertEquals 'a replica without PRIMARY_URL opens none' 403 "${code}"
  assertContains 'says so' "$(cat "${body}")" 'unset'
  stop "${spid}"
}

# A hostile value or server text never reaches a terminal raw from the CLI:
# what kvstore prints about an answer is escaped; a value asked for is not.
testTheCliEscapesServerTextItPrints() {
  printf 'x\033]0;owned\007\033[2J' |
    curl -s -o /dev/null -X PUT --data-binary @- "${url}/kv/esc"
  err=$(KV_URL="${url}" ./kvstore get --expect other esc 2>&1 >/dev/null)
  assertNotEquals 'a mismatch fails' 0 $?
  assertContains 'the value is shown escaped' "${err}" '\x1b]0;owned\x07'
  assertFalse 'with no raw escape byte' \
    "printf '%s' \"\${err}\" | grep -q \$'\\033'"
  KV_URL="${url}" ./kvstore get esc >"${SHUNIT_TMPDIR}/esc.out"
  printf 'x\033]0;owned\007\033[2J' >"${SHUNIT_TMPDIR}/esc.want"
  assertTrue 'get prints the value as it is' \
    "cmp -s '${SHUNIT_TMPDIR}/esc.out' '${SHUNIT_TMPDIR}/esc.want'"
}

# A hostile client: request smuggling and forged Host fields are refused,
# and nothing they carry is stored.
testSmugglingAndForgedHostsAreRefused() {
  for h in 'a b' 'user@host' 'host/path' 'a, b' ':80'; do
    out=$(raw "${port}" "PUT /kv/smug HTTP/1.1\r\nHost: ${h}\r\nContent-Length: 1\r\n\r\nx")
    assertEquals "Host: ${h}" 400 "$(status_code "${out}")"
  done
  out=$(raw "${port}" 'PUT /kv/smug HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1\nx\r\n0\r\n\r\n')
  assertEquals 'a chunk size line ending in a bare LF' 400 \
    "$(status_code "${out}")"
  out=$(raw "${port}" 'PUT /kv/smug HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\nno-colon\r\n\r\n')
  assertEquals 'a trailer line without a colon' 400 "$(status_code "${out}")"
  out=$(raw "${port}" 'PUT /kv/smug HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n')
  assertEquals 'both framings' 400 "$(status_code "${out}")"
  get smug
  assertEquals 'nothing stored' 404 "${code}"
}

# hget PORT PATH [CURL ARGS...]: GET as a peer would; sets code and body.
hget() {
  code=$(curl -s -o "${body}" -w '%{http_code}' \
    -H 'X-Kv-Repl-Token: x' "${@:3}" "http://127.0.0.1:$1$2")
}

# /repl/tail gives a node's recent writes to a primary that lost them:
# only under the peers' header, only whole, only of its own data set.
testTheTailOfABacklogIsGivenWholeOrNotAtAll() {
  start hostile
  for i in 1 2 3; do
    curl -s -o /dev/null -X PUT -d "v${i}" "http://127.0.0.1:${sport}/kv/t${i}"
  done
  id=$(curl -s "http://127.0.0.1:${sport}/ready" |
    sed -n 's/.*"repl_id":"\([0-9a-f]*\)".*/\1/p')
  code=$(curl -s -o "${body}" -w '%{http_code}' \
    "http://127.0.0.1:${sport}/repl/tail?id=${id}&from=2")
  assertEquals 'a browser cannot ask: no peer header' 401 "${code}"
  hget "${sport}" "/repl/tail?id=${id}&from=2"
  assertEquals 'its writes 2..3' 200 "${code}"
  # op P, seq (u64), klen (u16), vlen (u32), key, value: repl.c's format.
  assertEquals 'two records, 2 and 3, as the wire has them' \
    "50 02 00 00 00 00 00 00 00 02 00 02 00 00 00 74 32 76 32 \
50 03 00 00 00 00 00 00 00 02 00 02 00 00 00 74 33 76 33" \
    "$(od -An -v -tx1 "${body}" | tr -s ' \n' ' ' | sed 's/^ //; s/ $//')"
  hget "${sport}" "/repl/tail?id=${id}&from=0"
  assertEquals 'from 0: not held' 409 "${code}"
  hget "${sport}" "/repl/tail?id=${id}&from=$(((1 << 53) + 5))"
  assertEquals 'from past the newest' 409 "${code}"
  hget "${sport}" "/repl/tail?id=${id}&from=99999999999999999999999"
  assertEquals 'a number that overflows' 400 "${code}"
  hget "${sport}" "/repl/tail?id=fedcba9876543210fedcba9876543210&from=2"
  assertEquals 'another data set' 409 "${code}"
  assertContains 'says why' "$(cat "${body}")" 'another data set'
  hget "${sport}" "/repl/tail?id=nothex&from=2"
  assertEquals 'a bad id' 400 "${code}"
  hget "${sport}" "/repl/tail?id=${id}&from=2" -X POST
  assertEquals 'GET only' 405 "${code}"
  stop "${spid}"
}
