"""Selection: the packages each stage on the way to a target needs, never a silent pick.

Per slot: a pin (`pins: {slot: file}`) wins; otherwise the candidates are filtered by the build
arch, the chip (kernels/ops) and the image's Python (when known: read from the base image, or
configured), then narrowed to those that fit what is already chosen (Slot.fits, declared by the
slot's component: kernels/NNAL of the toolkit's version, torch of the release its stage pairs it
with...) when that leaves any. One left: chosen; several:
`ambiguous-slot`; none: `missing-component` (or why they did not fit).

`requirements*.txt` files are all selected for pta (except files a custom stage names). Other
wheels in the folder are not selected (no slot): closure.py gives each stage those it needs.
"""
from typing import Callable, Dict, List, Optional, Sequence

from ..errors import ConfigError
from ..platforms import host_arch, normalise_arch
from ..spec import BuildSpec
from .model import Package, Problem, Selection, Slot, StageSlots
from .naming import normalise_chip
from .problems import (AMBIGUOUS_SLOT, ARCH_MISMATCH, CHIP_AMBIGUOUS, CHIP_MISMATCH,
    MISSING_COMPONENT, PIN_NOT_FOUND, PIN_UNKNOWN_SLOT, PYTHON_MISMATCH)
from .versions import version_key


def build_arch(platform: Optional[str], spec_arch: Optional[str]) -> str:
    """The build platform's arch: `--platform`, else the config's `arch`, else this host."""
    text = platform or spec_arch
    arch = normalise_arch(text) if text else host_arch()
    if arch is None:
        raise ConfigError(f"unknown build platform {text or 'of this host'!r}", fix="use x86_64, aarch64, linux/amd64 or linux/arm64")
    return arch


def _err(code: str, message: str, fix: str, file: Optional[str] = None) -> Problem:
    return Problem(level="error", code=code, message=message, file=file, fix=fix)


class _Selector:
    """Fills the slots one by one; records what it chose and the problems."""

    def __init__(self, packages: List[Package], spec: BuildSpec, arch: str, slots: Dict[str, Slot],
                 python: Optional[str] = None, python_source: str = ""):
        self.packages, self.spec, self.arch, self.slots = packages, spec, arch, slots
        self.python_slots = [name for name, slot in slots.items() if slot.python]
        self.python = python or spec.python
        self.python_source = python_source
        self.chip = normalise_chip(spec.chip) if spec.chip else None
        self.chosen: Dict[str, Package] = {}
        self.problems: List[Problem] = []
        self.other_arch: List[Package] = []

    def candidates(self, slot: str) -> List[Package]:
        return [p for p in self.packages if p.slot == slot]

    def fits_chosen(self, slot: str) -> Callable[[Package], bool]:
        """What the slot's component says a candidate must have in common with what is chosen."""
        fits = self.slots[slot].fits if slot in self.slots else None
        return (lambda p: fits(self.chosen, p)) if fits else (lambda p: True)

    def pick(self, slot: str) -> Optional[Package]:
        """The one package for `slot`, or None (with a problem unless the slot is simply empty)."""
        found = self.candidates(slot)
        if slot in self.spec.pins:
            return self.pinned(slot, found)
        fit = [p for p in found if p.arch in (None, self.arch)]
        if found and not fit:
            self.other_arch += found
            return None
        if slot == "toolkit":
            fit = self.cann_form(fit)
        if slot == "kernels" and self.chip is not None:
            if self.chip == "":          # several chips and none configured: reported once
                return None
            fit = self.keep(slot, fit, lambda p: p.chip == self.chip, CHIP_MISMATCH, f"chip {self.chip}",
                            lambda p: f"chip {p.chip}", "get the package for that chip, or set `chip:` to one of those")
        if slot in self.python_slots and self.python:
            where = f" (the image's, from {self.python_source})" if self.python_source else ""
            fit = self.keep(slot, fit, lambda p: p.python in (None, self.python), PYTHON_MISMATCH,
                            f"Python {self.python}{where}", lambda p: f"Python {p.python}",
                            f"get the build for Python {self.python} (cp{self.python.replace('.', '')}), "
                            "or use a base image with the wheels' Python")
        fit = [p for p in fit if self.fits_chosen(slot)(p)] or fit
        if len(fit) > 1:
            self.problems.append(_err(AMBIGUOUS_SLOT, f"{len(fit)} files fit the {slot} slot: "
                                      + ", ".join(p.file for p in fit),
                                      f"keep one, or pin one in ascend-build.yaml: `pins: {{{slot}: {fit[0].name}}}`",
                                      fit[0].file))
            return None
        return fit[0] if fit else None

    def cann_form(self, fit: List[Package]) -> List[Package]:
        """The toolkit slot's candidates of the configured `cann:` form (for 8.5+, where nnrt is the
        toolkit installed with --whitelist=nnrt, the toolkit too); with none configured, one form."""
        form = self.spec.cann
        if form:
            return self.keep("toolkit", fit, lambda p: p.component == form or (
                form == "nnrt" and p.component == "toolkit" and whitelist_nnrt(p.version)), MISSING_COMPONENT,
                f"`cann: {form}`", lambda p: p.component, f"get the {form} package, or change `cann:`")
        forms = sorted({p.component for p in fit})
        if len(forms) > 1:
            self.problems.append(_err(AMBIGUOUS_SLOT, "several CANN forms: " + ", ".join(p.file for p in fit),
                                      f"choose one in ascend-build.yaml: `cann: {forms[-1]}` (one of: {', '.join(forms)})",
                                      fit[0].file))
            return []
        return fit

    def pinned(self, slot: str, found: List[Package]) -> Optional[Package]:
        pin = self.spec.pins[slot]
        match = [p for p in found if pin in (p.file, p.name)]
        if len(match) == 1:
            return match[0]
        listed = ", ".join(p.file for p in found) or "none"
        self.problems.append(_err(PIN_NOT_FOUND, f"pins.{slot} names {pin!r}, which is not one {slot} package "
                                  f"here (found: {listed})", f"fix `pins: {{{slot}: <file name>}}` in ascend-build.yaml"))
        return None

    def keep(self, slot: str, fit: List[Package], test: Callable[[Package], bool], code: str, wanted: str,
             describe: Callable[[Package], str], fix: str) -> List[Package]:
        """`fit` filtered by `test`; a `code` problem when that leaves nothing of something."""
        kept = [p for p in fit if test(p)]
        if fit and not kept:
            found = ", ".join(f"{p.file} ({describe(p)})" for p in fit)
            self.problems.append(_err(code, f"no {slot} package for {wanted}: found {found}", fix, fit[0].file))
        return kept

    def infer_chip(self) -> None:
        if self.chip:
            return
        kernels = [p for p in self.candidates("kernels") if p.arch in (None, self.arch) and p.chip]
        chips = sorted({p.chip for p in kernels})
        if len(chips) == 1:
            self.chip = chips[0]
        elif len(chips) > 1:
            listed = ", ".join(f"{c} ({', '.join(p.file for p in kernels if p.chip == c)})" for c in chips)
            self.problems.append(_err(CHIP_AMBIGUOUS, f"kernels/ops packages for several chips: {listed}",
                                      f"set the chip in ascend-build.yaml, e.g. `chip: {chips[0]}` (one of: {', '.join(chips)})"))
            self.chip = ""      # no kernels are chosen until the chip is set



