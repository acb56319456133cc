"""Native install (issue 24), end to end: an arm64 mindie image built the fast way (cann's tools and
pta's wheels installed, and checked, on this x86_64 host's CPU; MindIE's bundled mindie_llm wheel, which its
.run pip-installs, and the ATB tarball's atb_llm wheel installed by the image's pip run by this host's python3) and one built fully under QEMU
(ASCEND_BUILD_NATIVE_INSTALL=off) have the same files under the Python prefix and what cann's
.run installers installed with this host's byte tools (names, types, modes, owners, sizes, sha256 of
every non-.pyc file, RECORD included; no mount point left), the same `pip list`, a
clean `pip check`, and both pass `verify`. A .pyc may differ only in its header's source mtime
(each image's sources have their own mtime) and in marshal's reference flags: its code object
loads equal, co_filename included. Then the cache: a changed wheel rebuilds its stage only, and a
changed installer rebuilds cann with the byte tools of the cached helper stage."""
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from clirun import cli
from ascend_build.demo import standins
from test_real_stack import index_reachable
from trees import differences, code_differs, tree

pytestmark = pytest.mark.e2e
ARM64_BASE = "localhost/ascend-build-base:bookworm-arm64"
HOST_BASE = "localhost/ascend-build-base:bookworm"
CACHE = Path(os.environ.get("ASCEND_BUILD_TEST_CACHE", Path.home() / ".cache" / "ascend-build-tests")) / "closure" / "aarch64"
CLOSURE = ("sympy", "mpmath", "networkx", "jinja2", "markupsafe", "filelock", "fsspec", "typing_extensions")
PINS = {"sympy": "sympy==1.14.0"}               # what the checks below name
ROOTS = ("/usr/local/lib/python3.11", "/usr/local/bin", "/usr/local/share", "/usr/local/include", "/usr/include/python3.11",
         "/usr/local/Ascend", "/tmp")        # cann's installers ran with the host's byte tools in one
FILL = 64 * 1024


def said(result) -> str:
    return result.stdout + result.stderr


@pytest.fixture(scope="module")
def arm64(docker_bin):
    for image in (ARM64_BASE, HOST_BASE):
        if subprocess.run([docker_bin, "image", "inspect", image], capture_output=True).returncode != 0:
            pytest.skip(f"{image} missing: scripts/make-base-image.sh [--arch arm64]")
    if not all(any(CACHE.glob(f"{name}-*.whl")) for name in CLOSURE):
        if not index_reachable():
            pytest.skip(f"the public package index (pypi.org) cannot be reached and {CACHE} lacks the closure's wheels")
        brought = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--only-binary", ":all:", "--platform",
                                  "manylinux2014_aarch64", "--python-version", "3.11", "-d", CACHE, "--index-url",
                                  "https://pypi.org/simple", *(PINS.get(name, name) for name in CLOSURE)],
                                 capture_output=True, text=True, timeout=1800)
        assert brought.returncode == 0, brought.stdout + brought.stderr
    return docker_bin


def make_workdir(root: Path) -> Path:
    workdir = root / "w"
    assert cli("init", "--demo", workdir, "--arch", "aarch64", "--cann", "8.0.RC2", "--filler", FILL).returncode == 0
    standins.generate(workdir / "packages", cann="8.0.RC2", arch="aarch64", fill=FILL, seed=f"native-{time.time()}")
    for wheel in CACHE.glob("*.whl"):
        shutil.copy(wheel, workdir / "packages" / wheel.name)
    with open(workdir / "requirements.txt", "a") as out:
        out.write("".join(f"{name}\n" for name in CLOSURE))
    with open(workdir / "ascend-build.yaml", "a") as config:
        config.write(f"\nbase_images:\n  aarch64: {ARM64_BASE}\n")
    return workdir


def build(workdir: Path, tag: str, engine: str, env=None):
    report = workdir.parent / f"{tag.replace(':', '-').replace('/', '-')}.json"
    result = cli("build", "-C", workdir, "--platform", "linux/arm64", "--target", "mindie", "--engine", engine,
                 "-t", tag, "--report", report, env={**os.environ, **(env or {})})
    assert result.returncode == 0, said(result)[-4000:]
    return result, json.loads(report.read_text())


def into_docker(engine: str, tag: str) -> str:
    """The image as docker names it: podman's are copied over (`podman run` cannot run here)."""
    if engine != "podman":
        return tag
    subprocess.run(f"podman save --format docker-archive localhost/{tag} | docker load", shell=True, check=True,
                   capture_output=True, timeout=600)
    return f"localhost/{tag}"


