#!/bin/bash
# kvstore's benchmarks: `make bench` builds ./kvstore, bench/lag and
# bench/load, then runs this. Each scenario is one script, run in order (a
# later one may use an earlier one's figures); their sections and the
# machine's description make bench/RESULTS.md, and a summary is printed at
# the end.
#   bench/run.sh [SCENARIO...]   default: every scenario below
# Servers listen on 127.0.0.1 only, are started and stopped by PID, and keep
# their data in a temporary directory removed at the end. Figures are set
# against the issue's targets (met or not met), but a benchmark never
# fails on a slow figure: only a scenario that could not run fails.
set -u
cd "$(dirname "$0")/.." || exit 1
. bench/lib.sh

# Scenario scripts, in order: bench/NAME.sh writes NAME.{env,md,txt}.
# put uses get's figure, conns get's, lag put's, resync store's file.
# scale (make bench-scale) is not in the list: it takes minutes and a
# gigabyte of disk, and keeps its section in bench/SCALE.md.
SCENARIOS=(get get_large put_throughput fsync_redis repl_lag conns store resync)
[ "$#" -gt 0 ] && SCENARIOS=("$@")
SCENARIO_TIMEOUT=${BENCH_SCENARIO_TIMEOUT:-180}

bench_need wrk
bench_need curl
bench_need timeout coreutils
if [ "$(nproc)" -ge 2 ]; then
  bench_need taskset util-linux
fi
[ -x "${KVSTORE}" ] || bench_die "${KVSTORE} missing: run make first"
for tool in lag load; do
  [ -x "bench/${tool}" ] || bench_die "bench/${tool} missing: run make bench"
done

bench_setup
started=$(date -u '+%Y-%m-%d %H:%M:%S UTC')
# Other work on the machine skews every figure: wait a little for it to
# calm down (BENCH_IDLE_WAIT seconds at most), then say how busy it was.
busy_before=$(cpu_busy 2)
waited=0
while [ "${busy_before}" -gt 10 ] && [ "${waited}" -lt "${BENCH_IDLE_WAIT:-30}" ]; do
  bench_log "CPUs ${busy_before}% busy with other work; waiting for them to calm down"
  sleep 3
  waited=$((waited + 5))
  busy_before=$(cpu_busy 2)
done
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
bench_log "CPUs ${busy_before}% busy before the run (load average ${load_before})"
if [ "${busy_before}" -gt 10 ]; then
  BENCH_NAME=bench bench_note "the machine was ${busy_before}% busy with other work just before the run (load average ${load_before}): figures are lower and noisier than on an idle machine"
fi
bench_log "scratch directory ${BENCH_TMP}; ${#SCENARIOS[@]} scenarios: ${SCENARIOS[*]}"
if [ "${#SERVER_PIN[@]}" -gt 0 ]; then
  bench_log "servers pinned with '${SERVER_PIN[*]}', wrk and bench/lag with '${CLIENT_PIN[*]}'"
else
  bench_log "one CPU (or no taskset): nothing pinned"
fi

failed=()
for s in "${SCENARIOS[@]}"; do
  [ -f "bench/${s}.sh" ] || bench_die "no scenario bench/${s}.sh"
  bench_log "== scenario ${s}"
  if ! timeout "${SCENARIO_TIMEOUT}" bash "bench/${s}.sh"; then
    failed+=("${s}")
    BENCH_NAME=${s} bench_note "scenario ${s} failed or timed out; its figures are missing or partial"
  fi
done

# Busy afterwards too: other work that began during the run shows here.
busy_after=$(cpu_busy 2)
if [ "${busy_after}" -gt 10 ]; then
  BENCH_NAME=bench bench_note "the machine was ${busy_after}% busy with other work in the 2 s after the run: some figures were probably taken while other work ran"
fi

# ---- RESULTS.md ----

cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
commit=$(git describe --always --dirty 2>/dev/null || echo unknown)
size=$(wc -c <"${KVSTORE}" | tr -d ' ')
wrkv=$(wrk -v 2>&1 | head -n 1 | awk '{ print $2 }')
fs=$(df -PT "${BENCH_TMP}" 2>/dev/null | awk 'NR == 2 { print $2 }')
pinning="not pinned (one CPU or no taskset)"
if [ "${#SERVER_PIN[@]}" -gt 0 ]; then
  pinning="servers: \`${SERVER_PIN[*]}\` (primary and replicas alike unless BENCH_REPLICA_CPUS says otherwise), wrk and bench/lag: \`${CLIENT_PIN[*]}\`"
fi
{
  echo '# kvstore benchmark results'
  echo
  echo 'Written by `make bench` (bench/run.sh); every run replaces this file.'
  echo
  echo '| | |'
  echo '|---|---|'
  echo "| date | ${started} |"
  echo "| CPU | ${cpu:-unknown}, $(nproc) cores |"
  echo "| memory | $(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo) |"
  echo "| kernel | $(uname -sr) |"
  echo "| kvstore | ${size} bytes, commit ${commit} |"
  echo "| wrk | ${wrkv} |"
  echo "| data dirs | ${fs:-?} file system, under a temporary directory |"
  echo "| pinning | ${pinning} |"
  echo "| other load | CPUs ${busy_before}% busy in the 2 s before the run, ${busy_after}% in the 2 s after; load average ${load_before} before, $(cut -d' ' -f1-3 /proc/loadavg) after |"
  echo
  echo '## Targets'
  echo
  echo "The issue's targets, each judged in its scenario's section below."
  echo
  echo '| target | figure | aim | verdict | scenario |'
  echo '|---|---:|---|---|---|'
  cat "${BENCH_OUT}/targets.md" 2>/dev/null
  echo
  for s in "${SCENARIOS[@]}"; do
    name=$(sed -n 's/^bench_scenario //p' "bench/${s}.sh" | head -n 1)
    if [ -s "${BENCH_OUT}/${name}.md" ]; then
      cat "${BENCH_OUT}/${name}.md"
    else
      echo "## ${s}"
      echo
      echo "No figures: the scenario failed."
    fi
    echo
  done
  # The instruction counts are make profile's, kept in their own file
  # (this one is rewritten by every run); its history table is copied.
  if [ -f bench/PROFILE.md ]; then
    echo '## Instructions per request (make profile)'
    echo
    sed -n '/^<!-- history -->$/,/^<!-- end history -->$/p' bench/PROFILE.md |
      grep -v '^<!--'
    echo
    echo 'Details, and how they are counted: bench/PROFILE.md.'
    echo
  fi
  # make bench-scale's section (it takes minutes and a gigabyte): copied
  # from its own file, as it was last measured.
  if [ -f bench/SCALE.md ]; then
    cat bench/SCALE.md
    echo
  fi
  echo '## Notes from this run'
  echo
  if [ -s "${BENCH_OUT}/notes.txt" ]; then
    sed 's/^/- /' "${BENCH_OUT}/notes.txt"
  else
    echo '- Nothing odd: no error answers, no socket errors, no warnings in the servers'"'"' logs.'
  fi
  echo
  cat bench/HOW-TO-READ.md
} >bench/RESULTS.md

# ---- summary ----

echo
echo "kvstore bench, ${started}: ${cpu:-unknown CPU}, $(nproc) cores, commit ${commit}"
for s in "${SCENARIOS[@]}"; do
  name=$(sed -n 's/^bench_scenario //p' "bench/${s}.sh" | head -n 1)
  [ -s "${BENCH_OUT}/${name}.txt" ] && sed 's/^/  /' "${BENCH_OUT}/${name}.txt"
done
if [ -s "${BENCH_OUT}/targets.md" ]; then
  echo "targets:"
  awk -F' [|] ' '{ printf "  %-9s %s: %s (aim %s)\n", $4, substr($1, 3), $2, $3 }' \
    "${BENCH_OUT}/targets.md"
fi
if [ -s "${BENCH_OUT}/notes.txt" ]; then
  echo "notes:"
  sed 's/^/  - /' "${BENCH_OUT}/notes.txt"
fi
echo "written: bench/RESULTS.md ($(($(date +%s) - BENCH_T0)) s)"
[ "${#failed[@]}" -eq 0 ] || exit 1
