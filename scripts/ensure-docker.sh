#!/usr/bin/env bash
# Makes sure a Docker daemon answers on this machine (Debian bookworm, as root).
# Idempotent: installs docker.io and debootstrap only when missing, starts dockerd
# only when `docker info` does not answer, then waits (bounded) until it does.
# Works non-interactively (CI=true, no stdin).
#
# Env: BERTH_DOCKER_WAIT_SECONDS (default 60), BERTH_DOCKERD_LOG (default /var/log/berth-dockerd.log).
set -euo pipefail

wait_seconds="${BERTH_DOCKER_WAIT_SECONDS:-60}"
dockerd_log="${BERTH_DOCKERD_LOG:-/var/log/berth-dockerd.log}"

log() { echo "ensure-docker: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# `docker info` can itself hang on a wedged socket: bound it.
docker_answers() { timeout 10 docker info >/dev/null 2>&1; }
# pgrep (procps) is not on every minimal machine; the pid file and pidof (sysvinit-utils, essential) are.
dockerd_running() {
  if [ -f /var/run/docker.pid ] && kill -0 "$(cat /var/run/docker.pid 2>/dev/null)" 2>/dev/null; then return 0; fi
  command -v pidof >/dev/null 2>&1 && pidof dockerd >/dev/null 2>&1
}

if command -v docker >/dev/null 2>&1 && docker_answers; then
  log "docker daemon already answers"
  exit 0
fi

[ "$(id -u)" = 0 ] || die "not root: cannot install or start dockerd (start Docker yourself, or run as root)"

# A docker client alone is not enough: the daemon (dockerd) must be there too.
missing=()
command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
command -v docker >/dev/null 2>&1 || missing+=(docker.io)
command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
if [ "${#missing[@]}" -gt 0 ]; then
  # Deduplicate (docker.io may be listed twice).
  mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
  command -v apt-get >/dev/null 2>&1 || die "missing ${missing[*]} and apt-get is not available to install them"
  log "installing ${missing[*]} with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq </dev/null || die "apt-get update failed"
  apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null \
    || die "apt-get install ${missing[*]} failed"
fi

command -v dockerd >/dev/null 2>&1 || die "dockerd not found after install"

# Start dockerd only if none is running already (it may just be slow to answer).
if ! dockerd_running; then
  # A stale pid file from a killed daemon makes dockerd refuse to start.
  if [ -f /var/run/docker.pid ] && ! kill -0 "$(cat /var/run/docker.pid 2>/dev/null)" 2>/dev/null; then
    rm -f /var/run/docker.pid
  fi
  mkdir -p "$(dirname "$dockerd_log")"
  log "starting dockerd (log: $dockerd_log)"
  # setsid + nohup + no inherited stdio: the daemon survives this script and its session.
  setsid nohup dockerd >>"$dockerd_log" 2>&1 </dev/null &
  disown || true
else
  log "dockerd is running but not answering yet; waiting"
fi

deadline=$((SECONDS + wait_seconds))
until docker_answers; do
  if [ "$SECONDS" -ge "$deadline" ]; then
    log "last lines of $dockerd_log:"
    tail -n 20 "$dockerd_log" >&2 2>/dev/null || true
    die "docker daemon did not answer within ${wait_seconds}s"
  fi
  sleep 1
done
log "docker daemon answers ($(docker info --format '{{.ServerVersion}} {{.Driver}} {{.DockerRootDir}}' 2>/dev/null))"
