"""`ascend-build data update` from a package index on 127.0.0.1 that holds a newer ascend-deployer:
the REAL wheel from the public index (cached once outside the repo) with a raised version and one
more manifest (CANN 9.1.0 and its driver), as Huawei's next release would look. What `check`
knows changes and says so; a broken download keeps the old data. Skipped, with the reason, only
when the public index cannot be reached and the cache is empty."""
import base64
import csv
import hashlib
import io
import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from ascend_build.catalog import deployer
from ascend_build.demo import standins
from ascend_build.errors import PackageError
from ascend_build.fetch import deployer_update
from clirun import cli
from test_real_stack import CACHE, index_reachable

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))
from test_fetch import Index  # noqa: E402

pytestmark = pytest.mark.e2e
REAL = "26.0.0"
CANN_91 = {"name": "CANN", "version": "9.1.0", "required_soft": [{"name": "NPU", "version": "26.1.0"}],
           "other": [{"filename": "Ascend-cann-toolkit_9.1.0_linux-aarch64.zip", "url": "https://example.invalid/t.zip",
                      "sha256": "ab" * 32}]}


@pytest.fixture(scope="module")
def real_wheel() -> Path:
    path = CACHE / f"ascend_deployer-{REAL}-py3-none-any.whl"
    if not path.exists():
        if not index_reachable():
            pytest.skip("the public package index (pypi.org) cannot be reached and the wheel cache is empty")
        CACHE.mkdir(parents=True, exist_ok=True)
        got = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-d", CACHE,
                              "--index-url", "https://pypi.org/simple", f"ascend-deployer=={REAL}"],
                             capture_output=True, text=True, timeout=600)
        assert got.returncode == 0, got.stderr
    return path


def raised(real: Path, folder: Path, version: str) -> Path:
    """The real wheel as release `version`, with a CANN 9.1.0 manifest and its torch_npu pairs."""
    out = folder / f"ascend_deployer-{version}-py3-none-any.whl"
    old_info, new_info = f"ascend_deployer-{REAL}.dist-info/", f"ascend_deployer-{version}.dist-info/"
    members = {}
    with zipfile.ZipFile(real) as zf:
        for info in zf.infolist():
            data = zf.read(info)
            name = info.filename.replace(old_info, new_info)
            if name == f"{new_info}METADATA":
                data = re.sub(rb"(?m)^Version: .*$", f"Version: {version}".encode(), data)
            elif name == "ascend_deployer/version.json":
                data = json.dumps({"name": "ascend-deployer", "version": version}).encode()
            elif name == "ascend_deployer/downloader/version_match.json":
                match = json.loads(data)
                match.update({"Torch-npu_2.12.0": "CANN_9.1.0", "Torch-npu_2.14.0": "CANN_9.2.0"})
                data = json.dumps(match).encode()
            members[name] = data
    members["ascend_deployer/downloader/software/CANN_9.1.0.json"] = json.dumps(CANN_91).encode()
    record = io.StringIO()
    writer = csv.writer(record, lineterminator="\n")
    for name, data in members.items():
        if not name.endswith("/RECORD"):
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            writer.writerow([name, f"sha256={digest}", len(data)])
    writer.writerow([f"{new_info}RECORD", "", ""])
    members[f"{new_info}RECORD"] = record.getvalue().encode()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return out


def npu_problem(work: Path) -> dict:
    """The problem `check` reports about the folder's torch_npu against its CANN."""
    result = cli("check", "-C", work, "--target", "pta", "--platform", "x86_64", "--engine", "none", "--json")
    found = [p for p in json.loads(result.stdout)["problems"] if p["code"].startswith("torch-npu-cann")]
    assert len(found) == 1, result.stdout[-2000:]
    return found[0]


@pytest.fixture
def data_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    deployer.current.cache_clear()
    yield tmp_path / "data" / "ascend-build" / "deployer.json"
    deployer.current.cache_clear()


def test_a_newer_deployer_on_the_index_changes_what_check_knows(real_wheel, tmp_path, data_home):
    newer = raised(real_wheel, tmp_path, "26.1.0")
    work = tmp_path / "w"
    assert cli("init", "--demo", work, "--cann", "9.0.0", "--arch", "x86_64", "--filler", 4096).returncode == 0
    for wheel in (work / "packages").glob("torch*.whl"):
        wheel.unlink()
    standins.make_torch(work / "packages", "2.14.0", "x86_64", "3.11", 1, 1024)
    standins.make_torch_npu(work / "packages", "2.14.0", "2.14.0", "x86_64", "3.11", 1024)
    before = npu_problem(work)
    assert before["level"] == "warning" and "newer than every release ascend-build knows" in before["message"]
    assert "ascend-build data update" in before["fix"]
    index = Index({"ascend-deployer": {real_wheel.name: real_wheel.read_bytes(), newer.name: newer.read_bytes()}})
    try:
        result = cli("data", "update", "--index-url", index.url)
        assert result.returncode == 0, result.stderr
        assert "ascend-deployer 26.1.0" in result.stderr and "CANN 9.1.0 -> driver 26.1.0" in result.stderr
        assert "was ascend-deployer 26.0.0 (shipped" in result.stderr
        kept = json.loads(data_home.read_text())
        assert kept["sha256"] == hashlib.sha256(newer.read_bytes()).hexdigest() and kept["version"] == "26.1.0"
        shipped = len(deployer.read_wheel(real_wheel)["files"])
        assert shipped > 300 and len(kept["files"]) == shipped + 1, "the real wheel's published files and the new one"
        after = npu_problem(work)                    # the new data pairs torch_npu 2.14.0 with CANN 9.2.0
        assert after["code"] == "torch-npu-cann-mismatch" and "released for CANN 9.2.0" in after["message"]
        shown = cli("data", "show")
        assert "ascend-deployer 26.1.0 (updated" in shown.stderr and "26.1.0" in shown.stderr
        again = cli("data", "update", "--index-url", index.url)
        assert again.returncode == 0 and "nothing changed" in again.stderr
        offline = cli("data", "update", "--wheel", newer)
        assert offline.returncode == 0 and "nothing changed" in offline.stderr
        assert not [p for p in data_home.parent.iterdir() if p.name != "deployer.json"], "no download left behind"
    finally:
        index.close()


def test_a_broken_download_keeps_the_old_data(real_wheel, tmp_path, data_home):
    newer = raised(real_wheel, tmp_path, "26.1.0")
    index = Index({"ascend-deployer": {newer.name: newer.read_bytes()}})
    try:
        def changed_after_resolving(*args):        # the file changes between the index page and the download
            found = real_resolve(*args)
            index.served[newer.name] = newer.read_bytes()[:-7] + b"changed"
            return found
        real_resolve = deployer_update.resolve
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(deployer_update, "resolve", changed_after_resolving)
            with pytest.raises(PackageError, match="refused"):
                deployer_update.from_index(index.url)
        assert not data_home.exists() and deployer.current()[0]["source"] == f"ascend-deployer {REAL}"
        assert not [p for p in data_home.parent.rglob("*") if p.is_file()], "no partial download left"
    finally:
        index.close()
    unreachable = cli("data", "update", "--index-url", "http://127.0.0.1:1/simple")
    assert unreachable.returncode == 1 and "Traceback" not in unreachable.stderr
    assert "the data in use is kept" in unreachable.stderr and not data_home.exists()
