#!/bin/bash
# shellcheck disable=SC2154 # tests/lib.sh sets some (slog, exited, ...)
# kvstore's test suite: the C unit tests, then real servers on loopback
# driven with curl and raw sockets, then crash and torn-file cases; more
# by theme in tests/suite_*.sh (replication in tests/suite_repl.sh), with
# the helpers they share in tests/lib.sh.
# Run it with `make test`; it ends with the line "N passed, M failed".

# ---- Unit tests (C, from tests/) ----

testFormatterUnitTests() {
  out=$(tests/fmt_test 2>&1)
  assertTrue "fmt_test failed: ${out}" $?
  echo "${out}" | tail -n 1
}

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

testResolverUnitTests() {
  out=$(tests/resolve_test 2>&1)
  assertTrue "resolve_test failed: ${out}" $?
  echo "${out}" | tail -n 1
}

testReplicaFullSyncUnitTests() {
  out=$(tests/replica_test 2>&1)
  assertTrue "replica_test failed: ${out}" $?
  echo "${out}" | tail -n 1
}

testStoreUnitTests() {
  mkdir -p "${SHUNIT_TMPDIR}/unit"
  out=$(tests/store_test "${SHUNIT_TMPDIR}/unit" 2>&1)
  assertTrue "store_test failed: ${out}" $?
  echo "${out}" | grep '^power loss: [0-9]'
  echo "${out}" | tail -n 1
  # The table CRC (CPUs without SSE4.2): every record's checksum checked.
  out=$(STORE_TEST_ONLY=format tests/store_test_softcrc \
    "${SHUNIT_TMPDIR}/unit" 2>&1)
  assertTrue "store_test_softcrc failed: ${out}" $?
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
  assertEquals 'a short text body' 'key not found' "$(cat "${body}")"
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
  assertContains 'says why' "$(cat "${body}")" 'invalid percent-escape'
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
  ctype=$(curl -s -o /dev/null -w '%{content_type}' "${url}/kv/")
  assertEquals 'content type' application/json "${ctype}"
}

testListingOfManyKeysHasEachKeyOnce() {
  start lst FSYNC=no
  writes put_many "${sport}" many- 3000
  curl -s "http://127.0.0.1:${sport}/kv/" | tr ',' '\n' |
    tr -d '[]"' | sort >"${SHUNIT_TMPDIR}/listed"
  assertEquals 'keys listed' 3000 "$(wc -l <"${SHUNIT_TMPDIR}/listed")"
  assertEquals 'no duplicates' 3000 \
    "$(sort -u "${SHUNIT_TMPDIR}/listed" | wc -l)"
  stop "${spid}"
}

testDataStaysInTheMappingAndListingsStream() {
  # The smallest backlog: it is the one copy of recent writes in memory.
  start lbig FSYNC=no REPL_BACKLOG_BYTES=65536
  # 24 values of 1 MiB: a 24 MB listing, more than the kernel's socket
  # buffers on loopback take (some 10 MB).
  head -c 1048576 /dev/zero | tr '\0' v >"${SHUNIT_TMPDIR}/mibv"
  for i in $(seq 1 24); do
    printf 'url = "http://127.0.0.1:%s/kv/big%s"\nupload-file = "%s"\noutput = "/dev/null"\n' \
      "${sport}" "${i}" "${SHUNIT_TMPDIR}/mibv"
  done >"${SHUNIT_TMPDIR}/lbig.cfg"
  empty=$(awk '/^RssAnon/ { print $2 }' "/proc/${spid}/status")
  curl -s -w '%{method} %{http_code}\n' -K "${SHUNIT_TMPDIR}/lbig.cfg" |
    answered 'values of 1 MiB' 24 'PUT 201' >"${SHUNIT_TMPDIR}/lbig.out"
  assertTrue "$(cat "${SHUNIT_TMPDIR}/lbig.out")" $?
  rss0=$(awk '/^RssAnon/ { print $2 }' "/proc/${spid}/status")
  echo "  RssAnon before and after 24 MiB of values: ${empty} -> ${rss0} KiB"
  # The data lives in the mapped file (RssFile), never in the heap.
  [ "$(sanitized_or 1 0)" = 1 ] ||
    assertTrue "24 MiB of values grew RssAnon by $((rss0 - empty)) KiB" \
      "[ $((rss0 - empty)) -lt 1024 ]"
  exec 3<>"/dev/tcp/127.0.0.1/${sport}"
  printf 'GET /kv/?values=true HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' >&3
  # The server writes until the socket buffers are full: wait until the
  # bytes queued on the connection stop growing.
  q=0
  wait_for 10 'p=${q}; q=$(queued "${sport}"); [ "${q}" -gt 0 ] && [ "${q}" = "${p}" ]'
  assertTrue "the listing filled the socket buffers (${q} bytes queued)" $?
  rss1=$(awk '/^RssAnon/ { print $2 }' "/proc/${spid}/status")
  echo "  RssAnon with an unread 24 MB listing: ${rss0} -> ${rss1} KiB"
  exec 3<&-
  assertEquals 'every key listed' 24 "$(curl -s "http://127.0.0.1:${sport}/kv/" |
    tr ',' '\n' | grep -c big)"
  # A client that does not read holds the 256 KiB output bound and the
  # value being escaped (1.1 MiB here), not the listing (sanitizers'
  # shadow memory hides that difference).
  [ "$(sanitized_or 1 0)" = 1 ] ||
    assertTrue "RssAnon grew by $((rss1 - rss0)) KiB" \
      "[ $((rss1 - rss0)) -lt 4096 ]"
  stop "${spid}"
}

