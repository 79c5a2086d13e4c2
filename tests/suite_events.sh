# shellcheck shell=bash
# shellcheck disable=SC2154 # test.sh sets the fixtures' variables (port, body, ...)
# Event streams (events.c), sourced by test.sh: GET /kv/?prefix=P&watch=events
# sends every write under P in order from the backlog, replays from since=,
# answers 410 once since= left the backlog, works on a replica and ends
# there at a full sync, cuts a reader that falls behind without growing,
# caps the streams, ends them at shutdown; kvstore watch --prefix follows.

# ---- Every write, once, in order ----

testEventStreamHasEveryWriteUnderThePrefixOnceInOrder() {
  start ev
  u="http://127.0.0.1:${sport}"
  live="${SHUNIT_TMPDIR}/ev.live"
  curl -sN "${u}/kv/?prefix=ev%2F&watch=events" >"${live}" &
  cpid=$!
  wait_for 5 log_has "${live}" '^: from seq'
  # 60 writes on one connection: under ev/ and beside it, every fourth a
  # delete of the key written just before.
  for i in $(seq 1 60); do
    case $((i % 4)) in
      0) m=DELETE k="ev/$((i - 1))" ;;
      1) m=PUT k="evx/${i}" ;;
      *) m=PUT k="ev/${i}" ;;
    esac
    printf 'url = "%s/kv/%s"\nrequest = "%s"\noutput = "/dev/null"\n' \
      "${u}" "${k}" "${m}"
    [ "${m}" = PUT ] && printf 'data-binary = "v%s"\n' "${i}"
    printf 'write-out = "%%header{x-kv-seq} %s %s\\n"\n' "${m}" "${k}"
    echo next
  done | sed '$d' >"${SHUNIT_TMPDIR}/ev.cfg"
  curl -s -K "${SHUNIT_TMPDIR}/ev.cfg" |
    sed -n 's/^\([0-9]*\) PUT \(ev\/.*\)/\1 put \2/p; s/^\([0-9]*\) DELETE \(ev\/.*\)/\1 delete \2/p' \
      >"${SHUNIT_TMPDIR}/ev.sent"
  assertEquals 'writes under ev/ acknowledged' 45 \
    "$(wc -l <"${SHUNIT_TMPDIR}/ev.sent")"
  first=$(head -n 1 "${SHUNIT_TMPDIR}/ev.sent" | cut -d' ' -f1)
  last=$(tail -n 1 "${SHUNIT_TMPDIR}/ev.sent" | cut -d' ' -f1)
  wait_for 5 log_has "${live}" "^id: ${last}\$"
  kill "${cpid}"
  assertEquals 'the live stream: each write under ev/ once, in order' \
    "$(cat "${SHUNIT_TMPDIR}/ev.sent")" "$(events_of "${live}")"
  assertEquals 'each event is id, data, blank line' \
    "$(grep -c '^id: ' "${live}")" "$(grep -c '^data: {"seq":' "${live}")"
  # since= replays the same history; so does the CLI, as JSON lines.
  curl -sN -m 1 "${u}/kv/?prefix=ev%2F&watch=events&since=${first}" \
    >"${SHUNIT_TMPDIR}/ev.replay"
  assertEquals 'since= replays it' "$(cat "${SHUNIT_TMPDIR}/ev.sent")" \
    "$(events_of "${SHUNIT_TMPDIR}/ev.replay")"
  KV_URL="${u}" timeout 1 ./kvstore watch --prefix ev/ --since "${first}" |
    sed 's/^/data: /' >"${SHUNIT_TMPDIR}/ev.cli"
  assertEquals 'kvstore watch --prefix --since prints them' \
    "$(cat "${SHUNIT_TMPDIR}/ev.sent")" "$(events_of "${SHUNIT_TMPDIR}/ev.cli")"
  assertEquals 'a put carries its value' 1 \
    "$(grep -c "\"key\":\"ev/2\",\"value\":\"v2\"}" "${SHUNIT_TMPDIR}/ev.cli")"
  # Last-Event-ID, as EventSource sends it when it reconnects.
  curl -sN -m 1 -H "Last-Event-ID: ${first}" "${u}/kv/?prefix=ev%2F&watch=events" \
    >"${SHUNIT_TMPDIR}/ev.leid"
  assertEquals 'Last-Event-ID: N follows from N + 1' \
    "$(sed 1d "${SHUNIT_TMPDIR}/ev.sent")" "$(events_of "${SHUNIT_TMPDIR}/ev.leid")"
  stop "${spid}"
}

