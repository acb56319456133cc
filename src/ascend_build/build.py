"""`ascend-build build`: settings -> plan -> base image -> serve -> engine -> report. A stage
whose set_env.sh files have not been captured for its inputs yet is built first on its own and
sourced in a throw-away container (stage_env.py); the image is then one engine build.
A context manager owns cleanup: whatever happens, the server stops, the engine process ends
and this run's folder (build context, URL secret) is removed. Every write to the state folder
goes through statefiles.py: after the image is built, a record that cannot be written is a
warning, never a failure."""
import contextlib
import json
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Dict, List, Optional, Protocol, Tuple

from . import native_install
from .build_context import write_context
from .contract import URL_ARG, URL_ARG_PREFIX, URL_SECRET
from .engines.base import BuildRequest, Engine, LogLine, StageEvent
from .errors import BuildError, OutputError, PortInUse
from .plan import Plan, default_tag, plan_for
from .render import context_files, dockerfile
from .report import build_report
from .server import PackageServer, Transfer
from .platforms import PLATFORMS, normalise_arch
from .settings import Settings
from .stage_env import CACHE_DIR, EnvStore, capture_in, known_env
from .timings import Timings
from .statefiles import guarded, remove_quietly, state_error, write_state
from .workdir import Run, State

PROXY_VARS = ("http_proxy", "https_proxy", "ftp_proxy", "all_proxy", "no_proxy")
DEFAULT_PORT = 3000


class BuildView(Protocol):
    """What the build tells the person running it (the CLI renders it)."""

    def info(self, text: str) -> None: ...
    def stages(self, names: List[str], serve_bytes: int) -> None: ...
    def event(self, event: StageEvent) -> None: ...
    def log(self, line: str) -> None: ...
    def transfer(self, transfer: Transfer) -> None: ...


@dataclass(frozen=True)
class BuildOptions:
    """What only `build` needs besides the settings."""

    tag: Optional[str] = None
    port: Optional[int] = None            # None: DEFAULT_PORT, or a free one when it is busy
    no_cache: bool = False                 # a new cache epoch: every stage is built again, once
    pull: str = "missing"                  # missing | always | never
    engine_reason: str = ""                # why the settings' engine was chosen
    cache_from: Tuple[str, ...] = ()
    cache_to: Optional[str] = None


def ensure_base_image(engine: Engine, image: str, pull: str, view: BuildView, arch: str) -> dict:
    """The base image's inspect record for `arch`, pulled first when `pull` says so or when the
    store holds it for another arch (a manifest list such as ubuntu:22.04 has an image per arch,
    the store one per name): then that arch's entry is pulled."""
    found = engine.find_image(image)
    other = found is not None and normalise_arch(found.get("Architecture")) not in (None, arch)
    if found is not None and pull != "always" and not other:
        return found
    if pull == "never":
        if found is None:
            raise BuildError(f"base image {image} is not present and --pull never was given", fix=engine.load_hint(image))
        check_base_arch(found, image, arch)
    platform = PLATFORMS[arch]
    view.info(f"pulling base image {image} for {platform}")
    pulled = engine.pull(image, platform)
    if pulled.returncode != 0 and (found is None or other):
        why = (pulled.stderr.strip().splitlines() or [f"exit status {pulled.returncode}"])[-1][-300:]
        if found is None:
            raise BuildError(f"base image {image} is not present and could not be pulled: {why}",
                             fix=engine.load_hint(image))
        raise BuildError(f"base image {image} is here for {normalise_arch(found.get('Architecture'))} only, and its "
                         f"{platform} image could not be pulled: {why}",
                         fix=f"give a base image that has {platform} (a manifest list with it, or one for {arch}): "
                             f"--base-image IMAGE, or `base_images: {{{arch}: IMAGE}}` in ascend-build.yaml")
    base = engine.inspect(image)
    check_base_arch(base, image, arch)
    return base


