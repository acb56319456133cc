"""The engine interface: the one door to container CLIs. Build a context and stream events
(the loop is here; each engine gives its command line, its output parser and a guard), run
containers, inspect, pull and load images, find the bridge address."""
import contextlib
import json
import os
import signal
import subprocess
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, ContextManager, Deque, Dict, Iterator, List, Optional, Sequence, Tuple, Union

from ..errors import BuildError, EngineError
from .network import bridge_gateway


@dataclass(frozen=True)
class StageEvent:
    """A stage changed state: started, cached, built or failed."""

    stage: str
    status: str
    seconds: float = 0.0


@dataclass(frozen=True)
class LogLine:
    text: str


Event = Union[StageEvent, LogLine]
Parser = Callable[[Iterator[str], Callable[[], bool]], Iterator[Event]]


@dataclass
class BuildRequest:
    context: str
    target: str
    tag: Optional[str]                     # None: an untagged image (its id in iidfile)
    build_args: Dict[str, str] = field(default_factory=dict)
    network: Optional[str] = None          # "host" or None (the engine's default bridge)
    no_cache: bool = False
    platform: Optional[str] = None
    iidfile: Optional[str] = None
    secrets: Dict[str, str] = field(default_factory=dict)   # id -> file (engines with build_secrets)
    cache_from: Tuple[str, ...] = ()       # registry references whose layers may be reused
    cache_to: Optional[str] = None         # where the layer cache goes (the engine says how)


