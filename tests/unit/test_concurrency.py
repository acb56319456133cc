"""Issue #23: one working folder, one writer (a lock; per-run folders), and a state folder that
cannot be written (disk full, read-only) is one message, never a traceback nor a failed build
after the image is made."""
import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from clirun import CLI, cli
from ascend_build.build import BuildOptions, run_build
from ascend_build.errors import OutputError
from ascend_build.scaffold import scaffold
from ascend_build.settings import Options, settings_for
from ascend_build.statefiles import write_state
from ascend_build.workdir import State
from test_settings import BASE, FakeEngine, Quiet

HOLDER = """
import sys, time
from pathlib import Path
from ascend_build.statelock import one_writer
with one_writer(Path(sys.argv[1]), "ascend-build build -C somewhere --target pta", True, print):
    print("held", flush=True)
    time.sleep(300)
"""


@pytest.fixture
def workdir(tmp_path):
    root = tmp_path / "w"
    scaffold(root, demo=True, arch="x86_64", cann="8.5.0", chip="910b", python="3.11", filler="4KiB", force=False)
    return root


def with_matrix(workdir: Path) -> None:
    """A matrix of one variant: what bake needs."""
    config = yaml.safe_load((workdir / "ascend-build.yaml").read_text())
    config["matrix"] = {"python": ["3.11"]}
    (workdir / "ascend-build.yaml").write_text(yaml.safe_dump(config))


@pytest.fixture
def held(workdir):
    """A process holding the working folder's lock, as a running build does."""
    state = State.of(workdir)
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(state.root)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    yield proc
    proc.kill()
    proc.wait()


@pytest.mark.parametrize("command", [["build", "--engine", "docker", "--docker-bin", "/nonexistent/docker"],
                                     ["fetch"], ["bake", "-o", "bake.json"]])
def test_a_second_writer_with_no_wait_fails_naming_the_first(workdir, held, command):
    result = cli(*command, "-C", workdir, "--no-wait", timeout=60)
    assert result.returncode == 1, result.stdout + result.stderr
    text = " ".join(result.stderr.split())
    assert f"pid {held.pid} (ascend-build build -C somewhere --target pta)" in text, text
    assert "Traceback" not in result.stderr and not (workdir / "bake.json").exists()


def test_a_second_writer_waits_for_the_first_then_runs(workdir, held, tmp_path):
    with_matrix(workdir)
    out = tmp_path / "bake.json"
    second = subprocess.Popen([*CLI, "bake", "-C", str(workdir), "-o", str(out)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(4)
        assert second.poll() is None and not out.exists()          # still waiting
        held.send_signal(signal.SIGKILL)                           # the holder dies: the kernel drops its lock
        _, err = second.communicate(timeout=120)
    finally:
        second.kill()
    assert second.returncode == 0 and out.exists(), err
    assert f"in use by pid {held.pid}" in " ".join(err.split()) and "waiting" in err


def test_the_lock_is_refused_when_it_is_a_link_or_not_a_file(workdir, tmp_path):
    state = State.of(workdir)
    (state.root / "lock").symlink_to(tmp_path / "elsewhere")
    result = cli("bake", "-C", workdir, "-o", tmp_path / "b.json", timeout=60)
    assert result.returncode == 1 and "symbolic link" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "elsewhere").exists()


def test_each_run_has_its_own_folder_removed_after_and_stale_ones_go(tmp_path):
    state = State.of(tmp_path)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = state.root / "runs" / f"{dead.pid}-0123abcd"
    stale.mkdir(parents=True)
    with state.new_run() as one, state.new_run() as two:
        assert one.root != two.root and one.root.is_dir() and two.root.is_dir()
        assert not stale.exists()
        assert oct(one.root.stat().st_mode & 0o777) == "0o700"
        (one.context / "x").parent.mkdir()
        (one.context / "x").write_text("x")
    assert not one.root.exists() and not two.root.exists()


class SecretThief(FakeEngine):
    """Removes the URL secret while the build runs (another process cleaning up, say)."""

    def build(self, req):
        events = super().build(req)
        for path in req.secrets.values() if req.tag else ():       # the last build: the image's
            os.unlink(path)
        return events


def test_a_secret_already_gone_at_cleanup_is_no_error(workdir):
    engine = SecretThief(secrets=True, bridge="127.0.0.1")
    settings = settings_for(workdir, Options(target="cann", base_image=BASE, platform="x86_64"), engine)
    report = run_build(settings, BuildOptions(tag="t:1", port=0), Quiet())
    assert report["image_id"] == "sha256:0" and engine.secret_texts[0]


# -- a state folder that cannot be written --------------------------------------------------------

def failing_replace(monkeypatch, name: str, code: int = errno.ENOSPC):
    """os.replace fails with `code` for a target called `name` (the rename of an atomic write)."""
    real = os.replace

    def replace(src, dst, *args, **kwargs):
        if Path(dst).name == name:
            raise OSError(code, os.strerror(code))
        return real(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", replace)


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EIO])
def test_a_state_write_that_fails_is_one_message_and_leaves_the_old_file(tmp_path, monkeypatch, code):
    target = tmp_path / "record.json"
    target.write_text("old")
    failing_replace(monkeypatch, "record.json", code)
    with pytest.raises(OutputError) as err:
        write_state(target, "new")
    assert str(target) in err.value.message and "free on its file system" in err.value.message
    assert os.strerror(code) in err.value.message and err.value.fix
    assert target.read_text() == "old" and os.listdir(tmp_path) == ["record.json"]


