"""`ascend-build fetch`: download into the working directory the public Python parts of a target
(torch, torch_npu, their dependencies, CANN's Python dependencies, requirements*.txt and the
dependencies of the stages' own wheels) as wheels for the target's arch, Python and glibc, so that
`check` and `build` need no network afterwards."""
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, List, Optional, Tuple

from .. import grammar
from ..catalog.compat import load_deps, load_rules
from ..catalog.model import Selection, file_patterns
from ..catalog.scan import scan
from ..catalog.select import select
from ..components.registry import components
from ..errors import ConfigError
from ..settings import Options, resolve as resolve_settings
from .download import Client, Progress, download, present
from .pace import Limits
from .resolve import Indexes, Target, Wheel, resolve
from .wants import Wants, wants


@dataclass(frozen=True)
class FetchOptions:
    """What the command line says; None leaves it to the config (or the folder)."""

    target: Optional[str] = None
    platform: Optional[str] = None
    python: Optional[str] = None
    torch_npu: Optional[str] = None
    index_url: Optional[str] = None
    torch_index_url: Optional[str] = None


@dataclass(frozen=True)
class FetchPlan:
    workdir: Path
    target: Target
    indexes: Indexes
    wants: Wants


@dataclass
class FetchResult:
    fetched: List[Path] = field(default_factory=list)
    present: List[Path] = field(default_factory=list)
    bytes: int = 0


def _url(value: Optional[str], option: str) -> Optional[str]:
    if value is None:
        return None
    try:
        return grammar.url(value)
    except ValueError as exc:
        raise ConfigError(f"{option}: {exc}", fix="e.g. https://pypi.org/simple") from None


def _python(given: Optional[str], selection: Selection) -> str:
    if given is not None:
        if not grammar.PYTHON.fullmatch(given):
            raise ConfigError(f"--python {given!r} is not a Python version", fix="e.g. --python 3.11")
        return given
    if selection.python:
        return selection.python
    raise ConfigError("the image's Python is not known: no `python:` in ascend-build.yaml and no wheel names one",
                      fix="pass --python X.Y (the base image's python3), or set `python:` in ascend-build.yaml")


def plan_fetch(workdir: Path, options: FetchOptions) -> FetchPlan:
    """Decide the target, the indexes and the requirements; ConfigError for a bad option."""
    settings = resolve_settings(workdir, Options(target=options.target, platform=options.platform))
    table = components()
    catalog = scan(settings.workdir, file_patterns(table))
    selection = select(catalog.packages, settings.spec, table, settings.builtin_chain, settings.builtin_target,
                       settings.arch)
    toolkit = selection.find("toolkit")
    deps = load_deps()
    target = Target(arch=settings.arch, python=_python(options.python or settings.spec.python, selection),
                    manylinux=str(deps["manylinux"]))
    indexes = Indexes(
        index_url=_url(options.index_url, "--index-url") or settings.spec.pip_index_url or deps["index_url"],
        torch_index_url=_url(options.torch_index_url, "--torch-index-url") or deps["torch_index_url"].get(target.arch))
    wanted = wants(list(settings.builtin_chain), selection.selected(), toolkit[0].version if toolkit else None,
                   options.torch_npu, deps, load_rules())
    return FetchPlan(settings.workdir.resolve(), target, indexes, wanted)


def fetch(plan: FetchPlan, on_wheel: Callable[[Wheel], Progress] = lambda w: (lambda done, total: None),
          resolved: Callable[[List[Wheel]], None] = lambda wheels: None, limits: Limits = Limits()) -> FetchResult:
    """Resolve `plan` and download every wheel the folder does not have yet (within `limits`)."""
    wheels = resolve(plan.wants.requirements, plan.target, plan.indexes)
    resolved(wheels)
    result, client = FetchResult(), Client()
    for wheel in wheels:
        have = present(plan.workdir, wheel)
        if have is not None:
            result.present.append(have)
            continue
        path = download(wheel, plan.workdir, on_wheel(wheel), limits, client)
        result.fetched.append(path)
        result.bytes += path.stat().st_size
    return result


def describe(plan: FetchPlan) -> Tuple[str, ...]:
    """One line each: the target, the indexes, the releases chosen."""
    lines = [f"target {plan.target.arch}, Python {plan.target.python}, manylinux_{plan.target.manylinux}",
             f"index {plan.indexes.index_url}" + (f" (torch: {plan.indexes.torch_index_url})"
                                                  if plan.indexes.torch_index_url else "")]
    if plan.wants.cann:
        lines.append(f"CANN {plan.wants.cann}" + (f", torch_npu {plan.wants.torch_npu}" if plan.wants.torch_npu else ""))
    elif plan.wants.torch_npu:
        lines.append(f"torch_npu {plan.wants.torch_npu}")
    return tuple(lines)
