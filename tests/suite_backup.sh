# shellcheck shell=bash
# shellcheck disable=SC2154 # test.sh sets the fixtures' variables (port, body, ...)
# Backup and restore, sourced by test.sh (its helpers and fixtures apply):
# GET /backup under writes, `kvstore backup`, `kvstore check FILE` and
# `kvstore restore`, a restored primary's new replication id, and the
# hostile side: the guard header, tokens, the cap on backups at once,
# damaged files and busy or non-empty directories.

testBackupUnderWritesHoldsTheDataSetAtOneSeq() {
  start bkw
  burl="http://127.0.0.1:${sport}"
  # 12 MiB of values first (seqs 1 to 12): more than the kernel buffers
  # of a connection (4 MiB by default), so that the server must produce
  # the stream piece by piece as the client reads.
  head -c 1048576 /dev/zero | tr '\0' b >"${SHUNIT_TMPDIR}/1m"
  for i in $(seq 1 12); do
    curl -s -o /dev/null -T "${SHUNIT_TMPDIR}/1m" "${burl}/kv/big${i}"
  done
  # Then write i (from 13) is seq i: key w(i % 40) gets the value i.
  for i in $(seq 13 30000); do
    [ "${i}" -gt 13 ] && echo next
    printf 'url = "%s/kv/w%s"\nrequest = "PUT"\ndata-binary = "%s"\n' \
      "${burl}" $((i % 40)) "${i}"
    echo 'output = "/dev/null"'
  done >"${SHUNIT_TMPDIR}/bkw.cfg"
  curl -s -K "${SHUNIT_TMPDIR}/bkw.cfg" &
  writer=$!
  wait_for 10 '[ "$(node_seq "${sport}")" -ge 200 ]'
  # A client that reads nothing while the file hold exists, through an
  # 8 KiB window: the server stops mid-stream while the writes go on.
  touch "${SHUNIT_TMPDIR}/hold"
  tests/crashload slowget "${sport}" /backup 8000000 "${SHUNIT_TMPDIR}/hold" \
    'Authorization: Bearer none' >"${SHUNIT_TMPDIR}/bkw.answer" &
  reader=$!
  wait_for 10 'grep -q "backup of .* started" "${SHUNIT_TMPDIR}/bkw.log"'
  s=$(sed -n 's/.*backup of .* at seq \([0-9]*\) .*/\1/p' \
    "${SHUNIT_TMPDIR}/bkw.log")
  wait_for 10 '[ "$(node_seq "${sport}")" -ge $((s + 500)) ]'
  assertNotContains '500 writes on, the backup is still streaming' \
    "$(cat "${SHUNIT_TMPDIR}/bkw.log")" 'backup sent'
  rm -f "${SHUNIT_TMPDIR}/hold"
  wait "${reader}"
  assertEquals 'the reader got to the end' 0 $?
  kill "${writer}" 2>/dev/null
  wait "${writer}" 2>/dev/null
  # The head ends at the first empty line; the backup is what follows it.
  hlen=$(head -c 4096 "${SHUNIT_TMPDIR}/bkw.answer" |
    grep -a -b -m 1 -x $'\r' | cut -d: -f1)
  head -c "${hlen}" "${SHUNIT_TMPDIR}/bkw.answer" >"${SHUNIT_TMPDIR}/bkw.h"
  tail -c +"$((hlen + 3))" "${SHUNIT_TMPDIR}/bkw.answer" \
    >"${SHUNIT_TMPDIR}/bkw.backup"
  assertContains 'GET /backup' "$(head -n 1 "${SHUNIT_TMPDIR}/bkw.h")" ' 200 '
  assertContains 'its head names the seq' \
    "$(tr -d '\r' <"${SHUNIT_TMPDIR}/bkw.h")" "X-Kv-Seq: ${s}"
  out=$(./kvstore check "${SHUNIT_TMPDIR}/bkw.backup")
  assertEquals "check: ${out}" 0 $?
  assertContains 'check names the seq' "${out}" "at seq ${s},"

  out=$(./kvstore restore "${SHUNIT_TMPDIR}/bkw.backup" "${SHUNIT_TMPDIR}/bkw2")
  assertEquals "restore: ${out}" 0 $?
  stop "${spid}"
  start bkw2
  assertEquals 'the restored store is at the seq' "${s}" "$(node_seq "${sport}")"
  assertEquals 'and holds every key of it' 52 "$(key_count "${sport}")"
  bad=''
  for j in $(seq 0 39); do
    i=$((s - ((s - j) % 40 + 40) % 40))
    got=$(curl -s -D "${SHUNIT_TMPDIR}/bkw.h" "http://127.0.0.1:${sport}/kv/w${j}")
    etag=$(tr -d '\r' <"${SHUNIT_TMPDIR}/bkw.h" | sed -n 's/^ETag: "\(.*\)"$/\1/p')
    [ "${got}" = "${i}" ] && [ "${etag}" = "${i}" ] ||
      bad="${bad} w${j}=${got}@${etag}(want ${i})"
  done
  assertEquals "every key as it was at seq ${s}" '' "${bad}"
  assertEquals 'big values whole' "$(cksum <"${SHUNIT_TMPDIR}/1m")" \
    "$(curl -s "http://127.0.0.1:${sport}/kv/big7" | cksum)"
  stop "${spid}"
}

