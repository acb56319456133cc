"""The pta stage: torch, torch_npu, requirements*.txt and the wheels they need."""
from . import Context, StagePlan, package_labels, render_script


def stage(ctx: Context, parent: str) -> StagePlan:
    torch, torch_npu = ctx.one("torch"), ctx.one("torch_npu")
    requirements = ctx.selection.find("requirements")
    extras = ctx.extra_wheels() if requirements else []
    has_nnal = ctx.one("nnal") is not None
    script = render_script(
        "pta.sh.j2", pip_source=ctx.pip_source(), torch=torch.name, torch_npu=torch_npu.name,
        requirements=[r.name for r in requirements], abi=ctx.abi if has_nnal else None,
    )
    files = [torch, torch_npu, *requirements, *extras]
    return StagePlan("pta", parent, files, ctx.overrides.get("pta", script), {}, package_labels([torch, torch_npu]))
