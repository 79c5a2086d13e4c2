# shellcheck shell=bash disable=SC2154 # url, body: test.sh's fixtures
# The web console as HTTP serves it (tests/ui/ drives it in a browser):
# its page and parts, their types and headers, and what is refused.

testConsoleUnpackUnitTests() {
  mkdir -p "${SHUNIT_TMPDIR}/ui"
  out=$(tests/ui_test ui/pack "${SHUNIT_TMPDIR}/ui" 2>&1)
  assertTrue "ui_test failed: ${out}" $?
  echo "${out}" | tail -n 1
}

testConsolePageIsHtmlWithAStrictCsp() {
  for path in / /ui; do
    head=$(curl -s -D - -o "${body}" "${url}${path}" | tr -d '\r')
    assertEquals "GET ${path}" 200 "$(status_code "${head}")"
    assertContains "GET ${path} type" "${head}" \
      'Content-Type: text/html; charset=utf-8'
    csp=$(printf '%s\n' "${head}" | sed -n 's/^Content-Security-Policy: //p')
    assertContains "${path}: CSP" "${csp}" "default-src 'none'"
    assertContains "${path}: CSP scripts" "${csp}" "script-src 'self'"
    assertContains "${path}: CSP fetches" "${csp}" "connect-src 'self'"
    assertNotContains "${path}: CSP has no unsafe-*" "${csp}" 'unsafe'
    assertContains "${path}: nosniff" "${head}" 'X-Content-Type-Options: nosniff'
    assertContains "${path}: the page" "$(cat "${body}")" \
      '<script src="ui/app.js" defer></script>'
  done
}

testConsolePartsAnswerWithTheirTypes() {
  check_type /ui/app.js 'text/javascript; charset=utf-8'
  check_type /ui/app.css 'text/css; charset=utf-8'
  check_type /ui/icon.svg 'image/svg+xml'
  call GET /ui/nope.js
  assertEquals 'an unknown part' 404 "${code}"
  # The page only at / and /ui: elsewhere its relative URLs would break.
  call GET /ui/
  assertEquals '/ui/' 404 "${code}"
  call GET /ui/index.html
  assertEquals '/ui/index.html' 404 "${code}"
}

# Each file is served byte for byte as ui/embed.sh shrank it: the packing
# at build time and the unpacking at start lose nothing.
testConsoleServesItsSourcesUnpacked() {
  for f in index.html app.js app.css icon.svg; do
    sh ui/embed.sh -s "ui/${f}" >"${SHUNIT_TMPDIR}/want"
    path=/ui/${f}
    [ "${f}" = index.html ] && path=/
    curl -s -o "${body}" "${url}${path}"
    cmp -s "${SHUNIT_TMPDIR}/want" "${body}"
    assertTrue "${path} is ui/${f} as shrunk" $?
  done
  assertTrue 'the script was shrunk' \
    "[ $(wc -c <ui/app.js) -gt $(sh ui/embed.sh -s ui/app.js | wc -c) ]"
}

testConsoleRevalidatesByEtag() {
  etag=$(curl -sI "${url}/ui/app.js" | tr -d '\r' | sed -n 's/^ETag: //p')
  assertNotEquals 'an ETag' '' "${etag}"
  assertContains 'revalidated on each load' \
    "$(curl -sI "${url}/ui/app.js")" 'Cache-Control: no-cache'
  code=$(curl -s -o /dev/null -w '%{http_code}' -H "If-None-Match: ${etag}" \
    "${url}/ui/app.js")
  assertEquals 'unchanged' 304 "${code}"
  code=$(curl -s -o /dev/null -w '%{http_code}' -H 'If-None-Match: "1"' \
    "${url}/ui/app.js")
  assertEquals 'another version' 200 "${code}"
  head=$(curl -sI "${url}/")
  assertEquals 'HEAD /' 200 "$(status_code "${head}")"
}

testConsoleRefusesOtherMethods() {
  for req in 'POST /' 'PUT /ui' 'DELETE /ui/app.js'; do
    head=$(curl -s -D - -o /dev/null -X "${req% *}" "${url}${req#* }" |
      tr -d '\r')
    assertEquals "${req}" 405 "$(status_code "${head}")"
    assertContains "${req}: Allow" "${head}" 'Allow: GET, HEAD'
  done
}

# The page must work under any path a proxy gives it: no absolute path or
# URL anywhere in what it loads or fetches.
testConsoleUsesOnlyRelativeUrls() {
  for f in index.html app.js app.css; do
    hits=$(sh ui/embed.sh -s "ui/${f}" | grep -nE "://|(src|href)=\"/|'/")
    assertEquals "ui/${f}: absolute URLs" '' "${hits}"
  done
  assertNotContains 'ui/app.css loads nothing' "$(cat ui/app.css)" 'url('
}

# check_type PATH TYPE: GET PATH answers 200 with Content-Type TYPE.
check_type() {
  head=$(curl -s -D - -o /dev/null "${url}$1" | tr -d '\r')
  assertEquals "GET $1" 200 "$(status_code "${head}")"
  assertContains "GET $1 type" "${head}" "Content-Type: $2"
}
