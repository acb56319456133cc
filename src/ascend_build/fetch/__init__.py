"""`ascend-build fetch`: download into the working directory the public Python parts of a target
(what its stages ask the index for, requirements*.txt and the dependencies of the stages' own
wheels) as wheels for the target's arch, Python and glibc, so that `check` and `build` need no
network afterwards."""
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from .. import grammar
from ..catalog.compat import load_deps
from ..catalog.factcache import FactCache, with_binary_arches
from ..catalog.model import Selection, file_patterns
from ..catalog.nocuda import cpu_index, never_beside, refused
from ..catalog.sdist import read_sdist, requirements_besides, sdist_name
from ..catalog.scan import scan
from ..catalog.select import select
from ..components import FolderView
from ..components.registry import components
from ..errors import ConfigError, PackageError
from ..platforms import Target, glibc_of
from ..catalog.pythons import BasePython
from ..settings import Options, Settings, settings_for
from ..units import human_bytes
from .download import Client, Progress, download, present
from .pace import Limits
from .resolve import Indexes, IndexUnreachable, NoWheel, Wheel, resolve
from .sdists import find_sdist
from .wants import Wants, wants


@dataclass(frozen=True)
class FetchOptions:
    """What the command line says; None leaves it to the config (or the folder)."""

    target: Optional[str] = None
    platform: Optional[str] = None
    python: Optional[str] = None
    releases: Tuple[Tuple[str, str], ...] = ()     # (slot, version) named on the command line
    index_url: Optional[str] = None
    torch_index_url: Optional[str] = None
    extra_index_urls: Tuple[str, ...] = ()
    glibc: Optional[str] = None                    # e.g. 2.35; default: the base image's, read through an engine


@dataclass(frozen=True)
class FetchPlan:
    workdir: Path
    target: Target
    indexes: Indexes
    wants: Wants
    glibc_source: str = ""                         # where the target's glibc comes from
    never_beside: Dict[str, List[str]] = field(default_factory=dict)   # what the stages refuse beside theirs
    unreached: List[str] = field(default_factory=list)     # torch's CPU index, once it did not answer


@dataclass
class FetchResult:
    fetched: List[Path] = field(default_factory=list)
    present: List[Path] = field(default_factory=list)
    pending: List[Wheel] = field(default_factory=list)      # what a dry run would download
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


def _releases(given: Tuple[Tuple[str, str], ...]) -> Dict[str, str]:
    """The releases named on the command line, each a version."""
    for slot, version in given:
        try:
            Version(version)
        except InvalidVersion:
            raise ConfigError(f"--{slot.replace('_', '-')} {version!r} is not a version",
                              fix=f"e.g. --{slot.replace('_', '-')} 2.6.0.post5") from None
    return dict(given)


def _glibc(given: Optional[str], base: Optional[BasePython], default: str) -> Tuple[Tuple[int, int], str]:
    """The target's glibc and where it comes from: --glibc, else the base image's, else the default."""
    if given is not None:
        if not grammar.GLIBC.fullmatch(given):
            raise ConfigError(f"--glibc {given!r} is not a glibc version", fix="e.g. --glibc 2.35 (Ubuntu 22.04)")
        major, minor = given.split(".")
        return (int(major), int(minor)), "--glibc"
    if base is not None and base.glibc:
        return base.glibc, "read from the base image"
    why = f": {base.source}" if base is not None and base.source else ""
    return glibc_of(default), f"default (the base image's glibc was not read{why}; name it with --glibc)"


def plan_fetch(workdir: Path, options: FetchOptions,
               read_base: Callable[[Settings], Optional[BasePython]] = lambda settings: None) -> FetchPlan:
    """Decide the target, the indexes and the requirements; ConfigError for a bad option.
    `read_base` reads the base image's Python and glibc (None: not read)."""
    settings = settings_for(workdir, Options(target=options.target, platform=options.platform))
    base = read_base(settings)
    table = components()
    catalog = scan(settings.workdir, file_patterns(table))
    packages = with_binary_arches(catalog.packages, FactCache(settings.workdir))     # read, not saved
    selection = select(packages, settings.spec, table, settings.builtin_chain, settings.builtin_target,
                       settings.arch)
    deps = load_deps()
    glibc, glibc_source = _glibc(options.glibc, base, str(deps["manylinux"]))
    image = base.version if base is not None and base.read else None
    target = Target(python=_python(options.python or settings.spec.python or image, selection), arch=settings.arch,
                    glibc=glibc)
    indexes = Indexes(
        index_url=_url(options.index_url, "--index-url") or settings.spec.pip_index_url or deps["index_url"],
        torch_index_url=_url(options.torch_index_url, "--torch-index-url") or deps["torch_index_url"].get(target.arch),
        extra_index_urls=tuple(_url(u, "--extra-index-url") for u in options.extra_index_urls),
        find_links=tuple(sorted({str(Path(p.path).parent) for p in packages if p.format == "wheel"})))
    view = FolderView(packages=tuple(p for p in packages if p.arch in (None, target.arch)
                                     and p.python in (None, target.python)),
                      selected=tuple(selection.selected()), releases=_releases(options.releases), deps=deps)
    stages = [c for c in table if c.stage in settings.builtin_chain]
    asked = wants(stages, view)
    named = [line for c in stages for line in settings.spec.python_packages.get(c.stage, [])]
    asked = replace(asked, requirements=list(dict.fromkeys([*asked.requirements, *named])))
    return FetchPlan(settings.workdir.resolve(), target, indexes, asked, glibc_source, never_beside(stages))


