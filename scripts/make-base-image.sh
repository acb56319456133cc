#!/usr/bin/env bash
# Make the local Debian 12 base image the tests and the demo build on: python3, pip, wget,
# ca-certificates, libgomp1 (the real MindSpore wheel's libraries link it) and gcc, g++, make, python3-dev (what
# building source distributions needs: vLLM, arctic-inference): with them here, no test build installs
# OS packages from the network. Reused when present; packages it lacks are added. `docker pull debian:bookworm` when a registry answers,
# else debootstrap + docker import (no registry needed, about a minute).
#   ASCEND_BUILD_BASE_IMAGE   tag to make (default localhost/ascend-build-base:bookworm)
#   ASCEND_BUILD_MIRROR       Debian mirror for debootstrap (default: the host's apt mirror)
#   DOCKER                    docker client to use (default: docker)
# Options:
#   --arch amd64|arm64   the image's arch (default: this host's). A foreign arch needs QEMU in
#                        binfmt_misc (apt-get install qemu-user-static); its default tag ends in -<arch>
#   --podman             also copy the image into podman's storage when podman is installed
set -euo pipefail
docker_bin="${DOCKER:-docker}"
packages="python3,python3-pip,wget,ca-certificates,libgomp1,gcc,g++,make,python3-dev"

say() { echo "make-base-image: $*" >&2; }

# A BuildKit build (--platform is recorded right): buildx when the client has it, else
# DOCKER_BUILDKIT=1 with a client older than 23 (Debian's /usr/bin/docker).
bk_build() {
    if "$docker_bin" buildx version >/dev/null 2>&1; then
        "$docker_bin" buildx build --load "$@"
    else
        local client="$docker_bin"
        [ -z "${DOCKER:-}" ] && [ -x /usr/bin/docker ] && client=/usr/bin/docker
        DOCKER_BUILDKIT=1 "$client" build "$@"
    fi
}
die() { say "$*"; exit 1; }

deb_arch() {
    case "$1" in
        amd64|x86_64|x86-64|x86) echo amd64 ;;
        arm64|aarch64) echo arm64 ;;
        *) return 1 ;;
    esac
}

host_arch="$(deb_arch "$(uname -m)")" || die "unsupported host arch $(uname -m)"
arch="$host_arch"
podman=""
while [ $# -gt 0 ]; do
    case "$1" in
        --arch) [ $# -ge 2 ] || die "--arch needs a value: amd64 or arm64"
                arch="$(deb_arch "$2")" || die "unknown --arch $2: use amd64 or arm64"; shift 2 ;;
        --arch=*) arch="$(deb_arch "${1#--arch=}")" || die "unknown $1: use amd64 or arm64"; shift ;;
        --podman) podman=1; shift ;;
        -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
done
suffix=""
[ "$arch" = "$host_arch" ] || suffix="-$arch"
tag="${ASCEND_BUILD_BASE_IMAGE:-localhost/ascend-build-base:bookworm$suffix}"
platform="linux/$arch"

if [ "$arch" != "$host_arch" ]; then
    qemu="/proc/sys/fs/binfmt_misc/qemu-$( [ "$arch" = arm64 ] && echo aarch64 || echo x86_64 )"
    grep -qx enabled "$qemu" 2>/dev/null || die "building for $platform on this $host_arch host needs QEMU in binfmt_misc ($qemu is missing): apt-get install -y qemu-user-static, then run me again"
fi

to_podman() {
    command -v podman >/dev/null 2>&1 || return 0
    podman image exists "$tag" && return 0
    say "copying $tag into podman's storage"
    "$docker_bin" save "$tag" | podman load >/dev/null
}

made() {
    found="$("$docker_bin" image inspect --format '{{.Size}} {{.Architecture}}' "$tag")"
    [ "${found#* }" = "$arch" ] || die "$tag is for ${found#* }, not $arch: remove it (docker rmi $tag) or set ASCEND_BUILD_BASE_IMAGE"
    say "ready: $tag ($arch, $((${found% *} / 1024 / 1024)) MiB)"
    if [ -n "$podman" ]; then to_podman; fi
}

if "$docker_bin" image inspect "$tag" >/dev/null 2>&1; then
    missing="$("$docker_bin" run --rm --platform "$platform" --entrypoint sh "$tag" -c \
        "for p in ${packages//,/ }; do dpkg -s \$p >/dev/null 2>&1 || echo \$p; done" | tr '\n' ' ')"
    if [ -n "${missing// /}" ]; then
        say "adding ${missing% } to $tag"
        printf 'FROM %s\nRUN apt-get update && apt-get install -y --no-install-recommends %s && rm -rf /var/lib/apt/lists/*\n' \
            "$tag" "$missing" | bk_build -q --platform "$platform" -t "$tag" - >/dev/null
        if [ -n "$podman" ] && command -v podman >/dev/null 2>&1; then podman rmi -f "$tag" >/dev/null 2>&1 || true; fi
    fi
    made
    exit 0
fi

if timeout 60 "$docker_bin" pull -q --platform "$platform" debian:bookworm >/dev/null 2>&1; then
    say "building $tag from debian:bookworm ($platform)"
    printf 'FROM debian:bookworm\nRUN apt-get update && apt-get install -y --no-install-recommends %s && rm -rf /var/lib/apt/lists/*\n' \
        "${packages//,/ }" | bk_build -q --platform "$platform" -t "$tag" - >/dev/null
    made
    exit 0
fi

command -v debootstrap >/dev/null 2>&1 || {
    say "no registry answers and debootstrap is missing: apt-get install -y debootstrap, then run me again"
    exit 1
}
mirror="${ASCEND_BUILD_MIRROR:-$(grep -hoE '^(URIs:|deb) +https?://[^ ]+/debian/?( |$)' /etc/apt/sources.list /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n 1 | awk '{print $2}' || true)}"
mirror="${mirror:-http://deb.debian.org/debian}"
work="$(mktemp -d /tmp/ascend-build-base.XXXXXX)"
root="$work/rootfs"
trap 'rm -rf "$work"' EXIT
say "no registry answers: debootstrap bookworm ($arch) from $mirror (about a minute; 3-4 under QEMU)"
debootstrap --arch="$arch" --variant=minbase --include="$packages" bookworm "$root" "$mirror" >"$root.log" 2>&1 || {
    tail -n 20 "$root.log" >&2
    say "debootstrap failed (log above)"
    rm -f "$root.log"
    exit 1
}
rm -f "$root.log"
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
if [ "$arch" = "$host_arch" ]; then
    tar -C "$root" -c . | "$docker_bin" import -c 'CMD ["/bin/bash"]' -c 'ENV LANG=C.UTF-8' - "$tag" >/dev/null
else
    # `docker import --platform` records the host arch on Docker 20.10; a BuildKit build of
    # FROM scratch with --platform records the right one.
    tar -C "$root" -c -f "$work/rootfs.tar" .
    rm -rf "$root"
    printf 'FROM scratch\nADD rootfs.tar /\nENV LANG=C.UTF-8\nCMD ["/bin/bash"]\n' >"$work/Dockerfile"
    bk_build -q --platform "$platform" -t "$tag" "$work" >/dev/null
fi
made
