"""The vllm stage: vLLM from its sdist (what its wheel requires read from requirements/common.txt
inside, not from the CUDA build's PKG-INFO; its build requirements besides the installed torch
resolved apart and never installed), vllm-ascend's pairs, and what fetch asks the index for
(the paired sdist, downloaded as it is; triton-ascend named where it is published). Against the
stand-ins of the demo family 9.1.0 and a package index on 127.0.0.1."""
import io
import shutil
import tarfile
from pathlib import Path

import pytest

from ascend_build.catalog.check import check
from ascend_build.catalog.sdist import read_sdist
from ascend_build.chain import stage_chain
from ascend_build.components import vllm
from ascend_build.components.registry import components
from ascend_build.demo import standins
from ascend_build.errors import ConfigError, PackageError
from ascend_build.fetch import FetchOptions, fetch, plan_fetch
from ascend_build.plan import plan_for
from ascend_build.settings import Options, settings_for
from ascend_build.spec import BuildSpec
from test_fetch import Index, _pure, index_files


@pytest.fixture(scope="module")
def family_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("vllm-family")
    standins.generate(folder, cann="9.1.0", arch="x86_64", fill=1024, elf=False)
    return folder


def workdir(tmp_path: Path, family_files: Path, drop=()) -> Path:
    work = tmp_path / "work"
    (work / "packages").mkdir(parents=True)
    (work / "ascend-build.yaml").write_text("target: vllm\narch: x86_64\npython: '3.11'\n")
    for path in family_files.iterdir():
        if not path.name.startswith(("mindie", *drop)):
            shutil.copy(path, work / "packages" / path.name)
    return work


def checked(work: Path):
    settings = settings_for(work, Options())
    found = check(work, settings.spec, components(), settings.builtin_chain, settings.builtin_target, settings.arch)
    return found, {p.code: p for p in found.problems}


def test_target_vllm_builds_on_pta_without_mindie():
    assert stage_chain(BuildSpec(target="vllm"), "vllm") == ["base", "cann", "pta", "vllm"]


def test_the_sdists_requirements_come_from_the_file_the_component_names(family_files):
    sdist = family_files / "vllm-0.23.0.tar.gz"
    built_for_cuda = read_sdist(sdist)
    assert "torch==2.11.0" in built_for_cuda.requires             # PKG-INFO: the CUDA build's
    empty = read_sdist(sdist, vllm.BUILD.requirements)
    assert empty.requires == ("regex", "ninja")                   # common.txt, its -r followed, comments gone
    assert "torch == 2.11.0" in empty.build_requires and empty.version == "0.23.0"


def test_check_takes_the_sdist_and_keeps_its_build_requirements_out_of_the_image(tmp_path, family_files):
    selection, problems = checked(workdir(tmp_path, family_files))
    assert not [p for p in selection.problems if p.level == "error"], selection.problems
    assert [p.name for p in selection.find("vllm")] == ["vllm-0.23.0.tar.gz"]
    builds = sorted(p.name.split("-")[0] for p in selection.build_index["vllm"])
    assert builds == ["cmake", "ninja"]                                   # setuptools, wheel: the image's
    assert "cmake" not in {p.name.split("-")[0] for p in selection.pip_index["vllm"]}, "never installed"
    assert "ninja" in {p.name.split("-")[0] for p in selection.pip_index["vllm"]}, "vLLM's wheel needs it too"
    assert selection.build_requires["packages/vllm-0.23.0.tar.gz"] == ["setuptools>=61", "wheel", "cmake>=3.26.1", "ninja"]
    assert "cuda-in-image" not in problems


def test_the_plan_builds_vllm_for_no_device_and_installs_no_build_requirement(tmp_path, family_files):
    work = workdir(tmp_path, family_files)
    plan = plan_for(settings_for(work, Options()))
    script = next(s for s in plan.stages if s.name == "vllm").script
    assert "ab_build_sdist \"$PKG_DIR\"/vllm-0.23.0.tar.gz VLLM_TARGET_DEVICE=empty -- 'setuptools>=61' wheel " \
           "'cmake>=3.26.1' ninja" in script
    install = next(line for line in script.splitlines() if line.startswith("ab_pip "))
    assert '"$AB_BUILT"/*.whl' in install and "vllm_ascend-0.23.0" in install and "cmake" not in install
    assert [s.name for s in plan.stages] == ["base", "cann", "pta", "vllm"]


