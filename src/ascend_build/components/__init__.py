"""Stage building blocks. A component is one module: it declares its stage, slots (which are
required, the order they are chosen in, the file names expected), compatibility rules, what
`verify` probes, and turns the selection into one StagePlan (files it needs, install script,
the set_env.sh files its stage sources for its ENV, labels), and names the stage it builds on
(`parent`: the stages form a graph). A stack's version knowledge is a data file beside its module,
components/<stage>.yaml (component_data). The registry lists the components, one line each."""
import re
import shlex
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Callable, Dict, List, Optional, Tuple

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from .. import yamltext
from ..catalog.model import Package, Selection, StageSlots
from ..catalog.wheelmeta import read_metadata
from ..contract import component_label, template_values
from ..spec import BuildSpec
from ..templating import environment


@dataclass(frozen=True)
class SetEnv:
    """One step of what a stage sources after it installs: a shell line, and how plan shows it."""

    line: str
    shows: str


@dataclass
class StagePlan:
    name: str
    parent: str                                  # previous stage, or the base image for `base`
    files: List[Package] = field(default_factory=list)   # delivered to the install step, in order
    script: str = ""                             # install script; empty: no install step
    env: Dict[str, str] = field(default_factory=dict)
    set_env: List[SetEnv] = field(default_factory=list)  # sourced after the install; what it gives becomes ENV
    labels: Dict[str, str] = field(default_factory=dict)
    setup: List[str] = field(default_factory=list)       # shell commands of a plain RUN (base stage)
    extra_files: Dict[str, str] = field(default_factory=dict)  # more context files, e.g. scripts/profile.sh
    # its sdists built apart (sdist_stage.py, engines with RUN --mount): what that builder takes, the
    # script that builds them into /ab-built, and the install script that takes the wheels from there
    build_files: List[Package] = field(default_factory=list)
    build_only: List[Package] = field(default_factory=list)       # of `files`, what only the builder takes
    build_script: str = ""
    install_script: str = ""


@dataclass(frozen=True)
class PlanInputs:
    """What a building block plans its stage from (everything it reads; blocks never reach elsewhere)."""

    spec: BuildSpec
    selection: Selection
    os_family: str
    abi: int
    overrides: Dict[str, str]                    # stage -> script text from install-scripts/
    system_packages: Tuple[str, ...] = ()        # what the chain's components need of the OS (the base stage installs it)

    @property
    def install_path(self) -> str:
        return self.spec.install_path.rstrip("/") or "/"

    def installer_options(self, component: str, **values) -> str:
        """The options of a component's .run installer (data.yaml `installers`), `--install-for-all`
        where it accepts it and the image has a runtime user, then the config's install_options;
        each shell-quoted."""
        info = data()["installers"][component]
        options = [fill(o, P=self.install_path, **values) for o in info["options"]]
        options += ["--install-for-all"] if info["for_all"] and self.spec.user else []
        options += list(self.spec.install_options.get(component, []))
        return " ".join(shlex.quote(o) for o in options)

    def build_tools(self) -> Tuple[str, str]:
        """Shell lines: install the C/C++ toolchain sdists are built with when the image lacks it
        (recording what was added in $AB_TOOLS_ADDED), and remove what that added."""
        family = data()["os_families"][self.os_family]
        tools = " ".join(shlex.quote(t) for t in family["build_tools"])
        has = fill(family["has"], pkg='"$pkg"')
        install = fill(family["install"], pkgs="$AB_TOOLS_ADDED")
        add = "\n".join((
            'AB_TOOLS_ADDED=""',
            f'for pkg in {tools}; do {has} || AB_TOOLS_ADDED="$AB_TOOLS_ADDED $pkg"; done',
            'if [ -n "$AB_TOOLS_ADDED" ]; then',
            '    ab_say "installing what building source distributions needs:$AB_TOOLS_ADDED"',
            f'    ({install}) || ab_fail "stage $AB_STAGE: cannot install$AB_TOOLS_ADDED (to build source '
            'distributions): use a base image that has them, or let the build reach the OS package mirror"',
            'fi'))
        drop = f'if [ -n "$AB_TOOLS_ADDED" ]; then {fill(family["remove"], pkgs="$AB_TOOLS_ADDED")}; fi'
        return add, drop

    def set_env(self, *names: str, **values) -> List[SetEnv]:
        """The steps of data.yaml `set_env` named, {P}, {home}, {abi} and `values` filled in."""
        values = {"P": self.install_path, "home": self.cann_home, "abi": self.abi, **values}
        return [set_env_step(data()["set_env"][name], values) for name in names]

    def toolkit_env(self) -> SetEnv:
        """How a stage loads CANN's environment: the toolkit's set_env.sh under the install path,
        or, for CANN installed with pip (ascend-cann-toolkit), the one in its package folder."""
        toolkit = self.one("toolkit")
        if toolkit is not None and toolkit.format == "wheel":
            return self.set_env("toolkit_pip", version=toolkit.version)[0]
        return self.set_env("toolkit")[0]

    @property
    def cann_home(self) -> str:
        """Where CANN's runtime is: `ascend-toolkit`, or `nnrt` / `nnae` for those packages (up to 8.3)."""
        toolkit = self.one("toolkit")
        return toolkit.component if toolkit and toolkit.component in ("nnrt", "nnae") else "ascend-toolkit"

    def one(self, slot: str) -> Optional[Package]:
        found = self.selection.find(slot)
        return found[0] if found else None

    def pip_index(self, stage: str) -> List[Package]:
        """The other wheels of the working directory the stage takes (pip's local index)."""
        return self.selection.pip_index.get(stage, [])

    def build_wheels(self, stage: str) -> List[Package]:
        """Those of them the builds of the stage's sdists need (installed apart, for the builds)."""
        return self.selection.build_index.get(stage, [])

    def pip_source(self) -> str:
        if self.spec.pip_index_url:
            trusted = f" --trusted-host {self.spec.pip_trusted_host}" if self.spec.pip_trusted_host else ""
            return f"--index-url {self.spec.pip_index_url}{trusted} --find-links $PKG_DIR"
        return "--no-index --find-links $PKG_DIR"


