"""`ascend-build build`: check -> plan -> base image -> serve -> engine -> report.
A context manager owns cleanup: whatever happens, the server stops, the engine process ends
and the build context's package links are removed."""
import contextlib
import os
import shutil
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Protocol

from .engines.base import BuildRequest, Engine, LogLine, StageEvent
from .engines.detect import choose
from .engines.network import bridge_gateway
from .errors import BuildError, ConfigError
from .outputs import link_or_copy
from .plan import Plan, checked_selection, make_plan
from .render import URL_SECRET, context_files, context_packages
from .report import build_report
from .server import PackageServer, Transfer, workdir_token
from .spec import load_spec

STATE_DIR = ".ascend-build"
PROXY_VARS = ("http_proxy", "https_proxy", "ftp_proxy", "all_proxy", "no_proxy")


class BuildView(Protocol):
    """What the build tells the person running it (the CLI renders it)."""

    def info(self, text: str) -> None: ...
    def stages(self, names: List[str], serve_bytes: int) -> None: ...
    def event(self, event: StageEvent) -> None: ...
    def log(self, line: str) -> None: ...
    def transfer(self, transfer: Transfer) -> None: ...


@dataclass
class BuildOptions:
    target: Optional[str] = None
    tag: Optional[str] = None
    engine: str = "auto"
    docker_bin: Optional[str] = None
    delivery: str = "auto"
    network: Optional[str] = None          # bridge | host; default: bridge for docker, host for podman
    host: Optional[str] = None             # server bind address
    port: int = 3000
    no_cache: bool = False
    pull: str = "missing"                  # missing | always | never
    platform: Optional[str] = None
    base_image: Optional[str] = None
    overrides: Dict[str, object] = field(default_factory=dict)


def state_dir(workdir: Path) -> Path:
    path = Path(workdir) / STATE_DIR
    path.mkdir(exist_ok=True)
    return path


def default_tag(plan: Plan) -> str:
    """ascend-build/<target>:<cann>-<chip>-py<python>-<arch>, leaving out what is unknown."""
    sel = plan.selection
    toolkit = sel.find("toolkit")
    parts = [toolkit[0].version if toolkit else None, sel.chip, f"py{sel.python}" if sel.python else None, sel.arch]
    return f"ascend-build/{plan.target}:" + "-".join(p for p in parts if p)


def resolve_delivery(delivery: str, engine: Engine) -> str:
    if delivery == "auto":
        return "http"
    if delivery == "mount" and not engine.supports_mount:
        raise ConfigError(f"mount delivery needs BuildKit or podman; {engine.binary} uses the classic builder",
                          fix="use --delivery http, or --engine buildkit / --engine podman")
    return delivery


def ensure_base_image(engine: Engine, image: str, pull: str, view: BuildView) -> None:
    present = engine.image_exists(image)
    if present and pull != "always":
        return
    if pull == "never" and not present:
        raise BuildError(f"base image {image} is not present and --pull never was given", fix=load_hint(engine, image))
    view.info(f"pulling base image {image}")
    if not engine.pull(image) and not present:
        raise BuildError(f"base image {image} is not present and could not be pulled", fix=load_hint(engine, image))


def load_hint(engine: Engine, image: str) -> str:
    hint = (f"provide it locally: `{engine.binary} load -i IMAGE.tar`, or `tar -C ROOTFS -c . | {engine.binary} import - {image}`;"
            " for the demo's Debian base run scripts/make-base-image.sh; or set base_image in ascend-build.yaml / --base-image")
    if engine.name == "podman":
        hint += f"; an image only docker has: `docker save {image} | podman load`"
    return hint


def prepare_context(workdir: Path, plan: Plan) -> Path:
    """.ascend-build/context for this build."""
    return write_context(state_dir(workdir) / "context", plan)


def write_context(ctx: Path, plan: Plan, external_base: Optional[str] = None) -> Path:
    """A build context: Dockerfile and scripts, plus hard links of the packages for mount and copy
    delivery (copies when a link is impossible; a symbolic link's target, never the link)."""
    shutil.rmtree(ctx, ignore_errors=True)
    for name, text in context_files(plan, external_base=external_base).items():
        (ctx / name).parent.mkdir(parents=True, exist_ok=True)
        (ctx / name).write_text(text)
    for name, source in context_packages(plan).items():
        (ctx / name).parent.mkdir(parents=True, exist_ok=True)
        link_or_copy(source, ctx / name)
    return ctx


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
def serving(plan: Plan, workdir: Path, opts: BuildOptions, engine: Engine, network: str, view: BuildView):
    """Start the package server for http delivery (yields its URL, or None), stop it after."""
    if plan.delivery != "http":
        yield None
        return
    host = opts.host or ("127.0.0.1" if network == "host" else bridge_gateway(engine.binary))
    if not host:
        raise BuildError(f"cannot find the bridge gateway address of {engine.binary}",
                         fix="use --network host (the server then listens on 127.0.0.1), or --host ADDRESS")
    files = {name: pkg.path for name, pkg in plan.served_files().items()}
    # As a secret the URL is no cache key: a fresh token every build. As a build argument it is
    # one, so the working directory's stable token keeps rebuilds cached.
    token = None if plan.url_secret else workdir_token(state_dir(workdir))
    with PackageServer(files, host=host, port=opts.port, token=token,
                       on_transfer=view.transfer) as server:
        how = "a build secret" if plan.url_secret else "a build argument"
        view.info(f"serving {len(files)} files on {host}:{server.port} (only the planned files, token path passed as {how})")
        yield server.url


