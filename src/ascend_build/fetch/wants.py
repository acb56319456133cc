"""What `fetch` asks the resolver for: torch_npu (which names its torch) and what it imports,
CANN's Python dependencies with the pins of its release, the folder's requirements*.txt and the
wheels the target's stages install from the folder (their own dependencies). Knowledge of
releases is data (catalog/python_deps.yaml, catalog/compat.yaml)."""
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from packaging.requirements import InvalidRequirement
from packaging.utils import parse_wheel_filename
from packaging.version import InvalidVersion, Version

from ..catalog.compat import pins_for, torch_npu_table
from ..catalog.model import Package
from ..catalog.requirements import parsed_lines
from ..catalog.versions import base_release, release_of, same_version, version_key
from ..errors import ConfigError, PackageError

MAX_REQUIREMENTS_BYTES = 1 << 20


@dataclass(frozen=True)
class Wants:
    """The resolver's input: PEP 508 lines (local wheels as `name @ file:///...`), and the wheels of
    the folder it completes (`kept`) or leaves beside a release asked for instead (`set_aside`)."""

    requirements: List[str]
    torch_npu: Optional[str]
    cann: Optional[str]
    kept: Tuple[Package, ...] = ()
    set_aside: Tuple[Package, ...] = ()


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


def torch_of(torch_npu: str, exceptions: Dict[str, str]) -> str:
    """The torch release torch_npu X.Y.Z[.postN] is made for: X.Y.Z unless the table says otherwise."""
    return next((str(t) for n, t in exceptions.items() if same_version(str(n), torch_npu)), base_release(torch_npu))


def requirement_lines(path: Path, rel: str) -> List[str]:
    """The requirements of a requirements file: plain PEP 508 lines (no options, no URLs)."""
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_REQUIREMENTS_BYTES + 1)
        text = raw.decode("utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise PackageError(f"cannot read {rel}: {exc}", fix="make it a readable UTF-8 text file") from None
    if len(raw) > MAX_REQUIREMENTS_BYTES:
        raise PackageError(f"{rel} is larger than {MAX_REQUIREMENTS_BYTES >> 20} MiB", fix="list one requirement a line")
    lines = []
    for number, line, req in parsed_lines(text):
        if isinstance(req, InvalidRequirement):
            fix = ("fetch reads plain requirements (name, version, extras, markers): drop pip options "
                   "(-r, --index-url, --hash...)" if line.startswith("-") else "write a PEP 508 requirement, e.g. numpy<2")
            raise PackageError(f"{rel}:{number}: not a requirement: {req}", fix=fix)
        if req.url:
            raise PackageError(f"{rel}:{number}: {req.name} names a URL", fix="put that wheel into the folder instead")
        lines.append(str(req))
    return lines


def local_requirement(pkg: Package) -> str:
    """A wheel of the folder as the resolver takes it: its dependencies get resolved too."""
    try:
        name = parse_wheel_filename(pkg.name)[0]
    except ValueError as exc:
        raise PackageError(f"{pkg.file} is not a wheel's file name: {exc}",
                           fix="rename it to the vendor's original file name") from None
    return f"{name} @ {Path(pkg.path).resolve().as_uri()}"


def wants(chain: List[str], selected: List[Package], cann: Optional[str], torch_npu: Optional[str],
          deps: dict, rules: dict, here: Sequence[Package] = ()) -> Wants:
    """What the stages of `chain` need from the index; `selected`: the files of the folder chosen
    for those stages (requirements*.txt, the stages' own wheels); `here`: the folder's torch and
    torch_npu wheels for the target, which decide the release unless `torch_npu` names another."""
    lines: List[str] = []
    if "cann" in chain and cann:
        lines += list(deps["stage_tools"]["cann"]) + pins_for(cann, deps.get("cann_pins") or [])
    npu, kept = None, []
    if "pta" in chain:
        npu, torch, kept = folder_torch_npu(
            torch_npu, cann, torch_npu_table(rules), rules.get("torch_npu_torch_exceptions") or {},
            [p for p in here if p.slot == "torch_npu"], [p for p in here if p.slot == "torch"])
        if not any(p.slot == "torch_npu" for p in kept):
            lines.append(f"torch-npu=={npu}")
        lines += [local_requirement(p) for p in kept]
        lines += [*deps["torch_npu"], *pins_for(torch, deps.get("torch_pins") or [])]
    for pkg in selected:
        if pkg.slot == "requirements":
            lines += requirement_lines(pkg.path, pkg.file)
        elif pkg.format == "wheel" and pkg.slot not in ("torch", "torch_npu"):
            lines.append(local_requirement(pkg))
    return Wants(requirements=list(dict.fromkeys(lines)), torch_npu=npu, cann=cann, kept=tuple(kept),
                 set_aside=tuple(p for p in here if p not in kept) if "pta" in chain else ())
