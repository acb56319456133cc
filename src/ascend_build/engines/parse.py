"""Engine output becomes stage events: the classic builder's and podman's `Step i/N` lines, and
BuildKit's plain progress."""
import re
import time
from typing import Callable, Dict, Iterator, List, Optional

from .base import Event, LogLine, StageEvent

CLASSIC_STEP = re.compile(r"^Step (\d+)/(\d+) : (\w+)\s*(.*)$")
# Steps that only change the image config: they never make a stage count as built (BuildKit does
# not even show them), so a stage whose files all came from the cache reports cached.
METADATA = {"LABEL", "ENV", "ARG", "ENTRYPOINT", "CMD", "USER", "WORKDIR", "EXPOSE", "STOPSIGNAL", "HEALTHCHECK", "SHELL", "VOLUME", "ONBUILD", "MAINTAINER"}
FROM_AS = re.compile(r"\bAS\s+(\S+)\s*$", re.I)
PODMAN_STEP = re.compile(r"^(?:\[\d+/\d+\] )?STEP (\d+)/(\d+): (\w+)\s*(.*)$")
PODMAN_FAILED = 'Error: building at STEP "'
BUILDKIT_VERTEX = re.compile(r"^#(\d+) \[([\w.-]+) (\d+)/(\d+)\] (\w+)")
BUILDKIT_STATUS = re.compile(r"^#(\d+) (CACHED|DONE|ERROR|CANCELED)\b")


def parse_classic(lines: Iterator[str], failed: Callable[[], bool]) -> Iterator[Event]:
    """Classic builder and podman output: 'Step i/N : FROM x AS stage' (podman: '[s/S] STEP
    i/N: ...'), then '---> Using cache' for a cached step and '---> ID' at each step's end. Stages
    run one after the other, except that podman builds a stage a RUN mounts while that RUN waits,
    and may start the next stage before it prints that a step failed ('Error: building at STEP "..."')."""
    tracker, stage, pending, last = StageTracker(), None, None, False
    waiting = []                       # (stage, its RUN, its RUN is its last step) under a nested stage
    steps: Dict[str, str] = {}         # the text of each step -> its stage
    culprit = None
    for line in lines:
        yield LogLine(line)
        step = CLASSIC_STEP.match(line) or PODMAN_STEP.match(line)
        if step:
            number, total, instruction, rest = step.groups()
            if instruction.upper() == "FROM":
                if pending:
                    waiting.append((stage, pending, last))
                    tracker.nest()
                named = FROM_AS.search(rest)
                stage = named.group(1) if named else rest.split()[0]
                yield from tracker.step(stage, cached=True)
                pending = None
            elif instruction.upper() not in METADATA:
                pending = stage
            steps[f"{instruction} {rest}".strip()] = stage
            last = number == total
            continue
        text = line.strip()
        if text.startswith("--> ") or text.startswith("---> "):
            if pending:
                yield from tracker.step(pending, cached="Using cache" in text)
                pending = None
            if waiting and last and "Using cache" not in text:      # the nested stage's last step ended
                yield from tracker.unnest()
                stage, pending, last = waiting.pop()
        elif text.startswith(PODMAN_FAILED):
            culprit = steps.get(text[len(PODMAN_FAILED):].split('": ', 1)[0])
    yield from tracker.close(failed=failed(), culprit=culprit)


def parse_buildkit(lines: Iterator[str], failed: Callable[[], bool]) -> Iterator[Event]:
    """BuildKit plain progress: '#7 [cann 2/3] RUN ...', then '#7 CACHED' or '#7 DONE 1.2s' or
    '#7 ERROR'. Cached steps are printed in any order, so each stage counts its own steps."""
    tracker, vertices = BuildKitTracker(), {}
    for line in lines:
        yield LogLine(line)
        vertex = BUILDKIT_VERTEX.match(line)
        if vertex:
            number, stage, step, total, instruction = vertex.groups()
            vertices[number] = (stage, int(step))
            yield from tracker.vertex(stage, int(total))
            if instruction.upper() == "FROM":
                tracker.cached.setdefault(stage, set()).add(int(step))
            continue
        status = BUILDKIT_STATUS.match(line)
        if status and status.group(1) in vertices:
            stage, step = vertices[status.group(1)]
            yield from tracker.status(stage, step, status.group(2))
    yield from tracker.finish(failed=failed())


class StageTracker:
    """Turns 'step of stage X ran / was cached' into StageEvents, in stage order."""

    def __init__(self) -> None:
        self.current: Optional[str] = None
        self.started: Dict[str, float] = {}
        self.ran: Dict[str, bool] = {}
        self.waiting: List[Optional[str]] = []

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

    def nest(self) -> None:
        """The current stage waits for a stage its RUN mounts (podman): it stays open."""
        self.waiting.append(self.current)
        self.current = None

    def unnest(self) -> List[StageEvent]:
        out = self.finish()
        self.current = self.waiting.pop()
        return out

    def finish(self, failed: bool = False) -> List[StageEvent]:
        """End the current stage: failed when the engine failed while in it."""
        if self.current is None:
            return []
        stage, self.current = self.current, None
        seconds = time.monotonic() - self.started[stage]
        status = "failed" if failed else ("built" if self.ran[stage] else "cached")
        return [StageEvent(stage, status, seconds)]

    def close(self, failed: bool = False, culprit: Optional[str] = None) -> List[StageEvent]:
        """The build's end: the stages still open, the one that failed last (a failure names it)."""
        open_stages = [s for s in (*self.waiting, self.current) if s is not None]
        if failed and culprit is not None:
            open_stages = [s for s in open_stages if s != culprit] + [culprit]
            self.started.setdefault(culprit, time.monotonic())
            self.ran.setdefault(culprit, False)
        out = []
        for self.current in open_stages:
            out += self.finish(failed)
        self.waiting = []
        return out


class BuildKitTracker:
    """BuildKit prints cached steps of all stages in any order: each stage counts its own steps
    (`[stage i/N]`) and ends when all N are done or cached."""

    def __init__(self) -> None:
        self.total: Dict[str, int] = {}
        self.started: Dict[str, float] = {}
        self.cached: Dict[str, set] = {}
        self.ran: Dict[str, set] = {}
        self.ended: Dict[str, str] = {}
        self.seen: Dict[str, float] = {}          # when a step of the stage last reported
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
        self.seen[stage] = time.monotonic()
        (self.cached[stage] if status == "CACHED" else self.ran.setdefault(stage, set())).add(step)
        done = self.cached[stage] | self.ran.get(stage, set())
        if len(done) >= self.total[stage] and stage not in self.ended:
            return [self._end(stage, "built" if self.ran.get(stage) else "cached")]
        return []

    def _end(self, stage: str, status: str, at: Optional[float] = None) -> StageEvent:
        self.ended[stage] = status
        return StageEvent(stage, status, max(0.0, (time.monotonic() if at is None else at) - self.started[stage]))

    def finish(self, failed: bool = False) -> List[StageEvent]:
        """Stages still open at the end: failed (the one with an ERROR, else each open one). One
        BuildKit did not print every step of (a helper only COPY'd from) took until its last step
        reported, not until the build's end."""
        open_stages = [s for s in self.total if s not in self.ended]
        if not failed:
            return [self._end(s, "built" if self.ran.get(s) else "cached", self.seen.get(s, self.started[s]))
                    for s in open_stages]
        culprits = [s for s in open_stages if s in self.errors] or open_stages[-1:]
        return [self._end(s, "failed") for s in culprits]
