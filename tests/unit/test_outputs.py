"""Outputs never clobber inputs: `-o` refuses existing outputs without --force and the working
directory's own files always, writes appear whole or not at all, init --demo keeps real packages,
exported scripts quote the values they carry, and symlinked packages travel as bytes."""
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from ascend_build.errors import OutputError
from clirun import cli as run_cli
from ascend_build.outputs import inputs_of, write_file, write_files, write_folder
from ascend_build.scaffold import scaffold

TORCH = "torch-2.6.0+cpu-0standin-cp311-cp311-linux_x86_64.whl"


def cli(*args):
    """`ascend-build ARGS` through the tests' one CLI helper: (exit code, stdout, stderr)."""
    result = run_cli(*args)
    return result.returncode, result.stdout, result.stderr


def snapshot(root: Path) -> dict:
    """Bytes of every file under `root`, the state folder left out (caches and contexts)."""
    return {p.relative_to(root): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and ".ascend-build" not in p.relative_to(root).parts}


def refused(code: int, err: str, *words: str) -> bool:
    return (code == 1 and err.count("error:") == 1 and "Traceback" not in err
            and all(w in err for w in words))


def no_temp_left(folder: Path) -> bool:
    return not [p for p in folder.rglob("*") if ".tmp-" in p.name or p.name.startswith(".ascend-build-tmp-")]


@pytest.fixture
def workdir(tmp_path):
    root = tmp_path / "w"
    scaffold(root, demo=True, arch="x86_64", cann="8.5.0", chip="910b", python="3.11", filler="1KiB", force=False)
    return root


@pytest.fixture
def matrix_workdir(workdir):
    config = yaml.safe_load((workdir / "ascend-build.yaml").read_text())
    config.pop("chip")
    config["matrix"] = {"chip": ["910b"]}
    (workdir / "ascend-build.yaml").write_text(yaml.safe_dump(config))
    return workdir


# -- plan -o DIR / export -o DIR ----------------------------------------------------------------


@pytest.mark.parametrize("command", ["plan", "export"])
def test_an_existing_folder_is_kept_without_force_and_updated_with_it(capsys, workdir, tmp_path, command):
    out = tmp_path / "out"
    assert cli(command, "-C", workdir, "-o", out)[0] == 0
    (out / "Dockerfile").write_text("mine\n")
    (out / "notes.txt").write_text("keep me\n")
    before = snapshot(out)
    code, _, err = cli(command, "-C", workdir, "-o", out)
    assert refused(code, err, str(out), "not empty", "--force")
    assert snapshot(out) == before
    assert cli(command, "-C", workdir, "-o", out, "--force")[0] == 0
    assert (out / "Dockerfile").read_text().startswith("# syntax") or "FROM" in (out / "Dockerfile").read_text()
    assert (out / "notes.txt").read_text() == "keep me\n" and no_temp_left(out)


@pytest.mark.parametrize("command", ["plan", "export"])
@pytest.mark.parametrize("where, words", [
    (".", "is the working directory"),
    ("packages", "is an input"),
    ("install-scripts", "is an input"),
    ("packages/sub", "inside an input folder"),
    ("..", "holds the working directory"),
    ("link-to-workdir", "is the working directory"),
])
def test_force_never_writes_over_the_working_directory(capsys, workdir, command, where, words):
    (workdir.parent / "link-to-workdir").symlink_to(workdir)
    target = workdir.parent / "link-to-workdir" if where == "link-to-workdir" else workdir / where
    before = snapshot(workdir.parent)
    code, _, err = cli(command, "-C", workdir, "-o", target, "--force")
    assert refused(code, err, words, "not even with --force", "fix:")
    assert snapshot(workdir.parent) == before and no_temp_left(workdir.parent)


@pytest.mark.parametrize("command", ["plan", "export"])
def test_a_file_or_a_missing_parent_is_one_clear_error(capsys, workdir, tmp_path, command):
    before = snapshot(workdir)
    code, _, err = cli(command, "-C", workdir, "-o", workdir / "README.md", "--force")
    assert refused(code, err, "README.md is a file, not a folder")
    code, _, err = cli(command, "-C", workdir, "-o", tmp_path / "missing" / "out")
    assert refused(code, err, "missing does not exist", "mkdir -p")
    assert not (tmp_path / "missing").exists() and snapshot(workdir) == before


