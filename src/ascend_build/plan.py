"""Plan: from a checked selection and the config to the stages `build` will run."""
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

from .catalog.checksums import hash_file
from .catalog.scan import follow
from .catalog.model import Package, Selection
from .components import Context, StagePlan, base, cann, custom, mindie, pta
from .errors import ConfigError, PackageError
from .spec import STAGES, BuildSpec, load_spec

BUILTIN = {"cann": cann.stage, "pta": pta.stage, "mindie": mindie.stage}
DELIVERIES = ("http", "mount", "copy")


@dataclass
class Plan:
    spec: BuildSpec
    selection: Selection
    target: str
    delivery: str
    os_family: str
    abi: int
    stages: List[StagePlan]
    warnings: List[str] = field(default_factory=list)
    url_secret: bool = False    # http delivery: the server URL comes as a build secret, not a build argument

    def stage(self, name: str) -> StagePlan:
        return next(s for s in self.stages if s.name == name)

    def served_files(self) -> Dict[str, Package]:
        """Every file some stage installs, by name, once (a wheel may serve two stages)."""
        return {p.name: p for stage in self.stages for p in stage.files}


def stage_chain(spec: BuildSpec, target: str) -> List[str]:
    """Stage names from base to target: built-in stages minus skipped ones, then custom stages
    on the way to the target."""
    builtin = [s for s in STAGES if s not in spec.skip]
    custom_by_name = {c.name: c for c in spec.stages}
    known = ", ".join(builtin + list(custom_by_name))
    if target in spec.skip:
        raise ConfigError(f"target {target!r} is skipped in ascend-build.yaml", fix=f"remove it from skip, or pick one of: {known}")
    customs: List[str] = []
    name = target
    while name in custom_by_name:
        if name in customs:
            raise ConfigError(f"custom stages form a loop through {name!r}", fix="give each custom stage an earlier parent")
        customs.insert(0, name)
        name = custom_by_name[name].parent
    if name not in builtin:
        raise ConfigError(f"unknown or skipped stage {name!r} (target {target!r})", fix=f"pick one of: {known}")
    return builtin[: builtin.index(name) + 1] + customs


def builtin_target(spec: BuildSpec, target: str) -> str:
    """The last built-in stage on the way to `target`: what the catalog must select for."""
    return [s for s in stage_chain(spec, target) if s in STAGES][-1]


def planned_abi(spec: BuildSpec, selection: Selection) -> int:
    if spec.cxx_abi is not None:
        return spec.cxx_abi
    abis = [p.abi for p in selection.packages if p.slot in ("mindie", "atb_models") and p.abi is not None]
    return abis[0] if abis else 1


def custom_files(workdir: Path, names: List[str]) -> Dict[str, Package]:
    files = {}
    for name in names:
        if not os.path.lexists(workdir / name):
            raise PackageError(f"custom stage file {name!r} not found in {workdir}", fix="put it in the working directory or fix `files:` in ascend-build.yaml")
        path, st = follow(workdir / name, name)
        files[name] = Package(path=path, file=name, component="custom", slot=None, version="", format="file",
                              size=st.st_size, sha256=hash_file(path))
    return files


def read_overrides(workdir: Path) -> Dict[str, str]:
    """install-scripts/install_<stage>.sh replaces the script generated for that stage."""
    folder = workdir / "install-scripts"
    files = sorted(folder.glob("install_*.sh")) if folder.is_dir() else []
    return {p.stem[len("install_"):]: p.read_text() for p in files}


def checked_selection(workdir: Path, spec: BuildSpec, target: str, platform: Optional[str]) -> Selection:
    """The catalog's selection for `target`; PackageError listing every error when there is one."""
    from .catalog import check

    selection = check(Path(workdir), spec, target=builtin_target(spec, target), platform=platform)
    errors = [p for p in selection.problems if p.level == "error"]
    if errors:
        lines = "\n".join(f"  [{p.code}] {p.message}" + (f" (fix: {p.fix})" if p.fix else "") for p in errors)
        raise PackageError(f"the packages in {workdir} cannot build target {target!r}:\n{lines}",
                           fix=f"run `ascend-build check -C {workdir} --target {target}` for the full table")
    return selection


def make_plan(workdir: Path, spec: BuildSpec, selection: Selection, target: str, delivery: str,
              url_secret: bool = False) -> Plan:
    if delivery not in DELIVERIES:
        raise ConfigError(f"unknown delivery {delivery!r}", fix=f"use one of: {', '.join(DELIVERIES)}")
    chain = stage_chain(spec, target)
    ctx = Context(spec=spec, selection=selection, os_family=base.os_family(spec.base_image, spec.os_family),
                  abi=planned_abi(spec, selection), overrides=read_overrides(Path(workdir)))
    extra = custom_files(Path(workdir), sorted({f for c in spec.stages if c.name in chain for f in c.files}))
    stages = [base.stage(ctx)]
    for name in chain[1:]:
        if name in BUILTIN:
            stages.append(BUILTIN[name](ctx, stages[-1].name))
        else:
            stages.append(custom.stage(ctx, next(c for c in spec.stages if c.name == name), extra))
    warnings = []
    if delivery == "copy":
        warnings.append("copy delivery leaves the installer bytes in the image's layers (COPY, then rm in a later layer): use http or mount for a smaller image")
    return Plan(spec, selection, target, delivery, ctx.os_family, ctx.abi, stages, warnings, url_secret)


def plan_workdir(workdir: Path, target: Optional[str], delivery: str, base_image: Optional[str] = None,
                 platform: Optional[str] = None) -> Plan:
    """Config + catalog check + plan for a working directory (what `plan` prints)."""
    spec = load_spec(Path(workdir), base_image=base_image)
    target = target or spec.target
    return make_plan(workdir, spec, checked_selection(workdir, spec, target, platform), target, delivery)
