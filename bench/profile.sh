#!/bin/bash
# make profile: instructions per GET and per PUT, counted by callgrind,
# into bench/PROFILE.md. Instruction counts hardly move with the machine's
# load, where timings do: a change of a few percent shows, and the top
# functions say what dominates. Not a scenario of bench/run.sh: it runs
# the server under valgrind, 20-50 times slower than it runs.
#
# Three runs of bench/kvstore-prof (the server at -O2 -g), each under
# valgrind --tool=callgrind from start to a clean exit on SIGTERM, each on
# a copy of the same store, and identical up to the requests that differ:
#   base  start, wait for /health, open and close PROFILE_CONNS keep-alive
#         connections without a request, stop
#   get   the same, with PROFILE_REQUESTS GETs of 100-byte values, the
#         store's keys in turn (the cost of one key's probe in the hash
#         table, which its random seed decides, would not be typical)
#   put   the same, with PROFILE_REQUESTS PUTs of 100 bytes to new keys
# Per request = (the run's total - base's total) / PROFILE_REQUESTS: start-
# up, accepting and closing the connections, idle ticks and shutdown
# cancel out. The event loop's own turns are counted: with one connection
# (the default) every request pays a whole turn (poll, the tick, the scans
# over the connection table); with more connections that share a turn, a
# request costs less. FSYNC=no: the flusher thread does not run; what a
# disk flush costs is the kernel's, which callgrind does not see anyway.
#
# The store is made beforehand, natively, and holds PROFILE_PRELOAD keys
# (25,000): just past a bucket doubling, so that 20,000 more keys do not
# reach the next (at 3/4 of 65,536 buckets). A compaction copies the store
# in slices of about 1 ms, so under valgrind its cost depends on the
# machine's speed; the PUT run must not contain one. It is checked: a
# compaction during a run is reported.
#
# Syscalls come from callgrind's --collect-systime: kernel entries as
# valgrind sees them. clock_gettime is counted apart: natively it is a
# vDSO call that does not enter the kernel, but valgrind hides the vDSO.
set -u
cd "$(dirname "$0")/.." || exit 1
. bench/lib.sh
bench_need valgrind
bench_setup
BENCH_NAME=profile

n=${PROFILE_REQUESTS:-20000}
preload=${PROFILE_PRELOAD:-25000}
conns=${PROFILE_CONNS:-1}
top=${PROFILE_TOP:-10}
bin=bench/kvstore-prof
for f in "${bin}" bench/load; do
  [ -x "${f}" ] || bench_die "${f} missing: run make profile"
done

# prof_run NAME COMMAND...: a server under callgrind, COMMAND (bench/load
# arguments after the address) against it, then a clean stop; the
# profile is $BENCH_OUT/NAME.cg. Sets TOTAL to its "Ir sysCount" totals.
prof_run() {
  local name=$1 port pid
  shift
  port=$(next_port)
  rm -rf "${BENCH_TMP:?}/${name}"
  mkdir -p "${BENCH_TMP}/${name}"
  cp "${seed}" "${BENCH_TMP}/${name}/kvstore.db"
  env PORT="${port}" DATA_DIR="${BENCH_TMP}/${name}" ROLE=primary \
    RECOVER_WAIT_MS=0 FSYNC=no valgrind --tool=callgrind \
    --collect-systime=yes --callgrind-out-file="${BENCH_OUT}/${name}.cg" \
    "${bin}" 2>"${BENCH_TMP}/${name}.log" &
  pid=$!
  node_track "${name}" "${pid}"
  timeout 70 bench/load health "127.0.0.1:${port}" 60 >/dev/null ||
    bench_die "${name}: the server under valgrind did not start: $(tail -n 5 "${BENCH_TMP}/${name}.log")"
  bench_log "profile: ${name}: bench/load $1 127.0.0.1:${port} ${*:2}"
  timeout 600 bench/load "$1" "127.0.0.1:${port}" "${@:2}" \
    >"${BENCH_OUT}/${name}.out" ||
    bench_die "${name}: bench/load failed: $(cat "${BENCH_OUT}/${name}.out")"
  bench_log "profile: ${name}: $(cat "${BENCH_OUT}/${name}.out")"
  compactions "127.0.0.1:${port}" >"${BENCH_OUT}/${name}.compactions"
  node_stop "${name}"
  TOTAL=$(sed -n 's/^totals: //p' "${BENCH_OUT}/${name}.cg")
  [ -n "${TOTAL}" ] || bench_die "${name}: no callgrind totals"
}

