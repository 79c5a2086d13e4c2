# shellcheck shell=bash
# shellcheck disable=SC2154 # test.sh sets the fixtures' variables (port, body, ...)
# Authentication and log hygiene, sourced by test.sh (its helpers and
# fixtures apply): AUTH_TOKEN on writes, READ_AUTH on reads, REPL_TOKEN on
# replication, *_FILE, the client's token, and logs that carry neither a
# token nor a raw request byte.

# ---- AUTH_TOKEN and READ_AUTH ----

testWritesNeedTheBearerToken() {
  start auth AUTH_TOKEN=w0rks-Fine.x
  aurl="http://127.0.0.1:${sport}"
  authed "${aurl}" PUT /kv/k '' -d v
  assertEquals 'PUT without a token' 401 "${code}"
  assertContains 'a bare challenge' "$(cat "${hdrs}")" \
    'WWW-Authenticate: Bearer realm="kvstore"'
  assertNotContains 'no error without a token' "$(cat "${hdrs}")" 'error='
  assertEquals 'one readable line' 1 "$(wc -l <"${body}")"
  assertContains 'says what to send' "$(cat "${body}")" 'Authorization: Bearer'
  for wrong in wrong w0rks-Fine. w0rks-Fine.xx W0RKS-FINE.X; do
    authed "${aurl}" PUT /kv/k "${wrong}" -d v
    assertEquals "PUT with token '${wrong}'" 401 "${code}"
    assertContains "error=invalid_token for '${wrong}'" "$(cat "${hdrs}")" \
      'Bearer realm="kvstore", error="invalid_token"'
  done
  code=$(curl -s -o /dev/null -w '%{http_code}' -X PUT -d v \
    -u 'user:w0rks-Fine.x' "${aurl}/kv/k")
  assertEquals 'Basic credentials are no Bearer token' 401 "${code}"
  code=$(curl -s -D "${hdrs}" -o /dev/null -w '%{http_code}' -X PUT -d v \
    -H 'Authorization: Bearer' "${aurl}/kv/k")
  assertEquals 'Bearer without a token' 401 "${code}"
  assertContains 'is an invalid token' "$(cat "${hdrs}")" 'invalid_token'
  authed "${aurl}" PUT /kv/k w0rks-Fine.x -d v
  assertEquals 'PUT with the token' 201 "${code}"
  code=$(curl -s -o /dev/null -w '%{http_code}' -X PUT -d v2 \
    -H 'Authorization: bearer   w0rks-Fine.x' "${aurl}/kv/k")
  assertEquals 'the scheme is case-insensitive' 200 "${code}"
  authed "${aurl}" GET /kv/k ''
  assertEquals 'GET stays open' "200 v2" "${code} $(cat "${body}")"
  code=$(curl -s -o /dev/null -w '%{http_code}' -I "${aurl}/kv/k")
  assertEquals 'HEAD stays open' 200 "${code}"
  authed "${aurl}" GET /kv/ ''
  assertEquals 'listing stays open' '200 ["k"]' "${code} $(cat "${body}")"
  authed "${aurl}" DELETE /kv/k ''
  assertEquals 'DELETE without a token' 401 "${code}"
  authed "${aurl}" DELETE /kv/k w0rks-Fine.x
  assertEquals 'DELETE with the token' 200 "${code}"
  for p in /health /ready /role /metrics; do
    authed "${aurl}" GET "${p}" ''
    assertEquals "${p} without a token" 200 "${code}"
  done
  assertContains 'the start line says writes need a token' "$(cat "${slog}")" \
    'auth=writes'
  stop "${spid}"
}

