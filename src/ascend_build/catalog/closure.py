"""The wheels each stage hands to pip (`--no-index`): the closure of what its wheels and
requirements files need, matched offline among the folder's wheels (wheelmatch.py), and the
problems when that closure is not complete."""
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

from ..platforms import Target, host_arch, oci_platform
from ..spec import BuildSpec
from ..units import human_bytes
from .compat import load_deps, pin_rows
from .model import Package, Problem, Selection, SourceBuild, StageSlots
from .nocuda import cpu_index, never_beside, refused
from .problems import (CUDA_IN_IMAGE, MISSING_REQUIREMENT, PYTHON_PIN_MISMATCH, PYTHON_TOOLS_MISSING, REQUIREMENT_CONFLICT,
    REQUIREMENT_UNREADABLE, REQUIREMENTS_UNRESOLVED, WHEEL_TARGET_MISMATCH)
from .pythons import BasePython
from .factcache import FactCache
from .sdist import SdistFacts, facts_from_json, facts_to_json, read_sdist, requirements_besides, sdist_name
from .wheelmatch import Need, StageNeeds, WheelMatcher, contains_version, read_text, requirement_lines, wheel_name
from .wheelmeta import WheelMetadata, metadata_from_json, metadata_to_json, read_metadata


UNREAD_GLIBC = (2, 99)


def fetch_command(workdir: Path, spec: BuildSpec, target: str, arch: str) -> str:
    """The `ascend-build fetch` command that downloads what the target needs."""
    cmd = f"ascend-build fetch -C {workdir}"
    if target != spec.target:
        cmd += f" --target {target}"
    if arch != host_arch():
        cmd += f" --platform {oci_platform(arch)}"
    return cmd


def provided(python: BasePython, base_stage: Sequence[str]) -> Dict[str, Optional[str]]:
    """Distributions present before any stage installs: those the image has (when read) and
    those the base stage's OS packages bring (pip and its helpers; version not known)."""
    found: Dict[str, Optional[str]] = {name: None for name in base_stage}
    found.update(python.packages)
    return found


def stage_tools(stage: str, wheels: Sequence[Package]) -> Tuple[List[Need], List[str]]:
    """What a stage's own tools import (python_deps.yaml, keyed by stage): a need for each that
    has a wheel in the folder, and the names of those that have none."""
    have = {canonicalize_name(wheel_name(p)[0]) for p in wheels}
    names = load_deps().get("stage_tools", {}).get(stage, [])
    return ([Need(Requirement(n), f"the {stage} stage's tools") for n in names if canonicalize_name(n) in have],
            [n for n in names if canonicalize_name(n) not in have])


@dataclass(frozen=True)
class Pin:
    """A version pinned for the stack's CANN release (python_deps.yaml) or a stage's release
    (its component's `pins`)."""

    requirement: Requirement
    why: str                      # e.g. "torch 2.1.0"
    level: str


def stack_pins(selection: Selection, stages: Sequence[StageSlots]) -> List[Pin]:
    """The pins of the selection's CANN (toolkit) release, then those of each stage's slots."""
    tables = [("CANN", selection.find("toolkit"), load_deps().get("cann_pins") or [])]
    tables += [(slot, selection.find(slot), rows) for stage in stages for slot, rows in stage.pins.items()]
    return [Pin(Requirement(line), f"{what} {found[0].version}", str(row.get("level", "error")))
            for what, found, rows in tables if found and found[0].version
            for row in pin_rows(found[0].version, list(rows)) for line in row["requirements"]]


def preferred(pins: Sequence[Pin]) -> Dict[str, SpecifierSet]:
    """name -> the versions its pins allow (all of them: CANN's and torch's may pin one package)."""
    allowed: Dict[str, SpecifierSet] = {}
    for pin in pins:
        name = canonicalize_name(pin.requirement.name)
        allowed[name] = allowed.get(name, SpecifierSet()) & pin.requirement.specifier
    return allowed


