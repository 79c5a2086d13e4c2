#!/bin/sh
# Make sure each named command exists: install its Debian package when
# running as root, or name the package in one line and fail otherwise.
# Usage: tests/need.sh COMMAND...
status=0
updated=
for cmd in "$@"; do
  command -v "${cmd}" >/dev/null 2>&1 && continue
  case "${cmd}" in
    musl-gcc) pkg=musl-tools ;;
    shunit2) pkg=shunit2 ;;
    clang) pkg=clang ;;
    cc) pkg=gcc ;;
    *) pkg=${cmd} ;;
  esac
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "kvstore: installing ${pkg} (for ${cmd})" >&2
    if [ -z "${updated}" ]; then
      apt-get update -qq >/dev/null && updated=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${pkg}" \
      >/dev/null && continue
  fi
  echo "kvstore: ${cmd} not found; install the Debian package ${pkg} (apt-get install ${pkg})" >&2
  status=1
done
exit "${status}"