def test_a_dependency_with_no_wheel_builds_from_its_sdist_against_the_images_torch(tmp_path, family_files):
    """arctic-inference (vllm-ascend requires it) has only an sdist whose build pins torch 2.7.0: it
    builds in the stage against the image's torch, and no torch 2.7.0 is asked for."""
    work = workdir(tmp_path, family_files)
    selection, problems = checked(work)
    assert not [p for p in selection.problems if p.level == "error"], selection.problems
    assert "arctic_inference-0.1.1.tar.gz" in {p.name for p in selection.pip_index["vllm"]}
    assert selection.build_requires["packages/arctic_inference-0.1.1.tar.gz"] == ["setuptools>=61.0", "wheel", "ninja"]
    script = next(s for s in plan_for(settings_for(work, Options())).stages if s.name == "vllm").script
    assert "ab_build_sdist \"$PKG_DIR\"/arctic_inference-0.1.1.tar.gz -- 'setuptools>=61.0' wheel ninja" in script
    install = next(line for line in script.splitlines() if line.startswith("ab_pip "))
    assert "arctic_inference-0.1.1.tar.gz" not in install, "installed from the wheel it builds"


@pytest.mark.parametrize("base_image, has", [("ubuntu:22.04", 'dpkg -s "$pkg"'), ("openeuler/openeuler:24.03", 'rpm -q "$pkg"')])
def test_the_sdists_build_with_a_toolchain_that_never_stays_in_the_image(tmp_path, family_files, base_image, has):
    """gcc, g++, make: installed where the image lacks them, only where sdists are built; a stage
    that builds in place (classic builder) removes what it added."""
    work = workdir(tmp_path, family_files)
    config = work / "ascend-build.yaml"
    config.write_text(config.read_text() + f"\nbase_image: {base_image}\n")
    stage = next(s for s in plan_for(settings_for(work, Options())).stages if s.name == "vllm")
    for script in (stage.script, stage.build_script):
        assert f"do {has} >/dev/null 2>&1 || AB_TOOLS_ADDED=" in script
        assert script.index("AB_TOOLS_ADDED=") < script.index("ab_build_sdist")
    assert "AB_TOOLS_ADDED" not in stage.install_script
    drop = next(line for line in stage.script.splitlines()
                if line.startswith('if [ -n "$AB_TOOLS_ADDED" ]; then') and not line.endswith("then"))
    assert stage.script.index("ab_pip") < stage.script.index(drop), "removed once the built wheels are installed"
    assert "purge" not in stage.build_script and "remove -y" not in stage.build_script


def test_extras_named_in_the_config_are_resolved_and_installed_by_their_stage(index, tmp_path, family_files):
    """python_packages: {vllm: [ray]}: check names it missing with where it is asked, fetch asks for
    it, and once its wheel is here the vllm stage installs it."""
    work = workdir(tmp_path, family_files)
    config = work / "ascend-build.yaml"
    config.write_text(config.read_text() + "python_packages:\n  vllm: ['ray>=2.40']\n")
    _, problems = checked(work)
    assert "ray>=2.40 (for python_packages in ascend-build.yaml)" in problems["missing-requirement"].message
    assert "ray>=2.40" in plan_fetch(work, _options(index)).wants.requirements
    standins.make_wheel(work / "packages", "ray", "2.60.0", ("py3", "none", ["any"]), {"ray/__init__.py": b""})
    selection, _ = checked(work)
    assert not [p for p in selection.problems if p.level == "error"], selection.problems
    install = next(line for line in next(s for s in plan_for(settings_for(work, Options())).stages
                                         if s.name == "vllm").script.splitlines() if line.startswith("ab_pip "))
    assert "ray-2.60.0" in install


