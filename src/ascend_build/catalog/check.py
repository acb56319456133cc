"""`check`: scan -> select (for the image's Python) -> resolve the Python requirements ->
integrity + sha256 (hash cache) -> torch's C++ ABI -> compatibility rules."""
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from ..spec import BuildSpec
from .compat import check_rules, load_rules
from .hashcache import verify_packages
from . import published, signed
from .checksums import load_checksums
from .closure import stage_closures
from .factcache import FactCache, with_binary_arches
from .model import Package, Problem, Selection, StageSlots, file_patterns
from .problems import DUPLICATE_FILE_NAME, PYTHON_MISMATCH, UNRECOGNISED_FILE
from .pythons import BasePython
from .scan import looks_like_package, scan
from .select import select
from .wheelmeta import torch_abi


def duplicate_names(files: List[Package]) -> List[Problem]:
    by_name: Dict[str, List[str]] = {}
    for pkg in files:
        by_name.setdefault(pkg.name, []).append(pkg.file)
    return [Problem(level="error", code=DUPLICATE_FILE_NAME, message=f"{' and '.join(rels)} have the same name: "
                    "the build delivers files by name", file=rels[0], fix="remove one copy")
            for rels in by_name.values() if len(rels) > 1]


def unrecognised(names: List[str]) -> List[Problem]:
    return [Problem(level="warning", code=UNRECOGNISED_FILE, message=f"{name}: the name fits no known package "
                    "pattern, so it is not used", file=name, fix="rename it to the vendor's original file name, "
                    "or move it out of the working directory")
            for name in names if looks_like_package(name)]


def listed(workdir: Path, files: List[Package]) -> List[str]:
    """The files a SHA256SUMS or `<file>.sha256` next to them lists (the user's word on their bytes)."""
    tables: Dict[str, set] = {}
    for pkg in files:
        prefix = pkg.file[: len(pkg.file) - len(pkg.name)]
        if prefix not in tables:
            tables[prefix] = set(load_checksums(workdir / prefix, prefix)[0])
    return [p.file for p in files if p.name in tables[p.file[: len(p.file) - len(p.name)]]]


def configured_python(spec: BuildSpec, python: BasePython) -> List[Problem]:
    """`python:` in the config against the Python read from the base image."""
    if not python.read or not spec.python or spec.python == python.version:
        return []
    return [Problem(level="error", code=PYTHON_MISMATCH, message=f"`python: {spec.python}` in ascend-build.yaml, but "
                    f"the image's Python is {python.version} (from {python.source})",
                    fix=f"remove `python:` (the image's is used), or use a base image with Python {spec.python}")]


def check(workdir: Path, spec: BuildSpec, table: Sequence[StageSlots], chain: Sequence[str], target: str,
          platform: Optional[str] = None, python: Optional[BasePython] = None) -> Selection:
    """Identify, select, verify and check the packages of `workdir` for the built-in stages of
    `chain` (on the way to `target`), as `table` describes every stage, for the image's `python`
    (default: the config's `python:`). Problems are in the result; ConfigError for an unknown
    platform."""
    workdir = Path(workdir).resolve()
    rules = load_rules()
    python = python or BasePython(spec.python, "`python:` in ascend-build.yaml" if spec.python else "")
    catalog = scan(workdir, file_patterns(table))
    facts = FactCache(workdir)
    stages = [stage for stage in table if stage.stage in chain]
    selection = select(with_binary_arches(catalog.packages, facts), spec, table, chain, target, platform,
                       python.version if python.read else None, python.source if python.read else "")
    selection.python_source = python.source or ("the wheels' cp tags" if selection.python else "")
    requirements = stage_closures(selection, stages, spec, python, rules, workdir, facts)
    files = selection.delivered()
    verified, integrity = verify_packages(workdir, files)
    unpacked, signing = signed.unpack_zips(workdir, verified, signed.trusted_roots(workdir, spec.trusted_roots))
    inner, inner_integrity = verify_packages(workdir, list(unpacked.values()))
    done = {p.file: p for p in verified}
    done.update({zip_file: pkg for zip_file, pkg in zip(unpacked, inner)})
    selection.stages = {stage: [done.get(p.file, p) for p in pkgs] for stage, pkgs in selection.stages.items()}
    selection.pip_index = {stage: [done.get(p.file, p) for p in pkgs] for stage, pkgs in selection.pip_index.items()}
    selection.build_index = {stage: [done.get(p.file, p) for p in pkgs] for stage, pkgs in selection.build_index.items()}
    selection.packages = [done.get(p.file, p) for p in selection.packages]
    selection.unrecognised = list(catalog.unrecognised)
    torch = selection.find("torch")
    selection.abi = facts.get(torch[0], "torch_abi", torch_abi) if torch else None
    facts.save()
    selection.problems = (catalog.problems + unrecognised(catalog.unrecognised) + configured_python(spec, python)
                          + selection.problems + requirements + duplicate_names(files)
                          + integrity + published.problems(verified, listed(workdir, verified)) + signing + inner_integrity
                          + check_rules(selection, spec, rules, stages))
    return selection

