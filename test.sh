#!/bin/bash
# kvstore's test suite: the C unit tests, then real servers on loopback
# driven with curl and raw sockets, then crash and torn-file cases.
# Run it with `make test`; it ends with the line "N passed, M failed".

# ---- Unit tests (C, from tests/) ----

testHttpParserUnitTests() {
  out=$(tests/http_test 2>&1)
  assertTrue "http_test failed: ${out}" $?
  echo "${out}" | tail -n 1
}

testReplUnitTests() {
  out=$(tests/repl_test 2>&1)
  assertTrue "repl_test failed: ${out}" $?
  echo "${out}" | tail -n 1
}

testStoreUnitTests() {
  mkdir -p "${SHUNIT_TMPDIR}/unit"
  out=$(tests/store_test "${SHUNIT_TMPDIR}/unit" 2>&1)
  assertTrue "store_test failed: ${out}" $?
  echo "${out}" | grep '^power loss: [0-9]'
  echo "${out}" | tail -n 1
}

# ---- The spec's API ----

testSpecCurlSessionOnOnePrimary() {
  put name alice
  assertEquals 'PUT new key' 201 "${code}"
  get name
  assertEquals 'GET status' 200 "${code}"
  assertEquals 'GET body' alice "$(cat "${body}")"
  list
  assertContains 'listing has the key' "$(cat "${body}")" '"name"'
  del name
  assertEquals 'DELETE status' 200 "${code}"
  get name
  assertEquals 'GET after DELETE' 404 "${code}"
  assertEquals 'role' primary "$(curl -s "${url}/role")"
  call GET /health
  assertEquals 'health' 200 "${code}"
  call GET /ready
  assertEquals 'ready' 200 "${code}"
  assertContains 'ready names the role' "$(cat "${body}")" '"role":"primary"'
  assertContains 'ready counts keys' "$(cat "${body}")" '"keys":'
}

testPutReplacingAKeyAnswers200() {
  put replaced one
  assertEquals 'first PUT' 201 "${code}"
  put replaced two
  assertEquals 'second PUT' 200 "${code}"
  get replaced
  assertEquals 'value' two "$(cat "${body}")"
}

testEmptyValueIsStoredAndReturned() {
  put empty ''
  assertEquals 'PUT empty' 201 "${code}"
  get empty
  assertEquals 'GET empty' 200 "${code}"
  assertEquals 'empty body' 0 "$(wc -c <"${body}")"
}

testBinaryValueRoundTripsExactly() {
  printf 'a\0b\r\nc\377\n' >"${SHUNIT_TMPDIR}/bin"
  code=$(curl -s -o /dev/null -w '%{http_code}' -X PUT \
    --data-binary "@${SHUNIT_TMPDIR}/bin" "${url}/kv/binary")
  assertEquals 'PUT binary' 201 "${code}"
  get binary
  cmp -s "${SHUNIT_TMPDIR}/bin" "${body}"
  assertTrue 'value bytes unchanged' $?
  ctype=$(curl -s -o /dev/null -w '%{content_type}' "${url}/kv/binary")
  assertEquals 'content type' application/octet-stream "${ctype}"
}

testDeleteOfMissingKeyAnswers404() {
  del never-written
  assertEquals 'DELETE missing' 404 "${code}"
  assertContains 'says why' "$(cat "${body}")" 'not found'
}

testKeysArePercentDecodedOnce() {
  put 'a%2Fb' slash
  get 'a/b'
  assertEquals '%2F and / name the same key' slash "$(cat "${body}")"
  put 'with%20space' sp
  list
  assertContains 'space' "$(cat "${body}")" '"with space"'
  put '%C3%A9t%C3%A9' summer
  get 'été'
  assertEquals 'UTF-8 key' summer "$(cat "${body}")"
  put '100%2525' pct
  get '100%25'
  assertEquals 'decoded exactly once' 404 "${code}"
  get '100%2525'
  assertEquals 'double-escaped key' pct "$(cat "${body}")"
}

testBadKeysAreRefused() {
  put 'bad%G1' x
  assertEquals 'invalid escape' 400 "${code}"
  put 'nul%00byte' x
  assertEquals 'NUL in key' 400 "${code}"
  put 'half%4' x
  assertEquals 'truncated escape' 400 "${code}"
  put "$(printf 'k%.0s' $(seq 1 1024))" x
  assertEquals '1024-byte key' 201 "${code}"
  put "$(printf 'k%.0s' $(seq 1 1025))" x
  assertEquals '1025-byte key' 414 "${code}"
  assertContains 'says the limit' "$(cat "${body}")" 1024
  call PUT /kv/
  assertEquals 'empty key' 405 "${code}"
}

testListingIsStreamedJsonWithEscapedKeys() {
  put 'q%22uote' 1
  put 'back%5Cslash' 1
  put 'ctl%01' 1
  put 'raw%FFbyte' 1
  list
  listing=$(cat "${body}")
  assertContains 'quote' "${listing}" '"q\"uote"'
  assertContains 'backslash' "${listing}" '"back\\slash"'
  assertContains 'control byte' "${listing}" '"ctl\u0001"'
  assertContains 'invalid UTF-8' "${listing}" '"raw\udcffbyte"'
  te=$(curl -s -D - -o /dev/null "${url}/kv/" | tr -d '\r' |
    grep -i '^transfer-encoding')
  assertEquals 'chunked' 'Transfer-Encoding: chunked' "${te}"
}

testListingOfManyKeysHasEachKeyOnce() {
  start lst FSYNC=no
  put_many "${sport}" many- 3000
  curl -s "http://127.0.0.1:${sport}/kv/" | tr ',' '\n' |
    tr -d '[]"' | sort >"${SHUNIT_TMPDIR}/listed"
  assertEquals 'keys listed' 3000 "$(wc -l <"${SHUNIT_TMPDIR}/listed")"
  assertEquals 'no duplicates' 3000 \
    "$(sort -u "${SHUNIT_TMPDIR}/listed" | wc -l)"
  stop "${spid}"
}

testListingWithAPrefixAndWithValues() {
  start lp FSYNC=no
  lurl="http://127.0.0.1:${sport}/kv"
  put_many "${sport}" pfx/ 30
  curl -s -o /dev/null -X PUT -d other "${lurl}/zzz"
  printf '\377\000\001' | curl -s -o /dev/null -X PUT --data-binary @- \
    "${lurl}/binary"
  listed=$(curl -s "${lurl}/?prefix=pfx%2F" | tr ',' '\n' | grep -c '"pfx/')
  assertEquals 'prefix: its keys only' 30 "${listed}"
  assertNotContains 'prefix: no other key' \
    "$(curl -s "${lurl}/?prefix=pfx/")" zzz
  assertContains 'values: text as a string' \
    "$(curl -s "${lurl}/?values=true&prefix=zzz")" '{"key":"zzz","value":"other","version":'
  assertContains 'values: other bytes in base64' \
    "$(curl -s "${lurl}/?values=true&prefix=bin")" '"value_base64":"/wAB"'
  code=$(curl -s -o /dev/null -w '%{http_code}' "${lurl}/?limit=0")
  assertEquals 'limit 0' 400 "${code}"
  code=$(curl -s -o /dev/null -w '%{http_code}' "${lurl}/?cursor=nothex")
  assertEquals 'bad cursor' 400 "${code}"
  stop "${spid}"
}