def pin_problems(pins: Sequence[Pin], installed: Dict[str, Package], provided: Dict[str, Optional[str]],
                 workdir: Path, spec: BuildSpec, selection: Selection) -> List[Problem]:
    """A problem for each pinned package the image would get in another version."""
    problems = []
    for pin in pins:
        name = canonicalize_name(pin.requirement.name)
        pkg = installed.get(name)
        version = str(wheel_name(pkg)[1]) if pkg else provided.get(name)
        if version is None or contains_version(pin.requirement.specifier, version):
            continue
        what = pkg.file if pkg else f"the base image's {name} {version}"
        problems.append(Problem(
            level=pin.level, code=PYTHON_PIN_MISMATCH, file=pkg.file if pkg else None,
            message=f"{what}: {pin.why} needs {pin.requirement}" + (" (the version its official images ship)"
                                                                   if pin.level == "warning" else ""),
            fix=f"put a wheel of {pin.requirement} here instead (`{fetch_command(workdir, spec, selection.target, selection.arch)}` "
                "fetches the pinned versions)"))
    return problems


def stage_closures(selection: Selection, stages: Sequence[StageSlots], spec: BuildSpec, python: BasePython,
                   rules: dict, workdir: Path, facts: FactCache) -> List[Problem]:
    """Fill `selection.pip_index` with each stage's closure; the problems of the resolution."""
    wheels = [p for p in selection.packages if p.format in ("wheel", "sdist")]
    extra = [p for p in wheels if p.component == "wheel"]
    problems: List[Problem] = []
    plans = []
    for stage in stages:
        chosen = selection.stages.get(stage.stage, [])
        needs: List[Need] = []
        for req in (p for p in chosen if p.format == "txt"):
            lines, unread = requirement_lines(facts.get(req, "text", read_text), req.name)
            needs += lines
            problems += [Problem(level="warning", code=REQUIREMENT_UNREADABLE, file=req.file, message=f"{req.file}: "
                                 f"`{line}` is not a requirement, so it is not checked",
                                 fix="write it as `name<spec>` (PEP 508), or install it in a custom stage")
                         for line in unread]
        needs += [Need(Requirement(line), "python_packages in ascend-build.yaml")
                  for line in spec.python_packages.get(stage.stage, [])]
        tools, absent = stage_tools(stage.stage, wheels)
        needs += tools
        if absent and chosen:
            problems.append(Problem(
                level="note", code=PYTHON_TOOLS_MISSING, message=f"the {stage.stage} stage's Python tools import "
                f"{', '.join(absent)}, which have no wheel here: the image builds, but its first NPU operator fails "
                "(error 50001)", fix=f"run `{fetch_command(workdir, spec, selection.target, selection.arch)}`"))
        roots = [p for p in chosen if p.format in ("wheel", "sdist")]
        takes_all = bool(stage.pip_index and stage.pip_index(chosen))
        if roots or needs or takes_all:
            plans.append((stage.stage, roots, needs, takes_all))
    if not plans:
        return problems
    if selection.python is None:
        for name, *_ in plans:
            if extra:
                selection.pip_index[name] = extra
        return problems + [Problem(level="warning", code=REQUIREMENTS_UNRESOLVED, message="the image's Python is "
                                   "unknown, so the wheels' requirements were not resolved (every wheel of the folder "
                                   "goes to pip)", fix="set `python:` in ascend-build.yaml, or let an engine read the base image")]
    # a base image not read has a glibc not known: no wheel is refused for it here (the build reads it)
    target = Target(selection.python, selection.arch, python.glibc or UNREAD_GLIBC)
    pins = stack_pins(selection, stages)
    builds = {canonicalize_name(d): b for stage in stages for d, b in stage.source_builds.items()}
    sources = SourceFacts(facts, builds, tuple(n for stage in stages for n in stage.build_against))
    matcher = WheelMatcher(wheels, target, provided(python, rules.get("base_stage_python_packages", [])),
                           {dist: list(reqs) for stage in stages for dist, reqs in stage.undeclared.items()},
                           lambda pkg: sources.metadata(pkg) if pkg.format == "sdist" else
                           facts.get(pkg, "metadata", read_metadata, metadata_to_json, metadata_from_json),
                           preferred(pins), sources.build_requires)
    results: List[StageNeeds] = []
    for name, roots, needs, takes_all in plans:
        found = matcher.stage(roots, needs)
        results.append(found)
        taken = found.wheels + ([p for p in extra if p not in found.wheels] if takes_all else [])
        if taken:
            selection.pip_index[name] = taken
        if found.build:
            selection.build_index[name] = found.build
    taken = [*selection.selected(), *(p for stage in selection.pip_index.values() for p in stage)]
    selection.build_requires = {p.file: sources.build_requires(p) for p in taken if p.format == "sdist"}
    problems += cuda_problems(matcher.installed, results, target, never_beside(stages))
    return (problems + _problems(results, spec, selection, target, workdir)
            + pin_problems(pins, matcher.installed, matcher.provided, workdir, spec, selection))


