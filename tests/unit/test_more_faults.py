"""Issue #23, further cases of its classes, found by trying to break the landed work as a user
would: standard output on a full disk or a closed pipe, state writes that fail half-way, a
download sent compressed, an image's python3 that prints without end, request targets and Host
fields the package server must judge. Each ends in the right result or one clear message, with
nothing left behind."""
import os
import subprocess

import pytest

from clirun import CLI
from ascend_build.scaffold import scaffold


@pytest.fixture
def workdir(tmp_path):
    root = tmp_path / "w"
    scaffold(root, demo=True, arch="x86_64", cann="8.5.0", chip="910b", python="3.11", filler="4KiB", force=False)
    return root


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
@pytest.mark.parametrize("command", [["schema"], ["plan"], ["check", "--json"], ["data", "show", "--json"]])
def test_stdout_on_a_full_disk_is_one_message(workdir, command):
    with open("/dev/full", "w") as full:
        result = subprocess.run([*CLI, *command, *(["-C", str(workdir)] if command[0] in ("plan", "check") else [])],
                                stdout=full, stderr=subprocess.PIPE, text=True, timeout=120)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr and "Exception ignored" not in result.stderr, result.stderr
    assert "cannot write to standard output: No space left on device" in " ".join(result.stderr.split())


def test_stdout_whose_reader_left_is_one_message():
    proc = subprocess.Popen([*CLI, "schema"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proc.stdout.close()                             # the reader of the pipe is gone (`| head -0`)
    err = proc.stderr.read()
    assert proc.wait(timeout=120) == 1, err
    assert "Traceback" not in err and "Exception ignored" not in err, err
    assert "cannot write to standard output: Broken pipe" in err


def test_caches_that_cannot_be_written_leave_no_temporary_file(workdir, monkeypatch):
    """`check` on a state folder that fills up while the hash and fact caches are written: a
    warning, the same result, and no `.hashes.*.tmp` / `.facts.*.tmp` left in .ascend-build/."""
    import errno
    import json

    from ascend_build.catalog import factcache, hashcache
    from ascend_build.catalog.factcache import FactCache
    from ascend_build.catalog.hashcache import HashCache

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(hashcache.json, "dump", full)
    state = workdir / ".ascend-build"
    hashes = HashCache(workdir, {})
    hashes.changed = True
    [problem] = hashes.save()
    assert "No space left on device" in problem.message
    facts = FactCache(workdir)
    facts.changed = True
    facts.save()
    assert factcache.json is json and sorted(p.name for p in state.iterdir() if p.name.endswith(".tmp")) == []
