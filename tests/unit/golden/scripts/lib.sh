# ascend-build install helpers, sourced by the stage scripts in /opt/ascend-build.
# Usage of the entry point (one RUN per stage):
#   bash /opt/ascend-build/run-stage.sh STAGE MODE DIR [FILE=SHA256 ...]
# MODE http: fetch each FILE from $ASCEND_PKG_URL into DIR; mount/copy: files are in DIR.

ab_say() { echo "ascend-build[$AB_STAGE]: $*"; }

ab_logs() {
    for f in /var/log/ascend_seclog/*.log; do
        [ -f "$f" ] || continue
        echo "----- last lines of $f -----" >&2
        tail -n 30 "$f" >&2
    done
}

ab_fail() {
    echo "ascend-build[$AB_STAGE]: FAILED: $*" >&2
    ab_logs
    exit 1
}

# ab_install COMPONENT FILE ARGS...: run one installer; on failure name it and show its log.
ab_install_image() {
    component=$1; file=$2; shift 2
    ab_say "installing $component from $(basename "$file")"
    bash "$file" "$@" </dev/null && return 0
    status=$?
    ab_fail "stage $AB_STAGE, component $component: $(basename "$file") exited with status $status"
}
ab_install() { ab_install_image "$@"; }

ab_fetch() {
    url=$1; dest=$2
    for attempt in 1 2 3 4 5; do
        if command -v wget >/dev/null 2>&1; then
            wget -q -c -O "$dest" "$url" && return 0
        elif command -v curl >/dev/null 2>&1; then
            curl -fsS -C - -o "$dest" "$url" && return 0
        else
            python3 -c 'import sys, shutil, urllib.request as u; shutil.copyfileobj(u.urlopen(sys.argv[1]), open(sys.argv[2], "wb"))' "$url" "$dest" && return 0
        fi
        ab_say "download of $url failed (attempt $attempt), retrying"
        sleep "$attempt"
    done
    return 1
}

# ab_pip ARGS...: pip from the stage's package folder (or the configured index).
AB_PIP_SOURCE=${AB_PIP_SOURCE:-"--no-index --find-links $PKG_DIR"}
ab_pip_image() {
    python3 -m pip install --no-cache-dir --disable-pip-version-check $AB_PIP_SOURCE "$@" ||
        ab_fail "stage $AB_STAGE: pip install $* failed"
}
ab_pip() { ab_pip_image "$@"; }

# ab_build_sdist SDIST [NAME=VALUE...] -- [BUILD REQUIREMENT...]: a wheel of SDIST into $AB_BUILT,
# built without isolation (against the packages the image has) in a throw-away venv that sees them
# and gets the other build requirements from the stage's package folder; the venv, pip's build tree
# and the sdist's own files never stay in the image (ab_built_clean drops the wheels once installed).
AB_BUILT=/tmp/ascend-pkgs/built
ab_build_sdist() {
    sdist=$1; shift
    envs=()
    while [ $# -gt 0 ] && [ "$1" != "--" ]; do envs+=("$1"); shift; done
    [ $# -gt 0 ] && shift
    venv=/tmp/ab-build-env
    rm -rf "$venv"
    python3 -m venv --without-pip --system-site-packages "$venv" || ab_fail "stage $AB_STAGE: python3 -m venv failed (to build ${sdist##*/})"
    if [ $# -gt 0 ]; then
        "$venv/bin/python" -m pip install --no-cache-dir --disable-pip-version-check $AB_PIP_SOURCE "$@" ||
            ab_fail "stage $AB_STAGE: cannot install what building ${sdist##*/} needs: $*"
    fi
    mkdir -p "$AB_BUILT"
    ab_say "building ${sdist##*/}"
    env "${envs[@]}" PATH="$venv/bin:$PATH" "$venv/bin/python" -m pip wheel --no-cache-dir --disable-pip-version-check \
        --no-deps --no-build-isolation --wheel-dir "$AB_BUILT" "$sdist" ||
        ab_fail "stage $AB_STAGE: building ${sdist##*/} into a wheel failed (its output is above)"
    rm -rf "$venv"
}
ab_built_clean() {
    rm -rf "$AB_BUILT" /tmp/ab-build-env
}

ab_source() {
    # set_env.sh files use unset variables: never source them under `set -u`
    [ -f "$1" ] || ab_fail "stage $AB_STAGE: $1 not found after install (package layout changed?); found: $(find "$(dirname "$(dirname "$1")")" -maxdepth 3 -name set_env.sh 2>/dev/null | tr '\n' ' ')"
    file=$1; shift
    . "$file" "$@"
}
