"""Plan: from a checked selection and the config to the stages `build` will run."""
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Dict, List, Optional

from .catalog.checksums import hash_file
from .catalog.hashcache import HashCache
from .catalog.scan import follow
from .catalog.model import Package, Selection
from .components import PlanInputs, StagePlan, base, custom
from .components.registry import components, find
from .delivery import Delivery
from .errors import PackageError
from .settings import Settings, image_python
from .spec import BuildSpec

@dataclass
class Plan:
    settings: Settings
    selection: Selection
    os_family: str
    abi: int
    stages: List[StagePlan]
    warnings: List[str] = field(default_factory=list)
    native: Optional[object] = None      # native_install.NativeInstall: wheels installed on the build host's CPU
    cache_epoch: Optional[str] = None    # workdir.State.cache_epoch: the first stages declare it (build, plan)

    @property
    def spec(self) -> BuildSpec:
        return self.settings.spec

    @property
    def target(self) -> str:
        return self.settings.target

    @property
    def delivery(self) -> Delivery:
        return self.settings.delivery

    @property
    def url_secret(self) -> bool:
        return self.settings.url_secret

    def stage(self, name: str) -> StagePlan:
        return next(s for s in self.stages if s.name == name)

    def served_files(self) -> Dict[str, Package]:
        """Every file some stage installs, by name, once (a wheel may serve two stages)."""
        return {p.name: p for stage in self.stages for p in stage.files}


def planned_abi(spec: BuildSpec, selection: Selection) -> int:
    """`cxx_abi:`, else the torch wheel's (read by check), else the one the folder's packages' file
    names carry (e.g. `_abi0`), else 1."""
    if spec.cxx_abi is not None:
        return spec.cxx_abi
    if selection.abi is not None:
        return selection.abi
    abis = [p.abi for p in selection.packages if p.abi is not None]
    return abis[0] if abis else 1


def custom_files(workdir: Path, names: List[str]) -> Dict[str, Package]:
    """The custom stages' files, hashed once while unchanged (the hash cache, as for packages)."""
    files = {}
    cache = HashCache.load(workdir) if names else None
    for name in names:
        if not os.path.lexists(workdir / name):
            raise PackageError(f"custom stage file {name!r} not found in {workdir}", fix="put it in the working directory or fix `files:` in ascend-build.yaml")
        path, st = follow(workdir / name, name)
        entry = cache.get(name, st)
        sha256 = entry["sha256"] if entry else hash_file(path)
        if not entry:
            cache.put(name, st, sha256, None)
        files[name] = Package(path=path, file=name, component="custom", slot=None, version="", format="file",
                              size=st.st_size, sha256=sha256)
    if cache:
        cache.save()
    return files


def read_overrides(workdir: Path) -> Dict[str, str]:
    """install-scripts/install_<stage>.sh replaces the script generated for that stage."""
    folder = workdir / "install-scripts"
    files = sorted(folder.glob("install_*.sh")) if folder.is_dir() else []
    return {p.stem[len("install_"):]: p.read_text() for p in files}


def checked_selection(settings: Settings) -> Selection:
    """The catalog's selection for the settings' target; PackageError listing every error when
    there is one."""
    from .catalog import check

    workdir, target = settings.workdir, settings.target
    selection = check(workdir, settings.spec, components(), settings.builtin_chain, settings.builtin_target,
                      settings.arch, image_python(settings))
    errors = [p for p in selection.problems if p.level == "error"]
    if errors:
        lines = "\n".join(f"  [{p.code}] {p.message}" + (f" (fix: {p.fix})" if p.fix else "") for p in errors)
        raise PackageError(f"the packages in {workdir} cannot build target {target!r}:\n{lines}",
                           fix=f"run `ascend-build check -C {workdir} --target {target}` for the full table")
    return selection


def make_plan(settings: Settings, selection: Selection) -> Plan:
    spec, workdir = settings.spec, Path(settings.workdir)
    family = base.os_family(spec.base_image, spec.os_family)
    needed = tuple(p for name in settings.chain for p in (find(name).system_packages.get(family, ()) if find(name) else ()))
    inputs = PlanInputs(spec=spec, selection=selection, os_family=family, abi=planned_abi(spec, selection),
                        overrides=read_overrides(workdir), system_packages=needed)
    extra = custom_files(workdir, sorted({f for c in spec.stages if c.name in settings.chain for f in c.files}))
    stages: List[StagePlan] = []
    for name in settings.chain:
        parent = stages[-1].name if stages else spec.base_image
        component = find(name)
        stage = component.plan(inputs, parent) if component else custom.stage(inputs, next(c for c in spec.stages if c.name == name), extra)
        stages.append(replace(stage, script=inputs.overrides.get(name, stage.script)) if stage.script else stage)
    warnings = [settings.delivery.warning] if settings.delivery.warning else []
    return Plan(settings, selection, inputs.os_family, inputs.abi, stages, warnings)


def plan_for(settings: Settings) -> Plan:
    """Catalog check + plan: what `build` runs and `plan` prints for these settings."""
    return make_plan(settings, checked_selection(settings))


def default_tag(plan: Plan) -> str:
    """ascend-build/<target>:<cann>-<chip>-py<python>-<arch>, leaving out what is unknown."""
    sel = plan.selection
    toolkit = sel.find("toolkit")
    parts = [toolkit[0].version if toolkit else None, sel.chip, f"py{sel.python}" if sel.python else None, sel.arch]
    return f"ascend-build/{plan.target}:" + "-".join(p for p in parts if p)
