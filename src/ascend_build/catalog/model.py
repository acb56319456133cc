"""The data the catalog hands forward: packages, problems and the selection for a target."""
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

# Slots a stage fills, in install order. `kernels` holds kernels (<= 8.3) or ops (>= 8.5) packages;
# `atb_models` holds the atb-models tarball or an atb_llm wheel.
STAGE_SLOTS: Dict[str, List[str]] = {
    "base": [],
    "cann": ["toolkit", "kernels", "nnal"],
    "pta": ["torch", "torch_npu", "requirements"],
    "mindie": ["mindie", "atb_models"],
}


@dataclass(frozen=True)
class Package:
    """One identified file of the working directory."""

    path: Path                      # absolute path of the file (a link's resolved target)
    file: str                       # path relative to the working directory, e.g. "packages/x.run"
    component: str                  # toolkit, kernels, ops, nnal, torch, torch_npu, mindie, atb_models,
                                    # atb_llm, driver, wheel (any other wheel), requirements
    slot: Optional[str]             # the STAGE_SLOTS slot it fills; None for driver/extra wheels
    version: str
    format: str                     # "run", "wheel", "tar.gz", "txt"
    arch: Optional[str] = None      # "aarch64" | "x86_64" | None (arch-independent)
    chip: Optional[str] = None
    python: Optional[str] = None    # "3.11"
    torch: Optional[str] = None     # torch version it was built for (atb-models)
    abi: Optional[int] = None       # C++ ABI 0/1
    prerelease: bool = False
    size: int = 0
    sha256: Optional[str] = None

    @property
    def name(self) -> str:
        """The file's name in the working directory: the name it is delivered under (`path` may be
        a link's target with another name)."""
        return self.file.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class Problem:
    level: str                      # "error" | "warning"
    code: str                       # stable, e.g. "run-corrupt", "version-mismatch"
    message: str                    # names the file(s) and says what is wrong
    file: Optional[str] = None
    fix: Optional[str] = None


@dataclass
class Selection:
    """What a target needs, chosen from the catalog; `ok` when no problem is an error."""

    target: str
    arch: str
    chip: Optional[str]
    python: Optional[str]
    stages: Dict[str, List[Package]] = field(default_factory=dict)   # stage -> packages in install order
    packages: List[Package] = field(default_factory=list)            # every file scanned
    problems: List[Problem] = field(default_factory=list)
    unrecognised: List[str] = field(default_factory=list)             # files no name pattern fits

    @property
    def ok(self) -> bool:
        return not any(p.level == "error" for p in self.problems)

    def selected(self) -> List[Package]:
        return [p for stage in self.stages.values() for p in stage]

    def find(self, slot: str) -> List[Package]:
        return [p for p in self.selected() if p.slot == slot]
