"""The mindspore stage (on cann): the MindSpore wheel and the wheels it needs. Which CANN it fits is
read from the wheel where it says (its run_check's list of CANN releases, the CANN its custom
operators were compiled with), else from mindspore.yaml; `fetch` takes the folder's wheel, else
`--release mindspore=X`, else the newest listed for the folder's CANN."""
import ast
import zipfile
from functools import lru_cache
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from ..catalog.compat import one, problem
from ..catalog.model import Package, Problem, Selection, Slot
from ..catalog.versions import same_version, version_key
from ..errors import ConfigError
from ..spec import BuildSpec
from . import Component, FolderView, IndexWants, PlanInputs, StagePlan, component_data, package_labels, render_script

MINDSPORE_CANN_MISMATCH = "mindspore-cann-mismatch"
MINDSPORE_CANN_UNKNOWN = "mindspore-cann-unknown"
PROBLEM_CODES = {
    MINDSPORE_CANN_MISMATCH: "error: the MindSpore wheel is made for other CANN releases than the toolkit's",
    MINDSPORE_CANN_UNKNOWN: "warning: MindSpore / CANN combination not known (the wheel does not say, nor the table)",
}
CHECKER = "mindspore/run_check/_check_version.py"          # AscendEnvChecker: self.version = ["8.5", ...]
COMPILED = "mindspore/lib/plugin/ascend/custom_ascendc_910b/version.info"   # custom_opp_compiler_version=9.1.0
MAX_MEMBER = 1 << 20
DOWNLOAD = "https://www.mindspore.cn/install (or `pip download --no-deps --only-binary=:all: mindspore==<version>`)"


def table() -> Dict[str, List[str]]:
    """CANN release -> the MindSpore releases made for it."""
    return {str(k): [str(v) for v in row] for k, row in (component_data("mindspore").get("cann_mindspore") or {}).items()}


def _member(zf: zipfile.ZipFile, name: str) -> Optional[str]:
    try:
        info = zf.getinfo(name)
    except KeyError:
        return None
    return zf.read(info).decode("utf-8", "replace") if info.file_size <= MAX_MEMBER else None


def accepted_cann(text: Optional[str]) -> Tuple[str, ...]:
    """The CANN releases (X.Y) run_check's AscendEnvChecker accepts: its `self.version = [...]`."""
    try:
        tree = ast.parse(text or "")
    except (SyntaxError, ValueError):
        return ()
    for cls in (n for n in ast.walk(tree) if isinstance(n, ast.ClassDef) and n.name == "AscendEnvChecker"):
        for node in ast.walk(cls):
            if (isinstance(node, ast.Assign) and isinstance(node.value, ast.List)
                    and any(isinstance(t, ast.Attribute) and t.attr == "version" for t in node.targets)):
                return tuple(e.value for e in node.value.elts if isinstance(e, ast.Constant) and isinstance(e.value, str))
    return ()


@lru_cache(maxsize=16)
def wheel_says(path: Path, size: Optional[int]) -> Tuple[Tuple[str, ...], Optional[str]]:
    """(the CANN releases X.Y the wheel accepts, the CANN its custom operators were compiled with)."""
    try:
        with zipfile.ZipFile(path) as zf:
            checker, compiled = _member(zf, CHECKER), _member(zf, COMPILED)
    except (OSError, zipfile.BadZipFile, ValueError, RuntimeError, NotImplementedError):
        return (), None
    version = next((line.split("=", 1)[1].strip() for line in (compiled or "").splitlines() if "=" in line), None)
    return accepted_cann(checker), version or None


def _x_y(version: str) -> str:
    return ".".join(version.split(".")[:2])


