"""`ascend-build doctor` over prepared host trees (--host-root): no NPU needed. Device nodes are
regular files with the owner and mode of real ones; npu-smi is a script."""
import json
import os
from pathlib import Path

import pytest

from ascend_build.doctor import ERROR, NOTE, OK, WARNING, ImageFacts, doctor, driver_version
from clirun import cli

IMAGE = ImageFacts("ascend:9.0.0", cann="9.0.0", user="HwHiAiUser", uid=1000, gid=1000)


def host(root: Path, driver: str = "26.0.RC1", gid: int = 1000, npu_smi: str = "echo '| NPU  Name |'",
         runtime: bool = False, hccn: bool = False) -> Path:
    """A host tree as an NPU host has it: driver version.info, 2 cards and the control devices
    (owned by HwHiAiUser, 0660), npu-smi, the install record."""
    (root / "usr/local/Ascend/driver").mkdir(parents=True)
    (root / "usr/local/Ascend/driver/version.info").write_text(
        f"Version={driver}\nascendhal_version=7.35.23\npackage_version={driver}\n")
    (root / "dev").mkdir()
    for name in ("davinci0", "davinci1", "davinci_manager", "devmm_svm", "hisi_hdc"):
        node = root / "dev" / name
        node.write_text("")
        os.chown(node, 1000, gid) if os.geteuid() == 0 else None
        node.chmod(0o660)
    (root / "usr/local/bin").mkdir(parents=True)
    (root / "usr/local/bin/npu-smi").write_text(f"#!/bin/sh\n{npu_smi}\n")
    (root / "usr/local/bin/npu-smi").chmod(0o755)
    (root / "etc").mkdir()
    (root / "etc/ascend_install.info").write_text("Driver_Install_Path_Param=/usr/local/Ascend\n")
    if runtime:
        (root / "usr/local/Ascend/Ascend-Docker-Runtime").mkdir()
    if hccn:
        (root / "etc/hccn.conf").write_text("address_0=10.0.0.1\n")
    return root


def levels(rows) -> dict:
    return {r.check: r.level for r in rows}


def test_a_matching_host_is_all_ok(tmp_path):
    rows = doctor(host(tmp_path, runtime=True, hccn=True), IMAGE, multi_card=True)
    assert set(levels(rows).values()) == {OK}, rows
    assert levels(rows).keys() >= {"driver", "devices", "device access", "npu-smi", "Ascend Docker Runtime",
                                   "ascend_install.info", "hccn.conf"}


def test_a_driver_older_than_the_images_cann_needs_is_an_error_naming_both(tmp_path):
    [driver] = [r for r in doctor(host(tmp_path, driver="25.5.0"), IMAGE) if r.check == "driver"]
    assert driver.level == ERROR and "25.5.0" in driver.detail and "26.0.RC1" in driver.detail
    assert "CANN 9.0.0" in driver.detail and "upgrade" in driver.fix


@pytest.mark.skipif(os.geteuid() != 0, reason="device owners need root to set")
def test_devices_of_another_group_are_a_warning_with_the_fix(tmp_path):
    rows = doctor(host(tmp_path, gid=1001), ImageFacts("i", "9.0.0", "HwHiAiUser", 1001 + 1, 1000))
    [access] = [r for r in rows if r.check == "device access"]
    assert access.level == WARNING and "/dev/davinci0 (1000:1001 rw-rw----)" in access.detail
    assert "--user 1002:1001" in access.fix and "gid: 1001" in access.fix
    root_image = ImageFacts("i", "9.0.0", "root", 0, 0)
    assert levels(doctor(tmp_path, root_image))["device access"] == OK


def test_no_runtime_is_a_note_and_busy_npu_smi_an_error(tmp_path):
    rows = doctor(host(tmp_path, npu_smi="echo 'dcmi model initialized failed, because the device is used. ret is -8005'; exit 1"))
    assert levels(rows)["Ascend Docker Runtime"] == NOTE
    [smi] = [r for r in rows if r.check == "npu-smi"]
    assert smi.level == ERROR and "another container" in smi.fix


def test_no_driver_and_no_devices(tmp_path):
    rows = doctor(tmp_path, IMAGE)
    assert levels(rows)["driver"] == ERROR and levels(rows)["devices"] == ERROR
    assert driver_version("Version=25.0.rc1.1\n") == "25.0.rc1.1" and driver_version("package_version=25.5.0") == "25.5.0"


def test_an_unknown_cann_release_is_a_warning_with_data_update(tmp_path):
    [driver] = [r for r in doctor(host(tmp_path), ImageFacts("i", "9.9.0", "root", 0, 0)) if r.check == "driver"]
    assert driver.level == WARNING and "ascend-build data update" in driver.fix


def test_the_command_line_exit_codes_and_json(tmp_path):
    good = cli("doctor", "--host-root", host(tmp_path / "good"), "--json")
    assert good.returncode == 0, good.stderr
    data = json.loads(good.stdout)
    assert data["ok"] and {r["check"] for r in data["rows"]} >= {"driver", "devices", "npu-smi"}
    bad = cli("doctor", "--host-root", tmp_path / "empty")
    assert bad.returncode == 1 and "no NPU driver" in bad.stderr and "Traceback" not in bad.stderr
    assert cli("doctor", "--host-root", tmp_path, "--profile", "nope").returncode == 1
