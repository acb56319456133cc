"""The working directory as found: unsafe names and odd files refused by name, one symlink policy,
a hash cache that cannot be fooled, `--rehash`, and no traceback for any of it."""
import json
import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from clirun import cli as run_cli
from test_check import check, errors, make_set, path_of, run

from ascend_build.catalog import hashcache
from ascend_build.catalog.scan import scan
from ascend_build.catalog.model import Package
from ascend_build.errors import ConfigError, PackageError
from ascend_build.grammar import FILE_NAME
from ascend_build.spec import BuildSpec



def problems(selection, code: str) -> list:
    return [p for p in selection.problems if p.code == code]


# -- names -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", [
    "foo-1.0-py3-none$(touch${IFS}PWNED)-any.whl",
    "Ascend-cann-toolkit_8.5.0 _linux-x86_64.run",
    "-rf.run",
    "requirements-昇腾.txt",
    "my torch;id.whl",
])
def test_unsafe_names_are_refused_by_name(tmp_path, name):
    work = make_set(tmp_path)
    (work / name).write_bytes(b"x")
    selection = run(work)
    refused = problems(selection, "unsafe-file-name")
    assert [(p.level, p.file) for p in refused] == [("error", name)]
    assert name in refused[0].message and refused[0].fix
    assert name not in {p.file for p in selection.packages} | set(selection.unrecognised)


def test_odd_names_that_are_not_packages_are_only_listed(tmp_path):
    work = make_set(tmp_path)
    (work / "my notes.txt").write_text("x")
    selection = run(work)
    assert selection.ok and "my notes.txt" in selection.unrecognised


# -- symlinks ----------------------------------------------------------------------------------


def test_link_to_a_shared_store_is_followed_and_its_target_checked(tmp_path):
    work = make_set(tmp_path)
    store = tmp_path / "store"
    store.mkdir()
    toolkit = path_of(work, "Ascend-cann-toolkit")
    target = store / "toolkit-blob"
    toolkit.rename(target)
    toolkit.symlink_to(target)
    selection = run(work)
    assert selection.ok, selection.problems
    pkg = selection.find("toolkit")[0]
    assert pkg.path == target.resolve() and pkg.file == f"packages/{toolkit.name}" and pkg.name == toolkit.name
    data = bytearray(target.read_bytes())
    data[-10] ^= 0xFF
    target.write_bytes(bytes(data))
    assert "run-corrupt" in errors(run(work))                 # the target's bytes are what is checked


@pytest.mark.parametrize("kind", ["dev-zero", "fifo", "folder", "loop", "broken"])
def test_links_to_non_regular_files_are_refused_by_name(tmp_path, kind):
    work = make_set(tmp_path)
    link = work / "packages" / "Ascend-cann-nnal_8.5.0_linux-x86_64.run"
    link.unlink()
    if kind == "dev-zero":
        link.symlink_to("/dev/zero")
    elif kind == "fifo":
        os.mkfifo(tmp_path / "fifo")
        link.symlink_to(tmp_path / "fifo")
    elif kind == "folder":
        link.symlink_to(tmp_path)
    elif kind == "loop":
        link.symlink_to(link)
    else:
        link.symlink_to(tmp_path / "gone")
    selection = run(work)
    refused = problems(selection, "not-a-regular-file")
    assert [(p.level, p.file) for p in refused] == [("error", f"packages/{link.name}")]
    assert {"dev-zero": "not a regular file", "fifo": "not a regular file", "folder": "a folder",
            "loop": "symlink loop", "broken": "broken symlink"}[kind] in refused[0].message


def test_a_fifo_named_like_a_package_is_refused(tmp_path):
    work = make_set(tmp_path)
    os.mkfifo(work / "Ascend-cann-toolkit_8.5.0_linux-aarch64.run")
    assert [p.file for p in problems(run(work), "not-a-regular-file")] == ["Ascend-cann-toolkit_8.5.0_linux-aarch64.run"]