@contextlib.contextmanager
def url_channel(url: Optional[str], plan: Plan, workdir: Path):
    """How the build learns the server URL: (build args, secrets). A secret lives in a 0600 file
    outside the build context for the length of the build."""
    if not url:
        yield {}, {}
        return
    if not plan.url_secret:
        yield {"ASCEND_PKG_URL": url}, {}
        return
    path = state_dir(workdir) / "pkg-url.secret"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(url)
    try:
        yield {}, {URL_SECRET: str(path)}
    finally:
        path.unlink()


def run_build(workdir: Path, opts: BuildOptions, view: BuildView) -> dict:
    started = time.monotonic()
    workdir = Path(workdir)
    spec = load_spec(workdir, base_image=opts.base_image, **opts.overrides)
    target = opts.target or spec.target
    selection = checked_selection(workdir, spec, target, opts.platform)
    engine, why = choose(opts.engine, opts.docker_bin)
    view.info(f"engine: {engine.name} ({why})")
    delivery = resolve_delivery(opts.delivery if opts.delivery != "auto" else spec.delivery, engine)
    if opts.delivery == "auto" and spec.delivery == "auto":
        view.info("delivery: http (works with every engine; the build context holds only the Dockerfile and scripts)")
    plan = make_plan(workdir, spec, selection, target, delivery, url_secret=engine.supports_mount)
    for warning in plan.warnings:
        view.info(f"warning: {warning}")
    tag = opts.tag or default_tag(plan)
    ensure_base_image(engine, spec.base_image, opts.pull, view)
    network = opts.network or ("host" if engine.name == "podman" else "bridge")
    logs = state_dir(workdir) / "logs"
    logs.mkdir(exist_ok=True)
    log_path = logs / f"build-{datetime.now():%Y%m%d-%H%M%S}.log"
    view.info(f"full log: {log_path}")
    ctx = prepare_context(workdir, plan)
    ctx_bytes = sum(p.stat().st_size for p in ctx.rglob("*") if p.is_file())
    stage_times: Dict[str, StageEvent] = {}
    served: List[Transfer] = []
    try:
        serve_bytes = sum(p.path.stat().st_size for p in plan.served_files().values()) if delivery == "http" else 0
        view.stages([s.name for s in plan.stages], serve_bytes)
        with serving(plan, workdir, opts, engine, network, _Recording(view, served)) as url, \
                url_channel(url, plan, workdir) as (url_args, secrets), log_path.open("w") as log:
            build_args = {**proxy_args(url.split("/")[2].rsplit(":", 1)[0].strip("[]") if url else None), **url_args}
            request = BuildRequest(context=str(ctx), target=target, tag=tag, build_args=build_args,
                                   network="host" if network == "host" else None, no_cache=opts.no_cache,
                                   platform=opts.platform, iidfile=str(state_dir(workdir) / "last-image-id"),
                                   secrets=secrets)
            try:
                for event in engine.build(request):
                    if isinstance(event, LogLine):
                        log.write(event.text + "\n")
                        view.log(event.text)
                    else:
                        if event.status != "started":
                            stage_times[event.stage] = event
                        view.event(event)
            except BuildError as err:
                log.flush()
                raise BuildError(f"{err.message}\nfull log: {log_path}", fix=failure_hint(err.message)) from None
    finally:
        shutil.rmtree(ctx / "pkgs", ignore_errors=True)
    return build_report(engine, plan, tag, ctx_bytes, stage_times, served, time.monotonic() - started, str(log_path))


def failure_hint(message: str) -> str:
    if "Install failed" in message or "FAILED" in message:
        return "the installer log above names the cause; fix the package or the config, then build again (finished stages stay cached)"
    return "see the output above and the full log"


class _Recording:
    """Passes transfers on to the view and keeps them for the report."""

    def __init__(self, view: BuildView, served: List[Transfer]):
        self.view, self.served = view, served

    def info(self, text: str) -> None:
        self.view.info(text)

    def transfer(self, transfer: Transfer) -> None:
        self.served.append(transfer)
        self.view.transfer(transfer)
