"""Stages the config adds (model code, vLLM-Ascend...): files from the working directory, a
script and environment."""
from typing import Dict

from ..catalog.model import Package
from ..spec import CustomStage
from ..contract import TOOL_DIR
from . import PlanInputs, StagePlan


def stage(inputs: PlanInputs, custom: CustomStage, files: Dict[str, Package]) -> StagePlan:
    script = "#!/bin/bash\n# Custom stage %s (from ascend-build.yaml)\nset -e\n. %s/lib.sh\n%s\n" % (
        custom.name, TOOL_DIR, custom.script.rstrip())
    return StagePlan(name=custom.name, parent=custom.parent, files=[files[f] for f in custom.files], script=script,
                     env=dict(custom.env))
