"""Offline resolution of the Python requirements (catalog/wheelmatch.py, closure.py), the image's
Python (catalog/pythons.py) and the torch wheel's C++ ABI (catalog/wheelmeta.py), with small
wheels made by the stand-in generator."""
import io
import json
import os
import platform
import subprocess
import zipfile
from pathlib import Path
from typing import List, Optional

import pytest

from ascend_build.catalog import check as catalog_check
from ascend_build.catalog import pythons
from ascend_build.catalog.model import Package
from ascend_build.catalog.naming import identify_wheel
from ascend_build.catalog.pythons import BasePython, base_python
from ascend_build.catalog.requirements import parsed_lines
from ascend_build.catalog.wheelmatch import Need, WheelMatcher, Target, requirement_lines
from ascend_build.catalog.wheelmeta import torch_abi
from ascend_build.components.registry import components
from ascend_build.demo import standins
from ascend_build.plan import make_plan
from ascend_build.settings import Options, settings_for
from ascend_build.spec import BuildSpec
from ascend_build.units import human_bytes
from ascend_build.catalog.model import file_patterns

NAMES = file_patterns(components())   # the file names the components declare

FILL = 4096
HOST = "aarch64" if platform.machine() in ("aarch64", "arm64") else "x86_64"


def wheel(folder: Path, name: str, version: str, requires=(), py: str = "py3", abi: str = "none",
          plat: str = "any", files=None, requires_python: Optional[str] = None, upstream: bool = False) -> Package:
    """A small wheel in `folder`, as the catalog identifies it; `upstream`: without the stand-ins'
    build tag in its name."""
    filename, data = standins.build_wheel(name, version, (py, abi, [plat]), files or {f"{name}/__init__.py": b""},
                                          requires=requires)
    if upstream:
        filename = filename.replace(f"-{standins.STANDIN_BUILD}-", "-")
    if requires_python:
        data = _with_header(data, f"Requires-Python: {requires_python}")
    path = Path(folder) / filename
    path.write_bytes(data)
    found = identify_wheel(filename, NAMES)
    return Package(path=path, file=filename, component=found.component, slot=found.slot, version=found.version,
                   format="wheel", arch=found.arch, python=found.python)


def _with_header(data: bytes, header: str) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            body = src.read(info)
            if info.filename.endswith(".dist-info/METADATA"):
                body += f"{header}\n".encode()
            dst.writestr(info, body)
    return out.getvalue()


def names(pkgs: List[Package]) -> List[str]:
    return sorted(p.file.split("-")[0] for p in pkgs)


TORCH_REQUIRES = ["filelock", "typing-extensions>=4.10.0", 'setuptools; python_version >= "3.12"',
                  'nvidia-nccl-cu12==2.21.5; platform_system == "Linux" and platform_machine == "x86_64"',
                  'arm-only; platform_machine == "aarch64"', 'optree>=0.13.0; extra == "optree"']


@pytest.fixture
def folder(tmp_path):
    for name in ("filelock", "typing_extensions", "nvidia_nccl_cu12", "arm_only", "optree", "setuptools"):
        version = {"typing_extensions": "4.12.2", "nvidia_nccl_cu12": "2.21.5", "optree": "0.14.0"}.get(name, "1.0")
        wheel(tmp_path, name, version)
    return tmp_path


def all_wheels(folder: Path) -> List[Package]:
    found = []
    for path in sorted(folder.glob("*.whl")):
        ident = identify_wheel(path.name, NAMES)
        found.append(Package(path=path, file=path.name, component=ident.component, slot=ident.slot,
                             version=ident.version, format="wheel", arch=ident.arch, python=ident.python))
    return found


