#!/usr/bin/env bash
# Installs the system tools the test suite drives as real peers (netcat-openbsd, socat,
# util-linux's `script` for a pseudo-terminal). Does nothing when they are already present.
set -u
need=()
command -v nc >/dev/null 2>&1 || need+=(netcat-openbsd)
command -v socat >/dev/null 2>&1 || need+=(socat)
command -v script >/dev/null 2>&1 || need+=(bsdutils)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "test-tools: missing ${need[*]}; install them (Debian: apt-get install ${need[*]})" >&2
  exit 1
fi
echo "test-tools: installing ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null && apt-get install -y -qq "${need[@]}" >/dev/null
