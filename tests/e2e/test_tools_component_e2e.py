"""A stack from outside the package goes all the way: the `tools` component of the test tree
(tests/unit/tools_component.py: a stage on cann, the middle of the graph), registered in each
command's process by with_tools.py with no file of the package changed, through `check`, `fetch`
(its helper wheel and CANN's Python tools from a package index on 127.0.0.1), `plan`, `build`
(real docker, linux/amd64, stand-in CANN) and `verify`."""
import io
import json
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from ascend_build.catalog.compat import load_deps
from ascend_build.demo.standins import build_wheel
from clirun import cli
from test_build import make_workdir

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))
from test_fetch import Index  # noqa: E402

pytestmark = pytest.mark.e2e
WITH_TOOLS = [sys.executable, str(Path(__file__).with_name("with_tools.py"))]
TOOLS = "Ascend-tools_1.2.0_linux-x86_64.tar.gz"
TAG = "ascend-build-test/tools:tools"


def with_tools(*args, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run([*WITH_TOOLS, *map(str, args)], capture_output=True, text=True, timeout=timeout)


def pure(name: str, version: str, body: bytes = b"") -> dict:
    module = name.replace("-", "_")
    return dict([build_wheel(module, version, ("py3", "none", ["any"]), {f"{module}/__init__.py": body})])


@pytest.fixture(scope="module")
def index():
    """The tools helper and CANN's Python tools (stand-ins) on 127.0.0.1."""
    projects = {name: pure(name, "1.0") for name in load_deps()["stage_tools"]["cann"]}
    projects["ascend-tools-py"] = {**pure("ascend-tools-py", "1.2.0", b'__version__ = "1.2.0"\n'),
                                   **pure("ascend-tools-py", "1.3.0", b'__version__ = "1.3.0"\n')}
    served = Index(projects)
    yield served
    served.close()


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, docker_bin):
    work = make_workdir(tmp_path_factory.mktemp("tools"), "w", seed=f"tools-{time.time()}")
    with tarfile.open(work / "packages" / TOOLS, "w:gz") as tar:
        data = b"#!/bin/sh\necho tools 1.2.0\n"
        info = tarfile.TarInfo("bin/tools")
        info.size, info.mode = len(data), 0o755
        tar.addfile(info, io.BytesIO(data))
    yield work
    subprocess.run([docker_bin, "rmi", "-f", TAG], capture_output=True)


def check(work: Path) -> dict:
    result = with_tools("check", "-C", work, "--target", "tools", "--platform", "linux/amd64", "--json")
    assert result.returncode in (0, 1), result.stderr[-2000:]
    return json.loads(result.stdout)


def test_a_test_tree_component_goes_through_check_fetch_plan_build_and_verify(workdir, index):
    unknown = cli("check", "-C", workdir, "--target", "tools")
    assert unknown.returncode != 0 and "tools" in unknown.stderr, "only the test tree knows the stage"

    before = check(workdir)
    assert before["ok"] and "tools-note" in {p["code"] for p in before["problems"]}
    assert "python-tools-missing" in {p["code"] for p in before["problems"]}, "the demo has no CANN tools"
    assert [p["file"] for p in before["packages"] if p["stage"] == "tools"] == [f"packages/{TOOLS}"]

    fetched = with_tools("fetch", "-C", workdir, "--target", "tools", "--platform", "linux/amd64",
                         "--python", "3.11", "--index-url", index.url, "--torch-index-url", index.url)
    assert fetched.returncode == 0, fetched.stderr[-3000:]
    assert "tools 1.2.0 (its helper ascend-tools-py)" in fetched.stderr
    helper = [p.name for p in workdir.glob("ascend_tools_py-*.whl")]
    assert len(helper) == 1 and helper[0].startswith("ascend_tools_py-1.2.0-"), "the tarball's release, not the newest"

    after = check(workdir)
    codes = {p["code"] for p in after["problems"]}
    assert after["ok"] and "python-tools-missing" not in codes, after["problems"]
    tools_stage = {p["slot"]: p["file"] for p in after["packages"] if p["stage"] == "tools"}
    assert tools_stage == {"tools": f"packages/{TOOLS}", "tools_py": helper[0]}

    out = workdir.parent / "plan"
    planned = with_tools("plan", "-C", workdir, "--target", "tools", "--platform", "linux/amd64", "-o", out)
    assert planned.returncode == 0, planned.stderr[-2000:]
    dockerfile = (out / "Dockerfile").read_text()
    assert "FROM cann AS tools" in dockerfile and " AS pta" not in dockerfile and " AS mindie" not in dockerfile
    assert f'ab_pip "$PKG_DIR"/{helper[0]}' in (out / "scripts" / "install_tools.sh").read_text()

    report = workdir.parent / "report.json"
    built = with_tools("build", "-C", workdir, "--target", "tools", "--platform", "linux/amd64", "--engine", "buildkit",
                       "-t", TAG, "--report", report)
    assert built.returncode == 0, built.stderr[-3000:]
    assert [s["name"] for s in json.loads(report.read_text())["stages"]] == ["base", "cann", "tools"]
    ran = subprocess.run(["docker", "run", "--rm", "--network", "none", TAG, "bash", "-lc", '"$TOOLS_HOME"/bin/tools'],
                         capture_output=True, text=True, timeout=120)
    assert ran.stdout.strip() == "tools 1.2.0", ran.stderr

    verified = with_tools("verify", TAG, "--engine", "docker", "--json")
    result = json.loads(verified.stdout)
    assert verified.returncode == 0 and result["ok"], result
    names = {c["name"] for c in result["checks"]}
    assert {"tools home set", "import ascend_tools_py", "toolkit version matches label"} <= names
    plain = json.loads(cli("verify", TAG, "--engine", "docker", "--json").stdout)
    assert "tools home set" not in {c["name"] for c in plain["checks"]}, "its probes come with the component"