@lru_cache(maxsize=1)
def data() -> dict:
    return yamltext.load(resources.files(__package__).joinpath("data.yaml").read_text())


@lru_cache(maxsize=None)
def component_data(stage: str) -> dict:
    """A stack's own version knowledge, beside its module: components/<stage>.yaml."""
    return yamltext.load(resources.files(__package__).joinpath(f"{stage}.yaml").read_text())


def render_script(name: str, **values) -> str:
    """A script template of components/scripts/, with the image contract's paths as variables."""
    return environment().get_template(f"components/scripts/{name}").render(**{**template_values(), **values})


def fill(text: str, **values) -> str:
    """Replace {name} placeholders of data.yaml, leaving shell/Dockerfile `${VAR}` alone."""
    for key, value in values.items():
        text = text.replace("{%s}" % key, str(value))
    return text


def shell_word(text: str) -> str:
    """`text` as one shell word: `${NAME}` parts expand (to a path: no blanks), the rest is quoted."""
    parts = re.split(r"(\$\{[A-Za-z_][A-Za-z0-9_]*\})", text)
    return "".join(p if p.startswith("${") else shlex.quote(p) for p in parts if p)


def set_env_step(entry: dict, values: dict) -> SetEnv:
    """A set_env entry of data.yaml as a shell line: `source` a file (with `args`; `optional`: when
    present), `source_printed` the file a command prints, or `export` a variable to what the `shell`
    command prints."""
    if "export" in entry:
        return SetEnv(f'export {entry["export"]}=$({entry["shell"]})', f'{entry["export"]}=$({entry["shell"]})')
    if "source_printed" in entry:
        command = " ".join(shlex.quote(fill(word, **values)) for word in entry["source_printed"])
        return SetEnv(f'ab_source "$({command})"', f'{entry["shows"]} (the file `{command}` prints)')
    path, args = fill(entry["source"], **values), fill(entry.get("args", ""), **values)
    command = "ab_source_if" if entry.get("optional") else "ab_source"
    line = " ".join([command, shell_word(path), *([shlex.quote(args)] if args else [])])
    return SetEnv(line, " ".join([path, *([args] if args else [])]) + (" (when present)" if entry.get("optional") else ""))


