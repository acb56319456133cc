"""Steps inside containers that never end, with the real docker: a set_env.sh that never returns
(the ENV capture of `build`) and an image whose python3 hangs (`verify`) are stopped at the
deadline (ASCEND_BUILD_CONTAINER_TIMEOUT, a few seconds here); the message names the step, the
container is gone and so is the capture's stage image. A 70 kB value a set_env.sh exports is
refused when it is captured, naming the variable and the file, and nothing is cached."""
import os
import re
import subprocess
import time

import pytest

from clirun import cli
from test_build import make_workdir

pytestmark = pytest.mark.e2e
DEADLINE = "5"
HUNG_PYTHON = """FROM {base}
LABEL io.ascend-build.target=base
RUN printf '#!/bin/sh\\nsleep 1000\\n' > /usr/local/bin/python3 && chmod 755 /usr/local/bin/python3
"""
# the cann stage's install script replaced: it only writes the set_env.sh files the stage sources
INSTALL_CANN = """#!/bin/bash
set -e
mkdir -p /usr/local/Ascend/ascend-toolkit /usr/local/Ascend/nnal/atb
printf '%s\\n' {toolkit} > /usr/local/Ascend/ascend-toolkit/set_env.sh
echo 'export ATB_HOME_PATH=/usr/local/Ascend/nnal/atb' > /usr/local/Ascend/nnal/atb/set_env.sh
"""


def left(docker_bin: str, name: str) -> str:
    return subprocess.run([docker_bin, "ps", "-a", "-q", "--filter", f"name=^{name}$"], capture_output=True,
                          text=True, check=True).stdout.strip()


def image_exists(docker_bin: str, image: str) -> bool:
    return subprocess.run([docker_bin, "image", "inspect", image], capture_output=True).returncode == 0


def test_verify_of_an_image_whose_python3_hangs_stops_at_the_deadline(docker_bin, base_image, tmp_path):
    tag = f"ascend-build-test/hung-python:{os.getpid()}"
    (tmp_path / "Dockerfile").write_text(HUNG_PYTHON.format(base=base_image))
    built = subprocess.run([docker_bin, "build", "-q", "-t", tag, str(tmp_path)], capture_output=True, text=True,
                           env={**os.environ, "DOCKER_BUILDKIT": "0"})
    assert built.returncode == 0, built.stderr
    try:
        began = time.monotonic()
        result = cli("verify", tag, "--engine", "docker", env={**os.environ, "ASCEND_BUILD_CONTAINER_TIMEOUT": DEADLINE})
        assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
        assert time.monotonic() - began < 60
        message = " ".join(result.stderr.split())
        assert f"the python3 of image {tag} (verify's probe) did not end in 5 s" in message
        assert "daemon" not in message and "ASCEND_BUILD_CONTAINER_TIMEOUT" in message
        name = re.search(r"ascend-build-verify-[0-9a-f]{8}", message).group(0)
        assert left(docker_bin, name) == ""
    finally:
        subprocess.run([docker_bin, "rmi", "-f", tag], capture_output=True)


def _capture_build(tmp_path, base_image, toolkit_lines: str):
    workdir = make_workdir(tmp_path, "w", seed=f"hung-{time.time()}")
    scripts = workdir / "install-scripts"
    scripts.mkdir(exist_ok=True)
    (scripts / "install_cann.sh").write_text(INSTALL_CANN.format(toolkit=toolkit_lines))
    env = {**os.environ, "ASCEND_BUILD_CONTAINER_TIMEOUT": DEADLINE, "ASCEND_BUILD_FULL": "1"}
    result = cli("build", "-C", workdir, "--engine", "docker", "--target", "cann", "-t",
                 f"ascend-build-test/hung-capture:{os.getpid()}", "--base-image", base_image, env=env)
    return workdir, result


def test_a_set_env_that_never_returns_is_stopped_and_leaves_no_container_nor_image(docker_bin, base_image, tmp_path):
    workdir, result = _capture_build(tmp_path, base_image, "'sleep 1000'")
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-3000:]
    message = " ".join(result.stderr.split())
    assert "set_env.sh of stage cann (sourcing /usr/local/Ascend/ascend-toolkit/set_env.sh" in message
    assert "did not end in 5 s" in message and "daemon" not in message
    name = re.search(r"ascend-build-capture-[0-9a-f]{8}", message).group(0)
    assert left(docker_bin, name) == ""
    stage_image = (workdir / ".ascend-build" / "capture-image-id").read_text().strip()
    assert stage_image.startswith("sha256:") and not image_exists(docker_bin, stage_image)


def test_a_value_too_long_for_a_dockerfile_line_is_refused_at_capture(docker_bin, base_image, tmp_path):
    workdir, result = _capture_build(tmp_path, base_image, "'export BIG=$(printf %070000d 0)'")
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-3000:]
    message = " ".join(result.stderr.split())
    assert "stage cann: sourcing set BIG to a value of 70000 bytes" in message, message[-2000:]
    assert "/usr/local/Ascend/ascend-toolkit/set_env.sh" in message and "max allowed size" not in message
    assert not list((workdir / ".ascend-build" / "set-env").glob("*.json"))     # nothing cached
    stage_image = (workdir / ".ascend-build" / "capture-image-id").read_text().strip()
    assert not image_exists(docker_bin, stage_image)