# events_of FILE: the events in an event stream, as "seq op key".
events_of() {
  sed -n 's/^data: {"seq":\([0-9]*\),"op":"\([a-z]*\)","key":"\([^"]*\)".*/\1 \2 \3/p' "$1"
}

# ---- Transactions ----

# A transaction's writes under the prefix come as events with consecutive
# seqs, all but its last marked "more" (counted over the whole group, keys
# outside the prefix included), and a replay from since= is the same.
testEventStreamCarriesATransactionMarkedAsOne() {
  live="${SHUNIT_TMPDIR}/ev-txn.live"
  put evtx/c old
  curl -sN "${url}/kv/?prefix=evtx%2F&watch=events" >"${live}" &
  cpid=$!
  wait_for 5 log_has "${live}" '^: from seq'
  txn "${port}" '{"success":[{"op":"put","key":"evtx/a","value":"1"},
    {"op":"put","key":"elsewhere","value":"x"},
    {"op":"put","key":"evtx/b","value":"2","ttl":"1h"},
    {"op":"delete","key":"evtx/c"}]}'
  assertEquals 'the transaction ran' 200 "${code}"
  s=$((txn_seq - 3))
  wait_for 5 log_has "${live}" "^id: ${txn_seq}\$"
  kill "${cpid}"
  assertEquals 'its writes under the prefix, in order, all but the last "more"' \
    "${s} put evtx/a more
$((s + 2)) put evtx/b more
$((s + 3)) delete evtx/c" "$(txn_events "${live}")"
  assertEquals 'the put with a ttl says when it expires' 1 \
    "$(grep -c '"key":"evtx/b","expires_at":[0-9]*,"value":"2","more":true}' "${live}")"
  curl -sN -m 1 "${url}/kv/?prefix=evtx%2F&watch=events&since=${s}" \
    >"${SHUNIT_TMPDIR}/ev-txn.replay"
  assertEquals 'since= replays it the same' "$(txn_events "${live}")" \
    "$(txn_events "${SHUNIT_TMPDIR}/ev-txn.replay")"
}

# txn_events FILE: "seq op key" and "more" when marked, per event.
txn_events() {
  sed -n 's/^data: {"seq":\([0-9]*\),"op":"\([a-z]*\)","key":"\([^"]*\)".*"more":true}$/\1 \2 \3 more/p
    s/^data: {"seq":\([0-9]*\),"op":"\([a-z]*\)","key":"\([^"]*\)".*}$/\1 \2 \3/p' "$1"
}

# ---- Keys that expire (PUT ?ttl=, 'X' records) ----

# A put with a TTL says when the key expires (expires_at, unix ms on the
# primary's clock), also when its value is too big to come whole; the
# expiry itself, which the primary replicates as an ordinary delete, is a
# delete event: a stream on an expiring key fires when it expires.
testEventStreamPutWithTtlSaysWhenAndItsExpiryIsADelete() {
  live="${SHUNIT_TMPDIR}/ev-ttl.live"
  before=$(date +%s%3N)
  seq=$(curl -s -D - -o /dev/null -X PUT -d v "${url}/kv/evttl%2Fa?ttl=500ms" |
    tr -d '\r' | sed -n 's/^X-Kv-Seq: //p')
  after=$(date +%s%3N)
  curl -sN "${url}/kv/?prefix=evttl%2F&watch=events&since=${seq}" >"${live}" &
  cpid=$!
  head -c 40000 /dev/zero | tr '\0' b >"${SHUNIT_TMPDIR}/ev-40k"
  curl -s -o /dev/null -X PUT --data-binary @"${SHUNIT_TMPDIR}/ev-40k" \
    "${url}/kv/evttl%2Fbig?ttl=1h"
  after_big=$(date +%s%3N)
  put evttl%2Fplain v
  wait_for 15 log_has "${live}" '"op":"delete","key":"evttl/a"'
  assertTrue 'the key expires: a delete event' $?
  kill "${cpid}"
  exp=$(sed -n 's/^data: {.*"key":"evttl\/a","expires_at":\([0-9]*\),"value":"v"}$/\1/p' \
    "${live}")
  assertTrue "the put: expires_at ${exp:-missing} is its write's time + 500 ms" \
    "[ ${exp:-0} -ge $((before + 500)) ] && [ ${exp:-0} -le $((after + 500)) ]"
  exp=$(sed -n 's/^data: {.*"key":"evttl\/big","expires_at":\([0-9]*\),"value_bytes":40000}$/\1/p' \
    "${live}")
  assertTrue "too big a value: by its size, with its expiry (${exp:-missing})" \
    "[ ${exp:-0} -ge $((after + 3600000)) ] && [ ${exp:-0} -le $((after_big + 3600000)) ]"
  assertEquals 'a put without a TTL has no expires_at' \
    '"key":"evttl/plain","value":"v"}' \
    "$(grep -o '"key":"evttl/plain".*' "${live}")"
  dseq=$(events_of "${live}" | sed -n 's/ delete evttl\/a$//p')
  assertTrue "the delete (${dseq:-none}) follows the put (${seq})" \
    "[ ${dseq:-0} -gt ${seq} ]"
}