@pytest.mark.parametrize("named, said", [
    ({"cann": ["ray"]}, "python_packages names ['cann'], which install no Python packages"),
    ({"vllm": ["ray @ https://example.com/ray.whl"]}, "a requirement by name, not a URL"),
    ({"vllm": ["ray; rm -rf /"]}, "not a Python requirement"),
])
def test_python_packages_are_checked_where_they_are_read(tmp_path, named, said):
    import yaml

    (tmp_path / "ascend-build.yaml").write_text(yaml.safe_dump({"target": "vllm", "python_packages": named}))
    with pytest.raises(ConfigError) as err:
        stage_chain(settings_for(tmp_path, Options()).spec, "vllm")
    assert said in err.value.message + err.value.fix


def test_a_missing_build_requirement_is_named_with_what_needs_it(tmp_path, family_files):
    _, problems = checked(workdir(tmp_path, family_files, drop=("cmake",)))
    missing = problems["missing-requirement"]
    assert "cmake>=3.26.1" in missing.message and "vllm-0.23.0.tar.gz (to build it)" in missing.message


def test_a_hostile_build_requirement_never_reaches_the_script(tmp_path, family_files):
    work = workdir(tmp_path, family_files)
    sdist = work / "packages" / "vllm-0.23.0.tar.gz"
    members = {}
    with tarfile.open(sdist) as tar:
        for m in tar.getmembers():
            members[m.name] = tar.extractfile(m).read()
    members["vllm-0.23.0/pyproject.toml"] = b'[build-system]\nrequires = ["setuptools>=61", "x; $(touch /pwned)", "wheel\'; rm -rf /"]\n'
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    sdist.write_bytes(out.getvalue())
    selection, _ = checked(work)
    assert selection.build_requires["packages/vllm-0.23.0.tar.gz"] == ["setuptools>=61"]


def test_a_vllm_wheel_from_the_index_is_a_cuda_build(tmp_path, family_files):
    work = workdir(tmp_path, family_files, drop=("vllm-",))
    name, data = standins.build_wheel("vllm", "0.23.0", ("cp38", "abi3", ["manylinux_2_28_x86_64"]), {"vllm/__init__.py": b""})
    (work / "packages" / name.replace("-0standin-", "-")).write_bytes(data)
    _, problems = checked(work)
    assert problems[vllm.VLLM_CUDA_WHEEL].level == "error" and "vllm-0.23.0.tar.gz" in problems[vllm.VLLM_CUDA_WHEEL].fix


def test_vllm_of_another_release_and_a_toolkit_of_another_cann_are_errors(tmp_path, family_files):
    work = workdir(tmp_path, family_files, drop=("vllm-", "Ascend-cann-toolkit"))
    standins.make_vllm_sdist(work / "packages", "0.22.0")
    standins.make_toolkit(work / "packages", "9.0.0", "x86_64", 1024, elf=False)
    _, problems = checked(work)
    assert "vllm-0.23.0.tar.gz" in problems[vllm.VLLM_MISMATCH].fix
    assert "9.1.0" in problems[vllm.VLLM_ASCEND_CANN_MISMATCH].message


@pytest.fixture(scope="module")
def index(family_files):
    projects = index_files()
    projects["vllm"] = {"vllm-0.23.0.tar.gz": (family_files / "vllm-0.23.0.tar.gz").read_bytes()}
    projects["arctic-inference"] = {p.name: p.read_bytes() for p in family_files.glob("arctic_inference-*.tar.gz")}
    projects["vllm-ascend"] = {p.name: p.read_bytes() for p in family_files.glob("vllm_ascend-*.whl")}
    for name in ("regex", "ninja", "wheel"):
        projects[name] = _pure(name, "1.0")
    projects["cmake"] = _pure("cmake", "4.2.0")
    projects["setuptools"] = _pure("setuptools", "70.0")
    projects["torch"].update({p.name: p.read_bytes() for p in family_files.glob("torch-*.whl")})
    projects["torch-npu"].update({p.name: p.read_bytes() for p in family_files.glob("torch_npu-*.whl")})
    served = Index(projects)
    yield served
    served.close()


