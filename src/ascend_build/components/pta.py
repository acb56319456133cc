"""The pta stage: torch, torch_npu, requirements*.txt and the wheels they need; what `fetch` asks
the index for (torch_npu decides its torch; the folder's torch_npu decides the release). Its
version knowledge is pta.yaml (pta_rules.pta_data)."""
from typing import Dict, List, Optional, Tuple

from packaging.version import InvalidVersion, Version

from ..catalog.compat import pins_for
from ..catalog.model import Package, Slot
from ..catalog.versions import release_of, same_version, version_key
from ..errors import ConfigError
from . import Component, PlanInputs, FolderView, IndexWants, StagePlan, package_labels, render_script
from .pta_rules import PROBLEM_CODES, pta_data, pta_rules, torch_npu_table, torch_of


def plan(inputs: PlanInputs, parent: str) -> StagePlan:
    torch, torch_npu = inputs.one("torch"), inputs.one("torch_npu")
    requirements = inputs.selection.find("requirements")
    has_nnal = inputs.one("nnal") is not None
    script = render_script(
        "pta.sh.j2", pip_source=inputs.pip_source(), torch=torch.name, torch_npu=torch_npu.name,
        requirements=[r.name for r in requirements], abi=inputs.abi if has_nnal else None,
        wheels=[p.name for p in inputs.pip_index("pta") if p.format == "wheel"],
    )
    return StagePlan(name="pta", parent=parent, files=[torch, torch_npu, *requirements, *inputs.pip_index("pta")], script=script,
                     labels=package_labels([torch, torch_npu]))


def torch_npu_version(given: Optional[str], cann: Optional[str], table: Dict[str, List[str]],
                      torch: Optional[str] = None) -> str:
    """`given` (checked), else the newest torch_npu made for the CANN release `cann` (for the torch
    release `torch` when the folder has one)."""
    if given is not None:
        try:
            return str(Version(given))
        except InvalidVersion:
            raise ConfigError(f"--torch-npu {given!r} is not a version", fix="e.g. --torch-npu 2.6.0.post5") from None
    row = next((list(map(str, v)) for k, v in table.items() if cann and same_version(str(k), cann)), None)
    if not row:
        what = f"CANN {cann} is not in the known-good table" if cann else "no CANN toolkit found in the folder"
        raise ConfigError(f"cannot choose a torch_npu release: {what}",
                          fix="name it: --torch-npu VERSION (see the Ascend/pytorch release notes)")
    fits = [v for v in row if torch is None or release_of(v) == release_of(torch)]
    if not fits:
        raise ConfigError(f"the folder's torch {torch} has no torch_npu made for CANN {cann} (known: {', '.join(row)})",
                          fix="name one: --torch-npu VERSION (its torch is fetched beside yours), or bring the "
                              "torch_npu wheel for your torch")
    return max(fits, key=version_key)


def folder_torch_npu(given: Optional[str], cann: Optional[str], table: Dict[str, List[str]], exceptions: Dict[str, str],
                     npus: List[Package], torches: List[Package]) -> Tuple[str, str, List[Package]]:
    """(torch_npu release, torch release, the folder's wheels that are theirs): the folder's own
    torch_npu decides unless `given` names another release."""
    if given is None and len(npus) > 1:
        raise ConfigError("the folder holds several torch_npu wheels for this target: "
                          + ", ".join(p.file for p in npus), fix="keep one, or name it: --torch-npu VERSION")
    if given is None and npus:
        npu = str(Version(npus[0].version))
    else:
        torch_here = torches[0].version if len(torches) == 1 and not npus else None
        npu = torch_npu_version(given, cann, table, torch_here)
    torch = torch_of(npu, exceptions)
    mine = [p for p in npus if same_version(p.version, npu)][:1]
    mine += [p for p in torches if release_of(p.version) == release_of(torch)][:1]
    return npu, torch, mine


def torch_of_torch_npu(chosen, pkg) -> bool:
    """torch of the chosen torch_npu's X.Y.Z (torch follows torch_npu: `choose_order` chooses it first)."""
    return "torch_npu" not in chosen or release_of(pkg.version) == release_of(chosen["torch_npu"].version)


def index_wants(view: FolderView) -> IndexWants:
    """torch_npu (the folder's, else --torch-npu, else the release a wheel of the folder pins, e.g.
    vllm-ascend's, else the newest for the folder's CANN), the torch
    it names, what it imports undeclared (numpy, pyyaml) and the torch release's pins."""
    toolkit = view.one("toolkit")
    own = pta_data()
    here = [p for p in view.packages if p.slot in ("torch", "torch_npu") and p.format == "wheel"]
    npu, torch, kept = folder_torch_npu(
        view.releases.get("torch_npu") or view.pinned("torch-npu"), toolkit.version if toolkit else None, torch_npu_table(own),
        own.get("torch_npu_torch_exceptions") or {},
        [p for p in here if p.slot == "torch_npu"], [p for p in here if p.slot == "torch"])
    lines = [] if any(p.slot == "torch_npu" for p in kept) else [f"torch-npu=={npu}"]
    lines += [*own["undeclared"]["torch-npu"], *pins_for(torch, own.get("torch_pins") or [])]
    set_aside = tuple(p for p in here if p not in kept)
    said = ([f"torch_npu {npu}"] + [f"the folder's {p.file} decides its release" for p in kept]
            + [f"{p.file} stays in the folder (not this release): move it away before `check` and `build`"
               for p in set_aside])
    return IndexWants(requirements=tuple(lines), kept=tuple(kept), set_aside=set_aside, slots=("torch", "torch_npu"),
                      said=tuple(said))


COMPONENT = Component(
    stage="pta",
    parent="cann",
    index_wants=index_wants,
    undeclared={dist: tuple(reqs) for dist, reqs in pta_data()["undeclared"].items()},   # numpy, pyyaml: imported, not declared
    pins={"torch": tuple(pta_data().get("torch_pins") or ())},
    never_beside={dist: tuple(names) for dist, names in pta_data()["never_beside"].items()},     # the community triton
    build_against=("torch", "torch-npu"),     # an sdist above builds against the image's torch (arctic-inference pins another)
    slots=(
        Slot("torch", required=True, python=True, wheels=(("torch", "torch"),), fits=torch_of_torch_npu, expected="torch-<version>[+cpu]-cp<XY>-cp<XY>-<platform>.whl",
             download="https://download.pytorch.org/whl/cpu/torch/ (or `pip download --no-deps --only-binary=:all: torch==<version>`)"),
        Slot("torch_npu", required=True, python=True, wheels=(("torch-npu", "torch_npu"),),
             expected="torch_npu-<version>-cp<XY>-cp<XY>-manylinux_2_17_<arch>.manylinux2014_<arch>.whl",
             download="https://gitee.com/ascend/pytorch/releases (or `pip download --no-deps torch-npu==<version>`)"),
        Slot("requirements", every=True),
    ),
    choose_order=("torch_npu", "torch"),      # torch follows torch_npu's release
    rules=(pta_rules,),
    problems=PROBLEM_CODES,
    plan=plan,
    summary=("torch_npu",),
    native_wheels=True,
    device_checks=(("torch_npu", "tensor on the NPU", "import torch, torch_npu; x = torch.ones(2, 2).npu(); print((x + x).cpu())"),),
    probes=(
        {"kind": "import", "slot": "torch", "name": "import torch", "module": "torch", "versioned": True},
        {"kind": "import", "slot": "torch-npu", "name": "import torch_npu", "module": "torch_npu", "versioned": True, "runtime_user": True},
    ),
)
