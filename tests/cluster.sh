#!/bin/bash
# `make run`: a primary on 8081 and replicas on 8082 and 8083, wired
# together, their logs in this terminal; Ctrl-C stops all three.
# KV_RUN_PORT (the primary's, 8081; the replicas take the next two) and
# KV_RUN_DATA (./data) move it, so the test suite can run it beside you.
set -u
cd "$(dirname "$0")/.." || exit 1
pids=()
node() {
  local name=$1
  shift
  # The prefixer ignores Ctrl-C, so the node's shutdown lines still show.
  env "$@" ./kvstore 2> >(trap '' INT; exec sed -u "s/^/${name} /" >&2) &
  pids+=("$!")
}
stop() {
  trap - INT TERM
  kill "${pids[@]}" 2>/dev/null
  wait
}
trap stop INT TERM
p=${KV_RUN_PORT:-8081}
data=${KV_RUN_DATA:-./data}
node primary ROLE=primary PORT="${p}" DATA_DIR="${data}/primary" \
  REPLICA_URLS="http://127.0.0.1:$((p + 1)),http://127.0.0.1:$((p + 2))"
for port in $((p + 1)) $((p + 2)); do
  node "replica-${port}" ROLE=replica PORT="${port}" \
    DATA_DIR="${data}/replica-${port}" PRIMARY_URL="http://127.0.0.1:${p}" \
    ADVERTISE_URL="http://127.0.0.1:${port}"
done
echo "primary http://localhost:${p}, replicas http://localhost:$((p + 1)) and :$((p + 2)); Ctrl-C stops them" >&2
wait
