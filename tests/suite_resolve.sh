# shellcheck shell=bash
# shellcheck disable=SC2154 # test.sh sets the fixtures' variables (port, body, ...)
# Name resolution (resolve.c) against a DNS server of the test's own:
# tests/fakedns answers from a zone on 127.0.0.1:53 inside a network and
# mount namespace made for the test, where a test resolv.conf and hosts
# are bind-mounted over /etc/resolv.conf and /etc/hosts (in there only).
# Everything runs on that namespace's loopback; its processes are stopped
# by PID when the test's script ends.

# The zone: pods in namespace "ns" of cluster.local, as Kubernetes names
# them. The absolute kv-0.kv is TEST-NET (unreachable): found only if the
# search list is skipped.
dns_zone() {
  cat <<'EOF'
kv-0.kv.ns.svc.cluster.local A 127.0.0.1
kv-0.kv A 192.0.2.1
alias.ns.svc.cluster.local CNAME kv-0.kv.ns.svc.cluster.local
peers.kv.ns.svc.cluster.local A 127.0.0.2
peers.kv.ns.svc.cluster.local A 127.0.0.3
peers.kv.ns.svc.cluster.local A 127.0.0.4
EOF
}

# in_dns_ns SCRIPT: run SCRIPT (bash, with tests/lib.sh's helpers) in a
# namespace with the fake DNS server; its files are in ${dns}: dns.log has
# each query asked. Returns 1 (skip) where namespaces are not allowed; a
# failed set-up fails the test.
in_dns_ns() {
  if ! unshare -n -m true 2>/dev/null; then
    skip 'a network and mount namespace (unshare -n -m) is not allowed here'
    return 1
  fi
  dns="${SHUNIT_TMPDIR}/dns-$(current_test)"
  mkdir -p "${dns}"
  dns_zone >"${dns}/zone"
  printf '%s\n' 'nameserver 127.0.0.1' \
    'search ns.svc.cluster.local svc.cluster.local cluster.local' \
    'options ndots:5 timeout:1 attempts:3' >"${dns}/resolv.conf"
  printf '%s\n' '127.0.0.1 localhost' \
    '127.0.0.1 kv-1.kv.ns.svc.cluster.local kv-1' >"${dns}/hosts"
  # shellcheck disable=SC2016 # expanded by the inner shell
  timeout -k 5 120 unshare -n -m bash -c '
    dns=$1
    . tests/lib.sh
    pids=()
    trap '\''for p in "${pids[@]}"; do kill "${p}" 2>/dev/null; wait "${p}" 2>/dev/null; done'\'' EXIT
    mount --bind "${dns}/resolv.conf" /etc/resolv.conf &&
      mount --bind "${dns}/hosts" /etc/hosts || exit 1
    tests/fakedns "${dns}/zone" 127.0.0.1 >"${dns}/dns.log" 2>&1 &
    pids+=($!)
    wait_for 5 "grep -q ready \"${dns}/dns.log\"" || exit 2
    # kv NAME PORT VAR=VALUE...: a node, its log in ${dns}/NAME.log
    kv() {
      env PORT="$2" DATA_DIR="${dns}/$1" LOG_LEVEL=debug "${@:3}" \
        ./kvstore >"${dns}/$1.log" 2>&1 &
      pids+=($!)
    }
    eval "$2"
    exit 0' _ "${dns}" "$1"
  assertEquals "the namespace's set-up (1: mounts, 2: fakedns): $(cat \
    "${dns}/dns.log" 2>/dev/null)" 0 $?
}

testAReplicaFindsItsPrimaryByANameOnlyDnsKnows() {
  # kv-0.kv has one dot, fewer than ndots:5: the search list comes first,
  # and kv-0.kv.ns.svc.cluster.local answers. The replica's own name,
  # kv-1, is in /etc/hosts only: the primary checks its registration by
  # it. A CNAME leads to the primary too.
  in_dns_ns '
    kv p 8081 ROLE=primary RECOVER_WAIT_MS=0
    wait_ready 8081 10 || exit 1
    kv r 8082 ROLE=replica PRIMARY_URL=http://kv-0.kv:8081 \
      ADVERTISE_URL=http://kv-1:8082
    curl -s -X PUT --data-binary found http://127.0.0.1:8081/kv/k >/dev/null
    wait_for 15 "[ \"\$(curl -s http://127.0.0.1:8082/kv/k)\" = found ]"
    echo "replica: $?" >"${dns}/out"
    curl -s http://127.0.0.1:8081/ready >"${dns}/ready"
    KV_URL=http://alias:8081 ./kvstore get k >>"${dns}/out" 2>&1
    cp "${dns}/dns.log" "${dns}/before"
    KV_URL=http://kv-0.kv.:8081 ./kvstore get k >"${dns}/absolute" 2>&1
  ' || return
  assertEquals "the replica got the write by its primary's name: $(tail -n 5 \
    "${dns}/r.log")" 'replica: 0' "$(head -n 1 "${dns}/out")"
  assertEquals 'the CLI through a CNAME' found "$(tail -n 1 "${dns}/out")"
  assertTrue 'the search list first: kv-0.kv.ns.svc.cluster.local' \
    "grep -q '^? kv-0.kv.ns.svc.cluster.local 1$' '${dns}/before'"
  assertFalse "kv-0.kv was not asked as it is: $(cat "${dns}/before")" \
    "grep -q '^? kv-0.kv 1$' '${dns}/before'"
  assertFalse 'kv-1 came from /etc/hosts, not DNS' \
    "grep -q '^? kv-1' '${dns}/before'"
  assertContains 'the primary took the replica named in /etc/hosts' \
    "$(cat "${dns}/ready")" '"url":"http://kv-1:8082"'
  # A final dot: the name alone, here the unreachable TEST-NET address.
  assertContains 'kv-0.kv. is absolute' "$(cat "${dns}/absolute")" connect
  assertTrue 'and asked as it is' "grep -q '^? kv-0.kv 1$' '${dns}/dns.log'"
}

testPeersDnsFindsEveryAddressOfTheName() {
  # A headless Service lists every pod: three A records, all candidates.
  in_dns_ns '
    kv r 8082 ROLE=replica PRIMARY_URL=http://127.0.0.1:8081
    wait_up 8082 || exit 1
    kv p 8081 ROLE=primary PEERS_DNS=peers.kv:8082 RECOVER_WAIT_MS=3000
    wait_for 10 "[ \$(grep -c \"recovery: peers.kv lists\" \"${dns}/p.log\") = 3 ]"
  ' || return
  for a in 2 3 4; do
    assertTrue "127.0.0.${a} is a candidate: $(grep recovery "${dns}/p.log")" \
      "grep -q 'recovery: peers.kv lists http://127.0.0.${a}:8082' '${dns}/p.log'"
  done
}

testAnUnknownNameGivesOneClearLine() {
  in_dns_ns '
    KV_URL=http://nosuch:8081 ./kvstore get k >"${dns}/out" 2>&1
    echo "$?" >"${dns}/status"
  ' || return
  assertEquals 'exit status: a network error' 3 "$(cat "${dns}/status")"
  assertEquals "one line: $(cat "${dns}/out")" 1 "$(wc -l <"${dns}/out")"
  assertContains 'it names the host' "$(cat "${dns}/out")" 'resolve nosuch: '
  assertContains 'and says why' "$(cat "${dns}/out")" \
    'no such name in /etc/hosts or DNS (NXDOMAIN)'
  assertTrue 'each search domain was asked, then the name itself' \
    "[ \"\$(grep -c ' 1$' '${dns}/dns.log')\" = 4 ]"
}
