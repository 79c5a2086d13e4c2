# shellcheck shell=bash disable=SC2154
# POST /txn (txn.c), sourced by test.sh: both branches and their answer,
# the seq range, hostile bodies, the limits, auth and the cross-site
# guard, puts with a ttl, a replica that never shows half a transaction,
# and kill -9 that keeps transactions whole.

# txn PORT JSON [CURL ARGS...]: POST JSON (or @FILE) to /txn; ${code}, ${body}, and
# the answer's X-Kv-Seq in ${txn_seq}.
txn() {
  local p=$1 j=$2
  shift 2
  code=$(curl -s -o "${body}" -D "${body}.h" -w '%{http_code}' -X POST \
    -H 'Content-Type: application/json' "$@" --data-binary "${j}" \
    "http://127.0.0.1:${p}/txn")
  txn_seq=$(tr -d '\r' <"${body}.h" | sed -n 's/^X-Kv-Seq: //p')
}

testTxnRunsTheBranchItsComparesChoose() {
  # Its own node: on the shared one, an earlier test's key can expire
  # (a delete, a seq) between two of the seqs this test counts.
  local port url
  start txnrun
  port=${sport}
  url=http://127.0.0.1:${port}
  put tx/a 1
  v=$(curl -s -D - -o /dev/null "${url}/kv/tx/a" | tr -d '\r' |
    sed -n 's/^ETag: "\(.*\)"/\1/p')
  seq0=$(node_seq "${port}")
  ops='"success":[{"op":"put","key":"tx/a","value":"2"},
    {"op":"put","key":"tx/b","value":"caf\u00e9"},{"op":"get","key":"tx/b"},
    {"op":"delete","key":"tx/none"}],
    "failure":[{"op":"get","key":"tx/a"}]'
  txn "${port}" "{\"compare\":[{\"key\":\"tx/a\",\"version\":${v}},
    {\"key\":\"tx/b\",\"exists\":false}],${ops}}"
  assertEquals 'the compares held' 200 "${code}"
  out=$(cat "${body}")
  assertContains 'success' "${out}" '"succeeded":true'
  assertContains 'the get sees the put before it' "${out}" \
    "{\"op\":\"get\",\"key\":\"tx/b\",\"found\":true,\"version\":$((seq0 + 2)),\"value\":\"café\"}"
  assertContains 'a missing key is not deleted' "${out}" '"deleted":false'
  assertContains 'two writes, seqs one after the other' "${out}" \
    "\"seq\":$((seq0 + 2)),\"writes\":2"
  assertEquals 'X-Kv-Seq is the last' "$((seq0 + 2))" "${txn_seq}"
  get tx/a
  assertEquals 'the put was made' 2 "$(cat "${body}")"
  # The same compares again: tx/a moved on, so the failure branch runs.
  txn "${port}" "{\"compare\":[{\"key\":\"tx/a\",\"version\":${v}}],${ops}}"
  assertEquals 'a failed compare is an answer' 200 "${code}"
  assertContains 'which compare, and why' "$(cat "${body}")" \
    "\"succeeded\":false,\"failed_compare\":0,\"reason\":\"the key is at version $((seq0 + 1))\""
  assertContains 'the failure branch ran' "$(cat "${body}")" \
    '"op":"get","key":"tx/a","found":true'
  assertEquals 'nothing written: the seq it ran at' "$((seq0 + 2))" \
    "${txn_seq}"
  # The CLI: the answer, and an exit status that says which branch ran.
  out=$(echo '{"compare":[{"key":"tx/a","value":"2"}],
    "success":[{"op":"delete_prefix","prefix":"tx/"}]}' |
    KV_URL="${url}" ./kvstore txn)
  assertEquals 'kvstore txn: 0 when the compares held' 0 $?
  assertContains 'kvstore txn prints the answer' "${out}" \
    '"op":"delete_prefix","prefix":"tx/","deleted":2'
  out=$(echo '{"compare":[{"key":"tx/a","exists":true}]}' |
    KV_URL="${url}" ./kvstore txn)
  assertEquals 'kvstore txn: 1 when a compare failed' 1 $?
  assertContains 'kvstore txn prints the answer of a 412' "${out}" \
    '"succeeded":false,"failed_compare":0'
  # No failure branch: nothing ran, so 412 (curl -f sees it), same body.
  txn "${port}" '{"compare":[{"key":"tx/a","exists":false},
    {"key":"tx/a","exists":true}],"success":[{"op":"put","key":"tx/a","value":"x"}]}'
  assertEquals 'a failed compare, no failure branch: 412' 412 "${code}"
  assertContains 'which compare, and why' "$(cat "${body}")" \
    '"succeeded":false,"failed_compare":1,"reason":'
  assertContains 'nothing ran' "$(cat "${body}")" '"results":[],'
  get tx/a
  assertEquals 'nothing written' 404 "${code}"
  stop "${spid}"
}

