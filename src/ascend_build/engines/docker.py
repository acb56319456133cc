"""Docker: the classic builder, and BuildKit (buildx, or DOCKER_BUILDKIT=1 with a client < 23)."""
import re
from collections import deque
from typing import Deque, Iterator, List, Optional

from .base import BuildRequest, Engine, Event, LogLine, StageEvent, StageTracker, build_failed

CLASSIC_STEP = re.compile(r"^Step \d+/\d+ : (\w+)\s*(.*)$")
FROM_AS = re.compile(r"\bAS\s+(\S+)\s*$", re.I)
BUILDKIT_VERTEX = re.compile(r"^#(\d+) \[([\w.-]+) \d+/\d+\] (\w+)")
BUILDKIT_STATUS = re.compile(r"^#(\d+) (CACHED|DONE|ERROR|CANCELED)\b")


def _common_args(req: BuildRequest) -> List[str]:
    args = ["-t", req.tag, "--target", req.target]
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
    return args


def parse_classic(lines: Iterator[str]) -> Iterator[Event]:
    """Classic builder (and podman) output: 'Step i/N : FROM x AS stage', '---> Using cache'."""
    tracker, stage, pending = StageTracker(), None, None
    for line in lines:
        yield LogLine(line)
        step = CLASSIC_STEP.match(line) or PODMAN_STEP.match(line)
        if step:
            instruction, rest = step.group(1).upper(), step.group(2)
            if instruction == "FROM":
                named = FROM_AS.search(rest)
                stage = named.group(1) if named else rest.split()[0]
                yield from tracker.step(stage, cached=True)
                pending = None
            else:
                pending = stage
            continue
        text = line.strip()
        if pending and text.startswith("-->") or pending and text.startswith("---> "):
            yield from tracker.step(pending, cached="Using cache" in text)
            pending = None
    yield from tracker.finish()


PODMAN_STEP = re.compile(r"^(?:\[\d+/\d+\] )?STEP \d+/\d+: (\w+)\s*(.*)$")


def parse_buildkit(lines: Iterator[str]) -> Iterator[Event]:
    tracker, vertices = StageTracker(), {}
    for line in lines:
        yield LogLine(line)
        vertex = BUILDKIT_VERTEX.match(line)
        if vertex:
            number, stage, instruction = vertex.groups()
            if instruction.upper() != "FROM" and number not in vertices:
                vertices[number] = stage
                yield from tracker.step(stage, cached=True)
            continue
        status = BUILDKIT_STATUS.match(line)
        if status and status.group(1) in vertices and status.group(2) == "DONE":
            yield from tracker.step(vertices[status.group(1)], cached=False)
    yield from tracker.finish()


class Docker(Engine):
    """`docker build` with the classic builder."""

    name = "docker"
    supports_mount = False

    def __init__(self, binary: str = "docker"):
        super().__init__(binary, {"DOCKER_BUILDKIT": "0"})

    def build_args(self, req: BuildRequest) -> List[str]:
        return ["build", "--rm", "--force-rm", *_common_args(req), req.context]

    def build(self, req: BuildRequest) -> Iterator[Event]:
        yield from self._finish(parse_classic(self.stream(self.build_args(req))))

    def _finish(self, events: Iterator[Event]) -> Iterator[Event]:
        """Pass events on; a stage's end is held back until the next event, so that when the
        engine fails, the stage it was in is reported failed (with the output tail)."""
        tail: Deque[str] = deque(maxlen=60)
        held: Optional[StageEvent] = None
        stage: Optional[str] = None
        for event in events:
            if isinstance(event, LogLine):
                tail.append(event.text)
                yield event
                continue
            if held:
                yield held
                held = None
            if event.status == "started":
                stage = event.stage
                yield event
            else:
                held = event
        if self.returncode != 0:
            yield StageEvent(stage or "?", "failed", held.seconds if held else 0.0)
            raise build_failed(stage, list(tail))
        if held:
            yield held


class DockerBuildKit(Docker):
    """BuildKit through `docker buildx build --load`, or DOCKER_BUILDKIT=1 on a client < 23."""

    name = "buildkit"
    supports_mount = True

    def __init__(self, binary: str = "docker", buildx: bool = False):
        Engine.__init__(self, binary, {"DOCKER_BUILDKIT": "1"})
        self.buildx = buildx

    def build_args(self, req: BuildRequest) -> List[str]:
        head = ["buildx", "build", "--load"] if self.buildx else ["build"]
        return [*head, "--progress=plain", *_common_args(req), req.context]

    def build(self, req: BuildRequest) -> Iterator[Event]:
        yield from self._finish(parse_buildkit(self.stream(self.build_args(req))))