@pytest.mark.parametrize("command", ["plan", "export", "bake", "init"])
def test_a_symbolic_link_loop_is_one_clear_error(capsys, matrix_workdir, tmp_path, command):
    (tmp_path / "loop").symlink_to("loop")
    args = ["init", tmp_path / "loop"] if command == "init" else [command, "-C", matrix_workdir, "-o", tmp_path / "loop"]
    code, _, err = cli(*args)
    assert refused(code, err, "cannot follow", "loop")


def test_a_subfolder_of_the_working_directory_is_a_fine_output(capsys, workdir):
    assert cli("plan", "-C", workdir, "-o", workdir / "out")[0] == 0
    assert (workdir / "out" / "Dockerfile").is_file()


def test_force_replaces_a_link_in_the_output_not_what_it_points_to(capsys, workdir, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "Dockerfile").symlink_to(workdir / "README.md")
    before = snapshot(workdir)
    assert cli("plan", "-C", workdir, "-o", out, "--force")[0] == 0
    assert not (out / "Dockerfile").is_symlink() and snapshot(workdir) == before


def test_a_linked_subfolder_in_the_output_is_refused(capsys, workdir, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (out / "scripts").symlink_to(elsewhere)
    code, _, err = cli("plan", "-C", workdir, "-o", out, "--force")
    assert refused(code, err, "scripts is a symbolic link")
    assert list(elsewhere.iterdir()) == [] and not (out / "Dockerfile").exists()


# -- bake -o FILE / build --report FILE ----------------------------------------------------------


@pytest.mark.parametrize("name, force, words", [
    ("ascend-build.yaml", True, "is an input"),
    ("README.md", True, "is an input"),
    ("requirements.txt", True, "is an input"),
    ("packages/b.json", True, "inside an input folder"),
    (".ascend-build/b.json", True, "inside an input folder"),
    ("packages", True, "is a folder, not a file"),
    ("missing/b.json", False, "does not exist"),
])
def test_bake_checks_its_output_before_writing_anything(capsys, matrix_workdir, name, force, words):
    before = snapshot(matrix_workdir)
    code, _, err = cli("bake", "-C", matrix_workdir, "-o", matrix_workdir / name, *(["--force"] if force else []))
    assert refused(code, err, words)
    assert snapshot(matrix_workdir) == before
    assert not (matrix_workdir / ".ascend-build" / "bake").exists(), "no context written for a refused output"


def test_bake_replaces_its_own_file_only_with_force(capsys, matrix_workdir, tmp_path):
    out = tmp_path / "docker-bake.json"
    out.write_text("old\n")
    code, _, err = cli("bake", "-C", matrix_workdir, "-o", out)
    assert refused(code, err, "already exists", "--force") and out.read_text() == "old\n"
    assert cli("bake", "-C", matrix_workdir, "-o", out, "--force")[0] == 0
    assert out.read_text().startswith("{") and no_temp_left(tmp_path)


def test_bake_refuses_a_hard_link_of_the_config(capsys, matrix_workdir, tmp_path):
    os.link(matrix_workdir / "ascend-build.yaml", tmp_path / "b.json")
    before = snapshot(matrix_workdir)
    code, _, err = cli("bake", "-C", matrix_workdir, "-o", tmp_path / "b.json", "--force")
    assert refused(code, err, "is an input") and snapshot(matrix_workdir) == before


def test_build_report_over_the_config_is_refused_before_the_build(capsys, workdir):
    before = snapshot(workdir)
    code, _, err = cli("build", "-C", workdir, "--report", workdir / "ascend-build.yaml", "--engine", "nosuch")
    assert refused(code, err, "is an input") and snapshot(workdir) == before


# -- writes appear whole or not at all -----------------------------------------------------------


def test_a_failed_write_leaves_nothing(tmp_path):
    files = {"a.txt": "a", "sub/b.txt": "b", "c.txt": tmp_path / "vanished"}
    with pytest.raises(OutputError, match="vanished is not a regular file"):
        write_folder(tmp_path / "out", files, False, None)
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "kept").mkdir()
    (tmp_path / "kept" / "a.txt").write_text("old")
    with pytest.raises(OutputError):
        write_folder(tmp_path / "kept", files, True, None)
    assert snapshot(tmp_path / "kept") == {Path("a.txt"): b"old"} and no_temp_left(tmp_path)


