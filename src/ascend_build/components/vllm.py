"""The vllm stage (on pta): vLLM-Ascend serving images. vLLM from its source distribution, built for
no device (`VLLM_TARGET_DEVICE=empty`: its wheel then requires requirements/common.txt) without
build isolation against the installed CPU torch (its build requirements ask a CUDA torch), and
vllm-ascend's wheel with what both need (triton-ascend among them; the community triton never).
vLLM's wheels on the index are CUDA builds: the stage takes the sdist. Which release pairs with
which: vllm.yaml; the torch_npu and triton-ascend a vllm-ascend needs are its own Requires-Dist."""
from typing import Dict, List, Optional

from ..catalog.compat import one, problem
from ..catalog.model import Package, Problem, Selection, Slot, SourceBuild
from ..catalog.versions import base_release, release_of, same_version, version_key
from ..errors import ConfigError
from ..spec import BuildSpec
from ..contract import BUILDER_WHEELS, BUILT_WHEELS
from . import Component, FolderView, IndexWants, PlanInputs, StagePlan, component_data, package_labels, render_script

VLLM_MISMATCH = "vllm-mismatch"
VLLM_CUDA_WHEEL = "vllm-cuda-wheel"
VLLM_ASCEND_CANN_MISMATCH = "vllm-ascend-cann-mismatch"
VLLM_ASCEND_UNKNOWN = "vllm-ascend-unknown"
PROBLEM_CODES = {
    VLLM_MISMATCH: "error: vLLM's release is not the one vllm-ascend is made for (X.Y.Z)",
    VLLM_CUDA_WHEEL: "error: a vLLM wheel from the index is a CUDA build; the vllm stage builds vLLM from its sdist",
    VLLM_ASCEND_CANN_MISMATCH: "error: vllm-ascend is made for another CANN release than the toolkit's",
    VLLM_ASCEND_UNKNOWN: "warning: a vllm-ascend release not in the table (its CANN is not known)",
}
DOWNLOAD = "the package index (`pip download --no-deps --only-binary=:all: vllm-ascend==<version>`)"
SOURCE = (("VLLM_TARGET_DEVICE", "empty"),)
BUILD = SourceBuild(requirements="requirements/common.txt", installed=("torch",), env=SOURCE)
# vllm-ascend from its sdist: its kernels compiled with CANN for the chip the config names
ASCEND_BUILD = SourceBuild(requirements="requirements.txt", installed=("torch", "torch-npu"),
                           env=(("COMPILE_CUSTOM_KERNELS", "1"),))


def rows() -> Dict[str, dict]:
    return {str(k): {f: str(v) for f, v in row.items()} for k, row in (component_data("vllm").get("vllm_ascend") or {}).items()}


def _empty_build(pkg: Package) -> bool:
    """A vLLM that is not a CUDA build: its sdist, or a wheel built for no device (`+empty`)."""
    return pkg.format == "sdist" or pkg.version.endswith("+empty")


def _paired(chosen: Dict[str, Package], pkg: Package) -> bool:
    """vLLM of vllm-ascend's release, and not a CUDA build."""
    ours = chosen.get("vllm_ascend")
    return _empty_build(pkg) and (ours is None or release_of(pkg.version) == release_of(ours.version))


def vllm_rules(selection: Selection, spec: BuildSpec, rules: dict) -> List[Problem]:
    ours, vllm, toolkit = one(selection, "vllm_ascend"), one(selection, "vllm"), one(selection, "toolkit")
    found: List[Problem] = []
    if vllm and not _empty_build(vllm):
        found.append(problem("error", VLLM_CUDA_WHEEL, f"{vllm.file} is a vLLM wheel from the index: a CUDA build "
                             "(it pulls torch's CUDA build and nvidia-* into the image)",
                             f"put vLLM's source distribution vllm-{vllm.version.split('+')[0]}.tar.gz here instead "
                             "(`ascend-build fetch --target vllm` brings it)", vllm.file))
    if ours and vllm and release_of(vllm.version) != release_of(ours.version):
        found.append(problem("error", VLLM_MISMATCH, f"{ours.file} (vllm-ascend {ours.version}) runs on vLLM "
                             f"{base_release(ours.version)}, but {vllm.file} is vLLM {vllm.version}",
                             f"use vllm-{base_release(ours.version)}.tar.gz", vllm.file))
    row = next((r for v, r in rows().items() if ours and same_version(v, ours.version)), None)
    if ours and toolkit and row and not same_version(row["cann"], toolkit.version):
        found.append(problem("error", VLLM_ASCEND_CANN_MISMATCH, f"{ours.file}: vllm-ascend {ours.version} is made "
                             f"for CANN {row['cann']}, not CANN {toolkit.version} ({toolkit.file})",
                             f"use the CANN {row['cann']} packages, or the vllm-ascend release made for CANN "
                             f"{toolkit.version}", ours.file))
    if ours and row is None:
        newest = max(rows(), key=version_key, default="none")
        found.append(problem("warning", VLLM_ASCEND_UNKNOWN, f"vllm-ascend {ours.version} ({ours.file}) is not in the "
                             f"table of releases ascend-build knows (newest: {newest}), so its CANN is not checked",
                             "check the vllm-ascend release notes; when the pair is known good, add it to "
                             "components/vllm.yaml", ours.file))
    return found


