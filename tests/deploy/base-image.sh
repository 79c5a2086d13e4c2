#!/bin/sh
# Make the Dockerfile's build-stage base image when it is missing, for
# machines that cannot pull images: debootstrap Debian 12 (minbase) from the
# mirror this machine's apt already uses, and import it under exactly the tag
# the Dockerfile names. The image is left in place as a cache for later runs.
# Usage: tests/deploy/base-image.sh [DOCKERFILE]   (as root; needs docker)
set -eu
dockerfile=${1:-Dockerfile}
tag=$(sed -n 's/^FROM[[:space:]]\{1,\}\([^[:space:]]\{1,\}\)[[:space:]]\{1,\}[Aa][Ss][[:space:]]\{1,\}build.*/\1/p' \
    "${dockerfile}" | head -n 1)
if [ -z "${tag}" ]; then
  echo "base-image: no 'FROM <image> AS build' line in ${dockerfile}" >&2
  exit 2
fi
if docker image inspect "${tag}" >/dev/null 2>&1; then
  echo "base-image: ${tag} present"
  exit 0
fi
# bookworm's URI from the apt sources: one-line .list entries or deb822
# .sources stanzas, whichever this machine has. The first one that serves the
# suite "bookworm" itself (not -security or -updates) wins.
mirror=$(
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -r "${f}" ] || continue
    awk '$1 == "deb" { i = 2; if ($2 ~ /^\[/) while ($i !~ /\]$/) i++;
        if ($2 ~ /^\[/) i++; if ($(i + 1) == "bookworm") print $i }' "${f}"
  done
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -r "${f}" ] || continue
    awk 'function flush() { if (deb && uri != "" && suites ~ / bookworm /)
             print uri; deb = 0; uri = ""; suites = "" }
         /^[[:space:]]*$/ { flush(); next }
         /^Types:/ { deb = ($0 ~ /[[:space:]]deb([[:space:]]|$)/) }
         /^URIs:/ { uri = $2 }
         /^Suites:/ { suites = " " substr($0, 8) " " }
         END { flush() }' "${f}"
  done | head -n 1
)
if [ -z "${mirror}" ]; then
  echo "base-image: no bookworm mirror in /etc/apt/sources.list*" >&2
  exit 1
fi
command -v debootstrap >/dev/null 2>&1 || {
  echo "base-image: installing debootstrap"
  apt-get install -y -qq debootstrap >/dev/null
}
root=$(mktemp -d /tmp/kvstore-base.XXXXXX)
trap 'rm -rf "${root}"' EXIT INT TERM
echo "base-image: debootstrap bookworm (minbase) from ${mirror} for ${tag}"
debootstrap --variant=minbase bookworm "${root}" "${mirror}" \
    >"${root}.log" 2>&1 || {
  tail -n 20 "${root}.log" >&2
  rm -f "${root}.log"
  exit 1
}
rm -f "${root}.log"
rm -rf "${root}"/var/cache/apt/archives/*.deb "${root}"/var/lib/apt/lists/*
tar -C "${root}" -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["bash"]' - "${tag}" >/dev/null
echo "base-image: imported ${tag}"
