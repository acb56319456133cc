"""A fresh docker daemon for the tests: its own data root, socket and containerd namespace, no
bridge; it shares nothing with the machine's daemon (no images, no build cache), as a new CI
runner would. Started and stopped by the test."""
import contextlib
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Iterator

import pytest

DOCKERD = "/usr/sbin/dockerd"


@contextlib.contextmanager
def fresh_daemon(folder: Path, docker_bin: str) -> Iterator[str]:
    """Yields the DOCKER_HOST of a daemon started for the test; it and its data go away after."""
    if os.geteuid() != 0 or not shutil.which(DOCKERD):
        pytest.skip("a second dockerd needs root and /usr/sbin/dockerd")
    folder.mkdir(parents=True)
    host = f"unix://{folder}/sock"
    name = folder.parent.name[-20:]
    log = (folder / "dockerd.log").open("w")
    proc = subprocess.Popen([DOCKERD, "--data-root", str(folder / "root"), "--exec-root", str(folder / "exec"),
                             "--pidfile", str(folder / "pid"), "-H", host, "--bridge=none", "--iptables=false",
                             "--ip-masq=false", "--containerd-namespace", f"t-{name}",
                             "--containerd-plugins-namespace", f"tp-{name}"],
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        for _ in range(120):
            if subprocess.run([docker_bin, "-H", host, "info"], capture_output=True).returncode == 0:
                break
            if proc.poll() is not None:
                pytest.fail(f"dockerd exited: {(folder / 'dockerd.log').read_text()[-800:]}")
            time.sleep(0.5)
        yield host
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        shutil.rmtree(folder / "root", ignore_errors=True)
