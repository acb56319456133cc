"""The QEMU check before a cross-arch build, on a fake binfmt_misc folder."""
import pytest

from ascend_build.engines.emulation import check_emulation, emulation_problem
from ascend_build.errors import EngineError


def binfmt(tmp_path, entries):
    (tmp_path / "status").write_text("enabled\n")
    for name, state in entries.items():
        (tmp_path / name).write_text(f"{state}\ninterpreter /usr/libexec/qemu-binfmt/x\nflags: POF\n")
    return tmp_path


def test_own_arch_needs_nothing(tmp_path):
    assert emulation_problem("x86_64", "x86_64", tmp_path / "absent") is None


def test_enabled_qemu_is_enough(tmp_path):
    assert emulation_problem("aarch64", "x86_64", binfmt(tmp_path, {"qemu-aarch64": "enabled"})) is None
    assert emulation_problem("x86_64", "aarch64", binfmt(tmp_path, {"qemu-x86_64": "enabled"})) is None


@pytest.mark.parametrize("entries, said", [
    ({}, "qemu-aarch64 is missing"),
    ({"qemu-aarch64": "disabled"}, "registered but disabled"),
    ({"qemu-x86_64": "enabled"}, "qemu-aarch64 is missing"),
])
def test_missing_or_disabled_qemu_is_one_error_with_the_fix(tmp_path, entries, said):
    with pytest.raises(EngineError, match=said) as err:
        check_emulation("aarch64", "x86_64", binfmt(tmp_path, entries))
    assert "qemu-user-static" in err.value.fix


def test_unmounted_binfmt_misc(tmp_path):
    assert "not mounted" in emulation_problem("aarch64", "x86_64", tmp_path / "none")
