"""The mindie stage's compatibility rules: one form of MindIE, the ATB models built for the torch and
C++ ABI of the image, and the CANN and torch each MindIE release came with (mindie.yaml
`released_with`). Its problem codes are its own."""
from typing import Dict, List, Optional

from ..catalog.compat import one, problem
from ..catalog.model import Package, Problem, Selection
from ..catalog.problems import ABI_MISMATCH
from ..catalog.versions import release_of, same_version
from ..spec import BuildSpec
from . import component_data

ATB_TORCH_MISMATCH = "atb-torch-mismatch"
MINDIE_CANN_MISMATCH = "mindie-cann-mismatch"
MINDIE_TORCH_MISMATCH = "mindie-torch-mismatch"
MINDIE_TWO_FORMS = "mindie-two-forms"
MINDIE_MISMATCH = {"cann": MINDIE_CANN_MISMATCH, "torch": MINDIE_TORCH_MISMATCH}
PROBLEM_CODES = {
    ATB_TORCH_MISMATCH: "error: the ATB models are built for another torch version",
    MINDIE_CANN_MISMATCH: "warning: MindIE is listed with another CANN version",
    MINDIE_TORCH_MISMATCH: "warning: MindIE is listed with another torch version",
    MINDIE_TWO_FORMS: "warning (error for two versions): both the MindIE .run and the MindIE 3.x wheels are here, and the stage would install both",
}


def atb_torch(atb: Optional[Package], torch: Optional[Package]) -> List[Problem]:
    if not atb or not torch or not atb.torch or release_of(atb.torch) == release_of(torch.version):
        return []
    return [problem("error", ATB_TORCH_MISMATCH, f"{atb.file} is built for torch {atb.torch} but {torch.file} is torch "
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
    return [problem("error", ABI_MISMATCH, f"different C++ ABIs: {listed}",
               f"use the MindIE and ATB models builds of one ABI ({want})", sources[0][0])]


def torch_abi(torch_version: str) -> int:
    """The C++ ABI of the public torch builds: 0 below 2.7, 1 from 2.7 (pytorch #143962)."""
    return 0 if release_of(torch_version) < (2, 7) else 1


def mindie_torch_abi(mindie: Optional[Package], torch: Optional[Package], torch_read: Optional[int]) -> List[Problem]:
    """MindIE 2.1+ names its C++ ABI, and bundles the ATB models built for it: torch's must match.
    With torch's ABI read from its wheel, `abi` compares them; else the public builds' rule."""
    if not mindie or mindie.abi is None or not torch or torch_read is not None or mindie.abi == torch_abi(torch.version):
        return []
    want = torch_abi(torch.version)
    return [problem("error", ABI_MISMATCH, f"{mindie.file} is built for C++ ABI {mindie.abi}, torch {torch.version} "
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
            problems.append(problem("warning", MINDIE_MISMATCH[slot], f"MindIE {mindie.version} ({mindie.file}) is "
                               f"released with {slot.upper() if slot == 'cann' else slot} {want}, not {pkg.version} "
                               f"({pkg.file})", f"use {slot} {want} with this MindIE, or the MindIE release for "
                               f"{pkg.version}", mindie.file))
    return problems


def mindie_forms(run: Optional[Package], wheel: Optional[Package]) -> List[Problem]:
    """The .run and the 3.x wheels are two forms of MindIE: the stage would install both."""
    if not run or not wheel:
        return []
    same = same_version(run.version or "", wheel.version or "")
    return [problem("warning" if same else "error", MINDIE_TWO_FORMS, f"{run.file} and {wheel.file} are both MindIE"
               + ("" if same else f", versions {run.version} and {wheel.version}") + ": the stage would install the .run, "
               "then the wheels over it", "keep one form in the working directory (move the other out)", wheel.file)]


def mindie_rules(selection: Selection, spec: BuildSpec, rules: dict) -> List[Problem]:
    """The mindie stage's problems (its data is mindie.yaml, not the shared `rules`)."""
    mindie, atb, torch = one(selection, "mindie"), one(selection, "atb_models"), one(selection, "torch")
    return (mindie_forms(mindie, one(selection, "mindie_llm")) + atb_torch(atb, torch)
            + abi(mindie, atb, torch, selection.abi, spec.cxx_abi) + mindie_torch_abi(mindie, torch, selection.abi)
            + mindie_table(mindie, one(selection, "toolkit"), torch, component_data("mindie").get("released_with") or {}))
