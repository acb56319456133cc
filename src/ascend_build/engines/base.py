"""The engine interface: the one door to container CLIs. Build a context and stream events
(the loop is here; each engine gives its command line, its output parser and a guard), run
containers, inspect, pull and load images, find the bridge address."""
import contextlib
import json
import math
import os
import secrets
import signal
import subprocess
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, ContextManager, Deque, Dict, Iterator, List, Optional, Sequence, Tuple, Union

from ..errors import AscendBuildError, BuildError, EngineError, StepTimeout
from ..limits import positive
from .network import bridge_gateway
from .registry import last_digest, refused

CONTAINER_TIMEOUT_ENV = "ASCEND_BUILD_CONTAINER_TIMEOUT"
CONTAINER_TIMEOUT = 600.0                  # seconds a container the tool runs to look into an image may take
CONTAINER_PREFIX = "ascend-build-"         # the name of every such container starts so


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
# `python3 -c BOOT`: the first line of stdin is the JSON list of the script's arguments, the rest
# the script, run as __main__
BOOT = ("import json,sys;a=json.loads(sys.stdin.readline());s=sys.stdin.read();sys.argv=['-']+a;"
        "exec(compile(s,'<stdin>','exec'),{'__name__':'__main__'})")
# ...preceded by a deadline of the container's own: when the tool cannot stop it (killed with
# SIGKILL meanwhile), its python3 ends itself this many seconds after the tool's deadline, and the
# engine removes the container (--rm)
SELF_STOP = "import os,signal;signal.signal(signal.SIGALRM,lambda*_:os._exit(124));signal.alarm({seconds});"
SELF_STOP_MARGIN = 10
Parser = Callable[[Iterator[str], Callable[[], bool]], Iterator[Event]]


