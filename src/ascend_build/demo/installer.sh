#!/bin/sh
# Stand-in for an Ascend installer, made by ascend-build: it installs PLACEHOLDER files only.
# makeself-2.4 style header: the payload (a gzip'd tar) follows the first $skip lines.
skip="@SKIP@"
filesizes="@FILESIZES@"
SHA="@SHA@"
MD5="@MD5@"
label="@LABEL@"
pkg_name="@NAME@"
pkg_component="@COMPONENT@"
pkg_version="@VERSION@"
pkg_arch="@ARCH@"
pkg_dirs="@DIRS@"
pkg_templates="@TEMPLATES@"
pkg_home="@HOME@"
log_dir=/var/log/ascend_seclog
log_file="$log_dir/ascend_install.log"
self="$0"

payload() {
    offset=$(head -n "$skip" "$self" | wc -c | tr -d ' ')
    tail -c +"$((offset + 1))" "$self"
}

usage() {
    echo "Usage: $self [--check] [--noexec --extract=DIR] [--install|--full] [--quiet] [--install-path=DIR] [--install-for-all] [--torch_atb (nnal)]"
}

log() {
    mkdir -p "$log_dir" 2>/dev/null
    echo "[$(date '+%Y-%m-%d %H:%M:%S')] [$pkg_name $pkg_version] $*" >>"$log_file" 2>/dev/null
}

fail() {
    log "ERROR: $*"
    log "install failed"
    echo "Install failed, see $log_file"
    exit 1
}

verify() {
    size=$(payload | wc -c | tr -d ' ')
    [ "$size" = "$filesizes" ] || { echo "Error in archive size: expected $filesizes bytes, found $size (truncated?)"; return 1; }
    sum=$(payload | sha256sum | cut -d ' ' -f 1)
    [ "$sum" = "$SHA" ] || { echo "Error in SHA256 checksums: $sum is different from $SHA"; return 1; }
    return 0
}

action=""
quiet=0
install_path=/usr/local/Ascend
for_all=0
extract_dir=""
install_type=toolkit
for arg in "$@"; do
    case "$arg" in
        --check) action=check ;;
        --install) action=install ;;
        --full)
            [ "$pkg_component" = toolkit ] || { echo "unrecognized option: $arg"; exit 1; }
            action=install ;;
        --quiet) quiet=1 ;;
        --install-path=*) install_path="${arg#*=}" ;;
        --install-for-all) for_all=1 ;;
        --noexec) ;;
        --type=toolkit|--type=nnae|--type=nnrt)
            case "$pkg_component" in kernels|ops) install_type="${arg#*=}" ;; *) echo "unrecognized option: $arg"; exit 1 ;; esac ;;
        --whitelist=nnrt)
            [ "$pkg_component" = toolkit ] || { echo "unrecognized option: $arg"; exit 1; } ;;
        --torch_atb)
            [ "$pkg_component" = nnal ] || { echo "unrecognized option: $arg"; exit 1; } ;;
        --extract=*) extract_dir="${arg#*=}"; action=extract ;;
        *) echo "unrecognized option: $arg"; usage; exit 1 ;;
    esac
done

case "$action" in
    check)
        echo "Verifying archive integrity..."
        verify || exit 1
        echo "Verifying archive integrity... OK"
        exit 0 ;;
    extract)
        verify || exit 1
        mkdir -p "$extract_dir" && payload | tar -xzf - -C "$extract_dir" || exit 1
        echo "Extracted to $extract_dir"
        exit 0 ;;
    install) ;;
    *) usage; exit 1 ;;
esac

log "install start: $self --install-path=$install_path"
verify >/dev/null || fail "package $self is corrupt (size or SHA256 mismatch)"
if [ "$quiet" != 1 ]; then
    printf 'Do you accept the EULA to install %s? [y/n] ' "$pkg_name"
    answer=""
    read -r answer || answer=""
    case "$answer" in y|Y) ;; *) fail "EULA not accepted" ;; esac
fi
machine=$(uname -m)
[ "$machine" = "$pkg_arch" ] || fail "architecture mismatch: package is for $pkg_arch, this machine is $machine"

