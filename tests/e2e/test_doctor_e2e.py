"""`doctor IMAGE` and `run` read the image's CANN release and runtime user from its labels (a small
image with the labels ascend-build writes) and check a prepared host tree against them."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from clirun import cli

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))
from test_doctor import host  # noqa: E402

pytestmark = pytest.mark.e2e
LABELS = {"io.ascend-build.target": "cann", "io.ascend-build.toolkit.version": "9.0.0",
          "io.ascend-build.user": "HwHiAiUser", "io.ascend-build.user-ids": "1000:1000"}


@pytest.fixture
def image(tmp_path, docker_bin, base_image):
    tag = f"ascend-build-test/doctor-{tmp_path.name.lower()}:1"
    (tmp_path / "ctx").mkdir()
    (tmp_path / "ctx" / "Dockerfile").write_text(f"FROM {base_image}\n" + "".join(
        f'LABEL {k}="{v}"\n' for k, v in LABELS.items()))
    built = subprocess.run([docker_bin, "build", "-q", "-t", tag, str(tmp_path / "ctx")], capture_output=True, text=True,
                           env={"DOCKER_BUILDKIT": "0", "PATH": "/usr/bin:/bin"})
    assert built.returncode == 0, built.stderr
    yield tag
    subprocess.run([docker_bin, "image", "rm", "--force", tag], capture_output=True)


def containers(docker_bin: str) -> str:
    return subprocess.run([docker_bin, "ps", "-aq", "--filter", "name=ascend-build"], capture_output=True, text=True).stdout


def test_doctor_and_run_check_the_host_against_the_images_cann(image, tmp_path, docker_bin):
    good = cli("doctor", image, "--host-root", host(tmp_path / "good"), "--json")
    assert good.returncode == 0, good.stderr
    rows = {r["check"]: r for r in json.loads(good.stdout)["rows"]}
    assert "CANN 9.0.0 requires 26.0.RC1" in rows["driver"]["detail"] and rows["device access"]["level"] == "ok"
    assert json.loads(good.stdout)["image"]["uid"] == 1000
    old = host(tmp_path / "old", driver="25.5.0")
    bad = cli("doctor", image, "--host-root", old, "--json")
    [driver] = [r for r in json.loads(bad.stdout)["rows"] if r["check"] == "driver"]
    assert bad.returncode == 1 and driver["level"] == "error" and "25.5.0" in driver["detail"] and "26.0.RC1" in driver["detail"]
    before = containers(docker_bin)
    refused = cli("run", image, "--root", old, "--", "true")
    assert refused.returncode == 1 and "the host is not ready" in refused.stderr and "--no-doctor" in refused.stderr
    assert "Traceback" not in refused.stderr and containers(docker_bin) == before
    printed = cli("run", image, "--root", old, "--print", "--", "true")
    assert printed.returncode == 0 and "--device /dev/davinci0" in printed.stdout
    missing = cli("doctor", "ascend-build-test/no-such-image:1", "--host-root", old)
    assert missing.returncode == 1 and "is not in" in missing.stderr