@dataclass
class BuildRequest:
    context: str
    target: str
    tag: Optional[str]                     # None: an untagged image (its id in iidfile)
    build_args: Dict[str, str] = field(default_factory=dict)
    network: Optional[str] = None          # "host" or None (the engine's default bridge)
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
    pulls_cache_from = False           # --cache-from images must be pulled first (the classic builder)
    inline_cache = True                # the layer cache travels in the images (per-arch --cache-to/--cache-from)
    store_transport: Optional[str] = None   # skopeo's transport for this engine's image store
    native_stages = False              # a stage on the build host's platform in a build for another (FROM --platform)
    build_platform_arg = False         # ...written FROM --platform=$BUILDPLATFORM (else the platform itself)

    def store_reference(self, ref: str) -> str:
        """`ref` in this engine's store, as skopeo names it (docker-daemon:REF, containers-storage:REF)."""
        if not self.store_transport:
            raise EngineError(f"{self.binary}'s image store cannot be read or written by skopeo",
                              fix="use --engine docker or --engine podman")
        return f"{self.store_transport}:{ref}"

    def store_flags(self, side: str) -> List[str]:
        """skopeo's flags to reach this engine's store as the `src` or `dest` of a copy."""
        return []

    def __init__(self, binary: str, env: Optional[Dict[str, str]] = None, container_timeout: Optional[float] = None):
        self.binary = binary
        self.env = env
        # the deadline of the containers run_container starts: ASCEND_BUILD_CONTAINER_TIMEOUT seconds
        self.container_timeout = container_timeout or positive(os.environ, CONTAINER_TIMEOUT_ENV, CONTAINER_TIMEOUT)
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
                          network: Optional[str] = None, interactive: bool = False, tty: bool = False,
                          name: Optional[str] = None) -> List[str]:
        """The `run --rm` command line for a throwaway container."""
        cmd = [self.binary, "run", "--rm", *(["-it"] if tty else ["-i"] if interactive else [])]
        cmd += ["--name", name] if name else []
        cmd += ["--network", network] if network else []
        cmd += ["--entrypoint", entrypoint] if entrypoint else []
        cmd += ["--user", user] if user else []
        return [*cmd, *flags, image, *command]

    def run_container(self, image: str, command: Sequence[str] = (), stdin: Optional[str] = None,
                      timeout: Optional[float] = None, step: str = "", fix: str = "", purpose: str = "step",
                      **how) -> subprocess.CompletedProcess:
        """Run a throwaway container named ascend-build-<purpose>-<random> to its end, within
        `timeout` (at most the engine's container deadline); `how` as for container_command. When
        the deadline passes or the tool is interrupted, the container is stopped and removed;
        StepTimeout names `step` (what hung, e.g. "the python3 of image X") with `fix`."""
        limit = min(timeout or self.container_timeout, self.container_timeout)
        name = f"{CONTAINER_PREFIX}{purpose}-{secrets.token_hex(4)}"
        cmd = self.container_command(image, command, interactive=stdin is not None, name=name, **how)
        try:
            return self._run_to_end(cmd, stdin, limit)
        except subprocess.TimeoutExpired:
            self.remove_container(name)
            what = step or f"a container of {image} (`{' '.join(command)[:60]}`)"
            raise StepTimeout(f"{what} did not end in {limit:g} s: its container {name} was stopped and removed",
                              fix=(f"{fix}; " if fix else "") + f"a slower step needs a longer deadline: "
                                  f"{CONTAINER_TIMEOUT_ENV}=SECONDS (now {limit:g})") from None
        except BaseException:
            self.remove_container(name)
            raise

    def _run_to_end(self, cmd: List[str], stdin: Optional[str], timeout: float) -> subprocess.CompletedProcess:
        """`cmd` to its end, its own process group (a Ctrl-C reaches the tool, not the client);
        the client is stopped when the deadline passes or the tool is interrupted. Of what it
        prints, the last MAX_OUTPUT bytes of each stream are kept (an image's program may print
        without end: memory stays bounded, and the answers read are the last lines)."""
        try:
            proc = subprocess.Popen(cmd, stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=self._env(),
                                    start_new_session=True)
        except FileNotFoundError:
            raise EngineError(f"{self.binary} not found", fix="install it or pick another engine with --engine") from None
        try:
            out, err = _Tail(proc.stdout), _Tail(proc.stderr)
            if stdin is not None:
                _Tail.feed(proc.stdin, stdin.encode())
            proc.wait(timeout=timeout)
            out.join()
            err.join()
        except BaseException:
            stop_process_group(proc, grace=1.0)
            raise
        return subprocess.CompletedProcess(cmd, proc.returncode, out.text(), err.text())

    def remove_container(self, name: str) -> None:
        """Stop and remove the container `name` (also one the client was still creating); never fails."""
        for attempt in range(3):
            try:
                result = self.run(["rm", "--force", name], timeout=60, check=False)
            except AscendBuildError:
                return
            if result.returncode == 0 or "no such container" not in result.stderr.lower():
                return
            time.sleep(0.5 * (attempt + 1))          # a client stopped while the daemon creates it

    def run_python(self, image: str, script: str, args: Sequence[str] = (), user: Optional[str] = None,
                   timeout: Optional[float] = None, **step) -> subprocess.CompletedProcess:
        """Run a Python script in a throwaway container of `image` without network. The script and
        its arguments travel on stdin (no size limit of a command line applies), read by BOOT;
        `step` (step, fix, purpose) as for run_container."""
        limit = min(timeout or self.container_timeout, self.container_timeout)
        boot = SELF_STOP.format(seconds=math.ceil(limit) + SELF_STOP_MARGIN) + BOOT
        return self.run_container(image, ["-c", boot], stdin=json.dumps(list(args)) + "\n" + script, timeout=timeout,
                                  network="none", entrypoint="python3", user=user, **step)

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
            result = self.run(["image", "inspect", "--", image], check=False)
            self.found[image] = inspect_record(result.stdout, image) if result.returncode == 0 else None
        return self.found[image]

    def discard(self, image_id: str, failed: bool = False) -> None:
        """Remove an untagged image made only to look into, unless it is this engine's layer cache
        for the build that follows (`failed`: no build follows; its parent layers are kept)."""
        found = None if self.cache_in_images and not failed else self.find_image(image_id)
        if found is not None and not found.get("RepoTags"):
            self.run(["image", "rm", *(["--no-prune"] if self.cache_in_images else []), "--", image_id], check=False)
            self.found.pop(image_id, None)

    def image_exists(self, image: str) -> bool:
        return self.find_image(image) is not None

    def pull(self, image: str, platform: Optional[str] = None) -> subprocess.CompletedProcess:
        """Pull `image` (for `platform`: one entry of a manifest list, which the local store then
        holds under that name); the engine's answer, not checked."""
        self.found.clear()
        return self.run(["pull", *(["--platform", platform] if platform else []), "--", image], timeout=600,
                        check=False)

    def tag(self, image: str, ref: str) -> None:
        self.run(["tag", "--", image, ref])

    def push(self, ref: str, insecure: bool = False) -> str:
        """Push `ref` with the engine's own login; its manifest digest. (docker reads plain-HTTP
        registries from its daemon's settings; `insecure` is for engines that take it per push.)"""
        result = self.run(["push", "--", ref], timeout=1800, check=False)
        if result.returncode != 0:
            raise refused(self.binary, ref, result.stdout + result.stderr)
        return last_digest(result.stdout)

    def publish_manifest(self, ref: str, images: Sequence[str], insecure: bool = False) -> str:
        """One manifest list `ref` over the pushed per-arch `images`; its digest
        (`docker manifest create/push`)."""
        client = Engine(self.binary, {**(self.env or {}), "DOCKER_CLI_EXPERIMENTAL": "enabled"})
        flag = ["--insecure"] if insecure else []
        client.run(["manifest", "rm", ref], check=False)        # a local list from an earlier run
        result = client.run(["manifest", "create", *flag, ref, *images], timeout=300, check=False)
        if result.returncode == 0:
            result = client.run(["manifest", "push", "--purge", *flag, ref], timeout=600, check=False)
        if result.returncode != 0:
            raise refused(self.binary, ref, result.stdout + result.stderr)
        return last_digest(result.stdout)

    def load_hint(self, image: str) -> str:
        """How a person puts an image this engine cannot pull into its store."""
        return (f"provide it locally: `{self.binary} load -i IMAGE.tar`, or `tar -C ROOTFS -c . | {self.binary} import - {image}`;"
                " for the demo's Debian base run scripts/make-base-image.sh; or set base_image in ascend-build.yaml / --base-image")

    def inspect(self, image: str) -> dict:
        return inspect_record(self.run(["image", "inspect", "--", image]).stdout, image)

    def layers(self, image: str) -> List[dict]:
        """The image's history, newest first: [{"created_by", "size_bytes"}]; each step's text
        comes as a JSON string (it is the image's, and may hold tabs and newlines)."""
        out = self.run(["history", "--no-trunc", "--human=false", "--format", "{{json .CreatedBy}}\t{{.Size}}",
                        "--", image]).stdout
        rows = []
        for line in out.splitlines():
            by, _, size = line.rpartition("\t")
            try:
                by = json.loads(by)
            except ValueError:
                continue
            if isinstance(by, str):
                rows.append({"created_by": by, "size_bytes": int(size) if size.isdigit() else 0})
        return rows

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
    if req.iidfile:
        args += ["--iidfile", req.iidfile]
    if req.platform:
        args += ["--platform", req.platform]
    for name, path in req.secrets.items():
        args += ["--secret", f"id={name},src={path}"]
    for ref in req.cache_from:
        args += ["--cache-from", ref]
    return args


