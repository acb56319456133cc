"""ENV from the stages' set_env.sh files, end to end with the classic docker builder: the x86_64
demo builds to mindie with its ENV captured in the image, a no-change rebuild is one engine
build, torch_npu imports without sourcing, verify passes, the exported dockerbuild.sh gives the
same ENV, and hostile values read back unchanged from a real image."""
import json
import os
import shutil
import socket
import subprocess
import time

import pytest

from clirun import cli
from ascend_build.fastpath import BYPASS_ENV
from ascend_build.capture import dockerfile_env
from test_build import make_workdir

pytestmark = pytest.mark.e2e
WRAPPER = """#!/bin/sh
case "$*" in *" --name ascend-build-capture-"*) echo capture ;; *) echo "$1" ;; esac >> "$0.calls"
exec {docker} "$@"
"""


def image_env(docker: str, image: str) -> dict:
    info = json.loads(subprocess.run([docker, "image", "inspect", image], capture_output=True, text=True, check=True).stdout)
    return dict(item.split("=", 1) for item in info[0]["Config"]["Env"])


@pytest.fixture
def counting_docker(tmp_path, docker_bin):
    """A docker client that logs the subcommand of each call, `capture` for a capture's run (its
    container is named ascend-build-capture-...), then runs the real one."""
    path = tmp_path / "bin" / "docker"
    path.parent.mkdir()
    path.write_text(WRAPPER.format(docker=docker_bin))
    path.chmod(0o755)
    return path


def calls(wrapper) -> list:
    log = wrapper.with_name("docker.calls")
    found = log.read_text().split() if log.exists() else []
    log.unlink(missing_ok=True)
    return found


def test_env_is_captured_once_then_rendered_and_matches_export(tmp_path, docker_bin, base_image, counting_docker):
    workdir = make_workdir(tmp_path, "w", cann="8.0.RC2", seed=f"env-{time.time()}")
    tag = "ascend-build-test/stage-env:mindie"
    env = {**os.environ, "ASCEND_BUILD_DOCKER": str(counting_docker)}
    args = ["build", "-C", str(workdir), "--engine", "docker", "-t", tag, "--base-image", base_image]
    first = cli(*args, env=env)
    assert first.returncode == 0, first.stderr[-3000:]
    made = calls(counting_docker)
    assert made.count("build") == 3 and made.count("capture") == 2, made   # cann, mindie captured; then the image
    found = image_env(docker_bin, tag)
    assert found["ASCEND_TOOLKIT_HOME"] == "/usr/local/Ascend/ascend-toolkit/latest"
    assert found["ATB_HOME_PATH"].endswith("/atb/cxx_abi_0") and found["MINDIE_HOME"] == "/usr/local/Ascend/mindie/latest"
    assert "" not in found["LD_LIBRARY_PATH"].split(":")

    again = cli(*args, env={**env, BYPASS_ENV: "1"})      # the real rebuild, not the no-change fast path
    assert again.returncode == 0, again.stderr[-3000:]
    made = calls(counting_docker)
    assert made.count("build") == 1 and "capture" not in made and "run" not in made, made
    assert image_env(docker_bin, tag) == found

    plain = subprocess.run([docker_bin, "run", "--rm", "--network", "none", "--entrypoint", "python3", tag, "-c",
                            "import torch_npu, atb_llm; print('ok')"], capture_output=True, text=True)
    assert plain.returncode == 0 and "ok" in plain.stdout, plain.stderr     # nothing sourced: no entrypoint

    verified = cli("verify", tag, "--json", "--engine", "docker")
    report = json.loads(verified.stdout)
    check = next(c for c in report["checks"] if c["name"] == "ENV equals what the set_env.sh files give")
    assert verified.returncode == 0 and check["ok"], report
    stale = subprocess.run([docker_bin, "build", "-q", "-t", f"{tag}-stale", "-"], input=f"FROM {tag}\nENV MINDIE_HOME=/old\n",
                           text=True, capture_output=True, env={"DOCKER_BUILDKIT": "0", "PATH": os.environ["PATH"]})
    assert stale.returncode == 0, stale.stderr
    verified = cli("verify", f"{tag}-stale", "--json", "--engine", "docker")
    check = next(c for c in json.loads(verified.stdout)["checks"] if c["name"].startswith("ENV equals"))
    assert verified.returncode == 1 and not check["ok"] and check["detail"].startswith("MINDIE_HOME: image '/old'")

    out = tmp_path / "export"
    assert cli("export", "-C", str(workdir), "-o", str(out), "--base-image", base_image).returncode == 0
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    exported = subprocess.run(["bash", str(out / "dockerbuild.sh"), "--tag", f"{tag}-export", "--port", str(port)],
                              capture_output=True, text=True, timeout=600,
                              env={"PATH": f"{os.path.dirname(shutil.which(docker_bin))}:/usr/bin:/bin"})
    assert exported.returncode == 0, exported.stdout[-2000:] + exported.stderr[-2000:]
    assert image_env(docker_bin, f"{tag}-export") == found
    subprocess.run([docker_bin, "rmi", "-f", tag, f"{tag}-stale", f"{tag}-export"], capture_output=True)


@pytest.mark.parametrize("engine", ["docker", "podman"])
def test_hostile_values_read_back_unchanged_from_an_image(docker_bin, base_image, tmp_path, engine):
    values = {"DOLLAR": "$HOME/${PATH}", "QUOTES": "it's \"q\"", "BACKSLASH": "a\\b\\", "MIXED": "\\$x \\\"y\""}
    (tmp_path / "Dockerfile").write_text(f"FROM {base_image}\n" + dockerfile_env(values))
    binary = docker_bin if engine == "docker" else "podman"
    if engine == "podman" and subprocess.run(["podman", "image", "exists", base_image]).returncode != 0:
        subprocess.run(f"{docker_bin} save {base_image} | podman load", shell=True, check=True, capture_output=True)
    tag = "localhost/ascend-build-test/stage-env:hostile"
    built = subprocess.run([binary, "build", "-q", "-t", tag, str(tmp_path)], text=True, capture_output=True,
                           env={"DOCKER_BUILDKIT": "0", "PATH": os.environ["PATH"]})
    assert built.returncode == 0, built.stderr
    found = image_env(binary, tag)
    assert {k: found[k] for k in values} == values
    subprocess.run([binary, "rmi", "-f", tag], capture_output=True)
