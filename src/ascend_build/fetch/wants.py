"""What `fetch` asks the resolver for: what each stage of the target asks the index for (its
component's `index_wants`: its own releases and their pins, the folder's wheels of them it keeps),
the folder's requirements*.txt, and the other wheels the stages install from the folder (their
own dependencies). Stack knowledge lives in the components and their data, not here."""
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

from packaging.requirements import InvalidRequirement
from packaging.utils import canonicalize_name, parse_wheel_filename

from ..catalog.model import Package, SourceBuild
from ..catalog.requirements import parsed_lines
from ..components import Component, FolderView, IndexWants
from ..errors import PackageError

MAX_REQUIREMENTS_BYTES = 1 << 20


@dataclass(frozen=True)
class Wants:
    """The resolver's input: PEP 508 lines (local wheels as `name @ file:///...`), and the wheels of
    the folder it completes (`kept`) or leaves beside a release asked for instead (`set_aside`),
    and what the stages said about their choices."""

    requirements: List[str]
    kept: Tuple[Package, ...] = ()
    set_aside: Tuple[Package, ...] = ()
    said: Tuple[str, ...] = ()
    sdists: Tuple[str, ...] = ()                  # `name==version` of sdists to download as they are
    local_sdists: Tuple[Package, ...] = ()        # the folder's sdists the stages build
    builds: Dict[str, SourceBuild] = field(default_factory=dict)   # normalised name -> how the stage builds it
    elsewhere: Dict[str, str] = field(default_factory=dict)        # name -> the index that has it (not the public one)
    build_against: Tuple[str, ...] = ()           # what sdists build against as the image has it (never fetched for a build)


def requirement_lines(path: Path, rel: str) -> List[str]:
    """The requirements of a requirements file: plain PEP 508 lines (no options, no URLs)."""
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_REQUIREMENTS_BYTES + 1)
        text = raw.decode("utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise PackageError(f"cannot read {rel}: {exc}", fix="make it a readable UTF-8 text file") from None
    if len(raw) > MAX_REQUIREMENTS_BYTES:
        raise PackageError(f"{rel} is larger than {MAX_REQUIREMENTS_BYTES >> 20} MiB", fix="list one requirement a line")
    lines = []
    for number, line, req in parsed_lines(text):
        if isinstance(req, InvalidRequirement):
            fix = ("fetch reads plain requirements (name, version, extras, markers): drop pip options "
                   "(-r, --index-url, --hash...)" if line.startswith("-") else "write a PEP 508 requirement, e.g. numpy<2")
            raise PackageError(f"{rel}:{number}: not a requirement: {req}", fix=fix)
        if req.url:
            raise PackageError(f"{rel}:{number}: {req.name} names a URL", fix="put that wheel into the folder instead")
        lines.append(str(req))
    return lines


def local_requirement(pkg: Package) -> str:
    """A wheel of the folder as the resolver takes it: its dependencies get resolved too."""
    try:
        name = parse_wheel_filename(pkg.name)[0]
    except ValueError as exc:
        raise PackageError(f"{pkg.file} is not a wheel's file name: {exc}",
                           fix="rename it to the vendor's original file name") from None
    return f"{name} @ {Path(pkg.path).resolve().as_uri()}"


def wants(stages: Sequence[Component], view: FolderView) -> Wants:
    """What `stages` (the target's components, base first) need from the index, for `view`."""
    asked: List[IndexWants] = [c.index_wants(view) for c in stages if c.index_wants]
    decided = {slot for a in asked for slot in a.slots}
    kept = tuple(p for a in asked for p in a.kept)
    lines = [r for a in asked for r in a.requirements] + [local_requirement(p) for p in kept]
    for pkg in view.selected:
        if pkg.slot == "requirements":
            lines += requirement_lines(pkg.path, pkg.file)
        elif pkg.format == "wheel" and pkg.slot not in decided:
            lines.append(local_requirement(pkg))
    return Wants(requirements=list(dict.fromkeys(lines)), kept=kept,
                 set_aside=tuple(p for a in asked for p in a.set_aside), said=tuple(s for a in asked for s in a.said),
                 sdists=tuple(s for a in asked for s in a.sdists),
                 local_sdists=tuple(p for p in view.selected if p.format == "sdist"),
                 builds={canonicalize_name(d): b for c in stages for d, b in c.source_builds.items()},
                 elsewhere={n: where for c in stages for n, where in c.elsewhere.items()},
                 build_against=tuple(n for c in stages for n in c.build_against))
