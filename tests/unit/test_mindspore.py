"""The mindspore stage: a component on cann (target mindspore builds base → cann → mindspore), the
CANN releases read from the wheel itself (as the real 2.10.0 wheel says them) or the table, a wheel
tagged `any` that holds another arch's code, what fetch asks for, and the target's glibc."""
from pathlib import Path

import pytest

from ascend_build.catalog.check import check
from ascend_build.catalog.pythons import BasePython
from ascend_build.chain import stage_chain
from ascend_build.components import mindspore
from ascend_build.components.registry import components
from ascend_build.demo.standins import build_wheel, make_toolkit
from ascend_build.errors import ConfigError
from ascend_build.fetch import FetchOptions, describe, plan_fetch
from ascend_build.settings import Options, settings_for
from ascend_build.spec import BuildSpec
from clirun import cli
from test_fetch import Index, _pure, index_files

# what mindspore 2.10.0's run_check says (mindspore/run_check/_check_version.py, shortened)
CHECKER = '''
class GPUEnvChecker(EnvChecker):
    def __init__(self, library_path):
        self.version = ["10.1", "11.1", "11.6"]


class AscendEnvChecker(EnvChecker):
    """ascend environment check"""

    def __init__(self, library_path):
        self.library_path = library_path
        self.version = ["8.2", "8.3", "8.5", "9.0", "9.1"]
'''


def ms_wheel(folder: Path, version: str = "2.10.0", arch: str = "aarch64", says: bool = True, tag: str = "any") -> Path:
    """A MindSpore wheel as the public index has it for aarch64: `cp311-none-any`, holding aarch64
    extension modules; `says`: with the run_check and custom operators' version.info."""
    files = {"mindspore/__init__.py": f'__version__ = "{version}"\n'.encode(),
             f"mindspore/_c_expression.cpython-311-{arch}-linux-gnu.so": b"\x7fELF"}
    if says:
        files[mindspore.CHECKER] = CHECKER.encode()
        files[mindspore.COMPILED] = b"custom_opp_compiler_version=9.1.0\n"
    platform = tag if tag == "any" else f"manylinux1_{arch}"
    name, data = build_wheel("mindspore", version, ("cp311", "none" if tag == "any" else "cp311", [platform]), files,
                             requires=["numpy>=1.25.0"])
    name = name.replace("-0standin-", "-")
    (folder / name).write_bytes(data)
    return folder / name


def workdir(tmp_path: Path, cann: str = "9.0.0", arch: str = "aarch64") -> Path:
    work = tmp_path / "work"
    work.mkdir(parents=True)
    (work / "ascend-build.yaml").write_text(f"target: mindspore\narch: {arch}\npython: '3.11'\n")
    make_toolkit(work, cann, arch, fill=1024, elf=False)
    return work


def problems(work: Path, platform: str = "aarch64"):
    settings = settings_for(work, Options(platform=platform))
    found = check(work, settings.spec, components(), settings.builtin_chain, settings.builtin_target, settings.arch)
    return {p.code: p for p in found.problems}, found


def test_target_mindspore_builds_on_cann_without_pta_or_mindie():
    assert stage_chain(BuildSpec(target="mindspore"), "mindspore") == ["base", "cann", "mindspore"]


def test_the_wheels_own_cann_list_decides(tmp_path):
    assert mindspore.accepted_cann(CHECKER) == ("8.2", "8.3", "8.5", "9.0", "9.1")
    work = workdir(tmp_path, cann="9.0.0")
    ms_wheel(work)
    found, selection = problems(work)
    assert mindspore.MINDSPORE_CANN_MISMATCH not in found and mindspore.MINDSPORE_CANN_UNKNOWN not in found
    assert selection.find("mindspore")[0].arch == "aarch64"


def test_a_toolkit_the_wheel_does_not_accept_is_an_error_naming_both(tmp_path):
    work = workdir(tmp_path, cann="8.0.RC2")
    wheel = ms_wheel(work)
    found, _ = problems(work)
    error = found[mindspore.MINDSPORE_CANN_MISMATCH]
    assert error.level == "error" and wheel.name in error.message and "8.0.RC2" in error.message
    assert "8.2, 8.3, 8.5, 9.0, 9.1" in error.message and "9.1.0" in error.fix


