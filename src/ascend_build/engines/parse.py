"""Engine output becomes stage events: the classic builder's `Step i/N` lines, podman's `[s/S] STEP
i/N` lines and BuildKit's plain progress."""
import re
import time
from typing import Callable, Dict, Iterator, List, Optional

from .base import Event, LogLine, StageEvent

CLASSIC_STEP = re.compile(r"^Step \d+/\d+ : (\w+)\s*(.*)$")
# Steps that only change the image config: they never make a stage count as built (BuildKit does
# not even show them), so a stage whose files all came from the cache reports cached.
METADATA = {"LABEL", "ENV", "ARG", "ENTRYPOINT", "CMD", "USER", "WORKDIR", "EXPOSE", "STOPSIGNAL", "HEALTHCHECK", "SHELL", "VOLUME", "ONBUILD", "MAINTAINER"}
FROM_AS = re.compile(r"\bAS\s+(\S+)\s*$", re.I)
PODMAN_STEP = re.compile(r"^(?:\[(\d+)/\d+\] )?STEP (\d+)/(\d+): (\w+)\s*(.*)$")
PODMAN_FAILED = 'Error: building at STEP "'
STAGE_REF = re.compile(r"(?:^|[\s,])-{0,2}from=([^\s,]+)")      # COPY --from=S, RUN --mount=...,from=S
BUILDKIT_VERTEX = re.compile(r"^#(\d+) \[([\w.-]+) (\d+)/(\d+)\] (\w+)")
BUILDKIT_STATUS = re.compile(r"^#(\d+) (CACHED|DONE|ERROR|CANCELED)\b")


def stage_name(rest: str) -> str:
    """The stage a 'FROM image [AS name]' step starts: its name, else its image."""
    named = FROM_AS.search(rest)
    return named.group(1) if named else rest.split()[0]


def parse_classic(lines: Iterator[str], failed: Callable[[], bool]) -> Iterator[Event]:
    """Classic builder output: 'Step i/N : FROM x AS stage', then '---> Using cache' for a cached
    step. Stages run one after the other."""
    tracker, stage, pending = StageTracker(), None, None
    for line in lines:
        yield LogLine(line)
        step = CLASSIC_STEP.match(line)
        if step:
            instruction, rest = step.group(1).upper(), step.group(2)
            if instruction == "FROM":
                stage = stage_name(rest)
                yield from tracker.step(stage, cached=True)
                pending = None
            elif instruction not in METADATA:
                pending = stage
            continue
        text = line.strip()
        if pending and text.startswith("---> "):
            yield from tracker.step(pending, cached="Using cache" in text)
            pending = None
    yield from tracker.finish(failed=failed())


def parse_podman(lines: Iterator[str], failed: Callable[[], bool]) -> Iterator[Event]:
    """podman (buildah) output: '[s/S] STEP i/N: INSTRUCTION ...' when a step starts, then
    '--> Using cache ID' for a cached one and '--> ID' when it ends (the last step of the image:
    after '[s/S] COMMIT'). A step that needs another stage (COPY --from, RUN --mount from=) waits
    for it while the stages it waits for go on, so the stages' lines interleave; one runs at a
    time. A failure ends with 'Error: building at STEP "<the step>": ...'."""
    tracker = PodmanTracker()
    for line in lines:
        yield LogLine(line)
        step = PODMAN_STEP.match(line)
        text = line.strip()
        if step:
            yield from tracker.step(*step.groups())
        elif text.startswith("--> "):
            yield from tracker.result(cached=text.startswith("--> Using cache"))
        elif text.startswith(PODMAN_FAILED):
            tracker.culprit = tracker.texts.get(text[len(PODMAN_FAILED):].split('": ', 1)[0], tracker.culprit)
    yield from tracker.finish(failed=failed())


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


class PodmanTracker:
    """podman's steps by stage ('[s/S]'): a step's end belongs to the latest started step that waits
    for no unfinished stage (the running one)."""

    def __init__(self) -> None:
        self.names: Dict[str, str] = {}              # stage number -> name
        self.started: Dict[str, float] = {}
        self.ran: Dict[str, bool] = {}
        self.ended: Dict[str, str] = {}
        self.open: List[dict] = []                   # steps started and not ended, in order
        self.texts: Dict[str, str] = {}              # a step's text -> its stage
        self.culprit: Optional[str] = None

    def step(self, number: Optional[str], index: str, total: str, instruction: str, rest: str) -> List[StageEvent]:
        number, instruction = number or "1", instruction.upper()
        if instruction == "FROM":
            self.names[number] = stage_name(rest)
        stage = self.names.get(number, number)
        self.texts[f"{instruction} {rest}".strip()] = stage
        if instruction == "FROM":                    # FROM prints no end of its own
            self.started[stage], self.ran[stage] = time.monotonic(), False
            return [StageEvent(stage, "started")] + (self._end(stage) if index == total else [])
        needs = set(STAGE_REF.findall(rest)) if instruction in ("COPY", "RUN", "ADD") else set()
        self.open.append({"stage": stage, "last": index == total, "ran": instruction not in METADATA, "needs": needs})
        return []

    def result(self, cached: bool) -> List[StageEvent]:
        if not self.open:
            return []
        ready = [s for s in self.open if all(n in self.ended for n in s["needs"])] or self.open
        step = ready[-1]
        if cached:
            step["ran"] = False
            return []
        self.open.remove(step)
        self.ran[step["stage"]] = self.ran.get(step["stage"], False) or step["ran"]
        return self._end(step["stage"]) if step["last"] else []

    def _end(self, stage: str, status: Optional[str] = None) -> List[StageEvent]:
        if stage in self.ended or stage not in self.started:
            return []
        self.ended[stage] = status or ("built" if self.ran[stage] else "cached")
        return [StageEvent(stage, self.ended[stage], time.monotonic() - self.started[stage])]

    def finish(self, failed: bool = False) -> List[StageEvent]:
        """The build's end: the stages still open end; after a failure only the stage of the step
        podman named (else the latest started step's) fails."""
        open_stages = [s for s in self.started if s not in self.ended]
        if not failed:
            return [e for s in open_stages for e in self._end(s)]
        culprit = self.culprit or (self.open[-1]["stage"] if self.open else (open_stages or [None])[-1])
        return self._end(culprit, "failed") if culprit else []


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