# ---- History that left the backlog ----

testEventStreamAnswers410OnceSinceLeftTheBacklog() {
  start ev410 REPL_BACKLOG_BYTES=65536
  u="http://127.0.0.1:${sport}"
  writes put_4k "${sport}" old 40
  out=$(curl -s -D - "${u}/kv/?watch=events&since=1" | tr -d '\r')
  assertEquals '410 at once' 410 "$(status_code "${out}")"
  oldest=$(printf '%s\n' "${out}" | sed -n 's/^X-Kv-Oldest-Seq: //p')
  assertTrue "the oldest held is named (${oldest})" "[ ${oldest:-0} -gt 1 ]"
  assertContains 'one readable line' "${out}" \
    "seq 1 is no longer held here: the oldest is ${oldest}"
  curl -sN -m 1 "${u}/kv/?watch=events&since=${oldest}" >"${body}"
  assertEquals 'from the oldest held: the stream starts there' \
    "id: ${oldest}" "$(grep -m 1 '^id: ' "${body}")"
  out=$(KV_URL="${u}" ./kvstore watch --prefix old --since 1 2>&1)
  assertEquals 'kvstore watch: exit 1 on 410' 1 $?
  assertContains 'and says why' "${out}" 'seq 1 is no longer held'
  stop "${spid}"
}

# ---- What a client sends ----

testEventStreamRefusesBadInputsAndWaitsForAFutureSeq() {
  for q in since=-1 since=abc since=0 since= since=9007199254740993 \
    since=99999999999999999999999 watch=stream index=1 wait=1s \
    values=true limit=5 cursor=0000000000000000 since=5; do
    case "${q}" in
      since=5) ;;  # since= alone, without watch=events
      watch*) ;;
      *) q="watch=events&${q}" ;;
    esac
    code=$(curl -s -o "${body}" -m 2 -w '%{http_code}' \
      "${url}/kv/?prefix=h&${q}")
    assertEquals "${q}: 400" 400 "${code}"
    assertEquals "${q}: one line" 1 "$(wc -l <"${body}")"
  done
  code=$(curl -s -o /dev/null -w '%{http_code}' -H 'Last-Event-ID: x' \
    "${url}/kv/?watch=events")
  assertEquals 'Last-Event-ID: x: 400' 400 "${code}"
  # On a key, not a prefix: refused, not answered with the value.
  put hk v
  for q in watch=events since=1 'watch=events&since=1'; do
    code=$(curl -s -o "${body}" -m 2 -w '%{http_code}' "${url}/kv/hk?${q}")
    assertEquals "GET /kv/hk?${q}: 400" 400 "${code}"
    assertContains "GET /kv/hk?${q}: says to follow a prefix" \
      "$(cat "${body}")" 'follow a prefix'
  done
  # Huge prefixes: the longest key's length is followed, a byte more is
  # refused, and so is a request line past the server's limit.
  long=$(head -c 1024 /dev/zero | tr '\0' p)
  code=$(curl -s -o /dev/null -m 1 -w '%{http_code}' \
    "${url}/kv/?prefix=${long}&watch=events")
  assertEquals 'a 1024-byte prefix: followed' 200 "${code}"
  for q in "${long}p" "$(printf '%%41%.0s' $(seq 1 1025))"; do
    code=$(curl -s -o "${body}" -m 2 -w '%{http_code}' \
      "${url}/kv/?prefix=${q}&watch=events")
    assertEquals "a ${#q}-character prefix of 1025 bytes: 400" 400 "${code}"
    assertContains 'saying why' "$(cat "${body}")" 'over 1024 bytes'
  done
  code=$(curl -s -o /dev/null -m 2 -w '%{http_code}' \
    "${url}/kv/?prefix=$(head -c 65536 /dev/zero | tr '\0' p)&watch=events")
  assertEquals 'a 64 KiB request line: 414' 414 "${code}"
  code=$(curl -s -o /dev/null -m 1 -w '%{http_code}' \
    "${url}/kv/?watch=events&since=9007199254740992")
  assertEquals 'since=2^53: waits for it' 200 "${code}"
  # A seq not written yet: the stream waits for it, then goes on.
  put hz0 x
  seq=$(curl -s -D - -o /dev/null -X PUT -d x "${url}/kv/hz0" | tr -d '\r' |
    sed -n 's/^X-Kv-Seq: //p')
  curl -sN "${url}/kv/?prefix=hz&watch=events&since=$((seq + 3))" \
    >"${SHUNIT_TMPDIR}/ev-hz" &
  cpid=$!
  wait_for 5 log_has "${SHUNIT_TMPDIR}/ev-hz" '^: from seq'
  for k in hz1 hz2 hz3 hz4; do put "${k}" x; done
  wait_for 5 log_has "${SHUNIT_TMPDIR}/ev-hz" "^id: $((seq + 4))\$"
  kill "${cpid}"
  assertEquals 'since in the future: from that seq on' \
    "$((seq + 3)) put hz3
