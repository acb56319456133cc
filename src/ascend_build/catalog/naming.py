"""File-name grammar of the Ascend packages (ascend-reference.md §2): a name -> its fields.

Names that fit no pattern give None: they are listed as unrecognised, never guessed. A name
reaches scripts and Dockerfiles only when it is also a safe file name (`is_safe_name`).
"""
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import List, Optional, Pattern, Tuple

from packaging.utils import InvalidWheelFilename, parse_wheel_filename

from ..grammar import FILE_NAME
from ..platforms import normalise_arch
from .sdist import sdist_name
from .versions import is_prerelease, parse_version

HOST_ONLY = ("driver", "firmware")


@dataclass(frozen=True)
class Identity:
    """What a file name says about a package."""

    component: str
    slot: Optional[str]
    version: str
    format: str
    arch: Optional[str] = None
    chip: Optional[str] = None
    python: Optional[str] = None
    torch: Optional[str] = None
    abi: Optional[int] = None
    prerelease: bool = False


def normalise_chip(text: str) -> str:
    """Chip names as the packages spell them: `A3` upper case, the others lower case."""
    return "A3" if text.lower() == "a3" else text.lower()


# the parts of Ascend file names, for the patterns here and the components' own
VERSION = _V = r"(?P<version>\d[^_]*?)"
ARCH = _A = r"(?P<arch>aarch64|arm64|x86_64|x86-64|x86|amd64)"
_C = r"(?P<chip>\d{3}[a-z]?|A3)"
_X = r"\.(?P<ext>run|zip)"     # CANN packages: the .run, or the official signed zip that holds it
# (pattern, component, slot, format); a pattern with an `ext` group takes its format from it
RUN_PATTERNS: List[Tuple[Pattern, str, Optional[str], str]] = [
    (rf"Ascend-cann-toolkit_{_V}_linux-{_A}{_X}", "toolkit", "toolkit", "run"),
    # runtime-only CANN (up to 8.3): alternatives to the toolkit, in its slot (`cann:` chooses)
    (rf"Ascend-cann-nnrt_{_V}_linux-{_A}{_X}", "nnrt", "toolkit", "run"),
    (rf"Ascend-cann-nnae_{_V}_linux-{_A}{_X}", "nnae", "toolkit", "run"),
    (rf"Ascend-cann-kernels-{_C}_{_V}_linux(?:-{_A})?{_X}", "kernels", "kernels", "run"),
    (rf"Atlas-(?P<chip>A3)-cann-kernels_{_V}_linux(?:-{_A})?{_X}", "kernels", "kernels", "run"),
    (rf"Ascend-cann-{_C}-ops_{_V}_linux(?:-{_A})?{_X}", "ops", "kernels", "run"),
    (rf"Ascend-cann-nnal_{_V}_linux-{_A}{_X}", "nnal", "nnal", "run"),
    (rf"Ascend-mindx-toolbox_{_V}_linux-{_A}{_X}", "toolbox", None, "run"),
    (rf"Ascend-hdk-{_C}-npu-driver_{_V}_linux-{_A}\.run", "driver", None, "run"),
    (rf"Ascend-hdk-{_C}-npu-firmware_{_V}\.run", "firmware", None, "run"),
    (r"(?P<req>requirements[\w.-]*)\.txt", "requirements", "requirements", "txt"),
]
_COMPILED = [(re.compile(p, re.IGNORECASE), c, s, f) for p, c, s, f in RUN_PATTERNS]
WHEEL_NAME = "wheel-name"     # the format of a pattern entry that names a distribution (its wheels fill the slot)
_WHEEL_PLATFORM = re.compile(r"^(?:many|musl)?linux(?:1|2010|2014|_\d+_\d+)?_(?P<arch>.+)$")
_TAG_PART = re.compile(r"[a-z0-9_]+", re.ASCII)


def is_safe_name(name: str) -> bool:
    """Letters, digits and `. _ + -` only, not starting with `-`: safe unquoted in any script."""
    return bool(FILE_NAME.fullmatch(name))


def _python_tag(tag: str) -> Optional[str]:
    """`cp311` / `py311` -> `3.11`; `py3` and others -> None (any)."""
    match = re.fullmatch(r"(?:cp|py)3(\d+)", tag)
    return f"3.{match.group(1)}" if match else None


