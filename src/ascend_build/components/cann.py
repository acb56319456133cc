"""The cann stage: toolkit, kernels/ops for the chip, NNAL."""
from . import Context, StagePlan, component_env, merge_env, package_labels, render_script


def stage(ctx: Context, parent: str) -> StagePlan:
    toolkit, kernels, nnal = ctx.one("toolkit"), ctx.one("kernels"), ctx.one("nnal")
    files = [p for p in (toolkit, kernels, nnal) if p]
    script = render_script(
        "cann.sh.j2", P=ctx.install_path, for_all=ctx.for_all, toolkit=toolkit.name,
        kernels=kernels.name if kernels else None, kernels_component=kernels.component if kernels else None,
        nnal=nnal.name if nnal else None,
    )
    env = component_env("toolkit", ctx)
    if nnal:
        env = merge_env(env, component_env("nnal", ctx, nnal=nnal.version))
    return StagePlan("cann", parent, files, ctx.overrides.get("cann", script), env, package_labels(files))
