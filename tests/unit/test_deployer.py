"""The tables from ascend-deployer (catalog/deployer.py): read from a wheel, shipped, updated into
the user's data folder from a wheel given by path (the newer one wins), `data show`. The update
from a package index, with the real wheel, is tests/e2e/test_data_update.py."""
import json
import zipfile
from pathlib import Path

import pytest

from ascend_build.catalog import deployer
from ascend_build.components.pta_rules import pta_data, torch_npu_table
from ascend_build.errors import PackageError
from clirun import cli

SHIPPED = deployer.current()[0]


def deployer_wheel(folder: Path, version: str, *, npu_for_91: str = "26.1.0", extra_pair=("2.14.0", "9.2.0")) -> Path:
    """An ascend-deployer wheel as Huawei ships it (manifests, required_soft, version_match.json),
    with a CANN 9.1.0 release and one more torch_npu pair than the shipped data."""
    wheel = folder / f"ascend_deployer-{version}-py3-none-any.whl"
    cann = {"name": "CANN", "version": "9.1.0", "required_soft": [{"name": "NPU", "version": npu_for_91}],
            "other": [{"filename": "Ascend-cann-toolkit_9.1.0_linux-aarch64.zip", "url": "u", "sha256": "AB" * 32}]}
    match = {"Torch-npu_2.12.0": "CANN_9.1.0", f"Torch-npu_{extra_pair[0]}": f"CANN_{extra_pair[1]}",
             "MindSpore_2.10.0": "CANN_9.1.0", "NoneMatched": ["NPU_26.1.0"]}
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("ascend_deployer/downloader/software/CANN_9.1.0.json", json.dumps(cann))
        zf.writestr("ascend_deployer/downloader/software/DL_7.3.0.json", json.dumps({"x": {"filename": "a", "sha256": "0"}}))
        zf.writestr("ascend_deployer/downloader/version_match.json", json.dumps(match))
    return wheel


@pytest.fixture(autouse=True)
def _data_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    deployer.current.cache_clear()
    yield
    deployer.current.cache_clear()


def test_a_wheel_gives_checksums_drivers_and_pairs(tmp_path):
    data = deployer.read_wheel(deployer_wheel(tmp_path, "27.0.0"))
    assert data["source"] == "ascend-deployer 27.0.0" and len(data["sha256"]) == 64
    assert data["files"] == {"Ascend-cann-toolkit_9.1.0_linux-aarch64.zip": {
        "sha256": "ab" * 32, "url": "u", "manifest": "CANN_9.1.0"}}, "DL manifests are not Huawei's CANN/torch files"
    assert data["cann_driver"] == {"9.1.0": "26.1.0"}
    assert data["pairs"] == {"torch_npu": {"2.12.0": "9.1.0", "2.14.0": "9.2.0"}, "mindspore": {"2.10.0": "9.1.0"}}


def test_the_shipped_tables_come_from_the_real_wheel():
    assert SHIPPED["source"] == "ascend-deployer 26.0.0" and len(SHIPPED["files"]) > 300
    assert SHIPPED["cann_driver"]["8.5.0"] == "25.5.0" and SHIPPED["cann_driver"]["9.0.0"] == "26.0.RC1"
    assert SHIPPED["pairs"]["torch_npu"]["2.6.0.post5"] == "8.5.0"
    assert "2.6.0.post5" in torch_npu_table(pta_data())["8.5.0"]


@pytest.mark.parametrize("name, body", [("notes.whl", b"x"), ("ascend_deployer-1.0-py3-none-any.whl", b"not a zip")])
def test_what_is_not_a_deployer_wheel_is_one_error(tmp_path, name, body):
    (tmp_path / name).write_bytes(body)
    with pytest.raises(PackageError):
        deployer.read_wheel(tmp_path / name)


def test_update_from_a_wheel_by_path_wins_only_when_newer(tmp_path):
    older = cli("data", "update", "--wheel", deployer_wheel(tmp_path, "25.0.0"))
    assert older.returncode == 0 and "not newer" in older.stderr
    assert deployer.current()[0]["source"] == SHIPPED["source"]
    result = cli("data", "update", "--wheel", deployer_wheel(tmp_path, "27.0.0"))
    assert result.returncode == 0, result.stderr
    assert "ascend-deployer 27.0.0" in result.stderr and "9.1.0" in result.stderr
    deployer.current.cache_clear()
    data, where = deployer.current()
    assert data["source"] == "ascend-deployer 27.0.0" and "updated" in where
    assert "2.14.0" in torch_npu_table(pta_data())["9.2.0"]
    shown = cli("data", "show", "--json")
    assert json.loads(shown.stdout)["source"] == "ascend-deployer 27.0.0"
