"""A full stand-in set installs in a real container in the documented order, and behaves like the
real packages: torch_npu imports only with the toolkit environment, failures go to the log."""
import platform
import subprocess

import pytest

from ascend_build.demo import standins

pytestmark = pytest.mark.e2e
HOST_ARCH = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "aarch64", "arm64": "aarch64"}[platform.machine().lower()]

INSTALL = r"""
set -e
export PIP_BREAK_SYSTEM_PACKAGES=1
cd /pkgs
sh Ascend-cann-toolkit_*.run --install --quiet --install-for-all
sh {chip_package} --install --quiet --install-for-all --type=toolkit
ls -d /usr/local/Ascend/{home}/opp/built-in/op_impl/ai_core/tbe/kernel/*/kernel_info.json
. /usr/local/Ascend/ascend-toolkit/set_env.sh
sh Ascend-cann-nnal_*.run --install --quiet --install-for-all --torch_atb
python3 -m pip install --quiet --no-index --find-links /pkgs torch_npu
. /usr/local/Ascend/nnal/atb/set_env.sh
sh Ascend-mindie_*.run --install --quiet --install-for-all
{atb_install}
echo "=== without environment"
env -i PATH=/usr/bin:/bin python3 -c 'import torch_npu' 2>&1 && echo UNEXPECTED-IMPORT-OK || true
echo "=== with environment"
env -i PATH=/usr/bin:/bin bash -c '. /usr/local/Ascend/ascend-toolkit/set_env.sh && . /usr/local/Ascend/nnal/atb/set_env.sh && python3 -c "import torch_npu, mindie_llm, atb_llm; print(\"versions\", torch_npu.__version__, mindie_llm.__version__, atb_llm.__version__)"; echo ATB=$ATB_HOME_PATH'
echo "=== log"
cat /var/log/ascend_seclog/ascend_install.log
"""

ATB_TARBALL = "mkdir -p /usr/local/Ascend/atb-models && tar -xzf Ascend-mindie-atb-models_*.tar.gz -C /usr/local/Ascend/atb-models && python3 -m pip install --quiet --no-index /usr/local/Ascend/atb-models/atb_llm-*.whl"
ATB_WHEEL = "python3 -m pip install --quiet --no-index atb_llm-*.whl"


def docker_run(docker_bin, image, pkgs, script):
    cmd = [docker_bin, "run", "--rm", "--network", "none", "-v", f"{pkgs}:/pkgs:ro", image, "bash", "-c", script]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("cann", ["8.0.RC2", "8.5.0"])
def test_full_set_installs_in_documented_order(tmp_path, docker_bin, base_image, cann):
    paths = standins.generate(tmp_path, cann=cann, arch=HOST_ARCH, fill=64 * 1024)
    atb = (ATB_TARBALL if paths[-1].name.endswith(".tar.gz") else ATB_WHEEL if paths[-1].name.startswith("atb_llm")
           else "true")   # MindIE 2.1+ bundles the ATB models
    home = standins.toolkit_home(cann)                   # 8.5: cann-8.5.0, before: ascend-toolkit/<v>
    result = docker_run(docker_bin, base_image, tmp_path, INSTALL.format(chip_package=paths[1].name, atb_install=atb, home=home))
    assert result.returncode == 0, result.stdout + result.stderr
    without, rest = result.stdout.split("=== without environment", 1)[1].split("=== with environment", 1)
    with_env, log = rest.split("=== log", 1)
    assert "libhccl.so" in without and "UNEXPECTED-IMPORT-OK" not in without
    assert f"/usr/local/Ascend/{home}/opp/built-in/op_impl/ai_core/tbe/kernel/910b/kernel_info.json" in result.stdout
    fam = standins.family(cann)
    assert f"versions {fam.torch_npu} {fam.mindie} {fam.mindie}" in with_env
    assert f"ATB=/usr/local/Ascend/nnal/atb/latest/atb/cxx_abi_{fam.abi_for(HOST_ARCH)}" in with_env  # from torch
    assert log.count("install success") == 4


FAILURES = r"""
cd /pkgs
sh {kernels} --install --quiet; echo "rc-kernels-first=$?"
sh {toolkit} --install; echo "rc-no-eula=$?" </dev/null
echo n | sh {toolkit} --install; echo "rc-eula-no=$?"
sh {toolkit} --install --quiet --install-path=/opt/owner-only; echo "rc-toolkit=$?"
stat -c 'mode=%a' /opt/owner-only/cann-{version}/lib64/libascendcl.so
sh {nnal} --install --quiet --install-path=/opt/owner-only; echo "rc-nnal-no-env=$?"
sh {foreign} --install --quiet; echo "rc-foreign-arch=$?"
echo "=== log"
cat /var/log/ascend_seclog/ascend_install.log
"""


def test_installer_failures_are_explained_only_in_the_log(tmp_path, docker_bin, base_image):
    paths = standins.generate(tmp_path, cann="8.5.0", arch=HOST_ARCH, fill=4096)
    other = "aarch64" if HOST_ARCH == "x86_64" else "x86_64"
    (tmp_path / "foreign").mkdir()
    foreign = standins.make_toolkit(tmp_path / "foreign", "8.5.0", other, 4096)
    script = FAILURES.format(kernels=paths[1].name, toolkit=paths[0].name, nnal=paths[2].name, version="8.5.0",
                             foreign=f"foreign/{foreign.name}")
    result = docker_run(docker_bin, base_image, tmp_path, script)
    out, log = result.stdout.split("=== log", 1)
    for key in ("rc-kernels-first", "rc-no-eula", "rc-eula-no", "rc-nnal-no-env", "rc-foreign-arch"):
        assert f"{key}=1" in out, out
    assert "rc-toolkit=0" in out and "mode=600" in out  # without --install-for-all: owner-only
    assert "Do you accept the EULA to install Ascend-cann-toolkit? [y/n]" in out
    assert out.count("Install failed, see /var/log/ascend_seclog/ascend_install.log") == 5
    # the reasons are only in the log
    for reason in ("no toolkit 8.5.0 found", "EULA not accepted", "ASCEND_TOOLKIT_HOME is not set", "architecture mismatch"):
        assert reason in log and reason not in out
