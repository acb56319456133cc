#!/bin/bash
# One stage's install step: get the files, verify each sha256, install, delete the downloads.
set -e
export AB_STAGE=$1; mode=$2; dir=$3; shift 3
. /opt/ascend-build/lib.sh
# A build for another arch may mount the build host's coreutils, diffutils, findutils, grep, gzip, sed,
# tar and wget at /tmp/ab-tools (native install): they do the byte work on its CPU instead of under QEMU,
# only where the image has the very same versions of those packages.
if [ -x /tmp/ab-tools/dpkg-query ]; then
    if [ "$(/tmp/ab-tools/dpkg-query -W -f='${Package} ${Version}\n' $(</tmp/ab-tools/packages) 2>&1)" = "$(</tmp/ab-tools/versions)" ]; then
        export PATH=/tmp/ab-tools/bin:$PATH
        ab_say "byte tools: the build host's ($(</tmp/ab-tools/packages))"
    else
        ab_say "byte tools: the image's (the build host's $(</tmp/ab-tools/packages) are other versions or do not run here)"
    fi
fi
mkdir -p "$dir"
# The server URL: a BuildKit/podman secret; else (docker's classic builder) the FTP_PROXY build
# argument as ascend-pkg-url=URL, which that builder keeps out of the cache key and the
# history (it is unset before anything installs); else the ASCEND_PKG_URL build argument
# (hand-written builds).
server_url=$(cat /run/secrets/ascend-pkg-url 2>/dev/null || true)
case "${FTP_PROXY:-}" in
    ascend-pkg-url=*) server_url=${server_url:-${FTP_PROXY#ascend-pkg-url=}}; unset FTP_PROXY ;;
esac
server_url=${server_url:-$ASCEND_PKG_URL}
for pair in "$@"; do
    name=${pair%=*}; sum=${pair##*=}
    if [ "$mode" = http ]; then
        [ -n "$server_url" ] || ab_fail "no package server URL (run the build through ascend-build, or pass --build-arg ASCEND_PKG_URL=http://HOST:PORT/TOKEN/)"
        ab_fetch "${server_url%/}/$name" "$dir/$name" || ab_fail "cannot download $name from the package server"
    fi
    echo "$sum  $dir/$name" | sha256sum -c --quiet - ||
        ab_fail "$name does not match the sha256 in the plan ($sum): it changed after ascend-build read it; run \`ascend-build check --rehash\`, then build again"
done
export PKG_DIR=$dir
status=0
bash /opt/ascend-build/install_"$AB_STAGE".sh "$dir" || status=$?
[ "$mode" = mount ] || rm -rf "$dir"
rmdir "$(dirname "$dir")" 2>/dev/null || true
exit $status
