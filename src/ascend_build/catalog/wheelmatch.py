"""Offline matching of requirements to wheels (`check`; `fetch` resolves against an index:
fetch/resolve.py): the Python packages each stage's wheels and requirements files need, found
among the working directory's wheels for the TARGET (the image's Python, arch and glibc), never
for this host.

Each wheel's `Requires-Dist` (markers evaluated for the target; `extra` markers only for the extras
asked for) is looked up by canonical name among the wheels of the folder: the version must be in
the specifier (local versions such as `+cpu` included), a tag must fit the target, and the wheel's
Requires-Python must hold the target's Python; the highest such version is taken, then its own
requirements, recursively. Packages an earlier stage installs, or the image already has, count
as present. What is found is what the stage hands to pip (`--no-index`); what is not is listed.
"""
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, FrozenSet, Iterable, List, Mapping, Optional, Sequence, Set, Tuple

from packaging.markers import InvalidMarker, UndefinedComparison, UndefinedEnvironmentName
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.tags import Tag
from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
from packaging.version import InvalidVersion, Version

from ..platforms import Target
from .model import Package
from .requirements import parsed_lines
from .sdist import sdist_name
from .wheelmeta import WheelMetadata, read_metadata

MAX_REQUIREMENTS_FILE = 1 << 20


@dataclass(frozen=True)
class Need:
    """A requirement and the file that states it; `extras`: the extras asked of that file's
    distribution (its `extra == ...` markers count only for those)."""

    requirement: Requirement
    asked_by: str
    extras: Tuple[str, ...] = ()

    def applies(self, target: Target) -> bool:
        marker = self.requirement.marker
        if marker is None:
            return True
        try:
            return any(marker.evaluate(target.environment(extra)) for extra in ("", *self.extras))
        except (InvalidMarker, UndefinedComparison, UndefinedEnvironmentName):
            return True


@dataclass(frozen=True)
class Missing:
    requirement: str                 # as written, e.g. "numpy>=1.21"
    asked_by: str
    found: str = ""                  # the wheels of that name here, and why none fits

    def describe(self) -> str:
        return f"{self.requirement} (for {self.asked_by}){'; here: ' + self.found if self.found else ''}"

    @property
    def name(self) -> str:
        """The normalised name of the distribution it asks for."""
        return canonicalize_name(Requirement(self.requirement).name)


@dataclass(frozen=True)
class Conflict:
    requirement: str
    asked_by: str
    chosen: str                      # file (or "the image's X 1.0") that has another version


@dataclass
class StageNeeds:
    """One stage's resolution: the wheels it takes besides its own files, and what is missing."""

    wheels: List[Package] = field(default_factory=list)
    missing: List[Missing] = field(default_factory=list)
    conflicts: List[Conflict] = field(default_factory=list)
    unfit: List[Tuple[Package, str]] = field(default_factory=list)   # the stage's own wheels that do not fit the target
    build: List[Package] = field(default_factory=list)               # wheels its sdists' builds need (installed apart)


def wheel_name(pkg: Package) -> Tuple[str, Optional[Version], FrozenSet[Tag]]:
    """(normalised name, version, tags) of a wheel's file name; an sdist's has no tags (it is built
    for the target)."""
    if pkg.format == "sdist":
        found = sdist_name(pkg.name)
        return (found[0], Version(found[1]), frozenset()) if found else ("", None, frozenset())
    try:
        name, version, _build, tags = parse_wheel_filename(pkg.name)
        return str(name), version, tags
    except (InvalidWheelFilename, InvalidVersion):
        return "", None, frozenset()


def read_text(path: Path) -> str:
    """A requirements file's text (its first MiB); empty when it cannot be read (the integrity
    check says so)."""
    try:
        with open(path, "rb") as f:
            return f.read(MAX_REQUIREMENTS_FILE).decode("utf-8", errors="replace")
    except OSError:
        return ""