@pytest.mark.parametrize("arch, only", [("aarch64", "arm_only"), ("x86_64", "nvidia_nccl_cu12")])
def test_markers_are_evaluated_for_the_target_not_this_host(folder, arch, only):
    torch = wheel(folder, "torch", "2.6.0", TORCH_REQUIRES, "cp311", "cp311", f"manylinux_2_28_{arch}")
    found = WheelMatcher(all_wheels(folder), Target("3.11", arch)).stage([torch], [])
    assert not found.missing and not found.conflicts and not found.unfit
    assert names(found.wheels) == sorted(["filelock", "typing_extensions", only])   # no setuptools (3.12+), no extra


def test_requirements_files_are_read_by_one_parser():
    """fetch refuses what the check skips: both see the same lines, numbers and parse results."""
    lines = list(parsed_lines("# comment\n\n--hash x\ntorch[optree]>=2  # why\nnot a requirement!\nnumpy#x\n"))
    assert [(n, line) for n, line, _ in lines] == [(3, "--hash x"), (4, "torch[optree]>=2"),
                                                   (5, "not a requirement!"), (6, "numpy#x")]
    assert [type(req).__name__ for _, _, req in lines] == ["InvalidRequirement", "Requirement",
                                                          "InvalidRequirement", "InvalidRequirement"]
    assert str(lines[1][2]) == "torch[optree]>=2"


def test_extras_count_only_when_asked(folder):
    torch = wheel(folder, "torch", "2.6.0", TORCH_REQUIRES, "cp311", "cp311", "manylinux_2_28_aarch64")
    needs, unread = requirement_lines("# comment\n--find-links x\ntorch[optree]  # why\n\nnot a requirement!\n", "requirements.txt")
    assert unread == ["not a requirement!"]
    found = WheelMatcher(all_wheels(folder), Target("3.11", "aarch64")).stage([torch], needs)
    assert "optree" in names(found.wheels)


def test_local_versions_and_the_highest_fitting_version(tmp_path):
    cpu = wheel(tmp_path, "torch", "2.6.0+cpu", (), "cp311", "cp311", "linux_x86_64")
    wheel(tmp_path, "torch", "2.5.1+cpu", (), "cp311", "cp311", "linux_x86_64")
    npu = wheel(tmp_path, "torch_npu", "2.6.0.post5", ["torch==2.6.0+cpu"], "cp311", "cp311", "manylinux_2_17_x86_64",
                upstream=True)
    wheel(tmp_path, "numpy", "1.26.4", (), "cp311", "cp311", "manylinux_2_17_x86_64")
    wheel(tmp_path, "numpy", "2.1.0", (), "cp311", "cp311", "manylinux_2_17_x86_64")
    wheel(tmp_path, "pyyaml", "6.0.2", (), "cp311", "cp311", "manylinux_2_17_x86_64")
    resolver = WheelMatcher(all_wheels(tmp_path), Target("3.11", "x86_64"), undeclared={"torch-npu": ["numpy<2", "pyyaml"]})
    found = resolver.stage([npu], [])
    assert {p.file for p in found.wheels} == {cpu.file, next(tmp_path.glob("numpy-1.26.4*")).name,
                                              next(tmp_path.glob("pyyaml*")).name}
    plain = WheelMatcher(all_wheels(tmp_path), Target("3.11", "x86_64")).stage([], [Need(_req("torch==2.6.0"), "r.txt")])
    assert [p.file for p in plain.wheels] == [cpu.file]           # == 2.6.0 matches 2.6.0+cpu (PEP 440)
    rebuilt = wheel(tmp_path, "torch_npu", "2.6.0.post5", ["torch==2.6.0"], "cp311", "cp311", "manylinux_2_17_x86_64")
    assert names(resolver.stage([rebuilt], []).wheels) == []     # a build-tagged wheel is taken at its word


def _req(text):
    from packaging.requirements import Requirement
    return Requirement(text)