testTxnRefusesHostileBodiesAndChangesNothing() {
  start txnbad MAX_VALUE_BYTES=20000 AUTH_TOKEN=s3cr3t
  seq0=$(node_seq "${sport}")
  auth=(-H 'Authorization: Bearer s3cr3t')
  check_txn() {
    txn "${sport}" "$3" "${auth[@]}"
    assertEquals "$1: status" "$2" "${code}"
    assertContains "$1: says why" "$(cat "${body}")" "$4"
  }
  check_txn 'bad JSON' 400 '{"success":[{"op":"put",}]}' 'bad JSON at byte 24'
  check_txn 'cut short' 400 '{"success":[' 'unexpected end'
  check_txn 'not an object' 400 '[1,2]' 'expected {"compare"'
  check_txn 'unknown member' 400 '{"succes":[]}' 'expected {"compare"'
  check_txn 'unknown op' 400 '{"success":[{"op":"drop","key":"k"}]}' \
    'success[0] (byte 12): expected {"op":O'
  check_txn 'a put without a value' 400 \
    '{"success":[{"op":"put","key":"k"}]}' '"value":V'
  check_txn 'a typo in a member' 400 \
    '{"success":[{"op":"put","key":"k","valeu":"v"}]}' '"value":V'
  check_txn 'a key with NUL' 400 \
    '{"success":[{"op":"put","key":"a\u0000","value":"v"}]}' 'expected'
  check_txn 'an empty key' 400 '{"success":[{"op":"get","key":""}]}' \
    'expected'
  check_txn 'a compare with no condition' 400 '{"compare":[{"key":"k"}]}' \
    'compare[0]'
  check_txn 'a huge number' 400 \
    '{"compare":[{"key":"k","version":9007199254740993}]}' 'number too big'
  check_txn 'a negative number' 400 \
    '{"compare":[{"key":"k","version":-1}]}' 'whole numbers'
  check_txn 'a lone surrogate' 400 \
    '{"success":[{"op":"get","key":"\ud800"}]}' 'surrogate'
  deep=$(printf '%.0s[' $(seq 1 1000))
  check_txn 'deep nesting' 400 "{\"compare\":${deep}" 'nested too deep'
  ops=$(for i in $(seq 1 129); do printf '{"op":"get","key":"k%d"},' "${i}"; done)
  check_txn '129 operations' 413 "{\"success\":[${ops%,}]}" 'at most 128'
  # The limits at their most, every list full of its biggest items: the
  # parser's token budget must hold them all.
  cmp=$(for i in $(seq 1 128); do
    printf '{"key":"full/%d","version":0,"exists":false,"value":"x"},' "${i}"
  done)
  puts=$(for i in $(seq 1 128); do
    printf '{"op":"put","key":"full/%d","value":"v","ttl":"30s"},' "${i}"
  done)
  txn "${port}" "{\"compare\":[${cmp%,}],\"success\":[${puts%,}],\"failure\":[${puts%,}]}"
  assertEquals '128 in every list' 200 "${code}"
  assertContains 'the failure branch wrote all 128' "$(cat "${body}")" \
    '"writes":128'
  txn "${port}" '{"success":[{"op":"delete_prefix","prefix":"full/"}]}'
  assertEquals 'and they go by prefix' 200 "${code}"
  check_txn 'a ttl not as a string' 400 \
    '{"success":[{"op":"put","key":"k","value":"v","ttl":5}]}' '"ttl":"30s"'
  check_txn 'a ttl of 0' 400 \
    '{"success":[{"op":"put","key":"k","value":"v","ttl":"0"}]}' '"ttl":"30s"'
  check_txn 'a ttl in days' 400 \
    '{"success":[{"op":"put","key":"k","value":"v","ttl":"1d"}]}' '"ttl":"30s"'
  check_txn 'a ttl on a delete' 400 \
    '{"success":[{"op":"delete","key":"k","ttl":"1s"}]}' '"op":"delete"'
  check_txn 'a ttl in a compare' 400 \
    '{"compare":[{"key":"k","exists":true,"ttl":"1s"}]}' 'compare[0]'
  big=$(head -c 20001 /dev/zero | tr '\0' x)
  check_txn 'a body over MAX_VALUE_BYTES' 413 \
    "{\"success\":[{\"op\":\"put\",\"key\":\"k\",\"value\":\"${big}\"}]}" ''
  # What a web page can send cross-site without a preflight: refused.
  code=$(curl -s -o "${body}" -w '%{http_code}' -X POST \
    -H 'Content-Type: text/plain' -H 'Authorization: Bearer s3cr3t' \
    --data-binary '{"success":[{"op":"put","key":"k","value":"v"}]}' \
    "http://127.0.0.1:${sport}/txn")
  assertEquals 'text/plain (a simple cross-site request)' 415 "${code}"
  txn "${sport}" '{"success":[{"op":"put","key":"k","value":"v"}]}'
  assertEquals 'without the write token' 401 "${code}"
  code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:${sport}/txn")
  assertEquals 'GET /txn' 405 "${code}"
  assertEquals 'nothing was written' "${seq0}" "$(node_seq "${sport}")"
  txn "${sport}" '{"success":[{"op":"put","key":"k","value":"v"}]}' "${auth[@]}"
  assertEquals 'with the token' 200 "${code}"
  stop "${spid}"
}

