"""MindSpore judged by the REAL wheel: the public `mindspore-2.10.0-cp311-none-any.whl` (aarch64 code
under an `any` tag, 355 MiB) on the stand-in CANN 9.0.0 for aarch64, tried as a new user would: the
wheel and the CANN packages in a folder → `check` names what is missing and the fetch command →
`fetch` → `build --target mindspore` for arm64 (its wheels installed on this CPU: the native install)
→ `verify`; then the same build fully under QEMU has the same files under the Python prefix (a .pyc may
differ only in its header and marshal's flags) and the same `pip list`. The wheel and what fetch brings are
cached outside the repo (once); skipped, with the reason, only when the index cannot be reached and
the cache is empty."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from clirun import cli
from test_real_stack import ARM64_BASE, CACHE, fetched_before, said
from trees import code_differs, differences, tree

pytestmark = pytest.mark.e2e
MINDSPORE = "2.10.0"
WHEEL = f"mindspore-{MINDSPORE}-cp311-none-any.whl"
FOLDER = CACHE / f"real-mindspore-aarch64-cp311-{MINDSPORE}"
FILL = 64 * 1024
ROOTS = ("/usr/local/lib/python3.11", "/usr/local/bin", "/usr/local/share", "/usr/local/include")


@pytest.fixture(scope="module")
def folder(docker_bin):
    """The stand-in CANN 9.0.0 (aarch64, no torch, no MindIE), the real MindSpore wheel, and what
    `fetch` completed; a stamp records a finished fetch, so later runs need no network."""
    stamp = FOLDER / ".fetched"
    if fetched_before(docker_bin, FOLDER):
        return FOLDER
    wheel = FOLDER / "packages" / WHEEL
    kept = wheel.read_bytes() if wheel.exists() and wheel.stat().st_size > 300 << 20 else None
    if FOLDER.exists():
        shutil.rmtree(FOLDER)
    assert cli("init", "--demo", FOLDER, "--arch", "aarch64", "--cann", "9.0.0", "--filler", FILL).returncode == 0
    for stand_in in (FOLDER / "packages").glob("*.whl"):
        stand_in.unlink()                                   # torch, torch_npu, MindIE: not this stack
    config = FOLDER / "ascend-build.yaml"
    text = "".join("target: mindspore\n" if line.startswith("target:") else line
                   for line in config.read_text().splitlines(keepends=True))
    config.write_text(text + f"\nbase_images:\n  aarch64: {ARM64_BASE}\n")
    if kept:
        wheel.write_bytes(kept)
    else:                                                   # as a user does: bring the wheel
        brought = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
                                  "--platform", "manylinux_2_28_aarch64", "--python-version", "3.11",
                                  "-d", FOLDER / "packages", "--index-url", "https://pypi.org/simple",
                                  f"mindspore=={MINDSPORE}"], capture_output=True, text=True, timeout=3600)
        assert brought.returncode == 0, brought.stdout + brought.stderr
    assert wheel.exists(), sorted(p.name for p in (FOLDER / "packages").iterdir())
    checked = cli("check", "-C", FOLDER, "--platform", "linux/arm64")
    assert checked.returncode == 1, said(checked)
    for missing in ("numpy", "protobuf", "scipy", "safetensors"):
        assert missing in said(checked), said(checked)
    assert "ascend-build fetch" in said(checked)
    fetched = cli("fetch", "-C", FOLDER, "--platform", "linux/arm64")
    assert fetched.returncode == 0, said(fetched)
    assert "glibc 2.36 (read from the base image)" in said(fetched), said(fetched)
    stamp.write_text(said(fetched))
    return FOLDER


def copy_of(folder: Path, tmp_path: Path) -> Path:
    workdir = tmp_path / "w"

    def link_packages(src, dest):
        return os.link(src, dest) if src.endswith((".whl", ".run")) else shutil.copy2(src, dest)

    shutil.copytree(folder, workdir, copy_function=link_packages, ignore=shutil.ignore_patterns(".ascend-build", ".fetched"))
    return workdir


def test_real_mindspore_builds_on_cann_and_imports_in_the_arm64_image(folder, tmp_path, docker_bin):
    workdir = copy_of(folder, tmp_path)
    checked = cli("check", "-C", workdir, "--platform", "linux/arm64", "--json")
    assert checked.returncode == 0, said(checked)
    chosen = json.loads(checked.stdout)
    assert sorted(chosen["stages"]) == ["base", "cann", "mindspore"], chosen["stages"]
    tag = f"ascend-build-test/real-mindspore:{tmp_path.name.lower()}"
    emulated = tag + "-emulated"
    report = tmp_path / "report.json"
    try:
        built = cli("build", "-C", workdir, "--platform", "linux/arm64", "-t", tag, "--engine", "buildkit",
                    "--port", "0", "--report", report, "--verify")
        assert built.returncode == 0, said(built)
        assert "import mindspore" in said(built) and f"mindspore {MINDSPORE}" in said(built)
        result = json.loads(report.read_text())
        stages = {s["name"]: s for s in result["stages"]}
        assert list(stages) == ["base", "cann", "mindspore"], stages
        assert result["emulation"]["stages"]["mindspore"]["native_wheels"] >= 5, result["emulation"]
        ran = subprocess.run([docker_bin, "run", "--rm", "--platform", "linux/arm64", tag, "python3", "-c",
                              "import mindspore; print(mindspore.__version__)"], capture_output=True, text=True, timeout=900)
        assert ran.returncode == 0 and ran.stdout.split()[-1] == MINDSPORE, ran.stdout + ran.stderr
        listed = subprocess.run([docker_bin, "run", "--rm", "--platform", "linux/arm64", tag, "python3", "-m", "pip",
                                 "list", "--format", "json"], capture_output=True, text=True, timeout=900)
        names = {p["name"].lower() for p in json.loads(listed.stdout)}
        assert "mindspore" in names and not {n for n in names if n.startswith(("nvidia", "cuda", "torch"))}, names
        print({name: (s.get("status"), s.get("seconds"), s.get("size")) for name, s in stages.items()})

        # the same stack fully under QEMU: the same files under the Python prefix and the same pip list
        built = cli("build", "-C", workdir, "--platform", "linux/arm64", "-t", emulated, "--engine", "buildkit",
                    "--port", "0", env={**os.environ, "ASCEND_BUILD_NATIVE_INSTALL": "off"})
        assert built.returncode == 0 and "native install: off" in said(built), said(built)
        a, b = tree(docker_bin, tag, ROOTS), tree(docker_bin, emulated, ROOTS)
        assert any(p.endswith("/mindspore-2.10.0.dist-info/RECORD") for p in a), len(a)
        found = differences(a, b)
        assert set(found) <= {"byte code"}, {k: v[:5] for k, v in found.items()}
        if sys.version_info[:2] == (3, 11):
            assert not code_differs(docker_bin, tag, emulated, found.get("byte code", []))
        lists = [subprocess.run([docker_bin, "run", "--rm", "--platform", "linux/arm64", "--network", "none", image, "python3",
                                 "-m", "pip", "list", "--format", "freeze"], capture_output=True, text=True, timeout=900).stdout
                 for image in (tag, emulated)]
        assert lists[0] == lists[1] and f"mindspore=={MINDSPORE}" in lists[0], lists
    finally:
        subprocess.run([docker_bin, "image", "rm", "--force", tag, emulated], capture_output=True)