$((seq + 4)) put hz4" "$(events_of "${SHUNIT_TMPDIR}/ev-hz")"
  # Odd bytes in a key and prefix: JSON-escaped, one line per event.
  seq=$(curl -s -D - -o /dev/null -X PUT --data-binary $'\xff\n' \
    "${url}/kv/odd%FF%0A%22%01x" | tr -d '\r' | sed -n 's/^X-Kv-Seq: //p')
  curl -sN -m 1 "${url}/kv/?prefix=odd%FF%0A&watch=events&since=${seq}" \
    >"${body}"
  want='"key":"odd\udcff\u000a\"\u0001x","value":"\udcff\u000a"}'
  [ "$(grep '^data: ' "${body}")" = "data: {\"seq\":${seq},\"op\":\"put\",${want}" ]
  assertTrue 'an odd key and a binary value: JSON-escaped, on one line' $?
  for a in '--since abc' '--since 0' '--since' '--prefix'; do
    # shellcheck disable=SC2086 # the words are the arguments
    ./kvstore watch --prefix p ${a} 2>/dev/null
    assertEquals "kvstore watch --prefix p ${a}: usage" 2 $?
  done
}

# ---- Replicas ----

testEventStreamOnAReplicaEndsAtItsFullSync() {
  node p "${rp}" primary REPL_BACKLOG_BYTES=65536 REPL_TIMEOUT_MS=500
  node r1 "${rr1}" replica
  wait_ready "${rr1}"
  live="${SHUNIT_TMPDIR}/ev-rep.live"
  curl -sN "http://127.0.0.1:${rr1}/kv/?prefix=rep&watch=events" >"${live}" &
  cpid=$!
  wait_for 5 log_has "${live}" '^: from seq'
  # rep3 expires in an hour: an 'X' record, replicated with its expiry.
  for i in 1 2 3 4 5; do
    q=''
    [ "${i}" = 3 ] && q='?ttl=1h'
    curl -s -D - -o /dev/null -X PUT -d "v${i}" \
      "http://127.0.0.1:${rp}/kv/rep${i}${q}" | tr -d '\r' |
      sed -n "s/^X-Kv-Seq: \(.*\)/\1 put rep${i}/p"
  done >"${SHUNIT_TMPDIR}/ev-rep.sent"
  first=$(head -n 1 "${SHUNIT_TMPDIR}/ev-rep.sent" | cut -d' ' -f1)
  wait_for 10 log_has "${live}" "^id: $(tail -n 1 "${SHUNIT_TMPDIR}/ev-rep.sent" |
    cut -d' ' -f1)\$"
  assertEquals 'the replica streams the primary'"'"'s writes, same seqs' \
    "$(cat "${SHUNIT_TMPDIR}/ev-rep.sent")" "$(events_of "${live}")"
  curl -sN -m 1 "http://127.0.0.1:${rp}/kv/?prefix=rep&watch=events&since=${first}" \
    >"${SHUNIT_TMPDIR}/ev-rep.primary"
  assertEquals 'the same events on both, expires_at too' \
    "$(grep '^data: ' "${SHUNIT_TMPDIR}/ev-rep.primary")" \
    "$(grep '^data: ' "${live}")"
  assertEquals 'one of them a put with a TTL' 1 \
    "$(grep -c '"key":"rep3","expires_at":' "${live}")"
  # Stopped past the primary's backlog, the replica full-syncs: its own
  # backlog restarts, and the stream says so rather than jump.
  kill -STOP "$(pid_of r1)"
  writes put_4k "${rp}" rep-bulk 40
  wait_for 10 log_has "${SHUNIT_TMPDIR}/p.log" \
    "replica http://127.0.0.1:${rr1}: down"
  kill -CONT "$(pid_of r1)"
  wait_for 15 log_has "${live}" '^event: reset'
  assertTrue 'the stream ends with event: reset' $?
  wait_for 5 gone "${cpid}"
  assertTrue 'and ends' $?
  kill "${cpid}" 2>/dev/null
  stop_nodes
}