def release_for(given: Optional[str], cann: Optional[str]) -> str:
    """`given`, else the newest vllm-ascend made for the CANN release `cann`."""
    if given:
        return given
    fits = [v for v, row in rows().items() if cann and same_version(row["cann"], cann)]
    if not fits:
        what = f"no vllm-ascend in the table is made for CANN {cann}" if cann else "no CANN toolkit found in the folder"
        raise ConfigError(f"cannot choose a vllm-ascend release: {what}",
                          fix="name it: --release vllm_ascend=VERSION (see the vllm-ascend release notes)")
    return max(fits, key=version_key)


def index_wants(view: FolderView) -> IndexWants:
    """The folder's vllm-ascend (else the release named, else the newest for its CANN) and the
    vLLM source distribution of its release."""
    ours = view.one("vllm_ascend")
    toolkit = view.one("toolkit")
    release = ours.version if ours else release_for(view.releases.get("vllm_ascend"), toolkit.version if toolkit else None)
    lines = () if ours else (f"vllm-ascend=={release}",)
    vllm = view.one("vllm")
    wanted = f"vllm=={base_release(release)}"
    said = [f"vllm-ascend {release}" + (f" (the folder's {ours.file})" if ours else "")]
    said += [f"vLLM: the folder's {vllm.file}" if vllm else f"vLLM {wanted.split('==')[1]} from its source distribution"]
    return IndexWants(requirements=lines, kept=(ours,) if ours else (), slots=("vllm_ascend", "vllm"),
                      said=tuple(said), sdists=() if vllm else (wanted,))


def soc_version(chip: Optional[str]) -> str:
    """The SOC_VERSION a build of vllm-ascend's kernels for `chip` takes."""
    found = (component_data("vllm").get("soc_version") or {}).get(chip or "")
    if not found:
        raise ConfigError(f"vllm-ascend from its source compiles kernels for one chip, and {chip or 'no chip'} has no "
                          "SOC_VERSION known", fix="set `chip:` in ascend-build.yaml (910b, A3, 310p or 950), or use "
                                                   "the vllm-ascend wheel")
    return str(found)


def build_env(pkg: Package, vllm: Package, ours: Package, chip: Optional[str]) -> List[str]:
    """NAME=VALUE words of an sdist's build: vLLM for no device, vllm-ascend for the chip."""
    if pkg is vllm:
        return [f"{k}={v}" for k, v in BUILD.env]
    if pkg is ours:
        return [f"{k}={v}" for k, v in ASCEND_BUILD.env] + [f"SOC_VERSION={soc_version(chip)}"]
    return []


def plan(inputs: PlanInputs, parent: str) -> StagePlan:
    ours, vllm = inputs.one("vllm_ascend"), inputs.one("vllm")
    wheels = [p for p in inputs.pip_index("vllm") if p.format == "wheel"]
    build = [p for p in inputs.build_wheels("vllm") if p not in inputs.pip_index("vllm")]     # for the builds only
    sdists = ([p for p in (vllm, ours) if p.format == "sdist"]
              + [p for p in inputs.pip_index("vllm") if p.format == "sdist"])
    tools_add, tools_drop = inputs.build_tools()
    values = dict(pip_source=inputs.pip_source(), tools_add=tools_add, tools_drop=tools_drop,
                  vllm_ascend=ours.name if ours.format == "wheel" else None,
                  sdists=[{"file": p.name, "env": build_env(p, vllm, ours, inputs.selection.chip),
                           "build": inputs.selection.build_requires.get(p.file, [])} for p in sdists],
                  wheels=[p.name for p in ([vllm] if vllm.format == "wheel" else []) + wheels])
    scripts = {mode: render_script("vllm.sh.j2", mode=mode, built=built, **values)
               for mode, built in (("all", BUILT_WHEELS), ("build", BUILDER_WHEELS), ("install", BUILT_WHEELS))}
    return StagePlan(name="vllm", parent=parent, files=[ours, vllm, *inputs.pip_index("vllm"), *build], script=scripts["all"],
                     labels=package_labels([ours, vllm]), build_files=[*sdists, *inputs.build_wheels("vllm")],
                     build_only=[*sdists, *build],
                     build_script=scripts["build"] if sdists else "", install_script=scripts["install"])


COMPONENT = Component(
    stage="vllm",
    parent="pta",
    slots=(
        Slot("vllm_ascend", required=True, python=True, wheels=(("vllm-ascend", "vllm_ascend"),), download=DOWNLOAD,
             expected="vllm_ascend-<version>-cp<XY>-cp<XY>-manylinux_2_34_<arch>.whl (or its sdist: kernels built for `chip:`)"),
        Slot("vllm", required=True, wheels=(("vllm", "vllm"),), fits=_paired,
             expected="vllm-<version>.tar.gz (vLLM's source: its wheels on the index are CUDA builds)",
             download="`ascend-build fetch --target vllm` (or `pip download --no-deps --no-binary=:all: vllm==<version>`)"),
    ),
    choose_order=("vllm_ascend", "vllm"),            # vLLM follows vllm-ascend's release
    needs=("torch_npu", "nnal"),
    source_builds={"vllm": BUILD, "vllm-ascend": ASCEND_BUILD},
    elsewhere={str(k): str(v) for k, v in (component_data("vllm").get("elsewhere") or {}).items()},
    index_wants=index_wants,
    rules=(vllm_rules,),
    problems=PROBLEM_CODES,
    plan=plan,
    summary=("vllm_ascend", "vllm"),
    native_wheels=True,
    probes=(
        {"kind": "import", "slot": "vllm", "name": "import vllm", "module": "vllm", "versioned": True},
        {"kind": "import", "slot": "vllm-ascend", "name": "import vllm_ascend", "module": "vllm_ascend",
         "versioned": True, "runtime_user": True},
    ),
)
