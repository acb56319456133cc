"""Delivery: how the installers reach the build, one strategy chosen once when the settings are
resolved (`choose`). The renderer, the context writer, the plan and the build ask it what to
write in a stage's RUN (a mount clause, a COPY), which package files go into the build context,
whether a package server runs and how its URL reaches the build; nothing else compares names.

- http: a package server serves the planned files; each stage's RUN downloads, installs and
  deletes them, so no installer byte is in a layer or in the context. The URL is a build secret
  where the engine takes secrets, else a build argument.
- mount: the files are in the context and bind-mounted into the RUN (BuildKit, podman).
- copy: the files are in the context and COPYed in, then removed (a larger image)."""
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Dict, Iterable, List, Optional, Tuple

from .contract import PKG_DIR, URL_SECRET
from .engines.base import Engine
from .errors import ConfigError

AUTO = "auto"                              # the option's value that leaves it to the config, then http


@dataclass(frozen=True)
class Delivery:
    name: ClassVar[str]
    serves: ClassVar[bool] = False         # a package server runs for the build
    warning: ClassVar[Optional[str]] = None
    url_secret: bool = False               # http: the server URL reaches the build as a secret, not a build argument
    # a native-install helper stage can take the stage's wheels this way (native_install.py)
    native_helpers: ClassVar[bool] = True

    @property
    def url_arg(self) -> bool:
        """The Dockerfile declares the ASCEND_PKG_URL build argument (the server URL without a secret)."""
        return self.serves and not self.url_secret

    def copies(self, stage: str, has_files: bool) -> List[Tuple[str, str]]:
        """COPY (source, destination) pairs a stage's install step needs before its RUN."""
        return []

    def mount(self, stage: str, has_files: bool) -> str:
        """The `--mount=...` clause of a stage's install RUN (with its trailing space), or ""."""
        return ""

    def packages(self, stages: Iterable) -> Dict[str, Path]:
        """`pkgs/<stage>/<file>` -> source file: the package files the build context holds."""
        return {f"pkgs/{s.name}/{p.name}": p.path for s in stages for p in s.files}

    @classmethod
    def for_engine(cls, engine: Optional[Engine]) -> "Delivery":
        return cls()


@dataclass(frozen=True)
class Http(Delivery):
    name: ClassVar[str] = "http"
    serves: ClassVar[bool] = True

    def mount(self, stage: str, has_files: bool) -> str:
        return f"--mount=type=secret,id={URL_SECRET} " if self.url_secret else ""

    def packages(self, stages: Iterable) -> Dict[str, Path]:
        return {}

    @classmethod
    def for_engine(cls, engine: Optional[Engine]) -> "Delivery":
        return cls(url_secret=engine is not None and engine.build_secrets)


@dataclass(frozen=True)
class Mount(Delivery):
    name: ClassVar[str] = "mount"

    def mount(self, stage: str, has_files: bool) -> str:
        return f"--mount=type=bind,source=pkgs/{stage},target={PKG_DIR}/{stage} " if has_files else ""

    @classmethod
    def for_engine(cls, engine: Optional[Engine]) -> "Delivery":
        if engine is not None and not engine.bind_mounts:
            raise ConfigError(f"mount delivery needs BuildKit or podman; {engine.binary} uses the classic builder",
                              fix="use --delivery http, or --engine buildkit / --engine podman")
        return cls()


@dataclass(frozen=True)
class Copy(Delivery):
    name: ClassVar[str] = "copy"
    native_helpers: ClassVar[bool] = False
    warning: ClassVar[Optional[str]] = ("copy delivery leaves the installer bytes in the image's layers (COPY, then rm "
                                        "in a later layer): use http or mount for a smaller image")

    def copies(self, stage: str, has_files: bool) -> List[Tuple[str, str]]:
        return [(f"pkgs/{stage}/", f"{PKG_DIR}/{stage}/")] if has_files else []


DELIVERIES = {kind.name: kind for kind in (Http, Mount, Copy)}


def choose(wanted: str, engine: Optional[Engine]) -> Delivery:
    """The delivery named `wanted` (auto: http, which works with every engine) for `engine` (None:
    no engine, e.g. `plan`); ConfigError for an unknown name, or mount on an engine without bind mounts."""
    kind = Http if wanted == AUTO else DELIVERIES.get(wanted)
    if kind is None:
        raise ConfigError(f"unknown delivery {wanted!r}", fix=f"use one of: {AUTO}, {', '.join(DELIVERIES)}")
    return kind.for_engine(engine)