def _options(index, **more) -> FetchOptions:
    return FetchOptions(**{"python": "3.11", "index_url": index.url, "torch_index_url": index.url, **more})


def test_fetch_brings_the_paired_sdist_and_names_where_triton_ascend_is(index, tmp_path, family_files):
    work = workdir(tmp_path, family_files, drop=("vllm-", "triton", "regex", "ninja", "cmake"))
    plan = plan_fetch(work, _options(index))
    assert plan.wants.sdists == ("vllm==0.23.0",) and "vLLM 0.23.0 from its source distribution" in plan.wants.said
    with pytest.raises(PackageError) as err:
        fetch(plan)
    assert "triton-ascend" in err.value.message and "Huawei" in err.value.message
    assert "--extra-index-url" in err.value.fix
    assert (work / "vllm-0.23.0.tar.gz").exists(), "the sdist came before the resolution"


def test_the_folders_vllm_ascend_decides_torch_npu_and_its_triton_ascend_is_taken_as_it_is(index, tmp_path, family_files):
    """A new user's folder: CANN, the vllm-ascend wheel and triton-ascend (from Huawei's index, by
    hand). torch_npu is the one vllm-ascend pins (not the newest for CANN 9.1.0), and the folder's
    triton-ascend serves the resolution: no other index is needed."""
    work = workdir(tmp_path, family_files, drop=("vllm-", "regex", "ninja", "cmake", "arctic", "torch"))
    plan = plan_fetch(work, _options(index))
    assert "torch_npu 2.10.0.post4" in plan.wants.said, plan.wants.said
    result = fetch(plan)
    got = {p.name.split("-")[0] for p in result.fetched}
    assert {"torch", "torch_npu", "vllm", "arctic_inference"} <= got and "triton_ascend" not in got, got
    assert [p.name for p in work.glob("torch_npu-*")] == ["torch_npu-2.10.0.post4-0standin-cp311-cp311-manylinux_2_17_x86_64"
                                                          ".manylinux2014_x86_64.whl"]


def test_a_release_with_no_wheel_whose_sdist_hides_its_requirements_is_named(index, tmp_path, family_files):
    """Without a wheel, what a dependency requires comes from its sdist's PKG-INFO: when that is
    dynamic (only building it would tell), fetch stops and names it, rather than guess."""
    work = workdir(tmp_path, family_files, drop=("vllm-", "regex", "ninja", "cmake", "arctic"))
    dynamic = {"arctic_inference-0.1.1/PKG-INFO": b"Metadata-Version: 2.1\nName: arctic_inference\nVersion: 0.1.1\n",
               "arctic_inference-0.1.1/setup.py": b"from setuptools import setup\nsetup()\n"}
    hidden = Index({**index.projects, "arctic-inference": {"arctic_inference-0.1.1.tar.gz": standins._targz(dynamic)}})
    try:
        with pytest.raises(PackageError) as err:
            fetch(plan_fetch(work, _options(hidden)))
    finally:
        hidden.close()
    assert "arctic_inference 0.1.1 has no wheel on the index" in err.value.message
    assert "does not state what it requires" in err.value.message and "pip wheel --no-deps" in err.value.fix


@pytest.mark.parametrize("cpu_index", ["served", "unreachable"])
def test_fetch_completes_the_folder_with_the_extra_index(index, tmp_path, family_files, cpu_index):
    """Also when torch's CPU index cannot be reached and the main index is tried alone."""
    work = workdir(tmp_path, family_files, drop=("vllm-", "triton", "regex", "ninja", "cmake", "arctic"))
    huawei = Index({"triton-ascend": {p.name: p.read_bytes() for p in family_files.glob("triton_ascend-*.whl")}})
    torch_index = index.url if cpu_index == "served" else "http://127.0.0.1:1/simple"
    try:
        result = fetch(plan_fetch(work, _options(index, extra_index_urls=(huawei.url,), torch_index_url=torch_index)))
    finally:
        huawei.close()
    got = sorted(p.name.split("-")[0] for p in result.fetched)
    assert {"vllm", "triton_ascend", "regex", "ninja", "cmake", "arctic_inference"} <= set(got), got
    assert (work / "arctic_inference-0.1.1.tar.gz").exists(), "no wheel at all: its sdist"
    assert not [p for p in result.fetched if p.name.startswith("torch-2.7.0")], "its build pins torch 2.7.0: the image's serves"
    selection, problems = checked(work)
    assert not [p for p in selection.problems if p.level == "error"], selection.problems