def test_link_to_an_unreadable_file_is_a_problem_not_a_traceback(tmp_path, monkeypatch):
    work = make_set(tmp_path)
    secret = tmp_path / "shadow"
    secret.write_text("root:x\n")
    (work / "requirements-x.txt").symlink_to(secret)
    real_open = open

    def deny(file, *args, **kwargs):
        if str(file) == str(secret):
            raise PermissionError(13, "Permission denied")
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr("builtins.open", deny)
    selection = check(work, BuildSpec(), target="mindie", platform="x86_64")
    monkeypatch.undo()
    bad = problems(selection, "unreadable")
    assert [p.file for p in bad] == ["requirements-x.txt"] and "Permission denied" in bad[0].message


def test_unreadable_packages_folder(tmp_path, monkeypatch):
    work = make_set(tmp_path)
    real = os.scandir

    def deny(path):
        if str(path).endswith("packages"):
            raise PermissionError(13, "Permission denied")
        return real(path)

    monkeypatch.setattr(os, "scandir", deny)
    with pytest.raises(PackageError, match="cannot list packages/: Permission denied"):
        scan(work)


def test_packages_that_is_a_file(tmp_path):
    (tmp_path / "packages").write_text("x")
    with pytest.raises(PackageError, match="packages/ is not a folder"):
        scan(tmp_path)


