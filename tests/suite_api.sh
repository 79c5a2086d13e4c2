# shellcheck shell=bash
# shellcheck disable=SC2154 # test.sh sets the fixtures' variables (port, body, ...)
# The route table (api.c), sourced by test.sh: exact matching, 404s that
# name the endpoints, 405s whose Allow comes from the table, and a README
# that lists every public route.

# api_routes [public]: the paths of api.c's route table, one a line; with
# "public", only those a 404 names (a help text that is not NULL).
api_routes() {
  sed -n 's/^\t{ R("\(\/[^"]*\)"), [01], .*/\1/p' api.c |
    if [ "$1" = public ]; then
      grep -Fxv -f <(sed -n 's/^\t{ R("\(\/[^"]*\)"), [01], .*, NULL },\{0,1\}$/\1/p' api.c)
    else
      cat
    fi | sort -u
}

testEveryPublicRouteIsInTheReadmesApiTable() {
  routes=$(api_routes public)
  assertTrue 'the table has public routes' "[ $(echo "${routes}" | wc -l) -ge 6 ]"
  api=$(sed -n '/^## API$/,/^### /p' README.md)
  for r in ${routes}; do
    assertContains "README's API table names ${r}" "${api}" "${r}"
  done
}

testAnUnknownPathNamesEveryPublicRoute() {
  call GET /nope
  assertEquals '404' 404 "${code}"
  for r in $(api_routes public); do
    assertContains "the 404 names ${r}" "$(cat "${body}")" "${r}"
  done
  call GET /repl/nope
  assertEquals 'an unknown /repl/ path' \
    '404 no such replication endpoint' "${code} $(cat "${body}")"
}

testRoutesMatchWholePathsOnly() {
  for p in /kvx /kvx/a /kv_ /healthz /health/ /ready/x /rolex /metricsx \
    /uix /repl /repl/applyx /repl/sync; do
    call GET "${p}"
    assertEquals "GET ${p}" 404 "${code}"
  done
  # Every route of the table is reached by its own path.
  for p in $(api_routes); do
    case "${p}" in
      /kv/ | /ui/) continue ;;	# prefixes, or the listing
    esac
    call GET "${p}"
    assertNotEquals "GET ${p} reaches a route" 404 "${code}"
  done
}

testAllowComesFromTheRouteTable() {
  hdr() {
    curl -s -o /dev/null -D - -X "$1" -H 'X-Kv-Repl-Token: x' "${url}$2" |
      tr -d '\r' |
      sed -n 's/^Allow: //p'
  }
  assertEquals 'the listing' 'GET, HEAD' "$(hdr PUT /kv/)"
  assertEquals 'a key' 'GET, HEAD, PUT, DELETE' "$(hdr POST /kv/k)"
  assertEquals 'a probe' 'GET, HEAD' "$(hdr DELETE /health)"
  assertEquals 'a replication push' 'POST' "$(hdr GET /repl/apply)"
  assertEquals 'the console' 'GET, HEAD' "$(hdr PUT /ui)"
}

# X-Kv-Min-Seq parks only reads of /kv, after their auth: not a 404.
testAMinSeqReadOfAnUnknownPathIsNotParked() {
  start minseq AUTH_TOKEN=t0k READ_AUTH=true MIN_SEQ_WAIT_MS=5000
  begin=$(date +%s%N)
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 4 \
    -H 'X-Kv-Min-Seq: 999' "http://127.0.0.1:${sport}/kvx")
  ms=$((($(date +%s%N) - begin) / 1000000))
  assertEquals 'answered 404' 404 "${code}"
  assertTrue "at once, not after MIN_SEQ_WAIT_MS (${ms} ms)" \
    "[ ${ms} -lt 3000 ]"
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 4 \
    -H 'X-Kv-Min-Seq: 999' "http://127.0.0.1:${sport}/kv/k")
  assertEquals 'a read of /kv without the token: 401, not parked' 401 \
    "${code}"
  stop "${spid}"
}

