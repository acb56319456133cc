"""The mindie stage: MindIE, then the ATB models (tarball or atb_llm wheel)."""
from . import Context, StagePlan, component_env, package_labels, render_script


def stage(ctx: Context, parent: str) -> StagePlan:
    mindie, atb = ctx.one("mindie"), ctx.one("atb_models")
    tarball = atb.name if atb and atb.format == "tar.gz" else None
    wheel = atb.name if atb and atb.format == "wheel" else None
    script = render_script(
        "mindie.sh.j2", P=ctx.install_path, for_all=ctx.for_all, pip_source=ctx.pip_source(), abi=ctx.abi,
        mindie=mindie.name, atb_tarball=tarball, atb_wheel=wheel,
    )
    files = [p for p in (mindie, atb) if p]
    extras = ctx.extra_wheels() if tarball else []   # for the requirements inside the atb-models tarball
    return StagePlan("mindie", parent, files + extras, ctx.overrides.get("mindie", script), component_env("mindie", ctx),
                     package_labels(files))