def requirement_lines(text: str, asked_by: str) -> Tuple[List[Need], List[str]]:
    """The requirements of a requirements file's text (options such as `--find-links` skipped),
    and the lines that are neither a requirement nor an option."""
    needs, unread = [], []
    for _number, line, req in parsed_lines(text):
        if isinstance(req, Requirement):
            needs.append(Need(req, asked_by))
        elif not line.startswith("-"):
            unread.append(line)
    return needs, unread


class WheelMatcher:
    """Matches the stages of a chain in order: what a stage installs is present for the next."""

    def __init__(self, wheels: Sequence[Package], target: Target, provided: Mapping[str, Optional[str]] = None,
                 undeclared: Mapping[str, Sequence[str]] = None,
                 metadata: Optional[Callable[[Package], Optional[WheelMetadata]]] = None,
                 prefer: Mapping[str, SpecifierSet] = None,
                 build_requires: Callable[[Package], Sequence[str]] = lambda pkg: ()):
        self.target = target
        self.build_requires = build_requires       # an sdist's build requirements the image does not have as installed
        self.prefer = {canonicalize_name(n): s for n, s in (prefer or {}).items()}   # pins: chosen first when several fit
        self._read = metadata or (lambda pkg: read_metadata(pkg.path))
        self.by_name: Dict[str, List[Package]] = {}
        for pkg in wheels:
            name = wheel_name(pkg)[0]
            if name:
                self.by_name.setdefault(name, []).append(pkg)
        self.provided = {canonicalize_name(n): v for n, v in (provided or {}).items()}
        self.undeclared = {canonicalize_name(n): list(v) for n, v in (undeclared or {}).items()}
        self.installed: Dict[str, Package] = {}
        self._meta: Dict[Path, Optional[WheelMetadata]] = {}

    def metadata(self, pkg: Package) -> Optional[WheelMetadata]:
        if pkg.path not in self._meta:
            self._meta[pkg.path] = self._read(pkg)
        return self._meta[pkg.path]

    def needs_of(self, pkg: Package, extras: Iterable[str] = ()) -> List[Need]:
        meta = self.metadata(pkg)
        lines = list(meta.requires if meta else ()) + (self.undeclared.get(wheel_name(pkg)[0], [])
                                                       if not _build_tag(pkg) else [])
        needs = []
        for line in lines:
            try:
                needs.append(Need(Requirement(line), pkg.name, tuple(extras)))
            except InvalidRequirement:
                continue
        return needs

    def unfit(self, pkg: Package) -> Optional[str]:
        """Why `pkg` cannot be installed on the target (tags, Requires-Python), or None."""
        _name, _version, tags = wheel_name(pkg)
        if tags and not tags & self.target.accepts():
            return f"its tags {', '.join(sorted(str(t) for t in tags))} do not fit {self._where()}"
        meta = self.metadata(pkg)
        if meta and not self.target.python_fits(meta.requires_python):
            return f"it needs Python {meta.requires_python}, the image's is {self.target.python}"
        return None

    def _where(self) -> str:
        return (f"Python {self.target.python} on {self.target.arch} "
                f"(glibc {self.target.glibc[0]}.{self.target.glibc[1]})")

    def stage(self, roots: Sequence[Package], needs: Sequence[Need]) -> StageNeeds:
        """Match a stage that installs the wheels `roots` and the requirements `needs`. The
        sdists among them are built first, against what the image has then: their build
        requirements are matched apart (`build`: delivered, not installed)."""
        result, chosen = self._match(roots, needs)
        for sdist in (p for p in [*roots, *result.wheels] if p.format == "sdist"):     # each in a venv of its own
            build_needs = [Need(Requirement(line), f"{sdist.name} (to build it)") for line in self.build_requires(sdist)]
            if build_needs:
                build, _ = self._match([], build_needs, building=True)
                result.build += [p for p in build.wheels if p not in result.build]
                result.missing += build.missing
                result.conflicts += build.conflicts
        self.installed.update(chosen)
        return result

    def _match(self, roots: Sequence[Package], needs: Sequence[Need],
               building: bool = False) -> Tuple[StageNeeds, Dict[str, Package]]:
        """`building`: the requirements of a build, in a venv over the image: what the image has
        serves when its version fits, else the venv gets a wheel of the folder (no conflict)."""
        result = StageNeeds()
        chosen: Dict[str, Package] = {}
        extras_done: Dict[str, Set[str]] = {}
        queue: List[Need] = []
        for pkg in roots:
            why = self.unfit(pkg)
            if why:
                result.unfit.append((pkg, why))
            chosen[wheel_name(pkg)[0]] = pkg
            extras_done[wheel_name(pkg)[0]] = set()
            queue += self.needs_of(pkg)
        queue += needs
        reported: Set[Tuple[str, str]] = set()
        while queue:
            need = queue.pop(0)
            req = need.requirement
            if not need.applies(self.target):
                continue
            name = canonicalize_name(req.name)
            have = chosen.get(name) or self.installed.get(name)
            if have is not None and building and name not in chosen:
                version = wheel_name(have)[1]
                have = have if version is None or req.specifier.contains(version, prereleases=True) else None
            if have is not None:
                version = wheel_name(have)[1]
                if version is not None and not req.specifier.contains(version, prereleases=True):
                    if (name, str(req)) not in reported:
                        reported.add((name, str(req)))
                        result.conflicts.append(Conflict(_plain(req), need.asked_by, have.file))
                    continue
                new = set(req.extras) - extras_done.setdefault(name, set())
                if new:
                    extras_done[name] |= new
                    queue += self.needs_of(have, sorted(new))
                continue
            if name in self.provided and (self.provided[name] is None or contains_version(req.specifier, self.provided[name])):
                continue
            pick, found = self.best(name, req)
            if pick is None:
                if (name, str(req)) not in reported:
                    reported.add((name, str(req)))
                    if name in self.provided:
                        found = "; ".join(filter(None, [found, f"the image has {name} {self.provided[name]}"]))
                    result.missing.append(Missing(_plain(req), need.asked_by, found))
                continue
            chosen[name] = pick
            extras_done[name] = set(req.extras)
            queue += self.needs_of(pick, sorted(req.extras))
        own = {p.file for p in roots}
        result.wheels = sorted((p for p in chosen.values() if p.file not in own), key=lambda p: p.name)
        return result, chosen

    def best(self, name: str, req: Requirement) -> Tuple[Optional[Package], str]:
        """The highest version of `name` here that fits `req` and the target; else None and why
        each wheel of that name does not fit."""
        fits, why = [], []
        for pkg in self.by_name.get(name, []):
            version = wheel_name(pkg)[1]
            reason = None if req.specifier.contains(version, prereleases=True) else f"version {version} is not {req.specifier}"
            reason = reason or self.unfit(pkg)
            if reason:
                why.append(f"{pkg.file} ({reason})")
            else:
                fits.append(pkg)
        if not fits:
            return None, "; ".join(why)
        pin = self.prefer.get(name)

        def rank(pkg: Package) -> tuple:
            version = wheel_name(pkg)[1]
            return (pin is None or pin.contains(version, prereleases=True), version, pkg.format != "sdist")
        return max(fits, key=rank), ""


def _plain(req: Requirement) -> str:
    """A requirement as written, without its marker (which holds for the target)."""
    extras = f"[{','.join(sorted(req.extras))}]" if req.extras else ""
    return f"{req.name}{extras}{req.specifier}"


def contains_version(specifier: SpecifierSet, version: str) -> bool:
    try:
        return specifier.contains(Version(version), prereleases=True)
    except InvalidVersion:
        return False


def _build_tag(pkg: Package) -> bool:
    try:
        return bool(parse_wheel_filename(pkg.name)[2])
    except (InvalidWheelFilename, InvalidVersion):
        return False
