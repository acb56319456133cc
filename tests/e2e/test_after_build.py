"""After the build: verify, inspect and export on real images built from stand-ins."""
import json
import socket
import subprocess
import time

import pytest

from clirun import cli
from test_build import make_workdir

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def built(tmp_path_factory, docker_bin, base_image):
    root = tmp_path_factory.mktemp("after")
    workdir = make_workdir(root, "w", seed=f"after-{time.time()}")
    tag = "ascend-build-test/after:mindie"
    result = cli("build", "-C", str(workdir), "--engine", "buildkit", "-t", tag, "--verify")
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"verify {tag}" in result.stderr and "FAILED" not in result.stderr  # build --verify ran the checks
    yield workdir, tag
    subprocess.run(["docker", "rmi", "-f", tag], capture_output=True)


def verify(image):
    result = cli("verify", image, "--json", "--engine", "docker")
    return result.returncode, json.loads(result.stdout)


def derived(base: str, tag: str, *lines: str, context=None) -> str:
    dockerfile = "\n".join([f"FROM {base}", *lines]) + "\n"
    subprocess.run(["docker", "build", "-q", "-t", tag, "-f", "-", str(context or ".")], input=dockerfile, text=True,
                   check=True, capture_output=True, env={"DOCKER_BUILDKIT": "0", "PATH": "/usr/bin:/bin:/usr/local/bin"})
    return tag


def failed(report):
    return {c["name"] for c in report["checks"] if not c["ok"]}


def test_a_built_image_passes_verify(built):
    code, report = verify(built[1])
    assert code == 0 and report["ok"], report
    names = {c["name"] for c in report["checks"]}
    assert {"import torch_npu", "import mindie_llm", "pip check clean", "toolkit version matches label"} <= names


def test_wrong_label_missing_env_and_leftover_installer_fail_verify(built, tmp_path):
    workdir, tag = built
    wrong = derived(tag, "ascend-build-test/after:wrong-label", "LABEL io.ascend-build.toolkit.version=9.9.9")
    code, report = verify(wrong)
    assert code == 1 and failed(report) == {"toolkit version matches label"}

    no_env = derived(tag, "ascend-build-test/after:no-env", 'ENV ASCEND_TOOLKIT_HOME="" ASCEND_HOME_PATH=""')
    code, report = verify(no_env)
    assert code == 1 and {"toolkit environment set without sourcing", "import torch_npu"} <= failed(report)

    run = next((workdir / "packages").glob("Ascend-cann-nnal_*.run"))
    leftover = derived(tag, "ascend-build-test/after:leftover", f"COPY {run.name} /opt/", context=run.parent)
    code, report = verify(leftover)
    assert code == 1 and failed(report) == {"no installer or download folder left"}
    detail = next(c["detail"] for c in report["checks"] if not c["ok"])
    assert run.name in detail
    subprocess.run(["docker", "rmi", "-f", wrong, no_env, leftover], capture_output=True)


def test_verify_refuses_an_image_not_built_by_the_tool(base_image):
    result = cli("verify", base_image, "--engine", "docker")
    assert result.returncode == 1 and "not built by ascend-build" in result.stderr


def test_inspect_reports_components_and_stage_sizes(built):
    result = cli("inspect", built[1], "--json", "--engine", "docker")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["target"] == "mindie"
    assert {c["name"] for c in data["components"]} == {"toolkit", "kernels", "nnal", "torch", "torch-npu", "mindie"}   # MindIE 2.3 bundles the ATB models
    sizes = {s["name"]: s["size_bytes"] for s in data["stages"]}
    assert list(sizes) == ["base", "cann", "pta", "mindie"]
    assert sizes["cann"] > 3 * 256 * 1024  # toolkit + ops + nnal payloads installed


def test_exported_folder_builds_with_only_docker_and_python(built, tmp_path):
    workdir, _ = built
    out = tmp_path / "export"
    result = cli("export", "-C", str(workdir), "-o", str(out))
    assert result.returncode == 0, result.stderr
    for name in ("Dockerfile", "dockerbuild.sh", "README.md", "scripts/install_cann.sh", "scripts/install_pta.sh",
                 "scripts/install_mindie.sh", "packages.txt"):
        assert (out / name).is_file(), name
    assert "ARG ASCEND_PKG_URL=http://172.17.0.1:3000/" in (out / "Dockerfile").read_text()
    helptext = subprocess.run(["bash", str(out / "dockerbuild.sh"), "--help"], capture_output=True, text=True).stdout
    for option in ("--target", "--tag", "--port", "--base-image"):
        assert option in helptext
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    tag = "ascend-build-test/export:mindie"
    env = {"PATH": "/usr/bin:/bin:/usr/local/bin"}  # no ascend-build on PATH
    build = subprocess.run(["bash", str(out / "dockerbuild.sh"), "--target", "mindie", "--tag", tag, "--port", str(port)],
                           capture_output=True, text=True, env=env, timeout=600)
    assert build.returncode == 0, build.stdout[-2000:] + build.stderr[-2000:]
    assert "io.ascend-build.target=mindie" in build.stdout
    code, report = verify(tag)
    assert code == 0, report
    assert subprocess.run(["pgrep", "-f", f"http.server {port}"], capture_output=True).returncode == 1, "server left running"
    subprocess.run(["docker", "rmi", "-f", tag], capture_output=True)