def test_wheels_for_another_python_or_glibc_do_not_fit(tmp_path):
    npu = wheel(tmp_path, "torch_npu", "2.6.0", ["numpy", "newer", "glibcdep"], "cp311", "cp311", "manylinux_2_17_aarch64")
    wheel(tmp_path, "numpy", "1.26.4", (), "cp310", "cp310", "manylinux_2_17_aarch64")
    wheel(tmp_path, "newer", "1.0", requires_python=">=3.12")
    wheel(tmp_path, "glibcdep", "1.0", (), "cp311", "cp311", "manylinux_2_34_aarch64")
    found = WheelMatcher(all_wheels(tmp_path), Target("3.11", "aarch64")).stage([npu], [])
    why = {m.requirement: m.found for m in found.missing}
    assert set(why) == {"numpy", "newer", "glibcdep"}
    assert "cp310-cp310-manylinux_2_17_aarch64" in why["numpy"] and "Python 3.11" in why["numpy"]
    assert "needs Python >=3.12" in why["newer"]
    assert "glibc 2.28" in why["glibcdep"]
    newer_glibc = WheelMatcher(all_wheels(tmp_path), Target("3.11", "aarch64", (2, 36))).stage([npu], [])
    assert "glibcdep" not in {m.requirement for m in newer_glibc.missing}


def test_earlier_stages_and_the_image_provide(tmp_path):
    torch = wheel(tmp_path, "torch", "2.6.0", ["filelock"], "cp311", "cp311", "manylinux_2_28_aarch64")
    wheel(tmp_path, "filelock", "3.0")
    llm = wheel(tmp_path, "mindie_llm", "3.0.0", ["torch>=2.6", "filelock", "pip", "six>=1.16"], "cp311", "cp311", "linux_aarch64")
    resolver = WheelMatcher(all_wheels(tmp_path), Target("3.11", "aarch64"), provided={"pip": None, "six": "1.10.0"})
    assert names(resolver.stage([torch], []).wheels) == ["filelock"]
    later = resolver.stage([llm], [])
    assert later.wheels == [] and [m.requirement for m in later.missing] == ["six>=1.16"]
    assert "the image has six 1.10.0" in later.missing[0].found
    conflict = resolver.stage([], [Need(_req("torch<2.6"), "requirements.txt")])
    assert conflict.conflicts and conflict.conflicts[0].chosen == torch.file


# -- through check: the stand-in sets ------------------------------------------------------------


def make_set(root: Path, arch: str = "x86_64", cann: str = "8.5.0") -> Path:
    work = root / "work"
    standins.generate(work / "packages", cann=cann, arch=arch, chip="910b", fill=FILL)
    (work / "requirements.txt").write_text("# none\n")
    return work


def run(work: Path, target: str = "pta", arch: str = "x86_64", image: Optional[BasePython] = None, **spec):
    spec = BuildSpec(**spec)
    settings = settings_for(work, Options(target=target), spec=spec)
    return catalog_check(work, spec, components(), settings.builtin_chain, settings.builtin_target, arch, image)


def codes(selection, level="error") -> set:
    return {p.code for p in selection.problems if p.level == level}


def test_the_demo_set_resolves_and_pta_takes_only_what_it_needs(tmp_path):
    work = make_set(tmp_path)
    unused = wheel(work, "unused", "1.0")
    selection = run(work)
    assert selection.ok, selection.problems
    assert "pta" not in selection.pip_index and unused.file not in {p.file for p in selection.delivered()}


def test_missing_requirements_are_listed_with_the_fetch_command(tmp_path):
    other = "x86_64" if HOST == "aarch64" else "aarch64"
    work = make_set(tmp_path, arch=other)
    (work / "requirements.txt").write_text("numpy<2\nsix\n")
    plat = f"manylinux_2_17_{other}"
    wheel(work, "six", "1.16.0", ["pyyaml>=5; platform_machine == '%s'" % other, "nvidia-x; platform_machine == '%s'" % HOST])
    selection = run(work, arch=other)
    [problem] = [p for p in selection.problems if p.code == "missing-requirement"]
    assert "numpy<2 (for requirements.txt)" in problem.message and "pyyaml>=5 (for six-1.16.0" in problem.message
    assert "nvidia" not in problem.message
    assert f"ascend-build fetch -C {work.resolve()}" in problem.fix
    assert f"--platform linux/{'arm64' if other == 'aarch64' else 'amd64'}" in problem.fix
    wheel(work, "numpy", "1.26.4", (), "cp311", "cp311", plat)
    wheel(work, "PyYAML", "6.0.2", (), "cp311", "cp311", plat)
    fixed = run(work, arch=other)
    assert fixed.ok, fixed.problems
    # pyyaml is one of CANN's tools: the cann stage installs it, so pta does not again
    assert names(fixed.pip_index["cann"]) == ["pyyaml"]
    assert names(fixed.pip_index["pta"]) == ["numpy", "six"]


