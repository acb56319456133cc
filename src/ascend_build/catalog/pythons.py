"""The base image's Python: read once per image id in a throw-away container (through the
engine), kept in the user's cache folder; the config's `python:` when no engine answers."""
import json
from dataclasses import dataclass, field
from typing import Dict, Optional, Tuple

from ..errors import EngineError
from ..platforms import normalise_arch
from ..usercache import UserCache

CACHE = UserCache("pythons", most=32)
NOT_FOUND = 127                      # `run` with a command the image does not have (docker, podman)
# Standard library only: version, glibc and the distributions the image already has.
PROBE = ("import json, os, sys, importlib.metadata as m; "
         "libc = os.confstr('CS_GNU_LIBC_VERSION') if 'CS_GNU_LIBC_VERSION' in os.confstr_names else ''; "
         "print(json.dumps({'version': '%d.%d.%d' % sys.version_info[:3], 'glibc': libc or '', "
         "'packages': {d.metadata['Name']: d.version for d in m.distributions() if d.metadata['Name']}}))")


@dataclass(frozen=True)
class BasePython:
    """What the check knows of the image's Python: its X.Y (None: unknown), where that came
    from, and, when read from the image, its glibc and installed distributions."""

    version: Optional[str]
    source: str
    read: bool = False                    # read from the base image itself
    glibc: Optional[Tuple[int, int]] = None
    packages: Dict[str, str] = field(default_factory=dict)


def _parse(stdout: str) -> Optional[dict]:
    """The probe's answer; None when it is not one."""
    try:
        answer = json.loads(stdout.strip().splitlines()[-1])
        version = answer["version"]
        packages = answer.get("packages") or {}
    except (ValueError, IndexError, KeyError, TypeError, AttributeError):
        return None
    if not isinstance(version, str) or not isinstance(packages, dict):
        return None
    return {"version": version, "glibc": str(answer.get("glibc") or ""),
            "packages": {str(k): str(v) for k, v in packages.items()}}


def _glibc(text: str) -> Optional[Tuple[int, int]]:
    parts = text.split()[-1].split(".") if text.strip() else []
    return (int(parts[0]), int(parts[1])) if len(parts) >= 2 and parts[0].isdigit() and parts[1].isdigit() else None


def read_image(engine, image: str, platform: Optional[str] = None) -> Tuple[Optional[dict], str]:
    """The probe's answer for `image` ({version, glibc, packages}; version None: the image has no
    python3), cached by image id; (None, why) when the image is not in the engine's store or the
    container did not answer (not cached: the next check asks again)."""
    try:
        found = engine.find_image(image)
        if found is None:
            return None, f"the base image {image} is not in {engine.binary}'s store yet"
        here = normalise_arch(found.get("Architecture"))
        if platform and here and here != normalise_arch(platform):
            return None, (f"the store holds the base image {image} for {here}, not its {platform} image yet "
                          "(build pulls it)")
        key = str(found.get("Id") or "")
        cached = CACHE.get(key) if key else None
        if isinstance(cached, dict) and "version" in cached:
            return cached, ""
        result = engine.run_container(image, ["-c", PROBE], entrypoint="python3", network="none",
                                      flags=["--platform", platform] if platform else [], timeout=120, purpose="probe",
                                      step=f"the python3 of base image {image}",
                                      fix="the base image's python3 must start and end: try `docker run --rm "
                                          "--entrypoint python3 IMAGE -c pass`, or pick another base image")
    except EngineError as err:
        return None, f"reading the base image {image} failed: {err.message}"
    if result.returncode == NOT_FOUND:
        answer = {"version": None, "glibc": "", "packages": {}, "os": _os_release(engine, image, platform)}
    else:
        answer = _parse(result.stdout) if result.returncode == 0 else None
        if answer is None:
            last = (result.stderr.strip().splitlines() or [f"exit status {result.returncode}"])[-1]
            return None, f"python3 in the base image {image} did not answer: {last[-300:]}"
    if key:
        CACHE.remember(key, answer)
    return answer, ""


def _os_release(engine, image: str, platform: Optional[str]) -> str:
    """`<ID> <VERSION_ID>` of the image's /etc/os-release (e.g. `ubuntu 22.04`), or ""."""
    try:
        result = engine.run_container(image, ["/etc/os-release"], entrypoint="cat", network="none",
                                      flags=["--platform", platform] if platform else [], timeout=120, purpose="probe",
                                      step=f"`cat /etc/os-release` in base image {image}")
    except EngineError:
        return ""
    fields = dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)
    name, version = (fields.get(k, "").strip().strip('"').lower() for k in ("ID", "VERSION_ID"))
    return f"{name} {version}" if result.returncode == 0 and name and version else ""


def base_python(engine, image: str, configured: Optional[str], platform: Optional[str] = None,
                no_engine: str = "no engine was asked", distro_pythons: Optional[Dict[str, str]] = None) -> BasePython:
    """The image's Python as read through `engine` (None: no engine answered, `no_engine` says
    why): its python3's, or, for an image without python3, the Python its distribution installs
    in the base stage (`distro_pythons`: `<ID> <VERSION_ID>` -> X.Y); else the config's
    `python:`, saying so."""
    fallback = (f"`python: {configured}` in ascend-build.yaml" if configured else "the wheels' cp tags")
    if engine is None:
        return BasePython(configured, f"{fallback} ({no_engine}, so the base image {image} was not read)")
    answer, why = read_image(engine, image, platform)
    if answer is None:
        return BasePython(configured, f"{fallback} ({why})")
    if answer["version"] is None:
        distro = str(answer.get("os") or "")
        version = (distro_pythons or {}).get(distro)
        if version:
            return BasePython(str(version), f"the base image {image} ({distro}: no python3, the base stage installs "
                                            f"the distribution's Python {version})", read=True)
        return BasePython(configured, f"{fallback} (the base image {image} has no python3: the base stage "
                                      f"installs the distribution's{', ' + distro if distro else ''}, whose Python "
                                      "ascend-build does not know)")
    version = ".".join(answer["version"].split(".")[:2])
    return BasePython(version, f"the base image {image} (Python {answer['version']})", read=True,
                      glibc=_glibc(answer["glibc"]), packages=answer["packages"])
