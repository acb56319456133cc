"""The components: one registry line each. Each names the stage it builds on (`parent`), so the
stages form a graph that chain.py walks from a target up to `base`; the order of this list is
only the order stages are listed in (help, the catalog's tables)."""
from typing import Dict, List, Optional

from ..catalog.problems import PROBLEM_CODES
from . import Component, base, cann, mindie, mindspore, pta, vllm

COMPONENTS: List[Component] = [base.COMPONENT, cann.COMPONENT, pta.COMPONENT, mindie.COMPONENT, mindspore.COMPONENT, vllm.COMPONENT]


def components() -> List[Component]:
    return list(COMPONENTS)


def register(component: Component) -> None:
    """Add a component (its `parent` says where it stands in the graph)."""
    COMPONENTS.append(component)


def stage_names() -> List[str]:
    return [c.stage for c in COMPONENTS]


def parents() -> Dict[str, Optional[str]]:
    """stage -> the stage it builds on (None for base)."""
    return {c.stage: c.parent for c in COMPONENTS}


def python_stages() -> List[str]:
    """The stages that install Python packages (a slot of wheels): where python_packages may go."""
    return [c.stage for c in COMPONENTS if any(s.python for s in c.slots)]


def problem_codes() -> Dict[str, str]:
    """Every problem code `check` can report: its mechanics' and each component's rules'."""
    return {**PROBLEM_CODES, **{code: what for c in COMPONENTS for code, what in c.problems.items()}}


def find(stage: str) -> Optional[Component]:
    return next((c for c in COMPONENTS if c.stage == stage), None)
