"""No CUDA in an Ascend image: the distributions python_deps.yaml names under `never` (what a CUDA
build of torch pulls in) and what the stages' components say must not stand beside one of their
distributions (StageSlots.never_beside).
Shared by `fetch` (a resolution) and `check` (what the stages would install)."""
from fnmatch import fnmatchcase
from typing import Collection, Dict, List, Mapping, Optional, Sequence

from packaging.utils import canonicalize_name

from .compat import load_deps
from .model import StageSlots


def never_beside(stages: Sequence[StageSlots]) -> Dict[str, List[str]]:
    """distribution -> what must not stand beside it, as the `stages` say."""
    found: Dict[str, List[str]] = {}
    for stage in stages:
        for beside, patterns in stage.never_beside.items():
            found.setdefault(beside, []).extend(patterns)
    return found


def refused(names: Collection[str], beside: Optional[Mapping[str, Sequence[str]]] = None) -> List[str]:
    """The names among `names` (distributions an image would get) that must not be in it: those
    python_deps.yaml names under `never`, and what `beside` (never_beside) names for one of them."""
    present = {canonicalize_name(n) for n in names}
    patterns = list(load_deps().get("never") or [])
    for name, more in (beside or {}).items():
        if canonicalize_name(name) in present:
            patterns += more
    return sorted(n for n in present if any(fnmatchcase(n, canonicalize_name(p)) for p in patterns))


def never_patterns(stages: Sequence[StageSlots]) -> dict:
    """What `refused` applies with the `stages`' never_beside, for the probe verify runs in an image
    (standard library there)."""
    return {"never": list(load_deps().get("never") or []), "beside": never_beside(stages)}


def cpu_index(arch: str) -> str:
    """Where torch's CPU build for `arch` comes from (what the fix of a refusal names)."""
    return str((load_deps().get("torch_index_url") or {}).get(arch) or "PyTorch's CPU index")