def mindspore_cann(toolkit: Optional[Package], ms: Optional[Package], rows: Dict[str, List[str]]) -> List[Problem]:
    if not toolkit or not ms:
        return []
    accepted, compiled = wheel_says(ms.path, ms.size)
    cann = toolkit.version
    if accepted:
        if _x_y(cann) in accepted:
            return []
        return [problem("error", MINDSPORE_CANN_MISMATCH, f"{ms.file} (MindSpore {ms.version}) accepts CANN "
                        f"{', '.join(accepted)} (its run_check{', custom operators built with ' + compiled if compiled else ''}), "
                        f"not CANN {cann} ({toolkit.file})", f"use the CANN {compiled or accepted[-1]} packages, or the "
                        f"MindSpore release made for CANN {cann}", ms.file)]
    row = next((v for k, v in rows.items() if same_version(k, cann)), None)
    if row is not None and any(same_version(v, ms.version) for v in row):
        return []
    listed_for = [k for k, v in rows.items() if any(same_version(n, ms.version) for n in v)]
    if listed_for:
        return [problem("error", MINDSPORE_CANN_MISMATCH, f"{ms.file}: MindSpore {ms.version} is made for CANN "
                        f"{', '.join(listed_for)}, not for CANN {cann} ({toolkit.file})",
                        f"with CANN {cann} use MindSpore {' or '.join(row or ['(none known)'])}; or use the CANN "
                        f"{listed_for[-1]} packages", ms.file)]
    return [problem("warning", MINDSPORE_CANN_UNKNOWN, f"MindSpore {ms.version} ({ms.file}) with CANN {cann} is not a "
                    "known pair (the wheel does not list its CANN releases)", "check https://www.mindspore.cn/install; "
                    "when the pair is known good, add it to components/mindspore.yaml", ms.file)]


def mindspore_rules(selection: Selection, spec: BuildSpec, rules: dict) -> List[Problem]:
    return mindspore_cann(one(selection, "toolkit"), one(selection, "mindspore"), table())


def release_for(given: Optional[str], cann: Optional[str], rows: Dict[str, List[str]]) -> str:
    """`given`, else the newest MindSpore listed for the CANN release `cann`."""
    if given:
        return given
    row = next((v for k, v in rows.items() if cann and same_version(k, cann)), None)
    if not row:
        what = f"CANN {cann} has no MindSpore release in the table" if cann else "no CANN toolkit found in the folder"
        raise ConfigError(f"cannot choose a MindSpore release: {what}",
                          fix="name it: --release mindspore=VERSION (see https://www.mindspore.cn/install)")
    return max(row, key=version_key)


def index_wants(view: FolderView) -> IndexWants:
    """The folder's MindSpore wheel (its dependencies resolve as any wheel's), else the release named
    or the newest made for the folder's CANN."""
    here = view.one("mindspore")
    if here is not None:
        return IndexWants(said=(f"the folder's {here.file} decides the MindSpore release",))
    toolkit = view.one("toolkit")
    release = release_for(view.releases.get("mindspore"), toolkit.version if toolkit else None, table())
    return IndexWants(requirements=(f"mindspore=={release}",), slots=("mindspore",), said=(f"MindSpore {release}",))


def plan(inputs: PlanInputs, parent: str) -> StagePlan:
    ms = inputs.one("mindspore")
    wheels = [p for p in inputs.pip_index("mindspore") if p.format == "wheel"]
    script = render_script("mindspore.sh.j2", pip_source=inputs.pip_source(), mindspore=ms.name,
                           wheels=[p.name for p in wheels])
    return StagePlan(name="mindspore", parent=parent, files=[ms, *inputs.pip_index("mindspore")], script=script,
                     labels=package_labels([ms]))


COMPONENT = Component(
    stage="mindspore",
    parent="cann",
    slots=(
        Slot("mindspore", required=True, python=True, wheels=(("mindspore", "mindspore"),), download=DOWNLOAD,
             expected="mindspore-<version>-cp<XY>-cp<XY>-<platform>.whl (aarch64: mindspore-<version>-cp<XY>-none-any.whl)"),
    ),
    index_wants=index_wants,
    rules=(mindspore_rules,),
    problems=PROBLEM_CODES,
    plan=plan,
    summary=("mindspore",),
    native_wheels=True,
    system_packages={"debian": ("libgomp1",), "openeuler": ("libgomp",)},     # its libraries link libgomp.so.1
    device_checks=(("mindspore", "tensor on the NPU", "import mindspore as ms; ms.set_device('Ascend'); "
                    "x = ms.Tensor([[1.0, 2.0]]); print((x + x).asnumpy())"),),
    probes=(
        {"kind": "import", "slot": "mindspore", "name": "import mindspore", "module": "mindspore", "versioned": True,
         "runtime_user": True},
    ),
)
