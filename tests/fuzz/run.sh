#!/bin/sh
# make fuzz: run each libFuzzer target for SECONDS from its seed corpus in
# tests/fuzz/corpus (copied, so the committed seeds never change), as many
# at a time as there are CPUs (FUZZ_JOBS to choose). A crash, a hang (over
# 10 s on one input) or a sanitizer report fails the run; the input is
# kept as tests/fuzz/crash-TARGET-*.
# Usage: tests/fuzz/run.sh SECONDS
set -u
cd "$(dirname "$0")" || exit 2
seconds=${1:-60}
jobs=${FUZZ_JOBS:-$(nproc 2>/dev/null || echo 1)}
targets='http repl store api json resolve'
work=$(mktemp -d)
trap 'rm -rf "${work}"' EXIT

# fuzz_one TARGET: one run, its output in ${work}/TARGET.log and its exit
# status in ${work}/TARGET.status.
fuzz_one() {
  mkdir -p "${work}/$1"
  cp corpus/"$1"/* "${work}/$1/"
  ./"fuzz_$1" -max_total_time="${seconds}" -timeout=10 \
    -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="crash-$1-" "${work}/$1" >"${work}/$1.log" 2>&1
  echo $? >"${work}/$1.status"
}

running=0
for target in ${targets}; do
  echo "fuzz: ${target} for ${seconds} s"
  fuzz_one "${target}" &
  running=$((running + 1))
  if [ "${running}" -ge "${jobs}" ]; then
    wait
    running=0
  fi
done
wait
status=0
for target in ${targets}; do
  if [ "$(cat "${work}/${target}.status" 2>/dev/null)" = 0 ]; then
    grep -E '^stat::number_of_executed_units|^Done' "${work}/${target}.log" |
      sed "s/^/fuzz: ${target}: /"
  else
    tail -n 40 "${work}/${target}.log"
    echo "fuzz: ${target}: FAILED (input kept as tests/fuzz/crash-${target}-*)"
    status=1
  fi
done
exit "${status}"