testReadAuthClosesReadsListingsAndWatchesButNotProbes() {
  start rauth AUTH_TOKEN=r3ad LOG_LEVEL=debug READ_AUTH=true
  aurl="http://127.0.0.1:${sport}"
  authed "${aurl}" PUT /kv/k r3ad -d v
  assertEquals 'PUT with the token' 201 "${code}"
  for p in /kv/k /kv/ /kv '/kv/?prefix=k' '/kv/k?index=1&wait=5s' \
    '/kv/?prefix=k&index=9&wait=5s'; do
    authed "${aurl}" GET "${p}" ''
    assertEquals "GET ${p} without a token" 401 "${code}"
    authed "${aurl}" GET "${p}" nope
    assertEquals "GET ${p} with a wrong token" 401 "${code}"
  done
  # Refused before it can wait: the answer is not held for the 5 s.
  t0=$(date +%s%N)
  code=$(curl -s -o /dev/null -w '%{http_code}' -H 'X-Kv-Min-Seq: 999' \
    "${aurl}/kv/k")
  ms=$((($(date +%s%N) - t0) / 1000000))
  assertEquals 'X-Kv-Min-Seq without a token' 401 "${code}"
  assertTrue "refused at once (${ms} ms), not after MIN_SEQ_WAIT_MS" \
    "[ ${ms} -lt 2500 ]"
  code=$(curl -s -o /dev/null -w '%{http_code}' -I "${aurl}/kv/k")
  assertEquals 'HEAD without a token' 401 "${code}"
  authed "${aurl}" GET /kv/k r3ad
  assertEquals 'GET with the token' "200 v" "${code} $(cat "${body}")"
  authed "${aurl}" GET /kv/ r3ad
  assertEquals 'listing with the token' '200 ["k"]' "${code} $(cat "${body}")"
  for p in /health /ready /role /metrics; do
    authed "${aurl}" GET "${p}" ''
    assertEquals "${p} stays open (probes, Prometheus)" 200 "${code}"
  done
  assertContains 'the start line says reads need it too' "$(cat "${slog}")" \
    'auth=reads,writes'
  stop "${spid}"
}

testReplicaAnswers403ToWritesWithOrWithoutAToken() {
  start rauthrep ROLE=replica PRIMARY_URL=http://primary.example:8080 \
    AUTH_TOKEN=t0k
  aurl="http://127.0.0.1:${sport}"
  for tok in '' wrong t0k; do
    authed "${aurl}" PUT /kv/k "${tok}" -d v
    assertEquals "PUT with token '${tok}'" 403 "${code}"
    assertContains "names the primary (token '${tok}')" "$(cat "${body}")" \
      'http://primary.example:8080'
  done
  authed "${aurl}" GET /kv/k ''
  assertEquals 'reads stay open on a replica' 404 "${code}"
  stop "${spid}"
}

# ---- Tokens from files ----

testTokensAreReadFromFiles() {
  printf 'fr0m-a-file\n' >"${SHUNIT_TMPDIR}/auth-token"
  printf 'r3pl-file' >"${SHUNIT_TMPDIR}/repl-token"
  start fauth AUTH_TOKEN_FILE="${SHUNIT_TMPDIR}/auth-token" \
    REPL_TOKEN_FILE="${SHUNIT_TMPDIR}/repl-token"
  aurl="http://127.0.0.1:${sport}"
  authed "${aurl}" PUT /kv/k fr0m-a-file -d v
  assertEquals 'the token without its trailing newline' 201 "${code}"
  code=$(curl -s -o /dev/null -w '%{http_code}' "${aurl}/repl/state")
  assertEquals 'replication without its token' 401 "${code}"
  code=$(curl -s -o /dev/null -w '%{http_code}' \
    -H 'X-Kv-Repl-Token: fr0m-a-file' "${aurl}/repl/state")
  assertEquals 'replication with the client token' 401 "${code}"
  code=$(curl -s -o /dev/null -w '%{http_code}' \
    -H 'X-Kv-Repl-Token: r3pl-file' "${aurl}/repl/state")
  assertEquals 'replication with REPL_TOKEN_FILE' 200 "${code}"
  stop "${spid}"
}

