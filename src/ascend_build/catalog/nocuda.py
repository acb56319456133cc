"""No CUDA in an Ascend image: the distributions python_deps.yaml names under `never` (what a CUDA
build of torch pulls in) and `never_beside` (what must not stand beside a distribution it names,
such as the community triton).
Shared by `fetch` (a resolution) and `check` (what the stages would install)."""
from fnmatch import fnmatchcase
from typing import Collection, List

from packaging.utils import canonicalize_name

from .compat import load_deps


def refused(names: Collection[str]) -> List[str]:
    """The names among `names` (distributions an image would get) that must not be in it."""
    deps = load_deps()
    present = {canonicalize_name(n) for n in names}
    patterns = list(deps.get("never") or [])
    for beside, more in (deps.get("never_beside") or {}).items():
        if canonicalize_name(beside) in present:
            patterns += more
    return sorted(n for n in present if any(fnmatchcase(n, canonicalize_name(p)) for p in patterns))


def never_patterns() -> dict:
    """What `refused` applies, for the probe verify runs in an image (standard library there)."""
    deps = load_deps()
    return {"never": list(deps.get("never") or []), "beside": dict(deps.get("never_beside") or {})}


def cpu_index(arch: str) -> str:
    """Where torch's CPU build for `arch` comes from (what the fix of a refusal names)."""
    return str((load_deps().get("torch_index_url") or {}).get(arch) or "PyTorch's CPU index")
