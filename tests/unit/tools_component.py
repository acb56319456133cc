"""A component that lives outside the package: a `tools` stage after mindie, with its own script,
ENV, label, compatibility rule and verify probe. test_components.py registers it."""
from ascend_build.catalog.model import Problem
from ascend_build.components import Component, Context, StagePlan
from ascend_build.contract import component_label


def plan(ctx: Context, parent: str) -> StagePlan:
    return StagePlan(name="tools", parent=parent, script="#!/bin/bash\necho installing tools\n",
                     env={"TOOLS_HOME": f"{ctx.install_path}/tools"}, labels={component_label("tools", "version"): "1.0"})


def rule(selection, spec, table):
    return [Problem(level="warning", code="tools-note", message=f"tools ride on {len(selection.selected())} packages")]


COMPONENT = Component(
    stage="tools", rules=(rule,), plan=plan,
    probes=({"kind": "env-dir", "slot": "tools", "name": "tools home set", "var": "TOOLS_HOME"},),
)