def package_labels(packages: List[Package]) -> Dict[str, str]:
    labels = {}
    for pkg in packages:
        name = pkg.slot or pkg.component
        labels[component_label(name, "version")] = pkg.version
        labels[component_label(name, "file")] = pkg.name
        labels[component_label(name, "sha256")] = pkg.sha256 or ""
    return labels


@dataclass(frozen=True)
class FolderView:
    """What a component's `index_wants` reads: the folder's packages for the target (its arch and
    Python), the files chosen for the target's stages, the releases named on the command line
    (slot -> version, e.g. fetch --torch-npu), and what every stack shares (python_deps.yaml; a
    component's own data: component_data)."""

    packages: Tuple[Package, ...]
    selected: Tuple[Package, ...]
    releases: Dict[str, str]
    deps: dict

    def one(self, slot: str) -> Optional[Package]:
        found = [p for p in self.selected if p.slot == slot]
        return found[0] if found else None

    def pinned(self, distribution: str) -> Optional[str]:
        """The version of `distribution` a chosen wheel of the folder requires exactly (`==`), e.g.
        vllm-ascend's torch-npu: a release below follows it."""
        name = canonicalize_name(distribution)
        for pkg in self.selected:
            meta = read_metadata(pkg.path) if pkg.format == "wheel" else None
            for line in meta.requires if meta else ():
                try:
                    req = Requirement(line)
                except InvalidRequirement:
                    continue
                exact = [s.version for s in req.specifier if s.operator == "==" and "*" not in s.version]
                if canonicalize_name(req.name) == name and exact and not req.marker:
                    return exact[0]
        return None


@dataclass(frozen=True)
class IndexWants:
    """What a stage asks the package index for (`fetch`): PEP 508 lines, the folder's wheels the
    resolution takes as they are (`kept`) or leaves beside another release (`set_aside`), the slots
    it decides (their wheels in the folder are not asked again) and what to tell (`said`)."""

    requirements: Tuple[str, ...] = ()
    kept: Tuple[Package, ...] = ()
    set_aside: Tuple[Package, ...] = ()
    slots: Tuple[str, ...] = ()
    said: Tuple[str, ...] = ()
    sdists: Tuple[str, ...] = ()            # `name==version` of source distributions to download as they are


@dataclass(frozen=True, eq=False)
class Component(StageSlots):
    """A building block: what the catalog knows of its stage (StageSlots), how it plans the
    stage (`plan(inputs, parent)`), the slots named in the image's description, and the checks
    `verify` runs in an image that has its packages (see probe.py for the kinds)."""

    plan: Optional[Callable[[PlanInputs, str], StagePlan]] = None
    parent: Optional[str] = None          # the stage it builds on (None: the base image); stages form a graph
    index_wants: Optional[Callable[[FolderView], IndexWants]] = None    # what `fetch` asks the index for
    problems: Dict[str, str] = field(default_factory=dict)               # its rules' codes -> what each means
    # smoke tests on a real NPU that `verify` runs when the image has the slot's package and the
    # host has devices: (slot, name, python3 -c code)
    device_checks: Tuple[Tuple[str, str, str], ...] = ()
    summary: Tuple[str, ...] = ()
    probes: Tuple[dict, ...] = ()
    system_packages: Dict[str, Tuple[str, ...]] = field(default_factory=dict)   # OS family -> packages its stage needs
    elsewhere: Dict[str, str] = field(default_factory=dict)   # distribution -> where it is published, when not on the public index
    # its install script hands all its wheel files to ab_pip before it installs anything else (and
    # ab_pip -r only what they already satisfy): a build under QEMU may install them natively (native_install.py)
    native_wheels: bool = False
    # its installers pip-install wheels they bring (`python3 -m pip install W.whl`): a build under QEMU runs that
    # pip on the host's CPU while they run (native-pip.sh's python3 shim)
    installer_pip: bool = False
