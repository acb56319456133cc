"""The no-change fast path: taken after a successful build when nothing changed (one engine call,
none of the CLI's libraries imported), and never when anything a real build reads or makes is
different: each test below changes one thing and checks that the normal build runs."""
import json
import os
import shlex
import shutil
import sys
from pathlib import Path

import pytest

from clirun import cli
from ascend_build import fastpath
from ascend_build.engines import identity
from ascend_build.scaffold import scaffold
from ascend_build.timings import PHASES

BASE = "localhost/ascend-build-base:bookworm"
HEAVY = ("typer", "click", "rich", "pydantic", "jinja2", "yaml")
SRC = Path(fastpath.__file__).parent
FAKE_DOCKER = """#!{python}
import json, os, sys
here = os.path.dirname(os.path.abspath(__file__))
args = sys.argv[1:]
with open(__file__[:-len(".py")] + ".calls", "a") as log:     # docker.py, run by the `docker` wrapper
    log.write(" ".join(args) + "\\n")
store = os.path.join(here, "images.json")
with open(store) as f:
    images = json.load(f)
if args[:2] == ["image", "inspect"]:
    refs, fmt = args[2:], None
    if refs[:1] == ["--format"]:
        fmt, refs = refs[1], refs[2:]
    if refs[:1] == ["--"]:
        refs = refs[1:]
    for ref in refs:
        if ref in images and fmt:
            print(images[ref]["Id"], images[ref]["Size"])
    if not fmt and refs[0] in images:
        print(json.dumps([images[refs[0]]]))
    sys.exit(0 if all(ref in images for ref in refs) else 1)
if args[:1] == ["build"]:
    if os.environ.get("FAKE_BUILD_FAILS"):
        sys.exit(1)
    if "-t" in args:
        images.setdefault(args[args.index("-t") + 1], {{"Id": "sha256:built", "Size": 5}})
    if "--iidfile" in args:
        with open(args[args.index("--iidfile") + 1], "w") as f:
            f.write("sha256:built")
    with open(store, "w") as f:
        json.dump(images, f)
elif args[:1] == ["run"]:
    first = sys.stdin.readline()                      # run_python: the arguments' line, then the script
    sys.stdin.read()
    if "--entrypoint bash" in " ".join(args):         # the set_env.sh capture: both environments, NUL-separated
        sys.stdout.write("\\0ascend-build: sourced\\0FAKE_HOME=/x\\0")
    elif first.startswith('["capture"'):
        print(json.dumps({{"before": {{}}, "after": {{"FAKE_HOME": "/x"}}}}))
    else:
        print(json.dumps({{"version": "3.11.2", "glibc": "glibc 2.36", "packages": {{"pip": "23.0.1"}}}}))
elif args[:2] == ["network", "inspect"]:
    print("127.0.0.1")
elif args[:2] == ["version", "--format"]:
    print("20.10.24")
elif args[:2] == ["buildx", "version"]:
    sys.exit(1)
elif args[:1] == ["history"]:
    print('"RUN x"\\t5')
"""