testPagedListingReturnsEachKeyOnceWhileWritesContinue() {
  start pages FSYNC=no
  purl="http://127.0.0.1:${sport}/kv"
  put_many "${sport}" stable- 2000
  load "${sport}" 6000 churn >/dev/null &
  lpid=$!
  cursor=
  : >"${SHUNIT_TMPDIR}/paged"
  pages=0
  differ=0
  while :; do
    page=$(curl -s -D "${SHUNIT_TMPDIR}/page.head" \
      "${purl}/?limit=37${cursor:+&cursor=${cursor}}")
    printf '%s' "${page}" | sed 's/.*"keys":\[\(.*\)\],"next".*/\1/' |
      tr ',' '\n' | tr -d '"' | grep '^stable-' >>"${SHUNIT_TMPDIR}/paged"
    pages=$((pages + 1))
    cursor=$(printf '%s' "${page}" | sed -n 's/.*"next":"\([0-9a-f]*\)".*/\1/p')
    [ "$(tr -d '\r' <"${SHUNIT_TMPDIR}/page.head" |
      sed -n 's/^X-Kv-Next-Cursor: //p')" = "${cursor}" ] ||
      differ=$((differ + 1))
    if [ -z "${cursor}" ] || [ "${pages}" -ge 1000 ]; then break; fi
  done
  wait "${lpid}"
  assertEquals 'pages whose X-Kv-Next-Cursor is not their "next"' 0 \
    "${differ}"
  assertEquals "every stable key (${pages} pages)" 2000 \
    "$(sort -u "${SHUNIT_TMPDIR}/paged" | wc -l)"
  assertEquals 'none twice' 2000 "$(wc -l <"${SHUNIT_TMPDIR}/paged")"
  stop "${spid}"
}

testValueLimitAnswers413BeforeTheBody() {
  head -c 1048576 /dev/zero >"${SHUNIT_TMPDIR}/mib"
  code=$(curl -s -o /dev/null -w '%{http_code}' -X PUT \
    --data-binary "@${SHUNIT_TMPDIR}/mib" "${url}/kv/onemib")
  assertEquals 'exactly MAX_VALUE_BYTES' 201 "${code}"
  # Only the head is sent: the 413 must come without the body.
  out=$(raw "${port}" 'PUT /kv/big HTTP/1.1\r\nHost: x\r\nContent-Length: 1048577\r\n\r\n')
  assertEquals 'over the limit' 413 "$(status_code "${out}")"
}

testReplicaRefusesWritesNamingThePrimary() {
  start rep ROLE=replica PRIMARY_URL=http://primary.example:8080
  surl="http://127.0.0.1:${sport}"
  assertEquals 'role' replica "$(curl -s "${surl}/role")"
  code=$(curl -s -o "${body}" -w '%{http_code}' -X PUT -d v "${surl}/kv/k")
  assertEquals 'PUT on replica' 403 "${code}"
  assertContains 'names the primary' "$(cat "${body}")" \
    'http://primary.example:8080'
  code=$(curl -s -o /dev/null -w '%{http_code}' -X DELETE "${surl}/kv/k")
  assertEquals 'DELETE on replica' 403 "${code}"
  code=$(curl -s -o /dev/null -w '%{http_code}' "${surl}/kv/k")
  assertEquals 'GET on replica' 404 "${code}"
  stop "${spid}"
}

testWrongMethodAnswers405WithAllow() {
  allow=$(curl -s -D - -o /dev/null -X POST -d x "${url}/kv/k" |
    tr -d '\r' | grep -i '^allow:')
  assertEquals 'Allow on /kv/k' 'Allow: GET, HEAD, PUT, DELETE' "${allow}"
  call DELETE /health
  assertEquals 'DELETE /health' 405 "${code}"
  call GET /nowhere
  assertEquals 'unknown path' 404 "${code}"
}

testHeadSendsTheHeadOnly() {
  put headkey 12345
  out=$(curl -s -I "${url}/kv/headkey" | tr -d '\r')
  assertContains 'status' "${out}" 'HTTP/1.1 200'
  assertContains 'length of the GET body' "${out}" 'Content-Length: 5'
  assertContains 'Date header' "${out}" 'Date: '
  out=$(raw "${port}" 'HEAD /kv/headkey HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
  assertEquals 'no body after the head' '' "$(printf '%s' "${out}" |
    sed '1,/^\r$/d')"
}

# ---- HTTP/1.1 as clients speak it ----

testKeepAliveReusesOneConnection() {
  n=$(curl -s -o /dev/null -o /dev/null -w '%{num_connects}\n' \
    "${url}/health" "${url}/health" | tail -n 1)
  assertEquals 'second request made no new connection' 0 "${n}"
}

testPipelinedRequestsAreAnsweredInOrder() {
  put pipe1 first
  put pipe2 second
  out=$(raw "${port}" 'GET /kv/pipe1 HTTP/1.1\r\nHost: x\r\n\r\nGET /kv/pipe2 HTTP/1.1\r\nHost: x\r\n\r\nGET /role HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
  assertEquals 'three responses' 3 "$(count_status "${out}" 200)"
  assertEquals 'in order' 'first second primary' "$(printf '%s' "${out}" |
    grep -a -o 'first\|second\|primary' | tr '\n' ' ' | sed 's/ $//')"
}

