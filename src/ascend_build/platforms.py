"""The platform, in one place: arch names and their spellings, `linux/arm64` <-> `aarch64`, this
host's arch, and the wheel tags a target (Python, arch, glibc) accepts, best first. The catalog's
offline resolver and fetch's index resolver both take their tags from here."""
import platform as host_platform
from dataclasses import dataclass
from functools import lru_cache
from typing import Dict, FrozenSet, Optional, Tuple

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.tags import Tag, compatible_tags, cpython_tags

ARCH_ALIASES: Dict[str, str] = {
    "aarch64": "aarch64", "arm64": "aarch64",
    "x86_64": "x86_64", "x86-64": "x86_64", "x86": "x86_64", "amd64": "x86_64",
}
PLATFORMS: Dict[str, str] = {"x86_64": "linux/amd64", "aarch64": "linux/arm64"}     # arch -> OCI platform
DEFAULT_GLIBC: Tuple[int, int] = (2, 28)          # what a target's glibc is taken to be when not read
_OLDEST_GLIBC = {"x86_64": 5, "aarch64": 17}      # manylinux's first glibc per arch
_LEGACY = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}


def normalise_arch(text: Optional[str]) -> Optional[str]:
    """`x86`, `x86-64`, `amd64`, `linux/amd64` -> `x86_64`; `arm64`, `linux/arm64/v8` -> `aarch64`;
    None when unknown."""
    if not text:
        return None
    parts = text.strip().lower().split("/")
    if len(parts) > 1 and parts[0] == "linux":
        parts = parts[1:]
    return ARCH_ALIASES.get(parts[0])


def host_arch() -> Optional[str]:
    """This machine's arch (None on one ascend-build does not build for)."""
    return normalise_arch(host_platform.machine())


def oci_platform(arch: str) -> str:
    """`aarch64` -> `linux/arm64`."""
    return PLATFORMS[arch]


def platform_tags(arch: str, glibc: Tuple[int, int] = DEFAULT_GLIBC) -> Tuple[str, ...]:
    """The platform tags a target with this glibc accepts, best first: manylinux_2_N down to
    manylinux's first, the legacy aliases beside theirs, then linux_<arch>."""
    tags = []
    for minor in range(glibc[1], _OLDEST_GLIBC.get(arch, 17) - 1, -1):
        tags.append(f"manylinux_2_{minor}_{arch}")
        if minor in _LEGACY:
            tags.append(f"{_LEGACY[minor]}_{arch}")
    return (*tags, f"linux_{arch}")


@lru_cache(maxsize=16)
def wheel_tags(python: str, arch: str, glibc: Tuple[int, int] = DEFAULT_GLIBC) -> Tuple[Tag, ...]:
    """Every wheel tag CPython `python` (X.Y) on the target accepts, best first."""
    major, minor = (int(x) for x in python.split("."))
    platforms = list(platform_tags(arch, glibc))
    version = (major, minor)
    return (*cpython_tags(version, abis=[f"cp{major}{minor}"], platforms=platforms),
            *compatible_tags(version, f"cp{major}{minor}", platforms))


@dataclass(frozen=True)
class Target:
    """Where wheels are installed: the image's Python (X.Y), arch and glibc, never this host's."""

    python: str
    arch: str                             # x86_64 | aarch64
    glibc: Tuple[int, int] = DEFAULT_GLIBC

    @property
    def uv_platform(self) -> str:
        """uv's --python-platform, e.g. aarch64-manylinux_2_28."""
        return f"{self.arch}-manylinux_{self.glibc[0]}_{self.glibc[1]}"

    @property
    def manylinux(self) -> str:
        return f"manylinux_{self.glibc[0]}_{self.glibc[1]}"

    def tags(self) -> Tuple[Tag, ...]:
        """The wheel tags it accepts, best first."""
        return wheel_tags(self.python, self.arch, self.glibc)

    def accepts(self) -> FrozenSet[Tag]:
        return _tag_set(self.python, self.arch, self.glibc)

    def environment(self, extra: str = "") -> Dict[str, str]:
        """PEP 508 marker values of the target (never of this host)."""
        full = f"{self.python}.0"
        return {"implementation_name": "cpython", "implementation_version": full, "os_name": "posix",
                "platform_machine": self.arch, "platform_release": "", "platform_system": "Linux",
                "platform_version": "", "python_full_version": full, "platform_python_implementation": "CPython",
                "python_version": self.python, "sys_platform": "linux", "extra": extra}

    def python_fits(self, requires_python: Optional[str]) -> bool:
        try:
            return not requires_python or SpecifierSet(requires_python).contains(f"{self.python}.0", prereleases=True)
        except InvalidSpecifier:
            return True


@lru_cache(maxsize=16)
def _tag_set(python: str, arch: str, glibc: Tuple[int, int]) -> FrozenSet[Tag]:
    return frozenset(wheel_tags(python, arch, glibc))


def glibc_of(manylinux: str) -> Tuple[int, int]:
    """`2_28` (or `manylinux_2_28`) -> (2, 28)."""
    major, minor = manylinux.rsplit("_", 2)[-2:]
    return int(major), int(minor)