def wheel_slot(dist: str, patterns: Tuple[Tuple[str, str, Optional[str], str], ...],
               anonymous: str) -> Tuple[str, Optional[str], Optional[str]]:
    """(component, slot, chip) of a distribution by the WHEEL_NAME entries: a name, or a pattern
    with a `chip` group (e.g. `ascend-cann-(?P<chip>[a-z0-9]+)-ops`); (anonymous, None, None) else."""
    for name, component, slot, fmt in patterns:
        if fmt != WHEEL_NAME:
            continue
        match = re.fullmatch(name, dist) if "(?P<chip>" in name else None
        if name == dist or match:
            chip = normalise_chip(match.group("chip")) if match else None
            return component, slot, chip
    return anonymous, None, None


def identify_wheel(name: str, patterns: Tuple[Tuple[str, str, Optional[str], str], ...] = ()) -> Optional[Identity]:
    """A wheel by PEP 427, its slot from the `patterns` entries of format WHEEL_NAME (distribution,
    component, slot) that components declare; None for bad names and wheels not for Linux."""
    try:
        dist, version, _build, tags = parse_wheel_filename(name)
    except InvalidWheelFilename:
        return None
    if not all(_TAG_PART.fullmatch(part) for t in tags for part in (t.interpreter, t.abi, t.platform)):
        return None
    arches = set()
    for tag in tags:
        if tag.platform == "any":
            continue
        match = _WHEEL_PLATFORM.match(tag.platform)
        arch = normalise_arch(match.group("arch")) if match else None
        if arch is None:
            return None
        arches.add(arch)
    pythons = {_python_tag(t.interpreter) for t in tags if t.abi != "abi3"}
    component, slot, chip = wheel_slot(dist, patterns, "wheel")
    text = str(version)
    return Identity(component=component, slot=slot, version=text, format="wheel", chip=chip,
                    arch=arches.pop() if len(arches) == 1 else None,
                    python=pythons.pop() if len(pythons) == 1 else None, prerelease=is_prerelease(text))


@lru_cache(maxsize=8)
def _compiled(patterns: Tuple[Tuple[str, str, Optional[str], str], ...]) -> List[Tuple[Pattern, str, Optional[str], str]]:
    return [(re.compile(p, re.IGNORECASE), c, s, f) for p, c, s, f in patterns if f != WHEEL_NAME] + _COMPILED


def identify(name: str, patterns: Tuple[Tuple[str, str, Optional[str], str], ...] = ()) -> Optional[Identity]:
    """The fields of a package file name (a base name); None when it fits no known pattern.
    `patterns` (regex, component, slot, format), declared by components, are tried first."""
    if name.endswith(".whl") and not patterns:
        return identify_wheel(name)
    for pattern, component, slot, fmt in _compiled(tuple(patterns)):
        match = pattern.fullmatch(name)
        if not match:
            continue
        fields = match.groupdict()
        version = fields.get("version") or ""
        if version and parse_version(version) is None:
            return None
        py = fields.get("py")
        return Identity(
            component=component, slot=slot, version=version, format=fields.get("ext") or fmt,
            arch=normalise_arch(fields.get("arch")),
            chip=normalise_chip(fields["chip"]) if fields.get("chip") else None,
            python=_python_tag(f"py{py}") if py else None,
            torch=fields.get("torch"),
            abi=int(fields["abi"]) if fields.get("abi") else None,
            prerelease=is_prerelease(version) if version else False,
        )
    if name.endswith(".whl"):
        return identify_wheel(name, patterns)
    return identify_sdist(name, patterns) if name.endswith(".tar.gz") else None


def identify_sdist(name: str, patterns: Tuple[Tuple[str, str, Optional[str], str], ...] = ()) -> Optional[Identity]:
    """A source distribution `<name>-<version>.tar.gz` (PEP 625), its slot as its wheels' (a
    component's WHEEL_NAME entries); None for other names."""
    found = sdist_name(name)
    if found is None:
        return None
    dist, version = found
    component, slot, _chip = wheel_slot(dist, patterns, "sdist")
    return Identity(component=component, slot=slot, version=version, format="sdist", prerelease=is_prerelease(version))
