"""Compatibility checks of a selection against the rules table (compat.yaml): every problem has a
stable code (problems.py), a message naming the file(s) and a fix. No version numbers here.
The rules of one stage are named by its component (StageSlots.rules); the rest apply to all."""
from functools import lru_cache
from importlib import resources
from typing import Dict, List, Optional, Tuple

from .. import yamltext
from ..spec import BuildSpec
from .deployer import current
from .model import Package, Problem, Selection, StageSlots
from .naming import HOST_ONLY
from .problems import (ABI_MISMATCH, ARCH_MISMATCH, ATB_TORCH_MISMATCH, CANN_PYTHON_UNSUPPORTED, HOST_ONLY_PACKAGE,
    MINDIE_CANN_MISMATCH, MINDIE_TORCH_MISMATCH, MINDIE_TWO_FORMS, PYTHON_MISMATCH, TORCH_MISMATCH,
    TORCH_NPU_CANN_MISMATCH, TORCH_NPU_CANN_UNKNOWN, TORCH_PYTHON_UNSUPPORTED, VERSION_MISMATCH)
from .versions import base_release, release_of, same_version, version_key

MINDIE_MISMATCH = {"cann": MINDIE_CANN_MISMATCH, "torch": MINDIE_TORCH_MISMATCH}


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


def torch_npu_table(rules: dict) -> Dict[str, List[str]]:
    """CANN release -> its torch_npu releases: the rules' `cann_torch_npu` rows joined with the
    pairs Huawei's ascend-deployer data lists (shipped or updated: deployer.py)."""
    table = {str(k): [str(n) for n in v] for k, v in (rules.get("cann_torch_npu") or {}).items()}
    for npu, cann in (current()[0].get("pairs") or {}).get("torch_npu", {}).items():
        row = table.setdefault(next((k for k in table if same_version(k, cann)), cann), [])
        if not any(same_version(n, npu) for n in row):
            row.append(npu)
    return table


@lru_cache(maxsize=1)
def load_deps() -> dict:
    """The Python dependencies of the stack that no wheel declares (python_deps.yaml): what `fetch`
    asks for and what `check` requires besides each wheel's own Requires-Dist."""
    return yamltext.load(resources.files(__package__).joinpath("python_deps.yaml").read_text())


def _p(level: str, code: str, message: str, fix: str, file: Optional[str]) -> Problem:
    return Problem(level=level, code=code, message=message, file=file, fix=fix)


def _one(selection: Selection, slot: str) -> Optional[Package]:
    found = selection.find(slot)
    return found[0] if found else None


def host_only(selection: Selection) -> List[Problem]:
    return [_p("warning", HOST_ONLY_PACKAGE, f"{p.file} is a {p.component} package: it is installed on the NPU "
               "host, never in an image; ignored", "nothing to do (or move it out of the working directory)", p.file)
            for p in selection.packages if p.component in HOST_ONLY]


def cann_versions(toolkit: Optional[Package], others: List[Optional[Package]]) -> List[Problem]:
    if not toolkit:
        return []
    return [_p("error", VERSION_MISMATCH, f"{p.file} is version {p.version} but the toolkit {toolkit.file} is "
               f"{toolkit.version}: kernels/ops and NNAL must be the toolkit's version",
               f"use the {p.component} package of version {toolkit.version} (or pin the toolkit {p.version})", p.file)
            for p in others if p and not same_version(p.version, toolkit.version)]


def torch_pair(torch: Optional[Package], npu: Optional[Package], exceptions: Dict[str, str]) -> List[Problem]:
    if not torch or not npu:
        return []
    want = next((str(t) for n, t in exceptions.items() if same_version(str(n), npu.version)), base_release(npu.version))
    if release_of(torch.version) == release_of(want):
        return []
    return [_p("error", TORCH_MISMATCH, f"{npu.file} (torch_npu {npu.version}) needs torch {want} but "
               f"{torch.file} is torch {torch.version}", f"use torch {want} (on x86_64 the CPU build {want}+cpu), "
               "or the torch_npu release for your torch", npu.file)]


