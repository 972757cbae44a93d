#!/usr/bin/env bash
# Builds the default devcontainer base image `berth/base:bookworm` offline
# (Docker Hub is unreachable here): debootstrap a minimal Debian bookworm from the
# Debian mirror and `docker import` it. Skips when the image already exists.
#
# The image needs no Node of its own: the server bind-mounts the host's Node binary
# (glibc, libstdc++ and libgcc_s are in minbase). git + ca-certificates for the
# agent's git work over https, procps so `ps`/`kill` work inside the container.
#
# Env: BERTH_BASE_IMAGE (default berth/base:bookworm), BERTH_DEBIAN_MIRROR (default deb.debian.org),
#      BERTH_REBUILD=1 to rebuild even if the image exists.
set -euo pipefail

image="${BERTH_BASE_IMAGE:-berth/base:bookworm}"
mirror="${BERTH_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
packages="git,ca-certificates,procps"

log() { echo "build-images: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

command -v docker >/dev/null 2>&1 || die "docker not found (run scripts/ensure-docker.sh first)"
timeout 10 docker info >/dev/null 2>&1 || die "docker daemon does not answer (run scripts/ensure-docker.sh first)"

if [ "${BERTH_REBUILD:-}" != 1 ] && docker image inspect "$image" >/dev/null 2>&1; then
  log "$image already exists; skipping (BERTH_REBUILD=1 to rebuild)"
  exit 0
fi

command -v debootstrap >/dev/null 2>&1 || die "debootstrap not found (run scripts/ensure-docker.sh, it installs it)"
[ "$(id -u)" = 0 ] || die "debootstrap needs root"

workdir="$(mktemp -d "${TMPDIR:-/tmp}/berth-image.XXXXXX")"
rootfs="$workdir/rootfs"
bootstrap_log="$workdir/debootstrap.log"
# Remove the temp dir on every path (success, failure, Ctrl-C).
cleanup() { rm -rf --one-file-system "$workdir"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

log "debootstrap bookworm ($packages) into $rootfs"
if ! debootstrap --variant=minbase --include="$packages" bookworm "$rootfs" "$mirror" >"$bootstrap_log" 2>&1; then
  tail -n 30 "$bootstrap_log" >&2 || true
  die "debootstrap failed"
fi

# Slim the image: apt caches and lists are useless without network.
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs"/tmp/*

log "importing as $image"
tar -C "$rootfs" --numeric-owner -c . \
  | docker import --change 'CMD ["/bin/bash"]' --change 'ENV LANG=C.UTF-8' - "$image" >/dev/null \
  || die "docker import failed"

docker image inspect "$image" --format "build-images: built $image ({{.Size}} bytes)" >&2
