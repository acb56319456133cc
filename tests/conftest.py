"""Shared fixtures. End-to-end tests need a container engine; when ASCEND_BUILD_REQUIRE_ENGINE=1
(set by .ci/run) a missing engine is a failure, not a skip."""
import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BASE_IMAGE = os.environ.get("ASCEND_BUILD_BASE_IMAGE", "localhost/ascend-build-base:bookworm")


def _engine_missing(reason: str):
    if os.environ.get("ASCEND_BUILD_REQUIRE_ENGINE") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def docker_bin() -> str:
    """The docker client, with a daemon answering and the test base image present."""
    binary = os.environ.get("ASCEND_BUILD_DOCKER", "docker")
    if not shutil.which(binary):
        _engine_missing(f"{binary} not found")
    if subprocess.run([binary, "info"], capture_output=True).returncode != 0:
        _engine_missing("no docker daemon answers")
    if subprocess.run([binary, "image", "inspect", BASE_IMAGE], capture_output=True).returncode != 0:
        _engine_missing(f"base image {BASE_IMAGE} missing: run scripts/make-base-image.sh")
    return binary


@pytest.fixture(scope="session")
def base_image(docker_bin) -> str:
    return BASE_IMAGE


@pytest.fixture(autouse=True)
def _engine_cache(tmp_path_factory, monkeypatch):
    """The engine probe's cache lives in a folder of the test session, not the user's."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.getbasetemp() / "xdg-cache"))


@pytest.fixture(autouse=True)
def _no_engine_for_check(request, monkeypatch):
    """Unit tests ask no container engine: `check` reads no base image there, in this process or in
    a `check` they run as a child process (its tests give a fake engine)."""
    if "unit" in Path(str(request.node.fspath)).parts:
        monkeypatch.setattr("ascend_build.settings.engine_for_check", lambda name: (None, "unit tests ask no engine"))
        monkeypatch.setenv("ASCEND_BUILD_CHECK_ENGINE", "none")