testBadTokenSettingsRefuseToStartWithOneLine() {
  t="${SHUNIT_TMPDIR}/tokens"
  mkdir -p "${t}/dir"
  : >"${t}/empty"
  printf '\n' >"${t}/newline"
  printf 'two\n\n' >"${t}/two-newlines"
  printf 'crlf-S3cret\r\n' >"${t}/crlf"
  printf 'good' >"${t}/good"
  long=$(head -c 257 /dev/zero | tr '\0' a)
  check_bad_env 'both AUTH_TOKEN and AUTH_TOKEN_FILE' AUTH_TOKEN=Sekr1t \
    AUTH_TOKEN_FILE="${t}/good"
  assertContains 'says both are set' "${out}" 'both set'
  assertNotContains 'the token is not shown' "${out}" Sekr1t
  check_bad_env 'AUTH_TOKEN_FILE missing' AUTH_TOKEN_FILE="${t}/none"
  assertContains 'names the file and why' "${out}" \
    "AUTH_TOKEN_FILE=${t}/none: cannot read: No such file"
  check_bad_env 'AUTH_TOKEN_FILE a directory' AUTH_TOKEN_FILE="${t}/dir"
  check_bad_env 'AUTH_TOKEN_FILE empty' AUTH_TOKEN_FILE="${t}/empty"
  assertContains 'says it is empty' "${out}" 'empty'
  check_bad_env 'AUTH_TOKEN_FILE only a newline' AUTH_TOKEN_FILE="${t}/newline"
  check_bad_env 'AUTH_TOKEN_FILE two newlines' \
    AUTH_TOKEN_FILE="${t}/two-newlines"
  check_bad_env 'AUTH_TOKEN_FILE ending in CRLF' AUTH_TOKEN_FILE="${t}/crlf"
  assertContains 'names the byte' "${out}" '0x0d'
  assertNotContains 'the token is not shown' "${out}" S3cret
  check_bad_env 'REPL_TOKEN_FILE missing' REPL_TOKEN_FILE="${t}/none"
  check_bad_env 'both REPL_TOKEN and REPL_TOKEN_FILE' REPL_TOKEN=x \
    REPL_TOKEN_FILE="${t}/good"
  check_bad_env 'AUTH_TOKEN with a space' 'AUTH_TOKEN=has Space'
  assertNotContains 'the token is not shown' "${out}" Space
  check_bad_env 'AUTH_TOKEN over 256 bytes' AUTH_TOKEN="${long}"
  check_bad_env 'READ_AUTH=maybe' AUTH_TOKEN=x READ_AUTH=maybe
  check_bad_env 'READ_AUTH without AUTH_TOKEN' READ_AUTH=true
  assertContains 'says what it needs' "${out}" 'needs AUTH_TOKEN'
}

# ---- Browsers and DNS rebinding ----

# as_page HOST METHOD PATH [curl args]: a request as a page's script sends
# it to its own origin HOST once that name points here (DNS rebinding).
as_page() {
  code=$(curl -s -o "${body}" -w '%{http_code}' -H "Host: $1" \
    -H 'Sec-Fetch-Site: same-origin' -X "$2" "${@:4}" "${aurl}$3")
}

testBrowsersMustNameTheNodeByAHostNoOtherSiteOwns() {
  start rebind
  aurl="http://127.0.0.1:${sport}"
  curl -s -o /dev/null -X PUT -d v "${aurl}/kv/k"
  as_page evil.example:8080 PUT /kv/k -d forged
  assertEquals 'a rebound page cannot write' 403 "${code}"
  assertEquals 'one readable line' 1 "$(wc -l <"${body}")"
  assertContains 'says what to do' "$(cat "${body}")" ALLOWED_HOSTS
  assertContains 'names the host' "$(cat "${body}")" evil.example
  as_page evil.example DELETE /kv/k
  assertEquals 'nor delete' 403 "${code}"
  as_page evil.example GET /kv/k
  assertEquals 'nor read' 403 "${code}"
  as_page evil.example GET /kv/
  assertEquals 'nor list' 403 "${code}"
  as_page evil.example GET /backup -H 'Authorization: Bearer none'
  assertEquals 'nor take a backup' 403 "${code}"
  as_page evil.example GET /repl/snapshot -H 'X-Kv-Repl-Token: x'
  assertEquals 'nor replicate' 403 "${code}"
  code=$(curl -s -o /dev/null -w '%{http_code}' -X PUT -d forged \
    -H 'Host: evil.example' -H 'Origin: http://evil.example' "${aurl}/kv/k")
  assertEquals 'Origin alone marks a browser' 403 "${code}"
  assertEquals 'the value is untouched' v "$(curl -s "${aurl}/kv/k")"
  for h in evil.example.com. 127.0.0.1.evil.example localhost.evil.example 0x7f.evil; do
    as_page "${h}" GET /kv/k
    assertEquals "Host ${h}" 403 "${code}"
  done
  for h in "127.0.0.1:${sport}" 10.1.2.3 "[::1]:${sport}" localhost \
    LOCALHOST:8080 localhost. app.localhost kvstore-0 kvstore-0:8080; do
    as_page "${h}" GET /kv/k
    assertEquals "Host ${h} is safe" 200 "${code}"
  done
  code=$(curl -s -o /dev/null -w '%{http_code}' -X PUT -d v2 \
    -H 'Host: evil.example' "${aurl}/kv/k")
  assertEquals 'curl, scripts and peers are not asked' 200 "${code}"
  stop "${spid}"

  start rebind-allowed ALLOWED_HOSTS='kv.example.org,.corp.example'
  aurl="http://127.0.0.1:${sport}"
  curl -s -o /dev/null -X PUT -d v "${aurl}/kv/k"
  for h in kv.example.org KV.Example.ORG:443 corp.example a.b.corp.example; do
    as_page "${h}" PUT /kv/k -d v
    assertEquals "Host ${h} is listed" 200 "${code}"
  done
  for h in x.kv.example.org example.org evilcorp.example corp.example.evil; do
    as_page "${h}" PUT /kv/k -d v
    assertEquals "Host ${h} is not" 403 "${code}"
  done
  stop "${spid}"

  start rebind-any ALLOWED_HOSTS='*'
  aurl="http://127.0.0.1:${sport}"
  as_page evil.example PUT /kv/k -d v
  assertEquals 'ALLOWED_HOSTS=* lets any name through' 201 "${code}"
  stop "${spid}"
}