# ---- Bounds ----

testSlowEventReadersAreCutWithoutGrowingTheServer() {
  start evslow REPL_BACKLOG_BYTES=1048576 IDLE_TIMEOUT_MS=4000
  u="http://127.0.0.1:${sport}"
  # HTTP/1.0: no chunks in the way of the lines.
  req="GET /kv/?prefix=big&watch=events HTTP/1.0\r\n\r\n"
  # One reader never reads; one reads only once the writes are done.
  (exec 3<>"/dev/tcp/127.0.0.1/${sport}" && printf '%b' "${req}" >&3 &&
    sleep 10) &
  npid=$!
  (exec 3<>"/dev/tcp/127.0.0.1/${sport}" && printf '%b' "${req}" >&3 &&
    wait_for 20 "[ -f '${SHUNIT_TMPDIR}/ev-written' ]" &&
    timeout 5 cat <&3) >"${SHUNIT_TMPDIR}/ev-slow" &
  spid2=$!
  wait_for 5 "[ \"\$(stream_count ${sport})\" = 2 ]"
  anon0=$(rss_anon "${spid}")
  # A value too big to copy out of the backlog whole, then 12 MiB of
  # writes, 12 times the backlog, that each go out whole.
  head -c 131072 /dev/zero | tr '\0' b >"${SHUNIT_TMPDIR}/ev-128k"
  head -c 24576 /dev/zero | tr '\0' b >"${SHUNIT_TMPDIR}/ev-24k"
  f=ev-128k
  for i in $(seq 0 512); do
    printf 'url = "%s/kv/big%s"\nupload-file = "%s"\noutput = "/dev/null"\n' \
      "${u}" "${i}" "${SHUNIT_TMPDIR}/${f}"
    f=ev-24k
  done >"${SHUNIT_TMPDIR}/ev-big.cfg"
  out=$(curl -s -w '%{method} %{http_code}\n' -K "${SHUNIT_TMPDIR}/ev-big.cfg" |
    answered 'the writes' 513 'PUT 201')
  assertTrue "${out:-the writes}" $?
  touch "${SHUNIT_TMPDIR}/ev-written"
  anon1=$(rss_anon "${spid}")
  # Sanitizers' shadow memory makes RssAnon say nothing (suite_abuse.sh).
  [ "$(sanitized_or 1 0)" = 1 ] ||
    assertTrue "anonymous memory grew ${anon0} -> ${anon1} KiB: under 4 MiB" \
      "[ $((anon1 - anon0)) -lt 4096 ]"
  wait "${spid2}"
  tail -n 3 "${SHUNIT_TMPDIR}/ev-slow" >"${body}"
  lastid=$(grep '^id: ' "${SHUNIT_TMPDIR}/ev-slow" | tail -n 1 | cut -d' ' -f2)
  assertEquals 'the late reader: what it got, then lagged and where to resume' \
    "event: lagged" "$(head -n 1 "${body}")"
  assertContains 'resume right after the last event it got' \
    "$(sed -n 2p "${body}")" "{\"resume\":$((lastid + 1)),"
  assertContains 'too big a value goes by its size' \
    "$(grep -m 1 '^data: ' "${SHUNIT_TMPDIR}/ev-slow")" '"value_bytes":131072}'
  # The reader that never reads: closed once it took nothing for
  # IDLE_TIMEOUT_MS.
  wait_for 10 "[ \"\$(stream_count ${sport})\" = 0 ]"
  assertTrue 'both streams end' $?
  n=$(metric "${sport}" kvstore_event_streams_lagged_total)
  assertTrue "counted as lagged (${n})" "[ ${n:-0} -ge 1 ]"
  kill "${npid}" 2>/dev/null
  stop "${spid}"
}

