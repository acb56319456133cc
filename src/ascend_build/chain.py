"""The stage chain: the stages a build runs, from base to the target, found by walking the stage
graph up from the target (each component and each custom stage names its parent). Skipped stages
are stepped over (their child builds on their parent). Names are checked here against the
registry: `skip` names components, custom stages may not take a component's name (nor a helper
stage's), python_packages
names stages that install Python packages."""
from typing import Dict, List, Optional

from .components.registry import parents, python_stages
from .contract import NATIVE_SUFFIX, SCHEME_STAGE, SDISTS_SUFFIX, WARM_STAGE, helper_stage
from .errors import ConfigError
from .spec import BuildSpec


def stage_graph(spec: BuildSpec) -> Dict[str, Optional[str]]:
    """stage -> parent for every component and custom stage; ConfigError for a name the registry
    does not allow."""
    builtin = parents()
    taken = [c.name for c in spec.stages if c.name in builtin]
    if taken:
        raise ConfigError(f"ascend-build.yaml: custom stage {taken[0]!r} takes the name of a built-in stage",
                          fix=f"give it another name (built-in stages: {', '.join(builtin)})")
    helpers = [c.name for c in spec.stages if helper_stage(c.name)]
    if helpers:
        raise ConfigError(f"ascend-build.yaml: custom stage {helpers[0]!r} takes a name the build gives its helper stages",
                          fix=f"give it another name (not {SCHEME_STAGE}, {WARM_STAGE}, nor ending in {NATIVE_SUFFIX} "
                              f"or {SDISTS_SUFFIX})")
    skippable = [s for s, parent in builtin.items() if parent is not None]
    bad = [s for s in spec.skip if s not in skippable]
    if bad:
        raise ConfigError(f"ascend-build.yaml: cannot skip {bad}: only {skippable} can be skipped",
                          fix="remove it from skip (custom stages are left out by not naming them)")
    pythons = python_stages()
    bad = sorted(s for s in spec.python_packages if s not in pythons)
    if bad:
        raise ConfigError(f"ascend-build.yaml: python_packages names {bad}, which install no Python packages",
                          fix=f"name one of {pythons}")
    return {**builtin, **{c.name: c.parent for c in spec.stages}}


def stage_chain(spec: BuildSpec, target: str) -> List[str]:
    """Stage names from base to target along the graph, skipped stages left out."""
    graph = stage_graph(spec)
    known = ", ".join(s for s in graph if s not in spec.skip)
    if target in spec.skip:
        raise ConfigError(f"target {target!r} is skipped in ascend-build.yaml", fix=f"remove it from skip, or pick one of: {known}")
    if target not in graph:
        raise ConfigError(f"unknown stage {target!r}", fix=f"pick one of: {known}")
    chain: List[str] = []
    seen: List[str] = []
    name: Optional[str] = target
    while name is not None:
        if name in seen:
            raise ConfigError(f"custom stages form a loop through {name!r}", fix="give each custom stage an earlier parent")
        if name not in graph:
            raise ConfigError(f"unknown stage {name!r} (the parent of {seen[-1]!r})", fix=f"pick one of: {known}")
        seen.append(name)
        if name not in spec.skip:
            chain.insert(0, name)
        name = graph[name]
    return chain