testBackupCliCheckAndRestoreCatchDamage() {
  start bkd
  burl="http://127.0.0.1:${sport}"
  writes put_many "${sport}" key 50
  bk="${SHUNIT_TMPDIR}/bkd.backup"
  out=$(./kvstore backup --url "${burl}" "${bk}" 2>"${SHUNIT_TMPDIR}/bkd.err")
  assertEquals "kvstore backup: ${out} $(cat "${SHUNIT_TMPDIR}/bkd.err")" 0 $?
  assertContains 'says what it holds' "${out}" 'backup of 50 keys at seq 50,'
  assertContains 'progress on stderr' "$(cat "${SHUNIT_TMPDIR}/bkd.err")" \
    'bytes'
  assertFalse 'no tmp file left' "[ -e '${bk}.tmp' ]"
  mkdir -p "${SHUNIT_TMPDIR}/bkdir"
  ./kvstore backup --url "${burl}" "${SHUNIT_TMPDIR}/bkdir" >/dev/null 2>&1
  assertTrue 'into a directory: named by its seq' \
    "cmp -s '${bk}' '${SHUNIT_TMPDIR}/bkdir/kvstore-50.backup'"
  size=$(wc -c <"${bk}")

  cp "${bk}" "${bk}.flip"
  flip_byte "${bk}.flip" $((size / 2))
  out=$(./kvstore check "${bk}.flip")
  assertEquals "a flipped byte: ${out}" 1 $?
  assertContains 'named with its offset' "${out}" 'DAMAGED at offset'
  head -c $((size - 10)) "${bk}" >"${bk}.short"
  out=$(./kvstore check "${bk}.short")
  assertEquals "truncated: ${out}" 1 $?
  assertContains 'says so' "${out}" 'truncated'
  out=$(./kvstore check Makefile 2>&1)
  assertEquals "not a backup: ${out}" 3 $?
  assertContains 'says so' "${out}" 'not a kvstore backup'

  for f in flip short; do
    out=$(./kvstore restore "${bk}.${f}" "${SHUNIT_TMPDIR}/bkd-${f}" 2>&1)
    assertEquals "restore of a ${f} backup: ${out}" 3 $?
    assertContains 'refused as damaged' "${out}" 'damaged at offset'
    assertFalse 'no store made' "[ -e '${SHUNIT_TMPDIR}/bkd-${f}/kvstore.db' ]"
  done
  head -c 4096 /dev/urandom >"${SHUNIT_TMPDIR}/garbage"
  out=$(./kvstore restore "${SHUNIT_TMPDIR}/garbage" "${SHUNIT_TMPDIR}/bkd-g" 2>&1)
  assertEquals "restore of garbage: ${out}" 3 $?
  assertContains 'says so' "${out}" 'not a kvstore backup'
  mkdir -p "${SHUNIT_TMPDIR}/bkd-full"
  echo keep >"${SHUNIT_TMPDIR}/bkd-full/notes"
  out=$(./kvstore restore "${bk}" "${SHUNIT_TMPDIR}/bkd-full" 2>&1)
  assertEquals "restore into a non-empty dir: ${out}" 3 $?
  assertContains 'says so' "${out}" 'not empty'
  assertFalse 'no store made' "[ -e '${SHUNIT_TMPDIR}/bkd-full/kvstore.db' ]"
  out=$(./kvstore restore --force "${bk}" "${SHUNIT_TMPDIR}/bkd" 2>&1)
  assertEquals "restore under a running server: ${out}" 3 $?
  assertContains 'says so' "${out}" 'a server has it open'

  stop "${spid}"
  out=$(./kvstore restore --force "${bk}" "${SHUNIT_TMPDIR}/bkd")
  assertEquals "restore --force: ${out}" 0 $?
  assertContains 'the old store is kept' "${out}" 'kept as'
  ls "${SHUNIT_TMPDIR}"/bkd/kvstore.db.before-restore-* >/dev/null 2>&1
  assertTrue 'beside it' $?
  start bkd
  assertEquals 'every key back' 50 "$(key_count "${sport}")"
  etag=$(curl -s -D - -o "${body}" "http://127.0.0.1:${sport}/kv/key7" |
    tr -d '\r' | sed -n 's/^ETag: "\(.*\)"$/\1/p')
  assertEquals 'its value' v "$(cat "${body}")"
  assertEquals 'and its version' 7 "${etag}"
  stop "${spid}"
}

