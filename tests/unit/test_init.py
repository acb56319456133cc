"""`ascend-build init`: scaffold, demo set, and clean refusals."""
from pathlib import Path

import pytest

from clirun import cli
from ascend_build.scaffold import parse_size
from ascend_build.spec import load_spec


def run(*args):
    return cli(*args)


def snapshot(root: Path) -> dict:
    return {p.relative_to(root): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_demo_writes_a_loadable_config_and_a_full_set(tmp_path):
    result = run("init", "--demo", str(tmp_path / "d"), "--cann", "8.0.RC2", "--arch", "x86_64", "--filler", "4KiB")
    assert result.returncode == 0, result.stderr
    spec = load_spec(tmp_path / "d")
    assert (spec.arch, spec.chip, spec.target) == ("x86_64", "910b", "mindie")
    names = sorted(p.name for p in (tmp_path / "d/packages").iterdir())
    assert len(names) == 7 and "Ascend-cann-toolkit_8.0.RC2_linux-x86_64.run" in names
    assert "stand-ins" in (tmp_path / "d/README.md").read_text()
    assert "placeholder" in (tmp_path / "d/README.md").read_text()


def test_plain_init_has_no_packages_and_default_config(tmp_path):
    assert run("init", str(tmp_path)).returncode == 0
    assert not (tmp_path / "packages").exists()
    assert (tmp_path / "install-scripts").is_dir()
    assert load_spec(tmp_path).base_image == "ubuntu:22.04"


def test_second_init_refuses_and_changes_nothing(tmp_path):
    assert run("init", "--demo", str(tmp_path), "--filler", "1KiB").returncode == 0
    before = snapshot(tmp_path)
    again = run("init", "--demo", str(tmp_path), "--filler", "1KiB")
    assert again.returncode == 1 and "already exists" in again.stderr and "--force" in again.stderr
    assert "Traceback" not in again.stderr
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("args, words", [
    (["--filler", "lots"], "cannot read the size"),
    (["--cann", "7.0"], "unknown demo CANN family"),
    (["--arch", "sparc"], "unknown arch"),
    (["--python", "3"], "unknown Python version"),
])
def test_bad_options_are_one_clear_message(tmp_path, args, words):
    result = run("init", "--demo", str(tmp_path / "x"), *args)
    assert result.returncode == 1 and words in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "x").exists()


def test_sizes():
    assert parse_size("64MiB") == 64 << 20 and parse_size("512KiB") == 512 << 10 and parse_size("10") == 10


def test_version_and_help():
    assert run("--version").stdout.strip().startswith("ascend-build ")
    assert "init" in run("--help").stdout


@pytest.mark.parametrize("args, words", [
    (["--chip", "../../x"], "--chip: '../../x' is not a chip name"),
    (["--chip", "910b\nx"], "--chip:"),
    (["--filler", "5GiB"], "more than 4 GiB"),
    (["--filler", "1" * 5000], "cannot read the size"),
    (["--filler", "1 MiB"], "cannot read the size"),
])
def test_init_option_values_are_checked(tmp_path, args, words):
    result = run("init", "--demo", str(tmp_path / "d"), *args)
    assert result.returncode == 1 and words in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "d").exists()


def test_parse_size_is_bounded():
    assert parse_size("4GiB") == 4 << 30