def test_an_unwritable_folder_is_one_clear_error(tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("tempfile.mkdtemp", refuse)
    monkeypatch.setattr("tempfile.mkstemp", refuse)
    with pytest.raises(OutputError, match="could not write .*Permission denied"):
        write_folder(tmp_path / "out", {"a": "x"}, False, None)
    with pytest.raises(OutputError, match="could not write .*Permission denied"):
        write_file(tmp_path / "b.json", "{}", False, None)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["../evil", "/tmp/evil", "a/../../evil"])
def test_names_outside_the_output_are_refused(tmp_path, name):
    with pytest.raises(OutputError, match="not a path inside the output folder"):
        write_files(tmp_path / "out", {"ok": "x", name: "x"}, replace=True)
    assert list(tmp_path.iterdir()) == []


def test_a_folder_where_a_file_goes_is_refused(tmp_path):
    (tmp_path / "out" / "Dockerfile").mkdir(parents=True)
    with pytest.raises(OutputError, match="Dockerfile is a folder where a file is needed"):
        write_files(tmp_path / "out", {"a": "x", "Dockerfile": "x"}, replace=True)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["Dockerfile"]


def test_inputs_cover_packages_at_the_top_and_their_link_targets(workdir, tmp_path):
    store = tmp_path / "store"
    store.mkdir()
    (store / "extra.whl").write_bytes(b"wheel")
    (workdir / "extra.whl").symlink_to(store / "extra.whl")
    (workdir / "docker-bake.json").write_text("{}")
    inputs = inputs_of(workdir)
    assert (store / "extra.whl").resolve() in inputs.paths
    assert (workdir / "docker-bake.json").resolve() not in inputs.paths


def test_custom_stage_files_are_inputs(capsys, workdir):
    (workdir / "app").mkdir()
    (workdir / "app" / "model.py").write_text("print('model')\n")
    config = yaml.safe_load((workdir / "ascend-build.yaml").read_text())
    config["stages"] = [{"name": "app", "parent": "mindie", "files": ["app/model.py"], "script": "true"}]
    (workdir / "ascend-build.yaml").write_text(yaml.safe_dump(config))
    before = snapshot(workdir)
    code, _, err = cli("plan", "-C", workdir, "-o", workdir / "app", "--force")
    assert refused(code, err, "holds an input")
    assert snapshot(workdir) == before


# -- init -----------------------------------------------------------------------------------------


def test_init_into_a_file_or_a_missing_parent_is_one_clear_error(capsys, tmp_path):
    (tmp_path / "file").write_text("x")
    code, _, err = cli("init", tmp_path / "file")
    assert refused(code, err, "is a file, not a folder") and (tmp_path / "file").read_text() == "x"
    code, _, err = cli("init", tmp_path / "missing" / "w")
    assert refused(code, err, "does not exist") and not (tmp_path / "missing").exists()


@pytest.mark.parametrize("name", ["packages", ".ascend-build"])
def test_init_demo_where_a_folder_is_a_file(capsys, tmp_path, name):
    (tmp_path / name).write_text("x")
    code, _, err = cli("init", "--demo", tmp_path, "--force", "--filler", "1KiB")
    assert refused(code, err, f"{name} is a file where a folder is needed")
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]


def test_init_refuses_a_chip_that_is_a_path(capsys, tmp_path):
    code, _, err = cli("init", "--demo", tmp_path / "w", "--chip", "../../x", "--filler", "1KiB")
    assert refused(code, err, "is not a chip name") and list(tmp_path.iterdir()) == []


def test_init_where_the_config_is_a_folder(capsys, tmp_path):
    (tmp_path / "ascend-build.yaml").mkdir()
    code, _, err = cli("init", tmp_path, "--force")
    assert refused(code, err, "ascend-build.yaml is a folder where a file is needed")
    assert [p.name for p in tmp_path.iterdir()] == ["ascend-build.yaml"]


