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


# -- downloads ---------------------------------------------------------------------------------

class _Encoded:
    """Serves test_fetch_faults' file gzip-compressed (Content-Encoding: gzip), Range ignored."""

    def __init__(self):
        import gzip
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        from test_fetch_faults import DATA, NAME

        body = gzip.compress(DATA)

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Encoding", "gzip")
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/{NAME}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture
def encoded():
    served = _Encoded()
    yield served
    served.httpd.shutdown()
    served.httpd.server_close()


@pytest.mark.parametrize("kept", [0, 300])
def test_a_body_sent_encoded_is_refused_and_the_kept_bytes_stay_as_they_were(encoded, tmp_path, kept):
    """fetch asks for the bytes as they are (Accept-Encoding: identity); gzip bytes are not the
    file's: refused by name before a byte is written, a part kept by an earlier run untouched, and
    no empty part made."""
    import hashlib

    from ascend_build.errors import PackageError
    from ascend_build.fetch.download import download
    from ascend_build.fetch.resolve import Wheel
    from test_fetch_faults import DATA, FAST, NAME, parts

    if kept:
        (tmp_path / f".{NAME}.part").write_bytes(DATA[:kept])
    wheel = Wheel(name="tiny", version="1.0", url=encoded.url, filename=NAME, sha256=hashlib.sha256(DATA).hexdigest(),
                  size=len(DATA))
    with pytest.raises(PackageError, match=r"Content-Encoding: gzip.*refused"):
        download(wheel, tmp_path, limits=FAST)
    assert [p.read_bytes() for p in parts(tmp_path)] == ([DATA[:kept]] if kept else [])
    assert not (tmp_path / NAME).exists()


def test_a_download_refused_before_its_first_byte_leaves_no_part(tmp_path):
    from ascend_build.errors import PackageError
    from ascend_build.fetch.download import download
    from test_fetch_faults import FAST, Server, parts

    server = Server()
    try:
        server.mode = "lie"
        with pytest.raises(PackageError, match="refused before downloading"):
            download(server.wheel(), tmp_path, limits=FAST)
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()
    assert parts(tmp_path) == [] and list(tmp_path.iterdir()) == []


def test_a_disk_that_fills_up_during_a_download_is_one_message_naming_the_part(tmp_path, monkeypatch):
    """The part file cannot take more bytes (ENOSPC): one OutputError with the path and the free
    space, what was written before kept for the next run, never a traceback."""
    import errno

    from ascend_build.errors import OutputError
    import importlib

    from test_fetch_faults import DATA, FAST, Server, parts

    module = importlib.import_module("ascend_build.fetch.download")
    real_claim = module.claim

    class Full:
        def __init__(self, file):
            self.file = file

        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")

        def __getattr__(self, name):
            return getattr(self.file, name)

    def claim(workdir, filename):
        part = real_claim(workdir, filename)
        part.file.write(DATA[:100])                     # what an earlier run wrote
        part.file = Full(part.file)
        return part

    monkeypatch.setattr(module, "claim", claim)
    server = Server()
    try:
        with pytest.raises(OutputError, match=r"cannot write .*\.part: No space left on device \(.* free"):
            module.download(server.wheel(), tmp_path, limits=FAST)
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()
    assert [p.read_bytes() for p in parts(tmp_path)] == [DATA[:100]]


# -- containers: what an image's program prints --------------------------------------------------

def test_an_image_python_that_prints_megabytes_is_read_with_bounded_memory(tmp_path):
    """A python3 that prints 24 MiB before its answer: the probe still reads its last line, and
    no more than the last MAX_OUTPUT bytes of it are held (an endless printer, stopped at the
    deadline, holds no more either)."""
    from fakes import docker_client
    from ascend_build.engines import base
    from ascend_build.engines.docker import Docker
    from ascend_build.verify import CHECKS, last_json

    docker = docker_client(tmp_path / "docker", '  "run --rm") cat > /dev/null; head -c 25165824 /dev/zero | tr "\\0" A; '
                                                   'echo; echo \'[{"name": "x", "ok": true}]\'; exit 0 ;;\n')
    result = Docker(str(docker)).run_python("some/image:1", "print(1)", purpose="verify")
    assert len(result.stdout) <= getattr(base, "MAX_OUTPUT", 8 << 20)
    assert [c.name for c in last_json(result, CHECKS)] == ["x"]


