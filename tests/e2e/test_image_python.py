"""The base image's Python, read through the engine: `check` reads it once per image id, and
wheels for another Python fail `build` before the engine builds anything."""
import json
import subprocess

import pytest

from clirun import cli
from ascend_build.catalog import pythons

pytestmark = pytest.mark.e2e


def demo(tmp_path, python: str):
    workdir = tmp_path / f"py{python}"
    result = cli("init", "--demo", str(workdir), "--python", python, "--filler", "4KiB")
    assert result.returncode == 0, result.stderr
    return workdir


def test_check_reads_the_base_images_python_once(tmp_path, docker_bin, base_image):
    workdir = demo(tmp_path, "3.11")
    result = cli("check", "-C", workdir, "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["python"] == "3.11" and base_image in data["python_source"] and "Python 3.11." in data["python_source"]
    image_id = subprocess.run([docker_bin, "image", "inspect", "--format", "{{.Id}}", base_image], capture_output=True,
                              text=True, check=True).stdout.strip()
    cached = json.loads(pythons.CACHE.path.read_text())[image_id]
    assert cached["version"].startswith("3.11.") and "pip" in cached["packages"] and cached["glibc"].startswith("glibc 2.")
    written = pythons.CACHE.path.stat().st_mtime_ns
    assert cli("check", "-C", workdir, "--json").returncode == 0
    assert pythons.CACHE.path.stat().st_mtime_ns == written          # the second check ran no container
    offline = json.loads(cli("check", "-C", workdir, "--json", "--engine", "none").stdout)
    assert "--engine none" in offline["python_source"]


def test_cp310_wheels_on_a_311_base_fail_before_the_engine_builds(tmp_path, docker_bin, base_image):
    workdir = demo(tmp_path, "3.10")
    tag = "ascend-build-test/cp310:x"
    result = cli("build", "-C", workdir, "--target", "pta", "-t", tag)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "python-mismatch" in result.stderr and "cp310" in result.stderr and "Python 3.11" in result.stderr
    assert base_image in result.stderr and "engine:" not in result.stderr
    assert subprocess.run([docker_bin, "image", "inspect", tag], capture_output=True).returncode != 0
