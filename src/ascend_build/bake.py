"""`ascend-build bake -o FILE`: a docker-bake.json for the config's matrix (chip x arch x python),
for remote or parallel BuildKit builders. Each variant gets its own context (mount delivery: the
packages travel with the context); variants of one arch share one `base` target through a named
context (`contexts: {ascend-base: "target:base-<arch>"}`). A stage's ENV from its set_env.sh files
is written when a `build` of the same inputs captured it (bake itself runs nothing)."""
import itertools
import json
import re
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from .build_context import write_context
from .engines.base import Engine
from .errors import ConfigError
from .outputs import Inputs, write_file
from .plan import Plan, default_tag, make_plan, plan_for
from .render import context_files
from .platforms import PLATFORMS
from .settings import Options, settings_for
from .spec import BuildSpec
from .stage_env import CACHE_DIR, Captured, EnvStore, known_env
from .workdir import State

BASE_CONTEXT = "ascend-base"


def variants(spec: BuildSpec, host_arch: str) -> List[Dict[str, str]]:
    matrix = spec.matrix
    if not matrix:
        raise ConfigError("ascend-build.yaml has no matrix", fix="add e.g. `matrix: {chip: [910b, A3], python: ['3.11']}`")
    axes = {"chip": matrix.chip or [spec.chip], "arch": matrix.arch or [spec.arch or host_arch],
            "python": matrix.python or [spec.python]}
    return [dict(zip(axes, combo)) for combo in itertools.product(*axes.values())]


def slug(*parts) -> str:
    return re.sub(r"[^a-z0-9-]+", "-", "-".join(str(p) for p in parts if p).lower()).strip("-")


def captured_env(plan: Plan, engine: Optional[Engine], store: EnvStore) -> Tuple[Captured, Optional[str]]:
    """The ENV earlier builds captured for the stages of `plan`; and the first stage whose was not
    (None: all known)."""
    waiting = next((s.name for s in plan.stages if s.set_env), None)
    base = engine.find_image(plan.settings.base_image) if engine and waiting else None
    if base is None:
        return {}, waiting
    captured, pending = known_env(plan, context_files(plan), str(base.get("Id") or ""), store)
    return captured, pending[0].name if pending else None


def bake(workdir: Path, spec: BuildSpec, target: str, host_arch: str,
         engine: Optional[Engine] = None) -> Tuple[dict, List[str]]:
    """The bake file's data, and a warning for each variant whose ENV is not all captured yet;
    `engine`: where the base images are looked up (None: no ENV is known)."""
    state = State.of(workdir)
    root, store = state.bake, EnvStore(state.root / CACHE_DIR)
    targets: Dict[str, dict] = {}
    warnings: List[str] = []
    for variant in variants(spec, host_arch):
        vspec = spec.model_copy(update={k: v for k, v in variant.items() if v})
        arch = variant["arch"]
        plan = plan_for(settings_for(workdir, Options(target=target, delivery="mount", platform=arch, runs_here=True),
                                         spec=vspec))
        base = slug("base", arch)
        if base not in targets:
            base_settings = settings_for(workdir, Options(target="base", delivery="mount", platform=arch, runs_here=True),
                                         spec=vspec)
            context_dir = write_context(root / base, make_plan(base_settings, plan.selection))
            targets[base] = {"context": str(context_dir), "dockerfile": "Dockerfile", "target": "base",
                             "platforms": [PLATFORMS[arch]], "args": {"BASE_IMAGE": base_settings.base_image}}
        name = slug(target, variant["chip"], arch, f"py{variant['python']}" if variant["python"] else "")
        captured, missing = captured_env(plan, engine, store)
        if missing:
            flags = "".join(f" --{key} {variant[key]}" for key in ("chip", "python") if variant[key])
            warnings.append(f"{name}: no build has captured the ENV of stage {missing} for these inputs: its image "
                            f"sets it only through its entrypoint (build the variant once with `ascend-build build "
                            f"--platform {PLATFORMS[arch]}{flags}`, then bake again)")
        context_dir = write_context(root / name, plan, external_base=BASE_CONTEXT, captured=captured)
        targets[name] = {"context": str(context_dir), "dockerfile": "Dockerfile", "target": target,
                         "contexts": {BASE_CONTEXT: f"target:{base}"}, "platforms": [PLATFORMS[arch]],
                         "tags": [default_tag(plan)]}
    variant_names = [n for n in targets if not n.startswith("base-")]
    return {"group": {"default": {"targets": variant_names}}, "target": targets}, warnings


def write_bake(data: dict, output: Path, force: bool, inputs: Inputs) -> None:
    write_file(output, json.dumps(data, indent=2) + "\n", force, inputs)