def test_vllm_ascend_from_its_sdist_builds_its_kernels_for_the_chip(tmp_path, family_files):
    work = workdir(tmp_path, family_files, drop=("vllm_ascend-",))
    standins.make_vllm_ascend_sdist(work / "packages", standins.family("9.1.0"))
    selection, problems = checked(work)
    assert not [p for p in selection.problems if p.level == "error"], selection.problems
    assert [p.format for p in selection.find("vllm_ascend")] == ["sdist"]
    script = next(s for s in plan_for(settings_for(work, Options())).stages if s.name == "vllm").script
    assert ('ab_build_sdist "$PKG_DIR"/vllm_ascend-0.23.0.tar.gz COMPILE_CUSTOM_KERNELS=1 SOC_VERSION=ascend910b1 -- '
            "'setuptools>=61' wheel 'cmake>=3.26'") in script                 # torch and torch_npu: the installed
    install = next(line for line in script.splitlines() if line.startswith("ab_pip "))
    assert "vllm_ascend-0.23.0" not in install, "installed from what the build made"


def test_a_chip_without_a_soc_version_is_named():
    with pytest.raises(ConfigError) as err:
        vllm.soc_version("910")
    assert "chip:" in err.value.fix and vllm.soc_version("A3") == "ascend910_9391"


class Mounting:
    """What settings and the renderer ask of an engine whose RUN mounts another stage (BuildKit, podman)."""

    binary, bind_mounts, build_secrets, default_network = "fake", True, True, "bridge"

    def bridge_address(self):
        return "172.17.0.1"

    def find_image(self, image):
        return None                                   # the base image is not read: `python:` decides


def test_an_engine_that_mounts_stages_builds_the_sdists_apart_and_caches_them_by_their_bytes(tmp_path, family_files):
    from ascend_build.render import context_files

    work = workdir(tmp_path, family_files)
    files = context_files(plan_for(settings_for(work, Options(), Mounting())))
    docker = files["Dockerfile"]
    builder = docker[docker.index("FROM pta AS vllm-sdists"):docker.index("FROM pta AS vllm\n")]
    stage = docker[docker.index("FROM pta AS vllm\n"):]
    assert "vllm-0.23.0.tar.gz=" in builder and "cmake-4.2.0" in builder and "vllm_ascend-0.23.0" not in builder
    assert "--mount=type=bind,from=vllm-sdists,source=/ab-built,target=/tmp/ascend-pkgs/built" in stage
    run = stage[stage.index("\nRUN "):]
    assert "vllm-0.23.0.tar.gz=" not in run and "cmake-4.2.0" not in run and "ninja-1.13.0" in run
    # podman 4.3 keys a RUN by its text and mounts a stage whose last step is a cached RUN as it was before it
    built_from = stage[stage.index("ARG AB_BUILT_FROM="):stage.index("\n", stage.index("ARG AB_BUILT_FROM="))]
    assert "vllm-0.23.0.tar.gz=" in built_from and "cmake-4.2.0" in built_from and "vllm_ascend" not in built_from
    assert builder.rstrip().endswith("LABEL ascend-build.mounted=1")
    assert "ab_build_sdist" in files["scripts/sdists/install_vllm.sh"] and "AB_BUILT=/ab-built" in files["scripts/sdists/install_vllm.sh"]
    assert "ab_build_sdist" not in files["scripts/install_vllm.sh"] and '"$AB_BUILT"/*.whl' in files["scripts/install_vllm.sh"]
    classic = context_files(plan_for(settings_for(work, Options())))            # no engine: built in the stage
    assert "vllm-sdists" not in classic["Dockerfile"] and "ab_build_sdist" in classic["scripts/install_vllm.sh"]