def inspect_record(output: str, image: str) -> dict:
    """The one record of `image inspect IMAGE`; EngineError when the engine printed something else."""
    try:
        record = json.loads(output)[0]
    except (ValueError, IndexError, KeyError, TypeError):
        record = None
    if not isinstance(record, dict):
        raise EngineError(f"the engine's `image inspect` of {image} did not print an image record: {output.strip()[:200]!r}",
                          fix="check that the engine works: `docker image inspect IMAGE`")
    return record


MAX_OUTPUT = 8 << 20           # bytes kept of each output stream of a container run to its end


class _Tail:
    """A stream read to its end by a thread, of which the last MAX_OUTPUT bytes are kept."""

    def __init__(self, stream):
        self.blocks: Deque[bytes] = deque()
        self.size = 0
        self.thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self.thread.start()

    def _read(self, stream) -> None:
        with contextlib.suppress(OSError, ValueError), stream:
            for block in iter(lambda: stream.read1(1 << 16), b""):
                self.blocks.append(block)
                self.size += len(block)
                while self.size - len(self.blocks[0]) >= MAX_OUTPUT:
                    self.size -= len(self.blocks.popleft())

    def join(self) -> None:
        self.thread.join(5.0)          # the pipe ends with the client (unless a child of it holds it)

    def text(self) -> str:
        return b"".join(self.blocks)[-MAX_OUTPUT:].decode("utf-8", "replace")

    @staticmethod
    def feed(stream, data: bytes) -> None:
        """Write `data` to `stream` and close it, from a thread (the client may not read it all)."""
        def write() -> None:
            with contextlib.suppress(OSError, ValueError), stream:
                stream.write(data)
        threading.Thread(target=write, daemon=True).start()


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
