"""Pick an engine for this host (`--engine auto`) and say why. A docker engine's answer is kept
in the user's cache folder while the daemon and the clients are the same ones (probe_key)."""
import shutil
import subprocess
from pathlib import Path
from typing import List, Optional, Tuple

from packaging.version import InvalidVersion, Version

from ..errors import ConfigError, EngineError
from ..usercache import UserCache
from .base import Engine
from .docker import Docker, DockerBuildKit
from .identity import DOCKER_ENV, docker_candidates, probe_key
from .podman import Podman

ENGINES = ("auto", "docker", "buildkit", "podman")


def _quiet(args: List[str]) -> Optional[str]:
    try:
        result = subprocess.run(args, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def client_version(binary: str) -> Optional[Version]:
    text = _quiet([binary, "version", "--format", "{{.Client.Version}}"])
    try:
        return Version(text.split("+")[0].split("-")[0]) if text else None
    except InvalidVersion:
        return None


def buildkit_for(binary: str) -> Tuple[Optional[Engine], str]:
    if _quiet([binary, "buildx", "version"]) is not None:
        return DockerBuildKit(binary, buildx=True), f"{binary} has the buildx plugin"
    version = client_version(binary)
    if version and version < Version("23"):
        return DockerBuildKit(binary), f"{binary} {version} < 23 selects BuildKit with DOCKER_BUILDKIT=1"
    return None, f"{binary} {version or '?'} has no buildx plugin (clients >= 23 need it for BuildKit)"


CACHE = UserCache("engines", most=16)


def _cached(key: str) -> Optional[Tuple[Engine, str]]:
    try:
        entry = CACHE.get(key)
        kind, binary, buildx, why, bridge = (entry[k] for k in ("kind", "binary", "buildx", "reason", "bridge"))
    except (AttributeError, TypeError, KeyError):
        return None
    if kind not in ("docker", "buildkit") or not isinstance(binary, str) or not isinstance(why, str):
        return None
    found = DockerBuildKit(binary, buildx=bool(buildx)) if kind == "buildkit" else Docker(binary)
    found.bridge = bridge if isinstance(bridge, str) else None
    return found, why


def _remember(key: str, found: Engine, why: str) -> None:
    """Keep the answer (with the bridge address, asked now)."""
    CACHE.remember(key, {"kind": found.name, "binary": found.binary, "buildx": getattr(found, "buildx", False),
                         "reason": why, "bridge": found.bridge_address()})


def choose(engine: str = "auto", docker_bin: Optional[str] = None) -> Tuple[Engine, str]:
    """Return a usable engine and the reason it was picked; EngineError when none answers.
    auto prefers docker with BuildKit, then the classic builder, then podman. A docker answer
    is reused while probe_key is the same."""
    if engine not in ENGINES:
        raise ConfigError(f"unknown engine {engine!r}", fix=f"use one of: {', '.join(ENGINES)}")
    key = probe_key(engine, docker_bin)
    found = _cached(key) if key else None
    if found is None:
        found = probe(engine, docker_bin)
        if key and isinstance(found[0], (Docker, DockerBuildKit)):
            _remember(key, *found)
    return found


def probe(engine: str, docker_bin: Optional[str]) -> Tuple[Engine, str]:
    """Ask the clients and daemons which engine to use (choose without the cache)."""
    reasons: List[str] = []
    if engine != "podman":
        classic_fallback: Optional[Tuple[Engine, str]] = None
        for binary in docker_candidates(docker_bin):
            classic = Docker(binary)
            problem = classic.available()
            if problem:
                reasons.append(f"{binary}: {problem}")
                continue
            if engine == "docker":
                return classic, f"{binary} with the classic builder (asked for)"
            buildkit, why = buildkit_for(binary)
            if buildkit:
                return buildkit, why
            reasons.append(why)
            classic_fallback = classic_fallback or (classic, f"{why}; using the classic builder")
        if engine == "buildkit":
            raise EngineError("no docker client here can use BuildKit: " + "; ".join(reasons),
                              fix=f"install the buildx plugin, or point --docker-bin (or {DOCKER_ENV}) at a client older than 23 such as Debian's /usr/bin/docker")
        if classic_fallback:
            return classic_fallback
    if engine in ("auto", "podman"):
        podman = Podman()
        problem = podman.available() if shutil.which("podman") else "podman is not installed"
        if not problem:
            return podman, "podman answers" + (" (asked for)" if engine == "podman" else " and no docker daemon does")
        reasons.append(f"podman: {problem}")
    raise EngineError("no container engine answers: " + "; ".join(reasons),
                      fix="start the Docker daemon (e.g. `sudo systemctl start docker`, or `sudo dockerd &`) or install podman")


def for_binary(binary: str) -> Engine:
    """The engine a client binary drives, without asking it anything (`run --engine-bin`)."""
    return Podman(binary) if Path(binary).name.startswith("podman") else Docker(binary)
