"""Renderer: a Plan becomes the build context's text files (Dockerfile and scripts) plus the
list of package files the context must hold (what the plan's delivery puts there)."""
import json
from pathlib import Path
from typing import Dict, List, Optional, Tuple


from .. import __version__, native_install, sdist_stage
from ..capture import dockerfile_env, quote
from ..components import StagePlan, render_script
from ..components.registry import components
from ..contract import ENTRYPOINT, PROFILE, SET_ENV_LABEL, TOOL_DIR, WARM_STAGE, label, template_values
from ..plan import Plan
from ..templating import environment

SCRIPTS = ("lib.sh", "run-stage.sh", "entrypoint.sh")


def capture_prefix(plan: Plan, captured: Dict[str, Dict[str, str]], upto: str) -> Tuple[str, str]:
    """What a capture of stage `upto` builds: the Dockerfile (dockerfile(..., warm=True)) and its
    target, `upto` or WARM_STAGE (its image is `upto`'s with a small file of each helper: the same environment)."""
    text = dockerfile(plan, captured=captured, upto=upto, warm=True)
    return text, WARM_STAGE if f" AS {WARM_STAGE}\n" in text else upto


def template(name: str):
    return environment().get_template(f"render/templates/{name}")


def _pairs(mapping: Dict[str, str]) -> List[str]:
    return [f"{key}={json.dumps(value, ensure_ascii=False)}" for key, value in mapping.items()]


def set_env_lines(plan: Plan) -> List[str]:
    """The shell lines of every stage's set_env steps, in stage order."""
    return [step.line for stage in plan.stages for step in stage.set_env]


def _image_labels(plan: Plan) -> Dict[str, str]:
    summary = {slot for c in components() for slot in c.summary}
    labels = {
        "org.opencontainers.image.title": f"Ascend {plan.target} image",
        "org.opencontainers.image.description": "Ascend image built by ascend-build: " + (", ".join(
            f"{p.slot} {p.version}" for p in plan.selection.selected() if p.slot in summary) or "base OS only"),
        "org.opencontainers.image.base.name": plan.spec.base_image,
        label("target"): plan.target,
        label("tool-version"): __version__,
        label("install-path"): plan.spec.install_path,
        label("cxx-abi"): str(plan.abi),
        label("user"): plan.spec.user.name if plan.spec.user else "",
        label("user-ids"): f"{plan.spec.user.uid}:{plan.spec.user.gid}" if plan.spec.user else "",
        label("stages"): ",".join(s.name for s in plan.stages),
    }
    if plan.selection.chip:
        labels[label("chip")] = plan.selection.chip
    labels.update(plan.spec.labels)
    return labels


def _stage_view(plan: Plan, stage: StagePlan, captured: Optional[Dict[str, str]]) -> dict:
    view = {"name": stage.name, "parent": "${BASE_IMAGE}" if stage.name == "base" else stage.parent, "copies": [], "setup": stage.setup, "files": None, "mount": "",
            "env": _pairs(stage.env), "labels": _pairs(stage.labels), "tail": [], "cut": False,
            "set_env": [step.shows for step in stage.set_env],
            "captured": dockerfile_env(captured) if captured is not None else None}
    if stage.name == "base":
        view["copies"] = [("scripts/lib.sh scripts/run-stage.sh", f"{TOOL_DIR}/"),
                          ("scripts/entrypoint.sh", ENTRYPOINT),
                          ("scripts/profile.sh", PROFILE)]
        view["tail"] = [f"ENTRYPOINT {json.dumps([ENTRYPOINT])}", 'CMD ["/bin/bash"]']
    if stage.script:
        view["copies"].append((f"scripts/install_{stage.name}.sh", f"{TOOL_DIR}/install_{stage.name}.sh"))
        view["files"] = [(p.name, p.sha256) for p in stage.files]
        view["copies"] += plan.delivery.copies(stage.name, bool(stage.files))
        view["mount"] = plan.delivery.mount(stage.name, bool(stage.files))
    if stage is plan.stages[-1]:
        view["labels"] += _pairs(_image_labels(plan))
        lines = set_env_lines(plan)
        if lines:   # what verify sources again; quoted so that `$` stays literal
            view["labels"].append(f'{SET_ENV_LABEL}={quote(json.dumps(lines))}')
    return view


def dockerfile(plan: Plan, pkg_url_default: Optional[str] = None, external_base: Optional[str] = None,
               captured: Optional[Dict[str, Dict[str, str]]] = None, upto: Optional[str] = None,
               warm: bool = False) -> str:
    """The Dockerfile; with `external_base`, the base stage is left out and the next stage starts
    FROM that name (a bake target provides it as a named context). `captured`: stage -> the
    environment its set_env steps gave, written as its ENV. `upto`: the Dockerfile up to and
    including that stage's install step (what is built to capture its environment); `warm`: and
    the native helpers of the stages after it, with stage WARM_STAGE on that step, which copies a
    small file of each: the capture's build runs them on the host's CPU beside the emulated stages."""
    captured = captured or {}
    views = [_stage_view(plan, s, captured.get(s.name)) for s in plan.stages]
    later: List[str] = []
    if upto:
        cut = [s.name for s in plan.stages].index(upto) + 1
        views[cut - 1]["cut"] = True
        views, later = (views, [v["name"] for v in views[cut:]]) if warm else (views[:cut], [])
    if external_base:
        views = views[1:]
        views[0]["parent"] = external_base
    views = sdist_stage.helper_views(plan, native_install.helper_views(plan, views))
    if later:
        helpers = [v["name"] for v in views if v.get("helper") == "install" and v["stage"] in later]
        views = [v for v in views if v["name"] in helpers or (v["name"] not in later and v.get("stage") not in later)]
        if helpers:
            views.append({"name": WARM_STAGE, "helper": "warm", "parent": upto, "helpers": helpers,
                          "guess": native_install.GUESS})
    names = {v["name"] for v in views}
    for view in views:     # the stages FROM an image: the cache epoch makes each RUN below them new
        view["root"] = bool(view.get("image")) or view["parent"] not in names
    return template("Dockerfile.j2").render(
        version=__version__, target=upto or plan.target, delivery=plan.delivery.name, os_family=plan.os_family,
        stages=views, base_image=plan.spec.base_image, pkg_url_default=pkg_url_default, declare_url_arg=plan.delivery.url_arg,
        cache_epoch=plan.cache_epoch, **template_values())


def context_files(plan: Plan, pkg_url_default: Optional[str] = None, external_base: Optional[str] = None,
                  captured: Optional[Dict[str, Dict[str, str]]] = None) -> Dict[str, str]:
    """Text files of the build context: Dockerfile and scripts/."""
    files = {"Dockerfile": dockerfile(plan, pkg_url_default, external_base, captured)}
    for name in SCRIPTS:
        files[f"scripts/{name}"] = render_script(f"{name}.j2")
    for stage in plan.stages:
        files.update(stage.extra_files)
        if stage.script:
            files[f"scripts/install_{stage.name}.sh"] = stage.script
    files.update(sdist_stage.context_files(plan))
    files.update(native_install.context_files(plan, files))      # on the stage scripts as the context has them
    return files


def context_packages(plan: Plan) -> Dict[str, Path]:
    """`pkgs/<stage>/<file>` -> source file: the packages the delivery puts in the context (http: none)."""
    return plan.delivery.packages(plan.stages)
