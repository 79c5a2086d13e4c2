# shellcheck shell=bash disable=SC2154
# Crash tests, sourced by test.sh (which sets the ports and helpers used
# here): kill -9 at random moments under write load, of a lone primary, of
# a primary with replicas, and of a replica in the middle of a full sync.
# tests/crashload writes and checks: it logs a write only once its 2xx has
# arrived, and after each restart every key must hold its last
# acknowledged value (or that of a later write that was sent but never
# answered). KV_LONG=1 (make test-long) kills 200 times.

testKill9AtRandomMomentsUnderLoadLosesNoAcknowledgedWrite() {
  kills=25
  [ -n "${KV_LONG:-}" ] && kills=200
  acks="${SHUNIT_TMPDIR}/crash9.acks"
  all_logs="${SHUNIT_TMPDIR}/crash9.logs"
  : >"${acks}"
  : >"${all_logs}"
  begin=$(date +%s)
  start crash9 FSYNC=always
  for round in $(seq 1 "${kills}"); do
    tests/crashload write "${sport}" "${acks}" 4 "${round}" \
      >>"${SHUNIT_TMPDIR}/crash9.out" &
    wpid=$!
    # 20 to 600 ms: mid-write, mid-fsync, mid-growth or mid-compaction.
    ms=$((RANDOM % 580 + 20))
    sleep "$((ms / 1000)).$(printf '%03d' $((ms % 1000)))"
    kill -9 "${spid}"
    wait "${spid}" 2>/dev/null
    wait "${wpid}"
    assertTrue "round ${round}: the writer got only 2xx answers" $?
    cat "${slog}" >>"${all_logs}"
    start crash9 FSYNC=always
    if ! wait_ready "${sport}"; then
      fail "round ${round}: the store did not open: $(tail -n 3 "${slog}")"
      break
    fi
    if ! out=$(tests/crashload check "${sport}" "${acks}" 2>&1); then
      fail "after kill ${round}: ${out}"
      break
    fi
    [ $((round % 10)) -eq 0 ] &&
      echo "  kill -9 ${round}/${kills}: ${out#crashload: }"
  done
  cat "${slog}" >>"${all_logs}"
  recovered=$(grep -c 'recovered after an unclean' "${all_logs}")
  compacted=$(grep -c 'compacted to' "${all_logs}")
  echo "  ${round} kills in $(($(date +%s) - begin)) s;" \
    "$(grep -c '^A ' "${acks}") acknowledged writes" \
    "($(grep -c '^A .* -$' "${acks}") deletes); every key checked after" \
    "each restart; ${recovered} recoveries, ${compacted} compactions"
  assertEquals 'every restart recovered the store' "${round}" "${recovered}"
  stop "${spid}"
}

testPrimaryKill9UnderLoadKeepsAckedWritesAndReplicasConverge() {
  rounds=2
  [ -n "${KV_LONG:-}" ] && rounds=6
  acks="${SHUNIT_TMPDIR}/pk9.acks"
  : >"${acks}"
  node p "${rp}" primary FSYNC=always
  node r1 "${rr1}" replica
  node r2 "${rr2}" replica
  wait_ready "${rr1}" && wait_ready "${rr2}"
  for round in $(seq 1 "${rounds}"); do
    tests/crashload write "${rp}" "${acks}" 4 "${round}" >/dev/null &
    wpid=$!
    # The test itself: a kill at a random moment, 0.2 to 1 s in.
    ms=$((RANDOM % 800 + 200))
    sleep "$((ms / 1000)).$(printf '%03d' $((ms % 1000)))"
    kill -9 "$(pid_of p)"
    wait "$(pid_of p)" 2>/dev/null
    wait "${wpid}"
    assertTrue "round ${round}: the writer got only 2xx answers" $?
    node p "${rp}" primary FSYNC=always
    out=$(tests/crashload check "${rp}" "${acks}" 2>&1)
    assertTrue "round ${round}: the primary after kill -9: ${out}" $?
    # Writes go on while the replicas resume under the new id.
    tests/crashload write "${rp}" "${acks}" 4 "$((round + 1000))" 2 \
      >/dev/null
    assertTrue "round ${round}: writes after the restart" $?
    assert_converged "${rp}" "${rr1}" "kill -9 ${round}: replica 1"
    assert_converged "${rp}" "${rr2}" "kill -9 ${round}: replica 2"
  done
  for r in "${rr1}" "${rr2}"; do
    out=$(tests/crashload check "${r}" "${acks}" 2>&1)
    assertTrue "replica ${r} has every acknowledged write: ${out}" $?
  done
  echo "  ${out#crashload: }"
  assertEquals 'a new replication id after each kill' "${rounds}" \
    "$(grep -c 'new replication id' "${SHUNIT_TMPDIR}/p.log")"
  stop_nodes
}