def image_layers(engine: Engine, state: State, tag: str, image_id: str, warn: Callable[[str], None]) -> List[dict]:
    """The image's layers; the engine's history is asked only when the image is not the one the
    last build reported (a no-change rebuild makes the same image)."""
    try:
        last = json.loads(state.layers.read_text())
        if last["image_id"] == image_id and isinstance(last["layers"], list):
            return last["layers"]
    except (OSError, ValueError, KeyError, TypeError):
        pass
    layers = engine.layers(tag)
    try:
        write_state(state.layers, json.dumps({"image_id": image_id, "layers": layers}))
    except OutputError as err:     # the image is built: a record that cannot be kept is no failure
        warn(f"{err.message}: the layers are read from the engine again next time")
    return layers


def check_base_arch(base: dict, image: str, arch: str) -> None:
    """One clear error before the build when the base image is for another arch."""
    found = normalise_arch(base.get("Architecture"))
    if found and found != arch:
        raise BuildError(f"base image {image} is for {found}, but the build is for {arch}",
                         fix=f"give a base image for {arch}: --base-image IMAGE, or `base_images: {{{arch}: IMAGE}}` in ascend-build.yaml")


def proxy_args(server_host: Optional[str]) -> Dict[str, str]:
    """Proxy variables of the user's environment pass through as build arguments (docker and
    podman keep these out of the image and its history); the package server is never proxied."""
    args = {}
    for name in PROXY_VARS:
        for key in (name, name.upper()):
            if os.environ.get(key):
                args[key] = os.environ[key]
    if args and server_host:
        for key in ("no_proxy", "NO_PROXY"):
            args[key] = ",".join(filter(None, [args.get(key), server_host]))
    return args


@contextlib.contextmanager
def serving(plan: Plan, port: Optional[int], view: BuildView, timings: Timings):
    """Start the package server when the delivery serves (yields its URL, or None), stop it after."""
    settings = plan.settings
    if not settings.delivery.serves:
        yield None
        return
    host = settings.server_host
    if not host:
        raise BuildError(f"cannot find the bridge gateway address of {settings.engine.binary}",
                         fix="use --network host (the server then listens on 127.0.0.1), or --host ADDRESS")
    files = {name: pkg.path for name, pkg in plan.served_files().items()}
    # The URL is no cache key with any engine (a secret, or the classic builder's proxy argument):
    # a fresh token every build, never the folder's `serve` token, and any free port.
    with timings.phase("server"):
        server = start_server(files, host, port, view)
    try:
        how = "a build secret" if settings.url_secret else f"the {URL_ARG} build argument, outside the cache key and history"
        view.info(f"serving {len(files)} files on {host}:{server.port} (only the planned files, token path passed as {how})")
        yield server.url
    finally:
        with timings.phase("server"):
            server.stop()


def start_server(files: Dict[str, Path], host: str, port: Optional[int], view: BuildView) -> PackageServer:
    """The started server: on `port` when given (busy: an error), else on DEFAULT_PORT, or on a
    free port when another build (or anything) holds that one."""
    def start(number: int) -> PackageServer:
        return PackageServer(files, host=host, port=number, on_transfer=view.transfer).start()

    if port is not None:
        return start(port)
    try:
        return start(DEFAULT_PORT)
    except PortInUse:
        server = start(0)
        view.info(f"port {DEFAULT_PORT} is in use (another build?): serving on port {server.port} instead")
        return server


def build_args(proxies: Dict[str, str], url_args: Dict[str, str]) -> Dict[str, str]:
    """The build arguments: the user's proxies, then the URL's; a user's FTP_PROXY the URL takes
    the place of goes on as ftp_proxy (which the tools read first)."""
    args = dict(proxies)
    if URL_ARG in url_args and URL_ARG in args:
        args.setdefault(URL_ARG.lower(), args.pop(URL_ARG))
    return {**args, **url_args}