testPipelinedPutBodiesDoNotLeakIntoTheNextRequest() {
  out=$(raw "${port}" 'PUT /kv/pb1 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabcPUT /kv/pb2 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nde\r\n0\r\n\r\nGET /kv/pb1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
  assertEquals 'three responses' 3 "$(count_status "${out}" '20[01]')"
  get pb2
  assertEquals 'chunked body' de "$(cat "${body}")"
}

testHttp10KeepAliveIsHonouredAndAnnounced() {
  out=$(raw "${port}" 'GET /health HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /role HTTP/1.0\r\n\r\n')
  assertContains 'keep-alive echoed' "${out}" 'Connection: keep-alive'
  assertEquals 'both answered' 2 "$(count_status "${out}" 200)"
  start=$(date +%s%N)
  raw "${port}" 'GET /health HTTP/1.0\r\n\r\n' >/dev/null
  elapsed=$((($(date +%s%N) - start) / 1000000))
  assertTrue "HTTP/1.0 without keep-alive is closed (${elapsed} ms)" \
    "[ ${elapsed} -lt 2500 ]"
}

testExpect100ContinueIsAnsweredBeforeTheBody() {
  exec 3<>"/dev/tcp/127.0.0.1/${port}"
  printf 'PUT /kv/expect HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n' >&3
  IFS= read -r -t 3 line <&3
  assertEquals 'interim response' 'HTTP/1.1 100 Continue' "${line%$'\r'}"
  printf 'hello' >&3
  IFS= read -r -t 3 line <&3
  IFS= read -r -t 3 line <&3
  assertEquals 'final response' 'HTTP/1.1 201 Created' "${line%$'\r'}"
  exec 3<&-
  get expect
  assertEquals 'stored' hello "$(cat "${body}")"
}

testChunkedUploadFromAPipeIsStored() {
  code=$(printf 'from a pipe' | curl -s -o /dev/null -w '%{http_code}' \
    -T - "${url}/kv/piped")
  assertEquals 'PUT -T -' 201 "${code}"
  get piped
  assertEquals 'value' 'from a pipe' "$(cat "${body}")"
}

testMalformedRequestsAreRefused() {
  check_raw 'bad chunk size' 400 'PUT /kv/c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nab\r\n0\r\n\r\n'
  check_raw 'CL and TE' 400 'PUT /kv/c HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n0\r\n\r\n'
  check_raw 'differing CLs' 400 'PUT /kv/c HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc'
  check_raw 'no Host' 400 'GET /health HTTP/1.1\r\n\r\n'
  check_raw 'two Hosts' 400 'GET /health HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n'
  check_raw 'bare CR' 400 'GET /health HTTP/1.1\r\nHost: x\rX: y\r\n\r\n'
  check_raw 'space before colon' 400 'GET /health HTTP/1.1\r\nHost : x\r\n\r\n'
  check_raw 'obs-fold' 400 'GET /health HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n'
  check_raw 'HTTP/2.0' 505 'GET /health HTTP/2.0\r\nHost: x\r\n\r\n'
  check_raw 'garbage' 400 'HELLO\r\n\r\n'
  check_raw 'gzip coding' 501 'PUT /kv/c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n'
  check_raw 'bad CL' 400 'PUT /kv/c HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n'
  check_raw 'HTTP/1.0 needs no Host' 200 'GET /health HTTP/1.0\r\n\r\n'
  check_raw 'empty line first' 200 '\r\nGET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'
  call GET /health
  assertEquals 'still serving' 200 "${code}"
}

testOversizedHeadAndTargetAreRefused() {
  filler=$(head -c 17000 /dev/zero | tr '\0' a)
  check_raw 'head over 16 KiB' 431 "GET /health HTTP/1.1\r\nHost: x\r\nX: ${filler}\r\n\r\n"
  check_raw 'target over 8 KiB' 414 "GET /kv/${filler:0:9000} HTTP/1.1\r\nHost: x\r\n\r\n"
}

testEveryResponseHasADateAndAServer() {
  out=$(curl -s -D - -o /dev/null "${url}/kv/nothing-here" | tr -d '\r')
  assertContains 'Date' "${out}" 'Date: '
  assertContains 'length' "${out}" 'Content-Length: '
}

testConnectionCapAnswers503AndRecovers() {
  start cap MAX_CONNS=3
  exec 4<>"/dev/tcp/127.0.0.1/${sport}" 5<>"/dev/tcp/127.0.0.1/${sport}" \
    6<>"/dev/tcp/127.0.0.1/${sport}"
  sleep 0.2
  out=$(raw "${sport}" 'GET /health HTTP/1.1\r\nHost: x\r\n\r\n')
  assertEquals 'over the cap' 503 "$(status_code "${out}")"
  exec 4<&- 5<&- 6<&-
  sleep 0.2
  code=$(curl -s -o /dev/null -w '%{http_code}' \
    "http://127.0.0.1:${sport}/health")
  assertEquals 'serves again below the cap' 200 "${code}"
  stop "${spid}"
}

testSlowHeaderTimesOutWith408() {
  start slow HEADER_TIMEOUT_MS=300
  out=$(raw "${sport}" 'GET /health HTTP/1.1\r\nHost: x\r\n')
  assertEquals 'slow head' 408 "$(status_code "${out}")"
  stop "${spid}"
}

testIdleKeepAliveConnectionIsClosed() {
  start idle IDLE_TIMEOUT_MS=300
  begin=$(date +%s%N)
  out=$(raw "${sport}" 'GET /health HTTP/1.1\r\nHost: x\r\n\r\n')
  elapsed=$((($(date +%s%N) - begin) / 1000000))
  assertContains 'answered' "${out}" 'HTTP/1.1 200'
  assertTrue "closed by the server after idling (${elapsed} ms)" \
    "[ ${elapsed} -lt 2500 ]"
  stop "${spid}"
}

testListensOnIPv6Too() {
  if ! grep -q . /proc/net/if_inet6 2>/dev/null; then
    startSkipping
  fi
  code=$(curl -s -g -o /dev/null -w '%{http_code}' "http://[::1]:${port}/health")
  assertEquals 'GET over ::1' 200 "${code}"
}

testClientThatHangsUpMidResponseDoesNotKillTheServer() {
  for _ in 1 2 3 4 5; do
    timeout 1 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"; printf "GET /kv/onemib HTTP/1.1\r\nHost: x\r\n\r\n" >&3; exec 3<&-' _ "${port}"
  done
  call GET /health
  assertEquals 'alive after SIGPIPE-prone hang-ups' 200 "${code}"
}

# ---- Versions and compare-and-swap ----

testWritesAndReadsCarryTheirVersion() {
  hdrs=$(curl -s -D - -o /dev/null -X PUT -d one "${url}/kv/ver" | tr -d '\r')
  seq=$(printf '%s\n' "${hdrs}" | sed -n 's/^X-Kv-Seq: //p')
  assertContains 'PUT has an ETag' "${hdrs}" "ETag: \"${seq}\""
  hdrs=$(curl -s -D - -o /dev/null "${url}/kv/ver" | tr -d '\r')
  assertContains 'GET has the same ETag' "${hdrs}" "ETag: \"${seq}\""
  code=$(curl -s -o /dev/null -w '%{http_code}' -H "If-None-Match: \"${seq}\"" \
    "${url}/kv/ver")
  assertEquals 'If-None-Match current: 304' 304 "${code}"
  code=$(curl -s -o /dev/null -w '%{http_code}' \
    -H "If-None-Match: \"$((seq + 1000))\"" "${url}/kv/ver")
  assertEquals 'If-None-Match stale: 200' 200 "${code}"
  code=$(curl -s -o /dev/null -w '%{http_code}' \
    -H "If-None-Match: \"$((seq + 1000))\", W/\"${seq}\"" "${url}/kv/ver")
  assertEquals 'If-None-Match: a list, weakly compared (RFC 9110)' 304 "${code}"
  code=$(curl -s -o /dev/null -w '%{http_code}' -X PUT -d two \
    -H "If-Match: W/\"${seq}\"" "${url}/kv/ver")
  assertEquals 'If-Match compares strongly: a weak tag never matches' 412 \
    "${code}"
  code=$(curl -s -o "${body}" -w '%{http_code}' -X PUT -d two \
    -H "If-Match: \"$((seq + 1000))\"" "${url}/kv/ver")
  assertEquals 'If-Match stale: 412' 412 "${code}"
  assertContains 'says the version' "$(cat "${body}")" "version ${seq}"
  code=$(curl -s -o /dev/null -w '%{http_code}' -X PUT -d two \
    -H "If-Match: \"${seq}\"" "${url}/kv/ver")
  assertEquals 'If-Match current: 200' 200 "${code}"
  code=$(curl -s -o /dev/null -w '%{http_code}' -X PUT -d x \
    -H 'If-None-Match: *' "${url}/kv/ver")
  assertEquals 'create-only on an existing key: 412' 412 "${code}"
  code=$(curl -s -o /dev/null -w '%{http_code}' -X PUT -d x \
    -H 'If-None-Match: *' "${url}/kv/ver-new")
  assertEquals 'create-only on a new key: 201' 201 "${code}"
  code=$(curl -s -o /dev/null -w '%{http_code}' -X DELETE \
    -H 'If-Match: "1"' "${url}/kv/ver")
  assertEquals 'DELETE with a stale If-Match: 412' 412 "${code}"
  get ver
  assertEquals 'value unchanged by refused writes' two "$(cat "${body}")"
  code=$(curl -s -o /dev/null -w '%{http_code}' -X PUT -d x \
    -H 'If-Match: *' "${url}/kv/ver-absent")
  assertEquals 'If-Match: * on a missing key: 412' 412 "${code}"
  etag=$(curl -s -D - -o /dev/null "${url}/kv/ver" | tr -d '\r' |
    sed -n 's/^ETag: //p')
  hdrs=$(curl -s -D - -o /dev/null -X DELETE -H "If-Match: ${etag}" \
    "${url}/kv/ver" | tr -d '\r')
  assertEquals 'DELETE with the current If-Match: 200' 200 \
    "$(status_code "${hdrs}")"
  seq=$(printf '%s\n' "${hdrs}" | sed -n 's/^X-Kv-Seq: //p')
  assertTrue "the DELETE's X-Kv-Seq (${seq}) follows the value's ${etag}" \
    "[ ${seq:-0} -gt ${etag//\"/} ]"
}

testReplicaServesTheSameVersions() {
  node p "${rp}" primary
  node r1 "${rr1}" replica
  wait_ready "${rr1}"
  hdrs=$(curl -s -D - -o /dev/null -X PUT -d one "http://127.0.0.1:${rp}/kv/rv" |
    tr -d '\r')
  seq=$(printf '%s\n' "${hdrs}" | sed -n 's/^X-Kv-Seq: //p')
  wait_seq "${rr1}" "${seq}"
  for m in GET HEAD; do
    hdrs=$(curl -s -D - -o /dev/null -X "${m}" "http://127.0.0.1:${rr1}/kv/rv" |
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

testCompareAndSwapLosesNoIncrement() {
  put counter 0
  tests/cas "${port}" counter 8 500
  assertEquals 'cas exit status' 0 $?
  get counter
  assertEquals '8 clients x 500 increments' 4000 "$(cat "${body}")"
}

# ---- Waiting: read-your-writes, synchronous writes, watches ----

testReadYourWritesOnAReplica() {
  node p "${rp}" primary
  node r1 "${rr1}" replica MIN_SEQ_WAIT_MS=2000
  wait_ready "${rr1}"
  seq=$(curl -s -D - -o /dev/null -X PUT -d mine "http://127.0.0.1:${rp}/kv/ryw" |
    tr -d '\r' | sed -n 's/^X-Kv-Seq: //p')
  assertEquals 'read own write on the replica' mine \
    "$(curl -s -H "X-Kv-Min-Seq: ${seq}" "http://127.0.0.1:${rr1}/kv/ryw")"
  # Reads that arrive before the write they ask for: they must wait for it,
  # and the node must go on answering others meanwhile.
  (sleep 1; curl -s -o /dev/null -X PUT -d later "http://127.0.0.1:${rp}/kv/ryw") &
  curl -s -o "${SHUNIT_TMPDIR}/ryw.list" -H "X-Kv-Min-Seq: $((seq + 1))" \
    "http://127.0.0.1:${rr1}/kv/?prefix=ryw&values=true" &
  lpid=$!
  sleep 0.2
  out=$(curl -s -o /dev/null -w '%{http_code} %{time_total}' \
    "http://127.0.0.1:${rr1}/health")
  assertEquals 'the replica answers others while reads wait' 200 "${out%% *}"
  awk -v t="${out#* }" 'BEGIN { exit !(t < 0.7) }'
  assertTrue "and at once (${out#* } s)" $?
  out=$(curl -s -w ' %{time_total}' -H "X-Kv-Min-Seq: $((seq + 1))" \
    "http://127.0.0.1:${rr1}/kv/ryw")
  assertEquals 'a read that came first waits for the write' later "${out%% *}"
  awk -v t="${out#* }" 'BEGIN { exit !(t > 0.5) }'
  assertTrue "held until the write (${out#* } s)" $?
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
  (sleep 0.4; curl -s -o /dev/null -X PUT -d w1 "${purl}/rw") &
  wpid=$!
  out=$(curl -s -D "${SHUNIT_TMPDIR}/watch.head" -w ' %{time_total}' \
    "${rurl}/rw?index=${seq}&wait=5s")
  assertEquals 'a watch on the replica sees the replicated write' w1 \
    "${out%% *}"
  awk -v t="${out#* }" 'BEGIN { exit !(t > 0.2 && t < 4) }'
  assertTrue "as it arrives (${out#* } s)" $?
  wait "${wpid}"
  assertContains 'and answers with its version' \
    "$(tr -d '\r' <"${SHUNIT_TMPDIR}/watch.head")" "ETag: \"$((seq + 1))\""
  wait_seq "${rr1}" $((seq + 1))
  index=$(curl -s -D - -o /dev/null "${rurl}/?prefix=rl/" | tr -d '\r' |
    sed -n 's/^X-Kv-Index: //p')
  (sleep 0.3; curl -s -o /dev/null -X PUT -d x "${purl}/elsewhere"
    sleep 0.3; curl -s -o /dev/null -X PUT -d d "${purl}/rl/d") &
  # Woken by the write elsewhere, or not held at all, it would lack rl/d;
  # never woken, it would answer when its 5 s are up.
  out=$(curl -s -w ' %{time_total}' "${rurl}/?prefix=rl/&index=${index}&wait=5s")
  assertContains 'a listing watch on the replica answers a key under it' \
    "${out}" '"rl/d"'
  awk -v t="${out##* }" 'BEGIN { exit !(t < 4) }'
  assertTrue "as it is written (${out##* } s)" $?
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
  put_many "${rp}" stable- 1000
  node r1 "${rr1}" replica
  wait_ready "${rr1}"
  load "${rp}" 4000 churn >/dev/null &
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
  sleep 3
  code=$(curl -s -o "${body}" -w '%{http_code}' -X DELETE \
    "http://127.0.0.1:${rp}/kv/mr")
  assertEquals 'its replica frozen 3 s while idle: 503' 503 "${code}"
  assertContains 'none within the lag' "$(cat "${body}")" '0 connected and within'
  kill -CONT "$(pid_of r1)"
  for _ in $(seq 1 50); do
    code=$(curl -s -o /dev/null -w '%{http_code}' -X DELETE \
      "http://127.0.0.1:${rp}/kv/mr")
    [ "${code}" = 503 ] || break
    sleep 0.1
  done
  assertEquals 'the replica back: writes go through again' 200 "${code}"
  stop_nodes
}

testWatchAnswersWhenTheKeyChanges() {
  put watched one
  etag=$(curl -s -D - -o /dev/null "${url}/kv/watched" | tr -d '\r' |
    sed -n 's/^ETag: "\(.*\)"/\1/p')
  (sleep 0.4; curl -s -o /dev/null -X PUT -d two "${url}/kv/watched") &
  out=$(curl -s -D "${SHUNIT_TMPDIR}/watch.head" -w ' %{time_total}' \
    "${url}/kv/watched?index=${etag}&wait=5s")
  assertEquals 'the new value' two "${out%% *}"
  awk -v t="${out#* }" 'BEGIN { exit !(t > 0.3 && t < 4) }'
  assertTrue "held until the write, not until the wait ends (${out#* } s)" $?
  assertContains 'with its version' "$(tr -d '\r' <"${SHUNIT_TMPDIR}/watch.head")" \
    "ETag: \"$((etag + 1))\""
  etag=$(curl -s -D - -o /dev/null "${url}/kv/watched" | tr -d '\r' |
    sed -n 's/^ETag: "\(.*\)"/\1/p')
  code=$(curl -s -o "${body}" -w '%{http_code}' \
    "${url}/kv/watched?index=${etag}&wait=300ms")
  assertEquals 'no change: the current value when the wait ends' \
    '200 two' "${code} $(cat "${body}")"
  (sleep 0.3; curl -s -o /dev/null -X DELETE "${url}/kv/watched") &
  out=$(curl -s -o /dev/null -w '%{http_code} %{time_total}' \
    "${url}/kv/watched?index=${etag}&wait=5s")
  assertEquals 'a delete ends the watch' 404 "${out%% *}"
  awk -v t="${out#* }" 'BEGIN { exit !(t < 4) }'
  assertTrue "at once (${out#* } s)" $?
  code=$(curl -s -o /dev/null -w '%{http_code}' "${url}/kv/watched?index=1&wait=forever")
  assertEquals 'bad wait: 400' 400 "${code}"
}

testWatchOnAPrefixAnswersOnAChangeUnderIt() {
  index=$(curl -s -D - -o /dev/null "${url}/kv/?prefix=wp/" | tr -d '\r' |
    sed -n 's/^X-Kv-Index: //p')
  (sleep 0.3; curl -s -o /dev/null -X PUT -d x "${url}/kv/elsewhere"
    sleep 0.3; curl -s -o /dev/null -X PUT -d y "${url}/kv/wp/1") &
  # A listing ends in a newline: the time follows it.
  out=$(curl -s -w '%{time_total}' \
    "${url}/kv/?prefix=wp/&index=${index}&wait=5s")
  assertEquals 'the listing after the change under the prefix' '["wp/1"]' \
    "${out%%$'\n'*}"
  awk -v t="${out##*$'\n'}" 'BEGIN { exit !(t < 4) }'
  assertTrue "as it happens, not when the wait ends (${out##*$'\n'} s)" $?
}

testManyParkedWatchesCostLittle() {
  ulimit -Sn 4096 2>/dev/null
  start watches
  wurl="http://127.0.0.1:${sport}"
  curl -s -o /dev/null -X PUT -d 0 "${wurl}/kv/w"
  etag=$(curl -s -D - -o /dev/null "${wurl}/kv/w" | tr -d '\r' |
    sed -n 's/^ETag: "\(.*\)"/\1/p')
  # RssAnon: the heap and stacks, not the store's mapped file.
  rss0=$(awk '/^RssAnon/ { print $2 }' "/proc/${spid}/status")
  threads0=$(awk '/^Threads/ { print $2 }' "/proc/${spid}/status")
  fds=
  for _ in $(seq 1 2000); do
    exec {fd}<>"/dev/tcp/127.0.0.1/${sport}"
    printf 'GET /kv/w?index=%s&wait=60s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' \
      "${etag}" >&"${fd}"
    fds="${fds} ${fd}"
  done
  for _ in $(seq 1 50); do
    parked=$(curl -s "${wurl}/metrics" |
      sed -n 's/^kvstore_http_connections //p')
    [ "${parked}" -gt 2000 ] && break
    sleep 0.1
  done
  rss1=$(awk '/^RssAnon/ { print $2 }' "/proc/${spid}/status")
  per=$(((rss1 - rss0) / 2000))
  echo "  2000 parked watches: RssAnon +$((rss1 - rss0)) KiB, ${per} KiB each"
  assertEquals 'threads while 2000 watches wait' "${threads0}" \
    "$(awk '/^Threads/ { print $2 }' "/proc/${spid}/status")"
  # Under ThreadSanitizer (make tsan) RSS is mostly its shadow memory.
  [ -n "${KV_TSAN:-}" ] ||
    assertTrue "a parked watch costs ${per} KiB (at most 16)" "[ ${per} -le 16 ]"
  assertEquals 'the server still answers' ok "$(curl -s "${wurl}/health")"
  curl -s -o /dev/null -X PUT -d 1 "${wurl}/kv/w"
  answered=0
  t=5
  for fd in ${fds}; do
    # Builtins only: 2000 answers. The last read, at the close, gets the
    # body, which has no newline. Once one is missing, wait no more.
    while IFS= read -r -t "${t}" line <&"${fd}"; do :; done
    if [ "${line}" = 1 ]; then answered=$((answered + 1)); else t=0.01; fi
    exec {fd}<&-
  done
  assertEquals 'one write answered every watch' 2000 "${answered}"
  stop "${spid}"
}

testMetricsInThePrometheusFormat() {
  seq=$(curl -s -D - -o /dev/null -X PUT -d v "${url}/kv/metric-key" |
    tr -d '\r' | sed -n 's/^X-Kv-Seq: //p')
  out=$(curl -s "${url}/metrics")
  assertContains 'requests by method and code' "${out}" \
    'kvstore_http_requests_total{method="PUT",code="201"}'
  assertContains 'latency histogram' "${out}" \
    'kvstore_http_request_duration_seconds_bucket{method="GET",le="+Inf"}'
  for f in http_connections keys data_bytes file_bytes fsyncs_total \
    durable_seq; do
    assertContains "kvstore_${f}" "${out}" "
kvstore_${f} "
  done
  assertContains 'the current sequence' "${out}" "
kvstore_seq ${seq}"
  bad=$(printf '%s\n' "${out}" | grep -v '^#' |
    grep -cvE '^[a-z_]+(\{[^}]*\})? -?[0-9.e+-]+$')
  assertEquals 'every sample line well formed' 0 "${bad}"
  assertEquals 'the format and the naming conventions' '' \
    "$(printf '%s\n' "${out}" | metric_problems)"
}

# ---- The binary as its own client ----

testClientCommandsAndTheirExitCodes() {
  export KV_URL="${url}/"
  out=$(./kvstore put cli/key 'a value')
  assertEquals 'put: exit 0' 0 $?
  assertEquals 'put: the answer' created "${out}"
  out=$(printf 'from\nstdin' | ./kvstore put cli-stdin)
  assertEquals 'put from stdin' 0 $?
  assertEquals 'stdin value' "$(printf 'from\nstdin')" "$(./kvstore get cli-stdin)"
  assertEquals 'get' 'a value' "$(./kvstore get cli/key)"
  assertEquals 'the same key over HTTP' 'a value' "$(curl -s "${url}/kv/cli%2Fkey")"
  ./kvstore get cli-missing 2>/dev/null
  assertEquals 'get missing: exit 1' 1 $?
  ./kvstore get --expect 'a value' cli/key >/dev/null
  assertEquals 'get --expect matching' 0 $?
  ./kvstore get --wait 1 --expect other cli/key 2>/dev/null
  assertEquals 'get --wait --expect not matching' 1 $?
  (sleep 0.5; curl -s -o /dev/null -X PUT -d late "${url}/kv/cli-late") &
  ./kvstore get --wait 5 --expect late cli-late >/dev/null
  assertEquals 'get --wait sees a later write' 0 $?
  assertContains 'ls with a prefix' "$(./kvstore ls cli)" 'cli/key'
  assertNotContains 'ls filters' "$(./kvstore ls cli/)" 'cli-stdin'
  ./kvstore del cli/key >/dev/null
  assertEquals 'del: exit 0' 0 $?
  ./kvstore del cli/key 2>/dev/null
  assertEquals 'del missing: exit 1' 1 $?
  assertEquals 'health' ok "$(./kvstore health)"
  assertContains 'status' "$(./kvstore status)" '"role":"primary"'
  ./kvstore frobnicate 2>/dev/null
  assertEquals 'unknown command: exit 2' 2 $?
  ./kvstore get 2>/dev/null
  assertEquals 'missing key: exit 2' 2 $?
  KV_URL=http://127.0.0.1:1 ./kvstore health 2>/dev/null
  assertEquals 'no server: exit 3' 3 $?
  assertContains '--help' "$(./kvstore --help)" 'Exit status'
  timeout 2 ./kvstore watch cli-watched >"${SHUNIT_TMPDIR}/watch.out" 2>&1 &
  wpid=$!
  sleep 0.3
  ./kvstore put cli-watched first >/dev/null
  sleep 0.3
  ./kvstore put cli-watched second >/dev/null
  wait "${wpid}"
  assertEquals 'watch prints each new value' 'first
second' "$(grep -v 'not found' "${SHUNIT_TMPDIR}/watch.out")"
  assertContains '--version' "$(./kvstore --version)" 'kvstore '
  unset KV_URL
}

testVolumePermissionsGivesTheTreeToTheUser() {
  mkdir -p "${SHUNIT_TMPDIR}/vol/sub"
  touch "${SHUNIT_TMPDIR}/vol/sub/file"
  ./kvstore volume-permissions "${SHUNIT_TMPDIR}/vol" 4321:8765 >/dev/null
  assertEquals 'exit status' 0 $?
  assertEquals 'every entry' '4321:8765 4321:8765 4321:8765' \
    "$(stat -c '%u:%g' "${SHUNIT_TMPDIR}/vol" "${SHUNIT_TMPDIR}/vol/sub" \
      "${SHUNIT_TMPDIR}/vol/sub/file" | tr '\n' ' ' | sed 's/ $//')"
  ./kvstore volume-permissions "${SHUNIT_TMPDIR}/vol" nobody 2>/dev/null
  assertEquals 'bad owner: exit 2' 2 $?
}

# ---- Configuration ----

testBadConfigurationExitsWithOneClearLine() {
  check_bad_env 'PORT=abc' PORT=abc
  check_bad_env 'PORT=70000' PORT=70000
  check_bad_env 'ROLE=boss' ROLE=boss
  check_bad_env 'FSYNC=sometimes' FSYNC=sometimes
  check_bad_env 'MAX_VALUE_BYTES=' MAX_VALUE_BYTES=-1
  check_bad_env 'LOG_LEVEL=loud' LOG_LEVEL=loud
  check_bad_env 'DATA_DIR' DATA_DIR=/etc/passwd/sub
}

testForeignDbFileIsRefusedAndLeftUntouched() {
  mkdir -p "${SHUNIT_TMPDIR}/foreign"
  head -c 65536 /dev/urandom >"${SHUNIT_TMPDIR}/foreign/kvstore.db"
  before=$(cksum <"${SHUNIT_TMPDIR}/foreign/kvstore.db")
  out=$(PORT=$((port + 40)) DATA_DIR="${SHUNIT_TMPDIR}/foreign" \
    timeout 5 ./kvstore 2>&1)
  assertEquals 'exit status' 1 $?
  assertContains 'says why' "${out}" 'not a kvstore file'
  assertEquals 'file unchanged' "${before}" \
    "$(cksum <"${SHUNIT_TMPDIR}/foreign/kvstore.db")"
}

testRoleAutoFollowsTheStatefulSetOrdinal() {
  if ! unshare --uts true 2>/dev/null; then
    startSkipping
    return
  fi
  aport=$((port + 41))
  roles=
  for host in kvstore-0 kvstore-3; do
    rm -rf "${SHUNIT_TMPDIR}/auto"
    ROLE=auto PORT="${aport}" DATA_DIR="${SHUNIT_TMPDIR}/auto" \
      unshare --uts sh -c 'hostname "$1" && exec ./kvstore' _ "${host}" \
      >/dev/null 2>&1 &
    apid=$!
    wait_up "${aport}"
    roles="${roles} ${host}=$(curl -s "http://127.0.0.1:${aport}/role")"
    stop "${apid}"
  done
  assertEquals 'roles by ordinal' ' kvstore-0=primary kvstore-3=replica' \
    "${roles}"
  out=$(ROLE=auto PORT="${aport}" DATA_DIR="${SHUNIT_TMPDIR}/auto" \
    unshare --uts sh -c 'hostname nodash && exec ./kvstore' 2>&1)
  assertEquals 'no ordinal: exit status' 1 $?
  assertContains 'no ordinal: says why' "${out}" 'ordinal'
}

testStartupLogStatesRoleFsyncAndKeys() {
  assertContains 'role' "$(cat "${log}")" 'role=primary'
  assertContains 'fsync' "$(cat "${log}")" 'fsync=everysec'
  assertContains 'keys' "$(cat "${log}")" 'keys='
  assertContains 'data file' "$(cat "${log}")" 'kvstore.db'
}

# ---- Durability ----

testSigtermShutsDownCleanlyAndKeepsData() {
  start term
  curl -s -o /dev/null -X PUT -d kept "http://127.0.0.1:${sport}/kv/t"
  kill -TERM "${spid}"
  wait "${spid}"
  assertEquals 'exit status after SIGTERM' 0 $?
  assertContains 'logged' "$(cat "${slog}")" 'stopped cleanly'
  start term
  assertEquals 'data kept' kept \
    "$(curl -s "http://127.0.0.1:${sport}/kv/t")"
  assertNotContains 'no recovery after a clean stop' "$(cat "${slog}")" \
    'recovered'
  stop "${spid}"
}

testFsyncAlwaysAcknowledgesDurableWrites() {
  start always FSYNC=always
  writers=
  for i in 1 2 3 4; do
    (for j in $(seq 1 25); do
      curl -s -o /dev/null -w '%{http_code}\n' -X PUT -d "v${i}.${j}" \
        "http://127.0.0.1:${sport}/kv/a${i}.${j}"
    done) >"${SHUNIT_TMPDIR}/always.${i}" &
    writers="${writers} $!"
  done
  for w in ${writers}; do wait "${w}"; done
  cat "${SHUNIT_TMPDIR}"/always.? >"${SHUNIT_TMPDIR}/always.codes"
  assertEquals 'every write acknowledged' 100 \
    "$(grep -c '^201$' "${SHUNIT_TMPDIR}/always.codes")"
  ready=$(curl -s "http://127.0.0.1:${sport}/ready")
  seq=$(json_num "${ready}" seq)
  assertEquals 'durable up to the last write' "${seq}" \
    "$(json_num "${ready}" durable_seq)"
  stop "${spid}"
}

testKill9UnderWriteLoadLosesNoAcknowledgedWrite() {
  : >"${SHUNIT_TMPDIR}/acked"
  rounds=8
  for round in $(seq 1 "${rounds}"); do
    start crash FSYNC=always
    writer "${sport}" "${round}" >>"${SHUNIT_TMPDIR}/acked" &
    wpid=$!
    sleep "0.$((RANDOM % 6 + 2))"
    kill -9 "${spid}"
    wait "${spid}" 2>/dev/null
    wait "${wpid}"
  done
  start crash FSYNC=always
  assertContains 'recovered after kill -9' "$(cat "${slog}")" 'recovered'
  acked=$(wc -l <"${SHUNIT_TMPDIR}/acked")
  assertTrue "writes were acknowledged (${acked})" "[ ${acked} -gt ${rounds} ]"
  missing=0
  while read -r key; do
    [ "$(curl -s "http://127.0.0.1:${sport}/kv/${key}")" = "value-${key}" ] ||
      missing=$((missing + 1))
  done <"${SHUNIT_TMPDIR}/acked"
  assertEquals "acknowledged writes lost (of ${acked})" 0 "${missing}"
  stop "${spid}"
}

testTornTailIsCutAndEarlierWritesKept() {
  for damage in truncate garble; do
    rm -rf "${SHUNIT_TMPDIR}/torn"
    start torn FSYNC=no DATA_DIR="${SHUNIT_TMPDIR}/torn"
    for i in 1 2 3; do
      curl -s -o /dev/null -X PUT -d "early-${i}" \
        "http://127.0.0.1:${sport}/kv/early${i}"
    done
    curl -s -o /dev/null -X PUT -d 'LAST-RECORD-MARKER' \
      "http://127.0.0.1:${sport}/kv/last"
    kill -9 "${spid}"
    wait "${spid}" 2>/dev/null
    db="${SHUNIT_TMPDIR}/torn/kvstore.db"
    at=$(grep -abo 'LAST-RECORD-MARKER' "${db}" | tail -n 1 | cut -d: -f1)
    if [ "${damage}" = truncate ]; then
      truncate -s $((at + 4)) "${db}"
    else
      printf 'XXXX' | dd of="${db}" bs=1 seek=$((at + 2)) conv=notrunc \
        2>/dev/null
    fi
    start torn FSYNC=no DATA_DIR="${SHUNIT_TMPDIR}/torn"
    assertContains "${damage}: drop logged" "$(cat "${slog}")" 'dropped'
    assertEquals "${damage}: earlier write kept" early-3 \
      "$(curl -s "http://127.0.0.1:${sport}/kv/early3")"
    code=$(curl -s -o /dev/null -w '%{http_code}' \
      "http://127.0.0.1:${sport}/kv/last")
    assertEquals "${damage}: torn record gone" 404 "${code}"
    curl -s -o /dev/null -X PUT -d again "http://127.0.0.1:${sport}/kv/last"
    assertEquals "${damage}: writable after" again \
      "$(curl -s "http://127.0.0.1:${sport}/kv/last")"
    stop "${spid}"
  done
}

testCorruptHeaderRefusesToStart() {
  rm -rf "${SHUNIT_TMPDIR}/hdr"
  start hdr DATA_DIR="${SHUNIT_TMPDIR}/hdr"
  stop "${spid}"
  db="${SHUNIT_TMPDIR}/hdr/kvstore.db"
  printf '\377' | dd of="${db}" bs=1 seek=20 conv=notrunc 2>/dev/null
  before=$(cksum <"${db}")
  out=$(PORT=$((port + 42)) DATA_DIR="${SHUNIT_TMPDIR}/hdr" \
    timeout 5 ./kvstore 2>&1)
  assertEquals 'exit status' 1 $?
  assertContains 'says why' "${out}" 'header'
  assertEquals 'file unchanged' "${before}" "$(cksum <"${db}")"
}

# ---- Replication ----

testSpecTwoNodeSession() {
  node p "${rp}" primary REPLICA_URLS="http://127.0.0.1:${rr1}"
  node r1 "${rr1}" replica
  wait_ready "${rr1}" || fail "replica not ready: $(cat "${SHUNIT_TMPDIR}/r1.log")"
  code=$(curl -s -o /dev/null -w '%{http_code}' -X PUT -d alice \
    "http://127.0.0.1:${rp}/kv/name")
  assertEquals 'PUT on the primary' 201 "${code}"
  wait_seq "${rr1}" "$(node_seq "${rp}")"
  assertEquals 'read from the replica' alice \
    "$(curl -s "http://127.0.0.1:${rr1}/kv/name")"
  assertEquals 'the same version on both' \
    "$(curl -s -D - -o /dev/null "http://127.0.0.1:${rp}/kv/name" | grep ETag)" \
    "$(curl -s -D - -o /dev/null "http://127.0.0.1:${rr1}/kv/name" | grep ETag)"
  code=$(curl -s -o "${body}" -w '%{http_code}' -X PUT -d bob \
    "http://127.0.0.1:${rr1}/kv/name")
  assertEquals 'PUT on the replica' 403 "${code}"
  assertEquals 'roles' 'primary replica' \
    "$(curl -s "http://127.0.0.1:${rp}/role") $(curl -s "http://127.0.0.1:${rr1}/role")"
  ready=$(curl -s "http://127.0.0.1:${rp}/ready")
  assertContains 'primary lists the replica' "${ready}" \
    "\"url\":\"http://127.0.0.1:${rr1}\",\"state\":\"streaming\""
  ready=$(curl -s "http://127.0.0.1:${rr1}/ready")
  assertContains 'replica shows its primary link' "${ready}" '"link":"up"'
  stop_nodes
}

testReplicaKilledAndRestartedCatchesUpPartially() {
  node p "${rp}" primary
  node r1 "${rr1}" replica
  wait_ready "${rr1}"
  load "${rp}" 2000 k >/dev/null &
  lpid=$!
  sleep 0.3
  kill -9 "$(pid_of r1)"
  sleep 0.5
  node r1 "${rr1}" replica
  wait "${lpid}"
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
  load "${rp}" 3000 w >/dev/null
  stop_node r1
  rm -rf "${SHUNIT_TMPDIR}/r1"
  load "${rp}" 3000 x >/dev/null &
  lpid=$!
  node r1 "${rr1}" replica
  wait "${lpid}"
  assert_converged "${rp}" "${rr1}" 'after wiping the replica'
  stop_nodes
}

testStoppedReplicaBeyondTheBacklogFullSyncs() {
  node p "${rp}" primary REPL_BACKLOG_BYTES=65536
  node r1 "${rr1}" replica
  wait_ready "${rr1}"
  kill -STOP "$(pid_of r1)"
  load "${rp}" 3000 s >/dev/null
  kill -CONT "$(pid_of r1)"
  assert_converged "${rp}" "${rr1}" 'after SIGSTOP past the backlog'
  full=$(json_num "$(curl -s "http://127.0.0.1:${rp}/ready")" full_syncs)
  assertTrue "needed a second full sync (${full})" "[ ${full:-0} -ge 2 ]"
  stop_nodes
}

testPrimaryRestartKeepsReplicationGoing() {
  node p "${rp}" primary
  node r1 "${rr1}" replica
  wait_ready "${rr1}"
  load "${rp}" 1000 a >/dev/null
  stop_node p
  node p "${rp}" primary
  load "${rp}" 1000 b >/dev/null
  assert_converged "${rp}" "${rr1}" 'after a primary restart'
  stop_nodes
}

testOneReplicaUnderTwoNamesStillConverges() {
  # REPLICA_URLS says localhost, the replica announces 127.0.0.1: two
  # pushers feed one replica, and their full syncs must not mix.
  node p "${rp}" primary REPLICA_URLS="http://localhost:${rr1}"
  load "${rp}" 3000 two >/dev/null
  node r1 "${rr1}" replica
  load "${rp}" 3000 names >/dev/null
  assert_converged "${rp}" "${rr1}" 'one replica fed under two names'
  stop_nodes
}

testPrimaryKill9TakesANewIdAndReplicasConverge() {
  node p "${rp}" primary
  node r1 "${rr1}" replica
  wait_ready "${rr1}"
  load "${rp}" 1000 k9 >/dev/null
  kill -9 "$(pid_of p)"
  wait "$(pid_of p)" 2>/dev/null
  node p "${rp}" primary
  assertContains 'a new replication id' "$(cat "${SHUNIT_TMPDIR}/p.log")" \
    'new replication id'
  load "${rp}" 500 after >/dev/null
  assert_converged "${rp}" "${rr1}" 'after a primary kill -9'
  stop_nodes
}

testReplicaStartedLaterAnnouncesItself() {
  node p "${rp}" primary
  load "${rp}" 500 l >/dev/null
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
    load "${rp}" 5000 "c${part}" >/dev/null &
    lpids="${lpids} $!"
  done
  for l in ${lpids}; do wait "${l}"; done
  for r in "${rr1}" "${rr2}" "${rr3}"; do
    assert_converged "${rp}" "${r}" "replica ${r} after 20,000 writes"
  done
  stop_nodes
}

testFullSyncOfDataFarLargerThanTheBacklog() {
  node p "${rp}" primary REPL_BACKLOG_BYTES=65536
  head -c 4096 /dev/zero | tr '\0' v >"${SHUNIT_TMPDIR}/4k"
  for i in $(seq 1 2000); do
    printf 'url = "http://127.0.0.1:%s/kv/big%s"\nupload-file = "%s"\noutput = "/dev/null"\n' \
      "${rp}" "${i}" "${SHUNIT_TMPDIR}/4k"
  done >"${SHUNIT_TMPDIR}/bigcfg"
  curl -s -K "${SHUNIT_TMPDIR}/bigcfg"
  node r1 "${rr1}" replica
  assert_converged "${rp}" "${rr1}" '8 MB through a 64 KiB backlog'
  stop_nodes
}

testEmptyPrimaryRecoversFromItsReplicas() {
  node p "${rp}" primary
  node r1 "${rr1}" replica
  wait_ready "${rr1}"
  load "${rp}" 1000 e >/dev/null
  wait_seq "${rr1}" "$(node_seq "${rp}")"
  before=$(node_seq "${rp}")
  stop_node p
  rm -rf "${SHUNIT_TMPDIR}/p"
  node p "${rp}" primary RECOVER_WAIT_MS=8000
  wait_ready "${rp}" 12
  assertContains 'logged' "$(cat "${SHUNIT_TMPDIR}/p.log")" 'recovered from'
  assertEquals 'sequence kept' "${before}" "$(node_seq "${rp}")"
  assert_converged "${rp}" "${rr1}" 'after the primary lost its volume'
  assertTrue 'nothing was wiped' "[ $(key_count "${rp}") -gt 0 ]"
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
  for path in "apply?id=00000000000000000000000000000000&from=1" \
    "sync/begin?id=00000000000000000000000000000000&seq=1" register; do
    code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -d x \
      "http://127.0.0.1:${rr1}/repl/${path}")
    assertEquals "no token: ${path%%\?*}" 401 "${code}"
    code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -d x \
      -H 'X-Kv-Repl-Token: wrong' "http://127.0.0.1:${rr1}/repl/${path}")
    assertEquals "wrong token: ${path%%\?*}" 401 "${code}"
  done
  assertNotContains 'token never logged' \
    "$(cat "${SHUNIT_TMPDIR}/p.log" "${SHUNIT_TMPDIR}/r1.log")" s3cret
  stop_nodes
}

testReplicaReadinessFollowsItsFirstSync() {
  node r1 "${rr1}" replica
  code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:${rr1}/ready")
  assertEquals 'not ready before any sync' 503 "${code}"
  code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:${rr1}/health")
  assertEquals 'but alive' 200 "${code}"
  node p "${rp}" primary
  wait_ready "${rr1}"
  assertTrue 'ready after the first sync' $?
  stop_node p
  sleep 3.5
  ready=$(curl -s -w '%{http_code}' "http://127.0.0.1:${rr1}/ready")
  assertContains 'still ready with the primary down' "${ready}" '}
200'
  assertContains 'says the link is down' "${ready}" '"link":"down"'
  stop_nodes
}

testSigtermOnThePrimaryDeliversPendingWrites() {
  node p "${rp}" primary
  node r1 "${rr1}" replica
  wait_ready "${rr1}"
  load "${rp}" 2000 t >/dev/null
  seq=$(node_seq "${rp}")
  stop_node p
  assertEquals 'exit status' 0 "${stopped}"
  assertEquals 'replica has every write' "${seq}" "$(node_seq "${rr1}")"
  stop_nodes
}

# ---- Helpers ----

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

# check_bad_env NAME VAR=VALUE...: the server exits 1 with one log line.
check_bad_env() {
  out=$(env PORT=$((port + 43)) DATA_DIR="${SHUNIT_TMPDIR}/badenv" "${@:2}" \
    timeout 5 ./kvstore 2>&1)
  assertEquals "$1: exit status" 1 $?
  assertEquals "$1: one line" 1 "$(printf '%s\n' "${out}" | wc -l)"
  assertContains "$1: an error line" "${out}" 'error'
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
    [ -f "${f}" ] && mv "${f}" "${f}.${_shunit_test_:-old}"
  done
}

node_seq() { json_num "$(curl -s "http://127.0.0.1:$1/ready")" seq; }
key_count() { json_num "$(curl -s "http://127.0.0.1:$1/ready")" keys; }

# wait_ready PORT [SECONDS]: until /ready answers 200.
wait_ready() {
  for _ in $(seq 1 $((${2:-10} * 20))); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' \
      "http://127.0.0.1:$1/ready")" = 200 ] && return 0
    sleep 0.05
  done
  return 1
}

# wait_seq PORT SEQ: until the node has applied SEQ, at most 30 seconds.
wait_seq() {
  for _ in $(seq 1 600); do
    [ "$(node_seq "$1")" = "$2" ] && return 0
    sleep 0.05
  done
  return 1
}

# load PORT N PREFIX: N writes on one keep-alive connection: puts over a
# pool of N/4 keys (so many are overwrites) and every fifth a delete.
load() {
  cfg="${SHUNIT_TMPDIR}/load.$3"
  pool=$(($2 / 4 + 1))
  for i in $(seq 1 "$2"); do
    k=$((i * 7919 % pool))
    [ "${i}" -gt 1 ] && echo next
    if [ $((i % 5)) -eq 0 ]; then
      printf 'url = "http://127.0.0.1:%s/kv/%s-%s"\nrequest = "DELETE"\noutput = "/dev/null"\n' "$1" "$3" "${k}"
    else
      printf 'url = "http://127.0.0.1:%s/kv/%s-%s"\nrequest = "PUT"\ndata-binary = "%s.%s"\noutput = "/dev/null"\n' "$1" "$3" "${k}" "$3" "${i}"
    fi
  done >"${cfg}"
  curl -s -K "${cfg}"
}

# put_many PORT PREFIX N: keys PREFIX1..PREFIXN = v, on one connection.
put_many() {
  for i in $(seq 1 "$3"); do
    echo "url = \"http://127.0.0.1:$1/kv/$2${i}\""
    echo 'output = "/dev/null"'
  done >"${SHUNIT_TMPDIR}/put_many.cfg"
  curl -s -X PUT --data-binary v -K "${SHUNIT_TMPDIR}/put_many.cfg"
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

# assert_converged PRIMARY REPLICA NAME: within 30 seconds the replica has
# the primary's sequence and exactly its keys and values; prints the time.
assert_converged() {
  begin=$(date +%s%N)
  ok=1
  for _ in $(seq 1 150); do
    seq=$(node_seq "$1")
    if [ -n "${seq}" ] && [ "$(node_seq "$2")" = "${seq}" ] &&
      dump "$1" >"${SHUNIT_TMPDIR}/dump.p" &&
      dump "$2" >"${SHUNIT_TMPDIR}/dump.r" &&
      cmp -s "${SHUNIT_TMPDIR}/dump.p" "${SHUNIT_TMPDIR}/dump.r"; then
      ok=0
      break
    fi
    sleep 0.2
  done
  echo "  $3: converged in $((($(date +%s%N) - begin) / 1000000)) ms" \
    "($(wc -l <"${SHUNIT_TMPDIR}/keys.$1") keys, seq ${seq})"
  assertTrue "$3: replica identical to the primary" "${ok}"
}

# wait_up PORT: until /health answers, at most 5 seconds.
wait_up() {
  for _ in $(seq 1 100); do
    curl -s -o /dev/null "http://127.0.0.1:$1/health" && return 0
    sleep 0.05
  done
  return 1
}

# start NAME [VAR=VALUE...]: a server of its own on a new port; sets
# ${spid}, ${sport} and ${slog}.
start() {
  sport=$((port + 1 + $(next_port)))
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
next_port() { nports=$(((${nports:-0} + 1) % 30)); echo "${nports}"; }

stop() {
  kill "$1" 2>/dev/null
  wait "$1" 2>/dev/null
}

# ---- Fixtures ----

oneTimeSetUp() {
  cd "$(dirname "$0")" || return 1
  # Below the ephemeral range (32768 up), where a client socket could
  # already hold one of our ports.
  port=$((10000 + $$ % 20000))
  rp=$((port + 50)) rr1=$((port + 51)) rr2=$((port + 52)) rr3=$((port + 53))
  : >"${SHUNIT_TMPDIR}/nodes"
  url="http://127.0.0.1:${port}"
  body="${SHUNIT_TMPDIR}/body"
  log="${SHUNIT_TMPDIR}/primary.log"
  : >"${SHUNIT_TMPDIR}/pids"
  PORT="${port}" ROLE=primary DATA_DIR="${SHUNIT_TMPDIR}/primary" \
    RECOVER_WAIT_MS=0 ./kvstore >"${log}" 2>&1 &
  pid=$!
  echo "${pid}" >>"${SHUNIT_TMPDIR}/pids"
  wait_ready "${port}" || { cat "${log}"; return 1; }
  # shunit2 prints its own report; the last line is the count CI reads.
  # shellcheck disable=SC2154
  trap 'printf "%s passed, %s failed\n" "${__shunit_testsPassed}" \
    "${__shunit_testsFailed}"; _shunit_cleanup EXIT' 0
}

oneTimeTearDown() {
  while read -r p; do
    kill "${p}" 2>/dev/null && wait "${p}" 2>/dev/null
  done <"${SHUNIT_TMPDIR}/pids"
  # What a test cut short left mounted (tests/suite_disk.sh), last first.
  [ -s "${SHUNIT_TMPDIR}/mounts" ] && unmount_all
  return 0
}

# unmount_all: undo every mount and loop device in ${SHUNIT_TMPDIR}/mounts.
unmount_all() {
  tac "${SHUNIT_TMPDIR}/mounts" | while read -r m; do
    if [ -b "${m}" ]; then losetup -d "${m}"; else umount "${m}"; fi
  done
  : >"${SHUNIT_TMPDIR}/mounts"
}

# More tests, by theme, as shunit2 test functions. KV_LONG=1 (make
# test-long) gives the long-running ones their full bounds; KV_TSAN=1 (make
# tsan) shrinks the data they move, as everything runs 5 to 15 times slower.
for suite in "$(dirname "$0")"/tests/suite_*.sh; do
  [ -f "${suite}" ] && . "${suite}"
done

# shunit2 finds test functions by reading this file alone: list those of
# the suites too, after these, in the order they are written.
suite() {
  while read -r t; do
    suite_addTest "${t}"
  done < <(sed -n 's/^\(test[A-Za-z0-9_]*\)() {$/\1/p' "$0" \
    "$(dirname "$0")"/tests/suite_*.sh 2>/dev/null)
}

. "$(command -v shunit2 || echo /usr/share/shunit2/shunit2)"