testBadAllowedHostsRefuseToStartWithOneLine() {
  start badenv
  stop "${spid}"
  for v in kv.example:8080 kv/x 'a,,b' ',a' -x 'a b' 'http://kv'; do
    check_bad_env "ALLOWED_HOSTS=${v}" ALLOWED_HOSTS="${v}"
    assertContains "ALLOWED_HOSTS=${v}: says what it expects" "${out}" \
      '.domains'
  done
}

# ---- Replication and logs ----

testClusterWithTokenFilesReplicatesAndNeverLogsThem() {
  printf 'Cl1ent-T0ken\n' >"${SHUNIT_TMPDIR}/c-token"
  printf 'R3pl-T0ken\n' >"${SHUNIT_TMPDIR}/r-token"
  toks=(AUTH_TOKEN_FILE="${SHUNIT_TMPDIR}/c-token" READ_AUTH=1
    REPL_TOKEN_FILE="${SHUNIT_TMPDIR}/r-token")
  node p "${rp}" primary "${toks[@]}"
  node r1 "${rr1}" replica "${toks[@]}"
  wait_ready "${rr1}"
  assertTrue 'the replica completed its first sync' $?
  authed "http://127.0.0.1:${rp}" PUT /kv/k Cl1ent-T0ken -d replicated
  assertEquals 'PUT with the token' 201 "${code}"
  authed "http://127.0.0.1:${rp}" PUT /kv/k Wrong-T0ken -d no
  assertEquals 'PUT with a wrong token' 401 "${code}"
  wait_seq "${rr1}" "$(node_seq "${rp}")"
  authed "http://127.0.0.1:${rr1}" GET /kv/k Cl1ent-T0ken
  assertEquals 'the replica has it' '200 replicated' "${code} $(cat "${body}")"
  authed "http://127.0.0.1:${rr1}" GET /kv/k ''
  assertEquals 'and needs the token to read it' 401 "${code}"
  code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -d x \
    -H 'X-Kv-Repl-Token: Cl1ent-T0ken' \
    "http://127.0.0.1:${rr1}/repl/apply?id=00000000000000000000000000000000&from=1")
  assertEquals 'the client token cannot replicate' 401 "${code}"
  logs=$(cat "${SHUNIT_TMPDIR}/p.log" "${SHUNIT_TMPDIR}/r1.log")
  assertNotContains 'the client token is never logged' "${logs}" Cl1ent-T0ken
  assertNotContains 'the replication token is never logged' "${logs}" R3pl-T0ken
  assertNotContains 'nor a wrong one' "${logs}" Wrong-T0ken
  stop_nodes
}

testAuthTokenAloneGuardsReplicationToo() {
  node p "${rp}" primary AUTH_TOKEN=0nly-Auth
  node r1 "${rr1}" replica AUTH_TOKEN=0nly-Auth
  wait_ready "${rr1}"
  assertTrue 'the replica synced with AUTH_TOKEN as the replication token' $?
  for port_ in "${rp}" "${rr1}"; do
    code=$(curl -s -o /dev/null -w '%{http_code}' \
      "http://127.0.0.1:${port_}/repl/snapshot")
    assertEquals "no snapshot without a token (${port_})" 401 "${code}"
  done
  code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -d x \
    "http://127.0.0.1:${rr1}/repl/sync/begin?id=00000000000000000000000000000000&seq=1")
  assertEquals 'no write to a replica without a token' 401 "${code}"
  assertContains 'the start line says so' "$(cat "${SHUNIT_TMPDIR}/r1.log")" \
    'auth=writes repl_auth=on'
  stop_nodes
}