# A parked request is rerun from a copy of its head that ends where its
# query ends: nothing may read past it (AddressSanitizer's `make asan`
# catches a read of the cursor past its 16 digits).
testAParkedPageIsRerunWithinItsCopy() {
  out=$(raw "${port}" 'GET /kv/?index=999999&wait=200ms&cursor=0123456789abcdef HTTP/1.0\r\n\r\n')
  assertEquals 'the watch times out into its page' 'HTTP/1.1 200 OK' \
    "$(status_line "${out}")"
  assertContains 'a page' "${out}" '"next":'
  out=$(raw "${port}" 'GET /kv/?index=999999&wait=100ms&limit=5 HTTP/1.0\r\n\r\n')
  assertEquals 'limit too' 'HTTP/1.1 200 OK' "$(status_line "${out}")"
  out=$(raw "${port}" 'GET /kv/?cursor=0123456789abcdeg HTTP/1.0\r\n\r\n')
  assertEquals 'a cursor with a bad digit' 400 "$(status_code "${out}")"
  out=$(raw "${port}" 'GET /kv/?limit=5x HTTP/1.0\r\n\r\n')
  assertEquals 'a limit that is no number' 400 "$(status_code "${out}")"
}

# Parked requests hold connections: they may take at most MAX_PARKED of
# MAX_CONNS, so that the liveness probe is always answered.
testParkedRequestsLeaveRoomForProbes() {
  start parked MAX_CONNS=20
  purl="http://127.0.0.1:${sport}"
  curl -s -o /dev/null -X PUT -d 0 "${purl}/kv/w"
  fds=
  for _ in $(seq 1 10); do
    exec {fd}<>"/dev/tcp/127.0.0.1/${sport}"
    printf 'GET /kv/w?index=999&wait=60s HTTP/1.1\r\nHost: x\r\n\r\n' >&"${fd}"
    fds="${fds} ${fd}"
  done
  # The tenth parks once the loop has read it: poll until the next is refused.
  for _ in $(seq 1 100); do
    code=$(curl -s -D "${SHUNIT_TMPDIR}/parked.h" -o "${body}" \
      -w '%{http_code}' --max-time 2 "${purl}/kv/w?index=999&wait=60s")
    [ "${code}" = 503 ] && break
    sleep 0.02
  done
  assertEquals 'the eleventh watch: 503' 503 "${code}"
  assertContains 'says why' "$(cat "${body}")" 'MAX_PARKED=10'
  assertContains 'and when to come back' \
    "$(tr -d '\r' <"${SHUNIT_TMPDIR}/parked.h")" 'Retry-After: 1'
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 \
    "${purl}/health")
  assertEquals 'the probe is answered meanwhile' 200 "${code}"
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 -X PUT \
    -H 'X-Kv-Replicas: 1' -d 1 "${purl}/kv/acked")
  assertEquals 'a write that would wait for replicas: 503 before writing' \
    503 "${code}"
  code=$(curl -s -o /dev/null -w '%{http_code}' "${purl}/kv/acked")
  assertEquals 'and nothing was written' 404 "${code}"
  for fd in ${fds}; do exec {fd}>&-; done
  stop "${spid}"
}