testListingWithAPrefixAndWithValues() {
  start lp FSYNC=no
  lurl="http://127.0.0.1:${sport}/kv"
  writes put_many "${sport}" pfx/ 30
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
  writes put_many "${sport}" stable- 2000
  load "${sport}" 6000 churn >"${SHUNIT_TMPDIR}/churn.out" &
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
  assertTrue "the writes meanwhile: $(cat "${SHUNIT_TMPDIR}/churn.out")" $?
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
  start small MAX_VALUE_BYTES=10
  surl="http://127.0.0.1:${sport}/kv"
  code=$(curl -s -o /dev/null -w '%{http_code}' -X PUT -d 0123456789 \
    "${surl}/ten")
  assertEquals 'MAX_VALUE_BYTES=10: 10 bytes' 201 "${code}"
  code=$(curl -s -o /dev/null -w '%{http_code}' -X PUT -d 0123456789a \
    "${surl}/eleven")
  assertEquals 'MAX_VALUE_BYTES=10: 11 bytes' 413 "${code}"
  code=$(printf 0123456789a | curl -s -o /dev/null -w '%{http_code}' -T - \
    "${surl}/eleven")
  assertEquals 'MAX_VALUE_BYTES=10: 11 bytes chunked' 413 "${code}"
  stop "${spid}"
}

testReplicaRefusesWritesNamingThePrimary() {
  start rep ROLE=replica PRIMARY_URL=http://primary.example:8080
  surl="http://127.0.0.1:${sport}"
  assertEquals 'role' replica "$(curl -s "${surl}/role")"
  code=$(curl -s -o "${body}" -w '%{http_code}' -X PUT -d v "${surl}/kv/k")
  assertEquals 'PUT on replica' 403 "${code}"
  assertContains 'names the primary' "$(cat "${body}")" \
    'http://primary.example:8080'
  assertContains 'says it is read-only' "$(cat "${body}")" \
    'read-only replica'
  code=$(curl -s -o /dev/null -w '%{http_code}' -X DELETE "${surl}/kv/k")
  assertEquals 'DELETE on replica' 403 "${code}"
  code=$(curl -s -o /dev/null -w '%{http_code}' "${surl}/kv/k")
  assertEquals 'GET on replica' 404 "${code}"
  stop "${spid}"
  start rep0 ROLE=replica
  code=$(curl -s -o "${body}" -w '%{http_code}' -X PUT -d v \
    "http://127.0.0.1:${sport}/kv/k")
  assertEquals 'PUT on a replica without PRIMARY_URL' 403 "${code}"
  assertEquals 'says so, naming no URL' \
    'this node is a read-only replica; send writes to the primary' \
    "$(cat "${body}")"
  stop "${spid}"
}

testWrongMethodAnswers405WithAllow() {
  head=$(curl -s -D - -o /dev/null -X POST -d x "${url}/kv/k" | tr -d '\r')
  assertEquals 'POST /kv/k' 405 "$(status_code "${head}")"
  assertEquals 'Allow on /kv/k' 'Allow: GET, HEAD, PUT, DELETE' \
    "$(printf '%s\n' "${head}" | grep -i '^allow:')"
  head=$(curl -s -D - -o /dev/null -X DELETE "${url}/health" | tr -d '\r')
  assertEquals 'DELETE /health' 405 "$(status_code "${head}")"
  assertEquals 'Allow on /health' 'Allow: GET, HEAD' \
    "$(printf '%s\n' "${head}" | grep -i '^allow:')"
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
  get pb1
  assertEquals 'the first body, whole' abc "$(cat "${body}")"
  get pb2
  assertEquals 'chunked body' de "$(cat "${body}")"
}

testBigValuesGoOutWholeAndInOrderWhenPipelined() {
  # Values from 16 KiB on leave by sendfile(2), not through the buffer
  # the smaller answers share: the order and framing must not notice.
  head -c 700000 /dev/zero | tr '\0' w >"${SHUNIT_TMPDIR}/w"
  head -c 20000 /dev/zero | tr '\0' z >"${SHUNIT_TMPDIR}/z"
  put sfbig "@${SHUNIT_TMPDIR}/w"
  put sfmid "@${SHUNIT_TMPDIR}/z"
  put sfsmall small
  raw "${port}" 'GET /kv/sfbig HTTP/1.1\r\nHost: x\r\n\r\nGET /kv/sfsmall HTTP/1.1\r\nHost: x\r\n\r\nHEAD /kv/sfbig HTTP/1.1\r\nHost: x\r\n\r\nGET /kv/sfmid HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' >"${SHUNIT_TMPDIR}/sf.out"
  out=$(tr -d 'wz' <"${SHUNIT_TMPDIR}/sf.out")
  assertEquals 'four answers' 4 "$(count_status "${out}" 200)"
  # Answer heads hold no w or z (no header, date or month has one); the
  # HEAD answer has no body.
  assertEquals 'bodies in order, each whole' 'w700000 small z20000' \
    "$(grep -a -o 'ww*\|small\|zz*' "${SHUNIT_TMPDIR}/sf.out" |
      awk '/^w/ { printf "w%d ", length } /^z/ { printf "z%d", length }
        /^small$/ { printf "small " }')"
}