def test_with_an_index_missing_requirements_are_pips_business(tmp_path):
    work = make_set(tmp_path)
    (work / "requirements.txt").write_text("numpy\n")
    assert "missing-requirement" not in codes(run(work, pip_index_url="https://mirror.example.com/simple"))


def test_unknown_python_resolves_nothing_and_says_so(tmp_path):
    work = make_set(tmp_path)
    (work / "requirements.txt").write_text("numpy\n")
    for torch in (work / "packages").glob("torch*.whl"):          # py3 wheels: no Python in their tags
        ident = identify_wheel(torch.name, NAMES)
        torch.unlink()
        wheel(work / "packages", torch.name.split("-")[0], ident.version, ["torch==2.6.0"] if "npu" in torch.name else [])
    selection = run(work)
    assert selection.python is None and "requirements-unresolved" in codes(selection, "warning")


def read(version: str, image: str = "localhost/base:1") -> BasePython:
    return BasePython(version, f"the base image {image} (Python {version}.2)", read=True, glibc=(2, 36))


def test_cp310_wheels_on_a_311_image_are_refused(tmp_path):
    work = tmp_path / "work"
    standins.generate(work / "packages", cann="8.5.0", arch="x86_64", chip="910b", python="3.10", fill=FILL)
    selection = run(work, image=read("3.11"))
    problem = next(p for p in selection.problems if p.code == "python-mismatch")
    assert "torch" in problem.message and "Python 3.11" in problem.message and "localhost/base:1" in problem.message
    assert "cp311" in problem.fix
    assert selection.python == "3.11" and "localhost/base:1" in selection.python_source


def test_python_in_the_config_must_be_the_images(tmp_path):
    work = make_set(tmp_path)
    problem = next(p for p in run(work, image=read("3.12"), **{"python": "3.11"}).problems if p.code == "python-mismatch"
                   and "ascend-build.yaml" in p.message)
    assert "3.12" in problem.message and "remove `python:`" in problem.fix


def test_the_cann_release_supports_the_images_python(tmp_path):
    work = tmp_path / "work"
    standins.generate(work / "packages", cann="8.3.RC1", arch="x86_64", chip="910b", python="3.12", fill=FILL)
    selection = run(work, target="cann", image=read("3.12"))
    problem = next(p for p in selection.problems if p.code == "cann-python-unsupported")
    assert "8.3.RC1" in problem.message and "3.7 to 3.11" in problem.message and "3.12" in problem.message
    assert run(tmp_path.joinpath("work"), target="cann", image=read("3.11")).ok


# -- the torch wheel's C++ ABI ---------------------------------------------------------------------


C10_ABI1 = b"_ZN3c106detail13torchCheckFailEPKcS2_jRKNSt7__cxx1112basic_stringIcSt11char_traitsIcESaIcEEE"
C10_ABI0 = b"_ZN3c106detail13torchCheckFailEPKcS2_jRKSs"
LIBSTDCXX = b"_ZGTtNSt11logic_errorC1ERKNSt7__cxx1112basic_stringIcSt11char_traitsIcESaIcEEE.cold"


def libc10(abi: int) -> bytes:
    """An ELF-ish library: c10 symbols of `abi` among statically linked libstdc++ names (which hold
    `__cxx11` in both ABIs, as in the real torch 2.1.0 libc10.so)."""
    return b"\x7fELF" + b"\0" * (1 << 20) + b"\0".join([LIBSTDCXX, C10_ABI1 if abi else C10_ABI0, b"_ZN3c1010TensorImplD2Ev"])


