"""Engine output (captured from real docker classic, BuildKit and podman builds of a 4-stage
Dockerfile, and podman 4.3 builds of the demo's vLLM stack, whose vllm stage mounts vllm-sdists,
and of an arm64 native install, whose helper stages interleave with cann's)
becomes stage events: started, built, cached, failed."""
import contextlib
from pathlib import Path

import pytest

from ascend_build.engines.base import BuildRequest, LogLine, StageEvent
from ascend_build.engines.docker import Docker, DockerBuildKit
from ascend_build.engines.podman import Podman
from ascend_build.errors import BuildError

FIXTURES = Path(__file__).parent / "fixtures"
ENGINES = {"classic": Docker, "buildkit": DockerBuildKit, "podman": Podman}
STAGES = ["base", "cann", "pta", "mindie"]


class Replay:
    """An engine whose output is a captured file; returncode as the real run had it."""

    def __init__(self, kind: str, run: str):
        self.engine = ENGINES[kind]()
        lines = (FIXTURES / f"{kind}-{run}.txt").read_text().splitlines()

        def stream(args):
            yield from lines
            self.engine.returncode = 1 if run.endswith("failed") else 0

        self.engine.stream = stream
        self.engine.build_guard = contextlib.nullcontext   # a replay leaves nothing to clean up

    def events(self):
        out = []
        try:
            for event in self.engine.build(BuildRequest(context=".", target="mindie", tag="x")):
                out.append(event)
        except BuildError as err:
            out.append(err)
        return out


def finished(events):
    return [(e.stage, e.status) for e in events if isinstance(e, StageEvent) and e.status != "started"]


@pytest.mark.parametrize("kind", ENGINES)
def test_first_build_builds_every_stage(kind):
    events = Replay(kind, "first").events()
    assert dict(finished(events)) == {s: "built" for s in STAGES}
    assert [e.stage for e in events if isinstance(e, StageEvent) and e.status == "started"] == STAGES
    assert any(isinstance(e, LogLine) for e in events)


@pytest.mark.parametrize("kind", ENGINES)
def test_second_build_reports_every_stage_cached(kind):
    assert dict(finished(Replay(kind, "cached").events())) == {s: "cached" for s in STAGES}


@pytest.mark.parametrize("kind", ENGINES)
def test_failure_names_the_stage_and_keeps_the_tail(kind):
    events = Replay(kind, "failed").events()
    assert dict(finished(events[:-1])) == {"base": "cached", "cann": "failed"}
    error = events[-1]
    assert isinstance(error, BuildError)
    assert "stage cann failed" in error.message
    assert "component toolkit" in error.message and "exited with status 127" in error.message


FAKE_PODMAN = """#!/bin/sh
echo "$*" >> "$0.calls"
[ "$1" = ps ] && cat "$0.containers"
exit 0
"""


@pytest.mark.parametrize("returncode, removed", [(1, ["rm --force --ignore new1"]), (0, [])])
def test_podman_removes_only_what_its_failed_build_left(tmp_path, returncode, removed):
    podman = tmp_path / "podman"
    podman.write_text(FAKE_PODMAN)
    podman.chmod(0o755)
    (tmp_path / "podman.containers").write_text("old1\n")
    engine = Podman(str(podman))
    engine.runtimes = ()
    with engine.build_guard():
        (tmp_path / "podman.containers").write_text("old1\nnew1\n")
        engine.returncode = returncode
    calls = (tmp_path / "podman.calls").read_text().splitlines()
    assert [c for c in calls if c.startswith("rm")] == removed


def test_a_stage_buildkit_left_open_ends_when_its_last_step_reported(monkeypatch):
    """A helper stage only COPY'd from may not print all its steps: it took until its last step
    reported (here 2 s), not until the build's end (100 s)."""
    from ascend_build.engines import parse

    clock = iter([0.0, 2.0, 100.0])
    monkeypatch.setattr(parse.time, "monotonic", lambda: next(clock))
    tracker = parse.BuildKitTracker()
    tracker.vertex("pta-native", 3)                          # started at 0
    tracker.status("pta-native", 1, "DONE")                  # its last report, at 2
    (event,) = tracker.finish()                              # the build ends at 100
    assert (event.stage, event.status) == ("pta-native", "built") and event.seconds == 2.0


@pytest.mark.parametrize("run, expected", [
    ("nested-first", {"base": "cached", "cann": "cached", "pta": "built", "vllm-sdists": "built", "vllm": "built"}),
    ("nested", {"base": "cached", "cann": "cached", "pta": "cached", "vllm-sdists": "cached", "vllm": "built"}),
    ("native", {"base": "cached", "native-tools": "cached", "native-scheme": "cached", "cann-native": "cached",
                "pta-native": "cached", "cann": "built", "ab-capture": "built"}),
])
def test_podman_steps_count_for_their_stage_though_the_stages_interleave(run, expected):
    """podman 4.3 runs a stage while a step of another waits for it: vllm's RUN (it mounts
    vllm-sdists), then all of vllm-sdists, then that RUN's output and end; cann's COPY --from=
    cann-native, then cann-native's last step and pta-native, then that COPY's end. Each end counts
    for the step that waits for no unfinished stage: vllm (cann) was built, its helpers cached."""
    found = finished(Replay("podman", run).events())
    assert dict(found) == expected and len(found) == len(expected), found


def test_podman_names_the_stage_whose_step_failed_though_the_next_one_started():
    """vllm-sdists' build failed; podman started vllm before it printed `Error: building at STEP
    "RUN ... vllm-0.23.0.tar.gz=..."`: the error names vllm-sdists."""
    events = Replay("podman", "nested-failed").events()
    error = events[-1]
    assert isinstance(error, BuildError) and error.message.startswith("stage vllm-sdists failed")
    assert finished(events[:-1])[-1] == ("vllm-sdists", "failed")