def whitelist_nnrt(version: str) -> bool:
    """From CANN 8.5 there is no nnrt package: the toolkit installs as nnrt with --whitelist=nnrt."""
    return version_key(version) >= version_key("8.5.0")


def missing(slot: Slot, sel: _Selector, target: str, version: Optional[str]) -> Problem:
    pattern = (slot.expected or slot.name).replace("<arch>", sel.arch)
    if sel.chip:
        pattern = pattern.replace("<chip>", sel.chip)
    if version:
        pattern = pattern.replace("<version>", version)
    where = slot.download or "the vendor's download page"
    return _err(MISSING_COMPONENT, f"no {slot.name} package for target {target} ({sel.arch}): expected {pattern}",
                f"download it from {where} and put it in the working directory or its packages/ folder")


def select(packages: List[Package], spec: BuildSpec, table: Sequence[StageSlots], chain: Sequence[str],
           target: str, platform: Optional[str] = None, python: Optional[str] = None,
           python_source: str = "") -> Selection:
    """Choose the packages of the `chain`'s stages (built-in stages from base to `target`, in
    order) from what `table` (every stage) says of their slots, for the image's `python`
    (default: the config's) that `python_source` names. `pip_index` is left to closure.py."""
    known = [slot.name for stage in table for slot in stage.slots]
    stages = [stage for stage in table if stage.stage in chain]
    slots = {slot.name: slot for stage in stages for slot in stage.slots}
    sel = _Selector(packages, spec, build_arch(platform, spec.arch), slots, python, python_source)
    for slot in spec.pins:
        if slot not in known:
            sel.problems.append(_err(PIN_UNKNOWN_SLOT, f"pins.{slot}: there is no slot {slot!r}",
                                     f"pin one of: {', '.join(known)}"))
    required = {s.name for s in slots.values() if s.required} | {n for stage in stages for n in stage.needs}
    if "kernels" in slots:
        sel.infer_chip()
    for name in [n for stage in stages for n in stage.slots_to_choose]:
        pkg = sel.pick(name)
        if pkg:
            sel.chosen[name] = pkg
        elif name in required and not sel.candidates(name) and not (
                slots[name].optional_when and slots[name].optional_when(sel.chosen)):
            toolkit = sel.chosen.get("toolkit")
            version = toolkit.version if toolkit and name in ("kernels", "nnal") else None
            sel.problems.append(missing(slots[name], sel, target, version))
    if sel.other_arch:
        names = ", ".join(f"{p.file} ({p.arch})" for p in sel.other_arch)
        other = "linux/arm64" if sel.arch == "x86_64" else "linux/amd64"
        sel.problems.append(_err(ARCH_MISMATCH, f"the build platform is {sel.arch} but these packages are for "
                                 f"another arch: {names}", f"put the {sel.arch} packages here, or build for their "
                                 f"platform (--platform {other}, or `arch:` in ascend-build.yaml)", sel.other_arch[0].file))
    custom_files = {f for c in spec.stages for f in c.files}
    chosen: Dict[str, List[Package]] = {}
    for stage in stages:
        chosen[stage.stage] = [p for slot in stage.slots for p in (
            [p for p in sel.candidates(slot.name) if not {p.file, p.name} & custom_files] if slot.every
            else [sel.chosen[slot.name]] if slot.name in sel.chosen else [])]
    pythons = {p.python for p in sel.chosen.values() if p.python}
    python = sel.python or (pythons.pop() if len(pythons) == 1 else None)
    return Selection(target=target, arch=sel.arch, chip=sel.chip or None, python=python, stages=chosen,
                     packages=list(packages), problems=sel.problems)
