"""A fresh docker daemon for the tests: its own data root, socket, containerd namespace and
bridge; it shares nothing with the machine's daemon (no images, no build cache), as a new CI
runner would. Started and stopped by the test.

Never `--bridge=none`: a daemon started so deletes the host's docker0, which the machine's daemon
needs. The test daemon gets a bridge of its own (made here, deleted after) and no iptables rules."""
import contextlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Iterator

import pytest
from process import running

DOCKERD = "/usr/sbin/dockerd"


def left_mounts(*folders: Path) -> list:
    """Mounts under the folders that a stopped daemon left, deepest first."""
    with open("/proc/mounts") as mounts:
        points = [line.split()[1] for line in mounts]
    return sorted((p for p in points if any(p == str(f) or p.startswith(f"{f}/") for f in folders)), reverse=True)


@contextlib.contextmanager
def fresh_daemon(folder: Path, docker_bin: str) -> Iterator[str]:
    """Yields the DOCKER_HOST of a daemon started for the test; it and its data go away after."""
    if os.geteuid() != 0 or not shutil.which(DOCKERD):
        pytest.skip("a second dockerd needs root and /usr/sbin/dockerd")
    folder.mkdir(parents=True)
    short = Path(tempfile.mkdtemp(prefix="abd-", dir="/tmp"))     # unix sockets: paths under 108 bytes
    host = f"unix://{short}/sock"
    bridge = "abd" + short.name[-6:].lower().replace("_", "x")
    had_docker0 = Path("/sys/class/net/docker0").exists()
    subprocess.run(["ip", "link", "add", bridge, "type", "bridge"], check=True)
    subprocess.run(["ip", "addr", "add", "198.18.213.1/24", "dev", bridge], check=True)
    subprocess.run(["ip", "link", "set", bridge, "up"], check=True)
    name = folder.parent.name[-20:]
    cmd = [DOCKERD, "--data-root", str(folder / "root"), "--exec-root", str(short / "exec"),
           "--pidfile", str(folder / "pid"), "-H", host, "--bridge", bridge, "--iptables=false",
           "--ip-masq=false", "--containerd-namespace", f"t-{name}", "--containerd-plugins-namespace", f"tp-{name}"]

    def answers() -> bool:
        return subprocess.run([docker_bin, "-H", host, "info"], capture_output=True).returncode == 0

    try:
        with running(cmd, folder / "dockerd.log", answers, tries=120, pause=0.5, stop_timeout=30,
                     start_new_session=True):
            yield host
    finally:
        for mount in left_mounts(folder, short):
            subprocess.run(["umount", "-l", mount], capture_output=True)
        shutil.rmtree(folder / "root", ignore_errors=True)
        shutil.rmtree(short, ignore_errors=True)
        subprocess.run(["ip", "link", "del", bridge], capture_output=True)
    assert Path("/sys/class/net/docker0").exists() == had_docker0, "the test daemon must leave docker0 alone"
