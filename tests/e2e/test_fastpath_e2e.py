"""The no-change fast path with a real daemon: a second build of the same folder is answered by
it (the image the daemon has), a touched package sends the build through the engine again."""
import json
import os
import subprocess

import pytest

from clirun import cli

pytestmark = pytest.mark.e2e


def test_a_second_build_takes_the_fast_path_and_a_touched_package_does_not(tmp_path, docker_bin, base_image):
    workdir, report = tmp_path / "w", tmp_path / "report.json"
    assert cli("init", "--demo", workdir, "--filler", "64KiB").returncode == 0
    tag = f"ascend-build-test/fast-{''.join(c for c in tmp_path.name.lower() if c.isalnum())}:cann"
    args = ["build", "-C", workdir, "-t", tag, "--target", "cann", "--engine", "docker", "--base-image", base_image,
            "--report", report]      # the classic builder: the URL (port 3000) is a build argument
    try:
        first = cli(*args)
        assert first.returncode == 0 and "no change" not in first.stderr, first.stderr[-3000:]
        built = json.loads(report.read_text())

        again = cli(*args)
        assert again.returncode == 0 and "no change since the last build" in again.stderr, again.stderr[-3000:]
        answered = json.loads(report.read_text())
        assert answered["image_id"] == built["image_id"] and [s["status"] for s in answered["stages"]] == ["cached"] * 2
        image = json.loads(subprocess.run([docker_bin, "image", "inspect", tag], capture_output=True, text=True).stdout)[0]
        assert image["Id"] == answered["image_id"] and image["Size"] == answered["size_bytes"]

        package = next((workdir / "packages").glob("Ascend-cann-toolkit_*.run"))
        os.utime(package)
        touched = cli(*args)
        assert touched.returncode == 0 and "no change" not in touched.stderr, touched.stderr[-3000:]
        rebuilt = json.loads(report.read_text())
        assert rebuilt["image_id"] == built["image_id"], "same bytes: the engine's cache gives the same image"
        assert "no change since the last build" in cli(*args).stderr
    finally:
        subprocess.run([docker_bin, "rmi", "-f", tag], capture_output=True)
