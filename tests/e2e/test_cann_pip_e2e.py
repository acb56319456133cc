"""CANN installed with pip (the stand-ins of the demo family 9.0.0-pip: ascend-cann-toolkit and
ascend-cann-910b-ops wheels, NNAL as its .run), built for real: the image's ENV is what the
package's own set_env.sh gives, torch_npu imports without sourcing anything, verify passes."""
import json
import subprocess

import pytest

from clirun import cli

pytestmark = pytest.mark.e2e


def test_pip_cann_builds_and_verifies(tmp_path, docker_bin, base_image):
    workdir = tmp_path / "w"
    assert cli("init", "--demo", workdir, "--cann", "9.0.0-pip", "--filler", "64KiB").returncode == 0
    tag = f"ascend-build-test/cann-pip:{tmp_path.name.lower()}"
    try:
        built = cli("build", "-C", workdir, "--target", "pta", "-t", tag, "--port", "0")
        assert built.returncode == 0, (built.stdout + built.stderr)[-4000:]
        verified = cli("verify", tag, "--json")
        checks = {c["name"]: c for c in json.loads(verified.stdout)["checks"]}
        assert verified.returncode == 0 and all(c["ok"] for c in checks.values()), checks
        assert checks["toolkit version matches label"]["detail"] == "ascend-cann-toolkit 9.0.0, label 9.0.0"
        assert "no difference" in checks["ENV equals what the set_env.sh files give"]["detail"]
        ran = subprocess.run([docker_bin, "run", "--rm", tag, "sh", "-c",
                              'python3 -c "import torch_npu, os; print(os.environ[\'ASCEND_HOME_PATH\'])"; '
                              "ls /usr/local/Ascend"], capture_output=True, text=True, timeout=300)
        assert ran.returncode == 0, ran.stdout + ran.stderr
        home, *installed = ran.stdout.split()
        assert home.endswith("-packages/ascend/cann-9.0.0") and installed == ["nnal"], ran.stdout
    finally:
        subprocess.run([docker_bin, "image", "rm", "--force", tag], capture_output=True)
