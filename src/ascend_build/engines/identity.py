"""Which docker daemon and clients an engine answer belongs to (probe_key), with the standard
library only: the probe cache and the no-change fast path (fastpath.py) both key on it."""
from __future__ import annotations

import os

DOCKER_ENV = "ASCEND_BUILD_DOCKER"
PLUGIN_DIRS = ("~/.docker/cli-plugins", "/usr/local/lib/docker/cli-plugins", "/usr/local/libexec/docker/cli-plugins",
               "/usr/lib/docker/cli-plugins", "/usr/libexec/docker/cli-plugins")
PID_FILE_ENV = "ASCEND_BUILD_DOCKER_PID_FILE"       # another pid file: tests
PID_FILE = os.environ.get(PID_FILE_ENV, "/var/run/docker.pid")


def which(name: str) -> str | None:
    """The program `name` on PATH, as the shell finds it (shutil.which, without its imports)."""
    for folder in os.environ.get("PATH", os.defpath).split(os.pathsep):
        path = os.path.join(folder or ".", name)
        if os.access(path, os.X_OK) and not os.path.isdir(path):
            return path
    return None


def docker_candidates(docker_bin: str | None) -> list[str]:
    if docker_bin or os.environ.get(DOCKER_ENV):
        return [docker_bin or os.environ[DOCKER_ENV]]
    found = [which("docker")] + [p for p in ("/usr/bin/docker",) if os.access(p, os.X_OK)]
    return list(dict.fromkeys(p for p in found if p))


def _stamp(path: str) -> str:
    try:
        st = os.stat(os.path.expanduser(path))
    except OSError:
        return f"{path}:-"
    return f"{path}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}"


def probe_key(engine: str, docker_bin: str | None) -> str | None:
    """What the docker probe's answer depends on: the clients (path, inode, mtime), their plugin
    folders and config, and the daemon's socket, which a restarted daemon makes anew. None when
    the daemon is not a local socket (DOCKER_HOST, DOCKER_CONTEXT): then every run probes."""
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    if not host.startswith("unix://") or os.environ.get("DOCKER_CONTEXT") or engine == "podman":
        return None
    pid = _daemon_pid()
    if pid == "dead":
        return None
    config = os.environ.get("DOCKER_CONFIG", "~/.docker")
    paths = [*docker_candidates(docker_bin), host[len("unix://"):], f"{config}/config.json", *PLUGIN_DIRS]
    return "|".join([engine, f"pid:{pid}", *(_stamp(p) for p in paths)])


def _daemon_pid() -> str:
    """The system daemon's pid from its pid file; "dead" when that process is gone (a daemon
    killed without removing its socket), "" when there is no readable pid file."""
    try:
        with open(PID_FILE) as f:
            pid = f.read().strip()
    except OSError:
        return ""
    return pid if pid.isdigit() and os.path.exists(f"/proc/{pid}") else "dead"