# fn_rows FILE [ANNOTATE_OPTION...]: the run's top functions by
# instructions, as table rows "| share | Ir | function |": kvstore's as
# file:function, libc's (no debug info) marked so, and an address that
# callgrind could not name (musl's memcpy has two names) named by nm.
fn_rows() {
  local f=$1
  shift
  callgrind_annotate --auto=no --threshold=100 --show=Ir "$@" "${f}" \
    2>/dev/null |
    sed -n '/file:function$/,$p' | grep -E '^ *[0-9]' |
    sed -E 's/^ *([0-9,]+) \( *([0-9.]+%)\) +([^ ]+).*/| \2 | \1 | `\3` |/;
      s/`\?\?\?:([^`]*)`/`\1` (libc)/; s/`[^`]*\/([^/`]+:)/`\1/' |
    while IFS= read -r line; do
      if [[ ${line} =~ \`0x0*([0-9a-f]+)\` ]]; then
        line=${line/${BASH_REMATCH[0]}/\`$(nm "${bin}" |
          awk -v a="${BASH_REMATCH[1]}" '$1 ~ "^0*" a "$" && $3 !~ /^_/ { print $3; exit }')\`}
      fi
      printf '%s\n' "${line}"
    done
}

# self_rows FILE: the top functions by their own instructions.
self_rows() {
  fn_rows "$1" | head -n "${top}"
}

# incl_rows FILE: kvstore's top functions by inclusive instructions (with
# all they call), the event loop and what encloses it left out; five
# more than self_rows, because the first few enclose every request.
incl_rows() {
  fn_rows "$1" --inclusive=yes | grep -E '`[a-z]+\.c:' |
    grep -vE ':(main|http_run)`' | awk -F' [|] ' '!seen[$3]++' |
    head -n $((top + 5))
}

# gettime FILE: the run's clock_gettime calls (sysCount of that function).
gettime() {
  callgrind_annotate --auto=no --threshold=100 --show=sysCount \
    --sort=sysCount "$1" 2>/dev/null | grep -E ':clock_gettime ' | awk '{ gsub(",", "", $1); print $1 + 0 }' |
    head -n 1
}

# per NUMBER_RUN NUMBER_BASE: (run - base) / n, one decimal.
per() {
  awk -v a="$1" -v b="$2" -v n="${n}" 'BEGIN { printf "%.1f\n", (a - b) / n }'
}

# compactions ADDR: how many compactions the server has finished.
compactions() {
  http_get "http://$1/metrics" | sed -n 's/^kvstore_compactions_total //p'
}

# The store every run starts from, made natively (and left to finish its
# compactions): PROFILE_PRELOAD keys k0.. of 100 bytes.
seed=${BENCH_TMP}/seed.db
port=$(next_port)
KVSTORE=${bin} node_start prof-seed "${port}" ROLE=primary RECOVER_WAIT_MS=0 \
  FSYNC=no
wait_ready "http://127.0.0.1:${port}" 20
bench_log "profile: preloading ${preload} keys (natively)"
run_tool "${BENCH_OUT}/seed.out" load put "127.0.0.1:${port}" "${preload}" 8 \
  32 100 k || bench_die "preloading failed: $(cat "${BENCH_OUT}/seed.out")"
settle "http://127.0.0.1:${port}" >/dev/null
NODE_SAVE=${seed} node_stop prof-seed

bench_log "profile: ${n} requests over ${conns} connection(s), each run under callgrind"
prof_run base get 0 "${conns}" 1 k "${preload}"
base=${TOTAL}
base_gt=$(gettime "${BENCH_OUT}/base.cg")
prof_run get get "${n}" "${conns}" 1 k "${preload}"
get=${TOTAL}
prof_run put put "${n}" "${conns}" 1 100 p
put=${TOTAL}

