"""CANN as Huawei's index also ships it from 8.5 (`pip install ascend-cann-toolkit==X
ascend-cann-<chip>-ops==X`, into site-packages/ascend/cann-X/ with its own set_env.sh), on the
stand-ins of the demo family 9.0.0-pip: identified by check (the chip from the ops' name), installed
by the cann stage with pip, its environment loaded from the package's folder for the stage's ENV
and every later stage; the two forms not mixed."""
import shutil
from pathlib import Path

import pytest

from ascend_build.catalog.check import check
from ascend_build.catalog.naming import identify
from ascend_build.catalog.model import file_patterns
from ascend_build.components.registry import components
from ascend_build.demo import standins
from ascend_build.errors import ConfigError
from ascend_build.plan import plan_for
from ascend_build.settings import Options, settings_for
from ascend_build.verify import probes_for

NAMES = file_patterns(components())


@pytest.fixture(scope="module")
def family_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cann-pip")
    standins.generate(folder, cann="9.0.0-pip", arch="x86_64", fill=1024, elf=False)
    return folder


def workdir(tmp_path: Path, family_files: Path, target: str = "mindie") -> Path:
    work = tmp_path / "work"
    (work / "packages").mkdir(parents=True)
    (work / "ascend-build.yaml").write_text(f"target: {target}\narch: x86_64\npython: '3.11'\n")
    for path in family_files.iterdir():
        shutil.copy(path, work / "packages" / path.name)
    return work


def test_the_wheels_are_the_toolkit_and_the_chips_ops():
    toolkit = identify("ascend_cann_toolkit-9.0.0-py3-none-manylinux_2_17_aarch64.whl", NAMES)
    ops = identify("ascend_cann_910b_ops-9.0.0-py3-none-manylinux_2_17_aarch64.whl", NAMES)
    a3 = identify("ascend_cann_a3_ops-9.0.0-py3-none-manylinux_2_17_x86_64.whl", NAMES)
    assert (toolkit.slot, toolkit.component, toolkit.version, toolkit.arch) == ("toolkit", "toolkit", "9.0.0", "aarch64")
    assert (ops.slot, ops.component, ops.chip) == ("kernels", "ops", "910b")
    assert a3.chip == "A3"


def test_check_selects_the_pip_form_and_the_plan_installs_it_with_pip(tmp_path, family_files):
    work = workdir(tmp_path, family_files)
    settings = settings_for(work, Options())
    found = check(work, settings.spec, components(), settings.builtin_chain, settings.builtin_target, settings.arch)
    assert not [p for p in found.problems if p.level == "error"], found.problems
    assert [p.format for p in found.stages["cann"]] == ["wheel", "wheel", "run"]
    plan = plan_for(settings)
    cann = next(s for s in plan.stages if s.name == "cann")
    assert 'ab_pip "$PKG_DIR"/ascend_cann_toolkit-9.0.0' in cann.script and "ab_install toolkit" not in cann.script
    printed = ('ab_source "$(python3 -c \'import importlib.metadata as m, sys; print(m.distribution(sys.argv[1])'
               '.locate_file(sys.argv[2]))\' ascend-cann-toolkit ascend/cann-9.0.0/set_env.sh)"')
    assert printed in cann.script and cann.set_env[0].line == printed
    mindie = next(s for s in plan.stages if s.name == "mindie")
    assert printed in mindie.script and "ascend-toolkit/set_env.sh" not in mindie.script


def test_a_pip_toolkit_with_a_run_ops_is_one_error(tmp_path, family_files):
    work = workdir(tmp_path, family_files)
    next((work / "packages").glob("ascend_cann_910b_ops-*")).unlink()
    standins.make_chip_package(work / "packages", "ops", "910b", "9.0.0", "x86_64", 1024)
    settings = settings_for(work, Options())
    found = check(work, settings.spec, components(), settings.builtin_chain, settings.builtin_target, settings.arch)
    mixed = [p for p in found.problems if p.code == "cann-forms-mixed"]
    assert len(mixed) == 1 and mixed[0].level == "error" and "Ascend-cann-910b-ops_9.0.0" in mixed[0].message


def test_verify_asks_the_distribution_not_the_install_path():
    labels = {"io.ascend-build.toolkit.version": "9.0.0",
              "io.ascend-build.toolkit.file": "ascend_cann_toolkit-9.0.0-py3-none-manylinux_2_17_x86_64.whl"}
    probes = probes_for(labels)
    assert {"kind": "dist", "slot": "toolkit", "name": "toolkit version matches label", "dist": "ascend-cann-toolkit"} in probes
    assert not [p for p in probes if p["slot"] == "toolkit" and p["kind"] in ("file", "info-version")]


def test_the_signed_demo_is_the_run_form_only(tmp_path):
    with pytest.raises(ConfigError) as err:
        standins.generate(tmp_path, cann="9.0.0-pip", fill=1024, elf=False, signed_by=object())
    assert "--signed" in err.value.fix