def test_torch_abi_is_read_from_libc10s_own_symbols(tmp_path):
    one = wheel(tmp_path, "torch", "2.6.0", files={"torch/lib/libc10.so": libc10(1)})
    assert torch_abi(one.path) == 1
    zero = wheel(tmp_path / "..", "torch", "2.1.0", files={"torch/lib/libc10.so": libc10(0)})
    assert torch_abi(zero.path) == 0                        # __cxx11 in libstdc++'s names does not count
    none = wheel(tmp_path, "torch", "2.0.0")
    assert torch_abi(none.path) is None
    (tmp_path / "bad.whl").write_bytes(b"not a zip")
    assert torch_abi(tmp_path / "bad.whl") is None


def test_a_library_without_c10_symbols_says_its_abi_by_cxx11_anywhere():
    from ascend_build.catalog.wheelmeta import library_abi
    assert library_abi(b"stand-in: std::__cxx11::basic_string") == 1 and library_abi(b"stand-in") == 0


def with_torch_abi(work: Path, abi: int) -> Path:
    """Replace the set's torch wheel by one whose libc10.so has `abi`."""
    old = next((work / "packages").glob("torch-*.whl"))
    ident = identify_wheel(old.name, NAMES)
    old.unlink()
    tag = f"cp{ident.python.replace('.', '')}"
    return wheel(work / "packages", "torch", ident.version, (), tag, tag, "linux_x86_64",
                 files={"torch/__init__.py": standins.torch_init(ident.version, abi), "torch/lib/libc10.so": libc10(abi)}).path


def test_the_torch_wheels_abi_drives_cxx_abi_and_refuses_another_mindie(tmp_path):
    work = make_set(tmp_path)                            # 8.5.0: MindIE ..._abi0.run
    with_torch_abi(work, 0)
    same = run(work, target="mindie")
    assert same.ok, same.problems
    assert same.abi == 0
    with_torch_abi(work, 1)
    other = run(work, target="mindie")
    problem = next(p for p in other.problems if p.code == "abi-mismatch")
    assert "mindie" in problem.message.lower() and "torch-" in problem.message and "abi1" in problem.message
    conflict = run(work, target="pta", cxx_abi=0)
    problem = next(p for p in conflict.problems if p.code == "abi-mismatch")
    assert "cxx_abi: 0" in problem.message and "ABI 1" in problem.message and "torch-" in problem.message
    settings = settings_for(work, Options(target="pta"), spec=BuildSpec())
    assert make_plan(settings, run(work, target="pta")).abi == 1


# -- the image's Python ----------------------------------------------------------------------------


class FakeEngine:
    binary = "fake"

    def __init__(self, answer: Optional[str], present: bool = True, status: int = 0, os_release: str = ""):
        self.answer, self.present, self.status, self.os_release, self.runs = answer, present, status, os_release, []

    def find_image(self, image):
        return {"Id": f"sha256:{image}"} if self.present else None

    def run_container(self, image, command=(), **how):
        self.runs.append((image, list(command), how))
        if how["entrypoint"] == "cat":
            return subprocess.CompletedProcess([], 0 if self.os_release else 1, self.os_release, "")
        if self.answer is None:
            return subprocess.CompletedProcess([], 127, "", "python3: executable file not found")
        return subprocess.CompletedProcess([], self.status, self.answer + "\n", "exec format error")


ANSWER = json.dumps({"version": "3.11.2", "glibc": "glibc 2.36", "packages": {"pip": "23.0.1", "setuptools": "66.1.1"}})


