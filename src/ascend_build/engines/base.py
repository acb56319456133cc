"""The engine interface: build a context and stream events; inspect, save and remove images."""
import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from typing import Dict, Iterator, List, Optional, Sequence, Union

from ..errors import BuildError, EngineError


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


@dataclass
class BuildRequest:
    context: str
    target: str
    tag: str
    build_args: Dict[str, str] = field(default_factory=dict)
    network: Optional[str] = None          # "host" or None (the engine's default bridge)
    no_cache: bool = False
    platform: Optional[str] = None
    iidfile: Optional[str] = None
    secrets: Dict[str, str] = field(default_factory=dict)   # id -> file (BuildKit and podman only)


class StageTracker:
    """Turns 'step of stage X ran / was cached' into StageEvents, in stage order."""

    def __init__(self) -> None:
        self.current: Optional[str] = None
        self.started: Dict[str, float] = {}
        self.ran: Dict[str, bool] = {}
        self.events: List[StageEvent] = []

    def step(self, stage: str, cached: bool) -> List[StageEvent]:
        out = []
        if stage != self.current:
            out += self.finish()
            self.current = stage
            self.started[stage] = time.monotonic()
            self.ran[stage] = False
            out.append(StageEvent(stage, "started"))
        if not cached:
            self.ran[stage] = True
        return out

    def finish(self, failed: bool = False) -> List[StageEvent]:
        """End the current stage: failed when the engine failed while in it."""
        if self.current is None:
            return []
        stage, self.current = self.current, None
        seconds = time.monotonic() - self.started[stage]
        status = "failed" if failed else ("built" if self.ran[stage] else "cached")
        return [StageEvent(stage, status, seconds)]


class BuildKitTracker:
    """BuildKit prints cached steps of all stages in any order: each stage counts its own steps
    (`[stage i/N]`) and ends when all N are done or cached."""

    def __init__(self) -> None:
        self.total: Dict[str, int] = {}
        self.started: Dict[str, float] = {}
        self.cached: Dict[str, set] = {}
        self.ran: Dict[str, set] = {}
        self.ended: Dict[str, str] = {}
        self.errors: List[str] = []

    def vertex(self, stage: str, total: int) -> List[StageEvent]:
        if stage in self.total:
            return []
        self.total[stage] = total
        self.started[stage] = time.monotonic()
        return [StageEvent(stage, "started")]

    def status(self, stage: str, step: int, status: str) -> List[StageEvent]:
        if status in ("ERROR", "CANCELED"):
            self.errors.append(stage)
            return []
        if step in self.cached.setdefault(stage, set()):
            return []
        (self.cached[stage] if status == "CACHED" else self.ran.setdefault(stage, set())).add(step)
        done = self.cached[stage] | self.ran.get(stage, set())
        if len(done) >= self.total[stage] and stage not in self.ended:
            return [self._end(stage, "built" if self.ran.get(stage) else "cached")]
        return []

    def _end(self, stage: str, status: str) -> StageEvent:
        self.ended[stage] = status
        return StageEvent(stage, status, time.monotonic() - self.started[stage])

    def finish(self, failed: bool = False) -> List[StageEvent]:
        """Stages still open at the end: failed (the one with an ERROR, else each open one)."""
        open_stages = [s for s in self.total if s not in self.ended]
        if not failed:
            return [self._end(s, "built" if self.ran.get(s) else "cached") for s in open_stages]
        culprits = [s for s in open_stages if s in self.errors] or open_stages[-1:]
        return [self._end(s, "failed") for s in culprits]


class Engine:
    """One container engine, driven as an external program."""

    name = "engine"
    supports_mount = False             # RUN --mount (bind and secret)

    def __init__(self, binary: str, env: Optional[Dict[str, str]] = None):
        self.binary = binary
        self.env = env
        self.returncode: Optional[int] = None   # of the last build, once its output has ended

    # -- helpers -------------------------------------------------------------------------------
    def run(self, args: Sequence[str], timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess:
        try:
            result = subprocess.run([self.binary, *args], capture_output=True, text=True, timeout=timeout,
                                    env=self._env())
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

    # -- the interface -------------------------------------------------------------------------
    def available(self) -> Optional[str]:
        """None when usable, else the reason why not."""
        result = self.run(["info"], timeout=30, check=False)
        return None if result.returncode == 0 else (result.stderr.strip().splitlines() or ["no answer"])[-1]

    def build(self, request: BuildRequest) -> Iterator[Event]:
        raise NotImplementedError

    def image_exists(self, image: str) -> bool:
        return self.run(["image", "inspect", image], check=False).returncode == 0

    def pull(self, image: str) -> bool:
        return self.run(["pull", image], timeout=600, check=False).returncode == 0

    def inspect(self, image: str) -> dict:
        return json.loads(self.run(["image", "inspect", image]).stdout)[0]

    def layers(self, image: str) -> List[dict]:
        """The image's history, newest first: [{"created_by", "size_bytes"}]."""
        out = self.run(["history", "--no-trunc", "--human=false", "--format", "{{.CreatedBy}}\t{{.Size}}", image]).stdout
        rows = [line.rsplit("\t", 1) for line in out.splitlines() if "\t" in line]
        return [{"created_by": by, "size_bytes": int(size) if size.isdigit() else 0} for by, size in rows]


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