testTxnDeletePrefixIsBounded() {
  for from in 1 65 129 193 257; do
    ops=$(for i in $(seq "${from}" $((from + 63 < 257 ? from + 63 : 257))); do
      printf '{"op":"put","key":"dp/%d","value":"v"},' "${i}"
    done)
    txn "${port}" "{\"success\":[${ops%,}]}"
    assertEquals "puts from ${from}" 200 "${code}"
  done
  seq0=$(node_seq "${port}")
  txn "${port}" '{"success":[{"op":"delete_prefix","prefix":"dp/"}]}'
  assertEquals '257 keys: over the bound' 413 "${code}"
  assertContains 'says the bound' "$(cat "${body}")" 'may match 256 keys'
  assertEquals 'nothing was deleted' "${seq0}" "$(node_seq "${port}")"
  txn "${port}" '{"success":[{"op":"delete_prefix","prefix":"dp/1"}]}'
  assertEquals 'dp/1*: 111 keys' 200 "${code}"
  assertContains 'all of them' "$(cat "${body}")" '"deleted":111}'
  assertContains '111 writes' "$(cat "${body}")" '"writes":111}'
  txn "${port}" '{"success":[{"op":"delete_prefix","prefix":"dp/"}]}'
  assertContains 'the rest now fits' "$(cat "${body}")" '"deleted":146}'
}