# the CANN home kernels/ops go onto: the toolkit's (cann-<v> from 8.5, else ascend-toolkit/<v>) or nnrt/nnae's
type_home="$install_type/$pkg_version"
if [ "$install_type" = toolkit ]; then
    type_home="ascend-toolkit/$pkg_version"
    [ -d "$install_path/cann-$pkg_version" ] && type_home="cann-$pkg_version"
fi
toolkit_info="$install_path/$type_home/$machine-linux/ascend_${install_type}_install.info"
case "$pkg_component" in
    toolkit|nnae|nnrt)
        command -v python3 >/dev/null 2>&1 || fail "python3 not found on PATH; install python3 first" ;;
    kernels|ops)
        grep -qx "version=$pkg_version" "$toolkit_info" 2>/dev/null ||
            fail "no $install_type $pkg_version found under $install_path (install Ascend-cann-${install_type}_$pkg_version first, same --install-path)" ;;
    nnal)
        cann_home=${ASCEND_TOOLKIT_HOME:-$ASCEND_HOME_PATH}
        [ -n "$cann_home" ] || fail "ASCEND_TOOLKIT_HOME is not set: source <install-path>/ascend-toolkit/set_env.sh first"
        cat "$cann_home/$machine-linux"/ascend_*_install.info 2>/dev/null | grep -qx "version=$pkg_version" ||
            fail "CANN at $cann_home is not version $pkg_version" ;;
    mindie)
        [ -n "${ASCEND_TOOLKIT_HOME:-$ASCEND_HOME_PATH}" ] || fail "ASCEND_HOME_PATH is not set: source the CANN set_env.sh (toolkit, nnrt or nnae) first"
        [ -n "$ATB_HOME_PATH" ] || fail "ATB_HOME_PATH is not set: source nnal/atb/set_env.sh first"
        python3 -c 'import torch' >/dev/null 2>&1 || fail "python3 cannot import torch: install torch first" ;;
esac

mkdir -p "$install_path" || fail "cannot create $install_path"
# kernels/ops go onto the CANN home found above (their payload is laid out for ascend-toolkit/<v>)
onto=$pkg_home
case "$pkg_component" in kernels|ops) onto=$type_home ;; esac
payload | tar -xzf - -C "$install_path" --no-same-owner --transform "s#^$pkg_home/#$onto/#" ||
    fail "cannot unpack into $install_path"
pkg_dirs=$(echo "$pkg_dirs" | sed "s#^$pkg_home/#$onto/#")
for rel in $pkg_templates; do
    sed "s#@INSTALL_PATH@#$install_path#g" "$install_path/$rel.in" >"$install_path/$rel" &&
        rm -f "$install_path/$rel.in" || fail "cannot write $install_path/$rel"
done
for rel in $pkg_dirs; do
    if [ "$for_all" = 1 ]; then mode=u+rwX,go+rX,go-w; else mode=u+rwX,go-rwx; fi
    chmod -R "$mode" "$install_path/$rel" || fail "cannot set permissions on $install_path/$rel"
done
case "$pkg_component" in
    toolkit)
        # from 8.5 the home is cann-<v>; ascend-toolkit/latest stays as the compatibility path
        case "$pkg_home" in
            cann-*) ln -sfn "../$pkg_home" "$install_path/ascend-toolkit/latest" ;;
            *) ln -sfn "$pkg_version" "$install_path/ascend-toolkit/latest" ;;
        esac ;;
    nnal) ln -sfn "$pkg_version" "$install_path/nnal/atb/latest" ;;
    nnae|nnrt) ln -sfn "$pkg_version" "$install_path/$pkg_component/latest" ;;
    mindie)
        ln -sfn "$pkg_version" "$install_path/mindie/latest"
        # mindie_llm, and from 2.1 (ABI in the file name) the bundled ATB models' atb_llm
        python3 -m pip install --no-index --no-deps --quiet "$install_path/mindie/$pkg_version"/wheels/*.whl >>"$log_file" 2>&1 ||
            fail "pip could not install the wheels of $install_path/mindie/$pkg_version/wheels" ;;
esac
log "install success"
echo "$pkg_name $pkg_version installed in $install_path"
exit 0
