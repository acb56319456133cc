"""A real registry for the tests: Debian's docker-registry on 127.0.0.1, started and stopped by
the test, anonymous or with htpasswd auth. The docker daemon treats 127.0.0.0/8 as insecure by
default, so no daemon configuration is needed."""
import contextlib
import shutil
import socket
import subprocess
import urllib.error
import urllib.request
from pathlib import Path
from typing import Iterator, Optional, Tuple

import pytest
from process import running

BINARY = "/usr/bin/docker-registry"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _answers(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=1)
        return True
    except urllib.error.HTTPError:
        return True             # 401 with auth: it answers
    except OSError:
        return False


@contextlib.contextmanager
def registry(folder: Path, credentials: Optional[Tuple[str, str]] = None) -> Iterator[str]:
    """Yields the registry's host:port; the process and its storage go away after."""
    if not shutil.which(BINARY):
        pytest.skip(f"{BINARY} missing: apt-get install docker-registry (.ci/run installs it)")
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    auth = ""
    if credentials:
        if not shutil.which("htpasswd"):
            pytest.skip("htpasswd missing: apt-get install apache2-utils (.ci/run installs it)")
        line = subprocess.run(["htpasswd", "-Bbn", *credentials], capture_output=True, text=True, check=True).stdout
        (folder / "htpasswd").write_text(line.strip() + "\n")
        auth = f"auth:\n  htpasswd:\n    realm: test\n    path: {folder / 'htpasswd'}\n"
    config = folder / "config.yml"
    config.write_text(f"version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {folder / 'data'}\n"
                      f"  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n{auth}")
    with running([BINARY, "serve", str(config)], folder / "registry.log",
                 lambda: _answers(f"http://127.0.0.1:{port}/v2/"), tries=100, pause=0.1, stop_timeout=10):
        yield f"127.0.0.1:{port}"
