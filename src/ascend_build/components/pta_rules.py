"""The pta stage's compatibility rules: torch_npu pairs with its torch (X.Y.Z) and is released for
given CANN releases (pta.yaml `cann_torch_npu` joined with the pairs of Huawei's ascend-deployer
data), torch supports the image's Python (pta.yaml `torch_python`), and the config's `cxx_abi`
agrees with the torch wheel. Its problem codes are its own."""
from typing import Dict, List, Optional

from ..catalog.compat import minor, one, problem, within
from ..catalog.deployer import current
from ..catalog.model import Package, Problem, Selection
from ..catalog.problems import ABI_MISMATCH
from ..catalog.versions import base_release, release_of, same_version, version_key
from ..spec import BuildSpec
from . import component_data

TORCH_MISMATCH = "torch-mismatch"
TORCH_NPU_CANN_MISMATCH = "torch-npu-cann-mismatch"
TORCH_NPU_CANN_UNKNOWN = "torch-npu-cann-unknown"
TORCH_PYTHON_UNSUPPORTED = "torch-python-unsupported"
PROBLEM_CODES = {
    TORCH_MISMATCH: "error: torch_npu X.Y.Z[.postN] does not pair with torch X.Y.Z[+cpu]",
    TORCH_NPU_CANN_MISMATCH: "error: the table lists this torch_npu only for other CANN versions",
    TORCH_NPU_CANN_UNKNOWN: "warning: CANN / torch_npu combination not in the known-good table (or a torch_npu newer than every release known)",
    TORCH_PYTHON_UNSUPPORTED: "warning: the image's Python is outside the range the table gives for torch",
}


def pta_data() -> dict:
    """The pta stage's data (components/pta.yaml)."""
    return component_data("pta")


def torch_npu_table(own: dict) -> Dict[str, List[str]]:
    """CANN release -> its torch_npu releases: pta.yaml's `cann_torch_npu` rows joined with the
    pairs Huawei's ascend-deployer data lists (shipped or updated: deployer.py)."""
    table = {str(k): [str(n) for n in v] for k, v in (own.get("cann_torch_npu") or {}).items()}
    for npu, cann in (current()[0].get("pairs") or {}).get("torch_npu", {}).items():
        row = table.setdefault(next((k for k in table if same_version(k, cann)), cann), [])
        if not any(same_version(n, npu) for n in row):
            row.append(npu)
    return table


def torch_of(torch_npu: str, exceptions: Dict[str, str]) -> str:
    """The torch release torch_npu X.Y.Z[.postN] is made for: X.Y.Z unless the table says otherwise."""
    return next((str(t) for n, t in exceptions.items() if same_version(str(n), torch_npu)), base_release(torch_npu))


def torch_pair(torch: Optional[Package], npu: Optional[Package], exceptions: Dict[str, str]) -> List[Problem]:
    if not torch or not npu:
        return []
    want = torch_of(npu.version, exceptions)
    if release_of(torch.version) == release_of(want):
        return []
    return [problem("error", TORCH_MISMATCH, f"{npu.file} (torch_npu {npu.version}) needs torch {want} but "
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
        return [problem("error", TORCH_NPU_CANN_MISMATCH, f"{npu.file}: torch_npu {npu.version} is released for CANN "
                   f"{', '.join(listed_for)}, not for CANN {toolkit.version} ({toolkit.file})",
                   f"with CANN {toolkit.version} use torch_npu {' or '.join(row)}; or use the CANN {listed_for[-1]} "
                   "packages", npu.file)]
    newest = max((n for v in table.values() for n in v), key=version_key, default=None)
    if newest and version_key(npu.version) > version_key(newest):
        return [problem("warning", TORCH_NPU_CANN_UNKNOWN, f"torch_npu {npu.version} ({npu.file}) is newer than every "
                   f"release ascend-build knows (newest: {newest}; data: {current()[1]}), so its CANN release is "
                   "not known", "run `ascend-build data update` for Huawei's newest tables, and check the "
                   "Ascend/pytorch release notes", npu.file)]
    return [problem("warning", TORCH_NPU_CANN_UNKNOWN, f"torch_npu {npu.version} ({npu.file}) with CANN {toolkit.version} "
               "is not in the known-good table", "check the Ascend/pytorch release notes; when the combination is "
               "known good, add it to components/pta.yaml (cann_torch_npu)", npu.file)]


def torch_cxx_abi(torch: Optional[Package], torch_read: Optional[int], cxx_abi: Optional[int]) -> List[Problem]:
    """`cxx_abi:` in the config against the ABI read from the torch wheel."""
    if not torch or torch_read is None or cxx_abi is None or cxx_abi == torch_read:
        return []
    return [problem("error", ABI_MISMATCH, f"cxx_abi: {cxx_abi} in ascend-build.yaml, but {torch.file} is built with C++ "
               f"ABI {torch_read} (read from its torch/lib/libc10.so)", f"remove `cxx_abi:` (the torch wheel's ABI is "
               f"used), or use a torch build of ABI {cxx_abi}", torch.file)]


def torch_python(torch: Optional[Package], python: Optional[str], ranges: List[dict]) -> List[Problem]:
    """The image's Python against the range pta.yaml's `torch_python` gives for the torch release."""
    torch_minor, py_minor = minor(torch.version) if torch else None, minor(python)
    return [problem("warning", TORCH_PYTHON_UNSUPPORTED, f"torch {torch.version} ({torch.file}) is made for Python "
                    f"{row['python'][0] or '?'}..{row['python'][1] or '?'}, not {python}",
                    "use a Python in that range for the image", torch.file)
            for row in (ranges if torch_minor and py_minor else [])
            if within(torch_minor, row["torch"]) and not within(py_minor, row["python"])]


def pta_rules(selection: Selection, spec: BuildSpec, rules: dict) -> List[Problem]:
    """The pta stage's problems (`rules`, the table every stack shares, is not read: its own data is pta.yaml)."""
    torch, npu, own = one(selection, "torch"), one(selection, "torch_npu"), pta_data()
    return (torch_python(torch, selection.python, own.get("torch_python") or [])
            + torch_pair(torch, npu, own.get("torch_npu_torch_exceptions") or {})
            + npu_cann(one(selection, "toolkit"), npu, torch_npu_table(own))
            + torch_cxx_abi(torch, selection.abi, spec.cxx_abi))