@contextlib.contextmanager
def url_channel(url: Optional[str], settings: Settings, run: Run):
    """How the build learns the server URL: (build args, secrets). A secret lives in a 0600 file
    of this run's folder, outside the build context, for the length of the build."""
    if not url:
        yield {}, {}
        return
    if not settings.url_secret:
        yield {URL_ARG: URL_ARG_PREFIX + url}, {}
        return
    path = write_state(run.url_secret, url, mode=0o600)
    try:
        yield {}, {URL_SECRET: str(path)}
    finally:
        remove_quietly(path)


def run_build(settings: Settings, opts: BuildOptions, view: BuildView, timings: Optional[Timings] = None) -> dict:
    """Build the settings' target with the settings' engine; the report as a dict, with the
    seconds of each phase (`timings` may hold those the caller measured before)."""
    started = time.monotonic()
    timings = timings or Timings()
    engine = settings.engine
    state = State.of(settings.workdir)
    with timings.phase("base image"):           # first: check reads the Python of the image of this arch
        base = ensure_base_image(engine, settings.base_image, opts.pull, view, settings.arch)
    with timings.phase("check"):
        plan = plan_for(settings)
        plan.native = native_install.for_build(plan, engine, view.info)
        plan.cache_epoch = state.cache_epoch(renew=opts.no_cache)
    view.info(f"engine: {engine.name} ({opts.engine_reason})" if opts.engine_reason else f"engine: {engine.name}")
    if settings.delivery_defaulted:
        view.info("delivery: http (works with every engine; the build context holds only the Dockerfile and scripts)")
    for warning in plan.warnings:
        view.info(f"warning: {warning}")
    tag = opts.tag or default_tag(plan)
    log_path = state.new_log()
    view.info(f"full log: {log_path}")
    stage_times: Dict[str, StageEvent] = {}
    served: List[Transfer] = []
    with state.new_run() as run:
        with timings.phase("context"):
            context_dir = write_context(run.context, plan)
            ctx_bytes = sum(p.stat().st_size for p in context_dir.rglob("*") if p.is_file())
        serve_bytes = sum(p.size for p in plan.served_files().values()) if settings.delivery.serves else 0
        view.stages([s.name for s in plan.stages], serve_bytes)
        with serving(plan, opts.port, _Recording(view, served), timings) as url, \
                url_channel(url, settings, run) as (url_args, secrets), BuildLog(log_path, view) as log, \
                timings.phase("engine"):
            request = BuildRequest(context=str(context_dir), target=settings.target, tag=tag,
                                   build_args=build_args(proxy_args(settings.server_host if url else None), url_args),
                                   network="host" if settings.network == "host" else None,
                                   platform=settings.platform, iidfile=str(state.image_id), secrets=secrets,
                                   cache_from=opts.cache_from, cache_to=opts.cache_to)
            builds = _Builds(engine, view, log, log_path, stage_times)
            captured = capture_stages(plan, engine, state, context_dir, base.get("Id", ""), request, builds)
            write_state(context_dir / "Dockerfile", dockerfile(plan, captured=captured))
            builds.run(request)
    with timings.phase("report"):
        image = engine.inspect(tag)
        layers = image_layers(engine, state, tag, image.get("Id", ""), lambda text: view.info(f"warning: {text}"))
        report = build_report(plan, engine.name, tag, image, base, layers,
                              ctx_bytes, stage_times, served, time.monotonic() - started, str(log_path))
    report["timings"] = timings.as_dict()
    return report


