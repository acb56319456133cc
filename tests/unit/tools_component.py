"""A component that lives outside the package: a `tools` stage on cann (the middle of the graph), with its own packages
(a tarball by file-name pattern in a required slot, and a helper wheel of the tarball's release that `fetch` asks the
index for), script, ENV, labels, compatibility rule and verify probes. test_components.py registers it in its process;
tests/e2e/with_tools.py in the command's child process (test_tools_component_e2e.py: check, fetch, plan, build, verify)."""
from ascend_build.catalog.model import Problem, Slot
from ascend_build.components import Component, FolderView, IndexWants, PlanInputs, StagePlan, package_labels
from ascend_build.contract import TOOL_DIR

PATTERN = (r"Ascend-tools_(?P<version>\d[^_]*?)_linux-(?P<arch>aarch64|x86_64)\.tar\.gz", "tools", "tar.gz")
HELPER = "ascend-tools-py"                 # the helper wheel's distribution, released with the tarball


def plan(inputs: PlanInputs, parent: str) -> StagePlan:
    tools, helper = inputs.one("tools"), inputs.one("tools_py")
    home = f"{inputs.install_path}/tools"
    lines = ["#!/bin/bash", "set -e", f". {TOOL_DIR}/lib.sh", f"echo installing {tools.name}",
             f'mkdir -p {home} && tar -xzf "$PKG_DIR"/{tools.name} -C {home}']
    lines += [f'ab_pip "$PKG_DIR"/{helper.name}'] if helper else []
    files = [p for p in (tools, helper) if p]
    return StagePlan(name="tools", parent=parent, files=files + inputs.pip_index("tools"), script="\n".join(lines) + "\n",
                     env={"TOOLS_HOME": home}, labels=package_labels(files))


def index_wants(view: FolderView) -> IndexWants:
    """The helper of the folder's tools release, unless the folder has a helper wheel."""
    tools = view.one("tools")
    if tools is None or any(p.slot == "tools_py" for p in view.packages):
        return IndexWants()
    return IndexWants(requirements=(f"{HELPER}=={tools.version}",), slots=("tools_py",),
                      said=(f"tools {tools.version} (its helper {HELPER})",))


def rule(selection, spec, table):
    return [Problem(level="warning", code="tools-note", message=f"tools ride on {len(selection.selected())} packages")]


COMPONENT = Component(
    stage="tools", parent="cann", rules=(rule,), plan=plan, index_wants=index_wants,
    slots=(Slot("tools", required=True, expected="Ascend-tools_<version>_linux-<arch>.tar.gz", patterns=(PATTERN,)),
           Slot("tools_py", python=True, wheels=((HELPER, "tools_py"),), expected="ascend_tools_py-<version>-py3-none-any.whl",
                fits=lambda chosen, pkg: "tools" not in chosen or pkg.version == chosen["tools"].version)),
    probes=({"kind": "env-dir", "slot": "tools", "name": "tools home set", "var": "TOOLS_HOME"},
            {"kind": "import", "slot": "tools-py", "name": "import ascend_tools_py", "module": "ascend_tools_py",
             "versioned": True}),
)
