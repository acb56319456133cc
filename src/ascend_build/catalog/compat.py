"""Compatibility checks of a selection against the rules table (compat.yaml): every problem has a
stable code (problems.py, or the component's own), a message naming the file(s) and a fix. No
version numbers here. The rules of one stage live in its component (StageSlots.rules, e.g.
components/pta_rules.py); the ones here apply to every selection (and CANN's, which every stack
builds on)."""
from functools import lru_cache
from importlib import resources
from typing import List, Optional, Tuple

from .. import yamltext
from ..spec import BuildSpec
from .model import Package, Problem, Selection, StageSlots
from .naming import HOST_ONLY
from .problems import ARCH_MISMATCH, CANN_FORMS_MIXED, CANN_PYTHON_UNSUPPORTED, HOST_ONLY_PACKAGE, PYTHON_MISMATCH, VERSION_MISMATCH
from .versions import base_release, release_of, same_version, version_key

@lru_cache(maxsize=1)
def load_rules() -> dict:
    """The rules table shipped with the package (read once; not to be changed)."""
    return yamltext.load(resources.files(__package__).joinpath("compat.yaml").read_text())


def pin_rows(version: Optional[str], rows: List[dict]) -> List[dict]:
    """The rows of a pin table (python_deps.yaml: `from` <= version < `below`) that hold `version`."""
    if not version:
        return []
    key = version_key(version)
    return [row for row in rows if (row.get("from") is None or key >= version_key(str(row["from"])))
            and (row.get("below") is None or key < version_key(str(row["below"])))]


def pins_for(version: Optional[str], rows: List[dict]) -> List[str]:
    """The requirements of every row whose range holds `version`."""
    return [r for row in pin_rows(version, rows) for r in row["requirements"]]


@lru_cache(maxsize=1)
def load_deps() -> dict:
    """The Python dependencies of the stack that no wheel declares (python_deps.yaml): what `fetch`
    asks for and what `check` requires besides each wheel's own Requires-Dist."""
    return yamltext.load(resources.files(__package__).joinpath("python_deps.yaml").read_text())


def problem(level: str, code: str, message: str, fix: str, file: Optional[str]) -> Problem:
    """A Problem, as the rules (here and the components') write them."""
    return Problem(level=level, code=code, message=message, file=file, fix=fix)


def one(selection: Selection, slot: str) -> Optional[Package]:
    """The package chosen for `slot`, or None."""
    found = selection.find(slot)
    return found[0] if found else None


def host_only(selection: Selection) -> List[Problem]:
    return [problem("warning", HOST_ONLY_PACKAGE, f"{p.file} is a {p.component} package: it is installed on the NPU "
               "host, never in an image; ignored", "nothing to do (or move it out of the working directory)", p.file)
            for p in selection.packages if p.component in HOST_ONLY]


def cann_versions(toolkit: Optional[Package], others: List[Optional[Package]]) -> List[Problem]:
    if not toolkit:
        return []
    return [problem("error", VERSION_MISMATCH, f"{p.file} is version {p.version} but the toolkit {toolkit.file} is "
               f"{toolkit.version}: kernels/ops and NNAL must be the toolkit's version",
               f"use the {p.component} package of version {toolkit.version} (or pin the toolkit {p.version})", p.file)
            for p in others if p and not same_version(p.version, toolkit.version)]


def minor(version: Optional[str]) -> Optional[Tuple[int, int]]:
    """X.Y of a version (None when it has none)."""
    release = release_of(str(version)) if version is not None else None
    return (tuple(release) + (0, 0))[:2] if release else None


def within(value: Tuple[int, int], bounds: List[Optional[str]]) -> bool:
    """`value` (X.Y) is in the inclusive range [low, high] of a table row (null: no bound)."""
    low, high = (minor(b) for b in bounds)
    return (low is None or value >= low) and (high is None or value <= high)


def python_tags(selection: Selection) -> List[Problem]:
    tagged = [p for p in selection.selected() if p.python]
    python = selection.python
    if python is None:
        pythons = sorted({p.python for p in tagged})
        if len(pythons) < 2:
            return []
        listed = ", ".join(f"{p.file} (Python {p.python})" for p in tagged)
        return [problem("error", PYTHON_MISMATCH, f"the packages are built for different Pythons: {listed}",
                   "use builds for one Python, and set `python:` in ascend-build.yaml", tagged[0].file)]
    return [problem("error", PYTHON_MISMATCH, f"{p.file} is built for Python {p.python} but the image's Python is "
               f"{python}", f"get the build for Python {python} (cp{python.replace('.', '')}), or change `python:`",
               p.file) for p in tagged if p.python != python]


def selected_arch(selection: Selection) -> List[Problem]:
    """Pinned packages skip the arch filter of the selection: check them here."""
    wrong = [p for p in selection.selected() if p.arch not in (None, selection.arch)]
    if not wrong:
        return []
    names = ", ".join(f"{p.file} ({p.arch})" for p in wrong)
    return [problem("error", ARCH_MISMATCH, f"the build platform is {selection.arch} but these selected packages are "
               f"not: {names}", f"use the {selection.arch} packages (fix `pins:`), or build for their platform",
               wrong[0].file)]


def cann_python(toolkit: Optional[Package], python: Optional[str], source: str, ranges: List[dict]) -> List[Problem]:
    """The image's Python must be one the CANN release supports."""
    py_minor = minor(python)
    if not toolkit or not py_minor:
        return []
    cann = minor(base_release(toolkit.version))
    for row in ranges:
        if within(cann, row["cann"]) and not within(py_minor, row["python"]):
            low, high = row["python"]
            return [problem("error", CANN_PYTHON_UNSUPPORTED, f"CANN {toolkit.version} ({toolkit.file}) supports Python "
                       f"{low or '?'} to {high or '?'}, but the image's Python is {python}"
                       + (f" (from {source})" if source else ""),
                       f"use a base image with a Python in that range, or the CANN release for Python {python}",
                       toolkit.file)]
    return []


def cann_forms(toolkit: Optional[Package], kernels: Optional[Package]) -> List[Problem]:
    """CANN installed with pip (wheels into site-packages) takes its ops as a wheel too: a .run
    installer looks for the toolkit under the install path, and the other way round."""
    if not toolkit or not kernels or (toolkit.format == "wheel") == (kernels.format == "wheel"):
        return []
    pip, run = (toolkit, kernels) if toolkit.format == "wheel" else (kernels, toolkit)
    return [problem("error", CANN_FORMS_MIXED, f"{pip.file} installs CANN with pip into site-packages, but "
                    f"{run.file} is a .run installer that looks for CANN under the install path",
                    "take both as wheels from Huawei's index (ascend-cann-toolkit, ascend-cann-<chip>-ops) or both "
                    "as .run packages", kernels.file)]


def cann_rules(selection: Selection, spec: BuildSpec, rules: dict) -> List[Problem]:
    toolkit, kernels = one(selection, "toolkit"), one(selection, "kernels")
    return (cann_versions(toolkit, [kernels, one(selection, "nnal")]) + cann_forms(toolkit, kernels)
            + cann_python(toolkit, selection.python, selection.python_source, rules.get("cann_python", [])))


def check_rules(selection: Selection, spec: BuildSpec, rules: dict, stages: List[StageSlots]) -> List[Problem]:
    """Every compatibility problem of `selection`: the rules for all, then each stage's own."""
    own = [problem for stage in stages for rule in stage.rules for problem in rule(selection, spec, rules)]
    return host_only(selection) + selected_arch(selection) + python_tags(selection) + own