testLogsEscapeRequestBytesAndCannotBeForged() {
  start esc LOG_LEVEL=debug
  aurl="http://127.0.0.1:${sport}"
  forged='2099-01-01T00:00:00.000Z error FORGED'
  code=$(printf 'http://evil\n%s\033[31m\033]0;title\007\r\t\\end' \
    "${forged}" | curl -s -o /dev/null -w '%{http_code}' --data-binary @- \
    -H 'X-Kv-Repl-Token: x' "${aurl}/repl/register")
  assertEquals 'a URL with control bytes is refused' 400 "${code}"
  code=$(head -c 255 /dev/zero | tr '\0' '\033' |
    curl -s -o /dev/null -w '%{http_code}' --data-binary @- \
      -H 'X-Kv-Repl-Token: x' "${aurl}/repl/register")
  assertEquals 'and a long one' 400 "${code}"
  stop "${spid}"
  line=$(grep -a FORGED "${slog}")
  assertContains 'the refusal is logged, escaped' "${line}" \
    'http://evil\x0a2099-01-01T00:00:00.000Z error FORGED\x1b[31m\x1b]0;title\x07\x0d\x09\\end'
  assertEquals 'no control byte but the newlines' 0 \
    "$(tr -d '\n' <"${slog}" | LC_ALL=C tr -d '\040-\176' | wc -c)"
  assertEquals 'every line is a real log line' '' "$(grep -avE \
    '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]{12}Z (debug|info |warn |error) ' \
    "${slog}")"
  assertEquals 'no forged line' 0 "$(grep -ac '^2099' "${slog}")"
  long=$(grep -a 'x1b\\x1b\\x1b' "${slog}")
  assertTrue "a long line is bounded ($(printf '%s' "${long}" | wc -c) bytes)" \
    "[ $(printf '%s' "${long}" | wc -c) -lt 1024 ]"
  assertContains 'and says it was cut' "${long}" '...'
}

# ---- The command-line client ----

testClientSendsAuthTokenFromItsEnvironment() {
  printf 'Cl1-T0k\n' >"${SHUNIT_TMPDIR}/cli-token"
  start cliauth AUTH_TOKEN=Cl1-T0k READ_AUTH=true
  export KV_URL="http://127.0.0.1:${sport}"
  err=$(./kvstore put k v 2>&1)
  assertEquals 'put without a token: exit 3' 3 $?
  assertContains 'says 401 and what to send' "${err}" '401 this request needs a token'
  out=$(AUTH_TOKEN=Cl1-T0k ./kvstore put k v)
  assertEquals 'put with AUTH_TOKEN' 'created' "${out}"
  out=$(AUTH_TOKEN_FILE="${SHUNIT_TMPDIR}/cli-token" ./kvstore get k)
  assertEquals 'get with AUTH_TOKEN_FILE' v "${out}"
  out=$(AUTH_TOKEN=Cl1-T0k ./kvstore ls)
  assertEquals 'ls with the token' k "${out}"
  AUTH_TOKEN=wrong ./kvstore get k 2>/dev/null
  assertEquals 'get with a wrong token: exit 3' 3 $?
  AUTH_TOKEN=Cl1-T0k ./kvstore del k >/dev/null
  assertEquals 'del with the token: exit 0' 0 $?
  err=$(AUTH_TOKEN_FILE="${SHUNIT_TMPDIR}/none" ./kvstore get k 2>&1)
  assertEquals 'a bad AUTH_TOKEN_FILE: exit 2' 2 $?
  assertContains 'says why' "${err}" 'AUTH_TOKEN_FILE='
  assertEquals 'health needs no token' ok "$(./kvstore health)"
  unset KV_URL
  stop "${spid}"
  assertNotContains 'the token is never logged' "$(cat "${slog}")" Cl1-T0k
}

# ---- Helpers ----

# authed URL METHOD PATH TOKEN [CURL ARGS...]: a request with
# "Authorization: Bearer TOKEN" unless TOKEN is empty; the status in
# ${code}, the head in ${hdrs}, the body in ${body}.
authed() {
  hdrs="${SHUNIT_TMPDIR}/headers"
  auth=()
  [ -n "$4" ] && auth=(-H "Authorization: Bearer $4")
  code=$(curl -s -D "${hdrs}" -o "${body}" -w '%{http_code}' -X "$2" \
    "${auth[@]}" "${@:5}" "$1$3")
}
