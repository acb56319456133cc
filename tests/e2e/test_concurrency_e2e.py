"""Issue #23 with the real classic builder: a busy default port is no error and no cache miss, and
nothing in the image's history fetches anything from a later `serve` of the folder."""
import re
import socket
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from clirun import CLI
from test_build import build, make_workdir

pytestmark = pytest.mark.e2e
TOKENISH = re.compile(r"[A-Za-z0-9_-]{16,}")


def busy(port: int):
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("", port))
        sock.listen()
    except OSError:
        sock.close()
        return None              # someone else holds it: as good
    return sock


def test_classic_builds_on_any_port_stay_cached_and_history_serves_nothing(tmp_path, base_image):
    workdir = make_workdir(tmp_path, "w", seed=f"conc-{time.time()}")
    tag = "ascend-build-test/concurrency:cann"
    holder = busy(3000)
    try:
        first, report = build(workdir, "--engine", "docker", "--target", "cann", "-t", tag, "--base-image", base_image)
        assert first.returncode == 0, first.stderr[-3000:]
        assert "port 3000 is in use" in first.stderr
    finally:
        if holder:
            holder.close()
    again, report = build(workdir, "--engine", "docker", "--target", "cann", "-t", tag, "--base-image", base_image,
                          "--port", "0")
    assert again.returncode == 0, again.stderr[-3000:]
    assert [s["status"] for s in report["stages"]] == ["cached", "cached"], report["stages"]
    history = subprocess.run(["docker", "history", "--no-trunc", "--format", "{{.CreatedBy}}", tag],
                             capture_output=True, text=True, check=True).stdout
    inspect = subprocess.run(["docker", "image", "inspect", tag], capture_output=True, text=True, check=True).stdout
    assert "ascend-pkg-url=" not in history + inspect and "FTP_PROXY" not in history + inspect
    serve = subprocess.Popen([*CLI, "serve", "-C", str(workdir), "--host", "127.0.0.1", "--port", "0"],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        url = None
        for line in serve.stdout:
            found = re.search(r"serving \d+ files at (http://\S+)", line)
            if found:
                url = found.group(1)
                break
        assert url, "serve did not start"
        served_token = url.rstrip("/").rsplit("/", 1)[1]
        assert served_token not in history + inspect
        names = [p.name for p in (workdir / "packages").iterdir()]
        root = url.rstrip("/").rsplit("/", 1)[0]
        for token in set(TOKENISH.findall(history + inspect)):
            for name in names[:3]:
                with pytest.raises(urllib.error.HTTPError) as err:
                    urllib.request.urlopen(f"{root}/{token}/{name}", timeout=5)
                assert err.value.code == 404
    finally:
        serve.terminate()
        serve.wait(10)
        subprocess.run(["docker", "rmi", "-f", tag], capture_output=True)
