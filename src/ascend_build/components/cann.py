"""The cann stage: toolkit, kernels/ops for the chip, NNAL."""
from ..catalog.compat import cann_rules, pins_for
from ..catalog.model import Slot
from ..catalog.versions import same_version
from ..templating import raw
from . import Component, PlanInputs, FolderView, IndexWants, StagePlan, package_labels, render_script

CANN_DOWNLOAD = "the CANN download page, https://www.hiascend.com/developer/download/community/result?module=cann"


def plan(inputs: PlanInputs, parent: str) -> StagePlan:
    toolkit, kernels, nnal = inputs.one("toolkit"), inputs.one("kernels"), inputs.one("nnal")
    tools = [p for p in inputs.pip_index("cann") if p.format == "wheel"]   # what CANN's Python tools import
    files = [p for p in (toolkit, kernels, nnal) if p] + tools
    # 8.5+: no nnrt package; the toolkit installs only the inference runtime
    whitelist = inputs.spec.cann == "nnrt" and toolkit.component == "toolkit"
    script = render_script(
        "cann.sh.j2", toolkit_env=raw(inputs.toolkit_env().line), pip_form=toolkit.format == "wheel",
        toolkit=toolkit.name, form=toolkit.component,
        toolkit_options=raw(inputs.installer_options("toolkit") + (" --whitelist=nnrt" if whitelist else "")),
        kernels=kernels.name if kernels else None, kernels_component=kernels.component if kernels else None,
        kernels_options=raw(inputs.installer_options("kernels", form=toolkit.component)),
        nnal=nnal.name if nnal else None, nnal_options=raw(inputs.installer_options("nnal")),
        pip_source=inputs.pip_source(), tools=[p.name for p in tools],
    )
    set_env = [inputs.toolkit_env(), *inputs.set_env("bisheng", *(["nnal"] if nnal else []))]
    # ASCEND_CXX_ABI: the ABI login shells pass to NNAL's set_env.sh (the profile script)
    env = {"ASCEND_CXX_ABI": str(inputs.abi)} if nnal else {}
    return StagePlan(name="cann", parent=parent, files=files, script=script, env=env, set_env=set_env,
                     labels=package_labels(files[:len(files) - len(tools)]))


def toolkit_version(chosen, pkg) -> bool:
    """Kernels/ops and NNAL of the chosen toolkit's version."""
    return "toolkit" not in chosen or same_version(pkg.version, chosen["toolkit"].version)


def index_wants(view: FolderView) -> IndexWants:
    """What CANN's own Python tools import, with the pins of its release."""
    toolkit = view.one("toolkit")
    if toolkit is None:
        return IndexWants()
    return IndexWants(requirements=(*view.deps["stage_tools"]["cann"], *pins_for(toolkit.version, view.deps.get("cann_pins") or [])),
                      said=(f"CANN {toolkit.version}",))


COMPONENT = Component(
    stage="cann",
    parent="base",
    index_wants=index_wants,
    slots=(
        Slot("toolkit", required=True, wheels=(("ascend-cann-toolkit", "toolkit"),), download=CANN_DOWNLOAD,
             expected="Ascend-cann-toolkit_<version>_linux-<arch>.run (8.5+ also ascend_cann_toolkit-<version>-py3-none-<platform>.whl from Huawei's index)"),
        # kernels (CANN <= 8.3) or ops (>= 8.5) packages of the chip
        Slot("kernels", required=True, download=CANN_DOWNLOAD, fits=toolkit_version,
             wheels=((r"ascend-cann-(?P<chip>[a-z0-9]+)-ops", "ops"),),
             expected="Ascend-cann-kernels-<chip>_<version>_linux-<arch>.run (CANN <= 8.3; A3: Atlas-A3-cann-kernels_<version>_linux-<arch>.run)"
                      " or Ascend-cann-<chip>-ops_<version>_linux-<arch>.run (CANN >= 8.5; with pip: ascend_cann_<chip>_ops-<version>-...whl)"),
        Slot("nnal", expected="Ascend-cann-nnal_<version>_linux-<arch>.run", download=CANN_DOWNLOAD, fits=toolkit_version),
    ),
    rules=(cann_rules,),
    plan=plan,
    summary=("toolkit",),
    native_wheels=True,
    probes=(
        {"kind": "file", "slot": "toolkit", "name": "toolkit set_env.sh present", "path": "ascend-toolkit/set_env.sh"},
        {"kind": "info-version", "slot": "toolkit", "name": "toolkit version matches label",
         "glob": "ascend-toolkit/latest/*-linux/ascend_toolkit_install.info"},
        {"kind": "env-dir", "slot": "toolkit", "name": "toolkit environment set without sourcing", "var": "ASCEND_HOME_PATH"},
        {"kind": "file", "slot": "nnal", "name": "nnal set_env.sh present", "path": "nnal/atb/set_env.sh"},
        {"kind": "env-dir", "slot": "nnal", "name": "ATB environment set without sourcing", "var": "ATB_HOME_PATH"},
    ),
)
