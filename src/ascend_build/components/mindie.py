"""The mindie stage: MindIE, then the ATB models (tarball or atb_llm wheel)."""
from ..catalog.model import Slot
from ..catalog.naming import ARCH, VERSION
from ..catalog.versions import release_of
from ..templating import raw
from . import Component, PlanInputs, StagePlan, package_labels, render_script
from .mindie_rules import PROBLEM_CODES, mindie_rules

MINDIE_DOWNLOAD = "the MindIE download page, https://www.hiascend.com/developer/download/community/result?module=ie"


def plan(inputs: PlanInputs, parent: str) -> StagePlan:
    mindie, llm, atb = inputs.one("mindie"), inputs.one("mindie_llm"), inputs.one("atb_models")
    extras = inputs.selection.find("mindie_wheels") if llm else []
    tarball = atb.name if atb and atb.format == "tar.gz" else None
    wheel = atb.name if atb and atb.format == "wheel" else None
    script = render_script(
        "mindie.sh.j2", P=inputs.install_path, user=inputs.spec.user is not None, pip_source=inputs.pip_source(), abi=inputs.abi,
        home=inputs.cann_home, toolkit_env=raw(inputs.toolkit_env().line), mindie=mindie.name if mindie else None, mindie_options=raw(inputs.installer_options("mindie")), wheels=[p.name for p in ([llm] if llm else []) + extras],
        atb_tarball=tarball, atb_wheel=wheel,
    )
    files = [p for p in (mindie, llm, *extras, atb) if p]
    set_env = inputs.set_env(*(["mindie"] if mindie else []), *(["atb_models"] if tarball else []), *(["atb_llm"] if wheel else []))
    return StagePlan(name="mindie", parent=parent, files=files + inputs.pip_index("mindie"), script=script,
                     set_env=set_env, labels=package_labels(files))


def _wheel_form(chosen) -> bool:
    return "mindie_llm" in chosen


def _atb_fits(chosen, pkg) -> bool:
    """ATB models of the chosen torch's version and MindIE's C++ ABI."""
    torch, mindie = chosen.get("torch"), chosen.get("mindie")
    return ((not torch or not pkg.torch or release_of(pkg.torch) == release_of(torch.version))
            and (not mindie or mindie.abi is None or pkg.abi is None or pkg.abi == mindie.abi))


RUN = (rf"Ascend-mindie_{VERSION}_linux-{ARCH}(?:_abi(?P<abi>[01]))?\.run", "mindie", "run")
ATB_MODELS = (rf"Ascend-mindie-atb-models_{VERSION}_linux-{ARCH}(?:_py(?P<py>3\d+))?_torch(?P<torch>\d+(?:\.\d+)+)"
              r"-abi(?P<abi>[01])\.tar\.gz", "atb_models", "tar.gz")
# MindIE container images (docker save) for a machine: recognised, not an installer
IMAGE = (rf"Ascend-mindie-image-(?P<chip>300i-duo|800i-a2|800i-a3)_{VERSION}_linux_{ARCH}\.tar\.gz", "mindie_image", "tar.gz")

COMPONENT = Component(
    stage="mindie",
    parent="pta",
    installer_pip=True,          # the .run pip-installs its bundled mindie_llm wheel
    recognised=(IMAGE,),
    slots=(
        Slot("mindie", required=True, patterns=(RUN,), expected="Ascend-mindie_<version>_linux-<arch>[_abi0|_abi1].run"
             " (or the MindIE 3.x wheels mindie_llm, mindie_sd, mindie_motor)", download=MINDIE_DOWNLOAD,
             optional_when=_wheel_form),
        # MindIE 3.x as wheels: mindie_llm, then mindie_sd and mindie_motor
        Slot("mindie_llm", python=True, wheels=(("mindie-llm", "mindie"),), expected="mindie_llm-<version>-cp<XY>-cp<XY>-<platform>.whl", download=MINDIE_DOWNLOAD),
        Slot("mindie_wheels", every=True, wheels=(("mindie-sd", "mindie"), ("mindie-motor", "mindie"))),
        # the atb-models tarball or an atb_llm wheel
        # not for MindIE 2.1+ (the ABI in its name: it bundles the ATB models) nor the 3.x wheels;
        # with no MindIE chosen, its own problem says what is missing
        Slot("atb_models", required=True, python=True, download=MINDIE_DOWNLOAD, patterns=(ATB_MODELS,), fits=_atb_fits,
             wheels=(("atb-llm", "atb_llm"),),
             optional_when=lambda chosen: _wheel_form(chosen) or chosen.get("mindie") is None or chosen["mindie"].abi is not None,
             expected="Ascend-mindie-atb-models_<version>_linux-<arch>[_py<XY>]_torch<torch>-abi<0|1>.tar.gz"
                      " or atb_llm-<version>-cp<XY>-cp<XY>-linux_<arch>.whl"),
    ),
    choose_order=("mindie_llm", "mindie", "atb_models"),
    needs=("nnal",),                     # MindIE runs on ATB
    # the requirements inside an atb-models tarball install from the folder's wheels
    pip_index=lambda files: any(p.slot == "atb_models" and p.format == "tar.gz" for p in files),
    rules=(mindie_rules,),
    problems=PROBLEM_CODES,
    plan=plan,
    summary=("mindie",),
    probes=(
        {"kind": "file", "slot": "mindie", "name": "mindie set_env.sh present", "path": "mindie/set_env.sh"},
        {"kind": "link-version", "slot": "mindie", "name": "mindie version matches label", "path": "mindie/latest"},
        {"kind": "import", "slot": "mindie", "name": "import mindie_llm", "module": "mindie_llm", "runtime_user": True},
        {"kind": "import", "slot": "mindie", "name": "import atb_llm", "module": "atb_llm"},
        {"kind": "import", "slot": "mindie_llm", "name": "import mindie_llm", "module": "mindie_llm", "versioned": True,
         "runtime_user": True},
    ),
)
