"""fetch completes the folder: the torch_npu (and torch) already there decide the release; another
release is fetched only when named, and the old wheels are named, never deleted; no CUDA
distribution is ever downloaded; a dry run writes nothing. Against the package index of
test_fetch.py, on 127.0.0.1, with a torch 2.12.0 that is a CUDA build, as PyPI's aarch64 torch is
from 2.11 on."""
from pathlib import Path

import pytest

from ascend_build.demo.standins import make_torch
from ascend_build.errors import ConfigError, PackageError
from ascend_build.fetch import describe, fetch, plan_fetch
from test_fetch import Index, _binary, _pure, folder, index_files, names, options

ARM = "manylinux_2_17_aarch64.manylinux2014_aarch64"
CUDA = ["nvidia-nccl-cu13", "cuda-toolkit", "triton"]
UNREACHABLE = "http://127.0.0.1:1/simple"          # nothing listens on port 1: connection refused


@pytest.fixture(scope="module")
def index():
    projects = index_files()
    projects["torch"].update(_binary("torch", "2.12.0", ["filelock", *CUDA]))
    projects["torch-npu"].update(_binary("torch_npu", "2.12.0", ["torch==2.12.0"]))
    for name in CUDA:
        projects[name] = _pure(name.replace("-", "_"), "13.0")
    served = Index(projects)
    yield served
    served.close()


def _bring(workdir: Path, index: Index, *names_: str) -> None:
    for name in names_:
        (workdir / name).write_bytes(index.files[name])


def test_the_folders_torch_npu_decides_and_nothing_else_is_fetched_for_it(index, tmp_path):
    workdir = folder(tmp_path, "Ascend-cann-toolkit_8.5.0_linux-aarch64.run")
    npu, torch = f"torch_npu-2.6.0.post5-0standin-cp311-cp311-{ARM}.whl", f"torch-2.6.0-0standin-cp311-cp311-{ARM}.whl"
    _bring(workdir, index, npu, torch)
    plan = plan_fetch(workdir, options(index, platform="linux/arm64"))        # no --torch-npu: the table says 2.9.0
    assert "torch_npu 2.6.0.post5" in plan.wants.said
    assert not any(r.startswith(("torch-npu==", "torch==")) for r in plan.wants.requirements)
    result = fetch(plan)
    got = names(workdir)
    assert [n for n in got if n.startswith("torch")] == [torch, npu], "one torch and one torch_npu after fetch"
    assert any(n.startswith("filelock-") for n in got), "torch's own dependencies are completed"
    assert not any(p.name.startswith("torch") for p in result.fetched)


def test_a_named_release_is_fetched_beside_and_the_old_wheels_are_named(index, tmp_path):
    workdir = folder(tmp_path, "Ascend-cann-toolkit_8.5.0_linux-aarch64.run")
    old = make_torch(workdir, "2.5.1", "aarch64", "3.11", 0, 1024).name
    plan = plan_fetch(workdir, options(index, platform="linux/arm64", torch_npu="2.6.0.post5"))
    assert [p.name for p in plan.wants.set_aside] == [old]
    assert any(old in line and "move it away" in line for line in describe(plan))
    fetch(plan)
    assert (workdir / old).exists(), "never deleted"


def test_the_folders_torch_alone_narrows_the_table(index, tmp_path):
    workdir = folder(tmp_path, "Ascend-cann-toolkit_8.5.0_linux-aarch64.run")
    _bring(workdir, index, f"torch-2.6.0-0standin-cp311-cp311-{ARM}.whl")
    assert "torch_npu 2.6.0.post5" in plan_fetch(workdir, options(index, platform="aarch64")).wants.said
    other = folder(tmp_path / "other", "Ascend-cann-toolkit_8.5.0_linux-aarch64.run")
    make_torch(other, "2.4.0", "aarch64", "3.11", 0, 1024)
    with pytest.raises(ConfigError, match="torch 2.4.0 has no torch_npu made for CANN 8.5.0"):
        plan_fetch(other, options(index, platform="aarch64"))


def test_two_torch_npu_wheels_and_no_choice_is_one_clear_error(index, tmp_path):
    workdir = folder(tmp_path, "Ascend-cann-toolkit_8.5.0_linux-aarch64.run")
    _bring(workdir, index, f"torch_npu-2.6.0.post5-0standin-cp311-cp311-{ARM}.whl")
    (workdir / f"torch_npu-2.9.0-cp311-cp311-{ARM}.whl").write_bytes(b"x")
    with pytest.raises(ConfigError, match="several torch_npu wheels"):
        plan_fetch(workdir, options(index, platform="aarch64"))
    chosen = plan_fetch(workdir, options(index, platform="aarch64", torch_npu="2.6.0.post5"))
    assert "torch_npu 2.6.0.post5" in chosen.wants.said


def test_a_cuda_build_of_torch_is_refused_before_anything_is_downloaded(index, tmp_path):
    workdir = folder(tmp_path, "Ascend-cann-toolkit_8.5.0_linux-aarch64.run")
    with pytest.raises(PackageError) as caught:
        fetch(plan_fetch(workdir, options(index, platform="aarch64", torch_npu="2.12.0")))
    message = caught.value.message
    assert all(n in message for n in CUDA) and "nothing was downloaded" in message
    assert "--torch-index-url" in caught.value.fix
    assert names(workdir) == [] and not list(workdir.glob(".*.part"))


def test_an_unreachable_cpu_index_falls_back_only_to_a_cpu_build(index, tmp_path):
    workdir = folder(tmp_path, "Ascend-cann-toolkit_8.5.0_linux-aarch64.run")
    notes = []
    plan = plan_fetch(workdir, options(index, platform="aarch64", torch_npu="2.12.0", torch_index_url=UNREACHABLE))
    with pytest.raises(PackageError, match=f"torch's CPU index {UNREACHABLE} cannot be reached"):
        fetch(plan, note=notes.append)
    assert notes and UNREACHABLE in notes[0] and names(workdir) == []
    plan = plan_fetch(workdir, options(index, platform="aarch64", torch_npu="2.6.0.post5", torch_index_url=UNREACHABLE))
    fetch(plan)                                  # torch 2.6.0 of the main index is a CPU build: fine
    assert any(n.startswith("torch-2.6.0-") for n in names(workdir))


def test_a_dry_run_lists_what_it_would_download_and_writes_nothing(index, tmp_path):
    workdir = folder(tmp_path, "Ascend-cann-toolkit_8.5.0_linux-aarch64.run")
    before = sorted(p.name for p in workdir.rglob("*"))
    index.ranges.clear()
    result = fetch(plan_fetch(workdir, options(index, platform="aarch64", torch_npu="2.6.0.post5")), dry_run=True)
    assert {w.name for w in result.pending} >= {"torch", "torch-npu", "filelock"} and not result.fetched
    assert sorted(p.name for p in workdir.rglob("*") if ".ascend-build" not in p.parts) == \
        [n for n in before if n != ".ascend-build"]
    assert index.ranges == [], "no wheel was requested"
