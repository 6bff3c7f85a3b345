#!/usr/bin/env bash
# with-s3.sh CMD... — runs CMD (the test suite) with an S3 store in its environment, so the
# S3 suites run against a real one: S3_ENDPOINT, S3_BUCKET and AWS_* as start-s3.sh prints them.
#   - S3_ENDPOINT already set (any S3 store), or FERRY_S3=0: CMD runs as it is.
#   - A local Ceph RGW already running in FERRY_S3_DATA (default /tmp/ferry-s3-local): reused,
#     and left running (whoever started it stops it: scripts/s3-local/stop-s3.sh DIR).
#   - Otherwise, as root on Debian: start-s3.sh boots one (apt install ~25 s the first time,
#     boot ~8 s, restart ~5 s), CMD runs, and the RGW is stopped again (its data kept for the
#     next run's quick restart; stop-s3.sh DIR --purge removes it).
#   - Else: one line says why, and CMD runs with the S3 suites skipped.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
if [ -n "${S3_ENDPOINT:-}" ] || [ "${FERRY_S3:-}" = 0 ]; then exec "$@"; fi
DATA=${FERRY_S3_DATA:-/tmp/ferry-s3-local}

running() {
  local any=0 f
  for f in "$DATA"/pids/*.pid; do
    [ -e "$f" ] || return 1
    kill -0 "$(cat "$f")" 2>/dev/null || return 1
    any=1
  done
  [ "$any" = 1 ] && [ -f "$DATA/s3.env" ]
}

# A kept cluster that no longer starts (an OSD map lost to a killed run, say) is replaced by a new one, once.
fresh_start() {
  echo "s3-local: the RGW kept in $DATA did not start (see $DATA.log): making a new one there" >&2
  bash "$here/stop-s3.sh" "$DATA" --purge >/dev/null 2>&1
  mkdir -p "$DATA"
  bash "$here/start-s3.sh" "$DATA" >/dev/null 2>>"$DATA.log"
}

started=0
if running; then
  echo "s3-local: using the RGW already running in $DATA" >&2
elif [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  mkdir -p "$DATA"
  echo "s3-local: starting a local Ceph RGW in $DATA for the S3 suites (log: $DATA.log)" >&2
  if bash "$here/start-s3.sh" "$DATA" >/dev/null 2>"$DATA.log"; then
    started=1
  elif [ -e "$DATA/.initialized" ] && fresh_start; then
    started=1
  else
    echo "s3-local: the RGW did not start (see $DATA.log): the S3 suites are skipped" >&2
    exec "$@"
  fi
else
  echo "s3-local: no S3 store (needs root and apt to start a local RGW, or S3_ENDPOINT): the S3 suites are skipped" >&2
  exec "$@"
fi

stop_started() { if [ "$started" = 1 ]; then bash "$here/stop-s3.sh" "$DATA" 2>/dev/null; started=0; fi; }
trap 'stop_started; exit 130' INT TERM
set -a
# shellcheck disable=SC1091
. "$DATA/s3.env"
set +a
"$@"
rc=$?
stop_started
exit "$rc"
