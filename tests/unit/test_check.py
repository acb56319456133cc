"""`check` on stand-in sets: selection, integrity, compatibility, hash cache, the CLI command.
Every check here also asserts that no file of the working directory changed."""
import builtins
import hashlib
import io
import json
import os
import re
import shutil
from pathlib import Path

import pytest

from clirun import cli as run_cli
from ascend_build.catalog import hashcache
from ascend_build.catalog.view import to_json
from ascend_build.demo import standins
from ascend_build.catalog import problems
from ascend_build.components import component_data, mindie_rules, pta_rules
from ascend_build.components.registry import problem_codes
from ascend_build.components.registry import components
from ascend_build.settings import Options, settings_for
from ascend_build.spec import BuildSpec

FILL = 4096
SRC = Path(__file__).resolve().parents[2] / "src" / "ascend_build"


def make_set(root: Path, cann: str = "8.5.0", arch: str = "x86_64", chip: str = "910b") -> Path:
    work = root / "work"
    standins.generate(work / "packages", cann=cann, arch=arch, chip=chip, fill=FILL)
    (work / "requirements.txt").write_text("# extra wheels: none\n")
    return work


def check(work: Path, spec: BuildSpec, target: str, platform: str):
    """The catalog's check for a target, its chain resolved as every command resolves it."""
    from ascend_build.catalog import check as catalog_check

    settings = settings_for(work, Options(target=target), spec=spec)
    return catalog_check(work, spec, components(), settings.builtin_chain, settings.builtin_target, platform)


def snapshot(work: Path) -> dict:
    """(size, mtime_ns, sha256) of every file except the cache folder."""
    return {str(p.relative_to(work)): (p.stat().st_size, p.stat().st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest())
            for p in sorted(work.rglob("*")) if p.is_file() and hashcache.CACHE_DIR not in p.relative_to(work).parts}


def run(work: Path, target: str = "mindie", platform: str = "x86_64", **spec):
    before = snapshot(work)
    selection = check(work, BuildSpec(**spec), target=target, platform=platform)
    assert snapshot(work) == before
    assert {p.code for p in selection.problems} <= set(problem_codes())
    return selection


def errors(selection) -> set:
    return {p.code for p in selection.problems if p.level == "error"}


def path_of(work: Path, component: str) -> Path:
    return next(p for p in (work / "packages").iterdir() if p.name.startswith(component) and p.suffix != ".sha256")


@pytest.mark.parametrize("cann", ["8.0.RC2", "8.5.0", "9.0.0"])
@pytest.mark.parametrize("target", ["base", "cann", "pta", "mindie"])
def test_good_set_is_ok(tmp_path, cann, target):
    work = make_set(tmp_path, cann)
    selection = run(work, target)
    assert selection.ok, selection.problems
    assert list(selection.stages) == ["base", "cann", "pta", "mindie"][: ["base", "cann", "pta", "mindie"].index(target) + 1]
    # MindIE: + ATB models (8.0.RC2), bundled in MindIE 2.3 (8.5.0), 3 wheels (9.0.0)
    expected = {"base": 0, "cann": 3, "pta": 6, "mindie": {"8.0.RC2": 8, "8.5.0": 7, "9.0.0": 9}[cann]}[target]
    assert len(selection.selected()) == expected
    assert all(p.sha256 and len(p.sha256) == 64 and p.size > 0 for p in selection.selected())
    if target != "base":
        assert selection.chip == "910b" and selection.arch == "x86_64"
    if target == "mindie":
        assert selection.python == "3.11"
        assert [p.slot for p in selection.stages["cann"]] == ["toolkit", "kernels", "nnal"]
        assert [p.slot for p in selection.stages["pta"]] == ["torch", "torch_npu", "requirements"]
        assert [p.slot for p in selection.stages["mindie"]] == {
            "8.0.RC2": ["mindie", "atb_models"], "8.5.0": ["mindie"],
            "9.0.0": ["mindie_llm", "mindie_wheels", "mindie_wheels"]}[cann]