def test_workdir_that_is_a_file(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(ConfigError, match="is not a folder"):
        scan(tmp_path / "f")


def test_checksum_file_that_is_a_fifo_does_not_hang(tmp_path):
    work = make_set(tmp_path)
    os.mkfifo(work / "packages" / "SHA256SUMS")
    bad = problems(run(work), "checksum-file-unreadable")
    assert [p.file for p in bad] == ["packages/SHA256SUMS"]


def test_package_name_is_the_name_in_the_working_directory():
    pkg = Package(path=Path("/store/blob"), file="packages/x.run", component="toolkit", slot="toolkit",
                  version="1", format="run")
    assert pkg.name == "x.run"


# -- the hash cache ----------------------------------------------------------------------------


@pytest.mark.parametrize("swapped", [False, True], ids=["flipped in place", "swapped file"])
def test_a_changed_byte_with_the_old_stat_is_noticed(tmp_path, swapped):
    work = make_set(tmp_path)
    assert run(work).ok
    path = path_of(work, "Ascend-cann-toolkit")
    st = path.stat()
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF
    changed = path.with_name("tmp") if swapped else path
    changed.write_bytes(bytes(data))
    os.utime(changed, ns=(st.st_atime_ns, st.st_mtime_ns))      # touch -r: same size, same mtime
    if swapped:
        os.replace(changed, path)                                # new inode
    assert path.stat().st_mtime_ns == st.st_mtime_ns and path.stat().st_size == st.st_size
    assert "run-corrupt" in errors(run(work))


def test_rehash_reads_every_package_again(tmp_path, monkeypatch):
    work = make_set(tmp_path)
    run(work)
    cache = work / hashcache.CACHE_DIR / hashcache.CACHE_NAME
    facts = work / hashcache.CACHE_DIR / hashcache.FACTS_NAME
    assert cache.exists() and facts.exists()
    hashcache.forget(work)
    assert not cache.exists() and not facts.exists()
    hashcache.forget(work)                                       # nothing to forget: fine
    seen = []
    real = hashcache.verify_file
    monkeypatch.setattr(hashcache, "verify_file", lambda *a, **k: (seen.append(a[1]), real(*a, **k))[1])
    selection = run(work)
    assert selection.ok and set(seen) >= {p.file for p in selection.selected()}


def test_rehash_option_on_the_cli(tmp_path):
    work = make_set(tmp_path)
    cache = work / hashcache.CACHE_DIR / hashcache.CACHE_NAME
    result = run_cli("check", "-C", work, "--platform", "x86_64")
    assert result.returncode == 0, result.stderr
    data = json.loads(cache.read_text())
    sha = next(iter(data["files"].values()))["sha256"]
    for entry in data["files"].values():
        entry["sha256"] = "0" * 64                               # a cache that lies...
    cache.write_text(json.dumps(data))
    os.utime(cache)
    result = run_cli("check", "-C", work, "--platform", "x86_64", "--json", "--rehash")
    assert result.returncode == 0, result.stderr                 # ...is not read with --rehash
    assert "0" * 64 not in result.stdout and sha in cache.read_text()


@pytest.mark.parametrize("content", [
    '{"format": 3, "files": []}',
    '{"format": 3, "files": {"packages/x.run": 5}}',
    '{"format": 3, "files": {"a": {"size": "1", "mtime_ns": 1, "ctime_ns": 1, "ino": 1, "sha256": "x", "problems": 7}}}',
    '[1, 2]', '"text"', 'not json', '{"format": 3, "files": {"a": {"problems": [{"bogus": 1}]}}}',
])
def test_cache_of_the_wrong_shape_is_ignored(tmp_path, content):
    work = make_set(tmp_path)
    first = run(work)
    (work / hashcache.CACHE_DIR / hashcache.CACHE_NAME).write_text(content)
    assert run(work).problems == first.problems


def test_cache_entries_of_the_wrong_shape_are_dropped(tmp_path):
    work = make_set(tmp_path)
    first = run(work)
    cache = work / hashcache.CACHE_DIR / hashcache.CACHE_NAME
    data = json.loads(cache.read_text())
    rel = next(iter(data["files"]))
    data["files"][rel]["problems"] = [{"level": "error", "code": 1}]
    cache.write_text(json.dumps(data))
    assert run(work).problems == first.problems
    assert json.loads(cache.read_text())["files"][rel]["problems"] is not None


def test_cache_folder_that_is_a_file_is_one_warning(tmp_path):
    work = make_set(tmp_path)
    (work / hashcache.CACHE_DIR).write_text("x")
    selection = run(work)
    assert [(p.level, p.code) for p in selection.problems if p.level != "note"] == [("warning", "hash-cache-unwritable")]
    assert "is a file" in next(p for p in selection.problems if p.level == "warning").message


def test_cache_that_cannot_be_written_is_one_warning(tmp_path, monkeypatch):
    work = make_set(tmp_path)
    (work / hashcache.CACHE_DIR).mkdir()

    def deny(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(hashcache.tempfile, "mkstemp", deny)
    selection = run(work)
    assert [(p.level, p.code) for p in selection.problems if p.level != "note"] == [("warning", "hash-cache-unwritable")]
    assert "Permission denied" in next(p for p in selection.problems if p.level == "warning").message


def test_forget_that_cannot_remove_the_cache(tmp_path, monkeypatch):
    def deny(path):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(hashcache.os, "unlink", deny)
    with pytest.raises(ConfigError, match="--rehash cannot remove"):
        hashcache.forget(tmp_path)


def test_custom_stage_files_follow_the_same_policy(tmp_path):
    from ascend_build.plan import custom_files

    outside = tmp_path / "store.py"
    outside.write_text("print(1)\n")
    (tmp_path / "work").mkdir()
    (tmp_path / "work" / "app.py").symlink_to(outside)
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "work" / "pipe.txt").symlink_to(tmp_path / "fifo")
    found = custom_files(tmp_path / "work", ["app.py"])["app.py"]
    assert found.path == outside.resolve() and found.name == "app.py" and found.size == 9
    with pytest.raises(PackageError, match="pipe.txt .* is not a regular file"):
        custom_files(tmp_path / "work", ["pipe.txt"])
    with pytest.raises(PackageError, match="not found"):
        custom_files(tmp_path / "work", ["gone.txt"])


NAME_PIECES = st.sampled_from(["Ascend-cann-toolkit_8.5.0_linux-x86_64", "torch-2.1.0-cp311-cp311-linux_x86_64",
                               "requirements", " ", "$(id)", ";", "`", "\n", "-", "昇腾", "'", "..", ".run", ".whl",
                               ".txt", ".tar.gz", "+", "_"])


@settings(max_examples=150, deadline=None)
@given(name=st.one_of(st.lists(NAME_PIECES, min_size=1, max_size=5).map("".join),
                      st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="/\x00"), min_size=1, max_size=40)))
def test_scanned_names_are_refused_or_safe(name):
    if name in (".", "..") or len(name.encode()) > 255:
        return
    with tempfile.TemporaryDirectory() as work:
        Path(work, name).write_bytes(b"x")
        catalog = scan(Path(work))
    for pkg in catalog.packages:
        assert FILE_NAME.fullmatch(pkg.name) and pkg.name == name
    refused = [p for p in catalog.problems if p.code == "unsafe-file-name"]
    assert all(p.level == "error" and p.file == name for p in refused)
    assert len(catalog.packages) + len(refused) + len(catalog.unrecognised) <= 1
