"""The vLLM-Ascend stack end to end on the stand-ins of the demo family 9.1.0: `--target vllm`
builds base → cann → pta → vllm (no MindIE), vLLM built from its sdist for no device inside the
stage, its build requirements never in the image, verify passing; a no-change rebuild builds
nothing again; on linux/arm64 under QEMU too when its base image is here."""
import io
import json
import subprocess
import tarfile
import zipfile
from pathlib import Path

import pytest

from clirun import cli

pytestmark = pytest.mark.e2e
ARM64_BASE = "localhost/ascend-build-base:bookworm-arm64"


def said(result) -> str:
    return result.stdout + result.stderr


def in_image(docker_bin: str, tag: str, platform: str, *command: str) -> subprocess.CompletedProcess:
    return subprocess.run([docker_bin, "run", "--rm", "--platform", platform, tag, *command],
                          capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize("arch, platform", [("x86_64", "linux/amd64"), ("aarch64", "linux/arm64")])
def test_vllm_from_source_on_torch_npu(tmp_path, docker_bin, base_image, arch, platform):
    if arch == "aarch64" and subprocess.run([docker_bin, "image", "inspect", ARM64_BASE],
                                            capture_output=True).returncode != 0:
        pytest.skip(f"{ARM64_BASE} missing: scripts/make-base-image.sh --arch arm64")
    workdir = tmp_path / "w"
    assert cli("init", "--demo", workdir, "--cann", "9.1.0", "--arch", arch, "--filler", "64KiB").returncode == 0
    with (workdir / "ascend-build.yaml").open("a") as config:
        config.write(f"\nbase_images:\n  aarch64: {ARM64_BASE}\n")
    tag = f"ascend-build-test/vllm-stack:{arch}-{tmp_path.name.lower()}"
    report = tmp_path / "report.json"
    try:
        built = cli("build", "-C", workdir, "--target", "vllm", "--platform", platform, "-t", tag, "--port", "0",
                    "--verify", "--report", report, "--no-cache")
        assert built.returncode == 0, said(built)[-4000:]
        assert "FAILED" not in said(built), said(built)[-4000:]
        log = Path(json.loads(report.read_text())["log"])
        assert "building vllm-0.23.0.tar.gz" in (log if log.is_absolute() else workdir / log).read_text()
        assert [s["name"] for s in json.loads(report.read_text())["stages"]] == ["base", "cann", "pta", "vllm"]
        version = in_image(docker_bin, tag, platform, "vllm", "--version")
        assert version.returncode == 0 and version.stdout.strip() == "0.23.0+empty", said(version)
        listed = in_image(docker_bin, tag, platform, "python3", "-m", "pip", "list", "--format", "json")
        names = {p["name"].lower().replace("_", "-") for p in json.loads(listed.stdout)}
        assert {"vllm", "vllm-ascend", "triton-ascend", "torch-npu"} <= names, names
        assert not names & {"cmake", "triton"}, "build requirements and the community triton stay out"
        left = in_image(docker_bin, tag, platform, "sh", "-c",          # BuildKit leaves empty mount points
                        "find /tmp -type f; find / -name 'vllm-*.tar.gz' -not -path '/proc/*'")
        assert left.stdout.strip() == "", left.stdout
        again = cli("build", "-C", workdir, "--target", "vllm", "--platform", platform, "-t", tag, "--port", "0",
                    "--report", report)
        assert again.returncode == 0, said(again)[-3000:]
        stages = {s["name"]: s["status"] for s in json.loads(report.read_text()).get("stages", [])}
        assert "building vllm" not in said(again) and set(stages.values()) <= {"cached"}, (stages, said(again)[-2000:])
        # another vllm-ascend wheel under the same name: the stage again, the vLLM sdist not (its builder is cached)
        ours = next((workdir / "packages").glob("vllm_ascend-*.whl"))
        with zipfile.ZipFile(ours, "a") as wheel:
            wheel.writestr("vllm_ascend/changed.txt", "another build")
        changed = cli("build", "-C", workdir, "--target", "vllm", "--platform", platform, "-t", tag, "--port", "0",
                      "--report", report)
        assert changed.returncode == 0, said(changed)[-3000:]
        stages = {s["name"]: s["status"] for s in json.loads(report.read_text())["stages"]}
        assert stages["vllm"] == "built" and stages["pta"] == "cached", stages
        assert "stage vllm-sdists: cached" in said(changed), said(changed)[-3000:]
    finally:
        subprocess.run([docker_bin, "image", "rm", "--force", tag], capture_output=True)


def podman_file(tag: str, path: str) -> bytes:
    """A file of a podman image, read without running it (`podman run` cannot set its rlimits here)."""
    cid = subprocess.run(["podman", "create", tag, "true"], capture_output=True, text=True, check=True).stdout.strip()
    try:
        data = subprocess.run(["podman", "cp", f"{cid}:{path}", "-"], capture_output=True, check=True).stdout
    finally:
        subprocess.run(["podman", "rm", "-f", cid], capture_output=True)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return tar.extractfile(tar.getmembers()[0]).read()


def test_podman_rebuilds_the_vllm_stack_exactly(tmp_path, docker_bin, base_image):
    """podman 4.3 (buildah 1.28) keys a RUN by its text, not by the stage it mounts, and mounts a
    stage whose last step is a cached RUN as it was before that RUN: another vllm-ascend wheel
    under the same name builds vllm again on the cached vllm-sdists (its wheels mounted), and
    another vLLM sdist under the same name builds both again, its change in the image."""
    if subprocess.run(["podman", "image", "exists", base_image]).returncode != 0:
        subprocess.run(f"docker save {base_image} | podman load", shell=True, check=True, capture_output=True)
    workdir = tmp_path / "w"
    assert cli("init", "--demo", workdir, "--cann", "9.1.0", "--arch", "x86_64", "--filler", "64KiB").returncode == 0
    tag = f"ascend-build-test/vllm-podman:{tmp_path.name.lower()}"
    report = tmp_path / "report.json"

    def build():
        built = cli("build", "-C", workdir, "--engine", "podman", "--target", "vllm", "-t", tag, "--port", "0",
                    "--report", report)
        assert built.returncode == 0, said(built)[-3000:]
        return said(built), {s["name"]: s["status"] for s in json.loads(report.read_text())["stages"]}

    try:
        build()
        ours = next((workdir / "packages").glob("vllm_ascend-*.whl"))
        with zipfile.ZipFile(ours, "a") as wheel:
            wheel.writestr("vllm_ascend/changed.txt", "another build")
        out, stages = build()
        assert stages == {"base": "cached", "cann": "cached", "pta": "cached", "vllm": "built"}, stages
        assert "stage vllm-sdists: cached" in out, out[-3000:]
        assert podman_file(tag, "/usr/local/lib/python3.11/dist-packages/vllm_ascend/changed.txt") == b"another build"

        sdist = workdir / "packages" / "vllm-0.23.0.tar.gz"
        unpacked = tmp_path / "sdist"
        with tarfile.open(sdist) as tar:
            tar.extractall(unpacked)
        (unpacked / "vllm-0.23.0" / "vllm" / "patched.py").write_text("PATCHED = True\n")
        with tarfile.open(sdist, "w:gz") as tar:
            tar.add(unpacked / "vllm-0.23.0", "vllm-0.23.0")
        out, stages = build()
        assert stages["vllm"] == "built" and "stage vllm-sdists: built" in out, (stages, out[-3000:])
        assert podman_file(tag, "/usr/local/lib/python3.11/dist-packages/vllm/patched.py") == b"PATCHED = True\n"
    finally:
        subprocess.run(["podman", "rmi", "-f", tag], capture_output=True)


def test_vllm_ascend_from_its_source_compiles_for_the_chip(tmp_path, docker_bin, base_image):
    """vllm-ascend's sdist instead of its wheel: built in the stage with COMPILE_CUSTOM_KERNELS and the
    chip's SOC_VERSION, against the installed torch_npu and CANN's environment."""
    from ascend_build.demo import standins

    workdir = tmp_path / "w"
    assert cli("init", "--demo", workdir, "--cann", "9.1.0", "--filler", "64KiB").returncode == 0
    for wheel in (workdir / "packages").glob("vllm_ascend-*.whl"):
        wheel.unlink()
    standins.make_vllm_ascend_sdist(workdir / "packages", standins.family("9.1.0"))
    tag = f"ascend-build-test/vllm-ascend-source:{tmp_path.name.lower()}"
    try:
        built = cli("build", "-C", workdir, "--target", "vllm", "-t", tag, "--port", "0", "--verify")
        assert built.returncode == 0 and "FAILED" not in said(built), said(built)[-4000:]
        soc = in_image(docker_bin, tag, "linux/amd64", "python3", "-c",
                       "from vllm_ascend import _build_info; print(_build_info.SOC_VERSION)")
        assert soc.returncode == 0 and soc.stdout.strip() == "ascend910b1", said(soc)
    finally:
        subprocess.run([docker_bin, "image", "rm", "--force", tag], capture_output=True)
