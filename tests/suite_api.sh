# shellcheck shell=bash
# shellcheck disable=SC2154 # test.sh sets the fixtures' variables (port, body, ...)
# The route table (api.c), sourced by test.sh: exact matching, 404s that
# name the endpoints, 405s whose Allow comes from the table, and a README
# that lists every public route.

# api_routes [public]: the paths of api.c's route table, one a line; with
# "public", only those a 404 names (a help text that is not NULL).
api_routes() {
  sed -n 's/^\t{ "\(\/[^"]*\)", [01], .*/\1/p' api.c |
    if [ "$1" = public ]; then
      grep -Fxv -f <(sed -n 's/^\t{ "\(\/[^"]*\)", [01], .*, NULL },\{0,1\}$/\1/p' api.c)
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
    curl -s -o /dev/null -D - -X "$1" "${url}$2" | tr -d '\r' |
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
