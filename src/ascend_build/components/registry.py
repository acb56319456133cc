"""The components in stage order: every table of stages and slots is derived from this list."""
from typing import List, Optional

from . import Component, base, cann, mindie, pta

COMPONENTS: List[Component] = [base.COMPONENT, cann.COMPONENT, pta.COMPONENT, mindie.COMPONENT]


def components() -> List[Component]:
    return list(COMPONENTS)


def register(component: Component) -> None:
    """Add a component after the others (its stage is then the last built-in one)."""
    COMPONENTS.append(component)


def stage_names() -> List[str]:
    return [c.stage for c in COMPONENTS]


def find(stage: str) -> Optional[Component]:
    return next((c for c in COMPONENTS if c.stage == stage), None)