class Engine:
    """One container engine, driven as an external program. Subclasses set the capability flags
    and give `build_command` and `parse`; `build_guard` may clean up after a failed build."""

    name = "engine"
    bind_mounts = False                # RUN --mount=type=bind
    build_secrets = False              # RUN --mount=type=secret
    default_network = "bridge"         # where the package server must be reachable from
    cache_export = False               # build --cache-to
    cache_in_images = True             # the layer cache is the images' layers (an untagged image is cache)
    store_transport: Optional[str] = None   # skopeo's transport for this engine's image store

    def store_reference(self, ref: str) -> str:
        """`ref` in this engine's store, as skopeo names it (docker-daemon:REF, containers-storage:REF)."""
        if not self.store_transport:
            raise EngineError(f"{self.binary}'s image store cannot be read or written by skopeo",
                              fix="use --engine docker or --engine podman")
        return f"{self.store_transport}:{ref}"

    def store_flags(self, side: str) -> List[str]:
        """skopeo's flags to reach this engine's store as the `src` or `dest` of a copy."""
        return []

    def __init__(self, binary: str, env: Optional[Dict[str, str]] = None):
        self.binary = binary
        self.env = env
        self.returncode: Optional[int] = None   # of the last build, once its output has ended
        self.bridge: Optional[str] = None       # the bridge gateway, once known
        self.found: Dict[str, Optional[dict]] = {}   # find_image's answers since the store last changed

    # -- running the program -------------------------------------------------------------------
    def run(self, args: Sequence[str], timeout: float = 120, check: bool = True,
            input: Optional[str] = None) -> subprocess.CompletedProcess:
        try:
            result = subprocess.run([self.binary, *args], capture_output=True, text=True, timeout=timeout,
                                    env=self._env(), input=input)
        except FileNotFoundError:
            raise EngineError(f"{self.binary} not found", fix="install it or pick another engine with --engine") from None
        except subprocess.TimeoutExpired:
            raise EngineError(f"`{self.binary} {' '.join(args[:2])}` did not answer in {timeout:.0f} s",
                              fix="check that the engine's daemon is healthy") from None
        if check and result.returncode != 0:
            raise EngineError(f"`{self.binary} {' '.join(args[:3])}` failed: {result.stderr.strip()[-500:]}")
        return result

    def _env(self) -> Optional[Dict[str, str]]:
        return {**os.environ, **self.env} if self.env else None

    def stream(self, args: Sequence[str]) -> Iterator[str]:
        """Run the engine and yield its output lines; the process dies with the generator."""
        proc = subprocess.Popen([self.binary, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, text=True, errors="replace", env=self._env(),
                                start_new_session=True)
        try:
            for line in proc.stdout:
                yield line.rstrip("\n")
            proc.wait()
        finally:
            if proc.poll() is None:
                stop_process_group(proc)
        self.returncode = proc.returncode

    # -- building ------------------------------------------------------------------------------
    def build_command(self, req: BuildRequest) -> List[str]:
        raise NotImplementedError

    parse: Parser

    def build_guard(self) -> ContextManager:
        """Wraps a build; may clean up what a failed build left behind."""
        return contextlib.nullcontext()

    def build(self, req: BuildRequest) -> Iterator[Event]:
        """Run the build; yield log lines and stage events; BuildError naming the failed stage
        with the output's tail when the engine fails."""
        tail: Deque[str] = deque(maxlen=60)
        failed_stage: Optional[str] = None
        self.returncode = None
        self.found.clear()
        with self.build_guard():
            for event in type(self).parse(self.stream(self.build_command(req)), lambda: self.returncode != 0):
                if isinstance(event, LogLine):
                    tail.append(event.text)
                elif event.status == "failed":
                    failed_stage = event.stage
                yield event
        if self.returncode != 0:
            raise build_failed(failed_stage, list(tail))

    # -- containers ----------------------------------------------------------------------------
    def container_command(self, image: str, command: Sequence[str] = (), flags: Sequence[str] = (),
                          entrypoint: Optional[str] = None, user: Optional[str] = None,
                          network: Optional[str] = None, interactive: bool = False, tty: bool = False) -> List[str]:
        """The `run --rm` command line for a throwaway container."""
        cmd = [self.binary, "run", "--rm", *(["-it"] if tty else ["-i"] if interactive else [])]
        cmd += ["--network", network] if network else []
        cmd += ["--entrypoint", entrypoint] if entrypoint else []
        cmd += ["--user", user] if user else []
        return [*cmd, *flags, image, *command]

    def run_container(self, image: str, command: Sequence[str] = (), stdin: Optional[str] = None,
                      timeout: float = 300, **how) -> subprocess.CompletedProcess:
        """Run a throwaway container to its end; `how` as for container_command."""
        cmd = self.container_command(image, command, interactive=stdin is not None, **how)
        return self.run(cmd[1:], timeout=timeout, check=False, input=stdin)

    def attach(self, command: Sequence[str]) -> int:
        """Run a container_command with the terminal attached; its exit status."""
        return subprocess.run(command).returncode

    # -- images --------------------------------------------------------------------------------
    def available(self) -> Optional[str]:
        """None when usable, else the reason why not."""
        result = self.run(["info"], timeout=30, check=False)
        return None if result.returncode == 0 else (result.stderr.strip().splitlines() or ["no answer"])[-1]

    def find_image(self, image: str) -> Optional[dict]:
        """The image's inspect record, or None when the store has no such image; asked once
        while no build or pull of this engine object changed the store."""
        if image not in self.found:
            result = self.run(["image", "inspect", image], check=False)
            self.found[image] = json.loads(result.stdout)[0] if result.returncode == 0 else None
        return self.found[image]

    def discard(self, image_id: str) -> None:
        """Remove an untagged image made only to look into, unless it is this engine's layer cache."""
        found = None if self.cache_in_images else self.find_image(image_id)
        if found is not None and not found.get("RepoTags"):
            self.run(["image", "rm", image_id], check=False)
            self.found.pop(image_id, None)

    def image_exists(self, image: str) -> bool:
        return self.find_image(image) is not None

    def pull(self, image: str, platform: Optional[str] = None) -> subprocess.CompletedProcess:
        """Pull `image` (for `platform`: one entry of a manifest list, which the local store then
        holds under that name); the engine's answer, not checked."""
        self.found.clear()
        return self.run(["pull", *(["--platform", platform] if platform else []), image], timeout=600, check=False)

    def load_hint(self, image: str) -> str:
        """How a person puts an image this engine cannot pull into its store."""
        return (f"provide it locally: `{self.binary} load -i IMAGE.tar`, or `tar -C ROOTFS -c . | {self.binary} import - {image}`;"
                " for the demo's Debian base run scripts/make-base-image.sh; or set base_image in ascend-build.yaml / --base-image")

    def inspect(self, image: str) -> dict:
        return json.loads(self.run(["image", "inspect", image]).stdout)[0]

    def layers(self, image: str) -> List[dict]:
        """The image's history, newest first: [{"created_by", "size_bytes"}]."""
        out = self.run(["history", "--no-trunc", "--human=false", "--format", "{{.CreatedBy}}\t{{.Size}}", image]).stdout
        rows = [line.rsplit("\t", 1) for line in out.splitlines() if "\t" in line]
        return [{"created_by": by, "size_bytes": int(size) if size.isdigit() else 0} for by, size in rows]

    def bridge_address(self) -> Optional[str]:
        """The default bridge's gateway address (where containers reach the host), or None;
        asked once per engine."""
        if self.bridge is None:
            self.bridge = bridge_gateway(self.binary)
        return self.bridge


def build_flags(req: BuildRequest) -> List[str]:
    """The `build` flags docker and podman share."""
    args = (["-t", req.tag] if req.tag else []) + ["--target", req.target]
    for key, value in req.build_args.items():
        args += ["--build-arg", f"{key}={value}"]
    if req.network:
        args += ["--network", req.network]
    if req.no_cache:
        args.append("--no-cache")
    if req.iidfile:
        args += ["--iidfile", req.iidfile]
    if req.platform:
        args += ["--platform", req.platform]
    for name, path in req.secrets.items():
        args += ["--secret", f"id={name},src={path}"]
    for ref in req.cache_from:
        args += ["--cache-from", ref]
    return args


def stop_process_group(proc: subprocess.Popen, grace: float = 5.0) -> None:
    """SIGINT the engine's process group (clients cancel their build), then SIGKILL."""
    for sig, wait in ((signal.SIGINT, grace), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def build_failed(stage: Optional[str], tail: List[str]) -> BuildError:
    where = f"stage {stage}" if stage else "the build"
    return BuildError(f"{where} failed:\n" + "\n".join(tail[-40:]))