# A transaction's put with a "ttl" expires as a PUT ?ttl= one does: the
# replica gets the expiry within the group ('x' records), a get in the
# transaction says expires_in, and the primary's sweep deletes the key
# everywhere at one seq; a compare then finds it gone.
testTxnPutWithTtlExpiresEverywhere() {
  node p "${rp}" primary RECOVER_WAIT_MS=0
  node r1 "${rr1}" replica
  wait_ready "${rr1}"
  p="http://127.0.0.1:${rp}" r="http://127.0.0.1:${rr1}"
  txn "${rp}" '{"success":[
    {"op":"put","key":"tt/long","value":"1","ttl":"1h"},
    {"op":"put","key":"tt/short","value":"2","ttl":"700ms"},
    {"op":"put","key":"tt/plain","value":"3"},
    {"op":"get","key":"tt/long"}]}'
  assertEquals 'puts with a ttl' 200 "${code}"
  grep -qE '"key":"tt/long","found":true,"version":[0-9]+,"expires_in":3(5[0-9]{2}|600)\.[0-9]{3},"value":"1"' \
    "${body}"
  assertTrue "the get in it says expires_in: $(cat "${body}")" $?
  seq=${txn_seq}
  wait_seq "${rr1}" "${seq}"
  left=$(ttl_expires_in "${r}" tt/long GET)
  awk -v l="${left}" 'BEGIN { exit !(l > 3500 && l <= 3600) }'
  assertTrue "the replica has the expiry: '${left}'" $?
  assertEquals 'and none for the plain put' '' \
    "$(ttl_expires_in "${r}" tt/plain GET)"
  wait_for 5 ttl_gone "${p}" tt/short
  assertTrue 'the short one expires' $?
  wait_seq "${rr1}" "$((seq + 1))"
  assertEquals 'its delete has the same seq on both' "$(node_seq "${rp}")" \
    "$(node_seq "${rr1}")"
  assertEquals 'gone on the replica too' 404 \
    "$(curl -s -o /dev/null -w '%{http_code}' "${r}/kv/tt/short")"
  txn "${rp}" '{"compare":[{"key":"tt/short","exists":false},
    {"key":"tt/long","value":"1"}],"success":[{"op":"get","key":"tt/plain"}]}'
  assertContains 'compares see it gone, the others there' \
    "$(cat "${body}")" '"succeeded":true'
  stop_nodes
}

