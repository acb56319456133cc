"""Packages as Huawei ships them, end to end: signed CANN zips (stand-ins signed by a CA made at
test time), built and verified; damaged or foreign-signed zips refused by `check`."""
import json
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from clirun import cli
from ascend_build.demo import standins

pytestmark = pytest.mark.e2e
FILL = "256KiB"


def signed_workdir(root: Path, name: str) -> Path:
    workdir = root / name
    result = cli("init", "--demo", str(workdir), "--signed", "--filler", FILL)
    assert result.returncode == 0, result.stderr
    return workdir


def check_json(workdir: Path, target: str = "mindie"):
    result = cli("check", "-C", str(workdir), "--target", target, "--json")
    return result.returncode, json.loads(result.stdout)


def test_signed_zip_family_builds_and_passes_verify(tmp_path, docker_bin, base_image):
    workdir = signed_workdir(tmp_path, "signed")
    code, data = check_json(workdir)
    assert code == 0, data["problems"]
    cann = [p for p in data["packages"] if p["stage"] == "cann"]
    assert cann and {p["signature"] for p in cann} == {"verified (demo-root)"} and all(p["from"].endswith(".zip") for p in cann)
    tag = "ascend-build-test/signed:mindie"
    try:
        result = cli("build", "-C", str(workdir), "-t", tag, "--verify", "--port", "0")
        assert result.returncode == 0, result.stderr[-3000:]
        assert f"verify {tag}" in result.stderr and "FAILED" not in result.stderr
        labels = json.loads(subprocess.run([docker_bin, "image", "inspect", tag], capture_output=True, text=True,
                                           check=True).stdout)[0]["Config"]["Labels"]
        assert labels["io.ascend-build.toolkit.file"].endswith(".run")        # the inner package was installed
        print(f"\nsigned-zip image {tag} built and verified")
    finally:
        subprocess.run([docker_bin, "rmi", "-f", tag], capture_output=True)


def test_a_flipped_byte_and_an_unknown_ca_fail_check_with_the_reason(tmp_path):
    flipped = signed_workdir(tmp_path, "flipped")
    path = next((flipped / "packages").glob("Ascend-cann-toolkit_*.zip"))
    with zipfile.ZipFile(path) as zf:
        members = [(i.filename, bytearray(zf.read(i))) for i in zf.infolist()]
    for name, data in members:
        if name.endswith(".run"):
            data[len(data) // 2] ^= 1
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members:
            zf.writestr(name, bytes(data))
    code, data = check_json(flipped)
    problem = next(p for p in data["problems"] if p["code"] == "signature-invalid")
    assert code == 1 and path.name in problem["file"] and "does not verify" in problem["message"]

    foreign = signed_workdir(tmp_path, "foreign")
    other = standins.make_ca(tmp_path / "other-ca", name="unknown CA")
    shutil.rmtree(foreign / "packages")
    standins.generate(foreign / "packages", cann="8.5.0", arch=json.loads(cli("check", "-C", str(flipped), "--json").stdout)["arch"],
                      fill=64 << 10, signed_by=other)
    code, data = check_json(foreign)
    reasons = [p["message"] for p in data["problems"] if p["code"] == "signature-invalid"]
    assert code == 1 and len(reasons) == 3 and all("demo-root" in r for r in reasons)
    print("\n" + "\n".join(reasons))


@pytest.mark.parametrize("cann, imports", [
    ("8.5.0", "import mindie_llm, atb_llm; print('imports-ok')"),            # MindIE 2.3 .run bundles the ATB models
    ("9.0.0", "import mindie_llm, mindie_sd, mindie_motor; print('imports-ok')"),   # MindIE 3.0 wheels
])
def test_mindie_as_it_ships_builds_to_mindie(tmp_path, docker_bin, base_image, cann, imports):
    workdir = tmp_path / cann
    result = cli("init", "--demo", str(workdir), "--cann", cann, "--filler", FILL)
    assert result.returncode == 0, result.stderr
    code, data = check_json(workdir)
    assert code == 0, data["problems"]
    assert not [p for p in data["packages"] if p["component"] in ("atb_llm", "atb_models")]
    tag = f"ascend-build-test/mindie-{cann}:mindie"
    try:
        result = cli("build", "-C", str(workdir), "-t", tag, "--verify", "--port", "0")
        assert result.returncode == 0, result.stderr[-3000:]
        assert "FAILED" not in result.stderr
        ran = subprocess.run([docker_bin, "run", "--rm", "--network", "none", tag, "python3", "-c", imports],
                             capture_output=True, text=True, timeout=120)
        assert "imports-ok" in ran.stdout, ran.stderr
    finally:
        subprocess.run([docker_bin, "rmi", "-f", tag], capture_output=True)


def image_size(docker_bin: str, tag: str) -> int:
    return int(subprocess.run([docker_bin, "image", "inspect", "-f", "{{.Size}}", tag], capture_output=True, text=True,
                              check=True).stdout)


def test_an_nnrt_image_is_smaller_than_the_toolkit_image(tmp_path, docker_bin, base_image):
    sizes = {}
    try:
        for family in ("8.3.RC1", "8.3.RC1-nnrt"):
            workdir = tmp_path / family
            assert cli("init", "--demo", str(workdir), "--cann", family, "--filler", "4MiB").returncode == 0
            tag = f"ascend-build-test/{family.lower()}:mindie"
            result = cli("build", "-C", str(workdir), "-t", tag, "--port", "0", "--verify")
            assert result.returncode == 0, result.stderr[-3000:]
            assert "FAILED" not in result.stderr
            sizes[family] = image_size(docker_bin, tag)
            ran = subprocess.run([docker_bin, "run", "--rm", "--network", "none", tag, "python3", "-c",
                                  "import os, torch_npu, mindie_llm; print(os.environ['ASCEND_HOME_PATH'])"],
                                 capture_output=True, text=True, timeout=120)
            home = "nnrt" if family.endswith("nnrt") else "ascend-toolkit"
            assert ran.stdout.strip() == f"/usr/local/Ascend/{home}/latest", ran.stderr
        print(f"\nimage sizes (stand-ins, 4 MiB filler): toolkit {sizes['8.3.RC1']} bytes, nnrt {sizes['8.3.RC1-nnrt']} bytes")
        assert sizes["8.3.RC1-nnrt"] < sizes["8.3.RC1"]
    finally:
        for family in ("8.3.RC1", "8.3.RC1-nnrt"):
            subprocess.run([docker_bin, "rmi", "-f", f"ascend-build-test/{family.lower()}:mindie"], capture_output=True)