class Setup:
    """A stand-in working directory, a fake docker client keeping its images in a file, a stand-in
    daemon socket and pid file, and the environment of the processes under test."""

    def __init__(self, tmp_path: Path):
        self.tmp = tmp_path
        self.docker = self.fake_docker(tmp_path / "bin")
        self.images({BASE: {"Id": "sha256:base", "Size": 3}})
        sock, pid = tmp_path / "docker.sock", tmp_path / "docker.pid"
        sock.touch()
        pid.write_text(str(os.getpid()))
        self.env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache"), "DOCKER_HOST": f"unix://{sock}",
                    "ASCEND_BUILD_DOCKER": str(self.docker), "PATH": "/nonexistent", identity.PID_FILE_ENV: str(pid)}
        self.env.pop("DOCKER_CONTEXT", None)
        self.env.pop(fastpath.BYPASS_ENV, None)
        self.workdir = tmp_path / "w"
        scaffold(self.workdir, demo=True, arch="x86_64", cann="8.5.0", chip="910b", python="3.11", filler="4KiB", force=False)
        self.report = tmp_path / "report.json"
        self.args = ["build", "-C", self.workdir, "-t", "t:1", "--target", "cann", "--platform", "x86_64",
                     "--base-image", BASE, "--port", "0", "--engine", "buildkit", "--report", self.report]

    @staticmethod
    def fake_docker(folder: Path) -> Path:
        folder.mkdir()
        docker = folder / "docker"
        # a shell wrapper: a `#!` line cannot hold an interpreter path with a space (a clone at any path)
        docker.with_name("docker.py").write_text(FAKE_DOCKER.format(python=sys.executable))
        docker.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} "$0.py" "$@"\n')
        docker.chmod(0o755)
        (folder / "images.json").write_text("{}")
        return docker

    def images(self, images=None) -> dict:
        store = self.docker.with_name("images.json")
        if images is not None:
            store.write_text(json.dumps(images))
        return json.loads(store.read_text())

    def calls(self):
        path = self.docker.with_name("docker.calls")
        lines = path.read_text().splitlines() if path.exists() else []
        path.unlink(missing_ok=True)
        return lines

    def build(self, *extra, env=None, python=()):
        result = cli(*python, *self.args, *extra, env={**self.env, **(env or {})})
        assert result.returncode == 0, result.stdout + result.stderr
        return result

    def fast(self, *extra, env=None) -> bool:
        """Run the build again; True when the fast path answered it (with one engine call), False
        when the normal build ran (and built, or failed on what changed)."""
        self.calls()
        result = cli(*self.args, *extra, env={**self.env, **(env or {})})
        made = self.calls()
        if "no change since the last build" in result.stderr:
            assert result.returncode == 0 and made == [f"image inspect --format {{{{.Id}}}} {{{{.Size}}}} t:1 {BASE}"], made
            return True
        assert result.returncode != 0 or any(c.startswith("build ") for c in made), result.stderr + "\n".join(made)
        return False


@pytest.fixture
def setup(tmp_path):
    return Setup(tmp_path)


@pytest.fixture
def built(setup):
    """After one successful build (made by the engine) and one answered by the fast path."""
    first = setup.build()
    assert "no change" not in first.stderr
    assert setup.fast()
    return setup


def test_a_no_change_rebuild_is_one_engine_call_without_the_cli_libraries(built):
    built.calls()
    again = built.build("--timings", "--json", env={"PYTHONPROFILEIMPORTTIME": "1"})
    assert len(built.calls()) == 1
    imported = {line.split("|")[-1].strip() for line in again.stderr.splitlines() if line.startswith("import time:")}
    assert "ascend_build.fastpath" in imported
    assert not {m.split(".")[0] for m in imported} & set(HEAVY), sorted(imported)
    report = json.loads(built.report.read_text())
    assert json.loads(again.stdout) == report
    assert [s["status"] for s in report["stages"]] == ["cached", "cached"] and report["served"] == []
    assert report["image_id"] == "sha256:built" and report["base_image_id"] == "sha256:base"
    assert list(report["timings"]) == list(PHASES) and report["timings"]["engine"] > 0
    assert "t:1" in again.stderr and "where the time went" in again.stderr


def touch_like(path: Path, reference_ns) -> None:
    os.utime(path, ns=reference_ns)


def package(setup) -> Path:
    return next((setup.workdir / "packages").glob("Ascend-cann-toolkit_*.run"))


def change_one_byte(setup):
    pkg = package(setup)
    st = pkg.stat()
    data = bytearray(pkg.read_bytes())
    data[-1] ^= 1
    pkg.write_bytes(bytes(data))
    touch_like(pkg, (st.st_atime_ns, st.st_mtime_ns))          # touch -r: same size and mtime


