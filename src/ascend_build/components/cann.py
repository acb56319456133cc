"""The cann stage: toolkit, kernels/ops for the chip, NNAL."""
from ..catalog.compat import cann_rules
from ..catalog.model import Slot
from . import Component, Context, StagePlan, component_env, merge_env, package_labels, render_script

CANN_DOWNLOAD = "the CANN download page, https://www.hiascend.com/developer/download/community/result?module=cann"

# Static environment, so that `docker run IMAGE python3 -c "import torch_npu"` works without
# sourcing set_env.sh. {P}: install path, {abi}: C++ ABI, {nnal}: NNAL version.
TOOLKIT_ENV = {
    "ASCEND_TOOLKIT_HOME": "{P}/ascend-toolkit/latest",
    "ASCEND_HOME_PATH": "{P}/ascend-toolkit/latest",
    "ASCEND_OPP_PATH": "{P}/ascend-toolkit/latest/opp",
    "ASCEND_AICPU_PATH": "{P}/ascend-toolkit/latest",
    "TOOLCHAIN_HOME": "{P}/ascend-toolkit/latest/toolkit",
    "LD_LIBRARY_PATH": "{P}/ascend-toolkit/latest/lib64:{P}/ascend-toolkit/latest/lib64/plugin/opskernel:/usr/local/Ascend/driver/lib64/common:/usr/local/Ascend/driver/lib64/driver:${LD_LIBRARY_PATH}",
    "PYTHONPATH": "{P}/ascend-toolkit/latest/python/site-packages:{P}/ascend-toolkit/latest/opp/built-in/op_impl/ai_core/tbe:${PYTHONPATH}",
    "PATH": "{P}/ascend-toolkit/latest/bin:{P}/ascend-toolkit/latest/compiler/ccec_compiler/bin:${PATH}",
}
NNAL_ENV = {
    "ATB_HOME_PATH": "{P}/nnal/atb/{nnal}/atb/cxx_abi_{abi}",
    "ASCEND_CXX_ABI": "{abi}",
    "LD_LIBRARY_PATH": "{P}/nnal/atb/{nnal}/atb/cxx_abi_{abi}/lib:${LD_LIBRARY_PATH}",
}


def plan(ctx: Context, parent: str) -> StagePlan:
    toolkit, kernels, nnal = ctx.one("toolkit"), ctx.one("kernels"), ctx.one("nnal")
    files = [p for p in (toolkit, kernels, nnal) if p]
    home = ctx.cann_home
    # 8.5+: no nnrt package; the toolkit installs only the inference runtime
    whitelist = ctx.spec.cann == "nnrt" and toolkit.component == "toolkit"
    script = render_script(
        "cann.sh.j2", P=ctx.install_path, for_all=ctx.for_all, toolkit=toolkit.name, form=toolkit.component,
        home=home, whitelist=" --whitelist=nnrt" if whitelist else "",
        kernels=kernels.name if kernels else None, kernels_component=kernels.component if kernels else None,
        nnal=nnal.name if nnal else None,
    )
    env = {key: value.replace("/ascend-toolkit/", f"/{home}/") for key, value in component_env(TOOLKIT_ENV, ctx).items()}
    if nnal:
        env = merge_env(env, component_env(NNAL_ENV, ctx, nnal=nnal.version))
    return StagePlan(name="cann", parent=parent, files=files, script=script, env=env, labels=package_labels(files))


COMPONENT = Component(
    stage="cann",
    slots=(
        Slot("toolkit", required=True, expected="Ascend-cann-toolkit_<version>_linux-<arch>.run", download=CANN_DOWNLOAD),
        # kernels (CANN <= 8.3) or ops (>= 8.5) packages of the chip
        Slot("kernels", required=True, download=CANN_DOWNLOAD,
             expected="Ascend-cann-kernels-<chip>_<version>_linux-<arch>.run (CANN <= 8.3; A3: Atlas-A3-cann-kernels_<version>_linux-<arch>.run)"
                      " or Ascend-cann-<chip>-ops_<version>_linux-<arch>.run (CANN >= 8.5)"),
        Slot("nnal", expected="Ascend-cann-nnal_<version>_linux-<arch>.run", download=CANN_DOWNLOAD),
    ),
    rules=(cann_rules,),
    plan=plan,
    summary=("toolkit",),
    probes=(
        {"kind": "file", "slot": "toolkit", "name": "toolkit set_env.sh present", "path": "ascend-toolkit/set_env.sh"},
        {"kind": "info-version", "slot": "toolkit", "name": "toolkit version matches label",
         "glob": "ascend-toolkit/latest/*-linux/ascend_toolkit_install.info"},
        {"kind": "env-dir", "slot": "toolkit", "name": "toolkit environment set without sourcing", "var": "ASCEND_TOOLKIT_HOME"},
        {"kind": "file", "slot": "nnal", "name": "nnal set_env.sh present", "path": "nnal/atb/set_env.sh"},
        {"kind": "env-dir", "slot": "nnal", "name": "ATB environment set without sourcing", "var": "ATB_HOME_PATH"},
    ),
)
