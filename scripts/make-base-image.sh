#!/usr/bin/env bash
# Make the local Debian 12 base image the tests and the demo build on: python3, pip, wget and
# ca-certificates. Reused when present. `docker pull debian:bookworm` when a registry answers,
# else debootstrap + docker import (no registry needed, about a minute).
#   ASCEND_BUILD_BASE_IMAGE   tag to make (default localhost/ascend-build-base:bookworm)
#   ASCEND_BUILD_MIRROR       Debian mirror for debootstrap (default: the host's apt mirror)
#   DOCKER                    docker client to use (default: docker)
# With --podman it also copies the image into podman's storage when podman is installed.
set -euo pipefail
tag="${ASCEND_BUILD_BASE_IMAGE:-localhost/ascend-build-base:bookworm}"
docker_bin="${DOCKER:-docker}"
packages="python3,python3-pip,wget,ca-certificates"

say() { echo "make-base-image: $*" >&2; }

to_podman() {
    command -v podman >/dev/null 2>&1 || return 0
    podman image exists "$tag" && return 0
    say "copying $tag into podman's storage"
    "$docker_bin" save "$tag" | podman load >/dev/null
}

made() {
    size=$("$docker_bin" image inspect --format '{{.Size}}' "$tag")
    say "ready: $tag ($((size / 1024 / 1024)) MiB)"
    if [ "${1:-}" = "--podman" ]; then to_podman; fi
}

if "$docker_bin" image inspect "$tag" >/dev/null 2>&1; then
    made "$@"
    exit 0
fi

if timeout 60 "$docker_bin" pull -q debian:bookworm >/dev/null 2>&1; then
    say "building $tag from debian:bookworm"
    printf 'FROM debian:bookworm\nRUN apt-get update && apt-get install -y --no-install-recommends %s && rm -rf /var/lib/apt/lists/*\n' \
        "${packages//,/ }" | "$docker_bin" build -q -t "$tag" - >/dev/null
    made "$@"
    exit 0
fi

command -v debootstrap >/dev/null 2>&1 || {
    say "no registry answers and debootstrap is missing: apt-get install -y debootstrap, then run me again"
    exit 1
}
mirror="${ASCEND_BUILD_MIRROR:-$(grep -hoE '^(URIs:|deb) +https?://[^ ]+/debian/?( |$)' /etc/apt/sources.list /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n 1 | awk '{print $2}' || true)}"
mirror="${mirror:-http://deb.debian.org/debian}"
root="$(mktemp -d /tmp/ascend-build-base.XXXXXX)"
trap 'rm -rf "$root"' EXIT
say "no registry answers: debootstrap bookworm from $mirror (about a minute)"
debootstrap --variant=minbase --include="$packages" bookworm "$root" "$mirror" >"$root.log" 2>&1 || {
    tail -n 20 "$root.log" >&2
    say "debootstrap failed (log above)"
    rm -f "$root.log"
    exit 1
}
rm -f "$root.log"
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
tar -C "$root" -c . | "$docker_bin" import -c 'CMD ["/bin/bash"]' -c 'ENV LANG=C.UTF-8' - "$tag" >/dev/null
made "$@"