def npu_cann(toolkit: Optional[Package], npu: Optional[Package], table: Dict[str, List[str]]) -> List[Problem]:
    if not toolkit or not npu:
        return []
    row = next((list(map(str, v)) for k, v in table.items() if same_version(str(k), toolkit.version)), None)
    listed_for = [str(k) for k, v in table.items() if any(same_version(str(n), npu.version) for n in v)]
    if row is not None and any(same_version(n, npu.version) for n in row):
        return []
    if row is not None and listed_for:
        return [_p("error", TORCH_NPU_CANN_MISMATCH, f"{npu.file}: torch_npu {npu.version} is released for CANN "
                   f"{', '.join(listed_for)}, not for CANN {toolkit.version} ({toolkit.file})",
                   f"with CANN {toolkit.version} use torch_npu {' or '.join(row)}; or use the CANN {listed_for[-1]} "
                   "packages", npu.file)]
    newest = max((n for v in table.values() for n in v), key=version_key, default=None)
    if newest and version_key(npu.version) > version_key(newest):
        return [_p("warning", TORCH_NPU_CANN_UNKNOWN, f"torch_npu {npu.version} ({npu.file}) is newer than every "
                   f"release ascend-build knows (newest: {newest}; data: {current()[1]}), so its CANN release is "
                   "not known", "run `ascend-build data update` for Huawei's newest tables, and check the "
                   "Ascend/pytorch release notes", npu.file)]
    return [_p("warning", TORCH_NPU_CANN_UNKNOWN, f"torch_npu {npu.version} ({npu.file}) with CANN {toolkit.version} "
               "is not in the known-good table", "check the Ascend/pytorch release notes; when the combination is "
               "known good, add it to catalog/compat.yaml", npu.file)]


def _minor(version: Optional[str]) -> Optional[Tuple[int, int]]:
    release = release_of(str(version)) if version is not None else None
    return (tuple(release) + (0, 0))[:2] if release else None


def _within(value: Tuple[int, int], bounds: List[Optional[str]]) -> bool:
    low, high = (_minor(b) for b in bounds)
    return (low is None or value >= low) and (high is None or value <= high)


def python_tags(selection: Selection, torch: Optional[Package], ranges: List[dict]) -> List[Problem]:
    tagged = [p for p in selection.selected() if p.python]
    python = selection.python
    if python is None:
        pythons = sorted({p.python for p in tagged})
        if len(pythons) < 2:
            return []
        listed = ", ".join(f"{p.file} (Python {p.python})" for p in tagged)
        return [_p("error", PYTHON_MISMATCH, f"the packages are built for different Pythons: {listed}",
                   "use builds for one Python, and set `python:` in ascend-build.yaml", tagged[0].file)]
    problems = [_p("error", PYTHON_MISMATCH, f"{p.file} is built for Python {p.python} but the image's Python is "
                   f"{python}", f"get the build for Python {python} (cp{python.replace('.', '')}), or change `python:`",
                   p.file) for p in tagged if p.python != python]
    torch_minor, py_minor = _minor(torch.version) if torch else None, _minor(python)
    for row in ranges if torch_minor and py_minor else []:
        if _within(torch_minor, row["torch"]) and not _within(py_minor, row["python"]):
            problems.append(_p("warning", TORCH_PYTHON_UNSUPPORTED, f"torch {torch.version} ({torch.file}) is made "
                               f"for Python {row['python'][0] or '?'}..{row['python'][1] or '?'}, not {python}",
                               "use a Python in that range for the image", torch.file))
    return problems


def atb_torch(atb: Optional[Package], torch: Optional[Package]) -> List[Problem]:
    if not atb or not torch or not atb.torch or release_of(atb.torch) == release_of(torch.version):
        return []
    return [_p("error", ATB_TORCH_MISMATCH, f"{atb.file} is built for torch {atb.torch} but {torch.file} is torch "
               f"{torch.version}", f"use torch {atb.torch} (and its torch_npu), or the ATB models built for torch "
               f"{torch.version}", atb.file)]