def capture_stages(plan: Plan, engine: Engine, state: State, context_dir: Path, base_id: str, request: BuildRequest,
                   builds: "_Builds") -> Dict[str, Dict[str, str]]:
    """Every stage's ENV from its set_env.sh files: known ones from the store; for the first
    unknown one, build up to its install step, source them in that image, store, go on."""
    files = context_files(plan)
    store = EnvStore(state.root / CACHE_DIR)
    captured, pending = known_env(plan, files, base_id, store)
    while pending:
        stage, (prefix, target), key = pending
        builds.view.info(f"stage {stage.name}: building up to its install step to source its set_env.sh files")
        write_state(context_dir / "Dockerfile", prefix)
        iidfile = state.root / "capture-image-id"
        builds.run(replace(request, target=target, tag=None, iidfile=str(iidfile), cache_to=None))
        image = iidfile.read_text().strip()
        try:
            env = capture_in(engine, image, stage)
        except BaseException:
            engine.discard(image, failed=True)
            raise
        engine.discard(image)
        store.put(key, env)
        captured, pending = known_env(plan, files, base_id, store)
    return captured


class _Builds:
    """Runs engine builds: log lines to the log and the view, stage events to the view and the
    report (a stage built in one build and cached in the next counts as built). --no-cache is a new
    cache epoch in the Dockerfile (workdir.State.cache_epoch), not the engine's flag: every stage is
    built once in the run, the later builds of the run (after a set_env.sh capture) reuse what the
    earlier ones built and never an older build's layers, and so do the builds after it."""

    def __init__(self, engine: Engine, view: BuildView, log, log_path, stage_times: Dict[str, StageEvent]):
        self.engine, self.view, self.log, self.log_path, self.stage_times = engine, view, log, log_path, stage_times

    def run(self, request: BuildRequest) -> None:
        try:
            for event in self.engine.build(request):
                if isinstance(event, LogLine):
                    self.log.write(event.text)
                    self.view.log(event.text)
                else:
                    known = self.stage_times.get(event.stage)
                    if event.status != "started" and (known is None or event.status != "cached"):
                        self.stage_times[event.stage] = event
                    self.view.event(event)
        except BuildError as err:
            self.log.flush()
            raise BuildError(f"{err.message}\nfull log: {self.log_path}", fix=failure_hint(err.message)) from None


def failure_hint(message: str) -> str:
    if "does not match the sha256 in the plan" in message:
        return "a package changed after it was checked: run `ascend-build check --rehash`, then build again"
    if "no space left on device" in message.lower():
        return ("the disk the engine builds on is full: free space (`docker builder prune`, `docker image prune`; podman: "
                "`podman system prune`), then build again (finished stages stay cached)")
    if "Install failed" in message or "FAILED" in message:
        return "the installer log above names the cause; fix the package or the config, then build again (finished stages stay cached)"
    return "see the output above and the full log"


class BuildLog:
    """The build log, written line by line. A write that fails (disk full...) is no build failure:
    one warning with the path and the free space, and the log stops there."""

    def __init__(self, path: Path, view: BuildView):
        self.path, self.view = path, view
        self.out = None

    def __enter__(self) -> "BuildLog":
        with guarded(self.path):
            self.out = self.path.open("w")
        return self

    def write(self, line: str) -> None:
        if self.out is None:
            return
        try:
            self.out.write(line + "\n")
        except OSError as err:
            self._give_up(err)

    def flush(self) -> None:
        if self.out is not None:
            try:
                self.out.flush()
            except OSError as err:
                self._give_up(err)

    def _give_up(self, err: OSError) -> None:
        out, self.out = self.out, None
        self.view.info(f"warning: {state_error(self.path, err).message}: the log stops here")
        with contextlib.suppress(OSError):
            out.close()

    def __exit__(self, *exc) -> None:
        if self.out is not None:
            try:
                self.out.close()
            except OSError as err:
                self.view.info(f"warning: {state_error(self.path, err).message}: the log may be cut short")
            self.out = None


class _Recording:
    """Passes transfers on to the view and keeps them for the report."""

    def __init__(self, view: BuildView, served: List[Transfer]):
        self.view, self.served = view, served

    def info(self, text: str) -> None:
        self.view.info(text)

    def transfer(self, transfer: Transfer) -> None:
        self.served.append(transfer)
        self.view.transfer(transfer)