testABigValueBeingSentSurvivesACompaction() {
  # A client reading a 32 MiB value slowly while the key is overwritten
  # and the store compacts into a new file: the body still comes from the
  # file it began in, whole and unchanged.
  node p "${rp}" primary MAX_VALUE_BYTES=67108864 FSYNC=no
  head -c 33554432 /dev/zero | tr '\0' w >"${SHUNIT_TMPDIR}/w32"
  curl -s -o /dev/null -X PUT --data-binary "@${SHUNIT_TMPDIR}/w32" \
    "http://127.0.0.1:${rp}/kv/huge"
  seen=$(wc -l <"${SHUNIT_TMPDIR}/p.log")
  exec 4<>"/dev/tcp/127.0.0.1/${rp}"
  printf 'GET /kv/huge HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' >&4
  head -c 4096 <&4 >"${SHUNIT_TMPDIR}/huge.out"
  curl -s -o /dev/null -X PUT --data-binary new "http://127.0.0.1:${rp}/kv/huge"
  wait_for 10 'tail -n +$((seen + 1)) "${SHUNIT_TMPDIR}/p.log" | grep -q "compacted to"'
  assertContains 'the store compacted meanwhile' \
    "$(tail -n +$((seen + 1)) "${SHUNIT_TMPDIR}/p.log")" 'compacted to'
  timeout 20 cat <&4 >>"${SHUNIT_TMPDIR}/huge.out"
  exec 4<&-
  assertEquals 'the old value, whole' 33554432 \
    "$(tr -cd w <"${SHUNIT_TMPDIR}/huge.out" | wc -c)"
  assertEquals 'after its head, nothing else' 33554432 \
    "$(sed '1,/^\r$/d' "${SHUNIT_TMPDIR}/huge.out" | wc -c)"
  curl -s -o "${body}" "http://127.0.0.1:${rp}/kv/huge"
  assertEquals 'the new value after' new "$(cat "${body}")"
  stop_nodes
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
  begin=$(date +%s%N)
  printf 'PUT /kv/expect HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n' >&3
  IFS= read -r -t 3 line <&3
  waited=$((($(date +%s%N) - begin) / 1000000))
  assertEquals 'interim response' 'HTTP/1.1 100 Continue' "${line%$'\r'}"
  # curl sends the body anyway after 1 s: "at once" must beat that.
  assertTrue "100 Continue at once (${waited} ms)" "[ ${waited} -lt 1000 ]"
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
  check_closes 'bad chunk size' 400 'PUT /kv/c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nab\r\n0\r\n\r\n'
  check_closes 'CL and TE' 400 'PUT /kv/c HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n0\r\n\r\n'
  check_closes 'differing CLs' 400 'PUT /kv/c HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc'
  check_closes 'no Host' 400 'GET /health HTTP/1.1\r\n\r\n'
  check_closes 'two Hosts' 400 'GET /health HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n'
  check_closes 'bare CR' 400 'GET /health HTTP/1.1\r\nHost: x\rX: y\r\n\r\n'
  check_closes 'space before colon' 400 'GET /health HTTP/1.1\r\nHost : x\r\n\r\n'
  check_closes 'obs-fold' 400 'GET /health HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n'
  check_closes 'HTTP/2.0' 505 'GET /health HTTP/2.0\r\nHost: x\r\n\r\n'
  check_closes 'garbage' 400 'HELLO\r\n\r\n'
  check_closes 'gzip coding' 501 'PUT /kv/c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n'
  check_closes 'bad CL' 400 'PUT /kv/c HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n'
  check_raw 'HTTP/1.0 needs no Host' 200 'GET /health HTTP/1.0\r\n\r\n'
  check_raw 'empty line first' 200 '\r\nGET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'
  call GET /health
  assertEquals 'still serving' 200 "${code}"
}

testOversizedHeadAndTargetAreRefused() {
  filler=$(head -c 17000 /dev/zero | tr '\0' a)
  check_closes 'head over 16 KiB' 431 "GET /health HTTP/1.1\r\nHost: x\r\nX: ${filler}\r\n\r\n"
  check_closes 'target over 8 KiB' 414 "GET /kv/${filler:0:9000} HTTP/1.1\r\nHost: x\r\n\r\n"
}

testEveryResponseHasADateAndAServer() {
  # A success, a create, a miss, a wrong method, a refused request.
  for req in 'GET /health' 'PUT /kv/dated' 'GET /kv/nothing-here' \
    'POST /kv/k' 'PUT /kv/bad%G1'; do
    out=$(curl -s -D - -o /dev/null -X "${req% *}" -d v "${url}${req#* }" |
      tr -d '\r')
    assertContains "${req}: Date" "${out}" 'Date: '
    assertContains "${req}: Server" "${out}" 'Server: kvstore'
    assertContains "${req}: length" "${out}" 'Content-Length: '
  done
  assertEquals 'the Date in the form of RFC 9110' 1 \
    "$(printf '%s\n' "${out}" | grep -Ecx 'Date: (Mon|Tue|Wed|Thu|Fri|Sat|Sun), [0-9]{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [0-9]{4} [0-9]{2}:[0-9]{2}:[0-9]{2} GMT')"
}

testConnectionCapAnswers503AndRecovers() {
  start cap MAX_CONNS=3
  s0=$(sockets "${spid}")
  exec 4<>"/dev/tcp/127.0.0.1/${sport}" 5<>"/dev/tcp/127.0.0.1/${sport}" \
    6<>"/dev/tcp/127.0.0.1/${sport}"
  # Over the cap no request can ask: count the server's sockets instead.
  wait_for 5 '[ "$(sockets "${spid}")" -ge $((s0 + 3)) ]'
  assertTrue 'the three connections accepted' $?
  out=$(raw "${sport}" 'GET /health HTTP/1.1\r\nHost: x\r\n\r\n')
  assertEquals 'over the cap: closed' 0 $?
  assertEquals 'over the cap' 503 "$(status_code "${out}")"
  exec 4<&- 5<&- 6<&-
  wait_for 5 '[ "$(sockets "${spid}")" -le "${s0}" ]'
  assertTrue 'the three connections closed' $?
  code=$(curl -s -o /dev/null -w '%{http_code}' \
    "http://127.0.0.1:${sport}/health")
  assertEquals 'serves again below the cap' 200 "${code}"
  stop "${spid}"
}

testConnectionsShareTheOneLoopThread() {
  start threads
  before=$(threads "${sport}" "${spid}")
  # shellcheck disable=SC2034 # read by the wait_for below
  s0=$(sockets "${spid}")
  fds=
  for _ in $(seq 1 50); do
    exec {fd}<>"/dev/tcp/127.0.0.1/${sport}"
    printf 'GET /health HTTP/1.1\r\nHost: x\r\n' >&"${fd}"
    fds="${fds} ${fd}"
  done
  wait_for 5 '[ "$(sockets "${spid}")" -ge $((s0 + 50)) ]'
  assertTrue 'the 50 connections accepted' $?
  after=$(threads "${sport}" "${spid}")
  for fd in ${fds}; do exec {fd}<&-; done
  assertEquals 'threads with 50 connections open' "${before}" "${after}"
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
    skip 'this machine has no IPv6 address'
    return
  fi
  code=$(curl -s -g -o /dev/null -w '%{http_code}' "http://[::1]:${port}/health")
  assertEquals 'GET over ::1' 200 "${code}"
}

