"""A component that lives outside the package: a `tools` stage on cann (the middle of the graph), with its own package
(file-name pattern, required slot), script, ENV, label, compatibility rule and verify probe.
test_components.py registers it."""
from ascend_build.catalog.model import Problem, Slot
from ascend_build.components import Component, PlanInputs, StagePlan, package_labels

PATTERN = (r"Ascend-tools_(?P<version>\d[^_]*?)_linux-(?P<arch>aarch64|x86_64)\.tar\.gz", "tools", "tar.gz")


def plan(inputs: PlanInputs, parent: str) -> StagePlan:
    tools = inputs.one("tools")
    return StagePlan(name="tools", parent=parent, files=[tools], script=f"#!/bin/bash\necho installing {tools.name}\n",
                     env={"TOOLS_HOME": f"{inputs.install_path}/tools"}, labels=package_labels([tools]))


def rule(selection, spec, table):
    return [Problem(level="warning", code="tools-note", message=f"tools ride on {len(selection.selected())} packages")]


COMPONENT = Component(
    stage="tools", parent="cann", rules=(rule,), plan=plan,
    slots=(Slot("tools", required=True, expected="Ascend-tools_<version>_linux-<arch>.tar.gz", patterns=(PATTERN,)),),
    probes=({"kind": "env-dir", "slot": "tools", "name": "tools home set", "var": "TOOLS_HOME"},),
)
