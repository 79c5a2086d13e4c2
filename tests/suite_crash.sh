# Crash tests, sourced by test.sh: kill -9 at random moments under write
# load, of a lone primary, of a primary with replicas, and of a replica in
# the middle of a full sync. tests/crashload writes and checks: it logs a
# write only once its 2xx has arrived, and after each restart every key
# must hold its last acknowledged value (or that of a later write that was
# sent but never answered). KV_LONG=1 (make test-long) kills 200 times.

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