def in_image(binary: str, image: str, *cmd):
    return subprocess.run([binary, "run", "--rm", "--platform", "linux/arm64", "--network", "none", image, *cmd],
                          capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize("engine", ["buildkit", "podman"])
def test_fast_and_emulated_arm64_images_are_the_same(arm64, tmp_path, engine):
    if engine == "podman":
        for image in (ARM64_BASE, HOST_BASE):
            if subprocess.run(["podman", "image", "exists", image]).returncode != 0:
                subprocess.run(f"docker save {image} | podman load", shell=True, check=True, capture_output=True)
    workdir = make_workdir(tmp_path)
    names = f"ascend-build-test/native-{engine}:fast", f"ascend-build-test/native-{engine}:emulated"
    try:
        result, report = build(workdir, names[0], engine)
        assert "native install: the wheels of cann, pta install on this x86_64 CPU in " + HOST_BASE in said(result)
        assert report["emulation"]["stages"]["pta"]["native_wheels"] >= 7 and report["emulation"]["native_image"] == HOST_BASE
        assert report["emulation"]["stages"]["cann"]["native_tools"] and report["emulation"]["stages"]["pta"]["native_tools"]
        log = (workdir / report["log"]).read_text()
        assert "ascend-build[cann]: byte tools: the build host's (coreutils diffutils findutils grep gzip sed tar wget)" in log
        for stage in ("cann", "pta"):          # pip check's rule, by this host's python3 on what the image's says
            assert f"ascend-build[{stage}]: pip check (by the build host's python3)" in log
        assert "installed on this CPU by the image's pip (run by the build host's python3)" in log
        # MindIE's .run pip-installs its bundled wheel through the python3 shim: on this CPU too
        assert re.search(r"ascend-build\[mindie\]: native-stage: mindie_llm-\S+\.whl installed on this CPU", log), log
        assert "native install: in mindie, a wheel installed by itself" in said(result)
        off, _ = build(workdir, names[1], engine, {"ASCEND_BUILD_NATIVE_INSTALL": "off"})
        assert "native install: off" in said(off)
        fast, emulated = into_docker(engine, names[0]), into_docker(engine, names[1])

        a, b = tree(arm64, fast, ROOTS), tree(arm64, emulated, ROOTS)
        assert len(a) > 3000 and any(p.endswith("/sympy-1.14.0.dist-info/RECORD") for p in a)
        assert any(p.startswith("/usr/local/Ascend/ascend-toolkit/8.0.RC2/") for p in a)
        assert any(p.endswith("/atb_llm-1.0rc2.dist-info/RECORD") for p in a) and any("/atb-models/" in p for p in a)
        assert not tree(arm64, fast, ("/lib64", "/usr/lib/x86_64-linux-gnu", "/tmp/ab-tools"))
        found = differences(a, b)
        assert set(found) <= {"byte code"}, {k: v[:5] for k, v in found.items()}
        if sys.version_info[:2] == (3, 11):
            assert not code_differs(arm64, fast, emulated, found.get("byte code", []))

        lists = [in_image(arm64, image, "python3", "-m", "pip", "list", "--format", "freeze") for image in (fast, emulated)]
        assert lists[0].returncode == 0 and lists[0].stdout == lists[1].stdout and "sympy==1.14.0" in lists[0].stdout
        assert "atb_llm==1.0rc2" in lists[0].stdout
        for image in (fast, emulated):
            check = in_image(arm64, image, "python3", "-m", "pip", "check")
            assert check.returncode == 0, check.stdout + check.stderr
            verified = cli("verify", image, "--engine", "buildkit")
            assert verified.returncode == 0, said(verified)

        # the cache stays exact: nothing changed, nothing built; a changed wheel rebuilds its stage only
        _, again = build(workdir, names[0], engine)
        assert [s["status"] for s in again["stages"]] == ["cached"] * 4
        wheel = standins.make_torch_npu(workdir / "packages", "2.1.0.post6", "2.1.0", "aarch64", "3.11", FILL, seed="changed")
        changed, report = build(workdir, names[0], engine)
        assert {s["name"]: s["status"] for s in report["stages"]} == {"base": "cached", "cann": "cached", "pta": "built",
                                                                      "mindie": "built"}
        fast = into_docker(engine, names[0])
        with zipfile.ZipFile(wheel) as z:
            want = hashlib.sha256(z.read("torch_npu/standin-filler.bin")).hexdigest()
        shown = in_image(arm64, fast, "sha256sum", "/usr/local/lib/python3.11/dist-packages/torch_npu/standin-filler.bin")
        assert shown.returncode == 0 and shown.stdout.split()[0] == want, shown.stdout + shown.stderr
        # another installer under the same name: cann again, with the byte tools of the cached native-tools stage
        # (podman 4.3 mounts a stage whose last step is a cached RUN as it was before that RUN)
        standins.make_toolkit(workdir / "packages", "8.0.RC2", "aarch64", FILL, seed="changed")
        _, report = build(workdir, names[0], engine)
        assert {s["name"]: s["status"] for s in report["stages"]} == {"base": "cached", "cann": "built", "pta": "built",
                                                                      "mindie": "built"}
        log = (workdir / report["log"]).read_text()
        assert "ascend-build[cann]: byte tools: the build host's (coreutils diffutils findutils grep gzip sed tar wget)" in log
    finally:
        subprocess.run([arm64, "rmi", "-f", *names, *(f"localhost/{n}" for n in names)], capture_output=True)
        if engine == "podman":
            subprocess.run(["podman", "rmi", "-f", *names], capture_output=True)