testRestoredPrimaryTakesANewIdAndItsReplicaFullSyncs() {
  pair_with_data 200 bk
  old=$(curl -s "http://127.0.0.1:${rp}/ready" |
    sed -n 's/.*"repl_id":"\([0-9a-f]*\)".*/\1/p')
  bk="${SHUNIT_TMPDIR}/pair.backup"
  ./kvstore backup --url "http://127.0.0.1:${rp}" "${bk}" >/dev/null 2>&1
  assertTrue 'kvstore backup' $?
  writes put_many "${rp}" after 20
  wait_seq "${rr1}" "$(node_seq "${rp}")"
  stop_node p
  out=$(./kvstore restore --force "${bk}" "${SHUNIT_TMPDIR}/p")
  assertEquals "restore: ${out}" 0 $?
  node p "${rp}" primary
  ready=$(curl -s "http://127.0.0.1:${rp}/ready")
  new=$(printf '%s' "${ready}" | sed -n 's/.*"repl_id":"\([0-9a-f]*\)".*/\1/p')
  assertNotEquals 'a new replication id' "${old}" "${new}"
  assertEquals 'the backup seq' "${before}" "$(json_num "${ready}" seq)"
  wait_for 30 log_has "${SHUNIT_TMPDIR}/r1.log" "full sync done.*${new}"
  assertTrue 'the replica full-synced from it' $?
  assert_converged "${rp}" "${rr1}" 'replica of a restored primary'
  assertEquals 'writes after the backup are gone on the replica too' 404 \
    "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:${rr1}/kv/after1")"
  stop_nodes
}

