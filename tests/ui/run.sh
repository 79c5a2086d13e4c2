#!/bin/bash
# run.sh: the web console in a real browser (`make test-ui`). Installs what
# is missing (Debian's chromium, node, npm when root; playwright-core,
# pinned, into UI_TOOLS, default /tmp/kvstore-ui-tools, outside the repo),
# then runs tests/ui/console.mjs against servers on 127.0.0.1 only. The
# screenshots go to tests/ui/shots/; docs/console-cluster.png and
# docs/console-keys.png are cluster.png and keys.png through pngquant. The
# whole run is bounded by UI_TIMEOUT seconds; every process it started is
# stopped and its scratch directory removed on exit. Ends with
# "N passed, M failed"; exits non-zero on any failure.
set -uo pipefail

if [ -z "${KVSTORE_UI_BOUNDED:-}" ]; then
  KVSTORE_UI_BOUNDED=1 exec timeout -k 10 "${UI_TIMEOUT:-300}" bash "$0" "$@"
fi

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "${here}/../.." && pwd)
tools=${UI_TOOLS:-/tmp/kvstore-ui-tools}
pkg='playwright-core@1.65.1'
shots="${here}/shots"
work=$(mktemp -d /tmp/kvstore-ui.XXXXXX)
test_pid=

say() { printf 'ui: %s\n' "$*"; }

# shellcheck disable=SC2317 # runs from the EXIT trap
cleanup() {
  trap - EXIT INT TERM
  [ -n "${test_pid}" ] && kill "${test_pid}" 2>/dev/null && wait "${test_pid}"
  # Servers the test could not stop itself (it was killed): by their PIDs.
  if [ -f "${work}/pids" ]; then
    while read -r p; do
      kill -9 "${p}" 2>/dev/null
    done <"${work}/pids"
  fi
  rm -rf "${work}"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

[ -x "${root}/kvstore" ] || { say "build ./kvstore first (make)"; exit 1; }
sh "${root}/tests/need.sh" chromium node npm curl || exit 1
if [ ! -f "${tools}/node_modules/playwright-core/package.json" ]; then
  say "installing ${pkg} into ${tools}"
  mkdir -p "${tools}"
  [ -f "${tools}/package.json" ] ||
    printf '{"name":"kvstore-ui-tools","private":true}\n' >"${tools}/package.json"
  (cd "${tools}" && timeout 300 npm install --silent --no-audit --no-fund \
    "${pkg}") || { say "npm install ${pkg} failed"; exit 1; }
fi
say "$(/usr/bin/chromium --version 2>/dev/null), node $(node --version)," \
  "playwright-core $(node -p "require('${tools}/node_modules/playwright-core/package.json').version")"

mkdir -p "${shots}"
node "${here}/console.mjs" --bin "${root}/kvstore" --work "${work}" \
  --shots "${shots}" --tools "${tools}" &
test_pid=$!
wait "${test_pid}"
status=$?
test_pid=
if [ "${status}" -ne 0 ]; then
  for log in "${work}"/*.log; do
    [ -f "${log}" ] || continue
    say "--- last lines of $(basename "${log}")"
    tail -n 15 "${log}"
  done
  # The failures and the count again, last, below the servers' logs.
  cat "${work}/summary" 2>/dev/null || echo "0 passed, 1 failed"
fi
exit "${status}"