def resolve_cpu_only(plan: FetchPlan, requirements: Sequence[str], note: Callable[[str], None] = lambda line: None,
                     left_out: Sequence[str] = ()) -> List[Wheel]:
    """The wheels of `requirements` for `plan`, none of them CUDA. When torch's CPU index cannot be
    reached, the main index alone is tried (its aarch64 torch is a CPU build up to 2.10), and a
    resolution that then holds CUDA distributions is refused naming the CPU index."""
    cpu = plan.indexes.torch_index_url
    if cpu in plan.unreached:
        return _cpu_only(plan, resolve(requirements, plan.target, replace(plan.indexes, torch_index_url=None), left_out), cpu)
    try:
        wheels, unreached = resolve(requirements, plan.target, plan.indexes, left_out), None
    except IndexUnreachable as exc:
        if not cpu or exc.url != cpu or cpu == plan.indexes.index_url:
            raise
        note(f"torch's CPU index {cpu} cannot be reached: trying {plan.indexes.index_url} alone "
             "(CUDA builds are refused)")
        plan.unreached.append(cpu)              # said once: the next resolutions go to the main index
        wheels, unreached = resolve(requirements, plan.target, replace(plan.indexes, torch_index_url=None), left_out), cpu
    return _cpu_only(plan, wheels, unreached)


def _cpu_only(plan: FetchPlan, wheels: List[Wheel], unreached: Optional[str]) -> List[Wheel]:
    """`wheels`, or an error naming the CUDA distributions among them (and the CPU index unreached)."""
    bad = refused([w.name for w in wheels], plan.never_beside)
    if bad:
        sizes = {canonicalize_name(w.name): w.size for w in wheels}
        listed = ", ".join(f"{n} ({human_bytes(sizes[n]) if sizes[n] is not None else 'size unknown'})" for n in bad)
        total = sum(sizes[n] or 0 for n in bad)
        why = f"torch's CPU index {unreached} cannot be reached" if unreached else \
            f"the resolution from {' and '.join(u for u in (plan.indexes.torch_index_url, plan.indexes.index_url) if u)}"
        raise PackageError(f"{why}, and the packages resolved for {plan.target.arch} hold CUDA distributions that "
                           f"never go into an Ascend image: {listed} ({human_bytes(total)}); nothing was downloaded",
                           fix=f"make torch's CPU build reachable ({cpu_index(plan.target.arch)}, or a mirror of it "
                               "with --torch-index-url), or pick releases whose torch has a CPU build on the index")
    return wheels


class _Sources:
    """The sdists a fetch takes (the stages' own, and a release the resolution needs that has no
    wheel at all): downloaded as they are (a dry run reads them in a folder of its own), what their
    wheels require joins the resolution, what building each needs is resolved apart (each builds in
    a venv of its own over the image: another protobuf than the image's is no conflict), without
    what they build against as the image has it (torch)."""

    def __init__(self, plan: FetchPlan, scratch: Path, on_wheel, limits: Limits, client: Client,
                 result: FetchResult, dry_run: bool):
        self.plan, self.scratch, self.on_wheel, self.limits, self.client = plan, scratch, on_wheel, limits, client
        self.result, self.dry_run = result, dry_run
        self.requires: List[str] = []
        self.builds: Dict[str, List[str]] = {}          # sdist file -> its build requirements

    def take(self, line: str, static: bool = False) -> None:
        """`static`: what its wheel requires must be what its PKG-INFO says (no component names a
        file for it): else no resolution could be trusted."""
        wanted = find_sdist(line, self.plan.indexes.index_url, self.client, self.limits)
        have = present(self.plan.workdir, wanted)
        if have is None:
            have = download(wanted, self.scratch if self.dry_run else self.plan.workdir, self.on_wheel(wanted),
                            self.limits, self.client)
            (self.result.pending if self.dry_run else self.result.fetched).append(wanted if self.dry_run else have)
            self.result.bytes += 0 if self.dry_run else have.stat().st_size
        else:
            self.result.present.append(have)
        self.read(have, static)

    def read(self, path: Path, static: bool = False) -> None:
        found = sdist_name(path.name)
        build = self.plan.wants.builds.get(found[0]) if found else None
        facts = read_sdist(path, build.requirements if build else None)
        if facts is None:
            raise PackageError(f"{path.name} is not a readable source distribution (no PKG-INFO)", fix="download it again")
        if static and not facts.static and not build:
            raise PackageError(f"{facts.name} {facts.version} has no wheel on the index, and its source distribution "
                               f"{path.name} does not state what it requires (dynamic metadata: only building it "
                               "would tell)", fix=f"build its wheel for the target (`pip wheel --no-deps {path.name}` "
                                                  "on such a machine) and put it into the folder")
        self.requires += requirements_besides(facts.requires, build.installed if build else ())
        self.builds[path.name] = requirements_besides(
            facts.build_requires, (*self.plan.wants.build_against, *(build.installed if build else ())))