def test_the_images_python_is_read_once_per_image_id():
    engine = FakeEngine(ANSWER)
    first = base_python(engine, "img:1", "3.10", "linux/arm64")
    assert (first.version, first.read, first.glibc, first.packages["pip"]) == ("3.11", True, (2, 36), "23.0.1")
    assert "img:1" in first.source and "3.11.2" in first.source
    (image, command, how), = engine.runs
    assert how["entrypoint"] == "python3" and how["network"] == "none" and how["flags"] == ["--platform", "linux/arm64"]
    assert base_python(engine, "img:1", None) == first and len(engine.runs) == 1      # cached by image id
    assert json.loads(pythons.CACHE.path.read_text())["sha256:img:1"]["version"] == "3.11.2"


def test_the_config_is_the_fallback_and_it_says_why():
    none = base_python(None, "img:2", "3.11", no_engine="no engine answered: no docker")
    assert (none.version, none.read) == ("3.11", False)
    assert "`python: 3.11`" in none.source and "no engine answered" in none.source
    absent = base_python(FakeEngine(ANSWER, present=False), "img:3", "3.11")
    assert not absent.read and "not in fake's store" in absent.source
    engine = FakeEngine(None, os_release='NAME="Alpine"\nID=alpine\nVERSION_ID=3.20.1\n')
    bare = base_python(engine, "img:4", None)
    assert bare.version is None and "has no python3" in bare.source and "alpine 3.20.1" in bare.source
    base_python(engine, "img:4", None)
    assert len(engine.runs) == 2                                 # python3, os-release; then remembered
    assert base_python(FakeEngine("garbage"), "img:5", "3.11").version == "3.11"
    failing = FakeEngine(ANSWER, status=1)                      # e.g. no QEMU for the image's arch
    first = base_python(failing, "img:6", "3.11")
    assert not first.read and "did not answer: exec format error" in first.source
    base_python(failing, "img:6", "3.11")
    assert len(failing.runs) == 2                                # a failure is not remembered


def test_an_image_without_python3_gets_its_distributions(tmp_path):
    from ascend_build.catalog.compat import load_rules

    ubuntu = FakeEngine(None, os_release='NAME="Ubuntu"\nVERSION_ID="22.04"\nID=ubuntu\n')
    found = base_python(ubuntu, "ubuntu:22.04", "3.11", distro_pythons=load_rules()["distro_python"])
    assert (found.version, found.read) == ("3.10", True) and "ubuntu 22.04" in found.source
    work = make_set(tmp_path)                                      # cp311 wheels
    problem = next(p for p in run(work, image=found).problems if p.code == "python-mismatch" and "torch" in p.message)
    assert "Python 3.10" in problem.message and "ubuntu:22.04" in problem.message


def test_an_engine_error_is_a_fallback_not_a_traceback():
    from ascend_build.errors import EngineError

    class Broken(FakeEngine):
        def find_image(self, image):
            raise EngineError("`docker image inspect` did not answer in 120 s")

    broken = base_python(Broken(ANSWER), "img:7", "3.11")
    assert broken.version == "3.11" and "did not answer in 120 s" in broken.source


def test_cann_tools_present_go_to_the_cann_stage_and_the_others_are_a_note(tmp_path):
    work = make_set(tmp_path)
    wheel(work, "attrs", "24.2.0", ())
    selection = run(work)
    assert names(selection.pip_index["cann"]) == ["attrs"]
    [note] = [p for p in selection.problems if p.code == "python-tools-missing"]
    assert note.level == "note" and "decorator" in note.message and "attrs," not in note.message
    assert "ascend-build fetch" in note.fix and selection.ok


