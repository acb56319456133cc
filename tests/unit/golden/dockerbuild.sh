#!/usr/bin/env bash
# Build the Ascend image from this folder with only docker, bash and python3 (exported by
# ascend-build 0.1.0). The packages are served with `python3 -m http.server` bound to the
# docker bridge address, from a temporary folder that holds links to the needed files only.
# A stage that sources set_env.sh files after it installs is built first; scripts/capture-env.py
# sources them in that image and the environment they give is written into the Dockerfile as the
# stage's ENV (after its "# after install: source ..." line) before the build goes on.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
target=mindie
tag=""
port=3000
base_image=localhost/ascend-build-base:bookworm
packages=<workdir>
stages='base, cann, pta, mindie'
order='base cann pta mindie'

usage() {
    cat <<USAGE
Usage: bash dockerbuild.sh [options]
  --target T          stage to build: $stages (default: $target)
  --tag NAME:TAG      image name (default: ascend-build/<target>:latest)
  --port P            package server port (default: $port)
  --base-image IMAGE  base image (default: $base_image)
  --packages DIR      folder with the packages (default: $packages)
USAGE
}

while [ $# -gt 0 ]; do
    case "$1" in
        --target) target=$2; shift 2 ;;
        --tag) tag=$2; shift 2 ;;
        --port) port=$2; shift 2 ;;
        --base-image) base_image=$2; shift 2 ;;
        --packages) packages=$2; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "unknown option: $1" >&2; usage >&2; exit 2 ;;
    esac
done
tag=${tag:-ascend-build/$target:latest}
upto=""
for stage in $order; do
    upto="$upto $stage"
    [ "$stage" != "$target" ] || break
done
case " $upto " in *" $target "*) ;; *) echo "unknown stage: $target (stages: $stages)" >&2; exit 2 ;; esac
case "$port" in
    ''|*[!0-9]*|0|0*) echo "--port $port: give a port number from 1 to 65535" >&2; exit 2 ;;
esac
[ "$port" -le 65535 ] || { echo "--port $port: give a port number from 1 to 65535" >&2; exit 2; }

host=$(docker network inspect bridge --format '{{range .IPAM.Config}}{{.Gateway}}{{end}}' 2>/dev/null || true)
host=${host:-172.17.0.1}
serve_dir=$(mktemp -d)
work=$(mktemp -d)
server_pid=""
cleanup() {
    if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
    rm -rf "$serve_dir" "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

while read -r name; do
    [ -n "$name" ] || continue
    src=""
    for candidate in "$packages/$name" "$packages/packages/$name"; do
        if [ -f "$candidate" ]; then src=$candidate; break; fi
    done
    [ -n "$src" ] || { echo "missing package: $name (looked in $packages and $packages/packages)" >&2; exit 1; }
    ln -s "$(cd "$(dirname "$src")" && pwd)/$name" "$serve_dir/$name"
done <"$here/packages.txt"

python3 -m http.server "$port" --bind "$host" --directory "$serve_dir" >/dev/null 2>&1 &
server_pid=$!
for _ in $(seq 1 50); do
    python3 -c "import socket,sys; socket.create_connection((sys.argv[1], int(sys.argv[2])), 1)" "$host" "$port" 2>/dev/null && break
    kill -0 "$server_pid" 2>/dev/null || { echo "the package server could not start on $host:$port (port in use? try --port)" >&2; exit 1; }
    sleep 0.1
done

dockerfile="$work/Dockerfile"
cp "$here/Dockerfile" "$dockerfile"
build() {
    DOCKER_BUILDKIT=${DOCKER_BUILDKIT:-0} docker build -f "$dockerfile" \
        --build-arg ASCEND_PKG_URL="http://$host:$port/" --build-arg BASE_IMAGE="$base_image" "$@" "$here"
}
# capture STAGE STEPS_JSON: build the stage, source its set_env.sh files in it, write the ENV they give.
capture() {
    case " $upto " in *" $1 "*) ;; *) return 0 ;; esac
    build --target "$1" --iidfile "$work/image-id"
    docker run --rm -i --network none --entrypoint python3 "$(cat "$work/image-id")" - capture "$2" \
        <"$here/scripts/capture-env.py" >"$work/capture.json"
    python3 "$here/scripts/capture-env.py" dockerfile-env <"$work/capture.json" >"$work/env" ||
        { echo "stage $1: cannot take its ENV from its set_env.sh files" >&2; exit 1; }
    awk -v stage="$1" -v env="$work/env" '
        { print }
        $0 ~ (" AS " stage "$") { inside = 1 }
        inside && /^# after install: source / { while ((getline line < env) > 0) print line; inside = 0 }
    ' "$dockerfile" >"$work/Dockerfile.new"
    mv "$work/Dockerfile.new" "$dockerfile"
}
capture cann '["ab_source /usr/local/Ascend/ascend-toolkit/set_env.sh", "ab_source_if ${ASCEND_HOME_PATH}/share/info/ascendnpu-ir/bin/set_env.sh", "ab_source /usr/local/Ascend/nnal/atb/set_env.sh --cxx_abi=0"]'
capture mindie '["ab_source /usr/local/Ascend/mindie/set_env.sh"]'
build --target "$target" -t "$tag"

echo "built $tag: $(docker image inspect --format '{{.Size}}' "$tag") bytes"
docker image inspect --format '{{range $k, $v := .Config.Labels}}{{$k}}={{$v}}{{println}}{{end}}' "$tag"
