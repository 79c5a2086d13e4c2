# shellcheck shell=bash disable=SC2154
# Damage tests, sourced by test.sh (which sets the ports and helpers used
# here): a flipped byte in an acknowledged record must keep the server
# from starting smaller; `kvstore check` reports it and `kvstore salvage`
# writes a new store from every valid record, keeping the old file.

testDamagedRecordRefusesToStartUntilSalvaged() {
  dir="${SHUNIT_TMPDIR}/damage"
  db="${dir}/kvstore.db"
  start damage FSYNC=always
  writes put_values "${sport}" 100
  assertEquals 'keys before the kill' 100 "$(key_count "${sport}")"
  kill -9 "${spid}"
  wait "${spid}" 2>/dev/null

  # One flipped bit in the 12th record's value: acknowledged, so synced.
  off=$(record_offset "${db}" 11)
  flip_byte "${db}" $((off + 20 + 5 + 2))
  sum=$(cksum <"${db}")

  new_port
  env PORT="${sport}" ROLE=primary DATA_DIR="${dir}" RECOVER_WAIT_MS=0 \
    FSYNC=always ./kvstore >"${SHUNIT_TMPDIR}/damage2.log" 2>&1 &
  pid=$!
  echo "${pid}" >>"${SHUNIT_TMPDIR}/pids"
  wait_exit "${pid}" 10
  assertNotEquals 'the server refuses to start' 0 "${exited}"
  assertNotEquals 'it did not hang' 124 "${exited}"
  log=$(cat "${SHUNIT_TMPDIR}/damage2.log")
  assertContains "the refusal names the offset: ${log}" "${log}" \
    "at offset ${off},"
  assertContains 'and says what to do' "${log}" "kvstore check ${dir}"
  assertEquals 'the file is untouched' "${sum}" "$(cksum <"${db}")"

  out=$(./kvstore check "${dir}")
  assertEquals "check exits 1 on damage: ${out}" 1 $?
  assertContains 'check names the offset' "${out}" "DAMAGED at offset ${off}:"
  assertContains 'and the key before it' "${out}" 'after key "key11"'
  assertEquals 'check changes nothing' "${sum}" "$(cksum <"${db}")"

  out=$(./kvstore salvage "${dir}")
  assertEquals "salvage succeeds: ${out}" 0 $?
  assertContains 'salvage says what it kept' "${out}" 'salvaged 99 keys'
  kept=$(ls "${dir}"/kvstore.db.damaged-* 2>/dev/null)
  assertNotNull 'the damaged file is kept' "${kept}"
  assertEquals 'unchanged' "${sum}" "$(cksum <"${kept}")"
  out=$(./kvstore check "${dir}")
  assertEquals "the salvaged store checks sound: ${out}" 0 $?

  start damage FSYNC=always
  assertEquals 'the salvaged store serves 99 keys' 99 \
    "$(key_count "${sport}")"
  assertEquals 'the damaged record is gone' 404 "$(curl -s -o /dev/null \
    -w '%{http_code}' "http://127.0.0.1:${sport}/kv/key12")"
  assertEquals 'the records after it are kept' value-100 \
    "$(curl -s "http://127.0.0.1:${sport}/kv/key100")"
  etag=$(curl -s -D - -o /dev/null -X PUT --data-binary new \
    "http://127.0.0.1:${sport}/kv/new" | tr -d '\r' |
    sed -n 's/^ETag: "\([0-9]*\)"$/\1/p')
  assertTrue "a new write gets a seq above 100 (${etag})" \
    "[ '${etag:-0}' -gt 100 ]"
  stop "${spid}"
}

# A transaction whose middle record is damaged: check counts its records
# as cut short, and salvage leaves out the whole of it, never a part.
testSalvageLeavesOutATransactionCutShort() {
  dir="${SHUNIT_TMPDIR}/damagetxn"
  db="${dir}/kvstore.db"
  start damagetxn FSYNC=always
  writes put_values "${sport}" 3
  code=$(curl -s -o /dev/null -w '%{http_code}' -X POST \
    -H 'Content-Type: application/json' --data-binary \
    '{"success":[{"op":"put","key":"t1","value":"1"},
      {"op":"put","key":"t2","value":"2"},{"op":"put","key":"t3","value":"3"}]}' \
    "http://127.0.0.1:${sport}/txn")
  assertEquals 'the transaction is acknowledged' 200 "${code}"
  assertEquals 'and a put after it' 201 "$(curl -s -o /dev/null \
    -w '%{http_code}' -X PUT --data-binary a \
    "http://127.0.0.1:${sport}/kv/after")"
  kill -9 "${spid}"
  wait "${spid}" 2>/dev/null

  # Records: key1..key3, t1, t2, t3, after. A bit of t2's value flipped.
  off=$(record_offset "${db}" 4)
  flip_byte "${db}" $((off + 20 + 2))
  out=$(./kvstore check "${dir}")
  assertEquals "check exits 1 on damage: ${out}" 1 $?
  assertContains 'check counts t1 and t3 as cut short' "${out}" \
    '2 records of transactions cut short'
  out=$(./kvstore salvage "${dir}")
  assertEquals "salvage succeeds: ${out}" 0 $?
  assertContains 'salvage says what it left out' "${out}" \
    'left out 2 records of transactions cut short'
  assertContains 'and what it kept' "${out}" 'salvaged 4 keys'
  rm -f "${dir}"/kvstore.db.damaged-*

  start damagetxn FSYNC=always
  for k in t1 t2 t3; do
    assertEquals "no part of the transaction: ${k}" 404 "$(curl -s \
      -o /dev/null -w '%{http_code}' "http://127.0.0.1:${sport}/kv/${k}")"
  done
  assertEquals 'the writes around it are kept' a \
    "$(curl -s "http://127.0.0.1:${sport}/kv/after")"
  assertEquals 'four keys' 4 "$(key_count "${sport}")"
  stop "${spid}"
}

# put_values PORT N: keys key1..keyN = value-1..value-N, on one
# connection; each must be answered 200 or 201.
put_values() {
  for i in $(seq 1 "$2"); do
    [ "${i}" -gt 1 ] && echo next
    printf 'url = "http://127.0.0.1:%s/kv/key%s"\nrequest = "PUT"\n' "$1" "${i}"
    printf 'data-binary = "value-%s"\noutput = "/dev/null"\n' "${i}"
    printf '%s\n' 'write-out = "%{method} %{http_code}\n"'
  done >"${SHUNIT_TMPDIR}/put_values.cfg"
  curl -s -K "${SHUNIT_TMPDIR}/put_values.cfg" |
    answered put_values "$2" 'PUT 20[01]'
}

# record_offset FILE N: the offset of record N (from 0) of a store file.
record_offset() {
  o=$(le_at "$1" 24 8)
  for _ in $(seq 1 "$2"); do
    klen=$(le_at "$1" $((o + 6)) 2)
    vlen=$(le_at "$1" $((o + 8)) 4)
    o=$(((o + 20 + klen + vlen + 7) / 8 * 8))
  done
  echo "${o}"
}

# le_at FILE OFFSET SIZE: the little-endian unsigned integer there.
le_at() {
  od -An -tu"$3" -j "$2" -N "$3" "$1" | tr -d ' '
}

# flip_byte FILE OFFSET: flip bit 4 of the byte there, in place.
flip_byte() {
  b=$(($(le_at "$1" "$2" 1) ^ 16))
  # shellcheck disable=SC2059
  printf "$(printf '\\%03o' "${b}")" |
    dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}