testBackupNeedsTheGuardHeaderAndTheToken() {
  code=$(curl -s -o "${body}" -w '%{http_code}' "${url}/backup")
  assertEquals 'no Authorization header' 401 "${code}"
  assertContains 'says what to send' "$(cat "${body}")" 'Authorization: Bearer'
  code=$(curl -s -o /dev/null -w '%{http_code}' -H 'X-Kv-Repl-Token: none' \
    "${url}/backup")
  assertEquals 'the repl header is not it' 401 "${code}"
  code=$(curl -s -o /dev/null -w '%{http_code}' -X POST \
    -H 'Authorization: Bearer none' "${url}/backup")
  assertEquals 'POST' 405 "${code}"

  start bkt AUTH_TOKEN=t0ken-Backup
  burl="http://127.0.0.1:${sport}"
  for h in 'Bearer none' 'Bearer t0ken-backup' 'Bearer t0ken-Backup2'; do
    code=$(curl -s -o "${body}" -w '%{http_code}' -H "Authorization: ${h}" \
      "${burl}/backup")
    assertEquals "with ${h}" 401 "${code}"
  done
  code=$(curl -s -o /dev/null -w '%{http_code}' \
    -H 'Authorization: Bearer t0ken-Backup' "${burl}/backup")
  assertEquals 'with the token' 200 "${code}"
  out=$(./kvstore backup --url "${burl}" "${SHUNIT_TMPDIR}/bkt.backup" 2>&1)
  assertEquals "the CLI without it: ${out}" 3 $?
  assertContains 'says why' "${out}" '401'
  assertFalse 'no file' "[ -e '${SHUNIT_TMPDIR}/bkt.backup' ]"
  out=$(AUTH_TOKEN=t0ken-Backup ./kvstore backup --url "${burl}" \
    "${SHUNIT_TMPDIR}/bkt.backup" 2>&1)
  assertEquals "the CLI with it: ${out}" 0 $?
  stop "${spid}"
}

testBackupsAtOnceAreCappedAndAKilledOneLeavesNoFile() {
  start bkc
  burl="http://127.0.0.1:${sport}"
  # More than the sockets' buffers hold, so that a reader that stops
  # holds its backup open.
  head -c 1000000 /dev/zero | tr '\0' c >"${SHUNIT_TMPDIR}/1m"
  for i in $(seq 1 16); do
    curl -s -o /dev/null -T "${SHUNIT_TMPDIR}/1m" "${burl}/kv/c${i}"
  done
  req='GET /backup HTTP/1.0\r\nAuthorization: Bearer none\r\n\r\n'
  exec 3<>"/dev/tcp/127.0.0.1/${sport}" 4<>"/dev/tcp/127.0.0.1/${sport}"
  printf '%b' "${req}" >&3
  printf '%b' "${req}" >&4
  wait_for 5 '[ "$(grep -c "backup of .* started" "${slog}")" -ge 2 ]'
  code=$(curl -s -o "${body}" -w '%{http_code}' -H 'Authorization: Bearer none' \
    "${burl}/backup")
  assertEquals 'a third backup at once' 503 "${code}"
  assertContains 'says why' "$(cat "${body}")" 'backups are streaming already'
  exec 3<&- 4<&-
  wait_for 5 '[ "$(grep -c "backup cut short" "${slog}")" -ge 2 ]'
  assertTrue 'a reader that leaves ends its backup' $?

  # kill -9 in the middle: FILE.tmp is a pipe nobody reads past its
  # buffer, so kvstore backup is stuck half-way when it dies.
  mkfifo "${SHUNIT_TMPDIR}/killed.tmp"
  ./kvstore backup --url "${burl}" "${SHUNIT_TMPDIR}/killed" 2>/dev/null &
  cli=$!
  exec 5<"${SHUNIT_TMPDIR}/killed.tmp"
  wait_for 5 '[ "$(grep -c "backup of .* started" "${slog}")" -ge 3 ]'
  kill -9 "${cli}"
  wait "${cli}" 2>/dev/null
  exec 5<&-
  assertFalse 'no FILE after kill -9' "[ -e '${SHUNIT_TMPDIR}/killed' ]"
  code=$(curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer none' \
    "${burl}/backup")
  assertEquals 'backups go on after those' 200 "${code}"
  stop "${spid}"
}
