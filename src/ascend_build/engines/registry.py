"""Registries: reference names (the registry of a reference, per-arch tags), which may be reached
without TLS, and what a refused push means. Pushing and publishing a manifest list are the
engines' own methods (Engine.push, Engine.publish_manifest), through the engine's own login
(`docker login`, `podman login`): the credentials are never seen, passed or printed."""
import ipaddress
import re
from typing import Optional

from ..errors import ConfigError, EngineError

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


def refused(binary: str, ref: str, output: str) -> EngineError:
    """The one message for a push the registry refused (or that failed): which, and the fix."""
    registry = registry_of(ref) or "docker.io"
    if any(word in output.lower() for word in REFUSED):
        return EngineError(f"the registry {registry} refused {ref}: not logged in, or no push access",
                           fix=f"`{binary} login {registry}`, then build again")
    if "http response to https client" in output.lower():
        return EngineError(f"the registry {registry} speaks plain HTTP: {output.strip()[-300:]}",
                           fix="add --insecure-registry (allowed for a registry on this host; "
                               "another host also needs --allow-insecure-remote)")
    return EngineError(f"pushing {ref} failed: {output.strip()[-500:]}",
                       fix=f"check that {registry} answers (`{binary} push {ref}` by hand shows the same)")


def last_digest(output: str) -> str:
    """The last manifest digest an engine printed ("" when none)."""
    found = DIGEST.findall(output)
    return found[-1] if found else ""