# The PUT run's figure is only stable without a compaction (see above).
for run in get put; do
  [ "$(cat "${BENCH_OUT}/${run}.compactions")" = \
    "$(cat "${BENCH_OUT}/base.compactions")" ] ||
    bench_note "the store compacted during the ${run} run ($(cat "${BENCH_OUT}/${run}.compactions") compactions, base $(cat "${BENCH_OUT}/base.compactions")): its figure includes that work and varies between runs; adjust PROFILE_PRELOAD"
done

ir() { cut -d' ' -f1 <<<"$1"; }
sc() { cut -d' ' -f2 <<<"$1"; }
get_ir=$(per "$(ir "${get}")" "$(ir "${base}")")
put_ir=$(per "$(ir "${put}")" "$(ir "${base}")")
get_gt=$(per "$(gettime "${BENCH_OUT}/get.cg")" "${base_gt}")
put_gt=$(per "$(gettime "${BENCH_OUT}/put.cg")" "${base_gt}")
get_sc=$(awk -v a="$(per "$(sc "${get}")" "$(sc "${base}")")" -v g="${get_gt}" \
  'BEGIN { printf "%.1f\n", a - g }')
put_sc=$(awk -v a="$(per "$(sc "${put}")" "$(sc "${base}")")" -v g="${put_gt}" \
  'BEGIN { printf "%.1f\n", a - g }')

# The server's sources, not the repository: a commit that changes only
# bench/ or the docs profiles the same server and keeps its row.
sources=(kvstore.c http.c http.h repl.c repl.h store.c store.h)
commit=$(git log -1 --format=%h -- "${sources[@]}" 2>/dev/null)
git diff --quiet HEAD -- "${sources[@]}" 2>/dev/null || commit=${commit:-unknown}-dirty
date=$(date -u '+%Y-%m-%d')
row="| ${date} | ${commit} | ${conns} | ${get_ir} | ${put_ir} | ${get_sc} | ${put_sc} | ${get_gt} | ${put_gt} |"
# One row per commit and connection count: a second run replaces it.
old_rows=$(sed -n '/^<!-- history -->$/,/^<!-- end history -->$/p' \
  bench/PROFILE.md 2>/dev/null | grep -E '^\| [0-9]{4}-' |
  awk -F' [|] ' -v c="${commit}" -v k="${conns}" '!($2 == c && $3 == k)')

