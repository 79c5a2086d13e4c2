# shellcheck shell=bash
# shellcheck disable=SC2154 # test.sh sets the fixtures' variables (port, body, ...)
# Disk full and failing disks, on small filesystems of their own. Sourced
# by test.sh (its helpers and fixtures apply). Mounting needs root (the failing disk also a loop device and
# mkfs.ext4); without them a test says why and is skipped. Each test
# unmounts what it mounted before it returns, whatever happened.

# A full disk: writes answer 507 and change nothing, reads go on, a
# compaction that cannot get space fails quietly and is retried, and once
# space is back writes and the compaction go through. Nothing acknowledged
# is lost, across a restart too.
testFullDiskAnswers507AndKeepsEveryAcknowledgedWrite() {
  disk_tmpfs 16m || return 0
  # Freed later, to give space back.
  dd if=/dev/zero of="${dmnt}/ballast" bs=1M count=6 status=none
  start full DATA_DIR="${dmnt}/data" FSYNC=always
  : >"${SHUNIT_TMPDIR}/acked"
  for i in $(seq 1 1000); do
    dput "${sport}" "k${i}"
    case "${code}" in
      201) echo "k${i}" >>"${SHUNIT_TMPDIR}/acked" ;;
      *) break ;;
    esac
  done
  acked=$(wc -l <"${SHUNIT_TMPDIR}/acked")
  echo "  ${acked} writes of 64 KiB filled the 16 MiB disk"
  assertEquals 'a write to a full disk' 507 "${code}"
  assertEquals 'says why' 'write failed: the disk is full; nothing was changed' \
    "$(cat "${body}")"
  assertTrue "the disk held writes (${acked})" "[ ${acked} -gt 100 ]"
  dput "${sport}" again
  assertEquals 'still full' 507 "${code}"
  assertEquals 'logged once, not per write' 1 \
    "$(grep -c 'the disk is full' "${slog}")"
  assertEquals 'every acknowledged write reads back' 0 \
    "$(disk_check "${sport}" <"${SHUNIT_TMPDIR}/acked")"
  code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:${sport}/health")
  assertEquals 'health' 200 "${code}"
  ready=$(curl -s -w ' %{http_code}' "http://127.0.0.1:${sport}/ready")
  assertContains 'still ready: it serves reads' "${ready}" ' 200'
  assertContains 'ready says the disk is full' "${ready}" '"disk":"full"'

  # Deleting most keys makes garbage worth compacting, but the copy finds
  # no room. Tombstones are small: they still fit.
  : >"${SHUNIT_TMPDIR}/kept"
  : >"${SHUNIT_TMPDIR}/gone"
  while read -r key; do
    if [ $((${key#k} % 10)) -lt 7 ]; then
      code=$(curl -s -o /dev/null -w '%{http_code}' -X DELETE \
        "http://127.0.0.1:${sport}/kv/${key}")
      [ "${code}" = 200 ] && echo "${key}" >>"${SHUNIT_TMPDIR}/gone" && continue
    fi
    echo "${key}" >>"${SHUNIT_TMPDIR}/kept"
  done <"${SHUNIT_TMPDIR}/acked"
  assertTrue 'deletes went through on the full disk' \
    "[ $(wc -l <"${SHUNIT_TMPDIR}/gone") -gt $((acked / 2)) ]"
  disk_wait_log 'cannot start compaction' 5
  assertContains 'the compaction says why it cannot run' "$(cat "${slog}")" \
    'cannot start compaction: No space left on device; retrying'
  assertEquals 'the process lives on' 200 \
    "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:${sport}/health")"
  assertEquals 'kept keys read back' 0 \
    "$(disk_check "${sport}" <"${SHUNIT_TMPDIR}/kept")"

  # Space back: writes at once, the compaction at its next retry (10 s).
  rm -f "${dmnt}/ballast"
  dput "${sport}" after
  assertEquals 'a write once space is back' 201 "${code}"
  echo after >>"${SHUNIT_TMPDIR}/kept"
  assertContains 'ready says so' \
    "$(curl -s "http://127.0.0.1:${sport}/ready")" '"disk":"ok"'
  assertContains 'logged' "$(cat "${slog}")" 'the disk has room again'
  disk_wait_log 'compacted to' 15
  assertContains 'the compaction ran once space was back' \
    "$(cat "${slog}")" 'compacted to'
  assertEquals 'its failures logged once' 1 \
    "$(grep -c 'cannot start compaction' "${slog}")"
  echo "  disk after the compaction: $(df -k "${dmnt}" | awk 'NR == 2 { print $3 }') KiB used"

  stop "${spid}"
  start full DATA_DIR="${dmnt}/data" FSYNC=always
  assertEquals 'after a restart, every acknowledged write' 0 \
    "$(disk_check "${sport}" <"${SHUNIT_TMPDIR}/kept")"
  missing=0
  while read -r key; do
    [ "$(curl -s -o /dev/null -w '%{http_code}' \
      "http://127.0.0.1:${sport}/kv/${key}")" = 404 ] || missing=$((missing + 1))
  done <"${SHUNIT_TMPDIR}/gone"
  assertEquals 'and every acknowledged delete' 0 "${missing}"
  stop "${spid}"
  disk_umount
}

# A disk whose flush fails: an ext4 on a loop device backed by a sparse
# file on a small tmpfs, which runs out under it (a thin-provisioned
# volume filling up). The write whose fdatasync fails is answered 503,
# never 2xx; every write after it is refused; reads go on; /ready says
# disk-failed. Its replica gets every acknowledged write and never the
# failed one. After a restart on a healthy disk, every write acknowledged
# before the trouble is there.
testFailedFlushIsNeverAcknowledgedAndRefusesWrites() {
  disk_loop || return 0
  new_port
  rport=${sport}
  start eio DATA_DIR="${dfs}/data" FSYNC=always
  env PORT="${rport}" ROLE=replica DATA_DIR="${SHUNIT_TMPDIR}/eiorep" \
    PRIMARY_URL="http://127.0.0.1:${sport}" \
    ADVERTISE_URL="http://127.0.0.1:${rport}" ./kvstore \
    >"${SHUNIT_TMPDIR}/eiorep.log" 2>&1 &
  rpid=$!
  echo "${rpid}" >>"${SHUNIT_TMPDIR}/pids"
  wait_up "${rport}" || fail "the replica did not start"
  wait_streaming "${sport}" "${rport}" ||
    fail "not streaming: $(curl -s "http://127.0.0.1:${sport}/ready")"
  : >"${SHUNIT_TMPDIR}/acked"
  for i in $(seq 1 20); do
    dput "${sport}" "k${i}"
    [ "${code}" = 201 ] && echo "k${i}" >>"${SHUNIT_TMPDIR}/acked"
  done
  assertEquals 'writes before the trouble' 20 "$(wc -l <"${SHUNIT_TMPDIR}/acked")"
  # Now the volume under the filesystem has no room left.
  dd if=/dev/zero of="${dmnt}/ballast" bs=64k status=none 2>/dev/null
  : >"${SHUNIT_TMPDIR}/late"
  for i in $(seq 21 400); do
    dput "${sport}" "k${i}"
    case "${code}" in
      201) echo "k${i}" >>"${SHUNIT_TMPDIR}/late" ;;
      *) break ;;
    esac
  done
  assertEquals 'the write whose flush failed' 503 "${code}"
  assertContains 'is not acknowledged' "$(cat "${body}")" \
    'is not acknowledged: flushing it to disk failed'
  dput "${sport}" next
  assertEquals 'later writes' 503 "${code}"
  assertContains 'say why' "$(cat "${body}")" \
    'this node takes no writes until it is restarted; reads still work'
  assertEquals 'reads go on' 0 "$(disk_check "${sport}" <"${SHUNIT_TMPDIR}/acked")"
  assertEquals 'health' 200 \
    "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:${sport}/health")"
  ready=$(curl -s -w ' %{http_code}' "http://127.0.0.1:${sport}/ready")
  assertContains 'not ready' "${ready}" '"status":"disk-failed"'
  assertContains 'not ready: 503' "${ready}" ' 503'
  assertContains 'metric' "$(curl -s "http://127.0.0.1:${sport}/metrics")" \
    'kvstore_disk_failed 1'
  assertEquals 'logged once' 1 "$(grep -c 'flush failed' "${slog}")"
  snap=$(curl -s -w ' %{http_code}' -H 'X-Kv-Repl-Token: x' \
    "http://127.0.0.1:${sport}/repl/snapshot")
  assertContains 'no snapshot holding the failed write' "${snap}" ' 503'
  assertContains 'says why' "${snap}" "disk failed before seq"
  durable=$(json_num "$(curl -s "http://127.0.0.1:${sport}/ready")" durable_seq)
  wait_seq "${rport}" "${durable}"
  assertEquals 'the replica has every acknowledged write' "${durable}" \
    "$(node_seq "${rport}")"
  failed=$(($(wc -l <"${SHUNIT_TMPDIR}/acked") + $(wc -l <"${SHUNIT_TMPDIR}/late") + 1))
  kill "${spid}"
  wait "${spid}"
  assertEquals 'SIGTERM: the close cannot flush, so exit 1' 1 $?
  assertEquals 'and never the failed one, even at shutdown' 404 \
    "$(curl -s -o /dev/null -w '%{http_code}' \
    "http://127.0.0.1:${rport}/kv/k${failed}")"
  assertEquals 'nor anything after the acknowledged' "${durable}" \
    "$(node_seq "${rport}")"
  stop "${rpid}"

  # A healthy disk again: the filesystem as the volume kept it.
  umount "${dfs}"
  mount -o remount,size=96m "${dmnt}"
  e2fsck -fy "${ddev}" >"${SHUNIT_TMPDIR}/fsck.log" 2>&1
  mount "${ddev}" "${dfs}"
  # A write acknowledged while the volume filled may be missing (see the
  # XXX below): the store then refuses to start smaller, and a salvage
  # keeps every other record.
  salvaged=
  if ! ./kvstore check "${dfs}/data" >"${SHUNIT_TMPDIR}/check.log"; then
    assertTrue 'damage only after the trouble began' \
      "[ -s '${SHUNIT_TMPDIR}/late' ]"
    ./kvstore salvage "${dfs}/data" >>"${SHUNIT_TMPDIR}/check.log"
    assertTrue "salvage: $(cat "${SHUNIT_TMPDIR}/check.log")" $?
    salvaged=1
  fi
  start eio DATA_DIR="${dfs}/data" FSYNC=always
  [ -n "${salvaged}" ] ||
    assertContains 'recovered' "$(cat "${slog}")" 'not closed cleanly'
  assertEquals 'every write acknowledged before the trouble' 0 \
    "$(disk_check "${sport}" <"${SHUNIT_TMPDIR}/acked")"
  # XXX: not asserted. Here (Linux 6.18) a loop device completes a write
  # cut short by its full backing tmpfs as a success: dd conv=fdatasync
  # appending to a file on it exits 0 and the bytes are not on the volume.
  # So a write acknowledged after the ballast may be missing through no
  # fault of the store.
  echo "  acknowledged while the volume filled: $(wc -l <"${SHUNIT_TMPDIR}/late")," \
    "present after the repair: $(($(wc -l <"${SHUNIT_TMPDIR}/late") - \
    $(disk_check "${sport}" <"${SHUNIT_TMPDIR}/late")))"
  dput "${sport}" healed
  assertEquals 'writes again after the restart' 201 "${code}"
  stop "${spid}"
  disk_umount
}

# ---- Helpers ----

# disk_value KEY: a 64 KiB value that names its key.
disk_value() { yes "$1" | head -c 65536; }

# dput PORT KEY: PUT disk_value KEY; the status in ${code}.
dput() {
  code=$(disk_value "$2" | curl -s -o "${body}" -w '%{http_code}' -X PUT \
    --data-binary @- "http://127.0.0.1:$1/kv/$2")
}

# disk_check PORT <KEYS: print how many keys do not read back their value.
disk_check() {
  bad=0
  while read -r key; do
    curl -s -o "${SHUNIT_TMPDIR}/got" "http://127.0.0.1:$1/kv/${key}"
    disk_value "${key}" | cmp -s - "${SHUNIT_TMPDIR}/got" || bad=$((bad + 1))
  done
  echo "${bad}"
}

# disk_wait_log TEXT SECONDS: until ${slog} has TEXT.
disk_wait_log() { wait_for "$2" log_has "${slog}" "$1"; }

# disk_skip WHY: skip the rest of this test, saying why (tests/lib.sh).
disk_skip() { skip "$1"; }

# disk_tmpfs SIZE: a tmpfs of SIZE at ${dmnt}.
disk_tmpfs() {
  dmnt="${SHUNIT_TMPDIR}/disk"
  if [ "$(id -u)" -ne 0 ]; then
    disk_skip 'mounting a small filesystem needs root'
    return 1
  fi
  mkdir -p "${dmnt}"
  if ! mount -t tmpfs -o "size=$1" tmpfs "${dmnt}" 2>/dev/null; then
    disk_skip "cannot mount a tmpfs on ${dmnt}"
    return 1
  fi
  echo "${dmnt}" >>"${SHUNIT_TMPDIR}/mounts"
}

# disk_loop: an ext4 at ${dfs} on loop device ${ddev}, whose backing file
# on a 24 MiB tmpfs (${dmnt}) is sparse: 64 MiB as the filesystem sees it.
disk_loop() {
  if ! command -v losetup >/dev/null || ! command -v mkfs.ext4 >/dev/null ||
    ! command -v e2fsck >/dev/null; then
    disk_skip 'needs losetup, mkfs.ext4 and e2fsck'
    return 1
  fi
  disk_tmpfs 24m || return 1
  dfs="${SHUNIT_TMPDIR}/diskfs"
  truncate -s 64M "${dmnt}/volume"
  if ! ddev=$(losetup -f --show "${dmnt}/volume" 2>/dev/null); then
    disk_umount
    disk_skip 'no loop device'
    return 1
  fi
  echo "${ddev}" >>"${SHUNIT_TMPDIR}/mounts"
  # Written out now, not lazily later: the ballast must be the only
  # thing that fills the tmpfs.
  mkdir -p "${dfs}"
  if ! mkfs.ext4 -q -F -b 4096 \
    -E lazy_itable_init=0,lazy_journal_init=0,nodiscard "${ddev}" \
    >/dev/null 2>&1 || ! mount "${ddev}" "${dfs}"; then
    disk_umount
    disk_skip "cannot make or mount an ext4 on ${ddev}"
    return 1
  fi
  echo "${dfs}" >>"${SHUNIT_TMPDIR}/mounts"
}

# disk_umount: undo disk_tmpfs and disk_loop.
disk_umount() { unmount_all; }