def test_without_the_wheels_word_the_table_decides(tmp_path):
    work = workdir(tmp_path, cann="9.0.0")
    ms_wheel(work, version="2.7.2", says=False)
    found, _ = problems(work)
    assert found[mindspore.MINDSPORE_CANN_MISMATCH].level == "error" and "8.5.0" in found[mindspore.MINDSPORE_CANN_MISMATCH].message
    work2 = workdir(tmp_path / "b", cann="9.0.0")
    ms_wheel(work2, version="2.11.0", says=False)
    found, _ = problems(work2)
    assert found[mindspore.MINDSPORE_CANN_UNKNOWN].level == "warning"


def test_an_any_tagged_wheel_with_aarch64_code_is_not_taken_for_x86_64(tmp_path):
    work = workdir(tmp_path, cann="9.0.0", arch="x86_64")
    wheel = ms_wheel(work, arch="aarch64")
    found, selection = problems(work, "x86_64")
    assert not selection.find("mindspore")
    assert wheel.name in found["arch-mismatch"].message and "aarch64" in found["arch-mismatch"].message


@pytest.fixture(scope="module")
def index():
    projects = index_files()
    projects["mindspore"] = {**_pure("mindspore", "2.9.0", ["numpy>=1.25.0"]), **_pure("mindspore", "2.10.0")}
    projects["numpy"].update(_pure("numpy", "1.26.0"))
    served = Index(projects)
    yield served
    served.close()


def _options(index, **more) -> FetchOptions:
    return FetchOptions(**{"python": "3.11", "index_url": index.url, "torch_index_url": index.url,
                           "platform": "linux/arm64", **more})


def test_fetch_takes_the_newest_mindspore_for_the_folders_cann(index, tmp_path):
    plan = plan_fetch(workdir(tmp_path, cann="9.0.0"), _options(index))
    assert "mindspore==2.9.0" in plan.wants.requirements and "MindSpore 2.9.0" in plan.wants.said
    named = plan_fetch(workdir(tmp_path / "b", cann="9.0.0"), _options(index, releases=(("mindspore", "2.10.0"),)))
    assert "mindspore==2.10.0" in named.wants.requirements


def test_fetch_completes_the_folders_mindspore_and_asks_for_no_other(index, tmp_path):
    work = workdir(tmp_path, cann="9.0.0")
    wheel = ms_wheel(work)
    plan = plan_fetch(work, _options(index))
    assert not any(r.startswith("mindspore==") for r in plan.wants.requirements)
    assert any(r.startswith("mindspore @ file:") and wheel.name in r for r in plan.wants.requirements)


def test_fetch_without_a_release_for_the_cann_names_the_option(index, tmp_path):
    with pytest.raises(ConfigError) as err:
        plan_fetch(workdir(tmp_path, cann="8.0.RC2"), _options(index))
    assert "--release mindspore=VERSION" in err.value.fix


def test_the_targets_glibc_is_the_base_images_then_the_option_then_the_default(index, tmp_path):
    work = workdir(tmp_path)
    read = BasePython("3.11", "the base image b", read=True, glibc=(2, 35))
    plan = plan_fetch(work, _options(index), lambda settings: read)
    assert plan.target.glibc == (2, 35) and "read from the base image" in describe(plan)[0]
    assert plan_fetch(work, _options(index, glibc="2.38"), lambda settings: read).target.glibc == (2, 38)
    default = plan_fetch(work, _options(index))
    assert default.target.glibc == (2, 28) and "--glibc" in describe(default)[0]
    with pytest.raises(ConfigError):
        plan_fetch(work, _options(index, glibc="2.x"))


def test_fetch_release_option_is_checked_at_the_command_line(tmp_path):
    work = workdir(tmp_path)
    result = cli("fetch", "-C", str(work), "--release", "nosuch=1.0", "--dry-run")
    assert result.returncode != 0 and "nosuch=1.0" in result.stderr and "mindspore" in result.stderr, result.stderr