def swap_file(setup):
    pkg = package(setup)
    st = pkg.stat()
    twin = pkg.with_name("twin")
    twin.write_bytes(pkg.read_bytes())
    twin.chmod(st.st_mode)
    touch_like(twin, (st.st_atime_ns, st.st_mtime_ns))
    twin.replace(pkg)                                            # same bytes, size and mtime: another file


def change_config(setup):
    config = setup.workdir / "ascend-build.yaml"
    st = config.stat()
    config.write_text(config.read_text().replace("uid: 1000", "uid: 1001"))      # same size
    touch_like(config, (st.st_atime_ns, st.st_mtime_ns))


def add_package(setup):
    shutil.copy(package(setup), setup.workdir / "packages" / "Ascend-cann-toolkit_8.5.1_linux-x86_64.run")


def add_override(setup):
    (setup.workdir / "install-scripts" / "install_cann.sh").write_text("#!/bin/bash\necho mine\n")


def remove_image(setup):
    images = setup.images()
    del images["t:1"]
    setup.images(images)


def retag_image(setup):
    setup.images({**setup.images(), "t:1": {"Id": "sha256:other", "Size": 5}})


def retag_base(setup):
    setup.images({**setup.images(), BASE: {"Id": "sha256:newer-base", "Size": 3}})


def other_client(setup):
    setup.env["ASCEND_BUILD_DOCKER"] = str(Setup.fake_docker(setup.tmp / "bin2"))
    setup.docker.with_name("images.json").replace(setup.tmp / "bin2" / "images.json")
    setup.docker = setup.tmp / "bin2" / "docker"


def client_replaced(setup):
    os.utime(setup.docker, ns=(1, 1))


def daemon_restarted(setup):
    sock = setup.tmp / "docker.sock"
    sock.unlink()
    sock.touch()


def proxy_set(setup):
    setup.env["https_proxy"] = "http://proxy.invalid:3128"


def token_changed(setup):
    state = setup.workdir / ".ascend-build"
    (state / "server-token").write_text("A" * 32)


CHANGES = [change_one_byte, swap_file, change_config, add_package, add_override, remove_image, retag_image,
           retag_base, other_client, client_replaced, daemon_restarted, proxy_set, token_changed]


@pytest.mark.parametrize("change", CHANGES, ids=[c.__name__ for c in CHANGES])
def test_any_change_runs_the_normal_build(built, change):
    change(built)
    assert not built.fast()


@pytest.mark.parametrize("extra", [["-t", "t:2"], ["--target", "base"], ["--no-cache"], ["--pull", "always"], ["--rehash"],
                                   ["--delivery", "copy"], ["--network", "host"]])
def test_other_options_run_the_normal_build(built, extra):
    args = list(built.args)
    for option in ("-t", "--target"):
        if extra[0] == option:
            at = args.index(option)
            del args[at:at + 2]
    built.args = args
    built.calls()
    result = built.build(*extra)
    assert "no change" not in result.stderr and any(c.startswith("build ") for c in built.calls())


def test_the_bypass_variable_runs_the_normal_build(built):
    assert not built.fast(env={fastpath.BYPASS_ENV: "1"})
    assert built.fast(), "the build it ran leaves the fingerprint of a build without the variable"


def test_output_options_and_a_report_in_the_working_directory_keep_it(built):
    assert built.fast("--json", "-v", "--timings")
    built.args[-1] = built.workdir / "report.json"          # an output in the folder is no input
    built.build()
    assert built.fast() and built.fast()


def test_an_upgraded_tool_runs_the_normal_build(setup):
    lib = setup.tmp / "lib"
    shutil.copytree(SRC, lib / "ascend_build", ignore=shutil.ignore_patterns("__pycache__"))
    setup.env["PYTHONPATH"] = str(lib)
    setup.build()
    assert setup.fast()
    with (lib / "ascend_build" / "templates" / "workdir-README.md.j2").open("a") as template:
        template.write("\n")
    assert not setup.fast()
    assert setup.fast()


