"""Settings: the config and the command-line options (and the engine, when there is one)
resolved once into the immutable model of a build that build, plan, export and bake read."""
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Optional, Tuple

from .catalog.compat import load_rules
from .catalog.pythons import BasePython, base_python
from .catalog.select import build_arch
from .chain import stage_chain
from .delivery import AUTO, Delivery, choose as choose_delivery
from .engines.base import Engine
from .engines import emulation
from .platforms import PLATFORMS, host_arch
from .errors import EngineError
from .components.registry import stage_names
from .spec import BuildSpec, load_spec

@dataclass(frozen=True)
class Options:
    """What the command line says about a build; None and "auto" leave it to the config."""

    target: Optional[str] = None
    delivery: str = AUTO                   # auto, http, mount or copy
    base_image: Optional[str] = None
    platform: Optional[str] = None
    network: Optional[str] = None          # bridge | host; default: the engine's
    host: Optional[str] = None             # package server address; default: from the network
    overrides: Dict[str, object] = field(default_factory=dict)   # more config keys
    runs_here: bool = False                # built on this host without an engine here (bake): check QEMU too


@dataclass(frozen=True)
class Settings:
    workdir: Path
    spec: BuildSpec
    target: str
    chain: Tuple[str, ...]                 # stages from base to target
    delivery: Delivery                     # how the installers reach the build
    delivery_defaulted: bool               # neither the options nor the config chose it
    arch: str                              # x86_64 | aarch64
    platform: Optional[str]                # linux/amd64 | linux/arm64 for another arch than the host's; None: native
    network: str                           # bridge | host
    server_host: Optional[str]             # where the package server listens; None without an engine
    engine: Optional[Engine] = None

    @property
    def base_image(self) -> str:
        return self.spec.base_image

    @property
    def url_secret(self) -> bool:
        """http: the server URL reaches the build as a secret, not a build argument."""
        return self.delivery.url_secret

    @property
    def builtin_target(self) -> str:
        """The last built-in stage on the way to the target: what the catalog selects for."""
        return self.builtin_chain[-1]

    @property
    def builtin_chain(self) -> Tuple[str, ...]:
        """The chain's built-in stages: those the catalog selects packages for."""
        return tuple(s for s in self.chain if s in stage_names())


def settings_for(workdir: Path, options: Options = Options(), engine: Optional[Engine] = None,
                 spec: Optional[BuildSpec] = None) -> Settings:
    """Decide everything once: ConfigError for an unknown delivery, platform or target, or mount
    delivery on an engine without bind mounts; EngineError when a build here for another arch
    finds no QEMU. The base image is --base-image, else the config's `base_images` entry for the
    arch, else its `base_image`."""
    workdir = Path(workdir)
    if spec is None:
        spec = load_spec(workdir, base_image=options.base_image, **options.overrides)
    arch = build_arch(options.platform, spec.arch)
    if options.base_image is None and arch in spec.base_images:
        spec = spec.model_copy(update={"base_image": spec.base_images[arch]})
    if engine is not None or options.runs_here:
        emulation.check_emulation(arch)
    target = options.target or spec.target
    chain = tuple(stage_chain(spec, target))
    wanted = options.delivery if options.delivery != AUTO else spec.delivery
    delivery = choose_delivery(wanted, engine)
    network = options.network or (engine.default_network if engine else "bridge")
    server_host = options.host
    if server_host is None and engine is not None and delivery.serves:
        server_host = "127.0.0.1" if network == "host" else engine.bridge_address()
    return Settings(workdir=workdir, spec=spec, target=target, chain=chain, delivery=delivery,
                    delivery_defaulted=wanted == AUTO, arch=arch,
                    platform=None if arch == host_arch() else PLATFORMS[arch], network=network, server_host=server_host, engine=engine)


def image_python(settings: Settings, engine: Optional[Engine] = None, no_engine: str = "no engine was asked") -> BasePython:
    """The image's Python for `check`: read from the base image through `engine` (default: the
    settings'), else the config's `python:`, saying why (`no_engine`)."""
    return base_python(engine or settings.engine, settings.base_image, settings.spec.python, settings.platform, no_engine,
                       load_rules().get("distro_python", {}))


def engine_for_check(name: str) -> Tuple[Optional[Engine], str]:
    """The engine `check` reads the base image with, or None and why not (`none`: not asked)."""
    if name == "none":
        return None, "--engine none"
    from .engines.detect import choose

    try:
        return choose(name)[0], ""
    except EngineError as err:
        return None, f"no engine answered: {err.message}"