def test_a_full_disk_for_the_url_secret_is_one_message(workdir, monkeypatch):
    failing_replace(monkeypatch, "pkg-url.secret")
    settings = settings_for(workdir, Options(target="cann", base_image=BASE, platform="x86_64"),
                            FakeEngine(secrets=True, bridge="127.0.0.1"))
    with pytest.raises(OutputError, match=r"pkg-url\.secret: No space left on device \(.* free"):
        run_build(settings, BuildOptions(tag="t:1", port=0), Quiet())
    assert not any((workdir / ".ascend-build" / "runs").iterdir())


def test_a_full_disk_after_the_image_is_built_is_a_warning(workdir, monkeypatch):
    failing_replace(monkeypatch, "last-layers.json")
    said = []

    class Listening(Quiet):
        def info(self, text):
            said.append(text)

    settings = settings_for(workdir, Options(target="cann", base_image=BASE, platform="x86_64"),
                            FakeEngine(secrets=True, bridge="127.0.0.1"))
    report = run_build(settings, BuildOptions(tag="t:1", port=0), Listening())
    assert report["image_id"] == "sha256:0"
    assert any(t.startswith("warning: cannot write") and "last-layers.json" in t and "free" in t for t in said), said


def test_a_build_log_that_cannot_be_written_is_a_warning(workdir, tmp_path):
    from ascend_build.build import BuildLog

    said = []

    class Listening(Quiet):
        def info(self, text):
            said.append(text)

    with BuildLog(tmp_path / "build.log", Listening()) as log:
        log.out = open("/dev/full", "w", buffering=1)       # every write: ENOSPC
        log.write("a line")
        log.write("another")
    assert len(said) == 1 and "No space left on device" in said[0] and "the log stops here" in said[0]


def test_a_full_state_folder_in_the_cli_is_one_message(workdir, tmp_path):
    """The whole command line: the state folder's file system is full (a read-only folder and
    a user who is not root give the same path through the code)."""
    with_matrix(workdir)
    state = State.of(workdir)
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(state.root)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        subprocess.run(["dd", "if=/dev/zero", f"of={state.root / 'filler'}", "bs=4k"], capture_output=True)
        result = cli("bake", "-C", workdir, "-o", tmp_path / "b.json", timeout=120)
    finally:
        subprocess.run(["umount", "-l", str(state.root)], capture_output=True)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    text = " ".join(result.stderr.split())
    assert "No space left on device" in text and "free on its file system" in text, text


# -- the package server's port and token (classes 7 and 8) --------------------------------------

@pytest.fixture
def port_3000_busy():
    """Something (another build) listens on the default port of the address the tests' server
    takes (127.0.0.1; a build of another folder may hold it on the docker bridge meanwhile)."""
    import socket

    sock = socket.socket()
    try:
        sock.bind(("127.0.0.1", 3000))
        sock.listen()
    except OSError:
        sock.close()
        sock = None                  # already busy there: as good
    yield
    if sock:
        sock.close()


@pytest.mark.parametrize("secrets", [True, False])
def test_a_busy_default_port_is_no_error(workdir, port_3000_busy, secrets):
    said = []

    class Listening(Quiet):
        def info(self, text):
            said.append(text)

    engine = FakeEngine(secrets=secrets, bridge="127.0.0.1")
    settings = settings_for(workdir, Options(target="cann", base_image=BASE, platform="x86_64"), engine)
    report = run_build(settings, BuildOptions(tag="t:1"), Listening())
    assert report["image_id"] == "sha256:0"
    assert any("port 3000 is in use" in t for t in said), said


def test_a_busy_port_given_is_an_error(workdir, port_3000_busy):
    from ascend_build.errors import PortInUse

    settings = settings_for(workdir, Options(target="cann", base_image=BASE, platform="x86_64"),
                            FakeEngine(secrets=False, bridge="127.0.0.1"))
    with pytest.raises(PortInUse, match="already in use"):
        run_build(settings, BuildOptions(tag="t:1", port=3000), Quiet())


def test_the_classic_url_is_no_cache_key_and_never_the_serve_token(workdir):
    """Classic builder: the URL goes in docker's predefined FTP_PROXY argument (kept out of the
    cache key and the history); its token is new each build and is not the folder's `serve` token."""
    engine = FakeEngine(secrets=False, bridge="127.0.0.1")
    settings = settings_for(workdir, Options(target="cann", base_image=BASE, platform="x86_64"), engine)
    run_build(settings, BuildOptions(tag="t:1", port=0), Quiet())
    run_build(settings, BuildOptions(tag="t:1", port=0), Quiet())
    urls = [r.build_args["FTP_PROXY"] for r in engine.requests if r.tag]
    assert all(u.startswith("ascend-pkg-url=http://127.0.0.1:") for u in urls) and urls[0] != urls[1]
    serve_token = State.of(workdir).token()
    assert not any(serve_token in u for u in urls)
    assert all("ASCEND_PKG_URL" not in r.build_args for r in engine.requests)
    assert all(f == engine.dockerfiles[-1] for f, r in zip(engine.dockerfiles, engine.requests) if r.tag)


def test_a_users_ftp_proxy_goes_on_as_ftp_proxy(workdir, monkeypatch):
    monkeypatch.setenv("FTP_PROXY", "http://proxy.example:21")
    monkeypatch.delenv("ftp_proxy", raising=False)
    engine = FakeEngine(secrets=False, bridge="127.0.0.1")
    settings = settings_for(workdir, Options(target="cann", base_image=BASE, platform="x86_64"), engine)
    run_build(settings, BuildOptions(tag="t:1", port=0), Quiet())
    args = engine.requests[-1].build_args
    assert args["ftp_proxy"] == "http://proxy.example:21" and args["FTP_PROXY"].startswith("ascend-pkg-url=")
