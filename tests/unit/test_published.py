"""Huawei's published checksums (catalog/published.json, from ascend-deployer's manifests): every
official file name is identified, and `check` tells published builds from others."""
import hashlib
import json
import re

import pytest

from ascend_build.catalog import published
from ascend_build.catalog.naming import identify
from ascend_build.catalog.view import to_json
from ascend_build.catalog.problems import PUBLISHED_MISMATCH
from ascend_build.catalog.model import file_patterns
from ascend_build.components.registry import components

NAMES = file_patterns(components())   # the file names the components declare

from test_check import make_set, run

FILES = published.files()
# manifest kind -> the components its files may be
KINDS = {"CANN": {"toolkit", "nnrt", "nnae", "kernels", "ops", "toolbox"},
         "MindIE-image": {"mindie", "mindie_image"}, "Torch-npu": {"torch", "torch_npu"},
         "MindSpore": {"mindspore"}, "TensorFlow": {"wheel"}}      # TensorFlow: no component of its own: plain wheels
CHIP_COMPONENTS = {"kernels", "ops", "mindie_image"}


def test_source_is_recorded():
    assert re.fullmatch(r"ascend-deployer \d+\.\d+\.\d+", published.source())
    assert len(FILES) > 300 and all(re.fullmatch(r"[0-9a-f]{64}", f.sha256) for f in FILES.values())


@pytest.mark.parametrize("name", sorted(FILES))
def test_every_official_name_is_identified(name):
    found = identify(name, NAMES)
    assert found is not None, name
    kind, version = FILES[name].manifest.split("_")[0], FILES[name].manifest.rsplit("_", 1)[1].rsplit("-", 1)[-1]
    assert found.component in KINDS[kind]
    assert found.version and found.arch in ("aarch64", "x86_64")
    assert (found.chip is not None) == (found.component in CHIP_COMPONENTS)
    if found.component in ("toolkit", "nnrt", "nnae", "kernels", "ops"):
        assert found.version == version and found.format == "zip"
    if found.component == "mindie":
        assert found.version == version and found.abi in (0, 1)


def test_cann_zips_of_every_release():
    cann = [identify(n, NAMES) for n, f in FILES.items() if f.manifest.startswith("CANN_")]
    forms = {(i.component, i.version) for i in cann}
    assert {("nnrt", "8.3.RC1"), ("nnae", "8.1.RC1"), ("toolkit", "9.0.0"), ("ops", "9.0.0")} <= forms
    assert not {c for c, v in forms if v in ("8.5.0", "9.0.0")} & {"nnrt", "nnae", "kernels"}


def test_a_published_name_with_other_bytes_is_an_error(tmp_path):
    work = make_set(tmp_path)
    name = "torch_npu-2.6.0.post5-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
    assert name in FILES
    standin = next((work / "packages").glob("torch_npu-*"))
    standin.rename(standin.with_name(name))
    selection = run(work, "pta")
    mismatch = [p for p in selection.problems if p.code == PUBLISHED_MISMATCH]
    assert len(mismatch) == 1 and mismatch[0].level == "error" and not selection.ok
    assert FILES[name].sha256 in mismatch[0].message and FILES[name].url in mismatch[0].fix
    row = next(p for p in to_json(selection)["packages"] if p["file"] == f"packages/{name}")
    assert row["published"] == published.NOT_PUBLISHED


def test_stand_ins_are_not_published_builds(tmp_path):
    selection = run(make_set(tmp_path), "pta")
    rows = [p for p in to_json(selection)["packages"] if p["selected"]]
    assert rows and {p["published"] for p in rows} == {published.NOT_PUBLISHED}
    assert PUBLISHED_MISMATCH not in {p.code for p in selection.problems}


def test_a_published_build_is_shown_as_published(tmp_path, monkeypatch):
    work = make_set(tmp_path)
    path = next((work / "packages").glob("torch_npu-*"))
    data = json.loads(json.dumps(published.load()))
    data["files"][path.name] = {"sha256": hashlib.sha256(path.read_bytes()).hexdigest(), "url": "u", "manifest": "Torch-npu_x"}
    monkeypatch.setattr(published, "load", lambda: data)
    row = next(p for p in to_json(run(work, "pta"))["packages"] if p["file"] == f"packages/{path.name}")
    assert row["published"] == published.PUBLISHED