def test_init_demo_force_replaces_its_stand_ins_and_keeps_real_packages(capsys, workdir):
    real = workdir / "packages" / TORCH
    real.write_bytes(b"a real torch wheel")
    ops = next((workdir / "packages").glob("Ascend-cann-910b-ops*"))
    small = ops.stat().st_size
    code, _, err = cli("init", "--demo", workdir, "--force", "--arch", "x86_64", "--filler", "64KiB")
    assert code == 0, err
    assert real.read_bytes() == b"a real torch wheel"
    assert f"kept {real}" in err and "not a stand-in" in err
    assert ops.stat().st_size > small + 60_000, "a stand-in init wrote is replaced"
    assert no_temp_left(workdir)


def test_init_demo_force_without_a_manifest_keeps_every_package(capsys, workdir):
    shutil.rmtree(workdir / ".ascend-build")
    before = snapshot(workdir / "packages")
    code, _, err = cli("init", "--demo", workdir, "--force", "--arch", "x86_64", "--filler", "64KiB")
    assert code == 0, err
    packages = [name for name in before if not str(name).endswith(".sha256")]
    assert snapshot(workdir / "packages") == before and err.count("kept") == len(packages)


# -- exported dockerbuild.sh quotes what it carries -----------------------------------------------


def test_exported_script_survives_a_hostile_working_directory_path(capsys, tmp_path):
    workdir = tmp_path / "my dir $(touch PWNED)" / "w"
    workdir.parent.mkdir()
    scaffold(workdir, demo=True, arch="x86_64", cann="8.5.0", chip="910b", python="3.11", filler="1KiB", force=False)
    out = tmp_path / "ex"
    assert cli("export", "-C", workdir, "-o", out)[0] == 0
    script = out / "dockerbuild.sh"
    assert subprocess.run(["bash", "-n", str(script)], cwd=tmp_path).returncode == 0
    helped = subprocess.run(["bash", str(script), "--help"], cwd=tmp_path, capture_output=True, text=True)
    assert helped.returncode == 0, helped.stderr
    assert f"(default: {workdir})" in helped.stdout and "mindie" in helped.stdout
    assert not list(tmp_path.rglob("PWNED")) and not (Path.cwd() / "PWNED").exists()
    assert os.access(script, os.X_OK)
    for port in ("0", "65536", "80x", ""):                   # refused before docker or a server starts
        refused = subprocess.run(["bash", str(script), "--port", port], cwd=tmp_path, capture_output=True, text=True)
        assert refused.returncode == 2 and "port number from 1 to 65535" in refused.stderr, (port, refused.stderr)


# -- symlinked packages travel as bytes -----------------------------------------------------------


def test_export_copies_the_bytes_of_a_linked_requirements_file(capsys, workdir, tmp_path):
    store = tmp_path / "store"
    store.mkdir()
    (store / "reqs.txt").write_text("# shared requirements\n")
    (workdir / "requirements.txt").unlink()
    (workdir / "requirements.txt").symlink_to(os.path.relpath(store / "reqs.txt", workdir))
    out = tmp_path / "ex"
    assert cli("export", "-C", workdir, "-o", out)[0] == 0
    assert not (out / "requirements.txt").is_symlink()
    assert (out / "requirements.txt").read_text() == "# shared requirements\n"


def test_bake_contexts_hold_the_bytes_of_linked_packages(capsys, matrix_workdir, tmp_path):
    store = tmp_path / "store"
    store.mkdir()
    wheel = matrix_workdir / "packages" / TORCH
    shutil.move(str(wheel), store / TORCH)
    wheel.symlink_to(os.path.relpath(store / TORCH, wheel.parent))
    assert cli("bake", "-C", matrix_workdir, "-o", tmp_path / "b.json")[0] == 0
    copies = list((matrix_workdir / ".ascend-build" / "bake").rglob(TORCH))
    assert copies and all(not p.is_symlink() and p.read_bytes() == (store / TORCH).read_bytes() for p in copies)