testFallsBackToIPv4WhereIPv6IsAbsent() {
  if ! tests/noipv6 true 2>/dev/null; then
    skip 'tests/noipv6 cannot install its seccomp filter here'
    return
  fi
  new_port
  PORT="${sport}" ROLE=primary DATA_DIR="${SHUNIT_TMPDIR}/noipv6" \
    RECOVER_WAIT_MS=0 tests/noipv6 ./kvstore >"${SHUNIT_TMPDIR}/noipv6.log" 2>&1 &
  spid=$!
  echo "${spid}" >>"${SHUNIT_TMPDIR}/pids"
  wait_up "${sport}"
  up=$?
  assertTrue "serves over IPv4: $(cat "${SHUNIT_TMPDIR}/noipv6.log")" "${up}"
  if grep -q . /proc/net/if_inet6 2>/dev/null; then
    curl -s -g -o /dev/null "http://[::1]:${sport}/health"
    assertEquals 'not over IPv6 (curl: connection refused)' 7 $?
  fi
  stop "${spid}"
}

testClientThatHangsUpMidResponseDoesNotKillTheServer() {
  # An answer far larger than the socket buffers, so that the server is
  # still writing it when the reset comes back.
  head -c 1048576 /dev/zero >"${SHUNIT_TMPDIR}/mib"
  curl -s -o /dev/null -T "${SHUNIT_TMPDIR}/mib" "${url}/kv/hangup"
  for _ in 1 2 3 4 5; do
    timeout 1 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"; printf "GET /kv/hangup HTTP/1.1\r\nHost: x\r\n\r\n" >&3; exec 3<&-' _ "${port}"
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

testCompareAndSwapLosesNoIncrement() {
  put counter 0
  tests/cas "${port}" counter 8 500
  assertEquals 'cas exit status' 0 $?
  get counter
  assertEquals '8 clients x 500 increments' 4000 "$(cat "${body}")"
}

# ---- Waiting: watches (on replicas: tests/suite_repl.sh) ----

testWatchAnswersWhenTheKeyChanges() {
  put watched one
  etag=$(curl -s -D - -o /dev/null "${url}/kv/watched" | tr -d '\r' |
    sed -n 's/^ETag: "\(.*\)"/\1/p')
  # The write once the watch is held: its connection open on the server.
  c0=$(connections "${port}")
  (wait_for 10 parked "${port}" 1 "${c0}"; echo $? >"${SHUNIT_TMPDIR}/held"
    curl -s -o /dev/null -X PUT -d two "${url}/kv/watched") &
  out=$(curl -s -D "${SHUNIT_TMPDIR}/watch.head" -w ' %{time_total}' \
    "${url}/kv/watched?index=${etag}&wait=30s")
  assertEquals 'the new value' two "${out%% *}"
  assertEquals 'held until the write' 0 "$(cat "${SHUNIT_TMPDIR}/held")"
  awk -v t="${out#* }" 'BEGIN { exit !(t < 20) }'
  assertTrue "not until the wait ends (${out#* } s of 30)" $?
  assertContains 'with its version' "$(tr -d '\r' <"${SHUNIT_TMPDIR}/watch.head")" \
    "ETag: \"$((etag + 1))\""
  etag=$(curl -s -D - -o /dev/null "${url}/kv/watched" | tr -d '\r' |
    sed -n 's/^ETag: "\(.*\)"/\1/p')
  code=$(curl -s -o "${body}" -w '%{http_code}' \
    "${url}/kv/watched?index=${etag}&wait=300ms")
  assertEquals 'no change: the current value when the wait ends' \
    '200 two' "${code} $(cat "${body}")"
  c0=$(connections "${port}")
  (wait_for 10 parked "${port}" 1 "${c0}"
    curl -s -o /dev/null -X DELETE "${url}/kv/watched") &
  out=$(curl -s -o /dev/null -w '%{http_code} %{time_total}' \
    "${url}/kv/watched?index=${etag}&wait=30s")
  assertEquals 'a delete ends the watch' 404 "${out%% *}"
  awk -v t="${out#* }" 'BEGIN { exit !(t < 20) }'
  assertTrue "at once, not when the wait ends (${out#* } s of 30)" $?
  code=$(curl -s -o /dev/null -w '%{http_code}' "${url}/kv/watched?index=1&wait=forever")
  assertEquals 'bad wait: 400' 400 "${code}"
}

testWatchOnAPrefixAnswersOnAChangeUnderIt() {
  index=$(curl -s -D - -o /dev/null "${url}/kv/?prefix=wp/" | tr -d '\r' |
    sed -n 's/^X-Kv-Index: //p')
  # Once the watch is held, a write elsewhere, then one under the prefix:
  # woken by the first, the listing would lack wp/1.
  c0=$(connections "${port}")
  (wait_for 10 parked "${port}" 1 "${c0}"
    curl -s -o /dev/null -X PUT -d x "${url}/kv/elsewhere"
    curl -s -o /dev/null -X PUT -d y "${url}/kv/wp/1") &
  # A listing ends in a newline: the time follows it.
  out=$(curl -s -w '%{time_total}' \
    "${url}/kv/?prefix=wp/&index=${index}&wait=30s")
  assertEquals 'the listing after the change under the prefix' '["wp/1"]' \
    "${out%%$'\n'*}"
  awk -v t="${out##*$'\n'}" 'BEGIN { exit !(t < 20) }'
  assertTrue "as it happens, not when the wait ends (${out##*$'\n'} s of 30)" $?
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
  c0=$(connections "${sport}")
  threads0=$(threads "${sport}" "${spid}")
  fds=
  for _ in $(seq 1 2000); do
    exec {fd}<>"/dev/tcp/127.0.0.1/${sport}"
    printf 'GET /kv/w?index=%s&wait=60s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' \
      "${etag}" >&"${fd}"
    fds="${fds} ${fd}"
  done
  wait_for 10 parked "${sport}" 2000 "${c0}"
  assertTrue 'the 2000 watches held' $?
  rss1=$(awk '/^RssAnon/ { print $2 }' "/proc/${spid}/status")
  per=$(((rss1 - rss0) / 2000))
  echo "  2000 parked watches: RssAnon +$((rss1 - rss0)) KiB, ${per} KiB each"
  assertEquals 'threads while 2000 watches wait' "${threads0}" \
    "$(threads "${sport}" "${spid}")"
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
    compactions_total index_growths_total durable_seq; do
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
  # get --wait retries: the write once it has been answered 404 once.
  # shellcheck disable=SC2034 # read by the wait_for below
  n404=$(requests "${port}" GET 404)
  ./kvstore get --wait 10 --expect late cli-late >/dev/null &
  gpid=$!
  wait_for 10 '[ "$(requests "${port}" GET 404)" -gt "${n404}" ]'
  curl -s -o /dev/null -X PUT -d late "${url}/kv/cli-late"
  wait "${gpid}"
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
  out=$(./kvstore --help)
  assertEquals '--help: exit 0' 0 $?
  assertContains '--help on stdout' "${out}" 'Exit status: 0 ok, 1 not found, 2 usage, 3'
  c0=$(connections "${port}")
  timeout 20 ./kvstore watch cli-watched >"${SHUNIT_TMPDIR}/watch.out" 2>&1 &
  wpid=$!
  wait_for 10 parked "${port}" 1 "${c0}"
  ./kvstore put cli-watched first >/dev/null
  wait_for 10 log_has "${SHUNIT_TMPDIR}/watch.out" '^first$'
  ./kvstore put cli-watched second >/dev/null
  wait_for 10 log_has "${SHUNIT_TMPDIR}/watch.out" '^second$'
  kill "${wpid}"
  wait "${wpid}"
  assertEquals 'watch prints each new value' 'first
second' "$(grep -v 'not found' "${SHUNIT_TMPDIR}/watch.out")"
  out=$(./kvstore --version)
  assertEquals '--version: exit 0' 0 $?
  assertEquals "--version says kvstore X.Y.Z (${out})" 1 \
    "$(printf '%s\n' "${out}" | grep -Ecx 'kvstore [0-9]+\.[0-9]+\.[0-9]+')"
  unset KV_URL
}

testClientDefaultsToLocalhost8080() {
  # Whatever listens on 8080 here, if anything, is not ours: either the
  # client reached it, or its error names the address it tried.
  err=$(env -u KV_URL ./kvstore health 2>&1 >/dev/null)
  rc=$?
  if [ "${rc}" -ne 0 ]; then
    assertEquals 'nothing on 8080: exit 3' 3 "${rc}"
    assertContains 'the default KV_URL' "${err}" 'http://localhost:8080:'
  fi
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

# ---- Build and set-up ----

testMakeBuildsAStaticBinaryUnder200KiB() {
  # A scratch copy of the sources, built with the Makefile's defaults
  # whatever variant (make asan, make tsan) runs this suite.
  src="${SHUNIT_TMPDIR}/build"
  mkdir -p "${src}/ui" "${src}/tests"
  cp Makefile ./*.c ./*.h "${src}/"
  cp ui/embed.sh ui/pack.c ui/index.html ui/app.js ui/app.css ui/icon.svg \
    ui/usage.txt "${src}/ui/"
  # No tests/need.sh: `make` builds, it never installs anything.
  out=$(cd "${src}" && env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make 2>&1)
  assertTrue "make: ${out}" $?
  size=$(wc -c <"${src}/kvstore")
  assertTrue "${size} bytes, at most 200 KiB" "[ ${size} -le 204800 ]"
  # Static: it runs in a root holding nothing else, as in FROM scratch.
  mkdir -p "${src}/root"
  cp "${src}/kvstore" "${src}/root/"
  if [ "$(id -u)" -eq 0 ]; then
    jail=(chroot)
  elif unshare -r true 2>/dev/null; then
    jail=(unshare -r chroot)
  else
    skip 'running it in an empty root needs root or unshare -r'
    return
  fi
  out=$(KV_URL="${url}" "${jail[@]}" "${src}/root" /kvstore health 2>&1)
  assertEquals 'runs with nothing but itself' ok "${out}"
}

testNeedShInstallsOrNamesAMissingPackage() {
  # A PATH of stubs: id says the uid, apt-get logs its arguments.
  stubs="${SHUNIT_TMPDIR}/stubs"
  mkdir -p "${stubs}"
  printf '#!/bin/sh\necho "${FAKE_UID}"\n' >"${stubs}/id"
  printf '#!/bin/sh\necho "$*" >>"${APT_LOG}"\nexit "${APT_STATUS:-0}"\n' \
    >"${stubs}/apt-get"
  chmod +x "${stubs}/id" "${stubs}/apt-get"
  export APT_LOG="${SHUNIT_TMPDIR}/apt.log"
  : >"${APT_LOG}"
  out=$(FAKE_UID=1000 PATH="${stubs}" /bin/sh tests/need.sh musl-gcc shunit2 id 2>&1)
  assertEquals 'not root: fails' 1 $?
  assertEquals "not root: one line per missing package: ${out}" 2 \
    "$(printf '%s\n' "${out}" | wc -l)"
  assertContains 'names musl-tools' "$(printf '%s\n' "${out}" | head -n 1)" \
    'install the Debian package musl-tools'
  assertContains 'names shunit2' "$(printf '%s\n' "${out}" | tail -n 1)" \
    'install the Debian package shunit2'
  assertEquals 'not root: no apt-get' '' "$(cat "${APT_LOG}")"
  FAKE_UID=0 PATH="${stubs}" /bin/sh tests/need.sh musl-gcc curl 2>/dev/null
  assertEquals 'root: installed' 0 $?
  assertEquals 'root: one update, then each package' \
    'update -qq
install -y -qq musl-tools
install -y -qq curl' "$(cat "${APT_LOG}")"
  out=$(FAKE_UID=0 APT_STATUS=100 PATH="${stubs}" /bin/sh tests/need.sh \
    musl-gcc 2>&1)
  assertEquals 'root, apt-get failing: fails' 1 $?
  assertContains 'root, apt-get failing: names it' "${out}" \
    'install the Debian package musl-tools'
  unset APT_LOG
}

testMakeRunStartsAPrimaryOn8081AndItsReplicas() {
  # Its ports are fixed: one suite at a time on a machine. While another
  # suite or anything else holds them, the same runner goes on ports of
  # our own (KV_RUN_PORT), so what it does is still checked.
  exec {lock}>"${TMPDIR:-/tmp}/kvstore-make-run.lock"
  mp=8081
  flock -n "${lock}" || mp=
  for p in 8081 8082 8083; do
    curl -s -o /dev/null "http://127.0.0.1:${p}/health"
    [ $? -eq 7 ] || mp=
  done
  [ -n "${mp}" ] || { mp=$((port + 60)); echo "  8081-8083 busy: on ${mp}"; }
  # A copy of the tree's runner and binary, so ./data is a scratch one;
  # -o kvstore: the binary is built already.
  run="${SHUNIT_TMPDIR}/run"
  mkdir -p "${run}/tests"
  cp Makefile kvstore "${run}/"
  cp tests/cluster.sh tests/need.sh "${run}/tests/"
  # Its own process group, so that SIGINT reaches every process in it, as
  # Ctrl-C does in a terminal.
  (cd "${run}" && KV_RUN_PORT="${mp}" exec setsid make -s -o kvstore run) \
    >"${SHUNIT_TMPDIR}/run.log" 2>&1 &
  mpid=$!
  echo "${mpid}" >>"${SHUNIT_TMPDIR}/pids"
  r1=$((mp + 1))
  r2=$((mp + 2))
  # A script's first write, the moment /health answers: it waits while
  # the new primary asks its replicas, then is made.
  out=$(put_after_health "${mp}" name)
  echo "  make run: the first PUT took ${out#* } ms"
  assertEquals "a write right after /health: $(cat "${body}")" 201 \
    "${out%% *}"
  wait_ready "${mp}" 12 && wait_ready "${r1}" && wait_ready "${r2}"
  up=$?
  assertTrue "all three ready: $(tail -n 5 "${SHUNIT_TMPDIR}/run.log")" "${up}"
  assertEquals 'roles' 'primary replica replica' \
    "$(for p in "${mp}" "${r1}" "${r2}"; do curl -s "http://127.0.0.1:${p}/role"; echo; done | xargs)"
  assertTrue 'the primary keeps ./data/primary' \
    "[ -f '${run}/data/primary/kvstore.db' ]"
  assert_converged "${mp}" "${r1}" 'make run, replica 1'
  assert_converged "${mp}" "${r2}" 'make run, replica 2'
  logs=$(cat "${SHUNIT_TMPDIR}/run.log")
  for name in primary "replica-${r1}" "replica-${r2}"; do
    assertContains "${name}'s log in the one terminal" "${logs}" "${name} "
  done
  kill -INT -- "-${mpid}"
  wait_exit "${mpid}" 10
  assertNotEquals 'make ends on Ctrl-C' 124 "${exited}"
  wait_for 10 '! kill -0 -- "-${mpid}" 2>/dev/null'
  kill -0 -- "-${mpid}" 2>/dev/null
  assertFalse 'every process of make run has ended' $?
  assertEquals 'each node stopped cleanly' 3 \
    "$(grep -c 'stopped cleanly' "${SHUNIT_TMPDIR}/run.log")"
  exec {lock}>&-
}

# ---- Configuration ----

testDefaultsAreReplicaOnPort8080WithDataInDotData() {
  # Port 8080 may be taken on this machine: use a network namespace.
  if ! unshare -n true 2>/dev/null; then
    skip 'a network namespace of its own (unshare -n) is not allowed here'
    return
  fi
  kv="$(pwd)/kvstore"
  mkdir -p "${SHUNIT_TMPDIR}/defaults"
  (cd "${SHUNIT_TMPDIR}/defaults" &&
    env -u ROLE -u PORT -u DATA_DIR timeout -s TERM 1 unshare -n "${kv}" \
      2>"${SHUNIT_TMPDIR}/defaults.log")
  first=$(grep -m 1 ' starting: ' "${SHUNIT_TMPDIR}/defaults.log")
  assertContains "ROLE: $(cat "${SHUNIT_TMPDIR}/defaults.log")" "${first}" \
    ' role=replica '
  assertContains 'PORT' "${first}" ' port=8080 '
  assertContains 'DATA_DIR' "${first}" ' data=./data/kvstore.db '
  assertTrue './data created' "[ -f '${SHUNIT_TMPDIR}/defaults/data/kvstore.db' ]"
}

testBadConfigurationExitsWithOneClearLine() {
  # A store closed cleanly, which no bad setting may touch.
  start badenv
  stop "${spid}"
  check_bad_env 'PORT=abc' PORT=abc
  check_bad_env 'PORT in use' PORT="${port}"
  check_bad_env 'PORT=70000' PORT=70000
  check_bad_env 'ROLE=boss' ROLE=boss
  check_bad_env 'FSYNC=sometimes' FSYNC=sometimes
  check_bad_env 'MAX_VALUE_BYTES=' MAX_VALUE_BYTES=-1
  check_bad_env 'LOG_LEVEL=loud' LOG_LEVEL=loud
  check_bad_env 'DATA_DIR' DATA_DIR=/etc/passwd/sub
  check_bad_env 'PEERS_DNS=' PEERS_DNS=pods:0
  check_bad_env 'PEERS_DNS=' PEERS_DNS=pods:80x
  check_bad_env 'PEERS_DNS=' PEERS_DNS=http://pods
}

testUnwritableDataDirIsRefusedAndLeftUntouched() {
  dir="${SHUNIT_TMPDIR}/readonly"
  start readonly DATA_DIR="${dir}"
  stop "${spid}"
  before=$(cksum <"${dir}/kvstore.db")
  # Root writes anywhere: make the directory a read-only mount instead, in
  # a mount namespace of its own.
  if [ "$(id -u)" -ne 0 ]; then
    chmod 555 "${dir}"
    out=$(PORT=$((port + 44)) DATA_DIR="${dir}" timeout 5 ./kvstore 2>&1)
    status=$?
    chmod 755 "${dir}"
  elif unshare -m sh -c 'mount --bind "$1" "$1"' _ "${dir}" 2>/dev/null; then
    out=$(PORT=$((port + 44)) DATA_DIR="${dir}" timeout 5 unshare -m sh -c \
      'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" &&
      exec ./kvstore' _ "${dir}" 2>&1)
    status=$?
  else
    skip 'as root, a read-only mount needs unshare -m'
    return
  fi
  assertEquals 'exit status' 1 "${status}"
  assertEquals "one line: ${out}" 1 "$(printf '%s\n' "${out}" | wc -l)"
  assertContains 'says why' "${out}" 'is not writable by uid'
  assertEquals 'store untouched' "${before}" "$(cksum <"${dir}/kvstore.db")"
}

testForeignDbFileIsRefusedAndLeftUntouched() {
  mkdir -p "${SHUNIT_TMPDIR}/foreign"
  head -c 65536 /dev/urandom >"${SHUNIT_TMPDIR}/foreign/kvstore.db"
  before=$(cksum <"${SHUNIT_TMPDIR}/foreign/kvstore.db")
  out=$(PORT=$((port + 40)) DATA_DIR="${SHUNIT_TMPDIR}/foreign" \
    timeout 5 ./kvstore 2>&1)
  assertEquals 'exit status' 1 $?
  assertEquals "one line: ${out}" 1 "$(printf '%s\n' "${out}" | wc -l)"
  assertContains 'says why' "${out}" 'not a kvstore file'
  assertEquals 'file unchanged' "${before}" \
    "$(cksum <"${SHUNIT_TMPDIR}/foreign/kvstore.db")"
}

testRoleAutoFollowsTheStatefulSetOrdinal() {
  if ! unshare --uts true 2>/dev/null; then
    skip 'a hostname of its own (unshare --uts) is not allowed here'
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
  first=$(grep -m 1 ' starting: ' "${log}")
  assertContains 'role' "${first}" ' role=primary '
  assertContains 'port' "${first}" " port=${port} "
  assertContains 'data file' "${first}" \
    " data=${SHUNIT_TMPDIR}/primary/kvstore.db "
  assertContains 'keys' "${first}" ' keys=0 '
  assertContains 'fsync' "${first}" ' fsync=everysec '
  start startlog FSYNC=always
  curl -s -o /dev/null -X PUT -d 1 "http://127.0.0.1:${sport}/kv/a"
  curl -s -o /dev/null -X PUT -d 2 "http://127.0.0.1:${sport}/kv/b"
  stop "${spid}"
  start startlog FSYNC=always
  stop "${spid}"
  first=$(grep -m 1 ' starting: ' "${slog}")
  assertContains 'keys of a reopened store' "${first}" ' keys=2 '
  assertContains 'fsync=always' "${first}" ' fsync=always '
  # One line per event, each with its UTC time and level.
  assertEquals "lines without time and level: $(cat "${slog}")" 0 \
    "$(grep -cvE '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z (debug|info |warn |error) ' \
      "${slog}")"
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

testSigintStopsAcceptingAndFinishesTheRequestInFlight() {
  start inflight
  c0=$(connections "${sport}")
  exec 3<>"/dev/tcp/127.0.0.1/${sport}"
  printf 'PUT /kv/inflight HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhe' >&3
  # Once the server counts it (the loop has then read what came on it).
  wait_for 5 parked "${sport}" 1 "${c0}"
  kill -INT "${spid}"
  wait_for 5 'curl -s -o /dev/null "http://127.0.0.1:${sport}/health"; [ $? -eq 7 ]'
  assertTrue 'new connections refused (curl exit 7)' $?
  printf 'llo' >&3
  answer=$(timeout 3 cat <&3 | tr -d '\r')
  exec 3<&-
  assertContains 'the request in flight answered' "${answer}" \
    'HTTP/1.1 201 Created'
  assertContains 'and its connection closed' "${answer}" 'Connection: close'
  wait_exit "${spid}" 10
  assertEquals 'exit status after SIGINT' 0 "${exited}"
  assertContains 'logged' "$(cat "${slog}")" 'stopped cleanly'
  start inflight
  assertEquals 'the write kept' hello \
    "$(curl -s "http://127.0.0.1:${sport}/kv/inflight")"
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

testFsyncAlwaysGroupsConcurrentWritesIntoFewerFlushes() {
  start group FSYNC=always
  gurl="http://127.0.0.1:${sport}"
  for i in $(seq 1 200); do
    printf 'url = "%s/kv/g%s"\noutput = "/dev/null"\n' "${gurl}" "${i}"
  done >"${SHUNIT_TMPDIR}/group.cfg"
  # -s does not silence the parallel progress meter of curl 7.88.
  curl -s -Z --parallel-max 50 -X PUT -d v -K "${SHUNIT_TMPDIR}/group.cfg" \
    2>/dev/null
  assertEquals 'every write made' 200 "$(key_count "${sport}")"
  fsyncs=$(curl -s "${gurl}/metrics" |
    sed -n 's/^kvstore_fsyncs_total \([0-9]*\)$/\1/p')
  echo "  200 writes from 50 clients: ${fsyncs} flushes"
  # One flush per write would be 200; 50 clients at a time share them.
  assertTrue "200 writes from 50 clients took ${fsyncs} flushes" \
    "[ ${fsyncs:-200} -le 100 ]"
  stop "${spid}"
}

testKill9UnderWriteLoadLosesNoAcknowledgedWrite() {
  : >"${SHUNIT_TMPDIR}/acked"
  rounds=8
  for round in $(seq 1 "${rounds}"); do
    start crash FSYNC=always
    writer "${sport}" "${round}" >>"${SHUNIT_TMPDIR}/acked" &
    wpid=$!
    # The test itself: a kill at a random moment, 0.2 to 0.7 s into the
    # writes.
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
    # A plain unclean stop logs "dropped 0 bytes ... (end of log)".
    grep -qE 'dropped [1-9][0-9]* bytes .*torn or corrupt' "${slog}"
    logged=$?
    assertTrue "${damage}: what was dropped is logged: $(cat "${slog}")" \
      "${logged}"
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
  assertEquals "one line: ${out}" 1 "$(printf '%s\n' "${out}" | wc -l)"
  assertContains 'says why' "${out}" 'header'
  assertEquals 'file unchanged' "${before}" "$(cksum <"${db}")"
}

# ---- Fixtures ----

oneTimeSetUp() {
  cd "$(dirname "$0")" || return 1
  # Below the ephemeral range (32768 up), where a client socket could
  # already hold one of our ports.
  port=$((10000 + $$ % 20000))
  # shellcheck disable=SC2034 # the clusters' ports, for the suites
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

# The helpers every suite shares (requests, servers, clusters, waits, loads).
. "$(dirname "$0")/tests/lib.sh"

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
  done < <(list_tests)
}
# KV_TESTS='testA|testB' ./test.sh runs only the tests it names (a regex).
list_tests() {
  sed -n 's/^\(test[A-Za-z0-9_]*\)() {$/\1/p' "$0" \
    "$(dirname "$0")"/tests/suite_*.sh 2>/dev/null |
    grep -xE "${KV_TESTS:-.*}"
}

# The count line CI reads. shunit2 2.1.8's report says how many tests ran
# ("Ran N tests.") but counts failed assertions, not tests ("FAILED
# (failures=M)"), and has no public way to ask whether a test failed. So
# the suite runs in a child, and count_tests reads what shunit2 prints:
# each test's name as it starts, then an "ASSERT:" line per failed
# assertion, or "shunit2:ERROR" if the test returned non-zero. A test with
# either fails. It returns non-zero if any test failed, if the report is
# missing, or if the report does not say OK. (A bash loop, not awk: mawk
# reads a pipe in blocks, and the output must come as the tests run.)
count_tests() {
  local known line cur='' ran='' ok=0 started=0 t0=''
  known=" $(list_tests | tr '\n' ' ') "
  local failed=() skipped=()
  while IFS= read -r line; do
    printf '%s\n' "${line}"
    line=$(printf '%s' "${line}" | sed 's/\x1b\[[0-9;]*m//g')
    case "${line}" in
      *' '*) ;;
      test*) if [[ "${known}" == *" ${line} "* ]]; then
          time_test "${cur}" "${t0}"
          cur=${line}
          t0=${EPOCHREALTIME}
          started=$((started + 1))
          continue
        fi ;;
    esac
    case "${line}" in
      ASSERT:* | shunit2:ERROR*)
        [ -n "${cur}" ] && [[ " ${failed[*]} " != *" ${cur} "* ]] &&
          failed+=("${cur}") ;;
      '  skipped: '*)
        [ -n "${cur}" ] && [[ " ${skipped[*]} " != *" ${cur} "* ]] &&
          skipped+=("${cur}") ;;
      'Ran '[0-9]*' test.' | 'Ran '[0-9]*' tests.')
        time_test "${cur}" "${t0}"
        ran=${line#Ran }
        ran=${ran%% *} ;;
      OK*) ok=1 ;;
    esac
  done
  if [ -z "${ran}" ]; then
    echo 'shunit2 gave no report: the suite ended early'
    ran=${started}
    [ "${#failed[@]}" -gt 0 ] || failed=('(unknown)')
  fi
  [ "${ok}" = 1 ] || [ "${#failed[@]}" -gt 0 ] || failed=('(unknown)')
  [ "${ran}" -ge "${#failed[@]}" ] || ran=${#failed[@]}
  [ "${#skipped[@]}" -eq 0 ] ||
    echo "${#skipped[@]} skipped: ${skipped[*]}"
  [ "${#failed[@]}" -eq 0 ] || echo "failed: ${failed[*]}"
  echo "$((ran - ${#failed[@]})) passed, ${#failed[@]} failed"
  [ "${#failed[@]}" -eq 0 ]
}
# KV_TIMES=FILE: each test's wall time, "MS NAME" a line, appended to FILE
# (to see where a run's minutes go: sort -rn FILE | head).
time_test() {
  [ -n "${KV_TIMES:-}" ] && [ -n "$1" ] || return 0
  local us=$((${EPOCHREALTIME/./} - ${2/./}))
  printf '%d %s\n' $((us / 1000)) "$1" >>"${KV_TIMES}"
}
if [ -z "${KV_SUITE_CHILD:-}" ]; then
  KV_SUITE_CHILD=1 "$0" "$@" 2>&1 | count_tests
  status=("${PIPESTATUS[@]}")
  [ "${status[0]}" -eq 0 ] && [ "${status[1]}" -eq 0 ]
  exit
fi

. "$(command -v shunit2 || echo /usr/share/shunit2/shunit2)"
