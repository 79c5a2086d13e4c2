#!/bin/bash
# `make run`: a primary on 8081 and replicas on 8082 and 8083, wired
# together, their logs in this terminal; Ctrl-C stops all three.
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
node primary ROLE=primary PORT=8081 DATA_DIR=./data/primary \
  REPLICA_URLS=http://127.0.0.1:8082,http://127.0.0.1:8083
for port in 8082 8083; do
  node "replica-${port}" ROLE=replica PORT="${port}" \
    DATA_DIR="./data/replica-${port}" PRIMARY_URL=http://127.0.0.1:8081 \
    ADVERTISE_URL="http://127.0.0.1:${port}"
done
echo "primary http://localhost:8081, replicas http://localhost:8082 and :8083; Ctrl-C stops them" >&2
wait