# A replica applies a transaction in one turn: a listing of the pair,
# polled all along, never shows its two keys apart; then the replica
# holds the primary's values at the primary's seq. A transaction sent to
# the replica is refused as a PUT is. A push that ends inside a
# transaction applies none of it (record and apply: tests/suite_repl.sh).
testTxnReplicaNeverShowsHalfATransaction() {
  node p "${rp}" primary
  node r1 "${rr1}" replica
  txn "${rr1}" '{"success":[{"op":"put","key":"k","value":"v"}]}'
  assertEquals 'a transaction on a replica' 403 "${code}"
  assertContains 'names the primary' "$(cat "${body}")" 'read-only replica'
  stopf="${SHUNIT_TMPDIR}/txnrepl.stop"
  rm -f "${stopf}"
  (
    bad=0 polls=0
    while [ ! -e "${stopf}" ]; do
      l=$(curl -s "http://127.0.0.1:${rr1}/kv/?prefix=pair/&values=true")
      a=$(printf '%s' "${l}" | sed -n 's/.*"key":"pair\/a","value":"\([0-9]*\)".*/\1/p')
      b=$(printf '%s' "${l}" | sed -n 's/.*"key":"pair\/b","value":"\([0-9]*\)".*/\1/p')
      [ "${a}" != "${b}" ] && bad=$((bad + 1)) && echo "  apart: ${l}"
      polls=$((polls + 1))
    done
    echo "${bad} ${polls}" >"${stopf}.out"
  ) &
  reader=$!
  for i in $(seq 1 60); do
    txn "${rp}" "{\"success\":[{\"op\":\"put\",\"key\":\"pair/a\",\"value\":\"${i}\"},
      {\"op\":\"put\",\"key\":\"filler/${i}\",\"value\":\"${i}\"},
      {\"op\":\"put\",\"key\":\"pair/b\",\"value\":\"${i}\"}]}"
    [ "${code}" = 200 ] || fail "txn ${i}: ${code} $(cat "${body}")"
  done
  wait_for 10 seq_is "${rr1}" "$(node_seq "${rp}")"
  touch "${stopf}"
  wait "${reader}"
  read -r bad polls <"${stopf}.out"
  echo "  ${polls} listings of the replica during 60 transactions"
  assertEquals 'no listing showed half a transaction' 0 "${bad}"
  assertTrue 'the reader polled' "[ ${polls} -gt 20 ]"
  assert_converged "${rp}" "${rr1}" 'after 60 transactions'
  # Pushes of our own: a transaction's first record without its last.
  stop_node p
  id=$(curl -s "http://127.0.0.1:${rr1}/ready" |
    sed -n 's/.*"repl_id":"\([0-9a-f]*\)".*/\1/p')
  s=$(node_seq "${rr1}")
  record p $((s + 1)) pair/a half >"${SHUNIT_TMPDIR}/batch"
  apply "${id}" $((s + 1))
  assertEquals 'a push ending inside a transaction applies none of it' \
    "200 ${s} 60" "${code} $(cat "${body}") $(curl -s \
    "http://127.0.0.1:${rr1}/kv/pair/a")"
  { record p $((s + 1)) pair/a whole; record d $((s + 2)) filler/1
    record P $((s + 3)) pair/b whole; } >"${SHUNIT_TMPDIR}/batch"
  apply "${id}" $((s + 1))
  assertEquals 'the whole transaction is applied' \
    "200 $((s + 3)) whole whole 404" "${code} $(cat "${body}") $(curl -s \
    "http://127.0.0.1:${rr1}/kv/pair/a") $(curl -s \
    "http://127.0.0.1:${rr1}/kv/pair/b") $(curl -s -o /dev/null -w \
    '%{http_code}' "http://127.0.0.1:${rr1}/kv/filler/1")"
  stop_nodes
}

# kill -9 of a primary under transactions, FSYNC=always: every answered
# transaction is there after the restart, and no transaction is there in
# part (both keys of each pair agree).
testTxnKill9KeepsTransactionsWhole() {
  start txn9 FSYNC=always
  txn "${sport}" '{"success":[{"op":"put","key":"w/a","value":"0.0"},
    {"op":"put","key":"w/b","value":"0.0"}]}'
  echo 0.0 >"${SHUNIT_TMPDIR}/txn9.acked"
  for round in 1 2 3 4; do
    (
      i=0
      while :; do
        i=$((i + 1))
        c=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 -X POST \
          -H 'Content-Type: application/json' --data-binary \
          "{\"success\":[{\"op\":\"put\",\"key\":\"w/a\",\"value\":\"${round}.${i}\"},
          {\"op\":\"put\",\"key\":\"w/big\",\"value\":\"$(printf '%0500d' "${i}")\"},
          {\"op\":\"put\",\"key\":\"w/b\",\"value\":\"${round}.${i}\"}]}" \
          "http://127.0.0.1:${sport}/txn") || break
        [ "${c}" = 200 ] || break
        echo "${round}.${i}" >"${SHUNIT_TMPDIR}/txn9.acked"
      done
    ) &
    wpid=$!
    sleep "0.$((RANDOM % 5 + 2))"
    kill -9 "${spid}"
    wait "${spid}" 2>/dev/null
    wait "${wpid}"
    acked=$(cat "${SHUNIT_TMPDIR}/txn9.acked" 2>/dev/null)
    start txn9 FSYNC=always
    a=$(curl -s "http://127.0.0.1:${sport}/kv/w/a")
    b=$(curl -s "http://127.0.0.1:${sport}/kv/w/b")
    assertEquals "round ${round}: both keys of the last transaction" "${a}" "${b}"
    # The one after it may be kept too: the round's first when none of
    # this round's was answered (a slow start, as under make tsan).
    next="${round}.1"
    [ "${acked%.*}" = "${round}" ] && next="${round}.$((${acked#*.} + 1))"
    assertTrue "round ${round}: the last answered one (${acked}) is kept, found ${a}" \
      "[ \"${a}\" = \"${acked}\" ] || [ \"${a}\" = \"${next}\" ]"
  done
  stop "${spid}"
}