{
  echo '# Instructions per request (make profile)'
  echo
  echo 'Written by `make profile` (bench/profile.sh). The history keeps one row per'
  echo 'version of the server'"'"'s sources (the last commit that changed them,'
  echo '"-dirty" for uncommitted changes) and connection count; the rest is the'
  echo 'latest run. `make bench` copies the history into bench/RESULTS.md.'
  echo
  echo '<!-- history -->'
  echo '| date | server sources at | connections | instructions per GET | per PUT | syscalls per GET | per PUT | clock_gettime per GET | per PUT |'
  echo '|---|---|---:|---:|---:|---:|---:|---:|---:|'
  [ -z "${old_rows}" ] || printf '%s\n' "${old_rows}"
  echo "${row}"
  echo '<!-- end history -->'
  echo
  echo "## Latest run: ${date}, server sources at ${commit}"
  echo
  echo "\`${bin}\` built with \`$(sed -n 's/^PROFILE_CC *= *//p' Makefile) $(sed -n 's/^PROFILE_CFLAGS *= *//p' Makefile)\` (static, musl), \`FSYNC=no\`, under $(valgrind --version) \`--tool=callgrind --collect-systime=yes\`, on a store of ${preload} keys. bench/load sends ${n} requests, one at a time on each of ${conns} keep-alive connection(s): GETs of the store's 100-byte values, each key in turn, then (in another run) PUTs of 100-byte values to new keys."
  echo
  echo '| run | instructions (Ir) | syscalls | of which clock_gettime |'
  echo '|---|---:|---:|---:|'
  echo "| base: start, connections opened and closed, stop | $(ir "${base}") | $(sc "${base}") | ${base_gt} |"
  echo "| get: the same + ${n} GETs | $(ir "${get}") | $(sc "${get}") | $(gettime "${BENCH_OUT}/get.cg") |"
  echo "| put: the same + ${n} PUTs | $(ir "${put}") | $(sc "${put}") | $(gettime "${BENCH_OUT}/put.cg") |"
  echo
  echo "Per GET: **${get_ir}** instructions, ${get_sc} syscalls and ${get_gt} clock_gettime calls; per PUT: **${put_ir}** instructions, ${put_sc} syscalls and ${put_gt} clock_gettime calls."
  for run in get put; do
    echo
    echo "### Top ${top} functions of the ${run} run, by their own instructions"
    echo
    echo '| share of the run | Ir | function |'
    echo '|---:|---:|---|'
    self_rows "${BENCH_OUT}/${run}.cg"
    echo
    echo "### Top $((top + 5)) kvstore functions of the ${run} run, with what they call"
    echo
    echo '| share of the run | Ir | function |'
    echo '|---:|---:|---|'
    incl_rows "${BENCH_OUT}/${run}.cg"
  done
  echo
  echo '## How the figures are made'
  echo
  echo '- Each run is one server process under callgrind, from its start to its'
  echo '  clean exit after SIGTERM, on a copy of the same store (made natively'
  echo '  beforehand); the three differ only in the requests sent. Per request ='
  echo '  (run total - base total) / requests, so what does not scale with the'
  echo '  requests (start-up, accepting and closing the connections, shutdown)'
  echo '  cancels. Repeated runs agree within about 0.5%. What still moves: each'
  echo '  run makes its store afresh, with a random hash seed and replication id'
  echo '  (a GET formats that id, and printf pads some bytes), and when the'
  echo '  client is slow to send the next request (a busy machine) the idle'
  echo '  server takes an extra turn of its loop after 10 ms.'
  echo "- The store holds ${preload} keys, just past a doubling of its buckets,"
  echo '  so that the PUTs to new keys do not reach the next one: a compaction'
  echo '  works in slices of about 1 ms, so under valgrind its cost would depend'
  echo '  on the speed of the machine. A run that compacts anyway is reported.'
  echo '- The requests go one at a time per connection, so every request pays'
  echo '  one turn of the event loop (poll, the tick, the scans of the'
  echo '  connection table). That is the case of one client; with many busy'
  echo '  connections turns are shared (PROFILE_CONNS=64 shows it).'
  echo '- Instructions are user-space only: what the kernel does inside a'
  echo '  syscall is not counted, hence the syscall columns. clock_gettime is'
  echo '  counted apart because natively it is a vDSO call that does not enter'
  echo '  the kernel (under valgrind it does).'
  echo "- The function lists are \`callgrind_annotate --threshold=100\` of the"
  echo '  whole run (start-up and the base are well under 1% of it).'
  echo '  `BENCH_KEEP=1 make profile` keeps the callgrind files, for'
  echo '  `callgrind_annotate --inclusive=yes` or kcachegrind.'
  echo "- Knobs: PROFILE_REQUESTS (${n}), PROFILE_CONNS (${conns}), PROFILE_TOP (${top}), PROFILE_PRELOAD (${preload}), and \`make profile PROFILE_CFLAGS=...\`."
  if [ -s "${BENCH_OUT}/notes.txt" ]; then
    echo
    echo '## Notes from this run'
    echo
    sed 's/^/- /' "${BENCH_OUT}/notes.txt"
  fi
} >bench/PROFILE.md.new
mv bench/PROFILE.md.new bench/PROFILE.md

echo
echo "kvstore profile, server sources at ${commit}, ${n} requests over ${conns} connection(s):"
echo "  GET: ${get_ir} instructions, ${get_sc} syscalls + ${get_gt} clock_gettime per request"
echo "  PUT: ${put_ir} instructions, ${put_sc} syscalls + ${put_gt} clock_gettime per request"
for run in get put; do
  echo "  top functions of the ${run} run (own instructions):"
  self_rows "${BENCH_OUT}/${run}.cg" | awk -F' [|] ' '{ printf "    %7s %15s  %s\n", substr($1, 3), $2, $3 }' | tr -d '`|'
done
[ ! -s "${BENCH_OUT}/notes.txt" ] || sed 's/^/  note: /' "${BENCH_OUT}/notes.txt"
echo "written: bench/PROFILE.md"
