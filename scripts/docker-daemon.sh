#!/usr/bin/env bash
# Make sure a Docker daemon answers, for `sam local` (make sam-local, tests/sam/test_sam_local.py).
#
# - A daemon that already answers `docker info` is used as it is.
# - Otherwise, as root: install Debian's docker.io if dockerd is missing, then start dockerd
#   in the background (its log in $DOCKERD_LOG, default /tmp/durable-dockerd.log) and wait
#   until `docker info` answers (up to 60 s). No systemd is assumed: machines like CI's
#   have none running, so dockerd is started by hand and keeps running after this script.
# - Not root and no daemon: exit 3 with the reason (the tests skip on it).
set -euo pipefail

LOG="${DOCKERD_LOG:-/tmp/durable-dockerd.log}"

if docker info >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "docker-daemon: no Docker daemon answers, and starting one needs root" >&2
  exit 3
fi
if ! command -v dockerd >/dev/null 2>&1; then
  echo "==> installing docker.io (Debian's Docker engine) for sam local"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q docker.io >/dev/null 2>&1 ||
    { apt-get update -q >/dev/null && apt-get install -y -q docker.io >/dev/null; }
fi
# A client only (some images ship one without the engine) still needs Debian's engine.
command -v dockerd >/dev/null 2>&1 || { echo "docker-daemon: dockerd is missing" >&2; exit 1; }

if ! { command -v pgrep >/dev/null 2>&1 && pgrep -x dockerd >/dev/null 2>&1; }; then
  echo "==> starting dockerd (log: $LOG)"
  # setsid: its own session, so that it outlives the make or pytest that started it.
  setsid nohup dockerd >>"$LOG" 2>&1 </dev/null &
fi
for _ in $(seq 1 60); do
  if docker info >/dev/null 2>&1; then
    exit 0
  fi
  sleep 1
done
echo "docker-daemon: dockerd did not answer within 60 s; the end of $LOG:" >&2
tail -20 "$LOG" >&2 || true
exit 1
