"""The stage chain: which stages, from base to a target, a build runs."""
from typing import List

from .components.registry import stage_names
from .errors import ConfigError
from .spec import BuildSpec


def stage_chain(spec: BuildSpec, target: str) -> List[str]:
    """Stage names from base to target: built-in stages minus skipped ones, then custom stages
    on the way to the target."""
    builtin = [s for s in stage_names() if s not in spec.skip]
    custom_by_name = {c.name: c for c in spec.stages}
    known = ", ".join(builtin + list(custom_by_name))
    if target in spec.skip:
        raise ConfigError(f"target {target!r} is skipped in ascend-build.yaml", fix=f"remove it from skip, or pick one of: {known}")
    customs: List[str] = []
    name = target
    while name in custom_by_name:
        if name in customs:
            raise ConfigError(f"custom stages form a loop through {name!r}", fix="give each custom stage an earlier parent")
        customs.insert(0, name)
        name = custom_by_name[name].parent
    if name not in builtin:
        raise ConfigError(f"unknown or skipped stage {name!r} (target {target!r})", fix=f"pick one of: {known}")
    return builtin[: builtin.index(name) + 1] + customs
