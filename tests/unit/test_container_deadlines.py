"""Containers the tool starts to look into an image have a deadline, are named so they can be
removed, and are removed when the deadline passes or the tool is interrupted; captured values the
engine's Dockerfile parser cannot take are refused when they are captured. Fake docker clients
only: the real engine's side is in tests/e2e/test_hung_steps_e2e.py."""
import json
import re
import signal
import time

import pytest

from ascend_build.capture import MAX_LINE, RefusedValue, dockerfile_env
from ascend_build.components import SetEnv, StagePlan
from ascend_build.engines.docker import Docker
from ascend_build.errors import BuildError, ConfigError, Interrupted, StepTimeout
from ascend_build.stage_env import capture_in, parse_capture
from fakes import docker_client

HANGS = """  "run --rm") sleep 30 ;;
  "rm --force") exit 0 ;;
"""


def calls(docker):
    path = docker.with_name("docker.calls")
    return path.read_text().splitlines() if path.exists() else []


def engine(docker, deadline: float) -> Docker:
    found = Docker(str(docker))
    found.container_timeout = deadline
    return found


def stage() -> StagePlan:
    return StagePlan(name="cann", parent="base", files=[], script="", set_env=[
        SetEnv("ab_source /usr/local/Ascend/ascend-toolkit/set_env.sh", "/usr/local/Ascend/ascend-toolkit/set_env.sh")])


def test_a_set_env_that_never_returns_is_stopped_at_the_deadline_and_its_container_removed(tmp_path):
    docker = docker_client(tmp_path / "docker", HANGS)
    began = time.monotonic()
    with pytest.raises(StepTimeout) as caught:
        capture_in(engine(docker, 1), "sha256:1", stage())
    assert time.monotonic() - began < 10
    err = caught.value
    assert err.message.startswith("set_env.sh of stage cann (sourcing /usr/local/Ascend/ascend-toolkit/set_env.sh) "
                                  "did not end in 1 s")
    assert "daemon" not in err.message + err.fix and "must return" in err.fix and "ASCEND_BUILD_CONTAINER_TIMEOUT" in err.fix
    run, removed = calls(docker)[0], calls(docker)[-1]
    name = re.search(r"--name (ascend-build-capture-[0-9a-f]{8}) ", run).group(1)
    assert removed == f"rm --force {name}" and name in err.message


def test_an_interrupted_run_removes_its_container(tmp_path):
    docker = docker_client(tmp_path / "docker", HANGS)
    slow = engine(docker, 60)

    def interrupt(signum, frame):
        raise Interrupted("interrupted")
    previous = signal.signal(signal.SIGALRM, interrupt)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.5)
        with pytest.raises(Interrupted):
            slow.run_container("img", ["-c", "pass"], entrypoint="python3", purpose="verify")
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    name = re.search(r"--name (ascend-build-verify-[0-9a-f]{8}) ", calls(docker)[0]).group(1)
    assert calls(docker)[-1] == f"rm --force {name}"


def test_the_container_deadline_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("ASCEND_BUILD_CONTAINER_TIMEOUT", "7")
    assert Docker("docker").container_timeout == 7
    monkeypatch.setenv("ASCEND_BUILD_CONTAINER_TIMEOUT", "soon")
    with pytest.raises(ConfigError, match="ASCEND_BUILD_CONTAINER_TIMEOUT='soon' is not a positive number"):
        Docker("docker")
    monkeypatch.delenv("ASCEND_BUILD_CONTAINER_TIMEOUT")
    assert Docker("docker").container_timeout == 600


def test_a_step_shorter_than_the_deadline_keeps_its_own_limit(tmp_path):
    docker = docker_client(tmp_path / "docker", HANGS)
    with pytest.raises(StepTimeout, match="npu-smi info in image img did not end in 1 s"):
        engine(docker, 600).run_container("img", ["npu-smi", "info"], timeout=1, step="npu-smi info in image img")


def test_a_value_too_long_for_a_dockerfile_line_is_refused_naming_the_variable():
    fits = "x" * (MAX_LINE - len('BIG=""') - 7)
    assert dockerfile_env({"BIG": fits}).count("\n") == 1
    with pytest.raises(RefusedValue, match=r"sourcing set BIG to a value of 70000 bytes: its Dockerfile line would "
                                           r"be 70013 bytes, over the 65535"):
        dockerfile_env({"BIG": "x" * 70000, "SMALL": "1"})
    with pytest.raises(RefusedValue, match="BIG"):
        dockerfile_env({"BIG": fits + "x"})
    many = {f"V{i}": "y" * 60000 for i in range(3)}        # one line each: together they are fine
    assert len(dockerfile_env(many)) > 3 * 60000


def test_the_capture_refuses_it_naming_the_set_env_file():
    output = json.dumps({"before": {"PATH": "/bin"}, "after": {"PATH": "/bin", "BIG": "x" * 70000}})
    with pytest.raises(BuildError) as caught:
        parse_capture(stage(), output)
    assert "stage cann: sourcing set BIG to a value of 70000 bytes" in caught.value.message
    assert "/usr/local/Ascend/ascend-toolkit/set_env.sh" in caught.value.message
