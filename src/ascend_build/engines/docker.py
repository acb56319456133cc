"""Docker: the classic builder, and BuildKit (buildx, or DOCKER_BUILDKIT=1 with a client < 23)."""
import re
from collections import deque
from typing import Callable, Deque, Iterator, List, Optional

from .base import BuildKitTracker, BuildRequest, Engine, Event, LogLine, StageTracker, build_failed

CLASSIC_STEP = re.compile(r"^Step \d+/\d+ : (\w+)\s*(.*)$")
# Steps that only change the image config: they never make a stage count as built (BuildKit does
# not even show them), so a stage whose files all came from the cache reports cached.
METADATA = {"LABEL", "ENV", "ARG", "ENTRYPOINT", "CMD", "USER", "WORKDIR", "EXPOSE", "STOPSIGNAL", "HEALTHCHECK", "SHELL", "VOLUME", "ONBUILD", "MAINTAINER"}
FROM_AS = re.compile(r"\bAS\s+(\S+)\s*$", re.I)
PODMAN_STEP = re.compile(r"^(?:\[\d+/\d+\] )?STEP \d+/\d+: (\w+)\s*(.*)$")
BUILDKIT_VERTEX = re.compile(r"^#(\d+) \[([\w.-]+) (\d+)/(\d+)\] (\w+)")
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
    for name, path in req.secrets.items():
        args += ["--secret", f"id={name},src={path}"]
    return args


def parse_classic(lines: Iterator[str], failed: Callable[[], bool]) -> Iterator[Event]:
    """Classic builder and podman output: 'Step i/N : FROM x AS stage' (podman: '[s/S] STEP
    i/N: ...'), then '---> Using cache' for a cached step. Stages run one after the other."""
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
            elif instruction not in METADATA:
                pending = stage
            continue
        text = line.strip()
        if pending and (text.startswith("--> ") or text.startswith("---> ")):
            yield from tracker.step(pending, cached="Using cache" in text)
            pending = None
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


class Docker(Engine):
    """`docker build` with the classic builder."""

    name = "docker"
    supports_mount = False

    def __init__(self, binary: str = "docker"):
        super().__init__(binary, {"DOCKER_BUILDKIT": "0"})

    def build_args(self, req: BuildRequest) -> List[str]:
        return ["build", "--rm", "--force-rm", *_common_args(req), req.context]

    parse = staticmethod(parse_classic)

    def build(self, req: BuildRequest) -> Iterator[Event]:
        """Run the build; yield log lines and stage events; BuildError naming the failed stage
        with the output's tail when the engine fails."""
        tail: Deque[str] = deque(maxlen=60)
        failed_stage: Optional[str] = None
        for event in self.parse(self.stream(self.build_args(req)), lambda: self.returncode != 0):
            if isinstance(event, LogLine):
                tail.append(event.text)
            elif event.status == "failed":
                failed_stage = event.stage
            yield event
        if self.returncode != 0:
            raise build_failed(failed_stage, list(tail))


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

    parse = staticmethod(parse_buildkit)
