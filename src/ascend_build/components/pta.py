"""The pta stage: torch, torch_npu, requirements*.txt and the wheels they need."""
from ..catalog.compat import pta_rules
from ..catalog.model import Slot
from . import Component, Context, StagePlan, package_labels, render_script


def plan(ctx: Context, parent: str) -> StagePlan:
    torch, torch_npu = ctx.one("torch"), ctx.one("torch_npu")
    requirements = ctx.selection.find("requirements")
    has_nnal = ctx.one("nnal") is not None
    script = render_script(
        "pta.sh.j2", pip_source=ctx.pip_source(), torch=torch.name, torch_npu=torch_npu.name,
        requirements=[r.name for r in requirements], abi=ctx.abi if has_nnal else None,
        wheels=[p.name for p in ctx.pip_index("pta") if p.format == "wheel"],
    )
    return StagePlan(name="pta", parent=parent, files=[torch, torch_npu, *requirements, *ctx.pip_index("pta")], script=script,
                     labels=package_labels([torch, torch_npu]))


COMPONENT = Component(
    stage="pta",
    parent="cann",
    slots=(
        Slot("torch", required=True, python=True, expected="torch-<version>[+cpu]-cp<XY>-cp<XY>-<platform>.whl",
             download="https://download.pytorch.org/whl/cpu/torch/ (or `pip download --no-deps --only-binary=:all: torch==<version>`)"),
        Slot("torch_npu", required=True, python=True,
             expected="torch_npu-<version>-cp<XY>-cp<XY>-manylinux_2_17_<arch>.manylinux2014_<arch>.whl",
             download="https://gitee.com/ascend/pytorch/releases (or `pip download --no-deps torch-npu==<version>`)"),
        Slot("requirements", every=True),
    ),
    resolve=("torch_npu", "torch"),      # torch follows torch_npu's release
    rules=(pta_rules,),
    plan=plan,
    summary=("torch_npu",),
    probes=(
        {"kind": "import", "slot": "torch", "name": "import torch", "module": "torch", "versioned": True},
        {"kind": "import", "slot": "torch-npu", "name": "import torch_npu", "module": "torch_npu", "versioned": True, "runtime_user": True},
    ),
)
