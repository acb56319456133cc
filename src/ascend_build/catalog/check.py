"""`check`: scan -> select -> integrity + sha256 (hash cache) -> compatibility rules."""
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from ..spec import BuildSpec
from .compat import check_rules, load_rules
from .hashcache import verify_packages
from . import published, signed
from .checksums import load_checksums
from .model import Package, Problem, Selection, StageSlots, file_patterns
from .problems import DUPLICATE_FILE_NAME, UNRECOGNISED_FILE
from .scan import looks_like_package, scan
from .select import select


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


def check(workdir: Path, spec: BuildSpec, table: Sequence[StageSlots], chain: Sequence[str], target: str,
          platform: Optional[str] = None) -> Selection:
    """Identify, select, verify and check the packages of `workdir` for the built-in stages of
    `chain` (on the way to `target`), as `table` describes every stage. Problems are in the
    result; ConfigError for an unknown platform."""
    workdir = Path(workdir).resolve()
    rules = load_rules()
    catalog = scan(workdir, file_patterns(table))
    stages = [stage for stage in table if stage.stage in chain]
    selection = select(catalog.packages, spec, table, chain, target, platform)
    files = selection.delivered()
    verified, integrity = verify_packages(workdir, files)
    unpacked, signing = signed.unpack_zips(workdir, verified, signed.trusted_roots(workdir, spec.trusted_roots))
    inner, inner_integrity = verify_packages(workdir, list(unpacked.values()))
    done = {p.file: p for p in verified}
    done.update({zip_file: pkg for zip_file, pkg in zip(unpacked, inner)})
    selection.stages = {stage: [done.get(p.file, p) for p in pkgs] for stage, pkgs in selection.stages.items()}
    selection.pip_index = {stage: [done.get(p.file, p) for p in pkgs] for stage, pkgs in selection.pip_index.items()}
    selection.packages = [done.get(p.file, p) for p in selection.packages]
    selection.unrecognised = list(catalog.unrecognised)
    selection.problems = (catalog.problems + unrecognised(catalog.unrecognised) + selection.problems + duplicate_names(files)
                          + integrity + published.problems(verified, listed(workdir, verified)) + signing + inner_integrity
                          + check_rules(selection, spec, rules, stages))
    return selection