testReplicaKilledMidFullSyncNeverServesAHalfStore() {
  big=800
  [ -n "${KV_LONG:-}" ] && big=3200
  [ -n "${KV_TSAN:-}" ] && big=16
  # The old data set: l/old-* with 8 KiB values (so that a listing of l/
  # with values is 16 MB, far more than the socket buffers hold: the
  # server produces it over seconds for a slow reader) and l/gone-*.
  node p "${rp}" primary FSYNC=no REPL_BACKLOG_BYTES=1048576
  head -c 6144 /dev/urandom | base64 -w 0 >"${SHUNIT_TMPDIR}/8k"
  writes put_files "${rp}" l/old- 2000 "${SHUNIT_TMPDIR}/8k"
  writes put_many "${rp}" l/gone- 100
  node r1 "${rr1}" replica
  assert_converged "${rp}" "${rr1}" 'the old data set' 2100
  stop_node r1
  # The new one, far past the 1 MiB backlog: l/gone-* deleted, l/new-*,
  # 64 KiB values outside l/ (50 MB; 200 MB long, 1 MB under TSan), and
  # l/sentinel last.
  for i in $(seq 1 100); do
    printf 'url = "http://127.0.0.1:%s/kv/l/gone-%s"\noutput = "/dev/null"\n' \
      "${rp}" "${i}"
  done | curl -s -X DELETE -w '%{method} %{http_code}\n' -K - |
    answered 'deletes of l/gone-' 100 'DELETE 200' >"${SHUNIT_TMPDIR}/gone.out"
  assertTrue "$(cat "${SHUNIT_TMPDIR}/gone.out")" $?
  writes put_many "${rp}" l/new- 100
  head -c 49152 /dev/urandom | base64 -w 0 >"${SHUNIT_TMPDIR}/64k"
  writes put_files "${rp}" big "${big}" "${SHUNIT_TMPDIR}/64k"
  curl -s -o /dev/null -X PUT -d last "http://127.0.0.1:${rp}/kv/l/sentinel"
  # Views: "ready KEYS" and "list TOTAL NEW GONE SENTINEL" (under l/).
  old_keys=2100 old="2100 0 100 0"
  new_keys=$((2101 + big)) new="2101 100 0 1"
  assertEquals 'the new data set' "${new_keys}" "$(key_count "${rp}")"

  for phase in stale wiped; do
    [ "${phase}" = wiped ] && stop_node r1 && rm -rf "${SHUNIT_TMPDIR}/r1"
    before="${old}" before_keys="${old_keys}"
    [ "${phase}" = wiped ] && before="0 0 0 0" before_keys=0
    seen="${SHUNIT_TMPDIR}/seen.${phase}"
    : >"${seen}"
    rm -f "${SHUNIT_TMPDIR}/reader.stop"
    readers "${rr1}" "${seen}" &
    rpid=$!
    kill_mid_sync r1 "${rr1}"
    echo restarted >>"${seen}"
    node r1 "${rr1}" replica
    # Restarted, it serves what it had until a new sync completes: asked
    # at once, as the poller above may first get through after the sync.
    first=$(json_num "$(curl -s --max-time 2 "http://127.0.0.1:${rr1}/ready")" keys)
    # A client that stops reading a listing of the old store until the
    # sync is over: the server must not finish it from the new one.
    touch "${SHUNIT_TMPDIR}/hold"
    : >"${SHUNIT_TMPDIR}/held"
    [ "${phase}" = stale ] && tests/crashload slowget "${rr1}" \
      '/kv/?prefix=l/&values=true' 8000000 "${SHUNIT_TMPDIR}/hold" \
      2>/dev/null >"${SHUNIT_TMPDIR}/held" &
    hpid=$!
    assert_converged "${rp}" "${rr1}" "${phase} replica killed mid-sync"
    rm -f "${SHUNIT_TMPDIR}/hold"
    wait "${hpid}"
    if [ "${phase}" = stale ]; then
      held=$(view "${SHUNIT_TMPDIR}/held")
      echo "  a listing held across the swap: ${held}"
      assertTrue "a listing held across the swap: ${held:-no answer}" \
        "[ '${held}' = cut ] || [ '${held}' = 'list ${before}' ]"
    fi
    wait_for 30 grep -q "^list ${new}\$" "${seen}"
    touch "${SHUNIT_TMPDIR}/reader.stop"
    wait "${rpid}"
    # Each answer is one view: the store before the sync whole, or the
    # new one whole; never part of each.
    bad=$(grep -v -e "^list ${before}\$" -e "^list ${new}\$" \
      -e "^ready ${before_keys}\$" -e "^ready ${new_keys}\$" \
      -e '^cut$' -e '^restarted$' "${seen}" | sort | uniq -c | head -n 5)
    assertEquals "${phase}: every view whole" '' "${bad}"
    echo "  ${phase}: $(grep -c '^list' "${seen}") listings and" \
      "$(grep -c '^ready' "${seen}") /ready answers, each whole:" \
      "$(grep -c "^list ${before}\$" "${seen}") listings before the sync," \
      "$(grep -c "^list ${new}\$" "${seen}") after;" \
      "$(grep -c '^cut$' "${seen}") cut off (by the kill or the swap)"
    assertTrue "${phase}: listings of the new store seen" \
      "grep -q '^list ${new}\$' '${seen}'"
    assertEquals "${phase}: first view after the restart" \
      "${before_keys}" "${first}"
  done
  stop_nodes
}

# put_files PORT PREFIX N FILE: keys PREFIX1..PREFIXN = FILE's bytes; each
# must be answered 200 or 201 (tests/lib.sh says how a writer reports).
put_files() {
  for i in $(seq 1 "$3"); do
    printf 'url = "http://127.0.0.1:%s/kv/%s%s"\nupload-file = "%s"\noutput = "/dev/null"\n' \
      "$1" "$2" "${i}" "$4"
  done >"${SHUNIT_TMPDIR}/put_files.cfg"
  curl -s -w '%{method} %{http_code}\n' -K "${SHUNIT_TMPDIR}/put_files.cfg" |
    answered "put_files $2" "$3" 'PUT 20[01]'
}

# kill_mid_sync NAME PORT: start the replica, kill -9 it while a full sync
# runs (between the log's "full sync from" and "full sync done"); retries
# up to 3 times if the sync won the race.
kill_mid_sync() {
  rlog="${SHUNIT_TMPDIR}/$1.log"
  for try in 1 2 3; do
    begun=$(grep -c 'full sync from' "${rlog}" 2>/dev/null)
    done_=$(grep -c 'full sync done' "${rlog}" 2>/dev/null)
    node "$1" "$2" replica
    wait_for 10 '[ "$(grep -c "full sync from" "${rlog}")" -gt "${begun}" ]'
    # 10 to 50 ms in: a copy of this size takes about a second, less
    # on a fast machine, so a later kill can miss it.
    sleep "0.0$((RANDOM % 5 + 1))"
    kill -9 "$(pid_of "$1")"
    wait "$(pid_of "$1")" 2>/dev/null
    if [ "$(grep -c 'full sync from' "${rlog}")" -gt "${begun}" ] &&
      [ "$(grep -c 'full sync done' "${rlog}")" -eq "${done_}" ]; then
      echo "  killed mid-sync (try ${try}; the copy had $(du -m \
        "${SHUNIT_TMPDIR}/$1/kvstore.db.sync" | cut -f1) MB on disk)"
      return 0
    fi
  done
  fail "$1: could not kill it during a full sync in 3 tries"
}

# readers PORT OUT: until reader.stop exists, record what the node
# serves: "ready KEYS" from /ready every 50 ms, and from three readers
# that list l/ with values slowly (crashload slowget: the server produces
# each listing over about 2 s, so one of them is being produced at any
# moment), "list TOTAL NEW GONE SENTINEL" for a whole listing, "cut" for
# one cut short.
readers() {
  while [ ! -f "${SHUNIT_TMPDIR}/reader.stop" ]; do
    r=$(curl -s --max-time 2 "http://127.0.0.1:$1/ready") &&
      echo "ready $(json_num "${r}" keys)"
    sleep 0.05  # a sample every 50 ms: a recorder, not a wait
  done >>"$2" &
  slow_lister "$1" "$2" 1 &
  slow_lister "$1" "$2" 2 &
  slow_lister "$1" "$2" 3
  wait
}
slow_lister() {
  listed="${SHUNIT_TMPDIR}/listed.$3"
  while [ ! -f "${SHUNIT_TMPDIR}/reader.stop" ]; do
    timeout 60 tests/crashload slowget "$1" '/kv/?prefix=l/&values=true' \
      8000000 2>/dev/null >"${listed}"
    if view "${listed}" | grep '^list'; then
      sleep 0.05  # the next listing, paced like the /ready samples
      continue
    fi
    view "${listed}"
    # After a kill or a swap the readers start again together: keep
    # them apart, or they would all be idle at the same moments.
    sleep "$(($3 * 6 / 10)).$(($3 * 6 % 10))"
  done >>"$2"
}

# view FILE: a slowget answer as "list TOTAL NEW GONE SENTINEL" if it is a
# whole listing, "cut" if it was cut short, nothing if there was none.
view() {
  sed '1,/^\r$/d' "$1" >"$1.body"
  if [ "$(tail -c 2 "$1.body")" = ']' ]; then
    grep -o '"key":"l/[a-z]*' "$1.body" |
      awk '{ n++ } /new$/ { w++ } /gone$/ { g++ } /sentinel$/ { s++ }
        END { printf "list %d %d %d %d\n", n, w, g, s }'
  elif [ -s "$1" ]; then
    echo cut
  fi
}
