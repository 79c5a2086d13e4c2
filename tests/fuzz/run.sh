#!/bin/sh
# make fuzz: run each libFuzzer target for SECONDS from its seed corpus in
# tests/fuzz/corpus (copied, so the committed seeds never change). A crash,
# a hang (over 10 s on one input) or a sanitizer report fails the run; the
# input is kept as tests/fuzz/crash-TARGET-*.
# Usage: tests/fuzz/run.sh SECONDS
set -u
cd "$(dirname "$0")" || exit 2
seconds=${1:-60}
work=$(mktemp -d)
trap 'rm -rf "${work}"' EXIT
status=0
for target in http repl store api json; do
  mkdir -p "${work}/${target}"
  cp corpus/"${target}"/* "${work}/${target}/"
  echo "fuzz: ${target} for ${seconds} s"
  if ./"fuzz_${target}" -max_total_time="${seconds}" -timeout=10 \
    -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="crash-${target}-" "${work}/${target}" \
    >"${work}/${target}.log" 2>&1; then
    grep -E '^stat::number_of_executed_units|^Done' "${work}/${target}.log" |
      sed "s/^/fuzz: ${target}: /"
  else
    tail -n 40 "${work}/${target}.log"
    echo "fuzz: ${target}: FAILED (input kept as tests/fuzz/crash-${target}-*)"
    status=1
  fi
done
exit "${status}"