def test_the_pins_of_the_torch_and_cann_release_are_checked(tmp_path):
    work = make_set(tmp_path / "a", cann="8.0.RC2")                 # torch 2.1.0: numpy<2
    (work / "requirements.txt").write_text("numpy\n")
    new = wheel(work, "numpy", "2.1.0")
    [pin] = [p for p in run(work).problems if p.code == "python-pin-mismatch"]
    assert pin.level == "error" and pin.file == new.file and "torch 2.1.0+cpu needs numpy<2" in pin.message
    assert "ascend-build fetch" in pin.fix
    wheel(work, "numpy", "1.26.4")                                    # both here: the pinned one is chosen
    fixed = run(work)
    assert fixed.ok and names(fixed.pip_index["pta"]) == ["numpy"] and "1.26.4" in fixed.pip_index["pta"][0].file
    image = BasePython("3.11", "the base image", read=True, glibc=(2, 36), packages={"numpy": "2.0.1"})
    new.path.unlink()
    (work / "requirements.txt").write_text("# none\n")
    [pin] = [p for p in run(work, image=image).problems if p.code == "python-pin-mismatch"]
    assert "the base image's numpy 2.0.1" in pin.message and pin.level == "error"

    work = make_set(tmp_path / "b", cann="8.3.RC1")                  # the official images' pins: a warning
    wheel(work, "protobuf", "5.29.0")
    selection = run(work)
    [pin] = [p for p in selection.problems if p.code == "python-pin-mismatch"]
    assert pin.level == "warning" and "CANN 8.3.RC1 needs protobuf==3.20" in pin.message and selection.ok


def test_cuda_distributions_never_go_into_the_image(tmp_path):
    """A folder whose closure holds nvidia-nccl-cu12 (asked by a requirements file) or whose torch
    requires CUDA wheels it does not have, or the community triton beside torch_npu: one error
    naming them (and the bytes of those here), never a `fetch them` hint."""
    work = make_set(tmp_path / "a")
    (work / "requirements.txt").write_text("nvidia-nccl-cu12\n")
    nccl = wheel(work, "nvidia_nccl_cu12", "2.21.5", files={"nvidia/nccl.so": os.urandom(5000)})
    selection = run(work)
    [cuda] = [p for p in selection.problems if p.code == "cuda-in-image"]
    assert cuda.level == "error" and f"{nccl.file} ({human_bytes(nccl.path.stat().st_size)})" in cuda.message
    assert "download.pytorch.org/whl/cpu" in cuda.fix and not selection.ok

    work = make_set(tmp_path / "b")
    (work / "requirements.txt").write_text("cuda-toolkit==13.0\ntriton\n")   # a CUDA torch's own requirements
    wheel(work, "triton", "3.8.0")
    selection = run(work)
    assert codes(selection) == {"cuda-in-image"}, selection.problems
    [cuda] = [p for p in selection.problems if p.code == "cuda-in-image"]
    assert "cuda-toolkit" in cuda.message and "requirements.txt requires" in cuda.message
    assert "triton-3.8.0" in cuda.message

    work = make_set(tmp_path / "c", cann="8.0.RC2")                   # no torch_npu in a cann target: triton ok
    wheel(work, "triton", "3.8.0")
    (work / "requirements.txt").write_text("triton\n")
    assert "cuda-in-image" not in codes(run(work, target="cann"))


def test_a_build_requirement_the_image_has_in_another_version_comes_from_the_folder(tmp_path):
    """Each sdist builds in a venv over the image: a pin its build asks (protobuf==5.29.5) beside the
    image's protobuf 6 is a wheel for that venv, not a conflict; a build pin the image fits is the image's."""
    wheel(tmp_path, "protobuf", "6.31.0")
    wheel(tmp_path, "protobuf", "5.29.5")
    wheel(tmp_path, "wheel", "0.45.0")
    older, newer, tool = sorted(all_wheels(tmp_path), key=lambda p: p.name)
    sdist = Package(path=tmp_path / "mine-1.0.tar.gz", file="mine-1.0.tar.gz", component="wheel", slot=None,
                    version="1.0", format="sdist")
    matcher = WheelMatcher([newer, older, tool, sdist], Target("3.11", "x86_64"), metadata=lambda p: None,
                           build_requires=lambda p: ["protobuf==5.29.5", "wheel>=0.40"])
    matcher.installed.update({"protobuf": newer, "wheel": tool})
    found = matcher.stage([sdist], [])
    assert found.build == [older] and not found.conflicts and not found.missing
