"""Registries through the engine's own client: push an image, publish a manifest list. The
credentials are the engine's own login (`docker login`, `podman login`): this module never sees,
passes or prints them."""
import ipaddress
import re
import tempfile
from pathlib import Path
from typing import Dict, Optional, Sequence

from ..errors import ConfigError, EngineError
from .base import Engine

DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
REFUSED = ("unauthorized", "authentication required", "no basic auth credentials", "denied", "401")
ARCH_NAMES = {"x86_64": "amd64", "aarch64": "arm64"}


def registry_of(ref: str) -> Optional[str]:
    """The registry host[:port] a reference names, None for Docker Hub's short names."""
    first, sep, _ = ref.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return first
    return None


def is_loopback(registry: str) -> bool:
    if registry.startswith("["):
        host = registry[1:].partition("]")[0]
    else:
        host = registry.rsplit(":", 1)[0] if registry.count(":") == 1 else registry
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_insecure(registry: Optional[str], insecure: bool, allow_remote: bool) -> None:
    """Plain HTTP / unverified TLS only for a registry on this host, unless asked for explicitly."""
    if insecure and not (registry and is_loopback(registry)) and not allow_remote:
        raise ConfigError(f"--insecure-registry is for registries on this host (127.0.0.1, localhost); "
                          f"{registry or 'Docker Hub'} is not one",
                          fix="give the registry TLS, or add --allow-insecure-remote if you accept pushing without it")


def arch_ref(ref: str, arch: str) -> str:
    """The per-arch reference of a multi-arch tag: reg/name:1.0 -> reg/name:1.0-arm64."""
    name, sep, tag = ref.rpartition(":")
    if not sep or "/" in tag:
        name, tag = ref, "latest"
    return f"{name}:{tag}-{ARCH_NAMES[arch]}"


def _refused(engine: Engine, ref: str, output: str) -> EngineError:
    registry = registry_of(ref) or "docker.io"
    if any(word in output.lower() for word in REFUSED):
        return EngineError(f"the registry {registry} refused {ref}: not logged in, or no push access",
                           fix=f"`{engine.binary} login {registry}`, then build again")
    if "http response to https client" in output.lower():
        return EngineError(f"the registry {registry} speaks plain HTTP: {output.strip()[-300:]}",
                           fix="add --insecure-registry (allowed for a registry on this host; "
                               "another host also needs --allow-insecure-remote)")
    return EngineError(f"pushing {ref} failed: {output.strip()[-500:]}",
                       fix=f"check that {registry} answers (`{engine.binary} push {ref}` by hand shows the same)")


def push(engine: Engine, ref: str, insecure: bool = False) -> str:
    """Push `ref`; its manifest digest."""
    if engine.name == "podman":
        with tempfile.TemporaryDirectory() as tmp:
            digest_file = Path(tmp) / "digest"
            result = engine.run(["push", "--digestfile", str(digest_file), *(["--tls-verify=false"] if insecure else []), ref],
                                timeout=1800, check=False)
            if result.returncode != 0:
                raise _refused(engine, ref, result.stdout + result.stderr)
            return digest_file.read_text().strip()
    result = engine.run(["push", ref], timeout=1800, check=False)
    if result.returncode != 0:
        raise _refused(engine, ref, result.stdout + result.stderr)
    found = DIGEST.findall(result.stdout)
    return found[-1] if found else ""


def tag(engine: Engine, image: str, ref: str) -> None:
    engine.run(["tag", image, ref])


def publish_manifest(engine: Engine, ref: str, images: Dict[str, str], insecure: bool = False) -> str:
    """Publish one manifest list `ref` over the pushed per-arch `images` (arch -> reference); its
    digest. docker: `docker manifest create/push`; podman: `podman manifest create/add/push`."""
    if engine.name == "podman":
        return _podman_manifest(engine, ref, images.values(), insecure)
    env = {**(engine.env or {}), "DOCKER_CLI_EXPERIMENTAL": "enabled"}
    flag = ["--insecure"] if insecure else []
    client = Engine(engine.binary, env)
    client.run(["manifest", "rm", ref], check=False)        # a local list from an earlier run
    result = client.run(["manifest", "create", *flag, ref, *images.values()], timeout=300, check=False)
    if result.returncode == 0:
        result = client.run(["manifest", "push", "--purge", *flag, ref], timeout=600, check=False)
    if result.returncode != 0:
        raise _refused(engine, ref, result.stdout + result.stderr)
    found = DIGEST.findall(result.stdout)
    return found[-1] if found else ""


def _podman_manifest(engine: Engine, ref: str, images: Sequence[str], insecure: bool) -> str:
    flag = ["--tls-verify=false"] if insecure else []
    engine.run(["manifest", "rm", ref], check=False)
    engine.run(["manifest", "create", ref])
    for image in images:
        engine.run(["manifest", "add", *flag, ref, f"docker://{image}"], timeout=300)
    with tempfile.TemporaryDirectory() as tmp:
        digest_file = Path(tmp) / "digest"
        result = engine.run(["manifest", "push", "--all", "--digestfile", str(digest_file), *flag, ref, f"docker://{ref}"],
                            timeout=600, check=False)
        if result.returncode != 0:
            raise _refused(engine, ref, result.stdout + result.stderr)
        return digest_file.read_text().strip()