def abi(mindie: Optional[Package], atb: Optional[Package], torch: Optional[Package], torch_read: Optional[int],
        cxx_abi: Optional[int]) -> List[Problem]:
    """MindIE, the ATB models and torch's libraries (`torch_read`, when read from its wheel) must
    name one C++ ABI; so must `cxx_abi` when torch's is unknown (else torch_cxx_abi reports it)."""
    sources = [(p.file, p.abi) for p in (mindie, atb) if p and p.abi is not None]
    if torch and torch_read is not None:
        sources.append((f"{torch.file} (its libraries)", torch_read))
    elif cxx_abi is not None:
        sources.append(("cxx_abi in ascend-build.yaml", cxx_abi))
    if len({a for _, a in sources}) < 2:
        return []
    listed = ", ".join(f"{name} (abi{a})" for name, a in sources)
    want = f"abi{torch_read}, the one of {torch.file}" if torch and torch_read is not None else "the one of your torch"
    return [_p("error", ABI_MISMATCH, f"different C++ ABIs: {listed}",
               f"use the MindIE and ATB models builds of one ABI ({want})", sources[0][0])]


def torch_cxx_abi(torch: Optional[Package], torch_read: Optional[int], cxx_abi: Optional[int]) -> List[Problem]:
    """`cxx_abi:` in the config against the ABI read from the torch wheel."""
    if not torch or torch_read is None or cxx_abi is None or cxx_abi == torch_read:
        return []
    return [_p("error", ABI_MISMATCH, f"cxx_abi: {cxx_abi} in ascend-build.yaml, but {torch.file} is built with C++ "
               f"ABI {torch_read} (read from its torch/lib/libc10.so)", f"remove `cxx_abi:` (the torch wheel's ABI is "
               f"used), or use a torch build of ABI {cxx_abi}", torch.file)]


def torch_abi(torch_version: str) -> int:
    """The C++ ABI of the public torch builds: 0 below 2.7, 1 from 2.7 (pytorch #143962)."""
    return 0 if release_of(torch_version) < (2, 7) else 1


def mindie_torch_abi(mindie: Optional[Package], torch: Optional[Package], torch_read: Optional[int]) -> List[Problem]:
    """MindIE 2.1+ names its C++ ABI, and bundles the ATB models built for it: torch's must match.
    With torch's ABI read from its wheel, `abi` compares them; else the public builds' rule."""
    if not mindie or mindie.abi is None or not torch or torch_read is not None or mindie.abi == torch_abi(torch.version):
        return []
    want = torch_abi(torch.version)
    return [_p("error", ABI_MISMATCH, f"{mindie.file} is built for C++ ABI {mindie.abi}, torch {torch.version} "
               f"uses ABI {want}", f"use the MindIE build with _abi{want} in its name", mindie.file)]


def _differs(slot: str, want: Optional[str], pkg: Optional[Package]) -> bool:
    if not want or not pkg:
        return False
    if slot == "torch":
        return release_of(str(want)) != release_of(pkg.version)
    return not same_version(str(want), pkg.version)


def mindie_table(mindie: Optional[Package], toolkit: Optional[Package], torch: Optional[Package],
                 table: Dict[str, dict]) -> List[Problem]:
    row = next((v for k, v in table.items() if mindie and same_version(str(k), mindie.version)), None) or {}
    problems = []
    for slot, pkg in (("cann", toolkit), ("torch", torch)):
        want = row.get(slot)
        if _differs(slot, want, pkg):
            problems.append(_p("warning", MINDIE_MISMATCH[slot], f"MindIE {mindie.version} ({mindie.file}) is "
                               f"released with {slot.upper() if slot == 'cann' else slot} {want}, not {pkg.version} "
                               f"({pkg.file})", f"use {slot} {want} with this MindIE, or the MindIE release for "
                               f"{pkg.version}", mindie.file))
    return problems