MAX_SOURCE_ONLY = 8          # releases without any wheel taken as sdists in one fetch


def fetch(plan: FetchPlan, on_wheel: Callable[[Wheel], Progress] = lambda w: (lambda done, total: None),
          resolved: Callable[[List[Wheel]], None] = lambda wheels: None, limits: Limits = Limits(),
          note: Callable[[str], None] = lambda line: None, dry_run: bool = False) -> FetchResult:
    """Resolve `plan` and download every wheel the folder does not have yet, within `limits` (with
    `dry_run`, only list them in `result.pending`: nothing is written)."""
    result, client = FetchResult(), Client()
    with tempfile.TemporaryDirectory(prefix="ascend-build-sdists-") as scratch:
        sources = _Sources(plan, Path(scratch), on_wheel, limits, client, result, dry_run)
        for pkg in plan.wants.local_sdists:
            sources.read(pkg.path)
        for line in plan.wants.sdists:
            sources.take(line)
        wheels = _resolve_taking_sdists(plan, sources, note)
        for file, lines in sources.builds.items():
            try:
                wheels += [w for w in resolve_cpu_only(plan, lines, note) if w not in wheels]
            except NoWheel as err:
                raise PackageError(f"to build {file}: {err.message}", fix=err.fix) from None
    resolved(wheels)
    for wheel in wheels:
        have = present(plan.workdir, wheel)
        if have is not None:
            result.present.append(have)
            continue
        if dry_run:
            result.pending.append(wheel)
            continue
        path = download(wheel, plan.workdir, on_wheel(wheel), limits, client)
        result.fetched.append(path)
        result.bytes += path.stat().st_size
    return result


def _resolve_taking_sdists(plan: FetchPlan, sources: _Sources, note: Callable[[str], None]) -> List[Wheel]:
    """The runtime resolution; a release it needs that has no wheel at all (arctic-inference) comes
    as its sdist: read by us (uv builds nothing on this host), left out of the next try, what its
    wheel requires joins it."""
    left_out: List[str] = []
    while True:
        try:
            return resolve_cpu_only(plan, [*plan.wants.requirements, *sources.requires], note, left_out)
        except NoWheel as err:
            new = [(name, version) for name, version in err.pinned if name not in left_out]
            if not new or len(left_out) + len(new) > MAX_SOURCE_ONLY:
                raise _elsewhere(plan, err) from None
            for name, version in new:
                note(f"{name} {version} has no wheel: its source distribution is built in the image")
                sources.take(f"{name}=={version}", static=True)
                left_out.append(name)
        except PackageError as err:
            raise _elsewhere(plan, err) from None


def _elsewhere(plan: FetchPlan, err: PackageError) -> PackageError:
    """`err`, naming the index that has what the public one lacks (triton-ascend: Huawei's)."""
    where = [f"{name}: {place}" for name, place in plan.wants.elsewhere.items() if name in err.message]
    if not where or isinstance(err, IndexUnreachable):
        return err
    return PackageError(f"{err.message}. Not on the index fetch asked: {'; '.join(where)}",
                        fix="add that index: --extra-index-url URL")


def describe(plan: FetchPlan) -> Tuple[str, ...]:
    """One line each: the target, the indexes, the releases chosen."""
    lines = [f"target {plan.target.arch}, Python {plan.target.python}, glibc {plan.target.glibc[0]}.{plan.target.glibc[1]} "
             f"({plan.glibc_source or 'default'}): wheels up to {plan.target.manylinux}",
             f"index {plan.indexes.index_url}" + (f" (torch: {plan.indexes.torch_index_url})"
                                                  if plan.indexes.torch_index_url else "")]
    return tuple(lines) + plan.wants.said
