"""`ascend-build bake -o FILE`: a docker-bake.json for the config's matrix (chip x arch x python),
for remote or parallel BuildKit builders. Each variant gets its own context (mount delivery: the
packages travel with the context); variants of one arch share one `base` target through a named
context (`contexts: {ascend-base: "target:base-<arch>"}`)."""
import itertools
import json
import re
from pathlib import Path
from typing import Dict, List

from .context import write_context
from .errors import ConfigError
from .outputs import Inputs, write_file
from .plan import default_tag, make_plan, plan_for
from .settings import PLATFORMS, Options, resolve
from .spec import BuildSpec
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


def bake(workdir: Path, spec: BuildSpec, target: str, host_arch: str) -> dict:
    root = State.of(workdir).bake
    targets: Dict[str, dict] = {}
    for variant in variants(spec, host_arch):
        vspec = spec.model_copy(update={k: v for k, v in variant.items() if v})
        arch = variant["arch"]
        plan = plan_for(resolve(workdir, Options(target=target, delivery="mount", platform=arch, runs_here=True),
                                    spec=vspec))
        base = slug("base", arch)
        if base not in targets:
            base_settings = resolve(workdir, Options(target="base", delivery="mount", platform=arch, runs_here=True),
                                    spec=vspec)
            ctx = write_context(root / base, make_plan(base_settings, plan.selection))
            targets[base] = {"context": str(ctx), "dockerfile": "Dockerfile", "target": "base",
                             "platforms": [PLATFORMS[arch]], "args": {"BASE_IMAGE": base_settings.base_image}}
        name = slug(target, variant["chip"], arch, f"py{variant['python']}" if variant["python"] else "")
        ctx = write_context(root / name, plan, external_base=BASE_CONTEXT)
        targets[name] = {"context": str(ctx), "dockerfile": "Dockerfile", "target": target,
                         "contexts": {BASE_CONTEXT: f"target:{base}"}, "platforms": [PLATFORMS[arch]],
                         "tags": [default_tag(plan)]}
    variant_names = [n for n in targets if not n.startswith("base-")]
    return {"group": {"default": {"targets": variant_names}}, "target": targets}


def write_bake(data: dict, output: Path, force: bool, inputs: Inputs) -> None:
    write_file(output, json.dumps(data, indent=2) + "\n", force, inputs)
