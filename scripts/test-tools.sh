#!/usr/bin/env bash
# Installs the system tools the test suite drives as real peers (netcat-openbsd, socat,
# util-linux's `script` for a pseudo-terminal, curl for the HTTP door) and, when it can, Debian's
# chromium for the web page's browser test (that test skips itself when chromium is missing).
# Does nothing when they are already present.
set -u
need=()
command -v nc >/dev/null 2>&1 || need+=(netcat-openbsd)
command -v socat >/dev/null 2>&1 || need+=(socat)
command -v script >/dev/null 2>&1 || need+=(bsdutils)
command -v curl >/dev/null 2>&1 || need+=(curl)
want_browser=0
[ -x /usr/bin/chromium ] || want_browser=1
[ ${#need[@]} -eq 0 ] && [ $want_browser -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  if [ ${#need[@]} -gt 0 ]; then
    echo "test-tools: missing ${need[*]}; install them (Debian: apt-get install ${need[*]})" >&2
    exit 1
  fi
  exit 0 # only chromium is missing: the browser test skips
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null || true
if [ ${#need[@]} -gt 0 ]; then
  echo "test-tools: installing ${need[*]}" >&2
  apt-get install -y -qq "${need[@]}" >/dev/null || exit 1
fi
if [ $want_browser -eq 1 ]; then
  echo "test-tools: installing chromium (for the web page's browser test)" >&2
  apt-get install -y -qq --no-install-recommends chromium >/dev/null 2>&1 || echo "test-tools: chromium could not be installed; the browser test will skip" >&2
fi
exit 0