def test_an_image_python_that_prints_without_end_is_stopped_at_the_deadline(tmp_path):
    import time

    from fakes import docker_client
    from ascend_build.engines.docker import Docker
    from ascend_build.errors import StepTimeout

    docker = docker_client(tmp_path / "docker", '  "run --rm") exec yes AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA ;;\n'
                                                   '  "rm --force") exit 0 ;;\n')
    engine = Docker(str(docker))
    engine.container_timeout = 2
    began = time.monotonic()
    with pytest.raises(StepTimeout, match="did not end in 2 s"):
        engine.run_python("some/image:1", "print(1)", purpose="verify", step="the python3 of image some/image:1")
    assert time.monotonic() - began < 15


# -- the package server: request targets and Host ------------------------------------------------

@pytest.fixture
def served(tmp_path):
    from ascend_build.server import PackageServer

    (tmp_path / "a.run").write_bytes(b"0123456789")
    with PackageServer({"a.run": tmp_path / "a.run"}, port=0) as server:
        yield server


def _ask(server, request: bytes) -> bytes:
    import socket

    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(request)
        answer = b""
        while True:
            block = sock.recv(65536)
            if not block:
                return answer
            answer += block


@pytest.mark.parametrize("target, status", [
    ("http://{host}/{token}/a.run", b"200"),                 # the absolute form (RFC 9112 3.2.2)
    ("HTTP://{host}/{token}/a.run?x=1", b"200"),
    ("http://{host}/{token}/../{token}/a.run", b"404"),
    ("http://{host}/other-token-0123456789/a.run", b"404"),
    ("http://{host}", b"404"),
    ("https://{host}/{token}/a.run", b"404"),
    ("/{token}/%2e%2e/a.run", b"404"),
])
def test_request_targets(served, target, status):
    host = f"127.0.0.1:{served.port}"
    line = target.format(host=host, token=served.token)
    answer = _ask(served, f"GET {line} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
    assert answer.startswith(b"HTTP/1.1 " + status + b" "), answer[:200]
    assert answer.endswith(b"0123456789") == (status == b"200")


@pytest.mark.parametrize("hosts, version, status", [
    ([], "1.1", b"400"), (["a", "b"], "1.1", b"400"), (["a", "a"], "1.0", b"400"), ([], "1.0", b"200"), (["a"], "1.1", b"200"),
])
def test_an_http11_request_names_one_host(served, hosts, version, status):
    fields = "".join(f"Host: {h}\r\n" for h in hosts)
    answer = _ask(served, f"GET /{served.token}/a.run HTTP/{version}\r\n{fields}Connection: close\r\n\r\n".encode())
    assert answer.startswith(b"HTTP/1.1 " + status + b" "), answer[:200]
    assert answer.count(b"HTTP/1.1 ") == 1


# -- Ctrl-C ------------------------------------------------------------------------------------

@pytest.mark.parametrize("stop", ["SIGINT", "SIGHUP"])
def test_ctrl_c_pressed_again_during_cleanup_does_not_cut_it_short(tmp_path, stop):
    """An impatient user presses Ctrl-C three times: the first stops verify's container run, the
    next ones come while the container is being removed (here `rm --force` takes 2 s). The removal
    still ends, and the command ends with one message and 130, never a traceback. A terminal that
    closes (SIGHUP) is the same."""
    import json
    import signal
    import time

    from fakes import docker_client

    docker = docker_client(tmp_path / "docker", '  "image inspect") cat "$0.labels" ;;\n'
                                                   '  "run --rm") touch "$0.running"; sleep 30 ;;\n'
                                                   '  "rm --force") sleep 2; touch "$0.removed"; exit 0 ;;\n')
    labels = {"io.ascend-build.target": "base", "io.ascend-build.stages": "base"}
    (tmp_path / "docker.labels").write_text(json.dumps([{"Id": "sha256:1", "Size": 1, "Config": {"Labels": labels}}]))
    env = {**os.environ, "ASCEND_BUILD_DOCKER": str(docker), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    proc = subprocess.Popen([*CLI, "verify", "some/image:1", "--engine", "docker"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(300):
            if (tmp_path / "docker.running").exists():
                break
            time.sleep(0.1)
        for _ in range(3):
            proc.send_signal(getattr(signal, stop))
            time.sleep(0.4)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert "Traceback" not in err and err.count("error:") == 1, err
    assert (tmp_path / "docker.removed").exists(), err


def test_a_server_that_trickles_its_answer_head_is_stopped_in_time(tmp_path):
    """A byte of the head every 0.2 s never trips a read timeout: the head as a whole must come
    within the time to connect and one speed window (at most the deadline); the message names the
    URL and the part made for it goes (it holds no byte)."""
    import hashlib
    import socket
    import threading
    import time

    from ascend_build.errors import PackageError
    from ascend_build.fetch.download import download
    from ascend_build.fetch.pace import Limits
    from ascend_build.fetch.resolve import Wheel
    from test_fetch_faults import DATA, NAME, parts

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    stop = threading.Event()

    def trickle():
        conn, _ = listener.accept()
        conn.recv(65536)
        conn.sendall(b"HTTP/1.1 200 OK\r\n")
        while not stop.is_set():
            try:
                conn.sendall(b"X")
            except OSError:
                break
            time.sleep(0.2)
        conn.close()

    threading.Thread(target=trickle, daemon=True).start()
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/{NAME}"
    wheel = Wheel(name="tiny", version="1.0", url=url, filename=NAME, sha256=hashlib.sha256(DATA).hexdigest(), size=len(DATA))
    began = time.monotonic()
    try:
        with pytest.raises(PackageError, match=r"did not send a whole answer head .* in 3 s"):
            download(wheel, tmp_path, limits=Limits(min_speed=1024, window=2, deadline=3, connect=1))
    finally:
        stop.set()
        listener.close()
    assert time.monotonic() - began < 10
    assert parts(tmp_path) == [] and not (tmp_path / NAME).exists()


def test_bake_on_a_state_folder_that_fills_up_leaves_no_half_written_context(workdir, tmp_path, monkeypatch):
    """`bake` writes a build context per variant into .ascend-build/bake/: when the disk fills up
    half-way through one, the message names it with the free space, and that context is gone
    rather than left half-written."""
    import errno
    from pathlib import Path

    import yaml

    from ascend_build import build_context
    from ascend_build.bake import bake
    from ascend_build.errors import OutputError
    from ascend_build.spec import load_spec

    config = yaml.safe_load((workdir / "ascend-build.yaml").read_text())
    config["matrix"] = {"python": ["3.11"]}
    (workdir / "ascend-build.yaml").write_text(yaml.safe_dump(config))
    written = []
    real_write = Path.write_text

    def write_text(self, text, *args, **kwargs):
        if written:
            raise OSError(errno.ENOSPC, "No space left on device")
        written.append(self)
        return real_write(self, text, *args, **kwargs)

    monkeypatch.setattr(build_context.Path, "write_text", write_text)
    with pytest.raises(OutputError, match=r"cannot write .*bake/base-x86-64: No space left on device \(.* free"):
        bake(workdir, load_spec(workdir), "mindie", "x86_64")
    assert written and not (workdir / ".ascend-build" / "bake" / "base-x86-64").exists()


def test_a_container_whose_tool_was_killed_ends_by_itself_after_its_deadline(tmp_path):
    """The tool killed with SIGKILL cannot stop its container: the python3 it runs there (verify's
    probes, the set_env capture, the base image's Python) carries a deadline of its own, the
    tool's plus a margin, after which it exits and the engine's --rm removes the container. Here
    the same command line runs on this host's python3 with a 1 s deadline around a script that
    hangs."""
    import json
    import re
    import sys
    import time

    from fakes import docker_client
    from ascend_build.engines import base
    from ascend_build.engines.docker import Docker

    docker = docker_client(tmp_path / "docker", '  "run --rm") cat > /dev/null; echo "[]" ;;\n')
    engine = Docker(str(docker))
    engine.container_timeout = 42
    engine.run_python("some/image:1", "print(1)", purpose="verify")
    run = (tmp_path / "docker.calls").read_text()
    assert f"signal.alarm({42 + base.SELF_STOP_MARGIN})" in run

    boot = base.SELF_STOP.format(seconds=1) + base.BOOT
    began = time.monotonic()
    done = subprocess.run([sys.executable, "-c", boot], input=json.dumps([]) + "\nimport time\ntime.sleep(60)\n",
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 124 and time.monotonic() - began < 10
    assert re.fullmatch(r"[^\n]*", boot)                   # one line: a `-c` argument
