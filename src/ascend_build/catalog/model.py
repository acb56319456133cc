"""The data the catalog hands forward: packages, problems and the selection for a target."""
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple


@dataclass(frozen=True)
class Slot:
    """A place for one package of a stage (or, with `every`, for all files of its kind)."""

    name: str
    required: bool = False          # a target whose chain has the stage needs a file here
    python: bool = False            # chosen for the image's Python
    every: bool = False             # every such file is selected (requirements*.txt)
    expected: str = ""              # the file name, as told to a person when none is found
    download: str = ""              # where to get it
    # File names of this slot's packages beyond the built-in grammar (naming.py), each
    # (regular expression with the groups version, arch, chip, py, torch, abi; component; format):
    # a component brings the names of its own packages.
    patterns: Tuple[Tuple[str, str, str], ...] = ()
    # Distributions whose wheels fill this slot, each (normalised name, component), e.g. ("torch", "torch")
    wheels: Tuple[Tuple[str, str], ...] = ()
    # given the packages chosen so far: the slot may stay empty although `required`
    optional_when: Optional[Callable[[Dict[str, "Package"]], bool]] = None
    # given the packages chosen so far (slot -> package): does a candidate fit them? (a version
    # it must share, an ABI...); the candidates that fit are preferred when any do
    fits: Optional[Callable[[Dict[str, "Package"], "Package"], bool]] = None


@dataclass(frozen=True)
class SourceBuild:
    """How a stage builds one source distribution into a wheel: the file inside it that lists what
    the wheel requires (instead of PKG-INFO, when that depends on how it is built), the build
    requirements taken from the image as installed (built without isolation, e.g. against the
    installed CPU torch), and the environment of the build."""

    requirements: Optional[str] = None
    installed: Tuple[str, ...] = ()
    env: Tuple[Tuple[str, str], ...] = ()


@dataclass(frozen=True)
class StageSlots:
    """What the catalog knows of a stage: its slots in install order, the order they are chosen
    in (what is chosen first narrows the rest), slots of earlier stages it also requires, and
    its compatibility rules."""

    stage: str
    slots: Tuple[Slot, ...] = ()
    choose_order: Tuple[str, ...] = ()   # the order its slots are chosen in; empty: install order
    needs: Tuple[str, ...] = ()
    # Given the stage's chosen files: does it also install requirements the catalog cannot read
    # (inside a tarball), so that it takes every other wheel of the folder? (The requirements of
    # its wheels and requirements files are resolved: closure.py.)
    pip_index: Optional[Callable[[List["Package"]], bool]] = None
    rules: Tuple[Callable[["Selection", object, dict], List["Problem"]], ...] = ()
    # file names recognised as the stack's but never installed (regex, component, format), e.g. images
    recognised: Tuple[Tuple[str, str, str], ...] = ()
    # what its wheels import without declaring it: distribution -> requirements (resolved as if declared)
    undeclared: Dict[str, Tuple[str, ...]] = field(default_factory=dict)
    # versions its releases pin: slot -> rows {from, below, requirements, level} (`fetch` asks for
    # the rows that hold the chosen package's version, `check` reports a wheel against them)
    pins: Dict[str, Tuple[dict, ...]] = field(default_factory=dict)
    # never in the image beside one of its distributions: distribution -> name patterns (cuda-in-image)
    never_beside: Dict[str, Tuple[str, ...]] = field(default_factory=dict)
    # how its source distributions are built: distribution -> SourceBuild (default: as pip builds it)
    source_builds: Dict[str, SourceBuild] = field(default_factory=dict)
    # what every sdist built on this stage or above builds against as the image has it, whatever its
    # build requirements pin (an extension built against another torch than the image's fails to load)
    build_against: Tuple[str, ...] = ()

    @property
    def slots_to_choose(self) -> Tuple[str, ...]:
        """Its one-package slots, in the order they are chosen in."""
        return self.choose_order or tuple(s.name for s in self.slots if not s.every)


@dataclass(frozen=True)
class Package:
    """One identified file of the working directory."""

    path: Path                      # absolute path of the file (a link's resolved target)
    file: str                       # path relative to the working directory, e.g. "packages/x.run"
    component: str                  # toolkit, kernels, ops, nnal, torch, the components' own, atb_models,
                                    # atb_llm, driver, wheel (any other wheel), requirements
    slot: Optional[str]             # the Slot it fills; None for driver/extra wheels
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
    source: Optional["Package"] = None   # the official signed zip this package was unpacked from
    signature: Optional[str] = None      # `verified (<root>)` for a package from a signed zip

    @property
    def name(self) -> str:
        """The file's name in the working directory: the name it is delivered under (`path` may be
        a link's target with another name)."""
        return self.file.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class Problem:
    level: str                      # "error" | "warning" | "note" (said, never fails a check, even --strict)
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
    pip_index: Dict[str, List[Package]] = field(default_factory=dict)  # stage -> the other wheels it needs (pip)
    build_index: Dict[str, List[Package]] = field(default_factory=dict)  # stage -> the wheels its sdists' builds need
    build_requires: Dict[str, List[str]] = field(default_factory=dict)  # sdist file -> what building it installs first
    packages: List[Package] = field(default_factory=list)            # every file scanned
    problems: List[Problem] = field(default_factory=list)
    unrecognised: List[str] = field(default_factory=list)             # files no name pattern fits
    python_source: str = ""                                           # where `python` comes from
    abi: Optional[int] = None                                         # C++ ABI of the torch wheel's libraries

    @property
    def ok(self) -> bool:
        return not any(p.level == "error" for p in self.problems)

    def selected(self) -> List[Package]:
        return [p for stage in self.stages.values() for p in stage]

    def delivered(self) -> List[Package]:
        """Every file the build hands to a stage (chosen or pip index), each once, in stage order."""
        files = [p for stage in self.stages
                 for p in self.stages[stage] + self.pip_index.get(stage, []) + self.build_index.get(stage, [])]
        return list({p.file: p for p in files}.values())

    def find(self, slot: str) -> List[Package]:
        return [p for p in self.selected() if p.slot == slot]


def file_patterns(table) -> Tuple[Tuple[str, str, Optional[str], str], ...]:
    """The file names the stages of `table` declare, as naming.identify takes them: their slots'
    patterns and wheel names, and the names they recognise without installing (slot None)."""
    return (tuple((regex, component, slot.name, fmt) for stage in table for slot in stage.slots
                  for regex, component, fmt in slot.patterns)
            + tuple((dist, component, slot.name, "wheel-name") for stage in table for slot in stage.slots
                    for dist, component in slot.wheels)
            + tuple((regex, component, None, fmt) for stage in table for regex, component, fmt in stage.recognised))