# A rare prefix catching up on a backlog of others' writes: the stream
# reads the backlog a slice per pass (EVENTS_READS copies), so the server
# answers others meanwhile, and the stream gets each of its events.
testARarePrefixCatchesUpOnABigBacklogInSlices() {
  start evrare
  u="http://127.0.0.1:${sport}"
  put_status=$(curl -s -o /dev/null -w '%{http_code}' -X PUT -d 1 "${u}/kv/rare1")
  writes put_4k "${sport}" other 600
  curl -s -o /dev/null -X PUT -d 2 "${u}/kv/rare2"
  writes put_4k "${sport}" other 600
  curl -s -o /dev/null -X PUT -d 3 "${u}/kv/rare3"
  curl -sN "${u}/kv/?prefix=rare&watch=events&since=1" >"${SHUNIT_TMPDIR}/ev-rare" &
  cpid=$!
  code=$(curl -s -o /dev/null -w '%{http_code}' "${u}/kv/rare1")
  assertEquals 'a GET beside the catching-up stream' 200 "${code}"
  wait_for 10 log_has "${SHUNIT_TMPDIR}/ev-rare" '"key":"rare3"'
  kill "${cpid}"
  assertEquals 'its three events, across 4.8 MB of others' \
    '1 put rare1
602 put rare2
1203 put rare3' "$(events_of "${SHUNIT_TMPDIR}/ev-rare")"
  assertEquals 'the first put' 201 "${put_status}"
  stop "${spid}"
}

# stream_count PORT: the event streams open (its metrics).
stream_count() { metric "$1" kvstore_event_streams; }
# metric PORT NAME: a metric's value.
metric() { curl -s "http://127.0.0.1:$1/metrics" | sed -n "s/^$2 //p"; }
# rss_anon PID: its anonymous resident memory in KiB.
rss_anon() { awk '/^RssAnon:/ { print $2 }' "/proc/$1/status"; }

testEventStreamsAreCappedAndEndAtShutdownAndTheCliFollowsOn() {
  start evcap MAX_EVENT_STREAMS=2
  u="http://127.0.0.1:${sport}"
  curl -sN "${u}/kv/?watch=events" >"${SHUNIT_TMPDIR}/ev-cap1" &
  c1=$!
  KV_URL="${u}" ./kvstore watch --prefix cap >"${SHUNIT_TMPDIR}/ev-cap.cli" \
    2>&1 &
  c2=$!
  wait_for 5 "[ \"\$(stream_count ${sport})\" = 2 ]"
  code=$(curl -s -o "${body}" -w '%{http_code}' "${u}/kv/?watch=events")
  assertEquals 'a third stream: 503' 503 "${code}"
  assertEquals 'saying why' 'too many event streams: MAX_EVENT_STREAMS (2) are open' \
    "$(cat "${body}")"
  put_status=$(curl -s -o /dev/null -w '%{http_code}' -X PUT -d 1 "${u}/kv/cap1")
  assertEquals 'writes go on' 201 "${put_status}"
  # Shutdown: each stream's last event says so, and the server exits.
  kill "${spid}"
  wait_for 5 gone "${spid}"
  assertTrue 'the server stops at once' $?
  assertContains 'the stream ends with event: shutdown' \
    "$(cat "${SHUNIT_TMPDIR}/ev-cap1")" 'event: shutdown'
  # kvstore watch follows on once the server is back, from the next seq.
  PORT="${sport}" ROLE=primary DATA_DIR="${SHUNIT_TMPDIR}/evcap" \
    RECOVER_WAIT_MS=0 ./kvstore >>"${slog}" 2>&1 &
  spid=$!
  echo "${spid}" >>"${SHUNIT_TMPDIR}/pids"
  wait_ready "${sport}"
  curl -s -o /dev/null -X PUT -d 2 "${u}/kv/cap2"
  wait_for 5 log_has "${SHUNIT_TMPDIR}/ev-cap.cli" '"key":"cap2"'
  assertEquals 'the CLI: both writes, across the restart' \
    '{"seq":1,"op":"put","key":"cap1","value":"1"}
{"seq":2,"op":"put","key":"cap2","value":"2"}' "$(cat "${SHUNIT_TMPDIR}/ev-cap.cli")"
  kill "${c1}" "${c2}" 2>/dev/null
  stop "${spid}"
}