def test_mindie_forms_need_atb_models_only_without_the_abi_in_the_name(tmp_path):
    old = make_set(tmp_path / "old", "8.0.RC2")
    path_of(old, "Ascend-mindie-atb").unlink()
    missing = [p for p in run(old).problems if p.code == "missing-component"]
    assert len(missing) == 1 and "atb_models" in missing[0].message
    bundled = make_set(tmp_path / "bundled", "8.5.0")
    path_of(bundled, "Ascend-mindie_").unlink()
    missing = [p for p in run(bundled).problems if p.code == "missing-component"]
    assert len(missing) == 1 and "no mindie package" in missing[0].message and "mindie_llm" in missing[0].message


def test_aarch64_a3_set(tmp_path):
    work = make_set(tmp_path, "8.5.0", arch="aarch64", chip="A3")
    selection = run(work, platform="linux/arm64")
    assert selection.ok and selection.chip == "A3" and selection.arch == "aarch64"


def test_truncated_run(tmp_path):
    work = make_set(tmp_path)
    path = path_of(work, "Ascend-cann-toolkit")
    path.write_bytes(path.read_bytes()[:-1000])
    selection = run(work)
    assert "run-truncated" in errors(selection) and not selection.ok


def test_wheel_with_a_flipped_byte(tmp_path):
    work = make_set(tmp_path)
    path = path_of(work, "torch_npu")
    data = bytearray(path.read_bytes())
    data[len(data) // 3] ^= 0x01
    path.write_bytes(bytes(data))
    assert errors(run(work)) == {"wheel-corrupt"}


def test_kernels_toolkit_version_mismatch(tmp_path):
    work = make_set(tmp_path)
    path_of(work, "Ascend-cann-910b-ops").unlink()
    standins.make_chip_package(work / "packages", "kernels", "910b", "8.3.RC1", "x86_64", FILL)
    assert errors(run(work)) == {"version-mismatch"}


def test_torch_torch_npu_mismatch(tmp_path):
    work = make_set(tmp_path)
    path_of(work, "torch-").unlink()
    standins.make_torch(work / "packages", "2.5.1", "x86_64", "3.11", 0, FILL)
    assert "torch-mismatch" in errors(run(work))


def test_torch_npu_listed_for_other_cann(tmp_path):
    work = make_set(tmp_path)
    for prefix in ("torch-", "torch_npu"):
        path_of(work, prefix).unlink()
    standins.make_torch(work / "packages", "2.1.0", "x86_64", "3.11", 0, FILL)
    standins.make_torch_npu(work / "packages", "2.1.0.post13", "2.1.0", "x86_64", "3.11", FILL)
    assert "torch-npu-cann-mismatch" in errors(run(work, "pta"))


def unknown_torch_npu(work: Path) -> Path:
    """The 8.0.RC2 set with a torch_npu the table does not list."""
    path_of(work, "torch_npu").unlink()
    standins.make_torch_npu(work / "packages", "2.1.0.post99", "2.1.0", "x86_64", "3.11", FILL)
    return work


def test_unknown_combination_is_a_warning(tmp_path):
    selection = run(unknown_torch_npu(make_set(tmp_path, "8.0.RC2")))
    assert selection.ok and {p.code for p in selection.problems if p.level != "note"} == {"torch-npu-cann-unknown"}


def test_aarch64_set_for_an_x86_64_build(tmp_path):
    work = make_set(tmp_path, arch="aarch64")
    selection = run(work, platform="x86_64")
    assert errors(selection) == {"arch-mismatch"} and not selection.ok
    assert run(work, platform=None, arch="aarch64").ok           # the config's arch


def test_two_toolkits_need_a_pin(tmp_path):
    work = make_set(tmp_path)
    other = standins.make_toolkit(work / "packages", "8.3.RC1", "x86_64", FILL)
    selection = run(work)
    assert errors(selection) == {"ambiguous-slot"}
    problem = next(p for p in selection.problems if p.code == "ambiguous-slot")
    assert other.name in problem.message and "pins: {toolkit: " in problem.fix
    pinned = run(work, pins={"toolkit": "Ascend-cann-toolkit_8.5.0_linux-x86_64.run"})
    assert pinned.ok and pinned.find("toolkit")[0].version == "8.5.0"
    assert errors(run(work, pins={"toolkit": "nope.run"})) == {"pin-not-found"}


def test_missing_component_for_the_target(tmp_path):
    work = make_set(tmp_path)
    path_of(work, "torch_npu").unlink()
    for target in ("pta", "mindie"):
        selection = run(work, target)
        assert errors(selection) == {"missing-component"}
        problem = next(p for p in selection.problems if p.code == "missing-component")
        assert "torch_npu" in problem.message and "x86_64" in problem.message and "gitee.com/ascend/pytorch" in problem.fix
    assert run(work, "cann").ok


def test_nnal_required_only_for_mindie(tmp_path):
    work = make_set(tmp_path)
    path_of(work, "Ascend-cann-nnal").unlink()
    assert run(work, "pta").ok
    assert errors(run(work, "mindie")) == {"missing-component"}


def test_several_chips_need_the_chip_set(tmp_path):
    work = make_set(tmp_path)
    standins.make_chip_package(work / "packages", "ops", "310p", "8.5.0", "x86_64", FILL)
    assert errors(run(work, "cann")) == {"chip-ambiguous"}
    assert run(work, "cann", chip="310p").find("kernels")[0].chip == "310p"
    assert errors(run(work, "cann", chip="A3")) == {"chip-mismatch"}


def test_abi_and_atb_torch_mismatch(tmp_path):
    work = make_set(tmp_path, "8.0.RC2")
    path_of(work, "Ascend-mindie-atb").unlink()
    standins.make_atb_tarball(work / "packages", "1.0.RC2", "x86_64", "3.11", "2.3.1", 1, FILL)
    # the tarball's abi1 differs from the ABI read from the torch wheel (0), whatever the config says
    assert errors(run(work)) == {"atb-torch-mismatch", "abi-mismatch"}
    assert errors(run(work, cxx_abi=0)) == {"atb-torch-mismatch", "abi-mismatch"}


def test_python_mismatch(tmp_path):
    work = make_set(tmp_path)
    assert errors(run(work, python="3.10")) == {"python-mismatch"}
    standins.make_torch(work / "packages", "2.6.0", "x86_64", "3.10", 0, FILL)     # a second torch, for 3.10
    assert errors(run(work)) == {"ambiguous-slot"}
    assert errors(run(work, python="3.11")) == set()


def test_checksum_file_mismatch(tmp_path):
    work = make_set(tmp_path)
    toolkit = path_of(work, "Ascend-cann-toolkit")
    (work / "packages" / "SHA256SUMS").write_text(f"{'0' * 64}  {toolkit.name}\n")
    assert errors(run(work)) == {"checksum-mismatch"}
    (work / "packages" / "SHA256SUMS").write_text(f"{hashlib.sha256(toolkit.read_bytes()).hexdigest()}  {toolkit.name}\n")
    assert run(work).ok


def test_checksum_listing_never_hides_damage(tmp_path):
    """A truncated installer listed with its own (damaged) sha256, as `sha256sum * > SHA256SUMS`
    after a broken download writes it, is still truncated."""
    work = make_set(tmp_path)
    toolkit = path_of(work, "Ascend-cann-toolkit")
    assert run(work).ok                                   # verdict cached for the whole file first
    data = toolkit.read_bytes()[:-1000]
    toolkit.write_bytes(data)
    (work / "packages" / "SHA256SUMS").write_text(f"{hashlib.sha256(data).hexdigest()}  {toolkit.name}\n")
    assert errors(run(work)) == {"run-truncated"}
    (work / "packages" / f"{toolkit.name}.sha256").write_text(hashlib.sha256(data).hexdigest() + "\n")
    assert errors(run(work)) == {"run-truncated"}        # cached verdict, same answer


def test_driver_unrecognised_and_extras(tmp_path):
    work = make_set(tmp_path)
    (work / "Ascend-hdk-910b-npu-driver_25.0.rc1.1_linux-x86-64.run").write_bytes(b"#!/bin/sh\n")
    (work / "my-renamed-toolkit.run").write_bytes(b"#!/bin/sh\n")
    (work / "notes.txt").write_text("hello\n")
    extra = standins.make_wheel(work / "packages", "extra_dep", "1.0", ("py3", "none", ["any"]), {"extra_dep/__init__.py": b""})
    unused = standins.make_wheel(work / "packages", "unused", "1.0", ("py3", "none", ["any"]), {"unused/__init__.py": b""})
    (work / "requirements.txt").write_text("extra-dep  # a requirement the pta stage installs\n")
    selection = run(work)
    assert selection.ok
    warnings = {p.code for p in selection.problems if p.level == "warning"}
    assert warnings == {"host-only-package", "unrecognised-file"}
    assert selection.unrecognised == ["my-renamed-toolkit.run", "notes.txt"]
    data = to_json(selection)
    row = next(p for p in data["packages"] if p["file"] == f"packages/{extra.name}")
    assert row["selected"] is False and row["stage"] == "pta" and len(row["sha256"]) == 64
    row = next(p for p in data["packages"] if p["file"] == f"packages/{unused.name}")
    assert row["stage"] is None and row["sha256"] is None              # no one needs it: not delivered
    driver = next(p for p in data["packages"] if p["component"] == "driver")
    assert driver["selected"] is False and driver["sha256"] is None


def test_duplicate_file_names(tmp_path):
    work = make_set(tmp_path)
    (work / "requirements.txt").rename(work / "packages" / "requirements.txt")
    (work / "requirements.txt").write_text("# top\n")
    assert errors(run(work)) == {"duplicate-file-name"}


def test_custom_target_and_skip(tmp_path):
    work = make_set(tmp_path)
    spec = {"stages": [{"name": "app", "parent": "pta", "files": ["requirements.txt"], "script": "true"}]}
    selection = run(work, "app", **spec)
    assert list(selection.stages) == ["base", "cann", "pta"] and selection.ok
    assert [p.slot for p in selection.stages["pta"]] == ["torch", "torch_npu"]     # the custom stage's file
    assert list(run(work, skip=["pta"]).stages) == ["base", "cann", "mindie"]


# -- hash cache --------------------------------------------------------------------------------


def test_second_check_reads_no_package_data(tmp_path, monkeypatch):
    work = make_set(tmp_path)
    first = run(work)
    cache = json.loads((work / hashcache.CACHE_DIR / hashcache.CACHE_NAME).read_text())
    assert set(cache["files"]) == {p.file for p in first.selected()}
    opened = []
    real_open, real_io_open = builtins.open, io.open

    def spy(real):
        def wrapper(file, *args, **kwargs):
            opened.append(str(file))
            return real(file, *args, **kwargs)
        return wrapper

    before = snapshot(work)
    monkeypatch.setattr(builtins, "open", spy(real_open))
    monkeypatch.setattr(io, "open", spy(real_io_open))
    monkeypatch.setattr(hashcache, "verify_file", lambda *a, **k: pytest.fail("package data read"))
    second = check(work, BuildSpec(), target="mindie", platform="x86_64")
    monkeypatch.undo()
    assert snapshot(work) == before and opened
    package_files = {str(p.path) for p in first.packages}
    assert not package_files & set(opened)
    assert [(p.file, p.sha256) for p in second.selected()] == [(p.file, p.sha256) for p in first.selected()]
    assert second.problems == first.problems


def test_cache_remembers_the_verdict_and_notices_changes(tmp_path, monkeypatch):
    work = make_set(tmp_path)
    path = path_of(work, "Ascend-cann-toolkit")
    path.write_bytes(path.read_bytes()[:-10])
    assert "run-truncated" in errors(run(work))
    monkeypatch.setattr(hashcache, "verify_file", lambda *a, **k: pytest.fail("package data read"))
    assert "run-truncated" in errors(run(work))                # from the cache
    monkeypatch.undo()
    standins.make_toolkit(work / "packages", "8.5.0", "x86_64", FILL)     # rewritten: new size/mtime
    assert run(work).ok


def test_cache_writes_are_atomic_and_the_only_writes(tmp_path, monkeypatch):
    from ascend_build.catalog import factcache

    work = make_set(tmp_path)
    replaced = []
    real_replace = os.replace
    monkeypatch.setattr(os, "replace", lambda a, b: (replaced.append((str(a), str(b))), real_replace(a, b))[1])
    run(work)
    folder = work.resolve() / hashcache.CACHE_DIR
    assert sorted(b for _, b in replaced) == [str(folder / factcache.CACHE_NAME), str(folder / hashcache.CACHE_NAME)]
    assert sorted(os.listdir(work / hashcache.CACHE_DIR)) == [factcache.CACHE_NAME, hashcache.CACHE_NAME]


def test_every_code_in_the_sources_is_documented():
    sources = "".join(p.read_text() for folder in ("catalog", "components") for p in (SRC / folder).glob("*.py"))
    used = set(re.findall(r'(?:_problem|_err|Problem\(level=[^,]+, code=|problem\("(?:error|warning)",)\s*\(?"([a-z][a-z0-9-]+)"', sources))
    constants = {name: value for module in (problems, pta_rules, mindie_rules) for name, value in vars(module).items()
                 if name.isupper() and isinstance(value, str)}
    used |= {constants[name] for name in re.findall(r"\b([A-Z][A-Z_]+)\b", sources) if name in constants}
    codes = problem_codes()
    assert used and used <= set(codes), used - set(codes)
    assert {"run-truncated", "wheel-corrupt", "arch-mismatch", "ambiguous-slot", "missing-component"} <= used


# -- the command -------------------------------------------------------------------------------


def cli(*args):
    return run_cli("check", *args, timeout=120)


def test_cli_json_ok_and_failing(tmp_path):
    work = make_set(tmp_path)
    result = cli("-C", str(work), "--json", "--platform", "linux/amd64")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["ok"] is True and data["target"] == "mindie" and data["arch"] == "x86_64"
    keys = {"file", "component", "version", "arch", "chip", "python", "torch", "abi", "size", "sha256", "selected"}
    assert data["packages"] and all(keys <= set(p) for p in data["packages"])
    assert sum(p["selected"] for p in data["packages"]) == 7           # MindIE 2.3 bundles the ATB models
    path = path_of(work, "Ascend-cann-toolkit")
    path.write_bytes(path.read_bytes()[:-5])
    result = cli("-C", str(work), "--json", "--platform", "x86_64")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    data = json.loads(result.stdout)
    assert data["ok"] is False
    problem = next(p for p in data["problems"] if p["code"] == "run-truncated")
    assert problem["level"] == "error" and problem["file"] == f"packages/{path.name}" and set(problem) >= {"message", "fix"}


def test_cli_strict_and_human_output(tmp_path):
    work = unknown_torch_npu(make_set(tmp_path, "8.0.RC2"))
    result = cli("-C", str(work), "--platform", "x86_64")
    assert result.returncode == 0 and result.stdout == ""
    assert "torch-npu-cann-unknown" in result.stderr and "Ascend-cann-toolkit_8.0.RC2_linux-x86_64.run" in result.stderr
    assert cli("-C", str(work), "--platform", "x86_64", "--strict").returncode == 1
    assert cli("-C", str(work), "--target", "cann", "--platform", "x86_64", "--strict").returncode == 0
    bad = cli("-C", str(work), "--platform", "sparc")
    assert bad.returncode == 1 and "unknown build platform" in bad.stderr and "Traceback" not in bad.stderr


# -- rules on their own ------------------------------------------------------------------------


def pkg(component: str, version: str, **fields):
    from ascend_build.catalog.model import Package

    name = f"{component}-{version}"
    return Package(path=Path("/x") / name, file=name, component=component, slot=component, version=version,
                   format="wheel", **fields)


def test_rule_tables():
    from ascend_build.catalog.model import Selection
    from ascend_build.catalog import compat

    rules = {**pta_rules.pta_data(), **compat.load_rules()}       # the pta stage's table and the shared one
    toolkit, npu = pkg("toolkit", "8.5.0"), pkg("torch_npu", "2.6.0.post5")
    assert pta_rules.npu_cann(toolkit, npu, rules["cann_torch_npu"]) == []
    assert [p.code for p in pta_rules.npu_cann(pkg("toolkit", "8.5.0"), pkg("torch_npu", "2.1.0.post13"), rules["cann_torch_npu"])] == ["torch-npu-cann-mismatch"]
    assert [p.level for p in pta_rules.npu_cann(pkg("toolkit", "8.5.0"), pkg("torch_npu", "2.6.0.post99"), rules["cann_torch_npu"])] == ["warning"]
    assert pta_rules.torch_pair(pkg("torch", "2.6.0+cpu"), npu, {}) == []
    assert [p.code for p in pta_rules.torch_pair(pkg("torch", "2.6.1"), npu, {})] == ["torch-mismatch"]
    assert pta_rules.torch_pair(pkg("torch", "2.6.1"), npu, {"2.6.0.post5": "2.6.1"}) == []
    torch = pkg("torch", "2.1.0", python="3.12")
    selection = Selection(target="pta", arch="x86_64", chip=None, python="3.12", stages={"pta": [torch]})
    assert compat.python_tags(selection) == []
    assert {p.code for p in pta_rules.torch_python(torch, selection.python, rules["torch_python"])} == {"torch-python-unsupported"}
    assert {p.code for p in pta_rules.pta_rules(selection, BuildSpec(), {})} == {"torch-python-unsupported"}
    mindie = pkg("mindie", "3.0.0")
    assert {p.code for p in mindie_rules.mindie_table(mindie, pkg("toolkit", "8.5.0"), pkg("torch", "2.8.0"), component_data("mindie")["released_with"])} == {
        "mindie-cann-mismatch", "mindie-torch-mismatch"}
    assert mindie_rules.mindie_table(mindie, pkg("toolkit", "9.0.0"), pkg("torch", "2.9.0+cpu"), component_data("mindie")["released_with"]) == []


def test_mindie_abi_in_the_name_must_match_torch(tmp_path):
    work = make_set(tmp_path, "8.5.0")
    for prefix in ("torch-", "torch_npu"):
        path_of(work, prefix).unlink()
    standins.make_torch(work / "packages", "2.7.1", "x86_64", "3.11", 1, FILL)
    standins.make_torch_npu(work / "packages", "2.7.1.post2", "2.7.1", "x86_64", "3.11", FILL)
    selection = run(work)
    assert errors(selection) == {"abi-mismatch"}
    assert all("abi1" in p.fix for p in selection.problems if p.code == "abi-mismatch")
    path_of(work, "Ascend-mindie_").unlink()
    standins.make_mindie(work / "packages", "2.3.0", "x86_64", 1, FILL)
    assert run(work).ok


def test_the_mindie_run_and_its_wheels_together_are_named(tmp_path):
    work = make_set(tmp_path / "new", "9.0.0")
    run_file = path_of(make_set(tmp_path / "old", "8.5.0"), "Ascend-mindie_")
    shutil.copy(run_file, work / "packages" / run_file.name)                      # MindIE 2.3.0 beside 3.0.0 wheels
    [two] = [p for p in run(work).problems if p.code == "mindie-two-forms"]
    assert two.level == "error" and "2.3.0 and 3.0.0" in two.message and run_file.name in two.message
    (work / "packages" / run_file.name).rename(work / "packages" / "Ascend-mindie_3.0.0_linux-x86_64_abi1.run")
    [two] = [p for p in run(work).problems if p.code == "mindie-two-forms"]
    assert two.level == "warning" and "then the wheels over it" in two.message and "move the other out" in two.fix
    assert not [p for p in run(make_set(tmp_path / "wheels", "9.0.0")).problems if p.code == "mindie-two-forms"]


def test_a_check_run_as_a_child_process_asks_no_engine_in_unit_tests(tmp_path):
    """The unit tests' conftest sets ASCEND_BUILD_CHECK_ENGINE=none, which `check --engine`
    reads: a docker client that answers is never run."""
    work = make_set(tmp_path)
    called = tmp_path / "docker-was-called"
    docker = tmp_path / "docker"
    docker.write_text(f"#!/bin/sh\ntouch '{called}'\nexit 1\n")
    docker.chmod(0o755)
    result = run_cli("check", "-C", work, "--target", "cann", env={**os.environ, "ASCEND_BUILD_DOCKER": str(docker),
                                                                "PATH": f"{tmp_path}:{os.environ['PATH']}"})
    assert "--engine none" in result.stderr + result.stdout and not called.exists(), result.stderr[-2000:]