# A listing with values is bounded per page and per value: 1 MiB of JSON a
# page (but its last key), and a value over 256 KiB listed by its size.
testListingsWithValuesAreBoundedInBytes() {
  start bounded
  burl="http://127.0.0.1:${sport}"
  head -c 200000 /dev/zero >"${SHUNIT_TMPDIR}/ctl"
  for i in 1 2 3 4 5 6; do
    curl -s -o /dev/null -X PUT --data-binary "@${SHUNIT_TMPDIR}/ctl" \
      "${burl}/kv/ctl${i}"
  done
  head -c 300000 /dev/zero | tr '\0' v >"${SHUNIT_TMPDIR}/big"
  curl -s -o /dev/null -X PUT --data-binary "@${SHUNIT_TMPDIR}/big" \
    "${burl}/kv/huge"
  curl -s -o "${body}" "${burl}/kv/?prefix=ctl&values=true&limit=100"
  n=$(grep -o '"key":' "${body}" | wc -l)
  # Each value escapes to 1.2 MB of \u0000: the page ends after one.
  assertEquals 'a page stops at its byte budget' 1 "${n}"
  assertNotContains 'and says where to go on' "$(cat "${body}")" '"next":null'
  cursor=$(sed -n 's/.*"next":"\([0-9a-f]*\)".*/\1/p' "${body}")
  seen=${n}
  while [ -n "${cursor}" ]; do
    curl -s -o "${body}" \
      "${burl}/kv/?prefix=ctl&values=true&limit=100&cursor=${cursor}"
    seen=$((seen + $(grep -o '"key":' "${body}" | wc -l)))
    cursor=$(sed -n 's/.*"next":"\([0-9a-f]*\)".*/\1/p' "${body}")
  done
  assertEquals 'the pages together hold every key' 6 "${seen}"
  curl -s -o "${body}" "${burl}/kv/?prefix=huge&values=true"
  assertEquals 'a value over 256 KiB is listed by size' \
    '[{"key":"huge","value_bytes":300000,"version":7}]' "$(cat "${body}")"
  stop "${spid}"
}

# /kv?key=K addresses the keys a browser cannot put in a path.
testKeysDotAndDotDotByQuery() {
  for k in . .. q/k; do
    code=$(curl -s -o /dev/null -w '%{http_code}' -X PUT -d "v${k}" \
      "${url}/kv?key=${k}")
    assertEquals "PUT /kv?key=${k}" 201 "${code}"
  done
  assertEquals 'the same key as the path names' 'vq/k' \
    "$(curl -s "${url}/kv/q%2Fk")"
  assertEquals 'GET ..' 'v..' "$(curl -s "${url}/kv?key=..")"
  assertEquals 'GET .' 'v.' "$(curl -s "${url}/kv?key=.")"
  assertContains 'listed' "$(curl -s "${url}/kv/?prefix=.")" '".."'
  code=$(curl -s -o "${body}" -w '%{http_code}' -X PUT -d v "${url}/kv?key=")
  assertEquals 'an empty key' '400 bad key: empty' "${code} $(cat "${body}")"
  code=$(curl -s -o "${body}" -w '%{http_code}' -X PUT -d v "${url}/kv")
  assertEquals 'PUT /kv without a key' 400 "${code}"
  for k in . .. q/k; do
    code=$(curl -s -o /dev/null -w '%{http_code}' -X DELETE "${url}/kv?key=${k}")
    assertEquals "DELETE /kv?key=${k}" 200 "${code}"
  done
}

# 100 Continue only for a request that passed auth, role and method: an
# upload that would be refused is refused before its body is sent.
testExpectContinueOnlyAfterTheChecks() {
  start expect AUTH_TOKEN=t0k
  out=$(raw "${sport}" 'PUT /kv/k HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n')
  assertEquals 'no token: 401 at once' 401 "$(status_code "${out}")"
  assertNotContains 'without a 100 first' "${out}" '100 Continue'
  assertContains 'and the connection closes' "${out}" 'Connection: close'
  out=$(raw "${sport}" 'PUT /kv/k HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer t0k\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\nhello')
  # The body came with the head: no 100 is owed (RFC 9110 10.1.1).
  assertContains 'with the token: created' "${out}" 'HTTP/1.1 201'
  stop "${spid}"
  start expectr ROLE=replica
  out=$(raw "${sport}" 'PUT /kv/k HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n')
  assertEquals 'a write to a replica: 403 at once' 403 "$(status_code "${out}")"
  assertNotContains 'without a 100 first' "${out}" '100 Continue'
  stop "${spid}"
}

# A value is served as what its type says: no browser sniffs HTML in it.
testAnswersSayNosniff() {
  printf '<script>alert(1)</script>' |
    curl -s -o /dev/null -X PUT --data-binary @- "${url}/kv/html"
  for p in /kv/html /kv/ /health /ready /nope /; do
    assertEquals "GET ${p}" 'X-Content-Type-Options: nosniff' \
      "$(curl -s -D - -o /dev/null "${url}${p}" | tr -d '\r' |
        grep -i '^X-Content-Type-Options:')"
  done
}
