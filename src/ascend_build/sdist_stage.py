"""A stage's source distributions built apart: with an engine that mounts one stage into another's
RUN (BuildKit, podman), a stage whose component builds sdists gets a builder stage
`<stage>-sdists`, FROM the stage below, that takes only the sdists and what building them needs
and leaves the wheels in /ab-built. The stage mounts them read-only while it installs. So the
builder is cached by the bytes of what it builds and by the stage below (another vllm-ascend wheel
builds no vLLM again), and nothing of a build, compiler or sdist reaches the image's layers. The
classic builder builds in the stage itself (its script does both)."""
from typing import Dict, List

from .contract import BUILDER_WHEELS, BUILT_WHEELS, SDISTS_SUFFIX


def builder(stage: str) -> str:
    return stage + SDISTS_SUFFIX


def used(plan) -> bool:
    """Builder stages: the engine mounts one stage into another's RUN."""
    engine = plan.settings.engine
    return bool(engine is not None and engine.bind_mounts and any(s.build_script for s in plan.stages))


def helper_views(plan, views: List[dict]) -> List[dict]:
    """The Dockerfile's stage views with a builder before each stage that builds sdists; that stage
    delivers only its other files and mounts the builder's wheels."""
    if not used(plan):
        return views
    out: List[dict] = []
    for view in views:
        stage = next((s for s in plan.stages if s.name == view["name"] and s.build_script), None)
        if stage is None or view.get("helper") or view["files"] is None:
            out.append(view)
            continue
        built = {p.name for p in stage.build_only}
        build_files = [(p.name, p.sha256) for p in stage.build_files]
        out.append({"name": builder(stage.name), "helper": "sdists", "stage": stage.name, "parent": view["parent"],
                    "mount": plan.delivery.mount(stage.name, True), "files": build_files})
        mount = f"--mount=type=bind,from={builder(stage.name)},source={BUILDER_WHEELS},target={BUILT_WHEELS} "
        view = dict(view, files=[f for f in view["files"] if f[0] not in built], mount=view["mount"] + mount,
                    built_from=build_files)
        out.append(view)
    return out


def context_files(plan) -> Dict[str, str]:
    """The builders' scripts, and the stages' scripts that take the built wheels."""
    if not used(plan):
        return {}
    files = {}
    for stage in plan.stages:
        if stage.build_script:
            files[f"scripts/sdists/install_{stage.name}.sh"] = stage.build_script
            files[f"scripts/install_{stage.name}.sh"] = stage.install_script
    return files
