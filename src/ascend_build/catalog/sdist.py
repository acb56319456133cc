"""What a source distribution (`<name>-<version>.tar.gz`, PEP 625) says of itself, read with bounded
reads: its PKG-INFO (name, version, Requires-Dist, Requires-Python) and what its pyproject.toml's
`[build-system] requires` asks to build it. A package whose dependencies depend on how it is built
(per target device, say) names them in a file inside the sdist instead (`requirements`, a
component's word, e.g. `requirements/common.txt`; its `-r` lines are followed).

An sdist that cannot be read gives None here: the integrity check reports why."""
import sys
import tarfile
import zlib
from dataclasses import asdict, dataclass
from email.parser import BytesHeaderParser
from pathlib import Path, PurePosixPath
from typing import List, Optional, Sequence, Tuple

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import InvalidSdistFilename, canonicalize_name, parse_sdist_filename

if sys.version_info >= (3, 11):
    import tomllib
else:                                                   # pragma: no cover - Python 3.9/3.10
    import tomli as tomllib

MAX_MEMBER = 1 << 20                    # PKG-INFO, pyproject.toml and requirements files: a few KiB
MAX_MEMBERS = 200_000                   # members read from a tarball's index before giving up
_READ_ERRORS = (OSError, tarfile.TarError, zlib.error, EOFError, ValueError, UnicodeDecodeError, KeyError)


@dataclass(frozen=True)
class SdistFacts:
    name: str
    version: str
    requires: Tuple[str, ...] = ()              # what the built wheel will require
    requires_python: Optional[str] = None
    build_requires: Tuple[str, ...] = ()        # [build-system] requires (setuptools' default when absent)
    static: bool = True                         # `requires` is what the wheel will require (metadata 2.2+, not dynamic)


def sdist_name(file_name: str) -> Optional[Tuple[str, str]]:
    """(normalised name, version) of an sdist's file name, or None."""
    try:
        name, version = parse_sdist_filename(file_name)
    except (InvalidSdistFilename, ValueError):
        return None
    return str(name), str(version)


def requirements_besides(lines: Sequence[str], installed: Sequence[str] = ()) -> List[str]:
    """The PEP 508 requirements among `lines` (others are never handed on) whose names are not
    `installed`, each as packaging writes it."""
    skip = {canonicalize_name(n) for n in installed}
    found = []
    for line in lines:
        try:
            req = Requirement(line)
        except InvalidRequirement:
            continue
        if canonicalize_name(req.name) not in skip:
            found.append(str(req))
    return found


def facts_to_json(facts: Optional[SdistFacts]) -> Optional[dict]:
    return asdict(facts) if facts else None


def facts_from_json(data: Optional[dict]) -> Optional[SdistFacts]:
    if data is None:
        return None
    return SdistFacts(name=str(data["name"]), version=str(data["version"]), requires=tuple(map(str, data["requires"])),
                      requires_python=None if data["requires_python"] is None else str(data["requires_python"]),
                      build_requires=tuple(map(str, data["build_requires"])), static=bool(data.get("static", True)))


def _lines(text: str, read, seen: Tuple[str, ...]) -> Tuple[str, ...]:
    """Requirement lines of a requirements file; `-r other` followed (inside the sdist, once)."""
    found = []
    for raw in text.splitlines():
        line = raw.split(" #", 1)[0].strip()
        if line.startswith("-r ") and line[3:].strip() not in seen:
            found += _lines(read(line[3:].strip()) or "", read, seen + (line[3:].strip(),))
        elif line and not line.startswith(("#", "-")):
            found.append(line)
    return tuple(found)


def read_sdist(path: Path, requirements: Optional[str] = None) -> Optional[SdistFacts]:
    """The facts of the sdist at `path`; `requirements`: the file (relative to its top folder) that
    lists what its wheel requires, instead of PKG-INFO's Requires-Dist."""
    try:
        with tarfile.open(path, "r:*") as tar:
            members = {}
            for count, member in enumerate(tar):
                if count > MAX_MEMBERS:
                    return None
                parts = PurePosixPath(member.name).parts
                if len(parts) >= 2 and member.isfile() and member.size <= MAX_MEMBER:
                    members["/".join(parts[1:])] = member

            def read(name: str) -> Optional[str]:
                member = members.get(str(PurePosixPath(name)))
                handle = tar.extractfile(member) if member else None
                return handle.read(MAX_MEMBER).decode("utf-8") if handle else None

            info, pyproject = read("PKG-INFO"), read("pyproject.toml")
            listed = _lines(read(requirements) or "", lambda n: read(str(PurePosixPath(requirements).parent / n)),
                            (requirements,)) if requirements else None
    except _READ_ERRORS:
        return None
    if info is None:
        return None
    message = BytesHeaderParser().parsebytes(info.encode())
    if not message.get("Name") or not message.get("Version"):
        return None
    try:
        system = tomllib.loads(pyproject).get("build-system", {}) if pyproject else {}
    except (tomllib.TOMLDecodeError, AttributeError):
        system = {}
    build = system.get("requires") if isinstance(system, dict) else None
    dynamic = {str(d).strip().lower() for d in message.get_all("Dynamic") or ()}
    static = listed is not None or (_metadata_version(message.get("Metadata-Version")) >= (2, 2)
                                    and "requires-dist" not in dynamic)
    return SdistFacts(
        name=str(message["Name"]).strip(), version=str(message["Version"]).strip(),
        requires=listed if listed is not None else tuple(str(r).strip() for r in message.get_all("Requires-Dist") or ()),
        requires_python=str(message["Requires-Python"]).strip() if message.get("Requires-Python") else None,
        build_requires=tuple(str(r) for r in build) if isinstance(build, list) else ("setuptools>=40.8.0",),
        static=static)


def _metadata_version(text: Optional[str]) -> Tuple[int, ...]:
    try:
        return tuple(int(part) for part in str(text or "1.0").strip().split(".")[:2])
    except ValueError:
        return (1, 0)