class SourceFacts:
    """What the matcher reads of an sdist (cached as the wheels' metadata): the requirements of the
    wheel it builds into, and its build requirements besides those taken from the image."""

    def __init__(self, facts: FactCache, builds: Dict[str, SourceBuild], against: Sequence[str] = ()):
        self.facts, self.builds, self.against = facts, builds, tuple(against)

    def read(self, pkg: Package) -> Optional[SdistFacts]:
        found = sdist_name(pkg.name)
        build = self.builds.get(found[0]) if found else None
        return self.facts.get(pkg, "sdist", lambda path: read_sdist(path, build.requirements if build else None),
                              facts_to_json, facts_from_json)

    def metadata(self, pkg: Package) -> Optional[WheelMetadata]:
        facts = self.read(pkg)
        return WheelMetadata(facts.name, facts.version, facts.requires, facts.requires_python) if facts else None

    def build_requires(self, pkg: Package) -> List[str]:
        facts, found = self.read(pkg), sdist_name(pkg.name)
        build = self.builds.get(found[0]) if found else None
        return requirements_besides(facts.build_requires if facts else (), (*self.against, *(build.installed if build else ())))


def cuda_problems(installed: Dict[str, Package], results: List[StageNeeds], target: Target,
                  beside: Dict[str, List[str]]) -> List[Problem]:
    """One error for the CUDA distributions the stages would install or that a wheel (a CUDA build
    of torch) requires, and what `beside` refuses; those requirements leave the missing list
    (fetching them is no fix)."""
    missing = [m for found in results for m in found.missing]
    missed = {m.name for m in missing}
    bad = refused([*installed, *missed], beside)
    if not bad:
        return []
    files = [installed[n] for n in bad if n in installed]
    asked = sorted({m.asked_by for m in missing if m.name in bad})
    for found in results:
        found.missing[:] = [m for m in found.missing if m.name not in bad]
    parts = [f"{p.file} ({human_bytes(p.size or 0)})" for p in files]
    if asked:
        parts.append(f"{', '.join(asked)} requires {', '.join(n for n in bad if n in missed)} (a CUDA build)")
    return [Problem(level="error", code=CUDA_IN_IMAGE, file=files[0].file if files else None,
                    message=f"CUDA distributions never go into an Ascend image: {'; '.join(parts)}"
                            + (f" ({human_bytes(sum(p.size or 0 for p in files))})" if len(files) > 1 else ""),
                    fix=f"use torch's CPU build ({cpu_index(target.arch)}; `ascend-build fetch` takes it) and "
                        "triton-ascend instead of triton, and move these wheels out of the folder")]


def _problems(results: List[StageNeeds], spec: BuildSpec, selection: Selection, target: Target,
              workdir: Path) -> List[Problem]:
    problems = []
    for found in results:
        problems += [Problem(level="error", code=WHEEL_TARGET_MISMATCH, file=pkg.file, message=f"{pkg.file} cannot "
                             f"be installed in the image: {why}", fix="get the build of it for the image's Python, "
                             "arch and glibc, or change the base image")
                     for pkg, why in found.unfit if not (pkg.python and pkg.python != target.python)]
        problems += [Problem(level="error", code=REQUIREMENT_CONFLICT, file=c.chosen, message=f"{c.asked_by} requires "
                             f"{c.requirement}, but the build installs {c.chosen}",
                             fix="use versions that fit together (or pin the slot's other file)")
                     for c in found.conflicts]
    missing = [m for found in results for m in found.missing]
    if missing and not spec.pip_index_url:
        listed = "\n    ".join(m.describe() for m in missing)
        problems.append(Problem(
            level="error", code=MISSING_REQUIREMENT, message=f"{len(missing)} Python requirement(s) have no wheel "
            f"for Python {target.python} on {target.arch} in the working directory (pip installs with --no-index):"
            f"\n    {listed}", fix=f"run `{fetch_command(workdir, spec, selection.target, selection.arch)}` to "
            "download them (or put their wheels here), then check again"))
    return problems