def test_a_failed_build_leaves_no_fingerprint(built):
    failed = cli(*built.args, "--no-cache", env={**built.env, "FAKE_BUILD_FAILS": "1"})
    assert failed.returncode != 0
    assert not (built.workdir / ".ascend-build" / fastpath.FINGERPRINT).exists()
    assert not built.fast()


def test_a_custom_stage_file_is_an_input(setup):
    (setup.workdir / "app").mkdir()
    app = setup.workdir / "app" / "main.py"
    app.write_text("print(1)\n")
    config = setup.workdir / "ascend-build.yaml"
    config.write_text(config.read_text().replace(
        "stages: []", "stages:\n  - name: app\n    parent: cann\n    files: [app/main.py]\n    script: cp main.py /opt/\n"))
    at = setup.args.index("--target")
    setup.args[at + 1] = "app"
    setup.build()
    assert setup.fast()
    st = app.stat()
    app.write_text("print(2)\n")
    touch_like(app, (st.st_atime_ns, st.st_mtime_ns))
    assert not setup.fast()


def test_the_classic_builder_with_any_port_is_answered_too(setup):
    """The package URL is no cache key of the classic builder either (it travels in a predefined
    proxy argument): a random port (0) rebuilds the same image, so the fast path answers."""
    at = setup.args.index("--engine")
    setup.args[at + 1] = "docker"
    setup.build()
    assert (setup.workdir / ".ascend-build" / fastpath.FINGERPRINT).exists()
    assert setup.fast()


@pytest.mark.parametrize("argv", [
    [], ["check"], ["build", "--no-cache"], ["build", "--pull", "always"], ["build", "--push"], ["build", "--verify"],
    ["build", "--platform", "linux/amd64,linux/arm64"], ["build", "--rehash"], ["build", "--cache-from", "r/x"],
    ["build", "-t"], ["build", "-t", "a", "-t", "b"], ["build", "-tx"], ["build", "-t=x"], ["build", "--json=1"],
    ["build", "--help"], ["build", "extra"], ["build", "--"]])
def test_only_options_it_can_answer_are_parsed(argv):
    assert fastpath.parse(argv) is None


def test_equivalent_spellings_parse_the_same():
    long = fastpath.parse(["build", "--tag=x", "--workdir", "w", "--engine", "auto", "--pull", "missing"])
    short = fastpath.parse(["build", "-C", "w", "-t", "x"])
    assert long == short == {**fastpath.DEFAULTS, "workdir": "w", "tag": "x"}


def test_it_reads_the_state_folder_the_build_writes():
    from ascend_build import workdir

    assert (fastpath.STATE_DIR, fastpath.TOKEN) == (workdir.STATE_DIR, workdir.TOKEN_NAME)


@pytest.mark.parametrize("damage", ["not json", "[]", '{"format": 1}', "{\"format\": 1, \"digest\": 5, \"extra\": 7}"])
def test_a_damaged_fingerprint_runs_the_normal_build(built, damage):
    (built.workdir / ".ascend-build" / fastpath.FINGERPRINT).write_text(damage)
    assert not built.fast()
    assert built.fast()


def test_the_cli_declares_the_answered_options_as_the_table_says():
    """fastpath.py parses `build` with buildflags.py's table: the CLI's `build` must spell and
    default every option there the same, or a build the fast path answers is not the one asked."""
    import typer

    from ascend_build import buildflags
    from ascend_build.cli import app

    params = {p.name: p for p in typer.main.get_command(app).commands["build"].params}
    for name, (spellings, default) in buildflags.VALUES.items():
        param = params[name]
        assert (tuple(param.opts), param.is_flag) == (spellings, False), name
        assert (None if param.default is None else str(param.default)) == default, name
    for name, spellings in buildflags.FLAGS.items():
        param = params[name]
        assert (tuple(param.opts), param.is_flag, param.default) == (spellings, True, False), name