def selected_arch(selection: Selection) -> List[Problem]:
    """Pinned packages skip the arch filter of the selection: check them here."""
    wrong = [p for p in selection.selected() if p.arch not in (None, selection.arch)]
    if not wrong:
        return []
    names = ", ".join(f"{p.file} ({p.arch})" for p in wrong)
    return [_p("error", ARCH_MISMATCH, f"the build platform is {selection.arch} but these selected packages are "
               f"not: {names}", f"use the {selection.arch} packages (fix `pins:`), or build for their platform",
               wrong[0].file)]


def cann_python(toolkit: Optional[Package], python: Optional[str], source: str, ranges: List[dict]) -> List[Problem]:
    """The image's Python must be one the CANN release supports."""
    py_minor = _minor(python)
    if not toolkit or not py_minor:
        return []
    cann = _minor(base_release(toolkit.version))
    for row in ranges:
        if _within(cann, row["cann"]) and not _within(py_minor, row["python"]):
            low, high = row["python"]
            return [_p("error", CANN_PYTHON_UNSUPPORTED, f"CANN {toolkit.version} ({toolkit.file}) supports Python "
                       f"{low or '?'} to {high or '?'}, but the image's Python is {python}"
                       + (f" (from {source})" if source else ""),
                       f"use a base image with a Python in that range, or the CANN release for Python {python}",
                       toolkit.file)]
    return []


def cann_rules(selection: Selection, spec: BuildSpec, rules: dict) -> List[Problem]:
    toolkit = _one(selection, "toolkit")
    return (cann_versions(toolkit, [_one(selection, "kernels"), _one(selection, "nnal")])
            + cann_python(toolkit, selection.python, selection.python_source, rules.get("cann_python", [])))


def pta_rules(selection: Selection, spec: BuildSpec, rules: dict) -> List[Problem]:
    torch, npu = _one(selection, "torch"), _one(selection, "torch_npu")
    return (torch_pair(torch, npu, rules.get("torch_npu_torch_exceptions") or {})
            + npu_cann(_one(selection, "toolkit"), npu, torch_npu_table(rules))
            + torch_cxx_abi(torch, selection.abi, spec.cxx_abi))


def mindie_forms(run: Optional[Package], wheel: Optional[Package]) -> List[Problem]:
    """The .run and the 3.x wheels are two forms of MindIE: the stage would install both."""
    if not run or not wheel:
        return []
    same = same_version(run.version or "", wheel.version or "")
    return [_p("warning" if same else "error", MINDIE_TWO_FORMS, f"{run.file} and {wheel.file} are both MindIE"
               + ("" if same else f", versions {run.version} and {wheel.version}") + ": the stage would install the .run, "
               "then the wheels over it", "keep one form in the working directory (move the other out)", wheel.file)]


def mindie_rules(selection: Selection, spec: BuildSpec, rules: dict) -> List[Problem]:
    mindie, atb, torch = _one(selection, "mindie"), _one(selection, "atb_models"), _one(selection, "torch")
    return (mindie_forms(mindie, _one(selection, "mindie_llm")) + atb_torch(atb, torch)
            + abi(mindie, atb, torch, selection.abi, spec.cxx_abi) + mindie_torch_abi(mindie, torch, selection.abi)
            + mindie_table(mindie, _one(selection, "toolkit"), torch, rules.get("mindie", {})))


def check_rules(selection: Selection, spec: BuildSpec, rules: dict, stages: List[StageSlots]) -> List[Problem]:
    """Every compatibility problem of `selection`: the rules for all, then each stage's own."""
    own = [problem for stage in stages for rule in stage.rules for problem in rule(selection, spec, rules)]
    return (host_only(selection) + selected_arch(selection)
            + python_tags(selection, _one(selection, "torch"), rules.get("torch_python", [])) + own)
